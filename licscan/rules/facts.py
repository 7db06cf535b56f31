"""The closed facts view that rule conditions select from: a report document as flat facts.

Three scopes, one fact per (thing, path):
- ``component``: one fact per path of each entry of ``components[]``;
- ``device_code``: one fact per entry of ``device_code[]``;
- ``distribution``: one fact per entry of ``distributions[]``.

Every fact has the fields listed in :data:`FIELDS` for its scope (a closed table: a pack naming another field is
invalid), plus ``properties.<key>`` for components, a key of :data:`licscan.model.PROPERTY_KEYS` (another key is
as invalid as an unknown field: nothing produces it, so a test of it could never hold). Two groupings join facts
for ``together_with``:
- ``input``: the input argument the path lies under (the longest of ``inputs`` that prefixes it);
- ``distribution``: the enclosing distribution — the longest ``distributions[].path`` that is an archive prefix
  of the path (``dist/x.whl!/...``), else the distribution named by a component's ``properties.distribution``
  (the greatest name when it names several; which also covers device code in the same file);
- ``path``: the same file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from licscan.model import PROPERTY_KEYS, VALUE_SEPARATOR, ToolkitRange
from licscan.model.releases import UNKNOWN
from licscan.rules import governing as gov
from licscan.rules.toolkits import component_toolkit, dirname, path_toolkits
from licscan.vpath import SEP, basename, innermost, is_within, outer

Json = dict[str, Any]  # an object of a report document (licscan/schemas/report.schema.json)
SCOPES = ("component", "device_code", "distribution")
GROUPS = ("input", "distribution", "path")

_DIST_FIELDS = ("distribution.name", "distribution.path", "distribution.ecosystem", "distribution.version",
                "distribution.license_declared")
#: The governing licence under the configured policy (licscan/rules/governing.py, docs/licenses.md).
_GOV_FIELDS = ("governing.document", "governing.text", "governing.title", "governing.license")
FIELDS: dict[str, tuple[str, ...]] = {
    "component": ("id", "name", "vendor", "kind", "version", "license", "path", "basename", "paths", "evidence",
                  "toolkit", "input") + _DIST_FIELDS + _GOV_FIELDS,
    "device_code": ("path", "basename", "container", "kind", "arch", "ptx_isa", "toolkit", "compression", "size",
                    "producer", "vendor", "ptx_in_file", "device_summary", "input") + _DIST_FIELDS + _GOV_FIELDS,
    "distribution": ("path", "basename", "ecosystem", "name", "version", "license_declared", "license_files",
                     "input") + _DIST_FIELDS,
}
#: Fields that hold a version range (``version_in`` applies; ``toolkit`` is a {min,max,exact} object).
RANGE_FIELDS = ("toolkit", "version", "distribution.version")
DEVICE_VENDORS = {"cubin": "NVIDIA", "ptx": "NVIDIA", "hsaco": "AMD", "spirv": None}


_PROPERTY = "properties."


def field_known(scope: str, name: str) -> bool:
    """A field of the scope's closed table, or (components) ``properties.<key>`` with a key the model produces."""
    return name in FIELDS[scope] or (scope == "component" and name.startswith(_PROPERTY)
                                     and name[len(_PROPERTY):] in PROPERTY_KEYS)


def named_distribution(props: Mapping[str, Any]) -> str | None:
    """The distribution a component's ``properties.distribution`` names: the greatest of its names when it has
    several (joined with VALUE_SEPARATOR; distribution names never hold it), None when it names none."""
    names = str(props.get("distribution") or "").split(VALUE_SEPARATOR)
    return max(names) or None


@dataclass(frozen=True)
class Fact:
    scope: str
    path: str
    fields: Mapping[str, Any]
    component: str | None = None
    evidence: tuple[str, ...] = ()
    groups: Mapping[str, str | None] = field(default_factory=dict)
    toolkit: ToolkitRange = UNKNOWN
    #: policy -> the licence that governs this part under it (every policy of governing.POLICIES).
    governing: Mapping[str, gov.Governing] = field(default_factory=dict)

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
        scopes: dict[str, list[Fact]] = {scope: [] for scope in SCOPES}
        for fact in self.facts:
            scopes.setdefault(fact.scope, []).append(fact)
            for group, key in fact.groups.items():
                if key is not None:
                    self._by.setdefault((fact.scope, group, key), []).append(fact)
        self._scopes = {scope: tuple(same) for scope, same in scopes.items()}

    def scope(self, scope: str) -> tuple[Fact, ...]:
        return self._scopes.get(scope, ())

    def members(self, scope: str, within: str, key: str) -> tuple[Fact, ...] | list[Fact]:
        """The facts of ``scope`` in the group ``key`` of kind ``within``, in document order."""
        return self._by.get((scope, within, key), ())


