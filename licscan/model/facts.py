"""The facts model: frozen values that flow one way through licscan (docs/architecture.md).

Parsers in ``licscan.binary`` produce these values; rules judge them; renderers print them.
Every value is immutable and turns into plain JSON with :func:`to_json`.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from licscan.model.component import GPU_LAYER_KINDS, Component, ComponentKind
from licscan.model.packaging import Distribution, SpecialFile
from licscan.model.releases import ToolkitRange


class FileFormat(enum.Enum):
    """What a file is, decided from its bytes, never from its name."""

    ELF = "elf"  # host ELF: executable, shared object, relocatable object
    CUBIN = "cubin"  # device ELF, e_machine 190 (EM_CUDA)
    HSACO = "hsaco"  # AMD GPU code object, e_machine 224 (EM_AMDGPU)
    AR = "ar"  # static archive, "!<arch>\n"
    PE = "pe"  # Windows PE image, "MZ" ... "PE\0\0"
    COFF = "coff"  # COFF object file (.obj, a member of a .lib): no magic, a validated header and section table
    FATBIN = "fatbin"  # standalone fatbin, magic 0xBA55ED50
    PTX = "ptx"  # PTX assembly text
    UNKNOWN = "unknown"


class ImageKind(enum.Enum):
    """Kind of one device image; the values are the ``kind`` strings of the JSON report (the JSON report schema (licscan/schemas/report.schema.json))."""

    CUBIN = "cubin"
    PTX = "ptx"
    HSACO = "hsaco"  # AMD GPU code object (ELF, e_machine 224)
    SPIRV = "spirv"  # SPIR-V module in an offload bundle (chipStar)


class Container(enum.Enum):
    """Where a device image was found (the JSON report schema (licscan/schemas/report.schema.json) ``container``)."""

    NV_FATBIN = "nv_fatbin"  # ELF ".nv_fatbin", PE ".nv_fatb"
    RELFATBIN = "relfatbin"  # ELF "__nv_relfatbin", PE "__nv_rel"
    STANDALONE = "standalone"  # a .fatbin / .cubin / .ptx file of its own
    RODATA = "rodata"  # a fatbin found by magic scan in ".rodata" / ".rdata"
    EMBEDDED = "embedded"  # a fatbin found by magic scan in another data section
    HIP_FATBIN = "hip_fatbin"  # ELF ".hip_fatbin": a Clang offload bundle (AMD / SPIR-V device code)
    OFFLOAD_BUNDLE = "offload_bundle"  # a Clang offload bundle (or CCOB) found elsewhere, or a file of its own


class Compression(enum.Enum):
    NONE = "none"
    LZ4 = "lz4"
    ZSTD = "zstd"
    ZLIB = "zlib"  # compressed Clang offload bundles (CCOB method 0)


class Producer(enum.Enum):
    """The NVIDIA tool that wrote a cubin, from its ``.note.nv.tkinfo``."""

    PTXAS = "ptxas"
    NVLINK = "nvlink"
    OTHER = "other"


class DiagnosticKind(enum.Enum):
    """Why part of an input could not be read completely."""

    UNREADABLE = "unreadable"  # I/O error, permission denied
    TRUNCATED = "truncated"  # a structure runs past the end of its container
    MALFORMED = "malformed"  # a structure violates its format
    DECOMPRESSION = "decompression"  # an LZ4/zstd payload does not decode to its declared size
    LIMIT = "limit"  # a configured resource limit stopped the reader
    UNSUPPORTED = "unsupported"  # a valid structure licscan cannot decode (e.g. unknown entry kind)


@dataclass(frozen=True)
class Diagnostic:
    """A part of the input that could not be read; it makes a scan incomplete (README.md#commands, exit 3)."""

    path: str
    kind: DiagnosticKind
    message: str
    offset: int | None = None


@dataclass(frozen=True)
class ToolInfo:
    """The producing tool recorded in a cubin's ``.note.nv.tkinfo`` (docs/binary-format.md, section
    "4.3 .note.nv.tkinfo")."""

    tool: str  # "ptxas" / "nvlink"
    version: str | None  # "13.0.88"
    release: str | None  # "13.0"
    build: str | None  # "Build cuda_13.0.r13.0/compiler.36424714_0"
    options: str | None  # "-arch sm_90a -m 64"


@dataclass(frozen=True)
class DeviceImage:
    """One cubin or PTX image, in file order (one ``device_code`` entry of the JSON report schema (licscan/schemas/report.schema.json))."""

    path: str  # virtual path of the host file (licscan/vpath.py)
    container: Container
    kind: ImageKind
    arch: str  # as ``cuobjdump -lelf/-lptx`` spells it: sm_90a; "f" kept for PTX only
    arch_full: str  # with the family suffix for cubins too: sm_100f
    ptx_isa: str | None  # "9.0" for PTX images
    toolkit: ToolkitRange | None
    compression: Compression
    size: int  # bytes the image occupies in its container (fatbin payload, or file size)
    uncompressed_size: int | None  # declared decompressed size, None when stored uncompressed
    producer: Producer | None = None
    tool: ToolInfo | None = None
    linked_from: tuple[ToolInfo, ...] = ()  # tkinfo records of the inputs of a device-linked (nvlink) cubin
    cubin_abi: int | None = None  # 7 or 8 (EI_ABIVERSION)
    virtual_arch: str | None = None  # the PTX target a cubin was assembled from, when recorded
    debug: bool = False
    host: str | None = None  # linux / windows / mac, from the fatbin entry flags
    identifier: str | None = None
    ptxas_options: str | None = None
    fatbin_offset: int | None = None  # file offset of the enclosing fatbin header
    entry_offset: int | None = None  # file offset of the entry header (or of the image, standalone)
    sha256: str | None = None  # of the decompressed image, only when asked for

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out

    @classmethod
    def from_values(cls, *values: Any) -> DeviceImage:
        """``DeviceImage(*values)`` with every field given in declaration order, built without the generated
        ``__init__``'s one ``object.__setattr__`` call per frozen field: listing the 2,975 cubins of
        libtorch_cuda.so spent a tenth of its time there. The result is equal to the ``__init__`` one (a test
        checks it field by field)."""
        if len(values) != _DEVICE_IMAGE_FIELD_COUNT:
            raise TypeError(f"DeviceImage.from_values takes {_DEVICE_IMAGE_FIELD_COUNT} values, got {len(values)}")
        image = object.__new__(cls)
        image.__dict__.update(zip(_DEVICE_IMAGE_FIELDS, values, strict=False))
        return image


_DEVICE_IMAGE_FIELDS = tuple(f.name for f in dataclasses.fields(DeviceImage))
_DEVICE_IMAGE_FIELD_COUNT = len(_DEVICE_IMAGE_FIELDS)


@dataclass(frozen=True)
class ElfFacts:
    """Host ELF facts that rules and the SBOM use."""

    elf_type: str  # ET_EXEC / ET_DYN / ET_REL
    machine: str  # EM_X86_64 ...
    soname: str | None
    needed: tuple[str, ...]
    runpath: tuple[str, ...]
    rpath: tuple[str, ...]
    has_symtab: bool  # False for a stripped file
    build_id: str | None
    sections: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeVersionInfo:
    """The strings of a PE image's VS_VERSIONINFO resource that say what the file is (licscan/binary/pe.py): what
    cudart64_12.dll 12.9.79 says of itself, for example: OriginalFilename "CUDART64_129_79.DLL", InternalName
    "CUDART", FileDescription "NVIDIA CUDA Runtime, Version 12.9.79 ", FileVersion "6,14,11,12090"."""

    original_filename: str | None = None
    internal_name: str | None = None
    file_description: str | None = None
    product_name: str | None = None
    company_name: str | None = None
    file_version: str | None = None
    product_version: str | None = None


@dataclass(frozen=True)
class PeFacts:
    """Host PE image / COFF object facts that rules and the SBOM use (licscan/binary/pe.py)."""

    machine: str  # AMD64, I386, ARM64 ...
    imports: tuple[str, ...]  # DLLs of the import directory, in table order
    delay_imports: tuple[str, ...] = ()  # DLLs of the delay-load directory
    sections: tuple[str, ...] = ()
    export_name: str | None = None  # the DLL name of the export directory: the name the DLL was linked as
    version_info: PeVersionInfo | None = None  # its VS_VERSIONINFO strings


@dataclass(frozen=True)
class WrapperCheck:
    """Cross-check of ``.nvFatBinSegment`` wrappers against the fatbins found (docs/binary-format.md, section
    "2.1 ELF")."""

    wrappers: int
    resolved: int  # wrappers whose data pointer resolved to a fatbin start that was found
    unresolved: int  # wrappers whose pointer is 0 (relocatable objects) or not resolvable statically


@dataclass(frozen=True)
class PtxHeader:
    """The header of a PTX text (licscan/binary/ptx.py; docs/binary-format.md, section "5 PTX")."""

    isa: str  # "9.0"
    target: str  # the .target arch, e.g. "sm_90a"
    target_options: tuple[str, ...]  # e.g. ("debug",), ("texmode_independent",)
    address_size: int | None
    generator: str | None  # "NVIDIA NVVM Compiler", "LLVM NVPTX Back-End"
    release: str | None  # "13.0" from "Cuda compilation tools, release 13.0, V13.0.88"
    version: str | None  # "13.0.88"
    build_id: str | None  # "36424714" (CL id, same as tkinfo's compiler.N_0)
    nvvm: str | None  # "7.0.1"


@dataclass(frozen=True)
class FileFacts:
    """Everything ``inspect`` learnt about one file (or one archive member)."""

    path: str
    format: FileFormat
    size: int
    elf: ElfFacts | None = None
    device_code: tuple[DeviceImage, ...] = ()
    pe: PeFacts | None = None
    members: tuple[FileFacts, ...] = ()  # archive members, in archive order
    wrappers: WrapperCheck | None = None
    ptx_header: PtxHeader | None = None  # standalone PTX
    remarks: tuple[str, ...] = ()  # what was deliberately left unread (not a failure: see diagnostics for those)
    diagnostics: tuple[Diagnostic, ...] = ()
    bytes_read: int = 0

    @property
    def needed(self) -> tuple[str, ...]:
        """The libraries the loader is asked for: ELF DT_NEEDED, PE imports then delay-loaded imports."""
        if self.elf is not None:
            return self.elf.needed
        if self.pe is not None:
            return self.pe.imports + tuple(d for d in self.pe.delay_imports if d not in self.pe.imports)
        return ()

    def all_images(self) -> tuple[DeviceImage, ...]:
        """Device images of the file and of its members, in file order."""
        out = list(self.device_code)
        for member in self.members:
            out.extend(member.all_images())
        return tuple(out)

    def all_remarks(self) -> tuple[str, ...]:
        out = list(self.remarks)
        for member in self.members:
            out.extend(f"{member.path}: {r}" for r in member.all_remarks())
        return tuple(out)

    def all_diagnostics(self) -> tuple[Diagnostic, ...]:
        out = list(self.diagnostics)
        for member in self.members:
            out.extend(member.all_diagnostics())
        return tuple(out)


@dataclass(frozen=True)
class Dependency:
    """A run-time dependency of a binary on a named part (DT_NEEDED / PE import), shipped or not."""

    path: str  # the binary that needs it
    needs: str  # the name it asks for: "libcudart.so.13"
    component: str  # the catalog name it matches: "cudart"
    vendor: str
    kind: ComponentKind
    shipped: tuple[str, ...]  # virtual paths in the input that provide it (by file name or SONAME)


@dataclass(frozen=True)
class Summary:
    files: int  # regular files inventoried (archive members included)
    bytes: int  # their total size
    diagnostics: int


@dataclass(frozen=True)
class Inventory:
    """All facts of one scan (docs/architecture.md): what ``licscan audit`` reports before any rule judges it."""

    inputs: tuple[str, ...]
    components: tuple[Component, ...]
    device_code: tuple[DeviceImage, ...]
    diagnostics: tuple[Diagnostic, ...]
    summary: Summary
    distributions: tuple[Distribution, ...] = ()
    special_files: tuple[SpecialFile, ...] = ()
    remarks: tuple[str, ...] = ()
    dependencies: tuple[Dependency, ...] = ()

    @property
    def complete(self) -> bool:
        """False when an input could not be read fully (exit 3, fail closed)."""
        return not self.diagnostics


def to_json(value: Any) -> Any:
    """Plain-JSON form of a facts value: enums by value, tuples as lists, dataclasses as objects."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, ToolkitRange):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


__all__ = [
    "GPU_LAYER_KINDS",
    "Component",
    "ComponentKind",
    "Compression",
    "Container",
    "Dependency",
    "DeviceImage",
    "Diagnostic",
    "DiagnosticKind",
    "ElfFacts",
    "FileFacts",
    "FileFormat",
    "ImageKind",
    "Inventory",
    "PeFacts",
    "PeVersionInfo",
    "Producer",
    "PtxHeader",
    "Summary",
    "ToolInfo",
    "ToolkitRange",
    "WrapperCheck",
    "to_json",
]
