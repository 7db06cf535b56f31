"""Three-valued truth and PEP 440 specifiers over version ranges.

A toolkit fact is a range {min, max, exact}: ``min``/``max`` are inclusive "major.minor" bounds (max "13.0" covers
every 13.0.x), ``exact`` a full release. A specifier set (``packaging.specifiers.SpecifierSet``) is true over the
range when every release in it satisfies the set, false when none does, and unknown otherwise.

Releases are compared as three integers. The truth of a specifier set can change only at the versions it names,
so testing the range's ends and every named version with its neighbours (inside the range) decides the question
exactly over three-component releases.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

BIG = 10**6
Release = tuple[int, int, int]


class Tri(enum.IntEnum):
    """False < unknown < true: ``all`` is the minimum, ``any`` the maximum, ``not`` the mirror."""

    FALSE = 0
    UNKNOWN = 1
    TRUE = 2

    def __invert__(self) -> Tri:  # type: ignore[override]
        return Tri(2 - int(self))

    @staticmethod
    def of(value: bool) -> Tri:
        return Tri.TRUE if value else Tri.FALSE


_RELEASE = re.compile(r"^(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$")


@dataclass(frozen=True)
class VersionRange:
    """Inclusive bounds over three-component releases; ``text`` is how the range is shown to a reader."""

    low: Release
    high: Release
    text: str

    @property
    def is_unknown(self) -> bool:
        return self.low == (0, 0, 0) and self.high == (BIG, BIG, BIG)

    @property
    def is_point(self) -> bool:
        return self.low == self.high


UNKNOWN_RANGE = VersionRange((0, 0, 0), (BIG, BIG, BIG), "unknown")


def _bounds(text: str) -> tuple[Release, Release] | None:
    """ "13.0.88" -> a point; "13.0" or "13.0.x" -> every 13.0.z; "13" or "13.x" -> every 13.y.z."""
    match = _RELEASE.match(text.strip())
    if not match:
        return None
    parts = [p for p in match.groups() if p is not None and p not in ("x", "*")]
    nums = [int(p) for p in parts]
    low = tuple(nums + [0] * (3 - len(nums)))
    high = tuple(nums + [BIG] * (3 - len(nums)))
    return low, high  # type: ignore[return-value]


def range_from_toolkit(toolkit: dict | None) -> VersionRange:
    """The range of a report ``toolkit`` object {min, max, exact} (None -> unknown)."""
    if not toolkit:
        return UNKNOWN_RANGE
    exact = toolkit.get("exact")
    if exact:
        bounds = _bounds(exact)
        if bounds:
            return VersionRange(bounds[0], bounds[0], exact)
    low_text, high_text = toolkit.get("min"), toolkit.get("max")
    low = _bounds(low_text)[0] if low_text and _bounds(low_text) else (0, 0, 0)
    high = _bounds(high_text)[1] if high_text and _bounds(high_text) else (BIG, BIG, BIG)
    if low_text and high_text:
        text = low_text if low_text == high_text else f"{low_text}–{high_text}"
    elif low_text:
        text = f">= {low_text}"
    elif high_text:
        text = f"<= {high_text}"
    else:
        text = "unknown"
    return VersionRange(low, high, text)  # type: ignore[arg-type]


def range_from_version(text: str | None) -> VersionRange:
    """The range of a version string ("13.0.96" a point, "12.4" or "12.x" a prefix); anything else unknown."""
    if not text:
        return UNKNOWN_RANGE
    bounds = _bounds(text)
    if not bounds:
        return UNKNOWN_RANGE
    if bounds[0] == bounds[1]:
        return VersionRange(bounds[0], bounds[1], text)
    return VersionRange(bounds[0], bounds[1], text if text.endswith(("x", "*")) else text + ".x")


def parse_specifier(text: str) -> SpecifierSet:
    """A specifier set over plain releases (no pre/post/dev/local parts, at most three components).
    Raises ValueError with a reader's message."""
    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier as error:
        raise ValueError(f"invalid PEP 440 specifier {text!r}: {error}") from None
    if not list(spec):
        raise ValueError(f"empty specifier {text!r}")
    for item in spec:
        version = item.version.rstrip(".*")
        try:
            parsed = Version(version)
        except InvalidVersion:
            raise ValueError(f"invalid version {item.version!r} in specifier {text!r}") from None
        if parsed.pre or parsed.post is not None or parsed.dev is not None or parsed.local or parsed.epoch:
            raise ValueError(f"specifier {text!r}: only plain releases are supported (got {item.version!r})")
        if len(parsed.release) > 3:
            raise ValueError(f"specifier {text!r}: at most three release components (got {item.version!r})")
    return spec


def _release(version: str) -> Release:
    nums = [int(p) for p in Version(version.rstrip(".*")).release]
    return tuple(nums + [0] * (3 - len(nums)))  # type: ignore[return-value]


def _succ(r: Release) -> Release:
    return (r[0], r[1], r[2] + 1)


def _pred(r: Release) -> Release:
    if r[2] > 0:
        return (r[0], r[1], r[2] - 1)
    if r[1] > 0:
        return (r[0], r[1] - 1, BIG)
    if r[0] > 0:
        return (r[0] - 1, BIG, BIG)
    return r


def _bump(version: str) -> Release:
    """The first release after every release with this prefix: "11.*" -> 12.0.0, "11.6" (for ~=) -> 12.0.0."""
    nums = [int(p) for p in Version(version.rstrip(".*")).release]
    nums[-1] += 1
    return tuple(nums + [0] * (3 - len(nums)))  # type: ignore[return-value]


def _critical(spec: SpecifierSet) -> set[Release]:
    points: set[Release] = set()
    for item in spec:
        base = _release(item.version)
        points.add(base)
        nums = Version(item.version.rstrip(".*")).release
        if item.version.endswith(".*"):
            points.add(_bump(item.version))
        if item.operator == "~=" and len(nums) >= 2:
            points.add(_bump(".".join(str(n) for n in nums[:-1])))
        if item.operator in ("<=", "==", ">", "!=") and len(nums) < 3 and not item.version.endswith(".*"):
            # "<=12.4" holds for 12.4.0 only (12.4 == 12.4.0 in PEP 440); 12.4.1 is above it.
            points.add(base)
    return points


def _text(r: Release) -> str:
    return ".".join(str(n) for n in r)


def contains(spec: SpecifierSet, rng: VersionRange) -> Tri:
    """Whether every / no / some release of ``rng`` satisfies ``spec``."""
    candidates = {rng.low, rng.high, _succ(rng.low), _pred(rng.high)}
    for point in _critical(spec):
        candidates.update({point, _succ(point), _pred(point)})
    seen: set[bool] = set()
    for point in candidates:
        if rng.low <= point <= rng.high:
            seen.add(spec.contains(_text(point), prereleases=False))
            if len(seen) == 2:
                return Tri.UNKNOWN
    if not seen:
        return Tri.FALSE
    return Tri.of(seen.pop())


def compare_release(a: str, b: str) -> int:
    ra, rb = _release(a), _release(b)
    return (ra > rb) - (ra < rb)
