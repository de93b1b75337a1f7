"""The on-device data path (``spikeformers.data.device_frames``): the batches are exactly the
DataLoader path's (values, dtype, layout, labels) on the built-in DVS digits; counts are kept in
the smallest integer type that holds them; frames that are not counts, counts beyond int16 and
frames over the memory budget are refused with a message naming the reason.
"""

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from spikeformers.data import collate_time_major
from spikeformers.data.device_frames import DeviceFrames, DeviceFramesError, count_dtype
from spikeformers.data.registry import create_dataset
from spikeformers.engine.train import epoch_batches


class Frames(Dataset):
    """In-memory samples ``(frames [T, C, H, W] float32, label)``."""

    def __init__(self, frames: torch.Tensor, labels):
        self.frames, self.labels = frames, labels

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, index):
        return self.frames[index], self.labels[index]


def counts(n=10, high=4, seed=0):
    return torch.randint(0, high, (n, 3, 2, 5, 6), generator=torch.Generator().manual_seed(seed)).float()


@pytest.fixture(scope="module")
def digits():
    return create_dataset("dvs_digits", train=True, time_steps=4)


def test_batches_equal_the_dataloader_path_on_dvs_digits(digits):
    on_device = DeviceFrames.from_dataset(digits, "cpu", chunk_size=256)
    assert len(on_device) == len(digits)
    index_lists = epoch_batches(len(digits), 64, seed=3, epoch=2)
    loader = DataLoader(digits, batch_sampler=index_lists, collate_fn=collate_time_major)  # the training loop's
    seen = 0
    for (frames, labels), (expected, expected_labels) in zip(on_device.batches(index_lists), loader):
        expected = expected.float()  # what the training loop does to a loader batch
        assert frames.dtype == expected.dtype == torch.float32
        assert frames.shape == expected.shape and frames.stride() == expected.stride()
        assert torch.equal(frames, expected)
        assert labels.dtype == expected_labels.dtype and torch.equal(labels, expected_labels)
        seen += labels.numel()
    assert seen == len(digits)
    low = min(int(f.min()) for f, _ in DataLoader(digits, batch_size=512))
    high = max(int(f.max()) for f, _ in DataLoader(digits, batch_size=512))
    assert on_device.frames.dtype == count_dtype(low, high)
    first = index_lists[0]
    frames, labels = on_device.batch(first)
    assert torch.equal(frames, torch.stack([digits[i][0] for i in first], dim=1))
    assert labels.tolist() == [digits[i][1] for i in first]


@pytest.mark.parametrize("low, high, dtype", [(0, 0, torch.uint8), (0, 255, torch.uint8), (0, 256, torch.int16),
                                              (-1, 3, torch.int16), (-32768, 32767, torch.int16),
                                              (0, 32768, None), (-32769, 0, None)])
def test_smallest_count_type(low, high, dtype):
    assert count_dtype(low, high) == dtype


def test_a_count_over_255_widens_to_int16_after_earlier_chunks_were_staged():
    frames = counts(n=10)
    frames[8, 1, 0, 2, 3] = 300
    on_device = DeviceFrames.from_dataset(Frames(frames, list(range(10))), "cpu", chunk_size=3)
    assert on_device.frames.dtype == torch.int16
    batch, labels = on_device.batch(list(range(10)))
    assert torch.equal(batch, frames.transpose(0, 1)) and labels.tolist() == list(range(10))


def test_negative_counts_are_kept_as_int16():
    frames = counts() - 2
    on_device = DeviceFrames.from_dataset(Frames(frames, [0] * 10), "cpu")
    assert on_device.frames.dtype == torch.int16
    assert torch.equal(on_device.batch([4, 1])[0], frames[[4, 1]].transpose(0, 1))


@pytest.mark.parametrize("value", [0.5, float("inf"), float("nan")])
def test_frames_that_are_not_counts_are_refused_naming_the_sample(value):
    frames = counts()
    frames[7, 0, 1, 1, 1] = value
    with pytest.raises(DeviceFramesError, match=f"sample 7 of Frames holds {value!r}, not an integer count"):
        DeviceFrames.from_dataset(Frames(frames, [0] * 10), "cpu", chunk_size=4)


def test_counts_beyond_int16_are_refused():
    frames = counts()
    frames[2, 0, 0, 0, 0] = 40000
    with pytest.raises(DeviceFramesError, match=r"counts in 0\.\.40000, beyond int16"):
        DeviceFrames.from_dataset(Frames(frames, [0] * 10), "cpu")


def test_frames_over_the_memory_budget_are_refused():
    frames = counts()
    needed = frames.numel()  # bytes as uint8
    assert DeviceFrames.from_dataset(Frames(frames, [0] * 10), "cpu", memory_budget=needed).nbytes == needed
    with pytest.raises(DeviceFramesError, match="need 0 MiB as uint8 counts, over the memory budget"):
        DeviceFrames.from_dataset(Frames(frames, [0] * 10), "cpu", memory_budget=needed - 1)
    frames[9, 0, 0, 0, 0] = 1000  # int16 needs twice as much: refused when the wide count arrives
    with pytest.raises(DeviceFramesError, match="as int16 counts, over the memory budget"):
        DeviceFrames.from_dataset(Frames(frames, [0] * 10), "cpu", memory_budget=needed + 1)


def test_samples_that_are_not_sequences_are_refused():
    with pytest.raises(DeviceFramesError, match=r"yields frames of shape \(2, 5, 6\)"):
        DeviceFrames.from_dataset(Frames(counts()[:, 0], [0] * 10), "cpu")


def test_indices_outside_the_data_set_are_refused():
    on_device = DeviceFrames.from_dataset(Frames(counts(), [0] * 10), "cpu")
    with pytest.raises(IndexError, match="outside the 10 samples"):
        on_device.batch([0, 10])
    with pytest.raises(IndexError, match="outside the 10 samples"):
        next(on_device.batches([[1, 2], [-1]]))


def test_constructor_takes_integer_frames_only():
    with pytest.raises(DeviceFramesError, match="integer counts, got frames of torch.float32"):
        DeviceFrames(counts(), torch.zeros(10, dtype=torch.long))
    with pytest.raises(DeviceFramesError, match="10 samples of frames but labels of shape"):
        DeviceFrames(counts().to(torch.uint8), torch.zeros(9, dtype=torch.long))
