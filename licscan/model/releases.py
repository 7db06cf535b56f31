"""Releases and release ranges: the one version-range type every layer uses (docs/binary-format.md, section
"10 Version inference order": a version is a range of releases).

A range is what the bytes, a table or a version string tell about a CUDA toolkit (or driver) release:
``low``/``high`` are inclusive bounds (a "major.minor" bound covers every patch: high "13.0" holds 13.0.88),
``exact`` a full release stated by a marker. The readers in ``licscan.binary`` build ranges from markers and
tables; the rules test them against PEP 440 specifiers over :attr:`ToolkitRange.releases` (three integers per
end); the SBOM names the toolkit package of a range by :attr:`ToolkitRange.key`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

#: A release as three integers; a bound "13.0" is the releases 13.0.0 to 13.0.OPEN.
Release = tuple[int, int, int]
OPEN = 10**6
FIRST: Release = (0, 0, 0)
LAST: Release = (OPEN, OPEN, OPEN)

# "13.0.88", "13.0", "13.0.x", "13", "13.x", "13.*"
_RELEASE = re.compile(r"^(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$")


@functools.lru_cache(maxsize=4096)
def release_bounds(text: str) -> tuple[Release, Release] | None:
    """The releases a version text names: "13.0.88" one; "13.0" or "13.0.x" every 13.0.z; "13" or "13.x" every
    13.y.z. None when the text is not such a release."""
    match = _RELEASE.match(text.strip())
    if not match:
        return None
    nums = [int(p) for p in match.groups() if p is not None and p not in ("x", "*")]
    pad = 3 - len(nums)
    return (nums[0], *(nums[1:] + [0] * pad)), (nums[0], *(nums[1:] + [OPEN] * pad))  # type: ignore[return-value]


def release_of(version: str | None) -> str | None:
    """The toolkit release ("major.minor") of a full version: "13.0.96" -> "13.0"; "13" -> None (a major alone is
    not a release)."""
    if not version:
        return None
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return f"{int(parts[0])}.{int(parts[1])}"


def _version_key(text: str) -> Version:
    return Version(text)


def _max_version(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if _version_key(a) >= _version_key(b) else b


def _min_version(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if _version_key(a) <= _version_key(b) else b


@dataclass(frozen=True)
class ToolkitRange:
    """The CUDA toolkit (or driver) release something belongs to, as far as the evidence tells.

    ``low`` / ``high`` are inclusive bounds (None = unbounded); ``exact`` is a full release such as "13.0.88" and
    is set only when a marker states it. ``evidence`` says which marker gave each bound. ``label`` is how a reader
    sees the range when that is not its bounds (a version string "12.4" read as "12.4.x", a driver's toolkit
    "13.0 (driver 580.65.06)"); it is not part of the JSON form.
    """

    low: str | None = None
    high: str | None = None
    exact: str | None = None
    evidence: tuple[str, ...] = ()
    # Facts that contradict each other (a tkinfo note of a pre-release ptxas naming 12.7.0 for sm_100, which the
    # architecture table says exists since 12.8): each says which facts, and the range spans all of them.
    conflicts: tuple[str, ...] = ()
    label: str | None = None

    @staticmethod
    def unknown() -> ToolkitRange:
        return UNKNOWN

    @staticmethod
    def of_version(text: str | None) -> ToolkitRange:
        """The range a version string names: "13.0.96" one release, "12.4" or "12.x" every release with that
        prefix (shown "12.4.x", "12.x"); anything else unknown."""
        bounds = release_bounds(text) if isinstance(text, str) and text else None
        if text is None or bounds is None:
            return UNKNOWN
        first, last = bounds
        if first == last:
            return ToolkitRange(f"{first[0]}.{first[1]}", f"{first[0]}.{first[1]}", text)
        prefix = ".".join(str(n) for n in (first[0],) + tuple(n for n, m in zip(first[1:], last[1:]) if n == m))
        return ToolkitRange(prefix, prefix, label=text if text.endswith(("x", "*")) else text + ".x")

    @staticmethod
    def from_json(value: Mapping[str, Any] | None) -> ToolkitRange:
        """The range of a report's ``toolkit`` object {min, max, exact} (None: unknown), without its evidence. A
        bound that is not a release is no bound."""
        if not value:
            return UNKNOWN
        low, high, exact = (_release_text(value.get(k)) for k in ("min", "max", "exact"))
        if low is None and high is None and exact is None:
            return UNKNOWN
        return ToolkitRange(low, high, exact)

    @property
    def is_unknown(self) -> bool:
        return self.low is None and self.high is None and self.exact is None

    @property
    def is_empty(self) -> bool:
        return self.low is not None and self.high is not None and _version_key(self.low) > _version_key(self.high)

    @property
    def releases(self) -> tuple[Release, Release]:
        """The first and last release of the range: the exact release alone when one is stated."""
        return _releases(self.low, self.high, self.exact)

    @property
    def is_point(self) -> bool:
        first, last = self.releases
        return first == last

    @property
    def text(self) -> str:
        """How the range is shown to a reader: "13.0.88", "13.0", "12.8–13.0", ">= 12.8", "<= 11.8", "unknown"."""
        if self.label is not None:
            return self.label
        if self.exact and release_bounds(self.exact):
            return self.exact
        return self._spelled("–", ">= ", "<= ") or "unknown"

    @property
    def key(self) -> str | None:
        """The toolkit release the SBOM names a package by: "13.0" (an exact release's major.minor), "12.8-13.0",
        ">=12.8", "<=11.8"; None when unknown."""
        if self.exact and release_of(self.exact):
            return release_of(self.exact)
        return self._spelled("-", ">=", "<=")

    def _spelled(self, between: str, at_least: str, at_most: str) -> str | None:
        """The bounds written out: "low", "low<between>high", "<at_least>low" or "<at_most>high"; None: none."""
        if self.low and self.high:
            return self.low if self.low == self.high else f"{self.low}{between}{self.high}"
        if self.low:
            return f"{at_least}{self.low}"
        if self.high:
            return f"{at_most}{self.high}"
        return None

    def intersect(self, other: ToolkitRange) -> ToolkitRange:
        """Both facts hold: the tighter bounds win; evidence of both is kept."""
        low = _max_version(self.low, other.low)
        high = _min_version(self.high, other.high)
        exact = self.exact or other.exact
        evidence = self.evidence + tuple(e for e in other.evidence if e not in self.evidence)
        conflicts = self.conflicts + tuple(c for c in other.conflicts if c not in self.conflicts)
        return ToolkitRange(low, high, exact, evidence, conflicts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"min": self.low, "max": self.high, "exact": self.exact, "evidence": list(self.evidence)}
        if self.conflicts:
            out["conflicts"] = list(self.conflicts)
        return out


UNKNOWN = ToolkitRange()


def _release_text(value: Any) -> str | None:
    return value if isinstance(value, str) and release_bounds(value) is not None else None


@functools.lru_cache(maxsize=4096)
def _releases(low: str | None, high: str | None, exact: str | None) -> tuple[Release, Release]:
    point = release_bounds(exact) if exact else None
    if point is not None:
        return point[0], point[0]
    first = release_bounds(low) if low else None
    last = release_bounds(high) if high else None
    return (first[0] if first else FIRST), (last[1] if last else LAST)
