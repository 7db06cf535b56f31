"""The plain files of a scan: examined by path in batches of one folder, in worker processes when there is more
than one job, from the content cache when the same bytes were examined before (docs/cache.md says what is cached
and under which key)."""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from licscan import cache as cache_module
from licscan.binary import budget
from licscan.binary.buffer import Buffer
from licscan.binary.images import Limits
from licscan.binary.inspect import head_facts, inspect_read, unreadable
from licscan.binary.paged import PagedMap, mapped, open_file
from licscan.cache import Cache, file_digest
from licscan.identify import catalog, observe
from licscan.identify.examine import FileRecord, examine, quiet_record
from licscan.identify.owner import distribution_of, recorded_sha256
from licscan.model import Distribution
from licscan.vpath import basename
from licscan.workers import die_with_parent

Identity = tuple[int, int, int, int, int]  # device, inode, size, mtime ns, ctime ns


@dataclass(frozen=True)
class Shared:
    """What every file examination needs besides its own path: given to each worker process once (the pool's
    initializer; inherited through fork), never pickled per task (torch's RECORD alone has 13,000 rows)."""

    limits: Limits
    digests: bool
    cache: Cache | None
    distributions: tuple[Distribution, ...]
    context: dict[str, str]  # distribution vpath -> digest of its metadata (bound into the file's cache key)
    file_limits: Limits = field(init=False)  # ``limits`` for one file: its reader runs on this process's core

    def __post_init__(self) -> None:
        object.__setattr__(self, "file_limits", replace(self.limits, jobs=1))


_SHARED: Shared | None = None


Contexts = dict[int, tuple[Distribution, str]]  # id of a distribution -> it, and the digest of its metadata


def _distribution_context(distributions: Sequence[Distribution], known: Contexts | None = None) -> dict[str, str]:
    """A digest of each distribution's metadata (name, version, licence, RECORD...): what ``examine`` may use of it;
    ``known``: the digests of distributions computed before (the same objects: encoding torch's RECORD again for
    the final context cost 0.05 s), extended with the new ones."""
    known = {} if known is None else known
    out = {}
    for dist in distributions:
        seen = known.get(id(dist))
        if seen is not None and seen[0] is dist:
            out[dist.vpath] = seen[1]
            continue
        try:
            digest = hashlib.sha256(cache_module.dumps(dist)).hexdigest()
        except (cache_module.CodecError, ValueError):
            digest = hashlib.sha256(repr(dist).encode("utf-8", "surrogateescape")).hexdigest()
        out[dist.vpath] = digest
        known[id(dist)] = (dist, digest)
    return out


def _shared() -> Shared:
    if _SHARED is None:
        raise RuntimeError("scan context not installed")
    return _SHARED


def _examine_path(source: str, vpath: str, assume: bool = False) -> FileRecord:
    """Inspect one plain file and name what is in it, from one read or mapping of the file (opening it twice, once
    per step, cost 0.1 s of an installed environment); ``assume``: named with the digest its distribution's RECORD
    states, not hashed (scan/deferred.py checks it later). A small file is read whole (:func:`licscan.binary.paged.open_file`), and
    one in which naming surely finds nothing gets its record at once (:func:`quiet_record`)."""
    shared = _shared()
    try:
        fd, small = open_file(source, follow=False)  # (a link put in the walked file's place is not followed)
    except OSError as error:
        return _unreadable(shared, vpath, error)
    if small is not None:
        record = quiet_plain(vpath, small) if not shared.digests else None
        return record if record is not None else _examine_data(shared, vpath, small, assume)
    with contextlib.ExitStack() as stack:
        try:
            data = stack.enter_context(mapped(fd, random_access=True))
        except OSError as error:
            return _unreadable(shared, vpath, error)
        return _examine_data(shared, vpath, data, assume)


def quiet_plain(vpath: str, data: bytes) -> FileRecord | None:
    """The record of a plain file held whole in ``data`` when its head gives its facts and naming surely finds
    nothing in it (:func:`quiet_record`), else None (examine it)."""
    facts = head_facts(data, vpath)
    return quiet_record(vpath, facts, data) if facts is not None else None


def _examine_data(shared: Shared, vpath: str, data: Buffer, assume: bool) -> FileRecord:
    facts = inspect_read(data, vpath, shared.file_limits)
    if isinstance(data, PagedMap) and hasattr(mmap, "MADV_NORMAL"):
        data.madvise(mmap.MADV_NORMAL)  # inspection touched scattered headers; naming reads in order
    known = recorded_sha256(distribution_of(vpath, shared.distributions), vpath) if assume else None
    return examine(vpath, facts, data, facts.size, (), shared.distributions, digests=shared.digests,
                   sha256=known or None)


