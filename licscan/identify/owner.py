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
    """The distribution that owns ``vpath``.

    A distribution whose RECORD lists the file owns it (the innermost one when nested archives each list it): in an
    installed environment every ``.dist-info`` has the same scope (site-packages), so scope alone cannot tell
    ``nvidia-cuda-runtime-cu12``'s ``libcudart.so.12`` from ``nvidia-cublas-cu12``'s. Only when no RECORD lists it,
    the distribution with the longest scope containing it owns it. A tie at either step (a file several RECORDs list,
    such as the shared ``nvidia/__init__.py``, or an unlisted file in a folder of several distributions) has no
    owner: picking the first would credit the file to whichever distribution happened to be read first.
    """
    candidates = list(distributions)
    listed = [d for d in candidates if d.files and vpath in _recorded(d)]
    if listed:
        return _innermost(listed)
    return _innermost([d for d in candidates if is_within(vpath, d.scope)])


def _innermost(owners: list[Distribution]) -> Distribution | None:
    """The one distribution of ``owners`` with the longest scope; None when there is none or several tie."""
    if not owners:
        return None
    depth = max(len(d.scope.rstrip("/")) for d in owners)
    deepest = [d for d in owners if len(d.scope.rstrip("/")) == depth]
    return deepest[0] if len(deepest) == 1 else None


__all__ = ["distribution_of", "recorded_sha256"]
