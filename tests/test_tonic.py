"""tonic interop: event arrays converted both ways exactly, ``split_by='time_bins'`` frame for frame
tonic's ``ToFrame(n_time_bins=...)``, and tonic data sets (``tonic:NAME``) served as frames, cached,
split, refused without downloading, trained on, and reached from ``spikeformers data``.

The tonic data sets are a tonic-style class defined here (``ToyTonic``, which needs no tonic) and
tonic's own ``DVSGesture`` on files written here in its layout; tests that run tonic are skipped
where it is not installed.
"""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeformers.cli import main
from spikeformers.data import (EVENT_DTYPE, DatasetNotFoundError, EventFileError, TonicDataset, create_dataset,
                               dataset_option_help, dataset_options, events_to_frames, from_tonic_events,
                               from_tonic_sensor_size, integrate, make_events, to_tonic_events,
                               to_tonic_sensor_size)
from spikeformers.data.tonic import TONIC_EVENT_DTYPE

FUZZ = settings(max_examples=150, deadline=None, derandomize=True)


def tonic():
    return pytest.importorskip("tonic", reason="runs tonic itself (pip install spikeformers[tonic])")


# ---------------------------------------------------------------------- events and sensor sizes

@st.composite
def our_events(draw, max_size=60):
    count = draw(st.integers(0, max_size))
    int16 = st.integers(-2 ** 15, 2 ** 15 - 1)
    return make_events(draw(st.lists(st.integers(-2 ** 62, 2 ** 62), min_size=count, max_size=count)),
                       draw(st.lists(int16, min_size=count, max_size=count)),
                       draw(st.lists(int16, min_size=count, max_size=count)),
                       draw(st.lists(st.integers(0, 1), min_size=count, max_size=count)))


@FUZZ
@given(events=our_events())
def test_our_events_round_trip_through_tonic_arrays_exactly(events):
    converted = to_tonic_events(events)
    assert converted.dtype == TONIC_EVENT_DTYPE
    for name in "txy":
        np.testing.assert_array_equal(converted[name], events[name])
    np.testing.assert_array_equal(converted["p"], events["p"].astype(bool))
    back = from_tonic_events(converted)
    assert back.dtype == EVENT_DTYPE and back.tobytes() == events.tobytes()


# The dtypes tonic's data sets give their events (NMNIST / NCALTECH101, DVSGesture, CIFAR10DVS, NERDD).
TONIC_DTYPES = [
    np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]),
    np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)]),
    np.dtype([("t", np.uint64), ("x", np.uint16), ("y", np.uint16), ("p", bool)]),
    np.dtype([("t", np.int32), ("x", np.int16), ("y", np.int16), ("p", bool)]),
]


@FUZZ
@given(dtype=st.sampled_from(TONIC_DTYPES), data=st.data())
def test_tonic_arrays_of_each_data_sets_dtype_round_trip_exactly(dtype, data):
    count = data.draw(st.integers(0, 40))
    events = np.zeros(count, dtype)
    events["x"] = data.draw(st.lists(st.integers(0, 1279), min_size=count, max_size=count))
    events["y"] = data.draw(st.lists(st.integers(0, 719), min_size=count, max_size=count))
    events["t"] = data.draw(st.lists(st.integers(0, 2 ** 31 - 1), min_size=count, max_size=count))
    events["p"] = data.draw(st.lists(st.integers(0, 1), min_size=count, max_size=count))
    ours = from_tonic_events(events)
    assert ours.dtype == EVENT_DTYPE
    again = to_tonic_events(ours, dtype=dtype)
    assert again.dtype == dtype and again.tobytes() == events.tobytes()


def test_whole_float_fields_convert_and_fractions_are_named():
    events = np.zeros(3, [("x", float), ("y", float), ("t", float), ("p", float)])
    events["x"], events["t"], events["p"] = [1.0, 2.0, 3.0], [0.0, 5.0, 7.0], [0.0, 1.0, 1.0]
    ours = from_tonic_events(events)
    assert ours["x"].tolist() == [1, 2, 3] and ours["t"].tolist() == [0, 5, 7] and ours["p"].tolist() == [0, 1, 1]
    events["t"][1] = 5.5
    with pytest.raises(ValueError, match=r"tonic event t values must be whole numbers \(t is in microseconds\); "
                                         r"got \[5.5\]"):
        from_tonic_events(events)


