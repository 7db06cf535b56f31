"""Everything licscan can tell about one file: identify it, then read what its format points at (docs/binary-format.md §10).

``inspect_file`` maps the file read-only and never writes, executes or follows anything. Which sections of a host
binary hold device code, and how they are searched, is :mod:`licscan.binary.sections`.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import replace

from licscan.binary import amdgpu, archive, budget, images, ptx, readlog, toolkit
from licscan.binary import cubin as cubin_reader
from licscan.binary.buffer import Buffer, PageDropper
from licscan.binary.elf import ElfView, gnu_build_id, read_elf
from licscan.binary.entry_image import producer_of
from licscan.binary.errors import FormatError
from licscan.binary.identify import SNIFF_SIZE, identify
from licscan.binary.images import Limits
from licscan.binary.paged import file_bytes
from licscan.binary.pe import IMAGE_SCN_LNK_INFO, PeView, read_coff, read_pe
from licscan.binary.peinfo import export_name, version_info
from licscan.binary.sections import (
    WRAPPER_SECTIONS,
    check_wrappers,
    device_images,
    scan_region,
    scan_sections,
    wrapper_diagnostics,
)
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

# A format's reader: (buffer, display path, limits, start, size, want_hash, archive depth) -> facts.
Reader = Callable[[Buffer, str, Limits, int, int, bool, int], FileFacts]


def inspect_file(path: str, display: str | None = None, limits: Limits = Limits(), *,
                 want_hash: bool = False) -> FileFacts:
    """Inspect the file at ``path``; ``display`` is the (virtual) path to report (default: ``path``)."""
    display = path if display is None else display
    try:
        # A small file is read whole; a larger one is mapped (a PagedMap: the magic scans over data sections drop
        # the pages they passed, so resident memory stays bounded), without read-ahead: headers are read scattered
        # over the file, so only touched pages are read.
        with file_bytes(path, random_access=True) as buf:
            return inspect_read(buf, display, limits, want_hash=want_hash)
    except OSError as error:
        return unreadable(display, error)


def inspect_read(buf: Buffer, display: str, limits: Limits = Limits(), *, want_hash: bool = False) -> FileFacts:
    """:func:`inspect_file` of a whole file already read or mapped (:func:`licscan.binary.paged.file_bytes`), for a
    caller that reads the same bytes afterwards (the scan names the file from them: one open, not two)."""
    quick = head_facts(buf, display)
    if quick is not None:
        return quick
    with _collector_paused(), readlog.reading() as log, budget.file_budget(limits.max_file_seconds):
        facts = inspect_buffer(buf, display, limits, want_hash=want_hash)
    return replace(facts, bytes_read=log.total())


def head_facts(buf: Buffer, display: str) -> FileFacts | None:
    """:func:`inspect_read` of a file whose head alone gives its facts -- empty, or of a format no reader reads
    (nine files in ten of an installed environment: sources, headers, data) --, else None (a reader reads it)."""
    if len(buf) == 0:
        return FileFacts(display, FileFormat.UNKNOWN, 0)
    head, kind = _sniff(buf, 0, len(buf))
    return None if kind in _READERS else FileFacts(display, kind, len(buf), bytes_read=len(head))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while one binary is read (``gc.disable``, "if you are sure your
    program does not create reference cycles": the readers build none). Reading a large library allocates tens of
    thousands of short-lived objects (section tuples, fatbin entries, slots, images); every collection during the
    read traversed them, and those that survived one were promoted and counted towards a collection of the whole
    heap (every record of the scan). An audit of the installed environment (--jobs 1, the scan's heap frozen by
    workers.steady_heap): 6 full collections and 0.27-0.30 s of collector time before, 1 and 0.13 s with the pause.
    Left as it was when the collector was already off; when two threads read at once, the one that found it on
    turns it on again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def unreadable(display: str, error: OSError) -> FileFacts:
    """The facts of a file that cannot be opened or read."""
    return FileFacts(display, FileFormat.UNKNOWN, 0,
                     diagnostics=(Diagnostic(display, DiagnosticKind.UNREADABLE, f"cannot read: {error.strerror}"),))


def _sniff(buf: Buffer, start: int, size: int) -> tuple[bytes, FileFormat]:
    """(the head read, the format it shows) of ``buf[start:start+size]``."""
    head = bytes(buf[start : start + min(size, 4096)])
    kind = identify(head)
    if kind is FileFormat.UNKNOWN and size > len(head):
        # A long comment block before ".version", or a PE header far into the file: look further.
        head = bytes(buf[start : start + min(size, SNIFF_SIZE)])
        kind = identify(head)
    return head, kind


def inspect_buffer(buf: Buffer, display: str, limits: Limits = Limits(), *, start: int = 0, size: int | None = None,
                   want_hash: bool = False, depth: int = 0) -> FileFacts:
    """Inspect ``buf[start:start+size]`` (a file mapping, or an archive member inside one)."""
    size = len(buf) - start if size is None else size
    head, kind = _sniff(buf, start, size)
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


def _read_elf(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool,
              depth: int) -> FileFacts:
    view = read_elf(buf, start, size)
    end = start + size
    scan = scan_sections(buf, display, [s for s in view.sections if s.has_bytes and s.size], start, size, limits,
                         (amdgpu.HIP_FATBIN_SECTION,))
    if not view.sections:
        # No section header table (stripped of it, or never had one): every byte may hold a fatbin.
        found, diags, starts = scan_region(buf, display, Container.EMBEDDED, start, end, 0, limits, dedicated=False)
        scan.slots.extend(found)
        scan.diagnostics.extend(diags)
        readlog.record(start, size)
    found_images, remarks, image_diags = device_images(buf, display, scan, limits, want_hash)
    # With sections left unscanned, wrappers pointing at them prove nothing: no cross-check then.
    wrappers = None if scan.cut else _elf_wrappers(buf, view, start, scan.fatbin_starts)
    diagnostics = scan.diagnostics + image_diags + wrapper_diagnostics(display, wrappers)
    elf = ElfFacts(
        elf_type=view.e_type, machine=view.machine_name, soname=view.soname, needed=view.needed,
        runpath=view.runpath, rpath=view.rpath, has_symtab=view.section(".symtab") is not None,
        build_id=gnu_build_id(view), sections=tuple(s.name for s in view.sections))
    return FileFacts(display, FileFormat.ELF, size, elf=elf, device_code=tuple(found_images), wrappers=wrappers,
                     remarks=tuple(remarks), diagnostics=tuple(diagnostics))


def _read_hsaco(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool,
                depth: int) -> FileFacts:
    """A standalone AMD code object (EM_AMDGPU): one ``hsaco`` image, its target from ``e_flags``."""
    image = amdgpu.image_from_bytes(bytes(buf[start : start + min(size, 4096)]), display, Container.STANDALONE,
                                    None, entry_offset=start, size=size)
    if image is not None and want_hash:
        image = replace(image, sha256=hashlib.sha256(bytes(buf[start : start + size])).hexdigest())
    return FileFacts(display, FileFormat.HSACO, size, device_code=(image,) if image else ())


def _elf_wrappers(buf: Buffer, view: ElfView, start: int, fatbin_offsets: set[int]) -> WrapperCheck | None:
    section = next((view.section(name) for name in WRAPPER_SECTIONS if view.section(name)), None)
    if section is None or not section.has_bytes:
        return None

    def to_offset(address: int) -> int | None:
        for s in view.sections:
            if s.addr and s.has_bytes and s.addr <= address < s.addr + s.size:
                return start + s.offset + (address - s.addr)
        return None

    return check_wrappers(buf, start + section.offset, start + section.offset + section.size, to_offset,
                           fatbin_offsets)


def _pe_wrappers(buf: Buffer, view: PeView, start: int, fatbin_offsets: set[int]) -> WrapperCheck | None:
    """PE wrappers hold absolute VAs: "file offset = VA - ImageBase - section.VirtualAddress +
    section.PointerToRawData" (docs/binary-format.md §2.4)."""
    section = next((s for s in view.sections if s.name in WRAPPER_SECTIONS and s.has_bytes), None)
    if section is None:
        return None

    def to_offset(address: int) -> int | None:
        rva = address - view.image_base
        for s in view.sections:
            if s.has_bytes and s.virtual_address <= rva < s.virtual_address + s.size:
                return start + s.offset + (rva - s.virtual_address)
        return None

    return check_wrappers(buf, start + section.offset, start + section.offset + section.size, to_offset,
                           fatbin_offsets)


