"""What a data set says when its files are not where it looks.

``DatasetNotFoundError`` is the one error for a data set missing or incomplete on
disk: its message says what was expected where, and where the data set is
published. ``data_root`` is the check every data set makes first: a root
given, and there.
"""

from __future__ import annotations

import os
from typing import Callable


class DatasetNotFoundError(FileNotFoundError):
    """A data set that is missing or incomplete on disk; the message says what
    was expected where and where the data set is published."""


def data_root(root, name: str, title: str, published: str, expected: Callable[[str], str]) -> str:
    """``root`` as a string when it names something that exists, else a ``DatasetNotFoundError``:
    for None, that ``name`` needs a data root; for a path that is not there, that it does not
    exist and what ``expected(root)`` it should hold, in one line (not every file it lacks),
    then where the data set is published."""
    if root is None:
        raise DatasetNotFoundError(f"{name} needs a data root (--data-root); {published}.")
    root = os.fspath(root)
    if not os.path.exists(root):
        raise DatasetNotFoundError(f"{title}: the data root {root!r} does not exist; it should hold "
                                   f"{expected(root)}.\n{published}.")
    return root
