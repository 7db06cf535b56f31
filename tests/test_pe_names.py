"""The names a PE image gives itself (licscan/binary/peinfo.py): its export directory's DLL name and the strings of its
VS_VERSIONINFO resource, read from images built here byte by byte after Microsoft's "PE Format" and "VS_VERSIONINFO
structure" pages; and a renamed DLL named by them (licscan/identify/observe.py), as an ELF file by its SONAME.

Real NVIDIA DLLs (cudart64_12.dll renamed, nvjpeg2k_0.dll) are in tests/test_realworld_sweep_wheels.py."""
from __future__ import annotations

import struct

import pytest

from licscan.binary import pe, peinfo
from licscan.binary.inspect import inspect_buffer
from licscan.identify.catalog import identify
from licscan.model import PeVersionInfo

pytestmark = pytest.mark.unit

RDATA_RVA, RDATA_AT = 0x1000, 0x200


def _block(key: str, value: bytes = b"", children: bytes = b"", *, text: bool = False) -> bytes:
    """One VS_VERSIONINFO block: wLength, wValueLength, wType, szKey, padding, Value, padding, Children."""
    head = struct.pack("<HHH", 0, 0, 1 if text else 0) + key.encode("utf-16-le") + b"\0\0"
    head += b"\0" * (-len(head) % 4)
    body = head + value
    body += b"\0" * (-len(body) % 4)
    body += children
    value_length = len(value) // 2 if text else len(value)
    return struct.pack("<HHH", len(body), value_length, 1 if text else 0) + body[6:]


def version_resource(strings: dict[str, str]) -> bytes:
    table = b"".join(_aligned(_block(k, v.encode("utf-16-le") + b"\0\0", text=True)) for k, v in strings.items())
    fixed = struct.pack("<13I", 0xFEEF04BD, 0x10000, *([0] * 11))
    return _block("VS_VERSION_INFO", fixed, _block("StringFileInfo", children=_block("040904b0", children=table)))


def _aligned(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def pe_image(dll_name: str | None, version: bytes | None, *, exports: tuple[str, ...] = (),
             imports: dict[str, tuple[str, ...]] | None = None) -> bytes:
    """A PE32+ image with one section (".rsrc" at RVA 0x1000: licscan searches version markers there) holding an
    export directory naming ``dll_name`` and ``exports``, an import directory of ``imports`` (DLL -> functions
    imported by name), and a resource tree type 16 (RT_VERSION) / ID 1 / language 0x409 -> ``version``."""
    rdata = bytearray()
    directories = [(0, 0)] * 16

    def put(data: bytes) -> int:
        rdata.extend(b"\0" * (-len(rdata) % 8))
        at = len(rdata)
        rdata.extend(data)
        return RDATA_RVA + at

    if dll_name is not None:
        at = len(rdata)
        rdata.extend(b"\0" * 40)
        name_rva = put(dll_name.encode() + b"\0")
        pointers = put(struct.pack(f"<{len(exports)}I", *(put(n.encode() + b"\0") for n in exports)))
        rdata[at:at + 40] = struct.pack("<IIHHIIIIIII", 0, 0, 0, 0, name_rva, 1, len(exports), len(exports), 0,
                                        pointers, 0)
        directories[0] = (RDATA_RVA + at, 40)
    if imports:
        entries = []
        for dll, functions in imports.items():
            hints = [put(b"\0\0" + f.encode() + b"\0") for f in functions]
            lookup = put(struct.pack(f"<{len(hints) + 1}Q", *hints, 0))
            entries.append(struct.pack("<IIIII", lookup, 0, 0, put(dll.encode() + b"\0"), lookup))
        directories[1] = (put(b"".join(entries) + b"\0" * 20), 20 * (len(entries) + 1))
    if version is not None:
        rdata.extend(b"\0" * (-len(rdata) % 8))
        base = len(rdata)

        def table(entry_id: int, offset: int, subdirectory: bool) -> bytes:
            return struct.pack("<IIHHHHII", 0, 0, 0, 0, 0, 1, entry_id, offset | (0x80000000 if subdirectory else 0))

        tree = table(16, 24, True) + table(1, 48, True) + table(0x409, 72, False)
        data_rva = RDATA_RVA + base + 72 + 16
        tree += struct.pack("<IIII", data_rva, len(version), 0, 0)
        rdata += tree + version
        directories[2] = (RDATA_RVA + base, len(tree) + len(version))
    optional = struct.pack("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", 0x20B, 14, 0, 0, 0, 0, 0, 0, 0x180000000, 0x1000,
                           0x200, 6, 0, 0, 0, 6, 0, 0, 0x3000, 0x200, 0, 3, 0, 0, 0, 0, 0, 0, 16)
    optional += b"".join(struct.pack("<II", *d) for d in directories)
    header = b"MZ" + b"\0" * 0x3A + struct.pack("<I", 0x40)
    header += b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, len(optional), 0x2022) + optional
    header += struct.pack("<8sIIIIIIHHI", b".rsrc", len(rdata), RDATA_RVA, len(rdata), RDATA_AT, 0, 0, 0, 0,
                          0x40000040)
    return header.ljust(RDATA_AT, b"\0") + bytes(rdata)


CUDART_STRINGS = {"CompanyName": "NVIDIA Corporation", "FileDescription": "NVIDIA CUDA Runtime, Version 12.9.79 ",
                  "FileVersion": "6,14,11,12090", "InternalName": "CUDART",
                  "OriginalFilename": "CUDART64_129_79.DLL", "ProductName": "NVIDIA CUDA 12.9.79 Runtime"}