def _input_of(path: str, inputs: list[str]) -> str:
    best = None
    for item in inputs:
        item = item.rstrip("/") or item
        if is_within(path, item) and (best is None or len(item) > len(best)):
            best = item
    if best is not None:
        return best
    return outer(path).split("/", 1)[0] if SEP not in path else outer(path)


def _dist_by_prefix(path: str, dists: list[Json]) -> Json | None:
    """The innermost distribution whose archive holds ``path`` (``dist/x.whl`` for ``dist/x.whl!/...``)."""
    return innermost(path, (d for d in dists if d.get("path") and (path == d["path"] or path.startswith(
        d["path"] + SEP))), lambda d: d["path"])


def _path_evidence(component: Json, path: str) -> tuple[str, ...]:
    """The component's evidence about one of its paths: the lines licscan/scan.py prefixed with ``<path>: ``, without
    that prefix (a component named in many files must not show the first file's facts for every other file); all
    of it when no line is about that path."""
    evidence = tuple(component.get("evidence") or ())
    own = tuple(e[len(path) + 2:] for e in evidence if e.startswith(path + ": "))
    return own or evidence


def _dist_fields(dist: Json | None) -> dict[str, Any]:
    if not dist:
        return {k: None for k in _DIST_FIELDS}
    return {"distribution.name": dist.get("name"), "distribution.path": dist.get("path"),
            "distribution.ecosystem": dist.get("ecosystem"), "distribution.version": dist.get("version"),
            "distribution.license_declared": dist.get("license_declared")}


def _device_summary(entries: list[Json]) -> str:
    ptx = sorted({e.get("arch", "?") for e in entries if e.get("kind") == "ptx"})
    sass = sorted({e.get("arch", "?") for e in entries if e.get("kind") == "cubin"})
    parts = []
    if ptx:
        parts.append("PTX " + ", ".join(ptx))
    if sass:
        parts.append("SASS " + ", ".join(sass))
    return "; ".join(parts) or "no NVIDIA device code"


def _beside(components: list[dict[str, Any]], dists: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, str]]]:
    """Licence texts shipped in each distribution (key: the distribution group) and each folder ("dir:" key)."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for component in components:
        if component.get("kind") != "license-text":
            continue
        props = component.get("properties") or {}
        ident = gov.TEXT_IDS.get(str(props.get("document")))
        if ident is None:
            continue
        sha = str(props.get("sha256") or "")
        for path in component.get("paths") or ():
            where = f"{path}" + (f" (sha256 {sha})" if sha else "")
            dist = _dist_by_prefix(path, dists)
            keys = [f"dir:{dirname(path)}"]
            if dist is not None:
                keys.append(dist.get("path") or f"name:{dist.get('name')}")
            for key in keys:
                out.setdefault(key, []).append((ident[0], ident[1], where))
    return out


def _governing(fields: Json, toolkit: ToolkitRange, beside: tuple[tuple[str, str, str], ...],
               policy: str) -> tuple[dict[str, gov.Governing], dict[str, Any]]:
    sample = gov.SAMPLES.get(str(fields.get("properties.document"))) if fields.get("kind") == "license-text" else None
    if sample is not None:
        by_policy = {p: sample for p in gov.POLICIES}
    else:
        document = gov.document_of(fields)
        release = gov.release_range(document, fields, toolkit)
        by_policy = {p: gov.resolve(document, release, beside, p, gov.platform_of(str(fields.get("basename") or "")))
                     for p in gov.POLICIES}
    chosen = by_policy[policy]
    title = chosen.label if chosen.document is not None else None
    return by_policy, {"governing.document": chosen.document, "governing.text": chosen.text,
                       "governing.title": title, "governing.license": chosen.license_id()}


Near = tuple[tuple[str, str, str], ...]
#: A component's or device image's licence under every policy, and the ``governing.*`` fields under the chosen one.
GovernedBy = tuple[dict[str, gov.Governing], dict[str, Any]]


class _Document:
    """A report document read once for fact building: its lists, the licence texts shipped beside parts, and the
    per-path answers (enclosing input, distribution, groups) that many facts of one file share (a library holds
    thousands of device images: libtorch_cuda.so 2,975)."""

    def __init__(self, document: Mapping[str, Any], policy: str):
        self.policy = policy
        self.inputs: list[str] = list(document.get("inputs") or [])
        self.dists: list[Json] = list(document.get("distributions") or [])
        self.components: list[Json] = list(document.get("components") or [])
        self.devices: list[Json] = list(document.get("device_code") or [])
        self.dists_by_name: dict[str, Json] = {}
        for dist in sorted(self.dists, key=lambda d: d.get("path") or ""):
            self.dists_by_name.setdefault(dist.get("name") or "", dist)
        self.named_at: dict[str, str] = {}  # path -> the distribution a component there names
        for component in self.components:
            name = named_distribution(component.get("properties") or {})
            if not name:
                continue
            for path in component.get("paths") or ():
                self.named_at.setdefault(path, name)
        self.beside = _beside(self.components, self.dists)
        self._inputs: dict[str, str] = {}
        self._places: dict[tuple[str, str | None], tuple[Json | None, dict[str, str | None]]] = {}
        self._device_governing: dict[tuple[str | None, str, str | None, str], GovernedBy] = {}

    def input_of(self, path: str) -> str:
        found = self._inputs.get(path)
        if found is None:
            found = self._inputs[path] = _input_of(path, self.inputs)
        return found

    def place(self, path: str, named: str | None) -> tuple[Json | None, dict[str, str | None]]:
        """The enclosing distribution of ``path`` (else the one ``named`` by a component) and the fact's groups."""
        key = (path, named)
        found = self._places.get(key)
        if found is None:
            dist = _dist_by_prefix(path, self.dists)
            if dist is None and named:
                dist = self.dists_by_name.get(named) or {"name": named, "path": None}
            dist_key = None if dist is None else (dist.get("path") or f"name:{dist.get('name')}")
            found = self._places[key] = (dist, {"input": self.input_of(path), "distribution": dist_key, "path": path})
        return found

    def near(self, path: str, dist_key: str | None) -> Near:
        """Licence texts shipped in the folder of ``path`` and in its distribution."""
        return tuple(self.beside.get(f"dir:{dirname(path)}", ())) + tuple(self.beside.get(dist_key or "", ()))

    def device_governing(self, path: str, rng: ToolkitRange, vendor: str | None, dist_key: str | None) -> GovernedBy:
        """Device code's licence depends on its vendor, toolkit, distribution and folder only: once per set."""
        key = (vendor, rng.text, dist_key, dirname(path))
        found = self._device_governing.get(key)
        if found is None:
            found = self._device_governing[key] = _governing({"scope": "device_code", "vendor": vendor}, rng,
                                                             self.near(path, dist_key), self.policy)
        return found


