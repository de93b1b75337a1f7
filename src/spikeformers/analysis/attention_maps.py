"""Attention maps per head: ``Q K^T`` of one sample, for the layers that compute it.

A layer counts as attention when it has ``num_heads`` and ``q_neuron`` and
``k_neuron`` children (Spikformer's SSA and its descendants, QKFormer's
token attention, SDSA); their spikes are kept for the first sample. Only
layers seen multiplying matrices (``OpCounter`` found a ``matmul`` in their
forward) compute ``Q K^T``; the others (SDSA's channel masks, QKFormer's
token masks) get no map, rather than a picture of a product they never
form. Queries and keys are read as channel-last tokens ``[T, B, N, C]``
with channel ``c = head * d + j``, the library's head split.
"""

from __future__ import annotations

import torch
from torch import nn


def attention_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules()
            if hasattr(m, "num_heads") and isinstance(getattr(m, "q_neuron", None), nn.Module)
            and isinstance(getattr(m, "k_neuron", None), nn.Module)}


class AttentionRecorder:
    """Keeps the Q and K spikes of the first sample of the first forward, per attention layer."""

    def __init__(self, model: nn.Module):
        self.layers = attention_layers(model)
        self.kept: dict[str, dict[str, torch.Tensor]] = {name: {} for name in self.layers}
        self._handles: list = []

    def __enter__(self) -> "AttentionRecorder":
        for name, module in self.layers.items():
            for part in ("q", "k"):
                self._handles.append(getattr(module, f"{part}_neuron").register_forward_hook(self._keep(name, part)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _keep(self, name: str, part: str):
        def hook(module, args, output):
            if part not in self.kept[name] and output.dim() == 4:  # [T, B, N, C] tokens only
                self.kept[name][part] = output[:, 0].detach().cpu()

        return hook

    def maps(self, only: set[str] | None = None) -> dict[str, torch.Tensor]:
        """``[heads, N, N]`` = sum over t of ``Q_t K_t^T`` per head, for the layers in ``only`` (all if None)."""
        result = {}
        for name, kept in self.kept.items():
            if "q" not in kept or "k" not in kept or (only is not None and name not in only):
                continue
            q, k = kept["q"].double(), kept["k"].double()  # [T, N, C]
            heads = self.layers[name].num_heads
            T, N, C = q.shape
            if k.shape != q.shape or C % heads:
                continue
            q = q.reshape(T, N, heads, C // heads).transpose(1, 2)  # [T, h, N, d]
            k = k.reshape(T, N, heads, C // heads).transpose(1, 2)
            result[name] = (q @ k.transpose(-2, -1)).sum(0).float()
        return result
