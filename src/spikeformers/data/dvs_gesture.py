"""DVS128 Gesture (Amir et al. 2017): 11 hand and arm gestures of 29 people under 5 lightings, 128x128.

The data set (``DvsGesture.tar.gz``) holds 122 recordings ``userNN_<lighting>.aedat``
in AEDAT 3.1, each with ``userNN_<lighting>_labels.csv`` (a header line, then
rows ``class,startTime_usec,endTime_usec``, classes 1..11), and the official
split: ``trials_to_train.txt`` (users 1..23) and ``trials_to_test.txt``
(users 24..29), one recording file name a line.

A sample is one label row: the events of its recording with
``startTime_usec <= t < endTime_usec``, in file order (as SpikingJelly cuts
them), integrated into T frames. The full data set gives 1,176 train and 288
test samples. A sample is named ``<recording>_<k>``, ``k`` counting that
class's rows within the recording from 0 (SpikingJelly's names), and the
samples are ordered by class, then by name, as SpikingJelly's folders list
them, so index ``i`` is the same sample in both libraries.

Where the data can be (``root``), in the order looked for with ``source='auto'``:

1. a SpikingJelly frame cache ``<root>/frames_number_{T}_split_by_{mode}/{train|test}/<0..10>/*.npz``,
2. a SpikingJelly event cache ``<root>/events_np/{train|test}/<0..10>/*.npz``,
3. the extracted archive: ``<root>``, ``<root>/DvsGesture`` or
   ``<root>/extract/DvsGesture`` holding the trial lists, recordings and label files.

Each recording is read once for all its samples when the frame cache is
built (``cache_dir``, default ``<root>/spikeformers_frames``; False: none).
"""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np

from .folder_dataset import DatasetNotFoundError, EventFolderDataset, default_cache_dir, find_class_folders

CLASSES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
    "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
    "arm_roll", "air_drums", "air_guitar", "other_gestures",
)
SENSOR_SIZE = (128, 128)
SAMPLES = {True: 1176, False: 288}
TRIAL_LISTS = {True: "trials_to_train.txt", False: "trials_to_test.txt"}
SOURCES = ("auto", "aedat", "events_np", "frames")
PUBLISHED = ("DVS128 Gesture is published by IBM Research (Amir et al. 2017, 'A Low Power, Fully Event-Based "
             "Gesture Recognition System', CVPR), https://research.ibm.com/interactive/dvsgesture/ : download "
             "DvsGesture.tar.gz and extract it into the data root")


def read_trial_list(path: str) -> list[str]:
    """The recording file names listed in an official trial list (blank lines skipped)."""
    with open(path) as file:
        return [line.strip() for line in file if line.strip()]


def read_labels(path: str) -> np.ndarray:
    """The rows ``(class 1..11, start, end)`` of a ``*_labels.csv`` as int64 ``[n, 3]``; a header line
    is skipped. A malformed row is a ValueError naming the file and the line."""
    rows = []
    with open(path) as file:
        for number, line in enumerate(file, start=1):
            fields = [field.strip() for field in line.strip().split(",")]
            if not line.strip() or (number == 1 and not fields[0].lstrip("-").isdigit()):
                continue
            try:
                label, start, end = (int(field) for field in fields)
            except ValueError:
                raise ValueError(f"{path}, line {number}: expected 'class,startTime_usec,endTime_usec' "
                                 f"(integers), got {line.strip()!r}") from None
            if not 1 <= label <= len(CLASSES) or end < start:
                raise ValueError(f"{path}, line {number}: class must be 1..{len(CLASSES)} and the end not "
                                 f"before the start; got {line.strip()!r}")
            rows.append((label, start, end))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def find_archive_folder(root: str) -> str | None:
    """The first of root, root/DvsGesture, root/extract/DvsGesture holding both trial lists."""
    for folder in (root, os.path.join(root, "DvsGesture"), os.path.join(root, "extract", "DvsGesture")):
        if all(os.path.isfile(os.path.join(folder, name)) for name in TRIAL_LISTS.values()):
            return folder
    return None


def archive_samples(folder: str, train: bool):
    """``(samples, windows)`` of the train or test part of the extracted archive in ``folder``:
    ``(class, <recording>_<k>, recording path)`` and ``(start, end)`` per label row, in
    SpikingJelly's order. Missing recordings or label files are a DatasetNotFoundError."""
    trials = read_trial_list(os.path.join(folder, TRIAL_LISTS[train]))
    missing = []
    for name in trials:
        stem = os.path.splitext(name)[0]
        for needed in (name, f"{stem}_labels.csv"):
            if not os.path.isfile(os.path.join(folder, needed)):
                missing.append(needed)
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise DatasetNotFoundError(
            f"DVS128 Gesture in {folder!r} is incomplete: {TRIAL_LISTS[train]} lists {len(trials)} recordings, "
            f"each <name>.aedat with <name>_labels.csv beside it, but {len(missing)} files are missing: "
            f"{shown}.\n{PUBLISHED}.")
    rows = []
    for name in trials:
        stem = os.path.splitext(name)[0]
        seen = [0] * len(CLASSES)
        for label, start, end in read_labels(os.path.join(folder, f"{stem}_labels.csv")):
            k = seen[label - 1]
            seen[label - 1] += 1
            rows.append((label - 1, f"{stem}_{k}", os.path.join(folder, name), (int(start), int(end))))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [(CLASSES[c], name, path) for c, name, path, _ in rows], [window for *_, window in rows]