def test_values_the_other_side_cannot_hold_are_named_with_the_field():
    events = np.zeros(2, TONIC_EVENT_DTYPE)
    events["p"] = [True, False]
    events = events.astype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
    events["p"] = [1, -1]
    with pytest.raises(ValueError, match=r"p must be 0 \(OFF\) or 1 \(ON\); got other values \[-1\]"):
        from_tonic_events(events)
    audio = np.zeros(2, [("t", int), ("x", int), ("p", int)])  # tonic's SHD
    with pytest.raises(ValueError, match=r"lack the field\(s\) \['y'\].*audio"):
        from_tonic_events(audio)
    with pytest.raises(ValueError, match="x values must fit int16"):
        from_tonic_events(np.array([(40_000, 0, 0, 1)], [("x", int), ("y", int), ("t", int), ("p", int)]))
    late = make_events([2 ** 40], [0], [0], [1])
    with pytest.raises(ValueError, match=r"event t values in \[1099511627776, 1099511627776\] do not fit "
                                         r"tonic's int32 field 't'"):
        to_tonic_events(late, dtype=TONIC_DTYPES[3])
    with pytest.raises(ValueError, match="a tonic event dtype has the fields x, y, t, p"):
        to_tonic_events(late, dtype=[("x", int), ("t", int), ("p", int)])


def test_sensor_sizes_convert_between_tonics_w_h_c_and_our_h_w():
    assert from_tonic_sensor_size((34, 20, 2)) == (20, 34)
    assert to_tonic_sensor_size((20, 34)) == (34, 20, 2)
    with pytest.raises(ValueError, match=r"\(700, 1, 1\) has 1 polarity channel\(s\); frames \[T, 2, H, W\] need 2"):
        from_tonic_sensor_size((700, 1, 1))
    with pytest.raises(ValueError, match=r"a tonic sensor_size is \(W, H, C\); got \(128, 128\)"):
        from_tonic_sensor_size((128, 128))


def test_the_default_tonic_dtype_is_tonics_own():
    assert TONIC_EVENT_DTYPE == tonic().io.events_struct


# ---------------------------------------------------------------------- time_bins is tonic's ToFrame

SENSORS = [(1, 1), (3, 5), (7, 2), (34, 34), (16, 9)]  # (W, H), square and not


@st.composite
def tonic_recordings(draw):
    width, height = draw(st.sampled_from(SENSORS))
    count = draw(st.integers(1, 120))
    span = draw(st.sampled_from([0, 3, 17, 1_000, 10 ** 9]))  # short spans put events on the bin edges
    start = draw(st.integers(-1_000, 10 ** 6))
    events = np.zeros(count, TONIC_EVENT_DTYPE)
    events["t"] = np.sort(draw(st.lists(st.integers(start, start + span), min_size=count, max_size=count)))
    events["x"] = draw(st.lists(st.integers(0, width - 1), min_size=count, max_size=count))
    events["y"] = draw(st.lists(st.integers(0, height - 1), min_size=count, max_size=count))
    events["p"] = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    return events, (width, height, 2)


@FUZZ
@given(recording=tonic_recordings(), bins=st.integers(1, 20),
       overlap=st.one_of(st.sampled_from([0, 0.0, 0.1, 0.25, 0.5, 0.9]), st.floats(0, 0.99)),
       include_incomplete=st.booleans())
def test_time_bins_frames_equal_tonics_to_frame(recording, bins, overlap, include_incomplete):
    ToFrame = tonic().transforms.ToFrame
    events, sensor_size = recording
    # include_incomplete does not apply to n_time_bins: tonic ignores it, and so the frames must equal it both ways.
    expected = ToFrame(sensor_size=sensor_size, n_time_bins=bins, overlap=overlap,
                       include_incomplete=include_incomplete)(events.copy())
    frames = events_to_frames(events, bins, from_tonic_sensor_size(sensor_size), split_by="time_bins",
                              overlap=overlap)
    assert frames.shape == expected.shape
    np.testing.assert_array_equal(frames, expected)
    np.testing.assert_array_equal(integrate(from_tonic_events(events), bins, (sensor_size[1], sensor_size[0]),
                                            "time_bins", overlap), expected)


