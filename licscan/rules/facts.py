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

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from itertools import chain
from typing import Any

from licscan.model import PROPERTY_KEYS, VALUE_SEPARATOR, ToolkitRange
from licscan.rules import documents
from licscan.rules import governing as gov
from licscan.rules.devicefacts import DEVICE_VENDORS, device_facts, device_range
from licscan.rules.fact import DIST_FIELDS, Json, dist_fields
from licscan.rules.fact import SCOPES as SCOPES
from licscan.rules.fact import Fact as Fact  # re-exported: the rules import the fact types from here
from licscan.rules.fact import FactIndex as FactIndex
from licscan.rules.modified import file_changes
from licscan.rules.toolkits import component_toolkit, dirname, path_toolkits
from licscan.vpath import SEP, basename, innermost, is_within, outer
from licscan.vpath import chain as levels

GROUPS = ("input", "distribution", "path")

#: The governing licence under the configured policy (licscan/rules/governing.py, docs/licenses.md).
_GOV_FIELDS = ("governing.document", "governing.text", "governing.title", "governing.license", "governing.basis",
               "governing.advice")
FIELDS: dict[str, tuple[str, ...]] = {
    "component": ("id", "name", "vendor", "kind", "version", "license", "path", "basename", "paths", "evidence",
                  "toolkit", "input", "part") + DIST_FIELDS + _GOV_FIELDS,
    "device_code": ("path", "basename", "container", "kind", "arch", "ptx_isa", "toolkit", "compression", "size",
                    "producer", "vendor", "ptx_in_file", "device_summary", "input") + DIST_FIELDS + _GOV_FIELDS,
    "distribution": ("path", "basename", "ecosystem", "name", "version", "license_declared", "license_files",
                     "input") + DIST_FIELDS,
}
#: Fields that hold a version range (``version_in`` applies; ``toolkit`` is a {min,max,exact} object).
RANGE_FIELDS = ("toolkit", "version", "distribution.version")
#: NVIDIA components whose files' device code is part of them, governed as they are (DocumentReader.device_governing).
OWNER_KINDS = ("sdk-library", "driver", "developer-tool")


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


