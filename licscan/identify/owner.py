"""Which distribution owns a file, and the digest its manifest records for it (one place for the scan and the
catalog)."""

from __future__ import annotations

from collections.abc import Iterable

from licscan.model import Distribution
from licscan.vpath import is_within

_RECORDED: dict[int, tuple[Distribution, dict[str, str | None]]] = {}


def _recorded(dist: Distribution) -> dict[str, str | None]:
    """A distribution's RECORD as vpath -> sha256 (the first row of a path wins; torch's lists 12,000 rows),
    indexed once per distribution object (by identity: hashing the frozen dataclass would hash its whole RECORD
    every time)."""
    hit = _RECORDED.get(id(dist))
    if hit is None or hit[0] is not dist:
        index: dict[str, str | None] = {}
        for path, digest in dist.files:
            index.setdefault(path, digest)
        hit = _RECORDED[id(dist)] = (dist, index)
    return hit[1]


def recorded_sha256(dist: Distribution | None, vpath: str) -> str | None:
    """The digest ``dist``'s RECORD lists for ``vpath`` (None when it lists none)."""
    if dist is None or not dist.files:
        return None
    return _recorded(dist).get(vpath)


def distribution_of(vpath: str, distributions: Iterable[Distribution]) -> Distribution | None:
    """The innermost distribution that owns ``vpath``: listed in its RECORD, or under its scope (the longest scope
    wins; a RECORD may list a file outside its distribution's scope, so this is not ``vpath.innermost``)."""
    owners = [d for d in distributions if (d.files and vpath in _recorded(d)) or is_within(vpath, d.scope)]
    return max(owners, key=lambda d: len(d.scope.rstrip("/")), default=None)


__all__ = ["distribution_of", "recorded_sha256"]
