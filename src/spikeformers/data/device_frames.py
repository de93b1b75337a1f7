"""A whole event data set's frames on the training device, batched by index lists.

Event frames are small integer counts: CIFAR10-DVS at T=16, 128x128 is
10,000 x 16 x 2 x 128 x 128 = 5.2 GB as uint8, which fits a GPU's memory
many times over. ``DeviceFrames.from_dataset`` reads a data set once
(through a ``DataLoader``, so with its workers), stores the counts in the
smallest integer type that holds them (uint8 when every count is 0..255,
int16 when they lie in -32768..32767) as one ``[N, T, C, H, W]`` tensor on
the device, and refuses, with a message that says why, frames that are not
integer counts or that would not fit the memory budget. A batch is then one
gather ``frames[indices]`` and one conversion to float, with no per-sample
Python and no host-to-device copy of the frames:

    frames_on_device = DeviceFrames.from_dataset(train_set, device)
    for frames, labels in frames_on_device.batches(index_lists):  # e.g. engine.train.epoch_batches(...)
        ...  # frames [T, B, C, H, W] float32, labels [B] int64, both on the device

Each batch equals, value for value and in the same memory layout, what a
``DataLoader`` with ``batch_sampler=index_lists`` gives after ``.to(device)
.float()`` and the time-first transpose. Batched augmentation
(``spikeformers.data.augment``) then runs on the device as usual.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from .loader import time_major

# Integer types for counts, smallest first, with the range each holds.
COUNT_DTYPES = ((torch.uint8, 0, 255), (torch.int16, -32768, 32767))


class DeviceFramesError(ValueError):
    """The data set's frames cannot be kept on the device as counts (the message says why)."""


def count_dtype(low: int, high: int) -> torch.dtype | None:
    """The smallest integer type holding every value in ``low..high``, or None when none of ours does."""
    for dtype, smallest, largest in COUNT_DTYPES:
        if smallest <= low and high <= largest:
            return dtype
    return None


