"""The keys of the tree memo (docs/cache.md, "The tree memo"): what a whole tree is, on this boot and by content.

One listing of the inputs, the way the walker sees them (depth first, never following a link), gives

- the tree's **identity** on this boot: every entry's name and identity (device, inode, mode, size, mtime and ctime
  in nanoseconds; for a link its target and what that target is). The kernel sets ctime on every change of a file's
  bytes or metadata and a folder's on every entry added, removed or renamed, so on one boot an equal identity means
  an unchanged tree -- unless something changed less than :data:`licscan.cache.keys.RACY_NS` before the listing (a
  file written again within its file system's timestamp granularity can keep its ctime): such a listing is *racy*;
- the tree's **shape**: what the walker reads of it besides the bytes of its files, and nothing a copy of the tree
  changes -- each entry's path as walked, its type, a regular file's size, a link's target text and what the walker
  says of it (dangling, a loop, out of the tree: :func:`licscan.inventory.fsread.link_note`).

The BLAKE3 digest of every regular file's bytes (:func:`content_digests`, a full read) completes the shape into the
tree's **content key** (:func:`content_key`): a copy of the tree -- a fresh checkout, a restored CI cache, another
machine -- has the same content key, and any change a scan could see changes it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import threading
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any

from licscan.cache import keys

Identity = tuple[int, int, int, int, int]  # device, inode, size, mtime ns, ctime ns

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_NOCTTY", 0)
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_S_IFMT = 0o170000


@dataclass(frozen=True)
class _Input:
    """An input as given: its real path, its own status and its target's (an input that is a link is followed)."""

    path: str
    real: str
    own: os.stat_result
    st: os.stat_result


@dataclass(frozen=True)
class _Folder:
    """One listed folder: its path as walked, its real path as the walker joins it, and its entries in name order
    with their status (not followed) and, for a link, its target text, what it points at (:func:`_target`) and
    what the walker says of it (:func:`licscan.inventory.fsread.link_note`), by index."""

    path: str
    real: str
    names: tuple[str, ...]
    stats: tuple[os.stat_result, ...]
    links: Mapping[int, tuple[str, str, str | None]]


@dataclass(frozen=True)
class Listing:
    """One listing of the inputs (module docstring). The identity is hashed while listing (all an unchanged tree on
    this boot needs); the shape and the files are worked out from the status kept, when asked for."""

    identity: str  # SHA-256 over every entry's name and identity: equal on one boot = unchanged (unless racy)
    racy: bool  # something in the tree changed less than RACY_NS before the listing
    since: int  # the listing's time less RACY_NS (ns since the epoch): what changed after it is racy
    walked: tuple[_Input | _Folder, ...]  # the inputs and the folders under them, in walk order

    @functools.cached_property
    def shape(self) -> str:
        """SHA-256 over every entry's path, type, size (files), link target and what the walker says of the link."""
        digest = hashlib.sha256(b"shape\0")
        for part in self.walked:
            if isinstance(part, _Input):
                text = repr(("input", part.path, _form(part.st)))
            else:
                text = repr((part.path, part.names, [_form(st) for st in part.stats],
                             sorted((i, target, note) for i, (target, _at, note) in part.links.items())))
            _frame(digest, text.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    @functools.cached_property
    def files(self) -> tuple[tuple[str, Identity], ...]:
        """Every regular file: its path as walked and its identity, in walk order."""
        return tuple((path, _file_identity(st)) for path, _real, st in self._regular())

    @functools.cached_property
    def reals(self) -> tuple[str, ...]:
        """The real path of each of :attr:`files`, as the walker names a plain file's source."""
        return tuple(real for _path, real, _st in self._regular())

    @functools.cached_property
    def racy_files(self) -> tuple[int, ...]:
        """The indexes of the :attr:`files` that changed less than RACY_NS before the listing."""
        return tuple(i for i, (_path, ident) in enumerate(self.files) if max(ident[3], ident[4]) > self.since)

    def _regular(self) -> Iterator[tuple[str, str, os.stat_result]]:
        for part in self.walked:
            if isinstance(part, _Input):
                if stat.S_ISREG(part.st.st_mode):
                    yield part.path, part.real, part.st
                continue
            for name, st in zip(part.names, part.stats):
                if stat.S_ISREG(st.st_mode):
                    yield os.path.join(part.path, name), os.path.join(part.real, name), st


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev},{st.st_ino},{st.st_mode},{st.st_size},{st.st_mtime_ns},{st.st_ctime_ns}"


