"""``licscan audit --format json``: the report of the JSON report schema (licscan/schemas/report.schema.json), schema ``licscan-report/1``
(licscan/schemas/report.schema.json). Keys are sorted where order carries no meaning; lists are sorted by path."""

from __future__ import annotations

from typing import Any

from licscan import __version__
from licscan.findings import Finding
from licscan.model import Component, Distribution, Inventory, SpecialFile, to_json
from licscan.report._shared import DISCLAIMER
from licscan.report.inspect_json import device_code_entry, diagnostic_entry, dumps

SCHEMA_ID = "licscan-report/1"


def component_entry(component: Component) -> dict[str, Any]:
    return {"id": component.id, "name": component.name, "vendor": component.vendor, "kind": component.kind.value,
            "version": component.version, "license": component.license, "paths": list(component.paths),
            "evidence": list(component.evidence),
            "properties": {k: v for k, v in sorted(set(component.properties))}}


def distribution_entry(dist: Distribution) -> dict[str, Any]:
    return {"path": dist.vpath, "ecosystem": dist.ecosystem.value, "name": dist.name, "version": dist.version,
            "license_declared": dist.license_declared, "license_files": list(dist.license_files)}


def special_entry(special: SpecialFile) -> dict[str, Any]:
    return {"path": special.vpath, "kind": special.kind.value, "target": special.target, "note": special.note}


def document(inventory: Inventory, findings: list[Finding] | None = None, governing: bool = True) -> dict[str, Any]:
    findings = findings or []
    counts = {"error": 0, "warning": 0, "note": 0}
    for finding in findings:
        if not finding.waived:
            counts[finding.severity.value] += 1
    out = {
        "schema": SCHEMA_ID,
        "tool": {"name": "licscan", "version": __version__},
        "disclaimer": DISCLAIMER,
        "inputs": list(inventory.inputs),
        "summary": {"files": inventory.summary.files, "bytes": inventory.summary.bytes, "findings": counts,
                    "diagnostics": inventory.summary.diagnostics, "complete": inventory.complete},
        "components": [component_entry(c) for c in inventory.components],
        "device_code": [device_code_entry(i) for i in inventory.device_code],
        "findings": [f.to_json() for f in findings],
        "diagnostics": [diagnostic_entry(d) for d in inventory.diagnostics],
        "distributions": [distribution_entry(d) for d in inventory.distributions],
        "special_files": [special_entry(s) for s in inventory.special_files],
        "dependencies": [{"path": d.path, "needs": d.needs, "component": d.component, "vendor": d.vendor,
                          "kind": d.kind.value, "shipped": list(d.shipped)} for d in inventory.dependencies],
        "remarks": list(inventory.remarks),
    }
    if governing:
        from licscan.rules.facts import governing_entries

        # The licence that governs each named part (docs/licenses.md), the same answer the rules judge by.
        out["governing"] = governing_entries(out)
    return out


def render(inventory: Inventory, findings: list[Finding] | None = None) -> str:
    return dumps(document(inventory, findings))


__all__ = ["SCHEMA_ID", "document", "render", "to_json"]