def test_overlapping_bin_edges_fall_on_the_same_side_of_every_timestamp_as_in_tonic():
    """An event per microsecond: every bin edge that lands near a whole microsecond is tried, so an
    edge computed with other float rounding than tonic's (in another order) moves an event."""
    ToFrame = tonic().transforms.ToFrame
    for span in range(1, 121):
        events = np.zeros(span + 1, TONIC_EVENT_DTYPE)
        events["t"], events["p"] = np.arange(span + 1), True
        for bins in (3, 7, 16):
            for overlap in (0.1, 0.2, 0.3, 0.6, 0.7, 0.9):
                expected = ToFrame(sensor_size=(1, 1, 2), n_time_bins=bins, overlap=overlap)(events)
                frames = events_to_frames(events, bins, (1, 1), split_by="time_bins", overlap=overlap)
                assert np.array_equal(frames, expected), (span, bins, overlap)


def test_an_empty_recording_gives_zero_frames_as_tonic_does():
    ToFrame = tonic().transforms.ToFrame
    empty = np.zeros(0, TONIC_EVENT_DTYPE)
    expected = ToFrame(sensor_size=(5, 3, 2), n_time_bins=4)(empty)
    frames = events_to_frames(empty, 4, (3, 5), split_by="time_bins")
    # tonic's empty-recording shortcut returns [T, C, W, H] (its other frames are [T, C, H, W]): zeros either way.
    assert expected.shape == (4, 2, 5, 3) and frames.shape == (4, 2, 3, 5)
    assert not expected.any() and not frames.any()


def test_overlapping_time_bins_share_the_events_of_their_common_span():
    events = make_events(np.arange(10), np.zeros(10), np.zeros(10), np.ones(10))
    # dt = 9 // 2 = 4; windows of 4 * 1.5 = 6 microseconds, one every 6 * 0.5 = 3: [0, 6) and [3, 9).
    frames = events_to_frames(events, 2, (1, 1), split_by="time_bins", overlap=0.5)
    assert frames[:, 1, 0, 0].tolist() == [6, 6]
    assert events_to_frames(events, 2, (1, 1), split_by="time_bins")[:, 1, 0, 0].tolist() == [4, 4]


def test_overlap_must_be_a_fraction_of_a_bin_and_belongs_to_time_bins():
    events = make_events([0, 1], [0, 0], [0, 0], [1, 1])
    for bad in (1, 1.0, -0.1, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match=r"overlap must be a number in \[0, 1\)"):
            events_to_frames(events, 2, (1, 1), split_by="time_bins", overlap=bad)
    with pytest.raises(ValueError, match=r"overlap applies to split_by='time_bins' only.*split_by='time'"):
        events_to_frames(events, 2, (1, 1), split_by="time", overlap=0.5)
    assert events_to_frames(events, 2, (1, 1), split_by="number", overlap=0).sum() == 2


# ---------------------------------------------------------------------- a tonic-style data set

class ToyTonic:
    """A tonic-style data set, as tonic's classes are written: the files under ``<save_to>/ToyTonic``,
    a ``download`` called when they are missing, no ``train`` (so the wrapper splits it per class).

    Parameters:
        save_to (string): Location to save files to on disk.
        shift (int): Add this to every x coordinate.
    """

    sensor_size = (12, 8, 2)  # W, H, C
    classes = ["left", "right", "up"]
    dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
    filename = "toy.zip"
    url = "https://example.org/toy.zip"
    folder_name = "recordings"
    reads = 0  # samples read in this process

    def __init__(self, save_to, transform=None, target_transform=None, transforms=None, shift=0):
        self.location_on_system = os.path.join(save_to, "ToyTonic")
        self.shift = shift
        folder = os.path.join(self.location_on_system, self.folder_name)
        if not os.path.isdir(folder):
            self.download()
        self.data, self.targets = [], []
        for label, name in enumerate(self.classes):
            for file in sorted(os.listdir(os.path.join(folder, name))):
                self.data.append(os.path.join(folder, name, file))
                self.targets.append(label)

    def download(self):
        raise AssertionError("the wrapper must never let a tonic data set download")

    def __getitem__(self, index):
        type(self).reads += 1
        events = np.load(self.data[index]).astype(self.dtype)
        events["x"] += self.shift
        return events, self.targets[index]

    def __len__(self):
        return len(self.data)


TOY = f"tonic:{__name__}.ToyTonic"


