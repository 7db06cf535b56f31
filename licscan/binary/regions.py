"""Where a linker puts a host binary's constant data and its code: the byte ranges a search for the string literals
or the machine code of a library linked into the binary reads, not the whole file (the naming layer's search for
a statically linked CUDA runtime, licscan/identify/observe.py).

ELF (System V gABI, https://www.sco.com/developers/gabi/latest/ch4.sheader.html, "Special Sections"):

    ".rodata and .rodata1  These sections hold read-only data that typically contribute to a non-writable segment
    in the process image."

Compilers put string literals in ``.rodata.str1.1`` / ``.rodata.str1.8`` (mergeable strings) or ``.rodata.<name>``
(``-fdata-sections``); the linkers gather them into the output's ``.rodata`` (GNU ld's default script:
``.rodata : { *(.rodata .rodata.* .gnu.linkonce.r.*) }``; lld alike), and the x86-64 large code model's ``.lrodata``
sits beside it. So the sections read are those named ``.rodata``, ``.rodata1``, ``.rodata.*``, ``.lrodata``,
``.lrodata.*`` and ``.gnu.linkonce.r.*`` that occupy file bytes. The section header table is optional in an
executable or shared object (gABI ch4.eheader: "e_shoff This member holds the section header table's file offset in
bytes. If the file has no section header table, this member holds zero."): such a file is read through its program
headers (https://www.sco.com/developers/gabi/latest/ch5.pheader.html): "PT_LOAD The array element specifies a
loadable segment, described by p_filesz and p_memsz", every loadable segment that is not writable (p_flags without
PF_W, 0x2): read-only data shares the text segment in older layouts, so executable ones are read too.

PE (Microsoft "PE Format", https://learn.microsoft.com/windows/win32/debug/pe-format, "Special Sections"):

    ".rdata  IMAGE_SCN_CNT_INITIALIZED_DATA + IMAGE_SCN_MEM_READ  Read-only initialized data"
    ".idata  IMAGE_SCN_CNT_INITIALIZED_DATA + IMAGE_SCN_MEM_READ + IMAGE_SCN_MEM_WRITE  Import tables"

MSVC's linker merges the import tables into ``.rdata``; MinGW's keeps ``.idata``. So the sections read are
``.rdata`` and those holding the "Import Table" and the "Delay Import Descriptor" (data directories 1 and 13),
whatever their names.

Code (a library's version query, compiled): ELF sections with ``SHF_EXECINSTR`` ("The section contains executable
machine instructions"), else the loadable segments with PF_X (0x1); PE sections with ``IMAGE_SCN_CNT_CODE`` or
``IMAGE_SCN_MEM_EXECUTE``.

The headers are read with the readers of :mod:`licscan.binary.elf` and :mod:`licscan.binary.pe` (a few pages); the
ranges are file offsets, sorted, within the file, without overlaps.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from licscan.binary import magic
from licscan.binary.buffer import Buffer
from licscan.binary.elf import Section, read_elf
from licscan.binary.errors import FormatError
from licscan.binary.pe import PeSection, read_pe
from licscan.model import FileFacts, FileFormat

_ELF_CONSTANT_NAMES = (".rodata", ".rodata1", ".lrodata")
_ELF_CONSTANT_PREFIXES = (".rodata.", ".lrodata.", ".gnu.linkonce.r.")
PE_CONSTANT_NAMES = (".rdata",)
IMPORT_DIRECTORIES = (1, 13)  # "Import Table", "Delay Import Descriptor"

PT_LOAD = 1
PF_X, PF_W = 0x1, 0x2
MAX_SEGMENTS = 1 << 16  # program headers read at most (e_phnum is a Half: 65,535)
# (e_phoff, e_phentsize, e_phnum) in the ELF header, by class: Elf64_Ehdr e_phoff Off at 32, e_phentsize Half at 54,
# e_phnum Half at 56; Elf32_Ehdr e_phoff Off at 28, e_phentsize at 42, e_phnum at 44.
_PH_FIELDS = {64: ((32, "Q"), (54, "H"), (56, "H")), 32: ((28, "I"), (42, "H"), (44, "H"))}
# Elf64_Phdr: p_type Word, p_flags Word, p_offset Off, p_vaddr Addr, p_paddr Addr, p_filesz Xword, p_memsz Xword,
# p_align Xword (56 bytes). Elf32_Phdr: p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
# (eight Words, 32 bytes).
_PHDR = {64: "IIQQQQQQ", 32: "IIIIIIII"}


def host_format(facts: FileFacts | None) -> str | None:
    """``elf`` for an ELF executable or shared object, ``pe`` for a PE image: a binary another may be linked into
    (None for anything else: objects and archives are linked later, not into)."""
    if facts is None:
        return None
    if facts.elf is not None and facts.elf.elf_type in ("ET_EXEC", "ET_DYN"):
        return "elf"
    return "pe" if facts.format is FileFormat.PE else None


class Region(NamedTuple):
    """The file bytes ``[start, end)``."""

    start: int
    end: int


@dataclass(frozen=True)
class HostRegions:
    """The constant data and the code of a host binary, as file ranges; ``how``: the headers they were read from."""

    constants: tuple[Region, ...]
    code: tuple[Region, ...]
    how: str  # "section headers" / "program headers"


def host_regions(data: Buffer) -> HostRegions | None:
    """The regions of the ELF or PE image in ``data``; None when its headers do not parse (or it is neither)."""
    head = bytes(data[:4])
    try:
        if head == magic.ELF:
            return _elf_regions(data)
        if head[:2] == magic.MZ:
            return _pe_regions(data)
    except (FormatError, struct.error):
        return None
    return None


def _elf_regions(data: Buffer) -> HostRegions | None:
    try:
        sections = read_elf(data, read_notes=False).sections
    except FormatError:
        sections = ()  # a section header table that does not parse: the program headers still say what is loaded
    if any(s.name for s in sections):  # a table without section names says nothing of where .rodata is
        constants = [(s.offset, s.offset + s.size) for s in sections if s.has_bytes and _elf_constant(s)]
        code = [(s.offset, s.offset + s.size) for s in sections if s.has_bytes and s.is_alloc and s.is_exec]
        return HostRegions(_merged(constants, len(data)), _merged(code, len(data)), "section headers")
    segments = _loadable_segments(data)
    if segments is None:
        return None
    return HostRegions(_merged(((lo, hi) for lo, hi, flags in segments if not flags & PF_W), len(data)),
                       _merged(((lo, hi) for lo, hi, flags in segments if flags & PF_X), len(data)),
                       "program headers")


def _elf_constant(section: Section) -> bool:
    name = section.name
    return name in _ELF_CONSTANT_NAMES or name.startswith(_ELF_CONSTANT_PREFIXES)


def _loadable_segments(data: Buffer) -> list[tuple[int, int, int]] | None:
    """(start, end, p_flags) of each PT_LOAD program header; None when the ELF header names no program header
    table that lies in the file."""
    elf_class = {1: 32, 2: 64}.get(data[4]) if len(data) > 5 else None
    order = {1: "<", 2: ">"}.get(data[5]) if len(data) > 5 else None
    if elf_class is None or order is None:
        return None
    (off_at, off_fmt), (size_at, _), (count_at, _) = _PH_FIELDS[elf_class]
    phoff = struct.unpack_from(order + off_fmt, data, off_at)[0]
    entsize = struct.unpack_from(order + "H", data, size_at)[0]
    count = min(struct.unpack_from(order + "H", data, count_at)[0], MAX_SEGMENTS)
    phdr = struct.Struct(order + _PHDR[elf_class])
    if not phoff or count == 0 or entsize < phdr.size or phoff + count * entsize > len(data):
        return None
    table = bytes(data[phoff : phoff + count * entsize])
    out = []
    for at in range(0, count * entsize, entsize):
        fields = phdr.unpack_from(table, at)
        if elf_class == 64:
            p_type, p_flags, p_offset, _vaddr, _paddr, p_filesz = fields[:6]
        else:
            p_type, p_offset, _vaddr, _paddr, p_filesz, _memsz, p_flags = fields[:7]
        if p_type == PT_LOAD and p_filesz:
            out.append((p_offset, p_offset + p_filesz, p_flags))
    return out


def _pe_regions(data: Buffer) -> HostRegions:
    view = read_pe(data)
    wanted = [rva for n in IMPORT_DIRECTORIES if n < len(view.directories)
              for rva, _size in (view.directories[n],) if rva]
    constants = [(s.offset, s.offset + s.size) for s in view.sections if s.has_bytes
                 and (s.name in PE_CONSTANT_NAMES or any(_holds(s, rva) for rva in wanted))]
    code = [(s.offset, s.offset + s.size) for s in view.sections if s.has_bytes and s.is_exec]
    return HostRegions(_merged(constants, len(data)), _merged(code, len(data)), "section headers")


def _holds(section: PeSection, rva: int) -> bool:
    return section.virtual_address <= rva < section.virtual_address + section.size


def _merged(ranges: Iterable[tuple[int, int]], size: int) -> tuple[Region, ...]:
    """``ranges`` cut to ``[0, size)``, sorted, overlapping or adjacent ones joined, empty ones dropped."""
    out: list[Region] = []
    for lo, hi in sorted((max(0, lo), min(size, hi)) for lo, hi in ranges):
        if hi <= lo:
            continue
        if out and lo <= out[-1].end:
            if hi > out[-1].end:
                out[-1] = Region(out[-1].start, hi)
            continue
        out.append(Region(lo, hi))
    return tuple(out)


__all__ = ["HostRegions", "Region", "host_regions"]