def _props(component: Json) -> dict[str, str]:
    return {str(k): str(v) for k, v in (component.get("properties") or {}).items()}


def _component_facts(doc: _Document, skip: Callable[[str], bool]) -> Iterator[Fact]:
    toolkits = {i: component_toolkit(c) for i, c in enumerate(doc.components)}
    per_path = path_toolkits(doc.components, toolkits)
    for index, component in enumerate(doc.components):
        props = _props(component)
        for path in component.get("paths") or ():
            toolkit = toolkits[index]
            sibling_note: tuple[str, ...] = ()
            if (index, path) in per_path:
                toolkit, note = per_path[(index, path)]
                sibling_note = (f"{basename(path)}: {note}",)
            if skip(path):
                continue
            dist, groups = doc.place(path, named_distribution(props))
            fields = {k: component.get(k) for k in ("id", "name", "vendor", "kind", "version", "license")}
            fields.update(path=path, basename=basename(path), paths=list(component.get("paths") or ()),
                          evidence=list(component.get("evidence") or ()), input=groups["input"], toolkit=toolkit)
            fields.update(_dist_fields(dist))
            fields.update({f"properties.{k}": v for k, v in props.items()})
            by_policy, gov_fields = _governing(fields, toolkit, doc.near(path, groups["distribution"]), doc.policy)
            fields.update(gov_fields)
            yield Fact("component", path, fields, component.get("id"),
                       _path_evidence(component, path) + sibling_note + toolkit.evidence, groups, toolkit, by_policy)


@functools.lru_cache(maxsize=1024)
def _range(low: Any, high: Any, exact: Any) -> ToolkitRange:
    return ToolkitRange.from_json({"min": low, "max": high, "exact": exact})


def _device_range(entry: Json) -> ToolkitRange:
    """The toolkit of a device image, made once per distinct {min, max, exact} (evidence is not part of it)."""
    toolkit = entry.get("toolkit")
    if type(toolkit) is not dict:
        return ToolkitRange.from_json(toolkit)
    try:
        return _range(toolkit.get("min"), toolkit.get("max"), toolkit.get("exact"))
    except TypeError:  # an unhashable bound in a hand-made document: no bound (from_json)
        return ToolkitRange.from_json(toolkit)


