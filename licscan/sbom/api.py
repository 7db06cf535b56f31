"""The SBOM entry points the CLI calls: build (validated) documents and write them in one of three formats."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, TextIO

from cyclonedx.model.bom import Bom
from spdx_tools.spdx.model.document import Document
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream as write_json
from spdx_tools.spdx.writer.tagvalue.tagvalue_writer import write_document_to_stream as write_tag_value

from licscan.findings import Finding
from licscan.model import Inventory
from licscan.sbom import cyclonedx, spdx
from licscan.sbom.ids import created_now
from licscan.sbom.nodes import Digests, Plan
from licscan.sbom.packages import root_supplier
from licscan.sbom.plan import build_plan
from licscan.streamed import Streamed

if TYPE_CHECKING:
    from licscan.scan import FileRecord

FORMATS = ("spdx-json", "spdx-tv", "cyclonedx-json")


def build_plan_for(inventory: Inventory, records: Sequence[FileRecord], *, namespace_seed: str | None = None,
                   creator_org: str | None = None, created: datetime | None = None, digests: Digests | None = None,
                   findings: Iterable[Finding] | None = None, name: str | None = None,
                   root_version: str | None = None) -> Plan:
    return build_plan(inventory, records, created=created or created_now(), creator_org=creator_org,
                      namespace_seed=namespace_seed, digests=digests, findings=findings, name=name,
                      root_version=root_version)


def build_spdx(inventory: Inventory, records: Sequence[FileRecord], *, namespace_seed: str | None = None,
               creator_org: str | None = None, created: datetime | None = None, digests: Digests | None = None,
               findings: Iterable[Finding] | None = None, name: str | None = None, root_version: str | None = None,
               namespace_base: str = spdx.NAMESPACE_BASE) -> Document:
    """The SPDX 2.3 ``spdx_tools.spdx.model.Document``, validated (raises :class:`spdx.SbomValidationError`)."""
    plan = build_plan_for(inventory, records, namespace_seed=namespace_seed, creator_org=creator_org,
                          created=created, digests=digests, findings=findings, name=name, root_version=root_version)
    document = spdx.to_document(plan, namespace_base)
    spdx.validate(document)
    return document


def build_cyclonedx(inventory: Inventory, records: Sequence[FileRecord], *, namespace_seed: str | None = None,
                    creator_org: str | None = None, created: datetime | None = None, digests: Digests | None = None,
                    findings: Iterable[Finding] | None = None, name: str | None = None,
                    root_version: str | None = None) -> Bom:
    """The CycloneDX 1.6 ``cyclonedx.model.bom.Bom`` (validated against the strict 1.6 schema when written)."""
    plan = build_plan_for(inventory, records, namespace_seed=namespace_seed, creator_org=creator_org,
                          created=created, digests=digests, findings=findings, name=name, root_version=root_version)
    return cyclonedx.to_bom(plan)


def dumps(document: Document | Bom, fmt: str) -> str:
    """The text of ``document`` (an SPDX Document for spdx-*, a CycloneDX Bom for cyclonedx-json)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown SBOM format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "cyclonedx-json":
        if not isinstance(document, Bom):
            raise TypeError("cyclonedx-json needs a CycloneDX Bom (build_cyclonedx)")
        text = cyclonedx.serialize(document)
        cyclonedx.validate_json(text)
        return text
    if isinstance(document, Bom):
        raise TypeError(f"{fmt} needs an SPDX Document (build_spdx)")
    spdx.validate(document)
    stream = io.StringIO()
    if fmt == "spdx-json":
        write_json(document, stream, validate=False, drop_duplicates=True)
        stream.write("\n")
    else:
        write_tag_value(document, stream, validate=False, drop_duplicates=True)
    return stream.getvalue()


def write(document: Document | Bom, fmt: str, out: str | os.PathLike[str] | IO[str]) -> None:
    """Write ``document`` in ``fmt`` to a path or a text stream (UTF-8, "\\n" line ends)."""
    text = dumps(document, fmt)
    if not isinstance(out, (str, os.PathLike)):
        out.write(text)
        return
    with open(out, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def render(inventory: Inventory, records: Sequence[FileRecord], fmt: str, out: str | os.PathLike[str] | IO[str], *,
           namespace_seed: str | None = None, creator_org: str | None = None, created: datetime | None = None,
           digests: Digests | None = None, findings: Iterable[Finding] | None = None, name: str | None = None,
           root_version: str | None = None) -> None:
    """Build the document ``fmt`` needs and write it: what ``licscan sbom --format FMT -o FILE`` does (built,
    validated and written piece by piece: :func:`streamed`)."""
    text = streamed(inventory, records, fmt, namespace_seed=namespace_seed, creator_org=creator_org, created=created,
                    digests=digests, findings=findings, name=name, root_version=root_version)
    if not isinstance(out, (str, os.PathLike)):
        text.write_to(out)  # type: ignore[arg-type]  # any text stream
        return
    with open(out, "w", encoding="utf-8", newline="\n") as handle:
        text.write_to(handle)


def streamed(inventory: Inventory, records: Sequence[FileRecord], fmt: str, *, namespace_seed: str | None = None,
             creator_org: str | None = None, created: datetime | None = None, digests: Digests | None = None,
             findings: Iterable[Finding] | None = None, name: str | None = None,
             root_version: str | None = None) -> Streamed:
    """What :func:`render` writes, made when it is written: the document is built, validated and written piece by
    piece then (a validation error is raised before anything is written), and what only building needs (the plan,
    the CycloneDX model) is let go before the text is written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown SBOM format {fmt!r} (one of {', '.join(FORMATS)})")
    if created is None:
        created = created_now()  # when asked, as render does

    def plan() -> Plan:
        return build_plan_for(inventory, records, namespace_seed=namespace_seed, creator_org=creator_org,
                              created=created, digests=digests, findings=findings, name=name,
                              root_version=root_version)

    def write_to(out: TextIO) -> None:
        if fmt == "cyclonedx-json":
            data = cyclonedx.as_data(cyclonedx.to_bom(plan()))  # the model is let go here
            cyclonedx.validate_data(data)
            cyclonedx.write_data(data, out)
            return
        document = spdx.to_document(plan())
        spdx.validate(document)
        if fmt == "spdx-json":
            write_json(document, out, validate=False, drop_duplicates=True)
            out.write("\n")
        else:
            write_tag_value(document, out, validate=False, drop_duplicates=True)

    return Streamed(write_to)


def notices(inventory: Inventory, creator_org: str | None) -> list[str]:
    """What ``licscan sbom`` says on standard error after writing: when neither --organization nor the input's
    distribution metadata names the root package's supplier (an NTIA minimum element), what to pass."""
    if creator_org:
        return []
    supplier, why = root_supplier(inventory.distributions)
    if supplier is not None:
        return []
    return [f"the SBOM's root package has no supplier ({why.split(';')[0]}): pass --organization NAME to name who "
            "supplies it (an NTIA minimum element)"]
