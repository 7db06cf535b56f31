"""Fatbin entries and standalone files -> :class:`DeviceImage` facts, with the toolkit of each image.

Listing needs only entry headers. The toolkit of a cubin needs its ELF header and notes: free for an uncompressed
entry (the pages are touched in place), a decoded prefix for a zstd entry, the whole block for an LZ4 entry. Large
files spread that decoding over worker processes (``jobs``), each reading the same mapping.
"""

from __future__ import annotations

import enum
import functools
import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from licscan.binary import budget, cubin, readlog, toolkit
from licscan.binary.compression import PrefixReader, decompress
from licscan.binary.errors import FormatError
from licscan.binary.fatbin import Entry, Fatbin, Flag
from licscan.model import Compression, Container, DeviceImage, Diagnostic, DiagnosticKind, ImageKind, Producer

PARALLEL_THRESHOLD = 16 << 20  # compressed cubin bytes in one file before worker processes pay off


class NotesMode(enum.Enum):
    """Whether to decode compressed cubins as far as their toolkit notes (``.note.nv.tkinfo``, ``.note.nv.cuinfo``).

    The notes follow ``.strtab``, ``.symtab`` and ``.debug_frame``: about 200 KB into each decoded image, so for
    the 2,975 zstd cubins of libtorch_cuda.so that is 0.6 GB of decoding. ``auto`` decodes them unless the file's
    compressed cubins declare more than ``Limits.notes_auto_bytes`` in total; then every compressed cubin of that
    file gets the toolkit range its ELF header proves, and the report says so.
    """

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class Limits:
    """Resource limits of the binary readers; every refusal becomes a ``limit`` diagnostic."""

    max_image_bytes: int = 2 << 30  # decompressed size of one device image
    # A fatbin holds one entry per target of one translation unit (libtorch_cuda.so: at most 7); 4,096 is far
    # above any real one and keeps a forged fatbin of 100,000 entries from costing gigabytes of facts.
    max_entries_per_fatbin: int = 4096
    max_archive_depth: int = 8
    # Members of one static archive: each leaves facts behind (an ar of 1,000,000 empty members cost 972 MB).
    max_ar_members: int = 100_000
    jobs: int = os.cpu_count() or 1
    notes: NotesMode = NotesMode.AUTO
    # Wall time one file may take (archive members share their file's); past it the readers leave out what can
    # be left out and say so in a ``limit`` diagnostic (budget.py). None or 0: no limit.
    max_file_seconds: float | None = 600.0
    notes_auto_bytes: int = 1 << 30  # declared decoded size of a file's compressed cubins, for NotesMode.AUTO


@dataclass(frozen=True)
class Slot:
    """A fatbin entry waiting for its image facts."""

    path: str
    container: Container
    fatbin_offset: int  # in the buffer that was walked
    entry: Entry
    base: int  # offset of that buffer in the file, added to every reported offset


def compression_of(flags: int) -> Compression:
    if flags & Flag.COMPRESS_ZSTD:
        return Compression.ZSTD
    if flags & (Flag.COMPRESS_LZ4 | Flag.COMPRESS_LEGACY):
        return Compression.LZ4
    return Compression.NONE


def host_of(flags: int) -> str | None:
    for flag, name in ((Flag.HOST_LINUX, "linux"), (Flag.HOST_WINDOWS, "windows"), (Flag.HOST_MAC, "mac")):
        if flags & flag:
            return name
    return None


def _producer(tool_name: str | None) -> Producer | None:
    if not tool_name:
        return None
    try:
        return Producer(tool_name)
    except ValueError:
        return Producer.OTHER


def release_pages(buf, start: int, end: int) -> None:
    """Drop the pages of ``buf[start:end]`` from this process's resident set (they stay in the page cache)."""
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        page = mmap.PAGESIZE
        lo = start - start % page
        hi = end - end % page
        if hi > lo:
            try:
                buf.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
            except (OSError, ValueError):
                pass


@functools.lru_cache(maxsize=1024)
def _header_facts(code_minor: int, arch: int, accelerated: bool, debug: bool) -> cubin.CubinFacts:
    """One shared facts object per distinct entry header (a large library has thousands of entries, a few dozen
    distinct headers)."""
    return cubin.CubinFacts.from_entry_header(code_minor, arch, accelerated, debug)


