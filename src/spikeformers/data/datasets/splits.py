"""Train/test splits of per-class folders of recordings, as the published results use them.

Every split works on the file *names* of one class and is deterministic
whatever order the filesystem lists them in (names are sorted first):

- ``'sj'`` (SpikingJelly ``split_to_train_test_set(0.9, ..., random_split=False)``,
  used by the Spikformer / QKFormer CIFAR10-DVS results): per class, the first
  ``ceil(train_fraction * n)`` files in **lexicographic** file-name order
  (``_0, _1, _10, _100, ..., _11, ...``) train, the rest test.
- ``'braincog'``: per class, the recordings with index ``[0, braincog_train)``
  train and the rest test. BrainCog takes them in ``os.walk`` order, which
  depends on the filesystem; here the order is the recording number at the
  end of the name (``cifar10_cat_7`` is 7, so ``_0, _1, _2, ...``), then the
  name.
- ``'tebn'``: per class, the first ``tebn_test`` recordings in that numeric
  order (indices 0..99) test, the rest train.
- ``'random'``: per class, a permutation of the lexicographically sorted names
  drawn from ``numpy.random.default_rng(seed)`` (one generator, classes in
  order); the first ``ceil(train_fraction * n)`` train.
- ``'official'``: the data set ships its own split (N-MNIST ``Train``/``Test``);
  handled by the data set, not here.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

SPLITS = ("sj", "braincog", "tebn", "random")

_TRAILING_NUMBER = re.compile(r"(\d+)$")


def lexicographic_order(names) -> list[str]:
    """File names sorted as strings (SpikingJelly's order: ``_0, _1, _10, _100, _11``)."""
    return sorted(names)


def recording_number(name: str) -> int | None:
    """The number at the end of a file name's stem (``cifar10_cat_17.aedat`` -> 17), or None."""
    match = _TRAILING_NUMBER.search(os.path.splitext(name)[0])
    return int(match.group(1)) if match else None


def numeric_order(names) -> list[str]:
    """File names by their recording number, then by name (names without a number last)."""

    def key(name):
        number = recording_number(name)
        return (number is None, -1 if number is None else number, name)

    return sorted(names, key=key)


def split_class(names, split: str, train: bool, *, train_fraction: float = 0.9, braincog_train: int = 900,
                tebn_test: int = 100, rng: np.random.Generator | None = None) -> list[str]:
    """The names of one class that belong to the train (``train=True``) or test part.

    ``rng`` is needed for ``'random'`` (pass one generator for all classes, in
    class order). The names come back in the split's order: lexicographic
    for ``'sj'`` and ``'random'``, numeric for ``'braincog'`` and ``'tebn'``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {SPLITS}")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1]; got {train_fraction}")
    if split == "sj":
        ordered = lexicographic_order(names)
        cut = math.ceil(train_fraction * len(ordered))
        return ordered[:cut] if train else ordered[cut:]
    if split == "braincog":
        ordered = numeric_order(names)
        return ordered[:braincog_train] if train else ordered[braincog_train:]
    if split == "tebn":
        ordered = numeric_order(names)
        return ordered[tebn_test:] if train else ordered[:tebn_test]
    if rng is None:
        raise ValueError("split='random' needs rng=numpy.random.default_rng(seed)")
    ordered = lexicographic_order(names)
    permutation = rng.permutation(len(ordered))
    cut = math.ceil(train_fraction * len(ordered))
    chosen = permutation[:cut] if train else permutation[cut:]
    return [ordered[i] for i in sorted(chosen.tolist())]


def split_folders(files_per_class: dict[str, list[str]], classes, split: str, train: bool, *, seed: int = 0,
                  **parameters) -> list[tuple[str, str]]:
    """``(class, file name)`` pairs of the chosen part, classes in ``classes`` order; ``parameters``
    are ``split_class``'s (``train_fraction``, ``braincog_train``, ``tebn_test``).

    A ``'random'`` split draws every class's permutation from one
    ``default_rng(seed)``, train and test from the same draws, so the two
    parts never overlap.
    """
    rng = np.random.default_rng(seed) if split == "random" else None
    chosen = []
    for name in classes:
        part = split_class(files_per_class[name], split, train, rng=rng, **parameters)
        chosen.extend((name, file) for file in part)
    return chosen
