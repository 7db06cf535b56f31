"""AMD code objects (licscan/binary/amdgpu.py) on real clang-built HSACO, offload bundles and CCOB bundles.

Fixtures: tests/fixtures/amd/ (build.sh: Debian clang 14 + clang-tools-14; CCOB headers written by make_ccob.py
around the real bundle, since clang 14 cannot write CCOB).
"""
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from licscan.binary import amdgpu
from licscan.binary.inspect import inspect_file
from licscan.model import Compression, Container, FileFormat, ImageKind

AMD = Path(__file__).resolve().parent / "fixtures" / "amd"
ARCHES = {"gfx90a:xnack-", "gfx1030"}


def test_standalone_hsaco():
    facts = inspect_file(str(AMD / "kern_gfx90a.hsaco"))
    assert facts.format is FileFormat.HSACO
    (image,) = facts.device_code
    assert (image.kind, image.arch, image.container, image.toolkit) == (
        ImageKind.HSACO, "gfx90a:xnack-", Container.STANDALONE, None)


def test_hip_fatbin_section_in_host_object():
    facts = inspect_file(str(AMD / "kern_host.o"))
    assert not facts.diagnostics
    assert [(i.kind, i.container) for i in facts.device_code] == [(ImageKind.HSACO, Container.HIP_FATBIN)] * 2
    assert {i.arch for i in facts.device_code} == ARCHES
    assert {i.identifier for i in facts.device_code} == {"hipv4-amdgcn-amd-amdhsa--gfx90a:xnack-",
                                                        "hipv4-amdgcn-amd-amdhsa--gfx1030"}


def test_uncompressed_bundle_entries():
    raw = (AMD / "kern_bundle.o").read_bytes()
    entries, extent = amdgpu.parse_bundle(raw, 0, len(raw))
    assert [e.triple.split("--")[0] for e in entries][0].startswith("host-x86_64")
    assert extent <= len(raw)
    images, diags = amdgpu.scan_region(raw, "b", 0, len(raw), Container.OFFLOAD_BUNDLE, dedicated=True,
                                       want_hash=True)
    assert not diags and {i.arch for i in images} == ARCHES


@pytest.mark.parametrize("name,method,version,compression", [
    ("kern_bundle.ccob.zstd", "zstd", 3, Compression.ZSTD), ("kern_bundle.ccob.zlib", "zlib", 2, Compression.ZLIB)])
def test_ccob(name, method, version, compression):
    raw = (AMD / name).read_bytes()
    header = amdgpu.parse_ccob(raw, 0, len(raw))
    assert (header.method, header.version, header.total_size) == (method, version, len(raw))
    plain = (AMD / "kern_bundle.o").read_bytes()
    assert amdgpu.decompress_ccob(raw, 0, len(raw), header) == plain
    images, diags = amdgpu.scan_region(raw, "c", 0, len(raw), Container.OFFLOAD_BUNDLE, dedicated=True,
                                       want_hash=True)
    ref, _ = amdgpu.scan_region(plain, "p", 0, len(plain), Container.OFFLOAD_BUNDLE, dedicated=True, want_hash=True)
    assert not diags
    assert [(i.arch, i.sha256, i.compression) for i in images] == [(i.arch, i.sha256, compression) for i in ref]


