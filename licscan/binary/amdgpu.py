"""AMD GPU code objects (https://llvm.org/docs/AMDGPUUsage.html): HSACO ELF files, Clang offload bundles and compressed
(``CCOB``) bundles, in a host ELF's ``.hip_fatbin`` section or anywhere in its data sections.

* HSACO: ELF with ``e_machine = EM_AMDGPU = 224``, ``EI_OSABI = ELFOSABI_AMDGPU_HSA = 64``, ``EI_ABIVERSION``
  2/3/4 = code object v4/v5/v6; ``e_flags`` holds ``EF_AMDGPU_MACH`` (the gfx processor, table in
  rules/catalog/amdgpu.yaml) and the xnack / sramecc feature fields. The target id is spelled as LLVM spells it:
  ``gfx90a:xnack-``, ``gfx90a:sramecc+:xnack-`` (features sorted; "any" and "unsupported" are not written).
* Uncompressed bundle (https://clang.llvm.org/docs/ClangOffloadBundler.html): ``__CLANG_OFFLOAD_BUNDLE__`` (24 bytes), ``u64
  numBundles``, then per entry ``u64 offset`` (from the bundle start), ``u64 size``, ``u64 tripleSize``, triple
  (``hipv4-amdgcn-amd-amdhsa--gfx90a:xnack-``, ``host-x86_64-unknown-linux-gnu``).
* Compressed bundle: ``CCOB``, ``u16 version``, ``u16 method`` (llvm::compression::Format: 0 zlib, 1 zstd), then
  v1 ``u32 uncompressed size``; v2 ``u32 total size, u32 uncompressed size``; v3 ``u64 total size, u64
  uncompressed size``; then ``u64`` truncated MD5, then the compressed uncompressed-bundle.

The magic alone is never trusted: ``libamdhip64.so`` holds ``__CLANG_OFFLOAD_BUNDLE__`` as a plain string whose
"entry count" reads 4.2e18. A bundle is reported only when its count is sane, every
entry lies inside the region and every triple has the offload-kind syntax.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from licscan.binary.buffer import Buffer
from licscan.binary.errors import FormatError
from licscan.binary.probe import Finder
from licscan.knowledge import catalog_table
from licscan.model import Compression, Container, DeviceImage, Diagnostic, ImageKind

EM_AMDGPU = 224
BUNDLE_MAGIC = b"__CLANG_OFFLOAD_BUNDLE__"
CCOB_MAGIC = b"CCOB"
SPIRV_MAGIC = b"\x03\x02\x23\x07"  # 0x07230203 little-endian
HIP_FATBIN_SECTION = ".hip_fatbin"
MAX_ENTRIES = 4096
MAX_DECOMPRESSED = 512 << 20  # bytes a CCOB bundle may decompress to before it is reported as a LIMIT
_TRIPLE = re.compile(r"^(?:host|hip|hipv4|openmp|hip-|sycl|fpga)[a-z0-9]*-[A-Za-z0-9_.:+-]*$")


@dataclass(frozen=True)
class BundleEntry:
    triple: str
    offset: int  # from the start of the bundle
    size: int


@dataclass(frozen=True)
class AmdTables:
    mach: dict[int, str]
    abi_to_co: dict[int, int]


@functools.cache
def tables() -> AmdTables:
    data = catalog_table("amdgpu")
    return AmdTables({int(k, 0) if isinstance(k, str) else int(k): v for k, v in data["mach"].items()},
                     {int(k): int(v) for k, v in data["code_object_versions"].items()})


def target_id(e_flags: int, abi_version: int) -> str:
    """``gfx90a:xnack-`` from an HSACO's ``e_flags`` and ``EI_ABIVERSION``."""
    mach = tables().mach.get(e_flags & 0xFF, f"gfx-unknown-{e_flags & 0xFF:#x}")
    co = tables().abi_to_co.get(abi_version, 0)
    features = []
    if co >= 4:
        for name, mask, shift in (("sramecc", 0xC00, 10), ("xnack", 0x300, 8)):
            state = (e_flags & mask) >> shift
            if state == 2:
                features.append(f"{name}-")
            elif state == 3:
                features.append(f"{name}+")
    elif co == 3:
        for name, bit in (("sramecc", 0x200), ("xnack", 0x100)):
            features.append(f"{name}{'+' if e_flags & bit else '-'}")
    return ":".join([mach] + features)


