"""The cache folder: trusted only as far as it can be checked; entries HMAC-checked before use (docs/cache.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Sequence
from typing import Any, cast

from zlib_ng import zlib_ng  # zlib's format (the standard library reads it too), inflated about 4x faster

from licscan.cache import keys, pack
from licscan.cache.codec import CodecError, dumps, loads
from licscan.cache.keys import FORMAT, boot_id, code_digest
from licscan.cache.tree import Identity, KnownDigests

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB
_MAGIC = b"licscan-cache 2\n"
_SECRET_ENV = "LICSCAN_CACHE_SECRET"
_MAX_ENTRY_BYTES = 256 << 20  # an entry file larger than this is not read (licscan writes none that large)
_ZLIB_ERROR = cast("type[Exception]", zlib_ng.error)  # a class (its stub declares an instance)
#: The kinds of entry a scan writes one of per batch or archive: written together (licscan.cache.pack)
PACKED = frozenset({"batch", "memo", "archive"})
_OLD_FORMAT = re.compile(r"v([0-9]{1,4})")  # <cache>/v1, ...: the folders of earlier formats (trim removes them)
_SIZES = "sizes"  # <cache>/v2/sizes, the name and kind of the entry that keeps each entry folder's bytes (trim)


def default_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "licscan")


class CacheRefused(Exception):
    """The cache folder cannot be trusted or used; ``str(error)`` is the one-line reason."""


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
    """One scan's view of the cache folder. ``settings`` (what changes results) is bound into every key; ``known``:
    the content digests of files already read for the tree memo's content key (:meth:`known_digest`)."""

    def __init__(self, directory: str, settings: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 secret: bytes | None = None, known: KnownDigests | None = None):
        self.root = directory
        self.known = known
        self.directory = os.path.join(directory, f"v{FORMAT}")
        self.max_bytes = max_bytes
        self._salt = hashlib.sha256(f"{code_digest()}\0{settings}".encode("utf-8", "surrogateescape")).digest()
        self._secret = secret
        self.hits = 0
        self.misses = 0
        self.written = 0

    # ---- opening
    @classmethod
    def open(cls, directory: str, settings: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
             known: KnownDigests | None = None) -> Cache:
        """The cache in ``directory`` (created, mode 0700, when missing); :class:`CacheRefused` when the folder or
        its key cannot be trusted."""
        cache = cls(directory, settings, max_bytes=max_bytes, known=known)
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

    def known_digest(self, real_path: str, identity: Identity) -> str | None:
        """The content digest (:func:`licscan.cache.keys.file_digest`) of the file at ``real_path`` when it was read
        for the tree memo in this run and still has ``identity``; None: the caller reads it."""
        return self.known.get(real_path, identity) if self.known is not None else None

    def _file(self, key: str) -> str:
        return pack.entry_path(self.directory, key)

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

    def _read(self, key: str, kind: str, path: str | None = None) -> Any | None:
        """The value of the entry ``key`` of ``kind`` at ``path`` (default: where entry ``key`` is kept), or None."""
        if self._secret is None:
            return None
        path = path or self._file(key)
        raw = pack.pending(self.directory, key)
        if raw is None:
            raw = _entry_bytes(path, key)
        if raw is None:
            return None
        try:
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
            value = loads(zlib_ng.decompress(payload))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError, _ZLIB_ERROR):
            return None
        try:
            os.utime(path)  # least recently used goes first when the folder is trimmed
        except OSError:
            pass
        return value

    def put(self, key: str, kind: str, value: Any) -> bool:
        """Store ``value`` (atomically); False when it cannot be encoded or written (a cache only saves time). An
        entry of the kinds a scan writes many of (:data:`PACKED`) is kept in this process and written with others
        (:mod:`licscan.cache.pack`): at the latest when the cache is trimmed or the process exits."""
        data = self._entry(key, kind, value)
        if data is None:
            return False
        if kind in PACKED and len(data) <= pack.MAX_ONE:
            pack.add(self.directory, key, data)
        elif not self._write(self._file(key), data):
            return False
        self.written += 1
        return True

    def flush(self) -> None:
        """Write the entries this process keeps for this folder (:meth:`put`)."""
        pack.flush(self.directory)

    def _store(self, path: str, key: str, kind: str, value: Any) -> bool:
        data = self._entry(key, kind, value)
        return data is not None and self._write(path, data)

    def _entry(self, key: str, kind: str, value: Any) -> bytes | None:
        """The bytes of the entry ``key`` of ``kind`` holding ``value`` (None: cannot be encoded, or no key)."""
        if self._secret is None:
            return None
        try:
            payload = zlib_ng.compress(dumps(value), 1)
        except (CodecError, ValueError, TypeError, RecursionError):
            return None
        header = json.dumps({"key": key, "kind": kind, "size": len(payload),
                             "mac": self._mac(key, kind, payload)}, separators=(",", ":")).encode()
        return _MAGIC + header + b"\n" + payload

    def _write(self, target: str, data: bytes) -> bool:
        return pack.write_one(target, data)

    # ---- size bound
    def trim(self) -> int:
        """Remove least recently used entries (and stale temporary files) while the folder holds more than
        ``max_bytes``, down to 80 % of it; returns the number of files removed.

        The bytes of each folder of entries are counted again only when it changed since they were last counted
        (the ``sizes`` file beside the entry folders, checked like an entry, keeps each folder's count with its
        identity): an entry is written, replaced or removed by a rename or an unlink in its folder, which gives the
        folder a new mtime and ctime, and a hit only touches the entry's own times. A folder that changed less than
        :data:`licscan.cache.keys.RACY_NS` before it was counted is counted again next time (a change within its
        file system's timestamp granularity could keep its times). So a run on a large cache that writes nothing
        looks at the 256 folders, not at every entry. The entries this process keeps for the folder are written
        first (:meth:`flush`)."""
        self.flush()
        self._remove_old_formats()
        try:
            with os.scandir(self.directory) as listing:
                folders = [(e.name, e.path, e.stat(follow_symlinks=False)) for e in listing
                           if e.is_dir(follow_symlinks=False)]
        except OSError:
            return 0
        known = self._sizes()
        counted: dict[str, tuple[int, int, int, int]] = {}
        total = 0
        settled = time.time_ns() - keys.RACY_NS
        for name, path, st in folders:
            stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
            found = known.get(name)
            size = found[3] if found is not None and found[:3] == stamp else _folder_bytes(path)
            if size is None:
                continue
            total += size
            if max(st.st_mtime_ns, st.st_ctime_ns) < settled:
                counted[name] = (*stamp, size)
        sizes = os.path.join(self.directory, _SIZES)
        if total <= self.max_bytes:
            if counted != known:
                self._store(sizes, _SIZES, _SIZES, tuple((name, *row) for name, row in sorted(counted.items())))
            return 0
        try:
            os.unlink(sizes)  # the folders are about to change: counted again next time
        except OSError:
            pass
        return self._evict([path for _name, path, _st in folders])

    def _remove_old_formats(self) -> None:
        """Remove the folders of older cache formats (``v1``: pickled entries, never read again since format 2)
        beside this one: nothing reads them, and the size bound counts only this format's folder. Only folders of
        this user, not links (``shutil.rmtree`` walks by file descriptor and does not follow links inside)."""
        if not shutil.rmtree.avoids_symlink_attacks:
            return
        try:
            with os.scandir(self.root) as listing:
                old = [e.path for e in listing if (m := _OLD_FORMAT.fullmatch(e.name)) and int(m[1]) < FORMAT
                       and e.is_dir(follow_symlinks=False)
                       and (not hasattr(os, "geteuid") or e.stat(follow_symlinks=False).st_uid == os.geteuid())]
        except OSError:
            return
        for path in old:
            shutil.rmtree(path, ignore_errors=True)

    def _sizes(self) -> dict[str, tuple[int, int, int, int]]:
        """The ``sizes`` file: folder name -> (inode, mtime ns, ctime ns, bytes of its files) when last counted."""
        rows = self._read(_SIZES, _SIZES, os.path.join(self.directory, _SIZES))
        if not isinstance(rows, tuple) or not all(
                isinstance(row, tuple) and len(row) == 5 and isinstance(row[0], str)
                and all(type(x) is int for x in row[1:]) for row in rows):
            return {}
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}

    def _evict(self, folders: Sequence[str]) -> int:
        """Remove the least recently used files of ``folders`` until they hold at most 80 % of ``max_bytes``; the
        names of one file (a pack, one per entry) go together: removing some of them frees nothing."""
        files: dict[tuple[int, int], tuple[int, int, list[str]]] = {}  # (device, inode) -> mtime, size, names
        for folder in folders:
            try:
                with os.scandir(folder) as listing:
                    for item in listing:
                        if item.is_file(follow_symlinks=False):
                            st = item.stat(follow_symlinks=False)
                            files.setdefault((st.st_dev, st.st_ino), (st.st_mtime_ns, st.st_size, []))[2].append(
                                item.path)
            except OSError:
                continue
        total = sum(size for _mtime, size, _names in files.values())
        removed = 0
        goal = self.max_bytes * 8 // 10
        for _mtime, size, names in sorted(files.values(), key=lambda f: (f[0], f[1], f[2][0])):
            if total <= goal:
                break
            for path in names:
                try:
                    os.unlink(path)
                except OSError:
                    continue
                removed += 1
            total -= size
        return removed


