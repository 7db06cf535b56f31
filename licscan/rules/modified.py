"""What a rule on "not modified" sees of one file: ``properties.modified`` of a component fact (docs/licenses.md,
"Modified files").

The naming layer states, per file, how the file differs from the one NVIDIA ships (:class:`licscan.model.
Modification`) and writes each difference as an evidence line of that file (``"<path>: <line>"``,
licscan/identify/catalog.py). The report merges a component's files, so the component's ``properties.modified``
lists what ANY of its files shows: one patched ``libnvperf_host.so`` made every file of CUPTI "modified". A fact is
one file; this module gives it that file's own differences, read back from its own evidence lines, and applies one
rule to a RECORD mismatch (``sha256-differs-from-record``), the same for every *-MODIFIED rule:

1. bytes whose sha256 is that of a file NVIDIA publishes with a RECORD that states another digest
   (rules/licenses/documents.yaml ``as_published``: tensorrt-lean-cu12-libs 11.4.0.106 win_amd64) are NVIDIA's
   bytes as published: not a modification, wherever they lie;
2. a member of NVIDIA's own wheel (the wheel archive whose RECORD lists it) is that wheel as NVIDIA published it:
   shipping the wheel modifies nothing, so the mismatch is NVIDIA's packaging, not a modification;
3. anywhere else it is a modification made after packaging: in an installed environment (pip copies each file's
   digest from the wheel's RECORD into the installed RECORD, so the bytes changed after install unless rule 1
   holds) and in a third party's package.

The other differences (an auditwheel graft, a rewritten or missing SONAME, an added RUNPATH, a stripped symbol table)
compare the file with NVIDIA's published form, not with a RECORD: they count wherever the file is. A report whose
evidence carries no per-file line of any difference (a hand-written document) keeps the component's values for each
of its files.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from licscan.model import VALUE_SEPARATOR, Modification
from licscan.vpath import SEP

#: The evidence line each difference writes (licscan/identify/catalog.py: ``_names``, ``_elf_changes``,
#: ``_distribution``), matched at the start of the line.
_LINES: tuple[tuple[Modification, re.Pattern[str]], ...] = (
    (Modification.AUDITWHEEL_GRAFTED, re.compile(r"auditwheel-grafted name: ")),
    (Modification.SONAME_MISSING, re.compile(r"no DT_SONAME \(")),
    (Modification.SONAME_REWRITTEN, re.compile(r"SONAME .* is not NVIDIA's \(")),
    (Modification.RUNPATH_ADDED, re.compile(r"RUNPATH/RPATH .* set; NVIDIA ships it without one")),
    (Modification.STRIPPED, re.compile(r"no \.symtab, while NVIDIA ships it with one")),
    (Modification.SHA256_DIFFERS, re.compile(r"sha256 (?P<actual>[0-9a-fA-F]{64}) differs from .* RECORD ")),
)
_ANY = re.compile("|".join(f"(?:: {p.pattern})" for _, p in _LINES))


@dataclass(frozen=True)
class FileChanges:
    """One file's differences as the rules judge them, and why a RECORD mismatch is not one of them."""

    modified: str | None  # Modification values joined with VALUE_SEPARATOR, sorted; None: none
    notes: tuple[str, ...] = ()


def _own(evidence: Sequence[str], path: str) -> list[tuple[str, str | None]]:
    """The differences the naming layer wrote for ``path`` (with the actual sha256 of a RECORD mismatch)."""
    out: list[tuple[str, str | None]] = []
    prefix = path + ": "
    for line in evidence:
        if not line.startswith(prefix):
            continue
        rest = line[len(prefix):]
        for kind, pattern in _LINES:
            m = pattern.match(rest)
            if m:
                out.append((kind.value, m.groupdict().get("actual")))
    return out


def file_changes(union: str | None, evidence: Sequence[str], path: str, dist_path: str | None,
                 nvidia_wheel: bool, published: Collection[str]) -> FileChanges:
    """The differences of the file at ``path`` of a component whose ``properties.modified`` is ``union``.

    ``dist_path`` is the virtual path of the distribution that owns the file, ``nvidia_wheel`` whether it is
    NVIDIA's own wheel (a ``python-distribution`` component of vendor NVIDIA), ``published`` the sha256 digests of
    :func:`licscan.rules.documents.Documents.as_published`."""
    if not union:
        return FileChanges(None)
    if any(_ANY.search(line) for line in evidence):
        found = _own(evidence, path)
    else:  # no per-file line at all: a hand-written document; each file has the component's values
        found = [(v, None) for v in union.split(VALUE_SEPARATOR) if v]
    kinds = {kind for kind, _ in found}
    notes: list[str] = []
    if _RECORD in kinds:
        actual = next((a for kind, a in found if kind == _RECORD and a), None)
        if actual is not None and actual.lower() in published:
            kinds.discard(_RECORD)
            notes.append(f"sha256 {actual.lower()} is the file as NVIDIA publishes it, with a RECORD that states "
                         f"another digest (rules/licenses/documents.yaml as_published): not a modification")
        elif nvidia_wheel and dist_path and path.startswith(dist_path + SEP):
            kinds.discard(_RECORD)
            notes.append(f"a member of NVIDIA's wheel {dist_path} as published: its RECORD mismatch is NVIDIA's "
                         f"packaging, not a modification (docs/licenses.md#modified-files)")
    return FileChanges(VALUE_SEPARATOR.join(sorted(kinds)) or None, tuple(notes))


_RECORD = Modification.SHA256_DIFFERS.value

__all__ = ["FileChanges", "file_changes"]
