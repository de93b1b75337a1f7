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
some damaged file headers (a Rust panic inside a panic), and it allocates
whatever a packet header declares (an abort when that fails). So before
handing the file over, this reader checks

- the bounds of the size-prefixed IOHeader FlatBuffer that follows the magic
  (root table, vtable, the compression, data-table and description fields,
  the description's UTF-8: ``check_io_header``);
- every packet header after it (int32 stream id, int32 size, as the package
  walks them: up to the data table, or the end of the file when there is
  none): a size beyond the end of the file is an error (``check_packets``);
- for Zstd-compressed files, how much each packet can inflate to, from its
  frame and block headers: at most ``max(16 MiB, 256 x its size)``, and the
  event stream's packets, which the reader keeps, at most ``max(16 MiB, 256 x
  the file's size)`` together. (LZ4 cannot expand more than about 255-fold,
  so LZ4 packets need no such walk.)

and the event stream's declared sensor size against ``MAX_SENSOR_SIDE`` when
no ``sensor_size`` is given. Damage inside the packets is left to the package.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from ._common import EventFileError, EventRecording, build_events, check_plausible_size

MAGIC = b"#!AER-DAT4.0"
ZSTD = (3, 4)  # IOHeader compression values: 0 none, 1 LZ4, 2 LZ4 high, 3 Zstd, 4 Zstd high
ZSTD_MAGIC = 0xFD2FB528
ZSTD_BLOCK_MAX = 128 * 1024  # the most one compressed block inflates to
# A packet may inflate to at most max(PACKET_FLOOR, PACKET_RATIO x its size) bytes. The
# floor admits small, highly compressible packets (an all-black frame); the ratio is about LZ4's
# own limit, far above what event data compress by.
PACKET_FLOOR = 16 * 2**20
PACKET_RATIO = 256
INSTALL_HINT = "reading AEDAT 4 files needs the optional 'aedat' package: pip install aedat"


def _import_aedat():
    try:
        import aedat
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return aedat


def check_io_header(path) -> tuple[int, int, int]:
    """Bounds-check the IOHeader FlatBuffer after the magic, or raise EventFileError.

    Returns ``(compression, data table position (-1: none), offset of the first packet)``.
    """
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
    compression = u32(table + offsets[0], "<i") if offsets[0] else 0
    if not 0 <= compression <= 4:
        raise bad(f"unknown compression {compression}")
    table_position = struct.unpack_from("<q", buffer, table + offsets[1])[0] if offsets[1] else -1
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
    return compression, table_position, len(head) + size


def check_packets(path, compression: int, table_position: int, start: int, kept=()) -> None:
    """Walk the packet headers from ``start`` as the aedat package will, and raise
    ``EventFileError`` for a size beyond the end of the file or, for Zstd, a packet
    that can inflate beyond ``max(PACKET_FLOOR, PACKET_RATIO x its size)``, or
    packets of the streams ``kept`` that can inflate beyond ``max(PACKET_FLOOR,
    PACKET_RATIO x the file's size)`` together."""
    kept_total = 0
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        position = start
        while position != table_position:
            handle.seek(position)
            header = handle.read(8)
            if len(header) < 4:  # the end of the packets (the package stops here too)
                return
            if len(header) < 8:
                raise EventFileError(path, f"truncated packet header at byte {position}: {len(header)} "
                                           "of its 8 bytes")
            stream_id, size = struct.unpack("<iI", header)
            left = file_size - position - 8
            if size > left:
                raise EventFileError(path, f"the packet at byte {position} (stream {stream_id}) declares "
                                           f"{size} bytes; the file has {left} after its header")
            if compression in ZSTD:
                try:
                    inflated = zstd_bound(handle.read(size))
                except ValueError as error:
                    raise EventFileError(path, f"the packet at byte {position} (stream {stream_id}) is not "
                                               f"valid Zstd data: {error}") from None
                if inflated > max(PACKET_FLOOR, PACKET_RATIO * size):
                    raise EventFileError(path, f"the packet at byte {position} (stream {stream_id}) can "
                                               f"inflate to {inflated} bytes from {size}: refused as a "
                                               "decompression bomb")
                kept_total += inflated if stream_id in kept else 0
                if kept_total > max(PACKET_FLOOR, PACKET_RATIO * file_size):
                    raise EventFileError(path, f"the packets of stream {stream_id} up to byte {position} can "
                                               f"inflate to {kept_total} bytes from a file of {file_size}: "
                                               "refused as a decompression bomb")
            position += 8 + size


def zstd_bound(data: bytes) -> int:
    """The most bytes the Zstd frames in ``data`` can inflate to, from their frame
    and block headers alone (RFC 8878): raw and RLE blocks declare their size, a
    compressed block gives at most its frame's block maximum. A ValueError when
    the headers do not add up. (The decoder's window buffer is capped by Zstd
    itself, at 128 MiB.)"""
    total = position = 0
    end = len(data)

    def take(count):
        nonlocal position
        if position + count > end:
            raise ValueError(f"a header at byte {position} runs past the end")
        position += count
        return int.from_bytes(data[position - count:position], "little")

    while position < end:
        magic = take(4)
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # a skippable frame
            position += take(4)
            continue
        if magic != ZSTD_MAGIC:
            raise ValueError(f"no Zstd frame at byte {position - 4} (magic 0x{magic:08x})")
        descriptor = take(1)
        if descriptor & 0x08:
            raise ValueError("the frame header's reserved bit is set")
        single_segment = descriptor & 0x20
        window = 0
        if not single_segment:
            exponent_mantissa = take(1)
            base = 1 << (10 + (exponent_mantissa >> 3))
            window = base + (base >> 3) * (exponent_mantissa & 7)
        take((0, 1, 2, 4)[descriptor & 3])  # dictionary id
        content_bytes = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
        if content_bytes:
            content = take(content_bytes) + (256 if content_bytes == 2 else 0)
            window = window or content
        block_max = min(window, ZSTD_BLOCK_MAX)
        while True:
            header = take(3)
            kind, size = (header >> 1) & 3, header >> 3
            if kind == 3:
                raise ValueError(f"reserved block type at byte {position - 3}")
            total += block_max if kind == 2 else size
            position += 1 if kind == 1 else size
            if position > end:
                raise ValueError("a block runs past the end")
            if header & 1:
                break
        if descriptor & 0x04:
            take(4)  # content checksum
    if position > end:
        raise ValueError("a skippable frame runs past the end")
    return total


def read_aedat4(path, *, sensor_size=None) -> EventRecording:
    with open(path, "rb") as handle:  # a missing file is a FileNotFoundError, as elsewhere
        head = handle.read(len(MAGIC))
    if head != MAGIC:
        raise EventFileError(path, f"bad magic: expected the file to start with {MAGIC.decode()!r}, "
                                   f"got {head!r}")
    aedat = _import_aedat()
    header = check_io_header(path)
    try:
        decoder = aedat.Decoder(os.fspath(path))  # reads the IOHeader only
        streams = decoder.id_to_stream()
        event_streams = sorted(sid for sid, info in streams.items() if info.get("type") == "events")
        if not event_streams:
            raise EventFileError(path, f"has no event stream (streams: {streams})")
        stream_id = event_streams[0]
        info = streams[stream_id]
        height, width = int(info["height"]), int(info["width"])
        if sensor_size is None:
            check_plausible_size(path, (height, width), "the size its event stream declares")
        check_packets(path, *header, kept=(stream_id,))
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
