"""The codec of cache entries: JSON of licscan's own frozen dataclasses and enums, never code (docs/cache.md).

A dataclass is {"@": "module:QualName", "f": [field values in field order]} (the field names are bound into the
key through the code digest), an enum member {"@e": "module:QualName", "v": value}; tuples are JSON arrays; lists,
dicts, sets and bytes are tagged ({"@l": [...]}, {"@d": [[k, v], ...]}, {"@s": [...]}, {"@b": base64}). A tuple of
many values of one dataclass (the device images of a library, of an inventory) is stored by columns,
{"@c": "module:QualName", "n": count, "c": [column...]}: a column is the list of that field's values, or, when few
of them differ, {"t": [each distinct value once], "i": [index into t per row]}; so the thousands of images that
share a path, a toolkit range or a producing tool decode each shared value once. A long string (a rendered
report: megabytes of JSON text, where a JSON string would escape every quote and line break) is kept after the JSON
as UTF-8, {"@t": [start, end]} naming its bytes: :func:`dumps` writes the JSON, a line break, then those bytes.
Decoding constructs only
dataclasses and enums defined in licscan's own modules: a name outside them is an error (a miss), so nothing in an
entry can name code to run.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import importlib
import json
import operator
import sys
from typing import Any


class CodecError(ValueError):
    pass


def _type_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, bool], ...]:
    return tuple((f.name, f.init) for f in dataclasses.fields(cls))


_SCALAR_TYPES = frozenset({str, bool, int, float})


#: A string of at least this many characters is kept after the JSON (module docstring), when :func:`encode` is given
#: the list to keep it in.
_BLOB_FROM = 4096


def encode(value: Any, blobs: bytearray | None = None) -> Any:
    """``value`` as JSON-able data (see above); :class:`CodecError` for anything else. ``blobs``: where long strings
    go (as UTF-8; their place in the JSON names them), None to keep every string in the JSON."""
    kind = type(value)
    if kind is str:
        return value if blobs is None or len(value) < _BLOB_FROM else _blob(value, blobs)
    if value is None or kind in _SCALAR_TYPES:
        return value
    if isinstance(value, enum.Enum):  # before str: a str-valued enum (Confidence) must decode as its member
        return {"@e": _type_name(type(value)), "v": encode(value.value, blobs)}
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        if len(value) >= _COLUMNS_FROM and _one_dataclass(value):
            return _columns(value, blobs)
        return [_flat(v, blobs) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"@": _type_name(cls), "f": [_flat(getattr(value, name), blobs) for name, _init in _fields(cls)]}
    if isinstance(value, list):
        return {"@l": [encode(v, blobs) for v in value]}
    if isinstance(value, dict):
        return {"@d": [[encode(k, blobs), encode(v, blobs)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {"@s": [encode(v, blobs) for v in value], "f": isinstance(value, frozenset)}
    if isinstance(value, (bytes, bytearray)):
        return {"@b": base64.b64encode(bytes(value)).decode("ascii")}
    raise CodecError(f"not cacheable: {type(value).__name__}")


def _blob(text: str, blobs: bytearray) -> dict[str, list[int]]:
    """Keep ``text`` after the JSON: its UTF-8 bytes (lone surrogates, from file names that are not UTF-8, kept as
    they are: ``surrogatepass``), named by where they start and end there."""
    start = len(blobs)
    blobs += text.encode("utf-8", "surrogatepass")
    return {"@t": [start, len(blobs)]}


# A tuple of at least this many values of one dataclass is stored by columns.
_COLUMNS_FROM = 8


def _one_dataclass(values: tuple[Any, ...]) -> bool:
    cls: type = type(values[0])
    return dataclasses.is_dataclass(cls) and all(type(v) is cls for v in values) \
        and getattr(cls, "__slots__", None) is None


_PLAIN = frozenset({str, int, bool, type(None)})  # JSON as they are; (type, value) tells them apart exactly


def _columns(values: tuple[Any, ...], blobs: bytearray | None) -> dict[str, Any]:
    cls: type = type(values[0])
    columns: list[Any] = []
    identities: dict[int, Any] = {}  # id -> exact key, for one encode call (values share their sub-values)
    for name, _init in _fields(cls):
        column = list(map(operator.attrgetter(name), values))
        kinds = set(map(type, column))
        keys: list[Any]
        if kinds <= _PLAIN:
            # one type: the values themselves tell them apart exactly; else (type, value) (True and 1 differ)
            keys = column if len(kinds) == 1 else list(zip(map(type, column), column))
            if 2 * len(set(keys)) > len(values):  # mostly distinct (sizes, offsets): the values themselves
                long = blobs is not None and str in kinds and max(len(x) for x in column if type(x) is str) \
                    >= _BLOB_FROM
                columns.append([_flat(x, blobs) for x in column] if long else column)
                continue
        elif len(kinds) == 1 and issubclass(next(iter(kinds)), enum.Enum):
            keys = list(map(id, column))  # members are singletons
        else:
            ids = list(map(id, column))
            try:  # one exact key per distinct object (the images of a fatbin share their container, tool...)
                exact = {i: _exact(x, identities) for i, x in dict(zip(ids, column)).items()}
            except TypeError:  # unhashable, or too deep to be worth it: the column as it is
                columns.append([encode(x, blobs) for x in column])
                continue
            keys = list(map(exact.__getitem__, ids))
        first = dict(zip(keys, column))  # first-seen order of the distinct keys, a value of each
        index = {key: i for i, key in enumerate(first)}
        rows = list(map(index.__getitem__, keys))
        table = [encode(x, blobs) for x in first.values()]
        columns.append({"t": table, "i": rows} if 2 * len(table) <= len(values) else [table[i] for i in rows])
    return {"@c": _type_name(cls), "n": len(values), "c": columns}


_FLAT = frozenset({int, bool, type(None)})


def _flat(value: Any, blobs: bytearray | None) -> Any:
    """:func:`encode` of a value, without the call for the plain ones (most fields and tuple items)."""
    kind = type(value)
    if kind in _FLAT or (kind is str and (blobs is None or len(value) < _BLOB_FROM)):
        return value
    return encode(value, blobs)


def _exact(value: Any, identities: dict[int, Any], depth: int = 0) -> Any:
    """A hashable key equal for two values exactly when they encode alike (True, 1 and 1.0 differ; 0.0 and -0.0
    differ); TypeError for a value that has none (a list, a dict) or is nested deeper than a shared part (a toolkit
    range, a tool, a tuple of them) is: such columns are stored as they are."""
    kind: type = type(value)
    if kind is float:
        return (kind, value.hex())
    if value is None or kind in _PLAIN or isinstance(value, enum.Enum):
        return (kind, value)
    known = identities.get(id(value))
    if known is not None:
        return known
    if depth > 2:
        raise TypeError("nested too deep to share")
    if kind is tuple or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        values = value if kind is tuple else _values_of(kind)(value)
        if _PLAIN.issuperset(map(type, values)):  # plain values: themselves and their types (three parts, not two)
            key: Any = (kind, values, tuple(map(type, values)))
        else:
            key = (kind, tuple(_exact(v, identities, depth + 1) for v in values))
    elif isinstance(value, (bytes, frozenset)):
        key = (kind, value)
    else:
        raise TypeError(f"no exact key for {kind.__name__}")
    identities[id(value)] = key
    return key


@functools.cache
def _values_of(cls: type) -> Any:
    """A function giving the tuple of a ``cls`` value's field values, in field order."""
    names = [name for name, _init in _fields(cls)]
    if len(names) == 1:
        return lambda value: (getattr(value, names[0]),)
    return operator.attrgetter(*names) if names else lambda value: ()


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


