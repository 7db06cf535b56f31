"""``licscan audit --format sarif``: SARIF 2.1.0 as GitHub code scanning ingests it
(https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning).

* ``tool.driver``: name, semanticVersion and one rule per policy rule of the loaded packs (plus the waiver
  bookkeeping rules), each with short and full description, help text and markdown (quoted clause, remediation,
  ``licscan rules show ID``) and helpUri (the licence text the clause is quoted from, where the rule names one).
* results: ruleId, ruleIndex, level, message; the location is the outer file on disk (a wheel, an image tarball,
  a plain file) with the dummy region 1:1 that binaries get; the member inside it is a logical location
  (``outer!/member``) and an entry of ``run.artifacts`` whose ``parentIndex`` chains to the outer file.
* partialFingerprints: ``primaryLocationLineHash`` computed here (upload-sarif would hash line 1 of a binary),
  from rule id, the path with version numbers blanked and the component without its version, so an upgrade of a
  wheel does not open a new alert; ``licscan/v1`` is the finding's own fingerprint (the one waivers use).
* waived findings are left out: GitHub ignores SARIF suppressions; they stay in the JSON and HTML reports.
* ``automationDetails.id`` = ``licscan/<category>/`` so uploads for several inputs of one commit stay apart.

Validated against the OASIS schema shipped as licscan/schemas/sarif-2.1.0.json (tests).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from licscan import __version__
from licscan.escape import sarif_text
from licscan.findings import Finding
from licscan.model import GPU_LAYER_KINDS, Inventory
from licscan.report._shared import DISCLAIMER, active, rel, rule_doc_command
from licscan.vpath import SEP, chain, outer
from licscan.vpath import member as vpath_member

if TYPE_CHECKING:
    from licscan.rules.loader import Rule

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "licscan/v1"
LEVEL = {"error": "error", "warning": "warning", "note": "note"}
PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "note": "recommendation"}
_VERSIONISH = re.compile(r"\d+(?:[._]\d+)+(?:[-+.]?[a-z]+\d*)*", re.IGNORECASE)

#: Rules the configuration reports about itself (licscan/rules/config.py), not part of any pack.
WAIVER_RULES = (
    {"id": "LICSCAN-WAIVER-EXPIRED", "title": "Waiver expired", "severity": "warning",
     "text": "A waiver in .licscan.yaml is past its expiry date; it no longer waives anything.",
     "remediation": "Renew the waiver with a new expiry date after review, or remove it."},
    {"id": "LICSCAN-WAIVER-UNUSED", "title": "Waiver unused", "severity": "note",
     "text": "A waiver in .licscan.yaml matched no finding.",
     "remediation": "Remove the waiver, or correct its rule, path or fingerprint."},
)


class _Placeholders(string.Formatter):
    """Render a message template at rule level: ``{other.name}`` -> ``<other.name>``."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[str, str]:
        return f"<{field_name}>", field_name


def _template(text: str) -> str:
    try:
        return _Placeholders().vformat(text, (), {})
    except (ValueError, IndexError, KeyError):
        return text


def _cut(text: str, limit: int = 1024) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _camel(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("-"))


