"""HARDVS (Wang et al. 2024): 300 human activities recorded by a DAVIS346, 260x346.

The released event files (the "compact event file" of the HARDVS page, ``MINI_HARDVS_files.zip``,
whose ``action_NNN.zip`` extract to ``action_NNN/``) are ``.npz`` archives of the arrays t, x, y,
p (``readers.npz``), beside the official split lists ``train_label.txt``, ``val_label.txt`` and
``test_label.txt``, one recording a line, ``action_NNN/<recording>`` first (then its label):

    <root>/train_label.txt, val_label.txt, test_label.txt
    <root>/action_001/dvSave-2021_10_15_19_18_02.npz, ...

(or all of it under ``<root>/HARDVS``). The classes are ``action_001`` .. ``action_300``. The
split is the official one: ``train=True`` reads ``train_label.txt``, ``train=False`` reads
``test_label.txt``, or ``val_label.txt`` with ``test_list='val'``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..missing import DatasetNotFoundError
from ..registry import option, register_dataset
from .event_dataset import EventDataset
from .layouts import Found, Where

CLASSES = tuple(f"action_{i:03d}" for i in range(1, 301))
LISTS = ("train", "val", "test")
PUBLISHED = ("HARDVS is published by Wang, Wu, Jiang, Bao, Zhu, Li, Wang and Tian 2024 ('HARDVS: Revisiting Human "
             "Activity Recognition with Dynamic Vision Sensors', AAAI), https://github.com/Event-AHU/HARDVS : download "
             "the compact event files (MINI_HARDVS_files.zip) and train_label.txt, val_label.txt, test_label.txt, "
             "and extract the action_NNN.zip inside it into the data root, beside the three lists")


def list_name(kind: str) -> str:
    return f"{kind}_label.txt"


def read_label_list(path: str) -> list[tuple[str, str]]:
    """``(class, recording stem)`` of each line ``action_NNN/<recording> [label]`` of a split list (blank
    lines skipped); a line naming no ``action_001`` .. ``action_300`` recording is a ValueError naming it."""
    entries = []
    with open(path) as file:
        for number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            name, _, stem = fields[0].partition("/")
            if name not in CLASSES or not stem or "/" in stem:
                raise ValueError(f"{path}, line {number}: expected 'action_NNN/<recording> [label]' with NNN in "
                                 f"001..300, got {line.strip()!r}")
            entries.append((name, os.path.splitext(stem)[0]))
    return entries


def _folders(root: str) -> list[str]:
    return [root, os.path.join(root, "HARDVS")]


@dataclass(frozen=True)
class LabelLists:
    """HARDVS's release (a layout, see ``layouts``): a split list names the recordings of a part."""

    list_kind: str = "test"
    kind: str = "npz"
    source: str = "npz"
    format: str = "npz"

    def find(self, where: Where) -> Found | list[str]:
        kind = "train" if where.train else self.list_kind
        for folder in _folders(where.root):
            listed = os.path.join(folder, list_name(kind))
            if os.path.isfile(listed):
                return self._found(folder, listed)
        return [f"no {list_name(kind)} in {' or '.join(_folders(where.root))}"]

    def _found(self, folder: str, listed: str) -> Found:
        files: dict[str, list[str]] = {name: [] for name in CLASSES}
        missing = []
        for name, stem in read_label_list(listed):
            if os.path.isfile(os.path.join(folder, name, f"{stem}.npz")):
                files[name].append(f"{stem}.npz")
            else:
                missing.append(f"{name}/{stem}.npz")
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DatasetNotFoundError(f"HARDVS in {folder!r} is incomplete: {os.path.basename(listed)} lists "
                                       f"{len(missing)} recordings that are not there: {shown}.\n{PUBLISHED}.")
        return Found(self.kind, self.source, self.format, folder, {name: sorted(names) for name, names in files.items()},
                     in_parts=True)

    def expected(self, where: Where) -> str:
        kind = "train" if where.train else self.list_kind
        return (f"the released compact event files, {list_name(kind)} and the action_NNN/*.npz recordings it names "
                f"(NNN 001..300), in {' or '.join(map(repr, _folders(where.root)))}")


@register_dataset("hardvs")
class HARDVS(EventDataset):
    """HARDVS as ``(float32 frames [T, 2, 260, 346], action)``; see the module docstring."""

    name = "hardvs"
    title = "HARDVS"
    published = PUBLISHED
    sensor_size = (260, 346)
    classes = CLASSES
    layouts = (LabelLists(),)

    test_list: str = option("test", "the official list the test part (train=False) reads: 'test' or 'val'")

    def __post_init__(self):
        if self.test_list not in ("test", "val"):
            raise ValueError(f"test_list must be 'test' or 'val'; got {self.test_list!r}")
        self.layouts = (LabelLists(self.test_list),)
        super().__post_init__()

    def key_params(self, found: Found, windows) -> dict:
        return {"source": found.source, "part": "train" if self.train else self.test_list}
