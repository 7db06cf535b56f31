"""``licscan audit`` for people (the default on a terminal): a verdict line, then one block per file with its
findings, the components named in it and its device code, then what could not be read.

Colour (rich) only when asked for: the CLI asks when standard output is a terminal and NO_COLOR is not set. The
plain rendering is what tests and pipes see; it is the same text without the styles.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from licscan.escape import terminal
from licscan.findings import Finding, Verdict
from licscan.model import GPU_LAYER_KINDS, Component, Dependency, Inventory
from licscan.report._shared import (
    DISCLAIMER,
    ToolkitRow,
    active,
    by_severity,
    device_code_by_file,
    naming_note,
    rel,
    version_label,
)
from licscan.report.progress import is_terminal

STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def use_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour on a terminal only, never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    environ = environ if environ is not None else os.environ
    return is_terminal(stream) and not environ.get("NO_COLOR") and environ.get("TERM", "") != "dumb"


def _e(text: object) -> str:
    """Untrusted text for the terminal: controls made visible (licscan.escape.terminal), then rich markup escaped."""
    from rich.markup import escape

    return escape(terminal(text))


def _finding_lines(f: Finding) -> list[str]:
    sev = f.severity.value
    label = f"{sev.upper():7}"
    verdict = "" if f.verdict is Verdict.VIOLATION else f" ({f.verdict.value})"
    if f.waived:
        head = f"  [dim]waived {label} {_e(f.rule)}{_e(verdict)}: {_e(f.title or '')}[/]"
    else:
        head = f"  [{STYLE[sev]}]{label}[/] [bold]{_e(f.rule)}[/]{_e(verdict)}: {_e(f.title or '')}"
    lines = [head, f"          {_e(' '.join(f.message.split()))}"]
    clause = f.clause
    if clause:
        date = (f", text of {clause.date}" if clause.date else "") + clause.stand_in
        lines.append(f"          [dim]clause:[/] {_e(clause.document)} {_e(clause.section)}{_e(date)}")
    if f.waiver is not None:
        w = f.waiver
        until = f" until {w.expires}" if w.expires else " (no expiry)"
        by = f", approved by {w.approver}" if w.approver else ""
        lines.append(f"          [dim]waiver:[/] {_e(w.reason)}{_e(until)}{_e(by)}")
    elif f.remediation:
        lines.append(f"          [dim]fix:[/] {_e(' '.join(f.remediation.split()))}")
    lines.append(f"          [dim]fingerprint {_e(f.fingerprint)}[/]")
    return lines


def _head_lines(inventory: Inventory, findings: list[Finding]) -> list[str]:
    s = inventory.summary
    live = active(findings)
    out: list[str] = [f"[bold]licscan audit[/]: {s.files} files, {s.bytes} bytes in "
                      f"{_e(', '.join(rel(p) or p for p in inventory.inputs))}"]
    counts = {k: sum(1 for f in live if f.severity.value == k) for k in ("error", "warning", "note")}
    waived_n = len(findings) - len(live)
    summary = ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items())
    summary += f"; {waived_n} waived" if waived_n else ""
    out.append(f"Findings: {summary}" if findings else "Findings: none")
    out.append(_e(DISCLAIMER))
    return out


@dataclass(frozen=True)
class _PerFile:
    """What the report says of each file, by virtual path (a file appears once it has any of these)."""

    findings: dict[str, list[Finding]]
    components: dict[str, list[Component]]
    device: dict[str, list[ToolkitRow]]
    needs: dict[str, list[Dependency]]

    @classmethod
    def of(cls, inventory: Inventory, findings: list[Finding]) -> _PerFile:
        per_file = cls(defaultdict(list), defaultdict(list), device_code_by_file(inventory), defaultdict(list))
        for f in findings:
            per_file.findings[f.path].append(f)
        for c in inventory.components:
            for path in c.paths:
                per_file.components[path].append(c)
        for d in inventory.dependencies:
            per_file.needs[d.path].append(d)
        return per_file

    def paths(self) -> list[str]:
        """Files with an open finding first (most severe first), then by path."""
        def order(path: str) -> tuple[int, str]:
            live_here = [f for f in self.findings.get(path, ()) if not f.waived]
            return (min((-f.severity.rank for f in live_here), default=9), path)

        return sorted({*self.findings, *self.components, *self.device, *self.needs}, key=order)


def _file_lines(path: str, per_file: _PerFile) -> list[str]:
    out = ["", f"[bold underline]{_e(path)}[/]"]
    here = per_file.findings.get(path, [])
    for f in by_severity([f for f in here if not f.waived]) + by_severity([f for f in here if f.waived]):
        out.extend(_finding_lines(f))
    for c in per_file.components.get(path, ()):
        vendor = f"{c.vendor} " if c.vendor else ""
        note = naming_note(c)
        out.append(f"  [green]component[/] {_e(vendor)}{_e(c.name)} {_e(version_label(c, '(version unknown)'))} "
                   f"({_e(c.kind.value)}{_e('; ' + note if note else '')}), license {_e(c.license or 'unknown')}")
        if c.kind in GPU_LAYER_KINDS:  # a layer: how sure, and what in this file says so (docs/layers.md)
            out.append(f"    confidence {_e(c.confidence.value if c.confidence is not None else 'unknown')}")
            out.extend(f"    evidence: {_e(e[len(path) + 2:])}" for e in c.evidence if e.startswith(path + ": "))
    for row in per_file.device.get(path, ()):
        arches = "; ".join(f"{kind} {' '.join(archs)}" for kind, archs in row.kinds)
        out.append(f"  [magenta]device code[/] toolkit {_e(row.toolkit)}: {_e(arches)}")
    for d in per_file.needs.get(path, ()):
        where = f"shipped at {', '.join(d.shipped)}" if d.shipped else "not shipped"
        out.append(f"  [blue]needs[/] {_e(d.needs)} ({_e(d.vendor)} {_e(d.component)}, {_e(where)})")
    return out


def _tail_lines(inventory: Inventory) -> list[str]:
    out: list[str] = []
    if inventory.special_files:
        out.append("")
        out.append(f"Special files ({len(inventory.special_files)}, not followed or opened):")
        for special in inventory.special_files:
            extra = f" -> {special.target}" if special.target else ""
            note = f" ({special.note})" if special.note else ""
            out.append(f"  {special.kind.value:12} {_e(special.vpath)}{_e(extra)}{_e(note)}")
    if inventory.remarks:
        out.append("")
        out.extend(f"[dim]note: {_e(remark)}[/]" for remark in inventory.remarks)
    out.append("")
    if inventory.diagnostics:
        out.append(f"[bold red]INCOMPLETE[/]: {len(inventory.diagnostics)} inputs or parts could not be read:")
        for d in inventory.diagnostics:
            where = f" at {d.offset:#x}" if d.offset is not None else ""
            out.append(f"  {d.kind.value}: {_e(d.path)}{where}: {_e(d.message)}")
    else:
        out.append("Every input was read completely.")
    return out


def render(inventory: Inventory, findings: list[Finding] | None = None, *, color: bool = False) -> str:
    from rich.console import Console

    findings = findings or []
    out = _head_lines(inventory, findings)
    per_file = _PerFile.of(inventory, findings)
    for path in per_file.paths():
        out.extend(_file_lines(path, per_file))
    out.extend(_tail_lines(inventory))
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, color_system="standard" if color else None,
                      no_color=not color, highlight=False, emoji=False, width=100_000, soft_wrap=True)
    for line in out:
        console.print(line)
    return buffer.getvalue()
