"""Readers identify input by content and state exact facts: PTX headers, cubin notes, ar members, LZ4 prefixes."""

from __future__ import annotations

import shutil

import lz4.block
import pytest

from licscan.binary import archive, cubin, fatbin, identify, ptx
from licscan.binary.compression import lz4_block_prefix
from licscan.binary.errors import FormatError
from licscan.model import FileFormat
from tests.helpers import fixture, inspect


def test_standalone_ptx_header():
    header = ptx.parse_header(fixture("cuda13/kern_c80.ptx").read_bytes())
    assert (header.isa, header.target, header.address_size) == ("9.0", "sm_80", 64)
    assert (header.generator, header.release, header.version, header.build_id, header.nvvm) == (
        "NVIDIA NVVM Compiler", "13.0", "13.0.88", "36424714", "7.0.1")


def test_standalone_ptx_family_target_and_nvvm_20():
    header = ptx.parse_header(fixture("cuda13/kern_c100f.ptx").read_bytes())
    assert (header.target, header.nvvm) == ("sm_100f", "20.0.0")
    assert ptx.cuobjdump_arch(header.target) == "sm_100f"


@pytest.mark.parametrize("version, isa, build", [
    ("11.2.152", "7.2", "29618528"), ("11.7.99", "7.7", "31442593"), ("11.8.89", "7.8", "31833905"),
    ("12.0.76", "8.0", "31968024"), ("12.4.131", "8.4", "34097967"), ("12.6.85", "8.5", "35059454"),
    ("12.8.93", "8.7", "35583870"), ("12.9.86", "8.8", "36037853"),
])
def test_real_old_toolkit_ptx_headers(version, isa, build):
    """libnvvm of each toolkit: release, CL id and ISA as docs/binary-format.md §5.1 lists them."""
    rel = "cuda112/nvvm_11.2.152.ptx" if version.startswith("11.2") else f"oldtk/nvvm_{version}.ptx"
    header = ptx.parse_header(fixture(rel).read_bytes())
    assert (header.version, header.isa, header.build_id) == (version, isa, build)


def test_ptx_with_windows_line_ends():
    """PTX written on Windows ends its lines in CR LF (numba-cuda 0.30.4's win_amd64 wheel ships two such files):
    the same header as with LF, and identified as PTX."""
    text = fixture("cuda13/kern_c80.ptx").read_bytes()
    crlf = text.replace(b"\n", b"\r\n")
    assert ptx.looks_like_ptx(crlf) and identify.identify(crlf[:identify.SNIFF_SIZE]) == FileFormat.PTX
    assert ptx.parse_header(crlf) == ptx.parse_header(text)


def test_ptx_without_version_is_an_error():
    with pytest.raises(FormatError):
        ptx.parse_header(b"// nothing here\n.target sm_80\n")


def test_cubin_notes_v8():
    facts = cubin.from_image(fixture("cuda13/kern_sm90a.cubin").read_bytes())
    assert (facts.abi, facts.e_flags, facts.sm, facts.accelerated) == (8, 0x06005A04, 90, True)
    assert (facts.tool.tool, facts.tool.version, facts.tool.options) == ("ptxas", "13.0.88", "-arch sm_90a -m 64")
    assert (facts.tkinfo_word, facts.cuinfo_toolkit, facts.virtual_sm) == (2, 130, 90)


@pytest.mark.parametrize("rel, flags, arch", [
    ("cuda13/kern_sm80.cubin", 0x06005004, "sm_80"),
    ("cuda13/kern_sm100f.cubin", 0x06006402, "sm_100"),  # "f" is not recoverable from a cubin (docs/binary-format.md §4.2)
    ("cuda13/kern_sm120a.cubin", 0x06007802, "sm_120a"),
    ("cuda13/kern_sm86_debug.cubin", 0x0E005604, "sm_86"),
])
def test_cubin_e_flags_and_arch(rel, flags, arch):
    facts = cubin.from_image(fixture(rel).read_bytes())
    assert (facts.e_flags, facts.arch) == (flags, arch)
    assert facts.debug == ("debug" in rel)


def test_cubin_v7_and_the_12x_v8_notes():
    v7 = cubin.from_image(fixture("oldtk/k_sm90a_12.4.131.cubin").read_bytes())
    assert (v7.abi, v7.e_version, v7.arch, v7.tool) == (7, 124, "sm_90a", None)  # a from e_flags 0x800
    v8 = cubin.from_image(fixture("oldtk/k_sm100a_12.8.93.cubin").read_bytes())
    assert (v8.abi, v8.arch, v8.tkinfo_word, v8.tool.version, v8.cuinfo_toolkit) == (8, "sm_100a", 128, "12.8.93",
                                                                                     None)


