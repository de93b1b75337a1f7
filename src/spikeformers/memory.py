"""Training memory: activation checkpointing for every model in the zoo, and giving freed memory back.

Training memory grows with T because every layer keeps its activations for
the backward pass. ``enable_activation_checkpointing(model)`` makes the
encoder blocks and the stem's stages (where most neurons sit, at full
resolution) keep only their *inputs*; each unit's forward is run again during
backward, one unit at a time, so the peak holds one unit's activations
instead of the whole network's. It uses ``torch.utils.checkpoint`` without
re-entrance and works on any model whose parts follow the zoo's naming
(``blocks`` / ``stages`` for the encoder; ``patch_embed`` / ``patch_embeds`` /
``stem`` / ``tokenizer`` for the stem); ``checkpoint_module`` wraps any other
module by hand.

It changes no result:

- neurons are stateless multi-step modules, so a recomputation reproduces
  the spikes exactly, and the random state is replayed for any dropout;
- batch norm in training mode normalises with the batch's own statistics,
  which the recomputation reproduces, but it would also move the running
  mean and variance (and ``num_batches_tracked``) a second time, and a layer
  that reads the running statistics (Meta-SpikeFormer's padded batch norm
  reads them after its update) would see other values. So the norm layers'
  buffers are recorded before each unit's forward (a few floats per
  channel), put back for its recomputation, and the forward's values
  restored afterwards: the recomputation sees what the forward saw, and the
  running statistics end exactly as without checkpointing;
- with ``compact=True`` a unit input whose values are small non-negative
  integers (spikes, and the spike sums on Spikformer-style residual streams)
  is kept as ``uint8`` and turned back into its float type, exactly, when
  the unit is recomputed; other inputs (membrane potentials) are kept as
  they are. The test costs a min/max and one comparison per unit input (and,
  on a GPU, one host synchronisation per unit). It is off by default: the
  unit inputs are a small part of the peak, which is the largest unit's
  backward (``benchmarks/results/memory.md``). ``compact_saved_tensors()``
  applies the same packing to everything autograd keeps, without
  checkpointing.

Under ``torch.no_grad()`` (evaluation) nothing is saved, so the modules run
their plain forward. Hooks on modules *inside* a unit run again during the
recomputation; a hook that counts skips those calls by checking
``recomputing()``, as the firing-rate monitor and the operation counter do.

On the CPU, call ``return_freed_memory_to_os()`` once as well: without it
glibc keeps the recomputed activations' freed memory, and the process's
resident peak drops by far less than the tensors' peak
(``benchmarks/results/memory.md`` has the figures).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .neurons import get_neuron_class, list_neurons

# The names under which the zoo's models keep their encoder and their stem.
BLOCK_CONTAINERS = ("blocks", "stages")
STEM_MODULES = ("patch_embed", "patch_embeds", "stem", "tokenizer")
# Smaller tensors are not worth the check.
_COMPACT_MIN_ELEMENTS = 4096

_state = threading.local()


def recomputing() -> bool:
    """True while a checkpointed unit runs its forward again during backward (for hooks that count)."""
    return getattr(_state, "depth", 0) > 0


class _CheckpointedForward:
    """Stands in for a module's ``forward``: the same call, under ``torch.utils.checkpoint``."""

    def __init__(self, module: nn.Module, compact: bool):
        self.module = module
        self.compact = compact

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        forward = type(self.module).forward.__get__(self.module)
        if not torch.is_grad_enabled():  # nothing would be kept for a backward pass
            return forward(*args, **kwargs)
        # The packing reaches the unit's inputs only: its inner ops run under checkpoint's own hooks.
        with compact_saved_tensors() if self.compact else contextlib.nullcontext():
            return checkpoint(forward, *args, use_reentrant=False, context_fn=lambda: _contexts(self.module),
                              **kwargs)


def _norm_buffers(module: nn.Module) -> list[torch.Tensor]:
    return [buffer for norm in module.modules() if isinstance(norm, nn.modules.batchnorm._NormBase)
            for buffer in norm.buffers(recurse=False)]


