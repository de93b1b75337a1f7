"""The second wave of event data sets (N-CARS, ASL-DVS, HARDVS, UCF101-DVS, HMDB51-DVS, DVS-Lip)
on small folders in their real formats, written by the independent writers of
test_readers_dat_mat_npy.py: classes, splits, frames, the frame cache, the errors for missing
data; and each trains a small model one epoch through ``spikeformers.engine.train``.
"""

import math
import os
import random
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_readers_dat_mat_npy import COMPACT, asl_like, dat_bytes, lip_like, mat_bytes, ncars_like, npy_bytes  # noqa: E402

from spikeformers.data.datasets.asl_dvs import ASLDVS  # noqa: E402
from spikeformers.data.datasets.dvs_lip import CLASSES as WORDS  # noqa: E402
from spikeformers.data.datasets.dvs_lip import DVSLip  # noqa: E402
from spikeformers.data.datasets.hardvs import HARDVS  # noqa: E402
from spikeformers.data.datasets.hmdb51_dvs import HMDB51DVS, step_split  # noqa: E402
from spikeformers.data.datasets.ncars import NCARS  # noqa: E402
from spikeformers.data.datasets.ucf101_dvs import UCF101DVS  # noqa: E402
from spikeformers.data.frames import events_to_frames  # noqa: E402
from spikeformers.data.missing import DatasetNotFoundError  # noqa: E402
from spikeformers.data.readers import read_events  # noqa: E402

NEW = ("ncars", "asl_dvs", "hardvs", "ucf101_dvs", "hmdb51_dvs", "dvs_lip")


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def assert_frames_are_the_read_events(dataset, index, **read_options):
    frames, label = dataset[index]
    assert label == dataset.targets[index]
    events = read_events(dataset.samples[index][2], sensor_size=dataset.recording_size, **read_options).events
    expected = events_to_frames(events, dataset.time_steps, dataset.recording_size, dataset.split_by)
    assert np.array_equal(frames.numpy(), expected.astype(np.float32))


# --------------------------------------------------------------------------- the trees

def make_ncars(root, per_class=(4, 2)):
    for part, count in zip(("n-cars_train", "n-cars_test"), per_class):
        for c, name in enumerate(("background", "cars")):
            for i in range(count):
                seed = c * 100 + i + (part == "n-cars_test") * 50
                write(root / part / name / f"obj_{seed:06d}_td.dat", dat_bytes(ncars_like(seed, count=120)))
    return root


def make_mat_classes(root, classes, names, count=120):
    """``root/<class>/<name>.mat`` for each class and each of ``names(class)``; doubles or compact storage."""
    for c, name in enumerate(classes):
        for i, stem in enumerate(names(name)):
            columns = asl_like(seed=c * 1000 + i, count=count)
            storage = COMPACT if i % 2 else None
            write(root / name / f"{stem}.mat", mat_bytes(columns, compress=bool(i % 3 == 0), storage=storage))
    return root


LETTERS = ("a", "b", "c")
UCF_CLASSES = ("ApplyEyeMakeup", "Archery", "Basketball")
HMDB_CLASSES = ("brush_hair", "cartwheel", "chew")


def make_asl(root, per_class=5):
    return make_mat_classes(root, LETTERS, lambda name: [f"{name}_{i:04d}" for i in range(1, per_class + 1)])


UCF_GROUPS = (1, 5, 8, 12, 15, 21, 25)


def ucf_names(name):
    """Clip 1 of groups a split tests (1-7, 8-14, 15-21) and of group 25, which always trains, and clip 2 of
    group 25."""
    return [f"v_{name}_g{g:02d}_c01" for g in UCF_GROUPS] + [f"v_{name}_g25_c02"]


def make_ucf(root):
    return make_mat_classes(root, UCF_CLASSES, ucf_names)


def hmdb_names(name):
    return [f"{name}_video_{i}_u_nm_np1_fr_med_{i}" for i in range(6)]