def decode(data: Any, blobs: bytes | memoryview = b"") -> Any:
    """The inverse of :func:`encode`; :class:`CodecError` (or TypeError/ValueError) on anything it did not make.
    A dataclass is rebuilt with exactly its fields, without running its ``__init__`` (licscan's value types are
    plain frozen dataclasses: no ``__post_init__``, no slots; the entry's HMAC already proved licscan wrote it)."""
    kind = type(data)
    if kind in _SCALARS:
        return data
    if kind is list:
        return tuple([v if type(v) in _SCALARS else decode(v, blobs) for v in data])
    if kind is not dict:
        raise CodecError("unexpected JSON value")
    name = data.get("@")
    if name is not None:
        cls, names = _dataclass(name)
        values = data.get("f")
        if type(values) is not list or len(values) != len(names) or len(data) != 2:
            raise CodecError(f"field set of {cls.__name__} changed")
        obj: object = object.__new__(cls)
        obj.__dict__.update(zip(names, [v if type(v) in _SCALARS else decode(v, blobs) for v in values]))
        return obj
    name = data.get("@e")
    if name is not None:
        members = _enum(name)
        try:
            return members[data["v"]]
        except (KeyError, TypeError):
            raise CodecError(f"not a member of {name}") from None
    name = data.get("@c")
    if name is not None:
        return _decode_columns(name, data, blobs)
    if "@t" in data:
        return _text(data, blobs)
    if "@l" in data:
        return [decode(v, blobs) for v in data["@l"]]
    if "@d" in data:
        return {decode(k, blobs): decode(v, blobs) for k, v in data["@d"]}
    if "@s" in data:
        items = (decode(v, blobs) for v in data["@s"])
        return frozenset(items) if data.get("f") else set(items)
    if "@b" in data:
        return base64.b64decode(data["@b"], validate=True)
    raise CodecError("untagged object")


