"""Rule packs: ``RulePack.from_path -> from_yaml(text, source) -> from_mapping(data, source)``.

Each layer is testable alone. Every problem of a pack (syntax, duplicate keys, unknown keys, nulls, unknown
operators or fields, bad specifiers or regexes, bad templates, missing clause text, ...) is collected with its
file:line:column and raised at once as one :class:`RulePackError` (exit code 2 in the CLI; never a warning).

Pack format (version 1)::

    version: 1
    pack: cuda-eula                    # name
    description: ...                   # optional
    rules:
      - id: CUDA-EULA-TRANSLATION      # stable, never reused: [A-Z][A-Z0-9]*(-[A-Z0-9]+)+
        title: ...
        severity: error|warning|note   # of the rule's verdict; a `review` rule is at most `warning`
        verdict: violation|review      # optional (default violation): the verdict when the rule holds and the
                                       # text is firm; it is `review` whenever the verdict rests on a reading
        applies_to: {document: cuda-eula, clause: translation}   # optional: only parts governed by this document
                                       # (rules/licenses/documents.yaml), and only when their text has the clause
        undetermined_severity: ...     # optional; default note (severity follows the verdict)
        report_undetermined: true      # optional; false = an unknown verdict gives no finding
        clause: {document, section, text (quoted), date (YYYY-MM-DD of the text), url (optional)}
        rationale: ...                 # optional
        when: {scope: component|device_code|distribution (or a list), match: CONDITION}
        message: "template {name} at {path}"   # str.format fields from a closed context (TEMPLATE_FIELDS)
        remediation: "..."
        references: ["..."]
        examples: ["..."]              # optional
"""

from __future__ import annotations

import datetime
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from licscan.findings import Clause, Severity, Verdict
from licscan.rules.conditions import SETTINGS, Condition, compile_condition
from licscan.rules.errors import Problem, RulePackError, Span
from licscan.rules.facts import SCOPES, field_known
from licscan.rules.yamlsource import FileRefused, item_span, key_span, node_span, parse, read_text, value_span

PACK_VERSION = 1
SEVERITIES = tuple(s.value for s in sorted(Severity, reverse=True))  # error, warning, note
RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
DATE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|undated)$")
PACK_KEYS = {"version": True, "pack": True, "description": False, "rules": True}
RULE_KEYS = {"id": True, "title": True, "severity": True, "verdict": False, "applies_to": False,
             "undetermined_severity": False,
             "report_undetermined": False, "clause": True, "rationale": False, "when": True, "message": True,
             "remediation": True, "references": True, "examples": False}
CLAUSE_KEYS = {"document": True, "section": True, "text": True, "date": True, "url": False}
APPLIES_KEYS = {"document": True, "clause": False, "lacks": False}
RULE_VERDICTS = (Verdict.VIOLATION.value, Verdict.REVIEW.value)
#: Template fields besides the fact's own: the first joined fact (``other.*``), the rule and its clause, settings.
EXTRA_TEMPLATE_FIELDS = ("rule.id", "rule.title", "clause.document", "clause.section", "clause.date", "why",
                         "found")


def lower(severity: Severity) -> Severity:
    """The default severity of an undetermined verdict: one step lower (error -> warning -> note)."""
    return {Severity.ERROR: Severity.WARNING, Severity.WARNING: Severity.NOTE, Severity.NOTE: Severity.NOTE}[severity]


@dataclass(frozen=True)
class AppliesTo:
    """A rule applies only to parts governed by ``document`` whose governing text has ``clause``."""

    document: str
    clause: str | None = None
    lacks: bool = False  # the rule applies when the governing text does NOT have the clause


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    undetermined_severity: Severity
    report_undetermined: bool
    clause: Clause
    scopes: tuple[str, ...]
    condition: Condition
    message: str
    remediation: str
    references: tuple[str, ...]
    rationale: str = ""
    examples: tuple[str, ...] = ()
    span: Span = field(default=Span(""), compare=False)
    pack: str = ""
    verdict: Verdict = Verdict.VIOLATION
    applies_to: AppliesTo | None = None


