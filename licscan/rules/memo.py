"""Evaluate a rule's condition once per distinct set of the values it reads, not once per fact.

A condition is a function of the facts' fields it names (``{field: ...}``), of the fact's toolkit, basename and
governing licence (``attachment_a``: with no toolkit to pick by, the text that governs the part, e.g. the licence
file shipped beside it, decides) and of the fact's group (``together_with``), and of the evaluation's context (the fact index and
the settings, the same for every fact of one evaluation). Facts that agree on all of those get the same
:class:`~licscan.rules.conditions.Result`: the 19,234 device images of an installed CUDA environment are a few
dozen such sets (every image of a library has the same vendor, kind and input), so a rule over device code is
evaluated a few dozen times, not 19,234 times.

Not memoized (evaluated for each fact, as before): a condition holding an operator this module does not know, a
fact whose read values are not hashable (a list such as ``paths``), and a ``together_with`` over the fact's own
scope (the fact itself is left out of its group's matches, so the result depends on which fact it is).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from licscan.rules.conditions import (
    All,
    Any_,
    AttachmentTest,
    Condition,
    Context,
    FieldTest,
    Not,
    Result,
    TogetherWith,
)
from licscan.rules.facts import Fact


@dataclass(frozen=True)
class Reads:
    """What of a fact one condition reads."""

    fields: tuple[str, ...]  # Fact.get(name)
    toolkit: bool  # Fact.toolkit and Fact.governing[policy] (attachment_a)
    joins: tuple[tuple[str, str], ...]  # (scope, within) of every together_with: Fact.groups[within]

    def __or__(self, other: Reads) -> Reads:
        return Reads(tuple(dict.fromkeys(self.fields + other.fields)), self.toolkit or other.toolkit,
                     tuple(dict.fromkeys(self.joins + other.joins)))


_NOTHING = Reads((), False, ())


def reads(condition: Condition) -> Reads | None:
    """What ``condition`` reads of a fact; None when it holds an operator not known here."""
    if isinstance(condition, FieldTest):
        return Reads((condition.field,), False, ())
    if isinstance(condition, AttachmentTest):
        # The name Attachment A is read for: the static library a part was linked from, else the name the file
        # declares, else its basename (attachment.attachment_name). warp.so holds five linked parts of one toolkit.
        # The part's name says what the text lists for it instead ({found} of CUDA-EULA-NOT-REDISTRIBUTABLE).
        return Reads(("basename", "properties.linked_from", "properties.declared_name", "name"), True, ())
    if isinstance(condition, TogetherWith):
        return Reads((), False, ((condition.scope, condition.within),))
    children: tuple[Condition, ...]
    if isinstance(condition, (All, Any_)):
        children = condition.children
    elif isinstance(condition, Not):
        children = (condition.child,)
    else:
        return None
    out = _NOTHING
    for child in children:
        found = reads(child)
        if found is None:
            return None
        out = out | found
    return out


class Memo:
    """The results of one condition over the facts of one evaluation (one :class:`Context`)."""

    def __init__(self, condition: Condition) -> None:
        self.condition = condition
        read = reads(condition)
        self.memoized = read is not None
        self.fields = read.fields if read is not None else ()
        self.toolkit = read is not None and read.toolkit
        self.join_scopes = frozenset(scope for scope, _ in read.joins) if read is not None else frozenset()
        self.withins = tuple(within for _, within in read.joins) if read is not None else ()
        self.results: dict[Hashable, Result] = {}

    def evaluate(self, fact: Fact, ctx: Context) -> Result:
        if not self.memoized or fact.scope in self.join_scopes:
            return self.condition.evaluate(fact, ctx)
        get = fact.fields.get
        values = [get(name) for name in self.fields]
        if self.toolkit:
            values.append(fact.toolkit)
            values.append(fact.governing.get(ctx.policy))
        if self.withins:
            groups = fact.groups
            values += [groups.get(within) for within in self.withins]
        # with each value's type: True, 1 and 1.0 are equal keys, not equal to an ``equals`` test
        key = (fact.scope, *values, *map(type, values))
        try:
            found = self.results.get(key)
        except TypeError:  # a list-valued field (paths, evidence, license_files)
            return self.condition.evaluate(fact, ctx)
        if found is None:
            found = self.results[key] = self.condition.evaluate(fact, ctx)
        return found


__all__ = ["Memo", "Reads", "reads"]
