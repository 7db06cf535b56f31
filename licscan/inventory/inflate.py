"""Reading one zip member in one pass: inflate (or copy, when stored) and CRC-32 check together, with the fastest
deflate the environment has.

The bytes and the errors are those of the standard library's ``zipfile.ZipExtFile`` for the same member, so a
report does not depend on which of the two read it. What ``ZipExtFile`` does (CPython ``Lib/zipfile.py``,
``_read1``/``_update_crc``), and this module with it:

- the data is the ``compress_size`` bytes after the local header ("local file header" + name + extra field,
  APPNOTE.TXT 4.3.7); a deflated member is a raw deflate stream (no zlib header, ``wbits=-15``);
- decompression stops at the end of the deflate stream, or when the compressed bytes run out (the decompressor is
  then flushed: a stream cut short yields what it holds);
- the output is cut at the declared ``file_size``;
- at the end, the CRC-32 of the output is compared with the declared one: ``BadZipFile("Bad CRC-32 for file
  'name'")`` when they differ;
- damaged deflate data raises ``zlib.error`` (zlib-ng's messages are zlib's: "Error -3 while decompressing data:
  invalid block type").

Backends: ``zlib_ng`` (the zlib-ng PyPI package: inflate and CRC-32 about twice as fast as the system zlib on the
torch wheel's members, measured in benchmarks/README.md), else the standard library's ``zlib``. Both release the
GIL while they inflate and while they checksum, so members can be inflated by threads beside the walker.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from types import ModuleType


def _backend() -> ModuleType:
    try:
        from zlib_ng import zlib_ng
    except ImportError:  # pragma: no cover - zlib-ng is a pinned dependency; zlib is the fallback, not the rule
        return zlib
    return zlib_ng


BACKEND = _backend()
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
# Compressed bytes handed to the decompressor at once: what it does not consume (``unconsumed_tail``) is copied
# back on every call, so the piece stays small.
STEP = 256 << 10
# Local file header (APPNOTE.TXT 4.3.7): signature 50 4B 03 04, version needed, flags, method, time, date, crc-32,
# compressed size, uncompressed size, file name length (n), extra field length (m); then n + m bytes, then the data.
_LOCAL = struct.Struct("<4sHHHHHIIIHH")


@dataclass(frozen=True)
class ZipSpan:
    """Where a member of a zip held in ``buf`` is, as the central directory declares it (zipfile's ``ZipInfo``)."""

    buf: object  # the zip: bytes, mmap or memoryview
    header_offset: int
    packed: int  # compress_size
    size: int  # file_size
    crc: int
    method: int
    name: str  # ZipInfo.filename (named in the CRC error, as zipfile names it)
    flags: int | None = None  # ZipInfo.flag_bits, orig_filename and (where zipfile has it) _end_offset: what
    orig: str | None = None  # ZipFile.open checks against the local header (:meth:`checked_start`)
    end: int | None = None

    @classmethod
    def of(cls, buf: object, info: zipfile.ZipInfo) -> ZipSpan:
        return cls(buf, info.header_offset, info.compress_size, info.file_size, info.CRC, info.compress_type,
                   info.filename, info.flag_bits, info.orig_filename, getattr(info, "_end_offset", None))

    def checked_start(self) -> int | None:
        """Where the member's data starts when ``ZipFile.open`` would open it without an error (CPython
        ``Lib/zipfile.py``: the local header is whole and has its signature; no encryption, compressed patched data
        or strong encryption flag; the header's name, decoded as UTF-8 when its flag bit 11 is set, else cp437, is
        the directory's; the data does not run into the next member where zipfile checks that), and this module
        reads it (:meth:`data_offset`); None otherwise: zipfile must open it, and say what is wrong."""
        if self.flags is None or self.orig is None or self.flags & 0x61:  # encrypted, patched, strong encryption
            return None
        start = self.data_offset()
        if start is None:
            return None
        view = memoryview(self.buf)  # type: ignore[arg-type]  # bytes, mmap or memoryview: all buffers
        try:
            fields = _LOCAL.unpack_from(view, self.header_offset)
            if fields[0] != b"PK\x03\x04":
                return None
            name = bytes(view[self.header_offset + _LOCAL.size : self.header_offset + _LOCAL.size + fields[9]])
        finally:
            view.release()
        try:
            decoded = name.decode("utf-8" if fields[2] & 0x800 else "cp437")
        except UnicodeDecodeError:
            return None
        if decoded != self.orig or (self.end is not None and start + self.packed > self.end):
            return None
        return start

    def data_offset(self) -> int | None:
        """Where the member's data starts (after its local header), or None when the span is not one this module
        reads (another method, or data that does not lie wholly inside the buffer: zipfile reports those)."""
        if self.method not in (STORED, DEFLATED):
            return None
        view = memoryview(self.buf)  # type: ignore[arg-type]  # bytes, mmap or memoryview: all buffers
        try:
            end = self.header_offset + _LOCAL.size
            if self.header_offset < 0 or end > len(view):
                return None
            fields = _LOCAL.unpack_from(view, self.header_offset)
            start = end + fields[9] + fields[10]
            return start if start + self.packed <= len(view) else None
        finally:
            view.release()


class MemberReader:
    """A readable binary stream of one member's content (``read(n)`` gives ``n`` bytes until the last piece)."""

    def __init__(self, span: ZipSpan, start: int):
        self._view = memoryview(span.buf)[start : start + span.packed]  # type: ignore[arg-type]
        self._span = span
        self._pos = 0
        self._left = span.size  # bytes still to give (the output is cut at the declared size)
        self._crc = 0
        self._eof = False
        self._tail: bytes = b""
        self._inflater = BACKEND.decompressobj(-15) if span.method == DEFLATED else None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._view.release()
        self._eof = True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 62
        pieces: list[bytes] = []
        want = size
        while want > 0 and not self._eof:
            piece = self._next(want)
            pieces.append(piece)
            want -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _next(self, want: int) -> bytes:
        """The next output piece (at most ``want`` bytes): ``ZipExtFile._read1`` for one step."""
        inflater = self._inflater
        if inflater is None:
            data = bytes(self._view[self._pos : self._pos + min(want, self._left)])
            self._pos += len(data)
            self._eof = self._pos >= len(self._view)
        else:
            if self._tail:
                chunk: bytes | memoryview = self._tail
            else:
                chunk = self._view[self._pos : self._pos + STEP]
                self._pos += len(chunk)
            try:
                data = inflater.decompress(chunk, want)
            except BACKEND.error as error:  # zlib-ng's error: the walker catches zlib.error
                raise zlib.error(str(error)) from None
            self._tail = inflater.unconsumed_tail
            self._eof = inflater.eof or (self._pos >= len(self._view) and not self._tail)
            if self._eof:
                data += inflater.flush()
        data = data[: self._left]
        self._left -= len(data)
        if self._left <= 0:
            self._eof = True
        self._crc = BACKEND.crc32(data, self._crc)
        if self._eof:
            self.close()
            if self._crc != self._span.crc:
                raise zipfile.BadZipFile(f"Bad CRC-32 for file {self._span.name!r}")
        return data


def open_checked(span: ZipSpan) -> MemberReader | None:
    """A one-pass reader of the member at ``span`` when zipfile would open it without an error
    (:meth:`ZipSpan.checked_start`); None: open it with zipfile first (:func:`open_member` then)."""
    start = span.checked_start()
    return MemberReader(span, start) if start is not None else None


def open_member(span: ZipSpan) -> MemberReader | None:
    """A one-pass reader of the member at ``span``; None when zipfile must read it (another method, or data past
    the end of the buffer). Call it after ``ZipFile.open`` has checked the local header (name, flags)."""
    start = span.data_offset()
    return MemberReader(span, start) if start is not None else None
