"""CIFAR-10 / CIFAR-100 from archives written here in the official Python-pickle
layout (dicts with byte-string keys b'data' uint8 [N, 3072], b'labels' or
b'fine_labels'; batches.meta / meta with the class names), folder and .tar.gz;
ImageNet from a tiny class-per-folder tree of PNG images (where Pillow, the
optional image-decoding extra, is installed)."""

import pickle
import sys
import tarfile

import numpy as np
import pytest
import torch

from spikeformers.data.static.cifar import CIFAR10
from spikeformers.data.missing import DatasetNotFoundError
from spikeformers.data.static.imagenet import ImageNet, center_box, random_resized_box
from spikeformers.data.registry import create_dataset

CIFAR10_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def cifar_batch(seed, count, label_key, classes):
    rng = np.random.default_rng(seed)
    return {b"batch_label": f"batch {seed}".encode(), b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            label_key: rng.integers(0, classes, count).tolist(),
            b"filenames": [f"image_{seed}_{i}.png".encode() for i in range(count)]}


def write_cifar10(root, per_batch=3):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": cifar_batch(i, per_batch, b"labels", 10) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(9, 4, b"labels", 10)
    batches["batches.meta"] = {b"label_names": CIFAR10_NAMES, b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    for name, content in batches.items():
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))
    return batches


def write_cifar100(root):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    batches = {"train": cifar_batch(1, 6, b"fine_labels", 100), "test": cifar_batch(2, 5, b"fine_labels", 100),
               "meta": {b"fine_label_names": [f"class{i}".encode() for i in range(100)],
                        b"coarse_label_names": [f"super{i}".encode() for i in range(20)]}}
    for part in ("train", "test"):
        batches[part][b"coarse_labels"] = [0] * len(batches[part][b"fine_labels"])
    for name, content in batches.items():
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))
    return batches


def test_cifar10_folder_images_labels_normalisation(tmp_path):
    batches = write_cifar10(tmp_path)
    train, test = CIFAR10(tmp_path, train=True, time_steps=4), CIFAR10(tmp_path, train=False, time_steps=4)
    assert len(train) == 15 and len(test) == 4
    assert train.classes[0] == "airplane" and train.num_classes == 10 and train.sensor_size == (32, 32)
    assert train.targets == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    # sample 4 is the second image of data_batch_2: channel-major, row-major 32x32
    raw = batches["data_batch_2"][b"data"][1]
    frames, label = train[4]
    assert frames.shape == (4, 3, 32, 32) and frames.dtype == torch.float32
    assert label == batches["data_batch_2"][b"labels"][1]
    red_pixel = (raw[0 * 1024 + 5 * 32 + 7] / 255 - 0.4914) / 0.2470  # red, row 5, column 7
    blue_pixel = (raw[2 * 1024 + 31 * 32 + 0] / 255 - 0.4465) / 0.2616
    assert frames[0, 0, 5, 7].item() == pytest.approx(red_pixel, abs=1e-6)
    assert frames[3, 2, 31, 0].item() == pytest.approx(blue_pixel, abs=1e-6)
    assert all(torch.equal(frames[t], frames[0]) for t in range(4))  # direct encoding: the same image each step
    batch = torch.utils.data.default_collate([train[0], train[1]])[0]
    assert batch.shape == (2, 4, 3, 32, 32)  # what engine/train.py batches, then moves time first


def test_cifar10_from_the_tar_gz_and_other_statistics(tmp_path):
    write_cifar10(tmp_path / "extracted")
    archive = tmp_path / "data" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "extracted" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    from_tar = CIFAR10(tmp_path / "data", train=False, time_steps=2, mean=(0, 0, 0), std=(1, 1, 1))
    from_folder = CIFAR10(tmp_path / "extracted", train=False, time_steps=2, mean=(0, 0, 0), std=(1, 1, 1))
    assert from_tar.source == str(archive)
    for index in range(4):
        assert torch.equal(from_tar[index][0], from_folder[index][0])
        assert torch.equal(from_tar[index][0][0] * 255, torch.from_numpy(from_folder.image(index)).float())


