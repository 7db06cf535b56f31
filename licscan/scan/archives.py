"""Archive files of a scan (a wheel, a .deb, an image tarball) in the content cache: cached whole, by the content
digest of their bytes (:func:`licscan.cache.file_digest`), with everything they contributed (records, distributions, special files, diagnostics)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from licscan.binary import budget
from licscan.cache import Cache, file_digest
from licscan.identify.examine import FileRecord, Observed, name
from licscan.model import Diagnostic, Distribution, FileFacts, FileFormat, SpecialFile
from licscan.scan.plain import Identity, identity
from licscan.vpath import SEP


@dataclass(frozen=True)
class ArchiveBucket:
    """Everything one archive file contributed to a scan, as the content cache keeps it."""

    records: tuple[FileRecord, ...]
    distributions: tuple[Distribution, ...]
    specials: tuple[SpecialFile, ...]
    diagnostics: tuple[Diagnostic, ...]


def _inside(path: str, archive: str) -> bool:
    return path == archive or path.startswith(archive + SEP)


def _bucket_of(bucket: ArchiveBucket, vpath: str) -> bool:
    """A cached bucket belongs to the archive at ``vpath`` (its key binds the path too; this is a second check)."""
    return all(r.containers and r.containers[0] == vpath for r in bucket.records) and \
        all(_inside(d.vpath, vpath) for d in bucket.distributions)


Place = tuple[int, int]  # a member's place kept in Gathered.records and in Gathered.observed (reserve)
_HOLE = FileRecord("", 0, (), FileFacts("", FileFormat.UNKNOWN, 0), (), None)  # a place kept (by identity)
_HOLE_OBSERVED = Observed(_HOLE, None)


@dataclass
class Gathered:
    """What the walk handed out, by kind (plain files go to licscan.scan.feed, examined by path, but for those the
    walk read whole in which naming surely finds nothing: their records are here at once; archive members are
    observed while the walk holds their bytes and named after it)."""

    records: list[FileRecord] = field(default_factory=list)
    observed: list[Observed] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    distributions: list[Distribution] = field(default_factory=list)
    specials: list[SpecialFile] = field(default_factory=list)
    holes: int = 0  # places kept (reserve) and not yet filled

    def add(self, observed: Observed) -> None:
        """An archive member observed while its bytes were held: kept to be named after the walk, or its record
        at once when nothing was observed in it to name (a tar of 1,000,000 members keeps no more per member)."""
        if observed.observation is None:
            self.records.append(observed.record)
        else:
            self.observed.append(observed)

    def reserve(self) -> Place:
        """Keep the place of a member examined elsewhere (scan/members.py), in walk order: :meth:`fill` puts its
        result where :meth:`add` would have put it then."""
        self.records.append(_HOLE)
        self.observed.append(_HOLE_OBSERVED)
        self.holes += 1
        return len(self.records) - 1, len(self.observed) - 1

    def fill(self, places: Sequence[Place], results: Sequence[FileRecord | Observed]) -> None:
        """The results of the members whose places :meth:`reserve` kept, in the same order."""
        assert len(places) == len(results)
        for (record, observed), result in zip(places, results):
            if isinstance(result, Observed):
                if result.observation is None:
                    self.records[record] = result.record
                else:
                    self.observed[observed] = result
            else:
                self.records[record] = result
        self.holes -= len(places)

    def settle(self) -> None:
        """Drop the places kept and not filled (every member's result is in its place: :meth:`fill`)."""
        if self.holes:
            raise RuntimeError("members examined elsewhere have no results")
        self.records = [r for r in self.records if r is not _HOLE]
        self.observed = [o for o in self.observed if o is not _HOLE_OBSERVED]

    def name_members(self) -> None:
        """Name every observed archive member once, now that the walk has read every distribution: a wheel's
        RECORD and METADATA come after its libraries, and a member may belong to an enclosing archive's."""
        self.settle()
        self.records.extend(name(observed, self.distributions) for observed in self.observed)
        self.observed.clear()


@dataclass(frozen=True)
class _Pending:
    """An archive walked this time, to be stored once the walk is done (if it did not change meanwhile)."""

    key: str
    memo: str | None
    content: str
    real: str
    before: Identity


class Archives:
    """Archive files (a wheel, a .deb, an image tarball) are cached whole, by the content digest of their bytes: an
    unchanged one is hashed (or its digest found: read for the tree memo, or in the same-boot memo) but not
    walked."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.pending: dict[str, _Pending] = {}
        self.replayed: list[ArchiveBucket] = []

    def skip(self, vpath: str, real: str, st: os.stat_result) -> bool:
        """Whether the archive at ``vpath`` is replayed from the cache (the walker then does not open it)."""
        cache = self.cache
        real = os.path.realpath(real)
        before: Identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        memo = cache.identity_key(real, st)
        content = cache.known_digest(real, before)  # read for the tree memo in this run
        if content is None:
            content = cache.get(memo, "memo", str) if memo is not None else None
            if content is not None:
                memo = None
        if content is None:
            try:
                fd = os.open(real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
                try:
                    content = file_digest(fd, st.st_size)
                finally:
                    os.close(fd)
            except OSError:
                return False
        key = cache.key("archive", content, str(st.st_size), vpath)
        bucket = cache.get(key, "archive", ArchiveBucket)
        if bucket is not None and _bucket_of(bucket, vpath):
            self.replayed.append(bucket)
            if memo is not None:
                cache.put(memo, "memo", content)
            return True
        self.pending[vpath] = _Pending(key, memo, content, real, before)
        return False

    def store(self, got: Gathered) -> None:
        """Store what each walked archive contributed; not stored: results cut by a time budget, or an archive that
        changed while it was walked."""
        for vpath, pending in self.pending.items():
            bucket = ArchiveBucket(
                tuple(r for r in got.records if r.containers and r.containers[0] == vpath),
                tuple(d for d in got.distributions if _inside(d.vpath, vpath)),
                tuple(s for s in got.specials if _inside(s.vpath, vpath)),
                tuple(d for d in got.diagnostics if _inside(d.path, vpath)))
            if any(budget.reached(r.facts.all_diagnostics()) for r in bucket.records):
                continue
            if identity(pending.real) != pending.before:
                continue
            self.cache.put(pending.key, "archive", bucket)
            if pending.memo is not None:
                self.cache.put(pending.memo, "memo", pending.content)

    def replay(self, got: Gathered) -> None:
        for bucket in self.replayed:
            got.records.extend(bucket.records)
            got.distributions.extend(bucket.distributions)
            got.specials.extend(bucket.specials)
            got.diagnostics.extend(bucket.diagnostics)


__all__ = ["ArchiveBucket", "Archives", "Gathered"]
