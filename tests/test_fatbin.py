"""The fatbin walker on our CUDA 13.0 and 11.2 fixtures: exact entries, flags, headers (docs/binary-format.md §1)."""

from __future__ import annotations

import struct

import pytest

from licscan.binary import fatbin
from tests.helpers import fixture, inspect, listing

MULTI = [
    ("cubin", "sm_75", "none"),
    ("cubin", "sm_80", "none"),
    ("cubin", "sm_90", "none"),
    ("ptx", "sm_90", "zstd"),
    ("cubin", "sm_90a", "none"),
    ("cubin", "sm_100f", "none"),
    ("ptx", "sm_120", "zstd"),
]


def test_outer_header_of_kern_multi():
    data = fixture("cuda13/kern_multi.fatbin").read_bytes()
    magic, version, header_size, fat_size = struct.unpack_from("<IHHQ", data)
    assert (magic, version, header_size) == (0xBA55ED50, 1, 16)
    parsed = fatbin.parse_fatbin(data, 0, len(data))
    assert parsed.size == 16 + fat_size == len(data)
    assert parsed.error is None


def test_kern_multi_entries_exactly():
    data = fixture("cuda13/kern_multi.fatbin").read_bytes()
    entries = fatbin.parse_fatbin(data, 0, len(data)).entries
    got = [("ptx" if e.is_ptx else "cubin", e.arch_name(family_suffix=True)) for e in entries]
    assert got == [(k, a) for k, a, _ in MULTI]
    # cuobjdump's -lelf spelling drops the family suffix of cubins, keeps the arch-specific one.
    assert [e.arch_name(family_suffix=False) for e in entries] == [
        "sm_75", "sm_80", "sm_90", "sm_90", "sm_90a", "sm_100", "sm_120"]
    sm100f = entries[5]
    assert sm100f.flags & fatbin.Flag.FAMILY_SPECIFIC and sm100f.flags & fatbin.Flag.COMPAT_BLOB
    assert sm100f.header_size == 112 and (sm100f.major, sm100f.minor) == (1, 8)
    ptx = entries[3]
    assert ptx.header_size == 80 and (ptx.major, ptx.minor) == (9, 0)
    assert ptx.flags == 0x8011 and ptx.uncompressed_size > ptx.compressed_size > 0
    assert entries[4].flags & fatbin.Flag.ARCH_SPECIFIC


def test_multi_fatbin_listing_and_toolkit():
    facts = inspect("cuda13/kern_multi.fatbin")
    assert listing(facts) == MULTI
    for image in facts.all_images():
        if image.kind.value == "cubin":
            assert image.toolkit.exact == "13.0.88" and image.producer.value == "ptxas" and image.cubin_abi == 8
        else:
            assert (image.toolkit.low, image.toolkit.high, image.toolkit.exact) == ("13.0", "13.0", None)
            assert image.ptx_isa == "9.0"


def test_sm120_sass_fatbin():
    facts = inspect("cuda13/kern_multi_sm120.fatbin")
    assert ("cubin", "sm_120", "none") in listing(facts)


def test_compress_all_is_zstd_everywhere():
    facts = inspect("cuda13/kern_multi_compressall.fatbin")
    assert listing(facts) == [(k, a, "zstd") for k, a, _ in MULTI]
    assert {i.toolkit.exact for i in facts.all_images() if i.kind.value == "cubin"} == {"13.0.88"}


@pytest.mark.parametrize("name, elf, ptx", [
    ("exe_cmode_default", "none", "zstd"),
    ("exe_cmode_default_all", "zstd", "zstd"),
    ("exe_cmode_balance", "none", "zstd"),
    ("exe_cmode_size", "zstd", "zstd"),
    ("exe_cmode_speed", "none", "lz4"),
    ("exe_cmode_speed_all", "lz4", "lz4"),
    ("exe_cmode_none", "none", "none"),
    ("exe_cmode_none_all", "none", "none"),
    ("exe_no_compress", "none", "none"),
    ("exe_compress_all", "zstd", "zstd"),
])
def test_compression_matrix(name, elf, ptx):
    """docs/binary-format.md §3.2: what each nvcc 13.0 setting produces; nvlink's device-linked cubin follows the ELF column."""
    facts = inspect(f"cuda13/{name}")
    images = facts.all_images()
    assert len(images) == 19
    for image in images:
        if image.kind.value == "ptx":
            assert image.compression.value == ptx
        else:
            assert image.producer.value in ("ptxas", "nvlink") and image.compression.value == elf, image
    assert not facts.all_diagnostics()


def test_debug_build_flags_identifier_and_options():
    images = inspect("cuda13/exe_debug_sm80").all_images()
    assert [(i.kind.value, i.arch, i.compression.value) for i in images] == [
        ("cubin", "sm_80", "zstd"), ("cubin", "sm_80", "zstd"), ("ptx", "sm_80", "zstd"),
        ("cubin", "sm_80", "zstd"), ("ptx", "sm_80", "zstd")]
    assert all(i.debug for i in images)
    assert images[2].ptxas_options.split() == ["-g", "--dont-merge-basicblocks", "--return-at-end"]
    assert images[2].identifier.endswith("main.cu") and images[4].identifier.endswith("kern.cu")
    assert [i.producer.value if i.producer else None for i in images] == ["nvlink", "ptxas", None, "ptxas", None]


def test_lineinfo_options():
    images = inspect("cuda13/exe_lineinfo_sm80").all_images()
    assert [i.ptxas_options.strip() for i in images if i.kind.value == "ptx"] == ["--generate-line-info"] * 2