def cubin_facts(buf, entry: Entry, limits: Limits, notes: bool = True,
                ) -> tuple[cubin.CubinFacts | None, FormatError | None, int]:
    """(facts, error, bytes read) for the ELF entry ``entry`` of ``buf``; ``notes=False`` stops a compressed
    image after its ELF header."""
    start = entry.payload_offset
    algorithm = compression_of(entry.flags)
    if not notes and algorithm is not Compression.NONE and entry.major == 1 and entry.minor >= cubin.ABI_V8:
        # ABI v8 is all that decoding the header would add for a compressed v8 cubin; for v7 (code version
        # [1,7]) the header's e_version gives major.minor and is worth 64 decoded bytes.
        return _header_facts(entry.minor, entry.arch, bool(entry.flags & Flag.ARCH_SPECIFIC),
                             bool(entry.flags & Flag.DEBUG)), None, 0
    try:
        if algorithm is Compression.NONE:
            touched: list[tuple[int, int]] = []
            facts = cubin.from_image(buf, start, entry.payload_size, touched)
            for offset, length in touched:
                readlog.record(offset, length)
            return facts, None, 0
        stream = memoryview(buf)[start : start + entry.compressed_size]
        try:
            reader = PrefixReader(algorithm, stream, entry.uncompressed_size, limits.max_image_bytes)
            facts = cubin.from_prefix(reader, notes=notes)
            return facts, None, reader.consumed
        finally:
            stream.release()
    except FormatError as error:
        return None, error.detached(), 0
    except Exception as error:  # noqa: BLE001 -- a reader bug must not lose the rest of the file: report it like bad input
        return None, FormatError(None, f"internal error while reading the cubin ({type(error).__name__}: {error})"), 0
    finally:
        release_pages(buf, start, start + entry.payload_size)


_WORKER_BUF = None  # the mapping a forked worker reads; set in the parent just before the fork


def _work(batch: Sequence[tuple[Entry, Limits, bool]]):
    return [_budgeted_facts(_WORKER_BUF, entry, limits, notes) for entry, limits, notes in batch]


def _budgeted_facts(buf, entry: Entry, limits: Limits, notes: bool) -> tuple[tuple, bool]:
    """(cubin_facts, whether the time budget (budget.py) kept a compressed cubin's notes from being read); a
    forked worker inherits the file's budget."""
    cut = notes and budget.expired()
    return cubin_facts(buf, entry, limits, notes and not cut), cut and entry.compressed


def notes_wanted(slots: Sequence[Slot], limits: Limits, want_hash: bool = False) -> bool:
    if want_hash and limits.notes is not NotesMode.NEVER:
        return True  # every image is decoded for its hash anyway
    if limits.notes is not NotesMode.AUTO:
        return limits.notes is NotesMode.ALWAYS
    declared = sum(s.entry.uncompressed_size for s in slots if not s.entry.is_ptx and s.entry.compressed)
    return declared <= limits.notes_auto_bytes


