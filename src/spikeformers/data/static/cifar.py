"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the official Python-pickle archives.

Layouts read (``root`` may be any of them):

- CIFAR-10: the folder ``cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``, ``batches.meta``), under ``root`` or ``root`` itself, or the
  archive ``cifar-10-python.tar.gz`` (read in place, not extracted);
- CIFAR-100: ``cifar-100-python/`` (``train``, ``test``, ``meta``) or
  ``cifar-100-python.tar.gz``; the 100 fine labels.

Each batch is a pickled dict with byte-string keys: ``b'data'``, a uint8
array ``[N, 3072]`` (1,024 red, then green, then blue values, each 32x32
row-major), and ``b'labels'`` (CIFAR-10) or ``b'fine_labels'`` (CIFAR-100).
The pickles are loaded with an unpickler that builds NumPy arrays and plain
containers only, so a tampered file cannot run code.

Items: ``(float32 [T, 3, 32, 32], label)``, the image normalised with the
per-channel mean and std of the training set (CIFAR-10: the values of the
Spikformer / Spike-driven Transformer recipes) and repeated over T (direct
encoding; see ``static.encoding``). Training images may pass timm's
RandAugment and colour jitter first (``randaugment='rand-m9-n1-mstd0.4-inc1'``,
``color_jitter=0.5``: per sample, on the uint8 image, before normalisation,
drawn from a generator seeded by (seed, epoch, index): see ``EpochSeeded``; the fill is the mean's grey). The
recipes' flips, crops and mixing run batched on the device
(``spikeformers.data.augment``).
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import tarfile
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from ..frames import check_time_steps
from ..missing import DatasetNotFoundError, data_root
from ..registry import option, register_dataset
from .encoding import AugmentedImages, check_statistics, encode

PUBLISHED = ("CIFAR-10 and CIFAR-100 are published by Alex Krizhevsky (2009, 'Learning Multiple Layers of "
             "Features from Tiny Images'), https://www.cs.toronto.edu/~kriz/cifar.html : download the "
             "'python version' archive ({archive}) into the data root (extracted or not)")

# The numpy callables an ndarray pickle needs (looked up from live objects, so
# whichever module path this numpy uses is the one allowed).
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles written by Python 3 store bytes
    **{(module, "_reconstruct"): np.zeros(1).__reduce__()[0]
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): np.float64(0).__reduce__()[0]
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
}


class _ArraysOnly(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"{self.path}: refusing to load {module}.{name}; a CIFAR batch holds "
                                     "only arrays, lists and byte strings")


def load_batch(data: bytes, path: str) -> dict:
    """Unpickle one CIFAR batch or meta file (keys as bytes); errors name ``path``."""
    try:
        batch = _ArraysOnly(io.BytesIO(data), path).load()
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path} is not a CIFAR pickle: {error}") from None
    except Exception as error:  # truncated or garbled pickles raise many kinds
        raise ValueError(f"{path} is not a readable CIFAR pickle ({type(error).__name__}: {error})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path} holds a {type(batch).__name__}; a CIFAR batch is a dict")
    return batch


