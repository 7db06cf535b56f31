"""Translation-layer and non-NVIDIA GPU runtime facts, from the signals in ``rules/catalog/translation-layers.yaml``
(translation-layers.md Table 1b). Each signal carries its confidence as data.

"CUDA-named SONAME or file name + HIP/ROCm ``DT_NEEDED``" is the precise structural signal (translation-layers.md
§12): a ``libcuda.so.1`` that imports ``libamdhip64.so`` is a drop-in replacement, not NVIDIA's driver. Such matches
carry the property ``("replaces", "cuda-named")`` so that :func:`licscan.identify.catalog.identify` drops the NVIDIA
name match for that file.

String probes are literal ``find`` calls, bounded by the limits in the YAML file (name-independent probes read
files up to ``limits.strings`` bytes, probes restricted to CUDA-named files up to ``limits.named``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from licscan.binary import magic
from licscan.binary.probe import find, window
from licscan.knowledge import catalog_table
from licscan.model import ComponentKind, ComponentMatch, FileFacts, FileFormat
from licscan.vpath import basename

_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class Signal:
    id: str
    layer: str
    confidence: str
    kind: str
    evidence: str
    name: re.Pattern | None = None
    path: re.Pattern | None = None
    needed: re.Pattern | None = None
    unless_needed: re.Pattern | None = None  # a needed signal does not fire when this import is present too
    runpath: re.Pattern | None = None
    cuda_named: bool = False
    any_of: tuple[bytes, ...] = ()
    all_of: tuple[bytes, ...] = ()
    none_of: tuple[bytes, ...] = ()
    magic: bytes | None = None
    formats: tuple[str, ...] = ("elf", "pe")
    replaces: bool = False  # proves the file is a drop-in for the NVIDIA file it is named like


@dataclass(frozen=True)
class Layer:
    id: str
    display: str
    vendor: str
    kind: ComponentKind
    license: str | None


@dataclass(frozen=True)
class SignalTable:
    layers: dict[str, Layer]
    signals: tuple[Signal, ...]
    cuda_named: re.Pattern
    strings_limit: int
    named_limit: int
    magic_window: int


def _lit(items) -> tuple[bytes, ...]:
    return tuple(str(i).encode("latin-1") for i in items or ())


@functools.cache
def load_signals() -> SignalTable:
    data = catalog_table("translation-layers")
    named_regexes = {k: v for k, v in data.items() if isinstance(v, str)}
    layers = {k: Layer(k, v["display"], v["vendor"], ComponentKind(v["kind"]), v.get("license"))
              for k, v in data["layers"].items()}
    signals = []
    for s in data["signals"]:
        def rx(key, flags=0):
            value = s.get(key)
            if value is None:
                return None
            return re.compile(named_regexes.get(value, value), flags)
        if s["layer"] not in layers or s["confidence"] not in _RANK:
            raise ValueError(f"rules/catalog/translation-layers.yaml: bad signal {s.get('id')}")
        signals.append(Signal(
            id=s["id"], layer=s["layer"], confidence=s["confidence"], kind=s["kind"], evidence=s["evidence"],
            name=rx("name", re.IGNORECASE), path=rx("path"), needed=rx("needed"), unless_needed=rx("unless_needed"), runpath=rx("runpath"),
            cuda_named=bool(s.get("cuda_named")), any_of=_lit(s.get("any_of")), all_of=_lit(s.get("all_of")),
            none_of=_lit(s.get("none_of")), magic=s["magic"].encode("latin-1") if s.get("magic") else None,
            formats=tuple(s.get("formats") or ("elf", "pe")), replaces=bool(s.get("replaces"))))
    limits = data["limits"]
    return SignalTable(layers, tuple(signals), re.compile(data["cuda_named"]), int(limits["strings"]),
                       int(limits["named"]), int(limits["magic_window"]))


def _format(facts: FileFacts | None, data) -> str:
    if facts is not None and facts.format is not FileFormat.UNKNOWN:
        return {FileFormat.ELF: "elf", FileFormat.PE: "pe"}.get(facts.format, facts.format.value)
    head = window(data, 0, 4) if data is not None else b""
    return "elf" if head == magic.ELF else "pe" if head[:2] == magic.MZ else "unknown"


def detect(vpath: str, facts: FileFacts | None, data: Any = None) -> tuple[ComponentMatch, ...]:
    """Translation-layer / non-NVIDIA GPU runtime matches for one file, one per layer (highest confidence wins,
    every signal that fired is evidence)."""
    table = load_signals()
    name = basename(vpath)
    elf = facts.elf if facts is not None else None
    size = facts.size if facts is not None else (len(data) if data is not None else -1)  # -1: unknown
    fmt = _format(facts, data)
    names = [name] + ([elf.soname] if elf is not None and elf.soname else [])
    cuda_named = any(table.cuda_named.fullmatch(n) for n in names)
    fired: dict[str, list[tuple[Signal, str]]] = {}
    for sig in table.signals:
        if sig.cuda_named and not cuda_named:
            continue
        hit = _test(sig, table, vpath, name, elf, fmt, size, data, cuda_named)
        if hit is not None:
            fired.setdefault(sig.layer, []).append((sig, hit))
    out = []
    for layer_id, hits in sorted(fired.items()):
        layer = table.layers[layer_id]
        best = max(hits, key=lambda h: _RANK[h[0].confidence])[0].confidence
        replaces = any(s.replaces for s, _ in hits)
        props = [("signals", ",".join(s.id for s, _ in hits))]
        if replaces:
            props.append(("replaces", "cuda-named"))
        if layer.kind is ComponentKind.NON_NVIDIA_GPU_RUNTIME and all(s.kind == "needed" for s, _ in hits):
            props.append(("relation", "imports"))  # the file uses the runtime; it is not the runtime
        evidence = tuple(f"{s.evidence} [{s.id}, {s.confidence}]: {detail}" for s, detail in hits)
        out.append(ComponentMatch(
            name=layer.id, display=layer.display, kind=layer.kind, vendor=layer.vendor, version=None,
            version_source=None, license=layer.license, evidence=evidence, confidence=best,
            properties=tuple(props)))
    return tuple(out)


def _test(sig: Signal, table: SignalTable, vpath: str, name: str, elf, fmt: str, size: int, data,
          cuda_named: bool) -> str | None:
    kind = sig.kind
    if kind == "file-name":
        return f"file name {name!r}" if sig.name.fullmatch(name) else None
    if kind == "path":
        m = sig.path.search(vpath)
        return f"path {vpath!r}" if m else None
    if kind == "empty-file":
        return f"zero-byte {name!r}" if size == 0 and sig.name.fullmatch(name) else None
    if kind == "needed":
        if elf is None:
            return None
        hits = [n for n in elf.needed if sig.needed.search(n)]
        if sig.unless_needed is not None and any(sig.unless_needed.search(n) for n in elf.needed):
            return None
        return f"DT_NEEDED {', '.join(hits)}" if hits else None
    if kind == "runpath":
        if elf is None:
            return None
        hits = [p for p in elf.runpath + elf.rpath if sig.runpath.search(p)]
        return f"RUNPATH {':'.join(hits)}" if hits else None
    if kind == "soname-missing":
        if elf is None or elf.elf_type != "ET_DYN" or elf.soname or not sig.name.fullmatch(name):
            return None
        return f"{name!r} has no DT_SONAME"
    if data is None:
        return None
    if kind == "magic":
        if window(data, 0, len(sig.magic)) != sig.magic:
            return None
        end = min(size, table.magic_window)
        if all(find(data, lit, 0, end) >= 0 for lit in sig.all_of):
            return f"magic {sig.magic!r} and {', '.join(repr(x.decode('latin-1')) for x in sig.all_of)} in the first {end} bytes"
        return None
    if kind == "strings":
        if fmt not in sig.formats:
            return None
        if sig.name is not None and not sig.name.fullmatch(name):
            return None
        limit = table.named_limit if (sig.cuda_named or sig.name is not None) else table.strings_limit
        if size > limit:
            return None
        found = []
        for lit in sig.all_of:
            at = find(data, lit)
            if at < 0:
                return None
            found.append(f"{lit.decode('latin-1')!r} at {at:#x}")
        for lit in sig.none_of:
            if find(data, lit) >= 0:
                return None
        if sig.any_of:
            for lit in sig.any_of:
                at = find(data, lit)
                if at >= 0:
                    found.append(f"{lit.decode('latin-1')!r} at {at:#x}")
                    break
            else:
                return None
        absent = "; absent: " + ", ".join(repr(x.decode("latin-1")) for x in sig.none_of) if sig.none_of else ""
        return ", ".join(found) + absent
    raise ValueError(f"unknown signal kind {kind!r} ({sig.id})")


__all__ = ["Layer", "Signal", "SignalTable", "detect", "load_signals"]
