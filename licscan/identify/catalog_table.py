"""The NVIDIA component catalog (``rules/catalog/nvidia.yaml``) compiled: each component's name patterns, expected
SONAME, version markers, tool banner and packaging (the schema is at the top of that file)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from licscan.knowledge import catalog_table
from licscan.model import ComponentKind


@dataclass(frozen=True)
class NamePattern:
    regex: re.Pattern[str]
    linux_stem: bool  # built from a `linux` stem: the SONAME check applies


@dataclass(frozen=True)
class Marker:
    """A version marker inside a file: ``literal``, then ``regex`` over the text after it (the bytes after the
    literal decoded with ``encoding``: latin-1, or utf-16-le for a PE image's version resource, searched in its
    ``.rsrc`` section); ``format``
    "dotted" (group ``version``), "prefix" (group ``version``, the first parts of the version only) or "cudart"
    (group ``v``: 12040 -> 12.4)."""

    literal: bytes
    regex: re.Pattern[str]
    format: str
    encoding: str = "latin-1"

    @property
    def resource(self) -> bool:
        """A marker of a PE image's version resource: searched in its ``.rsrc`` section only, not in the file."""
        return self.encoding == "utf-16-le"

    def text(self, tail: bytes) -> str:
        """The bytes after the literal as text (a trailing half of a UTF-16 code unit dropped)."""
        if self.encoding == "utf-16-le":
            tail = tail[: len(tail) // 2 * 2]
        return tail.decode(self.encoding, "replace")


@dataclass(frozen=True)
class VersionCode:
    """Machine code that stores a library's CUDART_VERSION: ``prefix``, the value as a little-endian 16-bit number,
    then ``suffix`` (the upper half of the 32-bit immediate and the code after it)."""

    prefix: bytes
    suffix: bytes


class StaticRelease(Enum):
    """Where the release of a library linked into a binary is read (``static.release`` of the catalog)."""

    CODE = "code"  # its version query's code (``version_code``), else the toolkit of the device code beside it
    BANNER = "banner"  # the CUDA release line of the file, when every such line in it states the same release
    MARKER = "marker"  # the entry's version markers in the file


@dataclass(frozen=True)
class Static:
    """How a library linked into another binary shows (``static`` of rules/catalog/nvidia.yaml): the name of the
    static library per host format (``elf``, ``pe``), the literal sets any one of which proves it is there, the
    literal without which its evidence is not searched (``gate``), and where its release is read (``release``)."""

    library: dict[str, str]
    evidence: tuple[tuple[bytes, ...], ...]
    version_code: tuple[VersionCode, ...] = ()
    gate: bytes | None = None
    release: StaticRelease = StaticRelease.CODE


MARKER_FORMATS = ("dotted", "prefix", "cudart")
MARKER_ENCODINGS = ("latin-1", "utf-16-le")


@dataclass(frozen=True)
class Entry:
    name: str
    display: str
    kind: ComponentKind
    license: str | None
    patterns: tuple[NamePattern, ...]
    soname: re.Pattern[str] | None
    name_version: str
    distributions: dict[str, tuple[str, ...]]
    markers: tuple[Marker, ...]
    banner: bytes | None
    kernel_module: bool
    executable: bool
    runpath: str | None  # "none": NVIDIA ships it without RUNPATH (verified)
    ships_symtab: bool
    embeds: tuple[str, ...] = ()  # tools whose banner this tool's bytes also hold (nvlink holds ptxas's)
    static: Static | None = None  # the library as it shows when linked into another binary


@dataclass(frozen=True)
class Catalog:
    entries: tuple[Entry, ...]
    release_banner: bytes
    copyright: bytes
    probe_limit: int
    kernel_licenses: dict[str, tuple[str, str]]
    any_name: re.Pattern[str]  # matches every name some entry's pattern matches (fewer names: a prefilter)

    def entry(self, name: str) -> Entry:
        return next(e for e in self.entries if e.name == name)


_VERSION = r"(?P<version>\d+(?:\.\d+)*)"


def _stem_patterns(stem: str) -> list[str]:
    return [
        rf"lib(?:{stem})\.so(?:\.{_VERSION})?",
        rf"lib(?:{stem})-(?P<graft>[0-9a-f]{{8}})\.so(?:\.{_VERSION})?",
        rf"lib(?:{stem})(?:_static(?:_nocallback)?)?\.a",
        rf"lib(?:{stem})(?:\.{_VERSION})?\.dylib",
    ]


def _marker(name: str, spec: Mapping[str, Any]) -> Marker:
    encoding, fmt = spec.get("encoding", "latin-1"), spec["format"]
    if encoding not in MARKER_ENCODINGS or fmt not in MARKER_FORMATS:
        raise ValueError(f"rules/catalog/nvidia.yaml: {name}: marker encoding {encoding!r} / format {fmt!r} unknown")
    return Marker(str(spec["literal"]).encode(encoding), re.compile(str(spec["regex"]), re.ASCII), fmt, encoding)


def _static(name: str, spec: Mapping[str, Any] | None) -> Static | None:
    if not spec:
        return None
    library = {str(k): str(v) for k, v in (spec.get("library") or {}).items()}
    evidence = tuple(tuple(str(lit).encode() for lit in group) for group in spec.get("evidence") or ())
    if not library or set(library) - {"elf", "pe"} or not evidence or not all(evidence):
        raise ValueError(f"rules/catalog/nvidia.yaml: {name}: static needs library {{elf, pe}} and evidence lists")
    code = tuple(VersionCode(bytes.fromhex(c["prefix"]), bytes.fromhex(c["suffix"]))
                 for c in spec.get("version_code") or ())
    gate = str(spec["gate"]).encode() if spec.get("gate") else None
    release = str(spec.get("release") or "code")
    if release not in {r.value for r in StaticRelease} or (gate is not None and not all(gate in g for g in evidence)):
        raise ValueError(f"rules/catalog/nvidia.yaml: {name}: static release is one of "
                         f"{[r.value for r in StaticRelease]}, and every evidence list holds the gate literal")
    return Static(library, evidence, code, gate, StaticRelease(release))


def _entry(name: str, spec: Mapping[str, Any], licenses: Mapping[str, str]) -> Entry:
    patterns: list[NamePattern] = []
    for stem in spec.get("linux", ()):
        patterns.extend(NamePattern(re.compile(p), True) for p in _stem_patterns(stem))
    patterns.extend(NamePattern(re.compile(p), False) for p in spec.get("names", ()))
    patterns.extend(NamePattern(re.compile(p, re.IGNORECASE), False) for p in spec.get("windows", ()))
    stems = spec.get("linux", ())
    soname = re.compile("|".join(rf"lib(?:{s})\.so(?:\.\d+)*" for s in stems)) if stems else None
    markers = tuple(_marker(name, m) for m in spec.get("markers", ()))
    tool = spec.get("tool") or {}
    return Entry(
        name=name, display=spec["display"], kind=ComponentKind(spec["kind"]),
        license=licenses.get(spec.get("license") or "", spec.get("license")), patterns=tuple(patterns),
        soname=soname, name_version=spec.get("name_version", "release"),
        distributions={k: tuple(v) for k, v in (spec.get("distributions") or {}).items()},
        markers=markers, banner=tool["banner"].encode() if tool.get("banner") else None,
        kernel_module=bool(spec.get("kernel_module")), executable=bool(spec.get("executable")),
        runpath=spec.get("runpath"), ships_symtab=bool(spec.get("ships_symtab")),
        embeds=tuple(str(name) for name in tool.get("embeds") or ()), static=_static(name, spec.get("static")))


@functools.cache
def load_catalog() -> Catalog:
    data = catalog_table("nvidia")
    entries = [_entry(name, spec, data["licenses"]) for name, spec in data["components"].items()]
    tools = {e.name for e in entries if e.banner is not None}
    for entry in entries:
        unknown = [name for name in entry.embeds if name not in tools]
        if unknown:
            raise ValueError(f"rules/catalog/nvidia.yaml: {entry.name} embeds {unknown}, which are no tools with a banner")
    kernel = {k: (v["license"], v["flavour"]) for k, v in data["kernel_licenses"].items()}
    return Catalog(tuple(entries), data["release_banner"].encode(), data["nvidia_copyright"].encode(),
                   int(data["probe_limit"]), kernel, _any_name(entries))


def _any_name(entries: list[Entry]) -> re.Pattern[str]:
    """One regex that matches a name when some entry's pattern does: the alternation of every pattern with its
    named groups made plain (group names repeat across patterns; nothing refers back to them) and its
    IGNORECASE kept as an inline flag. A file name it does not match is no catalogued name (13,000 files of an
    installed environment each took 346 ``fullmatch`` calls)."""
    parts = []
    for entry in entries:
        for pattern in entry.patterns:
            text = pattern.regex.pattern
            if "(?P=" in text or "(?(" in text:
                raise ValueError(f"rules/catalog/nvidia.yaml: {entry.name}: back-references are not supported")
            text = re.sub(r"\(\?P<\w+>", "(?:", text)
            parts.append(f"(?i:{text})" if pattern.regex.flags & re.IGNORECASE else f"(?:{text})")
    return re.compile("|".join(parts) or "(?!)")


__all__ = ["Catalog", "Entry", "Marker", "NamePattern", "Static", "StaticRelease", "VersionCode", "load_catalog"]
