"""Batched augmentation: what each op does to a batch, checked pixel by pixel."""

import pytest
import torch

from spikeformers.data.augment import random_translate


def test_translate_moves_every_frame_of_a_sample_by_the_same_whole_pixels():
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 16, 2, 9, 11)  # [T, B, C, H, W]
    out = random_translate(frames, 2, generator=torch.Generator().manual_seed(0))
    shifts = torch.randint(-2, 3, (2, 16), generator=g)  # the draws random_translate makes
    for b in range(16):
        dy, dx = shifts[:, b].tolist()
        expected = torch.zeros_like(frames[:, b])
        src = frames[:, b, :, max(0, -dy):9 - max(0, dy), max(0, -dx):11 - max(0, dx)]
        expected[..., max(0, dy):max(0, dy) + src.shape[-2], max(0, dx):max(0, dx) + src.shape[-1]] = src
        assert torch.equal(out[:, b], expected), f"sample {b} shifted by {(dy, dx)}"
    assert shifts.abs().max() == 2 and (shifts != 0).any()


def test_translate_by_zero_is_the_identity_and_bad_input_is_named():
    frames = torch.rand(2, 3, 2, 5, 5)
    assert random_translate(frames, 0) is frames
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        random_translate(frames[0], 1)
    with pytest.raises(ValueError, match="max_shift"):
        random_translate(frames, -1)
