"""Single-stream compression around a tar (or a lone file): gzip (RFC 1952), bzip2, xz, zstd (RFC 8878).

Decompression is streamed. Python's gzip/bz2/lzma raise ``EOFError`` on a stream cut short; the zstd stream reader
does not, so a zstd input is first checked by walking its frame and block headers (no decompression):

    frame   = magic 28 B5 2F FD, Frame_Header_Descriptor (FCS_Flag bits 7-6, Single_Segment bit 5,
              Content_Checksum bit 2, Dictionary_ID_Flag bits 1-0), [Window_Descriptor], [Dictionary_ID],
              [Frame_Content_Size], blocks, [4-byte checksum]
    block   = 3-byte little-endian header: Last_Block bit 0, Block_Type bits 1-2 (0 raw, 1 RLE, 2 compressed,
              3 reserved), Block_Size bits 3-23; then Block_Size bytes (1 byte for RLE)
    skippable frame = magic 0x184D2A50..5F (little-endian), 4-byte size, data
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
from collections.abc import Callable, Generator
from typing import BinaryIO, cast

import zstandard

from licscan.binary import magic, readlog
from licscan.inventory.entries import ArchiveError, Buffer, Reader
from licscan.inventory.sniff import ArchiveKind
from licscan.model import DiagnosticKind

ZSTD_MAGIC = 0xFD2FB528
ZSTD_READ_SIZE = 64 * 1024  # compressed bytes the zstd decompressor reads at once (the counts of the ratio checks)


class CountingReader(io.RawIOBase):
    """Counts the bytes read through it (compressed bytes consumed, or uncompressed bytes produced)."""

    def __init__(self, raw: Reader, on_read: Callable[[int], None] | None = None,
                 watch: Callable[[bytes], None] | None = None) -> None:
        super().__init__()
        self._raw = raw
        self.count = 0
        self._on_read = on_read
        self._watch = watch  # sees every piece read (ZstdFrames.feed)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        if self._on_read is not None and data:
            self._on_read(len(data))
        if self._watch is not None and data:
            self._watch(data)
        return data

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]  # the buffers io passes
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


class InPlace:
    """``buf`` read in place, counted like :class:`CountingReader`: :meth:`read` returns a window of it (a
    memoryview, no copy). The zstd decompressor reads such a window through the buffer protocol, so it reads the
    compressed bytes straight from the mapping while it does not hold the GIL; copying them out first
    (``WindowStream``) held the GIL for the copy and the page faults behind it (2.1 GB of an image's layers). For
    zstd only: gzip, bz2 and xz want ``bytes``."""

    def __init__(self, buf: Buffer, watch: Callable[[memoryview], None] | None = None) -> None:
        self._view = memoryview(buf)
        self.count = 0
        self._watch = watch  # sees every piece read (ZstdFrames.feed), once the decompressor has read it
        self._unseen: memoryview | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> memoryview:
        if self._unseen is not None and self._watch is not None:
            # The piece read before, now that the decompressor has read it: its pages are in (the watch reading
            # them first faulted them in while it held the GIL).
            self._watch(self._unseen)
        start = self.count
        end = len(self._view) if size is None or size < 0 else min(len(self._view), start + size)
        self.count = max(start, end)
        piece = self._view[start : self.count]
        self._unseen = piece if self.count > start else None
        if self.count > start:
            readlog.record(start, self.count - start)
        return piece


def open_stream(kind: ArchiveKind, raw: io.RawIOBase | InPlace) -> io.BufferedIOBase | zstandard.ZstdDecompressionReader:
    """A binary stream of the decompressed content of ``raw`` (a WindowStream or a CountingReader; an InPlace for
    zstd)."""
    raw_io = cast(BinaryIO, raw)  # typeshed wants IO[bytes] where any stream with read() serves
    if kind is ArchiveKind.GZIP:
        return gzip.GzipFile(fileobj=raw_io, mode="rb")
    if kind is ArchiveKind.BZIP2:
        return bz2.BZ2File(raw_io)
    if kind is ArchiveKind.XZ:
        return lzma.LZMAFile(raw_io)
    if kind is ArchiveKind.ZSTD:
        return zstandard.ZstdDecompressor().stream_reader(raw_io, read_size=ZSTD_READ_SIZE, read_across_frames=True,
                                                          closefd=False)
    raise ValueError(f"not a compression: {kind}")


def gzip_name(head: bytes) -> str | None:
    """The original file name stored in a gzip header (FLG.FNAME), if any."""
    if len(head) < 10 or head[:2] != magic.GZIP or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:  # FEXTRA: XLEN then XLEN bytes
        if len(head) < 12:
            return None
        pos += 2 + struct.unpack_from("<H", head, 10)[0]
    end = head.find(b"\0", pos)
    if end < 0:
        return None
    return head[pos:end].decode("latin-1") or None


# Bytes of the buffer walked between two calls of ``drop`` in :func:`zstd_problem`: reading one block header every
# 128 KiB faults in its neighbours too ("fault-around"), so the walk over a 588 MB layer left 500 MB of the image
# mapping resident until the walker dropped it.
DROP_EVERY = 32 << 20

Want = tuple[int, int]  # the walk of the frames asks for ``n`` bytes at offset ``pos``: (pos, n)


def _frames(end: int) -> Generator[Want, bytes, ArchiveError | None]:
    """The walk of the zstd frames of a buffer of ``end`` bytes (the grammar above): it asks for the few bytes it
    reads (frame and block headers, in increasing offsets) and returns what is wrong, or None."""
    pos = 0
    while pos < end:
        if end - pos < 8:
            return _short(pos, "zstd frame header cut short")
        head = yield pos, 8
        (magic,) = struct.unpack_from("<I", head)
        if magic & 0xFFFFFFF0 == 0x184D2A50:
            (length,) = struct.unpack_from("<I", head, 4)
            pos += 8 + length
            if pos > end:
                return _short(end, "skippable zstd frame cut short")
            continue
        if magic != ZSTD_MAGIC:
            return ArchiveError(DiagnosticKind.MALFORMED, f"no zstd frame magic (found {magic:#010x})", pos)
        descriptor = head[4]
        fcs_flag, single, checksum, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, (descriptor >> 2) & 1, \
            descriptor & 3
        pos += 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]
        while True:
            if pos + 3 > end:
                return _short(end, "zstd block header cut short")
            block = yield pos, 3
            header = block[0] | block[1] << 8 | block[2] << 16
            last, kind, size = header & 1, (header >> 1) & 3, header >> 3
            if kind == 3:
                return ArchiveError(DiagnosticKind.MALFORMED, "reserved zstd block type", pos)
            pos += 3 + (1 if kind == 1 else size)
            if pos > end:
                return _short(end, "zstd block cut short")
            if last:
                break
        pos += 4 if checksum else 0
        if pos > end:
            return _short(end, "zstd checksum cut short")
    return None


def zstd_problem(buf: Buffer, drop: Callable[[], None] | None = None) -> ArchiveError | None:
    """What is wrong with the zstd frames in ``buf`` (cut short: ``truncated``; else ``malformed``), or None.
    ``drop``, when given, is called every :data:`DROP_EVERY` bytes walked (it gives back the pages of the mapping
    ``buf`` is a window of)."""
    view = memoryview(buf)
    walk = _frames(len(view))
    next_drop = DROP_EVERY
    try:
        want = next(walk)
        while True:
            pos, size = want
            if pos >= next_drop and drop is not None:
                drop()
                next_drop = pos + DROP_EVERY
            want = walk.send(bytes(view[pos : pos + size]))
    except StopIteration as done:
        result: ArchiveError | None = done.value
        return result
    finally:
        view.release()


class ZstdFrames:
    """:func:`zstd_problem` of a zstd stream of ``end`` bytes computed from the pieces read by its decompressor
    (:meth:`feed`, in order, from the start): the frame and block headers are read from bytes already read, not
    from the mapping a second time (a second pass faulted in a page every 128 KiB: 0.3 s on an image)."""

    def __init__(self, end: int) -> None:
        self._walk = _frames(end)
        self._at = 0  # offset of the next byte fed
        self._carry = b""  # the start of the piece asked for, when it straddles two reads
        self._done = False
        self._result: ArchiveError | None = None
        self._want: Want | None = self._send(None)

    @property
    def done(self) -> bool:
        """Whether every header was read (every byte was fed): :attr:`result` is then :func:`zstd_problem`'s."""
        return self._done

    @property
    def result(self) -> ArchiveError | None:
        return self._result

    def feed(self, data: bytes | memoryview) -> None:
        start = self._at - len(self._carry)
        self._at += len(data)
        if self._want is None:
            return
        if self._carry:
            data, self._carry = self._carry + data, b""
        while self._want is not None:
            pos, size = self._want
            if pos + size > self._at:
                if pos < self._at:
                    self._carry = bytes(data[pos - start :])
                return
            self._want = self._send(bytes(data[pos - start : pos - start + size]))

    def _send(self, data: bytes | None) -> Want | None:
        try:
            return next(self._walk) if data is None else self._walk.send(data)
        except StopIteration as done:
            self._done, self._result = True, done.value
            return None


def _short(offset: int, message: str) -> ArchiveError:
    return ArchiveError(DiagnosticKind.TRUNCATED, message, offset)
