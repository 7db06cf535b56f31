"""The members of one archive, as a uniform sequence of :class:`Entry` values: zip (APPNOTE.TXT), tar (POSIX
ustar / pax / GNU, through the stdlib), ar (licscan.binary.archive). Readers yield entries in archive order and
raise :class:`ArchiveError` at the first damage, after the entries before it.

An entry's ``open()`` must be used before the reader is advanced (a streamed tar reads through it once).
"""

from __future__ import annotations

import enum
import functools
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import zstandard

from licscan.binary import archive, buffer
from licscan.binary.errors import FormatError
from licscan.binary.stream import WindowStream
from licscan.inventory.inflate import ZipSpan
from licscan.model import DiagnosticKind


class EntryType(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    FIFO = "fifo"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    OTHER = "other"


@dataclass(frozen=True)
class Entry:
    name: str  # as stored
    type: EntryType
    size: int | None = None  # declared uncompressed size
    packed: int | Callable[[], int] | None = None  # compressed size, or the compressed bytes consumed so far
    mode: int | None = None  # permission bits
    link: str | None = None  # link target as stored
    open: Callable[[], Reader | None] | None = None  # a binary stream of the content (FILE only)
    window: tuple[Buffer, int, int] | None = None  # (buffer, offset, size) when stored contiguous and uncompressed
    charged: bool = False  # its bytes were already charged to the budget by the stream below
    span: ZipSpan | None = None  # a zip member's place in its zip (licscan.inventory.inflate reads it in one pass)

    def reader(self) -> Reader:
        """The content's stream (:attr:`open`), whose every failure is an :class:`ArchiveError` with its kind."""
        try:
            stream = self.open() if self.open is not None else None
        except READ_ERRORS as error:
            raise read_error(error) from error
        if stream is None:
            raise ArchiveError(DiagnosticKind.UNSUPPORTED, f"{self.name}: no content to read")
        return _Checked(stream)


# The bytes of an archive: a mapped file or a member read into memory (licscan.binary.buffer), or a window of a
# member stored uncompressed in its archive (a memoryview of the mapping).
Buffer: TypeAlias = buffer.Buffer | memoryview


class Reader(Protocol):
    """A binary stream read to its end (a zip or tar member, a decompressor, a window of a buffer)."""

    def read(self, size: int = ..., /) -> bytes: ...


class TarSource(Protocol):
    """What tarfile reads a tar from (typeshed's tarfile._Fileobj): a WindowStream, a decompressing stream."""

    def read(self, size: int, /) -> bytes: ...
    def write(self, b: bytes, /) -> object: ...
    def tell(self) -> int: ...
    def seek(self, pos: int, /) -> object: ...
    def close(self) -> object: ...


class ArchiveError(Exception):
    def __init__(self, kind: DiagnosticKind, message: str, offset: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.offset = offset


# What reading an archive or a member can raise besides a limit (LimitExceeded): the stdlib readers' errors and ours.
READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, RuntimeError, ArchiveError, tarfile.TarError,
               zlib.error, zstandard.ZstdError)
# How the stdlib readers say that their input ended early, when not by EOFError (gzip, bz2, lzma: "Compressed file
# ended before the end-of-stream marker was reached"): tarfile's ReadError("unexpected end of data") for a member
# cut short and ReadError("truncated header"); zipfile's BadZipFile("Truncated file header").
_CUT_SHORT = ("end of data", "unexpected end", "truncated", "ended before")


def read_error(error: Exception) -> ArchiveError:
    """A reader's error as an :class:`ArchiveError` of kind ``truncated`` (the input ended early) or ``malformed``;
    the one place that reads the stdlib's messages, which carry no other sign of truncation."""
    if isinstance(error, ArchiveError):
        return error
    text = str(error) or type(error).__name__
    cut = isinstance(error, EOFError) or any(words in text.lower() for words in _CUT_SHORT)
    return ArchiveError(DiagnosticKind.TRUNCATED if cut else DiagnosticKind.MALFORMED, text)


class _Checked:
    """A member's stream whose read errors are :class:`ArchiveError` values (limits pass through)."""

    def __init__(self, raw: Reader) -> None:
        self._raw = raw

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._raw.read(size)
        except READ_ERRORS as error:
            raise read_error(error) from error

    def read_parts(self, size: int, /) -> Sequence[bytes | memoryview]:
        """What :meth:`read` reads, in the parts the stream has them in (inflow.py: windows of its buffers, valid
        until the next read), where it has them so; Spool.hold writes them out without joining them."""
        read_parts: Callable[[int], Sequence[bytes | memoryview]] | None = getattr(self._raw, "read_parts", None)
        try:
            return read_parts(size) if read_parts is not None else (self._raw.read(size),)
        except READ_ERRORS as error:
            raise read_error(error) from error


# ---------------------------------------------------------------------------------------------------------- zip
# Local file header (APPNOTE 4.3.7): signature 50 4B 03 04, version, flags, method, time, date, crc-32,
# compressed size, uncompressed size, name length, extra length; then name, extra, data. Flag bit 3: sizes follow
# the data in a data descriptor ([50 4B 07 08] crc, compressed, uncompressed).
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_STORED, _DEFLATED = 0, 8


def zip_entries(buf: Buffer, opened: zipfile.ZipFile | None = None) -> Iterator[Entry]:
    """The members of the zip ``buf`` (``opened``: the same zip already opened with zipfile, read from ``buf``)."""
    try:
        zf = opened if opened is not None else zipfile.ZipFile(WindowStream(buf))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, struct.error) as error:
        count = 0
        try:
            for entry in _local_entries(buf):
                count += 1
                yield entry
        except ArchiveError as damage:
            raise ArchiveError(damage.kind, f"no usable central directory ({error}); {count} members recovered "
                                            f"from their local headers, then: {damage.message}", damage.offset) from None
        raise ArchiveError(DiagnosticKind.TRUNCATED, f"no usable central directory ({error}): truncated or damaged "
                                                     f"zip; {count} members recovered from their local headers") from None
    for info in zf.infolist():
        mode = _zip_mode(info)
        if info.is_dir() or stat.S_ISDIR(mode):
            yield Entry(info.filename, EntryType.DIR)
            continue
        if stat.S_ISLNK(mode):
            try:
                target = zf.read(info)[:4096].decode("utf-8", "surrogateescape")
            except Exception:  # noqa: BLE001 - a damaged link member: no target
                target = None
            yield Entry(info.filename, EntryType.SYMLINK, link=target)
            continue
        yield _zip_file(buf, zf, info, mode)