def _beside(components: list[dict[str, Any]], dists: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, str]]]:
    """Licence texts shipped in each distribution (key: the distribution group) and each folder ("dir:" key)."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for component in components:
        if component.get("kind") != "license-text":
            continue
        props = component.get("properties") or {}
        ident = gov.license_text(props.get("document"))
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
    document = gov.document_of(fields)
    fixed = sample or (gov.unread(fields.get("license")) if document is None and fields.get("kind") != "license-text"
                       else None)
    if fixed is not None:
        by_policy = {p: fixed for p in gov.POLICIES}
    else:
        release = gov.release_range(document, fields, toolkit)
        own = gov.own_table(document, fields)
        platform, text_file = gov.platform_of(str(fields.get("basename") or "")), fields.get("kind") == "license-text"
        by_policy = {p: gov.resolve(document, release, beside, p, platform, own, not text_file) for p in gov.POLICIES}
    chosen = by_policy[policy]
    title = chosen.label if chosen.document is not None else None
    return by_policy, {"governing.document": chosen.document, "governing.text": chosen.text,
                       "governing.title": title, "governing.license": chosen.license_id(),
                       "governing.basis": chosen.basis, "governing.advice": chosen.advice}


Near = tuple[tuple[str, str, str], ...]
#: A component's or device image's licence under every policy, and the ``governing.*`` fields under the chosen one.
GovernedBy = tuple[dict[str, gov.Governing], dict[str, Any]]


class DocumentReader:
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
        #: paths of NVIDIA's own Python distributions (a wheel, or an installed *.dist-info folder)
        self.nvidia_dists = frozenset(p for c in self.components if c.get("kind") == "python-distribution"
                                      and c.get("vendor") == "NVIDIA" for p in c.get("paths") or ())
        self._inputs: dict[str, str] = {}
        self._places: dict[tuple[str, str | None], tuple[Json | None, dict[str, str | None]]] = {}
        self._device_governing: dict[tuple[str | None, str, str | None, str], GovernedBy] = {}
        self._toolkits: tuple[dict[int, ToolkitRange], dict[tuple[int, str], tuple[ToolkitRange, str]]] | None = None
        self._component_facts: dict[tuple[int, str], Fact] = {}
        #: path -> index of the NVIDIA library, driver or tool named at it (the first, by id, when several are)
        self.owners: dict[str, int] = {}
        for index, component in sorted(enumerate(self.components), key=lambda ic: str(ic[1].get("id") or "")):
            # A part linked into another's binary (a static runtime) does not make that binary's device code its own.
            linked = (component.get("properties") or {}).get("linked_from")
            if component.get("vendor") == "NVIDIA" and component.get("kind") in OWNER_KINDS and not linked:
                for path in component.get("paths") or ():
                    self.owners.setdefault(path, index)

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

    def toolkits(self) -> tuple[dict[int, ToolkitRange], dict[tuple[int, str], tuple[ToolkitRange, str]]]:
        """Each component's toolkit, and per path the toolkit of a component whose own is unknown (made once)."""
        if self._toolkits is None:
            own = {i: component_toolkit(c) for i, c in enumerate(self.components)}
            self._toolkits = (own, path_toolkits(self.components, own))
        return self._toolkits

    def component_fact(self, index: int, path: str) -> Fact:
        """The fact of component ``index`` at one of its paths (made once)."""
        key = (index, path)
        found = self._component_facts.get(key)
        if found is None:
            found = self._component_facts[key] = _component_fact(self, index, path)
        return found

    def owner(self, path: str) -> int | None:
        """The NVIDIA library, driver or tool whose file holds device code at ``path``: the one named at the path
        itself, else at the innermost archive that holds it (``libnvshmem_device.a!/init_device.cu.o``)."""
        for level in reversed(levels(path)):
            found = self.owners.get(level)
            if found is not None:
                return found
        return None

    def device_governing(self, path: str, rng: ToolkitRange, vendor: str | None, dist_key: str | None) -> GovernedBy:
        """The licence of NVIDIA device code. Inside an NVIDIA library (cuDNN, cuTENSOR, NVSHMEM, cuBLAS ...) it is
        part of that library and governed as the library is: the cuDNN SLA's 2.2 speaks of "any portion of the
        SDK", and the object code the CUDA EULA's 2.3 protects holds it. Elsewhere it is the user's own output of
        NVIDIA's compiler: the CUDA EULA text of the toolkit that built it (docs/licenses.md#device-code). Made once
        per owner, or per vendor, toolkit, distribution and folder."""
        owner = self.owner(path) if vendor == "NVIDIA" else None
        if owner is not None:
            return self._owned(owner, path)
        key = (vendor, rng.text, dist_key, dirname(path))
        found = self._device_governing.get(key)
        if found is None:
            found = self._device_governing[key] = _governing({"scope": "device_code", "vendor": vendor}, rng,
                                                             self.near(path, dist_key), self.policy)
        return found

    def _owned(self, owner: int, path: str) -> GovernedBy:
        component = self.components[owner]
        where = next(level for level in reversed(levels(path)) if self.owners.get(level) == owner)
        key = (f"owner:{owner}", "", None, where)
        found = self._device_governing.get(key)
        if found is None:
            fact = self.component_fact(owner, where)
            part = f"part of {component.get('name')} {component.get('version') or ''}".rstrip() + f" ({basename(where)}): "
            by_policy = {p: replace(g, why=part + g.why) for p, g in fact.governing.items()}
            found = self._device_governing[key] = (by_policy, {k: fact.fields.get(k) for k in _GOV_FIELDS})
        return found


def _props(component: Json) -> dict[str, str]:
    return {str(k): str(v) for k, v in (component.get("properties") or {}).items()}


def _component_facts(doc: DocumentReader, skip: Callable[[str], bool]) -> Iterator[Fact]:
    for index, component in enumerate(doc.components):
        for path in component.get("paths") or ():
            if not skip(path):
                yield doc.component_fact(index, path)


