"""The host-ELF reader: the ELF header, the section header table, the dynamic section and notes, read with
``struct`` from the bytes of the file (docs/binary-format.md §2.1).

Reads lazily and only what the facts need. Section *contents* are returned as (offset, size) so that callers slice
the mmap themselves. Layouts are the System V gABI's (https://www.sco.com/developers/gabi/latest/ch4.eheader.html,
ch4.sheader.html, ch5.dynamic.html); the ELF type and machine names are pyelftools' (``elftools.elf.enums``, in
licscan/binary/elfnames.py), so that reports name them as they always did. Static archives of relocatable objects hold tens of thousands of
sections (CUPTI's ``libcupti_static.a``: 35,000 in one object), which is why the table is unpacked in one
``iter_unpack`` call rather than header by header; ``tests/test_elf_reader.py`` checks every fact against pyelftools.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat
from typing import NamedTuple

from licscan.binary import readlog
from licscan.binary.buffer import Buffer
from licscan.binary.elfnames import E_MACHINE, E_TYPE
from licscan.binary.errors import FormatError

EM_CUDA = 190
EM_AMDGPU = 224

# sh_type (gABI "Section Types, sh_type").
SHT_PROGBITS = 1
SHT_STRTAB = 3
SHT_DYNAMIC = 6
SHT_NOTE = 7
SHT_NOBITS = 8
SHT_CUDA_COMPAT = 0x70000086  # ".nv.compat" (docs/binary-format.md §4.5)
# sh_flags (gABI "Section Attribute Flags").
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
# "If the section name string table section index is greater than or equal to SHN_LORESERVE (0xff00), this member
# has the value SHN_XINDEX (0xffff) and the actual index of the section name string table section is contained in
# the sh_link field of the section header at index 0."
SHN_XINDEX = 0xFFFF
# d_tag (gABI "Dynamic Array Tags, d_tag").
DT_NULL, DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 14, 15, 29

MAX_NAME = 1 << 16  # a string-table entry with no NUL within this many bytes is read as empty
# A forged header must not make the reader allocate for millions of sections or copy a whole file: CUPTI's static
# archive, the largest real table seen, has 38,000 sections in one object and a section name table of 0.4 MB.
MAX_SECTIONS = 1 << 20
MAX_NAME_TABLE = 64 << 20
MAX_DYNAMIC = 1 << 20


class Section(NamedTuple):
    """One section header. A named tuple, not a frozen dataclass: a relocatable object of a static archive has tens
    of thousands of sections (CUPTI's ``libcupti_static.a``: 35,000), and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) cost four times as much as building these tuples. ``number`` is the section
    header index (``index`` would hide ``tuple.index``)."""

    number: int
    name: str
    sh_type: int
    flags: int
    addr: int
    offset: int
    size: int

    @property
    def is_alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def is_exec(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)

    @property
    def has_bytes(self) -> bool:
        return self.sh_type != SHT_NOBITS

    @property
    def is_data(self) -> bool:
        """Allocated, not executable program data: where an application keeps byte arrays."""
        return self.sh_type == SHT_PROGBITS and self.is_alloc and not self.is_exec


@dataclass(frozen=True)
class Note:
    section: str
    name: str
    n_type: int
    desc: bytes


@dataclass(frozen=True)
class ElfView:
    """What licscan reads from an ELF file's headers."""

    elf_class: int  # 32 / 64
    little_endian: bool
    e_type: str
    e_machine: int
    machine_name: str
    e_version: int
    e_flags: int
    abi_version: int  # e_ident[EI_ABIVERSION]
    os_abi: int  # e_ident[EI_OSABI]
    sections: tuple[Section, ...]
    needed: tuple[str, ...]
    soname: str | None
    runpath: tuple[str, ...]
    rpath: tuple[str, ...]
    notes: tuple[Note, ...]

    def section(self, name: str) -> Section | None:
        """The first section named ``name``."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, Section]:
        # Made once per view: a relocatable object has tens of thousands of sections and the inspector asks for
        # three or four names. Built from the end, so that the first of two sections with one name is kept.
        return {section.name: section for section in reversed(self.sections)}


@dataclass(frozen=True)
class _Layout:
    """The structures of one ELF class and byte order."""

    # Elf32_Ehdr / Elf64_Ehdr after e_ident[16]: e_type Half, e_machine Half, e_version Word, e_entry Addr,
    # e_phoff Off, e_shoff Off, e_flags Word, e_ehsize Half, e_phentsize Half, e_phnum Half, e_shentsize Half,
    # e_shnum Half, e_shstrndx Half.
    ehdr: struct.Struct
    # Elf64_Shdr: sh_name Word, sh_type Word, sh_flags Xword, sh_addr Addr, sh_offset Off, sh_size Xword,
    #             sh_link Word, sh_info Word, sh_addralign Xword, sh_entsize Xword (64 bytes).
    # Elf32_Shdr: the same ten fields, all 4 bytes (40 bytes).
    shdr: struct.Struct
    # The same header, unpacking only the fields licscan uses (sh_name ... sh_link; the last three are skipped).
    shdr_used: struct.Struct
    # Elf64_Dyn: d_tag Sxword, d_un Xword; Elf32_Dyn: d_tag Sword, d_un Word.
    dyn: struct.Struct
    # Elf32_Nhdr / Elf64_Nhdr: n_namesz Word, n_descsz Word, n_type Word.
    nhdr: struct.Struct


def _layout(elf_class: int, order: str) -> _Layout:
    if elf_class == 64:
        return _Layout(struct.Struct(order + "HHIQQQIHHHHHH"), struct.Struct(order + "IIQQQQIIQQ"),
                       struct.Struct(order + "IIQQQQI20x"), struct.Struct(order + "qQ"), struct.Struct(order + "III"))
    return _Layout(struct.Struct(order + "HHIIIIIHHHHHH"), struct.Struct(order + "IIIIIIIIII"),
                   struct.Struct(order + "IIIIIII12x"), struct.Struct(order + "iI"), struct.Struct(order + "III"))


_LAYOUTS = {(c, little): _layout(c, "<" if little else ">") for c in (32, 64) for little in (True, False)}


@dataclass(frozen=True)
class _Header:
    elf_class: int
    little_endian: bool
    e_ident: bytes
    e_type: int
    e_machine: int
    e_version: int
    e_shoff: int
    e_flags: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


def read_elf(buf: Buffer | memoryview, start: int = 0, size: int | None = None, *,
             read_notes: bool = True, note_limit: int = 1 << 20) -> ElfView:
    """Parse the headers of the ELF image in ``buf[start:start+size]`` (offsets in the view are image-relative).

    Raises :class:`FormatError` when the headers do not parse.
    """
    end = len(buf) if size is None else min(len(buf), start + size)
    image = _Image(buf, start, end)
    header = _read_header(image)
    layout = _LAYOUTS[header.elf_class, header.little_endian]
    raw = _section_headers(image, header, layout)
    names = _section_names(image, header, raw)
    columns = list(zip(*raw)) or [()] * 7  # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link
    # tuple.__new__ over the columns: no Python frame per section (Section._make is one).
    sections = tuple(map(tuple.__new__, repeat(Section), zip(range(len(raw)), names, *columns[1:6])))
    dynamic = _Dynamic()
    notes: list[Note] = []
    types = columns[1]
    wanted = [n for n, sh_type in enumerate(types) if sh_type in (SHT_DYNAMIC, SHT_NOTE)]
    for section in map(sections.__getitem__, wanted):
        _n, sh_type, _f, _a, offset, sh_size, link = raw[section.number]
        if sh_type == SHT_DYNAMIC:
            _read_dynamic(image, layout, raw, sections, offset, sh_size, link, dynamic)
        elif read_notes and sh_type == SHT_NOTE and sh_size <= note_limit:
            notes.extend(_read_notes(image, layout, section.name, offset, sh_size))
    return ElfView(
        elf_class=header.elf_class, little_endian=header.little_endian,
        e_type=E_TYPE.get(header.e_type, str(header.e_type)), e_machine=header.e_machine,
        machine_name=E_MACHINE.get(header.e_machine, str(header.e_machine)), e_version=header.e_version,
        e_flags=header.e_flags, abi_version=header.e_ident[8], os_abi=header.e_ident[7], sections=sections,
        needed=tuple(dynamic.needed), soname=dynamic.soname, runpath=tuple(dynamic.runpath),
        rpath=tuple(dynamic.rpath), notes=tuple(notes))


class _Image:
    """``buf[start:end]``, read by image-relative offset; every read is recorded in the read log."""

    def __init__(self, buf: Buffer | memoryview, start: int, end: int) -> None:
        self.buf = buf
        self.start = start
        self.size = end - start

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer at the end of the image)."""
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        readlog.record(self.start + offset, length)
        return bytes(self.buf[self.start + offset : self.start + offset + length])

    def cstring(self, offset: int) -> bytes | None:
        """The NUL-terminated string at ``offset``, or None when no NUL follows within MAX_NAME bytes."""
        for window in (256, MAX_NAME):
            stop = offset + min(window, self.size - offset)
            data = bytes(self.buf[self.start + offset : self.start + stop]) if stop > offset else b""
            end = data.find(b"\0")
            if end >= 0:
                readlog.record(self.start + offset, end + 1)
                return data[:end]
            if stop >= self.size:
                break
        readlog.record(self.start + offset, len(data))
        return None


def _read_header(image: _Image) -> _Header:
    ident = image.read(0, 16)
    if ident[:4] != b"\x7fELF":
        raise FormatError(0, "ELF magic number does not match")
    # e_ident[EI_CLASS]: ELFCLASS32 = 1, ELFCLASS64 = 2; e_ident[EI_DATA]: ELFDATA2LSB = 1, ELFDATA2MSB = 2.
    elf_class = {1: 32, 2: 64}.get(ident[4]) if len(ident) > 4 else None
    if elf_class is None:
        raise FormatError(4, f"invalid EI_CLASS {ident[4:5]!r}")
    little = {1: True, 2: False}.get(ident[5]) if len(ident) > 5 else None
    if little is None:
        raise FormatError(5, f"invalid EI_DATA {ident[5:6]!r}")
    layout = _LAYOUTS[elf_class, little]
    data = image.read(16, layout.ehdr.size)
    if len(data) < layout.ehdr.size:
        raise FormatError(16, f"ELF header needs {16 + layout.ehdr.size} bytes, {image.size} present",
                          truncated=True)
    (e_type, e_machine, e_version, _entry, _phoff, e_shoff, e_flags, _ehsize, _phentsize, _phnum, e_shentsize,
     e_shnum, e_shstrndx) = layout.ehdr.unpack(data)
    return _Header(elf_class, little, ident, e_type, e_machine, e_version, e_shoff, e_flags, e_shentsize, e_shnum,
                   e_shstrndx)


# One section header, the fields licscan uses: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link.
_Raw = tuple[int, int, int, int, int, int, int]


def _section_headers(image: _Image, header: _Header, layout: _Layout) -> list[_Raw]:
    """The section header table, entry 0 included (an image without one has none)."""
    shoff, entsize = header.e_shoff, header.e_shentsize
    if not shoff:
        return []
    if entsize < layout.shdr.size:
        raise FormatError(0x2E if header.elf_class == 32 else 0x3A,
                          f"e_shentsize {entsize} is smaller than a section header ({layout.shdr.size})")
    count = header.e_shnum
    if count == 0:
        # "If the number of sections is greater than or equal to SHN_LORESERVE (0xff00), e_shnum has the value
        # SHN_UNDEF (0) and the actual number of section header table entries is contained in the sh_size field of
        # the section header at index 0."
        first = _table(image, shoff, entsize, 1, layout)
        count = first[0][5] if first else 0
    if count > MAX_SECTIONS:
        raise FormatError(shoff, f"{count} sections declared, more than {MAX_SECTIONS} were not read", limit=True)
    return _table(image, shoff, entsize, count, layout) if count else []


def _table(image: _Image, shoff: int, entsize: int, count: int, layout: _Layout) -> list[_Raw]:
    length = entsize * count
    if shoff + length > image.size:
        raise FormatError(shoff, f"section header table ({count} entries) ends {shoff + length - image.size} bytes "
                                 "past the end of the file", truncated=True)
    data = image.read(shoff, length)
    if entsize == layout.shdr.size:
        return list(layout.shdr_used.iter_unpack(data))
    return [layout.shdr_used.unpack_from(data, at) for at in range(0, length, entsize)]


def _section_names(image: _Image, header: _Header, raw: list[_Raw]) -> list[str]:
    """Each section's name from the section name string table; section 0 and names that cannot be found are ""."""
    names = [""] * len(raw)
    if len(raw) < 2:
        return names
    index = raw[0][6] if header.e_shstrndx == SHN_XINDEX else header.e_shstrndx
    if index == 0:
        return names  # SHN_UNDEF: "the file has no section name string table"
    if index >= len(raw):
        raise FormatError(0x3E if header.elf_class == 64 else 0x32,
                          f"e_shstrndx {index} is outside the section header table ({len(raw)} entries)")
    table_offset, table_size = raw[index][4], raw[index][5]
    table = image.read(table_offset, min(table_size, MAX_NAME_TABLE))
    if table.isascii():
        # ASCII (every real table): decoded once, each name a slice of the text (a static archive's object has
        # tens of thousands of sections).
        text = table.decode("ascii")
        find = text.find
        for n in range(1, len(raw)):
            at = raw[n][0]
            stop = find("\0", at)
            names[n] = text[at:stop] if stop >= 0 else _name(image, table_offset + at)
        return names
    for n in range(1, len(raw)):
        at = raw[n][0]
        stop = table.find(b"\0", at)
        names[n] = table[at:stop].decode("utf-8", "replace") if stop >= 0 else _name(image, table_offset + at)
    return names


def _name(image: _Image, offset: int) -> str:
    """A name not terminated inside its table: read on, as far as the image goes."""
    value = image.cstring(offset)
    return value.decode("utf-8", "replace") if value else ""


@dataclass
class _Dynamic:
    """What the dynamic sections say, gathered while they are read."""

    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    runpath: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)