def test_ptx_only_executable_has_empty_nvlink_fatbin():
    facts = inspect("cuda13/exe_ptxonly_c75")
    assert listing(facts) == [("ptx", "sm_75", "zstd"), ("ptx", "sm_75", "zstd")]
    assert not facts.all_diagnostics()


def test_rdc_object_uses_relfatbin():
    facts = inspect("cuda13/rdc_kern.o")
    images = facts.all_images()
    assert [(i.container.value, i.kind.value, i.arch, i.compression.value) for i in images] == [
        ("relfatbin", "cubin", "sm_80", "zstd"), ("relfatbin", "ptx", "sm_80", "zstd")]
    assert images[1].ptxas_options.strip() == "--compile-only"
    assert facts.elf.elf_type == "ET_REL"


def test_rdc_executable_keeps_relfatbins_after_device_link():
    facts = inspect("cuda13/exe_rdc_sm80")
    containers = [(i.container.value, i.kind.value, i.producer.value if i.producer else None)
                  for i in facts.all_images()]
    assert containers[0] == ("nv_fatbin", "cubin", "nvlink")
    assert [c for c, _, _ in containers[1:]] == ["relfatbin"] * 6
    assert facts.wrappers.wrappers == 4 and facts.wrappers.resolved == 4


def test_shared_library_elf_facts_and_wrappers():
    facts = inspect("cuda13/libkern_c80_shared_compressed.so")
    assert facts.elf.elf_type == "ET_DYN"
    assert "libcudart.so.13" in facts.elf.needed
    assert facts.wrappers.wrappers == facts.wrappers.resolved == 2
    assert listing(facts) == [("cubin", "sm_80", "zstd"), ("cubin", "sm_80", "zstd"), ("ptx", "sm_80", "zstd")]


@pytest.mark.parametrize("name, compression", [
    ("k112_default.fatbin", ["none"] * 4 + ["lz4"]),
    ("k112_compressall.fatbin", ["lz4"] * 5),
    ("k112_nocompress.fatbin", ["none"] * 5),
    ("k112_debug.fatbin", ["lz4"] * 5),
])
def test_cuda112_fatbins(name, compression):
    facts = inspect(f"cuda112/{name}")
    assert listing(facts) == [(k, a, c) for (k, a), c in zip(
        [("cubin", "sm_35"), ("cubin", "sm_52"), ("cubin", "sm_75"), ("cubin", "sm_80"), ("ptx", "sm_75")],
        compression)]
    for image in facts.all_images():
        assert image.toolkit.high == "11.2", image.toolkit
    if "debug" in name:
        assert all(i.debug for i in facts.all_images())


def test_cuda112_ident_and_cmdline_header_tail():
    data = fixture("cuda112/k112_ident_cmdline.fatbin").read_bytes()
    entries = fatbin.parse_fatbin(data, 0, len(data)).entries
    ptx = entries[-1]
    assert ptx.is_ptx and ptx.header_size == 104
    assert ptx.ptxas_options == "-O3 --maxrregcount=32"
    assert all(e.identifier == "kern.cu" for e in entries)


def test_static_archive_members_with_gnu_long_names():
    facts = inspect("cuda13/liblongnames.a")
    names = [m.path.split("!/", 1)[1] for m in facts.members]
    assert names == ["a_member_name_longer_than_sixteen_chars.o", "rdc_kern.o"]
    assert all(i.path.startswith(str(fixture("cuda13/liblongnames.a")) + "!/") for i in facts.all_images())


def test_archive_fatbins_at_odd_offsets():
    """docs/binary-format.md §2.2: ar members start at even, not 8-aligned, offsets."""
    facts = inspect("cuda13/librdc_static.a")
    images = facts.all_images()
    assert len(images) == 4 and not facts.all_diagnostics()
    assert any(i.fatbin_offset % 8 for i in images)


def _scan_summary(data: bytes, *, one_pass: bool) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for found in fatbin.scan(data, 3, len(data) - 5, one_pass=one_pass):
        if isinstance(found, fatbin.ScanError):
            out.append(("error", found.error.offset, found.error.reason))
        else:
            out.append((found.offset, found.size, [(e.offset, e.kind, e.arch) for e in found.entries]))
    return out


def test_one_pass_scan_finds_what_the_find_scan_finds():
    # A data section as the lenient scan sees it: fatbins at odd offsets, a magic inside a fatbin's payload (never a
    # candidate: the scan goes on at the fatbin's end), magics that do not validate (three in a row, and a fatbin cut
    # after 40 bytes whose entries run into the next one), half a magic at the region's end.
    multi = fixture("cuda13/kern_multi.fatbin").read_bytes()
    magic = fatbin.FATBIN_MAGIC_BYTES
    inner = multi[:200] + magic + multi[204:]
    data = (b"\0" * 5 + magic + b"\x01\0" + inner + magic * 3 + b"junk" + multi[:40] + b"\0" * 3 + multi
            + magic[:2] + b"\0" * 5)
    want = _scan_summary(data, one_pass=False)
    second = 11 + len(multi) + 12 + 4 + 40 + 3
    assert [w[0] for w in want if w[0] != "error"] == [11, second]
    entries = [w[2] for w in want if w[0] == 11][0]
    cut_second_entry = second - 43 + entries[1][0] - 11  # where the cut fatbin's second entry header would be
    assert [w[1] for w in want if w[0] == "error"] == [5, 11 + len(multi), 15 + len(multi), 19 + len(multi),
                                                       cut_second_entry]
    assert _scan_summary(data, one_pass=True) == want
