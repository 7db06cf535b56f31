"""Which file of a scan provides a library another file asks the loader for: the one resolver of DT_NEEDED entries
and PE imports, used by the scan (``Dependency.shipped``) and by the SBOM (``DEPENDS_ON`` relationships).

A name is provided by a file of that name, or by an ELF shared object whose ``DT_SONAME`` is that name (System V
gABI, "Dynamic Section": "DT_NEEDED This element holds the string table offset of a null-terminated string,
giving the name of a needed library"; "DT_SONAME This element holds the string table offset of a null-terminated
string, giving the name of the shared object"; https://refspecs.linuxfoundation.org/elf/gabi4+/ch5.dynamic.html).
ELF names compare as written, case included. A Windows module name (``.dll``, ``.exe``, ``.sys``, ``.pyd``) compares
without case: Windows file names are case-insensitive by default, and so are the names the loader looks up
(https://learn.microsoft.com/windows/win32/fileio/naming-a-file): an import of ``CUDART64_12.DLL`` is provided by
``bin/cudart64_12.dll``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from licscan.model import FileFacts
from licscan.vpath import basename

_WINDOWS_MODULE = (".dll", ".exe", ".sys", ".pyd")


def is_windows_module(name: str) -> bool:
    """Whether ``name`` names a Windows module (the loader compares such names without case)."""
    return name.lower().endswith(_WINDOWS_MODULE)


@dataclass(frozen=True, eq=False)
class Providers:
    """Library name -> the virtual paths of the files that provide it (by file name or SONAME), sorted; Windows
    module names also by their case-folded name."""

    by_name: Mapping[str, tuple[str, ...]]
    by_folded: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def index(cls, files: Iterable[tuple[str, FileFacts]]) -> Providers:
        """The providers among ``files`` (virtual path, facts): every file by its name, a shared object by its
        SONAME too, a Windows module by its case-folded name too."""
        found: dict[str, list[str]] = {}
        folded: dict[str, list[str]] = {}
        for vpath, facts in files:
            name = basename(vpath)
            found.setdefault(name, []).append(vpath)
            if is_windows_module(name):
                folded.setdefault(name.casefold(), []).append(vpath)
            soname = facts.elf.soname if facts.elf is not None else None
            if soname and soname != name:
                found.setdefault(soname, []).append(vpath)
        return cls({name: tuple(sorted(paths)) for name, paths in found.items()},
                   {name: tuple(sorted(paths)) for name, paths in folded.items()})

    def of(self, name: str) -> tuple[str, ...]:
        """Every file that provides ``name`` (a Windows module name: whatever the case of either name)."""
        if is_windows_module(name):
            return self.by_folded.get(name.casefold(), ())
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