def test_device_linked_cubin_records_its_inputs():
    image = inspect("cuda13/exe_rdc_sm80").all_images()[0]
    assert image.producer.value == "nvlink" and image.tool.version == "13.0.88"
    assert [t.tool for t in image.linked_from] == ["ptxas", "ptxas", "ptxas"]


@pytest.mark.parametrize("rel, expected", [
    ("cuda13/kern_sm80.cubin", FileFormat.CUBIN),
    ("cuda13/kern_multi.fatbin", FileFormat.FATBIN),
    ("cuda13/kern_c80.ptx", FileFormat.PTX),
    ("cuda13/libkern_static.a", FileFormat.AR),
    ("cuda13/libkern.so", FileFormat.ELF),
    ("cuda13/rdc_kern.o", FileFormat.ELF),
])
def test_identified_by_content_not_by_name(tmp_path, rel, expected):
    renamed = tmp_path / "renamed.txt"
    shutil.copyfile(fixture(rel), renamed)
    assert identify.identify(renamed.read_bytes()[: identify.SNIFF_SIZE]) is expected
    assert inspect(renamed).format is expected


def test_text_that_is_not_ptx(tmp_path):
    path = tmp_path / "notes.ptx"
    path.write_text("hello\n.version 9.0\n")
    facts = inspect(path)
    assert facts.format is FileFormat.UNKNOWN and not facts.all_images() and not facts.all_diagnostics()


def test_ar_bsd_long_names_and_odd_sizes():
    def member(name: bytes, data: bytes) -> bytes:
        header = name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"644".ljust(8)
        header += str(len(data)).encode().ljust(10) + b"`\n"
        return header + data + (b"\n" if len(data) % 2 else b"")

    long_name = b"a_rather_long_member_name.o"
    blob = archive.AR_MAGIC + member(b"#1/" + str(len(long_name)).encode(), long_name + b"xyz") + member(b"b.o/", b"1")
    got = [(m.name, bytes(blob[m.offset : m.offset + m.size])) for m in archive.members(blob)]
    assert got == [("a_rather_long_member_name.o", b"xyz"), ("b.o", b"1")]


def test_ar_truncated_member_is_an_error():
    blob = archive.AR_MAGIC + b"x.o/".ljust(16) + b"0".ljust(32) + b"999".ljust(10) + b"`\n" + b"short"
    with pytest.raises(FormatError) as error:
        list(archive.members(blob))
    assert error.value.truncated and error.value.offset == 8


def test_thin_archive_is_reported():
    with pytest.raises(FormatError, match="thin archive"):
        list(archive.members(archive.THIN_MAGIC + b"\n"))


@pytest.mark.parametrize("rel", ["cuda13/exe_cmode_speed_all", "cuda112/k112_compressall.fatbin",
                                 "cuda112/k112_debug.fatbin"])
def test_lz4_prefix_decoder_matches_lz4_block(rel):
    data = fixture(rel).read_bytes()
    count = 0
    for found in fatbin.scan(data):
        for entry in found.entries:
            if not entry.flags & fatbin.Flag.COMPRESS_LZ4:
                continue
            stream = data[entry.payload_offset : entry.payload_offset + entry.compressed_size]
            full = lz4.block.decompress(stream, uncompressed_size=entry.uncompressed_size)
            for want in (1, 64, 1000):
                prefix, used = lz4_block_prefix(stream, want, entry.uncompressed_size)
                assert prefix == full[:want] and 0 < used <= len(stream)
            count += 1
    assert count >= 5


def test_device_image_from_values_equals_the_generated_init():
    """images.py builds listed images with DeviceImage.from_values (no per-field frozen __setattr__): every field
    lands where __init__ puts it, the object is still frozen, hashable and equal to the __init__ one."""
    import dataclasses

    import pytest as _pytest

    from licscan.binary.images import Limits
    from licscan.binary.inspect import inspect_file
    from licscan.model import DeviceImage
    from tests.helpers import fixture

    images = inspect_file(str(fixture("cuda13/kern_multi.fatbin")), limits=Limits(jobs=1)).device_code
    assert {i.kind.value for i in images} == {"cubin", "ptx"}
    for image in images:
        values = {f.name: getattr(image, f.name) for f in dataclasses.fields(DeviceImage)}
        rebuilt = DeviceImage(**values)
        assert rebuilt == image and hash(rebuilt) == hash(image) and repr(rebuilt) == repr(image)
        assert vars(rebuilt) == vars(image)
        with _pytest.raises(dataclasses.FrozenInstanceError):
            image.arch = "sm_0"
    distinct = DeviceImage.from_values(*(f"v{n}" for n in range(len(dataclasses.fields(DeviceImage)))))
    assert [getattr(distinct, f.name) for f in dataclasses.fields(DeviceImage)] == \
           [f"v{n}" for n in range(len(dataclasses.fields(DeviceImage)))]
    with _pytest.raises(TypeError):
        DeviceImage.from_values("too", "few")
