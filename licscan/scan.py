"""One scan: walk the inputs, inspect every file, name the NVIDIA and GPU parts, collect the inventory (DESIGN A1).

Plain files are inspected by path (in worker processes with ``jobs > 1``, from the cache when unchanged);
archive members are inspected from the bytes the walker hands out, while they are valid. Components are named
after the walk, when the packaging metadata of every enclosing distribution is known.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from licscan.binary.images import Limits
from licscan.binary.inspect import inspect_buffer, inspect_file
from licscan.cache import Cache
from licscan.model import Component, ComponentKind, Diagnostic, DiagnosticKind, FileFacts, Inventory, Summary


@dataclass(frozen=True)
class ScanConfig:
    limits: Limits = field(default_factory=Limits)
    walk_limits: Any = None  # licscan.inventory WalkLimits; None = its defaults
    jobs: int = os.cpu_count() or 1
    cache_dir: str | None = None
    exclude: tuple[str, ...] = ()  # fnmatch globs over virtual paths

    def settings(self) -> str:
        """What changes results, for the cache key."""
        return repr((self.limits.max_image_bytes, self.limits.notes, self.limits.notes_auto_bytes,
                     self.limits.max_entries_per_fatbin))


@dataclass(frozen=True)
class FileRecord:
    """One inventoried file: its facts, what the catalog saw in its bytes, and its sha256 when it was needed."""

    vpath: str
    size: int
    containers: tuple[str, ...]
    facts: FileFacts
    matches: tuple[Any, ...]  # licscan.binary.catalog matches from the file's own bytes
    sha256: str | None
    layer: str | None = None
    deleted_in_upper_layer: bool = False


def _excluded(vpath: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(vpath, p) for p in patterns)


def examine(vpath: str, facts: FileFacts, data, size: int, containers: tuple[str, ...] = ()) -> FileRecord:
    """Catalog matches from the file's own bytes, and its sha256 when it is a named third-party part (for the
    comparison with the enclosing distribution's RECORD)."""
    from licscan.binary import catalog

    matches = tuple(catalog.identify(vpath, facts, None, data))
    digest = hashlib.sha256(data).hexdigest() if matches and data is not None else None
    return FileRecord(vpath, size, containers, facts, matches, digest)


def _examine_path(source: str, vpath: str, limits: Limits, cache_dir: str | None, settings: str) -> FileRecord:
    """Inspect one plain file (runs in a worker process when jobs > 1)."""
    cache = Cache(cache_dir, settings) if cache_dir else None
    key = None
    if cache is not None:
        try:
            key = cache.key(source, os.stat(source), vpath)
        except OSError:
            key = None
        if key is not None:
            hit = cache.get(key)
            if isinstance(hit, FileRecord):
                return hit
    facts = inspect_file(source, display=vpath, limits=replace(limits, jobs=1))
    record = _with_data(source, lambda data: examine(vpath, facts, data, facts.size))
    if cache is not None and key is not None:
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


def _records_for_paths(jobs: list[tuple[str, str]], config: ScanConfig) -> list[FileRecord]:
    if not jobs:
        return []
    settings = config.settings()
    if config.jobs <= 1 or len(jobs) < 4:
        return [_examine_path(src, vpath, config.limits, config.cache_dir, settings) for src, vpath in jobs]
    import multiprocessing

    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=config.jobs, mp_context=context) as pool:
        futures = [pool.submit(_examine_path, src, vpath, config.limits, config.cache_dir, settings)
                   for src, vpath in jobs]
        return [f.result() for f in futures]


def scan(paths: Sequence[str], config: ScanConfig = ScanConfig()) -> tuple[Inventory, list[FileRecord]]:
    """Scan ``paths`` (files or folders) and return the inventory and the per-file records behind it."""
    from licscan.inventory import items
    from licscan.inventory.walk import WalkLimits, walk

    walk_limits = config.walk_limits or WalkLimits()
    records: list[FileRecord] = []
    plain: list[tuple[str, str]] = []
    diagnostics: list[Diagnostic] = []
    distributions: list[items.Distribution] = []
    specials: list[items.SpecialFile] = []
    for item in walk(list(paths), walk_limits, exclude=(lambda v: _excluded(v, config.exclude))
                     if config.exclude else None):
        if isinstance(item, items.FileBlob):
            if item.source is not None and not item.containers:
                plain.append((item.source, item.vpath))
                continue
            data = item.data if item.data is not None else b""
            facts = inspect_buffer(data, item.vpath, replace(config.limits, jobs=1)) if len(data) else \
                FileFacts(item.vpath, _unknown(), 0)
            record = examine(item.vpath, facts, data, item.size, item.containers)
            records.append(replace(record, layer=item.layer, deleted_in_upper_layer=item.deleted_in_upper_layer))
        elif isinstance(item, items.Distribution):
            distributions.append(item)
        elif isinstance(item, items.SpecialFile):
            specials.append(item)
        elif isinstance(item, Diagnostic):
            diagnostics.append(item)
    records.extend(_records_for_paths(plain, config))
    records.sort(key=lambda r: r.vpath)
    return build_inventory(paths, records, distributions, specials, diagnostics), records


