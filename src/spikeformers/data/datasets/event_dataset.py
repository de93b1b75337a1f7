"""``EventDataset``: an event data set written as a description; this class does the rest.

A data set is a subclass that declares, as class attributes, what it is:

- ``name`` (the registry's), ``title`` and ``published`` (the paper and where
  to download it, for every message about missing files);
- ``sensor_size`` ``(H, W)`` and ``classes`` (None: the class folders found);
- ``layouts``: where the recordings can lie under the root and in which
  format, in the order they are looked for (``layouts.py``);
- ``splits``: the values of its ``split`` option: ``'official'`` when it
  ships a split (as part folders, named in ``parts``, or as lists); a data
  set published without one derives from ``UnsplitEventDataset``, which
  offers the per-class rules of ``splits.py``;

and its own options as fields, ``option(default, help)``, beside the common
ones declared here (``split``, ``split_by``, ``source``, ``cache_dir``,
``workers``, ``resize``, ``resize_mode``). Every subclass is made a dataclass of
keyword-only options when it is defined, so its signature is its options,
which the registry and the CLI read.

Built with ``(root, train, time_steps, **options)``, it checks the root,
finds the first complete layout, takes the part of the split, warns when the
data set looks incomplete, and serves the recordings through
``EventFolderDataset`` (frames, frame cache, resize). A subclass may refine a
step by overriding ``classes_found``, ``check_found``, ``check_complete``,
``reader_options`` or ``key_params``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

from ..frames import SPLIT_MODES, check_frame_options
from ..missing import DatasetNotFoundError, data_root
from ..registry import option
from ..resize import RESIZE_MODES
from .folder import EventFolderDataset
from .layouts import Found, Where
from .splits import split_folders

DEFAULT_CACHE_NAME = "spikeformers_frames"
# The options a per-class split rule reads, when the data set has them (splits.split_folders).
SPLIT_PARAMETERS = ("train_fraction", "braincog_train", "tebn_test", "seed")


@dataclass(eq=False, repr=False)
class EventDataset(EventFolderDataset):
    """An event data set from its description (module docstring): ``(float32 frames [T, 2, H, W], label)``."""

    name: ClassVar[str]
    title: ClassVar[str]
    published: ClassVar[str]
    sensor_size: ClassVar[tuple[int, int]]  # the sensor's; a built data set's is the size it serves (resize)
    classes: ClassVar[tuple[str, ...] | None] = None
    layouts: ClassVar[tuple]
    splits: ClassVar[tuple[str, ...]] = ("official",)
    parts: ClassVar[dict[bool, str] | None] = None
    class_folder: ClassVar[str] = "<class>"

    root: str | os.PathLike | None
    train: bool = True
    time_steps: int = 16
    _: KW_ONLY
    split: str = option("official", "the train/test split: 'official', the one the data set ships")
    split_by: str = option("number", f"how events are cut into the T frames: one of {', '.join(SPLIT_MODES)}")
    source: str = option("auto", "where the recordings are read from: 'auto' (the first layout found) or "
                                   "one by name, e.g. 'frames' or 'events_np' (SpikingJelly's caches)")
    cache_dir: str | os.PathLike | None | bool = option(
        None, f"the frame cache's folder (None: <root>/{DEFAULT_CACHE_NAME}; False: no cache on disk)")
    workers: int | None = option(None, "processes building the frame cache (None: up to 8; 0 or 1: none)")
    resize: int | tuple[int, int] | None = option(None, "(H, W) or a side to resize the frames to (None: keep)")
    resize_mode: str = option("bilinear", f"how frames are resized: {' or '.join(RESIZE_MODES)} (data.resize)")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclass(cls, eq=False, repr=False, kw_only=True)

    def __post_init__(self):
        root = data_root(self.root, self.name, self.title, self.published, self._expected_at)
        check_frame_options(self.time_steps, self.split_by)
        if self.split not in self.splits:
            raise ValueError(f"unknown split {self.split!r} for {self.title}; valid: {self.splits}")
        sources = ("auto",) + tuple(dict.fromkeys(layout.source for layout in self.layouts))
        if self.source not in sources:
            raise ValueError(f"unknown source {self.source!r}; valid: {sources}")
        where = self._where(root)
        found = self.locate(where)
        found.files = self.classes_found(found.files)
        self.check_found(found)
        self.check_complete(found)
        chosen = self.choose(found)
        part = "train" if self.train else "test"
        if not chosen and found.in_parts:
            raise DatasetNotFoundError(f"{self.title} in {found.folder} has no {part} samples.\n{self.published}.")
        if not chosen:
            raise ValueError(f"the {part} part of split {self.split!r} is empty for the {found.count()} "
                             f"recordings in {found.folder}")
        windows = None if found.windows is None else [found.windows[pair] for pair in chosen]
        cache_dir = self.cache_dir
        if cache_dir is None or cache_dir is True:
            cache_dir = os.path.join(root, DEFAULT_CACHE_NAME)
        # EventFolderDataset sets what is served over some option fields: source becomes 'events' or
        # 'frames' (source_kind keeps the layout's), resize the checked size, as before there were fields.
        super().__init__(
            name=self.name,
            samples=[(name, file, found.path(name, file)) for name, file in chosen],
            classes=tuple(found.files),
            sensor_size=type(self).sensor_size,
            time_steps=self.time_steps,
            split_by=self.split_by,
            source="frames" if found.format is None else "events",
            reader=self.reader_options(found),
            cache_dir=None if cache_dir is False else cache_dir,
            key_params=self.key_params(found, windows),
            workers=self.workers,
            split=self.split,
            train=self.train,
            windows=windows,
            resize=self.resize,
            resize_mode=self.resize_mode,
        )
        self.root = root
        self.data_folder = found.folder
        self.source_kind = found.kind

    # ------------------------------------------------------------------ the steps

    def _where(self, root: str) -> Where:
        return Where(root, bool(self.train), self.time_steps, self.split_by, type(self).classes, type(self).parts,
                     auto=self.source == "auto", class_folder=self.class_folder)

    def locate(self, where: Where) -> Found:
        """The first layout (of the chosen source) complete under the root, or a
        ``DatasetNotFoundError`` saying what was expected where and what each tried place lacks."""
        reports = []
        for layout in self.layouts:
            if self.source in ("auto", layout.source):
                found = layout.find(where)
                if isinstance(found, Found):
                    return found
                reports.extend(found)
        # two layouts of one folder (AEDAT 2.0 and AEDAT 4 class folders) may lack the same folders
        found_text = "".join(f"\n  {report}" for report in dict.fromkeys(reports)) or " nothing"
        raise DatasetNotFoundError(f"{self.title}{self._which_part()} is missing or incomplete in {where.root!r}. "
                                   f"Expected {self._expected(where)}. Found:{found_text}\n{self.published}.")

    def classes_found(self, files: dict[str, list[str]]) -> dict[str, list[str]]:
        """The classes to serve, from the files found per class (all of them by default)."""
        return files

    def check_found(self, found: Found) -> None:
        """Refuse options that do not fit the recordings found (none by default)."""

    def check_complete(self, found: Found) -> None:
        """Warn when the data set found looks incomplete (no check by default)."""

    def choose(self, found: Found) -> list[tuple[str, str]]:
        """``(class, file)`` of the samples of this part, classes in order: all of them when the
        files found are one part already, else the part of the per-class split."""
        if found.in_parts:
            return [(name, file) for name, files in found.files.items() for file in files]
        parameters = {key: getattr(self, key) for key in SPLIT_PARAMETERS if hasattr(self, key)}
        return split_folders(found.files, tuple(found.files), self.split, self.train, **parameters)

    def reader_options(self, found: Found) -> dict[str, Any]:
        """The ``read_events`` options of the recordings found (their format)."""
        return {} if found.format is None else {"format": found.format}

    def key_params(self, found: Found, windows) -> dict[str, Any]:
        """What, besides T, split_by, the sensor and the reader, makes the cached frames differ: the
        source, and the part when the part is a folder of its own (its names recur in the other)."""
        return {"source": found.source, **({"part": "train" if self.train else "test"} if found.in_parts else {})}

    def warn_incomplete(self, folder: str, expected: str, found: str) -> None:
        warnings.warn(f"{self.title} in {folder} is incomplete: expected {expected}, found {found}. "
                      f"{self.published}.", stacklevel=5)

    # ------------------------------------------------------------------ messages

    def _which_part(self) -> str:
        parts = type(self).parts
        return f" ({parts[bool(self.train)]})" if parts else ""

    def _expected(self, where: Where) -> str:
        """What each layout expects, the original files first, then SpikingJelly's caches, and the classes."""
        layouts = sorted(self.layouts, key=lambda layout: getattr(layout, "cache", False))
        text = ", or ".join(layout.expected(where) for layout in layouts)
        if where.classes:
            names = where.classes if len(where.classes) <= 4 else (*where.classes[:3], "...", where.classes[-1])
            text += f" ({where.class_folder}: {', '.join(names)})"
        return text

    def _expected_at(self, root: str) -> str:
        return self._expected(self._where(root))


class UnsplitEventDataset(EventDataset):
    """An event data set published without a split: it offers the per-class rules of ``splits.py``
    (``'sj'``, the default, and ``'random'``; a subclass may list more in ``splits``)."""

    splits = ("sj", "random")

    split: str = option("sj", "per class, 'sj' (the first ceil(train_fraction n) file names in lexicographic "
                              "order train) or 'random' (seeded); see data.datasets.splits")
    seed: int = option(0, "the seed of split='random'")
    train_fraction: float = option(0.9, "the share of each class that trains, for split='sj' and 'random'")