def _entry_bytes(path: str, key: str) -> bytes | None:
    """The bytes of the entry ``key`` in the file at ``path`` (an entry of its own, or a pack: docs/cache.md), when
    that file is a regular file of this user, not writable by others, at most :data:`_MAX_ENTRY_BYTES`."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_ENTRY_BYTES or st.st_mode & 0o022 \
                or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
            return None
        raw = os.read(fd, pack.HEAD)  # a pack's magic and table, or an entry (small ones whole)
        if raw.startswith(pack.MAGIC):
            where = pack.locate(raw, key, st.st_size)
            return os.pread(fd, where[1], where[0]) if where is not None else None
        parts, got = [raw], len(raw)
        while got <= _MAX_ENTRY_BYTES and (more := os.read(fd, max(st.st_size + 1 - got, 1 << 16))):
            parts.append(more)
            got += len(more)
        return b"".join(parts) if got <= _MAX_ENTRY_BYTES else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _share(st: os.stat_result) -> int:
    """The bytes a file of the folder takes, shared among its names (a pack has one per entry: docs/cache.md)."""
    return st.st_size // max(1, st.st_nlink)


def _folder_bytes(folder: str) -> int | None:
    """The bytes of the files in ``folder`` (entries and stale temporary files), or None when it cannot be read."""
    try:
        with os.scandir(folder) as listing:
            return sum(_share(item.stat(follow_symlinks=False)) for item in listing
                       if item.is_file(follow_symlinks=False))
    except OSError:
        return None
