"""The closed facts view that rule conditions select from: a report document (DESIGN B3) as flat facts.

Three scopes, one fact per (thing, path):
- ``component``: one fact per path of each entry of ``components[]``;
- ``device_code``: one fact per entry of ``device_code[]``;
- ``distribution``: one fact per entry of ``distributions[]``.

Every fact has the fields listed in :data:`FIELDS` for its scope (a closed table: a pack naming another field is
invalid), plus ``properties.<key>`` for components. Two groupings join facts for ``together_with``:
- ``input``: the input argument the path lies under (the longest of ``inputs`` that prefixes it);
- ``distribution``: the enclosing distribution — the longest ``distributions[].path`` that is an archive prefix
  of the path (``dist/x.whl!/...``), else the distribution named by a component's ``properties.distribution``
  (which also covers device code in the same file);
- ``path``: the same file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from licscan.rules import attachment
from licscan.vpath import SEP, basename, innermost, outer
from licscan.rules.versions import UNKNOWN_RANGE, VersionRange, range_from_toolkit, range_from_version

SCOPES = ("component", "device_code", "distribution")
GROUPS = ("input", "distribution", "path")

_DIST_FIELDS = ("distribution.name", "distribution.path", "distribution.ecosystem", "distribution.version",
                "distribution.license_declared")
FIELDS: dict[str, tuple[str, ...]] = {
    "component": ("id", "name", "vendor", "kind", "version", "license", "path", "basename", "paths", "evidence",
                  "toolkit", "input") + _DIST_FIELDS,
    "device_code": ("path", "basename", "container", "kind", "arch", "ptx_isa", "toolkit", "compression", "size",
                    "producer", "vendor", "ptx_in_file", "device_summary", "input") + _DIST_FIELDS,
    "distribution": ("path", "basename", "ecosystem", "name", "version", "license_declared", "license_files",
                     "input") + _DIST_FIELDS,
}
#: Fields that hold a version range (``version_in`` applies; ``toolkit`` is a {min,max,exact} object).
RANGE_FIELDS = ("toolkit", "version", "distribution.version")
DEVICE_VENDORS = {"cubin": "NVIDIA", "ptx": "NVIDIA", "hsaco": "AMD", "spirv": None}


def field_known(scope: str, name: str) -> bool:
    return name in FIELDS[scope] or (scope == "component" and name.startswith("properties.") and len(name) > 11)


@dataclass(frozen=True)
class Fact:
    scope: str
    path: str
    fields: Mapping[str, Any]
    component: str | None = None
    evidence: tuple[str, ...] = ()
    groups: Mapping[str, str | None] = field(default_factory=dict)
    toolkit: VersionRange = UNKNOWN_RANGE

    def get(self, name: str) -> Any:
        return self.fields.get(name)

    @property
    def label(self) -> str:
        """A short name for evidence lines: ``zluda (output-consumer)`` or ``ptx compute_90``."""
        if self.scope == "component":
            return f"{self.fields.get('name')} ({self.fields.get('kind')})"
        if self.scope == "device_code":
            return f"{self.fields.get('kind')} {self.fields.get('arch')}"
        return f"distribution {self.fields.get('name')} {self.fields.get('version') or ''}".rstrip()


class FactIndex:
    """All facts of one document, indexed by scope and by group for joins."""

    def __init__(self, facts: Iterable[Fact]):
        self.facts = tuple(facts)
        self._by: dict[tuple[str, str, str], list[Fact]] = {}
        for fact in self.facts:
            for group, key in fact.groups.items():
                if key is not None:
                    self._by.setdefault((fact.scope, group, key), []).append(fact)

    def scope(self, scope: str) -> tuple[Fact, ...]:
        return tuple(f for f in self.facts if f.scope == scope)

    def members(self, scope: str, within: str, key: str) -> tuple[Fact, ...] | list[Fact]:
        """The facts of ``scope`` in the group ``key`` of kind ``within``, in document order."""
        return self._by.get((scope, within, key), ())

    def joined(self, fact: Fact, scope: str, within: str) -> list[Fact]:
        key = fact.groups.get(within)
        if key is None:
            return []
        return [f for f in self._by.get((scope, within, key), ()) if f is not fact]


def _basename(path: str) -> str:
    return basename(path)


def _input_of(path: str, inputs: list[str]) -> str:
    best = None
    for item in inputs:
        item = item.rstrip("/") or item
        if path == item or path.startswith(item + "/") or path.startswith(item + "!/"):
            if best is None or len(item) > len(best):
                best = item
    if best is not None:
        return best
    return outer(path).split("/", 1)[0] if SEP not in path else outer(path)


def _dist_by_prefix(path: str, dists: list[dict]) -> dict | None:
    """The innermost distribution whose archive holds ``path`` (``dist/x.whl`` for ``dist/x.whl!/...``)."""
    return innermost(path, (d for d in dists if d.get("path") and (path == d["path"] or path.startswith(
        d["path"] + SEP))), lambda d: d["path"])


def _path_evidence(component: dict, path: str) -> tuple[str, ...]:
    """The component's evidence about one of its paths: the lines licscan/scan.py prefixed with ``<path>: ``, without
    that prefix (a component named in many files must not show the first file's facts for every other file); all
    of it when no line is about that path."""
    evidence = tuple(component.get("evidence") or ())
    own = tuple(e[len(path) + 2:] for e in evidence if e.startswith(path + ": "))
    return own or evidence


def _dist_fields(dist: dict | None) -> dict[str, Any]:
    if not dist:
        return {k: None for k in _DIST_FIELDS}
    return {"distribution.name": dist.get("name"), "distribution.path": dist.get("path"),
            "distribution.ecosystem": dist.get("ecosystem"), "distribution.version": dist.get("version"),
            "distribution.license_declared": dist.get("license_declared")}


def _component_toolkit(component: dict, props: dict[str, str]) -> VersionRange:
    """The toolkit release a component belongs to: ``properties.toolkit``, else its version when that is the
    toolkit release (attachment-a.yaml ``toolkit_versioned``), else the toolkit of a driver's branch."""
    if props.get("toolkit"):
        return range_from_version(props["toolkit"])
    data = attachment.load()
    if component.get("name") in data.toolkit_versioned:
        return range_from_version(component.get("version"))
    if component.get("kind") == "driver":
        return data.driver_toolkit(component.get("version"))
    return UNKNOWN_RANGE


def _device_summary(entries: list[dict]) -> str:
    ptx = sorted({e.get("arch", "?") for e in entries if e.get("kind") == "ptx"})
    sass = sorted({e.get("arch", "?") for e in entries if e.get("kind") == "cubin"})
    parts = []
    if ptx:
        parts.append("PTX " + ", ".join(ptx))
    if sass:
        parts.append("SASS " + ", ".join(sass))
    return "; ".join(parts) or "no NVIDIA device code"


def build(document: Mapping[str, Any], exclude=None) -> FactIndex:
    """The facts of a report document. ``exclude(path) -> bool`` drops facts whose path it matches."""
    inputs = list(document.get("inputs") or [])
    dists = list(document.get("distributions") or [])
    components = list(document.get("components") or [])
    devices = list(document.get("device_code") or [])
    dists_by_name: dict[str, dict] = {}
    for dist in sorted(dists, key=lambda d: d.get("path") or ""):
        dists_by_name.setdefault(dist.get("name"), dist)
    skip = exclude or (lambda _path: False)

    def distribution_of(path: str, named: str | None) -> dict | None:
        found = _dist_by_prefix(path, dists)
        if found is None and named:
            found = dists_by_name.get(named) or {"name": named, "path": None}
        return found

    named_at: dict[str, str] = {}
    for component in components:
        name = (component.get("properties") or {}).get("distribution")
        if name:
            for path in component.get("paths") or ():
                named_at.setdefault(path, name)

    facts: list[Fact] = []
    for component in components:
        props = {str(k): str(v) for k, v in (component.get("properties") or {}).items()}
        toolkit = _component_toolkit(component, props)
        for path in component.get("paths") or ():
            if skip(path):
                continue
            dist = distribution_of(path, props.get("distribution"))
            fields = {k: component.get(k) for k in ("id", "name", "vendor", "kind", "version", "license")}
            fields.update(path=path, basename=_basename(path), paths=list(component.get("paths") or ()),
                          evidence=list(component.get("evidence") or ()), input=_input_of(path, inputs),
                          toolkit=toolkit)
            fields.update(_dist_fields(dist))
            fields.update({f"properties.{k}": v for k, v in props.items()})
            facts.append(Fact("component", path, fields, component.get("id"), _path_evidence(component, path),
                              _groups(path, inputs, dist), toolkit))

    by_path: dict[str, list[dict]] = {}
    for entry in devices:
        by_path.setdefault(entry.get("path"), []).append(entry)
    # Per file, once: a library can hold thousands of images (libtorch_cuda.so: 2,975).
    summaries = {p: _device_summary(same) for p, same in by_path.items()}
    ptx_in = {p: any(e.get("kind") == "ptx" for e in same) for p, same in by_path.items()}
    for entry in devices:
        path = entry.get("path")
        if skip(path):
            continue
        dist = distribution_of(path, named_at.get(path))
        rng = range_from_toolkit(entry.get("toolkit"))
        fields = {k: entry.get(k) for k in ("path", "container", "kind", "arch", "ptx_isa", "compression", "size",
                                            "producer")}
        fields.update(basename=_basename(path), toolkit=rng, vendor=DEVICE_VENDORS.get(entry.get("kind")),
                      ptx_in_file=ptx_in[path], device_summary=summaries[path],
                      input=_input_of(path, inputs))
        fields.update(_dist_fields(dist))
        evidence = (f"{entry.get('kind')} {entry.get('arch')} in {entry.get('container')} "
                    f"(toolkit {rng.text}{', ' + entry['compression'] if entry.get('compression') not in (None, 'none') else ''})",)
        facts.append(Fact("device_code", path, fields, None, evidence, _groups(path, inputs, dist), rng))

    for dist in dists:
        path = dist.get("path") or ""
        if skip(path):
            continue
        fields = {k: dist.get(k) for k in ("path", "ecosystem", "name", "version", "license_declared",
                                           "license_files")}
        fields.update(basename=_basename(path), input=_input_of(path, inputs))
        fields.update(_dist_fields(dist))
        facts.append(Fact("distribution", path, fields, None,
                          (f"{dist.get('ecosystem')} distribution {dist.get('name')} {dist.get('version') or ''}".rstrip(),),
                          _groups(path, inputs, dist)))
    return FactIndex(facts)


def _groups(path: str, inputs: list[str], dist: dict | None) -> dict[str, str | None]:
    if dist is None:
        dist_key = None
    else:
        dist_key = dist.get("path") or f"name:{dist.get('name')}"
    return {"input": _input_of(path, inputs), "distribution": dist_key, "path": path}
