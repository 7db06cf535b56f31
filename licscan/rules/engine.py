"""Evaluation: rules over the facts of a report document give :class:`~licscan.findings.Finding` values.

``evaluate(document, packs, config)`` returns findings sorted by (path, rule, fingerprint), waivers applied (and
expired or unused waivers reported as findings of their own); :func:`licscan.findings.exit_code` maps them to the
exit status.
"""

from __future__ import annotations

import datetime
import functools
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from licscan.findings import Clause, Finding, Severity, Verdict, fingerprint, sort_findings
from licscan.model import ToolkitRange
from licscan.rules import documents
from licscan.rules import facts as facts_mod
from licscan.rules import governing as gov
from licscan.rules.conditions import SETTINGS, Context
from licscan.rules.config import Config
from licscan.rules.facts import Fact
from licscan.rules.loader import AppliesTo, Rule, RulePack, all_rules
from licscan.rules.memo import Memo
from licscan.rules.versions import Tri


class _Formatter(string.Formatter):
    """str.format over a flat, closed context: ``{other.name}`` is one key, never attribute access."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        return kwargs.get(field_name), field_name


def _show(value: Any) -> str:
    if value is None or value == "":
        return "unknown"
    if isinstance(value, ToolkitRange):
        return value.text
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) or "none"
    return str(value)


def render(template: str, context: Mapping[str, Any]) -> str:
    return _Formatter().vformat(template, (), {k: _show(v) for k, v in context.items()})


def _context(rule: Rule, fact: Fact, others: tuple[Fact, ...], reasons: tuple[str, ...],
             settings: Mapping[str, str], found: tuple[str, ...] = ()) -> dict[str, Any]:
    context: dict[str, Any] = dict(fact.fields)
    if others:
        context.update({f"other.{k}": v for k, v in others[0].fields.items()})
    context.update({"rule.id": rule.id, "rule.title": rule.title, "clause.document": rule.clause.document,
                    "clause.section": rule.clause.section, "clause.date": rule.clause.date,
                    "why": "; ".join(reasons), "found": " ".join(found)})
    context.update(settings)
    return context


def settings_from(config: Config | None) -> dict[str, str]:
    settings = dict(SETTINGS)
    if config is not None:
        settings.update(config.settings())
    return settings


def evaluate(document: Mapping[str, Any], packs: Iterable[RulePack], config: Config | None = None,
             today: datetime.date | None = None) -> list[Finding]:
    """The findings of ``packs`` over a report document, waivers of ``config`` applied."""
    settings = settings_from(config)
    exclude = config.excluded if config is not None and config.exclude else None  # no patterns: no call per fact
    policy = getattr(config, "governing_text", None) or gov.DEFAULT_POLICY
    index = facts_mod.build(document, exclude, policy)
    ctx = Context(index, settings, config.eula_text if config is not None else None, policy)
    findings: list[Finding] = []
    for rule in all_rules(packs):
        groups: dict[tuple[str, str], list[Hit]] = {}
        condition = Memo(rule.condition)  # once per distinct set of the values it reads (licscan/rules/memo.py)
        applies_to = _AppliesMemo(rule, policy, ctx)
        for scope in rule.scopes:
            for fact in index.scope(scope):
                applies = applies_to(fact)
                if applies.truth is Tri.FALSE:
                    continue
                result = condition.evaluate(fact, ctx)
                truth = min(result.truth, applies.truth)
                if truth is Tri.FALSE:
                    continue
                if truth is Tri.UNKNOWN and not rule.report_undetermined:
                    continue
                groups.setdefault((fact.path, fact.component or ""), []).append(
                    (fact, _Result(truth, result.reasons + applies.reasons, result.others,
                                   result.notes + applies.notes, result.found), applies))
        for (path, component), hits in groups.items():
            findings.append(_finding(rule, path, component or None, hits, settings, policy, ctx))
    if config is not None:
        findings = config.apply_waivers(findings, today)
    return sort_findings(findings)


class _Result:
    __slots__ = ("found", "notes", "others", "reasons", "truth")

    def __init__(self, truth: Tri, reasons: Iterable[str], others: Iterable[Fact], notes: Iterable[str],
                 found: Iterable[str] = ()):
        self.truth, self.reasons, self.others, self.notes = truth, tuple(reasons), tuple(others), tuple(notes)
        self.found = tuple(found)


class Applies:
    """Whether a rule applies to a fact by the licence that governs it (rule ``applies_to``)."""

    __slots__ = ("notes", "readings", "reasons", "text", "truth")

    def __init__(self, truth: Tri, reasons: Iterable[str] = (), notes: Iterable[str] = (), readings: Iterable[str] = (),
                 text: documents.Text | None = None):
        self.truth, self.reasons, self.notes, self.readings, self.text = truth, tuple(reasons), tuple(notes), \
            tuple(readings), text


#: One fact a rule holds for: the fact, the condition's result, and why the rule applies to it.
Hit = tuple[Fact, _Result, Applies]
ALWAYS = Applies(Tri.TRUE)
NEVER = Applies(Tri.FALSE)


def _applies(rule: Rule, fact: Fact, policy: str, ctx: Context) -> Applies:
    target = rule.applies_to
    if target is None:
        return ALWAYS
    governing = fact.governing.get(policy)
    if governing is None or governing.document != target.document:
        return NEVER
    if target.clause is not None:
        configured = _configured_clause(target.clause, fact, ctx)
        if configured is not None:
            if target.lacks:
                return Applies(~configured.truth, configured.reasons, configured.notes)
            return configured
    return _by_governing(target, governing, policy)


class _AppliesMemo:
    """:func:`_applies` of one rule under one policy, once per governing licence: it reads nothing else of a fact
    unless a configured translation-clause reading makes it read the fact's toolkit (then once per fact)."""

    def __init__(self, rule: Rule, policy: str, ctx: Context) -> None:
        self.rule, self.policy, self.ctx = rule, policy, ctx
        target = rule.applies_to
        self.per_fact = target is not None and target.clause == "translation" \
            and ctx.settings.get("eula.translation-clause-set") == "yes"
        self.known: dict[int, tuple[gov.Governing | None, Applies]] = {}  # id(governing) -> (it, the answer)

    def __call__(self, fact: Fact) -> Applies:
        if self.per_fact:
            return _applies(self.rule, fact, self.policy, self.ctx)
        governing = fact.governing.get(self.policy)
        found = self.known.get(id(governing))
        if found is None or found[0] is not governing:
            found = self.known[id(governing)] = (governing, _applies(self.rule, fact, self.policy, self.ctx))
        return found[1]