def _elf_header(image: bytes) -> tuple[int, int, int] | None:
    """(e_machine, e_flags, EI_ABIVERSION) of an ELF image, or None."""
    if len(image) < 52 or image[:4] != b"\x7fELF":
        return None
    little = image[5] == 1
    end = "<" if little else ">"
    (machine,) = struct.unpack_from(end + "H", image, 18)
    flags_at = 0x30 if image[4] == 2 else 0x24
    if len(image) < flags_at + 4:
        return None
    (flags,) = struct.unpack_from(end + "I", image, flags_at)
    return machine, flags, image[8]


def parse_bundle(buf: Buffer, start: int, end: int) -> tuple[list[BundleEntry], int]:
    """Entries of the uncompressed bundle at ``buf[start:]`` (validated) and the bundle's extent in bytes."""
    if end - start < 32 or bytes(buf[start : start + 24]) != BUNDLE_MAGIC:
        raise FormatError(0, "no offload bundle magic")
    (count,) = struct.unpack_from("<Q", buf, start + 24)
    if count == 0 or count > MAX_ENTRIES:
        raise FormatError(24, f"implausible offload bundle entry count {count}")
    pos = start + 32
    entries = []
    extent = 32
    for _ in range(count):
        if pos + 24 > end:
            raise FormatError(pos - start, "offload bundle entry table runs past its region", truncated=True)
        offset, size, tsize = struct.unpack_from("<QQQ", buf, pos)
        if tsize == 0 or tsize > 512 or pos + 24 + tsize > end:
            raise FormatError(pos - start, f"implausible triple size {tsize}")
        triple = bytes(buf[pos + 24 : pos + 24 + tsize]).decode("ascii", "replace")
        if not _TRIPLE.match(triple):
            raise FormatError(pos - start, f"not an offload triple: {triple[:60]!r}")
        if offset + size > end - start:
            raise FormatError(pos - start, f"entry {triple} runs past its region", truncated=True)
        entries.append(BundleEntry(triple, offset, size))
        extent = max(extent, offset + size)
        pos += 24 + tsize
    extent = max(extent, pos - start)
    return entries, extent


@dataclass(frozen=True)
class CcobHeader:
    version: int
    method: str  # "zlib" / "zstd"
    total_size: int | None
    uncompressed_size: int
    hash: int
    header_size: int


def parse_ccob(buf: Buffer, start: int, end: int) -> CcobHeader:
    if end - start < 20 or bytes(buf[start : start + 4]) != CCOB_MAGIC:
        raise FormatError(0, "no CCOB magic")
    version, method = struct.unpack_from("<HH", buf, start + 4)
    if method not in (0, 1):
        raise FormatError(6, f"unknown CCOB compression method {method}")
    if version == 1:
        (usize, digest), total, hsize = struct.unpack_from("<IQ", buf, start + 8), None, 20
    elif version == 2:
        total, usize, digest = struct.unpack_from("<IIQ", buf, start + 8)
        hsize = 24
    elif version == 3:
        if end - start < 32:
            raise FormatError(0, "CCOB v3 header truncated", truncated=True)
        total, usize, digest = struct.unpack_from("<QQQ", buf, start + 8)
        hsize = 32
    else:
        raise FormatError(4, f"unknown CCOB version {version}")
    if total is not None and (total < hsize or start + total > end):
        raise FormatError(8, f"CCOB total size {total} runs past its region", truncated=True)
    return CcobHeader(version, "zlib" if method == 0 else "zstd", total, usize, digest, hsize)


def decompress_ccob(buf: Buffer, start: int, end: int, header: CcobHeader, limit: int = MAX_DECOMPRESSED) -> bytes:
    if header.uncompressed_size > limit:
        raise FormatError(0, f"CCOB bundle declares {header.uncompressed_size} bytes, over the {limit} limit",
                          limit=True)
    stop = start + header.total_size if header.total_size else end
    payload = bytes(buf[start + header.header_size : stop])
    try:
        if header.method == "zstd":
            import zstandard

            out = zstandard.ZstdDecompressor().decompressobj().decompress(payload)
        else:
            import zlib

            d = zlib.decompressobj()
            out = d.decompress(payload, header.uncompressed_size + 1)
    except Exception as error:  # noqa: BLE001
        raise FormatError(header.header_size, f"CCOB {header.method} payload does not decode: {error}",
                          decompression=True) from None
    if len(out) != header.uncompressed_size:
        raise FormatError(header.header_size, f"CCOB payload decodes to {len(out)} bytes, header says "
                                              f"{header.uncompressed_size}", truncated=True)
    return out


