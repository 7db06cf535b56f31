"""The closed facts view that rule conditions select from: a report document as flat facts.

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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from licscan.model import ToolkitRange
from licscan.model.releases import UNKNOWN
from licscan.rules import attachment
from licscan.rules import governing as gov
from licscan.vpath import SEP, basename, innermost, is_within, outer

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
        if is_within(path, item) and (best is None or len(item) > len(best)):
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


def _component_toolkit(component: dict, props: dict[str, str]) -> ToolkitRange:
    """The toolkit release a component belongs to: ``properties.toolkit``, else its version when that is the
    toolkit release (attachment-a.yaml ``toolkit_versioned``), else the toolkit of a driver's branch."""
    if props.get("toolkit"):
        return ToolkitRange.of_version(props["toolkit"])
    data = attachment.load()
    if component.get("name") in data.toolkit_versioned:
        return ToolkitRange.of_version(attachment.toolkit_version(component.get("version")))
    if component.get("kind") == "driver":
        return data.driver_toolkit(component.get("version"))
    return ToolkitRange.unknown()


def _device_summary(entries: list[dict]) -> str:
    ptx = sorted({e.get("arch", "?") for e in entries if e.get("kind") == "ptx"})
    sass = sorted({e.get("arch", "?") for e in entries if e.get("kind") == "cubin"})
    parts = []
    if ptx:
        parts.append("PTX " + ", ".join(ptx))
    if sass:
        parts.append("SASS " + ", ".join(sass))
    return "; ".join(parts) or "no NVIDIA device code"


def _dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


_NAME_VERSION = re.compile(r"\.so\.(\d+(?:\.\d+)*)$|\.(\d+(?:\.\d+)*)\.dylib$")


def _path_toolkits(components: list[dict], toolkits: dict[int, ToolkitRange]) -> dict[tuple[int, str], tuple[ToolkitRange, str]]:
    """Per path, the toolkit of a component whose own is unknown: from the file name (``libcupti.so.12`` -> 12.x;
    CUPTI's year numbering ``libcupti.so.2025.1.1`` is not a toolkit), else from a copy of the same component in the
    same folder whose name states it (``libcupti.so``, ``libcupti_static.a`` beside ``libcupti.so.12``)."""
    data = attachment.load()
    own: dict[tuple[int, str], ToolkitRange] = {}
    for index, component in enumerate(components):
        if not toolkits[index].is_unknown or component.get("name") not in data.toolkit_versioned:
            continue
        for path in component.get("paths") or ():
            match = _NAME_VERSION.search(_basename(path))
            version = attachment.toolkit_version(match and (match.group(1) or match.group(2)))
            if version:
                own[(index, path)] = ToolkitRange.of_version(version)
    by_folder: dict[tuple[str, str], dict[str, tuple[ToolkitRange, str]]] = {}
    for (index, path), rng in own.items():
        by_folder.setdefault((str(components[index].get("name")), _dirname(path)), {})[rng.text] = (rng, path)
    out: dict[tuple[int, str], tuple[ToolkitRange, str]] = {}
    for index, component in enumerate(components):
        if not toolkits[index].is_unknown:
            continue
        for path in component.get("paths") or ():
            if (index, path) in own:
                out[(index, path)] = (own[(index, path)], f"toolkit {own[(index, path)].text} from the file name")
                continue
            found = by_folder.get((str(component.get("name")), _dirname(path)), {})
            if len(found) == 1:
                (rng, sibling), = found.values()
                out[(index, path)] = (rng, f"toolkit {rng.text} from {_basename(sibling)}, a copy of the same "
                                           f"component in the same folder")
    return out


def _beside(components: list[dict], inputs: list[str], dists: list[dict]) -> dict[str, list[tuple[str, str, str]]]:
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
            keys = [f"dir:{_dirname(path)}"]
            if dist is not None:
                keys.append(dist.get("path") or f"name:{dist.get('name')}")
            for key in keys:
                out.setdefault(key, []).append((ident[0], ident[1], where))
    return out


def _governing(fields: dict, toolkit: ToolkitRange, beside: tuple[tuple[str, str, str], ...],
               policy: str) -> tuple[dict[str, gov.Governing], dict[str, Any]]:
    sample = gov.SAMPLES.get(str(fields.get("properties.document"))) if fields.get("kind") == "license-text" else None
    if sample is not None:
        by_policy = {p: sample for p in gov.POLICIES}
    else:
        document = gov.document_of(fields)
        release = gov.release_range(document, fields, toolkit)
        by_policy = {p: gov.resolve(document, release, beside, p) for p in gov.POLICIES}
    chosen = by_policy[policy]
    title = None
    if chosen.document is not None:
        title = chosen.label
    return by_policy, {"governing.document": chosen.document, "governing.text": chosen.text,
                       "governing.title": title, "governing.license": chosen.license_id()}


