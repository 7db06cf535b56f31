"""``licscan audit --format markdown``: a compact summary for ``$GITHUB_STEP_SUMMARY`` and PR comments.

Counts by severity, the top findings (most severe first), waived findings, the NVIDIA components table and the
scan's completeness. GitHub refuses a step summary over 1 MiB, so the output is kept under ``max_bytes`` (default
1,000,000 bytes): findings and components beyond what fits are left out, and the summary says how many and that
the JSON report has them all.
"""

from __future__ import annotations

from licscan import __version__
from licscan.escape import markdown, markdown_code
from licscan.findings import Finding, Verdict
from licscan.model import GPU_LAYER_KINDS, Inventory
from licscan.report._shared import (
    DISCLAIMER,
    active,
    by_severity,
    counts,
    is_nvidia,
    naming_note,
    rel,
    version_label,
    waived,
)

MAX_BYTES = 1_000_000
TOP_FINDINGS = 50
ICON = {"error": "🔴", "warning": "🟠", "note": "🔵"}


def cell(text: object) -> str:
    """Untrusted text as Markdown prose or a table cell (licscan.escape.markdown: shown literally, one line)."""
    return markdown("" if text is None else text)


def code(text: object, table: bool = False) -> str:
    """Untrusted text as a code span (licscan.escape.markdown_code)."""
    return markdown_code("" if text is None else text, table=table)


def _finding(f: Finding) -> list[str]:
    clause = f.clause
    verdict = "" if f.verdict is Verdict.VIOLATION else f" ({f.verdict.value})"
    lines = [f"- {ICON.get(f.severity.value, '')} **{f.severity.value.upper()}** {code(f.rule)}{verdict} in "
             f"{code(f.path)}: {cell(f.title or '')}",
             f"  {cell(f.message)}"]
    if clause:
        lines.append(f"  > {cell(clause.text)}  ")
        lines.append(f"  > — {cell(clause.document)} {cell(clause.section)} (text of {cell(clause.date)}{cell(clause.stand_in)})")
    if f.remediation:
        lines.append(f"  *Fix:* {cell(f.remediation)} (fingerprint {code(f.fingerprint)})")
    return lines


def _components(inventory: Inventory, limit: int | None) -> tuple[list[str], int]:
    nvidia = [c for c in inventory.components if is_nvidia(c)]
    other = [c for c in inventory.components if not is_nvidia(c) and c.kind in GPU_LAYER_KINDS]
    rows = nvidia + other
    shown = rows if limit is None else rows[:limit]
    lines = ["| Component | Vendor | Kind | Version | Licence | Where |", "|---|---|---|---|---|---|"]
    for c in shown:
        where = c.paths[0] + (f" (+{len(c.paths) - 1} more)" if len(c.paths) > 1 else "")
        kind = c.kind.value
        if c.kind in GPU_LAYER_KINDS and c.confidence is not None:
            kind += f" ({c.confidence.value} confidence)"
        if naming_note(c):
            kind += f" ({naming_note(c)})"
        lines.append(f"| {cell(c.name)} | {cell(c.vendor)} | {cell(kind)} | {cell(version_label(c, 'unknown'))} "
                     f"| {cell(c.license or 'unknown')} | {code(where, table=True)} |")
    if not rows:
        lines = ["No NVIDIA or GPU-runtime components were found."]
    return lines, len(rows) - len(shown)


def render(inventory: Inventory, findings: list[Finding] | None = None, *, max_bytes: int = MAX_BYTES,
           top: int = TOP_FINDINGS) -> str:
    findings = findings or []
    live = by_severity(active(findings))
    limit_findings, limit_components = min(top, len(live)), None
    while True:
        text = _render(inventory, findings, live, limit_findings, limit_components)
        if len(text.encode("utf-8")) <= max_bytes:
            return text
        if limit_findings > 0:
            limit_findings //= 2
        elif limit_components is None or limit_components > 0:
            limit_components = 20 if limit_components is None else limit_components // 2
        else:
            cut = text.encode("utf-8")[:max_bytes - 200].decode("utf-8", "ignore")
            return cut + "\n\n**Truncated**: this summary was cut to stay under GitHub's 1 MiB step-summary limit; " \
                         "the JSON report has everything.\n"


def _render(inventory: Inventory, findings: list[Finding], live: list[Finding], limit_findings: int,
            limit_components: int | None) -> str:
    c = counts(findings)
    s = inventory.summary
    failed = bool(live) and any(f.severity.value == "error" for f in live)
    status = "❌ findings at error level" if failed else ("⚠️ findings below error level" if live else "✅ no findings")
    lines = [f"## licscan audit: {status}", "",
             f"{s.files} files ({s.bytes:,} bytes) in {', '.join(code(rel(p) or p) for p in inventory.inputs)}"
             f"; licscan {__version__}." + ("" if inventory.complete else
                                              f" **Scan incomplete**: {len(inventory.diagnostics)} inputs or parts "
                                              "could not be read."), "",
             f"_{DISCLAIMER}_", "",
             "| Severity | Findings |", "|---|---|"]
    lines += [f"| {ICON[k]} {k} | {n} |" for k, n in c.items()]
    lines.append(f"| waived | {len(waived(findings))} |")
    lines += ["", f"### Findings ({len(live)})", ""]
    if not live:
        lines.append("None.")
    for f in live[:limit_findings]:
        lines += _finding(f)
    if len(live) > limit_findings:
        lines += ["", f"**Truncated**: {len(live) - limit_findings} more findings are not shown here (GitHub's "
                      "1 MiB step-summary limit); the JSON or SARIF report has them all."]
    done = waived(findings)
    if done:
        lines += ["", f"### Waived ({len(done)})", "", "| Rule | Path | Reason | Expires |", "|---|---|---|---|"]
        shown = done if len(live) <= limit_findings else done[:limit_findings]
        for f in shown:
            w = f.waiver
            lines.append(f"| {code(f.rule, table=True)} | {code(f.path, table=True)} | {cell(w.reason if w else '')} "
                         f"| {cell((w.expires if w else None) or 'never')} |")
        if len(shown) < len(done):
            lines += ["", f"**Truncated**: {len(done) - len(shown)} more waived findings are not shown."]
    table, hidden = _components(inventory, limit_components)
    lines += ["", "### NVIDIA and GPU-runtime components", ""] + table
    if hidden:
        lines += ["", f"**Truncated**: {hidden} more components are not shown; see the JSON report."]
    lines.append("")
    return "\n".join(lines) + "\n"
