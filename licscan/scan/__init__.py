"""One scan: walk the inputs, inspect every file, name the NVIDIA and GPU parts, collect the inventory (docs/architecture.md).

Plain files are inspected by path (with ``jobs > 1`` also in worker processes, while the walk goes on:
:mod:`licscan.scan.feed`; from the cache when unchanged);
archive members are inspected from the bytes the walker hands out, while they are valid. Components are named
after the walk, when the packaging metadata of every enclosing distribution is known. Naming one file is
:func:`licscan.identify.examine.examine`; plain files are examined by :mod:`licscan.scan.plain` (batches, worker
processes from :mod:`licscan.workers`, the content cache), archive files are cached whole by
:mod:`licscan.scan.archives`.
"""

from __future__ import annotations

import fnmatch
import mmap
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from licscan.binary.limits import Limits
from licscan.cache import DEFAULT_MAX_BYTES, Cache, CacheRefused, KnownDigests
from licscan.inventory.limits import WalkLimits

if TYPE_CHECKING:
    from licscan.identify.examine import FileRecord, examine
    from licscan.model import (
        ComponentMatch,
        Dependency,
        DeviceImage,
        Diagnostic,
        Distribution,
        Inventory,
        LicenseTextMatch,
        SpecialFile,
    )
    from licscan.scan.archives import ArchiveBucket, Gathered
    from licscan.scan.deferred import Deferred
    from licscan.scan.feed import PlainFiles
    from licscan.scan.members import MemberFeed

# The readers, the walker, the naming layer and the model are imported where a scan starts, not with this module:
# an audit replayed from the cache (licscan.audit) needs ScanConfig only.

Progress = Callable[[str], None]


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


def open_cache(config: ScanConfig, settings: str, warn: Callable[[str], None] | None = None,
               known: KnownDigests | None = None) -> Cache | None:
    """The content cache of ``config`` (None with ``--no-cache``, or when the folder is refused: then ``warn`` gets
    the one-line reason and the scan runs without the cache); ``known``: content digests already read."""
    if not config.cache_dir:
        return None
    try:
        return Cache.open(config.cache_dir, settings, max_bytes=config.cache_max_bytes, known=known)
    except CacheRefused as refused:
        (warn or _warn)(str(refused))
        return None


