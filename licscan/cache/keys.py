"""What cache keys bind besides the input: licscan's code and knowledge tables, this boot, a file's bytes."""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import stat
import time
from collections.abc import Sequence

from licscan import __version__

FORMAT = 2


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 over licscan's version, its Python sources and the knowledge tables and rule packs under ``rules/``
    (the shipped ``licscan._builtin_rules``): a changed catalog entry, licence fingerprint, toolkit table or reader
    makes every cached result a miss (docs/cache.md). About 1.5 MB of reading, once per process."""
    import licscan

    rules = importlib.import_module("licscan._builtin_rules")  # rules/, installed under this name (pyproject.toml)
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




#: A tree whose newest change is younger than this is not memoised: a file written again within the timestamp
#: granularity of its file system (a few milliseconds) could keep its ctime with other bytes.
RACY_NS = 2_000_000_000


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev},{st.st_ino},{st.st_mode},{st.st_size},{st.st_mtime_ns},{st.st_ctime_ns}"


def tree_identity(paths: Sequence[str]) -> str | None:
    """SHA-256 over everything the walker can see of ``paths`` on this machine without reading a file's bytes: each
    input as given and its real path, then, depth first in name order, the name and identity (device, inode, mode,
    size, mtime, ctime in nanoseconds) of every entry under it, never following a link; for a link also its target
    text and what that target is (the walker says whether a link dangles, loops or points out of the tree). The
    kernel sets ctime on every change of a file's bytes or metadata, and a folder's on every entry added, removed
    or renamed, so on one boot an equal identity means an unchanged tree. None when any of it cannot be read, or
    when something in it changed less than :data:`RACY_NS` ago (the caller then does not memoise)."""
    user = (os.geteuid(), os.getegid(), sorted(os.getgroups())) if hasattr(os, "geteuid") else ()
    digest = hashlib.sha256(f"{user}\0".encode())  # what may be read depends on who reads
    newest = 0
    try:
        for path in paths:
            real = os.path.realpath(path)
            st = os.stat(path)
            digest.update(f"input\0{path}\0{real}\0{_identity(os.lstat(path))}\0{_identity(st)}\0".encode(
                "utf-8", "surrogateescape"))
            newest = max(newest, st.st_ctime_ns, st.st_mtime_ns)
            folders = [path] if stat.S_ISDIR(st.st_mode) else []
            while folders:
                folder = folders.pop()
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
                for entry in reversed(entries):  # popped in name order
                    st = entry.stat(follow_symlinks=False)
                    newest = max(newest, st.st_ctime_ns, st.st_mtime_ns)
                    line = f"{entry.path}\0{_identity(st)}"
                    if stat.S_ISLNK(st.st_mode):
                        line += f"\0{os.readlink(entry.path)}\0{_target(entry.path)}"
                    elif stat.S_ISDIR(st.st_mode):
                        folders.append(entry.path)
                    digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    except (OSError, ValueError):
        return None
    if newest > time.time_ns() - RACY_NS:
        return None
    return digest.hexdigest()


def _target(link: str) -> str:
    """What a link points at, as far as the walker looks: its real path and the target's identity, or the error."""
    try:
        return f"{os.path.realpath(link)}\0{_identity(os.stat(link))}"
    except OSError as error:
        return f"error {error.errno}"