def write_toy(root, per_class=(10, 4, 7), seed=0):
    """``per_class`` recordings of each class in ToyTonic's layout, random events on its 12x8 sensor."""
    rng = np.random.default_rng(seed)
    for name, count in zip(ToyTonic.classes, per_class):
        folder = os.path.join(root, "ToyTonic", "recordings", name)
        os.makedirs(folder, exist_ok=True)
        for index in range(count):
            n = int(rng.integers(20, 80))
            events = np.zeros(n, ToyTonic.dtype)
            events["x"], events["y"] = rng.integers(0, 11, n), rng.integers(0, 8, n)
            events["t"], events["p"] = np.sort(rng.integers(0, 5_000, n)), rng.integers(0, 2, n)
            np.save(os.path.join(folder, f"rec_{index}.npy"), events)
    return root


def toy(root, train=True, time_steps=4, **options):
    return create_dataset(TOY, train=train, time_steps=time_steps, root=str(root), workers=0, **options)


def test_a_tonic_data_set_serves_the_frames_integrate_makes_of_its_events(tmp_path):
    write_toy(tmp_path)
    for split_by, overlap in (("number", 0.0), ("time", 0.0), ("time_bins", 0.3)):
        data = toy(tmp_path, split_by=split_by, overlap=overlap)
        assert data.classes == ("left", "right", "up") and data.num_classes == 3 and data.in_channels == 2
        assert data.sensor_size == data.recording_size == (8, 12)  # tonic's (W, H, C) = (12, 8, 2)
        source = ToyTonic(str(tmp_path))
        for index in range(len(data)):
            frames, label = data[index]
            events, target = source[data.indices[index]]
            assert label == target
            np.testing.assert_array_equal(frames.numpy(), integrate(from_tonic_events(events), 4, (8, 12),
                                                                    split_by, overlap))


def test_without_a_train_parameter_each_class_is_split_sj_or_random(tmp_path):
    write_toy(tmp_path)
    train, test = toy(tmp_path), toy(tmp_path, train=False)
    assert train.split == "sj" and len(train) == 9 + 4 + 7  # ceil(0.9 n) of each class
    assert set(train.split_files()).isdisjoint(test.split_files())
    assert sorted(train.indices + test.indices) == list(range(21))
    # 'sj': the first names in lexicographic order train (rec_0, rec_1, rec_2, ... of 'left': rec_9 tests).
    assert "left/recordings/left/rec_9.npy" in test.split_files()
    drawn = [toy(tmp_path, split="random", seed=seed, train=False).indices for seed in (1, 1, 2)]
    assert drawn[0] == drawn[1] != drawn[2]
    with pytest.raises(ValueError, match=r"unknown split 'official' for .*ToyTonic, which has no train/test "
                                         r"parts of its own; valid: \('sj', 'random'\)"):
        toy(tmp_path, split="official")


def test_the_frame_cache_is_keyed_by_every_setting_and_read_back_without_tonic(tmp_path):
    write_toy(tmp_path)
    first = toy(tmp_path)
    ToyTonic.reads = 0
    again = toy(tmp_path)
    served = [again[index][0] for index in range(len(again))]
    assert ToyTonic.reads == 0 and again.cache.directory == first.cache.directory  # every frame from the cache
    assert all(np.array_equal(a, first[i][0]) for i, a in enumerate(served))
    folders = {toy(tmp_path, **setting).cache.directory for setting in
               ({}, {"split_by": "time"}, {"split_by": "time_bins"}, {"split_by": "time_bins", "overlap": 0.5},
                {"shift": 1}, {"sensor_size": [9, 13]})}
    folders.add(toy(tmp_path, time_steps=2).cache.directory)
    assert len(folders) == 7
    os.remove(os.path.join(tmp_path, "ToyTonic", "recordings", "up", "rec_5.npy"))
    assert toy(tmp_path).cache.directory != first.cache.directory  # another list of samples: another key


def test_a_damaged_cache_file_is_rebuilt_from_tonic(tmp_path, capsys):
    write_toy(tmp_path)
    data = toy(tmp_path)
    expected = data[0][0]
    path = data.cache.path(data._relatives[0])
    with open(path, "wb") as file:
        file.write(b"PK\x03\x04 not a zip")
    assert np.array_equal(toy(tmp_path)[0][0], expected)
    assert "frame cache: rebuilt" in capsys.readouterr().err


