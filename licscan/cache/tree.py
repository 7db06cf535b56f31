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

import hashlib
import os
import stat
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from licscan.cache import keys
from licscan.inventory.fsread import link_note

Identity = tuple[int, int, int, int, int]  # device, inode, size, mtime ns, ctime ns

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_NOCTTY", 0)


@dataclass(frozen=True)
class Listing:
    """One listing of the inputs (module docstring)."""

    identity: str  # SHA-256 over every entry's name and identity: equal on one boot = unchanged (unless racy)
    shape: str  # SHA-256 over every entry's path, type, size (files), link target and note
    files: tuple[tuple[str, Identity], ...]  # every regular file (its path as walked, its identity), in walk order
    racy: bool  # something in the tree changed less than RACY_NS before the listing
    reals: tuple[str, ...] = ()  # the real path of each of ``files``, as the walker names a plain file's source
    racy_files: tuple[int, ...] = ()  # the indexes of the ``files`` that changed less than RACY_NS before the listing


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev},{st.st_ino},{st.st_mode},{st.st_size},{st.st_mtime_ns},{st.st_ctime_ns}"


def _file_identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _form(st: os.stat_result) -> str:
    """What a copy keeps of an entry's status and a scan reads: its type, and a regular file's size. Not its
    permission bits: a checkout or a restored cache made with another umask has others, and a scan uses them only
    to read, which :func:`content_digests` did (a folder it cannot list or a file it cannot read gives no key)."""
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return f"{stat.S_IFMT(st.st_mode):o},{size}"


def _target(link: str) -> str:
    """What a link points at, as far as the walker looks: its real path and the target's identity, or the error."""
    try:
        return f"{os.path.realpath(link)}\0{_identity(os.stat(link))}"
    except OSError as error:
        return f"error {error.errno}"


class _Digests:
    """The identity and shape digests of one listing, fed line by line (hashed a folder at a time)."""

    def __init__(self) -> None:
        user = (os.geteuid(), os.getegid(), sorted(os.getgroups())) if hasattr(os, "geteuid") else ()
        self.identity = hashlib.sha256(f"{user}\0".encode())  # what may be read depends on who reads
        self.shape = hashlib.sha256(b"shape\0")
        self.identities: list[str] = []
        self.shapes: list[str] = []
        self.newest = 0

    def add(self, identity: str, shape: str, st: os.stat_result) -> None:
        self.identities.append(identity)
        self.shapes.append(shape)
        self.newest = max(self.newest, st.st_ctime_ns, st.st_mtime_ns)

    def flush(self) -> None:
        if self.identities:
            self.identity.update(("\n".join(self.identities) + "\n").encode("utf-8", "surrogateescape"))
            self.shape.update(("\n".join(self.shapes) + "\n").encode("utf-8", "surrogateescape"))
            self.identities, self.shapes = [], []


def list_tree(paths: Sequence[str]) -> Listing | None:
    """List ``paths`` (module docstring); None when any of it cannot be listed."""
    out = _Digests()
    files: list[tuple[str, Identity]] = []
    reals: list[str] = []
    try:
        for path in paths:
            real = os.path.realpath(path)
            st = os.stat(path)  # an input is followed when it is a link: the user named it
            out.add(f"input\0{path}\0{real}\0{_identity(os.lstat(path))}\0{_identity(st)}",
                    f"input\0{path}\0{_form(st)}", st)
            if stat.S_ISREG(st.st_mode):
                files.append((path, _file_identity(st)))
                reals.append(real)
            folders = [(path, real)] if stat.S_ISDIR(st.st_mode) else []
            while folders:
                folder, folder_real = folders.pop()
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
                for entry in reversed(entries):  # folders popped in name order
                    st = entry.stat(follow_symlinks=False)
                    identity, shape = f"{entry.path}\0{_identity(st)}", f"{entry.path}\0{_form(st)}"
                    if stat.S_ISLNK(st.st_mode):
                        target = os.readlink(entry.path)
                        identity += f"\0{target}\0{_target(entry.path)}"
                        shape += f"\0{target}\0{link_note(entry.path, real)}"
                    elif stat.S_ISDIR(st.st_mode):
                        folders.append((entry.path, os.path.join(folder_real, entry.name)))
                    elif stat.S_ISREG(st.st_mode):
                        files.append((entry.path, _file_identity(st)))
                        reals.append(os.path.join(folder_real, entry.name))  # as the walker joins it
                    out.add(identity, shape, st)
                out.flush()
        out.flush()
    except (OSError, ValueError):
        return None
    since = time.time_ns() - keys.RACY_NS
    return Listing(out.identity.hexdigest(), out.shape.hexdigest(), tuple(files), out.newest > since, tuple(reals),
                   tuple(i for i, (_path, ident) in enumerate(files) if max(ident[3], ident[4]) > since))


def tree_identity(paths: Sequence[str]) -> str | None:
    """The identity of ``paths`` on this boot (module docstring); None when it cannot be listed or is racy."""
    listing = list_tree(paths)
    return listing.identity if listing is not None and not listing.racy else None


def content_digests(files: Sequence[tuple[str, Identity]], jobs: int = os.cpu_count() or 1) -> tuple[str, ...] | None:
    """The content digest of every file (:func:`licscan.cache.keys.file_digest`: BLAKE3, one read in 8 MiB blocks
    with ``preadv``, nothing stays resident), on ``jobs`` threads (BLAKE3 and ``preadv`` release the GIL), largest
    files first, the small ones a few dozen to a task; None when a file cannot be read or is not the file listed
    (another inode, or changed: its identity differs before or after the read)."""
    order = sorted(range(len(files)), key=lambda i: -files[i][1][2])
    local = threading.local()

    def task(indexes: list[int]) -> list[str | None]:
        buffer = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = memoryview(bytearray(keys.BLOCK))
        return [_digest(*files[i], buffer, threads=jobs <= 1) for i in indexes]

    tasks = _tasks(order, files)
    if jobs > 1 and len(tasks) > 1:
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