def locate(root: str, train: bool, source: str, time_steps: int, split_by: str):
    """``(kind, folder, samples, windows)``; kind 'aedat', 'events_np' or 'frames' (windows None
    for the caches). Raises DatasetNotFoundError naming what was expected where."""
    part = "train" if train else "test"
    numbered = [str(i) for i in range(len(CLASSES))]  # SpikingJelly's class folders
    frames_folder = os.path.join(root, f"frames_number_{time_steps}_split_by_{split_by}", part)
    if source in ("auto", "frames", "events_np"):
        auto = source == "auto"
        candidates = [c for c in [("frames", frames_folder, (".npz",), auto),
                                  ("events_np", os.path.join(root, "events_np", part), (".npz",), auto)]
                      if auto or c[0] == source]
        kind, folder, files = find_class_folders(candidates, numbered)
        if kind is not None:
            samples = [(CLASSES[int(c)], name, os.path.join(folder, c, name)) for c in numbered for name in files[c]]
            return kind, folder, samples, None
        if not auto:
            raise DatasetNotFoundError(f"No SpikingJelly {source} cache for DVS128 Gesture ({part}) in {root!r}: "
                                       f"expected class folders 0..10 of .npz files. Found:{files}\n{PUBLISHED}.")
    folder = find_archive_folder(root)
    if folder is None:
        raise DatasetNotFoundError(
            f"DVS128 Gesture is missing in {root!r}: expected the extracted DvsGesture.tar.gz, i.e. "
            f"{' and '.join(TRIAL_LISTS.values())} with the AEDAT 3.1 recordings userNN_<lighting>.aedat "
            f"and their userNN_<lighting>_labels.csv, in {root!r} or {os.path.join(root, 'DvsGesture')!r} "
            f"(or a SpikingJelly cache {os.path.join(root, 'events_np', part, '<0..10>', '*.npz')}).\n{PUBLISHED}.")
    samples, windows = archive_samples(folder, train)
    return "aedat", folder, samples, windows


def _digest(windows) -> str | None:
    return None if windows is None else hashlib.sha256(repr(windows).encode()).hexdigest()[:16]


class DVSGesture(EventFolderDataset):
    """DVS128 Gesture as ``(float32 frames [T, 2, 128, 128], class 0..10)``; see the module docstring.

    Options: ``split_by`` ('number', 'time', 'time_bins'), ``source`` ('auto',
    'aedat', 'events_np', 'frames'), ``cache_dir`` (None: under root; False:
    no disk cache), ``workers`` (cache build), ``resize`` / ``resize_mode``
    (``spikeformers.data.resize``; BrainCog uses 64x64 bilinear),
    ``expected_samples`` (None to skip the completeness warning).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        time_steps: int = 16,
        *,
        split: str = "official",
        split_by: str = "number",
        source: str = "auto",
        cache_dir: str | os.PathLike | None | bool = None,
        workers: int | None = None,
        resize: int | tuple[int, int] | None = None,
        resize_mode: str = "bilinear",
        expected_samples: int | None | bool = True,
    ):
        if root is None:
            raise DatasetNotFoundError(f"dvs_gesture needs a data root (--data-root); {PUBLISHED}.")
        if split != "official":
            raise ValueError(f"DVS128 Gesture has one split, 'official' (its trial lists); got {split!r}")
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; valid: {SOURCES}")
        root = os.fspath(root)
        kind, folder, samples, windows = locate(root, train, source, time_steps, split_by)
        expected = SAMPLES[train] if expected_samples is True else expected_samples
        if expected and len(samples) != expected:
            warnings.warn(f"DVS128 Gesture in {folder} is incomplete: expected {expected:,} "
                          f"{'train' if train else 'test'} samples, found {len(samples):,}. {PUBLISHED}.",
                          stacklevel=2)
        if not samples:
            raise DatasetNotFoundError(f"DVS128 Gesture in {folder} has no {'train' if train else 'test'} "
                                       f"samples.\n{PUBLISHED}.")
        super().__init__(
            name="dvs_gesture",
            samples=samples,
            classes=CLASSES,
            sensor_size=SENSOR_SIZE,
            time_steps=time_steps,
            split_by=split_by,
            source="frames" if kind == "frames" else "events",
            reader={"format": "aedat3"} if kind == "aedat" else {"format": "npz"},
            cache_dir=default_cache_dir(cache_dir, root),
            # the label rows decide the frames as much as the recordings do
            key_params={"source": kind, "part": "train" if train else "test", "windows": _digest(windows)},
            workers=workers,
            split=split,
            train=train,
            windows=windows,
            resize=resize,
            resize_mode=resize_mode,
        )
        self.root = root
        self.data_folder = folder
        self.source_kind = kind
