"""Reading the scanned file system without following it anywhere: files opened without following a link (also on
every folder of a path inside the input), small metadata files read within a limit, links described and never
followed, special files named by their mode (walk.py: "never left through a symlink")."""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from licscan.model import SpecialKind

# A plain file of the input: read-only, never blocking on a FIFO that replaced it, never through a link, not inherited.
FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def is_real_dir(path: str) -> bool:
    """Whether ``path`` is a folder, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def open_beneath(root: str, rel: str, flags: int) -> int:
    """Open ``root/rel`` (``rel`` relative, ``/``-separated, no ``..``) without following a link on any component:
    what an image manifest names must be a file of the input, never what a link inside it points at."""
    parts = rel.split("/")
    if not rel or any(part in ("", ".", "..") for part in parts):
        raise OSError(errno.EINVAL, f"not a path inside the folder: {rel!r}")
    folder_flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        for part in parts[:-1]:
            inner = os.open(part, folder_flags, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], flags | getattr(os, "O_NOFOLLOW", 0), dir_fd=fd)
    finally:
        os.close(fd)


def read_small(path: str, rel: str | None, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path`` (or ``path/rel``, opened beneath ``path``)."""
    fd = open_beneath(path, rel, FILE_FLAGS) if rel is not None else os.open(path, FILE_FLAGS)
    with open(fd, "rb", closefd=True) as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return data


def readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def link_note(path: str, root: str | None) -> str | None:
    """What is wrong with the link ``path`` (dangling, a loop, pointing out of the folder ``root``), or None."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "link loop (never followed)"
        return "dangling: the target does not exist"
    if root is None:
        return None
    real = os.path.realpath(path)
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        return "points out of the scanned tree (never followed)"
    return None


def member_link_note(name: str, target: str | None) -> str | None:
    """What is wrong with the target of the archive member link ``name`` (absolute, out of the archive), or None."""
    if not target:
        return None
    if target.startswith("/"):
        return "absolute target (never followed)"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        return "points out of the archive (never followed)"
    return None


def special_kind(mode: int) -> SpecialKind:
    if stat.S_ISFIFO(mode):
        return SpecialKind.FIFO
    if stat.S_ISSOCK(mode):
        return SpecialKind.SOCKET
    if stat.S_ISCHR(mode):
        return SpecialKind.CHAR_DEVICE
    if stat.S_ISBLK(mode):
        return SpecialKind.BLOCK_DEVICE
    return SpecialKind.SYMLINK if stat.S_ISLNK(mode) else SpecialKind.FIFO
