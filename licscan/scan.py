"""One scan: walk the inputs, inspect every file, name the NVIDIA and GPU parts, collect the inventory (DESIGN A1).

Plain files are inspected by path (in worker processes with ``jobs > 1``, from the cache when unchanged);
archive members are inspected from the bytes the walker hands out, while they are valid. Components are named
after the walk, when the packaging metadata of every enclosing distribution is known.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from licscan.binary import budget
from licscan.binary.images import Limits
from licscan.binary.inspect import inspect_buffer, inspect_file
from packaging.utils import canonicalize_name

from licscan.cache import Cache
from licscan.vpath import SEP, innermost, is_within
from licscan.model import (Component, ComponentKind, Diagnostic, FileFacts, FileFormat, Inventory,
                           Summary)


@dataclass(frozen=True)
class ScanConfig:
    limits: Limits = field(default_factory=Limits)
    walk_limits: Any = None  # licscan.inventory WalkLimits; None = its defaults
    jobs: int = os.cpu_count() or 1
    cache_dir: str | None = None
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


def _recorded_sha256(vpath: str, dist) -> str | None:
    if dist is None or vpath not in _recorded_paths(dist):
        return None
    return next(digest for path, digest in dist.files if path == vpath)


def examine(vpath: str, facts: FileFacts, data, size: int, containers: tuple[str, ...] = (),
            distributions: Sequence[Any] = (), *, digests: bool = False) -> FileRecord:
    """Name the components in one file from its facts, its bytes and its enclosing distribution; hash it when the
    distribution's RECORD has a hash to compare with; identify licence texts."""
    from licscan.identify import catalog, licensetext

    dist = distribution_of(vpath, distributions)
    matches = tuple(catalog.identify(vpath, facts, dist, data))
    digest = None
    if data is not None and matches and (dist is None or _recorded_sha256(vpath, dist)):
        # Hashed now while the bytes are here: the enclosing wheel's RECORD may only be read later in the walk.
        digest = hashlib.sha256(data).hexdigest()
        if dist is not None:
            matches = tuple(catalog.identify(vpath, facts, dist, data, sha256=digest))
    text = None
    if data is not None and licensetext.is_candidate(vpath, size):
        text = licensetext.identify_license_text(vpath, data)
    sha1 = None
    if digests and data is not None and (matches or facts.format is not FileFormat.UNKNOWN or text is not None):
        sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        digest = digest or hashlib.sha256(data).hexdigest()
    return FileRecord(vpath, size, containers, facts, matches, digest, text, sha1)


def _examine_path(source: str, vpath: str, limits: Limits, cache_dir: str | None, settings: str,
                  distributions: Sequence[Any] = (), digests: bool = False) -> FileRecord:
    """Inspect one plain file (runs in a worker process when jobs > 1)."""
    cache = Cache(cache_dir, settings) if cache_dir else None
    key = None
    if cache is not None:
        dist = distribution_of(vpath, distributions)
        try:
            key = cache.key(source, os.stat(source), f"{vpath}\0{dist!r}")
        except OSError:
            key = None
        if key is not None:
            hit = cache.get(key)
            if isinstance(hit, FileRecord):
                return hit
    facts = inspect_file(source, display=vpath, limits=replace(limits, jobs=1))
    record = _with_data(source, lambda data: examine(vpath, facts, data, facts.size, (), distributions,
                                                     digests=digests))
    if cache is not None and key is not None and not budget.reached(facts.all_diagnostics()):
        cache.put(key, record)
    return record


def _with_data(source: str, use):
    import mmap

    try:
        with open(source, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return use(b"")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return use(data)
    except OSError:
        return use(None)


def _records_for_paths(jobs: list[tuple[str, str]], config: ScanConfig, distributions: list,
                       progress: Callable[[str], None] | None = None) -> list[FileRecord]:
    if not jobs:
        return []
    settings = config.settings()
    done = progress or (lambda vpath: None)
    if config.jobs <= 1 or len(jobs) < 4:
        return [(_examine_path(src, vpath, config.limits, config.cache_dir, settings, distributions, config.digests),
                 done(vpath))[0] for src, vpath in jobs]
    import multiprocessing

    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=config.jobs, mp_context=context) as pool:
        futures = [pool.submit(_examine_path, src, vpath, config.limits, config.cache_dir, settings, distributions,
                               config.digests)
                   for src, vpath in jobs]
        return [(f.result(), done(vpath))[0] for f, (_src, vpath) in zip(futures, jobs)]


@dataclass(frozen=True)
class ArchiveBucket:
    """Everything one archive file contributed to a scan, as the content cache keeps it."""

    records: tuple[FileRecord, ...]
    distributions: tuple[Any, ...]
    specials: tuple[Any, ...]
    diagnostics: tuple[Diagnostic, ...]


def _inside(path: str, archive: str) -> bool:
    return path == archive or path.startswith(archive + SEP)


