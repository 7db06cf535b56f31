"""Layers that run CUDA output or CUDA's API on non-NVIDIA GPUs, and the non-NVIDIA runtimes they sit on, named
from what a file contains (``rules/catalog/translation-layers.yaml``; the kinds and signals are explained in
docs/layers.md).

Content signals name a layer: what the file imports (ELF ``DT_NEEDED``, PE import table), the name it declares
for itself (``DT_SONAME``), the dynamic symbols it defines and imports (a ``cu*`` driver API defined by a library
that imports ``hip*``), literal strings, a file magic. File-name and path signals only corroborate: they add
evidence to a layer that a content signal named in the same file, and never name one alone.

"A CUDA-named SONAME or file name that imports HIP/ROCm" is the precise structural signal of a drop-in: a
``libcuda.so.1`` that imports ``libamdhip64.so`` is not NVIDIA's driver. Such matches carry the property
``LayerFacts.replaces`` (property ``replaces: cuda-named``) so that :func:`licscan.identify.catalog.name` drops
the NVIDIA name match.

A library that links against ROCm or oneAPI is reported as *targets* that platform (kind ``target-linked``) with
its own imports as evidence; a file that *is* the runtime's library (its SONAME says so) as ``runtime-shipped``,
and then not also as a target of the same platform.

Probes are bounded: string probes are literal ``find`` calls limited by ``limits`` in the YAML file; the dynamic
symbol table is read (by :func:`dynamic_symbols`, a pure function over the file's bytes) only for files whose
imports pass a symbols signal's gate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from licscan.binary import magic, pe
from licscan.binary.buffer import Buffer
from licscan.binary.errors import FormatError
from licscan.binary.probe import Literals, find, window
from licscan.identify.dynsym import NO_SYMBOLS, DynamicSymbols, dynamic_symbols, pe_symbols
from licscan.identify.signal_table import (
    RANK,
    Layer,
    Platform,
    Signal,
    SignalKind,
    SignalTable,
    literal_set,
    load_signals,
)
from licscan.model import ComponentKind, ComponentMatch, Confidence, ElfFacts, FileFacts, FileFormat, LayerFacts
from licscan.vpath import basename

_TRANSLATING = (ComponentKind.OUTPUT_CONSUMER, ComponentKind.SOURCE_PORT, ComponentKind.API_REIMPLEMENTATION)


@dataclass
class _File:
    """What one detection pass knows about a file (lazily: imports from PE headers, dynamic symbols)."""

    vpath: str
    name: str
    facts: FileFacts | None
    data: Buffer | None
    fmt: str
    size: int
    cuda_named: bool
    literals: Literals
    _imports: tuple[str, ...] | None = None
    _symbols: DynamicSymbols | None = None

    @property
    def elf(self) -> ElfFacts | None:
        return self.facts.elf if self.facts is not None else None

    def imports(self) -> tuple[str, ...]:
        if self._imports is None:
            self._imports = _imports(self.facts, self.data, self.fmt)
        return self._imports

    def symbols(self, table: SignalTable) -> DynamicSymbols:
        if self._symbols is None:
            read = {"elf": dynamic_symbols, "pe": pe_symbols}.get(self.fmt)
            self._symbols = (read(self.data, table.symbol_prefilter, table.symbols_limit)
                             if self.data is not None and read is not None else NO_SYMBOLS)
        return self._symbols


_PE_IMPORTS_LIMIT = 64 << 20  # PE headers parsed here only for images up to this size when facts carry no imports


def _imports(facts: FileFacts | None, data: Buffer | None, fmt: str) -> tuple[str, ...]:
    """ELF ``DT_NEEDED`` entries, or the DLL names of a PE import table (with the delay-load table when the facts
    carry PE facts: ``FileFacts.needed``)."""
    if facts is not None and facts.elf is not None:
        return facts.elf.needed
    if facts is not None and facts.pe is not None:
        return tuple(facts.needed)
    if fmt == "pe" and data is not None and len(data) <= _PE_IMPORTS_LIMIT:
        try:
            imports: tuple[str, ...] = pe.read_pe(data).imports
            return imports
        except FormatError:
            return ()
    return ()


_FORMAT_NAMES = {fmt: {FileFormat.ELF: "elf", FileFormat.PE: "pe"}.get(fmt, str(fmt.value)) for fmt in FileFormat}


def _format(facts: FileFacts | None, data: Buffer | None) -> str:
    if facts is not None and facts.format is not FileFormat.UNKNOWN:
        return _FORMAT_NAMES[facts.format]
    head = window(data, 0, 4) if data is not None else b""
    return "elf" if head == magic.ELF else "pe" if head[:2] == magic.MZ else "unknown"


def detect(vpath: str, facts: FileFacts | None, data: Buffer | None = None,
           literals: Literals | None = None) -> tuple[ComponentMatch, ...]:
    """Layer, runtime and target matches for one file, one per layer (highest confidence of its content signals
    wins; every signal that fired, corroborating ones included, is evidence). ``literals``: the file's literal
    search over ``data`` when the caller shares one (it must cover :func:`literal_set`)."""
    table = load_signals()
    name = basename(vpath)
    elf = facts.elf if facts is not None else None
    size = facts.size if facts is not None else (len(data) if data is not None else -1)  # -1: unknown
    fmt = _format(facts, data)
    plans, by_name = _plans(fmt, elf is not None)
    cuda_named = False
    if by_name:  # only then does the name decide which signals are asked
        names = [name] + ([elf.soname] if elf is not None and elf.soname else [])
        cuda_named = any(table.cuda_named.fullmatch(n) for n in names)
    content, corroborating = plans[cuda_named]
    file = _File(vpath, name, facts, data, fmt, size, cuda_named,
                 literals if literals is not None else Literals(data, literal_set()))
    found = [(at, sig, hit) for at, sig, test in content for hit in (test(sig, table, file),) if hit is not None]
    if not found:
        return ()  # corroborating signals never name a layer alone
    found += [(at, sig, hit) for at, sig, test in corroborating for hit in (test(sig, table, file),) if hit is not None]
    fired: dict[str, list[tuple[Signal, str]]] = {}
    for _, sig, hit in sorted(found, key=lambda h: h[0]):  # in table order, as the evidence lists them
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


def silent(vpath: str, name: str, data: bytes) -> bool:
    """Whether :func:`detect` surely finds nothing in a file whose facts show no format (no ELF or PE facts: the
    sources, headers and data of an installed environment) and whose bytes are ``data``, named ``name``: True only
    when every content signal that could be asked of it (corroborating ones are asked only after a content signal
    fired) fails a condition it cannot do without (:func:`_quiet_gates`). False: ask :func:`detect`. Cheaper than
    asking (no literal search set up, no evidence built): 12,700 files of the environment tree."""
    if data.startswith((magic.ELF, magic.MZ)):
        return False  # ELF or MZ magic without the facts of one: detect reads its headers (_format)
    plans, by_name = _plans("unknown", False)
    gates = _quiet_gates(by_name and load_signals().cuda_named.fullmatch(name) is not None)
    if gates is None:
        return False
    size = len(data)
    for name_rx, path_rx, head, limit, all_of, any_of in gates:
        if (name_rx is None or name_rx.fullmatch(name)) and (path_rx is None or path_rx.search(vpath)) \
                and data.startswith(head) and size <= limit and all(lit in data for lit in all_of) \
                and (not any_of or any(lit in data for lit in any_of)):
            return False
    return True


Gate = tuple["re.Pattern[str] | None", "re.Pattern[str] | None", bytes, int, tuple[bytes, ...], tuple[bytes, ...]]


@functools.cache
def _quiet_gates(cuda_named: bool) -> tuple[Gate, ...] | None:
    """For each content signal asked of a file of unknown format (``cuda_named``: its name is CUDA's), what it cannot
    fire without: (name pattern, path pattern, magic, size limit, ``all_of``, ``any_of``) -- the first tests of
    :func:`_strings_hit` and :func:`_magic_hit`, each literal of ``all_of`` present and one of ``any_of``. None
    when a signal of another kind could be asked (then :func:`silent` always says ask)."""
    table = load_signals()
    gates: list[Gate] = []
    for _, sig, _ in _plans("unknown", False)[0][cuda_named][0]:
        if sig.kind is SignalKind.STRINGS:
            if "unknown" in sig.formats:
                limit = table.named_limit if (sig.cuda_named or sig.name is not None) else table.strings_limit
                gates.append((sig.name, sig.path, sig.magic or b"", limit, sig.all_of, sig.any_of))
        elif sig.kind is SignalKind.MAGIC:
            gates.append((None, None, sig.magic or b"", 1 << 62, (), ()))  # its literals: in the first bytes
        else:
            return None
    return tuple(gates)


_ELF_ONLY = (SignalKind.SONAME, SignalKind.RUNPATH, SignalKind.SONAME_MISSING)


@functools.cache
def _applicable(fmt: str, has_elf: bool) -> tuple[Signal, ...]:
    """The signals that can fire on a file of format ``fmt`` (with ELF facts or not), in table order: the others
    return no hit before looking at anything (:func:`_test`), so they are not asked (an installed environment has
    13,000 files, most of them Python sources)."""
    def can(sig: Signal) -> bool:
        if sig.kind in _ELF_ONLY:
            return has_elf
        if sig.kind in (SignalKind.IMPORTS, SignalKind.SYMBOLS):  # a PE image's exports and imported functions
            return fmt in ("elf", "pe")
        if sig.kind is SignalKind.STRINGS:
            return fmt in sig.formats
        return True
    return tuple(sig for sig in load_signals().signals if can(sig))


Tester = Callable[[Signal, SignalTable, "_File"], "str | None"]


@functools.cache
def _testers(fmt: str, has_elf: bool) -> tuple[tuple[Signal, Tester], ...]:
    """:func:`_applicable` with the function that tests each signal (:func:`_test`'s choice, made once per signal,
    not once per file: an installed environment has 13,000 files)."""
    return tuple((sig, _tester(sig.kind)) for sig in _applicable(fmt, has_elf))


Plan = tuple[tuple[int, Signal, Tester], ...]  # (position in the table, signal, its tester)


@functools.cache
def _plans(fmt: str, has_elf: bool) -> tuple[tuple[tuple[Plan, Plan], tuple[Plan, Plan]], bool]:
    """:func:`_testers` split into (content signals, corroborating signals), for a file that is not CUDA-named
    (first) and one that is (second), and whether the two differ (else the name need not be matched). Corroborating
    signals never name a layer alone: they are asked only of a file in which a content signal fired (most files of
    an installed environment are Python sources, whose name and path were matched against every file-name and path
    signal: a third of naming's CPU on the environment tree)."""
    def plan(cuda_named: bool) -> tuple[Plan, Plan]:
        kept = [(at, sig, test) for at, (sig, test) in enumerate(_testers(fmt, has_elf))
                if cuda_named or not sig.cuda_named]
        return (tuple(t for t in kept if not t[1].kind.corroborating),
                tuple(t for t in kept if t[1].kind.corroborating))
    plans = (plan(False), plan(True))
    return plans, plans[0] != plans[1]


def _tester(kind: SignalKind) -> Tester:
    if kind in _BY_NAME:
        by_name = _BY_NAME[kind]
        return lambda sig, table, f: by_name(sig, f)
    if kind in _BY_ELF:
        by_elf = _BY_ELF[kind]
        return lambda sig, table, f: by_elf(sig, f.elf, f.name) if f.elf is not None else None
    if kind is SignalKind.STRINGS:
        return lambda sig, table, f: _strings_hit(sig, table, f, f.data) if f.data is not None else None
    if kind is SignalKind.MAGIC:
        return lambda sig, table, f: _magic_hit(sig, table, f, f.data) if f.data is not None else None
    if kind is SignalKind.SYMBOLS:
        return lambda sig, table, f: _symbols_hit(sig, table, f) if f.data is not None else None
    return _test


def _match(layer: Layer, hits: list[tuple[Signal, str]]) -> ComponentMatch:
    content = [s for s, _ in hits if not s.kind.corroborating]
    best = Confidence(max(content, key=lambda s: RANK[s.confidence]).confidence)
    facts = LayerFacts(signals=tuple(s.id for s, _ in hits), replaces=any(s.replaces for s, _ in hits),
                       platform=layer.platform.display if layer.platform is not None else None,
                       project=layer.project or None)  # relation (targets, ships): from the kind
    evidence = tuple(f"{layer.display}: {s.evidence} [{s.id}, {s.confidence}]: {detail}" for s, detail in hits)
    return ComponentMatch(
        name=layer.id, display=layer.display, kind=layer.kind, vendor=layer.vendor, version=None,
        version_source=None, license=layer.license, evidence=evidence, confidence=best, layer=facts)


def _test(sig: Signal, table: SignalTable, f: _File) -> str | None:
    """What ``sig`` found in the file (the evidence detail), or None."""
    if sig.kind in _BY_NAME:
        return _BY_NAME[sig.kind](sig, f)
    if sig.kind in _BY_ELF:
        return _BY_ELF[sig.kind](sig, f.elf, f.name) if f.elf is not None else None
    if f.data is None:
        return None
    if sig.kind is SignalKind.SYMBOLS:
        return _symbols_hit(sig, table, f)
    if sig.kind is SignalKind.MAGIC:
        return _magic_hit(sig, table, f, f.data)
    if sig.kind is SignalKind.STRINGS:
        return _strings_hit(sig, table, f, f.data)
    raise ValueError(f"unknown signal kind {sig.kind!r} ({sig.id})")


def _file_name_hit(sig: Signal, f: _File) -> str | None:
    return f"file name {f.name!r}" if sig.pattern("name").fullmatch(f.name) else None


def _path_hit(sig: Signal, f: _File) -> str | None:
    return f"path {f.vpath!r}" if sig.pattern("path").search(f.vpath) else None


def _empty_file_hit(sig: Signal, f: _File) -> str | None:
    return f"zero-byte {f.name!r}" if f.size == 0 and sig.pattern("name").fullmatch(f.name) else None


def _named_imports_hit(sig: Signal, f: _File) -> str | None:
    soname = f.elf.soname if f.elf is not None else None
    if sig.name is not None and not any(sig.name.fullmatch(n) for n in (f.name, soname) if n):
        return None
    return _imports_hit(sig.pattern("imports"), sig.unless_imports, f)


def _soname_hit(sig: Signal, elf: ElfFacts, name: str) -> str | None:
    if not elf.soname or not sig.pattern("soname").search(elf.soname):
        return None
    return f"DT_SONAME {elf.soname}"


def _runpath_hit(sig: Signal, elf: ElfFacts, name: str) -> str | None:
    hits = [p for p in elf.runpath + elf.rpath if sig.pattern("runpath").search(p)]
    return f"RUNPATH {':'.join(hits)}" if hits else None


def _soname_missing_hit(sig: Signal, elf: ElfFacts, name: str) -> str | None:
    if elf.elf_type != "ET_DYN" or elf.soname or not sig.pattern("name").fullmatch(name):
        return None
    return f"{name!r} has no DT_SONAME"


_BY_NAME: dict[SignalKind, Callable[[Signal, _File], str | None]] = {
    SignalKind.FILE_NAME: _file_name_hit, SignalKind.PATH: _path_hit, SignalKind.EMPTY_FILE: _empty_file_hit,
    SignalKind.IMPORTS: _named_imports_hit}
_BY_ELF: dict[SignalKind, Callable[[Signal, ElfFacts, str], str | None]] = {
    SignalKind.SONAME: _soname_hit, SignalKind.RUNPATH: _runpath_hit, SignalKind.SONAME_MISSING: _soname_missing_hit}


def _magic_hit(sig: Signal, table: SignalTable, f: _File, data: Buffer) -> str | None:
    magic_bytes = sig.magic or b""
    if window(data, 0, len(magic_bytes)) != magic_bytes:
        return None
    end = min(f.size, table.magic_window)
    if all(find(data, lit, 0, end) >= 0 for lit in sig.all_of):
        return (f"magic {magic_bytes!r} and {', '.join(repr(x.decode('latin-1')) for x in sig.all_of)} "
                f"in the first {end} bytes")
    return None


def _imports_hit(wanted: re.Pattern[str], unless: re.Pattern[str] | None, f: _File) -> str | None:
    if f.fmt not in ("elf", "pe"):
        return None
    imports = f.imports()
    hits = [n for n in imports if wanted.search(n)]
    if not hits or (unless is not None and any(unless.search(n) for n in imports)):
        return None
    return f"{'DT_NEEDED' if f.fmt == 'elf' else 'imports'} {', '.join(hits)}"


def _symbols_hit(sig: Signal, table: SignalTable, f: _File) -> str | None:
    gate = _imports_hit(sig.pattern("imports"), None, f)
    if gate is None:
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


def _strings_hit(sig: Signal, table: SignalTable, f: _File, data: Buffer) -> str | None:
    if f.fmt not in sig.formats:
        return None
    if sig.name is not None and not sig.name.fullmatch(f.name):
        return None
    if sig.path is not None and not sig.path.search(f.vpath):
        return None
    if sig.magic is not None and window(data, 0, len(sig.magic)) != sig.magic:
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
           "dynamic_symbols", "literal_set", "load_signals", "silent"]
