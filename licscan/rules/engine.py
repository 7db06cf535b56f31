"""Evaluation: rules over the facts of a report document give findings in the DESIGN B3 shape.

``evaluate(document, packs, config)`` returns finding dicts sorted by (path, rule, fingerprint), waivers applied
(and expired or unused waivers reported as findings of their own); ``exit_code(findings, fail_on)`` maps them to
the exit codes of DESIGN B1.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any, Iterable, Mapping

from licscan.rules import facts as facts_mod
from licscan.rules.conditions import SETTINGS, Context
from licscan.rules.facts import Fact
from licscan.rules.loader import Rule, RulePack, all_rules
from licscan.rules.versions import Tri, VersionRange

SEVERITY_RANK = {"note": 1, "warning": 2, "error": 3}
FAIL_ON = ("error", "warning", "note", "never")
EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


def fingerprint(rule: str, path: str, component: str | None) -> str:
    """Stable id of a finding: sha256 of rule id, virtual path and component id, first 16 hex digits."""
    return hashlib.sha256("\0".join((rule, path, component or "")).encode("utf-8")).hexdigest()[:16]


class _Formatter(string.Formatter):
    """str.format over a flat, closed context: ``{other.name}`` is one key, never attribute access."""

    def get_field(self, field_name, args, kwargs):
        return kwargs.get(field_name), field_name


def _show(value: Any) -> str:
    if value is None or value == "":
        return "unknown"
    if isinstance(value, VersionRange):
        return value.text
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) or "none"
    return str(value)


def render(template: str, context: Mapping[str, Any]) -> str:
    return _Formatter().vformat(template, (), {k: _show(v) for k, v in context.items()})


def _context(rule: Rule, fact: Fact, others: tuple[Fact, ...], reasons: tuple[str, ...],
             settings: Mapping[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = dict(fact.fields)
    if others:
        context.update({f"other.{k}": v for k, v in others[0].fields.items()})
    context.update({"rule.id": rule.id, "rule.title": rule.title, "clause.document": rule.clause.document,
                    "clause.section": rule.clause.section, "clause.date": rule.clause.date,
                    "why": "; ".join(reasons)})
    context.update(settings)
    return context


def settings_from(config) -> dict[str, str]:
    settings = dict(SETTINGS)
    if config is not None:
        settings.update(config.settings())
    return settings


def evaluate(document: Mapping[str, Any], packs: Iterable[RulePack], config=None, today=None) -> list[dict[str, Any]]:
    """The findings of ``packs`` over a report document (DESIGN B3), waivers of ``config`` applied."""
    settings = settings_from(config)
    exclude = config.excluded if config is not None else None
    index = facts_mod.build(document, exclude)
    ctx = Context(index, settings, config.eula_text if config is not None else None)
    findings: list[dict[str, Any]] = []
    for rule in all_rules(packs):
        groups: dict[tuple[str, str], list[tuple[Fact, Any]]] = {}
        for scope in rule.scopes:
            for fact in index.scope(scope):
                result = rule.condition.evaluate(fact, ctx)
                if result.truth is Tri.FALSE:
                    continue
                if result.truth is Tri.UNKNOWN and not rule.report_undetermined:
                    continue
                groups.setdefault((fact.path, fact.component or ""), []).append((fact, result))
        for (path, component), hits in groups.items():
            findings.append(_finding(rule, path, component or None, hits, settings))
    if config is not None:
        findings = config.apply_waivers(findings, today)
    return sort_findings(findings)


def sort_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(findings, key=lambda f: (f["path"], f["rule"], f["fingerprint"]))


def _finding(rule: Rule, path: str, component: str | None, hits, settings) -> dict[str, Any]:
    hits = sorted(hits, key=lambda h: (-int(h[1].truth), str(h[0].get("kind")), str(h[0].get("arch"))))
    fact, result = hits[0]
    violation = result.truth is Tri.TRUE
    reasons = tuple(dict.fromkeys(r for _, res in hits for r in res.reasons if res.truth is Tri.UNKNOWN))
    context = _context(rule, fact, result.others, reasons if not violation else (), settings)
    message = render(rule.message, context)
    if not violation:
        message += f" Undetermined: {'; '.join(reasons) or 'a fact this rule needs is unknown'}."
    evidence: list[str] = []
    for hit_fact, hit in hits:
        if (hit.truth is Tri.TRUE) != violation:
            continue
        evidence.extend(hit_fact.evidence)
        for other in hit.others:
            evidence.append(f"together with {other.label} at {other.path}"
                            + (f": {other.evidence[0]}" if other.evidence else ""))
        evidence.extend(hit.notes)
    if not violation:
        evidence.extend(f"undetermined: {r}" for r in reasons)
    return {
        "rule": rule.id,
        "title": rule.title,
        "severity": rule.severity if violation else rule.undetermined_severity,
        "verdict": "violation" if violation else "undetermined",
        "path": path,
        "component": component,
        "message": message,
        "remediation": render(rule.remediation, context),
        "clause": rule.clause.to_json(),
        "references": list(rule.references),
        "evidence": list(dict.fromkeys(evidence)),
        "waived": False,
        "fingerprint": fingerprint(rule.id, path, component),
    }


def exit_code(findings: Iterable[Mapping[str, Any]], fail_on: str = "error", complete: bool = True) -> int:
    """DESIGN B1: 3 when the scan was incomplete (fail closed), else 1 when an unwaived finding is at or above
    ``fail_on`` (error|warning|note; never = always 0 for findings), else 0."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail-on must be one of {', '.join(FAIL_ON)} (got {fail_on!r})")
    if not complete:
        return EXIT_INCOMPLETE
    if fail_on == "never":
        return EXIT_CLEAN
    threshold = SEVERITY_RANK[fail_on]
    for finding in findings:
        if not finding.get("waived") and SEVERITY_RANK[finding["severity"]] >= threshold:
            return EXIT_FINDINGS
    return EXIT_CLEAN
