"""Multi-process data-parallel training on PyTorch's distributed engine, started by ``torchrun``.

``torchrun --nproc_per_node N -m spikeformers train ...`` sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` then joins the process
group (NCCL on GPUs, gloo on CPU) and gives each process its GPU. A single
process without those variables is world size 1 and nothing here costs
anything.

The data order is one global permutation per epoch, a function of (seed,
epoch); each global batch of ``batch_size x world`` samples is split into
``world`` contiguous shards, one per process, so N processes with batch b
see exactly the batches one process sees with batch N x b.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .device import resolve_device

@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def shard(self, batch: list[int]) -> list[int]:
        """This process's contiguous share of a global batch (sizes differ by at most one)."""
        per, extra = divmod(len(batch), self.size)
        start = self.rank * per + min(self.rank, extra)
        return batch[start:start + per + (self.rank < extra)]

    def sum(self, *values: float, device: torch.device | str = "cpu") -> list[float]:
        """The sums over all processes of a few numbers (the numbers themselves in one process)."""
        if not self.active:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return total.tolist()

    def sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(tensor)
        return tensor

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def setup(device_name: str) -> tuple[World, torch.device]:
    """Join the process group when started by torchrun; return this process's place and device."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return World(), resolve_device(device_name)
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") or device_name.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(world.local_rank)
        device = torch.device("cuda", world.local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return world, device


def teardown(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def finish(world: World) -> None:
    """Leave the process group together: a barrier (so no process exits while another still writes its
    results, or tears the group down under a peer), then every process destroys its own group."""
    if world.active and dist.is_initialized():
        dist.barrier()
    teardown(world)


# How gloo and NCCL report a peer that died or closed its connection mid-collective (as RuntimeError).
_PEER_LOSS_MARKS = ("gloo", "nccl", "connection reset by peer", "connection closed by peer", "broken pipe")


def is_peer_loss(world: World, err: BaseException) -> bool:
    """Whether ``err`` is a collective failing because another process is gone."""
    if not world.active:
        return False
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    return isinstance(err, RuntimeError) and any(mark in str(err).lower() for mark in _PEER_LOSS_MARKS)


def lost_peer_message(world: World, err: BaseException) -> str:
    """Which process was lost (as far as this one can tell), what the backend said, in a line."""
    others = [rank for rank in range(world.size) if rank != world.rank]
    who = f"rank {others[0]}" if len(others) == 1 else f"one of ranks {', '.join(map(str, others))}"
    said = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    said = said.split("] ", 1)[-1].split(". This is typically")[0][:200]
    return f"rank {world.rank} lost contact with {who} of {world.size} ({said})"


class _AllReduceSum(torch.autograd.Function):
    """The sum over processes, differentiable: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


class SyncBatchNormCPU(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover the global batch of all processes, over gloo.

    PyTorch's ``SyncBatchNorm`` runs only on GPUs; this one runs anywhere.
    In training mode the per-channel mean, then the variance around it, are
    summed across processes with a differentiable all-reduce (the same
    two-pass statistics a single process computes over the whole batch);
    the running statistics take the unbiased global variance, as
    ``BatchNorm`` does. Outside distributed training it is a plain batch norm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"batch norm expects [N, C, ...] input, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        count = all_reduce(torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device))
        mean = all_reduce(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = all_reduce(centred.square().sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * count / (count - 1).clamp(min=1), momentum)
        out = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every batch norm synchronised across processes: PyTorch's ``SyncBatchNorm`` on GPUs, ours elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SyncBatchNormCPU):
            synced = SyncBatchNormCPU(child.num_features, child.eps, child.momentum, child.affine,
                                      child.track_running_stats)
            synced.load_state_dict(child.state_dict())
            synced.train(child.training)
            setattr(model, name, synced)
        else:
            convert_sync_batchnorm(child, device)
    return model
