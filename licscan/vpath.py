"""Virtual paths: one name for every file licscan reads, also inside archives.

A file inside an archive is ``OUTER!/member/path``; nesting repeats the separator, so
``dist/app.tar.gz!/pkg.whl!/lib/libx.so`` is ``lib/libx.so`` in ``pkg.whl`` in ``dist/app.tar.gz``. Paths are
given as the user passed them, with ``/`` separators. Every layer builds and splits them with these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

SEP = "!/"

T = TypeVar("T")


def join(archive: str, member: str) -> str:
    """The virtual path of ``member`` inside the archive ``archive``."""
    return f"{archive}{SEP}{member}"


def outer(vpath: str) -> str:
    """The file on disk a virtual path lies in: ``dist/a.whl!/lib/x.so`` -> ``dist/a.whl``."""
    return vpath.split(SEP, 1)[0]


def chain(vpath: str) -> list[str]:
    """Every level of a virtual path: ``a.tar!/b.whl!/c.so`` -> ``[a.tar, a.tar!/b.whl, a.tar!/b.whl!/c.so]``."""
    parts = vpath.split(SEP)
    return [SEP.join(parts[: i + 1]) for i in range(len(parts))]


def container(vpath: str) -> str | None:
    """The archive a member lies in: ``a.tar!/b.whl!/lib/c.so`` -> ``a.tar!/b.whl``; None for a file on disk."""
    return vpath.rsplit(SEP, 1)[0] if SEP in vpath else None


def is_member_of(vpath: str, archive: str) -> bool:
    """``vpath`` lies inside the archive ``archive``, at any depth (the archive itself is not its member)."""
    return vpath.startswith(archive + SEP)


def member(vpath: str) -> str:
    """The innermost member path: ``a.tar!/b.whl!/lib/c.so`` -> ``lib/c.so`` (the path itself when not in an
    archive)."""
    return vpath.rsplit(SEP, 1)[-1]


def basename(vpath: str) -> str:
    """The file name: ``a.whl!/lib/libx.so.12`` -> ``libx.so.12``."""
    return member(vpath).rsplit("/", 1)[-1]


def is_within(vpath: str, scope: str) -> bool:
    """``vpath`` is ``scope`` itself, a file under the folder ``scope``, or a member of the archive ``scope``."""
    scope = scope.rstrip("/")
    return vpath == scope or vpath.startswith((scope + "/", scope + SEP))


def innermost(vpath: str, items: Iterable[T], scope_of: Callable[[T], str | None]) -> T | None:
    """Of ``items``, the one whose scope holds ``vpath`` most closely (the longest scope), or None."""
    best: T | None = None
    best_len = -1
    for item in items:
        scope = scope_of(item)
        if scope is None:
            continue
        scope = scope.rstrip("/")
        if is_within(vpath, scope) and len(scope) > best_len:
            best, best_len = item, len(scope)
    return best
