"""Waivers of ``.licscan.yaml`` (licscan/rules/config.py): what one is, how it is read, and how waivers apply.

A waiver names a rule (a glob, with an optional path glob) or a finding's fingerprint, and gives a reason, an
optional expiry day and an approver. The first active waiver that matches a finding waives it; an expired waiver
stops waiving and is reported (LICSCAN-WAIVER-EXPIRED, warning); a waiver that matched nothing is reported
(LICSCAN-WAIVER-UNUSED, note).
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from licscan.findings import Finding, Severity, Verdict, Waived, fingerprint
from licscan.rules.errors import Span
from licscan.rules.yamlsource import key_span, node_span, value_span

WAIVER_KEYS = ("rule", "path", "fingerprint", "reason", "expires", "approver")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")

#: Records one problem of a configuration at its place (config_from_mapping gathers them into one ConfigError).
Report = Callable[[Span, str], None]


@dataclass(frozen=True)
class Waiver:
    reason: str
    rule: str | None = None
    path: str | None = None
    fingerprint: str | None = None
    expires: datetime.date | None = None
    approver: str | None = None
    span: Span = Span("")  # noqa: RUF009 -- Span is a frozen value

    def matches(self, finding: Finding) -> bool:
        if self.fingerprint and finding.fingerprint != self.fingerprint:
            return False
        if self.rule and not fnmatch.fnmatchcase(finding.rule, self.rule):
            return False
        return not (self.path and not fnmatch.fnmatchcase(finding.path, self.path))

    def describe(self) -> str:
        what = [f"rule {self.rule}" if self.rule else "", f"path {self.path}" if self.path else "",
                f"fingerprint {self.fingerprint}" if self.fingerprint else ""]
        return ", ".join(w for w in what if w)

    def waived(self) -> Waived:
        return Waived(reason=self.reason, expires=self.expires.isoformat() if self.expires else None,
                      approver=self.approver, source=str(self.span))


def current_date() -> datetime.date:
    """Today, or the day of SOURCE_DATE_EPOCH when set (deterministic output): :func:`licscan.clock.today`."""
    from licscan import clock

    return clock.today()


def apply(waivers: tuple[Waiver, ...], findings: Iterable[Finding], source: str,
          today: datetime.date | None = None) -> list[Finding]:
    """Findings with ``waived`` set by the first active waiver that matches, plus one finding per expired
    waiver and per active waiver that matched nothing (``source``: the configuration file they are reported at)."""
    today = today or current_date()
    used: set[int] = set()
    out = []
    for finding in findings:
        for number, waiver in enumerate(waivers):
            if not waiver.matches(finding):
                continue
            if waiver.expires is not None and waiver.expires < today:
                finding = finding.with_evidence(
                    f"waiver at {waiver.span} expired on {waiver.expires.isoformat()} and no longer waives")
                continue
            used.add(number)
            finding = finding.with_waiver(waiver.waived())
            break
        out.append(finding)
    for number, waiver in enumerate(waivers):
        if waiver.expires is not None and waiver.expires < today:
            out.append(_waiver_finding("LICSCAN-WAIVER-EXPIRED", Severity.WARNING, source, waiver,
                                       f"The waiver at {waiver.span} ({waiver.describe()}) expired on "
                                       f"{waiver.expires.isoformat()}; it no longer waives anything.",
                                       "Renew the waiver with a new expiry date after review, or remove it."))
        elif number not in used:
            out.append(_waiver_finding("LICSCAN-WAIVER-UNUSED", Severity.NOTE, source, waiver,
                                       f"The waiver at {waiver.span} ({waiver.describe()}) matched no finding.",
                                       "Remove the waiver, or correct its rule, path or fingerprint."))
    return out


def _waiver_finding(rule: str, severity: Severity, source: str, waiver: Waiver, message: str,
                    remediation: str) -> Finding:
    key = f"{waiver.rule or ''}|{waiver.path or ''}|{waiver.fingerprint or ''}|{waiver.span.line}"
    return Finding(rule=rule, title="Waiver expired" if rule.endswith("EXPIRED") else "Waiver unused",
                   severity=severity, verdict=Verdict.VIOLATION, path=source, component=None, message=message,
                   remediation=remediation, clause=None, references=(),
                   evidence=(f"waiver at {waiver.span}: {waiver.reason}",), fingerprint=fingerprint(rule, source, key))


def parse_date(value: Any) -> datetime.date | None:
    """A YAML date, or a "YYYY-MM-DD" string, as a date; None for anything else."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str) and DATE.match(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def parse_waiver(item: Any, span: Span, source: str, error: Report) -> Waiver | None:
    """One entry of ``waivers:``; every problem is reported through ``error`` (None when there is one)."""
    if not isinstance(item, dict):
        error(span, "a waiver must be a mapping {rule, path, reason, expires, approver}")
        return None
    bad = _problems(item, source, error)
    expires = None
    if item.get("expires") is not None:
        expires = parse_date(item["expires"])
        if expires is None:
            error(value_span(item, "expires", source), f"'expires' must be a date YYYY-MM-DD (got {item['expires']!r})")
            bad = True
    if bad:
        return None
    return Waiver(str(item["reason"]), _opt(item, "rule"), _opt(item, "path"), _opt(item, "fingerprint"), expires,
                  _opt(item, "approver"), node_span(item, source))


def _problems(item: dict[Any, Any], source: str, error: Report) -> bool:
    """Reports what is wrong with a waiver's keys and values (but its expiry day); True when anything is."""
    ok = True
    for key in item:
        if key not in WAIVER_KEYS:
            error(key_span(item, key, source), f"unknown key {key!r} in waiver; expected one of {', '.join(WAIVER_KEYS)}")
            ok = False
        elif item[key] is None:
            error(key_span(item, key, source), f"waiver key {key!r} has a null value")
            ok = False
    for key in ("rule", "path", "fingerprint", "reason", "approver"):
        if key in item and item[key] is not None and not (isinstance(item[key], str) and item[key].strip()):
            error(value_span(item, key, source), f"waiver '{key}' must be a non-empty string")
            ok = False
    if "reason" not in item:
        error(node_span(item, source), "a waiver needs a 'reason'")
        ok = False
    if "rule" not in item and "fingerprint" not in item:
        error(node_span(item, source), "a waiver needs a 'rule' (with an optional 'path') or a 'fingerprint'")
        ok = False
    fp = item.get("fingerprint")
    if isinstance(fp, str) and not FINGERPRINT.match(fp):
        error(value_span(item, "fingerprint", source), f"'fingerprint' must be 16 lower-case hex digits (got {fp!r})")
        ok = False
    return not ok


def _opt(item: dict[Any, Any], key: str) -> str | None:
    return str(item[key]) if item.get(key) is not None else None