@functools.lru_cache(maxsize=4096)
def _by_governing(target: AppliesTo, governing: gov.Governing, policy: str) -> Applies:
    """Whether a rule applies by the governing licence alone: the same for every part governed alike (thousands
    of device images of one toolkit share one answer)."""
    notes: tuple[str, ...] = (f"governing licence ({policy}): {governing.why}",)
    if governing.likely is not None and governing.document is not None:
        likely = documents.load().text(governing.document, governing.likely).label
        notes += (f"text unknown: probably the {likely}, which is not applied "
                  f"(docs/licenses.md#cuda-eula-unmapped-releases)",)
    if target.clause is None:
        inferred = ("the text is mapped to this release by inference",) if governing.basis == documents.INFERRED else ()
        text = documents.load().text(governing.document, governing.text) \
            if governing.document and governing.text else None
        return Applies(Tri.TRUE, (), notes, inferred, text)
    truth, reading, quoted = governing.clause(target.clause)
    if target.lacks:
        truth = ~truth
        quoted = None
    if truth is Tri.UNKNOWN:
        return Applies(Tri.UNKNOWN, (reading,) if reading else (), notes, (), quoted)
    return Applies(truth, (), notes, (reading,) if reading else (), quoted)


def _configured_clause(clause: str, fact: Fact, ctx: Context) -> Applies | None:
    """``eula.translation-clause-since`` set in .licscan.yaml: the translation clause is taken to govern the output
    of toolkits from that release on, whatever the text table says (a reading the user chose)."""
    since = ctx.settings.get("eula.translation-clause-since")
    if clause != "translation" or ctx.settings.get("eula.translation-clause-set") != "yes" or fact.scope != "device_code":
        return None
    from licscan.rules.versions import contains, parse_specifier

    truth = contains(parse_specifier(f">={since}"), fact.toolkit)
    text = documents.load().text("cuda-eula", "2021-10-08")
    note = (f"eula.translation-clause-since is {since}: the translation clause is taken to govern output of CUDA "
            f"{since} and later (a reading set in .licscan.yaml)",)
    if truth is Tri.UNKNOWN:
        return Applies(truth, (f"toolkit {fact.toolkit.text} may or may not be {since} or later",), note, (), text)
    return Applies(truth, (), note, note if truth is Tri.TRUE else (), text)