def zip_large_files(buf: Buffer, zf: zipfile.ZipFile, over: int) -> list[Entry]:
    """The file members of the zip ``zf`` (read from ``buf``) that declare more than ``over`` bytes, in archive
    order: the same values :func:`zip_entries` yields for them (equal, not the same objects)."""
    out = []
    for info in zf.infolist():
        if info.file_size > over and not info.is_dir():
            mode = _zip_mode(info)
            if not stat.S_ISDIR(mode) and not stat.S_ISLNK(mode):
                out.append(_zip_file(buf, zf, info, mode))
    return out


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) if info.create_system == 3 else 0


def _zip_file(buf: Buffer, zf: zipfile.ZipFile, info: zipfile.ZipInfo, mode: int) -> Entry:
    return Entry(info.filename, EntryType.FILE, info.file_size, info.compress_size,
                 stat.S_IMODE(mode) if mode else None, open=functools.partial(zf.open, info),
                 span=ZipSpan.of(buf, info))


def _local_entries(buf: Buffer) -> Iterator[Entry]:
    """Members from their local headers alone, for a zip whose central directory is missing (truncated)."""
    end = len(buf)
    pos = 0
    while pos + 4 <= end and bytes(buf[pos : pos + 4]) == b"PK\x03\x04":
        if pos + _LOCAL.size > end:
            raise ArchiveError(DiagnosticKind.TRUNCATED, "local header cut short", pos)
        _sig, _ver, flags, method, _t, _d, _crc, csize, usize, nlen, elen = _LOCAL.unpack_from(bytes(
            buf[pos : pos + _LOCAL.size]))
        name_at = pos + _LOCAL.size
        data = name_at + nlen + elen
        if data > end:
            raise ArchiveError(DiagnosticKind.TRUNCATED, "local header cut short", pos)
        name = bytes(buf[name_at : name_at + nlen]).decode("utf-8" if flags & 0x800 else "cp437")
        if method not in (_STORED, _DEFLATED):
            raise ArchiveError(DiagnosticKind.UNSUPPORTED, f"{name}: compression method {method} in a zip without "
                                                           f"central directory", pos)
        if flags & 0x08 and csize == 0:
            if method != _DEFLATED:
                raise ArchiveError(DiagnosticKind.UNSUPPORTED, f"{name}: stored member with a data descriptor", pos)
            csize, usize = _inflated_extent(buf, data, name)
        if data + csize > end:
            raise ArchiveError(DiagnosticKind.TRUNCATED, f"{name}: member data cut short", data)
        if name.endswith("/"):
            yield Entry(name, EntryType.DIR)
        elif method == _STORED:
            yield Entry(name, EntryType.FILE, csize, csize, window=(buf, data, csize),
                        open=functools.partial(WindowStream, buf, data, csize))
        else:
            yield Entry(name, EntryType.FILE, usize, csize, open=functools.partial(_Inflate, buf, data, csize))
        pos = data + csize
        if flags & 0x08:
            pos += 16 if bytes(buf[pos : pos + 4]) == b"PK\x07\x08" else 12


