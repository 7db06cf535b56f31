"""CycloneDX 1.6 through cyclonedx-python-lib: the same plan as the SPDX document, with the
identification evidence (identity methods, occurrences) that SPDX 2.3 cannot carry."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from uuid import UUID

from licscan.sbom.data import LicenseInfo
from licscan.sbom.plan import FileNode, PackageNode, Plan

_TYPES = {"APPLICATION": "APPLICATION", "LIBRARY": "LIBRARY", "ARCHIVE": "LIBRARY", "INSTALL": "LIBRARY",
          "FRAMEWORK": "FRAMEWORK", "OTHER": "LIBRARY"}


def _licenses(concluded: str | None, declared: str | None, infos: dict[str, LicenseInfo]):
    from cyclonedx.model import AttachedText, XsUri
    from cyclonedx.model.license import DisjunctiveLicense, LicenseAcknowledgement, LicenseExpression

    from licscan.sbom.licenses import refs

    def one(expr: str, ack):
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


def _props(pairs):
    from cyclonedx.model import Property

    return [Property(name=k, value=v) for k, v in pairs if v]


def _evidence(node: PackageNode | FileNode):
    from cyclonedx.model.component_evidence import (
        AnalysisTechnique,
        ComponentEvidence,
        Identity,
        IdentityField,
        Method,
        Occurrence,
    )

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
    occurrences = [Occurrence(location=p, bom_ref="occurrence-" + hashlib.sha256(p.encode("utf-8", "surrogateescape")).hexdigest()[:16])
                   for p in locations]
    return ComponentEvidence(identity=identity, occurrences=occurrences)


def to_bom(plan: Plan):
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentScope, ComponentType
    from cyclonedx.model.contact import OrganizationalContact, OrganizationalEntity
    from packageurl import PackageURL

    from licscan.sbom.spdx import escaped

    plan = escaped(plan)
    infos = {i.id: i for i in plan.licenses}
    notes: dict[str, list[str]] = {}
    for note in plan.notes:
        notes.setdefault(note.target, []).append(note.text)
    generated: dict[str, list[str]] = {}
    for edge in plan.edges:
        if edge.type == "GENERATED_FROM":
            generated.setdefault(edge.source, []).append(edge.target)

    def hashes(pairs):
        algs = {"SHA1": HashAlgorithm.SHA_1, "SHA256": HashAlgorithm.SHA_256}
        return [HashType(alg=algs[a], content=v) for a, v in pairs]

    made: dict[str, Component] = {}
    for node in plan.packages:
        if node.role == "root":
            continue
        props = list(node.properties) + [("licscan:finding", t) for t in notes.get(node.id, ())]
        if node.comment:
            props.append(("licscan:comment", node.comment))
        if node.license_comment:
            props.append(("licscan:license-comment", node.license_comment))
        props += [("licscan:purl", p) for p in node.purls[1:]] + [("licscan:cpe", c) for c in node.cpes[1:]]
        scope = None
        if node.role == "toolkit":
            scope = ComponentScope.EXCLUDED
        elif node.role == "driver-requirement":
            scope = ComponentScope.REQUIRED
        made[node.id] = Component(
            bom_ref=node.id, name=node.name, version=node.version,
            type=ComponentType[_TYPES.get(node.purpose, "LIBRARY")],
            supplier=OrganizationalEntity(name=node.supplier) if node.supplier else None,
            purl=PackageURL.from_string(node.purls[0]) if node.purls else None,
            cpe=node.cpes[0] if node.cpes else None, hashes=hashes(node.checksums),
            licenses=_licenses(node.concluded, node.declared, infos), description=node.summary, scope=scope,
            evidence=_evidence(node), properties=_props(props))
    for node in plan.files:
        props = list(node.properties) + [("licscan:finding", t) for t in notes.get(node.id, ())]
        props += [("licscan:generated-from", t) for t in sorted(generated.get(node.id, ()))]
        if node.comment:
            props.append(("licscan:comment", node.comment))
        made[node.id] = Component(
            bom_ref=node.id, name=node.path, type=ComponentType.FILE,
            hashes=hashes((("SHA1", node.sha1), ("SHA256", node.sha256))),
            licenses=_licenses(node.concluded, None, infos), evidence=_evidence(node), properties=_props(props))

    # nesting: an element goes under its first container other than the root (component -> distribution,
    # file -> component); what only the root contains is top-level
    rank = {p.id: {"component": 3, "distribution": 2}.get(p.role, 1) for p in plan.packages}
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

    deps: dict[str, list[str]] = {}
    for edge in plan.edges:
        if edge.type == "DEPENDS_ON":
            deps.setdefault(edge.source, []).append(edge.target)
    everything = dict(made)
    everything[plan.root] = root
    for source in sorted(deps):
        bom.register_dependency(everything[source], [everything[t] for t in sorted(set(deps[source]))])
    return bom


def serialize(bom) -> str:
    from cyclonedx.output.json import JsonV1Dot6

    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def validate_json(text: str) -> None:
    """Strict CycloneDX 1.6 JSON schema validation; raises ValueError when the document does not validate."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise ValueError(f"CycloneDX 1.6 validation failed: {error}")
