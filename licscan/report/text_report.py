"""``licscan audit`` for people (the default on a terminal): a verdict line, then one block per file with its
findings, the components named in it and its device code, then what could not be read.

Colour (rich) only when asked for: the CLI asks when standard output is a terminal and NO_COLOR is not set. The
plain rendering is what tests and pipes see; it is the same text without the styles.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from typing import Any

from licscan.escape import terminal
from licscan.findings import Finding, Verdict
from licscan.model import GPU_LAYER_KINDS, Inventory
from licscan.report._shared import DISCLAIMER, active, by_severity, device_code_by_file, rel
from licscan.report.progress import is_terminal

STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def use_color(stream, environ=None) -> bool:
    """Colour on a terminal only, never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    environ = environ if environ is not None else os.environ
    return is_terminal(stream) and not environ.get("NO_COLOR") and environ.get("TERM", "") != "dumb"


def _e(text: Any) -> str:
    """Untrusted text for the terminal: controls made visible (licscan.escape.terminal), then rich markup escaped."""
    from rich.markup import escape

    return escape(terminal(text))


def _finding_lines(f: dict[str, Any]) -> list[str]:
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
        date = f", text of {clause.date}" if clause.date else ""
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


def render(inventory: Inventory, findings: list[Finding] | None = None, *, color: bool = False) -> str:
    from rich.console import Console

    s = inventory.summary
    findings = findings or []
    live = active(findings)
    out: list[str] = [f"[bold]licscan audit[/]: {s.files} files, {s.bytes} bytes in "
                      f"{_e(', '.join(rel(p) or p for p in inventory.inputs))}"]
    counts = {k: sum(1 for f in live if f.severity.value == k) for k in ("error", "warning", "note")}
    waived_n = len(findings) - len(live)
    summary = ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items())
    summary += f"; {waived_n} waived" if waived_n else ""
    out.append(f"Findings: {summary}" if findings else "Findings: none")
    out.append(_e(DISCLAIMER))

    per_file: dict[str, dict[str, list]] = defaultdict(lambda: {"findings": [], "components": []})
    for f in findings:
        per_file[f.path]["findings"].append(f)
    for c in inventory.components:
        for path in c.paths:
            per_file[path]["components"].append(c)
    device = device_code_by_file(inventory)
    for path in device:
        per_file[path]
    needs: dict[str, list] = defaultdict(list)
    for d in inventory.dependencies:
        needs[d.path].append(d)
        per_file[d.path]

    def order(path: str):
        live_here = [f for f in per_file[path]["findings"] if not f.waived]
        rank = min((-f.severity.rank for f in live_here), default=9)
        return (rank, path)

    for path in sorted(per_file, key=order):
        entry = per_file[path]
        out.append("")
        out.append(f"[bold underline]{_e(path)}[/]")
        for f in by_severity([f for f in entry["findings"] if not f.waived]) + \
                by_severity([f for f in entry["findings"] if f.waived]):
            out.extend(_finding_lines(f))
        for c in entry["components"]:
            vendor = f"{c.vendor} " if c.vendor else ""
            out.append(f"  [green]component[/] {_e(vendor)}{_e(c.name)} {_e(c.version or '(version unknown)')} "
                       f"({_e(c.kind.value)}), license {_e(c.license or 'unknown')}")
            if c.kind in GPU_LAYER_KINDS:  # a layer: how sure, and what in this file says so (docs/layers.md)
                out.append(f"    confidence {_e(dict(c.properties).get('confidence', 'unknown'))}")
                out.extend(f"    evidence: {_e(e[len(path) + 2:])}" for e in c.evidence if e.startswith(path + ": "))
        for row in device.get(path, ()):
            arches = "; ".join(f"{kind} {' '.join(archs)}" for kind, archs in row["kinds"].items())
            out.append(f"  [magenta]device code[/] toolkit {_e(row['toolkit'])}: {_e(arches)}")
        for d in needs.get(path, ()):
            where = f"shipped at {', '.join(d.shipped)}" if d.shipped else "not shipped"
            out.append(f"  [blue]needs[/] {_e(d.needs)} ({_e(d.vendor)} {_e(d.component)}, {_e(where)})")

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

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, color_system="standard" if color else None,
                      no_color=not color, highlight=False, emoji=False, width=100_000, soft_wrap=True)
    for line in out:
        console.print(line)
    return buffer.getvalue()