def _unreadable(shared: Shared, vpath: str, error: OSError) -> FileRecord:
    facts = unreadable(vpath, error)
    return examine(vpath, facts, None, facts.size, (), shared.distributions, digests=shared.digests)


@dataclass(frozen=True)
class _BatchKey:
    """A batch's cache entry name (None: not cacheable), and the same-boot memo name to store (None: nothing to
    store)."""

    key: str | None
    memo: str | None


def _batch_key(cache: Cache, shared: Shared, batch: Sequence[tuple[str, str]],
               before: list[Identity]) -> _BatchKey:
    """The entry name binds each file's content digest, size, virtual path and the digest of its owner's metadata;
    the memo name, each file's identity and the digest of its owner's metadata (an edited METADATA or RECORD beside
    unchanged files is not a memo hit: the files are named from it). A file's digest is the one read for the tree
    memo in this run when the file kept its identity (:meth:`licscan.cache.Cache.known_digest`), else read here."""
    owners = [_owner_context(shared, vpath) for _, vpath in batch]
    memo = cache.identity_key("\0".join(f"{source}\0{owner}" for (source, _), owner in zip(batch, owners)),
                              before)  # real paths (the walker's)
    known = [cache.known_digest(source, ident) for (source, _), ident in zip(batch, before)]
    if None in known:
        found = cache.get(memo, "memo", str) if memo is not None else None
        if found is not None:
            return _BatchKey(found, None)  # the memo is stored already
    try:
        digests = [digest or _content_digest(source) for (source, _), digest in zip(batch, known)]
    except OSError:
        return _BatchKey(None, memo)
    parts = []
    for (_source, vpath), digest, ident, owner in zip(batch, digests, before, owners):
        parts += [vpath, digest, str(ident[2]), owner]
    return _BatchKey(cache.key("batch", *parts), memo)


def _owner_context(shared: Shared, vpath: str) -> str:
    """The digest of the metadata of the distribution that owns ``vpath`` ("" for none)."""
    dist = distribution_of(vpath, shared.distributions)
    return shared.context.get(dist.vpath, "") if dist is not None else ""


def examine_batch(batch: Sequence[tuple[str, str]], assume: bool = False) -> list[FileRecord]:
    """Examine a batch of plain files (in a worker process when jobs > 1), from the content cache when the same
    bytes were examined at the same virtual paths before.

    The batch is one cache entry, keyed by the content digest of every file's bytes (BLAKE3), its size,
    its virtual path and the digest of its distribution's metadata; a same-boot memo keyed by the files'
    identities (device, inode, size, mtime, ctime) skips the hashing when none of them changed. A batch whose files
    change while they are examined, or whose results a time budget cut, is not stored. ``assume``: the files are
    named with their RECORD's digest (:mod:`licscan.scan.deferred`; only without the cache)."""
    shared = _shared()
    cache = shared.cache
    if cache is None:
        return [_examine_path(source, vpath, assume) for source, vpath in batch]
    identities = [identity(source) for source, _ in batch]
    before = [ident for ident in identities if ident is not None]
    found = _batch_key(cache, shared, batch, before) if len(before) == len(batch) else _BatchKey(None, None)
    if found.key is not None:
        hit = cache.get(found.key, "batch", tuple)
        if hit is not None and len(hit) == len(batch) and all(
                isinstance(r, FileRecord) and r.vpath == vpath for r, (_, vpath) in zip(hit, batch)):
            if found.memo is not None:
                cache.put(found.memo, "memo", found.key)
            return list(hit)
    records = [_examine_path(source, vpath) for source, vpath in batch]
    if found.key is not None and identities == [identity(source) for source, _ in batch] \
            and not any(budget.reached(r.facts.all_diagnostics()) for r in records):
        cache.put(found.key, "batch", tuple(records))
        if found.memo is not None:
            cache.put(found.memo, "memo", found.key)
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


def identity(path: str) -> Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _install(shared: Shared | None) -> None:
    global _SHARED
    _SHARED = shared


# A task, and a cache entry, is a batch of files of one folder: at most this many, or this many bytes (a larger
# file alone). 12,715 small files of an installed environment as single tasks spent more time in the pool's queues
# than in examining them, and as single entries more time reading entries than examining. Batches follow folders so
# that a file added or removed changes the batches of its own folder only.
_BATCH_FILES = 64
_BATCH_BYTES = 32 << 20