def _file_identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _form(st: os.stat_result) -> tuple[int, int]:
    """What a copy keeps of an entry's status and a scan reads: its type, and a regular file's size. Not its
    permission bits: a checkout or a restored cache made with another umask has others, and a scan uses them only
    to read, which :func:`content_digests` did (a folder it cannot list or a file it cannot read gives no key)."""
    return (st.st_mode & _S_IFMT, st.st_size if stat.S_ISREG(st.st_mode) else 0)


def _target(link: str) -> str:
    """What a link points at, as far as the walker looks: its real path and the target's identity, or the error."""
    try:
        return f"{os.path.realpath(link)}\0{_identity(os.stat(link))}"
    except OSError as error:
        return f"error {error.errno}"


def _frame(digest: Any, *parts: bytes) -> None:
    """Feed ``parts`` to ``digest``, each after its length: the stream says where every part ends."""
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)


def _numbers(code: str, values: list[int]) -> bytes:
    """``values`` as fixed-width machine integers (``array`` type ``code``), or their text when one does not fit (a
    time past 2262): tagged, so the two forms never meet."""
    try:
        return b"a" + array(code, values).tobytes()
    except OverflowError:
        return b"t" + repr(values).encode()


def _list_folder(path: str, real: str, seen: os.stat_result, follow: bool, root_real: str,
                 identity: Any) -> tuple[_Folder, list[int], int]:
    """List one folder (entries in name order, their status not followed) and feed its identity to ``identity``:
    its path and names, then each status field of its entries as one array (one pass per field, not per entry).
    The folder is opened once and its entries looked up in it (one path step each, not the whole path), and it must
    be the folder ``seen`` (its status in its parent's listing, or the input's: only an input given as a link is
    ``follow``-ed; OSError when it was replaced since). Returns the folder, the indexes of its sub-folders and the
    newest change (mtime or ctime, ns) of its entries."""
    fd = os.open(path, _FOLDER_FLAGS if follow else _FOLDER_FLAGS | getattr(os, "O_NOFOLLOW", 0))
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino):
            raise OSError(f"{path} was replaced while it was listed")
        names = tuple(sorted(os.listdir(fd)))
        stats = tuple([os.stat(name, dir_fd=fd, follow_symlinks=False) for name in names])
    finally:
        os.close(fd)
    modes = [st.st_mode for st in stats]
    mtimes = [st.st_mtime_ns for st in stats]
    ctimes = [st.st_ctime_ns for st in stats]
    links: dict[int, tuple[str, str, str | None]] = {}
    if any(map(stat.S_ISLNK, modes)):
        from licscan.inventory.fsread import link_note

        for i in compress(range(len(modes)), map(stat.S_ISLNK, modes)):
            link = os.path.join(path, names[i])
            links[i] = (os.readlink(link), _target(link), link_note(link, root_real))
    _frame(identity, path.encode("utf-8", "surrogateescape"), "\0".join(names).encode("utf-8", "surrogateescape"),
           _numbers("Q", [st.st_dev for st in stats]), _numbers("Q", [st.st_ino for st in stats]),
           _numbers("Q", modes), _numbers("Q", [st.st_size for st in stats]), _numbers("q", mtimes),
           _numbers("q", ctimes),
           repr(sorted((i, target, at) for i, (target, at, _note) in links.items())).encode("utf-8",
                                                                                             "surrogateescape"))
    subfolders = list(compress(range(len(modes)), map(stat.S_ISDIR, modes)))
    return _Folder(path, real, names, stats, links), subfolders, max(max(mtimes, default=0), max(ctimes, default=0))


def list_tree(paths: Sequence[str]) -> Listing | None:
    """List ``paths`` (module docstring); None when any of it cannot be listed."""
    user = (os.geteuid(), os.getegid(), sorted(os.getgroups())) if hasattr(os, "geteuid") else ()
    identity = hashlib.sha256(f"{user}\0".encode())  # what may be read depends on who reads
    walked: list[_Input | _Folder] = []
    newest = 0
    try:
        for path in paths:
            real = os.path.realpath(path)
            st = os.stat(path)  # an input is followed when it is a link: the user named it
            own = os.lstat(path)
            _frame(identity, f"input\0{path}\0{real}\0{_identity(own)}\0{_identity(st)}".encode(
                "utf-8", "surrogateescape"))
            walked.append(_Input(path, real, own, st))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
            folders = [(path, real, st, True)] if stat.S_ISDIR(st.st_mode) else []
            while folders:
                folder, subfolders, changed = _list_folder(*folders.pop(), real, identity)
                walked.append(folder)
                newest = max(newest, changed)
                for i in reversed(subfolders):  # pushed in reverse: popped in name order
                    name = folder.names[i]
                    folders.append((os.path.join(folder.path, name), os.path.join(folder.real, name),
                                    folder.stats[i], False))
    except (OSError, ValueError):
        return None
    since = time.time_ns() - keys.RACY_NS
    return Listing(identity.hexdigest(), newest > since, since, tuple(walked))


