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
  and renamed with ``os.replace`` (``spikeformers.atomic``); a reader only
  ever opens final names, so a half-written file (a crash, a full disk,
  Ctrl-C) is never taken as cached. A full disk is a ``DiskFullError`` naming
  the file.
- **Checked when read**: ``load_frames`` reads the array's header first and
  refuses (``CacheFileError``) a file that is not one ``frames`` array of the
  cache's shape in a count type, before reading its data; the data set then
  rebuilds it.
- **Resumable**: ``build`` skips files already cached (and rebuilds empty ones).
- **Grouped**: ``build_groups`` makes several cached samples from one source
  (DVS Gesture cuts each recording into one sample per label row), reading
  the source once.
- **Parallel**: ``build`` runs the missing files in a process pool (or serially
  with ``workers <= 1``), with a tqdm progress bar; on Linux the workers die
  with the process that started them.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import zipfile
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from ...atomic import atomic_write

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
    compact = compact_counts(frames)
    atomic_write(path, lambda file: np.savez_compressed(file, frames=compact))


class CacheFileError(ValueError):
    """A cache file that is not what the cache writes (damaged, emptied, or of other settings)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


_MEMBER = "frames.npy"
# What ``compact_counts`` writes: (kind, bytes per count).
_COUNT_TYPES = {("u", 1), ("u", 2), ("i", 4)}


def load_frames(path: str, shape: Sequence[int] | None = None) -> np.ndarray:
    """The frames of a cache file, or a ``CacheFileError`` saying what is wrong with it.

    The file must hold exactly one array, ``frames``, of a count type, with
    ``shape`` when given (else 4 dimensions). Its header is checked before
    any data is read, so a file declaring a huge array costs nothing; the
    data are then read whole and checked against the zip's CRC.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if names != [_MEMBER]:
                raise CacheFileError(path, f"holds {names[:4]}, not the one array 'frames'")
            info = archive.getinfo(_MEMBER)
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                found, fortran_order, dtype = read_header(member)
                if (dtype.kind, dtype.itemsize) not in _COUNT_TYPES or dtype.fields is not None:
                    raise CacheFileError(path, f"holds {dtype}, not uint8/uint16/int32 counts")
                if fortran_order:
                    raise CacheFileError(path, "holds a Fortran-order array")
                if (tuple(found) != tuple(shape)) if shape is not None else len(found) != 4:
                    expected = tuple(shape) if shape is not None else "[T, 2, H, W]"
                    raise CacheFileError(path, f"holds frames of shape {tuple(found)}, expected {expected}")
                size = math.prod(found) * dtype.itemsize
                if size + member.tell() != info.file_size:  # before allocating: the header may lie
                    raise CacheFileError(path, f"declares {info.file_size} bytes for an array of {size}")
                frames = np.empty(found, dtype)
                if member.readinto(memoryview(frames).cast("B")) != frames.nbytes or member.read(1):
                    raise CacheFileError(path, "holds a different amount of data than its header says")
    except CacheFileError:
        raise
    except FileNotFoundError:
        raise CacheFileError(path, "is missing") from None
    except Exception as error:  # noqa: BLE001
        # Whatever damaged bytes make zipfile, zlib or NumPy raise (BadZipFile, also for a CRC
        # mismatch, EOFError, zlib.error, NotImplementedError for a garbled method, ...) means the
        # same: the file is not one this cache wrote whole.
        raise CacheFileError(path, f"is unreadable ({type(error).__name__}: {str(error)[:200]})") from None
    return frames if dtype.isnative else frames.astype(dtype.newbyteorder("="))


class FrameCache:
    """Frames on disk under ``directory`` (already the keyed folder), by relative name.

    ``relative`` names are ``<class>/<stem>``; the file is ``<relative>.npz``.
    """

    def __init__(self, directory: str | os.PathLike, description: dict | None = None,
                 shape: Sequence[int] | None = None):
        self.directory = os.fspath(directory)
        self.description = description
        self.shape = None if shape is None else tuple(int(size) for size in shape)
        self._told = False

    def path(self, relative: str) -> str:
        return os.path.join(self.directory, relative + _SUFFIX)

    def has(self, relative: str) -> bool:
        return _cached(self.path(relative))

    def load(self, relative: str) -> np.ndarray:
        """The cached frames; a ``CacheFileError`` when the file is missing or not as this cache writes it."""
        return load_frames(self.path(relative), self.shape)

    def tell_rebuilt(self, path: str, reason: str) -> None:
        """Say that the damaged file ``path`` was rebuilt: once per cache object, that is per data set
        (per process: each DataLoader worker holds its own copy), not once per file."""
        if not self._told:
            self._told = True
            print(f"frame cache: rebuilt {path}, which {reason}; any other damaged file of this data set "
                  f"is rebuilt without a message", file=sys.stderr, flush=True)

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
        text = json.dumps({"cache_format": CACHE_FORMAT, **self.description}, indent=2, sort_keys=True, default=list)
        atomic_write(path, lambda file: file.write(text.encode()))

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
        empty = [self.path(r) for relatives, _ in todo for r in relatives if os.path.exists(self.path(r))]
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
                with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)), mp_context=context,
                                                            initializer=die_with_parent,
                                                            initargs=(os.getpid(),)) as pool:
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
        if empty:
            self.tell_rebuilt(empty[0], "was empty" + (f" (as were {len(empty) - 1} more)" if len(empty) > 1 else ""))
        return len(todo)


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def die_with_parent(parent: int) -> None:
    """A pool worker's initializer: end this process when ``parent`` (the process that started it)
    dies, even by SIGKILL, instead of waiting forever for work that will not come.

    Linux delivers SIGKILL on the parent's death once ``prctl(PR_SET_PDEATHSIG)`` asks for it (it is
    the starting thread's exit that counts: the pool starts its workers from the thread that submits,
    which waits for them). Elsewhere this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl in this C library: workers outlive a killed parent
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _as_group(make_frames: Callable[[str], np.ndarray], source: str) -> list[np.ndarray]:
    return [make_frames(source)]


def _build_group(paths: Sequence[str], source, make_all: Callable[[object], Sequence[np.ndarray]]) -> None:
    all_frames = make_all(source)
    if len(all_frames) != len(paths):
        raise ValueError(f"{source}: made {len(all_frames)} samples, expected {len(paths)}")
    for path, frames in zip(paths, all_frames):
        if not _cached(path):
            atomic_save_frames(path, frames)


def _cached(path: str) -> bool:
    """Whether ``path`` is a cached file: an empty one (left by something outside this library,
    since ours are renamed into place only once whole) is not."""
    try:
        return os.stat(path).st_size > 0
    except OSError:
        return False