def build(document: Mapping[str, Any], exclude=None, policy: str = gov.DEFAULT_POLICY) -> FactIndex:
    """The facts of a report document. ``exclude(path) -> bool`` drops facts whose path it matches; ``policy``
    chooses the governing licence text (governing.POLICIES)."""
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

    beside = _beside(components, inputs, dists)
    toolkits = {i: _component_toolkit(c, {str(k): str(v) for k, v in (c.get("properties") or {}).items()})
                for i, c in enumerate(components)}
    per_path = _path_toolkits(components, toolkits)
    facts: list[Fact] = []
    for index, component in enumerate(components):
        props = {str(k): str(v) for k, v in (component.get("properties") or {}).items()}
        for path in component.get("paths") or ():
            toolkit = toolkits[index]
            sibling_note: tuple[str, ...] = ()
            if (index, path) in per_path:
                toolkit, note = per_path[(index, path)]
                sibling_note = (f"{_basename(path)}: {note}",)
            if skip(path):
                continue
            dist = distribution_of(path, props.get("distribution"))
            fields = {k: component.get(k) for k in ("id", "name", "vendor", "kind", "version", "license")}
            fields.update(path=path, basename=_basename(path), paths=list(component.get("paths") or ()),
                          evidence=list(component.get("evidence") or ()), input=_input_of(path, inputs),
                          toolkit=toolkit)
            fields.update(_dist_fields(dist))
            fields.update({f"properties.{k}": v for k, v in props.items()})
            groups = _groups(path, inputs, dist)
            near = tuple(beside.get(f"dir:{_dirname(path)}", ())) + tuple(beside.get(groups["distribution"] or "", ()))
            by_policy, gov_fields = _governing(fields, toolkit, near, policy)
            fields.update(gov_fields)
            facts.append(Fact("component", path, fields, component.get("id"),
                              _path_evidence(component, path) + sibling_note, groups, toolkit, by_policy))

    by_path: dict[str, list[dict]] = {}
    for entry in devices:
        by_path.setdefault(entry.get("path"), []).append(entry)
    # Per file, once: a library can hold thousands of images (libtorch_cuda.so: 2,975).
    summaries = {p: _device_summary(same) for p, same in by_path.items()}
    device_governing: dict[tuple, tuple[dict, dict]] = {}
    ptx_in = {p: any(e.get("kind") == "ptx" for e in same) for p, same in by_path.items()}
    for entry in devices:
        path = entry.get("path")
        if skip(path):
            continue
        dist = distribution_of(path, named_at.get(path))
        rng = ToolkitRange.from_json(entry.get("toolkit"))
        fields = {k: entry.get(k) for k in ("path", "container", "kind", "arch", "ptx_isa", "compression", "size",
                                            "producer")}
        fields.update(basename=_basename(path), toolkit=rng, vendor=DEVICE_VENDORS.get(entry.get("kind")),
                      ptx_in_file=ptx_in[path], device_summary=summaries[path],
                      input=_input_of(path, inputs))
        fields.update(_dist_fields(dist))
        evidence = (f"{entry.get('kind')} {entry.get('arch')} in {entry.get('container')} "
                    f"(toolkit {rng.text}{', ' + entry['compression'] if entry.get('compression') not in (None, 'none') else ''})",)
        groups = _groups(path, inputs, dist)
        key = (rng.text, groups["distribution"], _dirname(path))
        if key not in device_governing:
            near = tuple(beside.get(f"dir:{_dirname(path)}", ())) + tuple(beside.get(groups["distribution"] or "", ()))
            device_governing[key] = _governing({"scope": "device_code", "vendor": fields["vendor"]}, rng, near, policy)
        by_policy, gov_fields = device_governing[key]
        fields.update(gov_fields)
        facts.append(Fact("device_code", path, fields, None, evidence, groups, rng, by_policy))

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


def governing_entries(report: Mapping[str, Any], policy: str = gov.DEFAULT_POLICY) -> list[dict]:
    """The governing licence of every named part of a report document, for the JSON report's ``governing`` list:
    one entry per component path and per file of NVIDIA device code, with the document, text, title, licence id,
    basis and why, and the text each other policy would pick where it differs."""
    out: dict[tuple[str, str | None], dict] = {}
    for fact in build(report, None, policy).facts:
        if fact.scope == "distribution" or not fact.governing:
            continue
        chosen = fact.governing[policy]
        if chosen.document is None:
            continue
        key = (fact.path, fact.component)
        if key in out:
            continue
        others = {p: g.text for p, g in fact.governing.items() if p != policy and g.text != chosen.text}
        out[key] = {"path": fact.path, "component": fact.component, "scope": fact.scope,
                    "document": chosen.document, "text": chosen.text, "title": chosen.label,
                    "license": chosen.license_id(), "basis": chosen.basis, "why": chosen.why, "policy": policy,
                    "other_policies": others}
    return [out[k] for k in sorted(out, key=lambda k: (k[0], k[1] or ""))]
