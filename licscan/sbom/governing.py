"""The licence that governs each component, as the SBOM concludes it: the same answer the rules judge by
(licscan/rules/governing.py, default policy)."""

from __future__ import annotations

from typing import Any

from licscan.model import Inventory, property_map
from licscan.rules import documents, facts

GENERIC_EULA = "LicenseRef-NVIDIA-CUDA-EULA"


def _facts_document(inventory: Inventory) -> dict[str, Any]:
    """The parts of a report document the rules' facts view reads for components (licscan/rules/facts.py)."""
    return {
        "inputs": list(inventory.inputs),
        "components": [{"id": c.id, "name": c.name, "vendor": c.vendor, "kind": c.kind.value, "version": c.version,
                        "license": c.license, "paths": list(c.paths), "evidence": list(c.evidence),
                        "properties": property_map(c)} for c in inventory.components],
        "distributions": [{"path": d.vpath, "name": d.name, "ecosystem": d.ecosystem.value, "version": d.version,
                           "license_declared": d.license_declared, "license_files": list(d.license_files)}
                          for d in inventory.distributions],
        "device_code": [],
    }


def governing_licences(inventory: Inventory) -> dict[str, tuple[str | None, str]]:
    """Component id -> (concluded licence, comment): the licence that governs it (licscan/rules/governing.py,
    default policy), the same answer the rules judge by. A text left unknown gives the document's generic id."""
    seen: dict[str, set[tuple[str | None, str]]] = {}
    for fact in facts.build(_facts_document(inventory)).scope("component"):
        governing = fact.governing.get("published-with-toolkit")
        if governing is None or governing.document is None or fact.component is None:
            continue
        licence = governing.license_id()
        if licence is None:  # the document's generic id (documents.yaml ``license``) when no text can be told
            document = documents.load().document(governing.document)
            licence = document.license
            note = f"governed by the {document.name}; text unknown ({governing.why})"
        else:
            note = f"governing licence: {governing.label} ({governing.why})"
        seen.setdefault(fact.component, set()).add((licence, note))
    out: dict[str, tuple[str | None, str]] = {}
    for component, answers in seen.items():
        if len({licence for licence, _ in answers}) == 1:
            out[component] = sorted(answers, key=lambda a: a[1])[0]
        else:
            out[component] = (None, "its copies are governed by different texts: "
                              + "; ".join(sorted(n for _, n in answers)))
    return out
