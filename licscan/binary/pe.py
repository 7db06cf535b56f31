"""PE images and COFF objects: the headers, the section table and the import names, read from the bytes where they
lie -- never the whole image (an image of 187 MB costs a few pages, as an ELF file does).

Layouts, from Microsoft's "PE Format" specification (https://learn.microsoft.com/windows/win32/debug/pe-format):

* MS-DOS stub: ``e_magic`` "MZ"; "At location 0x3c, the stub has the file offset to the PE signature".
* "COFF File Header (Object and Image)": Machine u16, NumberOfSections u16, TimeDateStamp u32,
  PointerToSymbolTable u32, NumberOfSymbols u32, SizeOfOptionalHeader u16, Characteristics u16.
* Optional header: Magic 0x10b (PE32) or 0x20b (PE32+); ImageBase at offset 28 (u32, PE32) or 24 (u64, PE32+);
  NumberOfRvaAndSizes at 92 / 108, then the data directories {VirtualAddress u32, Size u32}: index 1 "Import
  Table", index 13 "Delay Import Descriptor".
* "Section Table (Section Headers)", 40 bytes each: Name[8], VirtualSize, VirtualAddress, SizeOfRawData,
  PointerToRawData, PointerToRelocations, PointerToLinenumbers, NumberOfRelocations u16, NumberOfLinenumbers u16,
  Characteristics. A name "/4" in an object file (and in MinGW images) is "a slash followed by an ASCII
  representation of a decimal number that is an offset into the string table", which follows the symbol table
  (NumberOfSymbols records of 18 bytes).
* "Import Directory Table": 20-byte entries {Import Lookup Table RVA, Time/Date Stamp, Forwarder Chain, Name RVA,
  Import Address Table RVA}, the last one all zero; "Delay-Load Directory Table": 32-byte entries {Attributes,
  Name RVA, ...}.
* ``/bigobj`` objects start with an ANON_OBJECT_HEADER_BIGOBJ (Sig1 0, Sig2 0xFFFF, Version 2, Machine, TimeDateStamp,
  ClassID[16], SizeOfData, Flags, MetaDataSize, MetaDataOffset, NumberOfSections u32, PointerToSymbolTable u32,
  NumberOfSymbols u32; 56 bytes; symbol records of 20 bytes); "import library" members (Sig1 0, Sig2 0xFFFF,
  Version 0) are short import descriptions with no sections.

The export directory (the DLL's own name, its exported names), the names of the functions it imports and its
version resource: licscan/binary/peinfo.py.

Windows images name the fatbin sections with the ELF names cut to eight characters (docs/binary-format.md §2.4):
``.nv_fatbin`` -> ``.nv_fatb``, ``.nvFatBinSegment`` -> ``.nvFatBi`` (and ``__nv_relfatbin`` -> ``__nv_rel``); object
files keep the full name in the string table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from licscan.binary.buffer import Buffer
from licscan.binary.errors import FormatError

IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_CNT_CODE = 0x00000020
IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x80
IMAGE_SCN_LNK_INFO = 0x00000200  # .drectve and other linker information
IMAGE_SCN_LNK_REMOVE = 0x00000800

# "Machine Types" (only those a CUDA or HIP host binary is built for; others are reported by number)
MACHINES = {0x14C: "I386", 0x8664: "AMD64", 0xAA64: "ARM64", 0xA641: "ARM64EC", 0x1C4: "ARMNT", 0x1C0: "ARM"}
PE32, PE32_PLUS = 0x10B, 0x20B
BIGOBJ_CLASS_ID = bytes.fromhex("c7a1bad1eebaa94baf20faf66aa4dcb8")

_FILE_HEADER = struct.Struct("<HHIIIHH")
_SECTION = struct.Struct("<8sIIIIIIHHI")
_BIGOBJ = struct.Struct("<HHHHI16sIIIIIII")
IMPORT_ENTRY = struct.Struct("<IIIII")
_DELAY = struct.Struct("<IIIIIIII")
MAX_SECTIONS = 65279  # "the Windows loader limits the number of sections to 96"; objects allow up to 65279
MAX_IMPORTS = 65536
MAX_NAME = 4096


@dataclass(frozen=True)
class PeSection:
    name: str  # full name: the COFF string-table name when the file uses one (objects, MinGW long names)
    virtual_address: int
    offset: int  # PointerToRawData (relative to the start of the image or object)
    size: int  # SizeOfRawData
    characteristics: int

    @property
    def is_exec(self) -> bool:
        return bool(self.characteristics & (IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_CNT_CODE))

    @property
    def has_bytes(self) -> bool:
        return self.size > 0 and not self.characteristics & IMAGE_SCN_CNT_UNINITIALIZED_DATA

    @property
    def is_data(self) -> bool:
        """Not code: searched for device code by validated magic scan (docs/binary-format.md §2.4)."""
        return not self.is_exec


@dataclass(frozen=True)
class PeView:
    machine: str
    image_base: int
    sections: tuple[PeSection, ...]
    imports: tuple[str, ...]  # imported DLL names, in table order
    delay_imports: tuple[str, ...] = ()  # delay-loaded DLL names, in table order
    is_object: bool = False  # a COFF object file (.obj, a .lib member), not an image
    directories: tuple[tuple[int, int], ...] = ()  # the data directories (RVA, Size) of an image
    pe32_plus: bool = False  # PE32+ (64-bit fields in its import lookup tables), not PE32


def _machine(value: int) -> str:
    return MACHINES.get(value, f"0x{value:04x}")


def read_pe(buf: Buffer, start: int = 0, size: int | None = None) -> PeView:
    """The headers, sections and imports of the PE image in ``buf[start:start+size]``; offsets in the result are
    relative to ``start``. Raises :class:`FormatError` when the headers do not parse."""
    size = len(buf) - start if size is None else size
    view = Window(buf, start, size)
    if view.read(0, 2) != b"MZ":
        raise FormatError(0, "no MS-DOS header (MZ)")
    (pe_offset,) = view.unpack(struct.Struct("<I"), 0x3C, "e_lfanew")
    if view.read(pe_offset, 4) != b"PE\0\0":
        raise FormatError(pe_offset, "no PE signature at e_lfanew")
    machine, count, _stamp, symbols_at, symbols, optional_size, _chars = view.unpack(
        _FILE_HEADER, pe_offset + 4, "COFF file header")
    optional = pe_offset + 24
    magic = view.unpack(struct.Struct("<H"), optional, "optional header")[0] if optional_size >= 2 else 0
    if magic == PE32_PLUS:
        image_base, dirs_count_at, dirs_at = view.unpack(struct.Struct("<Q"), optional + 24, "ImageBase")[0], 108, 112
    elif magic == PE32:
        image_base, dirs_count_at, dirs_at = view.unpack(struct.Struct("<I"), optional + 28, "ImageBase")[0], 92, 96
    else:
        raise FormatError(optional, f"optional header magic {magic:#x} is neither PE32 nor PE32+")
    sections = _sections(view, optional + optional_size, count, symbols_at, symbols, 18)
    directories = []
    if optional_size >= dirs_count_at + 4:
        (dirs_count,) = view.unpack(struct.Struct("<I"), optional + dirs_count_at, "NumberOfRvaAndSizes")
        dirs_count = min(dirs_count, (optional_size - dirs_at) // 8, 16)
        directories = [view.unpack(struct.Struct("<II"), optional + dirs_at + 8 * n, "data directory")
                       for n in range(max(dirs_count, 0))]
    imports: tuple[str, ...] = ()
    delay: tuple[str, ...] = ()
    if len(directories) > 1 and directories[1][0]:
        imports = _import_names(view, sections, directories[1][0], IMPORT_ENTRY, 3, "import directory")
    if len(directories) > 13 and directories[13][0]:
        delay = _import_names(view, sections, directories[13][0], _DELAY, 1, "delay-load directory",
                              image_base=image_base)
    return PeView(_machine(machine), image_base, sections, imports, delay,
                  directories=tuple((rva, length) for rva, length in directories), pe32_plus=magic == PE32_PLUS)


def coff_object_header(head: bytes) -> tuple[int, int, int, int, int, int] | None:
    """(machine, sections, section table offset, symbol table offset, symbols, symbol record size) when ``head`` starts like a
    COFF object file (plain or ``/bigobj``), else None. Objects have no magic: the machine must be one CUDA or HIP
    targets, the optional header absent and the section table inside ``head`` with printable names."""
    if len(head) >= _BIGOBJ.size and head[:4] == b"\0\0\xff\xff":
        _sig1, _sig2, version, machine, _stamp, class_id, *_rest, count, symbols_at, symbols = _BIGOBJ.unpack_from(head)
        if version >= 2 and class_id == BIGOBJ_CLASS_ID and machine in MACHINES and 0 < count <= MAX_SECTIONS:
            return machine, count, _BIGOBJ.size, symbols_at, symbols, 20
        return None
    if len(head) < _FILE_HEADER.size:
        return None
    machine, count, _stamp, symbols_at, symbols, optional_size, _chars = _FILE_HEADER.unpack_from(head)
    if machine not in MACHINES or optional_size != 0 or not 0 < count <= MAX_SECTIONS:
        return None
    table_end = _FILE_HEADER.size + count * _SECTION.size
    if table_end > len(head):
        return None
    for n in range(count):
        name = head[_FILE_HEADER.size + n * _SECTION.size : _FILE_HEADER.size + n * _SECTION.size + 8].rstrip(b"\0")
        if not name or any(c < 0x21 or c > 0x7E for c in name):
            return None
    return machine, count, _FILE_HEADER.size, symbols_at, symbols, 18


def read_coff(buf: Buffer, start: int = 0, size: int | None = None) -> PeView:
    """The sections of the COFF object file in ``buf[start:start+size]`` (offsets relative to ``start``)."""
    size = len(buf) - start if size is None else size
    view = Window(buf, start, size)
    header = coff_object_header(view.read(0, min(size, _BIGOBJ.size + 40 * 64)))
    if header is None:
        header = coff_object_header(view.read(0, size))
    if header is None:
        raise FormatError(0, "not a COFF object file")
    machine, count, table, symbols_at, symbols, record = header
    sections = _sections(view, table, count, symbols_at, symbols, record)
    return PeView(_machine(machine), 0, sections, (), (), is_object=True)


class Window:
    """Bounds-checked reads of ``buf[start:start+size]`` at offsets relative to ``start``."""

    def __init__(self, buf: Buffer, start: int, size: int) -> None:
        self.buf, self.start, self.size = buf, start, size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset >= self.size:
            return b""
        end = min(offset + length, self.size)
        return bytes(self.buf[self.start + offset : self.start + end])

    def unpack(self, fmt: struct.Struct, offset: int, what: str) -> tuple[int, ...]:
        if offset < 0 or offset + fmt.size > self.size:
            raise FormatError(offset, f"{what} needs {fmt.size} bytes at {offset:#x}, the file has {self.size}",
                              truncated=True)
        return fmt.unpack(self.read(offset, fmt.size))

    def cstring(self, offset: int) -> str | None:
        """The NUL-terminated name at ``offset`` (read 256 bytes at a time, at most MAX_NAME), None if empty or
        unterminated."""
        raw = b""
        while len(raw) < MAX_NAME:
            chunk = self.read(offset + len(raw), 256)
            if not chunk:
                return None
            end = chunk.find(b"\0")
            if end >= 0:
                raw += chunk[:end]
                return raw.decode("utf-8", "surrogateescape") if raw else None
            raw += chunk
        return None


def _sections(view: Window, table: int, count: int, symbols_at: int, symbols: int, record: int
              ) -> tuple[PeSection, ...]:
    if count > MAX_SECTIONS:
        raise FormatError(table, f"{count} sections declared, more than the format allows ({MAX_SECTIONS})")
    if table + count * _SECTION.size > view.size:
        raise FormatError(table, f"section table of {count} entries runs past the end of the file", truncated=True)
    raw = view.read(table, count * _SECTION.size)
    strings = symbols_at + symbols * record if symbols_at else None
    out = []
    for n in range(count):
        name, _vsize, vaddr, raw_size, raw_at, _rel, _lines, _nrel, _nlines, chars = _SECTION.unpack_from(
            raw, n * _SECTION.size)
        text = name.rstrip(b"\0").decode("utf-8", "surrogateescape")
        if text.startswith("/") and text[1:].isdigit() and strings is not None:
            full = view.cstring(strings + int(text[1:]))
            text = full if full is not None else text
        out.append(PeSection(text, vaddr, raw_at, raw_size, chars))
    return tuple(out)


def rva_to_offset(sections: tuple[PeSection, ...], rva: int) -> int | None:
    """The file offset of relative virtual address ``rva``, or None when no section's raw bytes hold it."""
    for s in sections:
        if s.has_bytes and s.virtual_address <= rva < s.virtual_address + s.size:
            return s.offset + (rva - s.virtual_address)
    return None


def _import_names(view: Window, sections: tuple[PeSection, ...], rva: int, fmt: struct.Struct, name_field: int, what: str, *,
                  image_base: int | None = None) -> tuple[str, ...]:
    """DLL names of an import or delay-load directory. A delay-load entry whose Attributes lack bit 0 ("RvaBased")
    holds virtual addresses (the Visual C++ 6 layout): ImageBase is subtracted."""
    offset = rva_to_offset(sections, rva)
    if offset is None:
        raise FormatError(None, f"{what} at RVA {rva:#x} lies in no section")
    names: list[str] = []
    for n in range(MAX_IMPORTS):
        entry = view.unpack(fmt, offset + n * fmt.size, what)
        if not any(entry):
            break
        name_rva = entry[name_field]
        if image_base is not None and not entry[0] & 1 and name_rva >= image_base:
            name_rva -= image_base
        name_at = rva_to_offset(sections, name_rva)
        name = view.cstring(name_at) if name_at is not None else None
        if name is None:
            raise FormatError(offset + n * fmt.size, f"{what} entry {n} names no DLL (name RVA {entry[name_field]:#x})")
        names.append(name)
    else:
        raise FormatError(offset, f"{what} has more than {MAX_IMPORTS} entries")
    return tuple(names)
