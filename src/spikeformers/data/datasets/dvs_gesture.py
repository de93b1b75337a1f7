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
from dataclasses import dataclass

import numpy as np

from ..missing import DatasetNotFoundError
from ..registry import option, register_dataset
from .event_dataset import EventDataset
from .layouts import Found, Where, spikingjelly_events, spikingjelly_frames

CLASSES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
    "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
    "arm_roll", "air_drums", "air_guitar", "other_gestures",
)
SAMPLES = {True: 1176, False: 288}
TRIAL_LISTS = {True: "trials_to_train.txt", False: "trials_to_test.txt"}
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


def _archive_folders(root: str) -> list[str]:
    return [root, os.path.join(root, "DvsGesture"), os.path.join(root, "extract", "DvsGesture")]


def find_archive_folder(root: str) -> str | None:
    """The first of root, root/DvsGesture, root/extract/DvsGesture holding both trial lists."""
    for folder in _archive_folders(root):
        if all(os.path.isfile(os.path.join(folder, name)) for name in TRIAL_LISTS.values()):
            return folder
    return None


def archive_samples(folder: str, train: bool):
    """``(samples, windows)`` of the train or test part of the extracted archive in ``folder``:
    ``(class, <recording>_<k>, recording path)`` and ``(start, end)`` per label row, in
    SpikingJelly's order (by class, then by name). Missing recordings or label files are a
    DatasetNotFoundError."""
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


@dataclass(frozen=True)
class TrialLists:
    """The extracted ``DvsGesture.tar.gz`` (a layout, see ``layouts``): the official trial lists, the
    AEDAT 3.1 recordings they name, and each one's label rows, a sample a row."""

    kind: str = "aedat"
    source: str = "aedat"
    format: str = "aedat3"

    def find(self, where: Where) -> Found | list[str]:
        folder = find_archive_folder(where.root)
        if folder is None:
            return [f"neither {' nor '.join(TRIAL_LISTS.values())} in any of {', '.join(_archive_folders(where.root))}"]
        samples, windows = archive_samples(folder, where.train)
        found = Found(self.kind, self.source, self.format, folder, {name: [] for name in CLASSES}, in_parts=True,
                      paths={}, windows={})
        for (name, file, path), window in zip(samples, windows):
            found.files[name].append(file)
            found.paths[(name, file)] = path
            found.windows[(name, file)] = window
        return found

    def expected(self, where: Where) -> str:
        return (f"the extracted DvsGesture.tar.gz, i.e. {' and '.join(TRIAL_LISTS.values())} with the AEDAT 3.1 "
                f"recordings userNN_<lighting>.aedat and their userNN_<lighting>_labels.csv, in "
                f"{' or '.join(map(repr, _archive_folders(where.root)[:2]))}")


@register_dataset("dvs_gesture")
class DVSGesture(EventDataset):
    """DVS128 Gesture as ``(float32 frames [T, 2, 128, 128], class 0..10)``; see the module docstring."""

    name = "dvs_gesture"
    title = "DVS128 Gesture"
    published = PUBLISHED
    sensor_size = (128, 128)
    classes = CLASSES
    layouts = (spikingjelly_frames(parts=True, numbered=True), spikingjelly_events(parts=True, numbered=True),
               TrialLists())

    expected_samples: int | None | bool = option(
        True, "samples a complete part holds (True: 1,176 train, 288 test; None or False: no warning)")

    def check_complete(self, found: Found) -> None:
        expected = SAMPLES[bool(self.train)] if self.expected_samples is True else self.expected_samples
        if expected and found.count() != expected:
            self.warn_incomplete(found.folder, f"{expected:,} {'train' if self.train else 'test'} samples",
                                 f"{found.count():,}")

    def key_params(self, found: Found, windows) -> dict:
        # the label rows decide the frames as much as the recordings do
        digest = None if windows is None else hashlib.sha256(repr(windows).encode()).hexdigest()[:16]
        return {**super().key_params(found, windows), "windows": digest}
