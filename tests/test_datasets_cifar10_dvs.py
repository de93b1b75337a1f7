"""CIFAR10-DVS: splits, frames, the frame cache and the error messages, on a
small fake tree of real AEDAT 2.0 bytes (written here from the layout in
shared/DATA.md: '#' header lines, then big-endian uint32 address and
timestamp; DVS128 address bits p = bit 0, x = bits 1..7, y = bits 8..14)."""

import errno
import io
import math
import os
import random
import re
import shutil
import subprocess

import numpy as np
import pytest

from spikeformers.atomic import DiskFullError
from spikeformers.data.datasets import frame_cache
from spikeformers.data.datasets.cifar10_dvs import CIFAR10DVS, CLASSES
from spikeformers.data.datasets.layouts import frames_folder_name
from spikeformers.data.missing import DatasetNotFoundError
from spikeformers.data.frames import events_to_frames
from spikeformers.data.readers import EventFileError, read_events
from spikeformers.data.registry import create_dataset, list_datasets
from spikeformers.data.datasets.splits import numeric_order, split_class, split_folders

HEADER = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"
PER_CLASS = 12  # names _0.._11: lexicographic order 0, 1, 10, 11, 2, ..., 9


def aedat2_recording(seed, count=300):
    """AEDAT 2.0 bytes of ``count`` random DVS128 events (a few external ones)."""
    rng = np.random.default_rng(seed)
    x_raw = rng.integers(0, 128, count)
    y_raw = rng.integers(0, 128, count)
    p_raw = rng.integers(0, 2, count)
    external = (rng.random(count) < 0.05).astype(np.int64)
    address = (external << 15) | (y_raw << 8) | (x_raw << 1) | p_raw
    # hot pixel: many events at one address, so counts exceed a few per pixel
    address[: count // 3] = (5 << 8) | (7 << 1) | 1
    t = 1000 + np.cumsum(rng.integers(0, 40, count))
    body = np.stack([address, t], axis=1).astype(">u4").tobytes()
    return HEADER + body


def make_tree(root, per_class=PER_CLASS, shuffle_seed=None, classes=CLASSES):
    """``root/<class>/cifar10_<class>_<i>.aedat``; files created in shuffled order when asked."""
    jobs = [(name, i) for name in classes for i in range(per_class)]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(jobs)
    for name, i in jobs:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"cifar10_{name}_{i}.aedat").write_bytes(aedat2_recording(seed=CLASSES.index(name) * 1000 + i))
    return root


def dataset(root, train=True, time_steps=4, **options):
    options.setdefault("workers", 0)
    options.setdefault("expected_per_class", None)
    return CIFAR10DVS(root, train=train, time_steps=time_steps, **options)


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "cifar10dvs")


# --------------------------------------------------------------------------- splits

def test_sj_split_lengths_labels_and_lexicographic_rule(tree):
    train, test = dataset(tree, True), dataset(tree, False)
    per_train = math.ceil(0.9 * PER_CLASS)  # 11
    assert len(train) == 10 * per_train and len(test) == 10 * (PER_CLASS - per_train)
    assert train.targets == [label for label in range(10) for _ in range(per_train)]
    assert test.targets == list(range(10))
    # lexicographic order 0, 1, 10, 11, 2, ..., 9: the last one, _9, is the test file
    assert test.split_files() == [f"{name}/cifar10_{name}_9.aedat" for name in CLASSES]
    assert train.split_files()[:4] == [f"airplane/cifar10_airplane_{i}.aedat" for i in (0, 1, 10, 11)]
    for frames, label in (train[0], test[-1]):
        assert frames.dtype.is_floating_point and tuple(frames.shape) == (4, 2, 128, 128)
    assert test[-1][1] == 9
    assert train.num_classes == 10 and train.in_channels == 2 and train.sensor_size == (128, 128)
    assert train.classes == CLASSES


