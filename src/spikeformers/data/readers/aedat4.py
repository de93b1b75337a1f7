"""AEDAT 4.0 (DV), decoded by the optional ``aedat`` package (``pip install aedat``).

The file starts with ``#!AER-DAT4.0``; its streams and their sizes come from
an embedded XML description, its packets are FlatBuffers, often LZ4/Zstd
compressed, which is why this reader relies on the package. The events of
the file's event stream (the lowest stream id among the ``events`` streams
when there are several) are returned in file order; the sensor size is the
stream's (height, width) unless ``sensor_size`` is given. Timestamps are the
camera's microseconds (usually since the Unix epoch); they are not shifted.
Anything the package fails on is re-raised as an ``EventFileError``.

The package (2.3.0) aborts the whole interpreter, rather than raising, on
some damaged file headers (a Rust panic inside a panic). So before handing
the file over, this reader checks the bounds of the size-prefixed IOHeader
FlatBuffer that follows the magic (root table, vtable, the compression,
data-table and description fields, the description's UTF-8) and raises ``EventFileError`` when they
point outside it. Damage further into the packets is left to the package.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from ._common import EventFileError, EventRecording, build_events

MAGIC = b"#!AER-DAT4.0"
INSTALL_HINT = "reading AEDAT 4 files needs the optional 'aedat' package: pip install aedat"


def _import_aedat():
    try:
        import aedat
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return aedat


def check_io_header(path) -> None:
    """Bounds-check the IOHeader FlatBuffer after the magic, or raise EventFileError."""
    with open(path, "rb") as handle:
        head = handle.read(len(MAGIC) + 2 + 4)
        if not head.startswith(MAGIC):
            raise EventFileError(
                path, f"bad magic: expected the file to start with {MAGIC.decode()!r}, "
                      f"got {head[:len(MAGIC) + 8]!r}"
            )
        if len(head) < len(MAGIC) + 6 or head[len(MAGIC):len(MAGIC) + 2] != b"\r\n":
            raise EventFileError(path, "truncated or bad AEDAT 4 header: no IOHeader size after the magic")
        (size,) = struct.unpack_from("<I", head, len(MAGIC) + 2)
        file_size = os.fstat(handle.fileno()).st_size
        if size < 12 or len(head) + size > file_size:
            raise EventFileError(
                path, f"bad IOHeader size {size} (the file has {file_size} bytes)"
            )
        buffer = handle.read(size)

    def bad(what):
        return EventFileError(path, f"bad IOHeader: {what}")

    def u16(at):
        if not 0 <= at <= size - 2:
            raise bad(f"offset {at} outside its {size} bytes")
        return struct.unpack_from("<H", buffer, at)[0]

    def u32(at, fmt="<I"):
        if not 0 <= at <= size - 4:
            raise bad(f"offset {at} outside its {size} bytes")
        return struct.unpack_from(fmt, buffer, at)[0]

    table = u32(0)
    vtable = table - u32(table, "<i")
    vtable_size, table_size = u16(vtable), u16(vtable + 2)
    if vtable_size < 4 or vtable_size % 2 or vtable + vtable_size > size or table + table_size > size:
        raise bad(f"vtable at {vtable} of {vtable_size} bytes for a table of {table_size} bytes")
    field_sizes = (4, 8, 4)  # compression (int32 enum), dataTablePosition (int64), description
    offsets = [u16(vtable + 4 + 2 * i) if 4 + 2 * i < vtable_size else 0 for i in range(3)]
    for offset, field_size in zip(offsets, field_sizes):
        if offset and offset + field_size > table_size:
            raise bad(f"a field at {offset} beyond the table's {table_size} bytes")
    if offsets[0] and not 0 <= u32(table + offsets[0], "<i") <= 4:
        raise bad(f"unknown compression {u32(table + offsets[0], '<i')}")
    if offsets[2]:
        where = table + offsets[2]
        string = where + u32(where)
        length = u32(string)
        if string + 4 + length > size:
            raise bad(f"the description string ({length} bytes at {string}) runs past its end")
        try:
            buffer[string + 4:string + 4 + length].decode("utf-8")
        except UnicodeDecodeError as error:
            raise bad(f"the description is not UTF-8 ({error})") from None


def read_aedat4(path, *, sensor_size=None) -> EventRecording:
    with open(path, "rb") as handle:  # a missing file is a FileNotFoundError, as elsewhere
        head = handle.read(len(MAGIC))
    if head != MAGIC:
        raise EventFileError(path, f"bad magic: expected the file to start with {MAGIC.decode()!r}, "
                                   f"got {head!r}")
    aedat = _import_aedat()
    check_io_header(path)
    try:
        decoder = aedat.Decoder(os.fspath(path))
        streams = decoder.id_to_stream()
        event_streams = sorted(sid for sid, info in streams.items() if info.get("type") == "events")
        if not event_streams:
            raise EventFileError(path, f"has no event stream (streams: {streams})")
        stream_id = event_streams[0]
        info = streams[stream_id]
        height, width = int(info["height"]), int(info["width"])
        chunks = [packet["events"] for packet in decoder
                  if packet.get("stream_id") == stream_id and "events" in packet]
    except EventFileError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as error:  # also the package's Rust panics (not Exceptions)
        raise EventFileError(
            path, f"the aedat package cannot decode it ({type(error).__name__}: {error})"
        ) from error
    if chunks:
        packed = np.concatenate(chunks)
        t = packed["t"]
        if t.size and int(t.max()) > np.iinfo(np.int64).max:
            raise EventFileError(path, "timestamps beyond int64")
        x, y = packed["x"], packed["y"]
        p = packed["on"].astype(np.int64)
    else:
        t = x = y = p = np.zeros(0, dtype=np.int64)
    if sensor_size is None and (height < 1 or width < 1):
        raise EventFileError(path, f"its event stream declares the size {(height, width)}")
    return build_events(path, t, x, y, p, sensor_size, default_size=(height, width))
