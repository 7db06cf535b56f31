"""The content cache of ``licscan audit`` and ``licscan sbom`` (``--cache-dir``, ``--no-cache``); docs/cache.md.

Trust: the cache folder is an input licscan trusts only as far as it can check it.

- The folder must belong to the user running licscan and must not be writable by group or others (else the cache
  is refused with a one-line message and the scan runs without it).
- An entry is JSON of licscan's own frozen dataclasses and enums (:func:`encode`/:func:`decode`, a closed codec:
  only classes defined in ``licscan`` modules, never code), zlib-compressed, behind a header line that carries an
  HMAC-SHA256 over the entry's name, kind and payload. The HMAC key is ``LICSCAN_CACHE_SECRET`` when set, else 32
  random bytes kept in ``<cache>/v2/secret`` (mode 0600, created on first use). An entry whose HMAC does not
  verify (corrupt, truncated, forged without the key, copied under another name), that is not a regular file of
  ours, or that does not decode to the expected type, is a miss: the file is examined again. Never an error.
- Keys are content digests (SHA-256 of the bytes), bound to the licscan version, the code and knowledge-table
  digests (:func:`code_digest`) and the scan settings; a same-boot memo maps a file's identity (device, inode,
  size, mtime, ctime) to its digest so an unchanged file is not hashed again on the machine that hashed it.
- Size bound: ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`); :meth:`Cache.trim` removes the least recently
  used entries (hits refresh an entry's mtime) until the folder holds at most 80 % of it.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import hashlib
import hmac
import importlib
import json
import os
import stat
import sys
import tempfile
import zlib
from collections.abc import Sequence
from typing import Any

from licscan import __version__

FORMAT = 2
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB
_MAGIC = b"licscan-cache 2\n"
_SECRET_ENV = "LICSCAN_CACHE_SECRET"
_MAX_ENTRY_BYTES = 256 << 20  # an entry file larger than this is not read (licscan writes none that large)


def default_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "licscan")


class CacheRefused(Exception):
    """The cache folder cannot be trusted or used; ``str(error)`` is the one-line reason."""


# ------------------------------------------------------------------------------------------------- the codec
# JSON of licscan's value types: a dataclass is {"@": "module:QualName", "f": [field values in field order]} (the
# field names are bound into the key through the code digest), an enum member
# {"@e": "module:QualName", "v": value}; tuples are JSON arrays; lists, dicts, sets and bytes are tagged
# ({"@l": [...]}, {"@d": [[k, v], ...]}, {"@s": [...]}, {"@b": base64}). Decoding constructs only dataclasses and
# enums defined in licscan's own modules: a name outside them is an error (a miss), so nothing in an entry can name
# code to run.


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
        obj = object.__new__(cls)
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


# --------------------------------------------------------------------------------------------- what keys bind


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 over licscan's version, its Python sources and the knowledge tables and rule packs under ``rules/``
    (the shipped ``licscan._builtin_rules``): a changed catalog entry, licence fingerprint, toolkit table or reader
    makes every cached result a miss (issue 12 item 6). About 1.5 MB of reading, once per process."""
    import licscan
    import licscan._builtin_rules as rules

    digest = hashlib.sha256(f"licscan {__version__} cache {FORMAT}\0".encode())
    roots = [os.path.dirname(licscan.__file__)]
    rules_root = os.path.dirname(rules.__file__ or "")
    if rules_root and not rules_root.startswith(roots[0] + os.sep):
        roots.append(rules_root)
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(folder, name)
                try:
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError:
                    continue
                digest.update(os.path.relpath(path, root).encode("utf-8", "surrogateescape") + b"\0")
                digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def boot_id() -> str | None:
    """This boot's id (Linux): identity memos are trusted only on the boot that wrote them."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
            return handle.read(64).decode("ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def file_digest(fd: int, size: int, *, block: int = 1 << 20) -> str:
    """SHA-256 of the first ``size`` bytes of the open file ``fd``, read with ``preadv`` in 1 MiB blocks (no
    mapping, so the pages read do not stay in this process's resident set; hashlib releases the GIL)."""
    digest = hashlib.sha256()
    buf = bytearray(block)
    view = memoryview(buf)
    offset = 0
    while offset < size:
        n = os.preadv(fd, [view[: min(block, size - offset)]], offset)
        if n <= 0:
            break
        digest.update(view[:n])
        offset += n
    if offset != size:
        raise OSError("file changed while it was hashed")
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ the store


def _check_folder(path: str) -> None:
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise CacheRefused(f"cache folder {path} is not a folder: running without the cache")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise CacheRefused(f"cache folder {path} belongs to another user (uid {st.st_uid}): running without the "
                           "cache")
    if st.st_mode & 0o022:
        raise CacheRefused(f"cache folder {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}):"
                           " running without the cache")


class Cache:
    """One scan's view of the cache folder. ``settings`` (what changes results) is bound into every key."""

    def __init__(self, directory: str, settings: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 secret: bytes | None = None):
        self.root = directory
        self.directory = os.path.join(directory, f"v{FORMAT}")
        self.max_bytes = max_bytes
        self._salt = hashlib.sha256(f"{code_digest()}\0{settings}".encode("utf-8", "surrogateescape")).digest()
        self._secret = secret
        self.hits = 0
        self.misses = 0
        self.written = 0

    # ---- opening
    @classmethod
    def open(cls, directory: str, settings: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Cache:
        """The cache in ``directory`` (created, mode 0700, when missing); :class:`CacheRefused` when the folder or
        its key cannot be trusted."""
        cache = cls(directory, settings, max_bytes=max_bytes)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            _check_folder(directory)
            try:
                os.mkdir(cache.directory, 0o700)
            except FileExistsError:
                pass
            _check_folder(cache.directory)
            cache._secret = cache._load_secret()
        except CacheRefused:
            raise
        except OSError as error:
            raise CacheRefused(f"cache folder {directory} cannot be used ({error.strerror or error}): running "
                               "without the cache") from None
        return cache

    def _load_secret(self) -> bytes:
        given = os.environ.get(_SECRET_ENV)
        if given:
            return hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        path = os.path.join(self.directory, "secret")
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(os.urandom(32))
        try:
            fd = os.open(path, flags)
        except OSError as error:
            raise CacheRefused(f"cache key {path} cannot be read ({error.strerror or error}): running without the "
                               "cache") from None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode) or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()) \
                    or st.st_mode & 0o077:
                raise CacheRefused(f"cache key {path} is not a private file of this user: running without the cache")
            secret = handle.read(33)
        if len(secret) != 32:
            raise CacheRefused(f"cache key {path} is damaged (remove it to start a new cache): running without the "
                               "cache")
        return secret

    # ---- keys
    def key(self, kind: str, *parts: str) -> str:
        """The entry name for ``kind`` (``file``, ``archive``, ``memo``, ``findings``) and what identifies it."""
        digest = hashlib.sha256(self._salt)
        for part in (kind, *parts):
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
        return digest.hexdigest()

    def identity_key(self, real_path: str, identity: os.stat_result | Sequence[Sequence[int]]) -> str | None:
        """The memo name of unchanged files on this boot (None without a boot id): ``identity`` is a stat result, or
        (device, inode, size, mtime ns, ctime ns) of each file of a batch."""
        boot = boot_id()
        if boot is None:
            return None
        if isinstance(identity, os.stat_result):
            identity = [(identity.st_dev, identity.st_ino, identity.st_size, identity.st_mtime_ns,
                         identity.st_ctime_ns)]
        return self.key("memo", boot, real_path, *(",".join(str(x) for x in ident) for ident in identity))

    def _file(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".entry")

    # ---- entries
    def _mac(self, key: str, kind: str, payload: bytes) -> str:
        assert self._secret is not None
        return hmac.new(self._secret, f"{key}\0{kind}\0".encode() + payload, hashlib.sha256).hexdigest()

    def get(self, key: str, kind: str, expect: type | tuple[type, ...] | None = None) -> Any | None:
        """The value stored under ``key``, or None (a miss) for anything absent, foreign, corrupt or forged."""
        value = self._read(key, kind)
        if value is None or (expect is not None and not isinstance(value, expect)):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def _read(self, key: str, kind: str) -> Any | None:
        if self._secret is None:
            return None
        path = self._file(key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                         | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as handle:
                st = os.fstat(handle.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_ENTRY_BYTES or st.st_mode & 0o022 \
                        or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
                    return None
                raw = handle.read(_MAX_ENTRY_BYTES + 1)
            if not raw.startswith(_MAGIC):
                return None
            header_end = raw.find(b"\n", len(_MAGIC))
            if header_end < 0:
                return None
            header = json.loads(raw[len(_MAGIC):header_end])
            payload = raw[header_end + 1:]
            if not isinstance(header, dict) or header.get("key") != key or header.get("kind") != kind \
                    or not isinstance(header.get("mac"), str) or header.get("size") != len(payload):
                return None
            if not hmac.compare_digest(header["mac"], self._mac(key, kind, payload)):
                return None
            value = loads(zlib.decompress(payload))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError, zlib.error):
            return None
        try:
            os.utime(path)  # least recently used goes first when the folder is trimmed
        except OSError:
            pass
        return value

    def put(self, key: str, kind: str, value: Any) -> bool:
        """Store ``value`` (atomically); False when it cannot be encoded or written (a cache only saves time)."""
        if self._secret is None:
            return False
        try:
            payload = zlib.compress(dumps(value), 1)
        except (CodecError, ValueError, TypeError, RecursionError):
            return False
        header = json.dumps({"key": key, "kind": kind, "size": len(payload),
                             "mac": self._mac(key, kind, payload)}, separators=(",", ":")).encode()
        target = self._file(key)
        try:
            folder = os.path.dirname(target)
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:
                pass
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(_MAGIC + header + b"\n" + payload)
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except OSError:
            return False
        self.written += 1
        return True

    # ---- size bound
    def trim(self) -> int:
        """Remove least recently used entries (and stale temporary files) while the folder holds more than
        ``max_bytes``, down to 80 % of it; returns the number of files removed."""
        entries: list[tuple[int, int, str]] = []
        total = 0
        try:
            subfolders = [e for e in os.scandir(self.directory) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return 0
        for sub in subfolders:
            try:
                with os.scandir(sub.path) as listing:
                    for item in listing:
                        if not item.is_file(follow_symlinks=False):
                            continue
                        st = item.stat(follow_symlinks=False)
                        entries.append((st.st_mtime_ns, st.st_size, item.path))
                        total += st.st_size
            except OSError:
                continue
        if total <= self.max_bytes:
            return 0
        removed = 0
        goal = self.max_bytes * 8 // 10
        for _mtime, size, path in sorted(entries):
            if total <= goal:
                break
            try:
                os.unlink(path)
            except OSError:
                continue
            total -= size
            removed += 1
        return removed