def _quote_block(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines() or [""])


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    clause = rule.clause
    remediation = _template(rule.remediation)
    source = f"{clause.document} {clause.section} (text of {clause.date})"
    help_text = (f"{rule.title}.\n\n{source}:\n\"{' '.join(clause.text.split())}\"\n\n"
                 f"Remediation: {' '.join(remediation.split())}\n\nDetails: {rule_doc_command(rule.id)}")
    link = f"[{clause.document}]({clause.url})" if clause.url else clause.document
    markdown = (f"**{rule.title}**\n\n{link}, section {clause.section} (text of {clause.date}):\n\n"
                f"{_quote_block(' '.join(clause.text.split()))}\n\n"
                + (f"{' '.join(rule.rationale.split())}\n\n" if rule.rationale else "")
                + f"**Remediation.** {' '.join(remediation.split())}\n\n"
                f"Run `{rule_doc_command(rule.id)}` for the rule's condition and examples. Waive a reviewed finding "
                f"in `.licscan.yaml` (`licscan waive FINGERPRINT --reason ...`).")
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "name": _camel(rule.id),
        "shortDescription": {"text": _cut(rule.title)},
        "fullDescription": {"text": _cut(rule.rationale or f"{rule.title}. {source}.")},
        "help": {"text": help_text, "markdown": markdown},
        "defaultConfiguration": {"level": LEVEL[rule.severity.value]},
        "properties": {"tags": ["license", "nvidia", rule.pack or "licscan"], "precision": "high",
                       "problem.severity": PROBLEM_SEVERITY[rule.severity.value],
                       "clause": clause.to_json()},
    }
    if clause.url:
        descriptor["helpUri"] = clause.url
    return descriptor


def _waiver_descriptor(meta: dict[str, str]) -> dict[str, Any]:
    return {
        "id": meta["id"], "name": _camel(meta["id"]),
        "shortDescription": {"text": meta["title"]}, "fullDescription": {"text": meta["text"]},
        "help": {"text": f"{meta['text']}\n\nRemediation: {meta['remediation']}",
                 "markdown": f"**{meta['title']}.** {meta['text']}\n\n**Remediation.** {meta['remediation']}"},
        "defaultConfiguration": {"level": LEVEL[meta["severity"]]},
        "properties": {"tags": ["license", "configuration"], "precision": "very-high",
                       "problem.severity": PROBLEM_SEVERITY[meta["severity"]]},
    }


def _uri(path: str) -> str:
    """A repo-relative URI reference for a path (absolute ones outside the current folder as file URIs)."""
    path = rel(path) or path
    if path.startswith("/"):
        return "file://" + _quote(path)
    return _quote(path)


def _quote(path: str) -> str:
    """Percent-encoded UTF-8 (RFC 3986); a byte of a name that is not UTF-8 (a lone surrogate from os.fsdecode)
    as itself: ``lib\xff.so`` -> ``lib%FF.so``."""
    return quote(path.encode("utf-8", "surrogateescape"), safe="/")


def stable_hash(finding: Finding) -> str:
    """``primaryLocationLineHash``: the same alert across releases of the scanned file (versions blanked)."""
    component = (finding.component or "").split("@", 1)[0]
    path = _VERSIONISH.sub("*", finding.path)
    digest = hashlib.sha256("\x1f".join((finding.rule, path, component)).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16] + ":1"


class _Artifacts:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}

    def add(self, vpath: str) -> int:
        parent = None
        for level in chain(vpath):
            if level not in self.index:
                if parent is None:
                    entry: dict[str, Any] = {"location": {"uri": _uri(level)}, "roles": ["analysisTarget"]}
                else:
                    member = vpath_member(level)
                    entry = {"location": {"uri": _quote(member)}, "parentIndex": parent}
                self.index[level] = len(self.items)
                self.items.append(entry)
            parent = self.index[level]
        return self.index[vpath]


def _result(finding: Finding, rule_index: dict[str, int], artifacts: _Artifacts) -> dict[str, Any]:
    vpath = finding.path
    top = outer(vpath)
    artifacts.add(vpath)
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": _uri(top), "index": artifacts.index[top]},
            "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
        },
    }
    logical = [{"fullyQualifiedName": rel(vpath) or vpath, "kind": "resource"}]
    if finding.component:
        logical.append({"fullyQualifiedName": finding.component, "kind": "package"})
    location["logicalLocations"] = logical
    text = sarif_text(finding.message)
    clause = finding.clause
    if clause:
        text += f" [{clause.document} {clause.section}, text of {clause.date}{clause.stand_in}]"
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index[finding.rule],
        "level": LEVEL[finding.severity.value],
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {"primaryLocationLineHash": stable_hash(finding),
                                FINGERPRINT_KEY: finding.fingerprint},
        "properties": {"verdict": finding.verdict.value, "path": vpath,
                       "component": finding.component, "evidence": list(finding.evidence),
                       "remediation": finding.remediation, "fingerprint": finding.fingerprint},
    }
    if SEP in vpath:
        result["relatedLocations"] = [{"id": 1, "physicalLocation": {"artifactLocation": {
            "uri": _quote(vpath_member(vpath)), "index": artifacts.index[vpath]}},
            "message": {"text": f"member {sarif_text(vpath)}"}}]
    return result


