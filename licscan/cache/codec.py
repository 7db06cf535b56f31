"""The codec of cache entries: JSON of licscan's own frozen dataclasses and enums, never code (docs/cache.md).

A dataclass is {"@": "module:QualName", "f": [field values in field order]} (the field names are bound into the
key through the code digest), an enum member {"@e": "module:QualName", "v": value}; tuples are JSON arrays; lists,
dicts, sets and bytes are tagged ({"@l": [...]}, {"@d": [[k, v], ...]}, {"@s": [...]}, {"@b": base64}). Decoding
constructs only dataclasses and enums defined in licscan's own modules: a name outside them is an error (a miss),
so nothing in an entry can name code to run.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import importlib
import json
import sys
from typing import Any


class CodecError(ValueError):
    pass


def _type_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, bool], ...]:
    return tuple((f.name, f.init) for f in dataclasses.fields(cls))


def encode(value: Any) -> Any:
    """``value`` as JSON-able data (see above); :class:`CodecError` for anything else."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        return [encode(v) for v in value]
    if isinstance(value, enum.Enum):
        return {"@e": _type_name(type(value)), "v": encode(value.value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"@": _type_name(cls), "f": [encode(getattr(value, name)) for name, _init in _fields(cls)]}
    if isinstance(value, list):
        return {"@l": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"@d": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {"@s": [encode(v) for v in value], "f": isinstance(value, frozenset)}
    if isinstance(value, (bytes, bytearray)):
        return {"@b": base64.b64encode(bytes(value)).decode("ascii")}
    raise CodecError(f"not cacheable: {type(value).__name__}")


@functools.lru_cache(maxsize=256)
def _resolve(name: str) -> type:
    module_name, _, qualname = name.partition(":")
    if not (module_name == "licscan" or module_name.startswith("licscan.")) or not qualname:
        raise CodecError(f"foreign type {name!r}")
    if not all(part.isidentifier() for part in module_name.split(".") + qualname.split(".")):
        raise CodecError(f"bad type name {name!r}")
    try:
        target: Any = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise CodecError(f"unknown type {name!r}") from error
    if not isinstance(target, type) or target.__module__ != module_name:
        raise CodecError(f"not a licscan type {name!r}")
    if not (dataclasses.is_dataclass(target) or issubclass(target, enum.Enum)):
        raise CodecError(f"not a value type {name!r}")
    return target


_SCALARS = (str, int, float, bool, type(None))


def decode(data: Any) -> Any:
    """The inverse of :func:`encode`; :class:`CodecError` (or TypeError/ValueError) on anything it did not make.
    A dataclass is rebuilt with exactly its fields, without running its ``__init__`` (licscan's value types are
    plain frozen dataclasses: no ``__post_init__``, no slots; the entry's HMAC already proved licscan wrote it)."""
    kind = type(data)
    if kind in _SCALARS:
        return data
    if kind is list:
        return tuple([v if type(v) in _SCALARS else decode(v) for v in data])
    if kind is not dict:
        raise CodecError("unexpected JSON value")
    name = data.get("@")
    if name is not None:
        cls, names = _dataclass(name)
        values = data.get("f")
        if type(values) is not list or len(values) != len(names) or len(data) != 2:
            raise CodecError(f"field set of {cls.__name__} changed")
        obj: object = object.__new__(cls)
        obj.__dict__.update(zip(names, [v if type(v) in _SCALARS else decode(v) for v in values]))
        return obj
    name = data.get("@e")
    if name is not None:
        members = _enum(name)
        try:
            return members[data["v"]]
        except (KeyError, TypeError):
            raise CodecError(f"not a member of {name}") from None
    if "@l" in data:
        return [decode(v) for v in data["@l"]]
    if "@d" in data:
        return {decode(k): decode(v) for k, v in data["@d"]}
    if "@s" in data:
        items = (decode(v) for v in data["@s"])
        return frozenset(items) if data.get("f") else set(items)
    if "@b" in data:
        return base64.b64decode(data["@b"], validate=True)
    raise CodecError("untagged object")


@functools.lru_cache(maxsize=256)
def _enum(name: str) -> dict[Any, Any]:
    cls = _resolve(name)
    if not issubclass(cls, enum.Enum):
        raise CodecError("not an enum")
    return {member.value: member for member in cls}


@functools.lru_cache(maxsize=256)
def _dataclass(name: str) -> tuple[type, tuple[str, ...]]:
    cls = _resolve(name)
    if not dataclasses.is_dataclass(cls):
        raise CodecError("not a dataclass")
    if getattr(cls, "__slots__", None) is not None or "__post_init__" in vars(cls):
        raise CodecError(f"{cls.__name__} cannot be rebuilt field by field")
    return cls, tuple(n for n, _init in _fields(cls))


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value), ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def loads(raw: bytes) -> Any:
    return decode(json.loads(raw))


