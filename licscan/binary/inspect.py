"""Everything licscan can tell about one file: identify it, then read what its format points at (docs/binary-formats.md §10).

``inspect_file`` maps the file read-only and never writes, executes or follows anything. Device code comes from
the dedicated sections (``.nv_fatbin``, ``__nv_relfatbin``; PE ``.nv_fatb``, ``__nv_rel``) and from a validated
magic scan of the other non-executable data sections, where NVIDIA's own CUPTI keeps fatbins (docs/binary-formats.md §1.6).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import replace

from licscan.binary import archive, budget, fatbin, images, ptx, readlog, toolkit
from licscan.binary import cubin as cubin_reader
from licscan.binary.elf import ElfView, gnu_build_id, read_elf
from licscan.binary.errors import FormatError
from licscan.binary.identify import SNIFF_SIZE, identify
from licscan.binary.images import Limits, Slot
from licscan.binary.paged import PagedMap
from licscan.model import (
    Compression,
    Container,
    DeviceImage,
    Diagnostic,
    DiagnosticKind,
    ElfFacts,
    FileFacts,
    FileFormat,
    ImageKind,
    PeFacts,
    WrapperCheck,
)

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


def _scannable(name: str) -> bool:
    return name not in METADATA_SECTIONS and name not in WRAPPER_SECTIONS
WRAPPER_MAGIC = 0x466243B1  # __fatBinC_Wrapper_t.magic
_WRAPPER = struct.Struct("<IIQQ")


def inspect_file(path: str, display: str | None = None, limits: Limits = Limits(), *,
                 want_hash: bool = False) -> FileFacts:
    """Inspect the file at ``path``; ``display`` is the (virtual) path to report (default: ``path``)."""
    display = path if display is None else display
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return FileFacts(display, FileFormat.UNKNOWN, 0)
            # PagedMap: the magic scans over data sections drop the pages they passed (resident memory stays bounded)
            with PagedMap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                if hasattr(mmap, "MADV_RANDOM"):
                    # Headers are read scattered over the file: no read-ahead, so only touched pages are read.
                    buf.madvise(mmap.MADV_RANDOM)
                with readlog.reading() as log, budget.file_budget(limits.max_file_seconds):
                    facts = inspect_buffer(buf, display, limits, want_hash=want_hash)
                return replace(facts, bytes_read=log.total())
    except OSError as error:
        return FileFacts(display, FileFormat.UNKNOWN, 0,
                         diagnostics=(Diagnostic(display, DiagnosticKind.UNREADABLE, f"cannot read: {error.strerror}"),))


def inspect_buffer(buf, display: str, limits: Limits = Limits(), *, start: int = 0, size: int | None = None,
                   want_hash: bool = False, depth: int = 0) -> FileFacts:
    """Inspect ``buf[start:start+size]`` (a file mapping, or an archive member inside one)."""
    size = len(buf) - start if size is None else size
    head = bytes(buf[start : start + min(size, 4096)])
    kind = identify(head)
    if kind is FileFormat.UNKNOWN and size > len(head):
        # A long comment block before ".version", or a PE header far into the file: look further.
        head = bytes(buf[start : start + min(size, SNIFF_SIZE)])
        kind = identify(head)
    readlog.record(start, len(head))
    reader = _READERS.get(kind)
    if reader is None:
        return FileFacts(display, kind, size)
    try:
        with budget.file_budget(limits.max_file_seconds):
            facts = reader(buf, display, limits, start, size, want_hash, depth)
    except FormatError as error:
        offset = None if error.offset is None else start + error.offset
        diag = Diagnostic(display, error.kind, f"{kind.value} file does not parse: {error.reason}", offset)
        return FileFacts(display, kind, size, diagnostics=(diag,))
    except Exception as error:  # noqa: BLE001
        # A reader bug on hostile input must not crash the scan or hide the file: it is reported, never skipped.
        error.__traceback__ = None  # frames may hold memoryviews of the file mapping
        diag = Diagnostic(display, DiagnosticKind.MALFORMED,
                          f"{kind.value} file could not be read (internal error {type(error).__name__}: {error})",
                          None)
        return FileFacts(display, kind, size, diagnostics=(diag,))
    return facts


def _scan_region(buf, path: str, container: Container, lo: int, hi: int, base: int, limits: Limits, *,
                 dedicated: bool) -> tuple[list[Slot], list[Diagnostic], list[int]]:
    """Fatbins in ``buf[lo:hi]``. In a dedicated section a fatbin that does not validate is a diagnostic; in other
    data a magic that does not validate is an ordinary false positive."""
    slots: list[Slot] = []
    diagnostics: list[Diagnostic] = []
    starts: list[int] = []
    for found in fatbin.scan(buf, lo, hi, max_entries=limits.max_entries_per_fatbin, partial=dedicated):
        if isinstance(found, fatbin.ScanError):
            if dedicated:
                error = found.error
                diagnostics.append(Diagnostic(path, error.kind, f"fatbin in {container.value}: {error.reason}",
                                              None if error.offset is None else base + error.offset))
            continue
        starts.append(found.offset)
        readlog.record(found.offset, fatbin.OUTER_HEADER_SIZE)
        slots.extend(images.fatbin_slots(found, path, container, base))
        # The kernel maps cached neighbours of every touched page ("fault-around"): unmap this fatbin's pages
        # again so that resident memory stays bounded on files with hundreds of MB of device code.
        images.release_pages(buf, found.offset, found.end)
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


def _searched(name: str, data_section: bool) -> bool:
    """Whether a section is searched for fatbins: the dedicated sections, and data sections other than loader
    metadata."""
    return name in DEVICE_SECTIONS or (data_section and _scannable(name))


def _scan_section(buf, display: str, name: str, data_section: bool, lo: int, hi: int, limits: Limits,
                  slots: list[Slot], diagnostics: list[Diagnostic], fatbin_starts: set[int]) -> None:
    """Fatbins of one ELF/PE section: the dedicated sections strictly, other data sections by validated magic scan
    (where CUPTI keeps them), code and loader metadata not at all."""
    if not _searched(name, data_section):
        return
    container = DEVICE_SECTIONS.get(name)
    if container is not None:
        found, diags, starts = _scan_region(buf, display, container, lo, hi, 0, limits, dedicated=True)
    else:
        container = Container.RODATA if name.startswith(RODATA_SECTIONS) else Container.EMBEDDED
        found, diags, starts = _scan_region(buf, display, container, lo, hi, 0, limits, dedicated=False)
        readlog.record(lo, hi - lo)
    slots.extend(found)
    diagnostics.extend(diags)
    fatbin_starts.update(starts)
    images.release_pages(buf, lo, hi)  # the magic scan touched every page of the section: unmap them again


def _read_elf(buf, display, limits, start, size, want_hash, depth) -> FileFacts:
    view = read_elf(buf, start, size)
    slots: list[Slot] = []
    diagnostics: list[Diagnostic] = []
    fatbin_starts: set[int] = set()  # absolute offset of each fatbin
    end = start + size
    sections = [s for s in view.sections if s.has_bytes and s.size]
    cut = False
    for n, section in enumerate(sections):
        if budget.expired():
            left = [s for s in sections[n:] if _searched(s.name, _elf_data_section(s))]
            if left:
                diagnostics.append(_unscanned(display, left))
                cut = True
            sections = sections[:n]
            break
        lo, hi = start + section.offset, start + section.offset + section.size
        if hi > end:
            diagnostics.append(Diagnostic(display, DiagnosticKind.TRUNCATED,
                                          f"section {section.name} runs past the end of the file", section.offset))
            hi = end
        if lo >= hi:
            continue
        _scan_section(buf, display, section.name, _elf_data_section(section), lo, hi, limits, slots, diagnostics,
                      fatbin_starts)
    if not view.sections:
        # No section header table (stripped of it, or never had one): every byte may hold a fatbin.
        found, diags, starts = _scan_region(buf, display, Container.EMBEDDED, start, end, 0, limits, dedicated=False)
        slots.extend(found)
        diagnostics.extend(diags)
        readlog.record(start, size)
    found_images, remarks, image_diags = images.resolve(buf, slots, limits, want_hash=want_hash)
    diagnostics.extend(image_diags)
    if budget.expired() and sections:
        diagnostics.append(Diagnostic(display, DiagnosticKind.LIMIT,
                                      f"{budget.describe()}: not searched for AMD code objects", None))
        sections = []
    amd_images, amd_diags = _amd_images(buf, display, sections, start, end, want_hash)
    found_images = list(found_images) + amd_images
    diagnostics.extend(amd_diags)
    # With sections left unscanned, wrappers pointing at them prove nothing: no cross-check then.
    wrappers = None if cut else _elf_wrappers(buf, view, start, fatbin_starts)
    diagnostics.extend(_wrapper_diagnostics(display, wrappers))
    elf = ElfFacts(
        elf_type=view.e_type, machine=view.machine_name, soname=view.soname, needed=view.needed,
        runpath=view.runpath, rpath=view.rpath, has_symtab=view.section(".symtab") is not None,
        build_id=gnu_build_id(view), sections=tuple(s.name for s in view.sections))
    return FileFacts(display, FileFormat.ELF, size, elf=elf, device_code=tuple(found_images), wrappers=wrappers,
                     remarks=tuple(remarks), diagnostics=tuple(diagnostics))


def _elf_data_section(section) -> bool:
    return section.is_data


def _unscanned(display: str, sections) -> Diagnostic:
    names = ", ".join(s.name or "(unnamed)" for s in sections[:8]) + (", ..." if len(sections) > 8 else "")
    return Diagnostic(display, DiagnosticKind.LIMIT,
                      f"{budget.describe()}: {len(sections)} sections not scanned for device code ({names})", None)


def _amd_images(buf, display, sections, start, end, want_hash):
    """AMD code objects (amdgpu.py): the ``.hip_fatbin`` section, and offload bundles / CCOB anywhere in the other
    allocated data sections (docs/layers.md; https://clang.llvm.org/docs/ClangOffloadBundler.html)."""
    from licscan.binary import amdgpu

    out: list[DeviceImage] = []
    diags: list[Diagnostic] = []
    for section in sections:
        lo, hi = start + section.offset, min(start + section.offset + section.size, end)
        if section.name == amdgpu.HIP_FATBIN_SECTION:
            container, dedicated = Container.HIP_FATBIN, True
        elif section.is_data and _scannable(section.name) and section.name not in DEVICE_SECTIONS:
            container, dedicated = Container.OFFLOAD_BUNDLE, False
        else:
            continue
        found, found_diags = amdgpu.scan_region(buf, display, lo, hi, container, dedicated=dedicated,
                                                want_hash=want_hash)
        out.extend(found)
        diags.extend(found_diags)
        images.release_pages(buf, lo, hi)  # the magic scan touched every page of the section: unmap them again
    return out, diags


def _read_hsaco(buf, display, limits, start, size, want_hash, depth) -> FileFacts:
    """A standalone AMD code object (EM_AMDGPU): one ``hsaco`` image, its target from ``e_flags``."""
    from licscan.binary import amdgpu

    image = amdgpu.image_from_bytes(bytes(buf[start : start + min(size, 4096)]), display, Container.STANDALONE,
                                    None, entry_offset=start, size=size)
    if image is not None and want_hash:
        import hashlib

        image = replace(image, sha256=hashlib.sha256(bytes(buf[start : start + size])).hexdigest())
    return FileFacts(display, FileFormat.HSACO, size, device_code=(image,) if image else ())


def _check_wrappers(buf, lo: int, hi: int, to_offset, fatbin_offsets: set[int]) -> WrapperCheck:
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


def _wrapper_diagnostics(display: str, wrappers: WrapperCheck | None) -> list[Diagnostic]:
    if wrappers is None:
        return []
    dangling = wrappers.wrappers - wrappers.resolved - wrappers.unresolved
    if dangling <= 0:
        return []
    return [Diagnostic(display, DiagnosticKind.MALFORMED,
                       f"{dangling} of {wrappers.wrappers} fatbin wrappers point where no fatbin was found")]


def _elf_wrappers(buf, view: ElfView, start: int, fatbin_offsets: set[int]) -> WrapperCheck | None:
    section = next((view.section(name) for name in WRAPPER_SECTIONS if view.section(name)), None)
    if section is None or not section.has_bytes:
        return None

    def to_offset(address: int) -> int | None:
        for s in view.sections:
            if s.addr and s.has_bytes and s.addr <= address < s.addr + s.size:
                return start + s.offset + (address - s.addr)
        return None

    return _check_wrappers(buf, start + section.offset, start + section.offset + section.size, to_offset,
                           fatbin_offsets)


def _pe_wrappers(buf, view, start: int, fatbin_offsets: set[int]) -> WrapperCheck | None:
    """PE wrappers hold absolute VAs: "file offset = VA - ImageBase - section.VirtualAddress +
    section.PointerToRawData" (docs/binary-formats.md §2.4)."""
    section = next((s for s in view.sections if s.name in WRAPPER_SECTIONS and s.has_bytes), None)
    if section is None:
        return None

    def to_offset(address: int) -> int | None:
        rva = address - view.image_base
        for s in view.sections:
            if s.has_bytes and s.virtual_address <= rva < s.virtual_address + s.size:
                return start + s.offset + (rva - s.virtual_address)
        return None

    return _check_wrappers(buf, start + section.offset, start + section.offset + section.size, to_offset,
                           fatbin_offsets)


def _read_fatbin(buf, display, limits, start, size, want_hash, depth) -> FileFacts:
    slots, diagnostics, _ = _scan_region(buf, display, Container.STANDALONE, start, start + size, 0, limits,
                                         dedicated=True)
    found, remarks, diags = images.resolve(buf, slots, limits, want_hash=want_hash)
    return FileFacts(display, FileFormat.FATBIN, size, device_code=tuple(found), remarks=tuple(remarks),
                     diagnostics=tuple(diagnostics + diags))


def _read_cubin(buf, display, limits, start, size, want_hash, depth) -> FileFacts:
    touched: list[tuple[int, int]] = []
    facts = cubin_reader.from_image(buf, start, size, touched)
    for offset, length in touched:
        readlog.record(offset, length)
    arch = facts.arch
    sha = None
    if want_hash:
        import hashlib

        image_bytes = bytes(buf[start : start + size])
        sha = hashlib.sha256(image_bytes[: cubin_reader.image_extent(image_bytes)]).hexdigest()
    image = DeviceImage(
        path=display, container=Container.STANDALONE, kind=ImageKind.CUBIN, arch=arch, arch_full=arch,
        ptx_isa=None, toolkit=toolkit.for_cubin(facts, arch), compression=Compression.NONE, size=size,
        uncompressed_size=None, producer=images._producer(facts.tool.tool) if facts.tool else None, tool=facts.tool,
        linked_from=facts.inputs, cubin_abi=facts.abi, virtual_arch=f"sm_{facts.virtual_sm}" if facts.virtual_sm else None, debug=facts.debug,
        entry_offset=start, sha256=sha)
    return FileFacts(display, FileFormat.CUBIN, size, device_code=(image,))


def _read_ptx(buf, display, limits, start, size, want_hash, depth) -> FileFacts:
    text = bytes(buf[start : start + min(size, ptx.HEAD_LIMIT)])
    header = ptx.parse_header(text)
    arch = ptx.cuobjdump_arch(header.target)
    sha = None
    if want_hash:
        import hashlib

        sha = hashlib.sha256(bytes(buf[start : start + size]).split(b"\0", 1)[0]).hexdigest()
    image = DeviceImage(
        path=display, container=Container.STANDALONE, kind=ImageKind.PTX, arch=arch, arch_full=arch,
        ptx_isa=header.isa, toolkit=toolkit.for_ptx(header.isa, arch, header), compression=Compression.NONE,
        size=size, uncompressed_size=None, debug="debug" in header.target_options, entry_offset=start, sha256=sha)
    return FileFacts(display, FileFormat.PTX, size, device_code=(image,), ptx_header=header)


def _read_ar(buf, display, limits, start, size, want_hash, depth) -> FileFacts:
    members: list[FileFacts] = []
    diagnostics: list[Diagnostic] = []
    if depth >= limits.max_archive_depth:
        return FileFacts(display, FileFormat.AR, size, diagnostics=(Diagnostic(
            display, DiagnosticKind.LIMIT, f"archive nested deeper than {limits.max_archive_depth} levels", start),))
    try:
        for count, member in enumerate(archive.members(buf, start, start + size)):
            member_path = f"{display}!/{member.name}"
            if count >= limits.max_ar_members:
                diagnostics.append(Diagnostic(display, DiagnosticKind.LIMIT,
                                              f"more than {limits.max_ar_members} archive members: members from "
                                              f"{member.name!r} (offset {member.offset:#x}) on were not read",
                                              member.offset))
                break
            if budget.expired():
                diagnostics.append(Diagnostic(display, DiagnosticKind.LIMIT,
                                              f"{budget.describe()}: members from {member.name!r} (offset "
                                              f"{member.offset:#x}) on were not read", member.offset))
                break
            members.append(inspect_buffer(buf, member_path, limits, start=member.offset, size=member.size,
                                          want_hash=want_hash, depth=depth + 1))
    except FormatError as error:
        diagnostics.append(Diagnostic(display, error.kind, f"archive: {error.reason}",
                                      error.offset))
    return FileFacts(display, FileFormat.AR, size, members=tuple(members), diagnostics=tuple(diagnostics))


def _read_pe(buf, display, limits, start, size, want_hash, depth) -> FileFacts:
    """A PE image: headers, section table and import names (pe.py), then the sections that can hold device code."""
    from licscan.binary.pe import read_pe

    return _read_sections(buf, display, limits, start, size, want_hash, read_pe(buf, start, size), FileFormat.PE)


def _read_coff(buf, display, limits, start, size, want_hash, depth) -> FileFacts:
    """A COFF object (a member of a Windows ``.lib``): NVIDIA's ``cudadevrt.lib`` keeps its device code in
    ``__nv_relfatbin`` sections of its objects, as ``libcudadevrt.a``'s ELF objects do."""
    from licscan.binary.pe import read_coff

    return _read_sections(buf, display, limits, start, size, want_hash, read_coff(buf, start, size), FileFormat.COFF)


def _read_sections(buf, display, limits, start, size, want_hash, view, fmt: FileFormat) -> FileFacts:
    from licscan.binary.pe import IMAGE_SCN_LNK_INFO

    readlog.record(start, 4096)
    fatbin_starts: set[int] = set()
    slots: list[Slot] = []
    diagnostics: list[Diagnostic] = []
    sections = [s for s in view.sections if s.has_bytes and not s.characteristics & IMAGE_SCN_LNK_INFO]
    cut = False
    for n, section in enumerate(sections):
        if budget.expired():
            left = [s for s in sections[n:] if _searched(s.name, not s.is_exec)]
            if left:
                diagnostics.append(_unscanned(display, left))
                cut = True
            sections = sections[:n]
            break
        lo, hi = start + section.offset, min(start + section.offset + section.size, start + size)
        if section.offset + section.size > size:
            diagnostics.append(Diagnostic(display, DiagnosticKind.TRUNCATED,
                                          f"section {section.name} runs past the end of the file",
                                          start + section.offset))
        if lo >= hi:
            continue
        _scan_section(buf, display, section.name, not section.is_exec, lo, hi, limits, slots, diagnostics,
                      fatbin_starts)
    wrappers = None if cut or view.is_object else _pe_wrappers(buf, view, start, fatbin_starts)
    diagnostics.extend(_wrapper_diagnostics(display, wrappers))
    found_images, remarks, image_diags = images.resolve(buf, slots, limits, want_hash=want_hash)
    diagnostics.extend(image_diags)
    if budget.expired() and sections:
        diagnostics.append(Diagnostic(display, DiagnosticKind.LIMIT,
                                      f"{budget.describe()}: not searched for AMD code objects", None))
        sections = []
    amd, amd_diags = _pe_amd_images(buf, display, sections, start, start + size, want_hash)
    diagnostics.extend(amd_diags)
    pe = PeFacts(view.machine, view.imports, view.delay_imports, tuple(s.name for s in view.sections))
    return FileFacts(display, fmt, size, device_code=tuple(found_images) + tuple(amd), pe=pe,
                     remarks=tuple(remarks), wrappers=wrappers, diagnostics=tuple(diagnostics))


def _pe_amd_images(buf, display, sections, start, end, want_hash):
    """AMD code objects of a PE image or COFF object: ``.hip_fat`` (``.hip_fatbin`` cut to eight characters, as the
    fatbin sections are) and ``.hip_fatbin`` strictly, offload bundles in the other data sections by validated
    magic scan."""
    from licscan.binary import amdgpu

    out: list[DeviceImage] = []
    diags: list[Diagnostic] = []
    for section in sections:
        lo, hi = start + section.offset, min(start + section.offset + section.size, end)
        if section.name in (amdgpu.HIP_FATBIN_SECTION, amdgpu.HIP_FATBIN_SECTION[:8]):
            container, dedicated = Container.HIP_FATBIN, True
        elif not section.is_exec and _scannable(section.name) and section.name not in DEVICE_SECTIONS:
            container, dedicated = Container.OFFLOAD_BUNDLE, False
        else:
            continue
        if lo >= hi:
            continue
        found, found_diags = amdgpu.scan_region(buf, display, lo, hi, container, dedicated=dedicated,
                                                want_hash=want_hash)
        out.extend(found)
        diags.extend(found_diags)
    return out, diags


_READERS = {
    FileFormat.ELF: _read_elf,
    FileFormat.FATBIN: _read_fatbin,
    FileFormat.CUBIN: _read_cubin,
    FileFormat.PTX: _read_ptx,
    FileFormat.AR: _read_ar,
    FileFormat.PE: _read_pe,
    FileFormat.COFF: _read_coff,
    FileFormat.HSACO: _read_hsaco,
}