def _contexts(module: nn.Module):
    """checkpoint's ``context_fn``: a context around the forward and one around its recomputation.

    The recomputation must see the norm layers' running statistics as the
    forward saw them (a layer may read them after its own update, as
    Meta-SpikeFormer's padded batch norm does), and must leave them as the
    forward left them: they are recorded before the forward, put in place for
    the recomputation, and the forward's results put back afterwards.
    """
    before_forward: list[torch.Tensor] = []

    @contextlib.contextmanager
    def forward() -> Iterator[None]:
        before_forward.extend(buffer.clone() for buffer in _norm_buffers(module))
        yield

    @contextlib.contextmanager
    def recomputation() -> Iterator[None]:
        buffers = _norm_buffers(module)
        after_forward = [buffer.clone() for buffer in buffers]
        with torch.no_grad():
            for buffer, value in zip(buffers, before_forward):
                buffer.copy_(value)
        _state.depth = getattr(_state, "depth", 0) + 1
        try:
            yield
        finally:  # also when checkpoint stops the recomputation early, by an exception
            _state.depth -= 1
            with torch.no_grad():
                for buffer, value in zip(buffers, after_forward):
                    buffer.copy_(value)

    return forward(), recomputation()


def _pack_compact(tensor: torch.Tensor) -> Any:
    if tensor.is_floating_point() and tensor.numel() >= _COMPACT_MIN_ELEMENTS:
        with torch.no_grad():
            low, high = torch.aminmax(tensor)
            if low >= 0 and high <= 255:  # checked first: a float outside uint8's range has no defined cast
                counts = tensor.to(torch.uint8)
                if torch.equal(counts.to(tensor.dtype), tensor):
                    return counts, tensor.dtype
    return tensor


def _unpack_compact(packed: Any) -> torch.Tensor:
    if isinstance(packed, tuple):
        counts, dtype = packed
        return counts.to(dtype)
    return packed


def compact_saved_tensors() -> torch.autograd.graph.saved_tensors_hooks:
    """A context in which every tensor autograd keeps for backward that holds small non-negative
    integers (spikes, spike sums) is kept as ``uint8``, exactly; others are kept as they are.

    Usable with or without checkpointing: ``with compact_saved_tensors(): loss = loss_fn(model(x))``.
    Inside a checkpointed unit, checkpoint's own hooks take precedence (nothing is kept there).
    """
    return torch.autograd.graph.saved_tensors_hooks(_pack_compact, _unpack_compact)


def return_freed_memory_to_os(threshold: int = 128 * 1024) -> bool:
    """On the CPU, make glibc serve every allocation of ``threshold`` bytes or more with its own
    mapping, given back to the system when freed; True when applied (glibc), False elsewhere.

    glibc raises its mapping threshold as large blocks are freed, and then
    serves them from a heap that keeps freed memory. Checkpointing frees and
    re-allocates a unit's activations in every backward, so the process's
    resident memory then grows well past the tensors alive at any moment
    (``benchmarks/results/memory.md``). A fixed threshold (the
    ``MALLOC_MMAP_THRESHOLD_`` environment variable does the same) keeps
    resident memory at the tensors' peak. Process-wide; GPUs are
    not concerned.
    """
    if not 0 < threshold <= 32 * 2 ** 20:  # glibc's largest: half its 64 MiB heap
        raise ValueError(f"threshold must be 1 byte .. 32 MiB, got {threshold!r}")
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    M_MMAP_THRESHOLD = -3  # malloc.h
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold)))


def checkpoint_module(module: nn.Module, compact: bool = False) -> nn.Module:
    """Make ``module`` recompute its activations in backward instead of keeping them; returns it.

    The module's parameters, buffers and ``state_dict`` keys are untouched;
    ``uncheckpoint_module`` undoes it.
    """
    if is_checkpointed(module):
        raise ValueError(f"{type(module).__name__} is already checkpointed")
    module.forward = _CheckpointedForward(module, compact)
    return module


