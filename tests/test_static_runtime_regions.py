"""The search for a CUDA runtime linked into a binary reads the binary's constant data only (licscan/binary/regions.py,
licscan/identify/observe.py): ``.rodata`` of an ELF file (its read-only loadable segments when it has no section
headers), ``.rdata`` and the import tables of a PE image; and it does so whatever the size of the file.

The inputs are built here byte by byte after the System V gABI (ELF header, section and program headers) and
Microsoft's "PE Format" (MS-DOS stub, COFF file header, PE32+ optional header, section table, import directory).
The real binaries (cupy, ctranslate2, DALI, tensorflow, onnxruntime ...) are in
tests/test_realworld_static_cudart.py."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from licscan.binary.inspect import inspect_read
from licscan.binary.paged import file_bytes
from licscan.binary.regions import HostRegions, Region, host_regions
from licscan.identify.catalog_table import load_catalog
from licscan.identify.observe import observe

pytestmark = pytest.mark.unit

# cudart's ``static`` evidence (rules/catalog/nvidia.yaml): its cudaGetErrorString texts, and CUDA 13's Windows
# loader library's names.
ERRORS = (b"CUDA driver version is insufficient for CUDA runtime version", b"CUDA driver is a stub library",
          b"device doesn't have valid Grid license")
LOADER = (b"nvcudart_hybrid64.dll", b"cuGetExportTable")
STRINGS = b"\0".join(ERRORS) + b"\0"


def version_query(cudart_version: int) -> bytes:
    """cudaRuntimeGetVersion as gcc compiles it into libcudart_static.a (the catalog's ``version_code``): test rdi;
    je; mov dword [rdi], V; xor eax, eax; ret."""
    return bytes.fromhex("4885ff740bc707") + struct.pack("<H", cudart_version) + bytes.fromhex("000031c0c3")


# sh_type, sh_flags (gABI): SHT_PROGBITS 1, SHT_STRTAB 3; SHF_WRITE 1, SHF_ALLOC 2, SHF_EXECINSTR 4.
PROGBITS, STRTAB = 1, 3
WRITE, ALLOC, EXEC = 1, 2, 4
RODATA, DATA, TEXT, COMMENT = (".rodata", PROGBITS, ALLOC), (".data", PROGBITS, ALLOC | WRITE), \
    (".text", PROGBITS, ALLOC | EXEC), (".comment", PROGBITS, 0)


def elf(sections: list[tuple[tuple[str, int, int], bytes]], *, at: dict[str, int] | None = None,
        segments: list[tuple[int, bytes]] | None = None) -> list[tuple[int, bytes]]:
    """An ELF64 little-endian shared object (ET_DYN, x86-64) as ``(offset, bytes)`` pieces: the ELF header, each
    section's bytes (at ``at[name]`` when given, else packed after the headers), ``.shstrtab`` and the section header
    table after the last section. ``segments``: no section headers at all (e_shoff 0), program headers instead, one
    PT_LOAD per ``(p_flags, bytes)``."""
    pieces: list[tuple[int, bytes]] = []
    if segments is not None:
        phoff, end = 64, 64 + 56 * len(segments)
        table = b""
        for flags, body in segments:
            end += -end % 16
            # Elf64_Phdr: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
            table += struct.pack("<IIQQQQQQ", 1, flags, end, end, end, len(body), len(body), 16)
            pieces.append((end, body))
            end += len(body)
        return [(0, _ehdr(phoff, len(segments), 0, 0, 0)), (phoff, table)] + pieces
    names = b"\0" + b"".join(s[0].encode() + b"\0" for s, _ in sections) + b".shstrtab\0"
    end = 64
    headers = [bytes(64)]
    for (name, sh_type, flags), body in sections:
        end += -end % 16
        offset = (at or {}).get(name, end)
        headers.append(_shdr(names.index(name.encode() + b"\0"), sh_type, flags, offset, len(body)))
        pieces.append((offset, body))
        end = max(end, offset + len(body))
    headers.append(_shdr(names.index(b".shstrtab\0"), STRTAB, 0, end, len(names)))
    pieces.append((end, names))
    shoff = end + len(names) + (-(end + len(names)) % 8)
    pieces.append((shoff, b"".join(headers)))
    return [(0, _ehdr(0, 0, shoff, len(headers), len(headers) - 1))] + pieces


def _ehdr(phoff: int, phnum: int, shoff: int, shnum: int, shstrndx: int) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    # e_type ET_DYN 3, e_machine EM_X86_64 62, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize,
    # e_phnum, e_shentsize, e_shnum, e_shstrndx
    return ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, phoff, shoff, 0, 64, 56, phnum, 64, shnum, shstrndx)


def _shdr(name: int, sh_type: int, flags: int, offset: int, size: int) -> bytes:
    # Elf64_Shdr: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize
    return struct.pack("<IIQQQQIIQQ", name, sh_type, flags, offset if flags & ALLOC else 0, offset, size, 0, 0, 1, 0)


def write(path: Path, pieces: list[tuple[int, bytes]], size: int | None = None) -> Path:
    """The pieces written at their offsets; the gaps and the tail up to ``size`` are holes (no disk is used)."""
    with path.open("wb") as out:
        for offset, body in pieces:
            out.seek(offset)
            out.write(body)
        if size is not None:
            out.truncate(size)
    return path


def linked(path: Path) -> list[tuple[str, str | None, str, tuple[str, ...]]]:
    """(entry, static library, evidence, claimed versions) of each library the naming layer finds linked into the
    file at ``path``, read as the scan reads it (inspection, then one observation of the same bytes)."""
    with file_bytes(str(path), random_access=True) as data:
        facts = inspect_read(data, path.name)
        seen = observe(path.name, facts, data, with_signals=False).seen
    return [(s.entry.name, s.linked_from, s.how, tuple(c.value for c in s.claims)) for s in seen]


def _how(library: str, found: list[tuple[bytes, int]]) -> str:
    return (f"linked from {library}: " + ", ".join(f"{lit.decode()!r} at {at:#x}" for lit, at in found)
            + " (rules/catalog/nvidia.yaml: cudart static)")


def _offsets(base: int, literals: tuple[bytes, ...], body: bytes) -> list[tuple[bytes, int]]:
    return [(lit, base + body.index(lit)) for lit in literals]


def test_the_runtime_strings_in_rodata_are_found(tmp_path):
    pieces = elf([(TEXT, version_query(12090)), (RODATA, b"\0padding\0" + STRINGS)])
    rodata_at = dict(pieces)
    path = write(tmp_path / "libapp.so", pieces)
    base = next(o for o, b in pieces if b.startswith(b"\0padding"))
    assert rodata_at[base].startswith(b"\0padding")
    assert linked(path) == [("cudart", "libcudart_static.a",
                             _how("libcudart_static.a", _offsets(base, ERRORS, rodata_at[base])), ("12.9",))]


@pytest.mark.parametrize("where", [DATA, COMMENT, (".nv_fatbin", PROGBITS, ALLOC), (".dynstr", STRTAB, ALLOC)])
def test_the_runtime_strings_outside_rodata_are_not_searched(tmp_path, where):
    # The same bytes in a writable section, a non-loaded one, a device-code section or a string table: not the
    # runtime's constants, and not read.
    path = write(tmp_path / "libapp.so", elf([(TEXT, version_query(12090)), (where, STRINGS),
                                               (RODATA, b"other constants\0")]))
    assert linked(path) == []


def test_every_string_of_one_list_must_be_in_rodata(tmp_path):
    split = ERRORS[0] + b"\0"
    path = write(tmp_path / "libapp.so", elf([(RODATA, split), (DATA, b"\0".join(ERRORS[1:]))]))
    assert linked(path) == []


def test_the_version_query_is_read_in_code_only(tmp_path):
    # A CUDART_VERSION pattern in data is not the runtime's code: had it been read, the two values would disagree
    # and no release would be claimed.
    pieces = elf([(TEXT, version_query(12090)), (DATA, version_query(13000)), (RODATA, STRINGS)])
    path = write(tmp_path / "libapp.so", pieces)
    assert [claims for *_, claims in linked(path)] == [("12.9",)]


def test_a_file_past_the_content_probe_limit_is_searched_in_its_rodata(tmp_path):
    # 600 MiB, nearly all holes: .text at 4 KiB, .rodata at 560 MiB, past the catalog's probe_limit (512 MiB), which
    # the search of the whole file stopped at (such a library was never named).
    limit = load_catalog().probe_limit
    rodata = 560 << 20
    assert rodata > limit
    pieces = elf([(TEXT, version_query(12080)), (RODATA, STRINGS)], at={".text": 4096, ".rodata": rodata})
    path = write(tmp_path / "libbig.so", pieces, size=600 << 20)
    assert path.stat().st_size == 600 << 20 and path.stat().st_blocks * 512 < 1 << 20  # sparse: no disk used
    assert linked(path) == [("cudart", "libcudart_static.a",
                             _how("libcudart_static.a", _offsets(rodata, ERRORS, STRINGS)), ("12.8",))]


def test_without_section_headers_the_read_only_segments_are_searched(tmp_path):
    # PF_R 4, PF_W 2, PF_X 1: the strings in a read-only segment are found, in a writable one they are not; the
    # version query is read in the executable one.
    code = version_query(12090)
    pieces = elf([], segments=[(5, code), (4, STRINGS)])
    (code_at, _), (strings_at, _) = pieces[2:]
    with file_bytes(str(write(tmp_path / "found.so", pieces))) as data:
        assert host_regions(data) == HostRegions(
            (Region(code_at, code_at + len(code)), Region(strings_at, strings_at + len(STRINGS))),
            (Region(code_at, code_at + len(code)),), "program headers")
    assert linked(tmp_path / "found.so") == [("cudart", "libcudart_static.a",
                                              _how("libcudart_static.a", _offsets(strings_at, ERRORS, STRINGS)),
                                              ("12.9",))]
    assert linked(write(tmp_path / "writable.so", elf([], segments=[(5, code), (6, STRINGS)]))) == []


# ---------------------------------------------------------------------------------------------------------- PE
# Characteristics: IMAGE_SCN_CNT_CODE 0x20, IMAGE_SCN_CNT_INITIALIZED_DATA 0x40, IMAGE_SCN_MEM_EXECUTE 0x20000000,
# IMAGE_SCN_MEM_READ 0x40000000, IMAGE_SCN_MEM_WRITE 0x80000000.
CODE, CONST, RW = 0x60000020, 0x40000040, 0xC0000040


def pe(sections: list[tuple[str, int, bytes]], imports_in: str | None = None) -> bytes:
    """A PE32+ image (AMD64) whose sections hold ``bytes`` at RVA 0x1000, 0x2000, ...; ``imports_in``: the section
    (by name) whose bytes start with an import directory of KERNEL32.dll, as MinGW's ``.idata`` does."""
    count, table_at = len(sections), 0x40 + 4 + 20 + 240
    raw = (table_at + 40 * count + 0x1FF) & ~0x1FF
    directories = [(0, 0)] * 16
    bodies, headers = [], b""
    for n, (name, chars, body) in enumerate(sections):
        rva = 0x1000 * (n + 1)
        if name == imports_in:
            name_rva = rva + 40
            # Import Directory Table: {ILT RVA, TimeDateStamp, ForwarderChain, Name RVA, IAT RVA}, then a null entry.
            body = struct.pack("<IIIII", 0, 0, 0, name_rva, 0) + bytes(20) + b"KERNEL32.dll\0" + body
            directories[1] = (rva, 40)
        body += b"\0" * (-len(body) % 0x200)
        headers += struct.pack("<8sIIIIIIHHI", name.encode(), len(body), rva, len(body), raw, 0, 0, 0, 0, chars)
        bodies.append((raw, body))
        raw += len(body)
    optional = struct.pack("<HBBIIIIIQ", 0x20B, 14, 0, 0, 0, 0, 0, 0, 0x180000000) + bytes(108 - 32)
    optional += struct.pack("<I", 16) + b"".join(struct.pack("<II", *d) for d in directories)
    image = bytearray(b"MZ" + bytes(0x3A) + struct.pack("<I", 0x40) + b"PE\0\0"
                      + struct.pack("<HHIIIHH", 0x8664, count, 0, 0, 0, len(optional), 0x2022) + optional + headers)
    for at, body in bodies:
        image.extend(b"\0" * (at - len(image)))
        image.extend(body)
    return bytes(image)


@pytest.mark.parametrize("sections,imports_in,expected", [
    # MSVC: the runtime's texts in .rdata.
    ([(".text", CODE, b"\xc3"), (".rdata", CONST, STRINGS)], None, "errors"),
    # CUDA 13's loader library: its names in .rdata (cupy-cuda13x, onnxruntime-gpu, bitsandbytes on Windows).
    ([(".text", CODE, b"\xc3"), (".rdata", CONST, b"\0".join(LOADER))], None, "loader"),
    # MinGW keeps the import tables in a writable .idata: read because the import directory lies there.
    ([(".text", CODE, b"\xc3"), (".idata", RW, b"\0".join(LOADER))], ".idata", "loader"),
    # The same bytes in .data, or in a writable section no directory points into: not read.
    ([(".text", CODE, b"\xc3"), (".data", RW, STRINGS), (".rdata", CONST, b"x")], None, None),
    ([(".text", CODE, b"\xc3"), (".idata", RW, b"\0".join(LOADER))], None, None),
])
def test_pe_constants_and_import_tables(tmp_path, sections, imports_in, expected):
    image = pe(sections, imports_in)
    path = tmp_path / "app.dll"
    path.write_bytes(image)
    found = linked(path)
    if expected is None:
        assert found == []
        return
    literals = ERRORS if expected == "errors" else LOADER
    assert [(name, library) for name, library, *_ in found] == [("cudart", "cudart_static.lib")]
    assert found[0][2] == _how("cudart_static.lib", [(lit, image.index(lit)) for lit in literals])
