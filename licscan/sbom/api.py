"""The SBOM entry points the CLI calls: build (validated) documents and write them in one of three formats."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Any

from licscan.model import Inventory
from licscan.sbom import cyclonedx, spdx
from licscan.sbom.ids import created_now
from licscan.sbom.plan import Digests, Plan, build_plan

FORMATS = ("spdx-json", "spdx-tv", "cyclonedx-json")


def build_plan_for(inventory: Inventory, records: Sequence[Any], *, namespace_seed: str | None = None,
                   creator_org: str | None = None, created: datetime | None = None, digests: Digests | None = None,
                   findings: Iterable[dict] | None = None, name: str | None = None,
                   root_version: str | None = None) -> Plan:
    return build_plan(inventory, records, created=created or created_now(), creator_org=creator_org,
                      namespace_seed=namespace_seed, digests=digests, findings=findings, name=name,
                      root_version=root_version)


def build_spdx(inventory: Inventory, records: Sequence[Any], *, namespace_seed: str | None = None,
               creator_org: str | None = None, created: datetime | None = None, digests: Digests | None = None,
               findings: Iterable[dict] | None = None, name: str | None = None, root_version: str | None = None,
               namespace_base: str = spdx.NAMESPACE_BASE):
    """The SPDX 2.3 ``spdx_tools.spdx.model.Document``, validated (raises :class:`spdx.SbomValidationError`)."""
    plan = build_plan_for(inventory, records, namespace_seed=namespace_seed, creator_org=creator_org,
                          created=created, digests=digests, findings=findings, name=name, root_version=root_version)
    document = spdx.to_document(plan, namespace_base)
    spdx.validate(document)
    return document


def build_cyclonedx(inventory: Inventory, records: Sequence[Any], *, namespace_seed: str | None = None,
                    creator_org: str | None = None, created: datetime | None = None, digests: Digests | None = None,
                    findings: Iterable[dict] | None = None, name: str | None = None,
                    root_version: str | None = None):
    """The CycloneDX 1.6 ``cyclonedx.model.bom.Bom`` (validated against the strict 1.6 schema when written)."""
    plan = build_plan_for(inventory, records, namespace_seed=namespace_seed, creator_org=creator_org,
                          created=created, digests=digests, findings=findings, name=name, root_version=root_version)
    return cyclonedx.to_bom(plan)


def dumps(document, fmt: str) -> str:
    """The text of ``document`` (an SPDX Document for spdx-*, a CycloneDX Bom for cyclonedx-json)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown SBOM format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "cyclonedx-json":
        if not _is_bom(document):
            raise TypeError("cyclonedx-json needs a CycloneDX Bom (build_cyclonedx)")
        text = cyclonedx.serialize(document)
        cyclonedx.validate_json(text)
        return text
    if _is_bom(document):
        raise TypeError(f"{fmt} needs an SPDX Document (build_spdx)")
    spdx.validate(document)
    stream = io.StringIO()
    if fmt == "spdx-json":
        from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

        write_document_to_stream(document, stream, validate=False, drop_duplicates=True)
        stream.write("\n")
    else:
        from spdx_tools.spdx.writer.tagvalue.tagvalue_writer import write_document_to_stream

        write_document_to_stream(document, stream, validate=False, drop_duplicates=True)
    return stream.getvalue()


def write(document, fmt: str, out: str | os.PathLike | IO[str]) -> None:
    """Write ``document`` in ``fmt`` to a path or a text stream (UTF-8, "\\n" line ends)."""
    text = dumps(document, fmt)
    if hasattr(out, "write"):
        out.write(text)
        return
    with open(out, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def render(inventory: Inventory, records: Sequence[Any], fmt: str, out, **options) -> None:
    """Build the document ``fmt`` needs and write it: what ``licscan sbom --format FMT -o FILE`` does."""
    if fmt == "cyclonedx-json":
        write(build_cyclonedx(inventory, records, **options), fmt, out)
    else:
        write(build_spdx(inventory, records, **options), fmt, out)


def notices(inventory: Inventory, creator_org: str | None) -> list[str]:
    """What ``licscan sbom`` says on standard error after writing: when neither --organization nor the input's
    distribution metadata names the root package's supplier (an NTIA minimum element), what to pass."""
    if creator_org:
        return []
    from licscan.sbom.plan import _root_supplier

    supplier, why = _root_supplier(inventory.distributions, inventory.inputs)
    if supplier is not None:
        return []
    return [f"the SBOM's root package has no supplier ({why.split(';')[0]}): pass --organization NAME to name who "
            "supplies it (an NTIA minimum element)"]


def _is_bom(document) -> bool:
    return type(document).__module__.startswith("cyclonedx.")