def _fork_available() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def resolve(buf, slots: Sequence[Slot], limits: Limits, *, want_hash: bool = False,
            ) -> tuple[list[DeviceImage], list[str], list[Diagnostic]]:
    """Turn entry slots into device images (file order kept).

    Returns (images, remarks, diagnostics); a remark says what was deliberately not read.
    """
    elf_slots = [i for i, s in enumerate(slots) if not s.entry.is_ptx]
    facts: dict[int, tuple] = {}
    notes = notes_wanted(slots, limits, want_hash)
    remarks = []
    if not notes:
        skipped = [slots[i].entry for i in elf_slots if slots[i].entry.compressed]
        if skipped:
            declared = sum(e.uncompressed_size for e in skipped)
            how = "--notes always reads them" if limits.notes is NotesMode.AUTO else "notes disabled"
            remarks.append(
                f"toolkit notes of {len(skipped)} compressed cubins ({declared / 1e6:.0f} MB decoded) were not read; "
                f"their toolkit is the range the fatbin entry and cubin header prove ({how})")
    compressed = sum(slots[i].entry.compressed_size for i in elf_slots
                     if compression_of(slots[i].entry.flags) is Compression.ZSTD) if notes else 0
    jobs = max(1, limits.jobs)
    hashes: dict[int, str | None] = {}
    unread = 0  # compressed cubins left at their entry-header facts because the file's time budget was spent
    unhashed = 0  # images whose sha256 was not computed for the same reason
    if want_hash:
        # One full decode per cubin gives both its hash and its facts.
        for i in elf_slots:
            if budget.expired():
                facts[i], hashes[i] = cubin_facts(buf, slots[i].entry, limits, notes=False), None
                unread += slots[i].entry.compressed
                unhashed += 1
            else:
                facts[i], hashes[i] = hashed_cubin_facts(buf, slots[i].entry, limits)
    elif jobs > 1 and compressed >= PARALLEL_THRESHOLD and _fork_available() and not budget.expired():
        global _WORKER_BUF
        _WORKER_BUF = buf
        try:
            chunks = [elf_slots[k::jobs] for k in range(jobs)]
            import multiprocessing  # only here: importing it costs 20 ms of every run's start-up

            context = multiprocessing.get_context("fork")
            with context.Pool(jobs) as pool:
                results = pool.map(_work, [[(slots[i].entry, limits, notes) for i in chunk] for chunk in chunks])
        finally:
            _WORKER_BUF = None
        for chunk, result in zip(chunks, results):
            for i, (found, cut) in zip(chunk, result):
                facts[i] = found
                unread += cut
    else:
        for i in elf_slots:
            facts[i], cut = _budgeted_facts(buf, slots[i].entry, limits, notes)
            unread += cut  # (an uncompressed cubin's notes are read in place either way)
            # Unmap the pages this entry's decoding touched (and their fault-around neighbours): libcublasLt.so.12
            # (6,311 entries, 716 MB) otherwise kept 331 MB of the file resident until the end of the file.
            entry = slots[i].entry
            release_pages(buf, entry.offset, entry.payload_offset + entry.stored_size)
    images: list[DeviceImage] = []
    diagnostics: list[Diagnostic] = []
    touched: list[tuple[int, int]] = []
    for i, slot in enumerate(slots):
        entry = slot.entry
        touched.append((entry.offset, entry.header_size))
        if entry.is_ptx:
            image = ptx_entry_image(slot)
            if entry.compressed and entry.uncompressed_size > limits.max_image_bytes:
                diagnostics.append(Diagnostic(
                    slot.path, DiagnosticKind.LIMIT,
                    f"ptx {image.arch_full}: declared uncompressed size {entry.uncompressed_size} exceeds the limit "
                    f"of {limits.max_image_bytes} bytes", slot.base + entry.offset))
        else:
            cubin_result, error, consumed = facts[i]
            touched.append((entry.payload_offset, consumed))
            image = cubin_entry_image(slot, cubin_result)
            if error is not None:
                diagnostics.append(_diagnostic(slot.path, error, slot.base + entry.payload_offset,
                                               f"cubin {image.arch_full} at entry {slot.base + entry.offset:#x}"))
        entry_failed = bool(diagnostics) and diagnostics[-1].offset in (slot.base + entry.offset,
                                                                          slot.base + entry.payload_offset)
        if want_hash and not entry.is_ptx:
            image = replace(image, sha256=hashes.get(i))
        elif want_hash and not entry_failed and budget.expired():
            unhashed += 1
        elif want_hash and not entry_failed:
            touched.append((entry.payload_offset, entry.stored_size))
            digest, error = payload_sha256(buf, entry, limits)
            if error is not None:
                diagnostics.append(_diagnostic(slot.path, error, slot.base + entry.payload_offset,
                                               f"{image.kind.value} {image.arch_full}"))
            image = replace(image, sha256=digest)
        images.append(image)
    readlog.record_many(touched)
    if unread or unhashed:
        what = [f"the toolkit notes of {unread} compressed cubins were not read; those cubins are listed from "
                "their entry headers, with the toolkit range the header proves"] if unread else []
        what += [f"the sha256 of {unhashed} images was not computed"] if unhashed else []
        diagnostics.append(Diagnostic(slots[0].path, DiagnosticKind.LIMIT, f"{budget.describe()}: {'; '.join(what)}"))
    return images, remarks, diagnostics


def _diagnostic(path: str, error: FormatError, offset: int, what: str) -> Diagnostic:
    if error.limit:
        kind = DiagnosticKind.LIMIT
    elif error.decompression:
        kind = DiagnosticKind.DECOMPRESSION
    elif error.truncated:
        kind = DiagnosticKind.TRUNCATED
    else:
        kind = DiagnosticKind.MALFORMED
    return Diagnostic(path, kind, f"{what}: {error.reason}", offset)


@functools.lru_cache(maxsize=1024)
def _ptx_traits(flags: int, arch_number: int, major: int, minor: int) -> tuple:
    """(arch, PTX ISA, toolkit range, compression, debug, host) of a PTX entry header, computed once per distinct
    header."""
    arch = Entry.arch_label(arch_number, flags, family_suffix=True)
    isa = f"{major}.{minor}"
    return (arch, isa, toolkit.for_ptx(isa, arch), compression_of(flags), bool(flags & Flag.DEBUG), host_of(flags))


