"""CycloneDX 1.6 through cyclonedx-python-lib: the same plan as the SPDX document, with the
identification evidence (identity methods, occurrences) that SPDX 2.3 cannot carry."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Hashable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import IO, Any
from uuid import UUID

from cyclonedx.model import AttachedText, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.model.component_evidence import (
    AnalysisTechnique,
    ComponentEvidence,
    Identity,
    IdentityField,
    Method,
    Occurrence,
)
from cyclonedx.model.contact import OrganizationalContact, OrganizationalEntity
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseAcknowledgement, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from licscan.sbom.data import LicenseInfo
from licscan.sbom.licenses import refs
from licscan.sbom.nodes import FileNode, PackageNode, Plan
from licscan.sbom.spdx import escaped

_TYPES = {"APPLICATION": "APPLICATION", "LIBRARY": "LIBRARY", "ARCHIVE": "LIBRARY", "INSTALL": "LIBRARY",
          "FRAMEWORK": "FRAMEWORK", "OTHER": "LIBRARY"}
_HASHES = {"SHA1": HashAlgorithm.SHA_1, "SHA256": HashAlgorithm.SHA_256}
# An element goes under its first container other than the root, the most specific first.
_NESTING_RANK = {"component": 3, "distribution": 2}
Texts = Mapping[str, list[str]]  # element id -> texts (findings, or the ids of what a file was generated from)


def _licenses(concluded: str | None, declared: str | None, infos: Mapping[str, LicenseInfo]) -> list[License]:
    def one(expr: str, ack: LicenseAcknowledgement) -> License:
        if " " in expr:  # a compound expression
            return LicenseExpression(expr, acknowledgement=ack)
        if refs(expr):
            info = infos.get(expr)
            if info is None:
                return DisjunctiveLicense(name=expr, acknowledgement=ack)
            return DisjunctiveLicense(name=f"{info.name} ({info.id})", text=AttachedText(content=info.text),
                                      url=XsUri(info.urls[0]) if info.urls else None, acknowledgement=ack)
        return DisjunctiveLicense(id=expr, acknowledgement=ack)

    pairs = [(e, a) for e, a in ((concluded, LicenseAcknowledgement.CONCLUDED),
                                 (declared, LicenseAcknowledgement.DECLARED)) if e]
    if any(" " in e for e, _ in pairs):  # an expression must be the only entry (CycloneDX 1.6 schema)
        return [one(*pairs[0])]
    return [one(e, a) for e, a in pairs]


def _props(pairs: Iterable[tuple[str, str | None]]) -> list[Property]:
    return [Property(name=k, value=v) for k, v in pairs if v]


def _hashes(pairs: Iterable[tuple[str, str]]) -> list[HashType]:
    return [HashType(alg=_HASHES[a], content=v) for a, v in pairs]


def _evidence(node: PackageNode | FileNode) -> ComponentEvidence:
    methods = []
    if isinstance(node, PackageNode):
        methods = [Method(technique=AnalysisTechnique(m.technique), confidence=Decimal(m.confidence), value=m.value)
                   for m in node.methods]
        locations = node.occurrences
    else:
        locations = (node.path,)
    identity = [Identity(field=IdentityField.NAME, confidence=max((m.confidence for m in methods),
                                                                  default=Decimal("1.0")), methods=methods)] \
        if methods else []
    # An Occurrence sorts by its bom-ref first, which defaults to a random UUID: derive it from the location.
    occurrences = [Occurrence(location=p, bom_ref="occurrence-"
                              + hashlib.sha256(p.encode("utf-8", "surrogateescape")).hexdigest()[:16])
                   for p in locations]
    return ComponentEvidence(identity=identity, occurrences=occurrences)


def _package(node: PackageNode, notes: Texts, infos: Mapping[str, LicenseInfo]) -> Component:
    props: list[tuple[str, str | None]] = [*node.properties, *(("licscan:finding", t) for t in notes.get(node.id, ()))]
    props += [("licscan:comment", node.comment), ("licscan:license-comment", node.license_comment)]
    props += [("licscan:purl", p) for p in node.purls[1:]] + [("licscan:cpe", c) for c in node.cpes[1:]]
    scope = {"toolkit": ComponentScope.EXCLUDED, "driver-requirement": ComponentScope.REQUIRED}.get(node.role)
    return Component(
        bom_ref=node.id, name=node.name, version=node.version, type=ComponentType[_TYPES.get(node.purpose, "LIBRARY")],
        supplier=OrganizationalEntity(name=node.supplier) if node.supplier else None,
        purl=PackageURL.from_string(node.purls[0]) if node.purls else None,
        cpe=node.cpes[0] if node.cpes else None, hashes=_hashes(node.checksums),
        licenses=_licenses(node.concluded, node.declared, infos), description=node.summary, scope=scope,
        evidence=_evidence(node), properties=_props(props))


def _file(node: FileNode, notes: Texts, generated: Texts, infos: Mapping[str, LicenseInfo]) -> Component:
    props: list[tuple[str, str | None]] = [*node.properties, *(("licscan:finding", t) for t in notes.get(node.id, ()))]
    props += [("licscan:generated-from", t) for t in sorted(generated.get(node.id, ()))]
    props.append(("licscan:comment", node.comment))
    return Component(
        bom_ref=node.id, name=node.path, type=ComponentType.FILE,
        hashes=_hashes((("SHA1", node.sha1), ("SHA256", node.sha256))),
        licenses=_licenses(node.concluded, None, infos), evidence=_evidence(node), properties=_props(props))


def _by_source(plan: Plan, edge_type: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for edge in plan.edges:
        if edge.type == edge_type:
            out.setdefault(edge.source, []).append(edge.target)
    return out


def _nest(plan: Plan, made: Mapping[str, Component]) -> dict[str, list[Component]]:
    """Container id -> the components nested in it: an element goes under its first container other than the root
    (component -> distribution, file -> component); what only the root contains is top-level."""
    rank = {p.id: _NESTING_RANK.get(p.role, 1) for p in plan.packages}
    parent: dict[str, str] = {}
    for edge in plan.edges:
        if edge.type == "CONTAINS" and edge.target in made and (edge.source == plan.root or edge.source in made):
            current = parent.get(edge.target)
            if current is None or rank.get(edge.source, 1) > rank.get(current, 1):
                parent[edge.target] = edge.source
    children: dict[str, list[Component]] = {}
    for element_id, component in made.items():
        children.setdefault(parent.get(element_id, plan.root), []).append(component)
    for element_id, component in made.items():
        if element_id in children:
            component.components = children[element_id]
    return children


def to_bom(plan: Plan) -> Bom:
    plan = escaped(plan)
    infos = {i.id: i for i in plan.licenses}
    notes: dict[str, list[str]] = {}
    for note in plan.notes:
        notes.setdefault(note.target, []).append(note.text)
    generated = _by_source(plan, "GENERATED_FROM")
    made = {node.id: _package(node, notes, infos) for node in plan.packages if node.role != "root"}
    made.update((node.id, _file(node, notes, generated, infos)) for node in plan.files)
    children = _nest(plan, made)
    root_node = plan.package(plan.root)
    root = Component(
        bom_ref=root_node.id, name=root_node.name, version=root_node.version, type=ComponentType.APPLICATION,
        supplier=OrganizationalEntity(name=root_node.supplier) if root_node.supplier else None,
        description=root_node.comment,
        properties=_props([("licscan:finding", t) for t in notes.get(root_node.id, ())]))
    bom = Bom(serial_number=UUID(plan.uuid))
    bom.metadata.timestamp = plan.created
    bom.metadata.component = root
    bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION, name="licscan",
                                                version=plan.tool_version))
    if plan.creator_org:
        bom.metadata.supplier = OrganizationalEntity(name=plan.creator_org)
        bom.metadata.authors = [OrganizationalContact(name=plan.creator_org)]
    bom.metadata.properties = _props([("licscan:comment", plan.comment)])
    bom.components = children.get(plan.root, [])
    deps = _by_source(plan, "DEPENDS_ON")
    for source, targets in _by_source(plan, "STATIC_LINK").items():  # a file depends on the runtime linked into it
        deps.setdefault(source, []).extend(targets)
    everything = {**made, plan.root: root}
    for source in sorted(deps):
        bom.register_dependency(everything[source], [everything[t] for t in sorted(set(deps[source]))])
    return bom


def serialize(bom: Bom) -> str:
    return json.dumps(as_data(bom), indent=2) + "\n"


def as_data(bom: Bom) -> dict[str, Any]:
    """The JSON document of ``bom`` as data: what ``JsonV1Dot6(bom).output_as_string(indent=2)`` encodes (that
    method is ``json.dumps(self._bom_json, indent=indent)``; cyclonedx-python-lib is pinned). ``json.dump`` of it
    to a stream writes the same text piece by piece, and it is what ``json.loads`` of that text gives back."""
    outputter = JsonV1Dot6(bom)
    outputter.generate()
    data: dict[str, Any] = outputter._bom_json
    return data


def write_data(data: dict[str, Any], out: IO[str]) -> None:
    """:func:`serialize`'s text of the document ``data`` (:func:`as_data`), written piece by piece."""
    json.dump(data, out, indent=2)
    out.write("\n")


