"""PE images and COFF objects read from their headers (licscan/binary/pe.py): issue 15 items 2, 3 and 7.

* item 2: device code in Windows static libraries -- COFF objects inside ``ar`` archives. A fixture built here
  from our own fatbin (tests/fixtures/cuda13/kern_multi.fatbin) in a ``__nv_relfatbin`` section (the name in the
  COFF string table, as MSVC writes it), plain and ``/bigobj``; and NVIDIA's ``cudadevrt.lib`` (nvidia-cuda-runtime-cu12
  12.9.79, win_amd64), whose one object holds 15 cubins sm_50 ... sm_121, compared with cuobjdump on the section cut
  out (cuobjdump on Linux reads ELF and fatbin files only).
* item 3: PE imports and ``.hip_fat`` sections: bitsandbytes 0.50.2's Windows DLLs.
* item 7: the reader touches the headers only (not the image), and agrees with lief on real DLLs.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import oracle
import pytest
from inventory_builders import FATBIN

from licscan.binary import pe
from licscan.binary.identify import identify
from licscan.binary.inspect import inspect_buffer
from licscan.cli import main
from licscan.model import FileFormat

MS_ARCH = b"!<arch>\n"


def coff_object(sections: list[tuple[str, bytes, int]], *, bigobj: bool = False, machine: int = 0x8664) -> bytes:
    """A COFF object with ``sections`` [(name, data, characteristics)]; names over 8 bytes go to the string table
    as "/offset" (PE Format, "Section Table")."""
    strings = bytearray()
    names = []
    for name, _data, _chars in sections:
        raw = name.encode()
        if len(raw) > 8:
            names.append(f"/{4 + len(strings)}".encode())
            strings += raw + b"\0"
        else:
            names.append(raw)
    header_size = 56 if bigobj else 20
    table = header_size + 40 * len(sections)
    body = bytearray()
    rows = []
    for (_name, data, chars), raw_name in zip(sections, names):
        rows.append(struct.pack("<8sIIIIIIHHI", raw_name, 0, 0, len(data), table + len(body), 0, 0, 0, 0, chars))
        body += data
    symbols_at = table + len(body)
    if bigobj:
        header = struct.pack("<HHHHI16sIIIIIII", 0, 0xFFFF, 2, machine, 0, pe.BIGOBJ_CLASS_ID, 0, 0, 0, 0,
                             len(sections), symbols_at, 0)
    else:
        header = struct.pack("<HHIIIHH", machine, len(sections), 0, symbols_at, 0, 0, 0)
    return header + b"".join(rows) + bytes(body) + struct.pack("<I", 4 + len(strings)) + bytes(strings)


def ms_lib(members: list[tuple[str, bytes]]) -> bytes:
    """An archive as Microsoft's librarian writes it: two "/" linker members, a "//" longnames member whose names end
    with NUL bytes, then the objects."""
    def member(name: str, data: bytes) -> bytes:
        head = f"{name:<16}{0:<12}{'':<6}{'':<6}{0:<8}{len(data):<10}`\n".encode()
        return head + data + (b"\n" if len(data) & 1 else b"")

    longnames = b"".join(n.encode() + b"\0" for n, _ in members)
    out = bytearray(MS_ARCH + member("/", b"\0" * 4) + member("/", b"\0" * 8) + member("//", longnames))
    offset = 0
    for name, data in members:
        out += member(f"/{offset}", data)
        offset += len(name) + 1
    return bytes(out)


CODE = pe.IMAGE_SCN_CNT_CODE | pe.IMAGE_SCN_MEM_EXECUTE | 0x40000000
DATA = 0x40000040  # IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
DRECTVE = pe.IMAGE_SCN_LNK_INFO | pe.IMAGE_SCN_LNK_REMOVE


def _archs(facts) -> list[str]:
    return [i.arch for i in facts.all_images()]


@pytest.mark.parametrize("bigobj", [False, True])
def test_relfatbin_in_coff_object_inside_lib(bigobj):
    obj = coff_object([(".text", b"\xc3" * 16, CODE), (".drectve", b"/DEFAULTLIB:cudart_static ", DRECTVE),
                       ("__nv_relfatbin", FATBIN, DATA), (".nvFatBinSegment", b"\0" * 24, DATA)], bigobj=bigobj)
    assert identify(obj[:4096]) is FileFormat.COFF
    standalone = inspect_buffer(FATBIN, "kern_multi.fatbin")
    lib = ms_lib([("obj/x64/Release/kern_device_runtime.obj", obj), ("second.obj", obj)])
    facts = inspect_buffer(lib, "kern.lib")
    assert facts.format is FileFormat.AR
    assert [m.path for m in facts.members] == ["kern.lib!/obj/x64/Release/kern_device_runtime.obj",
                                               "kern.lib!/second.obj"]
    assert [m.format for m in facts.members] == [FileFormat.COFF, FileFormat.COFF]
    assert _archs(facts) == _archs(standalone) * 2 and len(_archs(standalone)) == 7
    assert {i.container.value for i in facts.all_images()} == {"relfatbin"}
    member = facts.members[0]
    assert member.pe.sections == (".text", ".drectve", "__nv_relfatbin", ".nvFatBinSegment")
    assert member.pe.machine == "AMD64" and member.pe.imports == ()
    assert facts.all_diagnostics() == ()


def test_coff_needs_a_valid_header():
    """Objects have no magic: a header whose section names are not printable, whose optional header is not empty,
    or whose machine is unknown is not taken for one."""
    good = coff_object([(".text", b"\xc3", CODE)])
    assert identify(good) is FileFormat.COFF
    assert identify(good[:20] + b"\x01" * 8 + good[28:]) is FileFormat.UNKNOWN  # unprintable name
    assert identify(struct.pack("<H", 0x1234) + good[2:]) is FileFormat.UNKNOWN  # unknown machine
    assert identify(good[:16] + struct.pack("<H", 224) + good[18:]) is FileFormat.UNKNOWN  # optional header
    # An import-library member (Sig1 0, Sig2 0xFFFF, Version 0) is no object.
    assert identify(struct.pack("<HHHHIIH", 0, 0xFFFF, 0, 0x8664, 0, 12, 0) + b"cuInit\0nvcuda.dll\0") \
        is FileFormat.UNKNOWN
    # A truncated section table is a diagnostic, never an exception.
    facts = inspect_buffer(good[:20] + good[20:40], "cut.obj")
    assert facts.format is FileFormat.UNKNOWN or facts.diagnostics


class _Counting:
    """A buffer that records how many bytes were read through it."""

    def __init__(self, data):
        self.data, self.read = data, 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, key):
        chunk = self.data[key]
        self.read += len(chunk) if isinstance(key, slice) else 1
        return chunk


# ---------------------------------------------------------------------------------------------------------------
# real wheels (downloaded under LICSCAN_REALWORLD=1, cached in ${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests})

@pytest.fixture
def download(pytestconfig) -> bool:
    from conftest import realworld_enabled

    return realworld_enabled(pytestconfig)


def _member(dist: str, version: str, member: str, download: bool, platform: str = "win_amd64") -> Path:
    import census_wheels

    try:
        wheel = census_wheels.fetch(census_wheels.Pin(dist, version, platform), download)
    except census_wheels.Unavailable as error:
        pytest.skip(str(error))
    target = oracle.cache_dir() / "members" / f"{dist}-{version}-{platform}" / member
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(zf.read(member))
            os.replace(tmp, target)
    return target


realworld = pytest.mark.realworld


@realworld
def test_cudadevrt_lib_device_code_equals_cuobjdump(tmp_path, download):
    path = _member("nvidia-cuda-runtime-cu12", "12.9.79", "nvidia/cuda_runtime/lib/x64/cudadevrt.lib", download)
    assert main(["inspect", str(path), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    images = report["device_code"]
    assert [i["arch"] for i in images] == ["sm_50", "sm_52", "sm_60", "sm_61", "sm_70", "sm_75", "sm_80", "sm_86",
                                           "sm_89", "sm_90", "sm_100", "sm_101", "sm_103", "sm_120", "sm_121"]
    assert {(i["kind"], i["container"], i["compression"]) for i in images} == {("cubin", "relfatbin", "lz4")}
    assert [m["format"] for m in report["members"]] == ["coff"]
    assert report["members"][0]["path"].endswith("cudadevrt.lib!/_out/wddm2_amd64_release/"
                                                 "cudadevrt___cuda_device_runtime.obj")
    # cuobjdump on the __nv_relfatbin section, cut out of the object
    import census_wheels

    assert census_wheels.cuobjdump_coff_listing(path) == [(i["kind"], i["arch"]) for i in images]


@realworld
def test_windows_imports_and_hip_fat(tmp_path, download):
    rocm = _member("bitsandbytes", "0.50.2", "bitsandbytes/libbitsandbytes_rocm714.dll", download)
    xpu = _member("bitsandbytes", "0.50.2", "bitsandbytes/libbitsandbytes_xpu2026.dll", download)
    assert main(["inspect", str(rocm), "--format", "json", "-o", str(tmp_path / "rocm.json")]) == 0
    report = json.loads((tmp_path / "rocm.json").read_text())
    assert report["pe"]["imports"][:4] == ["hipblas.dll", "rocblas.dll", "libhipblaslt.dll", "amdhip64_7.dll"]
    assert ".hip_fat" in report["pe"]["sections"]
    amd = report["device_code"]
    assert len(amd) == 44 and {(i["kind"], i["container"]) for i in amd} == {("hsaco", "hip_fatbin")}
    assert amd[0]["arch"] == "gfx1010" and amd[0]["identifier"] == "hipv4-amdgcn-amd-amdhsa--gfx1010"
    view = pe.read_pe(xpu.read_bytes())
    assert "sycl9.dll" in view.imports and view.machine == "AMD64"


@realworld
def test_pe_reader_agrees_with_lief_and_reads_headers_only(download):
    lief = pytest.importorskip("lief")
    paths = [_member("bitsandbytes", "0.50.2", "bitsandbytes/libbitsandbytes_cuda118.dll", download),
             _member("bitsandbytes", "0.50.2", "bitsandbytes/libbitsandbytes_rocm714.dll", download),
             _member("nvidia-cuda-runtime-cu12", "12.9.79", "nvidia/cuda_runtime/bin/cudart64_12.dll", download),
             _member("nvidia-cuda-cupti-cu12", "12.9.79", "nvidia/cuda_cupti/bin/cupti64_2025.2.1.dll", download)]
    for path in paths:
        data = path.read_bytes()
        counting = _Counting(data)
        view = pe.read_pe(counting)
        assert counting.read < 64 * 1024, f"{path.name}: {counting.read} bytes read for the headers"
        ref = lief.PE.parse(str(path))
        assert [(s.name, s.offset, s.size, s.virtual_address) for s in view.sections] == [
            (s.name, s.pointerto_raw_data, s.sizeof_raw_data, s.virtual_address) for s in ref.sections], path.name
        assert view.imports == tuple(e.name for e in ref.imports), path.name
        assert view.delay_imports == tuple(e.name for e in ref.delay_imports), path.name
        assert view.image_base == ref.optional_header.imagebase