def tree_identity(paths: Sequence[str]) -> str | None:
    """The identity of ``paths`` on this boot (module docstring); None when it cannot be listed or is racy."""
    listing = list_tree(paths)
    return listing.identity if listing is not None and not listing.racy else None


def content_digests(files: Sequence[tuple[str, Identity]], jobs: int = os.cpu_count() or 1) -> tuple[str, ...] | None:
    """The content digest of every file (:func:`licscan.cache.keys.file_digest`: BLAKE3, one read with ``preadv``,
    nothing stays resident), on ``jobs`` threads (BLAKE3 and ``preadv`` release the GIL) each hashing its files on
    one core in blocks that stay in its L2 cache, largest files first, the small ones a few dozen to a task; with one
    thread (or one task), a large file is hashed on every core by BLAKE3's own threads. None when a file cannot be
    read or is not the file listed (another inode, or changed: its identity differs before or after the read)."""
    order = sorted(range(len(files)), key=lambda i: -files[i][1][2])
    tasks = _tasks(order, files)
    alone = jobs <= 1 or len(tasks) <= 1  # no thread of ours beside: BLAKE3's own threads hash a large file
    local = threading.local()

    def task(indexes: list[int]) -> list[str | None]:
        buffer = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = memoryview(bytearray(keys.BLOCK if alone else keys.SMALL_BLOCK))
        return [_digest(*files[i], buffer, threads=alone) for i in indexes]

    if not alone:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            found = list(pool.map(task, tasks))
    else:
        found = [task(t) for t in tasks]
    out: list[str | None] = [None] * len(files)
    for indexes, digests in zip(tasks, found):
        for index, digest in zip(indexes, digests):
            out[index] = digest
    return tuple(d for d in out if d is not None) if all(d is not None for d in out) else None


_TASK_BYTES = 16 << 20  # files are hashed this many bytes (or one larger file) to a task
_TASK_FILES = 64


def _tasks(order: Sequence[int], files: Sequence[tuple[str, Identity]]) -> list[list[int]]:
    """``order`` (indexes into ``files``) cut into tasks of at most :data:`_TASK_FILES` files and about
    :data:`_TASK_BYTES` bytes (a larger file alone): one task per file cost more than hashing a small one."""
    tasks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index in order:
        length = files[index][1][2]
        if current and (size + length > _TASK_BYTES or len(current) >= _TASK_FILES):
            tasks.append(current)
            current, size = [], 0
        current.append(index)
        size += length
    if current:
        tasks.append(current)
    return tasks


def _digest(path: str, identity: Identity, buffer: memoryview, *, threads: bool) -> str | None:
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        if _file_identity(os.fstat(fd)) != identity:
            return None
        digest = keys.file_digest(fd, identity[2], buffer, threads=threads)
        return digest if _file_identity(os.fstat(fd)) == identity else None
    except OSError:
        return None
    finally:
        os.close(fd)


def content_key(listing: Listing, digests: Sequence[str]) -> str:
    """The tree's content key: its shape and the digest of every regular file (:func:`content_digests`)."""
    if len(digests) != len(listing.files):
        raise ValueError("one digest per listed file")
    key = hashlib.sha256(f"content\0{listing.shape}\0".encode())
    for (path, _identity), digest in zip(listing.files, digests):
        key.update(f"{path}\0{digest}\n".encode("utf-8", "surrogateescape"))
    return key.hexdigest()


@dataclass(frozen=True)
class KnownDigests:
    """The content digests read for a tree's content key, by the real path of each file and the identity it had
    while it was read: the scan keys that file's cache entries by it while the file keeps that identity (on this
    boot an unchanged identity means unchanged bytes: module docstring), instead of reading it once more."""

    by_real: Mapping[str, tuple[Identity, str]]

    @classmethod
    def of(cls, listing: Listing, digests: Sequence[str]) -> KnownDigests:
        if len(digests) != len(listing.files) or len(listing.reals) != len(listing.files):
            raise ValueError("one digest and one real path per listed file")
        return cls({real: (identity, digest) for real, (_path, identity), digest
                    in zip(listing.reals, listing.files, digests)})

    def get(self, real: str, identity: Identity) -> str | None:
        """The digest of the file at ``real`` if it still has ``identity`` (None: not known)."""
        found = self.by_real.get(real)
        return found[1] if found is not None and found[0] == identity else None
