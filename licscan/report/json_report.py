"""``licscan audit --format json``: schema ``licscan-report/1`` (licscan/schemas/report.schema.json). Keys are sorted
where order carries no meaning; lists are sorted by path."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from licscan import __version__
from licscan.findings import Finding
from licscan.model import Component, Distribution, Inventory, SpecialFile, property_map, to_json
from licscan.report._shared import DISCLAIMER
from licscan.report.inspect_json import (
    EncodedLater,
    device_code_entries,
    diagnostic_entry,
    dumps,
    iter_device_code_lines,
    pieces,
)
from licscan.streamed import Streamed

SCHEMA_ID = "licscan-report/1"


def component_entry(component: Component) -> dict[str, Any]:
    return {"id": component.id, "name": component.name, "vendor": component.vendor, "kind": component.kind.value,
            "version": component.version, "license": component.license, "paths": list(component.paths),
            "evidence": list(component.evidence),
            "properties": property_map(component)}


def distribution_entry(dist: Distribution) -> dict[str, Any]:
    return {"path": dist.vpath, "ecosystem": dist.ecosystem.value, "name": dist.name, "version": dist.version,
            "license_declared": dist.license_declared, "license_files": list(dist.license_files)}


def special_entry(special: SpecialFile) -> dict[str, Any]:
    return {"path": special.vpath, "kind": special.kind.value, "target": special.target, "note": special.note}


def document(inventory: Inventory, findings: list[Finding] | None = None, governing: bool = True) -> dict[str, Any]:
    """The report as data (what the rules read: ``licscan.rules.engine.evaluate``); with ``governing``, the governing
    licence of every named part too."""
    out = _document(inventory, findings or [], device_code_entries(inventory.device_code))
    if governing:
        out["governing"] = _governing(out)
    return out


def _governing(report: dict[str, Any]) -> list[dict[str, Any]]:
    from licscan.rules.facts import governing_entries

    # The licence that governs each named part (docs/licenses.md), the same answer the rules judge by.
    return governing_entries(report)


def _document(inventory: Inventory, findings: list[Finding], device_code: list[Any] | EncodedLater) -> dict[str, Any]:
    counts = {"error": 0, "warning": 0, "note": 0}
    for finding in findings:
        if not finding.waived:
            counts[finding.severity.value] += 1
    return {
        "schema": SCHEMA_ID,
        "tool": {"name": "licscan", "version": __version__},
        "disclaimer": DISCLAIMER,
        "inputs": list(inventory.inputs),
        "summary": {"files": inventory.summary.files, "bytes": inventory.summary.bytes, "findings": counts,
                    "diagnostics": inventory.summary.diagnostics, "complete": inventory.complete},
        "components": [component_entry(c) for c in inventory.components],
        "device_code": device_code,
        "findings": [f.to_json() for f in findings],
        "diagnostics": [diagnostic_entry(d) for d in inventory.diagnostics],
        "distributions": [distribution_entry(d) for d in inventory.distributions],
        "special_files": [special_entry(s) for s in inventory.special_files],
        "dependencies": [{"path": d.path, "needs": d.needs, "component": d.component, "vendor": d.vendor,
                          "kind": d.kind.value, "shipped": list(d.shipped)} for d in inventory.dependencies],
        "remarks": list(inventory.remarks),
    }


def _encoded(inventory: Inventory, findings: list[Finding]) -> dict[str, Any]:
    """:func:`document` without ``governing``, its device code as JSON text made as it is written (what
    :func:`dumps` writes for those dicts, byte for byte; encoded once per distinct path, toolkit and tool: tens of
    thousands of images)."""
    images = inventory.device_code
    return _document(inventory, findings, EncodedLater(len(images), lambda: iter_device_code_lines(images)))


def fingerprint(inventory: Inventory) -> str:
    """SHA-256 of the report of ``inventory`` without findings and governing texts: equal for equal inventories
    (what the findings depend on besides the rules, the configuration and the date). Hashed as it is made: the
    text is never held whole."""
    digest = hashlib.sha256()
    for piece in pieces(_encoded(inventory, [])):
        digest.update(piece.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def render(inventory: Inventory, findings: list[Finding] | None = None,
           governing: Sequence[dict[str, Any]] | None = None) -> str:
    """The JSON report; ``governing``: its ``governing`` entries when the audit has them already (else computed)."""
    return dumps(_final(inventory, findings, governing))


def streamed(inventory: Inventory, findings: list[Finding] | None = None,
             governing: Sequence[dict[str, Any]] | None = None) -> Streamed:
    """:func:`render`'s text, written line by line when it is written (what a report of tens of thousands of
    device images holds at once is one line)."""
    out = _final(inventory, findings, governing)
    return Streamed.of_pieces(lambda: pieces(out))


def _final(inventory: Inventory, findings: list[Finding] | None,
           governing: Sequence[dict[str, Any]] | None) -> dict[str, Any]:
    out = _encoded(inventory, findings or [])
    out["governing"] = list(governing) if governing is not None else _governing(document(inventory, governing=False))
    return out


__all__ = ["SCHEMA_ID", "document", "fingerprint", "render", "streamed", "to_json"]
