"""Which file of a scan provides a library another file asks the loader for: the one resolver of DT_NEEDED entries
and PE imports, used by the scan (``Dependency.shipped``) and by the SBOM (``DEPENDS_ON`` relationships).

A name is provided by a file of that name, or by an ELF shared object whose ``DT_SONAME`` is that name (System V
gABI, "Dynamic Section": "DT_NEEDED This element holds the string table offset of a null-terminated string,
giving the name of a needed library"; "DT_SONAME This element holds the string table offset of a null-terminated
string, giving the name of the shared object"; https://refspecs.linuxfoundation.org/elf/gabi4+/ch5.dynamic.html).
Names compare as written, case included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from licscan.model import FileFacts
from licscan.vpath import basename


@dataclass(frozen=True, eq=False)
class Providers:
    """Library name -> the virtual paths of the files that provide it (by file name or SONAME), sorted."""

    by_name: Mapping[str, tuple[str, ...]]

    @classmethod
    def index(cls, files: Iterable[tuple[str, FileFacts]]) -> Providers:
        """The providers among ``files`` (virtual path, facts): every file by its name, a shared object by its
        SONAME too."""
        found: dict[str, list[str]] = {}
        for vpath, facts in files:
            name = basename(vpath)
            found.setdefault(name, []).append(vpath)
            soname = facts.elf.soname if facts.elf is not None else None
            if soname and soname != name:
                found.setdefault(soname, []).append(vpath)
        return cls({name: tuple(sorted(paths)) for name, paths in found.items()})

    def of(self, name: str) -> tuple[str, ...]:
        """Every file that provides ``name``."""
        return self.by_name.get(name, ())

    def nearest(self, name: str, needer: str) -> str | None:
        """The file that provides ``name`` to ``needer``: of the providers other than ``needer`` itself, the one
        that shares the longest leading part of its virtual path (the same folder or archive before another);
        between equals, the greatest path. None when no other file provides it."""
        candidates = [p for p in self.of(name) if p != needer]
        if not candidates:
            return None
        return max(candidates, key=lambda p: (_shared(p, needer), p))


def _shared(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share (of the virtual path as written, "!/" included)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
