"""Device-code facts: one fact per NVIDIA (or other vendor's) device image of a report document, with what the
images of one file share made once per file, vendor and toolkit (a library holds thousands: libtorch_cuda.so
2,975). Which licence governs device code: ``DocumentReader.device_governing`` (licscan/rules/facts.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from licscan.model import ToolkitRange
from licscan.rules import governing as gov
from licscan.rules.fact import Fact, Json, dist_fields
from licscan.vpath import basename

if TYPE_CHECKING:
    from licscan.rules.facts import DocumentReader

DEVICE_VENDORS = {"cubin": "NVIDIA", "ptx": "NVIDIA", "hsaco": "AMD", "spirv": None}


def device_summary(entries: list[Json]) -> str:
    ptx = sorted({e.get("arch", "?") for e in entries if e.get("kind") == "ptx"})
    sass = sorted({e.get("arch", "?") for e in entries if e.get("kind") == "cubin"})
    parts = []
    if ptx:
        parts.append("PTX " + ", ".join(ptx))
    if sass:
        parts.append("SASS " + ", ".join(sass))
    return "; ".join(parts) or "no NVIDIA device code"


@functools.lru_cache(maxsize=1024)
def _range(low: Any, high: Any, exact: Any) -> ToolkitRange:
    return ToolkitRange.from_json({"min": low, "max": high, "exact": exact})


def device_range(entry: Json) -> ToolkitRange:
    """The toolkit of a device image, made once per distinct {min, max, exact} (evidence is not part of it)."""
    toolkit = entry.get("toolkit")
    if type(toolkit) is not dict:
        return ToolkitRange.from_json(toolkit)
    try:
        return _range(toolkit.get("min"), toolkit.get("max"), toolkit.get("exact"))
    except TypeError:  # an unhashable bound in a hand-made document: no bound (from_json)
        return ToolkitRange.from_json(toolkit)


def device_facts(doc: DocumentReader, skip: Callable[[str], bool]) -> Iterator[Fact]:
    by_path: dict[str, list[Json]] = {}
    for entry in doc.devices:
        by_path.setdefault(entry.get("path") or "", []).append(entry)
    # Made once per file, vendor and toolkit: what their images share (None: excluded; rng kept: its id stays).
    shared: dict[tuple[str, str | None, int], tuple[ToolkitRange, tuple[Json, Any, Any, str] | None]] = {}
    for entry in doc.devices:
        get = entry.get
        path: str = get("path") or ""
        rng, vendor = device_range(entry), DEVICE_VENDORS.get(get("kind") or "")
        found = shared.get((path, vendor, id(rng)))
        if found is None:
            found = shared[(path, vendor, id(rng))] = (rng, None if skip(path) else _device_shared(
                doc, path, rng, vendor, by_path[path]) + (rng.text,))
        if found[1] is None:
            continue
        tail, groups, by_policy, toolkit = found[1]
        fields = {k: get(k) for k in _IMAGE_FIELDS}
        fields.update(tail)
        compression = get("compression")
        evidence = (f"{get('kind')} {get('arch')} in {get('container')} "
                    f"(toolkit {toolkit}{', ' + compression if compression not in (None, 'none') else ''})",)
        yield Fact.of("device_code", path, fields, None, evidence, groups, rng, by_policy)


_IMAGE_FIELDS = ("path", "container", "kind", "arch", "ptx_isa", "compression", "size", "producer")


def _device_shared(doc: DocumentReader, path: str, rng: ToolkitRange, vendor: str | None,
                   same: list[Json]) -> tuple[Json, dict[str, str | None], dict[str, gov.Governing]]:
    dist, groups = doc.place(path, doc.named_at.get(path))
    tail: Json = {"basename": basename(path), "toolkit": rng, "vendor": vendor,
                  "ptx_in_file": any(e.get("kind") == "ptx" for e in same), "device_summary": device_summary(same),
                  "input": groups["input"]}
    tail.update(dist_fields(dist))
    by_policy, gov_fields = doc.device_governing(path, rng, vendor, groups["distribution"])
    tail.update(gov_fields)
    return tail, groups, by_policy