def _inflated_extent(buf: Buffer, start: int, name: str) -> tuple[int, int]:
    """``(compressed, uncompressed)`` size of the raw deflate stream at ``start`` (counted, not kept)."""
    inflater = zlib.decompressobj(-15)
    pos = start
    produced = 0
    while not inflater.eof:
        if pos >= len(buf):
            raise ArchiveError(DiagnosticKind.TRUNCATED, f"{name}: deflate stream cut short", start)
        chunk = bytes(buf[pos : pos + 65536])
        try:
            produced += len(inflater.decompress(chunk, 1 << 20))
            while inflater.unconsumed_tail and not inflater.eof:
                produced += len(inflater.decompress(inflater.unconsumed_tail, 1 << 20))
        except zlib.error as error:
            raise ArchiveError(DiagnosticKind.MALFORMED, f"{name}: {error}", pos) from None
        pos += len(chunk)
    return pos - len(inflater.unused_data) - start, produced


class _Inflate:
    """A raw-deflate member read from ``buf[start:start+size]``."""

    def __init__(self, buf: Buffer, start: int, size: int) -> None:
        self._buf, self._pos, self._end = buf, start, start + size
        self._inflater = zlib.decompressobj(-15)
        self._tail = b""

    def read(self, size: int = -1) -> bytes:
        size = 1 << 20 if size is None or size < 0 else size
        while True:
            if self._tail:
                data, self._tail = self._tail, b""
            elif self._pos < self._end:
                data = bytes(self._buf[self._pos : min(self._end, self._pos + 65536)])
                self._pos += len(data)
            elif self._inflater.eof:
                return b""
            else:
                raise EOFError("deflate stream ended early")
            out = self._inflater.decompress(data, size)
            self._tail = self._inflater.unconsumed_tail
            if out or self._inflater.eof:
                return out


# ---------------------------------------------------------------------------------------------------------- tar
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, ValueError, struct.error)
# A pax extended header (typeflag x/g) or a GNU long name/link (L/K) is read whole into memory by tarfile before the
# member it describes: 300 MB of "path=aaa..." compress to 300 KB in a .tar.gz (3 GB resident when it was read).
# Real ones hold a path, a link target, times, xattrs: far below this.
MAX_EXTENDED_HEADER = 1 << 20
# Everything tarfile reads to describe one member (extended headers, the next header, an old GNU sparse member's
# chain of extension blocks, a sparse 1.0 map): tarfile follows a chain of 400,000 sparse extension blocks (200 MB,
# 1.2 MB as .tar.gz) into 8.4 million tuples, 1.6 GB resident.
MAX_HEADER_READ = 4 * MAX_EXTENDED_HEADER
_EXTENDED = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
             tarfile.SOLARIS_XHDTYPE)


