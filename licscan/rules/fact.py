"""One fact of the closed facts view (licscan/rules/facts.py builds them from a report document) and the index
rule conditions select facts from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from licscan.model import ToolkitRange
from licscan.model.releases import UNKNOWN
from licscan.rules import governing as gov

SCOPES = ("component", "device_code", "distribution")
Json = dict[str, Any]  # an object of a report document (licscan/schemas/report.schema.json)
#: The enclosing distribution's fields, which every scope has.
DIST_FIELDS = ("distribution.name", "distribution.path", "distribution.ecosystem", "distribution.version",
               "distribution.license_declared")


@dataclass(frozen=True)
class Fact:
    scope: str
    path: str
    fields: Mapping[str, Any]
    component: str | None = None
    evidence: tuple[str, ...] = ()
    groups: Mapping[str, str | None] = field(default_factory=dict)
    toolkit: ToolkitRange = UNKNOWN
    #: policy -> the licence that governs this part under it (every policy of governing.POLICIES).
    governing: Mapping[str, gov.Governing] = field(default_factory=dict)

    @classmethod
    def of(cls, scope: str, path: str, fields: Mapping[str, Any], component: str | None,
           evidence: tuple[str, ...], groups: Mapping[str, str | None], toolkit: ToolkitRange,
           governing: Mapping[str, gov.Governing]) -> Fact:
        """``Fact(...)`` with every field given, built without the generated ``__init__``'s ``object.__setattr__``
        per frozen field (one fact per device image: 19,234 of an installed CUDA environment); equal to the
        ``__init__`` one (a test checks it)."""
        fact = object.__new__(cls)
        fact.__dict__.update(scope=scope, path=path, fields=fields, component=component, evidence=evidence,
                             groups=groups, toolkit=toolkit, governing=governing)
        return fact

    def get(self, name: str) -> Any:
        return self.fields.get(name)

    @property
    def label(self) -> str:
        """A short name for evidence lines: ``zluda (output-consumer)`` or ``ptx compute_90``."""
        if self.scope == "component":
            return f"{self.fields.get('name')} ({self.fields.get('kind')})"
        if self.scope == "device_code":
            return f"{self.fields.get('kind')} {self.fields.get('arch')}"
        return f"distribution {self.fields.get('name')} {self.fields.get('version') or ''}".rstrip()


class FactIndex:
    """All facts of one document, indexed by scope and by group for joins."""

    def __init__(self, facts: Iterable[Fact]):
        self.facts = tuple(facts)
        self._by: dict[tuple[str, str, str], list[Fact]] = {}
        scopes: dict[str, list[Fact]] = {scope: [] for scope in SCOPES}
        for fact in self.facts:
            scopes.setdefault(fact.scope, []).append(fact)
            for group, key in fact.groups.items():
                if key is not None:
                    self._by.setdefault((fact.scope, group, key), []).append(fact)
        self._scopes = {scope: tuple(same) for scope, same in scopes.items()}

    def scope(self, scope: str) -> tuple[Fact, ...]:
        return self._scopes.get(scope, ())

    def members(self, scope: str, within: str, key: str) -> tuple[Fact, ...] | list[Fact]:
        """The facts of ``scope`` in the group ``key`` of kind ``within``, in document order."""
        return self._by.get((scope, within, key), ())


def dist_fields(dist: Json | None) -> dict[str, Any]:
    if not dist:
        return {k: None for k in DIST_FIELDS}
    return {"distribution.name": dist.get("name"), "distribution.path": dist.get("path"),
            "distribution.ecosystem": dist.get("ecosystem"), "distribution.version": dist.get("version"),
            "distribution.license_declared": dist.get("license_declared")}
