"""The NVIDIA component catalog (``rules/catalog/nvidia.yaml``) compiled: each component's name patterns, expected
SONAME, version markers, tool banner and packaging (the schema is at the top of that file).

A regex is compiled the first time it is used, not when the catalog is loaded: compiling the catalog's 382 name
patterns, its 43 SONAME patterns and their union cost ~50 ms of CPU in every process, while a file the catalog does
not name needs only the union (:attr:`Catalog.any_name`), and a file it names only the patterns of the entries
whose union (:attr:`Entry.names`) matches it. :func:`prepare` compiles what every named file needs, before an
audit forks its workers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from licscan.knowledge import catalog_table
from licscan.model import ComponentKind


@dataclass(frozen=True)
class NamePattern:
    """A base-name regex of an entry (full match), compiled when first used."""

    text: str
    linux_stem: bool  # built from a `linux` stem: the SONAME check applies
    ignore_case: bool = False  # a `windows` name: Windows compares file names without case

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.text, re.IGNORECASE if self.ignore_case else 0)


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
    stems: tuple[str, ...]  # the `linux` stems (regex fragments)
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

    @functools.cached_property
    def soname(self) -> re.Pattern[str] | None:
        """The SONAME NVIDIA gives the library: ``libS.so[.<digits>]`` of one of its stems S (None: no stem)."""
        stems = self.stems
        return re.compile("|".join(rf"lib(?:{s})\.so(?:\.\d+)*" for s in stems)) if stems else None

    @functools.cached_property
    def names(self) -> re.Pattern[str]:
        """Matches a name when one of :attr:`patterns` does (:func:`_union`): which pattern, and its groups, is asked
        of an entry this matches only."""
        return re.compile(_union(self.name, [self]))

    def first_match(self, name: str) -> re.Match[str] | None:
        """The match of the first of :attr:`patterns` that matches ``name`` whole, else None."""
        if not self.names.fullmatch(name):
            return None
        return next((m for p in self.patterns for m in (p.regex.fullmatch(name),) if m), None)


@dataclass(frozen=True)
class Catalog:
    entries: tuple[Entry, ...]
    release_banner: bytes
    copyright: bytes
    probe_limit: int
    kernel_licenses: dict[str, tuple[str, str]]
    #: A kernel object's "nvidia id:" line (``kernel_id_literal``, then the text the ``kernel_ids`` regexes match
    #: at its start) -> (licence, flavour), for an object without a .modinfo licence (nv-kernel.o_binary).
    kernel_id_literal: bytes = b"nvidia id: "
    kernel_ids: tuple[tuple[re.Pattern[str], str, str], ...] = ()

    def kernel_id(self, line: str) -> tuple[str, str] | None:
        """(licence, flavour) of the text after a kernel object's ``nvidia id:`` literal, else None."""
        return next(((lic, flavour) for regex, lic, flavour in self.kernel_ids if regex.match(line)), None)

    @functools.cached_property
    def any_name(self) -> re.Pattern[str]:
        """Matches every name some entry's pattern matches, and fewer names (a prefilter): a name it does not match
        is no catalogued name, and no entry's SONAME either (``libS.so[.<digits>]`` is a name of stem S)."""
        return re.compile(_union("catalog", self.entries))

    def entry(self, name: str) -> Entry:
        return next(e for e in self.entries if e.name == name)


_VERSION = r"(?P<version>\d+(?:\.\d+)*)"


# The base names of a `linux` stem S (rules/catalog/nvidia.yaml): "lib" + S + one of these.
_STEM_SUFFIXES = (
    rf"\.so(?:\.{_VERSION})?",
    rf"-(?P<graft>[0-9a-f]{{8}})\.so(?:\.{_VERSION})?",
    r"(?:_static(?:_nocallback)?)?\.a",
    rf"(?:\.{_VERSION})?\.dylib",
)


def _stem_patterns(stem: str) -> list[str]:
    return [rf"lib(?:{stem}){suffix}" for suffix in _STEM_SUFFIXES]


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
    stems = tuple(str(stem) for stem in spec.get("linux", ()))
    names = tuple(str(p) for p in spec.get("names", ()))
    windows = tuple(str(p) for p in spec.get("windows", ()))
    patterns = [NamePattern(p, True) for stem in stems for p in _stem_patterns(stem)]
    patterns.extend(NamePattern(p, False) for p in names)
    patterns.extend(NamePattern(p, False, ignore_case=True) for p in windows)
    markers = tuple(_marker(name, m) for m in spec.get("markers", ()))
    tool = spec.get("tool") or {}
    return Entry(
        name=name, display=spec["display"], kind=ComponentKind(spec["kind"]),
        license=licenses.get(spec.get("license") or "", spec.get("license")), patterns=tuple(patterns),
        stems=stems, name_version=spec.get("name_version", "release"),
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
    ids = tuple((re.compile(str(v["regex"]), re.ASCII), str(v["license"]), str(v["flavour"]))
                for v in data.get("kernel_ids") or ())
    return Catalog(tuple(entries), data["release_banner"].encode(), data["nvidia_copyright"].encode(),
                   int(data["probe_limit"]), kernel, str(data.get("kernel_id_literal") or "nvidia id: ").encode(), ids)


def _union(name: str, entries: Iterable[Entry]) -> str:
    """One regex that matches a name when one of the patterns of ``entries`` does: the alternation of every pattern
    with its named groups made plain (group names repeat across patterns; nothing refers back to them) and a
    ``windows`` pattern's IGNORECASE kept as an inline flag. The `linux` stems share one alternative,
    ``lib(?:S1|S2|...)`` followed by the alternation of the stem suffixes: the same names as the alternation of each
    stem's four patterns, in a quarter of the text (the catalog's union compiles in 5 ms of CPU instead of 21 ms). A
    file name the catalog's union does not match is no catalogued name (13,000 files of an installed environment
    each took 346 ``fullmatch`` calls)."""

    def plain(text: str) -> str:
        if "(?P=" in text or "(?(" in text:
            raise ValueError(f"rules/catalog/nvidia.yaml: {name}: back-references are not supported")
        return re.sub(r"\(\?P<\w+>", "(?:", text)

    entries = list(entries)
    stems = [stem for entry in entries for stem in entry.stems]
    parts = [f"lib(?:{plain('|'.join(stems))})(?:{'|'.join(plain(s) for s in _STEM_SUFFIXES)})"] if stems else []
    for entry in entries:
        parts += [f"(?i:{plain(p.text)})" if p.ignore_case else f"(?:{plain(p.text)})" for p in entry.patterns
                  if not p.linux_stem]
    return "|".join(parts) or "(?!)"


def prepare() -> Catalog:
    """The catalog with every regex a named file needs compiled (:attr:`Catalog.any_name`, each entry's
    :attr:`Entry.names`), for processes forked afterwards to inherit; an entry's own patterns and SONAME are
    compiled where a file is named by it."""
    catalog = load_catalog()
    for entry in catalog.entries:
        _ = entry.names
    _ = catalog.any_name
    return catalog


__all__ = ["Catalog", "Entry", "Marker", "NamePattern", "Static", "StaticRelease", "VersionCode", "load_catalog",
           "prepare"]