def category(inputs: Sequence[str]) -> str:
    """``licscan/<inputs>/``: the automationDetails id category (ends with '/': no run id, GitHub adds one)."""
    names = [re.sub(r"[^A-Za-z0-9._-]+", "-", (rel(p) or p).strip("/")).strip("-") or "root" for p in inputs]
    return "licscan/" + "+".join(names) + "/"


def document(inventory: Inventory, findings: list[Finding], rules: Iterable[Rule] = (),
             automation_id: str | None = None) -> dict[str, Any]:
    """The SARIF log; ``rules`` are the rules the audit ran (``AuditResult.rules``): renderers never load packs."""
    descriptors = [rule_descriptor(r) for r in sorted(rules, key=lambda r: r.id)]
    known = {d["id"] for d in descriptors}
    descriptors += [_waiver_descriptor(m) for m in WAIVER_RULES if m["id"] not in known]
    rule_index = {d["id"]: i for i, d in enumerate(descriptors)}
    for finding in active(findings):  # a rule from a pack we were not given: still described, never dropped
        if finding.rule not in rule_index:
            rule_index[finding.rule] = len(descriptors)
            descriptors.append({"id": finding.rule, "name": _camel(finding.rule),
                                "shortDescription": {"text": _cut(finding.title or finding.rule)},
                                "fullDescription": {"text": _cut(finding.title or finding.rule)},
                                "help": {"text": finding.remediation or finding.rule},
                                "defaultConfiguration": {"level": LEVEL[finding.severity.value]}})
    artifacts = _Artifacts()
    results = [_result(f, rule_index, artifacts) for f in active(findings)]
    notifications = [{"level": "error", "message": {"text": f"{d.kind.value}: {sarif_text(d.path)}: "
                                                             f"{sarif_text(d.message)}"},
                      "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(outer(d.path))}}}]}
                     for d in inventory.diagnostics]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "licscan", "semanticVersion": __version__, "version": __version__,
                            "rules": descriptors}},
        "automationDetails": {"id": automation_id or category(inventory.inputs)},
        "invocations": [{"executionSuccessful": bool(inventory.complete),
                         "toolExecutionNotifications": notifications}],
        "artifacts": artifacts.items,
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": {"disclaimer": DISCLAIMER,
                       "inputs": [rel(p) or p for p in inventory.inputs], "files": inventory.summary.files,
                       "complete": bool(inventory.complete), "waived": sum(1 for f in findings if f.waived),
                       "layers": _layers(inventory)},
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def _layers(inventory: Inventory) -> list[dict[str, Any]]:
    """Every layer, non-NVIDIA runtime and target named in the input (docs/layers.md), finding or not."""
    return [{"name": c.name, "kind": c.kind.value, "vendor": c.vendor,
             "confidence": c.confidence.value if c.confidence is not None else None, "paths": [rel(p) or p for p in c.paths],
             "evidence": list(c.evidence)} for c in inventory.components if c.kind in GPU_LAYER_KINDS]


def render(inventory: Inventory, findings: list[Finding], rules: Iterable[Rule] = (),
           automation_id: str | None = None) -> str:
    return json.dumps(document(inventory, findings, rules, automation_id), indent=2, ensure_ascii=False) + "\n"


def schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 JSON schema shipped with licscan."""
    from importlib.resources import files

    out: dict[str, Any] = json.loads(files("licscan.schemas").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    return out