def test_cifar100_fine_labels(tmp_path):
    batches = write_cifar100(tmp_path)
    data = create_dataset("cifar100", train=False, time_steps=3, root=str(tmp_path))
    assert data.num_classes == 100 and data.classes[7] == "class7" and data.in_channels == 3
    assert data.targets == batches["test"][b"fine_labels"]
    frames, _ = data[2]
    expected = (batches["test"][b"data"][2].reshape(3, 32, 32) / 255 - np.array([0.5071, 0.4865, 0.4409])[:, None, None]) \
        / np.array([0.2673, 0.2564, 0.2762])[:, None, None]
    np.testing.assert_allclose(frames[1].numpy(), expected, atol=1e-5)


def test_cifar_missing_broken_and_unsafe_archives(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        CIFAR10(tmp_path, train=True)
    message = str(info.value)
    assert "data_batch_1" in message and "cifar-10-python.tar.gz" in message and "cs.toronto.edu/~kriz" in message
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3"):
        CIFAR10(tmp_path, train=True)
    CIFAR10(tmp_path, train=False)  # the test part is complete
    test_batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    test_batch.write_bytes(test_batch.read_bytes()[:100])
    with pytest.raises(ValueError, match="test_batch is not a readable CIFAR pickle"):
        CIFAR10(tmp_path, train=False)

    class Payload:  # a pickle that would call os.system when loaded naively
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    test_batch.write_bytes(pickle.dumps({b"data": Payload()}))
    with pytest.raises(ValueError, match="refusing to load .*system"):
        CIFAR10(tmp_path, train=False)
    test_batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(ValueError, match=r"b'data' must be uint8 \[N, 3072\]"):
        CIFAR10(tmp_path, train=False)


# --------------------------------------------------------------------------- ImageNet

def png(path, array):
    Image = pytest.importorskip("PIL.Image", reason="the imagenet data set decodes with Pillow, an optional extra")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), "RGB").save(path)