def scan(paths: Sequence[str], config: ScanConfig = ScanConfig(),
         progress: Callable[[str], None] | None = None) -> tuple[Inventory, list[FileRecord]]:
    """Scan ``paths`` (files or folders) and return the inventory and the per-file records behind it.
    ``progress``, when given, is called with the virtual path of every file once it has been inspected."""
    from licscan.inventory import items
    from licscan.inventory.walk import WalkLimits, walk

    walk_limits = config.walk_limits or WalkLimits()
    records: list[FileRecord] = []
    plain: list[tuple[str, str]] = []
    diagnostics: list[Diagnostic] = []
    distributions: list[items.Distribution] = []
    specials: list[items.SpecialFile] = []
    # Archive files (a wheel, a .deb, an image tarball) are cached whole: an unchanged one is not even opened.
    cache = Cache(config.cache_dir, f"{config.settings()}\0{walk_limits!r}\0{config.exclude!r}") \
        if config.cache_dir else None
    to_store: dict[str, str] = {}
    replayed: list[ArchiveBucket] = []

    def skip_archive(vpath: str, real: str, st: os.stat_result) -> bool:
        key = cache.key(real, st, "archive\0" + vpath)
        bucket = cache.get(key)
        if isinstance(bucket, ArchiveBucket):
            replayed.append(bucket)
            return True
        to_store[vpath] = key
        return False

    for item in walk(list(paths), walk_limits, exclude=(lambda v: _excluded(v, config.exclude))
                     if config.exclude else None, skip_archive=skip_archive if cache is not None else None):
        if isinstance(item, items.FileBlob):
            if item.source is not None and not item.containers:
                plain.append((item.source, item.vpath))
                continue
            data = item.data if item.data is not None else b""
            facts = inspect_buffer(data, item.vpath, replace(config.limits, jobs=1)) if len(data) else \
                FileFacts(item.vpath, _unknown(), 0)
            record = examine(item.vpath, facts, data, item.size, item.containers, distributions,
                             digests=config.digests)
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
    for vpath, key in to_store.items():
        bucket = ArchiveBucket(
            tuple(r for r in records if r.containers and r.containers[0] == vpath),
            tuple(d for d in distributions if _inside(d.vpath, vpath)),
            tuple(s for s in specials if _inside(s.vpath, vpath)),
            tuple(d for d in diagnostics if _inside(d.path, vpath)))
        if not any(budget.reached(r.facts.all_diagnostics()) for r in bucket.records):
            cache.put(key, bucket)
    for bucket in replayed:
        records.extend(bucket.records)
        distributions.extend(bucket.distributions)
        specials.extend(bucket.specials)
        diagnostics.extend(bucket.diagnostics)
    records.extend(_records_for_paths(plain, config, distributions, progress))
    records.sort(key=lambda r: r.vpath)
    return build_inventory(paths, records, distributions, specials, diagnostics), records


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
    merged = []
    for match in second:
        seen = first.pop(match.name, None)
        if seen is not None and seen.version_source is not None and seen.version_source.value == "marker":
            match = replace(match, version=seen.version, version_source=seen.version_source,
                            version_range=seen.version_range, versions=seen.versions)
        if seen is not None:
            match = replace(match, evidence=tuple(dict.fromkeys(match.evidence + seen.evidence)),
                            modifications=tuple(dict.fromkeys(match.modifications + seen.modifications)))
        merged.append(match)
    merged.extend(first.values())  # found from the bytes only
    return replace(record, matches=tuple(merged))


_RECORDED: dict[int, tuple[Any, frozenset[str]]] = {}


def _recorded_paths(dist) -> frozenset[str]:
    """The virtual paths a distribution's RECORD lists (torch's lists 12,000), indexed once per distribution
    object (by identity: hashing the frozen dataclass would hash its whole RECORD every time)."""
    hit = _RECORDED.get(id(dist))
    if hit is None or hit[0] is not dist:
        hit = _RECORDED[id(dist)] = (dist, frozenset(path for path, _ in dist.files))
    return hit[1]


def distribution_of(vpath: str, distributions: Iterable[Any]) -> Any | None:
    """The innermost distribution that owns ``vpath``: listed in its RECORD, or under its scope."""
    return innermost(vpath, (d for d in distributions if (d.files and vpath in _recorded_paths(d))
                             or is_within(vpath, d.scope)), lambda d: d.scope)


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
    """DT_NEEDED entries of every ELF file that name a catalogued part, and where the input ships it."""
    from licscan.identify import catalog
    from licscan.model import Dependency

    provided: dict[str, list[str]] = {}
    for record in records:
        name = record.vpath.rsplit("/", 1)[-1]
        provided.setdefault(name, []).append(record.vpath)
        elf = record.facts.elf
        if elf is not None and elf.soname and elf.soname != name:
            provided.setdefault(elf.soname, []).append(record.vpath)
    out = []
    for record in records:
        elf = record.facts.elf
        if elf is None:
            continue
        for needed in elf.needed:
            for match in catalog.identify(needed, None, None, None, with_signals=False):
                out.append(Dependency(record.vpath, needed, match.name, match.vendor, match.kind,
                                      tuple(sorted(provided.get(needed, ())))))
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
        props = sorted({p for m, v in members for p in m.to_component("", ()).properties})
        out.append(replace(first, evidence=tuple(evidence), properties=tuple(props)))
    return out


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
    """Python distributions that are NVIDIA's or ship NVIDIA parts (kind python-distribution, DESIGN B3)."""
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
