"""Layers that run CUDA output or CUDA's API on non-NVIDIA GPUs, and the non-NVIDIA runtimes they sit on, named
from what a file contains (``rules/catalog/translation-layers.yaml``; the kinds and signals are explained in
docs/layers.md).

Content signals name a layer: what the file imports (ELF ``DT_NEEDED``, PE import table), the name it declares
for itself (``DT_SONAME``), the dynamic symbols it defines and imports (a ``cu*`` driver API defined by a library
that imports ``hip*``), literal strings, a file magic. File-name and path signals only corroborate: they add
evidence to a layer that a content signal named in the same file, and never name one alone.

"A CUDA-named SONAME or file name that imports HIP/ROCm" is the precise structural signal of a drop-in: a
``libcuda.so.1`` that imports ``libamdhip64.so`` is not NVIDIA's driver. Such matches carry the property
``("replaces", "cuda-named")`` so that :func:`licscan.identify.catalog.identify` drops the NVIDIA name match.

A library that links against ROCm or oneAPI is reported as *targets* that platform (kind ``target-linked``) with
its own imports as evidence; a file that *is* the runtime's library (its SONAME says so) as ``runtime-shipped``,
and then not also as a target of the same platform.

Probes are bounded: string probes are literal ``find`` calls limited by ``limits`` in the YAML file; the dynamic
symbol table is read (by :func:`dynamic_symbols`, a pure function over the file's bytes) only for files whose
imports pass a symbols signal's gate.
"""

from __future__ import annotations

import enum
import functools
import re
import struct
from dataclasses import dataclass
from typing import Any

from licscan.binary import magic
from licscan.binary.probe import Literals, LiteralSet, find, window
from licscan.knowledge import catalog_table
from licscan.model import ComponentKind, ComponentMatch, FileFacts, FileFormat
from licscan.vpath import basename

_RANK = {"low": 0, "medium": 1, "high": 2}
_TRANSLATING = (ComponentKind.OUTPUT_CONSUMER, ComponentKind.SOURCE_PORT, ComponentKind.API_REIMPLEMENTATION)


class SignalKind(enum.Enum):
    IMPORTS = "imports"
    SONAME = "soname"
    SYMBOLS = "symbols"
    STRINGS = "strings"
    MAGIC = "magic"
    RUNPATH = "runpath"
    SONAME_MISSING = "soname-missing"
    # corroborating only
    FILE_NAME = "file-name"
    PATH = "path"
    EMPTY_FILE = "empty-file"

    @property
    def corroborating(self) -> bool:
        return self in (SignalKind.FILE_NAME, SignalKind.PATH, SignalKind.EMPTY_FILE)


@dataclass(frozen=True)
class Signal:
    id: str
    layer: str
    confidence: str
    kind: SignalKind
    evidence: str
    source: str  # public URL that documents the signal
    name: re.Pattern | None = None
    path: re.Pattern | None = None
    imports: re.Pattern | None = None
    unless_imports: re.Pattern | None = None
    soname: re.Pattern | None = None
    runpath: re.Pattern | None = None
    exports: tuple[re.Pattern, ...] = ()
    imported: tuple[re.Pattern, ...] = ()
    cuda_named: bool = False
    any_of: tuple[bytes, ...] = ()
    all_of: tuple[bytes, ...] = ()
    none_of: tuple[bytes, ...] = ()
    magic: bytes | None = None
    formats: tuple[str, ...] = ("elf", "pe")
    replaces: bool = False  # proves the file is a drop-in for the NVIDIA file it is named like


@dataclass(frozen=True)
class Platform:
    id: str
    display: str
    vendor: str


@dataclass(frozen=True)
class Layer:
    id: str
    display: str
    vendor: str
    kind: ComponentKind
    license: str | None
    project: str | None
    platform: Platform | None
    generic: bool = False


