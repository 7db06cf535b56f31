"""SPDX 2.3 through the spdx-tools 0.8 model: the plan becomes a Document that is validated
before anything is written."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable

from license_expression import LicenseExpression  # type: ignore[import-untyped]  # the package ships no types
from spdx_tools.common.spdx_licensing import spdx_licensing  # type: ignore[import-untyped]  # no py.typed here
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.annotation import Annotation, AnnotationType
from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.extracted_licensing_info import ExtractedLicensingInfo
from spdx_tools.spdx.model.file import File, FileType
from spdx_tools.spdx.model.package import (
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
    PackageVerificationCode,
)
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.validation.actor_validator import validate_actor
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from spdx_tools.spdx.validation.spdx_id_validators import validate_spdx_id
from spdx_tools.spdx.validation.validation_message import SpdxElementType, ValidationContext, ValidationMessage

from licscan.escape import map_strings, sbom_text
from licscan.sbom.nodes import FileNode, PackageNode, Plan

DOCUMENT_ID = "SPDXRef-DOCUMENT"
NAMESPACE_BASE = "https://spdx.org/spdxdocs/licscan"


class SbomValidationError(ValueError):
    """The SBOM licscan built does not validate: a licscan bug, never the user's input."""

    def __init__(self, messages: Iterable[ValidationMessage]) -> None:
        self.messages = list(messages)
        lines = [f"{m.validation_message} [{getattr(m.context, 'spdx_id', None)}]" for m in self.messages[:20]]
        super().__init__("SPDX document does not validate:\n  " + "\n  ".join(lines))


def _expr(text: str | None) -> LicenseExpression | SpdxNoAssertion:
    return spdx_licensing.parse(text) if text else SpdxNoAssertion()


def to_document(plan: Plan, namespace_base: str = NAMESPACE_BASE) -> Document:
    plan = escaped(plan)
    creators = [Actor(ActorType.TOOL, plan.tool)]
    if plan.creator_org:
        creators.append(Actor(ActorType.ORGANIZATION, plan.creator_org))
    creation = CreationInfo(
        spdx_version="SPDX-2.3", spdx_id=DOCUMENT_ID, name=f"licscan-sbom-{plan.name}", data_license="CC0-1.0",
        document_namespace=f"{namespace_base.rstrip('/')}/{_safe(plan.name)}-{plan.uuid}", creators=creators,
        created=plan.created, creator_comment=plan.comment, license_list_version=None)
    sha1_of = {node.id: node.sha1 for node in plan.files}
    document = Document(creation_info=creation)
    # whole lists (list.append bypasses the model's type checks)
    document.packages = [_package(node, sha1_of) for node in plan.packages]
    document.files = [_file(node) for node in plan.files]
    document.relationships = [Relationship(e.source, RelationshipType[e.type], e.target, e.comment)
                              for e in plan.edges]
    document.extracted_licensing_info = [
        ExtractedLicensingInfo(license_id=i.id, extracted_text=i.text, license_name=i.name,
                               cross_references=list(i.urls), comment=i.comment or None) for i in plan.licenses]
    document.annotations = [Annotation(n.target, AnnotationType.REVIEW, Actor(ActorType.TOOL, plan.tool),
                                       plan.created, n.text) for n in plan.notes]
    return document


def _file(node: FileNode) -> File:
    return File(
        name=_file_name(node.path), spdx_id=node.id,
        checksums=[Checksum(ChecksumAlgorithm.SHA1, node.sha1), Checksum(ChecksumAlgorithm.SHA256, node.sha256)],
        file_types=[FileType.BINARY], license_concluded=_expr(node.concluded),
        license_info_in_file=[SpdxNoAssertion()], copyright_text=SpdxNoAssertion(), comment=node.comment)


