"""The fatbin container: outer header, entry headers, and where the payloads are (docs/binary-format.md §1).

Pure functions over a buffer (bytes, mmap or memoryview). Nothing here decompresses or reads a payload:
the walker only reads headers, so listing a 300 MB ``.nv_fatbin`` touches a few kilobytes.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

from licscan.binary.buffer import Buffer
from licscan.binary.errors import FormatError
from licscan.binary.paged import read_at
from licscan.binary.probe import Finder
from licscan.model import Compression

# fatBinaryHeader: "u32 magic 0xBA55ED50 (bytes 50 ED 55 BA), u16 version 1, u16 header_size 16, u64 fat_size".
FATBIN_MAGIC = 0xBA55ED50
FATBIN_MAGIC_BYTES = struct.pack("<I", FATBIN_MAGIC)
_OUTER = struct.Struct("<IHHQ")
OUTER_HEADER_SIZE = 16

# fatBinData: kind, version, header_size, payload_size, compressed_size, extra_desc_off, minor, major, arch,
# ident_off, ident_size, flags, reserved, uncompressed_size -- 64 bytes, then an optional tail.
_ENTRY = struct.Struct("<HHIQIIHHIIIQQQ")
ENTRY_MIN_HEADER = 64
ENTRY_MAX_HEADER = 4096  # far above the largest seen (152 bytes); bounds a lying header_size
ENTRY_VERSION = 0x0101  # "0x0101 in every entry seen"


class EntryKind(enum.IntEnum):
    """Entry kind field: "1 = PTX, 2 = ELF (cubin). NVIDIA's old header also defines 4 = OLDCUBIN"."""

    PTX = 1
    ELF = 2
    OLDCUBIN = 4


_PTX, _ELF = int(EntryKind.PTX), int(EntryKind.ELF)  # plain ints: compared once per entry


class Flag:
    """Entry flags (u64 at +0x28), names from NVIDIA ``fatbinary.h`` as quoted in docs/binary-format.md §1.3.

    Plain ints, not an ``enum.IntFlag``: the walker tests them a dozen times per entry, and IntFlag arithmetic
    costs a third of the run time on a file with thousands of entries.
    """

    ADDRESS_64BIT = 0x1
    DEBUG = 0x2
    PRODUCER_CUDA = 0x4
    PRODUCER_OPENCL = 0x8
    HOST_LINUX = 0x10
    HOST_MAC = 0x20
    HOST_WINDOWS = 0x40
    COMPRESS_LEGACY = 0x1000  # never seen; decoded like COMPRESS_LZ4 (as redplait/denvdis does)
    COMPRESS_LZ4 = 0x2000  # "COMPRESS2 = LZ4 block"
    COMPRESS_ZSTD = 0x8000  # "ZCOMPRESS = zstd"
    ARCH_SPECIFIC = 0x100000  # sm_90a, compute_100a
    FAMILY_SPECIFIC = 0x200000  # sm_100f, compute_120f
    COMPAT_BLOB = 0x1000000  # set on every ELF entry with arch >= 100 (meaning undocumented)


COMPRESSION_FLAGS = Flag.COMPRESS_LEGACY | Flag.COMPRESS_LZ4 | Flag.COMPRESS_ZSTD


def compression_of(flags: int) -> Compression:
    """The payload's compression, from the entry flags (§1.3)."""
    if flags & Flag.COMPRESS_ZSTD:
        return Compression.ZSTD
    if flags & (Flag.COMPRESS_LZ4 | Flag.COMPRESS_LEGACY):
        return Compression.LZ4
    return Compression.NONE


def host_of(flags: int) -> str | None:
    """The host system the entry was built for, from the entry flags (§1.3)."""
    for flag, name in ((Flag.HOST_LINUX, "linux"), (Flag.HOST_WINDOWS, "windows"), (Flag.HOST_MAC, "mac")):
        if flags & flag:
            return name
    return None


