"""Walking one archive: its members in archive order, each yielded as a file, a special file or a diagnostic, or
walked in turn when it is itself an archive (nested up to ``max_depth``), then the archive's distributions.

:class:`Walker` holds the state of one walk (limits, budget, spool, what is remembered for the distributions).
The formats are walked by containers.py (zip and conda, tar, compressed streams, .deb), which turns an archive
into :class:`~licscan.inventory.entries.Entry` values and hands them back to :meth:`Walker.members`.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

from licscan.inventory import containers, images, names
from licscan.inventory.ahead import ReadAhead
from licscan.inventory.distributions import Memory
from licscan.inventory.entries import READ_ERRORS, ArchiveError, Buffer, Entry, EntryType, read_error
from licscan.inventory.fsread import member_link_note
from licscan.inventory.items import FileBlob, Item
from licscan.inventory.limits import WalkLimits
from licscan.inventory.member import wants_digest
from licscan.inventory.pipe import TarAhead
from licscan.inventory.sniff import HEAD_SIZE, ArchiveKind, archive_kind
from licscan.inventory.spool import DROP_EVERY, Budget, Held, LimitExceeded, Spool
from licscan.model import Diagnostic, DiagnosticKind, SpecialFile, SpecialKind
from licscan.vpath import join

_HEADER = 512  # what a member's header costs in the archive besides its data (a tar block; a zip's is smaller)
_SPECIAL = {EntryType.FIFO: SpecialKind.FIFO, EntryType.CHAR_DEVICE: SpecialKind.CHAR_DEVICE,
            EntryType.BLOCK_DEVICE: SpecialKind.BLOCK_DEVICE, EntryType.HARDLINK: SpecialKind.HARDLINK,
            EntryType.SYMLINK: SpecialKind.SYMLINK}


@dataclass
class Level:
    """One archive being walked: its members are ``vpath!/name`` at ``depth``, inside ``containers``."""

    vpath: str
    containers: tuple[str, ...]  # of its members (this archive included)
    depth: int
    visibility: images.Visibility | None = None  # set while walking an image layer
    layer: str | None = None
    deleted: bool = False
    kind: ArchiveKind | None = None
    extra: list[Item] = field(default_factory=list)
    # Where the archive's buffer is in a file open in the walk: (the buffer, descriptor, offset), so that a process
    # can read its bytes from the file (unzstd.py) rather than be sent them.
    source: tuple[object, int, int] | None = None


class Walker:
    """The state of one walk over the user's inputs."""

    def __init__(self, limits: WalkLimits, exclude: Callable[[str], bool] | None) -> None:
        self.limits = limits
        self.exclude = exclude
        self.spool = Spool(limits, drop_pages=self.drop_pages)
        self.budget = Budget(limits)
        self.over: str | None = None  # set once a whole-walk limit is reached
        self.memory = Memory(limits)  # what the distributions of the archives being walked need of their members
        self.deferred: set[str] = set()  # image layer files of a layout folder, walked after the folder
        self.skip_archive: Callable[[str, str, os.stat_result], bool] | None = None
        self.root_maps: list[mmap.mmap] = []  # mappings of the archives being walked, files and spooled members
        # Members read by threads ahead of the walk : a zip's by a pool, a streamed tar's by its own.
        self.ahead = ReadAhead(limits, self.drop_pages, walker=self.spool)
        self.spool.hasher = self.ahead.files.hasher  # the members the walker spools itself are hashed there too
        self.pipes: list[TarAhead] = []  # the streamed tars being walked (innermost last)
        self._unreleased = 0  # bytes of members walked since the pages were last dropped

    def close(self) -> None:
        self.ahead.close()
        self.spool.close()

    def forget(self) -> None:
        self.memory.clear()

    def drop_pages(self) -> None:
        """Unmap the pages of the archive files read so far (they stay in the page cache): resident memory stays
        bounded by the member being read, not by the size of the archive."""
        for buf in self.root_maps:
            try:
                buf.madvise(mmap.MADV_DONTNEED)
            except (AttributeError, OSError, ValueError):
                pass

    def walked(self, entry: Entry) -> None:
        """Drop the mapped pages once the members walked since the last drop declare ``DROP_EVERY`` bytes: one
        ``madvise`` per member cost 0.4 s on an image of 13,000 files (it walks the page tables of the whole
        mapping), and resident memory stays bounded the same (by ``DROP_EVERY`` and the member being read)."""
        self._unreleased += (entry.size or 0) + _HEADER
        if self._unreleased >= DROP_EVERY:
            self._unreleased = 0
            self.drop_pages()

    def excluded(self, vpath: str) -> bool:
        return self.exclude is not None and self.exclude(vpath)

    def archive(self, level: Level, buf: Buffer) -> Iterator[Item]:
        """Walk the archive ``buf`` (of kind ``level.kind``) and then yield the distributions found in it."""
        if self.over:
            yield Diagnostic(level.vpath, DiagnosticKind.LIMIT, f"archive not opened: {self.over}")
            return
        try:
            if level.kind is not None:
                yield from self.contents(level, buf, level.kind)
        except Exception as error:  # noqa: BLE001
            # A reader fault on a hostile archive (zipfile's NotImplementedError for an unknown version, a corrupt
            # xz stream's LZMAError, ...) must not end the scan: the archive is reported as not read completely.
            yield Diagnostic(level.vpath, DiagnosticKind.MALFORMED,
                             f"archive could not be read completely ({type(error).__name__}: {error})")
        yield from self.memory.distributions(level.vpath)
        self.memory.forget_archive(level.vpath)

    def contents(self, level: Level, buf: Buffer, kind: ArchiveKind) -> Iterator[Item]:
        yield from containers.walk(self, level, buf, kind)

    def members(self, level: Level, entries: Iterator[Entry], *, only: Callable[[Entry], bool] | None = None,
                on_entry: Callable[[Entry], Iterator[Item] | None] | None = None) -> Generator[Item, None, bool]:
        """Walk the entries; returns True when the archive could not be read to its end."""
        try:
            for entry in entries:
                if self.over:
                    yield Diagnostic(level.vpath, DiagnosticKind.LIMIT, f"rest of the archive not read: {self.over}")
                    return True
                if only is not None and not only(entry):
                    continue
                special = on_entry(entry) if on_entry is not None else None
                if special is not None:
                    yield from special
                    continue
                yield from self.entry(level, entry)
                self.walked(entry)
        except ArchiveError as error:
            yield Diagnostic(level.vpath, error.kind, error.message, error.offset)
            return True
        except LimitExceeded as error:
            yield self.limit(level.vpath, error)
            return True
        return False

    def count_member(self, vpath: str) -> Diagnostic | None:
        """Count one more member against ``max_members``; the LIMIT diagnostic when that is one too many."""
        try:
            self.budget.count_member(len(vpath))
        except LimitExceeded as error:
            return self.limit(vpath, error)
        return None

    def limit(self, vpath: str, error: LimitExceeded) -> Diagnostic:
        if error.walk_over:
            self.over = str(error)
        return Diagnostic(vpath, DiagnosticKind.LIMIT, f"{vpath} skipped: {error}")

    def depth_diagnostic(self, vpath: str) -> Diagnostic:
        return Diagnostic(vpath, DiagnosticKind.LIMIT, f"archive {vpath} not opened: nesting deeper than the "
                                                       f"limit of {self.limits.max_depth} levels")

    def entry(self, level: Level, entry: Entry) -> Iterator[Item]:
        if len(entry.name) > names.MAX_NAME:
            yield Diagnostic(level.vpath, DiagnosticKind.MALFORMED, f"member name of {len(entry.name)} characters "
                                                                    f"(over {names.MAX_NAME}) not read: "
                                                                    f"{entry.name[:80]!r}...")
            return
        clean, problem = names.sanitize(entry.name)
        if not clean:
            if problem:
                yield Diagnostic(level.vpath, DiagnosticKind.MALFORMED, f"{problem} {entry.name!r}: not read")
            return
        vpath = join(level.vpath, clean)
        if problem:
            yield Diagnostic(vpath, DiagnosticKind.MALFORMED, f"{problem} {entry.name!r} (read as {clean!r}, "
                                                              f"never written anywhere)")
        if self.excluded(vpath):
            return
        refused = self.count_member(vpath)
        if refused is not None:
            yield refused
            return
        hidden = yield from self._layer_entry(level, entry, clean, vpath)
        if hidden is None or entry.type is EntryType.DIR:
            return
        if entry.type in _SPECIAL:
            note = member_link_note(clean, entry.link) if entry.type is EntryType.SYMLINK else None
            if hidden:
                note = "; ".join(n for n in (note, "deleted in an upper layer") if n)
            yield SpecialFile(vpath, _SPECIAL[entry.type], entry.link, note)
            return
        if entry.type is not EntryType.FILE:
            yield Diagnostic(vpath, DiagnosticKind.UNSUPPORTED, "member of an unsupported type: not read")
            return
        yield from self.member_file(level, vpath, entry, hidden)

    @staticmethod
    def _layer_entry(level: Level, entry: Entry, clean: str, vpath: str) -> Generator[Item, None, bool | None]:
        """In an image layer, record the entry in the layer's visibility; returns whether it is hidden by an upper
        layer (or the level is deleted), None for a whiteout (yielded here)."""
        hidden = level.deleted
        if level.visibility is None:
            return hidden
        whiteout = images.Visibility.whiteout(clean)
        if whiteout is not None:
            target, opaque = whiteout
            level.visibility.record(target, "opaque" if opaque else "whiteout")
            note = (f"opaque folder: hides what lower layers have under {target or '/'}" if opaque
                    else f"deletes {target} of lower layers")
            yield SpecialFile(vpath, SpecialKind.WHITEOUT, target, note)
            return None
        is_dir = entry.type is EntryType.DIR
        hidden = hidden or level.visibility.hidden(clean, is_dir)
        level.visibility.record(clean, "dir" if is_dir else "file")
        return hidden

    def member_file(self, level: Level, vpath: str, entry: Entry, hidden: bool, *,
                    visibility: images.Visibility | None = None, layer: str | None = None) -> Iterator[Item]:
        limits = self.limits
        layer = layer or level.layer
        if entry.size is not None and entry.size > limits.max_member_bytes:
            yield Diagnostic(vpath, DiagnosticKind.LIMIT, f"{vpath} skipped: declares {entry.size} bytes, over the "
                                                          f"member limit of {limits.max_member_bytes}")
            return
        if isinstance(entry.packed, int) and entry.size and entry.size > limits.ratio_floor_bytes \
                and entry.size > limits.max_ratio * max(entry.packed, 1):
            yield Diagnostic(vpath, DiagnosticKind.LIMIT, f"{vpath} skipped: compression ratio over "
                                                          f"{limits.max_ratio:g} ({entry.size} bytes from "
                                                          f"{entry.packed} compressed bytes)")
            return
        child = Level(vpath, level.containers + (vpath,), level.depth + 1, visibility, layer, hidden)
        if entry.window is not None:
            buf, offset, size = entry.window
            kind = archive_kind(bytes(buf[offset : offset + min(size, HEAD_SIZE)]))
            if kind is not None and child.depth <= limits.max_depth:
                child.kind = kind
                view = memoryview(buf)[offset : offset + size]
                if level.source is not None and level.source[0] is buf:
                    child.source = (view, level.source[1], level.source[2] + offset)
                try:
                    yield from self.archive(child, view)
                finally:
                    view.release()
                return
        yield from self._held_member(level, child, entry)

    def hold(self, vpath: str, entry: Entry) -> Generator[Diagnostic, None, Held | None]:
        """The member's bytes read whole within the limits (spool.py); None after the diagnostic saying why not."""
        try:
            return self._bytes_of(entry)
        except LimitExceeded as error:
            yield self.limit(vpath, error)
        except READ_ERRORS as error:  # the reader's ArchiveError, or the spool's own OSError
            problem = read_error(error)
            yield Diagnostic(vpath, problem.kind, f"member not read completely: {problem.message}")
        return None

    def _bytes_of(self, entry: Entry) -> Held:
        """The bytes of the member ``entry``: read ahead by a thread (ahead.py, pipe.py), or read now."""
        held = self.ahead.take(entry, self.budget, self.spool)
        for pipe in reversed(self.pipes):
            if held is not None:
                return held
            held = pipe.take(entry, self.budget, self.spool)
        if held is not None:
            return held
        return self.spool.hold(entry.reader(), self.budget, charge=not entry.charged, packed=entry.packed,
                               digest=wants_digest(self.ahead.digests, entry))

    def worth_reading(self, level: Level, entry: Entry) -> bool:
        """Whether :meth:`entry` reads the member ``entry`` (then a thread reads it ahead): a file, not excluded,
        within the declared-size limits. A wrong guess costs time only: a member not read ahead is read in turn,
        one read ahead and passed is released."""
        limits = self.limits
        if entry.type is not EntryType.FILE or len(entry.name) > names.MAX_NAME:
            return False
        if entry.size is not None and (entry.size > limits.max_member_bytes or (
                isinstance(entry.packed, int) and entry.size > limits.ratio_floor_bytes
                and entry.size > limits.max_ratio * max(entry.packed, 1))):
            return False
        clean, _ = names.sanitize(entry.name)
        return bool(clean) and not self.excluded(join(level.vpath, clean))

    def _held_member(self, level: Level, child: Level, entry: Entry) -> Iterator[Item]:
        """A member read whole (in memory or spooled): walked as an archive when it is one, else a FileBlob."""
        vpath = child.vpath
        held = yield from self.hold(vpath, entry)
        if held is None:
            return
        try:
            data = held.data
            refused = self.memory.keep(vpath, data)
            if refused is not None:
                yield refused
            kind = archive_kind(bytes(data[:HEAD_SIZE]))
            if kind is not None and child.depth <= self.limits.max_depth:
                child.kind = kind
                spooled = data if isinstance(data, mmap.mmap) else None
                if spooled is not None:
                    self.root_maps.append(spooled)
                try:
                    yield from self.archive(child, data)
                finally:
                    if spooled is not None:
                        self.root_maps.remove(spooled)
                return
            if kind is not None:
                yield self.depth_diagnostic(vpath)
            yield FileBlob(vpath, held.size, level.containers, None, data, entry.mode, child.layer, child.deleted,
                           held.sha256)
        finally:
            held.release()