def halves(height, width):
    """Left half red, right half blue."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2, 0] = 255
    image[:, width // 2:, 2] = 255
    return image


def make_imagenet(root):
    for c, wnid in enumerate(("n01440764", "n01443537", "n01484850")):
        for i in range(2):
            colour = np.full((24 + 8 * i, 40, 3), (60 * c, 100, 200 - 50 * i), np.uint8)
            png(root / "train" / wnid / f"{wnid}_{i}.PNG", colour)
        png(root / "val" / wnid / f"ILSVRC2012_val_{c:08d}.png", np.full((30, 30, 3), (60 * c, 100, 200), np.uint8))
    png(root / "val" / "n01443537" / "ILSVRC2012_val_00000099.png", halves(32, 64))
    return root


def imagenet(root, train, **options):
    options.setdefault("expected_classes", None)
    options.setdefault("image_size", 16)
    return ImageNet(root, train=train, time_steps=2, **options)


def test_imagenet_classes_labels_and_normalised_constant_images(tmp_path):
    root = make_imagenet(tmp_path / "imagenet")
    train, val = imagenet(root, True), imagenet(root, False)
    assert train.classes == ("n01440764", "n01443537", "n01484850") == val.classes
    assert len(train) == 6 and train.targets == [0, 0, 1, 1, 2, 2]
    assert len(val) == 4 and val.targets == [0, 1, 1, 2]
    frames, label = val[3]
    assert label == 2 and frames.shape == (2, 3, 16, 16) and train.sensor_size == (16, 16)
    expected = (torch.tensor([120.0, 100.0, 200.0]) / 255 - torch.tensor([0.485, 0.456, 0.406])) \
        / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(frames, expected.view(1, 3, 1, 1).expand(2, 3, 16, 16), atol=1e-6)
    frames, _ = train[5]
    assert frames.shape == (2, 3, 16, 16) and torch.equal(frames[0], frames[1])


def test_imagenet_eval_resize_and_center_crop_geometry(tmp_path):
    assert center_box(500, 375, 224, 0.875) == ((341, 256), (58, 16, 282, 240))  # the standard 256 -> 224
    assert center_box(375, 500, 224, 1.0) == ((224, 298), (0, 37, 224, 261))  # Spikformer's crop_pct 1.0
    root = make_imagenet(tmp_path / "imagenet")
    # a 64x32 image, red | blue: resize to 32 high keeps it (64x32), the centre 16 columns are 24..40
    for crop_pct, red_columns in ((0.5, 8), (1.0, 8)):
        val = imagenet(root, False, crop_pct=crop_pct, interpolation="nearest")
        image = val.image(2)
        assert image.shape == (3, 16, 16)
        assert (image[0, :, :red_columns] == 255).all() and (image[2, :, :red_columns] == 0).all()
        assert (image[2, :, red_columns:] == 255).all() and (image[0, :, red_columns:] == 0).all()


def test_imagenet_train_random_resized_crop_and_flip(tmp_path):
    pytest.importorskip("PIL", reason="the imagenet data set decodes with Pillow, an optional extra")
    torch.manual_seed(0)
    for _ in range(50):
        left, top, w, h = random_resized_box(500, 375, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= left and left + w <= 500 and 0 <= top and top + h <= 375
        assert 0.08 * 500 * 375 * 0.9 <= w * h <= 500 * 375 and 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
    assert random_resized_box(100, 10, (0.9, 1.0), (1.0, 1.0)) == (45, 0, 10, 10)  # fallback: centred square
    root = tmp_path / "flip"
    png(root / "train" / "n0" / "a.png", halves(32, 64))
    data = ImageNet(root, train=True, time_steps=1, image_size=8, scale=(1.0, 1.0), ratio=(2.0, 2.0),
                    interpolation="nearest", expected_classes=None)
    seen = set()
    for epoch in range(40):  # a sample's draws change with the epoch (and are fixed within one)
        data.set_epoch(epoch)
        seen.add(tuple(data.image(0)[0, 0].tolist()))
    assert seen == {(255,) * 4 + (0,) * 4, (0,) * 4 + (255,) * 4}  # the whole image, flipped or not


def test_imagenet_missing_and_misarranged(tmp_path, monkeypatch):
    pytest.importorskip("PIL", reason="the imagenet data set decodes with Pillow, an optional extra")
    with pytest.raises(DatasetNotFoundError) as info:
        imagenet(tmp_path, True)
    assert "train/<wnid>/*.JPEG" in str(info.value) and "image-net.org" in str(info.value)
    root = make_imagenet(tmp_path / "imagenet")
    png(root / "val" / "n09999999" / "x.png", np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="n09999999"):
        imagenet(root, False)
    flat = tmp_path / "flat"
    png(flat / "train" / "n0" / "a.png", np.zeros((4, 4, 3)))
    png(flat / "val" / "ILSVRC2012_val_00000001.JPEG", np.zeros((4, 4, 3)))
    with pytest.raises(DatasetNotFoundError, match="holds 1 images directly: sort them"):
        imagenet(flat, False)
    (root / "train" / "n01440764" / "n01440764_0.PNG").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot decode .*n01440764_0.PNG"):
        imagenet(root, True)[0]
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    with pytest.raises(ImportError, match="pip install pillow"):
        imagenet(root, False)


def test_training_draws_are_a_function_of_seed_epoch_and_index_so_resume_repeats_them(tmp_path):
    write_cifar10(tmp_path)
    data = CIFAR10(tmp_path / "cifar-10-batches-py", train=True, time_steps=1, randaugment="rand-m9-n2-mstd0.5-inc1")
    data.set_epoch(3, seed=7)
    first = [data[i][0] for i in range(len(data))]
    torch.manual_seed(123)  # the global generator plays no part
    assert all(torch.equal(data[i][0], first[i]) for i in reversed(range(len(data))))
    data.set_epoch(4, seed=7)
    assert any(not torch.equal(data[i][0], first[i]) for i in range(len(data))), "a new epoch draws anew"
    root = tmp_path / "imagenet"
    make_imagenet(root)
    train = imagenet(root, True)
    train.set_epoch(2, seed=1)
    crops = [train[i][0] for i in range(len(train))]
    torch.manual_seed(5)
    assert all(torch.equal(train[i][0], crops[i]) for i in range(len(train)))
