"""Where a data set's recordings can lie under its root: layouts, declared and found.

A data set lists its layouts in the order they are looked for
(``EventDataset.layouts``); the first one complete under the root is used.
Each layout says which ``source`` it is (the value of the data set's
``source`` option that picks it, and part of the frame cache's key), which
``read_events`` format reads its files, how to find them, and what it
expects, for the error when no layout is found:

- ``ClassFolders``: one folder per class, a file per recording,
  ``<root>/<folder>/<class>/<file>``, tried in each of its folders in turn. A
  folder may name the part, ``{part}`` (the data set's own part folder, e.g.
  ``Train``) or ``{sj_part}`` (SpikingJelly's ``train`` / ``test``), when the
  data set ships its split as folders, and ``{T}`` and ``{split_by}``
  (SpikingJelly's frame caches). A data set without fixed classes takes the
  sub-folders that hold recordings as its classes.
- ``ClassZips``: one zip per class as published, read member by member.
- ``spikingjelly_frames`` / ``spikingjelly_events``: SpikingJelly's caches.

A layout of another shape (DVS Gesture's trial lists) is a class with the
same attributes and the methods ``find`` and ``expected``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..readers import EventFileError
from ..readers.archive import list_members
from .discovery import class_folders, scan_class_folders, summarize


@dataclass(frozen=True)
class Where:
    """What a layout looks for: under ``root``, the ``train`` or test part, the frames of
    ``time_steps`` and ``split_by``, the ``classes`` (None: the folders found), the data set's
    own ``parts`` folders, and whether the source is 'auto' (then SpikingJelly's caches are
    looked for only where their folders exist). ``class_folder`` is how a message writes a
    class folder (``<class>``, ``<digit>``)."""

    root: str
    train: bool
    time_steps: int
    split_by: str
    classes: tuple[str, ...] | None
    parts: dict[bool, str] | None = None
    auto: bool = True
    class_folder: str = "<class>"

    @property
    def part(self) -> str:
        return "train" if self.train else "test"

    def folder(self, template: str) -> str:
        """``template`` (see the module docstring) below the root."""
        relative = template.format(part=(self.parts or {}).get(self.train, ""), sj_part=self.part,
                                   T=self.time_steps, split_by=self.split_by)
        return os.path.join(self.root, relative) if relative else self.root


@dataclass
class Found:
    """Recordings found: the ``kind`` of source (``source_kind``), the ``source`` option it answers
    to, the ``format`` that reads them (None: SpikingJelly frames), the ``folder``, the sorted file
    names of each class, and whether they are one part already (a split shipped as folders).
    ``paths`` and ``windows`` give a recording's path and time window where it is not
    ``<folder>/<class>/<file>`` and whole."""

    kind: str
    source: str
    format: str | None
    folder: str
    files: dict[str, list[str]]
    in_parts: bool = False
    class_dirs: dict[str, str] = field(default_factory=dict)
    paths: dict[tuple[str, str], str] | None = None
    windows: dict[tuple[str, str], tuple[int, int]] | None = None

    def path(self, name: str, file: str) -> str:
        if self.paths is not None:
            return self.paths[(name, file)]
        return os.path.join(self.folder, self.class_dirs.get(name, name), file)

    def count(self) -> int:
        return sum(map(len, self.files.values()))


@dataclass(frozen=True)
class ClassFolders:
    """One folder per class of recordings, looked for in each of ``under`` (module docstring) in
    turn: a folder after the first is skipped when it does not exist, and so is every one of a
    SpikingJelly ``cache`` when the source is 'auto'. ``files`` is how the recordings are named,
    for messages; ``numbered``: the class folders are ``0 .. N-1`` (SpikingJelly's DVS Gesture);
    ``what`` names the layout in messages."""

    kind: str
    extensions: tuple[str, ...]
    format: str | None
    under: tuple[str, ...] = ("",)
    files: str = ""
    what: str = ""
    cache: bool = False
    numbered: bool = False

    @property
    def source(self) -> str:
        return self.kind

    def find(self, where: Where) -> Found | list[str]:
        """The recordings in the first folder that holds every class, or a line for each folder
        tried saying what it lacks."""
        reports = []
        for index, template in enumerate(self.under):
            folder = where.folder(template)
            if (index or (self.cache and where.auto)) and not os.path.isdir(folder):
                continue
            found = self._find_in(folder, where)
            if isinstance(found, Found):
                return found
            reports.append(f"under {folder}: {found}")
        return reports

    def _find_in(self, folder: str, where: Where) -> Found | str:
        in_parts = "{part}" in self.under[0] or "{sj_part}" in self.under[0]
        found = Found(self.kind, self.source, self.format, folder, {}, in_parts)
        if where.classes is None:
            found.files = class_folders(folder, self.extensions)
            return found if found.files else f"no class folder of {'/'.join(self.extensions)} files"
        dirs = [str(i) for i in range(len(where.classes))] if self.numbered else list(where.classes)
        files, problems = scan_class_folders(folder, dirs, self.extensions)
        if problems:
            return summarize(problems)
        found.files = {name: files[directory] for name, directory in zip(where.classes, dirs)}
        found.class_dirs = dict(zip(where.classes, dirs)) if self.numbered else {}
        return found

    def expected(self, where: Where) -> str:
        folder = where.folder(self.under[0])
        class_folder = f"<0..{len(where.classes) - 1}>" if self.numbered else where.class_folder
        pattern = os.path.join(folder, class_folder, self.files or f"*{self.extensions[0]}")
        text = f"{self.what or 'the class folders'} {pattern}"
        if len(self.under) > 1:
            text += f" (or the same under {' or '.join(where.folder(other) for other in self.under[1:])})"
        return text


SPIKINGJELLY_FRAMES = "frames_number_{T}_split_by_{split_by}"


def frames_folder_name(time_steps: int, split_by: str) -> str:
    """SpikingJelly's frame cache folder for T and split_by."""
    return SPIKINGJELLY_FRAMES.format(T=time_steps, split_by=split_by)


def spikingjelly_frames(parts: bool = False, numbered: bool = False) -> ClassFolders:
    """SpikingJelly's frame cache for this T and split_by, ``frames_number_{T}_split_by_{mode}[/{part}]``."""
    folder = SPIKINGJELLY_FRAMES + ("/{sj_part}" if parts else "")
    return ClassFolders("frames", (".npz",), None, (folder,), what="a SpikingJelly frame cache", cache=True,
                        numbered=numbered)


def spikingjelly_events(parts: bool = False, numbered: bool = False) -> ClassFolders:
    """SpikingJelly's event cache, ``events_np[/{part}]`` (arrays t, x, y, p)."""
    folder = "events_np" + ("/{sj_part}" if parts else "")
    return ClassFolders("events_np", (".npz",), "npz", (folder,), what="a SpikingJelly event cache", cache=True,
                        numbered=numbered)


@dataclass(frozen=True)
class ClassZips:
    """One zip per class, ``<root>/<class>.zip``, holding that class's recordings (at its top or in
    one folder), read member by member, never extracted (``readers.archive``). The recordings are
    those of the class folders, so it answers to their ``source``."""

    kind: str
    source: str
    extensions: tuple[str, ...]
    format: str

    def find(self, where: Where) -> Found | list[str]:
        """A hostile or damaged zip, or two members of one name, is an ``EventFileError`` naming the zip."""
        files, paths, problems = {}, {}, []
        for name in where.classes:
            archive = os.path.join(where.root, f"{name}.zip")
            if not os.path.isfile(archive):
                problems.append(f"{archive} is missing")
                continue
            by_file = {}
            for member in list_members(archive, self.extensions):
                file = member.rsplit("/", 1)[-1]
                if file in by_file:
                    raise EventFileError(archive, f"holds two recordings named {file!r}: {by_file[file]!r} and "
                                                  f"{member!r}")
                by_file[file] = member
            if not by_file:
                problems.append(f"{archive} holds no {'/'.join(self.extensions)} files")
            files[name] = sorted(by_file)
            paths.update({(name, file): os.path.join(archive, member) for file, member in by_file.items()})
        if problems:
            return [f"zips under {where.root}: {summarize(problems)}"]
        return Found(self.kind, self.source, self.format, where.root, files, paths=paths)

    def expected(self, where: Where) -> str:
        first, last = (os.path.join(where.root, f"{name}.zip") for name in (where.classes[0], where.classes[-1]))
        return f"the {len(where.classes)} class zips {first}, ..., {last}"

