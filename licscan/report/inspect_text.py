"""``licscan inspect`` for people: the file, its ELF facts, one line per device image, producers, diagnostics."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from licscan.escape import terminal as _t
from licscan.model import ComponentMatch, DeviceImage, FileFacts, ToolkitRange
from licscan.report.inspect_json import producers


def toolkit_text(tk: ToolkitRange | None) -> str:
    if tk is None or tk.is_unknown:
        return "unknown"
    if tk.exact:
        return tk.exact
    if tk.low and tk.high:
        return tk.low if tk.low == tk.high else f"{tk.low}..{tk.high}"
    if tk.low:
        return f">={tk.low}"
    return f"<={tk.high}"


def _row(index: int, image: DeviceImage) -> list[str]:
    flags = []
    if image.debug:
        flags.append("debug")
    if image.toolkit is not None and image.toolkit.conflicts:
        flags.append("toolkit-conflict")
    if image.identifier:
        flags.append(f"ident={_t(image.identifier)}")
    if image.ptxas_options:
        flags.append(f"ptxas='{_t(image.ptxas_options.strip())}'")
    producer = image.producer.value if image.producer else ("" if image.kind.value == "ptx" else "-")
    return [str(index), image.container.value, image.kind.value, _t(image.arch_full), _t(image.ptx_isa or "-"),
            _t(toolkit_text(image.toolkit)), image.compression.value, str(image.size), producer, " ".join(flags)]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


_HEADERS = ["#", "container", "kind", "arch", "ISA", "toolkit", "compression", "size", "producer", ""]


def _labelled(label: str, values: Sequence[str], sep: str = ", ") -> list[str]:
    """One ``  LABEL    value, value`` line, or none when there is no value."""
    return [f"  {label:<8} {_t(sep.join(values))}"] if values else []


def _host_lines(facts: FileFacts) -> list[str]:
    lines: list[str] = []
    if facts.elf is not None:
        elf = facts.elf
        lines.append(f"  ELF      {_t(elf.elf_type)} {_t(elf.machine)}{'' if elf.has_symtab else ', stripped'}")
        lines += _labelled("SONAME", [elf.soname] if elf.soname else [])
        lines += _labelled("NEEDED", elf.needed) + _labelled("RUNPATH", elf.runpath, ":")
        lines += _labelled("RPATH", elf.rpath, ":")
    if facts.pe is not None:
        pe = facts.pe
        lines.append(f"  {'PE' if facts.format.value == 'pe' else 'COFF':<8} {_t(pe.machine)}")
        lines += _labelled("IMPORTS", pe.imports) + _labelled("DELAYED", pe.delay_imports)
        lines += _labelled("EXPORTS", [f"as {pe.export_name}"] if pe.export_name else [])
        info = pe.version_info
        if info is not None:
            lines += _labelled("VERSION", [f"{key} {value!r}" for key, value in (
                ("OriginalFilename", info.original_filename), ("InternalName", info.internal_name),
                ("FileDescription", info.file_description), ("FileVersion", info.file_version)) if value], ", ")
    if facts.ptx_header is not None and facts.ptx_header.version:
        header = facts.ptx_header
        lines.append(f"  PTX      {_t(header.generator or '')}, CUDA {_t(header.version)}"
                     + (f", CL-{_t(header.build_id)}" if header.build_id else ""))
    if facts.members:
        lines.append(f"  archive  {len(facts.members)} members")
    return lines


def _image_lines(facts: FileFacts, images: Sequence[DeviceImage]) -> list[str]:
    """The device-code count, toolkit conflicts, then one table of images per host file (archive members apart)."""
    cubins = sum(1 for i in images if i.kind.value == "cubin")
    ptx_count = sum(1 for i in images if i.kind.value == "ptx")
    others = len(images) - cubins - ptx_count
    lines = [f"  device code: {len(images)} images ({cubins} cubin, {ptx_count} ptx"
             + (f", {others} AMD/SPIR-V" if others else "") + ")"]
    conflicts = sorted({c for i in images if i.toolkit is not None for c in i.toolkit.conflicts})
    lines += [f"  toolkit conflict: {_t(conflict)}" for conflict in conflicts]
    for path, group in itertools.groupby(enumerate(images, 1), key=lambda pair: pair[1].path):
        if path != facts.path:
            lines.append(f"  {_t(path)}")
        lines.extend(_table([_HEADERS] + [_row(n, image) for n, image in group]))
    return lines


def _linked_lines(linked: Sequence[ComponentMatch]) -> list[str]:
    """One ``LINKED`` line per NVIDIA library linked into the file: its release and the static library it came
    from, as an audit names them (rules/catalog/nvidia.yaml ``static``)."""
    lines = []
    for part in linked:
        release = part.version or part.version_range or "version unknown"
        source = f" ({part.version_source.value})" if part.version_source is not None else ""
        lines.append(f"  {'LINKED':<8} {_t(part.vendor)} {_t(part.display)} {_t(release)}{source} from "
                     f"{_t(part.linked_from or '')}")
    return lines


def render(facts: FileFacts, linked: Sequence[ComponentMatch] = ()) -> str:
    lines = [f"{_t(facts.path)}: {facts.format.value}, {facts.size} bytes"] + _host_lines(facts)
    lines += _linked_lines(linked)
    images = facts.all_images()
    lines += _image_lines(facts, images)
    made_by = producers(images)
    if made_by:
        lines.append("  producers: " + ", ".join(f"{_t(p['tool'])} {_t(p['version'] or '?')} ({p['images']})"
                                               for p in made_by))
    for remark in facts.all_remarks():
        lines.append(f"  note: {_t(remark)}")
    diagnostics = facts.all_diagnostics()
    if diagnostics:
        lines.append(f"  diagnostics: {len(diagnostics)}")
        for diag in diagnostics:
            where = f" at {diag.offset:#x}" if diag.offset is not None else ""
            lines.append(f"    {diag.kind.value}{where}: {_t(diag.message)}")
    return "\n".join(lines) + "\n"