@dataclass(frozen=True)
class SignalTable:
    layers: dict[str, Layer]
    signals: tuple[Signal, ...]
    cuda_named: re.Pattern
    strings_limit: int
    named_limit: int
    magic_window: int
    symbols_limit: int
    symbol_prefilter: re.Pattern  # union of every exports/imported regex: names worth keeping
    literals: tuple[bytes, ...]  # every literal a signal looks for in the whole file (searched in one pass)


def _lit(items) -> tuple[bytes, ...]:
    return tuple(str(i).encode("latin-1") for i in items or ())


@functools.cache
def load_signals() -> SignalTable:
    data = catalog_table("translation-layers")
    named = {k: v for k, v in (data.get("regexes") or {}).items()}
    platforms = {k: Platform(k, v["display"], v["vendor"]) for k, v in data["platforms"].items()}
    layers = {}
    for key, v in data["layers"].items():
        if v.get("platform") is not None and v["platform"] not in platforms:
            raise ValueError(f"rules/catalog/translation-layers.yaml: layer {key}: unknown platform")
        layers[key] = Layer(key, v["display"], v["vendor"], ComponentKind(v["kind"]), v.get("license"),
                            v.get("project"), platforms.get(v.get("platform")), bool(v.get("generic")))
    signals = []
    symbol_patterns: list[str] = []
    for s in data["signals"]:
        def rx(value, flags=0):
            if value is None:
                return None
            return re.compile(named.get(value, value), flags)
        if s["layer"] not in layers or s["confidence"] not in _RANK or not s.get("source"):
            raise ValueError(f"rules/catalog/translation-layers.yaml: bad signal {s.get('id')}")
        kind = SignalKind(s["kind"])
        exports = tuple(rx(x) for x in s.get("exports") or ())
        imported = tuple(rx(x) for x in s.get("imported") or ())
        if kind is SignalKind.SYMBOLS and (s.get("imports") is None or not (exports or imported)):
            raise ValueError(f"rules/catalog/translation-layers.yaml: symbols signal {s['id']} needs an imports "
                             "gate and exports or imported")
        symbol_patterns.extend(p.pattern for p in exports + imported)
        signals.append(Signal(
            id=s["id"], layer=s["layer"], confidence=s["confidence"], kind=kind, evidence=s["evidence"],
            source=s["source"], name=rx(s.get("name"), re.IGNORECASE), path=rx(s.get("path")),
            imports=rx(s.get("imports")), unless_imports=rx(s.get("unless_imports")), soname=rx(s.get("soname")),
            runpath=rx(s.get("runpath")), exports=exports, imported=imported, cuda_named=bool(s.get("cuda_named")),
            any_of=_lit(s.get("any_of")), all_of=_lit(s.get("all_of")), none_of=_lit(s.get("none_of")),
            magic=s["magic"].encode("latin-1") if s.get("magic") else None,
            formats=tuple(s.get("formats") or ("elf", "pe")), replaces=bool(s.get("replaces"))))
    limits = data["limits"]
    prefilter = re.compile("|".join(f"(?:{p})" for p in symbol_patterns) or "(?!)")
    literals = tuple(dict.fromkeys(lit for s in signals if s.kind is not SignalKind.MAGIC
                                   for lit in s.all_of + s.any_of + s.none_of))
    return SignalTable(layers, tuple(signals), re.compile(data["cuda_named"]), int(limits["strings"]),
                       int(limits["named"]), int(limits["magic_window"]), int(limits["symbols"]), prefilter,
                       literals)


@functools.cache
def literal_set() -> LiteralSet:
    """The literals of :func:`load_signals` as one :class:`LiteralSet`."""
    return LiteralSet(load_signals().literals)


# ------------------------------------------------------------------------------------------ dynamic symbols


@dataclass(frozen=True)
class DynamicSymbols:
    """Names from an ELF file's ``.dynsym`` (only those a catalog regex may ask about)."""

    defined: frozenset[str]
    undefined: frozenset[str]