def test_split_rules_on_a_full_class():
    names = [f"cifar10_cat_{i}.aedat" for i in range(1000)]
    random.Random(0).shuffle(names)
    sj_test = split_class(names, "sj", False)
    assert len(sj_test) == 100 and len(split_class(names, "sj", True)) == 900
    # lexicographic: ..._0, _1, _10, _100, _101, ...; the last 100 names are _9xx-ish ones
    assert split_class(names, "sj", True)[:4] == [f"cifar10_cat_{i}.aedat" for i in (0, 1, 10, 100)]
    assert sj_test == sorted(names)[900:]
    assert "cifar10_cat_99.aedat" in sj_test and "cifar10_cat_899.aedat" not in sj_test
    braincog_train = split_class(names, "braincog", True)
    assert braincog_train == [f"cifar10_cat_{i}.aedat" for i in range(900)]
    assert split_class(names, "braincog", False) == [f"cifar10_cat_{i}.aedat" for i in range(900, 1000)]
    assert split_class(names, "tebn", False) == [f"cifar10_cat_{i}.aedat" for i in range(100)]
    assert len(split_class(names, "tebn", True)) == 900
    assert numeric_order(["a_10", "a_2", "a_1"]) == ["a_1", "a_2", "a_10"]


def test_random_split_is_seeded_disjoint_and_order_free():
    files = {name: [f"cifar10_{name}_{i}.aedat" for i in range(20)] for name in CLASSES}
    shuffled = {name: random.Random(1).sample(names, len(names)) for name, names in files.items()}
    train = split_folders(files, CLASSES, "random", True, seed=3)
    test = split_folders(files, CLASSES, "random", False, seed=3)
    assert train == split_folders(shuffled, CLASSES, "random", True, seed=3)
    assert test == split_folders(shuffled, CLASSES, "random", False, seed=3)
    assert not set(train) & set(test) and len(train) + len(test) == 200 and len(train) == 180
    assert train != split_folders(files, CLASSES, "random", True, seed=4)
    assert train != split_folders(files, CLASSES, "sj", True)


def test_splits_do_not_depend_on_file_creation_order(tmp_path):
    first = make_tree(tmp_path / "a")
    second = make_tree(tmp_path / "b", shuffle_seed=7)
    for split, extra in (("sj", {}), ("random", {"seed": 1}), ("braincog", {"braincog_train": 9}),
                         ("tebn", {"tebn_test": 2})):
        for train in (True, False):
            a = dataset(first, train, split=split, cache_dir=False, **extra)
            b = dataset(second, train, split=split, cache_dir=False, **extra)
            assert a.split_files() == b.split_files() and a.targets == b.targets


def test_braincog_and_tebn_splits_on_the_data_set(tree):
    train = dataset(tree, True, split="braincog", braincog_train=9, cache_dir=False)
    test = dataset(tree, False, split="braincog", braincog_train=9, cache_dir=False)
    assert len(train) == 90 and len(test) == 30
    assert test.split_files()[:3] == [f"airplane/cifar10_airplane_{i}.aedat" for i in (9, 10, 11)]
    tebn_test = dataset(tree, False, split="tebn", tebn_test=2, cache_dir=False)
    assert tebn_test.split_files()[:2] == ["airplane/cifar10_airplane_0.aedat", "airplane/cifar10_airplane_1.aedat"]
    with pytest.raises(ValueError, match="empty"):
        dataset(tree, False, split="braincog", cache_dir=False)  # 900 train of 12: no test files


def test_write_split_files(tree, tmp_path):
    test = dataset(tree, False, cache_dir=False)
    path = test.write_split_files(tmp_path / "run")
    lines = path.read_text().splitlines()
    assert path.name == "cifar10_dvs_test_files.txt" and lines[0].startswith("# cifar10_dvs split=sj test")
    assert lines[1:] == test.split_files()


# --------------------------------------------------------------------------- frames and cache

@pytest.mark.parametrize("split_by", ["number", "time"])
def test_frames_equal_events_to_frames_of_the_read_events(tree, split_by):
    test = dataset(tree, False, time_steps=5, split_by=split_by)
    for index in (0, 4, 9):
        path = test.samples[index][2]
        events = read_events(path).events
        expected = events_to_frames(events, 5, (128, 128), split_by=split_by)
        frames, label = test[index]
        assert np.array_equal(frames.numpy(), expected.astype(np.float32))
        assert expected.max() > 50  # the hot pixel: a real count, not 0/1
        assert np.array_equal(test.events(index), events)
    raw = dataset(tree, False, time_steps=5, split_by=split_by, orientation="raw")
    raw_events = read_events(raw.samples[0][2], orientation="raw").events
    assert np.array_equal(raw[0][0].numpy(), events_to_frames(raw_events, 5, (128, 128), split_by).astype(np.float32))


