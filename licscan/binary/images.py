"""Fatbin entries and standalone files -> :class:`DeviceImage` facts, with the toolkit of each image.

Listing needs only entry headers. The toolkit of a cubin needs its ELF header and notes: free for an uncompressed
entry (the pages are touched in place), a decoded prefix for a zstd entry, the whole block for an LZ4 entry. Large
files spread that decoding over worker processes (``jobs``), each reading the same mapping.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from licscan.binary import budget, cubin, readlog
from licscan.binary.buffer import Buffer, PageDropper, release_pages
from licscan.binary.compression import LZ4_HEAD, PrefixReader, decompress
from licscan.binary.entry_image import Slot, cubin_entry_image, ptx_entry_image
from licscan.binary.errors import FormatError
from licscan.binary.fatbin import Entry, Flag, compression_of
from licscan.binary.limits import Limits as Limits  # re-exported: the readers' callers name it here
from licscan.binary.limits import NotesMode as NotesMode
from licscan.binary.paged import read_at
from licscan.model import Compression, DeviceImage, Diagnostic, DiagnosticKind

PARALLEL_THRESHOLD = 16 << 20  # compressed cubin bytes in one file before worker processes pay off


@functools.lru_cache(maxsize=1024)
def _header_facts(code_minor: int, arch: int, accelerated: bool, debug: bool) -> cubin.CubinFacts:
    """One shared facts object per distinct entry header (a large library has thousands of entries, a few dozen
    distinct headers)."""
    return cubin.CubinFacts.from_entry_header(code_minor, arch, accelerated, debug)


def cubin_facts(buf: Buffer, entry: Entry, limits: Limits, notes: bool = True) -> CubinRead:
    """(facts, error, bytes read) for the ELF entry ``entry`` of ``buf``; ``notes=False`` stops a compressed
    image after its ELF header. The caller drops the pages the entry's reading touched (:class:`PageDropper`)."""
    start = entry.payload_offset
    algorithm = compression_of(entry.flags)
    if not notes and algorithm is not Compression.NONE and entry.major == 1 and entry.minor >= cubin.ABI_V8:
        # ABI v8 is all that decoding the header would add for a compressed v8 cubin; for v7 (code version
        # [1,7]) the header's e_version gives major.minor and is worth 64 decoded bytes.
        return CubinRead(_header_facts(entry.minor, entry.arch, bool(entry.flags & Flag.ARCH_SPECIFIC),
                                       bool(entry.flags & Flag.DEBUG)), None, 0)
    try:
        if algorithm is Compression.NONE:
            touched: list[tuple[int, int]] = []
            facts = cubin.from_image(buf, start, entry.payload_size, touched)
            for offset, length in touched:
                readlog.record(offset, length)
            return CubinRead(facts, None, 0)
        stream = memoryview(buf)[start : start + entry.compressed_size]
        # An LZ4 cubin's header comes from a few bytes read ahead (read_at: pread on a large file), so the
        # mapping's pages are not touched for it.
        head = read_at(buf, start, min(entry.compressed_size, LZ4_HEAD)) if algorithm is Compression.LZ4 else None
        try:
            reader = PrefixReader(algorithm, stream, entry.uncompressed_size, limits.max_image_bytes, head)
            facts = cubin.from_prefix(reader, notes=notes)
            return CubinRead(facts, None, reader.consumed)
        finally:
            stream.release()
    except FormatError as error:
        return CubinRead(None, error.detached(), 0)
    except Exception as error:  # noqa: BLE001 -- a reader bug must not lose the rest of the file: report it like bad input
        return CubinRead(None, FormatError(None, f"internal error while reading the cubin ({type(error).__name__}: "
                                                 f"{error})"), 0)


class CubinRead(NamedTuple):
    """What reading one cubin entry gave: its facts (None when it did not parse), the error, and the compressed bytes
    the decoder consumed (for ``bytes_read``)."""

    facts: cubin.CubinFacts | None
    error: FormatError | None
    consumed: int


@dataclass
class _Decoded:
    """The cubins of one file as they are read: facts and hashes by slot index, and how many the time budget cut."""

    facts: dict[int, CubinRead] = field(default_factory=dict)
    hashes: dict[int, str | None] = field(default_factory=dict)
    unread: int = 0  # compressed cubins left at their entry-header facts because the file's time budget was spent
    unhashed: int = 0  # images whose sha256 was not computed for the same reason


