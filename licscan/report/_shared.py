"""Helpers the audit renderers share (SARIF, Markdown, HTML, text): no judging, only arranging facts and findings."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from licscan.findings import Finding, Severity, Verdict
from licscan.vpath import chain, outer  # noqa: F401 (renderers import them from here)

SEVERITIES = tuple(s.value for s in sorted(Severity, reverse=True))  # error, warning, note
#: Every audit report says this once (text, JSON, SARIF, Markdown, HTML).
DISCLAIMER = ("An engineering reading of the licence texts, not legal advice: each finding quotes the text that "
              "governs the part and says whether it is a violation, a review or undetermined (docs/licenses.md).")


def generated_at(environ=None) -> datetime:
    """SOURCE_DATE_EPOCH when set (reproducible output), else now; UTC, whole seconds."""
    from licscan import clock

    return clock.now(environ)


def rel(path: str | None) -> str | None:
    """A path under the current folder as a relative one (reports read the same on every checkout)."""
    if not path or not os.path.isabs(path):
        return path
    try:
        cwd = os.getcwd()
    except OSError:
        return path
    if path == cwd:
        return "."
    if path.startswith(cwd.rstrip("/") + "/"):
        return path[len(cwd.rstrip("/")) + 1:]
    return path


def active(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if not f.waived]


def waived(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.waived]


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    out = {s: 0 for s in SEVERITIES}
    for f in active(findings):
        out[f.severity.value] += 1
    return out


def by_severity(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Most severe first, then violations before undetermined, then by path and rule (stable)."""
    return sorted(findings, key=lambda f: (-f.severity.rank, f.verdict is not Verdict.VIOLATION,
                                           f.path, f.rule, f.fingerprint))


def is_nvidia(component) -> bool:
    return (component.vendor or "") == "NVIDIA"


def toolkit_label(toolkit) -> str:
    from licscan.report.inspect_text import toolkit_text

    return toolkit_text(toolkit)


def arch_key(arch: str) -> tuple:
    digits = "".join(ch for ch in arch if ch.isdigit())
    return (arch.split("_", 1)[0], int(digits) if digits else 0, arch)


def device_code_by_file(inventory) -> dict[str, list[dict[str, Any]]]:
    """Per file: one row per toolkit, with the cubin (SASS) and PTX architectures it built, sorted."""
    files: dict[str, dict[str, dict[str, set]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))
    for image in inventory.device_code:
        files[image.path][toolkit_label(image.toolkit)][image.kind.value].add(image.arch_full)
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(files):
        rows = []
        for toolkit in sorted(files[path]):
            kinds = files[path][toolkit]
            rows.append({"toolkit": toolkit,
                         "kinds": {k: sorted(v, key=arch_key) for k, v in sorted(kinds.items())},
                         "images": sum(1 for i in inventory.device_code if i.path == path
                                       and toolkit_label(i.toolkit) == toolkit)})
        out[path] = rows
    return out


def rule_doc_command(rule_id: str) -> str:
    return f"licscan rules show {rule_id}"