def test_export_name_and_version_strings():
    image = pe_image("cudart64_12.dll", version_resource(CUDART_STRINGS))
    view = pe.read_pe(image)
    assert peinfo.export_name(image, view) == "cudart64_12.dll"
    assert peinfo.version_info(image, view) == PeVersionInfo(
        original_filename="CUDART64_129_79.DLL", internal_name="CUDART",
        file_description="NVIDIA CUDA Runtime, Version 12.9.79 ", product_name="NVIDIA CUDA 12.9.79 Runtime",
        company_name="NVIDIA Corporation", file_version="6,14,11,12090", product_version=None)
    facts = inspect_buffer(image, "app/myruntime.dll")
    assert facts.pe is not None and facts.pe.export_name == "cudart64_12.dll"
    assert facts.pe.version_info is not None and facts.pe.version_info.internal_name == "CUDART"


def test_renamed_dll_is_named_by_its_export_name_and_version_resource():
    image = pe_image("cudart64_12.dll", version_resource(CUDART_STRINGS))
    facts = inspect_buffer(image, "app/myruntime.dll")
    (match,) = identify("app/myruntime.dll", facts, None, image)
    assert (match.name, match.version, match.version_source.value) == ("cudart", "12.9.79", "marker")
    assert match.evidence[0] == ("CUDA Runtime: export directory names it 'cudart64_12.dll' "
                                 "(rules/catalog/nvidia.yaml: cudart)")
    # No export directory: the version resource's OriginalFilename names it (nvJitLink_120_0.dll says its own name).
    jit = pe_image(None, version_resource({"OriginalFilename": "nvJitLink_120_0.dll", "InternalName": "NVJITLINK"}))
    (match,) = identify("app/jl.dll", inspect_buffer(jit, "app/jl.dll"), None, jit)
    assert match.name == "nvJitLink"
    assert match.evidence[0] == ("nvJitLink: version resource OriginalFilename 'nvJitLink_120_0.dll' "
                                 "(rules/catalog/nvidia.yaml: nvJitLink)")


def test_names_that_are_not_nvidia_name_nothing():
    image = pe_image("ctranslate2.dll", version_resource({"OriginalFilename": "libiomp5md.dll"}))
    assert identify("app/x.dll", inspect_buffer(image, "app/x.dll"), None, image) == ()


@pytest.mark.parametrize("cut", [0x200 + 20, 0x200 + 44, 0x200 + 120, 0x200 + 200])
def test_truncated_or_missing_names_are_none(cut):
    image = pe_image("cudart64_12.dll", version_resource(CUDART_STRINGS))[:cut]
    view = pe.read_pe(image)
    assert peinfo.export_name(image, view) in (None, "cudart64_12.dll")
    assert peinfo.version_info(image, view) is None


def test_hostile_version_blocks_end():
    """A block whose wLength is 0 or runs past its parent ends the walk; a resource whose levels are not three
    directories then a leaf is no version resource."""
    zero = struct.pack("<HHH", 0, 0, 0) + "VS_VERSION_INFO".encode("utf-16-le") + b"\0\0"
    image = pe_image(None, zero * 64)
    assert peinfo.version_info(image, pe.read_pe(image)) is None
    long = version_resource(CUDART_STRINGS)
    image = pe_image(None, struct.pack("<H", 0xFFFF) + long[2:])
    assert peinfo.version_info(image, pe.read_pe(image)) is None
    assert peinfo.export_name(image, pe.read_pe(image)) is None


def test_exported_and_imported_function_names():
    image = pe_image("zcuda.dll", None, exports=("cuInit", "cuModuleLoadData"),
                     imports={"amdhip64_6.dll": ("hipInit", "hipModuleLaunchKernel"), "KERNEL32.dll": ("Sleep",)})
    view = pe.read_pe(image)
    assert view.imports == ("amdhip64_6.dll", "KERNEL32.dll")
    assert peinfo.export_names(image, view) == ("cuInit", "cuModuleLoadData")
    assert peinfo.imported_names(image, view) == ("hipInit", "hipModuleLaunchKernel", "Sleep")
    assert peinfo.imported_names(image, view, limit=2) == ("hipInit", "hipModuleLaunchKernel")


def test_symbols_signals_read_a_dll_as_an_elf_library():
    """A DLL of any name that exports CUDA's driver API and imports hip* from AMD's HIP runtime loads NVIDIA output on
    another GPU (signals module-loader-on-nonnvidia and cuda-exports-on-hip), as the same ELF library does; before,
    symbols signals read ELF files only and the DLL was only a ROCm client (targets-rocm)."""
    def layers(**shape) -> list[tuple[str, str, tuple[str, ...]]]:
        image = pe_image("zcuda.dll", None, **shape)
        found = identify("app/zcuda.dll", inspect_buffer(image, "app/zcuda.dll"), None, image)
        return sorted((m.name, m.confidence.value, m.layer.signals if m.layer else ()) for m in found)

    hip = {"amdhip64_6.dll": ("hipInit", "hipModuleLaunchKernel")}
    rocm_client = ("targets-rocm", "high", ("rocm-needed",))
    assert layers(exports=("cuInit", "cuModuleLoadData"), imports=hip) == [
        ("ptx-jit-on-nonnvidia", "high", ("module-loader-on-nonnvidia", "cuda-exports-on-hip")), rocm_client]
    assert layers(exports=("cuInit", "cuModuleLoadData"), imports={"KERNEL32.dll": ("Sleep",)}) == []
    assert layers(exports=("zInit",), imports=hip) == [rocm_client]