def _warn(message: str) -> None:
    print(f"licscan: {message}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------------ scan


def scan(paths: Sequence[str], config: ScanConfig = ScanConfig(),
         progress: Progress | None = None,
         warn: Callable[[str], None] | None = None,
         known: KnownDigests | None = None,
         meanwhile: Callable[[], None] | None = None,
         deferred: Deferred | None = None) -> tuple[Inventory, list[FileRecord]]:
    """Scan ``paths`` (files or folders) and return the inventory and the per-file records behind it.
    ``progress``, when given, is called with the virtual path of every file once it has been inspected; ``warn``
    with a one-line message when the cache folder is refused (default: standard error); ``known``: the content
    digests of files the caller read already (the tree memo's, licscan.audit), so the cache keys need no read;
    ``meanwhile``: called once, in this process, after the walk while the worker processes examine files (what
    the caller needs after the scan and would otherwise do while they idle: an audit parses its rule packs
    there); an exception it raises ends the scan. ``deferred``: the largest catalogued libraries may be named with
    their RECORD's digest and hashed by a worker after the scan (without the cache and with worker processes
    only); the caller then must call ``deferred.settle(records)`` (a corrected inventory, or None) and
    ``deferred.close()`` (licscan/scan/deferred.py)."""
    from licscan.inventory.walk import walk
    from licscan.scan.archives import Archives, Gathered
    from licscan.scan.feed import PlainFiles
    from licscan.scan.members import MemberFeed, setting
    from licscan.workers import steady_heap

    walk_limits = config.walk_limits or WalkLimits()
    cache = open_cache(config, f"{config.settings()}\0{walk_limits!r}\0{config.exclude!r}", warn, known)
    archives = Archives(cache) if cache is not None else None
    got = Gathered()
    plain = PlainFiles(config.limits, config.digests, config.jobs, cache, progress, deferred)
    members = MemberFeed(setting(config.limits, config.digests), config.jobs - 1, got, progress) \
        if config.jobs > 1 else None
    with steady_heap():  # the loaded modules and tables: not walked by the collector, here or in the workers
        try:
            # A small plain file is read whole by the walk's read of its first bytes, and one in which naming surely
            # finds nothing gets its record here at once (never batched, sent to a worker or cached: its record
            # costs less to make again from its bytes than to key, encode and decode).
            quiet = not config.digests
            items_out = walk(list(paths), walk_limits, exclude=(lambda v: _excluded(v, config.exclude))
                             if config.exclude else None,
                             skip_archive=archives.skip if archives is not None else None,
                             digests=_named_by_catalog, distributions_ahead=plain.ahead,
                             whole=_QUIET_READ if quiet else 0)
            _gather(items_out, config, got, progress, plain, members)
            if members is not None:
                members.finish()
            got.name_members()
            if archives is not None:
                archives.store(got)
                archives.replay(got)
            got.records.extend(plain.finish(got.distributions, meanwhile))
        finally:
            if members is not None:
                members.close()
            plain.close()
    got.records.sort(key=lambda r: r.vpath)
    if cache is not None:
        cache.trim()
    if deferred is not None:
        deferred.rebuild = lambda records: build_inventory(paths, records, got.distributions, got.specials,
                                                           got.diagnostics)
    return build_inventory(paths, got.records, got.distributions, got.specials, got.diagnostics), got.records


# Plain files up to this size are read whole by the walk when the scan has no cache (as licscan.binary.paged reads a
# file it examines: SMALL_FILE), so that a file in which naming surely finds nothing gets its record where it is
# walked, without a worker opening it again or its record crossing a pipe (12,700 of the environment tree's files).
_QUIET_READ = 256 << 10


def _named_by_catalog(name: str) -> bool:
    """Whether the catalog may name a file called ``name``: such an archive member, when spooled, is hashed while
    it is read (examine compares its sha256 with the RECORD; hashing the spooled copy afterwards cost 2.4 s of the
    main thread on an image of the CUDA environment)."""
    from licscan.scan.plain import named_by_catalog

    return named_by_catalog(name)


def _gather(walked: Iterable[object], config: ScanConfig, got: Gathered, progress: Progress | None,
            plain: PlainFiles, members: MemberFeed | None = None) -> None:
    """Sort what the walk hands out; archive members are observed now, while their bytes are valid (named after
    the walk), an image layer's members held in memory by worker processes when ``members`` is given
    (licscan.scan.members); plain files go to ``plain`` (worker processes examine them meanwhile)."""
    from licscan.binary.buffer import release_pages
    from licscan.identify.examine import Observed
    from licscan.inventory import items
    from licscan.model import Diagnostic, Distribution, SpecialFile
    from licscan.scan.members import SEND_MAX, as_member, examine_member, setting
    from licscan.scan.plain import quiet_plain

    how = setting(config.limits, config.digests)

    for item in walked:
        if isinstance(item, items.FileBlob):
            if item.source is not None and not item.containers:
                whole = item.whole
                if whole is not None and not config.digests:
                    record = quiet_plain(item.vpath, whole)
                    if record is not None:
                        got.records.append(record)
                        if progress is not None:
                            progress(item.vpath)
                        continue
                plain.add(item.source, item.vpath, item.size)
                continue
            data = item.data if item.data is not None else b""
            if members is not None and item.layer is not None and isinstance(data, bytes) \
                    and len(data) <= SEND_MAX:
                members.add(as_member(item, data))  # an image member held in memory: a worker examines it
                continue
            result = examine_member(as_member(item, data), how)
            if isinstance(result, Observed):
                got.add(result)
            else:
                got.records.append(result)
            release_pages(data, 0, len(data) + mmap.PAGESIZE)  # a spooled member's pages: not kept resident
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
    from packaging.utils import canonicalize_name

    from licscan.identify import components as naming
    from licscan.identify.owner import distribution_of
    from licscan.model import Inventory, Summary

    all_diagnostics = list(diagnostics)
    device_code: list[DeviceImage] = []
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


__all__ = ["ArchiveBucket", "FileRecord", "ScanConfig", "build_inventory", "examine", "open_cache", "scan"]


def __getattr__(name: str) -> object:
    """The re-exported names of the layers below, imported when first asked for."""
    if name in ("FileRecord", "examine"):
        from licscan.identify import examine as examine_module

        return getattr(examine_module, name)
    if name == "ArchiveBucket":
        from licscan.scan import archives

        return archives.ArchiveBucket
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dependencies(records: list[FileRecord]) -> list[Dependency]:
    """DT_NEEDED entries of every ELF file and imports of every PE file that name a catalogued part, and where the
    input ships it."""
    from licscan.identify import catalog
    from licscan.identify.linkage import Providers
    from licscan.model import Dependency

    providers = Providers.index((r.vpath, r.facts) for r in records)
    out: list[Dependency] = []
    named: dict[str, tuple[ComponentMatch, ...]] = {}  # a bare name's matches: the same for every file needing it
    for record in records:
        for needed in record.facts.needed:  # DT_NEEDED, or PE imports and delay-loaded imports
            matches = named.get(needed)
            if matches is None:
                matches = named[needed] = catalog.identify(needed, None, None, None, with_signals=False)
            for match in matches:
                out.append(Dependency(record.vpath, needed, match.name, match.vendor, match.kind,
                                      providers.of(needed)))
    return sorted(out, key=lambda d: (d.path, d.needs))
