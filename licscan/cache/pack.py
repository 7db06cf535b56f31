"""Packs: the many small entries a scan writes (``batch``, ``memo``, ``archive``), written as one file and named by
hard links (docs/cache.md, "Packs").

Creating a file allocates an inode, and on ext4 that can cost far more than writing the file: the allocator walks
past every inode of the folder's group deleted in the last minutes (``recently_deleted`` in the kernel's
``find_inode_bit``), 0.3-0.8 ms of system time per file measured here after a tree was removed, 12 us otherwise.
An audit of an installed environment wrote 2,488 entries one file each: 0.03 to 2.9 s of system time depending on
what was deleted before it. So a process keeps the entries of those kinds in memory (:func:`add`) and writes them
together (:func:`flush`, when :data:`MAX_ENTRIES` or :data:`MAX_BYTES` are reached, when the cache is trimmed at the
end of a scan, and when the process exits): one file, then one hard link per entry at the entry's own name (a
folder entry, no inode), then the pack's own name removed. An entry is read by its name as before; the file it names
holds many entries and a table that locates each by its key (:func:`locate`).

Layout: :data:`MAGIC`, the number of entries ``n`` (4 bytes, little-endian), ``n`` rows of (the key's 32 bytes, the
entry's offset and length, 8 bytes each, little-endian), then the entries, each exactly the bytes an entry file of
its own would hold (magic line, header with key, kind, size and MAC, payload). The table only locates: the entry it
points at is checked as any other (its header must name the key asked for and its MAC verify), so a damaged table is
a miss, never a wrong value.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

MAGIC = b"licscan-pack 2\n"
_ROW = 48
# Entries per pack. A copy of the cache that does not keep hard links (zip, ``cp -r``, ``rsync`` without -H; tar,
# ``cp -a`` and actions/cache keep them) stores a pack once per name: at most this many times the cache's bytes.
MAX_ENTRIES = 8
MAX_BYTES = 1 << 20  # bytes per pack: written when reached
MAX_ONE = 256 << 10  # an entry larger than this is written as a file of its own
HEAD = 64 << 10  # the first read of an entry's file: a pack's magic and whole table, or a small entry whole

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NUMBERS = itertools.count()


def entry_path(directory: str, key: str) -> str:
    """Where the entry ``key`` is kept: ``<directory>/<first two hex digits>/<key>.entry``."""
    return os.path.join(directory, key[:2], key + ".entry")


def build(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """One pack of ``entries`` ((key, entry bytes) each; at most :data:`MAX_ENTRIES`)."""
    if len(entries) > MAX_ENTRIES:
        raise ValueError("too many entries for one pack")
    offset = len(MAGIC) + 4 + _ROW * len(entries)
    table = bytearray()
    for key, data in entries:
        table += bytes.fromhex(key) + offset.to_bytes(8, "little") + len(data).to_bytes(8, "little")
        offset += len(data)
    return b"".join([MAGIC, len(entries).to_bytes(4, "little"), bytes(table), *(data for _key, data in entries)])


def locate(head: bytes, key: str, size: int) -> tuple[int, int] | None:
    """(offset, length) of the entry ``key`` in the pack whose first bytes are ``head`` (at least :data:`HEAD` of
    them, or the whole pack) and whose size is ``size``; None when the pack does not list it or is damaged."""
    if not head.startswith(MAGIC) or len(head) < len(MAGIC) + 4:
        return None
    count = int.from_bytes(head[len(MAGIC):len(MAGIC) + 4], "little")
    start = len(MAGIC) + 4
    if count > MAX_ENTRIES or len(head) < start + _ROW * count:
        return None
    try:
        wanted = bytes.fromhex(key)
    except ValueError:
        return None
    if len(wanted) != 32:
        return None
    table = head[start:start + _ROW * count]
    at = table.find(wanted)
    while at >= 0 and at % _ROW:
        at = table.find(wanted, at + 1)
    if at < 0:
        return None
    offset = int.from_bytes(table[at + 32:at + 40], "little")
    length = int.from_bytes(table[at + 40:at + 48], "little")
    if offset < start + _ROW * count or offset + length > size:
        return None
    return offset, length


# ---- pending entries of this process


_PENDING: dict[str, dict[str, bytes]] = {}  # entry folder (<cache>/v2) -> key -> entry bytes, of this process
_PENDING_BYTES: dict[str, int] = {}
_OWNER = [0]  # the process the pending entries belong to (a forked worker starts with none)


def _pending() -> dict[str, dict[str, bytes]]:
    if _OWNER[0] != os.getpid():
        _PENDING.clear()
        _PENDING_BYTES.clear()
        _OWNER[0] = os.getpid()
        from multiprocessing import util

        # run when this process exits (a worker of the scan's pool too: multiprocessing runs its finalizers then)
        util.Finalize(None, flush_all, exitpriority=10)
    return _PENDING


def add(directory: str, key: str, data: bytes) -> None:
    """Keep the entry ``key`` (its bytes) to be written with others into ``directory``; written now when the
    pending entries reach :data:`MAX_ENTRIES` or :data:`MAX_BYTES`."""
    waiting = _pending().setdefault(directory, {})
    waiting[key] = data
    _PENDING_BYTES[directory] = _PENDING_BYTES.get(directory, 0) + len(data)
    if len(waiting) >= MAX_ENTRIES or _PENDING_BYTES[directory] >= MAX_BYTES:
        flush(directory)


def pending(directory: str, key: str) -> bytes | None:
    """The bytes of the entry ``key`` kept by :func:`add` and not written yet, if any."""
    if _OWNER[0] != os.getpid():  # nothing kept in this process (multiprocessing is not imported for a read)
        return None
    return _PENDING.get(directory, {}).get(key)


def flush(directory: str) -> int:
    """Write the pending entries of ``directory`` (one pack); the number written."""
    if _OWNER[0] != os.getpid():
        return 0
    waiting = _PENDING.pop(directory, None)
    _PENDING_BYTES.pop(directory, None)
    return write(directory, list(waiting.items())) if waiting else 0


def flush_all() -> None:
    for directory in list(_PENDING if _OWNER[0] == os.getpid() else ()):
        flush(directory)


# ---- writing


def write_one(target: str, data: bytes) -> bool:
    """Write ``data`` as the file ``target`` (an entry of its own): beside it under a name of this process, then
    renamed over it, so a reader sees the old entry or the whole new one. The folder is this user's alone (checked
    when the cache was opened), so the name need not be unguessable; O_EXCL and O_NOFOLLOW never write through
    something already there."""
    tmp = f"{target}.{os.getpid()}-{next(_NUMBERS)}.tmp"
    try:
        if not os.path.isdir(os.path.dirname(target)):
            _make_folder(os.path.dirname(target))
        fd = os.open(tmp, _FLAGS, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            _unlink(tmp)
            raise
    except OSError:
        return False
    return True


def write(directory: str, entries: Sequence[tuple[str, bytes]]) -> int:
    """Write ``entries`` as one pack and give each its name in ``directory`` (:func:`entry_path`), replacing an entry
    there; an entry that cannot be linked (a file system without hard links) is written as a file of its own.
    Returns the number of entries written."""
    if not entries:
        return 0
    if len(entries) == 1:
        return int(write_one(entry_path(directory, entries[0][0]), entries[0][1]))
    first = entry_path(directory, entries[0][0])
    home = f"{first}.{os.getpid()}-{next(_NUMBERS)}.pack.tmp"  # removed below; a stale one is trimmed like an entry
    try:
        _make_folder(os.path.dirname(home))
        fd = os.open(home, _FLAGS, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(build(entries))
        except BaseException:
            _unlink(home)
            raise
    except OSError:
        return sum(write_one(entry_path(directory, key), data) for key, data in entries)
    written = 0
    try:
        for key, data in entries:
            target = entry_path(directory, key)
            written += _link(home, target) or write_one(target, data)
    finally:
        _unlink(home)
    return written


def _link(home: str, target: str) -> bool:
    """Name the pack at ``home`` ``target`` too (replacing what is there); False when it cannot be linked."""
    for _attempt in range(2):
        try:
            os.link(home, target)
            return True
        except FileExistsError:
            tmp = f"{target}.{os.getpid()}-{next(_NUMBERS)}.tmp"
            try:
                os.link(home, tmp)
                os.replace(tmp, target)
                return True
            except OSError:
                _unlink(tmp)
                return False
        except FileNotFoundError:
            if not _make_folder(os.path.dirname(target)):
                return False
        except OSError:
            return False
    return False


def _make_folder(folder: str) -> bool:
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    return True


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