def _package(node: PackageNode, sha1_of: dict[str, str]) -> Package:
    refs = [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", p) for p in node.purls]
    refs += [ExternalPackageRef(ExternalPackageRefCategory.SECURITY, "cpe23Type", c) for c in node.cpes]
    analysed = bool(node.files)
    code = None
    if analysed:  # SPDX 2.3 §7.9: SHA-1 of the sorted, concatenated SHA-1s of the files it contains
        joined = "".join(sorted(sha1_of[f] for f in node.files))
        code = PackageVerificationCode(hashlib.sha1(joined.encode("ascii")).hexdigest())
    return Package(
        spdx_id=node.id, name=node.name, download_location=SpdxNoAssertion(), version=node.version,
        supplier=Actor(ActorType.ORGANIZATION, node.supplier) if node.supplier else SpdxNoAssertion(),
        files_analyzed=analysed, verification_code=code,
        checksums=[Checksum(ChecksumAlgorithm[alg], value) for alg, value in node.checksums],
        license_concluded=_expr(node.concluded), license_declared=_expr(node.declared),
        license_info_from_files=[SpdxNoAssertion()] if analysed else None,
        license_comment=node.license_comment, copyright_text=SpdxNoAssertion(), summary=node.summary,
        comment=node.comment, external_references=refs, primary_package_purpose=PackagePurpose[node.purpose])


def escaped(plan: Plan) -> Plan:
    """The plan with every string as SBOMs may carry it (escape.sbom_text): names, versions, paths and comments
    come from the scanned input, and a line break in one would write tag-value lines of its own (SPDX 2.3
    tag-value: one "Tag: value" per line). Only the extracted licence texts (our own data) keep line breaks."""
    result: Plan = map_strings(plan, lambda text, name: sbom_text(text, multiline=name == "text"))
    return result


def validate(document: Document) -> None:
    """spdx-tools' full validation, with the relationships and annotations that no other check reads validated here
    in one pass: spdx-tools checks that each one's SPDX ids are in the document by listing every id of the document
    again for each id (``is_spdx_id_present_in_document``), quadratic in the files: an SBOM of the 16,017 cubins
    of flashinfer-cubin 0.6.13 took minutes there. The checks are the same (``validate_relationship``,
    ``validate_annotation``: the id's syntax, then its presence), against a set built once."""
    ids = {document.creation_info.spdx_id, *(f.spdx_id for f in document.files),
           *(p.spdx_id for p in document.packages), *(s.spdx_id for s in document.snippets)}
    # what spdx-tools reads elsewhere: the document's DESCRIBES / DESCRIBED_BY, and the CONTAINS / CONTAINED_BY of
    # a package whose files were not analysed (validate_package)
    unanalysed = {p.spdx_id for p in document.packages if not p.files_analyzed}
    kept, own = [], []
    for relationship in document.relationships:
        kind = relationship.relationship_type
        if kind in _READ_ELSEWHERE or (kind is RelationshipType.CONTAINS and relationship.spdx_element_id in unanalysed) \
                or (kind is RelationshipType.CONTAINED_BY and relationship.related_spdx_element_id in unanalysed):
            kept.append(relationship)
        else:
            own.append(relationship)
    rest = copy.copy(document)
    rest.relationships = kept
    rest.annotations = []
    messages = validate_full_spdx_document(rest)
    for relationship in own:
        context = ValidationContext(element_type=SpdxElementType.RELATIONSHIP, full_element=relationship)
        for spdx_id in (relationship.spdx_element_id, relationship.related_spdx_element_id):
            if not isinstance(spdx_id, str):  # SpdxNone / SpdxNoAssertion: nothing to look up
                continue
            messages.extend(ValidationMessage(m, context) for m in _id_messages(spdx_id, document, ids))
    for annotation in document.annotations:
        context = ValidationContext(element_type=SpdxElementType.ANNOTATION, full_element=annotation)
        messages.extend(validate_actor(annotation.annotator, "annotation"))
        messages.extend(ValidationMessage(m, context) for m in _id_messages(annotation.spdx_id, document, ids))
    if messages:
        raise SbomValidationError(messages)


_READ_ELSEWHERE = frozenset({RelationshipType.DESCRIBES, RelationshipType.DESCRIBED_BY})


def _id_messages(spdx_id: str, document: Document, ids: set[str]) -> list[str]:
    """``validate_spdx_id(spdx_id, document, check_document=True)`` with the presence check against ``ids``."""
    messages: list[str] = validate_spdx_id(spdx_id, document)
    if ":" not in spdx_id and spdx_id not in ids:  # an external "DocumentRef-x:SPDXRef-y" is checked by the above
        messages.append(f'did not find the referenced spdx_id "{spdx_id}" in the SPDX document')
    return messages


def _file_name(vpath: str) -> str:
    """SPDX file names are relative paths starting with "./" (spdx-tools validates it)."""
    return vpath if vpath.startswith("./") else "./" + vpath.lstrip("/")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "input"
