"""Finding recordings on disk: the files of a folder, and the class folders that hold them."""

from __future__ import annotations

import os
from typing import Sequence


def list_files(folder: str | os.PathLike, extensions: Sequence[str]) -> list[str]:
    """File names in ``folder`` with one of ``extensions`` (lower case, with dot), sorted;
    hidden files and temporary files are skipped."""
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if os.path.splitext(entry.name)[1].lower() in extensions:
                names.append(entry.name)
    return sorted(names)


def class_folders(folder: str | os.PathLike, extensions: Sequence[str]) -> dict[str, list[str]]:
    """``{class: sorted file names}`` for every sub-folder of ``folder`` holding files with one of
    ``extensions``, sorted by name (a data set whose classes are its folders); empty when
    ``folder`` does not exist."""
    if not os.path.isdir(folder):
        return {}
    classes = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            names = list_files(entry.path, extensions)
            if names:
                classes[entry.name] = names
    return classes


def scan_class_folders(folder: str, classes: Sequence[str], extensions: Sequence[str]):
    """``(files per class, problems)``: the sorted file names in ``folder/<class>``
    with one of ``extensions``, and a line for each class folder missing or empty."""
    files, problems = {}, []
    for name in classes:
        class_dir = os.path.join(folder, name)
        if not os.path.isdir(class_dir):
            problems.append(f"{class_dir} is missing")
            continue
        found = list_files(class_dir, extensions)
        if not found:
            problems.append(f"{class_dir} holds no {'/'.join(extensions)} files")
        files[name] = found
    return files, problems


def summarize(problems: Sequence[str], shown: int = 4) -> str:
    """The first ``shown`` problems joined, and how many more there are."""
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more