@dataclass(frozen=True)
class Entry:
    """One entry header; offsets are absolute positions in the buffer that was walked."""

    offset: int
    kind: int
    header_size: int
    payload_size: int
    compressed_size: int
    minor: int
    major: int
    arch: int
    flags: int
    uncompressed_size: int
    identifier: str | None
    ptxas_options: str | None

    @classmethod
    def from_values(cls, *values: object) -> Entry:
        """``Entry(*values)`` with every field given in declaration order, built without the generated ``__init__``'s
        one ``object.__setattr__`` per frozen field (a large library has thousands of entries); equal to the
        ``__init__`` one (a test checks it)."""
        if len(values) != len(_ENTRY_FIELDS):
            raise TypeError(f"Entry.from_values takes {len(_ENTRY_FIELDS)} values, got {len(values)}")
        entry = object.__new__(cls)
        entry.__dict__.update(zip(_ENTRY_FIELDS, values, strict=True))
        return entry

    @property
    def payload_offset(self) -> int:
        return self.offset + self.header_size

    @property
    def is_ptx(self) -> bool:
        return self.kind == _PTX

    @property
    def compressed(self) -> bool:
        return bool(self.flags & COMPRESSION_FLAGS)

    @property
    def stored_size(self) -> int:
        """Bytes of the payload that hold the image: the compressed stream, or the padded payload."""
        return self.compressed_size if self.compressed else self.payload_size

    def arch_name(self, *, family_suffix: bool) -> str:
        """``sm_<arch>`` + ``a`` (flag 0x100000) or ``f`` (flag 0x200000), as cuobjdump names entries.

        cuobjdump keeps ``f`` in PTX names (``sm_100f.ptx``) but lists family ELF entries without it; pass
        ``family_suffix=False`` for that spelling.
        """
        return Entry.arch_label(self.arch, self.flags, family_suffix=family_suffix)

    @staticmethod
    def arch_label(arch: int, flags: int, *, family_suffix: bool) -> str:
        """:meth:`arch_name` of an entry with ``arch`` and ``flags``."""
        name = f"sm_{arch}"
        if flags & Flag.ARCH_SPECIFIC:
            return name + "a"
        if family_suffix and flags & Flag.FAMILY_SPECIFIC:
            return name + "f"
        return name


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


@dataclass(frozen=True)
class Fatbin:
    """One fatbin. With ``partial=True`` parsing, ``error`` says why the entries stop early."""

    offset: int
    size: int  # header + entries, as declared
    entries: tuple[Entry, ...]
    error: FormatError | None = None

    @property
    def end(self) -> int:
        return self.offset + self.size


def _text(head: bytes, start: int, size: int, limit: int) -> str | None:
    if start < 0 or size < 0 or start + size > limit:
        return None
    return head[start : start + size].split(b"\0", 1)[0].decode("utf-8", "replace")


HEAD_READ = 256  # bytes read at an entry header: the 64-byte header and its tail (the largest seen: 152 bytes)


def parse_entry(buf: Buffer, pos: int, end: int, head: bytes | None = None) -> Entry:
    """Parse and validate the entry header at ``pos``; ``end`` is the end of the enclosing fatbin; ``head``: bytes
    of ``buf`` from ``pos`` when the caller has read them already. The header is read with one
    :func:`~licscan.binary.paged.read_at` (``pread`` on a large file: the headers lie hundreds of KB apart)."""
    if pos + ENTRY_MIN_HEADER > end:
        raise FormatError(pos, f"entry header needs {ENTRY_MIN_HEADER} bytes, {end - pos} left in the fatbin")
    if head is None or len(head) < min(HEAD_READ, end - pos):
        head = read_at(buf, pos, min(HEAD_READ, end - pos))
    if len(head) < ENTRY_MIN_HEADER:
        raise FormatError(pos, f"entry header needs {ENTRY_MIN_HEADER} bytes, the file ends after {len(head)}",
                          truncated=True)
    (kind, version, header_size, payload_size, compressed_size, extra_off, minor, major, arch, ident_off,
     ident_size, flags, _reserved, uncompressed_size) = _ENTRY.unpack_from(head, 0)
    if kind != _PTX and kind != _ELF:
        raise FormatError(pos, f"entry kind {kind} is neither 1 (PTX) nor 2 (ELF)")
    if version != ENTRY_VERSION:
        raise FormatError(pos, f"entry version {version:#x}, expected {ENTRY_VERSION:#x}")
    if header_size < ENTRY_MIN_HEADER or header_size > ENTRY_MAX_HEADER or header_size % 8:
        raise FormatError(pos, f"entry header_size {header_size} is not a multiple of 8 in [64, 4096]")
    if payload_size % 8:
        raise FormatError(pos, f"entry payload_size {payload_size} is not a multiple of 8")
    if pos + header_size + payload_size > end:
        raise FormatError(
            pos, f"entry of {header_size}+{payload_size} bytes runs {pos + header_size + payload_size - end} "
                 "bytes past the end of its fatbin")
    if compressed_size > payload_size:
        raise FormatError(pos, f"compressed_size {compressed_size} exceeds payload_size {payload_size}")
    if flags & COMPRESSION_FLAGS and uncompressed_size == 0:
        raise FormatError(pos, "compressed entry declares uncompressed_size 0")
    if header_size > len(head):
        head = read_at(buf, pos, header_size)
    ident = _text(head, ident_off, ident_size, header_size) if ident_off else None
    options = None
    if extra_off and kind == _PTX and extra_off + 8 <= header_size:
        # "PTX: off/size locate the ptxas options text (size may be 0)"
        opt_off, opt_size = struct.unpack_from("<II", head, extra_off)
        if opt_size:
            options = _text(head, opt_off, opt_size, header_size)
    return Entry.from_values(pos, kind, header_size, payload_size, compressed_size, minor, major, arch, flags,
                             uncompressed_size, ident, options)