_NO_SYMBOLS = DynamicSymbols(frozenset(), frozenset())
_STRTAB_LIMIT = 64 << 20  # bytes of .dynstr read at most; names past it are not kept
SHT_DYNSYM = 11
SHN_UNDEF = 0


def dynamic_symbols(data, keep: re.Pattern | None = None, limit: int = 2_000_000) -> DynamicSymbols:
    """The defined and undefined names of the ELF dynamic symbol table in ``data`` (bytes or mmap).

    Implements the ELF gABI "Symbol Table" (https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.symtab.html):
    ``Elf64_Sym {st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64}`` (24 bytes),
    ``Elf32_Sym {st_name, st_value, st_size u32, st_info, st_other u8, st_shndx u16}`` (16 bytes); a symbol with
    ``st_shndx == SHN_UNDEF`` is imported; ``sh_link`` of SHT_DYNSYM is the section index of its string table.
    Names are kept only when ``keep`` matches them. Malformed tables give what could be read, never an error.
    """
    size = len(data)
    head = window(data, 0, 64)
    if len(head) < 52 or head[:4] != magic.ELF or head[4] not in (1, 2) or head[5] not in (1, 2):
        return _NO_SYMBOLS
    is64 = head[4] == 2
    end = "<" if head[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", head, 0x28)
        shentsize, shnum = struct.unpack_from(end + "HH", head, 0x3A)
        sh_fmt, ent = end + "IIQQQQIIQQ", 24
    else:
        shoff, = struct.unpack_from(end + "I", head, 0x20)
        shentsize, shnum = struct.unpack_from(end + "HH", head, 0x2E)
        sh_fmt, ent = end + "IIIIIIIIII", 16
    if not shoff or shentsize < struct.calcsize(sh_fmt) or shoff + shentsize * shnum > size:
        return _NO_SYMBOLS
    headers = []
    for index in range(shnum):
        raw = window(data, shoff + index * shentsize, struct.calcsize(sh_fmt))
        # (sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize)
        headers.append(struct.unpack(sh_fmt, raw))
    defined: set[str] = set()
    undefined: set[str] = set()
    for sh in headers:
        if sh[1] != SHT_DYNSYM or sh[6] >= len(headers):
            continue
        strtab = headers[sh[6]]
        str_off, str_size = strtab[4], strtab[5]
        if sh[4] + sh[5] > size or str_off + str_size > size:
            continue
        names = window(data, str_off, min(str_size, _STRTAB_LIMIT))
        count = min(sh[5] // ent, limit)
        table = window(data, sh[4], count * ent)
        for i in range(1, count):  # entry 0 is the null symbol
            if is64:
                st_name, _info, _other, shndx = struct.unpack_from(end + "IBBH", table, i * ent)
            else:
                st_name, = struct.unpack_from(end + "I", table, i * ent)
                shndx, = struct.unpack_from(end + "H", table, i * ent + 14)
            if st_name >= len(names):
                continue
            stop = names.find(b"\0", st_name)
            name = names[st_name: stop if stop >= 0 else len(names)].decode("latin-1")
            if keep is not None and not keep.search(name):
                continue
            (undefined if shndx == SHN_UNDEF else defined).add(name)
    return DynamicSymbols(frozenset(defined), frozenset(undefined))


# ----------------------------------------------------------------------------------------------- detection


@dataclass
class _File:
    """What one detection pass knows about a file (lazily: imports from PE headers, dynamic symbols)."""

    vpath: str
    name: str
    facts: FileFacts | None
    data: Any
    fmt: str
    size: int
    cuda_named: bool
    literals: Literals
    _imports: tuple[str, ...] | None = None
    _symbols: DynamicSymbols | None = None

    @property
    def elf(self):
        return self.facts.elf if self.facts is not None else None

    def imports(self) -> tuple[str, ...]:
        if self._imports is None:
            self._imports = _imports(self.facts, self.data, self.fmt)
        return self._imports

    def symbols(self, table: SignalTable) -> DynamicSymbols:
        if self._symbols is None:
            self._symbols = (dynamic_symbols(self.data, table.symbol_prefilter, table.symbols_limit)
                             if self.data is not None and self.fmt == "elf" else _NO_SYMBOLS)
        return self._symbols


_PE_IMPORTS_LIMIT = 64 << 20  # PE headers parsed here only for images up to this size when facts carry no imports


def _imports(facts: FileFacts | None, data, fmt: str) -> tuple[str, ...]:
    """ELF ``DT_NEEDED`` entries, or the DLL names of a PE import table (with the delay-load table when the facts
    carry PE facts: ``FileFacts.needed``)."""
    if facts is not None and facts.elf is not None:
        return facts.elf.needed
    if facts is not None and getattr(facts, "pe", None) is not None:
        return tuple(facts.needed)
    if fmt == "pe" and data is not None and len(data) <= _PE_IMPORTS_LIMIT:
        from licscan.binary import pe
        from licscan.binary.errors import FormatError

        try:
            return pe.read_pe(data).imports
        except FormatError:
            return ()
    return ()


def _format(facts: FileFacts | None, data) -> str:
    if facts is not None and facts.format is not FileFormat.UNKNOWN:
        return {FileFormat.ELF: "elf", FileFormat.PE: "pe"}.get(facts.format, facts.format.value)
    head = window(data, 0, 4) if data is not None else b""
    return "elf" if head == magic.ELF else "pe" if head[:2] == magic.MZ else "unknown"


def detect(vpath: str, facts: FileFacts | None, data: Any = None,
           literals: Literals | None = None) -> tuple[ComponentMatch, ...]:
    """Layer, runtime and target matches for one file, one per layer (highest confidence of its content signals
    wins; every signal that fired, corroborating ones included, is evidence). ``literals``: the file's literal
    search over ``data`` when the caller shares one (it must cover :func:`literal_set`)."""
    table = load_signals()
    name = basename(vpath)
    elf = facts.elf if facts is not None else None
    size = facts.size if facts is not None else (len(data) if data is not None else -1)  # -1: unknown
    names = [name] + ([elf.soname] if elf is not None and elf.soname else [])
    file = _File(vpath, name, facts, data, _format(facts, data), size,
                 any(table.cuda_named.fullmatch(n) for n in names),
                 literals if literals is not None else Literals(data, literal_set()))
    fired: dict[str, list[tuple[Signal, str]]] = {}
    for sig in _applicable(file.fmt, elf is not None):
        if sig.cuda_named and not file.cuda_named:
            continue
        hit = _test(sig, table, file)
        if hit is not None:
            fired.setdefault(sig.layer, []).append((sig, hit))
    named = {k: v for k, v in fired.items() if any(not s.kind.corroborating for s, _ in v)}
    layers = {k: table.layers[k] for k in named}
    shipped = {lay.platform.id for lay in layers.values()
               if lay.kind is ComponentKind.RUNTIME_SHIPPED and lay.platform is not None}
    specific = any(lay.kind in _TRANSLATING and not lay.generic for lay in layers.values())
    # A generic module loader (it consumes NVIDIA output) says more than a generic exported CUDA API.
    loader = any(lay.kind is ComponentKind.OUTPUT_CONSUMER and lay.generic for lay in layers.values())
    kept: dict[str, list[tuple[Signal, str]]] = {}
    explained: list[tuple[Signal, str]] = []  # hits of generic layers a more specific one explains
    for layer_id, hits in sorted(named.items()):
        layer = layers[layer_id]
        if layer.kind is ComponentKind.TARGET_LINKED and layer.platform is not None and layer.platform.id in shipped:
            continue  # the runtime's own library links its siblings: it ships the runtime, it does not target it
        if layer.generic and (specific or (loader and layer.kind is ComponentKind.API_REIMPLEMENTATION)):
            explained.extend(hits)  # a catalogued project (or the module loader) explains the shape
            continue
        kept[layer_id] = list(hits)
    if explained:  # their evidence (and a proof of a drop-in) goes to the layer that explains them
        heir = next(k for k in kept if layers[k].kind in _TRANSLATING and (specific != layers[k].generic))
        kept[heir].extend(explained)
    return tuple(_match(layers[k], hits) for k, hits in kept.items())


_ELF_ONLY = (SignalKind.SONAME, SignalKind.RUNPATH, SignalKind.SONAME_MISSING)


@functools.cache
def _applicable(fmt: str, has_elf: bool) -> tuple[Signal, ...]:
    """The signals that can fire on a file of format ``fmt`` (with ELF facts or not), in table order: the others
    return no hit before looking at anything (:func:`_test`), so they are not asked (an installed environment has
    13,000 files, most of them Python sources)."""
    def can(sig: Signal) -> bool:
        if sig.kind in _ELF_ONLY:
            return has_elf
        if sig.kind is SignalKind.IMPORTS:
            return fmt in ("elf", "pe")
        if sig.kind is SignalKind.SYMBOLS:
            return fmt == "elf"
        if sig.kind is SignalKind.STRINGS:
            return fmt in sig.formats
        return True
    return tuple(sig for sig in load_signals().signals if can(sig))


def _match(layer: Layer, hits: list[tuple[Signal, str]]) -> ComponentMatch:
    content = [s for s, _ in hits if not s.kind.corroborating]
    best = max(content, key=lambda s: _RANK[s.confidence]).confidence
    props = [("signals", ",".join(s.id for s, _ in hits))]
    if any(s.replaces for s, _ in hits):
        props.append(("replaces", "cuda-named"))
    if layer.platform is not None:
        props.append(("platform", layer.platform.display))
    if layer.project:
        props.append(("project", layer.project))
    if layer.kind is ComponentKind.TARGET_LINKED:
        props.append(("relation", "targets"))
    elif layer.kind is ComponentKind.RUNTIME_SHIPPED:
        props.append(("relation", "ships"))
    evidence = tuple(f"{layer.display}: {s.evidence} [{s.id}, {s.confidence}]: {detail}" for s, detail in hits)
    return ComponentMatch(
        name=layer.id, display=layer.display, kind=layer.kind, vendor=layer.vendor, version=None,
        version_source=None, license=layer.license, evidence=evidence, confidence=best, properties=tuple(props))


def _test(sig: Signal, table: SignalTable, f: _File) -> str | None:
    kind = sig.kind
    if kind is SignalKind.FILE_NAME:
        return f"file name {f.name!r}" if sig.name.fullmatch(f.name) else None
    if kind is SignalKind.PATH:
        return f"path {f.vpath!r}" if sig.path.search(f.vpath) else None
    if kind is SignalKind.EMPTY_FILE:
        return f"zero-byte {f.name!r}" if f.size == 0 and sig.name.fullmatch(f.name) else None
    if kind is SignalKind.IMPORTS:
        soname = f.elf.soname if f.elf is not None else None
        if sig.name is not None and not any(sig.name.fullmatch(n) for n in (f.name, soname) if n):
            return None
        return _imports_hit(sig.imports, sig.unless_imports, f)
    if kind is SignalKind.SONAME:
        elf = f.elf
        if elf is None or not elf.soname or not sig.soname.search(elf.soname):
            return None
        return f"DT_SONAME {elf.soname}"
    if kind is SignalKind.RUNPATH:
        elf = f.elf
        if elf is None:
            return None
        hits = [p for p in elf.runpath + elf.rpath if sig.runpath.search(p)]
        return f"RUNPATH {':'.join(hits)}" if hits else None
    if kind is SignalKind.SONAME_MISSING:
        elf = f.elf
        if elf is None or elf.elf_type != "ET_DYN" or elf.soname or not sig.name.fullmatch(f.name):
            return None
        return f"{f.name!r} has no DT_SONAME"
    if f.data is None:
        return None
    if kind is SignalKind.SYMBOLS:
        return _symbols_hit(sig, table, f)
    if kind is SignalKind.MAGIC:
        if window(f.data, 0, len(sig.magic)) != sig.magic:
            return None
        end = min(f.size, table.magic_window)
        if all(find(f.data, lit, 0, end) >= 0 for lit in sig.all_of):
            return (f"magic {sig.magic!r} and {', '.join(repr(x.decode('latin-1')) for x in sig.all_of)} "
                    f"in the first {end} bytes")
        return None
    if kind is SignalKind.STRINGS:
        return _strings_hit(sig, table, f)
    raise ValueError(f"unknown signal kind {kind!r} ({sig.id})")


def _imports_hit(wanted: re.Pattern, unless: re.Pattern | None, f: _File) -> str | None:
    if f.fmt not in ("elf", "pe"):
        return None
    imports = f.imports()
    hits = [n for n in imports if wanted.search(n)]
    if not hits or (unless is not None and any(unless.search(n) for n in imports)):
        return None
    return f"{'DT_NEEDED' if f.fmt == 'elf' else 'imports'} {', '.join(hits)}"


def _symbols_hit(sig: Signal, table: SignalTable, f: _File) -> str | None:
    gate = _imports_hit(sig.imports, None, f)
    if gate is None or f.fmt != "elf":
        return None
    symbols = f.symbols(table)
    parts = [gate]
    for rx in sig.exports:
        hits = sorted(n for n in symbols.defined if rx.search(n))
        if not hits:
            return None
        parts.append(f"defines {_few(hits)}")
    for rx in sig.imported:
        hits = sorted(n for n in symbols.undefined if rx.search(n))
        if not hits:
            return None
        parts.append(f"imports {_few(hits)}")
    found = _all_found(f.literals, sig.all_of)
    if found is None:
        return None
    return "; ".join(parts + found)


def _all_found(literals: Literals, wanted: tuple[bytes, ...]) -> list[str] | None:
    """Where each literal stands in the file (``'x' at 0x10``), or None when one of them is absent."""
    found = literals.all_found(wanted)
    if found is None:
        return None
    return [f"{lit.decode('latin-1')!r} at {at:#x}" for lit, at in found]


def _few(names: list[str], shown: int = 3) -> str:
    more = f" (+{len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _strings_hit(sig: Signal, table: SignalTable, f: _File) -> str | None:
    if f.fmt not in sig.formats:
        return None
    if sig.name is not None and not sig.name.fullmatch(f.name):
        return None
    if sig.path is not None and not sig.path.search(f.vpath):
        return None
    if sig.magic is not None and window(f.data, 0, len(sig.magic)) != sig.magic:
        return None
    limit = table.named_limit if (sig.cuda_named or sig.name is not None) else table.strings_limit
    if f.size > limit:
        return None
    found = []
    if sig.path is not None:
        found.append(f"path {f.vpath!r}")
    literals = _all_found(f.literals, sig.all_of)
    if literals is None:
        return None
    found += literals
    for lit in sig.none_of:
        if f.literals.find(lit) >= 0:
            return None
    if sig.any_of:
        for lit in sig.any_of:
            at = f.literals.find(lit)
            if at >= 0:
                found.append(f"{lit.decode('latin-1')!r} at {at:#x}")
                break
        else:
            return None
    absent = "; absent: " + ", ".join(repr(x.decode("latin-1")) for x in sig.none_of) if sig.none_of else ""
    return ", ".join(found) + absent


__all__ = ["DynamicSymbols", "Layer", "Platform", "Signal", "SignalKind", "SignalTable", "detect",
           "dynamic_symbols", "load_signals"]
