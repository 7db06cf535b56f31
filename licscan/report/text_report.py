"""``licscan audit`` for people: the NVIDIA and GPU parts found, device code per file, and what could not be read."""

from __future__ import annotations

from collections import Counter, defaultdict

from licscan.model import Inventory
from licscan.report.inspect_text import toolkit_text


def render(inventory: Inventory, findings: list[dict] | None = None) -> str:
    s = inventory.summary
    findings = findings or []
    lines = [f"licscan audit: {s.files} files, {s.bytes} bytes in {', '.join(inventory.inputs)}"]
    active = [f for f in findings if not f.get("waived")]
    lines.append("")
    lines.append(f"Findings ({len(active)}" + (f", {len(findings) - len(active)} waived" if len(active) < len(findings)
                                                 else "") + "):")
    if not findings:
        lines.append("  none")
    for f in findings:
        state = "waived " if f.get("waived") else ""
        verdict = "" if f["verdict"] == "violation" else f" ({f['verdict']})"
        lines.append(f"  {state}{f['severity'].upper()} {f['rule']}{verdict}: {f['path']}")
        lines.append(f"      {f['message']}")
        clause = f.get("clause")
        if clause:
            date = f", text of {clause['date']}" if clause.get("date") else ""
            lines.append(f"      {clause['document']} {clause['section']}{date}")
    lines.append("")
    lines.append(f"Components ({len(inventory.components)}):")
    if not inventory.components:
        lines.append("  none")
    for c in inventory.components:
        where = c.paths[0] + (f" (+{len(c.paths) - 1} more)" if len(c.paths) > 1 else "")
        vendor = c.vendor + " " if c.vendor else ""
        lines.append(f"  {c.kind.value:22} {vendor}{c.name} {c.version or '(version unknown)'}"
                     f"  license: {c.license or 'unknown'}")
        lines.append(f"  {'':22} {where}")
    lines.append("")
    by_path: dict[str, list] = defaultdict(list)
    for image in inventory.device_code:
        by_path[image.path].append(image)
    lines.append(f"Device code ({len(inventory.device_code)} images in {len(by_path)} files):")
    for path, images in by_path.items():
        kinds = Counter(i.kind.value for i in images)
        toolkits = sorted({toolkit_text(i.toolkit) for i in images})
        arches = sorted({i.arch_full for i in images}, key=lambda a: (len(a), a))
        lines.append(f"  {path}")
        lines.append(f"      {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}; arch {' '.join(arches)};"
                     f" toolkit {', '.join(toolkits)}")
    if inventory.special_files:
        lines.append("")
        lines.append(f"Special files ({len(inventory.special_files)}, not followed or opened):")
        for special in inventory.special_files:
            extra = f" -> {special.target}" if special.target else ""
            note = f" ({special.note})" if special.note else ""
            lines.append(f"  {special.kind.value:12} {special.vpath}{extra}{note}")
    for remark in inventory.remarks:
        lines.append(f"note: {remark}")
    lines.append("")
    if inventory.diagnostics:
        lines.append(f"INCOMPLETE: {len(inventory.diagnostics)} inputs or parts could not be read:")
        for d in inventory.diagnostics:
            where = f" at {d.offset:#x}" if d.offset is not None else ""
            lines.append(f"  {d.kind.value}: {d.path}{where}: {d.message}")
    else:
        lines.append("Every input was read completely.")
    return "\n".join(lines) + "\n"
