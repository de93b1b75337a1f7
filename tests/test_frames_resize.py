"""Frame resizing as the recipes use it: bilinear with align_corners=True
(BrainCog, TIM) and the k x k block average (the Spike-driven Transformer's
128 -> 64), checked on hand-computed values, and as a data set option."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeformers.data.datasets.nmnist import NMNIST
from spikeformers.data.resize import check_resize, resize_frames


def test_bilinear_align_corners_known_values():
    frames = torch.tensor([[0.0, 3.0], [6.0, 9.0]])
    expected = torch.tensor([[0.0, 1.5, 3.0], [3.0, 4.5, 6.0], [6.0, 7.5, 9.0]])
    assert torch.equal(resize_frames(frames, (3, 3), "bilinear"), expected)
    # downscaling keeps the corner pixels exactly (align_corners=True samples them)
    grid = torch.arange(9.0).reshape(3, 3)
    assert torch.equal(resize_frames(grid, (2, 2), "bilinear"), torch.tensor([[0.0, 2.0], [6.0, 8.0]]))


def reference_bilinear(image, out_height, out_width):
    """align_corners=True written from its definition: output i samples input i * (in - 1) / (out - 1)."""
    in_height, in_width = image.shape
    result = np.zeros((out_height, out_width))
    for i in range(out_height):
        y = i * (in_height - 1) / (out_height - 1)
        y0 = min(int(np.floor(y)), in_height - 2)
        for j in range(out_width):
            x = j * (in_width - 1) / (out_width - 1)
            x0 = min(int(np.floor(x)), in_width - 2)
            dy, dx = y - y0, x - x0
            result[i, j] = ((1 - dy) * (1 - dx) * image[y0, x0] + (1 - dy) * dx * image[y0, x0 + 1]
                            + dy * (1 - dx) * image[y0 + 1, x0] + dy * dx * image[y0 + 1, x0 + 1])
    return result


def test_bilinear_matches_the_definition_on_event_counts():
    counts = np.random.default_rng(0).poisson(2.0, size=(3, 2, 34, 34)).astype(np.uint8)
    resized = resize_frames(counts, (12, 16), "bilinear")
    assert resized.dtype == torch.float32 and resized.shape == (3, 2, 12, 16)
    for t in range(3):
        for p in range(2):
            np.testing.assert_allclose(resized[t, p].numpy(), reference_bilinear(counts[t, p].astype(float), 12, 16),
                                       rtol=0, atol=1e-4)


def test_avg_is_the_block_mean():
    counts = np.array([[1, 3, 0, 0],
                       [5, 7, 0, 4],
                       [2, 2, 9, 0],
                       [2, 2, 0, 0]], dtype=np.uint8)
    expected = torch.tensor([[4.0, 1.0], [2.0, 2.25]])
    assert torch.equal(resize_frames(counts, (2, 2), "avg"), expected)
    assert torch.equal(resize_frames(counts, (1, 2), "avg"), torch.tensor([[3.0, 1.625]]))  # 4x2 blocks


def test_avg_128_to_64_is_what_old_torchvision_bilinear_gave():
    """The Spike-driven Transformer resized with bilinear, no antialias (torchvision <= 0.14):
    at a factor of 2 that is exactly the 2x2 mean, in multiples of 0.25."""
    counts = torch.from_numpy(np.random.default_rng(1).poisson(1.5, size=(2, 2, 128, 128)).astype(np.float32))
    averaged = resize_frames(counts, (64, 64), "avg")
    legacy = F.interpolate(counts, size=(64, 64), mode="bilinear", align_corners=False, antialias=False)
    assert torch.equal(averaged, legacy)
    assert torch.equal(averaged * 4, torch.round(averaged * 4))
    assert averaged.sum() * 4 == counts.sum()  # every event kept


def test_resize_arguments_checked():
    assert check_resize(None, "avg", (128, 128)) is None
    assert check_resize(64, "avg", (128, 128)) == (64, 64)
    assert check_resize((128, 128), "bilinear", (128, 128)) is None  # nothing to do
    with pytest.raises(ValueError, match="must divide the frame size"):
        check_resize((48, 48), "avg", (128, 128))
    with pytest.raises(ValueError, match="unknown resize_mode 'nearest'"):
        check_resize(64, "nearest", (128, 128))
    with pytest.raises(ValueError, match=r"resize must be \(H, W\)"):
        check_resize("64", "bilinear", (128, 128))
    with pytest.raises(ValueError, match="positive"):
        check_resize((0, 4), "bilinear", (128, 128))


def nmnist_tree(root):
    """Two test recordings per digit in the N-MNIST binary format (5 bytes an event)."""
    rng = np.random.default_rng(7)
    for digit in range(10):
        folder = root / "Test" / str(digit)
        folder.mkdir(parents=True)
        for i in range(2):
            count = 120
            x, y, p = rng.integers(0, 34, count), rng.integers(0, 34, count), rng.integers(0, 2, count)
            t = np.sort(rng.integers(0, 100_000, count))
            rows = np.stack([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], axis=1)
            (folder / f"{i:05d}.bin").write_bytes(rows.astype(np.uint8).tobytes())
    return root


def test_dataset_option_resizes_served_frames_and_shares_the_cache(tmp_path):
    root = nmnist_tree(tmp_path / "nmnist")
    options = dict(train=False, time_steps=3, workers=0, expected_recordings=None)
    plain = NMNIST(root, **options)
    averaged = NMNIST(root, resize=17, resize_mode="avg", **options)
    bilinear = NMNIST(root, resize=(16, 20), **options)
    assert plain.sensor_size == (34, 34)
    assert averaged.sensor_size == (17, 17) and averaged.recording_size == (34, 34)
    assert bilinear.sensor_size == (16, 20) and bilinear.resize_mode == "bilinear"
    # the cache holds the exact counts at the sensor's size, whatever the resize
    assert averaged.cache.directory == plain.cache.directory
    for index in (0, 7, 19):
        counts, label = plain[index]
        frames, same_label = averaged[index]
        assert label == same_label and frames.shape == (3, 2, 17, 17)
        assert torch.equal(frames, F.avg_pool2d(counts, 2))
        frames = bilinear[index][0]
        assert torch.allclose(frames, F.interpolate(counts, size=(16, 20), mode="bilinear", align_corners=True))
    with pytest.raises(ValueError, match="must divide"):
        NMNIST(root, resize=(16, 16), resize_mode="avg", **options)
