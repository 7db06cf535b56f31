"""The closed table of condition operators and their three-valued evaluation.

A condition (YAML mapping) is exactly one of:
- ``{all: [cond, ...]}``, ``{any: [cond, ...]}``, ``{not: cond}``;
- ``{field: NAME, OP: ARG}`` with OP in :data:`FIELD_OPERATORS`:
    ``equals`` (scalar), ``in`` (list of scalars), ``matches`` (glob or list of globs, fnmatchcase),
    ``regex`` (Python regex, search), ``exists`` (bool: the field is set and not empty),
    ``version_in`` (PEP 440 specifier set; three-valued over version ranges; ``{setting}`` placeholders such as
    ``{eula.translation-clause-since}`` are filled from the settings);
  on a list-valued field (``paths``, ``evidence``, ``license_files``) a test holds when it holds for some item;
- ``{attachment_a: listed|conditional|unlisted}`` (component scope): the file's Attachment A status under the
  EULA text(s) its toolkit range may fall under (rules/attachment-a.yaml);
- ``{together_with: {scope: SCOPE, within: input|distribution|path, match: cond}}``: some other fact of SCOPE in
  the same group satisfies ``match``.

``all`` is the minimum, ``any`` the maximum and ``not`` the mirror of false < unknown < true.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from licscan.model import PROPERTY_KEYS, ToolkitRange
from licscan.rules import attachment
from licscan.rules.errors import Problem, Span
from licscan.rules.facts import FIELDS, GROUPS, RANGE_FIELDS, SCOPES, Fact, FactIndex, field_known
from licscan.rules.versions import Tri, contains, parse_specifier
from licscan.rules.yamlsource import item_span, key_span, node_span, value_span

FIELD_OPERATORS = ("equals", "in", "matches", "regex", "exists", "version_in")
STRUCTURAL = ("all", "any", "not", "together_with", "attachment_a")
ATTACHMENT_VALUES = ("listed", "conditional", "unlisted")

#: Settings a pack may refer to as ``{name}`` in ``version_in``, with their defaults.
SETTINGS: dict[str, str] = {"eula.translation-clause-since": "11.6", "eula.translation-clause-set": ""}


#: The facts of one group that satisfy a ``together_with`` match, and those that may (with the result).
Joined = tuple[list[Fact], list[tuple[Fact, "Result"]]]


@dataclass
class Context:
    index: FactIndex
    settings: dict[str, str]
    eula_text: str | None = None  # an EULA text id that overrides the choice by toolkit (config eula.text)
    policy: str = "published-with-toolkit"  # the text policy (licscan/rules/governing.py POLICIES)
    # TogetherWith: the facts of one group that satisfy (or may satisfy) a ``match``, evaluated once per group
    # instead of once per fact of the group (19,234 device images of one input made it quadratic).
    joined_results: dict[tuple[int, str, str, str], Joined] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    truth: Tri
    reasons: tuple[str, ...] = ()
    others: tuple[Fact, ...] = ()
    notes: tuple[str, ...] = ()  # evidence that holds whatever the truth (e.g. the EULA text used)
    found: tuple[str, ...] = ()  # what a test found, for the rule's message ({found}): why a file is unlisted


FALSE = Result(Tri.FALSE)


class Condition:
    def evaluate(self, fact: Fact, ctx: Context) -> Result:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class All(Condition):
    children: tuple[Condition, ...]

    def evaluate(self, fact: Fact, ctx: Context) -> Result:
        reasons: list[str] = []
        others: list[Fact] = []
        notes: list[str] = []
        found: list[str] = []
        truth = Tri.TRUE
        for child in self.children:
            result = child.evaluate(fact, ctx)
            if result.truth is Tri.FALSE:
                return FALSE
            truth = min(truth, result.truth)
            reasons += result.reasons
            others += result.others
            notes += result.notes
            found += result.found
        return Result(truth, tuple(reasons) if truth is Tri.UNKNOWN else (), tuple(others), tuple(notes),
                      tuple(found))


@dataclass(frozen=True)
class Any_(Condition):
    children: tuple[Condition, ...]

    def evaluate(self, fact: Fact, ctx: Context) -> Result:
        unknown: list[Result] = []
        for child in self.children:
            result = child.evaluate(fact, ctx)
            if result.truth is Tri.TRUE:
                return result
            if result.truth is Tri.UNKNOWN:
                unknown.append(result)
        if unknown:
            return Result(Tri.UNKNOWN, tuple(r for u in unknown for r in u.reasons),
                          tuple(o for u in unknown for o in u.others), tuple(n for u in unknown for n in u.notes),
                          tuple(f for u in unknown for f in u.found))
        return FALSE


@dataclass(frozen=True)
class Not(Condition):
    child: Condition

    def evaluate(self, fact: Fact, ctx: Context) -> Result:
        result = self.child.evaluate(fact, ctx)
        return Result(~result.truth, result.reasons, (), result.notes)


@dataclass(frozen=True)
class FieldTest(Condition):
    field: str
    op: str
    arg: Any
    test: Callable[[Any], bool] | None = None

    def evaluate(self, fact: Fact, ctx: Context) -> Result:
        value = fact.get(self.field)
        if self.op == "exists":
            present = value not in (None, "", [])
            return Result(Tri.of(present == bool(self.arg)))
        if self.op == "version_in":
            spec = parse_specifier(fill(self.arg, ctx.settings))
            rng = value if isinstance(value, ToolkitRange) else ToolkitRange.of_version(value)
            truth = contains(spec, rng)
            reason = (f"{self.field} {rng.text} may or may not satisfy {spec}",) if truth is Tri.UNKNOWN else ()
            return Result(truth, reason)
        test = self.test
        if test is None:  # every operator but exists and version_in has a test
            return FALSE
        if isinstance(value, list):
            return Result(Tri.of(any(test(item) for item in value)))
        return Result(Tri.of(value is not None and test(value)))


@dataclass(frozen=True)
class AttachmentTest(Condition):
    value: str

    def evaluate(self, fact: Fact, ctx: Context) -> Result:
        data = attachment.load()
        governing = fact.governing.get(ctx.policy)
        known = governing.text if governing is not None and governing.document == "cuda-eula" else None
        candidates, why = data.candidates(fact.toolkit, ctx.eula_text, known)
        basename = attachment.attachment_name(fact.get("basename"), fact.get("properties.linked_from"),
                                              fact.get("properties.declared_name"))
        statuses = {text.id: data.status(basename, text) for text, _ in candidates}
        hits = {tid for tid, status in statuses.items() if status == self.value}
        name = fact.get("name")
        found = (data.unlisted_because(basename, name if isinstance(name, str) else None,
                                       [text for text, _ in candidates]),) if self.value == "unlisted" and hits else ()
        titles = {t.id: t.title for t, _ in candidates}
        inferred = tuple(f"the {t.title} was not examined; its Attachment A is read as that of the "
                         f"{data.basis(t).title}" for t, _ in candidates if data.basis(t) is not t)
        if len(candidates) == 1:
            first = f"Attachment A of {titles[next(iter(titles))]} ({why}): {basename} is {next(iter(statuses.values()))}"
        else:
            first = f"EULA texts possible for {why}: " + "; ".join(f"{tid}: {s}" for tid, s in statuses.items())
        note = (first, *inferred)
        if hits and len(hits) == len(statuses):
            return Result(Tri.TRUE, (), (), note, found)
        if not hits and "unknown" not in statuses.values():
            return Result(Tri.FALSE, (), (), note)
        return Result(Tri.UNKNOWN, (f"{basename} is {self.value} in the texts of {', '.join(sorted(hits))} but "
                                    f"not in {', '.join(sorted(set(statuses) - hits))}, and {why} does not decide "
                                    f"which text applies",), (), note, found)


@dataclass(frozen=True)
class TogetherWith(Condition):
    scope: str
    within: str
    match: Condition

    def evaluate(self, fact: Fact, ctx: Context) -> Result:
        group = fact.groups.get(self.within)
        if group is None:
            return FALSE
        memo_key = (id(self), self.scope, self.within, group)
        evaluated = ctx.joined_results.get(memo_key)
        if evaluated is None:
            evaluated = ([], [])
            for other in ctx.index.members(self.scope, self.within, group):
                result = self.match.evaluate(other, ctx)
                if result.truth is Tri.TRUE:
                    evaluated[0].append(other)
                elif result.truth is Tri.UNKNOWN:
                    evaluated[1].append((other, result))
            ctx.joined_results[memo_key] = evaluated
        found = [o for o in evaluated[0] if o is not fact]
        unknown = [(o, r) for o, r in evaluated[1] if o is not fact]
        if found:
            return Result(Tri.TRUE, (), tuple(sorted(found, key=lambda f: (f.path, f.component or ""))))
        if unknown:
            return Result(Tri.UNKNOWN, tuple(f"{o.label} at {o.path}: {r}" for o, res in unknown for r in res.reasons),
                          tuple(o for o, _ in unknown))
        return FALSE


def fill(template: str, settings: dict[str, str]) -> str:
    out = template
    for name, value in settings.items():
        out = out.replace("{" + name + "}", str(value))
    return out


# ----------------------------------------------------------------------------------------------- compilation

class _Compiler:
    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []

    def error(self, span: Span, message: str) -> None:
        self.problems.append(Problem(span, message))

    def compile(self, data: Any, scopes: tuple[str, ...], where: Span) -> Condition | None:
        if not isinstance(data, dict):
            self.error(where, f"a condition must be a mapping (got {type(data).__name__})")
            return None
        keys = [str(k) for k in data]
        ops = [k for k in keys if k in STRUCTURAL or k in FIELD_OPERATORS]
        unknown = [k for k in keys if k not in STRUCTURAL and k not in FIELD_OPERATORS and k != "field"]
        for key in unknown:
            self.error(key_span(data, key, self.source),
                       f"unknown operator {key!r}; operators are: {', '.join(STRUCTURAL + FIELD_OPERATORS)}")
        if unknown:
            return None
        if "field" in keys:
            return self._field(data, scopes)
        if len(ops) != 1:
            self.error(node_span(data, self.source),
                       f"a condition needs exactly one operator (got {', '.join(ops) or 'none'})")
            return None
        op = ops[0]
        arg = data[op]
        span = value_span(data, op, self.source)
        if op in ("all", "any"):
            if not isinstance(arg, list) or not arg:
                self.error(span, f"'{op}' takes a non-empty list of conditions")
                return None
            compiled = [self.compile(item, scopes, item_span(arg, i, self.source)) for i, item in enumerate(arg)]
            children = tuple(c for c in compiled if c is not None)
            if len(children) != len(compiled):
                return None
            return All(children) if op == "all" else Any_(children)
        if op == "not":
            child = self.compile(arg, scopes, span)
            return Not(child) if child else None
        if op == "attachment_a":
            if "component" not in scopes:
                self.error(key_span(data, op, self.source), "'attachment_a' applies to the component scope only")
            if arg not in ATTACHMENT_VALUES:
                self.error(span, f"'attachment_a' must be one of {', '.join(ATTACHMENT_VALUES)} (got {arg!r})")
                return None
            return AttachmentTest(str(arg))
        if op == "together_with":
            return self._together(arg, span)
        self.error(key_span(data, op, self.source), f"operator {op!r} needs 'field'")
        return None

    def _together(self, arg: Any, span: Span) -> Condition | None:
        if not isinstance(arg, dict):
            self.error(span, "'together_with' takes a mapping {scope, within, match}")
            return None
        ok = True
        for key in arg:
            if key not in ("scope", "within", "match"):
                self.error(key_span(arg, key, self.source), f"unknown key {key!r} in 'together_with' "
                                                            "(expected scope, within, match)")
                ok = False
        scope, within = arg.get("scope"), arg.get("within", "input")
        if scope not in SCOPES:
            self.error(value_span(arg, "scope", self.source) if "scope" in arg else span,
                       f"'scope' must be one of {', '.join(SCOPES)} (got {scope!r})")
            ok = False
        if within not in GROUPS:
            self.error(value_span(arg, "within", self.source),
                       f"'within' must be one of {', '.join(GROUPS)} (got {within!r})")
            ok = False
        if "match" not in arg:
            self.error(span, "'together_with' needs 'match'")
            return None
        match = self.compile(arg["match"], (scope,) if scope in SCOPES else SCOPES,
                             value_span(arg, "match", self.source))
        if not ok or match is None:
            return None
        return TogetherWith(str(scope), str(within), match)

    def _field(self, data: dict[Any, Any], scopes: tuple[str, ...]) -> Condition | None:
        """``{field: NAME, OP: ARG}``: a known field of the scope and exactly one field operator."""
        name = data["field"]
        ops = [str(k) for k in data if k != "field"]
        if not isinstance(name, str) or not any(field_known(s, name) for s in scopes):
            self.error(value_span(data, "field", self.source), _unknown_field(name, scopes))
            return None
        bad = [k for k in ops if k not in FIELD_OPERATORS]
        for key in bad:
            self.error(key_span(data, key, self.source),
                       f"{key!r} is not a field operator; field operators are: {', '.join(FIELD_OPERATORS)}")
        if not bad and len(ops) != 1:
            self.error(key_span(data, "field", self.source),
                       f"a field test needs exactly one operator (got {', '.join(ops) or 'none'})")
        if bad or len(ops) != 1:
            return None
        op = ops[0]
        arg, span = data[op], value_span(data, op, self.source)
        if op == "version_in":
            return self._version_in(name, arg, span, key_span(data, op, self.source))
        if op == "exists":
            if not isinstance(arg, bool):
                self.error(span, f"'exists' takes true or false (got {arg!r})")
                return None
            return FieldTest(name, op, arg)
        return self._match(name, op, arg, span)

    def _match(self, name: str, op: str, arg: Any, span: Span) -> FieldTest | None:
        """``equals``, ``in``, ``matches`` and ``regex``: a test of each item of the field's value."""
        if op == "equals":
            if not isinstance(arg, (str, int, float, bool)):
                self.error(span, "'equals' takes a scalar")
                return None
            value = _scalar(arg)
            return FieldTest(name, op, value, lambda item: _scalar(item) == value)
        if op == "in":
            if not isinstance(arg, list) or not arg or not all(isinstance(a, (str, int, float, bool)) for a in arg):
                self.error(span, "'in' takes a non-empty list of scalars")
                return None
            values = frozenset(_scalar(a) for a in arg)
            return FieldTest(name, op, tuple(sorted(values, key=str)), lambda item: _scalar(item) in values)
        if op == "matches":
            globs = arg if isinstance(arg, list) else [arg]
            if not globs or not all(isinstance(g, str) for g in globs):
                self.error(span, "'matches' takes a glob or a list of globs")
                return None
            pats = tuple(str(g) for g in globs)
            return FieldTest(name, op, pats,
                             lambda item: isinstance(item, str) and any(fnmatch.fnmatchcase(item, g) for g in pats))
        # regex
        if not isinstance(arg, str):
            self.error(span, "'regex' takes a string")
            return None
        try:
            pattern = re.compile(str(arg))
        except re.error as error:
            self.error(span, f"invalid regex {str(arg)!r}: {error}")
            return None
        return FieldTest(name, op, str(arg), lambda item: isinstance(item, str) and bool(pattern.search(item)))

    def _version_in(self, name: str, arg: Any, span: Span, op_span: Span) -> FieldTest | None:
        """``version_in``: a PEP 440 specifier set (``{setting}`` placeholders allowed) over a version field."""
        if name not in RANGE_FIELDS:
            self.error(op_span, f"'version_in' applies to version fields ({', '.join(RANGE_FIELDS)}), not {name!r}")
            return None
        if not isinstance(arg, str):
            self.error(span, "'version_in' takes a PEP 440 specifier string")
            return None
        placeholders = set(re.findall(r"\{([^{}]*)\}", str(arg)))
        unknown = sorted(placeholders - set(SETTINGS))
        if unknown:
            self.error(span, f"unknown setting {{{unknown[0]}}} in specifier; settings are: {', '.join(SETTINGS)}")
            return None
        try:
            parse_specifier(fill(str(arg), SETTINGS))
        except ValueError as error:
            self.error(span, str(error))
            return None
        return FieldTest(name, "version_in", str(arg))


def _unknown_field(name: Any, scopes: tuple[str, ...]) -> str:
    if "component" in scopes and isinstance(name, str) and name.startswith("properties."):
        return (f"unknown property {name!r}: no component has it; properties are: "
                + ", ".join(f"properties.{key}" for key in sorted(PROPERTY_KEYS)))
    known = sorted({f for s in scopes for f in FIELDS[s]})
    return (f"unknown field {name!r} for scope {'/'.join(scopes)}; fields are: {', '.join(known)}"
            + (", properties.<key>" if "component" in scopes else ""))


def _scalar(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    return str(value)


def compile_condition(data: Any, scopes: tuple[str, ...], source: str,
                      where: Span) -> tuple[Condition | None, list[Problem]]:
    compiler = _Compiler(source)
    condition = compiler.compile(data, scopes, where)
    return condition, compiler.problems