# What examining a plain file costs, roughly (CPU seconds; measured on the installed CUDA environment, 12,846
# files): about 0.1 ms for any file (open, sniff, name); per GiB, about 1 s for a file the catalog may name (its
# whole bytes are hashed for the RECORD comparison, and its version markers searched), 5 s for a static archive
# (every member is read), and 0.05 s for any other file (its readers touch headers and device code only:
# libtorch_cuda.so, 480 MiB, takes 45 ms). Only the order of the work depends on it (feed.py: the costliest first,
# so that the processes finish together), never a result.
_COST_PER_FILE = 1e-4
_COST_PER_BYTE_NAMED = 1.0 / (1 << 30)
_COST_PER_BYTE_ARCHIVE = 5.0 / (1 << 30)
_COST_PER_BYTE = 0.05 / (1 << 30)
# Below this size the bytes term is smaller than the per-file term whatever the file's name: the catalog's name
# pattern (a fullmatch of ~4 us) is not asked (12,700 of the environment's 12,846 files; the walk's per-file CPU).
_COST_NAME_FROM = 64 << 10


def named_by_catalog(name: str) -> bool:
    """Whether the catalog may name a file called ``name`` (then its bytes are hashed when its distribution's RECORD
    lists a digest)."""
    return catalog.load_catalog().any_name.fullmatch(name) is not None


def file_cost(vpath: str, size: int, hashed: bool = True) -> float:
    """The estimated CPU seconds of examining the plain file at ``vpath`` of ``size`` bytes (``hashed``: a file the
    catalog may name is hashed)."""
    if vpath.endswith(".a"):
        rate = _COST_PER_BYTE_ARCHIVE
    elif size < _COST_NAME_FROM:
        rate = _COST_PER_BYTE
    elif hashed and named_by_catalog(basename(vpath)):
        rate = _COST_PER_BYTE_NAMED
    else:
        rate = _COST_PER_BYTE
    return _COST_PER_FILE + size * rate


@dataclass(frozen=True)
class Batch:
    """Plain files of one folder examined (and cached) together: (real path, virtual path) pairs, their bytes, and
    what examining them is estimated to cost (:func:`file_cost`)."""

    files: tuple[tuple[str, str], ...]
    size: int
    cost: float = 0.0
    assume: bool = False  # named with their RECORD's digest, hashed later (licscan.scan.deferred)


class Batcher:
    """Cuts the plain files, in walk order, into :class:`Batch` values as they come; ``by_folder``: a batch holds
    files of one folder only (a batch is one cache entry). Without the cache, files of several folders share a
    batch: the environment tree's 12,846 files are 1,242 batches of one folder (403 of them of one file), and each
    batch is a task and a result through the worker pool's pipes (the parent's pool thread alone took 0.1 s of CPU
    receiving them)."""

    def __init__(self, by_folder: bool = True) -> None:
        self._files: list[tuple[str, str]] = []
        self._size = 0
        self._cost = 0.0
        self._folder: str | None = None
        self._by_folder = by_folder

    def add(self, source: str, vpath: str, length: int) -> Batch | None:
        """Take one file; the batch it closes (the files before it), if any."""
        here = (vpath.rsplit("/", 1)[0] if "/" in vpath else "") if self._by_folder else None
        done = None
        if self._files and (here != self._folder or len(self._files) >= _BATCH_FILES
                            or self._size + length > _BATCH_BYTES):
            done = self.flush()
        self._folder = here
        self._files.append((source, vpath))
        self._size += length
        self._cost += file_cost(vpath, length)
        return done

    def flush(self) -> Batch | None:
        """The batch being filled (None when empty)."""
        if not self._files:
            return None
        done = Batch(tuple(self._files), self._size, self._cost)
        self._files, self._size, self._cost = [], 0, 0.0
        return done


def shared_context(limits: Limits, digests: bool, cache: Cache | None,
                   distributions: Sequence[Distribution], known: Contexts | None = None) -> Shared:
    """What examining a file needs besides its path, for ``distributions`` (``known``: see
    :func:`_distribution_context`)."""
    return Shared(limits, digests, cache, tuple(distributions),
                   _distribution_context(distributions, known) if cache is not None else {})


def examine_here(shared: Shared, batch: Batch) -> list[FileRecord]:
    """Examine ``batch`` in this process."""
    previous = _SHARED
    _install(shared)
    try:
        return examine_batch(batch.files, batch.assume)
    finally:
        _install(previous)


def prepare_workers() -> None:
    """Build, in this process, the tables that examining any file builds on first use (the catalog's patterns,
    the literals searched in every file), so that worker processes forked afterwards inherit them instead of
    each building its own (65 ms of CPU per process)."""
    catalog.prepare()
    catalog.literal_set()
    observe.static_literal_set()


def worker_start(shared: Shared, parent: int) -> None:
    """Pool initializer: die with the parent (docs/security.md), take the shared context."""
    die_with_parent(parent)
    _install(shared)


__all__ = ["Batch", "Batcher", "Identity", "examine_batch", "examine_here", "file_cost", "identity",
           "named_by_catalog", "prepare_workers", "shared_context", "worker_start"]