def image_from_bytes(image: bytes, path: str, container: Container, triple: str | None, *, compression: Compression = Compression.NONE,
                     bundle_offset: int | None = None, entry_offset: int | None = None, size: int | None = None,
                     uncompressed_size: int | None = None, want_hash: bool = False) -> DeviceImage | None:
    """A DeviceImage for one AMD (HSACO) or SPIR-V entry; None for empty host entries and unknown content."""
    header = _elf_header(image)
    if header is not None and header[0] == EM_AMDGPU:
        arch, kind = target_id(header[1], header[2]), ImageKind.HSACO
    elif image[:4] == SPIRV_MAGIC:
        arch, kind = (triple.split("-", 1)[-1] if triple else "spirv"), ImageKind.SPIRV
    else:
        return None
    return DeviceImage(
        path=path, container=container, kind=kind, arch=arch, arch_full=arch, ptx_isa=None, toolkit=None,
        compression=compression, size=len(image) if size is None else size, uncompressed_size=uncompressed_size,
        identifier=triple, fatbin_offset=bundle_offset, entry_offset=entry_offset,
        sha256=hashlib.sha256(image).hexdigest() if want_hash else None)


_COMPRESSION = {"zlib": Compression.ZLIB, "zstd": Compression.ZSTD}


def _finders(buf: Buffer, lo: int, hi: int, known: tuple[Sequence[int] | None, Sequence[int] | None] | None,
             ) -> tuple[Callable[[int], int], Callable[[int], int]]:
    """``find`` of the bundle and the CCOB magic in ``buf[lo:hi]`` from a rising position. In a data section
    (``known`` given) the scan reads every byte anyway: the offsets of both magics come from one pass
    (:class:`licscan.binary.probe.Finder`; ``known``: those the section's magic pass kept, None where it kept none),
    not from searches started again after every candidate; in ``.hip_fatbin`` the search skips each bundle's
    body."""
    if known is not None:
        return Finder(buf, BUNDLE_MAGIC, lo, hi, known[0]).find, Finder(buf, CCOB_MAGIC, lo, hi, known[1]).find
    return (lambda pos: buf.find(BUNDLE_MAGIC, pos, hi)), (lambda pos: buf.find(CCOB_MAGIC, pos, hi))


def scan_region(buf: Buffer, path: str, lo: int, hi: int, container: Container, *, dedicated: bool,
                want_hash: bool = False, known: tuple[Sequence[int] | None, Sequence[int] | None] = (None, None),
                ) -> tuple[list[DeviceImage], list[Diagnostic]]:
    """AMD/SPIR-V images of every valid (compressed) offload bundle in ``buf[lo:hi]``. In a dedicated section
    (``.hip_fatbin``) a bundle that does not validate is a diagnostic; elsewhere it is an ordinary false positive.
    ``known``: the offsets of the bundle and CCOB magics in a lenient region when a pass over it found them."""
    images: list[DeviceImage] = []
    diagnostics: list[Diagnostic] = []
    find_bundle, find_ccob = _finders(buf, lo, hi, None if dedicated else known)
    pos = lo
    while pos < hi:
        a = find_bundle(pos)
        b = find_ccob(pos)
        candidates = [x for x in (a, b) if x >= 0]
        if not candidates:
            break
        at = min(candidates)
        try:
            if at == a:
                entries, extent = parse_bundle(buf, at, hi)
                for e in entries:
                    img = image_from_bytes(bytes(buf[at + e.offset : at + e.offset + e.size]), path, container,
                                           e.triple, bundle_offset=at, entry_offset=at + e.offset,
                                           want_hash=want_hash)
                    if img is not None:
                        images.append(img)
            else:
                header = parse_ccob(buf, at, hi)
                raw = decompress_ccob(buf, at, hi, header)
                entries, _ = parse_bundle(raw, 0, len(raw))
                for e in entries:
                    img = image_from_bytes(raw[e.offset : e.offset + e.size], path, container, e.triple,
                                           compression=_COMPRESSION[header.method], bundle_offset=at,
                                           entry_offset=None, size=None, uncompressed_size=e.size,
                                           want_hash=want_hash)
                    if img is not None:
                        images.append(img)
                extent = header.total_size or (hi - at)
            pos = at + max(extent, 4)
        except FormatError as error:
            if dedicated or error.limit:
                diagnostics.append(Diagnostic(path, error.kind, f"AMD offload bundle in {container.value}: {error.reason}",
                                              at + (error.offset or 0)))
            pos = at + 4
    return images, diagnostics


__all__ = ["BundleEntry", "CcobHeader", "decompress_ccob", "image_from_bytes", "parse_bundle", "parse_ccob",
           "scan_region", "target_id"]