def default_budget(device: torch.device | str) -> int:
    """Half of the memory free now on ``device`` (a GPU's free memory, or the host's available RAM), in bytes."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as meminfo:
                for line in meminfo:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024 // 2
        except OSError:
            pass
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") // 2
    raise DeviceFramesError(f"no default memory budget for device {device}; pass memory_budget (bytes)")


def _mib(size: int) -> str:
    return f"{size / 2 ** 20:,.0f} MiB"


class DeviceFrames:
    """Integer frames ``[N, T, C, H, W]`` and labels ``[N]`` on one device; batches by index."""

    def __init__(self, frames: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype = torch.float32):
        if frames.dim() != 5:
            raise DeviceFramesError(f"DeviceFrames takes frames [N, T, C, H, W], got shape {tuple(frames.shape)}")
        if frames.is_floating_point() or frames.is_complex() or frames.dtype == torch.bool:
            raise DeviceFramesError(f"DeviceFrames keeps integer counts, got frames of {frames.dtype}")
        if labels.shape != frames.shape[:1]:
            raise DeviceFramesError(f"{frames.shape[0]} samples of frames but labels of shape {tuple(labels.shape)}")
        if labels.device != frames.device:
            raise DeviceFramesError(f"frames on {frames.device} but labels on {labels.device}")
        if not dtype.is_floating_point:
            raise DeviceFramesError(f"batches are floating point; dtype {dtype} is not")
        self.frames = frames
        self.labels = labels.long()
        self.dtype = dtype

    @classmethod
    def from_dataset(cls, dataset: Dataset, device: torch.device | str, memory_budget: int | None = None,
                     workers: int = 0, chunk_size: int = 64, dtype: torch.dtype = torch.float32) -> "DeviceFrames":
        """Read every ``(frames [T, C, H, W], label)`` of ``dataset`` once and keep them on ``device``.

        ``memory_budget`` (bytes, default ``default_budget(device)``) bounds
        the frames tensor; the smallest integer type that holds the counts is
        chosen as the data arrive. Raises ``DeviceFramesError`` when a sample
        is not integer counts, when counts exceed int16, or when the frames
        would not fit the budget.
        """
        device = torch.device(device)
        budget = default_budget(device) if memory_budget is None else int(memory_budget)
        total = len(dataset)
        if total == 0:
            raise DeviceFramesError(f"{type(dataset).__name__} is empty")
        staged: torch.Tensor | None = None  # on the host, then moved once
        labels = torch.empty(total, dtype=torch.long)
        low = high = 0
        start = 0
        for frames, targets in DataLoader(dataset, batch_size=chunk_size, num_workers=workers):
            frames = torch.as_tensor(frames)
            if staged is None:
                if frames.dim() != 5:
                    raise DeviceFramesError(f"{type(dataset).__name__} yields frames of shape "
                                            f"{tuple(frames.shape[1:])}; DeviceFrames takes [T, C, H, W] counts")
                staged = cls._allocate(dataset, (total, *frames.shape[1:]), torch.uint8, budget)
            elif frames.shape[1:] != staged.shape[1:]:
                raise DeviceFramesError(f"sample {start} of {type(dataset).__name__} has frames of shape "
                                        f"{tuple(frames.shape[1:])}, the first had {tuple(staged.shape[1:])}")
            if frames.is_floating_point():
                not_counts = ~torch.isfinite(frames) | (frames != frames.round())
                if not_counts.any():
                    bad = int(not_counts.flatten(1).any(1).nonzero()[0])
                    value = frames[bad][not_counts[bad]][0].item()
                    raise DeviceFramesError(f"sample {start + bad} of {type(dataset).__name__} holds {value!r}, "
                                            f"not an integer count: keep these frames on the DataLoader path")
            low, high = min(low, int(frames.min())), max(high, int(frames.max()))
            needed = count_dtype(low, high)
            if needed is None:
                raise DeviceFramesError(f"{type(dataset).__name__} has counts in {low}..{high}, beyond int16; "
                                        f"keep these frames on the DataLoader path")
            if needed != staged.dtype:  # a count beyond uint8: widen what is staged so far
                wider = cls._allocate(dataset, staged.shape, needed, budget)
                wider[:start] = staged[:start]
                staged = wider
            staged[start:start + len(frames)] = frames.to(staged.dtype)
            labels[start:start + len(frames)] = torch.as_tensor(targets)
            start += len(frames)
        if start != total:
            raise DeviceFramesError(f"{type(dataset).__name__} says it has {total} samples but yielded {start}")
        return cls(staged.to(device), labels.to(device), dtype)

    @staticmethod
    def _allocate(dataset: Dataset, shape: Sequence[int], count_type: torch.dtype, budget: int) -> torch.Tensor:
        size = torch.Size(shape).numel() * torch.empty((), dtype=count_type).element_size()
        if size > budget:
            raise DeviceFramesError(
                f"the frames of {type(dataset).__name__} ({shape[0]} samples of {list(shape[1:])}) need "
                f"{_mib(size)} as {str(count_type).removeprefix('torch.')} counts, over the memory budget of "
                f"{_mib(budget)}; keep them on the DataLoader path or give a larger memory_budget"
            )
        return torch.empty(shape, dtype=count_type)

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def device(self) -> torch.device:
        return self.frames.device

    @property
    def nbytes(self) -> int:
        return self.frames.numel() * self.frames.element_size()

    def batch(self, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``[T, B, C, H, W]`` (``self.dtype``) and labels ``[B]`` of the samples ``indices``."""
        indices = torch.as_tensor(indices, dtype=torch.long, device=self.device)
        if indices.dim() != 1:
            raise ValueError(f"a batch's indices must be one list, got shape {tuple(indices.shape)}")
        if len(indices) and not (0 <= int(indices.min()) and int(indices.max()) < len(self)):
            raise IndexError(f"batch indices {int(indices.min())}..{int(indices.max())} outside the "
                             f"{len(self)} samples")
        return self._gather(indices)

    def batches(self, index_lists: Iterable[Sequence[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of an epoch, one per index list (``engine.train.epoch_batches``, or a process's
        shard of them); all the indices go to the device in one copy."""
        index_lists = [list(indices) for indices in index_lists]
        flat = torch.tensor([i for indices in index_lists for i in indices], dtype=torch.long)
        if len(flat) and not (0 <= int(flat.min()) and int(flat.max()) < len(self)):
            raise IndexError(f"batch indices {int(flat.min())}..{int(flat.max())} outside the {len(self)} samples")
        flat = flat.to(self.device)
        start = 0
        for indices in index_lists:
            chunk = flat[start:start + len(indices)]
            start += len(indices)
            yield self._gather(chunk)

    def _gather(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # index_select on the [N, sample] view: one contiguous copy per sample (far faster on the CPU
        # than advanced indexing of the 5-d tensor); then time first and contiguous, the layout of a
        # loader's collate_time_major batch, so both paths give the same results to the bit
        samples = self.frames.view(len(self), -1).index_select(0, indices)
        frames = time_major(samples.view(len(indices), *self.frames.shape[1:]))
        return frames.to(self.dtype).contiguous(), self.labels.index_select(0, indices)

    def __repr__(self) -> str:
        N, T, C, H, W = self.frames.shape
        return (f"DeviceFrames({N} samples of [T={T}, C={C}, H={H}, W={W}] as "
                f"{str(self.frames.dtype).removeprefix('torch.')} on {self.device}, {_mib(self.nbytes)})")