def make_hmdb(root, split_files=True):
    make_mat_classes(root, HMDB_CLASSES, hmdb_names)
    if split_files:  # HMDB51's split files: 1 train, 2 test, 0 unused
        for name in HMDB_CLASSES:
            lines = [f"{stem}.avi {tag} " for stem, tag in zip(hmdb_names(name), (1, 1, 1, 2, 2, 0))]
            write(root / "testTrainMulti_7030_splits" / f"{name}_test_split1.txt", "\n".join(lines).encode() + b"\n")
    return root


def hardvs_recording(seed, count=150):
    rng = np.random.default_rng(seed)
    arrays = {"t": np.sort(rng.integers(0, 3_000_000, count)), "x": rng.integers(0, 346, count),
              "y": rng.integers(0, 260, count), "p": rng.integers(0, 2, count)}
    with_members = {f"{key}.npy": npy_bytes(values.astype(np.int64)) for key, values in arrays.items()}
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # an .npz: one .npy member per array
        for member, data in with_members.items():
            archive.writestr(member, data)
    return buffer.getvalue()


def make_hardvs(root, per_list=(("train", 4), ("val", 1), ("test", 2)), classes=3):
    seed = 0
    for kind, count in per_list:
        lines = []
        for c in range(1, classes + 1):
            for i in range(count):
                stem = f"dvSave-2021_10_{c:02d}_{kind}_{i:02d}"
                write(root / f"action_{c:03d}" / f"{stem}.npz", hardvs_recording(seed))
                lines.append(f"action_{c:03d}/{stem} {c - 1}")
                seed += 1
        write(root / f"{kind}_label.txt", ("\n".join(lines) + "\n").encode())
    return root


def make_dvs_lip(root, per_word=(1, 1), words=WORDS):
    for part, count in zip(("train", "test"), per_word):
        for w, word in enumerate(words):
            for i in range(count):
                write(root / "DVS-Lip" / part / word / f"{i}.npy", npy_bytes(lip_like(w * 10 + i, count=40)))
    return root


# --------------------------------------------------------------------------- N-CARS

def test_ncars_official_parts_classes_and_frames(tmp_path):
    root = make_ncars(tmp_path / "ncars")
    train = NCARS(root, train=True, time_steps=3, workers=0, expected_samples=None)
    test = NCARS(root, train=False, time_steps=3, workers=0, expected_samples=None)
    assert (len(train), len(test)) == (8, 4)
    assert train.classes == ("background", "cars") and train.targets == [0] * 4 + [1] * 4
    assert train.sensor_size == (100, 120) and train.in_channels == 2
    assert test.split_files()[0] == "background/obj_000050_td.dat"
    for data in (train, test):
        assert_frames_are_the_read_events(data, len(data) - 1)
    assert train.cache.directory != test.cache.directory  # the parts share file names
    with pytest.warns(UserWarning, match="expected 15,422 samples"):
        NCARS(root, train=True, time_steps=3, workers=0, cache_dir=False)