def uncheckpoint_module(module: nn.Module) -> nn.Module:
    """Give a checkpointed module back its plain forward; returns it."""
    if not is_checkpointed(module):
        raise ValueError(f"{type(module).__name__} is not checkpointed")
    del module.__dict__["forward"]
    return module


def is_checkpointed(module: nn.Module) -> bool:
    return isinstance(module.__dict__.get("forward"), _CheckpointedForward)


def _is_container(module: nn.Module) -> bool:
    return isinstance(module, (nn.Sequential, nn.ModuleList))


def _count_neurons(module: nn.Module) -> int:
    neuron_classes = tuple(get_neuron_class(name) for name in list_neurons())
    return sum(isinstance(m, neuron_classes) for m in module.modules())


def _block_units(module: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """Every non-container module in a (possibly nested) Sequential / ModuleList: the blocks."""
    if not _is_container(module):
        return [(name, module)]
    return [unit for child_name, child in module.named_children()
            for unit in _block_units(child, f"{name}.{child_name}")]


def _stem_units(module: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """The stem's stages, so that backward recomputes one stage at a time.

    A stage is a module built from layers alone (no Sequential / ModuleList
    inside: a Conv-BN-neuron-pool stage, an SCS stage), or a Sequential
    holding at most one neuron (the RPE's Conv-BN-neuron); anything else is
    opened. Parts with neither parameters nor neurons (a lone pooling) are
    left alone.
    """
    built_from_layers = not (_is_container(module) or any(_is_container(c) for c in module.children()))
    if built_from_layers or isinstance(module, nn.Sequential) and _count_neurons(module) <= 1:
        has_parameters = any(True for _ in module.parameters())
        return [(name, module)] if has_parameters or _count_neurons(module) else []
    return [unit for child_name, child in module.named_children()
            for unit in _stem_units(child, f"{name}.{child_name}")]


def checkpoint_units(model: nn.Module, blocks: bool = True, stem: bool = True) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs ``enable_activation_checkpointing`` would wrap, in model order."""
    found: list[tuple[str, nn.Module]] = []
    for flag, names, units in ((stem, STEM_MODULES, _stem_units), (blocks, BLOCK_CONTAINERS, _block_units)):
        if flag:
            for attribute in names:
                part = getattr(model, attribute, None)
                if isinstance(part, nn.Module):
                    found += units(part, attribute)
    return found


def enable_activation_checkpointing(model: nn.Module, blocks: bool = True, stem: bool = True,
                                    compact: bool = False) -> list[str]:
    """Checkpoint the encoder blocks (``blocks``) and the stem's stages (``stem``) of a zoo model.

    Returns the names of the wrapped modules. Outputs, gradients and batch
    norm running statistics stay exactly those of the plain model (module
    docstring). ``compact`` keeps integer-valued unit inputs as ``uint8``.
    Raises ``ValueError`` when the model has none of the parts asked for, or
    is already checkpointed.
    """
    if not (blocks or stem):
        raise ValueError("enable_activation_checkpointing: ask for blocks, stem or both")
    units = checkpoint_units(model, blocks, stem)
    if not units:
        looked_for = (BLOCK_CONTAINERS if blocks else ()) + (STEM_MODULES if stem else ())
        raise ValueError(
            f"{type(model).__name__} has no attribute {' / '.join(looked_for)} holding modules, so nothing "
            f"was checkpointed; wrap its parts with spikeformers.memory.checkpoint_module"
        )
    already = [name for name, module in units if is_checkpointed(module)]
    if already:
        raise ValueError(f"{type(model).__name__} is already checkpointed ({', '.join(already[:3])}, ...); "
                         f"call disable_activation_checkpointing first")
    for _, module in units:
        checkpoint_module(module, compact)
    return [name for name, _ in units]


def disable_activation_checkpointing(model: nn.Module) -> list[str]:
    """Undo ``enable_activation_checkpointing`` (or any ``checkpoint_module`` inside ``model``);
    returns the names of the modules given back their plain forward."""
    names = []
    for name, module in model.named_modules():
        if is_checkpointed(module):
            uncheckpoint_module(module)
            names.append(name)
    return names