def validate_json(text: str) -> None:
    """Strict CycloneDX 1.6 JSON schema validation; raises ValueError when the document does not validate."""
    validate_data(json.loads(text))


def validate_data(data: Any) -> None:
    """:func:`validate_json` of the document that ``json.loads`` reads back (:func:`as_data`)."""
    error = next(iter(_strict_validator().iter_errors(data)), None)
    if error is not None:
        raise ValueError(f"CycloneDX 1.6 validation failed: {error}")


@functools.cache
def _strict_validator() -> Any:
    """cyclonedx-python-lib's strict 1.6 validator (its schema, registry and format checker) with a linear
    ``uniqueItems``: jsonschema compares every pair of an array of objects (``_utils.uniq``: objects do not sort),
    and the 1.6 schema says ``"uniqueItems": true`` of ``components`` and ``dependencies``: the CycloneDX SBOM of
    flashinfer-cubin 0.6.13's 16,017 cubins took 677 s wall, 244 s of CPU there. Imported here: the validator's
    jsonschema formats compile an RFC 3987 grammar at import (1.6 s of CPU), which an SPDX SBOM does not need."""
    from cyclonedx.validation.json import JsonStrictValidator
    from jsonschema.validators import extend  # type: ignore[import-untyped]  # the package ships no types here

    strict: Any = JsonStrictValidator(SchemaVersion.V1_6)
    base = strict._validator  # built from the schema files the library ships (no public accessor)
    linear = extend(type(base), {"uniqueItems": _unique_items})
    return linear(base.schema, registry=base._registry, format_checker=base.format_checker)


def _unique_items(validator: Any, unique: bool, instance: Any, schema: Any) -> Iterator[Any]:
    """JSON Schema's ``uniqueItems`` ("the elements of the array MUST be unique", equality as jsonschema's
    ``_utils.equal``: true is not 1, 1 is 1.0), in one pass over hashable keys."""
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]

    if unique and validator.is_type(instance, "array"):
        keys = [_json_key(item) for item in instance]
        if len(set(keys)) != len(keys):
            yield ValidationError(f"{instance!r} has non-unique elements")


def _json_key(value: Any) -> Hashable:
    """A hashable key equal for JSON values jsonschema calls equal."""
    if isinstance(value, str):
        return ("s", value)
    if value is True or value is False:
        return ("b", value)
    if isinstance(value, list):
        return ("a", tuple(_json_key(v) for v in value))
    if isinstance(value, dict):
        return ("o", frozenset((k, _json_key(v)) for k, v in value.items()))
    if value is None:
        return ("z",)
    return ("n", value)  # int and float: 1 == 1.0, hash(1) == hash(1.0)