_WORKER_BUF: Buffer | None = None  # the mapping a forked worker reads; set in the parent just before the fork


def _work(batch: Sequence[tuple[Entry, Limits, bool]]) -> list[tuple[CubinRead, bool]]:
    assert _WORKER_BUF is not None  # inherited from the parent through the fork
    out = []
    with PageDropper(_WORKER_BUF) as dropper:
        for entry, limits, notes in batch:
            out.append(_budgeted_facts(_WORKER_BUF, entry, limits, notes))
            dropper.add(entry.offset, entry.payload_offset + entry.payload_size)
    return out


def _budgeted_facts(buf: Buffer, entry: Entry, limits: Limits, notes: bool) -> tuple[CubinRead, bool]:
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


def resolve(buf: Buffer, slots: Sequence[Slot], limits: Limits, *, want_hash: bool = False,
            ) -> tuple[list[DeviceImage], list[str], list[Diagnostic]]:
    """Turn entry slots into device images (file order kept).

    Returns (images, remarks, diagnostics); a remark says what was deliberately not read.
    """
    elf_slots = [i for i, s in enumerate(slots) if not s.entry.is_ptx]
    notes = notes_wanted(slots, limits, want_hash)
    remarks = [] if notes else _notes_remark([slots[i].entry for i in elf_slots], limits)
    if want_hash:
        decoded = _decode_hashed(buf, slots, elf_slots, limits)
    else:
        decoded = _decode(buf, slots, elf_slots, limits, notes)
    images, diagnostics = _images(buf, slots, decoded, limits, want_hash)
    if decoded.unread or decoded.unhashed:
        what = [f"the toolkit notes of {decoded.unread} compressed cubins were not read; those cubins are listed "
                "from their entry headers, with the toolkit range the header proves"] if decoded.unread else []
        what += [f"the sha256 of {decoded.unhashed} images was not computed"] if decoded.unhashed else []
        diagnostics.append(Diagnostic(slots[0].path, DiagnosticKind.LIMIT, f"{budget.describe()}: {'; '.join(what)}"))
    return images, remarks, diagnostics


def _notes_remark(cubins: Sequence[Entry], limits: Limits) -> list[str]:
    """The remark of a file whose compressed cubins' toolkit notes are not read (NotesMode)."""
    skipped = [e for e in cubins if e.compressed]
    if not skipped:
        return []
    declared = sum(e.uncompressed_size for e in skipped)
    how = "--notes always reads them" if limits.notes is NotesMode.AUTO else "notes disabled"
    return [f"toolkit notes of {len(skipped)} compressed cubins ({declared / 1e6:.0f} MB decoded) were not read; "
            f"their toolkit is the range the fatbin entry and cubin header prove ({how})"]


def _decode_hashed(buf: Buffer, slots: Sequence[Slot], elf_slots: Sequence[int], limits: Limits) -> _Decoded:
    """One full decode per cubin gives both its hash and its facts."""
    decoded = _Decoded()
    for i in elf_slots:
        if budget.expired():
            decoded.facts[i], decoded.hashes[i] = cubin_facts(buf, slots[i].entry, limits, notes=False), None
            release_pages(buf, slots[i].entry.offset, slots[i].entry.payload_offset + slots[i].entry.payload_size)
            decoded.unread += slots[i].entry.compressed
            decoded.unhashed += 1
        else:
            decoded.facts[i], decoded.hashes[i] = hashed_cubin_facts(buf, slots[i].entry, limits)
    return decoded


def _decode(buf: Buffer, slots: Sequence[Slot], elf_slots: Sequence[int], limits: Limits, notes: bool) -> _Decoded:
    """The facts of every cubin: in forked workers that share the mapping when a file holds enough zstd cubins to
    pay for them, else one by one."""
    decoded = _Decoded()
    compressed = sum(slots[i].entry.compressed_size for i in elf_slots
                     if compression_of(slots[i].entry.flags) is Compression.ZSTD) if notes else 0
    jobs = max(1, limits.jobs)
    if jobs > 1 and compressed >= PARALLEL_THRESHOLD and _fork_available() and not budget.expired():
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
                decoded.facts[i] = found
                decoded.unread += cut
        return decoded
    with PageDropper(buf) as dropper:
        for i in elf_slots:
            decoded.facts[i], cut = _budgeted_facts(buf, slots[i].entry, limits, notes)
            decoded.unread += cut  # (an uncompressed cubin's notes are read in place either way)
            # Unmap the pages this entry's decoding touched (and their fault-around neighbours): libcublasLt.so.12
            # (6,311 entries, 716 MB) otherwise kept 331 MB of the file resident until the end of the file.
            entry = slots[i].entry
            dropper.add(entry.offset, entry.payload_offset + entry.payload_size)
    return decoded


