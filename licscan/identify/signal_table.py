"""The translation-layer catalog (``rules/catalog/translation-layers.yaml``) compiled: platforms, layers and the
signals that name them (docs/layers.md explains the kinds). :mod:`licscan.identify.signals` runs them on a file."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from licscan.binary.probe import LiteralSet
from licscan.knowledge import catalog_table
from licscan.model import ComponentKind

RANK = {"low": 0, "medium": 1, "high": 2}  # signal confidence, lowest first
_SOURCE = "rules/catalog/translation-layers.yaml"


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


# The regex field each kind cannot do without (checked when the table is loaded).
_REQUIRED = {SignalKind.FILE_NAME: "name", SignalKind.PATH: "path", SignalKind.EMPTY_FILE: "name",
             SignalKind.IMPORTS: "imports", SignalKind.SONAME: "soname", SignalKind.RUNPATH: "runpath",
             SignalKind.SONAME_MISSING: "name", SignalKind.SYMBOLS: "imports"}


@dataclass(frozen=True)
class Signal:
    id: str
    layer: str
    confidence: str
    kind: SignalKind
    evidence: str
    source: str  # public URL that documents the signal
    name: re.Pattern[str] | None = None
    path: re.Pattern[str] | None = None
    imports: re.Pattern[str] | None = None
    unless_imports: re.Pattern[str] | None = None
    soname: re.Pattern[str] | None = None
    runpath: re.Pattern[str] | None = None
    exports: tuple[re.Pattern[str], ...] = ()
    imported: tuple[re.Pattern[str], ...] = ()
    cuda_named: bool = False
    any_of: tuple[bytes, ...] = ()
    all_of: tuple[bytes, ...] = ()
    none_of: tuple[bytes, ...] = ()
    magic: bytes | None = None
    formats: tuple[str, ...] = ("elf", "pe")
    replaces: bool = False  # proves the file is a drop-in for the NVIDIA file it is named like

    def pattern(self, field: str) -> re.Pattern[str]:
        """The regex ``field`` (``name``, ``imports`` ...) that this signal's kind requires (present by load)."""
        value = getattr(self, field)
        if not isinstance(value, re.Pattern):
            raise ValueError(f"{_SOURCE}: signal {self.id}: no {field}")
        return value


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
    cuda_named: re.Pattern[str]
    strings_limit: int
    named_limit: int
    magic_window: int
    symbols_limit: int
    symbol_prefilter: re.Pattern[str]  # union of every exports/imported regex: names worth keeping
    literals: tuple[bytes, ...]  # every literal a signal looks for in the whole file (searched in one pass)


def _lit(items: Iterable[object] | None) -> tuple[bytes, ...]:
    return tuple(str(i).encode("latin-1") for i in items or ())


def _layers(data: Mapping[str, Any]) -> dict[str, Layer]:
    platforms = {k: Platform(k, v["display"], v["vendor"]) for k, v in data["platforms"].items()}
    layers = {}
    for key, v in data["layers"].items():
        if v.get("platform") is not None and v["platform"] not in platforms:
            raise ValueError(f"{_SOURCE}: layer {key}: unknown platform")
        layers[key] = Layer(key, v["display"], v["vendor"], ComponentKind(v["kind"]), v.get("license"),
                            v.get("project"), platforms.get(v.get("platform")), bool(v.get("generic")))
    return layers


def _signal(s: Mapping[str, Any], layers: Mapping[str, Layer], named: Mapping[str, str]) -> Signal:
    def rx(value: str | None, flags: int = 0) -> re.Pattern[str] | None:
        return None if value is None else re.compile(named.get(value, value), flags)

    if s["layer"] not in layers or s["confidence"] not in RANK or not s.get("source"):
        raise ValueError(f"{_SOURCE}: bad signal {s.get('id')}")
    kind = SignalKind(s["kind"])
    exports = tuple(re.compile(named.get(x, x)) for x in s.get("exports") or ())
    imported = tuple(re.compile(named.get(x, x)) for x in s.get("imported") or ())
    if kind is SignalKind.SYMBOLS and (s.get("imports") is None or not (exports or imported)):
        raise ValueError(f"{_SOURCE}: symbols signal {s['id']} needs an imports gate and exports or imported")
    signal = Signal(
        id=s["id"], layer=s["layer"], confidence=s["confidence"], kind=kind, evidence=s["evidence"],
        source=s["source"], name=rx(s.get("name"), re.IGNORECASE), path=rx(s.get("path")),
        imports=rx(s.get("imports")), unless_imports=rx(s.get("unless_imports")), soname=rx(s.get("soname")),
        runpath=rx(s.get("runpath")), exports=exports, imported=imported, cuda_named=bool(s.get("cuda_named")),
        any_of=_lit(s.get("any_of")), all_of=_lit(s.get("all_of")), none_of=_lit(s.get("none_of")),
        magic=s["magic"].encode("latin-1") if s.get("magic") else None,
        formats=tuple(s.get("formats") or ("elf", "pe")), replaces=bool(s.get("replaces")))
    if kind in _REQUIRED:
        signal.pattern(_REQUIRED[kind])
    if kind is SignalKind.MAGIC and signal.magic is None:
        raise ValueError(f"{_SOURCE}: magic signal {s['id']} needs a magic")
    return signal


@functools.cache
def load_signals() -> SignalTable:
    data = catalog_table("translation-layers")
    named = dict(data.get("regexes") or {})
    layers = _layers(data)
    signals = tuple(_signal(s, layers, named) for s in data["signals"])
    symbol_patterns = [p.pattern for s in signals for p in s.exports + s.imported]
    limits = data["limits"]
    prefilter = re.compile("|".join(f"(?:{p})" for p in symbol_patterns) or "(?!)")
    return SignalTable(layers, signals, re.compile(data["cuda_named"]), int(limits["strings"]),
                       int(limits["named"]), int(limits["magic_window"]), int(limits["symbols"]), prefilter,
                       literals())


@functools.cache
def literals() -> tuple[bytes, ...]:
    """Every literal a signal looks for in the whole file (``all_of``, ``any_of``, ``none_of`` of every signal but
    a magic one, whose literals are searched in its magic window only), in table order: read from the table's data, no
    signal compiled (the naming layer's one pass over a file searches them beside the catalog's)."""
    return tuple(dict.fromkeys(lit for s in catalog_table("translation-layers")["signals"]
                               if SignalKind(s["kind"]) is not SignalKind.MAGIC
                               for lit in _lit(s.get("all_of")) + _lit(s.get("any_of")) + _lit(s.get("none_of"))))


@functools.cache
def literal_set() -> LiteralSet:
    """The literals of :func:`load_signals` as one :class:`LiteralSet`."""
    return LiteralSet(literals())


__all__ = ["RANK", "Layer", "Platform", "Signal", "SignalKind", "SignalTable", "literal_set", "literals",
           "load_signals"]