def cache_files(root):
    return sorted(p for p in (root / "spikeformers_frames").rglob("*.npz"))


def test_cache_is_written_compact_and_reused_without_reading_events(tree, monkeypatch):
    first = dataset(tree, False)
    files = cache_files(tree)
    assert len(files) == len(first) == 10
    assert all(str(f).startswith(first.cache.directory) for f in files)
    assert (tree / "spikeformers_frames" / os.path.basename(first.cache.directory) / "cache.json").exists()
    with np.load(files[0]) as archive:
        assert archive["frames"].dtype == np.uint8 and archive["frames"].shape == (4, 2, 128, 128)
    expected = [first[i][0] for i in range(len(first))]

    # Destroy the recordings and forbid reading: the second run must read frames only.
    for name in CLASSES:
        for path in (tree / name).iterdir():
            path.write_bytes(b"garbage")

    def no_events(*args, **kwargs):
        raise AssertionError("events were read although frames are cached")

    monkeypatch.setattr("spikeformers.data.datasets.framing.read_events", no_events)
    second = dataset(tree, False)
    assert len(second) == len(expected)
    for i, frames in enumerate(expected):
        assert np.array_equal(second[i][0].numpy(), frames.numpy())
    assert cache_files(tree) == files


def test_cache_is_keyed_by_every_frame_parameter(tree):
    base = dataset(tree, False)
    others = [dataset(tree, False, time_steps=8), dataset(tree, False, split_by="time"),
              dataset(tree, False, orientation="raw")]
    directories = {base.cache.directory} | {other.cache.directory for other in others}
    assert len(directories) == 4
    assert "_T8_" in others[0].cache.directory
    assert others[0][0][0].shape[0] == 8
    assert len(cache_files(tree)) == 40
    # the train part shares the key folder with the test part
    assert dataset(tree, True).cache.directory == base.cache.directory


def test_half_written_cache_file_is_ignored_and_rebuilt(tree, monkeypatch):
    test = dataset(tree, False)
    target = test.cache.path(test._relatives[3])
    expected = test[3][0].numpy()
    os.remove(target)
    # what a crash leaves: a temporary file beside the final name
    temporary = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".abc123.tmp")
    with open(temporary, "wb") as handle:
        handle.write(b"PK\x03\x04 half a zip")
    again = dataset(tree, False)
    assert os.path.exists(target)
    assert np.array_equal(again[3][0].numpy(), expected)

    # a write that fails midway leaves no final file behind
    os.remove(target)

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(frame_cache.np, "savez_compressed", crash)
    with pytest.raises(OSError, match="disk full"):
        dataset(tree, False)
    assert not os.path.exists(target)
    monkeypatch.undo()
    assert np.array_equal(dataset(tree, False)[3][0].numpy(), expected)


def test_parallel_build_matches_serial(tree, tmp_path):
    serial = dataset(tree, False, cache_dir=tmp_path / "serial")
    parallel = dataset(tree, False, cache_dir=tmp_path / "parallel", workers=2)
    for i in range(len(serial)):
        assert np.array_equal(serial[i][0].numpy(), parallel[i][0].numpy())
    assert len(list((tmp_path / "parallel").rglob("*.npz"))) == 10


def test_compact_counts_never_wraps():
    assert frame_cache.compact_counts(np.array([0, 255])).dtype == np.uint8
    big = frame_cache.compact_counts(np.array([0, 256, 65535]))
    assert big.dtype == np.uint16 and big.tolist() == [0, 256, 65535]
    assert frame_cache.compact_counts(np.array([70000])).dtype == np.int32
    with pytest.raises(ValueError, match="negative"):
        frame_cache.compact_counts(np.array([-1]))


# --------------------------------------------------------------------------- damaged caches, full disks

def rebuilt_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("frame cache: rebuilt")]


@pytest.mark.parametrize("damage", ["empty", "truncated", "wrong shape", "wrong dtype", "wrong key", "flipped bit",
                                    "two arrays"])