def _read_dynamic(image: _Image, layout: _Layout, raw: list[_Raw], sections: tuple[Section, ...], offset: int,
                  size: int, link: int, out: _Dynamic) -> None:
    """DT_NEEDED, DT_SONAME, DT_RUNPATH and DT_RPATH of a ``SHT_DYNAMIC`` section, up to its DT_NULL. "sh_link: The
    section header index of the string table used by entries in the section." """
    strtab = raw[link][4] if 0 < link < len(raw) and raw[link][1] == SHT_STRTAB else None
    if strtab is None:
        dynstr = next((s for s in sections if s.name == ".dynstr"), None)
        if dynstr is None:
            raise FormatError(None, f"dynamic section links section {link}, which is not a string table")
        strtab = dynstr.offset
    data = image.read(offset, min(size, MAX_DYNAMIC))
    for d_tag, d_val in layout.dyn.iter_unpack(data[: len(data) - len(data) % layout.dyn.size]):
        if d_tag == DT_NULL:
            break
        if d_tag not in (DT_NEEDED, DT_SONAME, DT_RUNPATH, DT_RPATH):
            continue
        value = image.cstring(strtab + d_val)
        text = value.decode("utf-8", "replace") if value else ""
        if d_tag == DT_NEEDED:
            out.needed.append(text)
        elif d_tag == DT_SONAME:
            out.soname = text
        elif d_tag == DT_RUNPATH:
            out.runpath.extend(p for p in text.split(":") if p)
        else:
            out.rpath.extend(p for p in text.split(":") if p)


def _read_notes(image: _Image, layout: _Layout, section: str, offset: int, size: int) -> list[Note]:
    """The notes of a ``SHT_NOTE`` section: "n_namesz ... n_descsz ... n_type", then the name and the descriptor,
    each padded to a 4-byte boundary (gABI "Note Section")."""
    notes: list[Note] = []
    data = image.read(offset, size)
    at = 0
    while at + layout.nhdr.size < len(data):
        namesz, descsz, n_type = layout.nhdr.unpack_from(data, at)
        at += layout.nhdr.size
        name = data[at : at + namesz].split(b"\0", 1)[0].decode("latin-1")
        at += (namesz + 3) & ~3
        desc = data[at : at + descsz] if at + descsz <= len(data) else image.read(offset + at, descsz)
        notes.append(Note(section, name, n_type, desc))
        at += (descsz + 3) & ~3
    return notes


def gnu_build_id(view: ElfView) -> str | None:
    for note in view.notes:
        if note.name == "GNU" and note.n_type == 3:  # NT_GNU_BUILD_ID
            return note.desc.hex()
    return None
