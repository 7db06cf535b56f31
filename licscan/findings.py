"""The judgement model: what the rules say about the facts, and how that becomes an exit code.

Rules (``licscan.rules``) turn facts into :class:`Finding` values; configuration waives some of them; renderers
(``licscan.report``) print them; :func:`exit_code` maps them to the process exit status. Every value here is frozen,
and ``to_json`` gives the shape of the ``findings[]`` entries of the JSON report (schema ``licscan-report/1``).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


class Severity(enum.Enum):
    """How loudly a finding is reported; ``--fail-on`` compares against it. Ordered: NOTE < WARNING < ERROR."""

    NOTE = "note"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __lt__(self, other: Severity) -> bool:
        return self.rank < other.rank


_SEVERITY_RANK = {Severity.NOTE: 1, Severity.WARNING: 2, Severity.ERROR: 3}


class Verdict(enum.Enum):
    """How firm a finding is.

    - ``violation``: the licence text is unambiguous and every fact the rule needs is known;
    - ``review``: the verdict rests on a reading of the text that a person has to confirm;
    - ``undetermined``: a fact the rule needs is unknown (for example the toolkit that built the code).
    """

    VIOLATION = "violation"
    REVIEW = "review"
    UNDETERMINED = "undetermined"


class FailOn(enum.Enum):
    """``--fail-on``: the lowest severity that fails the gate; ``never`` lets every finding pass."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"
    NEVER = "never"

    @property
    def threshold(self) -> Severity | None:
        return None if self is FailOn.NEVER else Severity(self.value)


class ExitCode(enum.IntEnum):
    """The exit codes of every licscan command (README, "Exit codes")."""

    CLEAN = 0  # read completely, no finding at or above --fail-on
    FINDINGS = 1  # an unwaived finding at or above --fail-on
    USAGE = 2  # usage, configuration, rule-pack or output error
    INCOMPLETE = 3  # part of an input could not be read: the gate fails closed
    INTERNAL = 4  # a licscan bug: one line on standard error (LICSCAN_DEBUG=1 adds the traceback)
    INTERRUPTED = 130  # SIGINT (128 + 2, the shell's convention)


@dataclass(frozen=True)
class Clause:
    """The licence text a rule implements: document title, section, the quoted words, the date of the text."""

    document: str
    section: str
    text: str
    date: str
    url: str | None = None
    #: The governing text these words are quoted in place of, when it was not examined (its clause is taken to be
    #: as in this earlier text: docs/licenses.md, "Which text governs"); None when this text governs itself.
    read_for: str | None = None

    @property
    def stand_in(self) -> str:
        """What a report adds after the date when the words stand in for a text that was not examined."""
        return f", in place of the {self.read_for}, which was not examined" if self.read_for else ""

    def to_json(self) -> dict[str, Any]:
        out = {"document": self.document, "section": self.section, "text": self.text, "date": self.date}
        if self.url:
            out["url"] = self.url
        if self.read_for:
            out["read_for"] = self.read_for
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Clause:
        return cls(document=data["document"], section=data["section"], text=data["text"], date=data["date"],
                   url=data.get("url"), read_for=data.get("read_for"))


@dataclass(frozen=True)
class Waived:
    """The waiver (from ``.licscan.yaml``) that waives a finding."""

    reason: str
    expires: str | None  # ISO date
    approver: str | None
    source: str  # where the waiver is written: "file:line"

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "expires": self.expires, "approver": self.approver, "source": self.source}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Waived:
        return cls(reason=data["reason"], expires=data.get("expires"), approver=data.get("approver"),
                   source=data["source"])


def fingerprint(rule: str, path: str, component: str | None) -> str:
    """Stable id of a finding: sha256 of rule id, virtual path and component id, first 16 hex digits.

    Paths may hold lone surrogates (file names that are not UTF-8, see ``os.fsdecode``): they are hashed as the
    bytes they stand for."""
    key = "\0".join((rule, path, component or "")).encode("utf-8", "surrogateescape")
    return hashlib.sha256(key).hexdigest()[:16]


@dataclass(frozen=True)
class Finding:
    """One rule's judgement of one part (a file, or a component within it)."""

    rule: str
    title: str
    severity: Severity
    verdict: Verdict
    path: str
    component: str | None
    message: str
    remediation: str
    clause: Clause | None
    references: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    fingerprint: str = ""
    waiver: Waived | None = field(default=None)

    @property
    def waived(self) -> bool:
        return self.waiver is not None

    def with_waiver(self, waiver: Waived) -> Finding:
        return replace(self, waiver=waiver)

    def with_evidence(self, *lines: str) -> Finding:
        return replace(self, evidence=self.evidence + tuple(lines))

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.path, self.rule, self.fingerprint)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule, "title": self.title, "severity": self.severity.value, "verdict": self.verdict.value,
            "path": self.path, "component": self.component, "message": self.message,
            "remediation": self.remediation, "clause": self.clause.to_json() if self.clause else None,
            "references": list(self.references), "evidence": list(self.evidence), "waived": self.waived,
            "fingerprint": self.fingerprint,
        }
        if self.waiver is not None:
            out["waiver"] = self.waiver.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        """The inverse of :meth:`to_json` (the findings cache stores that shape)."""
        clause = data.get("clause")
        waiver = data.get("waiver")
        return cls(rule=data["rule"], title=data["title"], severity=Severity(data["severity"]),
                   verdict=Verdict(data["verdict"]), path=data["path"], component=data.get("component"),
                   message=data["message"], remediation=data["remediation"],
                   clause=Clause.from_json(clause) if clause else None,
                   references=tuple(data.get("references", ())), evidence=tuple(data.get("evidence", ())),
                   fingerprint=data["fingerprint"], waiver=Waived.from_json(waiver) if waiver else None)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: f.sort_key)


def exit_code(findings: Iterable[Finding], fail_on: FailOn = FailOn.ERROR, complete: bool = True) -> ExitCode:
    """3 when the scan was incomplete (fail closed), else 1 when an unwaived finding is at or above ``fail_on``,
    else 0."""
    if not complete:
        return ExitCode.INCOMPLETE
    threshold = fail_on.threshold
    if threshold is None:
        return ExitCode.CLEAN
    for finding in findings:
        if not finding.waived and finding.severity.rank >= threshold.rank:
            return ExitCode.FINDINGS
    return ExitCode.CLEAN