def _read_fatbin(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool,
                 depth: int) -> FileFacts:
    slots, diagnostics, _ = scan_region(buf, display, Container.STANDALONE, start, start + size, 0, limits,
                                        dedicated=True)
    found, remarks, diags = images.resolve(buf, slots, limits, want_hash=want_hash)
    return FileFacts(display, FileFormat.FATBIN, size, device_code=tuple(found), remarks=tuple(remarks),
                     diagnostics=tuple(diagnostics + diags))


def _read_cubin(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool,
                depth: int) -> FileFacts:
    touched: list[tuple[int, int]] = []
    facts = cubin_reader.from_image(buf, start, size, touched)
    for offset, length in touched:
        readlog.record(offset, length)
    arch = facts.arch
    sha = None
    if want_hash:
        image_bytes = bytes(buf[start : start + size])
        sha = hashlib.sha256(image_bytes[: cubin_reader.image_extent(image_bytes)]).hexdigest()
    image = DeviceImage(
        path=display, container=Container.STANDALONE, kind=ImageKind.CUBIN, arch=arch, arch_full=arch,
        ptx_isa=None, toolkit=toolkit.for_cubin(facts, arch), compression=Compression.NONE, size=size,
        uncompressed_size=None, producer=producer_of(facts.tool.tool) if facts.tool else None, tool=facts.tool,
        linked_from=facts.inputs, cubin_abi=facts.abi,
        virtual_arch=f"sm_{facts.virtual_sm}" if facts.virtual_sm else None, debug=facts.debug, entry_offset=start,
        sha256=sha)
    return FileFacts(display, FileFormat.CUBIN, size, device_code=(image,))


