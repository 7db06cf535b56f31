"""SPDX 2.3 through the spdx-tools 0.8 model: the plan becomes a Document that is validated
before anything is written."""

from __future__ import annotations

import hashlib

from licscan.sbom.plan import Plan

DOCUMENT_ID = "SPDXRef-DOCUMENT"
NAMESPACE_BASE = "https://spdx.org/spdxdocs/licscan"


class SbomValidationError(ValueError):
    """The SBOM licscan built does not validate: a licscan bug, never the user's input."""

    def __init__(self, messages):
        self.messages = list(messages)
        lines = [f"{m.validation_message} [{getattr(m.context, 'spdx_id', None)}]" for m in self.messages[:20]]
        super().__init__("SPDX document does not validate:\n  " + "\n  ".join(lines))


def _expr(text: str | None):
    from spdx_tools.common.spdx_licensing import spdx_licensing
    from spdx_tools.spdx.model import SpdxNoAssertion

    return spdx_licensing.parse(text) if text else SpdxNoAssertion()


def to_document(plan: Plan, namespace_base: str = NAMESPACE_BASE):
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Annotation,
        AnnotationType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        ExtractedLicensingInfo,
        File,
        FileType,
        Package,
        PackagePurpose,
        PackageVerificationCode,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )

    plan = escaped(plan)
    creators = [Actor(ActorType.TOOL, plan.tool)]
    if plan.creator_org:
        creators.append(Actor(ActorType.ORGANIZATION, plan.creator_org))
    creation = CreationInfo(
        spdx_version="SPDX-2.3", spdx_id=DOCUMENT_ID, name=f"licscan-sbom-{plan.name}", data_license="CC0-1.0",
        document_namespace=f"{namespace_base.rstrip('/')}/{_safe(plan.name)}-{plan.uuid}", creators=creators,
        created=plan.created, creator_comment=plan.comment, license_list_version=None)

    files = []
    sha1_of = {}
    for node in plan.files:
        sha1_of[node.id] = node.sha1
        files.append(File(
            name=_file_name(node.path), spdx_id=node.id,
            checksums=[Checksum(ChecksumAlgorithm.SHA1, node.sha1), Checksum(ChecksumAlgorithm.SHA256, node.sha256)],
            file_types=[FileType.BINARY], license_concluded=_expr(node.concluded),
            license_info_in_file=[SpdxNoAssertion()], copyright_text=SpdxNoAssertion(), comment=node.comment))

    packages = []
    for node in plan.packages:
        refs = [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", p) for p in node.purls]
        refs += [ExternalPackageRef(ExternalPackageRefCategory.SECURITY, "cpe23Type", c) for c in node.cpes]
        analysed = bool(node.files)
        code = None
        if analysed:
            joined = "".join(sorted(sha1_of[f] for f in node.files))
            code = PackageVerificationCode(hashlib.sha1(joined.encode("ascii")).hexdigest())
        packages.append(Package(
            spdx_id=node.id, name=node.name, download_location=SpdxNoAssertion(), version=node.version,
            supplier=Actor(ActorType.ORGANIZATION, node.supplier) if node.supplier else SpdxNoAssertion(),
            files_analyzed=analysed, verification_code=code,
            checksums=[Checksum(ChecksumAlgorithm[alg], value) for alg, value in node.checksums],
            license_concluded=_expr(node.concluded), license_declared=_expr(node.declared),
            license_info_from_files=[SpdxNoAssertion()] if analysed else None,
            license_comment=node.license_comment, copyright_text=SpdxNoAssertion(), summary=node.summary,
            comment=node.comment, external_references=refs, primary_package_purpose=PackagePurpose[node.purpose]))

    relationships = [Relationship(e.source, RelationshipType[e.type], e.target, e.comment) for e in plan.edges]
    extracted = [ExtractedLicensingInfo(license_id=i.id, extracted_text=i.text, license_name=i.name,
                                        cross_references=list(i.urls), comment=i.comment or None)
                 for i in plan.licenses]
    annotations = [Annotation(n.target, AnnotationType.REVIEW, Actor(ActorType.TOOL, plan.tool), plan.created,
                              n.text) for n in plan.notes]
    document = Document(creation_info=creation)
    # whole lists (list.append bypasses the model's type checks)
    document.packages = packages
    document.files = files
    document.relationships = relationships
    document.extracted_licensing_info = extracted
    document.annotations = annotations
    return document


def escaped(plan: Plan) -> Plan:
    """The plan with every string as SBOMs may carry it (escape.sbom_text): names, versions, paths and comments
    come from the scanned input, and a line break in one would write tag-value lines of its own (SPDX 2.3
    tag-value: one "Tag: value" per line). Only the extracted licence texts (our own data) keep line breaks."""
    from licscan.escape import map_strings, sbom_text

    return map_strings(plan, lambda text, name: sbom_text(text, multiline=name == "text"))


def validate(document) -> None:
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    messages = validate_full_spdx_document(document)
    if messages:
        raise SbomValidationError(messages)


def _file_name(vpath: str) -> str:
    return vpath if vpath.startswith("./") else "./" + vpath.lstrip("/")


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "input"
