"""One scan: walk the inputs, inspect every file, name the NVIDIA and GPU parts, collect the inventory (docs/architecture.md).

Plain files are inspected by path (in worker processes with ``jobs > 1``, from the cache when unchanged);
archive members are inspected from the bytes the walker hands out, while they are valid. Components are named
after the walk, when the packaging metadata of every enclosing distribution is known. Naming one file is
:func:`licscan.identify.examine.examine`; the worker pool is :mod:`licscan.workers`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import mmap
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

from packaging.utils import canonicalize_name

from licscan import cache as cache_module
from licscan.binary import budget
from licscan.binary.images import Limits, release_pages
from licscan.binary.inspect import inspect_buffer, inspect_file
from licscan.binary.paged import with_mapping
from licscan.cache import DEFAULT_MAX_BYTES, Cache, CacheRefused, file_digest
from licscan.identify import components as naming
from licscan.identify.examine import FileRecord, examine, refine
from licscan.identify.owner import distribution_of
from licscan.inventory import items
from licscan.inventory.limits import WalkLimits
from licscan.inventory.walk import walk
from licscan.model import (
    ComponentMatch,
    Diagnostic,
    Distribution,
    FileFacts,
    FileFormat,
    Inventory,
    LicenseTextMatch,
    SpecialFile,
    Summary,
)
from licscan.vpath import SEP
from licscan.workers import bounded, die_with_parent, fork_context

Progress = Callable[[str], None]
Identity = tuple[int, int, int, int, int]  # device, inode, size, mtime ns, ctime ns


@dataclass(frozen=True)
class ScanConfig:
    limits: Limits = field(default_factory=Limits)
    walk_limits: WalkLimits | None = None  # None = its defaults
    jobs: int = os.cpu_count() or 1
    cache_dir: str | None = None
    cache_max_bytes: int = DEFAULT_MAX_BYTES
    exclude: tuple[str, ...] = ()  # fnmatch globs over virtual paths
    digests: bool = False  # SHA-1 and SHA-256 of every binary and named part (for the SBOM)

    def settings(self) -> str:
        """What changes results, for the cache key."""
        return repr((self.limits.max_image_bytes, self.limits.notes, self.limits.notes_auto_bytes,
                     self.limits.max_entries_per_fatbin, self.digests))


def _excluded(vpath: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(vpath, p) for p in patterns)


# ------------------------------------------------------------------------------------------------ plain files


@dataclass(frozen=True)
class _Shared:
    """What every file examination needs besides its own path: given to each worker process once (the pool's
    initializer; inherited through fork), never pickled per task (issue 14: torch's RECORD alone has 13,000 rows)."""

    limits: Limits
    digests: bool
    cache: Cache | None
    distributions: tuple[Distribution, ...]
    context: dict[str, str]  # distribution vpath -> digest of its metadata (bound into the file's cache key)


_SHARED: _Shared | None = None


def _distribution_context(distributions: Sequence[Distribution]) -> dict[str, str]:
    """A digest of each distribution's metadata (name, version, licence, RECORD...): what ``examine`` may use of it."""
    out = {}
    for dist in distributions:
        try:
            out[dist.vpath] = hashlib.sha256(cache_module.dumps(dist)).hexdigest()
        except (cache_module.CodecError, ValueError):
            out[dist.vpath] = hashlib.sha256(repr(dist).encode("utf-8", "surrogateescape")).hexdigest()
    return out


def _shared() -> _Shared:
    if _SHARED is None:
        raise RuntimeError("scan context not installed")
    return _SHARED


def _examine_path(source: str, vpath: str, sha256: str | None = None) -> FileRecord:
    """Inspect one plain file and name what is in it (``sha256``: its digest when the cache computed it)."""
    shared = _shared()
    facts = inspect_file(source, display=vpath, limits=replace(shared.limits, jobs=1))
    return with_mapping(source, lambda data: examine(vpath, facts, data, facts.size, (), shared.distributions,
                                                     digests=shared.digests, sha256=sha256))


@dataclass(frozen=True)
class _BatchKey:
    """A batch's cache entry name (None: not cacheable), the digests of its files, and the same-boot memo name to
    store (None: nothing to store)."""

    key: str | None
    digests: tuple[str | None, ...]
    memo: str | None


def _batch_key(cache: Cache, shared: _Shared, batch: Sequence[tuple[str, str]],
               before: list[Identity]) -> _BatchKey:
    memo = cache.identity_key("\0".join(source for source, _ in batch), before)  # real paths (the walker's)
    known = cache.get(memo, "memo", tuple) if memo is not None else None
    if known is not None and len(known) == len(batch) + 1:
        return _BatchKey(known[0], tuple(known[1:]), None)  # the memo is stored already
    try:
        digests: tuple[str | None, ...] = tuple(_content_digest(source) for source, _ in batch)
    except OSError:
        return _BatchKey(None, (None,) * len(batch), memo)
    parts = []
    for (_source, vpath), digest, ident in zip(batch, digests, before):
        dist = distribution_of(vpath, shared.distributions)
        parts += [vpath, str(digest), str(ident[2]), shared.context.get(dist.vpath, "") if dist is not None else ""]
    return _BatchKey(cache.key("batch", *parts), digests, memo)


def _examine_batch(batch: Sequence[tuple[str, str]]) -> list[FileRecord]:
    """Examine a batch of plain files (in a worker process when jobs > 1), from the content cache when the same
    bytes were examined at the same virtual paths before.

    The batch is one cache entry, keyed by the SHA-256 of every file's bytes (read once with ``preadv``), its size,
    its virtual path and the digest of its distribution's metadata; a same-boot memo keyed by the files'
    identities (device, inode, size, mtime, ctime) skips the hashing when none of them changed. A batch whose files
    change while they are examined, or whose results a time budget cut, is not stored."""
    shared = _shared()
    cache = shared.cache
    if cache is None:
        return [_examine_path(source, vpath) for source, vpath in batch]
    identities = [_identity(source) for source, _ in batch]
    before = [ident for ident in identities if ident is not None]
    found = _batch_key(cache, shared, batch, before) if len(before) == len(batch) else \
        _BatchKey(None, (None,) * len(batch), None)
    if found.key is not None:
        hit = cache.get(found.key, "batch", tuple)
        if hit is not None and len(hit) == len(batch) and all(
                isinstance(r, FileRecord) and r.vpath == vpath for r, (_, vpath) in zip(hit, batch)):
            if found.memo is not None:
                cache.put(found.memo, "memo", (found.key, *found.digests))
            return list(hit)
    records = [_examine_path(source, vpath, digest) for (source, vpath), digest in zip(batch, found.digests)]
    if found.key is not None and identities == [_identity(source) for source, _ in batch] \
            and not any(budget.reached(r.facts.all_diagnostics()) for r in records):
        cache.put(found.key, "batch", tuple(records))
        if found.memo is not None:
            cache.put(found.memo, "memo", (found.key, *found.digests))
    return records


def _content_digest(source: str) -> str:
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        return file_digest(fd, st.st_size)
    finally:
        os.close(fd)


def _identity(path: str) -> Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _install(shared: _Shared | None) -> None:
    global _SHARED
    _SHARED = shared


def _worker_start(shared: _Shared, parent: int) -> None:
    """Pool initializer: die with the parent (issue 13 item 11), take the shared context."""
    die_with_parent(parent)
    _install(shared)


# A task, and a cache entry, is a batch of files of one folder: at most this many, or this many bytes (a larger
# file alone). 12,715 small files of an installed environment as single tasks spent more time in the pool's queues
# than in examining them, and as single entries more time reading entries than examining. Batches follow folders so
# that a file added or removed changes the batches of its own folder only.
_BATCH_FILES = 64
_BATCH_BYTES = 32 << 20


def _batches(jobs: Sequence[tuple[str, str, int]]) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    size = 0
    folder = None
    for source, vpath, length in jobs:
        here = vpath.rsplit("/", 1)[0] if "/" in vpath else ""
        if batch and (here != folder or len(batch) >= _BATCH_FILES or size + length > _BATCH_BYTES):
            yield batch
            batch, size = [], 0
        folder = here
        batch.append((source, vpath))
        size += length
    if batch:
        yield batch


def _records_for_paths(jobs: list[tuple[str, str, int]], config: ScanConfig, distributions: list[Distribution],
                       cache: Cache | None, progress: Progress | None = None) -> list[FileRecord]:
    """Examine the plain files ``jobs`` ((real path, virtual path, size) each): in this process with one job, else in
    a pool of worker processes that take the shared context once (initializer) and batches of (path, vpath) pairs,
    at most ``4 x jobs`` batches in flight."""
    if not jobs:
        return []
    shared = _Shared(config.limits, config.digests, cache, tuple(distributions),
                     _distribution_context(distributions) if cache is not None else {})
    done = progress or (lambda vpath: None)
    out = []
    if config.jobs <= 1 or len(jobs) < 4:
        _install(shared)
        try:
            for batch in _batches(jobs):
                for record in _examine_batch(batch):
                    out.append(record)
                    done(record.vpath)
            return out
        finally:
            _install(None)
    with ProcessPoolExecutor(max_workers=config.jobs, mp_context=fork_context(), initializer=_worker_start,
                             initargs=(shared, os.getpid())) as pool:
        for records in bounded(pool, _examine_batch, _batches(jobs), window=config.jobs * 4):
            for record in records:
                out.append(record)
                done(record.vpath)
    return out


# --------------------------------------------------------------------------------------------- archive files


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


@dataclass
class _Gathered:
    """What the walk handed out, by kind (plain files are examined after the walk, by path)."""

    records: list[FileRecord] = field(default_factory=list)
    plain: list[tuple[str, str, int]] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    distributions: list[Distribution] = field(default_factory=list)
    specials: list[SpecialFile] = field(default_factory=list)


@dataclass(frozen=True)
class _Pending:
    """An archive walked this time, to be stored once the walk is done (if it did not change meanwhile)."""

    key: str
    memo: str | None
    content: str
    real: str
    before: Identity


class _Archives:
    """Archive files (a wheel, a .deb, an image tarball) are cached whole, by the SHA-256 of their bytes: an
    unchanged one is hashed (or found in the same-boot memo) but not walked."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.pending: dict[str, _Pending] = {}
        self.replayed: list[ArchiveBucket] = []

    def skip(self, vpath: str, real: str, st: os.stat_result) -> bool:
        """Whether the archive at ``vpath`` is replayed from the cache (the walker then does not open it)."""
        cache = self.cache
        real = os.path.realpath(real)
        memo = cache.identity_key(real, st)
        content = cache.get(memo, "memo", str) if memo is not None else None
        if content is not None:
            memo = None
        else:
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
        self.pending[vpath] = _Pending(key, memo, content, real, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                                                   st.st_ctime_ns))
        return False

    def store(self, got: _Gathered) -> None:
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
            if _identity(pending.real) != pending.before:
                continue
            self.cache.put(pending.key, "archive", bucket)
            if pending.memo is not None:
                self.cache.put(pending.memo, "memo", pending.content)

    def replay(self, got: _Gathered) -> None:
        for bucket in self.replayed:
            got.records.extend(bucket.records)
            got.distributions.extend(bucket.distributions)
            got.specials.extend(bucket.specials)
            got.diagnostics.extend(bucket.diagnostics)


def open_cache(config: ScanConfig, settings: str, warn: Callable[[str], None] | None = None) -> Cache | None:
    """The content cache of ``config`` (None with ``--no-cache``, or when the folder is refused: then ``warn`` gets
    the one-line reason and the scan runs without the cache)."""
    if not config.cache_dir:
        return None
    try:
        return Cache.open(config.cache_dir, settings, max_bytes=config.cache_max_bytes)
    except CacheRefused as refused:
        (warn or _warn)(str(refused))
        return None


def _warn(message: str) -> None:
    print(f"licscan: {message}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------------ scan


def scan(paths: Sequence[str], config: ScanConfig = ScanConfig(),
         progress: Progress | None = None,
         warn: Callable[[str], None] | None = None) -> tuple[Inventory, list[FileRecord]]:
    """Scan ``paths`` (files or folders) and return the inventory and the per-file records behind it.
    ``progress``, when given, is called with the virtual path of every file once it has been inspected; ``warn``
    with a one-line message when the cache folder is refused (default: standard error)."""
    walk_limits = config.walk_limits or WalkLimits()
    cache = open_cache(config, f"{config.settings()}\0{walk_limits!r}\0{config.exclude!r}", warn)
    archives = _Archives(cache) if cache is not None else None
    got = _Gathered()
    items_out = walk(list(paths), walk_limits, exclude=(lambda v: _excluded(v, config.exclude))
                     if config.exclude else None, skip_archive=archives.skip if archives is not None else None)
    _gather(items_out, config, got, progress)
    got.records = [refine(r, got.distributions) if r.containers else r for r in got.records]
    if archives is not None:
        archives.store(got)
        archives.replay(got)
    got.records.extend(_records_for_paths(got.plain, config, got.distributions, cache, progress))
    got.records.sort(key=lambda r: r.vpath)
    if cache is not None:
        cache.trim()
    return build_inventory(paths, got.records, got.distributions, got.specials, got.diagnostics), got.records


def _gather(walked: Iterable[object], config: ScanConfig, got: _Gathered, progress: Progress | None) -> None:
    """Sort what the walk hands out; archive members are examined now, while their bytes are valid."""
    for item in walked:
        if isinstance(item, items.FileBlob):
            if item.source is not None and not item.containers:
                got.plain.append((item.source, item.vpath, item.size))
                continue
            data = item.data if item.data is not None else b""
            facts = inspect_buffer(data, item.vpath, replace(config.limits, jobs=1)) if len(data) else \
                FileFacts(item.vpath, FileFormat.UNKNOWN, 0)
            record = examine(item.vpath, facts, data, item.size, item.containers, got.distributions,
                             digests=config.digests)
            release_pages(data, 0, len(data) + mmap.PAGESIZE)  # a spooled member's pages: not kept resident
            got.records.append(replace(record, layer=item.layer, deleted_in_upper_layer=item.deleted_in_upper_layer))
            if progress is not None:
                progress(item.vpath)
        elif isinstance(item, Distribution):
            got.distributions.append(item)
        elif isinstance(item, SpecialFile):
            got.specials.append(item)
        elif isinstance(item, Diagnostic):
            got.diagnostics.append(item)


# ------------------------------------------------------------------------------------------------- inventory


def build_inventory(paths: Sequence[str], records: list[FileRecord], distributions: list[Distribution],
                    specials: list[SpecialFile], diagnostics: list[Diagnostic]) -> Inventory:
    all_diagnostics = list(diagnostics)
    device_code = []
    hits: list[tuple[ComponentMatch, str]] = []
    texts: list[tuple[LicenseTextMatch, str]] = []
    for record in records:
        all_diagnostics.extend(record.facts.all_diagnostics())
        device_code.extend(record.facts.all_images())
        hits.extend((m, record.vpath) for m in record.matches)
        if record.license_text is not None:
            texts.append((record.license_text, record.vpath))
    nvidia_dists = {id(d) for m, v in hits if m.vendor == "NVIDIA" for d in (distribution_of(v, distributions),)
                    if d is not None}
    components = naming.components(hits) + naming.license_components(texts) + naming.distribution_components(
        d for d in distributions if id(d) in nvidia_dists or canonicalize_name(d.name).startswith("nvidia-"))
    summary = Summary(files=len(records), bytes=sum(r.size for r in records), diagnostics=len(all_diagnostics))
    remarks = sorted({f"{r.vpath}: {x}" for r in records for x in r.facts.all_remarks()})
    return Inventory(
        inputs=tuple(paths),
        components=tuple(sorted(components, key=lambda c: (c.kind.value, c.name, c.version or "", c.id))),
        device_code=tuple(device_code),
        diagnostics=tuple(sorted(all_diagnostics, key=lambda d: (d.path, d.offset or 0, d.message))),
        summary=summary,
        distributions=tuple(sorted(distributions, key=lambda d: d.vpath)),
        special_files=tuple(sorted(specials, key=lambda s: s.vpath)),
        remarks=tuple(remarks),
        dependencies=tuple(_dependencies(records)),
    )


__all__ = ["ArchiveBucket", "FileRecord", "ScanConfig", "build_inventory", "examine", "open_cache", "refine", "scan"]


def _dependencies(records: list[FileRecord]) -> list:
    """DT_NEEDED entries of every ELF file and imports of every PE file that name a catalogued part, and where the
    input ships it."""
    from licscan.identify import catalog
    from licscan.identify.linkage import Providers
    from licscan.model import Dependency

    providers = Providers.index((r.vpath, r.facts) for r in records)
    out = []
    for record in records:
        for needed in record.facts.needed:  # DT_NEEDED, or PE imports and delay-loaded imports
            for match in catalog.identify(needed, None, None, None, with_signals=False):
                out.append(Dependency(record.vpath, needed, match.name, match.vendor, match.kind,
                                      providers.of(needed)))
    return sorted(out, key=lambda d: (d.path, d.needs))