def test_ccob_in_rodata_of_host_object(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    asm = tmp_path / "blob.s"
    asm.write_text(f'.section .rodata\n.globl blob\nblob:\n.incbin "{AMD / "kern_bundle.ccob.zstd"}"\n')
    obj = tmp_path / "blob.o"
    subprocess.run(["gcc", "-c", str(asm), "-o", str(obj)], check=True)
    facts = inspect_file(str(obj))
    assert {(i.arch, i.container, i.compression) for i in facts.device_code} == {
        (a, Container.OFFLOAD_BUNDLE, Compression.ZSTD) for a in ARCHES}


def test_target_ids():
    assert amdgpu.target_id(0x63F, 2) == "gfx90a:xnack-"  # readelf: "gfx90a, xnack off, sramecc any"
    assert amdgpu.target_id(0xE3F, 3) == "gfx90a:sramecc+:xnack-"
    assert amdgpu.target_id(0x36, 2) == "gfx1030"
    assert amdgpu.target_id(0x12F, 1) == "gfx906:sramecc-:xnack+"  # code object v3: bit set = on
    assert amdgpu.target_id(0x4C, 3) == "gfx942"
    assert amdgpu.target_id(0x4F, 4) == "gfx950"


def test_loader_string_is_not_a_bundle():
    # libamdhip64 holds the magic as a string; read at face value its entry count is absurd (§12a).
    decoy = b"\0" * 8 + amdgpu.BUNDLE_MAGIC + b"%s: bad bundle\0" + b"\0" * 64
    images, diags = amdgpu.scan_region(decoy, "d", 0, len(decoy), Container.OFFLOAD_BUNDLE, dedicated=False)
    assert images == [] and diags == []
    images, diags = amdgpu.scan_region(decoy, "d", 0, len(decoy), Container.HIP_FATBIN, dedicated=True)
    assert images == [] and len(diags) == 1


def test_truncated_ccob_is_a_diagnostic():
    raw = (AMD / "kern_bundle.ccob.zstd").read_bytes()
    cut = raw[:-100]
    images, diags = amdgpu.scan_region(cut, "t", 0, len(cut), Container.HIP_FATBIN, dedicated=True)
    assert images == [] and len(diags) == 1


@pytest.mark.skipif(not Path("/usr/lib/llvm-14/bin/clang-offload-bundler").exists(),
                    reason="clang-tools-14 (clang-offload-bundler) not installed")
def test_fixtures_rebuild_to_the_same_targets(tmp_path):
    for name in ("kern.hip", "build.sh", "make_ccob.py"):
        shutil.copy(AMD / name, tmp_path / name)
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(["sh", str(tmp_path / "build.sh")], check=True, capture_output=True, env=env)
    facts = inspect_file(str(tmp_path / "kern_host.o"))
    assert {i.arch for i in facts.device_code} == ARCHES
    assert struct.unpack_from("<H", (tmp_path / "kern_gfx90a.hsaco").read_bytes(), 18)[0] == amdgpu.EM_AMDGPU


def test_lenient_scan_finds_the_bundles_the_strict_scan_finds():
    # The lenient scan of a data section finds both magics in one pass each (probe.Finder); the strict scan of
    # .hip_fatbin searches again after each candidate. Decoys: the loader's string, "CCOB" that does not parse.
    bundle = (AMD / "kern_bundle.o").read_bytes()
    ccob = (AMD / "kern_bundle.ccob.zstd").read_bytes()
    data = (b"CCOB\0\0" + amdgpu.BUNDLE_MAGIC + b"%s: bad bundle\0" + b"\0" * 7 + bundle + b"CCOBCCOB" + b"\0" * 3
            + ccob + b"\0" * 16)
    lenient, quiet = amdgpu.scan_region(data, "d", 0, len(data), Container.OFFLOAD_BUNDLE, dedicated=False)
    strict, diags = amdgpu.scan_region(data, "d", 0, len(data), Container.OFFLOAD_BUNDLE, dedicated=True)
    assert quiet == [] and len(diags) == 4
    assert [(i.arch, i.compression, i.fatbin_offset) for i in lenient] == [
        (i.arch, i.compression, i.fatbin_offset) for i in strict]
    assert [i.compression for i in lenient] == [Compression.NONE] * 2 + [Compression.ZSTD] * 2
    assert {i.arch for i in lenient} == ARCHES


def test_bundle_after_more_decoys_than_the_magic_pass_keeps(tmp_path):
    # 5,000 "CCOB" that do not parse before the real bundle: the data section's magic pass keeps no offsets for that
    # magic (probe.occurrence_table's limit), so the AMD scan searches the section again and still finds it.
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    asm = tmp_path / "blob.s"
    asm.write_text('.section .rodata\n.globl blob\nblob:\n.rept 5000\n.ascii "CCOB"\n.endr\n'
                   f'.incbin "{AMD / "kern_bundle.ccob.zstd"}"\n')
    obj = tmp_path / "blob.o"
    subprocess.run(["gcc", "-c", str(asm), "-o", str(obj)], check=True)
    facts = inspect_file(str(obj))
    assert not facts.diagnostics
    assert {(i.arch, i.container, i.compression) for i in facts.device_code} == {
        (a, Container.OFFLOAD_BUNDLE, Compression.ZSTD) for a in ARCHES}
