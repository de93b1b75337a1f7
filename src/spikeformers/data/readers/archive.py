"""Event files inside zip archives: a path that runs through a ``.zip`` file names a member.

    read_events("cifar10/airplane.zip/airplane/cifar10_airplane_0.aedat")

reads the member ``airplane/cifar10_airplane_0.aedat`` of ``cifar10/airplane.zip``.
No path on a file system can run through a regular file, so the two readings
never collide; a path with no ``.zip`` file along it is an ordinary path. The
official CIFAR10-DVS release is such zips, one per class.

A member is read into memory, never extracted, so no member name can write
anywhere; names that would escape a folder if extracted (absolute, ``..``,
drive letters, backslashes) are refused all the same, as the mark of a hostile
archive. Before a member is inflated its declared sizes are checked: its data
lie inside the archive, it is stored or deflated (the methods whose expansion
is bounded), its size is at most ``MAX_MEMBER_BYTES`` and within what its
method can produce from its compressed size. ``list_members`` also refuses
members whose data overlap, the construction by which zip bombs multiply
deflate's expansion. The CRC of a member is checked as it is read.
"""

from __future__ import annotations

import errno
import os
import re
import zipfile

from ._common import EventFileError, read_bytes

# A member larger than this is refused before it is inflated. Recordings of the zipped data sets
# are a few megabytes (CIFAR10-DVS: 8 bytes an event, well under a million events each).
MAX_MEMBER_BYTES = 256 * 2**20

# Deflate emits at most 258 bytes for each 2 bits of input (a maximal match in the shortest
# code), so no honest member inflates to more than about 1032 times its compressed size.
DEFLATE_MAX_RATIO = 1032

_LOCAL_HEADER_BYTES = 30  # a local file header before its name and extra field
_UNSAFE_PART = re.compile(r"^(\.\.|[A-Za-z]:.*)$")


def split_archive_path(path):
    """``(archive, member)`` when ``path`` runs through a regular ``.zip`` file, else None."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        return None
    text = os.fspath(path)
    if ".zip" not in text.lower():
        return None
    parts = text.replace(os.sep, "/").split("/")
    for end in range(1, len(parts)):
        if parts[end - 1].lower().endswith(".zip"):
            archive = "/".join(parts[:end])
            if os.path.isfile(archive):
                return archive, "/".join(parts[end:])
    return None


def read_source(path) -> bytes:
    """The bytes of ``path``: a file, or a zip member when the path runs through a zip.

    OS errors propagate unchanged (a missing member is a FileNotFoundError);
    a damaged or hostile archive is an ``EventFileError``.
    """
    member = split_archive_path(path)
    return read_bytes(path) if member is None else read_member(*member, path)


def read_member(archive_path, member: str, shown=None) -> bytes:
    """The bytes of one member, after the checks of the module docstring.

    ``shown`` is the path errors name (default ``archive/member``).
    """
    shown = os.fspath(shown) if shown is not None else f"{os.fspath(archive_path)}/{member}"
    with _open_archive(archive_path) as archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, f"no member {member!r} in the zip archive "
                                    f"{os.fspath(archive_path)}", shown) from None
        check_member(shown, info, os.path.getsize(archive_path), MAX_MEMBER_BYTES)
        try:
            with archive.open(info) as stream:
                data = stream.read(info.file_size + 1)
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
            raise EventFileError(shown, f"cannot be read from the zip archive ({error})") from error
        except Exception as error:  # BadZipFile (bad header or CRC), zlib.error, EOFError, ...
            raise EventFileError(shown, f"cannot be read from the zip archive ({type(error).__name__}: "
                                        f"{error})") from error
    if len(data) != info.file_size:
        raise EventFileError(shown, f"the zip archive declares {info.file_size} bytes; it holds {len(data)}")
    return data


def list_members(archive_path, extensions) -> list[str]:
    """The names of the members with one of ``extensions`` (lower case, with dot), sorted.

    Folders, hidden files and macOS's ``__MACOSX/`` resource forks are left
    out. The whole archive is checked first: an unsafe name, members whose
    data overlap, or a listed member that fails ``check_member`` is an
    ``EventFileError`` naming the archive.
    """
    size = os.path.getsize(archive_path)
    with _open_archive(archive_path) as archive:
        infos = archive.infolist()
    spans = []
    names = []
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if "\\" in name or name.startswith("/") or any(_UNSAFE_PART.match(part) for part in parts):
            raise EventFileError(archive_path, f"member {name!r} has an unsafe name (it would be "
                                               "written outside the folder it is extracted to)")
        spans.append((info.header_offset, info.header_offset + _LOCAL_HEADER_BYTES
                       + len(info.orig_filename.encode("utf-8", "replace")) + info.compress_size, name))
        if info.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        if os.path.splitext(parts[-1])[1].lower() in extensions:
            check_member(archive_path, info, size, MAX_MEMBER_BYTES)
            names.append(name)
    spans.sort()
    for (_, end, name), (start, _, following) in zip(spans, spans[1:]):
        if start < end:
            raise EventFileError(archive_path, f"the data of members {name!r} and {following!r} overlap "
                                               "(the construction of a zip bomb)")
    return sorted(names)


def check_member(path, info: zipfile.ZipInfo, archive_size: int, max_bytes: int | None = None) -> None:
    """An ``EventFileError`` naming ``path`` unless the member's declared sizes are plausible:
    stored or deflated, not encrypted, its data inside the archive's ``archive_size``
    bytes, its size within its method's expansion of them and at most ``max_bytes``."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise EventFileError(path, f"member {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise EventFileError(path, f"member {name!r} uses compression method {info.compress_type}; "
                                   "only stored and deflated members are read")
    if info.header_offset + _LOCAL_HEADER_BYTES + info.compress_size > archive_size:
        raise EventFileError(path, f"member {name!r} declares {info.compress_size} compressed bytes at "
                                   f"byte {info.header_offset}, beyond the archive's {archive_size} bytes")
    if max_bytes is not None and info.file_size > max_bytes:
        raise EventFileError(path, f"member {name!r} declares {info.file_size} bytes, more than the "
                                   f"{max_bytes} read from a zip member")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise EventFileError(path, f"stored member {name!r} declares {info.file_size} bytes in "
                                   f"{info.compress_size} stored bytes")
    if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise EventFileError(path, f"member {name!r} declares {info.file_size} bytes from "
                                   f"{info.compress_size} compressed ones, beyond deflate's "
                                   f"{DEFLATE_MAX_RATIO}-fold limit (a zip bomb or a damaged archive)")


def open_zip(source, path, kind: str = "a zip archive") -> zipfile.ZipFile:
    """``zipfile.ZipFile(source)``; a damaged archive is an ``EventFileError`` naming ``path``.

    OS errors propagate, except the EINVAL of a seek to a nonsensical offset
    that a damaged end record asks for.
    """
    try:
        return zipfile.ZipFile(source)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
        failure = error
    except Exception as error:  # BadZipFile, and the struct, value and unicode errors of damaged records
        failure = error
    raise EventFileError(path, f"cannot be read as {kind} ({type(failure).__name__}: {failure})")


def _open_archive(archive_path) -> zipfile.ZipFile:
    return open_zip(archive_path, archive_path)
