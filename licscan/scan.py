"""One scan: walk the inputs, inspect every file, name the NVIDIA and GPU parts, collect the inventory (docs/architecture.md).

Plain files are inspected by path (in worker processes with ``jobs > 1``, from the cache when unchanged);
archive members are inspected from the bytes the walker hands out, while they are valid. Components are named
after the walk, when the packaging metadata of every enclosing distribution is known.
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
from typing import Any

from packaging.utils import canonicalize_name

from licscan.binary import budget
from licscan.binary.images import Limits, release_pages
from licscan.binary.inspect import inspect_buffer, inspect_file
from licscan.binary.paged import PagedMap
from licscan.cache import DEFAULT_MAX_BYTES, Cache, CacheRefused, file_digest
from licscan.identify.owner import distribution_of, recorded_sha256
from licscan.model import (
    GPU_LAYER_KINDS,
    Component,
    ComponentKind,
    Diagnostic,
    FileFacts,
    FileFormat,
    Inventory,
    Summary,
)
from licscan.vpath import SEP


@dataclass(frozen=True)
class ScanConfig:
    limits: Limits = field(default_factory=Limits)
    walk_limits: Any = None  # licscan.inventory WalkLimits; None = its defaults
    jobs: int = os.cpu_count() or 1
    cache_dir: str | None = None
    cache_max_bytes: int = DEFAULT_MAX_BYTES
    exclude: tuple[str, ...] = ()  # fnmatch globs over virtual paths
    digests: bool = False  # SHA-1 and SHA-256 of every binary and named part (for the SBOM)

    def settings(self) -> str:
        """What changes results, for the cache key."""
        return repr((self.limits.max_image_bytes, self.limits.notes, self.limits.notes_auto_bytes,
                     self.limits.max_entries_per_fatbin, self.digests))


@dataclass(frozen=True)
class FileRecord:
    """One inventoried file: its facts, the components the catalog names in it, its sha256 when it was needed."""

    vpath: str
    size: int
    containers: tuple[str, ...]
    facts: FileFacts
    matches: tuple[Any, ...]  # licscan.identify.catalog.ComponentMatch
    sha256: str | None
    license_text: Any = None  # licscan.identify.licensetext.LicenseTextMatch
    sha1: str | None = None  # with ScanConfig.digests, for binaries and named parts
    layer: str | None = None
    deleted_in_upper_layer: bool = False


def _excluded(vpath: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(vpath, p) for p in patterns)


def examine(vpath: str, facts: FileFacts, data, size: int, containers: tuple[str, ...] = (),
            distributions: Sequence[Any] = (), *, digests: bool = False, sha256: str | None = None) -> FileRecord:
    """Name the components in one file from its facts, its bytes and its enclosing distribution; hash it when the
    distribution's RECORD has a hash to compare with; identify licence texts. ``sha256``: the digest of ``data``
    when the caller already has it (the content cache hashed the file), so the bytes are not hashed twice."""
    from licscan.identify import catalog, licensetext

    dist = distribution_of(vpath, distributions)
    hashed: list[str] = []

    def content_sha256() -> str:  # at most once, and only when a digest is compared or kept
        if not hashed:
            hashed.append(sha256 or _digest(data, "sha256"))
        return hashed[0]

    matches = tuple(catalog.identify(vpath, facts, dist, data, sha256=content_sha256 if data is not None else None))
    digest = None
    if data is not None and matches and (dist is None or recorded_sha256(dist, vpath)):
        # Hashed now while the bytes are here: the enclosing wheel's RECORD may only be read later in the walk.
        digest = content_sha256()
    text = None
    if data is not None and licensetext.is_candidate(vpath, size):
        text = licensetext.identify_license_text(vpath, data)
    sha1 = None
    if digests and data is not None and (matches or facts.format is not FileFormat.UNKNOWN or text is not None):
        sha1 = _digest(data, "sha1")
        digest = digest or content_sha256()
    return FileRecord(vpath, size, containers, facts, matches, digest, text, sha1)


@dataclass(frozen=True)
class _Shared:
    """What every file examination needs besides its own path: given to each worker process once (the pool's
    initializer; inherited through fork), never pickled per task (issue 14: torch's RECORD alone has 13,000 rows)."""

    limits: Limits
    digests: bool
    cache: Cache | None
    distributions: tuple[Any, ...]
    context: dict[str, str]  # distribution vpath -> digest of its metadata (bound into the file's cache key)


_SHARED: _Shared | None = None


def _distribution_context(distributions: Sequence[Any]) -> dict[str, str]:
    """A digest of each distribution's metadata (name, version, licence, RECORD...): what ``examine`` may use of it."""
    from licscan import cache as cache_module

    out = {}
    for dist in distributions:
        try:
            out[dist.vpath] = hashlib.sha256(cache_module.dumps(dist)).hexdigest()
        except (cache_module.CodecError, ValueError):
            out[dist.vpath] = hashlib.sha256(repr(dist).encode("utf-8", "surrogateescape")).hexdigest()
    return out


def _examine_path(source: str, vpath: str, sha256: str | None = None) -> FileRecord:
    """Inspect one plain file and name what is in it (``sha256``: its digest when the cache computed it)."""
    shared = _SHARED
    assert shared is not None, "scan context not installed"
    facts = inspect_file(source, display=vpath, limits=replace(shared.limits, jobs=1))
    return _with_data(source, lambda data: examine(vpath, facts, data, facts.size, (), shared.distributions,
                                                   digests=shared.digests, sha256=sha256))


def _examine_batch(batch: Sequence[tuple[str, str]]) -> list[FileRecord]:
    """Examine a batch of plain files (in a worker process when jobs > 1), from the content cache when the same
    bytes were examined at the same virtual paths before.

    The batch is one cache entry, keyed by the SHA-256 of every file's bytes (read once with ``preadv``), its size,
    its virtual path and the digest of its distribution's metadata; a same-boot memo keyed by the files'
    identities (device, inode, size, mtime, ctime) skips the hashing when none of them changed. A batch whose files
    change while they are examined, or whose results a time budget cut, is not stored."""
    shared = _SHARED
    assert shared is not None, "scan context not installed"
    cache = shared.cache
    if cache is None:
        return [_examine_path(source, vpath) for source, vpath in batch]
    before = [_identity(source) for source, _ in batch]
    digests: list[str | None] = [None] * len(batch)
    key = memo = None
    if all(ident is not None for ident in before):
        memo = cache.identity_key("\0".join(source for source, _ in batch),  # real paths (the walker's)
                                  [ident for ident in before if ident is not None])
        known = cache.get(memo, "memo", tuple) if memo is not None else None
        if known is not None and len(known) == len(batch) + 1:
            key, digests = known[0], list(known[1:])
            memo = None  # stored already
        else:
            try:
                digests = [_content_digest(source) for source, _ in batch]
            except OSError:
                digests = [None] * len(batch)
            if all(d is not None for d in digests):
                parts = []
                for (_source, vpath), digest, ident in zip(batch, digests, before):
                    dist = distribution_of(vpath, shared.distributions)
                    parts += [vpath, str(digest), str(ident[2] if ident else -1),
                              shared.context.get(dist.vpath, "") if dist is not None else ""]
                key = cache.key("batch", *parts)
        if key is not None:
            hit = cache.get(key, "batch", tuple)
            if hit is not None and len(hit) == len(batch) and all(
                    isinstance(r, FileRecord) and r.vpath == vpath for r, (_, vpath) in zip(hit, batch)):
                if memo is not None:
                    cache.put(memo, "memo", (key, *digests))
                return list(hit)
    records = [_examine_path(source, vpath, digest) for (source, vpath), digest in zip(batch, digests)]
    if key is not None and before == [_identity(source) for source, _ in batch] \
            and not any(budget.reached(r.facts.all_diagnostics()) for r in records):
        cache.put(key, "batch", tuple(records))
        if memo is not None:
            cache.put(memo, "memo", (key, *digests))
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


def _identity(path: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _digest(data, name: str) -> str:
    if isinstance(data, PagedMap):
        return data.hash(name)
    return (hashlib.sha1(data, usedforsecurity=False) if name == "sha1" else hashlib.sha256(data)).hexdigest()


def _with_data(source: str, use):
    try:
        with open(source, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return use(b"")
            with PagedMap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                try:
                    return use(data)
                finally:
                    release_pages(data, 0, len(data) + mmap.PAGESIZE)
    except OSError:
        return use(None)


def _install(shared: _Shared | None) -> None:
    global _SHARED
    _SHARED = shared


def _worker_start(shared: _Shared, parent: int) -> None:
    """Pool initializer: die with the parent (issue 13 item 11), take the shared context."""
    die_with_parent(parent)
    _install(shared)


def die_with_parent(parent: int) -> None:
    """Make this (worker) process end when ``parent`` does, so a killed ``licscan`` leaves no workers holding its
    output pipes: Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, elsewhere a thread that watches ``getppid()``."""
    import signal

    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # PR_SET_PDEATHSIG = 1 (<linux/prctl.h>)
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        import threading
        import time

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="licscan-parent-watch", daemon=True).start()


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


def _records_for_paths(jobs: list[tuple[str, str, int]], config: ScanConfig, distributions: list,
                       cache: Cache | None, progress: Callable[[str], None] | None = None) -> list[FileRecord]:
    """Examine the plain files ``jobs`` ((real path, virtual path, size) each): in this process with one job, else in
    a pool of worker processes that take the shared context once (initializer) and batches of (path, vpath) pairs,
    at most ``4 x jobs`` batches in flight."""
    if not jobs:
        return []
    shared = _Shared(config.limits, config.digests, cache, tuple(distributions),
                     _distribution_context(distributions) if cache is not None else {})
    done = progress or (lambda vpath: None)
    if config.jobs <= 1 or len(jobs) < 4:
        _install(shared)
        try:
            out = []
            for batch in _batches(jobs):
                for record in _examine_batch(batch):
                    out.append(record)
                    done(record.vpath)
            return out
        finally:
            _install(None)
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, wait

    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    out: list[FileRecord] = []
    window = config.jobs * 4
    with ProcessPoolExecutor(max_workers=config.jobs, mp_context=context, initializer=_worker_start,
                             initargs=(shared, os.getpid())) as pool:
        pending: set[Any] = set()

        def collect() -> None:
            nonlocal pending
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                for record in future.result():
                    out.append(record)
                    done(record.vpath)

        for batch in _batches(jobs):
            while len(pending) >= window:
                collect()
            pending.add(pool.submit(_examine_batch, batch))
        while pending:
            collect()
    return out


@dataclass(frozen=True)
class ArchiveBucket:
    """Everything one archive file contributed to a scan, as the content cache keeps it."""

    records: tuple[FileRecord, ...]
    distributions: tuple[Any, ...]
    specials: tuple[Any, ...]
    diagnostics: tuple[Diagnostic, ...]


def _inside(path: str, archive: str) -> bool:
    return path == archive or path.startswith(archive + SEP)


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


def scan(paths: Sequence[str], config: ScanConfig = ScanConfig(),
         progress: Callable[[str], None] | None = None,
         warn: Callable[[str], None] | None = None) -> tuple[Inventory, list[FileRecord]]:
    """Scan ``paths`` (files or folders) and return the inventory and the per-file records behind it.
    ``progress``, when given, is called with the virtual path of every file once it has been inspected; ``warn``
    with a one-line message when the cache folder is refused (default: standard error)."""
    from licscan.inventory import items
    from licscan.inventory.walk import WalkLimits, walk

    walk_limits = config.walk_limits or WalkLimits()
    records: list[FileRecord] = []
    plain: list[tuple[str, str, int]] = []
    diagnostics: list[Diagnostic] = []
    distributions: list[items.Distribution] = []
    specials: list[items.SpecialFile] = []
    # Archive files (a wheel, a .deb, an image tarball) are cached whole, by the SHA-256 of their bytes: an
    # unchanged one is hashed (or found in the same-boot memo) but not walked.
    cache = open_cache(config, f"{config.settings()}\0{walk_limits!r}\0{config.exclude!r}", warn)
    to_store: dict[str, tuple[str, str | None, str, str, tuple[int, ...]]] = {}
    replayed: list[ArchiveBucket] = []

    def skip_archive(vpath: str, real: str, st: os.stat_result) -> bool:
        assert cache is not None
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
            replayed.append(bucket)
            if memo is not None:
                cache.put(memo, "memo", content)
            return True
        to_store[vpath] = (key, memo, content, real, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                                      st.st_ctime_ns))
        return False

    for item in walk(list(paths), walk_limits, exclude=(lambda v: _excluded(v, config.exclude))
                     if config.exclude else None, skip_archive=skip_archive if cache is not None else None):
        if isinstance(item, items.FileBlob):
            if item.source is not None and not item.containers:
                plain.append((item.source, item.vpath, item.size))
                continue
            data = item.data if item.data is not None else b""
            facts = inspect_buffer(data, item.vpath, replace(config.limits, jobs=1)) if len(data) else \
                FileFacts(item.vpath, _unknown(), 0)
            record = examine(item.vpath, facts, data, item.size, item.containers, distributions,
                             digests=config.digests)
            release_pages(data, 0, len(data) + mmap.PAGESIZE)  # a spooled member's pages: not kept resident
            records.append(replace(record, layer=item.layer, deleted_in_upper_layer=item.deleted_in_upper_layer))
            if progress is not None:
                progress(item.vpath)
        elif isinstance(item, items.Distribution):
            distributions.append(item)
        elif isinstance(item, items.SpecialFile):
            specials.append(item)
        elif isinstance(item, Diagnostic):
            diagnostics.append(item)
    records = [refine(r, distributions) if r.containers else r for r in records]
    for vpath, (key, memo, content, real, before) in to_store.items():
        assert cache is not None
        bucket = ArchiveBucket(
            tuple(r for r in records if r.containers and r.containers[0] == vpath),
            tuple(d for d in distributions if _inside(d.vpath, vpath)),
            tuple(s for s in specials if _inside(s.vpath, vpath)),
            tuple(d for d in diagnostics if _inside(d.path, vpath)))
        # Not stored: results cut by a time budget, or an archive that changed while it was walked.
        if any(budget.reached(r.facts.all_diagnostics()) for r in bucket.records):
            continue
        if _identity(real) != before:
            continue
        cache.put(key, "archive", bucket)
        if memo is not None:
            cache.put(memo, "memo", content)
    for bucket in replayed:
        records.extend(bucket.records)
        distributions.extend(bucket.distributions)
        specials.extend(bucket.specials)
        diagnostics.extend(bucket.diagnostics)
    records.extend(_records_for_paths(plain, config, distributions, cache, progress))
    records.sort(key=lambda r: r.vpath)
    if cache is not None:
        cache.trim()
    return build_inventory(paths, records, distributions, specials, diagnostics), records


def _bucket_of(bucket: ArchiveBucket, vpath: str) -> bool:
    """A cached bucket belongs to the archive at ``vpath`` (its key binds the path too; this is a second check)."""
    return all(r.containers and r.containers[0] == vpath for r in bucket.records) and \
        all(_inside(d.vpath, vpath) for d in bucket.distributions)


def _unknown():
    from licscan.model import FileFormat

    return FileFormat.UNKNOWN


def refine(record: FileRecord, distributions: Sequence[Any]) -> FileRecord:
    """Name the components of an archive member again once the walk has read its distribution's metadata (a wheel's
    RECORD and METADATA come after its libraries). The first pass saw the bytes: what it learnt from them (content
    markers, tools found by content, translation-layer signals) is kept."""
    from licscan.identify import catalog

    dist = distribution_of(record.vpath, distributions)
    if dist is None or not record.matches:
        return record
    second = catalog.identify(record.vpath, record.facts, dist, None, sha256=record.sha256)
    first = {m.name: m for m in record.matches}
    # Layers (docs/layers.md) are named from the bytes: the first pass's match is the whole truth (its symbols and
    # strings signals, its confidence), and a drop-in it proved by content keeps NVIDIA's name match out.
    dropin = any(m.kind in GPU_LAYER_KINDS and m.confidence == "high"
                 and dict(m.properties).get("replaces") == "cuda-named" for m in record.matches)
    merged = []
    for match in second:
        if match.kind in GPU_LAYER_KINDS:
            merged.append(first.pop(match.name, match))
            continue
        if dropin and match.vendor == "NVIDIA" and match.name not in first:
            continue
        seen = first.pop(match.name, None)
        if seen is not None and seen.versions:
            # The version claims of both passes (markers from the bytes, the distribution's from its metadata)
            # decide together: a marker that gives only "12.9" leaves the distribution's 12.9.86 standing.
            match = catalog.with_claims(match, seen.versions + match.versions)
        if seen is not None:
            match = replace(match, evidence=tuple(dict.fromkeys(match.evidence + seen.evidence)),
                            modifications=tuple(dict.fromkeys(match.modifications + seen.modifications)))
        merged.append(match)
    merged.extend(first.values())  # found from the bytes only
    return replace(record, matches=tuple(merged))


def build_inventory(paths: Sequence[str], records: list[FileRecord], distributions: list, specials: list,
                    diagnostics: list[Diagnostic]) -> Inventory:
    all_diagnostics = list(diagnostics)
    device_code = []
    hits: list[tuple[Any, str]] = []
    texts: list[tuple[Any, str]] = []
    for record in records:
        all_diagnostics.extend(record.facts.all_diagnostics())
        device_code.extend(record.facts.all_images())
        hits.extend((m, record.vpath) for m in record.matches)
        if record.license_text is not None:
            texts.append((record.license_text, record.vpath))
    nvidia_dists = {distribution_of(v, distributions) for m, v in hits if m.vendor == "NVIDIA"} - {None}
    components = _components(hits) + _license_components(texts) + _distribution_components(
        d for d in distributions if d in nvidia_dists or canonicalize_name(d.name).startswith("nvidia-"))
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


def _component_id(vendor: str, name: str, version: str | None, kind: ComponentKind) -> str:
    slug = f"{vendor or 'unknown'}/{name}@{version or 'unknown'}".lower().replace(" ", "-")
    return f"{kind.value}:{slug}"


def _components(hits: list[tuple[Any, str]]) -> list[Component]:
    """One component per (vendor, name, version, kind, licence); paths, evidence and properties merged, sorted."""
    groups: dict[tuple, list[tuple[Any, str]]] = {}
    for match, vpath in hits:
        groups.setdefault((match.vendor, match.name, match.version, match.kind, match.license), []).append(
            (match, vpath))
    out = []
    for (vendor, name, version, kind, _license), members in groups.items():
        paths = tuple(sorted({v for _, v in members}))
        first = members[0][0].to_component(_component_id(vendor, name, version, kind), paths)
        evidence = sorted({e for m, v in members for e in (f"{v}: {x}" for x in m.evidence)})
        props = _merged_properties({p for m, v in members for p in m.to_component("", ()).properties})
        out.append(replace(first, evidence=tuple(evidence), properties=tuple(props)))
    return out


_CONFIDENCE = ("low", "medium", "high")


def _merged_properties(props: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The properties of a component named in several files: each file's own, except the two that describe how it
    was named (docs/layers.md), which must hold for the component as a whole -- ``confidence`` the highest of its
    files', ``signals`` the union of theirs (a report keeps one value per key)."""
    levels = [v for k, v in props if k == "confidence" and v in _CONFIDENCE]
    fired = sorted({s for k, v in props if k == "signals" for s in v.split(",") if s})
    out = {p for p in props if p[0] not in ("confidence", "signals") or (p[0] == "confidence" and not levels)}
    if levels:
        out.add(("confidence", max(levels, key=_CONFIDENCE.index)))
    if fired:
        out.add(("signals", ",".join(fired)))
    return sorted(out)


def _license_components(texts: list[tuple[Any, str]]) -> list[Component]:
    groups: dict[str, list[tuple[Any, str]]] = {}
    for match, vpath in texts:
        groups.setdefault(match.normalized_sha256, []).append((match, vpath))
    out = []
    for members in groups.values():
        match = members[0][0]
        props = [("document", match.document), ("match_method", match.method), ("sha256", match.sha256)]
        if match.date:
            props.append(("eula_text_date", match.date))
        if match.translation_clause is not None:
            props.append(("translation_clause", "yes" if match.translation_clause else "no"))
        if match.variant:
            props.append(("variant", match.variant))
        vendor = "NVIDIA" if match.document.startswith(("nvidia", "cuda", "cudnn", "tensorrt")) else ""
        out.append(Component(_component_id(vendor, match.document, match.date, ComponentKind.LICENSE_TEXT),
                             match.title, vendor, ComponentKind.LICENSE_TEXT, match.date, match.license,
                             tuple(sorted(v for _, v in members)), tuple(match.evidence), tuple(sorted(props))))
    return out


def _distribution_components(distributions: Iterable[Any]) -> list[Component]:
    """Python distributions that are NVIDIA's or ship NVIDIA parts (kind python-distribution, the JSON report schema (licscan/schemas/report.schema.json))."""
    out = []
    for dist in distributions:
        if dist.ecosystem.value != "pypi":
            continue
        evidence = [f"{dist.vpath}: Name: {dist.name}, Version: {dist.version}"]
        props = [("ecosystem", "pypi")]
        if dist.license_declared:
            evidence.append(f"declared license: {dist.license_declared}")
            props.append(("license_declared", dist.license_declared))
        vendor = "NVIDIA" if canonicalize_name(dist.name).startswith("nvidia-") else ""
        out.append(Component(_component_id(vendor or "pypi", dist.name, dist.version,
                                           ComponentKind.PYTHON_DISTRIBUTION),
                             dist.name, vendor, ComponentKind.PYTHON_DISTRIBUTION, dist.version,
                             dist.license_declared, (dist.vpath,), tuple(evidence), tuple(props)))
    return out
