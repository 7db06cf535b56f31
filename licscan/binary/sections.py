"""Device code in the sections of a host binary (ELF, PE image, COFF object): which sections are searched, how, and
the cross-check of the fatbin wrappers (docs/binary-format.md, sections "1.6 Finding fatbins", "2.1 ELF", "2.4 PE",
"2.6 AMD code objects").

Device code comes from the dedicated sections (``.nv_fatbin``, ``__nv_relfatbin``; PE ``.nv_fatb``, ``__nv_rel``;
``.hip_fatbin``) and from a validated magic scan of the other non-executable data sections, where NVIDIA's own
CUPTI keeps fatbins (docs/binary-format.md, section "1.6 Finding fatbins"). Code and loader metadata are never
searched.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from licscan.binary import amdgpu, budget, fatbin, images, readlog
from licscan.binary.buffer import Buffer, PageDropper, release_pages
from licscan.binary.entry_image import Slot, fatbin_slots
from licscan.binary.images import Limits
from licscan.binary.probe import STEP, contains_any, occurrence_table
from licscan.model import Container, DeviceImage, Diagnostic, DiagnosticKind, WrapperCheck

# fatbinary_section.h: "#define FATBIN_CONTROL_SECTION_NAME .nvFatBinSegment", "FATBIN_DATA_SECTION_NAME
# .nv_fatbin", "FATBIN_PRELINK_DATA_SECTION_NAME __nv_relfatbin"; PE truncates names to 8 characters.
DEVICE_SECTIONS = {
    ".nv_fatbin": Container.NV_FATBIN,
    "__nv_relfatbin": Container.RELFATBIN,
    ".nv_fatb": Container.NV_FATBIN,
    "__nv_rel": Container.RELFATBIN,
}
WRAPPER_SECTIONS = (".nvFatBinSegment", ".nvFatBi")
RODATA_SECTIONS = (".rodata", ".rdata")
# Data sections that hold compiler or loader metadata, never an application's byte arrays: not scanned.
METADATA_SECTIONS = (".eh_frame", ".eh_frame_hdr", ".gcc_except_table", ".got", ".got.plt", ".comment",
                     ".reloc", ".pdata", ".xdata", ".rsrc", ".edata", ".idata", ".tls", ".CRT")
WRAPPER_MAGIC = 0x466243B1  # __fatBinC_Wrapper_t.magic
# The magics searched in every data section: fatbin (docs/binary-format.md, "1.1 Outer header"), then the AMD
# offload bundle and compressed bundle ("2.6 AMD code objects").
LENIENT_MAGICS = (fatbin.FATBIN_MAGIC_BYTES, amdgpu.BUNDLE_MAGIC, amdgpu.CCOB_MAGIC)
MAX_KEPT_MAGICS = 1 << 16  # AMD magic offsets kept per file between the two scans (a few MB at most)
_WRAPPER = struct.Struct("<IIQQ")


class HostSection(Protocol):
    """A section of a host binary, as elf.Section and pe.PeSection both describe one."""

    @property
    def name(self) -> str: ...

    @property
    def offset(self) -> int: ...  # relative to the start of the image

    @property
    def size(self) -> int: ...

    @property
    def is_data(self) -> bool: ...  # a non-executable data section: searched by validated magic scan


S = TypeVar("S", bound=HostSection)


def scannable(name: str) -> bool:
    return name not in METADATA_SECTIONS and name not in WRAPPER_SECTIONS


def searched(section: HostSection) -> bool:
    """Whether a section is searched for fatbins: the dedicated sections, and data sections other than loader
    metadata."""
    return section.name in DEVICE_SECTIONS or (section.is_data and scannable(section.name))


def scan_region(buf: Buffer, path: str, container: Container, lo: int, hi: int, base: int, limits: Limits, *,
                dedicated: bool, known: Sequence[int] | None = None) -> tuple[list[Slot], list[Diagnostic], list[int]]:
    """Fatbins in ``buf[lo:hi]``. In a dedicated section a fatbin that does not validate is a diagnostic; in other
    data a magic that does not validate is an ordinary false positive, and the magics are found in one pass over the
    region (``known``: their offsets, when the caller's pass found them)."""
    slots: list[Slot] = []
    diagnostics: list[Diagnostic] = []
    starts: list[int] = []
    with PageDropper(buf) as dropper:
        for found in fatbin.scan(buf, lo, hi, max_entries=limits.max_entries_per_fatbin, partial=dedicated,
                                 one_pass=not dedicated, known=known):
            if isinstance(found, fatbin.ScanError):
                if dedicated:
                    error = found.error
                    diagnostics.append(Diagnostic(path, error.kind, f"fatbin in {container.value}: {error.reason}",
                                                  None if error.offset is None else base + error.offset))
                continue
            starts.append(found.offset)
            readlog.record(found.offset, fatbin.OUTER_HEADER_SIZE)
            slots.extend(fatbin_slots(found, path, container, base))
            # The kernel maps cached neighbours of every touched page ("fault-around"): unmap this fatbin's pages
            # again (a window of fatbins at a time) so that resident memory stays bounded on files with hundreds of
            # MB of device code.
            dropper.add(found.offset, found.end)
            if found.error is not None:
                error = found.error
                diagnostics.append(Diagnostic(
                    path, error.kind, f"fatbin at {base + found.offset:#x} in {container.value}: {error.reason}; "
                                        f"{len(found.entries)} entries before the fault were read",
                    None if error.offset is None else base + error.offset))
    if dedicated and not starts and not diagnostics and hi > lo and any(bytes(buf[lo:min(hi, lo + 4096)])):
        diagnostics.append(Diagnostic(path, DiagnosticKind.MALFORMED,
                                      f"{container.value} section holds {hi - lo} bytes but no fatbin", base + lo))
    return slots, diagnostics, starts


@dataclass(frozen=True)
class AmdRegion:
    """A section searched for AMD code objects after the NVIDIA images are resolved: ``.hip_fatbin`` strictly
    (``dedicated``), another data section leniently, with the offsets of the bundle and CCOB magics its magic pass
    found (``known``; None: not kept, searched again)."""

    lo: int
    hi: int
    dedicated: bool
    known: tuple[tuple[int, ...] | None, tuple[int, ...] | None] = (None, None)


@dataclass
class SectionScan(Generic[S]):
    """What searching the sections of one image found."""

    scanned: list[S] = field(default_factory=list)  # the sections searched before the time budget ran out
    slots: list[Slot] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    fatbin_starts: set[int] = field(default_factory=set)  # absolute offset of each fatbin
    cut: bool = False  # the time budget left sections unsearched
    amd: list[AmdRegion] = field(default_factory=list)  # where to look for AMD code objects, in section order
    kept: int = 0  # AMD magic offsets kept in ``amd`` (at most MAX_KEPT_MAGICS)


def scan_sections(buf: Buffer, display: str, sections: Sequence[S], start: int, size: int, limits: Limits,
                  hip_sections: tuple[str, ...] = ()) -> SectionScan[S]:
    """Fatbins of every section of the image at ``buf[start:start+size]``, in section order, until the file's
    time budget runs out (the sections left are named in a ``limit`` diagnostic); the sections to search for AMD
    code objects afterwards (``hip_sections``: the names of the dedicated one)."""
    scan: SectionScan[S] = SectionScan(list(sections))
    for n, section in enumerate(sections):
        lo, hi = start + section.offset, min(start + section.offset + section.size, start + size)
        truncated = section.offset + section.size > size
        search = lo < hi and searched(section)
        hip = lo < hi and section.name in hip_sections
        if not (search or hip or truncated):
            continue  # nothing to do here (code, symbols, metadata): the budget is asked where there is work
        if budget.expired():
            left = [s for s in sections[n:] if searched(s)]
            if left:
                scan.diagnostics.append(_unscanned(display, left))
                scan.cut = True
            scan.scanned = list(sections[:n])
            break
        if truncated:
            scan.diagnostics.append(Diagnostic(display, DiagnosticKind.TRUNCATED,
                                               f"section {section.name} runs past the end of the file",
                                               start + section.offset))
        if search:
            _scan_section(buf, display, section, lo, hi, limits, scan, hip)
        elif hip:
            scan.amd.append(AmdRegion(lo, hi, dedicated=True))
    return scan


def _scan_section(buf: Buffer, display: str, section: HostSection, lo: int, hi: int, limits: Limits,
                  scan: SectionScan[S], hip: bool) -> None:
    """Fatbins of one section: the dedicated sections strictly, other data sections by validated magic scan
    (where CUPTI keeps them); a data section is searched for AMD code objects afterwards (strictly when ``hip``:
    the ``.hip_fatbin`` section)."""
    container = DEVICE_SECTIONS.get(section.name)
    if container is not None:
        found, diags, starts = scan_region(buf, display, container, lo, hi, 0, limits, dedicated=True)
    else:
        # One pass over the section for every magic searched in data (the AMD scan comes after the NVIDIA images
        # are resolved: it gets the offsets of its magics from here, and reads the section again only if too
        # many were found to keep).
        table = _lenient_table(buf, lo, hi, hip)
        if table is None:
            readlog.record(lo, hi - lo)
            release_pages(buf, lo, hi)
            return
        amd = (table[1], table[2])
        kept = sum(len(offsets) for offsets in amd if offsets is not None)
        if hip:
            scan.amd.append(AmdRegion(lo, hi, dedicated=True))
        elif scan.kept + kept <= MAX_KEPT_MAGICS:
            scan.amd.append(AmdRegion(lo, hi, dedicated=False, known=amd))
            scan.kept += kept
        else:
            scan.amd.append(AmdRegion(lo, hi, dedicated=False))
        container = Container.RODATA if section.name.startswith(RODATA_SECTIONS) else Container.EMBEDDED
        found, diags, starts = scan_region(buf, display, container, lo, hi, 0, limits, dedicated=False,
                                           known=table[0])
        readlog.record(lo, hi - lo)
    scan.slots.extend(found)
    scan.diagnostics.extend(diags)
    scan.fatbin_starts.update(starts)
    release_pages(buf, lo, hi)  # the magic scan touched every page of the section: unmap them again


def _lenient_table(buf: Buffer, lo: int, hi: int, hip: bool) -> tuple[tuple[int, ...] | None, ...] | None:
    """The offsets of the :data:`LENIENT_MAGICS` in a data section (:func:`occurrence_table`); None when none of
    them occurs and the section is not ``.hip_fatbin`` (the common case: a relocatable object of a static archive
    has thousands of small data sections, none holding a magic, so neither search has a candidate to validate)."""
    if not hip and hi - lo <= STEP and not contains_any(buf, LENIENT_MAGICS, lo, hi):
        return None  # a small section is searched at once for all three magics
    table = occurrence_table(buf, LENIENT_MAGICS, lo, hi)
    return None if not hip and table == _NONE_FOUND else table


_NONE_FOUND: tuple[tuple[int, ...], ...] = tuple(() for _ in LENIENT_MAGICS)


def _unscanned(display: str, sections: Sequence[HostSection]) -> Diagnostic:
    names = ", ".join(s.name or "(unnamed)" for s in sections[:8]) + (", ..." if len(sections) > 8 else "")
    return Diagnostic(display, DiagnosticKind.LIMIT,
                      f"{budget.describe()}: {len(sections)} sections not scanned for device code ({names})", None)


def device_images(buf: Buffer, display: str, scan: SectionScan[S], limits: Limits, want_hash: bool,
                  ) -> tuple[list[DeviceImage], list[str], list[Diagnostic]]:
    """(images, remarks, diagnostics): the NVIDIA images of the fatbins found, then the AMD code objects of the
    sections searched (unless the time budget is spent by then)."""
    found, remarks, diagnostics = images.resolve(buf, scan.slots, limits, want_hash=want_hash)
    regions = scan.amd
    if budget.expired() and scan.scanned:
        diagnostics.append(Diagnostic(display, DiagnosticKind.LIMIT,
                                      f"{budget.describe()}: not searched for AMD code objects", None))
        regions = []
    amd, amd_diags = _amd_images(buf, display, regions, want_hash)
    return found + amd, remarks, diagnostics + amd_diags


def _amd_images(buf: Buffer, display: str, regions: Sequence[AmdRegion], want_hash: bool,
                ) -> tuple[list[DeviceImage], list[Diagnostic]]:
    """AMD code objects (amdgpu.py): the ``.hip_fatbin`` section (``.hip_fat`` in PE, cut to eight characters as the
    fatbin sections are) strictly, and offload bundles / CCOB anywhere in the other data sections by validated magic
    scan (docs/layers.md; https://clang.llvm.org/docs/ClangOffloadBundler.html)."""
    out: list[DeviceImage] = []
    diags: list[Diagnostic] = []
    for region in regions:
        container = Container.HIP_FATBIN if region.dedicated else Container.OFFLOAD_BUNDLE
        found, found_diags = amdgpu.scan_region(buf, display, region.lo, region.hi, container,
                                                dedicated=region.dedicated, want_hash=want_hash, known=region.known)
        out.extend(found)
        diags.extend(found_diags)
        release_pages(buf, region.lo, region.hi)  # the magic scan touched every page of the section: unmap them
    return out, diags


def check_wrappers(buf: Buffer, lo: int, hi: int, to_offset: Callable[[int], int | None],
                   fatbin_offsets: set[int]) -> WrapperCheck:
    """``__fatBinC_Wrapper_t`` {u32 magic 0x466243B1, u32 version, u64 data, u64 filename_or_fatbins} records in
    ``buf[lo:hi]``: resolve each ``data`` address with ``to_offset`` and look for a fatbin found there."""
    wrappers = resolved = unresolved = 0
    hi = min(hi, len(buf))
    for pos in range(lo, hi - _WRAPPER.size + 1, 8):
        magic, version, data, _names = _WRAPPER.unpack_from(buf, pos)
        if magic != WRAPPER_MAGIC or version not in (1, 2):
            continue
        wrappers += 1
        offset = to_offset(data) if data else None
        if offset is None:
            unresolved += 1  # relocatable object: "the data fields are 0 and patched by .rela.nvFatBinSegment"
        elif offset in fatbin_offsets:
            resolved += 1
    readlog.record(lo, hi - lo)
    return WrapperCheck(wrappers, resolved, unresolved)


def wrapper_diagnostics(display: str, wrappers: WrapperCheck | None) -> list[Diagnostic]:
    if wrappers is None:
        return []
    dangling = wrappers.wrappers - wrappers.resolved - wrappers.unresolved
    if dangling <= 0:
        return []
    return [Diagnostic(display, DiagnosticKind.MALFORMED,
                       f"{dangling} of {wrappers.wrappers} fatbin wrappers point where no fatbin was found")]
