"""The ELF adapter: the only module that imports pyelftools (docs/binary-formats.md §2.1, §2.4).

Reads lazily: the ELF header, the section header table, the dynamic section and notes, and nothing else. Section
*contents* are returned as (offset, size) so that callers slice the mmap themselves.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from licscan.binary.errors import FormatError

EM_CUDA = 190
EM_AMDGPU = 224

# sh_type values as pyelftools names them, or numbers for the processor-specific ones it does not know.
SHT_NOBITS = "SHT_NOBITS"
SHT_NOTE = "SHT_NOTE"
SHT_CUDA_COMPAT = 0x70000086  # ".nv.compat" (docs/binary-formats.md §4.5)


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    sh_type: str | int
    flags: int
    addr: int
    offset: int
    size: int

    @property
    def is_alloc(self) -> bool:
        return bool(self.flags & SH_FLAGS.SHF_ALLOC)

    @property
    def is_exec(self) -> bool:
        return bool(self.flags & SH_FLAGS.SHF_EXECINSTR)

    @property
    def has_bytes(self) -> bool:
        return self.sh_type != SHT_NOBITS


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
        for section in self.sections:
            if section.name == name:
                return section
        return None


_MACHINE_NUMBERS = {"EM_CUDA": EM_CUDA, "EM_AMDGPU": EM_AMDGPU, "EM_X86_64": 62, "EM_AARCH64": 183,
                    "EM_386": 3, "EM_PPC64": 21, "EM_ARM": 40, "EM_RISCV": 243, "EM_S390": 22}


def read_elf(stream: io.RawIOBase | io.BufferedIOBase, *, read_notes: bool = True,
             note_limit: int = 1 << 20) -> ElfView:
    """Parse the headers of the ELF image that ``stream`` holds (positioned anywhere; offsets are stream-relative).

    Raises :class:`FormatError` when pyelftools cannot make sense of it.
    """
    try:
        return _read(stream, read_notes, note_limit)
    except (ELFError, ValueError, KeyError, IndexError, OverflowError, AssertionError, UnicodeDecodeError) as error:
        if isinstance(error, FormatError):
            raise
        raise FormatError(None, f"ELF structure does not parse: {error}") from None
    except Exception as error:  # noqa: BLE001 -- construct's StreamError & co: pyelftools leaks them on truncated input
        raise FormatError(None, f"ELF structure does not parse ({type(error).__name__}): {error}") from None


def _read(stream, read_notes: bool, note_limit: int) -> ElfView:
    elf = ELFFile(stream)
    header = elf.header
    machine = header["e_machine"]
    machine_number = machine if isinstance(machine, int) else _MACHINE_NUMBERS.get(machine, -1)
    sections: list[Section] = []
    needed: list[str] = []
    soname = None
    runpath: list[str] = []
    rpath: list[str] = []
    notes: list[Note] = []
    if header["e_shoff"]:
        for index in range(elf.num_sections()):
            # Section headers are read one by one; a section object is built only for the dynamic and note
            # sections (pyelftools builds e.g. the whole GNU hash table when it makes that section's object).
            sh = elf._get_section_header(index)
            name = elf._get_section_name(sh) if index else ""
            sh_type = sh["sh_type"]
            sections.append(Section(index, name, sh_type, sh["sh_flags"], sh["sh_addr"], sh["sh_offset"],
                                    sh["sh_size"]))
            if sh_type not in ("SHT_DYNAMIC", SHT_NOTE):
                continue
            sec = elf.get_section(index)
            if sh_type == "SHT_DYNAMIC":
                for tag in sec.iter_tags():
                    kind = tag.entry.d_tag
                    if kind == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif kind == "DT_SONAME":
                        soname = tag.soname
                    elif kind == "DT_RUNPATH":
                        runpath.extend(p for p in tag.runpath.split(":") if p)
                    elif kind == "DT_RPATH":
                        rpath.extend(p for p in tag.rpath.split(":") if p)
            elif read_notes and sh_type == SHT_NOTE and sec["sh_size"] <= note_limit:
                for note in sec.iter_notes():
                    desc = note["n_descdata"]
                    notes.append(Note(sec.name, str(note["n_name"]), _note_type(note["n_type"]), bytes(desc)))
    return ElfView(
        elf_class=elf.elfclass,
        little_endian=elf.little_endian,
        e_type=str(header["e_type"]),
        e_machine=machine_number,
        machine_name=str(machine),
        e_version=_as_int(header["e_version"]),
        e_flags=header["e_flags"],
        abi_version=header["e_ident"]["EI_ABIVERSION"],
        os_abi=_as_int(header["e_ident"]["EI_OSABI"]),
        sections=tuple(sections),
        needed=tuple(needed),
        soname=soname,
        runpath=tuple(runpath),
        rpath=tuple(rpath),
        notes=tuple(notes),
    )


def _as_int(value) -> int:
    if isinstance(value, int):
        return value
    # pyelftools names known values: EV_CURRENT is 1; ELFOSABI_* names map back through its enum tables.
    from elftools.elf.enums import ENUM_E_VERSION, ENUM_EI_OSABI

    for table in (ENUM_E_VERSION, ENUM_EI_OSABI):
        if value in table:
            return table[value]
    return -1


def _note_type(value) -> int:
    if isinstance(value, int):
        return value
    from elftools.elf.enums import ENUM_NOTE_N_TYPE

    return ENUM_NOTE_N_TYPE.get(value, -1)


def gnu_build_id(view: ElfView) -> str | None:
    for note in view.notes:
        if note.name == "GNU" and note.n_type == 3:  # NT_GNU_BUILD_ID
            return note.desc.hex()
    return None