def test_a_missing_download_names_what_tonic_expects_where_and_downloads_nothing(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        toy(tmp_path / "data")
    first, second = str(info.value).splitlines()
    where = os.path.join(str(tmp_path / "data"), "ToyTonic")
    assert f"is missing or incomplete in {where}: tonic's ToyTonic looks there for toy.zip, extracted into " \
           "recordings/. spikeformers downloads nothing." in first
    assert second.startswith("tonic downloads it from https://example.org/toy.zip;")
    write_toy(tmp_path / "data")
    with pytest.raises(DatasetNotFoundError, match=r"ToyTonic/ToyTonic \(the data root is tonic's save_to, the "
                                                   r"folder that holds ToyTonic/: here '.*data'\?\)"):
        toy(tmp_path / "data" / "ToyTonic")
    with pytest.raises(DatasetNotFoundError, match="needs a data root"):
        create_dataset(TOY, train=True, time_steps=2)


def test_tonics_own_options_are_options_of_the_data_set_with_their_descriptions(tmp_path):
    write_toy(tmp_path)
    options = dataset_options(TOY)
    assert options["shift"] == 0 and options["split"] == "sj" and options["split_by"] == "number"
    assert "save_to" not in options and "transform" not in options and "train" not in options
    described = dataset_option_help(TOY)
    assert described["shift"] == "Add this to every x coordinate." and "time_bins" in described["split_by"]
    assert toy(tmp_path, shift=1).tonic.shift == 1
    with pytest.raises(ValueError, match="has no option 'shfit'. Did you mean 'shift'"):
        toy(tmp_path, shfit=1)


def test_events_outside_the_sensor_name_the_recording(tmp_path):
    write_toy(tmp_path)
    with pytest.raises(EventFileError, match=r"rec_\d\.npy: cannot integrate into frames: event x coordinates "
                                             r"reach 1\d, outside sensor_size=\(8, 12\)"):
        toy(tmp_path, shift=5, cache_dir=False)[0]


def test_resize_and_a_sensor_size_option_reach_the_frames(tmp_path):
    write_toy(tmp_path)
    data = toy(tmp_path, resize=[4, 8], resize_mode="avg", sensor_size=[8, 16])
    assert data.recording_size == (8, 16) and data.sensor_size == (4, 8)
    assert data[0][0].shape == (4, 2, 4, 8)
    assert "resized to 4x8 (avg)" in data.describe()


def test_a_class_object_is_wrapped_as_well_as_a_name(tmp_path):
    write_toy(tmp_path)
    data = TonicDataset(ToyTonic, tmp_path, train=False, time_steps=3, cache_dir=False)
    assert data.name == "tonic:ToyTonic" and data.split == "sj" and data[0][0].shape == (3, 2, 8, 12)
    assert data.split_files()[0].startswith("left/recordings/left/")


# ---------------------------------------------------------------------- tonic's own DVSGesture

def write_tonic_gesture(root, users=10, events=40, seed=0):
    """tonic's DVSGesture layout, as its archives extract: ``DVSGesture/ibmGesture{Train,Test}.tar.gz``
    (tonic only checks that they exist) and ``ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy``,
    each an ``[N, 4]`` array of x, y, p, t in milliseconds; tonic wants at least 100 recordings a part."""
    rng = np.random.default_rng(seed)
    for folder in ("ibmGestureTrain", "ibmGestureTest"):
        os.makedirs(os.path.join(root, "DVSGesture", folder), exist_ok=True)
        open(os.path.join(root, "DVSGesture", f"{folder}.tar.gz"), "wb").close()
        for user in range(users):
            path = os.path.join(root, "DVSGesture", folder, f"user{user + 1:02d}_led")
            os.makedirs(path, exist_ok=True)
            for label in range(11):
                recording = np.stack([rng.integers(0, 128, events), rng.integers(0, 128, events),
                                      rng.integers(0, 2, events), np.sort(rng.integers(0, 6_000, events))], axis=1)
                np.save(os.path.join(path, f"{label}.npy"), recording)
    return root


@pytest.fixture(scope="module")
def gesture_root(tmp_path_factory):
    tonic()
    return write_tonic_gesture(str(tmp_path_factory.mktemp("tonic")))


def test_tonic_dvs_gesture_is_framed_as_tonic_reads_and_bins_it(gesture_root, tmp_path):
    tonic_module = tonic()
    for train in (True, False):
        data = create_dataset("tonic:DVSGesture", train=train, time_steps=5, root=gesture_root,
                              split_by="time_bins", cache_dir=str(tmp_path))
        reference = tonic_module.datasets.DVSGesture(save_to=gesture_root, train=train)
        assert len(data) == len(reference) == 110 and data.classes == tuple(reference.classes)
        assert data.split == "official" and data.sensor_size == (128, 128)
        to_frame = tonic_module.transforms.ToFrame(sensor_size=reference.sensor_size, n_time_bins=5)
        for index in (0, 57, 109):
            events, label = reference[index]
            frames, target = data[index]
            assert target == label
            np.testing.assert_array_equal(frames.numpy(), to_frame(events))
        listed = data.write_split_files(tmp_path).read_text().splitlines()
        part = "train" if train else "test"
        assert listed[0] == f"# tonic:DVSGesture split=official {part}: 110 files" and len(listed) == 111
        assert listed[1].startswith(f"{data.classes[data.targets[0]]}/ibmGesture{part.title()}/user")


def test_tonic_names_are_found_ignoring_case_and_an_unknown_one_is_named_with_close_ones(gesture_root):
    assert create_dataset("tonic:dvsgesture", train=False, time_steps=2, root=gesture_root,
                          cache_dir=False).classes[0] == "Hand clapping"
    with pytest.raises(ValueError, match=r"Unknown tonic data set 'NMIST'. Did you mean tonic:NMNIST.*tonic "
                                         r"1\.7\.\d+ has: ASLDVS, CIFAR10DVS"):
        create_dataset("tonic:NMIST", train=True, time_steps=2, root=gesture_root)
    with pytest.raises(ValueError, match="names no data set after 'tonic'"):
        create_dataset("tonic:", train=True, time_steps=2, root=gesture_root)


def test_a_missing_tonic_data_set_is_named_with_its_files_and_url(tmp_path):
    tonic()
    with pytest.raises(DatasetNotFoundError) as info:
        create_dataset("tonic:NMNIST", train=False, time_steps=2, root=str(tmp_path))
    assert f"tonic:NMNIST is missing or incomplete in {tmp_path / 'NMNIST'}: tonic's NMNIST looks there for " \
           "test.zip, extracted into Test/." in str(info.value)
    assert "https://data.mendeley.com/" in str(info.value)
    assert os.listdir(tmp_path) == []  # nothing downloaded, nothing made


def test_a_tonic_data_set_trains_a_tiny_model_one_epoch(gesture_root, tmp_path):
    from spikeformers.engine.config import load_config
    from spikeformers.engine.train import train

    out = tmp_path / "run"
    summary = train(load_config(None, dataset="tonic:DVSGesture", data_root=gesture_root, epochs=1, time_steps=2,
                                batch_size=8, limit_samples=16, out=str(out), workers=0,
                                dataset_options={"resize": 16, "cache_dir": str(tmp_path / "frames")},
                                model_options={"img_size": 16, "num_classes": 11}))
    assert summary["dataset"] == "tonic:DVSGesture" and summary["epochs"] == 1
    assert 0.0 <= summary["test_acc1"] <= 1.0 and (out / "best.pt").is_file()


def test_data_prepare_show_and_options_take_a_tonic_name(gesture_root, tmp_path, capsys):
    assert main(["data", "options", "--dataset", "tonic:DVSGesture"]) == 0
    listed = capsys.readouterr().out
    assert "overlap = 0.0" in listed and "split = 'official'" in listed
    cache = ["--option", f"cache_dir={tmp_path}"]
    assert main(["data", "prepare", "--dataset", "tonic:DVSGesture", "--root", gesture_root, "--time-steps", "3",
                 "--split-by", "time_bins", *cache]) == 0
    prepared = capsys.readouterr().out
    assert "tonic:DVSGesture train (split 'official'): 110 samples in 11 classes" in prepared
    assert "tonic:DVSGesture test (split 'official'): 110 samples" in prepared
    pytest.importorskip("PIL.Image", reason="spikeformers data show writes GIFs with Pillow (optional)")
    out = tmp_path / "gesture.gif"
    assert main(["data", "show", "--dataset", "tonic:DVSGesture", "--root", gesture_root, "--index", "3",
                 "--time-steps", "3", "--split-by", "time_bins", *cache, "--out", str(out)]) == 0
    assert out.read_bytes()[:6] == b"GIF89a" and "tonic:DVSGesture test #3" in capsys.readouterr().out
