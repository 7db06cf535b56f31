"""The host-ELF reader (licscan/binary/elf.py) reads its headers with ``struct``; pyelftools is its cross-check here.

Every fact licscan takes from an ELF header -- class, byte order, type and machine names, e_flags, EI_ABIVERSION,
each section's index, name, type, flags, address, offset and size, DT_NEEDED / DT_SONAME / DT_RUNPATH / DT_RPATH and
the notes -- must be what pyelftools reads from the same bytes: on every ELF among the committed fixtures (and the
objects inside their archives), on built images of each class and byte order (extended section numbering too), and,
when the real-world cache holds it, on CUPTI's 35,000-section static archive. Malformed headers are a FormatError.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from elftools.elf import enums
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_NOTE_N_TYPE

from licscan.binary import archive
from licscan.binary.elf import ElfView, gnu_build_id, read_elf
from licscan.binary.elfnames import E_MACHINE, E_TYPE
from licscan.binary.errors import FormatError
from licscan.binary.stream import WindowStream

FIXTURES = Path(__file__).parent / "fixtures"
# pyelftools names sh_type values from a base table and one per machine: all of them, name -> number.
SH_TYPES = {name: value for table in vars(enums) if table.startswith("ENUM_SH_TYPE")
            for name, value in getattr(enums, table).items() if isinstance(value, int)}
CACHE = Path(os.environ.get("LICSCAN_TEST_CACHE", Path.home() / ".cache" / "licscan-tests"))


def _reference(data: bytes) -> tuple:
    """The same facts, read by pyelftools."""
    elf = ELFFile(WindowStream(data))
    header = elf.header
    sections, needed, soname, runpath, rpath, notes = [], [], None, [], [], []
    for index in range(elf.num_sections() if header["e_shoff"] else 0):
        sh = elf._get_section_header(index)
        name = elf._get_section_name(sh) if index else ""
        sh_type = sh["sh_type"] if isinstance(sh["sh_type"], int) else SH_TYPES[sh["sh_type"]]
        sections.append((index, name, sh_type, sh["sh_flags"], sh["sh_addr"], sh["sh_offset"], sh["sh_size"]))
        if sh["sh_type"] == "SHT_DYNAMIC":
            for tag in elf.get_section(index).iter_tags():
                kind = tag.entry.d_tag
                if kind == "DT_NEEDED":
                    needed.append(tag.needed)
                elif kind == "DT_SONAME":
                    soname = tag.soname
                elif kind == "DT_RUNPATH":
                    runpath.extend(p for p in tag.runpath.split(":") if p)
                elif kind == "DT_RPATH":
                    rpath.extend(p for p in tag.rpath.split(":") if p)
        elif sh["sh_type"] == "SHT_NOTE" and sh["sh_size"] <= 1 << 20:
            for note in elf.get_section(index).iter_notes():
                n_type = note["n_type"] if isinstance(note["n_type"], int) else ENUM_NOTE_N_TYPE[note["n_type"]]
                notes.append((name, note["n_name"] or "", n_type, bytes(note["n_descdata"])))
    return (elf.elfclass, elf.little_endian, str(header["e_type"]), str(header["e_machine"]), header["e_flags"],
            header["e_ident"]["EI_ABIVERSION"], sections, needed, soname, runpath, rpath, notes)


def _facts(view: ElfView) -> tuple:
    return (view.elf_class, view.little_endian, view.e_type, view.machine_name, view.e_flags, view.abi_version,
            [(s.number, s.name, s.sh_type, s.flags, s.addr, s.offset, s.size) for s in view.sections],
            list(view.needed), view.soname, list(view.runpath), list(view.rpath),
            [(n.section, n.name, n.n_type, n.desc) for n in view.notes])


def _elf_images(root: Path):
    """(label, bytes) of every ELF file under ``root`` and every ELF object inside its ``ar`` archives."""
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head[:4] == b"\x7fELF":
            yield str(path.relative_to(root)), path.read_bytes()
        elif head == b"!<arch>\n":
            data = path.read_bytes()
            for member in archive.members(data):
                if data[member.offset : member.offset + 4] == b"\x7fELF":
                    yield f"{path.relative_to(root)}!/{member.name}", data[member.offset : member.offset + member.size]


def test_every_fixture_elf_reads_as_pyelftools_reads_it():
    count = sections = 0
    for label, data in _elf_images(FIXTURES):
        assert _facts(read_elf(data)) == _reference(data), label
        count += 1
        sections += len(read_elf(data).sections)
    # The committed fixtures: host executables, shared objects and relocatable objects, and standalone cubins.
    assert count >= 60 and sections >= 1500


def _build(elf_class: int, little: bool, *, extended: bool = False) -> bytes:
    """An ELF image: a section name table, .dynstr, .dynamic (DT_NEEDED x2, DT_SONAME, DT_RUNPATH, DT_NULL), a GNU
    build-id note, a NOBITS .bss and an executable .text; with ``extended`` the section count and the name table's
    index live in section 0 (e_shnum = 0, e_shstrndx = SHN_XINDEX)."""
    o = "<" if little else ">"
    word = "Q" if elf_class == 64 else "I"
    shstr = b"\0.shstrtab\0.dynstr\0.dynamic\0.note.gnu.build-id\0.bss\0.text\0"
    dynstr = b"\0libcudart.so.12\0libc.so.6\0libdemo.so.1\0$ORIGIN:/opt/x\0"
    dyn_fmt = o + ("qQ" if elf_class == 64 else "iI")
    dynamic = b"".join(struct.pack(dyn_fmt, tag, val) for tag, val in
                       ((1, 1), (1, 17), (14, 27), (29, 40), (0, 0), (0, 0)))
    note = struct.pack(o + "III", 4, 20, 3) + b"GNU\0" + bytes(range(20))
    text = b"\xc3" * 16
    ehsize = 64 if elf_class == 64 else 52
    blobs = [shstr, dynstr, dynamic, note, text]
    offsets, at = [], ehsize
    for blob in blobs:
        offsets.append(at)
        at += (len(blob) + 7) & ~7
    shoff = at
    names = {name: shstr.index(name.encode() + b"\0") for name in
             (".shstrtab", ".dynstr", ".dynamic", ".note.gnu.build-id", ".bss", ".text")}
    # (sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link)
    rows = [(0, 0, 0, 0, 0, 7 if extended else 0, 1 if extended else 0),
            (names[".shstrtab"], 3, 0, 0, offsets[0], len(shstr), 0),
            (names[".dynstr"], 3, 2, 0x1000, offsets[1], len(dynstr), 0),
            (names[".dynamic"], 6, 3, 0x2000, offsets[2], len(dynamic), 2),
            (names[".note.gnu.build-id"], 7, 2, 0x3000, offsets[3], len(note), 0),
            (names[".bss"], 8, 3, 0x4000, offsets[4], 0x100, 0),
            (names[".text"], 1, 6, 0x5000, offsets[4], len(text), 0)]
    shdr = o + ("IIQQQQIIQQ" if elf_class == 64 else "IIIIIIIIII")
    table = b"".join(struct.pack(shdr, name, typ, flags, addr, off, size, link, 0, 8, 0)
                     for name, typ, flags, addr, off, size, link in rows)
    ident = b"\x7fELF" + bytes([1 if elf_class == 32 else 2, 1 if little else 2, 1, 0, 0]) + b"\0" * 7
    ehdr = struct.pack(o + "HHI" + word * 3 + "IHHHHHH", 3, 62 if elf_class == 64 else 3, 1, 0, 0, shoff, 0,
                       ehsize, 0, 0, 64 if elf_class == 64 else 40, 0 if extended else len(rows),
                       0xFFFF if extended else 1)
    out = bytearray(ident + ehdr)
    for blob, offset in zip(blobs, offsets):
        out += b"\0" * (offset - len(out)) + blob
    out += b"\0" * (shoff - len(out)) + table
    return bytes(out)


@pytest.mark.parametrize("elf_class", [32, 64])
@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("extended", [False, True])
def test_built_images_of_each_class_and_byte_order(elf_class, little, extended):
    data = _build(elf_class, little, extended=extended)
    view = read_elf(data)
    assert _facts(view) == _reference(data)
    assert view.e_type == "ET_DYN" and view.machine_name == ("EM_X86_64" if elf_class == 64 else "EM_386")
    assert [s.name for s in view.sections] == ["", ".shstrtab", ".dynstr", ".dynamic", ".note.gnu.build-id",
                                               ".bss", ".text"]
    assert view.needed == ("libcudart.so.12", "libc.so.6") and view.soname == "libdemo.so.1"
    assert view.runpath == ("$ORIGIN", "/opt/x") and view.rpath == ()
    assert gnu_build_id(view) == bytes(range(20)).hex()
    bss, text = view.sections[5], view.sections[6]
    assert not bss.has_bytes and text.is_exec and not text.is_data and view.sections[2].is_alloc


def test_type_and_machine_names_are_pyelftools():
    # licscan/binary/elfnames.py holds pyelftools' names turned around (elftools.elf.enums is not imported by the
    # reader: it imports pdb); every number either names must name the same, 168 its later name EM_ECOG1X.
    def reverse(table: dict) -> dict[int, str]:
        return {value: key for key, value in table.items() if isinstance(value, int)}

    assert reverse(enums.ENUM_E_TYPE) == E_TYPE and reverse(enums.ENUM_E_MACHINE) == E_MACHINE
    assert E_MACHINE[168] == "EM_ECOG1X" and E_MACHINE[190] == "EM_CUDA" and E_TYPE[3] == "ET_DYN"
    # An unnamed number is reported as the number, as before.
    data = bytearray(_build(64, True))
    struct.pack_into("<H", data, 18, 0x7777)
    assert read_elf(bytes(data)).machine_name == str(0x7777) and 0x7777 not in E_MACHINE


def test_an_image_inside_a_larger_buffer_reads_relative_to_its_start():
    data = _build(64, True)
    view = read_elf(b"junk" * 10 + data + b"tail", 40, len(data))
    assert _facts(view) == _reference(data)


def _patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def test_malformed_headers_are_format_errors():
    data = _build(64, True)
    with pytest.raises(FormatError, match="ELF magic"):
        read_elf(b"\x7fELG" + data[4:])
    with pytest.raises(FormatError, match="EI_CLASS"):
        read_elf(data[:4] + b"\x03" + data[5:])
    with pytest.raises(FormatError, match="ELF header needs 64 bytes") as cut:
        read_elf(data[:40])
    assert cut.value.truncated
    with pytest.raises(FormatError, match="past the end of the file") as table:
        read_elf(data[:-10])  # the section header table is last
    assert table.value.truncated
    with pytest.raises(FormatError, match="e_shentsize 32 is smaller than a section header"):
        read_elf(_patched(data, 0x3A, "<H", 32))
    with pytest.raises(FormatError, match="e_shstrndx 9 is outside the section header table"):
        read_elf(_patched(data, 0x3E, "<H", 9))
    forged = _build(64, True, extended=True)
    shoff = struct.unpack_from("<Q", forged, 0x28)[0]
    with pytest.raises(FormatError, match="2000000 sections declared, more than 1048576 were not read") as many:
        read_elf(_patched(forged, shoff + 32, "<Q", 2_000_000))  # section 0's sh_size holds the count
    assert many.value.limit
    # e_shstrndx SHN_UNDEF: "the file has no section name string table" -- sections keep their offsets, no names.
    unnamed = read_elf(_patched(data, 0x3E, "<H", 0))
    assert {s.name for s in unnamed.sections} == {""} and len(unnamed.sections) == 7


def test_a_dynamic_section_without_a_string_table_is_a_format_error():
    data = _build(64, True)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    no_link = _patched(data, shoff + 3 * 64 + 40, "<I", 4)  # .dynamic's sh_link -> the note section
    renamed = no_link.replace(b".dynstr\0", b".dynstz\0")
    assert read_elf(no_link).needed == ("libcudart.so.12", "libc.so.6")  # found through its name, .dynstr
    with pytest.raises(FormatError, match="dynamic section links section 4, which is not a string table"):
        read_elf(renamed)


def test_cupti_static_archive_reads_as_pyelftools_reads_it():
    """CUPTI's static archives (the installed environment tree of issue 14) hold relocatable objects of ~35,000
    sections each: the case the struct reader was written for."""
    folder = CACHE / "env" / "site-packages" / "triton" / "backends" / "nvidia" / "lib" / "cupti"
    paths = [folder / "libcupti_static.a", folder / "libnvperf_host_static.a"]
    if not all(p.is_file() for p in paths):
        pytest.skip("environment tree not built (benchmarks/build_env.py; LICSCAN_REALWORLD=1)")
    sections = 0
    for path in paths:
        data = path.read_bytes()
        for member in archive.members(data):
            image = data[member.offset : member.offset + member.size]
            assert _facts(read_elf(image)) == _reference(image), f"{path.name}!/{member.name}"
            sections += len(read_elf(image).sections)
    assert sections > 60_000


def _ar(name: bytes, data: bytes) -> bytes:
    """A System V archive of one member: name[16] date[12] uid[6] gid[6] mode[8] size[10] "`\\n", then the data."""
    header = (name + b"/").ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"644".ljust(8)
    return b"!<arch>\n" + header + str(len(data)).encode().ljust(10) + b"`\n" + data + b"\n" * (len(data) & 1)


def test_a_section_past_the_end_of_an_archive_member_is_reported_at_its_offset_in_the_file():
    from licscan.binary.inspect import inspect_buffer
    from licscan.model import DiagnosticKind

    image = _build(64, True)
    shoff = struct.unpack_from("<Q", image, 0x28)[0]
    text_offset = struct.unpack_from("<Q", image, shoff + 6 * 64 + 24)[0]
    broken = _patched(image, shoff + 6 * 64 + 32, "<Q", 1 << 20)  # .text's sh_size: far past the member's end
    facts = inspect_buffer(_ar(b"demo.o", broken), "lib.a")
    (member,) = facts.members
    assert member.path == "lib.a!/demo.o" and member.elf is not None and member.elf.soname == "libdemo.so.1"
    (diagnostic,) = member.diagnostics
    assert diagnostic.kind is DiagnosticKind.TRUNCATED and diagnostic.message == "section .text runs past the end of the file"
    assert diagnostic.offset == 8 + 60 + text_offset  # archive magic, member header, then the section