def _read_ptx(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool,
              depth: int) -> FileFacts:
    text = bytes(buf[start : start + min(size, ptx.HEAD_LIMIT)])
    header = ptx.parse_header(text)
    arch = ptx.cuobjdump_arch(header.target)
    sha = None
    if want_hash:
        sha = hashlib.sha256(bytes(buf[start : start + size]).split(b"\0", 1)[0]).hexdigest()
    image = DeviceImage(
        path=display, container=Container.STANDALONE, kind=ImageKind.PTX, arch=arch, arch_full=arch,
        ptx_isa=header.isa, toolkit=toolkit.for_ptx(header.isa, arch, header), compression=Compression.NONE,
        size=size, uncompressed_size=None, debug="debug" in header.target_options, entry_offset=start, sha256=sha)
    return FileFacts(display, FileFormat.PTX, size, device_code=(image,), ptx_header=header)


def _read_ar(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool,
             depth: int) -> FileFacts:
    members: list[FileFacts] = []
    diagnostics: list[Diagnostic] = []
    if depth >= limits.max_archive_depth:
        return FileFacts(display, FileFormat.AR, size, diagnostics=(Diagnostic(
            display, DiagnosticKind.LIMIT, f"archive nested deeper than {limits.max_archive_depth} levels", start),))
    # Members are read in archive order, and the pages of each are dropped behind it (a 704 MB libcublasLt_static.a
    # kept 380 MB of its mapping resident to the end of its scan).
    try:
        with PageDropper(buf) as dropper:
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
                dropper.add(member.offset, member.offset + member.size)
    except FormatError as error:
        diagnostics.append(Diagnostic(display, error.kind, f"archive: {error.reason}", error.offset))
    return FileFacts(display, FileFormat.AR, size, members=tuple(members), diagnostics=tuple(diagnostics))


def _read_pe(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool,
             depth: int) -> FileFacts:
    """A PE image: headers, section table and import names (pe.py), then the sections that can hold device code."""
    return _read_sections(buf, display, limits, start, size, want_hash, read_pe(buf, start, size), FileFormat.PE)


def _read_coff(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool,
               depth: int) -> FileFacts:
    """A COFF object (a member of a Windows ``.lib``): NVIDIA's ``cudadevrt.lib`` keeps its device code in
    ``__nv_relfatbin`` sections of its objects, as ``libcudadevrt.a``'s ELF objects do."""
    return _read_sections(buf, display, limits, start, size, want_hash, read_coff(buf, start, size), FileFormat.COFF)


def _read_sections(buf: Buffer, display: str, limits: Limits, start: int, size: int, want_hash: bool, view: PeView,
                   fmt: FileFormat) -> FileFacts:
    readlog.record(start, 4096)
    sections = [s for s in view.sections if s.has_bytes and not s.characteristics & IMAGE_SCN_LNK_INFO]
    scan = scan_sections(buf, display, sections, start, size, limits,
                         (amdgpu.HIP_FATBIN_SECTION, amdgpu.HIP_FATBIN_SECTION[:8]))
    wrappers = None if scan.cut or view.is_object else _pe_wrappers(buf, view, start, scan.fatbin_starts)
    found, remarks, image_diags = device_images(buf, display, scan, limits, want_hash)
    diagnostics = scan.diagnostics + wrapper_diagnostics(display, wrappers) + image_diags
    image = not view.is_object  # the names an image gives itself: a renamed DLL is still named (identify/observe.py)
    pe = PeFacts(view.machine, view.imports, view.delay_imports, tuple(s.name for s in view.sections),
                 export_name=export_name(buf, view, start, size) if image else None,
                 version_info=version_info(buf, view, start, size) if image else None)
    return FileFacts(display, fmt, size, device_code=tuple(found), pe=pe, remarks=tuple(remarks), wrappers=wrappers,
                     diagnostics=tuple(diagnostics))


_READERS: dict[FileFormat, Reader] = {
    FileFormat.ELF: _read_elf,
    FileFormat.FATBIN: _read_fatbin,
    FileFormat.CUBIN: _read_cubin,
    FileFormat.PTX: _read_ptx,
    FileFormat.AR: _read_ar,
    FileFormat.PE: _read_pe,
    FileFormat.COFF: _read_coff,
    FileFormat.HSACO: _read_hsaco,
}