@dataclass(frozen=True)
class RulePack:
    name: str
    source: str
    rules: tuple[Rule, ...]
    description: str = ""

    @classmethod
    def from_path(cls, path: str | Path, builtin: bool = False) -> RulePack:
        from licscan.rules.yamlsource import builtin_data  # licscan's own pack: from its JSON snapshot
        source = str(path)
        if builtin and (data := builtin_data(source)) is not None:
            return cls.from_mapping(data, source)
        try:
            text = read_text(path)  # a regular file of at most MAX_FILE_BYTES (a FIFO or /dev/zero is refused)
        except FileRefused as error:
            raise RulePackError([Problem(Span(source), f"cannot read rule pack: {error}")]) from None
        return cls.from_yaml(text, source)

    @classmethod
    def from_yaml(cls, text: str, source: str) -> RulePack:
        data, problems = parse(text, source)
        if data is None:
            raise RulePackError(problems or [Problem(Span(source), "empty rule pack")])
        return cls.from_mapping(data, source, problems)

    @classmethod
    def from_mapping(cls, data: Any, source: str, problems: list[Problem] | None = None) -> RulePack:
        checker = _Checker(source, list(problems or ()))
        pack = checker.pack(data)
        if checker.problems or pack is None:
            raise RulePackError(checker.problems)
        return pack


#: A mapping read from a rule pack (ruamel's CommentedMap, or a plain dict).
YamlMap = dict[Any, Any]