def _images(buf: Buffer, slots: Sequence[Slot], decoded: _Decoded, limits: Limits, want_hash: bool,
            ) -> tuple[list[DeviceImage], list[Diagnostic]]:
    """One image per slot, with the diagnostics of the entries that did not read; the hash of each PTX text (and of
    each cubin not hashed while it was decoded) when ``want_hash``."""
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
            read = decoded.facts[i]
            touched.append((entry.payload_offset, read.consumed))
            image = cubin_entry_image(slot, read.facts)
            if read.error is not None:
                diagnostics.append(Diagnostic(slot.path, read.error.kind, f"cubin {image.arch_full} at entry "
                                              f"{slot.base + entry.offset:#x}: {read.error.reason}",
                                              slot.base + entry.payload_offset))
        entry_failed = bool(diagnostics) and diagnostics[-1].offset in (slot.base + entry.offset,
                                                                          slot.base + entry.payload_offset)
        if want_hash and not entry.is_ptx:
            image = replace(image, sha256=decoded.hashes.get(i))
        elif want_hash and not entry_failed and budget.expired():
            decoded.unhashed += 1
        elif want_hash and not entry_failed:
            touched.append((entry.payload_offset, entry.stored_size))
            digest, error = payload_sha256(buf, entry, limits)
            if error is not None:
                diagnostics.append(Diagnostic(slot.path, error.kind,
                                              f"{image.kind.value} {image.arch_full}: {error.reason}",
                                              slot.base + entry.payload_offset))
            image = replace(image, sha256=digest)
        images.append(image)
    readlog.record_many(touched)
    return images, diagnostics


def hashed_cubin_facts(buf: Buffer, entry: Entry, limits: Limits) -> tuple[CubinRead, str | None]:
    """((facts, error, bytes read), sha256) of a cubin entry from one full decode."""
    import hashlib

    try:
        data = _decoded(buf, entry, limits)
        readlog.record(entry.payload_offset, entry.stored_size)
        facts = cubin.from_image(data)
        return CubinRead(facts, None, entry.stored_size), hashlib.sha256(data[: cubin.image_extent(data)]).hexdigest()
    except FormatError as error:
        return CubinRead(None, error.detached(), 0), None
    except Exception as error:  # noqa: BLE001 -- a reader bug must not lose the rest of the file: report it like bad input
        return CubinRead(None, FormatError(None, f"internal error while reading the cubin ({type(error).__name__}: "
                                                 f"{error})"), 0), None
    finally:
        release_pages(buf, entry.payload_offset, entry.payload_offset + entry.payload_size)


def _decoded(buf: Buffer, entry: Entry, limits: Limits) -> bytes:
    start = entry.payload_offset
    algorithm = compression_of(entry.flags)
    if algorithm is Compression.NONE:
        return bytes(buf[start : start + entry.payload_size])
    with memoryview(buf) as whole, whole[start : start + entry.compressed_size] as stream:
        return decompress(algorithm, stream, entry.uncompressed_size, limits.max_image_bytes)


def payload(buf: Buffer, entry: Entry, limits: Limits) -> bytes:
    """The decompressed image of an entry, as ``cuobjdump -xelf/-xptx`` writes it.

    A cubin is its ELF image without the payload padding (:func:`cubin.image_extent`); a PTX text ends at its first
    NUL (``uncompressed_size`` "includes the trailing NUL", and cuobjdump does not write it).
    """
    data = _decoded(buf, entry, limits)
    if entry.is_ptx:
        return data.split(b"\0", 1)[0]
    return data[: cubin.image_extent(data)]


def payload_sha256(buf: Buffer, entry: Entry, limits: Limits) -> tuple[str | None, FormatError | None]:
    import hashlib

    try:
        return hashlib.sha256(payload(buf, entry, limits)).hexdigest(), None
    except FormatError as error:
        return None, error.detached()
