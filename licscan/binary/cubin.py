"""Device ELF (cubin) facts: ABI, SM, the ``a`` suffix, and the toolkit notes (docs/binary-format.md §4).

Two ways in, one result (:class:`CubinFacts`):

* :func:`from_image` parses a complete cubin with the ELF adapter (standalone files, uncompressed entries);
* :func:`from_prefix` reads a compressed (zstd or LZ4) entry progressively: the ELF header is in the first 64
  bytes, and the NVIDIA notes are located by their note-record header in the decoded prefix, because the section
  header table sits at the end of the image, behind every section's data -- reaching it would mean decoding the
  whole image.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from licscan.binary import magic
from licscan.binary.buffer import Buffer, ByteView
from licscan.binary.compression import PrefixReader
from licscan.binary.errors import FormatError
from licscan.binary.probe import occurrences
from licscan.model import ToolInfo

ELF_MAGIC = magic.ELF
EM_CUDA = 190  # e_machine of NVIDIA device code
SHT_CUDA_COMPAT = 0x70000086  # ".nv.compat" (docs/binary-format.md §4.5)

# e_ident[EI_OSABI] / [EI_ABIVERSION]: "v7: 0x33 (51), 7; v8: 0x41 (65), 8".
ABI_V7 = 7
ABI_V8 = 8

# ABI v7 e_flags (LLVM EF_CUDA_*): bits 0-7 real SM, 0x800 EF_CUDA_ACCELERATORS ("sm_90a"), bits 16-23 virtual SM.
V7_SM_MASK = 0xFF
V7_ACCELERATORS = 0x800
# ABI v8 e_flags: "bits 8-15 real SM; 0x08 accelerators (a) -- only as written by ptxas 12.8/12.9".
V8_ACCELERATORS = 0x08

NOTE_OWNER = "NVIDIA Corp"
NT_CUDA_TKINFO = 2000  # .note.nv.tkinfo
NT_CUDA_CUINFO = 1000  # .note.nv.cuinfo (13.0) and .note.nv.cuver (12.8/12.9)
COMPAT_ATTR_ACCELERATORS = 9  # ".nv.compat attribute 9 = 1 <=> a"

_RELEASE = re.compile(r"release (\d+\.\d+), V(\d+\.\d+\.\d+)")
_ELF64_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")


@dataclass(frozen=True)
class CubinFacts:
    abi: int  # 7, 8, or another EI_ABIVERSION value
    e_type: int  # 1 ET_REL (-rdc), 2 ET_EXEC
    e_version: int  # ABI v7: toolkit major*10+minor of the producing ptxas/nvlink
    e_flags: int
    sm: int
    accelerated: bool  # the "a" suffix as the cubin itself records it
    virtual_sm: int | None
    tool: ToolInfo | None  # the first .note.nv.tkinfo record: the tool that wrote this cubin
    tkinfo_word: int | None  # tkinfo's first u32: toolkit*10 in 12.8/12.9, 2 in 13.0
    cuinfo_toolkit: int | None  # .note.nv.cuinfo u32 (13.0): major*10+minor
    debug: bool
    # Further tkinfo records: a device-linked cubin carries nvlink's record, then one per ptxas-built input.
    inputs: tuple[ToolInfo, ...] = ()
    # True when the facts come from the fatbin entry header alone (the image itself was not decoded).
    from_entry: bool = False

    @staticmethod
    def from_entry_header(code_minor: int, arch: int, accelerated: bool, debug: bool) -> CubinFacts:
        """What a fatbin entry header states about its cubin without decoding it: the entry's "code version"
        [1,7] / [1,8] is the cubin ABI (docs/binary-format.md §1.2), ``arch`` its SM, the flags its ``a`` suffix."""
        return CubinFacts(code_minor, 0, 0, 0, arch, accelerated, None, None, None, None, debug, (), True)

    @property
    def arch(self) -> str:
        return f"sm_{self.sm}" + ("a" if self.accelerated else "")


def parse_header(prefix: ByteView) -> tuple[int, int, int, int, int, int]:
    """(abi, e_type, e_machine, e_version, e_flags, shoff) from the first 64 bytes of a device ELF."""
    if len(prefix) < _ELF64_HEADER.size:
        raise FormatError(0, f"cubin ELF header needs 64 bytes, got {len(prefix)}", truncated=True)
    ident, e_type, e_machine, e_version, _entry, _phoff, shoff, e_flags, *_ = _ELF64_HEADER.unpack_from(prefix, 0)
    if ident[:4] != ELF_MAGIC:
        raise FormatError(0, "cubin does not start with the ELF magic")
    if ident[4] != 2 or ident[5] != 1:
        raise FormatError(4, "cubin is not a little-endian ELF64 image")
    if e_machine != EM_CUDA:
        raise FormatError(18, f"e_machine {e_machine} is not EM_CUDA (190)")
    return ident[8], e_type, e_machine, e_version, e_flags, shoff


def _sm_and_accel(abi: int, e_flags: int) -> tuple[int, bool, int | None]:
    if abi == ABI_V7:
        virtual = (e_flags >> 16) & 0xFF
        return e_flags & V7_SM_MASK, bool(e_flags & V7_ACCELERATORS), virtual or None
    # ABI v8 (LLVM: "(e_flags & EF_CUDA_SM_MASK=0xff00) >> 8"); the virtual SM moved to .note.nv.cuinfo.
    return (e_flags >> 8) & 0xFF, bool(e_flags & V8_ACCELERATORS), None


def parse_tkinfo(desc: bytes) -> tuple[int, ToolInfo]:
    """``.note.nv.tkinfo`` desc: six u32 (first word, then string offsets) + a string table at desc+24."""
    if len(desc) < 24:
        raise FormatError(None, f"tkinfo note desc has {len(desc)} bytes, needs 24")
    first, _obj, tool_off, version_off, build_off, options_off = struct.unpack_from("<6I", desc, 0)
    table = desc[24:]

    def string(off: int) -> str | None:
        if off >= len(table):
            return None
        text = table[off:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return text or None

    version_text = string(version_off) or ""
    match = _RELEASE.search(version_text)
    options = string(options_off)
    return first, ToolInfo(
        tool=string(tool_off) or "",
        version=match.group(2) if match else None,
        release=match.group(1) if match else None,
        build=string(build_off),
        options=options.strip() if options else None,
    )


def parse_cuinfo(desc: bytes) -> tuple[int | None, int | None]:
    """``.note.nv.cuinfo`` (v2: u16 version, u16 virtual SM, u32 toolkit) or ``.note.nv.cuver`` (v1, no toolkit).

    Returns (virtual SM, toolkit major*10+minor or None).
    """
    if len(desc) < 4:
        return None, None
    version, virtual = struct.unpack_from("<HH", desc, 0)
    if version >= 2 and len(desc) >= 8:
        return virtual or None, struct.unpack_from("<I", desc, 4)[0]
    return virtual or None, None


def _compat_accelerated(data: ByteView) -> bool:
    """``.nv.compat`` records {u8 fmt, u8 attr, value} in 4-byte units; fmt 4 carries u16 size + data."""
    pos = 0
    while pos + 4 <= len(data):
        fmt, attr = data[pos], data[pos + 1]
        if fmt == 4:
            size = struct.unpack_from("<H", data, pos + 2)[0]
            pos += 4 + size
            continue
        if fmt == 2 and attr == COMPAT_ATTR_ACCELERATORS:
            return bool(data[pos + 2] == 1)
        if fmt not in (2, 3):
            return False
        pos += 4
    return False


def _debug(abi: int, e_flags: int) -> bool:
    # v8 top byte: 0x06 ptxas, 0x05 nvlink, 0x0e with -G ("0x08000000 = debug?", docs/binary-format.md §4.2).
    return abi == ABI_V8 and bool(e_flags & 0x08000000)


# Elf64_Shdr: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize.
_SHDR = struct.Struct("<IIQQQQIIQQ")
SHT_NOTE = 7
MAX_SECTIONS = 1 << 20


def _section_table(view: ByteView, shoff: int, shnum: int, shentsize: int) -> list[tuple[int, int, int]]:
    """(sh_type, sh_offset, sh_size) of every section of a cubin.

    Cubins hold hundreds of sections (``.text.<kernel>``, ``.nv.info.<kernel>``, ...) and a fatbin thousands of
    cubins: walking the table with one ``struct.iter_unpack`` is about a hundred times faster than building
    pyelftools section objects (the host-ELF reader, licscan.binary.elf, reads host files the same way).
    """
    end = _table_end(view, shoff, shnum, shentsize)
    return [(sh_type, offset, size) for _n, sh_type, _f, _a, offset, size, *_ in _SHDR.iter_unpack(view[shoff:end])]


def _table_end(view: ByteView, shoff: int, shnum: int, shentsize: int) -> int:
    """The end of the section header table at ``shoff`` (``shoff`` when there is none), checked to lie in ``view``."""
    if shoff == 0:
        return 0
    if shentsize != _SHDR.size:
        raise FormatError(0x3A, f"e_shentsize {shentsize}, expected {_SHDR.size}")
    if shnum == 0 and shoff + _SHDR.size <= len(view):  # extended numbering: the count is section 0's sh_size
        shnum = _SHDR.unpack_from(view, shoff)[5]
    if shnum > MAX_SECTIONS:
        raise FormatError(0x3C, f"{shnum} sections declared", limit=True)
    end = shoff + shnum * _SHDR.size
    if end > len(view):
        raise FormatError(shoff, f"section header table ends {end - len(view)} bytes past the cubin",
                          truncated=True)
    return end


def _sections_of_type(view: ByteView, shoff: int, shnum: int, shentsize: int,
                      types: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """The (sh_type, sh_offset, sh_size) of the sections whose type is one of ``types``, in table order: what
    :func:`_section_table` lists, filtered. A cubin has thousands of sections and two or three notes: the low byte
    of every ``sh_type`` (the u32 at +4 of each header, little-endian) is copied out in one strided slice, and only
    the headers whose low byte matches are unpacked."""
    end = _table_end(view, shoff, shnum, shentsize)
    if end <= shoff:
        return []
    lows = bytes(view[shoff + 4 : end : _SHDR.size])
    rows = []
    for low in sorted({t & 0xFF for t in types}):
        at = lows.find(low)
        while at >= 0:
            rows.append(at)
            at = lows.find(low, at + 1)
    out = []
    for index in sorted(rows):
        _n, sh_type, _f, _a, offset, size, *_ = _SHDR.unpack_from(view, shoff + index * _SHDR.size)
        if sh_type in types:
            out.append((sh_type, offset, size))
    return out


SHT_NOBITS = 8


def image_extent(data: ByteView) -> int:
    """Length of the ELF image at the start of ``data``: the end of its header tables and of the last section with
    file bytes. Fatbin payloads pad cubins to 8 bytes; ``cuobjdump -xelf`` writes exactly this extent."""
    _abi, _t, _m, _v, _f, shoff = parse_header(data[:64])
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 0x36)
    end = max(64, phoff + phentsize * phnum if phoff else 0, shoff + shentsize * shnum if shoff else 0)
    for sh_type, offset, size in _section_table(data, shoff, shnum, shentsize):
        if sh_type != SHT_NOBITS:
            end = max(end, offset + size)
    return min(end, len(data))


def _notes(data: ByteView) -> list[tuple[str, int, bytes]]:
    """(owner, type, desc) of the records of one SHT_NOTE section: u32 namesz, descsz, type; name and desc each
    padded to 4 bytes."""
    out = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, n_type = struct.unpack_from("<III", data, pos)
        name_end = pos + 12 + namesz
        desc_start = pos + 12 + ((namesz + 3) & ~3)
        desc_end = desc_start + descsz
        if name_end > len(data) or desc_end > len(data):
            raise FormatError(pos, "note record runs past the end of its section", truncated=True)
        owner = bytes(data[pos + 12 : name_end]).rstrip(b"\0").decode("utf-8", "replace")
        out.append((owner, n_type, bytes(data[desc_start:desc_end])))
        pos = desc_start + ((descsz + 3) & ~3)
    return out


def from_image(buf: Buffer, start: int = 0, size: int | None = None, touched: list[tuple[int, int]] | None = None) -> CubinFacts:
    """Facts of the complete cubin ``buf[start:start+size]`` (ELF header, section table, NVIDIA notes).

    ``touched`` receives the (offset, length) ranges of ``buf`` that were read.
    """
    view = memoryview(buf)[start : (start + size) if size is not None else None]
    touched = [] if touched is None else touched
    try:
        abi, e_type, _m, e_version, e_flags, shoff = parse_header(view[:64])
        shentsize, shnum = struct.unpack_from("<HH", view, 0x3A)
        touched.append((start, 64))
        if shoff:
            touched.append((start + shoff, shnum * _SHDR.size))
        tool = word = cu_toolkit = virtual = None
        inputs: list[ToolInfo] = []
        sm, accel, v7_virtual = _sm_and_accel(abi, e_flags)
        compat_accel = False
        for sh_type, offset, length in _sections_of_type(view, shoff, shnum, shentsize, (SHT_NOTE, SHT_CUDA_COMPAT)):
            if offset + length > len(view):
                raise FormatError(offset, "section runs past the end of the cubin", truncated=True)
            data = view[offset : offset + length]
            touched.append((start + offset, length))
            if sh_type == SHT_CUDA_COMPAT:
                compat_accel = compat_accel or _compat_accelerated(data)
                continue
            for owner, n_type, desc in _notes(data):
                if owner != NOTE_OWNER:
                    continue
                if n_type == NT_CUDA_TKINFO:
                    if tool is None:
                        word, tool = parse_tkinfo(desc)
                    else:
                        inputs.append(parse_tkinfo(desc)[1])
                elif n_type == NT_CUDA_CUINFO and virtual is None and cu_toolkit is None:
                    virtual, cu_toolkit = parse_cuinfo(desc)
    finally:
        view.release()
    if abi != ABI_V7:
        accel = accel or compat_accel
    return CubinFacts(abi, e_type, e_version, e_flags, sm, accel, v7_virtual or virtual, tool, word, cu_toolkit,
                      _debug(abi, e_flags), tuple(inputs))


# A note record: u32 namesz (12 = len("NVIDIA Corp\0")), u32 descsz, u32 type, then the padded name.
_OWNER_BYTES = b"NVIDIA Corp\0"
_NOTE_TYPES = {NT_CUDA_TKINFO, NT_CUDA_CUINFO}


def _note_records(data: bytes | bytearray, start: int) -> Iterator[tuple[int, int, int]]:
    """(type, desc offset, descsz) of every NVIDIA note record header in ``data[start:]``, found by the owner
    string and validated by the record header before it (namesz 12, a known type)."""
    needle = _OWNER_BYTES[:-1]  # searched without its NUL (the byte after it is checked), in one memmem pass
    for pos in occurrences(data, needle, start):
        header = pos - 12
        if header >= 0 and data[pos + len(needle) : pos + len(_OWNER_BYTES)] == b"\0":
            namesz, descsz, n_type = struct.unpack_from("<III", data, header)
            if namesz == len(_OWNER_BYTES) and n_type in _NOTE_TYPES:
                yield n_type, pos + len(_OWNER_BYTES), descsz


def from_prefix(reader: PrefixReader, *, notes: bool = True, step: int = 65536,
                max_prefix: int = 64 << 20) -> CubinFacts:
    """Facts of a compressed cubin, decoding only as far as its NVIDIA notes (see the module docstring).

    ABI v7 cubins carry no notes (their toolkit is ``e_version``), so only the header is decoded for them; with
    ``notes=False`` the same holds for every cubin.
    """
    while len(reader.data) < 64 and reader.more(64):
        pass
    abi, e_type, _m, e_version, e_flags, _shoff = parse_header(reader.data[:64])
    sm, accel, v7_virtual = _sm_and_accel(abi, e_flags)
    if abi == ABI_V7 or not notes:
        return CubinFacts(abi, e_type, e_version, e_flags, sm, accel, v7_virtual, None, None, None,
                          _debug(abi, e_flags))
    tool = word = cu_toolkit = virtual = None
    inputs: list[ToolInfo] = []
    seen: set[int] = set()
    searched = 64
    tool_end = None
    while True:
        for n_type, start, descsz in list(_note_records(reader.data, max(76, searched - 16))):
            while len(reader.data) < start + descsz and reader.more(step):
                pass
            desc = bytes(reader.data[start : start + descsz])
            if len(desc) < descsz:
                raise FormatError(start, "NVIDIA note runs past the end of the cubin", truncated=True)
            if start in seen:
                continue
            seen.add(start)
            if n_type == NT_CUDA_TKINFO:
                if tool is None:
                    word, tool = parse_tkinfo(desc)
                else:
                    inputs.append(parse_tkinfo(desc)[1])
                tool_end = start + descsz
            elif n_type == NT_CUDA_CUINFO and virtual is None and cu_toolkit is None:
                virtual, cu_toolkit = parse_cuinfo(desc)
        searched = len(reader.data)
        if tool is not None and (virtual is not None or cu_toolkit is not None):
            break  # both notes found: .note.nv.cuinfo follows every tkinfo record
        if tool_end is not None and searched > tool_end + 512:
            break  # ".note.nv.cuinfo" directly follows the tkinfo note when it exists
        if searched >= max_prefix or not reader.more(step):
            break
    if reader.complete:
        # Decoded whole anyway: let the ELF reader confirm, and read .nv.compat for the "a" suffix.
        return from_image(bytes(reader.data))
    return CubinFacts(abi, e_type, e_version, e_flags, sm, accel, v7_virtual or virtual, tool, word, cu_toolkit,
                      _debug(abi, e_flags), tuple(inputs))