class _Checker:
    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems

    def error(self, span: Span, message: str) -> None:
        self.problems.append(Problem(span, message))

    def keys(self, data: YamlMap, table: dict[str, bool], what: str) -> bool:
        ok = True
        for key in data:
            if key not in table:
                self.error(key_span(data, key, self.source),
                           f"unknown key {key!r} in {what}; expected one of {', '.join(table)}")
                ok = False
            elif data[key] is None:
                self.error(key_span(data, key, self.source), f"{what} key {key!r} has a null value")
                ok = False
        for key, required in table.items():
            if required and key not in data:
                self.error(node_span(data, self.source), f"{what} is missing required key {key!r}")
                ok = False
        return ok

    def string(self, data: YamlMap, key: str, what: str, required: bool = True) -> str | None:
        if key not in data or data[key] is None:
            return None
        value = data[key]
        if isinstance(value, (datetime.date, datetime.datetime)) and key == "date":
            return value.isoformat()
        if not isinstance(value, str) or (required and not value.strip()):
            self.error(value_span(data, key, self.source), f"{what} '{key}' must be a non-empty string (got {value!r})")
            return None
        return str(value)

    def strings(self, data: YamlMap, key: str, what: str) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.error(value_span(data, key, self.source), f"{what} '{key}' must be a list of non-empty strings")
            return ()
        return tuple(str(v) for v in value)

    def pack(self, data: Any) -> RulePack | None:
        if not isinstance(data, dict):
            self.error(Span(self.source, 1, 1), "a rule pack must be a mapping with 'version', 'pack' and 'rules'")
            return None
        self.keys(data, PACK_KEYS, "rule pack")
        if "version" in data and data["version"] != PACK_VERSION:
            self.error(value_span(data, "version", self.source),
                       f"unsupported rule-pack version {data['version']!r} (this licscan reads version {PACK_VERSION})")
        name = self.string(data, "pack", "rule pack") or ""
        description = self.string(data, "description", "rule pack", required=False) or ""
        rules_data = data.get("rules")
        rules: list[Rule] = []
        if rules_data is not None and (not isinstance(rules_data, list) or not rules_data):
            self.error(value_span(data, "rules", self.source), "'rules' must be a non-empty list")
        elif rules_data:
            seen: dict[str, Span] = {}
            for index, item in enumerate(rules_data):
                rule = self.rule(item, item_span(rules_data, index, self.source), name)
                if rule is None:
                    continue
                if rule.id in seen:
                    self.error(rule.span, f"rule id {rule.id!r} is used twice (first at line {seen[rule.id].line})")
                else:
                    seen[rule.id] = rule.span
                rules.append(rule)
        if self.problems:
            return None
        return RulePack(name, self.source, tuple(rules), description)

    def rule(self, data: Any, span: Span, pack: str) -> Rule | None:
        if not isinstance(data, dict):
            self.error(span, "a rule must be a mapping")
            return None
        before = len(self.problems)
        self.keys(data, RULE_KEYS, "rule")
        rule_id = self.string(data, "id", "rule")
        if rule_id is not None and not RULE_ID.match(rule_id):
            self.error(value_span(data, "id", self.source),
                       f"rule id {rule_id!r} must look like CUDA-EULA-NAME (upper case, digits, dashes)")
        title = self.string(data, "title", "rule")
        severity = self.severity(data, "severity")
        undetermined = self.severity(data, "undetermined_severity") if "undetermined_severity" in data else None
        report_undetermined = data.get("report_undetermined", True)
        if not isinstance(report_undetermined, bool):
            self.error(value_span(data, "report_undetermined", self.source), "'report_undetermined' must be true or false")
        clause = self.clause(data)
        scopes, condition = self.when(data)
        message = self.template(data, "message", scopes)
        remediation = self.template(data, "remediation", scopes)
        references = self.strings(data, "references", "rule")
        if "references" in data and isinstance(data["references"], list) and not data["references"]:
            self.error(value_span(data, "references", self.source), "'references' must not be empty")
        rationale = self.string(data, "rationale", "rule", required=False) or ""
        examples = self.strings(data, "examples", "rule")
        verdict = Verdict.VIOLATION
        if "verdict" in data:
            if data["verdict"] not in RULE_VERDICTS:
                self.error(value_span(data, "verdict", self.source),
                           f"'verdict' must be one of {', '.join(RULE_VERDICTS)} (got {data['verdict']!r})")
            else:
                verdict = Verdict(data["verdict"])
                if verdict is Verdict.REVIEW and severity is Severity.ERROR:
                    self.error(value_span(data, "severity", self.source),
                               "a rule whose verdict is 'review' has severity 'warning' or 'note': severity follows "
                               "the verdict")
        applies = self.applies_to(data) if "applies_to" in data else None
        if len(self.problems) > before or rule_id is None or title is None or severity is None or clause is None \
                or condition is None or message is None or remediation is None:
            return None
        return Rule(rule_id, title, severity, undetermined or Severity.NOTE, bool(report_undetermined), clause,
                    scopes, condition, message, remediation, references, rationale, examples,
                    node_span(data, self.source), pack, verdict, applies)

    def applies_to(self, data: YamlMap) -> AppliesTo | None:
        from licscan.rules import documents

        value = data["applies_to"]
        if not isinstance(value, dict):
            self.error(value_span(data, "applies_to", self.source), "'applies_to' must be a mapping {document, clause}")
            return None
        if not self.keys(value, APPLIES_KEYS, "applies_to"):
            return None
        known = documents.load().documents
        document = value["document"]
        if document not in known:
            self.error(value_span(value, "document", self.source),
                       f"unknown licence document {document!r}; known: {', '.join(known)}")
            return None
        clause = value.get("clause")
        lacks = "lacks" in value
        if lacks:
            if clause is not None:
                self.error(value_span(value, "lacks", self.source), "'applies_to' takes 'clause' or 'lacks', not both")
                return None
            clause = value["lacks"]
        if clause is not None:
            clauses = {c for t in known[document].texts.values() for c in t.clauses}
            if clause not in clauses:
                self.error(value_span(value, "clause", self.source),
                           f"document {document!r} has no clause {clause!r}; known: {', '.join(sorted(clauses))}")
                return None
        return AppliesTo(str(document), None if clause is None else str(clause), lacks)

    def severity(self, data: YamlMap, key: str) -> Severity | None:
        value = data.get(key)
        if value is None:
            return None
        if value not in SEVERITIES:
            self.error(value_span(data, key, self.source),
                       f"'{key}' must be one of {', '.join(SEVERITIES)} (got {value!r})")
            return None
        return Severity(value)

    def clause(self, data: YamlMap) -> Clause | None:
        clause = data.get("clause")
        if clause is None:
            return None
        if not isinstance(clause, dict):
            self.error(value_span(data, "clause", self.source), "'clause' must be a mapping {document, section, text, date}")
            return None
        before = len(self.problems)
        self.keys(clause, CLAUSE_KEYS, "clause")
        document = self.string(clause, "document", "clause")
        section = self.string(clause, "section", "clause")
        text = self.string(clause, "text", "clause")
        date = self.string(clause, "date", "clause")
        if date is not None and not DATE.match(date):
            self.error(value_span(clause, "date", self.source), f"clause 'date' must be YYYY-MM-DD or undated (got {date!r})")
        url = self.string(clause, "url", "clause", required=False)
        if len(self.problems) > before or document is None or section is None or text is None or date is None:
            return None
        return Clause(document, section, text.strip(), date, url)

    def when(self, data: YamlMap) -> tuple[tuple[str, ...], Condition | None]:
        when = data.get("when")
        if when is None:
            return SCOPES, None
        if not isinstance(when, dict):
            self.error(value_span(data, "when", self.source), "'when' must be a mapping {scope, match}")
            return SCOPES, None
        self.keys(when, {"scope": True, "match": True}, "when")
        scope = when.get("scope")
        scopes = tuple(scope) if isinstance(scope, list) else (scope,)
        if not scopes or not all(s in SCOPES for s in scopes):
            self.error(value_span(when, "scope", self.source) if "scope" in when else node_span(when, self.source),
                       f"'scope' must be one of {', '.join(SCOPES)} or a list of them (got {scope!r})")
            return SCOPES, None
        if "match" not in when or when["match"] is None:
            return tuple(str(s) for s in scopes), None
        condition, problems = compile_condition(when["match"], tuple(str(s) for s in scopes), self.source,
                                                value_span(when, "match", self.source))
        self.problems.extend(problems)
        return tuple(str(s) for s in scopes), condition

    def template(self, data: YamlMap, key: str, scopes: tuple[str, ...]) -> str | None:
        text = self.string(data, key, "rule")
        if text is None:
            return None
        span = value_span(data, key, self.source)
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as error:
            self.error(span, f"'{key}' is not a valid template: {error}")
            return None
        ok = True
        for _literal, name, spec, conversion in parsed:
            if name is None:
                continue
            if spec or conversion:
                self.error(span, f"'{key}': template field {{{name}}} may not have a conversion or format spec")
                ok = False
            elif not template_field_known(name, scopes):
                self.error(span, f"'{key}': unknown template field {{{name}}}; use the scope's fields, "
                                 f"other.<field>, {', '.join(EXTRA_TEMPLATE_FIELDS)} or a setting")
                ok = False
        return text if ok else None