def _component_fact(doc: DocumentReader, index: int, path: str) -> Fact:
    component = doc.components[index]
    toolkits, per_path = doc.toolkits()
    props = _props(component)
    toolkit = toolkits[index]
    sibling_note: tuple[str, ...] = ()
    if (index, path) in per_path:
        toolkit, note = per_path[(index, path)]
        sibling_note = (f"{basename(path)}: {note}",)
    dist, groups = doc.place(path, named_distribution(props))
    fields = {k: component.get(k) for k in ("id", "name", "vendor", "kind", "version", "license")}
    fields.update(path=path, basename=basename(path), paths=list(component.get("paths") or ()),
                  evidence=list(component.get("evidence") or ()), input=groups["input"], toolkit=toolkit)
    fields.update(dist_fields(dist))
    fields.update({f"properties.{k}": v for k, v in props.items()})
    dist_path = dist.get("path") if dist else None
    changes = file_changes(props.get("modified"), component.get("evidence") or (), path, dist_path,
                           dist_path in doc.nvidia_dists,
                           documents.load().published)
    fields.pop("properties.modified", None)
    if changes.modified:
        fields["properties.modified"] = changes.modified  # this file's own differences (licscan/rules/modified.py)
    by_policy, gov_fields = _governing(fields, toolkit, doc.near(path, groups["distribution"]), doc.policy)
    fields.update(gov_fields)
    fields["part"] = part_of(fields, toolkit)
    return Fact("component", path, fields, component.get("id"),
                _path_evidence(component, path) + sibling_note + toolkit.evidence + changes.notes, groups, toolkit,
                by_policy)


def part_of(fields: Json, toolkit: ToolkitRange) -> str:
    """What the part is, in a message's words: "a CUDA Toolkit file (toolkit 12.2.140)" for a part of the toolkit,
    or, for a product NVIDIA numbers on its own and ships under the document that governs it (documents.yaml
    ``component_texts``: NVSHMEM under the CUDA EULA), that product's name and that it is not part of the toolkit."""
    document = fields.get("governing.document")
    own = gov.own_table(str(document) if document else None, fields)
    if own is not None and document == "cuda-eula":
        from licscan.identify.catalog_table import load_catalog  # only for such a part: the catalog's display name

        display = next((e.display for e in load_catalog().entries if e.name == own), own)
        return (f"a file of {display}, which is not part of the CUDA Toolkit but which NVIDIA ships under the "
                f"governing text as its licence")
    if document == "cuda-eula":
        return f"a CUDA Toolkit file (toolkit {toolkit.text})"
    return f"a file of {fields.get('name')}"


def _distribution_facts(doc: DocumentReader, skip: Callable[[str], bool]) -> Iterator[Fact]:
    for dist in doc.dists:
        path = dist.get("path") or ""
        if skip(path):
            continue
        fields = {k: dist.get(k) for k in ("path", "ecosystem", "name", "version", "license_declared",
                                           "license_files")}
        fields.update(basename=basename(path), input=doc.input_of(path))
        fields.update(dist_fields(dist))
        dist_key = dist.get("path") or f"name:{dist.get('name')}"
        yield Fact("distribution", path, fields, None,
                   (f"{dist.get('ecosystem')} distribution {dist.get('name')} {dist.get('version') or ''}".rstrip(),),
                   {"input": doc.input_of(path), "distribution": dist_key, "path": path})


def build(document: Mapping[str, Any], exclude: Callable[[str], bool] | None = None,
          policy: str = gov.DEFAULT_POLICY) -> FactIndex:
    """The facts of a report document. ``exclude(path) -> bool`` drops facts whose path it matches; ``policy``
    chooses the governing licence text (governing.POLICIES)."""
    doc = DocumentReader(document, policy)
    skip = exclude or (lambda _path: False)
    return FactIndex(chain(_component_facts(doc, skip), device_facts(doc, skip), _distribution_facts(doc, skip)))


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
    doc = DocumentReader(report, policy)
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
        by_policy, _fields = doc.device_governing(path, device_range(entry), vendor, groups["distribution"])
        out[(path, None)] = _entry(path, None, "device_code", by_policy, policy)
    return [e for k, e in sorted(out.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")) if e is not None]