def ptx_entry_image(slot: Slot) -> DeviceImage:
    entry = slot.entry
    arch, isa, tk, compression, debug, host = _ptx_traits(entry.flags, entry.arch, entry.major, entry.minor)
    # DeviceImage fields in declaration order (path, container, kind, arch, arch_full, ptx_isa, toolkit,
    # compression, size, uncompressed_size, producer, tool, linked_from, cubin_abi, virtual_arch, debug, host,
    # identifier, ptxas_options, fatbin_offset, entry_offset, sha256).
    return DeviceImage.from_values(
        slot.path, slot.container, ImageKind.PTX, arch, arch, isa, tk, compression, entry.payload_size,
        entry.uncompressed_size or None, None, None, (), None, None, debug, host, entry.identifier,
        entry.ptxas_options, slot.base + slot.fatbin_offset, slot.base + entry.offset, None)


@functools.lru_cache(maxsize=4096)
def _cubin_traits(facts: cubin.CubinFacts | None, flags: int, arch_number: int) -> tuple:
    """Everything a cubin image takes from its entry header and its facts, computed once per distinct pair: the
    2,975 cubins of libtorch_cuda.so have a few dozen."""
    arch_full = Entry.arch_label(arch_number, flags, family_suffix=True)
    tk = toolkit.for_cubin(facts, arch_full) if facts is not None else toolkit.arch_bounds(arch_full)
    return (Entry.arch_label(arch_number, flags, family_suffix=False), arch_full, tk, compression_of(flags),
            _producer(facts.tool.tool) if facts and facts.tool else None, facts.tool if facts else None,
            facts.inputs if facts else (), facts.abi if facts else None,
            f"sm_{facts.virtual_sm}" if facts and facts.virtual_sm else None, bool(flags & Flag.DEBUG),
            host_of(flags))


def cubin_entry_image(slot: Slot, facts: cubin.CubinFacts | None) -> DeviceImage:
    entry = slot.entry
    (arch, arch_full, tk, compression, producer, tool, linked_from, abi, virtual_arch, debug,
     host) = _cubin_traits(facts, entry.flags, entry.arch)
    return DeviceImage.from_values(
        slot.path, slot.container, ImageKind.CUBIN, arch, arch_full, None, tk, compression, entry.payload_size,
        entry.uncompressed_size or None, producer, tool, linked_from, abi, virtual_arch, debug, host,
        entry.identifier, None, slot.base + slot.fatbin_offset, slot.base + entry.offset, None)


def hashed_cubin_facts(buf, entry: Entry, limits: Limits) -> tuple[tuple, str | None]:
    """((facts, error, bytes read), sha256) of a cubin entry from one full decode."""
    import hashlib

    try:
        data = _decoded(buf, entry, limits)
        readlog.record(entry.payload_offset, entry.stored_size)
        facts = cubin.from_image(data)
        return (facts, None, entry.stored_size), hashlib.sha256(data[: cubin.image_extent(data)]).hexdigest()
    except FormatError as error:
        return (None, error.detached(), 0), None
    except Exception as error:  # noqa: BLE001 -- a reader bug must not lose the rest of the file: report it like bad input
        return (None, FormatError(None, f"internal error while reading the cubin ({type(error).__name__}: "
                                        f"{error})"), 0), None
    finally:
        release_pages(buf, entry.payload_offset, entry.payload_offset + entry.payload_size)


def _decoded(buf, entry: Entry, limits: Limits) -> bytes:
    start = entry.payload_offset
    algorithm = compression_of(entry.flags)
    if algorithm is Compression.NONE:
        return bytes(buf[start : start + entry.payload_size])
    with memoryview(buf) as whole, whole[start : start + entry.compressed_size] as stream:
        return decompress(algorithm, stream, entry.uncompressed_size, limits.max_image_bytes)


def payload(buf, entry: Entry, limits: Limits) -> bytes:
    """The decompressed image of an entry, as ``cuobjdump -xelf/-xptx`` writes it.

    A cubin is its ELF image without the payload padding (:func:`cubin.image_extent`); a PTX text ends at its first
    NUL (``uncompressed_size`` "includes the trailing NUL", and cuobjdump does not write it).
    """
    data = _decoded(buf, entry, limits)
    if entry.is_ptx:
        return data.split(b"\0", 1)[0]
    return data[: cubin.image_extent(data)]


def payload_sha256(buf, entry: Entry, limits: Limits) -> tuple[str | None, FormatError | None]:
    import hashlib

    try:
        return hashlib.sha256(payload(buf, entry, limits)).hexdigest(), None
    except FormatError as error:
        return None, error.detached()


def fatbin_slots(fatbin: Fatbin, path: str, container: Container, base: int) -> list[Slot]:
    return [Slot(path, container, fatbin.offset, entry, base) for entry in fatbin.entries]
