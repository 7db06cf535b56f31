"""Evaluation: rules over the facts of a report document give :class:`~licscan.findings.Finding` values.

``evaluate(document, packs, config)`` returns findings sorted by (path, rule, fingerprint), waivers applied (and
expired or unused waivers reported as findings of their own); :func:`licscan.findings.exit_code` maps them to the
exit status.
"""

from __future__ import annotations

import string
from typing import Any, Iterable, Mapping

from licscan.findings import Finding, Verdict, fingerprint, sort_findings
from licscan.rules import facts as facts_mod
from licscan.rules.conditions import SETTINGS, Context
from licscan.rules.facts import Fact
from licscan.rules.loader import Rule, RulePack, all_rules
from licscan.rules.versions import Tri, VersionRange

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


def evaluate(document: Mapping[str, Any], packs: Iterable[RulePack], config=None, today=None) -> list[Finding]:
    """The findings of ``packs`` over a report document (DESIGN B3), waivers of ``config`` applied."""
    settings = settings_from(config)
    exclude = config.excluded if config is not None else None
    index = facts_mod.build(document, exclude)
    ctx = Context(index, settings, config.eula_text if config is not None else None)
    findings: list[Finding] = []
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


def _finding(rule: Rule, path: str, component: str | None, hits, settings) -> Finding:
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
    return Finding(
        rule=rule.id,
        title=rule.title,
        severity=rule.severity if violation else rule.undetermined_severity,
        verdict=Verdict.VIOLATION if violation else Verdict.UNDETERMINED,
        path=path,
        component=component,
        message=message,
        remediation=render(rule.remediation, context),
        clause=rule.clause,
        references=tuple(rule.references),
        evidence=tuple(dict.fromkeys(evidence)),
        fingerprint=fingerprint(rule.id, path, component),
    )