def test_ncars_missing_names_the_files_and_the_publisher(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        NCARS(tmp_path, train=True, time_steps=2, workers=0)
    message = str(info.value)
    assert os.path.join(str(tmp_path), "n-cars_train", "<class>", "obj_<i>_td.dat") in message
    assert "prophesee.ai" in message and "Sironi" in message


@pytest.mark.parametrize("name, files, where", [
    ("ncars", os.path.join("n-cars_train", "<class>", "obj_<i>_td.dat"), "https://www.prophesee.ai/"),
    ("asl_dvs", os.path.join("<letter>", "<letter>_<i>.mat"), "https://github.com/PIX2NVS/NVS2Graph"),
    ("ucf101_dvs", os.path.join("<class>", "v_<Class>_g<group>_c<clip>.mat"),
     "https://github.com/PIX2NVS/NVS_FeatureLearning"),
    ("hmdb51_dvs", os.path.join("<class>", "<video>.mat"), "https://github.com/PIX2NVS/NVS_FeatureLearning"),
    ("hardvs", "train_label.txt and the action_NNN/*.npz recordings", "https://github.com/Event-AHU/HARDVS"),
    ("dvs_lip", os.path.join("train", "<word>", "<i>.npy"), "https://sites.google.com/view/event-based-lipreading"),
])
def test_a_missing_data_set_names_the_files_expected_and_where_it_is_published(tmp_path, name, files, where):
    from spikeformers.data import create_dataset

    with pytest.raises(DatasetNotFoundError) as info:
        create_dataset(name, root=str(tmp_path), train=True, time_steps=2)
    message = str(info.value)
    assert files in message and where in message and str(tmp_path) in message


# --------------------------------------------------------------------------- ASL-DVS

def test_asl_dvs_classes_split_and_orientation(tmp_path):
    root = make_asl(tmp_path / "asl")
    options = dict(time_steps=2, workers=0, expected_classes=0, expected_per_class=None)
    train, test = ASLDVS(root, train=True, **options), ASLDVS(root, train=False, **options)
    assert train.classes == LETTERS and train.sensor_size == (180, 240)
    assert (len(train), len(test)) == (12, 3)  # ceil(0.8 * 5) = 4 per letter train
    assert test.split_files() == ["a/a_0005.mat", "b/b_0005.mat", "c/c_0005.mat"]
    assert_frames_are_the_read_events(test, 1, orientation="tonic")
    flipped = ASLDVS(root, train=False, orientation="spikingjelly", **options)
    assert flipped.cache.directory != test.cache.directory
    assert np.array_equal(flipped[1][0].numpy(), test[1][0].numpy()[..., ::-1])  # x mirrored
    randomly = ASLDVS(root, train=True, split="random", seed=3, **options)
    assert len(randomly) == 12 and set(randomly.split_files()) | set(
        ASLDVS(root, train=False, split="random", seed=3, **options).split_files()) == set(
        train.split_files()) | set(test.split_files())


def test_asl_dvs_with_other_class_folders_is_refused_for_its_labels(tmp_path):
    root = make_asl(tmp_path / "asl", per_class=2)
    with pytest.raises(DatasetNotFoundError, match="has 3 class folders; a complete copy has 24"):
        ASLDVS(root, train=True, time_steps=2, workers=0)
    with pytest.raises(DatasetNotFoundError) as info:
        ASLDVS(tmp_path / "nothing", train=True, time_steps=2)
    assert os.path.join(str(tmp_path / "nothing"), "<letter>", "<letter>_<i>.mat") in str(info.value)
    assert "PIX2NVS/NVS2Graph" in str(info.value)


# --------------------------------------------------------------------------- UCF101-DVS

@pytest.mark.parametrize("official_split, train_groups", [(1, {8, 12, 15, 21, 25}), (2, {1, 5, 15, 21, 25}),
                                                          (3, {1, 5, 8, 12, 25})])
def test_ucf101_dvs_official_splits_by_group(tmp_path, official_split, train_groups):
    root = make_ucf(tmp_path / "ucf")
    options = dict(time_steps=2, workers=0, expected_classes=0, official_split=official_split, cache_dir=False)
    train, test = UCF101DVS(root, train=True, **options), UCF101DVS(root, train=False, **options)
    group = lambda file: int(file.split("_g")[1][:2])  # noqa: E731
    assert {group(f) for f in train.split_files()} == train_groups
    assert not {group(f) for f in test.split_files()} & train_groups
    assert (len(train), len(test)) == (18, 6) and train.classes == UCF_CLASSES  # two groups a class test
    assert_frames_are_the_read_events(test, 0)


def test_ucf101_dvs_leaves_out_files_under_1_kib_and_names_unparsable_names(tmp_path):
    root = make_ucf(tmp_path / "ucf")
    write(root / "Archery" / "v_Archery_g09_c09.mat", mat_bytes(asl_like(count=2)))  # a few hundred bytes
    options = dict(time_steps=2, workers=0, expected_classes=0, cache_dir=False)
    assert "Archery/v_Archery_g09_c09.mat" not in UCF101DVS(root, **options).split_files()
    assert "Archery/v_Archery_g09_c09.mat" in UCF101DVS(root, min_file_bytes=0, **options).split_files()
    write(root / "Archery" / "clip.mat", mat_bytes(asl_like(count=200)))
    with pytest.raises(ValueError, match="clip.mat: UCF101's official split needs recordings named"):
        UCF101DVS(root, **options)
    assert len(UCF101DVS(root, split="sj", **options)) > 0


# --------------------------------------------------------------------------- HMDB51-DVS

def test_hmdb51_dvs_official_split_from_hmdb51s_split_files(tmp_path):
    root = make_hmdb(tmp_path / "hmdb")
    options = dict(time_steps=2, workers=0, expected_classes=0)
    train, test = HMDB51DVS(root, train=True, **options), HMDB51DVS(root, train=False, **options)
    assert (len(train), len(test)) == (9, 6)  # tags 1, 1, 1, 2, 2 and one unused per class
    assert test.split_files()[:2] == [f"brush_hair/{hmdb_names('brush_hair')[3]}.mat",
                                      f"brush_hair/{hmdb_names('brush_hair')[4]}.mat"]
    assert_frames_are_the_read_events(train, 4)
    with pytest.raises(DatasetNotFoundError, match="brush_hair_test_split2.txt .*test_train_splits.rar"):
        HMDB51DVS(root, official_split=2, **options)


def test_step_split_is_steps_procedure():
    """STEP: per class ``random.seed(0); random.shuffle(indices)``, the first round(0.5 n) train."""
    for count in (1, 2, 5, 7, 101, 130):
        names = [f"video_{i:03d}.mat" for i in range(count)]
        indices = list(range(count))
        random.seed(0)
        random.shuffle(indices)
        train = {names[i] for i in indices[:round(0.5 * count)]}
        assert set(step_split(names, True)) == train
        assert set(step_split(list(reversed(names)), False)) == set(names) - train


def test_hmdb51_dvs_step_split_on_the_data_set(tmp_path):
    root = make_hmdb(tmp_path / "hmdb", split_files=False)
    options = dict(time_steps=2, workers=0, expected_classes=0, split="step", cache_dir=False)
    train, test = HMDB51DVS(root, train=True, **options), HMDB51DVS(root, train=False, **options)
    assert (len(train), len(test)) == (9, 9)
    for name in HMDB_CLASSES:
        files = [f"{stem}.mat" for stem in hmdb_names(name)]
        assert [f"{name}/{f}" for f in step_split(files, True)] == [f for f in train.split_files() if f.startswith(name)]


# --------------------------------------------------------------------------- HARDVS

def test_hardvs_official_lists(tmp_path):
    root = make_hardvs(tmp_path / "hardvs")
    train = HARDVS(root, train=True, time_steps=2, workers=0)
    test = HARDVS(root, train=False, time_steps=2, workers=0)
    val = HARDVS(root, train=False, time_steps=2, workers=0, test_list="val")
    assert (len(train), len(test), len(val)) == (12, 6, 3)
    assert train.num_classes == 300 and train.classes[0] == "action_001" and train.sensor_size == (260, 346)
    assert train.targets == [0] * 4 + [1] * 4 + [2] * 4
    assert val.split_files()[0] == "action_001/dvSave-2021_10_01_val_00.npz"
    assert val.cache.directory != test.cache.directory
    assert_frames_are_the_read_events(test, 5)


def test_hardvs_missing_recordings_and_lists_are_named(tmp_path):
    root = make_hardvs(tmp_path / "hardvs")
    os.remove(root / "action_002" / "dvSave-2021_10_02_test_01.npz")
    with pytest.raises(DatasetNotFoundError, match="lists 1 recordings that are not there: "
                                                   "action_002/dvSave-2021_10_02_test_01.npz"):
        HARDVS(root, train=False, time_steps=2, workers=0)
    with pytest.raises(DatasetNotFoundError) as info:
        HARDVS(tmp_path / "hardvs" / "action_001", train=True, time_steps=2)
    assert "train_label.txt" in str(info.value) and "Event-AHU/HARDVS" in str(info.value)
    write(root / "train_label.txt", b"action_301/dvSave-x 300\n")
    with pytest.raises(ValueError, match="train_label.txt, line 1: expected 'action_NNN/<recording>"):
        HARDVS(root, train=True, time_steps=2, workers=0)


# --------------------------------------------------------------------------- DVS-Lip

def test_dvs_lip_official_parts_and_the_hundred_words(tmp_path):
    root = make_dvs_lip(tmp_path / "lip", per_word=(2, 1))
    train = DVSLip(root, train=True, time_steps=2, workers=0, expected_samples=None)
    test = DVSLip(root, train=False, time_steps=2, workers=0, expected_samples=None)
    assert (len(train), len(test)) == (200, 100) and train.num_classes == 100
    assert list(WORDS) == sorted(WORDS)  # labels in alphabetical order, as the authors' code gives them
    assert test.split_files()[-1] == "young/0.npy" and test.targets[-1] == 99
    assert_frames_are_the_read_events(test, 42)
    os.remove(root / "DVS-Lip" / "test" / "water" / "0.npy")
    with pytest.raises(DatasetNotFoundError, match="water holds no .npy files"):
        DVSLip(root, train=False, time_steps=2, workers=0)


# --------------------------------------------------------------------------- all of them

TREES = {  # name: (tree writer, classes, dataset options)
    "ncars": (make_ncars, 2, {"expected_samples": None}),
    "asl_dvs": (make_asl, 3, {"expected_classes": 0, "expected_per_class": None}),
    "hardvs": (make_hardvs, 300, {}),
    "ucf101_dvs": (make_ucf, 3, {"expected_classes": 0}),
    "hmdb51_dvs": (make_hmdb, 3, {"expected_classes": 0}),
    "dvs_lip": (make_dvs_lip, 100, {"expected_samples": None}),
}


@pytest.mark.parametrize("name", NEW)
def test_trains_one_epoch_on_a_small_folder_in_its_real_format(name, tmp_path):
    """The engine's training loop, one epoch: spikformer_tiny shrunk, T=2, frames resized to 24x24."""
    from spikeformers.engine.config import TrainConfig
    from spikeformers.engine.record import read_metrics
    from spikeformers.engine.train import train

    make, classes, options = TREES[name]
    root = make(tmp_path / name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds synchronisation
    try:
        summary = train(TrainConfig(
            model="spikformer_tiny", dataset=name, data_root=str(root), time_steps=2, epochs=1, batch_size=16,
            warmup_epochs=0, workers=0, out=str(tmp_path / "run"),
            dataset_options={"resize": 24, "workers": 0, **options},
            model_options={"img_size": 24, "in_channels": 2, "num_classes": classes, "embed_dim": 16,
                           "num_heads": 2}))
    finally:
        torch.set_num_threads(threads)
    metrics = read_metrics(tmp_path / "run" / "metrics.csv")
    assert summary["epochs"] == 1 and metrics["epoch"] == [1.0]
    assert math.isfinite(metrics["train_loss"][0]) and math.isfinite(metrics["test_loss"][0])
    assert (tmp_path / "run" / "last.pt").is_file()
    assert (tmp_path / "run" / f"{name}_train_files.txt").is_file()


@pytest.mark.parametrize("name", NEW)
def test_data_prepare_show_and_options_on_the_command_line(name, tmp_path, capsys):
    """``spikeformers data prepare | show | options`` with each data set's own options as flags."""
    from spikeformers.cli import main

    make, _, options = TREES[name]
    root = make(tmp_path / name)
    flags = ["--dataset", name, "--root", str(root), "--time-steps", "2"]
    for key, value in options.items():
        flags += ["--option", f"{key}={'null' if value is None else value}"]
    assert main(["data", "prepare", *flags, "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert f"{name} train" in printed and f"{name} test" in printed and "T=2" in printed
    pytest.importorskip("PIL.Image", reason="data show writes GIFs with Pillow (optional)")
    out = tmp_path / "sample.gif"
    assert main(["data", "show", *flags, "--index", "0", "--out", str(out), "--option", "resize=32"]) == 0
    assert out.is_file() and f"{name} test #0" in capsys.readouterr().out
    assert main(["data", "options", "--dataset", name]) == 0
    listed = capsys.readouterr().out
    assert "split_by = 'number'" in listed and "resize = None" in listed
