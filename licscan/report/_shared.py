"""Helpers the audit renderers share (SARIF, Markdown, HTML, text): no judging, only arranging facts and findings."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from licscan.findings import Finding, Severity, Verdict
from licscan.model import Component, Inventory, ToolkitRange

SEVERITIES = tuple(s.value for s in sorted(Severity, reverse=True))  # error, warning, note
#: Every audit report says this once (text, JSON, SARIF, Markdown, HTML).
DISCLAIMER = ("An engineering reading of the licence texts, not legal advice: each finding quotes the text that "
              "governs the part and says whether it is a violation, a review or undetermined (docs/licenses.md).")


def generated_at(environ: Mapping[str, str] | None = None) -> datetime:
    """SOURCE_DATE_EPOCH when set (reproducible output), else now; UTC, whole seconds."""
    from licscan import clock

    return clock.now(environ)


#: How many times :func:`rel` looked at the current folder (an absolute path): a report rendered without it reads the
#: same in every folder, and the cache keeps it for every folder (licscan.audit, docs/cache.md).
cwd_reads = 0


def rel(path: str | None) -> str | None:
    """A path under the current folder as a relative one (reports read the same on every checkout)."""
    global cwd_reads
    if not path or not os.path.isabs(path):
        return path
    cwd_reads += 1
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


def by_severity(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then violations before undetermined, then by path and rule (stable)."""
    return sorted(findings, key=lambda f: (-f.severity.rank, f.verdict is not Verdict.VIOLATION,
                                           f.path, f.rule, f.fingerprint))


def is_nvidia(component: Component) -> bool:
    return (component.vendor or "") == "NVIDIA"


def version_label(component: Component, unknown: str) -> str:
    """The version a report shows: the component's; for a part linked into another binary, which has no file of its
    own to state one, the range its evidence gives ("12.9.x"); else ``unknown``."""
    if component.version:
        return component.version
    if component.linked_from and component.version_ranges:
        return component.version_ranges[0]
    return unknown


def naming_note(component: Component) -> str:
    """How the part is in its file, when that is not as a file of its own name: "linked from libcudart_static.a",
    "declared name cudart64_12.dll" ("" otherwise)."""
    notes = [f"linked from {', '.join(component.linked_from)}"] if component.linked_from else []
    notes += [f"declared name {', '.join(component.declared_names)}"] if component.declared_names else []
    return "; ".join(notes)


def toolkit_label(toolkit: ToolkitRange | None) -> str:
    from licscan.report.inspect_text import toolkit_text

    return toolkit_text(toolkit)


def arch_key(arch: str) -> tuple[str, int, str]:
    digits = "".join(ch for ch in arch if ch.isdigit())
    return (arch.split("_", 1)[0], int(digits) if digits else 0, arch)


@dataclass(frozen=True)
class ToolkitRow:
    """The device code one file holds from one toolkit: per image kind (``cubin``, ``ptx``...), its
    architectures, sorted; and how many images."""

    toolkit: str
    kinds: tuple[tuple[str, tuple[str, ...]], ...]
    images: int


def device_code_by_file(inventory: Inventory) -> dict[str, list[ToolkitRow]]:
    """Per file: one row per toolkit, with the cubin (SASS) and PTX architectures it built, sorted."""
    files: dict[str, dict[str, dict[str, set[str]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))
    images: Counter[tuple[str, str]] = Counter()
    for image in inventory.device_code:
        label = toolkit_label(image.toolkit)
        files[image.path][label][image.kind.value].add(image.arch_full)
        images[image.path, label] += 1
    out: dict[str, list[ToolkitRow]] = {}
    for path in sorted(files):
        out[path] = [ToolkitRow(toolkit, tuple((k, tuple(sorted(v, key=arch_key)))
                                               for k, v in sorted(files[path][toolkit].items())),
                                images[path, toolkit])
                     for toolkit in sorted(files[path])]
    return out


def rule_doc_command(rule_id: str) -> str:
    return f"licscan rules show {rule_id}"