def _device_facts(doc: _Document, skip: Callable[[str], bool]) -> Iterator[Fact]:
    by_path: dict[str, list[Json]] = {}
    for entry in doc.devices:
        by_path.setdefault(entry.get("path") or "", []).append(entry)
    # Made once per file, vendor and toolkit: what their images share (None: excluded; rng kept: its id stays).
    shared: dict[tuple[str, str | None, int], tuple[ToolkitRange, tuple[Json, Any, Any] | None]] = {}
    for entry in doc.devices:
        path: str = entry.get("path") or ""
        rng, vendor = _device_range(entry), DEVICE_VENDORS.get(entry.get("kind") or "")
        found = shared.get((path, vendor, id(rng)))
        if found is None:
            found = shared[(path, vendor, id(rng))] = (rng, None if skip(path) else _device_shared(
                doc, path, rng, vendor, by_path[path]))
        if found[1] is None:
            continue
        tail, groups, by_policy = found[1]
        fields = {k: entry.get(k) for k in ("path", "container", "kind", "arch", "ptx_isa", "compression", "size",
                                            "producer")}
        fields.update(tail)
        compression = entry.get("compression")
        evidence = (f"{entry.get('kind')} {entry.get('arch')} in {entry.get('container')} "
                    f"(toolkit {rng.text}{', ' + compression if compression not in (None, 'none') else ''})",)
        yield Fact("device_code", path, fields, None, evidence, groups, rng, by_policy)


def _device_shared(doc: _Document, path: str, rng: ToolkitRange, vendor: str | None,
                   same: list[Json]) -> tuple[Json, dict[str, str | None], dict[str, gov.Governing]]:
    dist, groups = doc.place(path, doc.named_at.get(path))
    tail: Json = {"basename": basename(path), "toolkit": rng, "vendor": vendor,
                  "ptx_in_file": any(e.get("kind") == "ptx" for e in same), "device_summary": _device_summary(same),
                  "input": groups["input"]}
    tail.update(_dist_fields(dist))
    by_policy, gov_fields = doc.device_governing(path, rng, vendor, groups["distribution"])
    tail.update(gov_fields)
    return tail, groups, by_policy


def _distribution_facts(doc: _Document, skip: Callable[[str], bool]) -> Iterator[Fact]:
    for dist in doc.dists:
        path = dist.get("path") or ""
        if skip(path):
            continue
        fields = {k: dist.get(k) for k in ("path", "ecosystem", "name", "version", "license_declared",
                                           "license_files")}
        fields.update(basename=basename(path), input=doc.input_of(path))
        fields.update(_dist_fields(dist))
        dist_key = dist.get("path") or f"name:{dist.get('name')}"
        yield Fact("distribution", path, fields, None,
                   (f"{dist.get('ecosystem')} distribution {dist.get('name')} {dist.get('version') or ''}".rstrip(),),
                   {"input": doc.input_of(path), "distribution": dist_key, "path": path})


def build(document: Mapping[str, Any], exclude: Callable[[str], bool] | None = None,
          policy: str = gov.DEFAULT_POLICY) -> FactIndex:
    """The facts of a report document. ``exclude(path) -> bool`` drops facts whose path it matches; ``policy``
    chooses the governing licence text (governing.POLICIES)."""
    doc = _Document(document, policy)
    skip = exclude or (lambda _path: False)
    return FactIndex(chain(_component_facts(doc, skip), _device_facts(doc, skip), _distribution_facts(doc, skip)))


def _entry(path: str, component: str | None, scope: str, governing: Mapping[str, gov.Governing],
           policy: str) -> Json | None:
    chosen = governing[policy]
    if chosen.document is None:
        return None
    others = {p: g.text for p, g in governing.items() if p != policy and g.text != chosen.text}
    return {"path": path, "component": component, "scope": scope, "document": chosen.document, "text": chosen.text,
            "title": chosen.label, "license": chosen.license_id(), "basis": chosen.basis, "why": chosen.why,
            "policy": policy, "other_policies": others}


def governing_entries(report: Mapping[str, Any], policy: str = gov.DEFAULT_POLICY) -> list[Json]:
    """The governing licence of every named part of a report document, for the JSON report's ``governing`` list:
    one entry per component path and per file of NVIDIA device code (its first NVIDIA image), with the document,
    text, title, licence id, basis and why, and the text each other policy would pick where it differs. Device
    code is not made into facts here: one licence lookup per file, not per image."""
    doc = _Document(report, policy)
    out: dict[tuple[str, str | None], Json | None] = {}
    for fact in _component_facts(doc, lambda _path: False):
        if (fact.path, fact.component) not in out and fact.governing[policy].document is not None:
            out[(fact.path, fact.component)] = _entry(fact.path, fact.component, fact.scope, fact.governing, policy)
    for entry in doc.devices:
        path: str = entry.get("path") or ""
        vendor = DEVICE_VENDORS.get(entry.get("kind") or "")
        if (path, None) in out or gov.document_of({"scope": "device_code", "vendor": vendor}) is None:
            continue
        _dist, groups = doc.place(path, doc.named_at.get(path))
        by_policy, _fields = doc.device_governing(path, _device_range(entry), vendor, groups["distribution"])
        out[(path, None)] = _entry(path, None, "device_code", by_policy, policy)
    return [e for k, e in sorted(out.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")) if e is not None]