def batch_arrays(batch: dict, label_key: bytes, path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 3, 32, 32], labels int64 [N])`` of one batch, checked."""
    for key in (b"data", label_key):
        if key not in batch:
            raise ValueError(f"{path} lacks the key {key!r} (it has {sorted(batch)})")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be uint8 [N, 3072]; got {data.dtype} {list(data.shape)}")
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {len(data)} images but {labels.size} labels under {label_key!r}")
    return data.reshape(-1, 3, 32, 32), labels


@dataclass(eq=False, repr=False)
class _CIFAR(AugmentedImages, Dataset):
    """The official archive of one CIFAR variant; subclasses set the class attributes below."""

    name: ClassVar[str]
    title: ClassVar[str]
    folder: ClassVar[str]
    archive: ClassVar[str]
    train_members: ClassVar[tuple[str, ...]]
    test_members: ClassVar[tuple[str, ...]]
    meta_member: ClassVar[str]
    label_key: ClassVar[bytes]
    names_key: ClassVar[bytes]
    default_mean: ClassVar[tuple[float, float, float]]
    default_std: ClassVar[tuple[float, float, float]]
    in_channels: ClassVar[int] = 3
    sensor_size: ClassVar[tuple[int, int]] = (32, 32)

    root: str | os.PathLike | None
    train: bool = True
    time_steps: int = 4
    _: KW_ONLY
    mean: tuple[float, float, float] | None = option(None, "per-channel mean to normalise with (None: the "
                                                           "training set's)")
    std: tuple[float, float, float] | None = option(None, "per-channel std to normalise with (None: the "
                                                          "training set's)")

    def __post_init__(self):
        published = PUBLISHED.format(archive=self.archive)
        self.root = data_root(self.root, self.name, self.title, published,
                              lambda root: f"{os.path.join(root, self.folder)} or {os.path.join(root, self.archive)}")
        self.time_steps = check_time_steps(self.time_steps)
        self.mean = tuple(self.default_mean if self.mean is None else self.mean)
        self.std = tuple(self.default_std if self.std is None else self.std)
        self._mean, self._std = check_statistics(self.mean, self.std)
        self.augment = self.image_augment(self.mean)
        members = self.train_members if self.train else self.test_members
        files, self.source = self._read_members(members + (self.meta_member,))
        images, labels = zip(*(batch_arrays(load_batch(files[m], self._where(m)), self.label_key, self._where(m))
                               for m in members))
        self.images = np.concatenate(images)
        self.targets = np.concatenate(labels).tolist()
        meta = load_batch(files[self.meta_member], self._where(self.meta_member))
        self.classes = tuple(name.decode() if isinstance(name, bytes) else str(name)
                             for name in meta.get(self.names_key, []))
        if not self.classes:
            raise ValueError(f"{self._where(self.meta_member)} lacks the class names {self.names_key!r}")
        self.num_classes = len(self.classes)
        bad = [label for label in set(self.targets) if not 0 <= label < self.num_classes]
        if bad:
            raise ValueError(f"{self.source}: labels {sorted(bad)[:5]} outside 0..{self.num_classes - 1}")

    def _where(self, member: str) -> str:
        return os.path.join(self.source, member)

    def _read_members(self, members) -> tuple[dict[str, bytes], str]:
        """The bytes of ``members`` from the extracted folder or the archive, and where they came from."""
        folders = [os.path.join(self.root, self.folder), self.root]
        for folder in folders:
            if all(os.path.isfile(os.path.join(folder, m)) for m in members):
                files = {}
                for m in members:
                    with open(os.path.join(folder, m), "rb") as file:
                        files[m] = file.read()
                return files, folder
        archives = [os.path.join(self.root, self.archive)] + ([self.root] if os.path.isfile(self.root) else [])
        for archive in archives:
            if not os.path.isfile(archive):
                continue
            wanted = {f"{self.folder}/{m}": m for m in members}
            files = {}
            try:
                with tarfile.open(archive, "r:*") as tar:
                    for info in tar:
                        if info.name in wanted and info.isfile():
                            files[wanted[info.name]] = tar.extractfile(info).read()
            except (tarfile.TarError, OSError, EOFError) as error:
                raise ValueError(f"{archive} is not a readable tar archive: {error}") from None
            missing = [m for m in members if m not in files]
            if missing:
                raise DatasetNotFoundError(
                    f"{archive} lacks {', '.join(f'{self.folder}/{m}' for m in missing)}.\n"
                    f"{PUBLISHED.format(archive=self.archive)}.")
            return files, archive
        expected = ", ".join(members)
        raise DatasetNotFoundError(
            f"{self.name} is missing or incomplete in {self.root!r}: expected {expected} in "
            f"{folders[0]!r} (or in {self.root!r} itself), or the archive {archives[0]!r}.\n"
            f"{PUBLISHED.format(archive=self.archive)}.")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.train and self.augment:
            image = self.augment(image, self.sample_generator(index))
        return encode(image, self._mean, self._std, self.time_steps), self.targets[index]

    def image(self, index: int) -> np.ndarray:
        """The raw image of sample ``index`` (before any augmentation): uint8 ``[3, 32, 32]``."""
        return self.images[index]

    def describe(self) -> str:
        return (f"{self.name} {'train' if self.train else 'test'}: {len(self)} images 32x32 in "
                f"{self.num_classes} classes from {self.source}; normalised with mean {self.mean}, std "
                f"{self.std}; repeated over T={self.time_steps}"
                + (f"; augmented by {self.augment!r}" if self.train and self.augment else ""))


@register_dataset("cifar10")
class CIFAR10(_CIFAR):
    """CIFAR-10: 50,000 train and 10,000 test images, 10 classes; see the module docstring."""

    name, title = "cifar10", "CIFAR-10"
    folder, archive = "cifar-10-batches-py", "cifar-10-python.tar.gz"
    train_members, test_members, meta_member = tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), \
        "batches.meta"
    label_key, names_key = b"labels", b"label_names"
    default_mean, default_std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@register_dataset("cifar100")
class CIFAR100(_CIFAR):
    """CIFAR-100: 50,000 train and 10,000 test images, the 100 fine classes; see the module docstring."""

    name, title = "cifar100", "CIFAR-100"
    folder, archive = "cifar-100-python", "cifar-100-python.tar.gz"
    train_members, test_members, meta_member = ("train",), ("test",), "meta"
    label_key, names_key = b"fine_labels", b"fine_label_names"
    default_mean, default_std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