def _text(data: dict[str, Any], blobs: bytes | memoryview) -> str:
    """A long string kept after the JSON (:func:`_blob`)."""
    where = data["@t"]
    if len(data) != 1 or type(where) is not list or len(where) != 2 or not all(type(x) is int for x in where) \
            or not 0 <= where[0] <= where[1] <= len(blobs):
        raise CodecError("bad text reference")
    return str(blobs[where[0]:where[1]], "utf-8", "surrogatepass")


def _decode_columns(name: str, data: dict[str, Any], blobs: bytes | memoryview) -> tuple[Any, ...]:
    cls, names = _dataclass(name)
    count, columns = data.get("n"), data.get("c")
    if type(count) is not int or type(columns) is not list or len(columns) != len(names) or len(data) != 3:
        raise CodecError(f"field set of {cls.__name__} changed")
    decoded: list[list[Any]] = []
    for column in columns:
        if type(column) is dict:
            table = [v if type(v) in _SCALARS else decode(v, blobs) for v in column["t"]]
            rows = column["i"]
            if type(rows) is not list or min(rows, default=0) < 0:  # min: a TypeError unless all are numbers
                raise CodecError("bad column index")
            try:
                values = [table[i] for i in rows]
            except IndexError:
                raise CodecError("column index out of range") from None
        elif type(column) is list:
            values = [v if type(v) in _SCALARS else decode(v, blobs) for v in column]
        else:
            raise CodecError("bad column")
        if len(values) != count:
            raise CodecError("column length differs")
        decoded.append(values)
    new = object.__new__
    out = []
    for row in zip(*decoded) if decoded else ((),) * count:
        obj: object = new(cls)
        obj.__dict__.update(zip(names, row))
        out.append(obj)
    return tuple(out)


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
    """``value`` as JSON (ASCII: no line break in it), then, when it holds long strings, a line break and their bytes
    (module docstring)."""
    blobs = bytearray()
    data = json.dumps(encode(value, blobs), ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")
    return data + b"\n" + blobs if blobs else data


def loads(raw: bytes) -> Any:
    """The inverse of :func:`dumps`."""
    end = raw.find(b"\n")
    if end < 0:
        return decode(json.loads(raw))
    return decode(json.loads(raw[:end]), memoryview(raw)[end + 1:])