class _CappedReads:
    """The archive stream while tarfile reads one member's headers: at most MAX_HEADER_READ bytes."""

    def __init__(self, raw: TarSource) -> None:
        self._raw = raw
        self._left = MAX_HEADER_READ

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._left:
            raise tarfile.HeaderError(f"headers of one member longer than {MAX_HEADER_READ} bytes: not read")
        data = self._raw.read(size)
        self._left -= len(data)
        return data

    def __getattr__(self, name: str) -> object:
        return getattr(self._raw, name)  # tell, seek


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile's TarInfo, refusing an extended header over MAX_EXTENDED_HEADER bytes before it is read, and reading
    at most MAX_HEADER_READ bytes of headers for one member (``_proc_member`` is the hook tarfile names for
    subclasses: "The entry point is _proc_member() which can be overridden in a subclass to add custom _proc_*()
    methods")."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED and self.size > MAX_EXTENDED_HEADER:
            raise tarfile.HeaderError(f"extended header of {self.size} bytes at {self.offset} (over the limit of "
                                      f"{MAX_EXTENDED_HEADER}): not read")
        raw = tarfile_.fileobj
        if (self.type not in _EXTENDED and self.type != tarfile.GNUTYPE_SPARSE) or isinstance(raw, _CappedReads):
            # typeshed does not declare the hook tarfile.TarInfo._proc_member: the ignores on these two calls
            return super()._proc_member(tarfile_)  # type: ignore[misc, no-any-return]  # plain, or under an outer cap
        # _CappedReads passes tell/seek/close on through __getattr__, which a Protocol check does not see
        tarfile_.fileobj = _CappedReads(raw)  # type: ignore[assignment]
        try:
            return super()._proc_member(tarfile_)  # type: ignore[misc, no-any-return]
        finally:
            tarfile_.fileobj = raw


def tar_entries(fileobj: TarSource, *, streamed: bool, buf: Buffer | None = None, packed: Callable[[], int] | None
                = None, direct: type[tarfile.TarFile] | None = None) -> Iterator[Entry]:
    """Members of the tar read from ``fileobj``: streamed (``r|``, from a decompressor, or ``direct`` by that TarFile
    class: inflow.py) or with random access over ``buf`` (members carry their window; truncation checked)."""
    try:
        tf = (direct or tarfile.TarFile).open(fileobj=fileobj, mode="r:" if direct or not streamed else "r|",
                                              tarinfo=_BoundedTarInfo)
    except _TAR_ERRORS as error:
        raise _tar_error(error, "tar header") from None
    count = last_end = 0
    try:
        while True:
            info = tf.next()
            if info is None:
                break
            # TarFile keeps every TarInfo it has read (for extraction by name): ~500 bytes a member, 500 MB for a
            # tar of 1,000,000 members. Nothing here looks members up by name (links are reported, not followed).
            tf.members.clear()  # type: ignore[attr-defined]  # TarFile.members: not in typeshed
            count += 1
            yield _tar_entry(tf, info, streamed, buf, packed)
            if not streamed:
                last_end = info.offset_data + (info.size if info.isreg() else 0)
    except _TAR_ERRORS as error:
        raise _tar_error(error, f"after {count} members") from None
    if buf is not None and not streamed:
        if last_end > len(buf):
            raise ArchiveError(DiagnosticKind.TRUNCATED, f"tar cut short: last member ends at {last_end}, "
                                                         f"archive has {len(buf)} bytes", len(buf))
        rest = tf.offset
        if rest < len(buf) and any(bytes(buf[rest : rest + 512])):
            block = bytes(buf[rest : rest + 512])
            kind = DiagnosticKind.TRUNCATED if len(block) < 512 else DiagnosticKind.MALFORMED
            raise ArchiveError(kind, f"unreadable tar header after {count} members", rest)


def _tar_error(error: Exception, where: str) -> ArchiveError:
    typed = read_error(error)
    return ArchiveError(typed.kind, f"{typed.message} ({where})")


def _tar_entry(tf: tarfile.TarFile, info: tarfile.TarInfo, streamed: bool, buf: Buffer | None,
               packed: Callable[[], int] | None) -> Entry:
    mode = stat.S_IMODE(info.mode) if info.mode is not None else None
    if info.isreg():
        window = None if streamed or info.issparse() or buf is None else (buf, info.offset_data, info.size)
        return Entry(info.name, EntryType.FILE, info.size, packed if streamed else info.size, mode,
                     open=functools.partial(tf.extractfile, info), window=window, charged=streamed)
    if info.isdir():
        return Entry(info.name, EntryType.DIR)
    if info.issym():
        return Entry(info.name, EntryType.SYMLINK, link=info.linkname)
    if info.islnk():
        return Entry(info.name, EntryType.HARDLINK, link=info.linkname)
    if info.isfifo():
        return Entry(info.name, EntryType.FIFO)
    if info.ischr():
        return Entry(info.name, EntryType.CHAR_DEVICE)
    if info.isblk():
        return Entry(info.name, EntryType.BLOCK_DEVICE)
    return Entry(info.name, EntryType.OTHER)


# ----------------------------------------------------------------------------------------------------------- ar
def ar_entries(buf: Buffer) -> Iterator[Entry]:
    try:
        for member in archive.members(buf):
            yield Entry(member.name, EntryType.FILE, member.size, member.size,
                        window=(buf, member.offset, member.size),
                        open=functools.partial(WindowStream, buf, member.offset, member.size))
    except FormatError as error:
        raise ArchiveError(error.kind,
                           error.reason, error.offset) from None