def template_field_known(name: str, scopes: tuple[str, ...]) -> bool:
    if name in EXTRA_TEMPLATE_FIELDS or name in SETTINGS:
        return True
    if name.startswith("other."):
        rest = name[len("other."):]
        return any(field_known(s, rest) for s in SCOPES)
    return any(field_known(s, name) for s in scopes)


def builtin_pack_paths() -> list[Path]:
    from licscan.knowledge import builtin_rules_dir

    folder = Path(str(builtin_rules_dir().joinpath("packs")))
    return sorted(folder.glob("*.yaml"))


def load_packs(paths: Iterable[str | Path] = (), builtin: bool = True) -> list[RulePack]:
    """The built-in packs (unless ``builtin`` is False) and the packs at ``paths``; every problem of every pack,
    and rule ids used by more than one pack, raised together as one RulePackError."""
    own = builtin_pack_paths() if builtin else []
    packs: list[RulePack] = []
    problems: list[Problem] = []
    for path in own + [Path(p) for p in paths]:
        try:
            packs.append(RulePack.from_path(path, path in own))
        except RulePackError as error:
            problems.extend(error.problems)
    seen: dict[str, Rule] = {}
    for pack in packs:
        for rule in pack.rules:
            if rule.id in seen:
                first = seen[rule.id]
                problems.append(Problem(rule.span, f"rule id {rule.id!r} is already defined at {first.span}"))
            else:
                seen[rule.id] = rule
    if problems:
        raise RulePackError(problems)
    return packs


def all_rules(packs: Iterable[RulePack]) -> list[Rule]:
    return sorted((rule for pack in packs for rule in pack.rules), key=lambda r: r.id)
