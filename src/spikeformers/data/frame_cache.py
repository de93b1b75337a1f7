"""A disk cache of integrated frames, one file per recording.

Layout: ``<cache_dir>/<key>/<class>/<recording stem>.npz``, each holding one
array ``frames`` ``[T, 2, H, W]`` (the layout of SpikingJelly's frame caches,
so ``read_frames_npz`` reads them too), compressed (event frames are sparse).

- **Keyed**: ``<key>`` is a readable prefix plus a hash of every parameter
  that changes the frames (``cache_key``): the data set, where the events come
  from (format), orientation, T, ``split_by``, sensor size and
  ``CACHE_FORMAT``. A different T gets a new folder; nothing stale is read.
- **Compact**: counts are stored as ``uint8`` when they all fit, else
  ``uint16``, else ``int32`` (``compact_counts`` checks the range before
  casting: nothing wraps around).
- **Atomic**: each file is written under a temporary name (``.<name>.*.tmp``)
  and renamed with ``os.replace``; a reader only ever opens final names, so a
  half-written file (a crash, a full disk, Ctrl-C) is never taken as cached.
- **Resumable**: ``build`` skips files already cached.
- **Grouped**: ``build_groups`` makes several cached samples from one source
  (DVS Gesture cuts each recording into one sample per label row), reading
  the source once.
- **Parallel**: ``build`` runs the missing files in a process pool (or serially
  with ``workers <= 1``), with a tqdm progress bar.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import multiprocessing
import os
import tempfile
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

# Part of every key: bump it when a change in this library changes cached frames.
CACHE_FORMAT = 1
_SUFFIX = ".npz"


def cache_key(prefix: str, **params) -> str:
    """``<prefix>_<16 hex digits>``, the digits a hash of ``params`` and ``CACHE_FORMAT``."""
    description = json.dumps({"cache_format": CACHE_FORMAT, **params}, sort_keys=True, default=list)
    digest = hashlib.sha256(description.encode()).hexdigest()[:16]
    return f"{prefix}_{digest}"


def compact_counts(frames: np.ndarray) -> np.ndarray:
    """Event counts in the smallest of uint8 / uint16 / int32 that holds them exactly."""
    frames = np.asarray(frames)
    if frames.size == 0:
        return frames.astype(np.uint8)
    low, high = int(frames.min()), int(frames.max())
    if low < 0:
        raise ValueError(f"frames hold a negative count ({low}); event counts cannot be negative")
    for dtype in (np.uint8, np.uint16, np.int32):
        if high <= np.iinfo(dtype).max:
            return frames.astype(dtype)
    raise ValueError(f"a frame count of {high} does not fit int32")


def atomic_save_frames(path: str, frames: np.ndarray) -> None:
    """Write ``frames`` (compacted) to ``path`` via a temporary file and ``os.replace``."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, frames=compact_counts(frames))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def load_frames(path: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        return archive["frames"]


class FrameCache:
    """Frames on disk under ``directory`` (already the keyed folder), by relative name.

    ``relative`` names are ``<class>/<stem>``; the file is ``<relative>.npz``.
    """

    def __init__(self, directory: str | os.PathLike, description: dict | None = None):
        self.directory = os.fspath(directory)
        self.description = description

    def path(self, relative: str) -> str:
        return os.path.join(self.directory, relative + _SUFFIX)

    def has(self, relative: str) -> bool:
        return os.path.isfile(self.path(relative))

    def load(self, relative: str) -> np.ndarray:
        return load_frames(self.path(relative))

    def save(self, relative: str, frames: np.ndarray) -> None:
        atomic_save_frames(self.path(relative), frames)

    def missing(self, relatives: Sequence[str]) -> list[str]:
        return [relative for relative in relatives if not self.has(relative)]

    def write_description(self) -> None:
        """``cache.json``: the parameters behind the key, for people looking at the folder."""
        if self.description is None:
            return
        path = os.path.join(self.directory, "cache.json")
        if os.path.exists(path):
            return
        os.makedirs(self.directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".cache.json.", suffix=".tmp")
        with os.fdopen(handle, "w") as file:
            json.dump({"cache_format": CACHE_FORMAT, **self.description}, file, indent=2, sort_keys=True, default=list)
        os.replace(temporary, path)

    def build(
        self,
        jobs: Sequence[tuple[str, str]],
        make_frames: Callable[[str], np.ndarray],
        workers: int | None = None,
        desc: str = "caching frames",
    ) -> int:
        """Cache every ``(relative, source path)`` not cached yet; returns how many were built.

        ``make_frames(source_path)`` must be picklable (a module-level function
        or a ``functools.partial`` of one) for the process pool. The first
        error (e.g. an ``EventFileError`` naming a corrupt file) is raised
        after the pool stops; the files finished until then stay cached.
        """
        grouped = [((relative,), source) for relative, source in jobs]
        return self.build_groups(grouped, functools.partial(_as_group, make_frames), workers, desc)

    def build_groups(
        self,
        jobs: Sequence[tuple[Sequence[str], object]],
        make_all: Callable[[object], Sequence[np.ndarray]],
        workers: int | None = None,
        desc: str = "caching frames",
    ) -> int:
        """Like ``build`` for sources that hold several samples (a DVS Gesture recording cut
        at its labels): ``jobs`` are ``(relatives, source)`` and ``make_all(source)`` returns
        the frames of every relative, in order, so a recording is read once. A job runs when
        any of its relatives is missing; returns how many jobs ran."""
        todo = [(tuple(relatives), source) for relatives, source in jobs if self.missing(relatives)]
        if not todo:
            return 0
        self.write_description()
        workers = default_workers() if workers is None else int(workers)
        bar = tqdm(total=len(todo), desc=desc, unit="file", disable=None, dynamic_ncols=True)
        try:
            if workers <= 1 or len(todo) == 1:
                for relatives, source in todo:
                    _build_group([self.path(r) for r in relatives], source, make_all)
                    bar.update()
            else:
                context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
                with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)), mp_context=context) as pool:
                    futures = [pool.submit(_build_group, [self.path(r) for r in relatives], source, make_all)
                               for relatives, source in todo]
                    try:
                        for future in concurrent.futures.as_completed(futures):
                            future.result()
                            bar.update()
                    except BaseException:
                        for future in futures:
                            future.cancel()
                        raise
        finally:
            bar.close()
        return len(todo)


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _as_group(make_frames: Callable[[str], np.ndarray], source: str) -> list[np.ndarray]:
    return [make_frames(source)]


def _build_group(paths: Sequence[str], source, make_all: Callable[[object], Sequence[np.ndarray]]) -> None:
    all_frames = make_all(source)
    if len(all_frames) != len(paths):
        raise ValueError(f"{source}: made {len(all_frames)} samples, expected {len(paths)}")
    for path, frames in zip(paths, all_frames):
        if not os.path.isfile(path):
            atomic_save_frames(path, frames)