def test_a_damaged_cache_file_is_rebuilt_when_read_and_said_once(tree, capsys, damage):
    test = dataset(tree, False)
    expected = [test[i][0] for i in range(len(test))]
    paths = [test.cache.path(relative) for relative in test._relatives]
    whole = open(paths[0], "rb").read()
    for path in paths[2:5]:  # damaged after this data set was built, as by a user or another tool
        if damage == "empty":
            open(path, "wb").close()
        elif damage == "truncated":
            open(path, "wb").write(whole[: len(whole) // 2])
        elif damage == "flipped bit":
            data = bytearray(open(path, "rb").read())
            data[len(data) // 3] ^= 0x10
            open(path, "wb").write(bytes(data))
        else:
            arrays = {"wrong shape": {"frames": np.ones((4, 2, 64, 64), np.uint8)},
                      "wrong dtype": {"frames": np.ones((4, 2, 128, 128), np.float32)},
                      "wrong key": {"x": np.ones((4, 2, 128, 128), np.uint8)},
                      "two arrays": {"frames": np.ones((4, 2, 128, 128), np.uint8), "x": np.ones(3)}}[damage]
            np.savez_compressed(path, **arrays)
    capsys.readouterr()
    for i in range(len(test)):
        assert np.array_equal(test[i][0].numpy(), expected[i].numpy()), i
    lines = rebuilt_lines(capsys)
    assert len(lines) == 1 and paths[2] in lines[0], lines  # one line for the data set, not one per file
    for path in paths:
        assert frame_cache.load_frames(path, (4, 2, 128, 128)).shape == (4, 2, 128, 128)
    assert not rebuilt_lines(capsys) and all(np.array_equal(test[i][0], expected[i]) for i in range(len(test)))


def test_an_empty_cache_file_is_rebuilt_when_the_data_set_is_built(tree, capsys, monkeypatch):
    first = dataset(tree, False)
    path = first.cache.path(first._relatives[1])
    open(path, "wb").close()
    capsys.readouterr()
    second = dataset(tree, False)  # the build itself sees the empty file as not cached
    assert os.path.getsize(path) > 0 and len(rebuilt_lines(capsys)) == 1
    monkeypatch.setattr("spikeformers.data.datasets.framing.read_events", None)  # all cached now: never called
    assert np.array_equal(second[1][0].numpy(), first[1][0].numpy())


def test_a_header_declaring_a_huge_array_is_refused_before_its_data_is_read(tmp_path):
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (1 << 20, 2, 1 << 12, 1 << 12)})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("frames.npy", np.lib.format.MAGIC_PREFIX + b"\x02\x00" + header.getvalue()[8:])
    with pytest.raises(frame_cache.CacheFileError, match=r"shape \(1048576, 2, 4096, 4096\), expected \(4, 2"):
        frame_cache.load_frames(str(path), (4, 2, 128, 128))
    with pytest.raises(frame_cache.CacheFileError, match="declares"):  # no expected shape: the zip's size decides
        frame_cache.load_frames(str(path))


def enospc(file, **arrays):
    """``np.savez_compressed`` on a full disk: part of the file, then ENOSPC."""
    file.write(b"PK\x03\x04 partial")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_full_disk_names_the_file_and_leaves_no_partial_cache_file(tree, monkeypatch, workers):
    reference = dataset(tree, False, cache_dir=False)
    calls = []

    def fill_up_on_the_fourth(file, **arrays):
        calls.append(1)
        if len(calls) >= 4:
            enospc(file)
        np.savez(file, **arrays)

    monkeypatch.setattr(frame_cache.np, "savez_compressed", fill_up_on_the_fourth)  # forked workers inherit it
    with pytest.raises(DiskFullError) as info:
        dataset(tree, False, workers=workers)
    message = str(info.value)
    path = re.fullmatch(r"no space left on device while writing (.*\.npz)", message).group(1)
    assert info.value.errno == errno.ENOSPC and info.value.filename == path
    cache = tree / "spikeformers_frames"
    assert not os.path.exists(path) and not list(cache.rglob("*.tmp")) and not list(cache.rglob(".*"))
    for written in cache_files(tree):  # whatever is there is whole
        assert frame_cache.load_frames(str(written), (4, 2, 128, 128)) is not None
    monkeypatch.undo()
    again = dataset(tree, False)
    assert all(np.array_equal(again[i][0], reference[i][0]) for i in range(len(again)))


def test_data_prepare_on_a_full_disk_is_one_line_naming_the_file(tree, monkeypatch, capsys):
    from spikeformers.cli import main

    monkeypatch.setattr(frame_cache.np, "savez_compressed", enospc)
    code = main(["data", "prepare", "--dataset", "cifar10_dvs", "--root", str(tree), "--time-steps", "4",
                 "--workers", "0", "--option", "expected_per_class=null"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and re.fullmatch(r"spikeformers data: error: no space left on device while writing \S+\.npz", err)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 160 KiB tmpfs: a real full disk (needs root and a kernel that lets us mount)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk_names_the_file_and_leaves_only_whole_cache_files(tree, small_tmpfs):
    with pytest.raises(DiskFullError, match=r"^no space left on device while writing "
                                            rf"{re.escape(str(small_tmpfs))}/\S+$"):
        dataset(tree, True, cache_dir=small_tmpfs)  # 110 files of about 4 KiB: more than fit
    written = list(small_tmpfs.rglob("*.npz"))
    assert written and not list(small_tmpfs.rglob("*.tmp"))
    for path in written:
        assert frame_cache.load_frames(str(path), (4, 2, 128, 128)).shape == (4, 2, 128, 128)


# --------------------------------------------------------------------------- errors

def test_missing_data_set_error_says_what_and_where(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        dataset(tmp_path / "nothing", True)
    message = str(info.value)
    assert "figshare" in message and "Li" in message and "2017" in message
    assert os.path.join(str(tmp_path / "nothing"), "airplane") in message
    assert "cifar10_<class>_<i>.aedat" in message and "events_np" in message

    partial = make_tree(tmp_path / "partial", per_class=2, classes=CLASSES[:3])
    (partial / "deer").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        dataset(partial, True)
    message = str(info.value)
    assert f"{partial / 'deer'} holds no .aedat files" in message and f"{partial / 'dog'} is missing" in message
    assert "airplane is missing" not in message
    with pytest.raises(DatasetNotFoundError, match="data root"):
        create_dataset("cifar10_dvs", train=True, time_steps=4, root=None)


def test_incomplete_class_warns(tree):
    with pytest.warns(UserWarning, match="incomplete"):
        CIFAR10DVS(tree, train=False, time_steps=4, workers=0, cache_dir=False)


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_recording_error_names_the_file(tree, workers):
    bad = tree / "cat" / "cifar10_cat_9.aedat"  # in the sj test part
    bad.write_bytes(aedat2_recording(1)[:-3])  # a truncated last event
    with pytest.raises(EventFileError) as info:
        dataset(tree, False, workers=workers)
    assert str(bad) in str(info.value) and "truncated" in str(info.value)
    # the other files were cached: fixing the file finishes the cache
    bad.write_bytes(aedat2_recording(1))
    assert len(dataset(tree, False)) == 10


# --------------------------------------------------------------------------- SpikingJelly caches

def test_spikingjelly_event_cache_folder(tree, tmp_path):
    sj_root = tmp_path / "sj"
    for name in CLASSES:
        (sj_root / "events_np" / name).mkdir(parents=True)
        for path in (tree / name).iterdir():
            events = read_events(path).events
            np.savez(sj_root / "events_np" / name / (path.stem + ".npz"),
                     t=events["t"], x=events["x"], y=events["y"], p=events["p"])
    from_np = dataset(sj_root, False)
    from_aedat = dataset(tree, False)
    assert from_np.source_kind == "events_np" and from_np.split_files()[0] == "airplane/cifar10_airplane_9.npz"
    for i in range(len(from_np)):
        assert np.array_equal(from_np[i][0].numpy(), from_aedat[i][0].numpy())
    with pytest.raises(ValueError, match="orientation"):
        dataset(sj_root, False, orientation="raw")


def test_spikingjelly_frame_cache_folder(tree, tmp_path, monkeypatch):
    sj_root = tmp_path / "sj"
    reference = dataset(tree, False, time_steps=3)
    folder = sj_root / frames_folder_name(3, "number")
    for name in CLASSES:
        (folder / name).mkdir(parents=True)
        for path in (tree / name).iterdir():
            frames = events_to_frames(read_events(path).events, 3, (128, 128), "number").astype(np.float32)
            np.savez_compressed(folder / name / (path.stem + ".npz"), frames=frames)
    monkeypatch.setattr("spikeformers.data.datasets.framing.read_events", None)  # never called
    served = dataset(sj_root, False, time_steps=3)
    assert served.source_kind == "frames" and served.cache is None
    assert len(served) == 10 and served.targets == list(range(10))
    for i in range(len(served)):
        assert np.array_equal(served[i][0].numpy(), reference[i][0].numpy())
    assert not (sj_root / "spikeformers_frames").exists()
    # a T that the cache does not hold: no frames folder, no events: the error names both
    with pytest.raises(DatasetNotFoundError, match="frames_number_4_split_by_number"):
        dataset(sj_root, False, time_steps=4)


def test_registered_by_name(tree):
    assert "cifar10_dvs" in list_datasets()
    with pytest.warns(UserWarning, match="expected 1000 recordings per class"):
        test = create_dataset("cifar10_dvs", train=False, time_steps=2, root=str(tree))
    assert len(test) == 10 and test[0][0].shape == (2, 2, 128, 128)


def test_time_split_sorts_out_of_order_timestamps(tmp_path):
    from spikeformers.data.events import sort_events
    from spikeformers.data.datasets.framing import frames_from_file

    data = bytearray(aedat2_recording(5, count=50))
    body = len(HEADER)
    # swap the timestamps of events 10 and 11 so that t goes backwards once
    first, second = body + 10 * 8 + 4, body + 11 * 8 + 4
    data[first:first + 4], data[second:second + 4] = data[second:second + 4], data[first:first + 4]
    path = tmp_path / "x.aedat"
    path.write_bytes(bytes(data))
    events = read_events(path).events
    assert np.any(np.diff(events["t"]) < 0)
    frames = frames_from_file(str(path), time_steps=3, sensor_size=(128, 128), split_by="time", format="aedat2")
    assert np.array_equal(frames, events_to_frames(sort_events(events), 3, (128, 128), "time"))


# --------------------------------------------------------------------------- tonic's AEDAT 4 copy

def test_tonics_aedat4_copy_in_its_own_folder_is_read(tmp_path):
    """tonic's CIFAR10DVS extracts the AEDAT 4 release into <save_to>/CIFAR10DVS/<class>/*.aedat4."""
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    from test_hostile_readers import aedat4_bytes, aedat4_event_packet

    from spikeformers.data.frames import integrate

    save_to = tmp_path / "tonic"
    for c, name in enumerate(CLASSES):
        folder = save_to / "CIFAR10DVS" / name
        folder.mkdir(parents=True)
        for i in range(3):
            rng = np.random.default_rng(c * 10 + i)
            events = [(1_000 + 13 * k, int(rng.integers(0, 128)), int(rng.integers(0, 128)), int(rng.integers(0, 2)))
                      for k in range(60)]
            packets = [(0, aedat4_event_packet(events[:30])), (0, aedat4_event_packet(events[30:]))]
            (folder / f"cifar10_{name}_{i}.aedat4").write_bytes(aedat4_bytes(packets, {0: ("EVTS", 128, 128)}))
    train = dataset(save_to, True, time_steps=3, split_by="time")
    assert train.source_kind == "aedat4" and train.data_folder == str(save_to / "CIFAR10DVS")
    assert len(train) == 30 and train.targets == [c for c in range(10) for _ in range(3)]  # sj: ceil(0.9 * 3) = 3
    for index in (0, 14, 29):
        path = train.samples[index][2]
        expected = integrate(read_events(path).events, 3, (128, 128), "time").astype(np.float32)
        assert path.endswith(".aedat4") and np.array_equal(train[index][0].numpy(), expected)
    assert dataset(save_to / "CIFAR10DVS", True, time_steps=3, cache_dir=False).source_kind == "aedat4"
    with pytest.raises(ValueError, match="orientation='raw' needs the AEDAT 2.0 files"):
        dataset(save_to, True, orientation="raw", cache_dir=False)