def parse_fatbin(buf: Buffer, pos: int, limit: int, *, max_entries: int = 100_000, partial: bool = False,
                 head: bytes | None = None) -> Fatbin:
    """Parse the fatbin whose header is at ``pos``; it must end at or before ``limit`` (``head``: bytes of ``buf``
    from ``pos`` when the caller has read them already).

    Raises :class:`FormatError` with the offset of the first structure that does not validate. With
    ``partial=True`` an invalid or truncated entry list is not raised: the entries before the fault are returned
    with the error (used inside the dedicated sections, where a magic cannot be a false positive).
    """
    if pos + OUTER_HEADER_SIZE > limit:
        raise FormatError(pos, "fatbin header truncated")
    if head is None or len(head) < min(OUTER_HEADER_SIZE + HEAD_READ, limit - pos):
        head = read_at(buf, pos, min(OUTER_HEADER_SIZE + HEAD_READ, limit - pos))
    if len(head) < OUTER_HEADER_SIZE:
        raise FormatError(pos, "fatbin header truncated", truncated=True)
    magic, version, header_size, fat_size = _OUTER.unpack_from(head, 0)
    if magic != FATBIN_MAGIC:
        raise FormatError(pos, f"bad fatbin magic {magic:#010x}")
    if version != 1 or header_size != OUTER_HEADER_SIZE:
        raise FormatError(pos, f"fatbin version {version} / header_size {header_size}, expected 1 / 16")
    end = pos + header_size + fat_size
    entries: list[Entry] = []
    error = None
    try:
        if end > limit:
            error = FormatError(pos, f"fatbin declares {fat_size} bytes of entries, only {limit - pos - header_size}"
                                     " remain", truncated=True)
            if not partial:
                raise error
            end = limit  # read what is there, then report the truncation
        e = pos + header_size
        first: bytes | None = head[OUTER_HEADER_SIZE:]  # the first entry's header came with the fatbin's
        while e < end:
            if len(entries) >= max_entries:
                raise FormatError(e, f"more than {max_entries} entries in one fatbin", limit=True)
            entry = parse_entry(buf, e, end, first)
            first = None
            entries.append(entry)
            e = entry.payload_offset + entry.payload_size
        # "Require e == end: entries tile the fatbin exactly" -- parse_entry's bounds check guarantees it.
        if end != pos + header_size + fat_size:
            assert error is not None  # set above whenever end was cut to the limit
            raise error
    except FormatError as fault:
        if not partial:
            raise
        # When the fatbin was cut off, the cut is the cause of whatever entry fault followed.
        return Fatbin(pos, header_size + fat_size, tuple(entries), (error or fault).detached())
    return Fatbin(pos, header_size + fat_size, tuple(entries))


@dataclass(frozen=True)
class ScanError:
    """A fatbin magic whose header or entries did not validate."""

    error: FormatError


def scan(buf: Buffer, start: int = 0, end: int | None = None, *, max_entries: int = 100_000,
         partial: bool = False, one_pass: bool = False, known: Sequence[int] | None = None,
         ) -> Iterator[Fatbin | ScanError]:
    """Find every fatbin in ``buf[start:end]`` (docs/binary-format.md, section "1.6 Finding fatbins": "search for
    the magic bytes; parse and validate the fatbin there; after a valid fatbin continue at its end, after a magic
    that does not validate continue 4 bytes further").

    ``one_pass``: the caller reads the whole region anyway (the lenient scan of a data section), so the magics are
    found in one pass over it (:class:`licscan.binary.probe.Finder`) instead of a search started again after each
    one; ``known``: their offsets, when the caller's own pass found them (:func:`licscan.binary.probe.
    occurrence_table`). The fatbins are the same. Without either the search reads only from each fatbin's end to
    the next magic (a dedicated section: its payloads are never touched).
    """
    end = len(buf) if end is None else end
    dedicated = not one_pass and known is None
    if not dedicated:
        find = Finder(buf, FATBIN_MAGIC_BYTES, start, end, known).find
    else:
        def find(pos: int) -> int:
            return buf.find(FATBIN_MAGIC_BYTES, pos, end)
    pos = start
    while True:
        # Fatbins in a dedicated section follow each other: the next magic is nearly always where the last fatbin
        # ends. Its header (and its first entry's) is read there at once; a search would have read (and dropped:
        # PagedMap.find) a whole window of pages to find it.
        head = read_at(buf, pos, min(OUTER_HEADER_SIZE + HEAD_READ, end - pos)) if dedicated and pos < end else None
        if head is None or head[:4] != FATBIN_MAGIC_BYTES:
            head = None
            pos = find(pos)
            if pos < 0:
                return
        try:
            fatbin = parse_fatbin(buf, pos, end, max_entries=max_entries, partial=partial, head=head)
        except FormatError as error:
            yield ScanError(error.detached())
            pos += 4
            continue
        yield fatbin
        if fatbin.error is not None:
            # Damaged: the declared size cannot be trusted; look for the next magic after the good entries.
            last = fatbin.entries[-1] if fatbin.entries else None
            pos = last.payload_offset + last.payload_size if last else pos + 4
        else:
            pos = max(fatbin.end, pos + OUTER_HEADER_SIZE)