_SEVERITY_OF_REVIEW = {Severity.ERROR: Severity.WARNING, Severity.WARNING: Severity.WARNING, Severity.NOTE: Severity.NOTE}


def _verdict(rule: Rule, truth: Tri, readings: tuple[str, ...]) -> tuple[Verdict, Severity]:
    if truth is not Tri.TRUE:
        return Verdict.UNDETERMINED, rule.undetermined_severity
    if rule.verdict is Verdict.VIOLATION and not readings:
        return Verdict.VIOLATION, rule.severity
    return Verdict.REVIEW, _SEVERITY_OF_REVIEW[rule.severity]


def _finding(rule: Rule, path: str, component: str | None, found: list[Hit], settings: Mapping[str, str], policy: str,
             ctx: Context) -> Finding:
    hits = sorted(found, key=lambda h: (-int(h[1].truth), str(h[0].get("kind")), str(h[0].get("arch"))))
    fact, result, applies = hits[0]
    firm = result.truth is Tri.TRUE
    reasons = tuple(dict.fromkeys(r for _, res, _ in hits for r in res.reasons if res.truth is Tri.UNKNOWN))
    readings = tuple(dict.fromkeys(applies.readings)) if firm else ()
    verdict, severity = _verdict(rule, result.truth, readings)
    context = _context(rule, fact, result.others, reasons if not firm else (), settings, result.found)
    message = render(rule.message, context)
    if verdict is Verdict.REVIEW and rule.verdict is Verdict.VIOLATION:
        message += f" Review: this rests on a reading ({'; '.join(readings)})."
    if not firm:
        message += f" Undetermined: {'; '.join(reasons) or 'a fact this rule needs is unknown'}."
    evidence: list[str] = []
    for hit_fact, hit, _ in hits:
        if (hit.truth is Tri.TRUE) != firm:
            continue
        evidence.extend(hit_fact.evidence)
        for other in hit.others:
            evidence.append(f"together with {other.label} at {other.path}"
                            + (f": {other.evidence[0]}" if other.evidence else ""))
        evidence.extend(hit.notes)
    evidence.extend(f"reading: {r}" for r in readings)
    if not firm:
        evidence.extend(f"undetermined: {r}" for r in reasons)
    evidence.extend(_alternatives(rule, fact, policy, ctx, result, verdict))
    return Finding(
        rule=rule.id,
        title=rule.title,
        severity=severity,
        verdict=verdict,
        path=path,
        component=component,
        message=message,
        remediation=render(rule.remediation, context),
        clause=_clause(rule, applies, fact.governing.get(policy)),
        references=tuple(rule.references),
        evidence=tuple(dict.fromkeys(evidence)),
        fingerprint=fingerprint(rule.id, path, component),
    )


def _clause(rule: Rule, applies: Applies, governing: gov.Governing | None) -> Clause:
    """The clause the finding cites: the words of the governing text (or, for a text that was not examined, of
    the text its clause is taken from, naming the text it stands in for), else the rule's own clause."""
    target = rule.applies_to
    text = applies.text
    if target is None or target.clause is None or text is None or target.clause not in text.clauses:
        return rule.clause
    quoted = text.clauses[target.clause]
    url = next((c.url for c in text.copies if c.url), None) or rule.clause.url
    read_for = None
    if governing is not None and governing.document is not None and governing.text is not None:
        governed = documents.load().text(governing.document, governing.text)
        if governed.label != text.label:
            read_for = governed.label
    return Clause(document=text.title, section=quoted.section, text=quoted.quote, date=text.date or "undated",
                  url=url, read_for=read_for)


def _alternatives(rule: Rule, fact: Fact, policy: str, ctx: Context, condition: _Result, verdict: Verdict) -> list[str]:
    """One evidence line per other text policy under which this finding's verdict would differ."""
    if rule.applies_to is None:
        return []
    out = []
    for other in gov.POLICIES:
        if other == policy or other not in fact.governing:
            continue
        applies = _applies(rule, fact, other, ctx)
        truth = min(applies.truth, condition.truth)
        if truth is Tri.FALSE:
            alt = "no finding"
        else:
            alt = _verdict(rule, truth, applies.readings if truth is Tri.TRUE else ())[0].value
        if alt != verdict.value:
            out.append(f"under the text policy {other} the governing text is "
                       f"{fact.governing[other].label}: the verdict would be {alt}")
    return out