def _unknown():
    from licscan.model import FileFormat

    return FileFormat.UNKNOWN


def distribution_of(vpath: str, distributions: Iterable[Any]) -> Any | None:
    """The innermost distribution that owns ``vpath``: listed in its RECORD, or under its scope."""
    best = None
    best_len = -1
    for dist in distributions:
        owned = any(path == vpath for path, _ in dist.files) if dist.files else False
        scope = dist.scope.rstrip("/")
        inside = owned or vpath == scope or vpath.startswith(scope + "/") or vpath.startswith(scope + "!/")
        if inside and len(scope) > best_len:
            best, best_len = dist, len(scope)
    return best


def build_inventory(paths: Sequence[str], records: list[FileRecord], distributions: list, specials: list,
                    diagnostics: list[Diagnostic]) -> Inventory:
    from licscan.binary import catalog

    all_diagnostics = list(diagnostics)
    device_code = []
    hits: list[tuple[Any, str]] = []
    for record in records:
        all_diagnostics.extend(record.facts.all_diagnostics())
        device_code.extend(record.facts.all_images())
        dist = distribution_of(record.vpath, distributions)
        matches = catalog.refine(record.vpath, record.matches, dist, record.sha256) if record.matches else ()
        hits.extend((m, record.vpath) for m in matches)
    components = _components(hits) + _distribution_components(distributions)
    summary = Summary(files=len(records), bytes=sum(r.size for r in records), diagnostics=len(all_diagnostics))
    return Inventory(
        inputs=tuple(paths),
        components=tuple(sorted(components, key=lambda c: (c.kind.value, c.name, c.version or "", c.id))),
        device_code=tuple(device_code),
        diagnostics=tuple(sorted(all_diagnostics, key=lambda d: (d.path, d.offset or 0, d.message))),
        summary=summary,
        distributions=tuple(sorted(distributions, key=lambda d: d.vpath)),
        special_files=tuple(sorted(specials, key=lambda s: s.vpath)),
    )


def _component_id(vendor: str, name: str, version: str | None, kind: ComponentKind) -> str:
    slug = f"{vendor}/{name}@{version or 'unknown'}".lower().replace(" ", "-")
    return f"{kind.value}:{slug}"


def _components(hits: list[tuple[Any, str]]) -> list[Component]:
    """One component per (vendor, name, version, kind, licence); its paths and evidence merged, sorted."""
    groups: dict[tuple, tuple[set[str], set[str]]] = {}
    for match, vpath in hits:
        key = (match.vendor, match.name, match.version, match.kind, match.license)
        paths, evidence = groups.setdefault(key, (set(), set()))
        paths.add(vpath)
        evidence.update(match.evidence)
    return [Component(_component_id(vendor, name, version, kind), name, vendor, kind, version, license_,
                      tuple(sorted(paths)), tuple(sorted(evidence)))
            for (vendor, name, version, kind, license_), (paths, evidence) in groups.items()]


def _distribution_components(distributions: list) -> list[Component]:
    """Every Python/Debian/conda distribution found is a component of kind python-distribution (DESIGN B3)."""
    out = []
    for dist in distributions:
        if dist.ecosystem.value != "pypi":
            continue
        evidence = [f"{dist.vpath}: Name: {dist.name}, Version: {dist.version}"]
        if dist.license_declared:
            evidence.append(f"declared license: {dist.license_declared}")
        out.append(Component(_component_id("pypi", dist.name, dist.version, ComponentKind.PYTHON_DISTRIBUTION),
                             dist.name, _vendor_of(dist), ComponentKind.PYTHON_DISTRIBUTION, dist.version,
                             dist.license_declared, (dist.vpath,), tuple(evidence)))
    return out


def _vendor_of(dist) -> str:
    name = dist.name.lower().replace("_", "-")
    return "NVIDIA" if name.startswith("nvidia-") else ""


def incomplete(inventory: Inventory) -> bool:
    return any(d.kind is not DiagnosticKind.UNSUPPORTED for d in inventory.diagnostics) or bool(inventory.diagnostics)
