"""Three-valued truth and PEP 440 specifiers over version ranges.

A toolkit fact is a range (:class:`licscan.model.ToolkitRange`, the one range type): ``min``/``max`` are inclusive
"major.minor" bounds (max "13.0" covers every 13.0.x), ``exact`` a full release. A specifier set (``packaging.specifiers.SpecifierSet``) is true over the
range when every release in it satisfies the set, false when none does, and unknown otherwise.

Releases are compared as three integers. The truth of a specifier set can change only at the versions it names,
so testing the range's ends and every named version with its neighbours (inside the range) decides the question
exactly over three-component releases.
"""

from __future__ import annotations

import enum
import functools

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from licscan.model.releases import OPEN as BIG
from licscan.model.releases import Release, ToolkitRange


class Tri(enum.IntEnum):
    """False < unknown < true: ``all`` is the minimum, ``any`` the maximum, ``not`` the mirror."""

    FALSE = 0
    UNKNOWN = 1
    TRUE = 2

    def __invert__(self) -> Tri:
        return Tri(2 - int(self))

    @staticmethod
    def of(value: bool) -> Tri:
        return Tri.TRUE if value else Tri.FALSE




@functools.lru_cache(maxsize=1024)
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


def contains(spec: SpecifierSet, rng: ToolkitRange) -> Tri:
    """Whether every / no / some release of ``rng`` satisfies ``spec``."""
    return contains_releases(spec, *rng.releases)


@functools.lru_cache(maxsize=4096)
def contains_releases(spec: SpecifierSet, low: Release, high: Release) -> Tri:
    """Whether every / no / some release from ``low`` to ``high`` (inclusive) satisfies ``spec`` (a pure function
    of its arguments, asked again for every part of one toolkit range: cached)."""
    candidates = {low, high, _succ(low), _pred(high)}
    for point in _critical(spec):
        candidates.update({point, _succ(point), _pred(point)})
    seen: set[bool] = set()
    for point in candidates:
        if low <= point <= high:
            seen.add(spec.contains(_text(point), prereleases=False))
            if len(seen) == 2:
                return Tri.UNKNOWN
    if not seen:
        return Tri.FALSE
    return Tri.of(seen.pop())


def compare_release(a: str, b: str) -> int:
    ra, rb = _release(a), _release(b)
    return (ra > rb) - (ra < rb)
