"""Folders and the plain files in them (walk.py): folders are listed sorted by name and never left through a
symlink; a regular file is opened only to read its first bytes, and mapped and walked when it is an archive.

A folder's installed distributions (``*.dist-info`` / ``*.egg-info``) are yielded after its listing, then the
layers of the image it holds (an OCI layout or an extracted docker-save), if any. They are read when the folder is
opened, though, and handed to ``ahead`` (walk.py) at once: the scan can give them to its worker processes before
it has the folder's files, so that examining files overlaps the walk.

Real paths: a folder is entered only when it is not a link, so the real path of everything under a top-level
folder is the real path of that folder joined with the names below it (``os.path.realpath`` once per input, not
once per file: it looks at every component of the path).
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

from licscan.binary.paged import read_all
from licscan.inventory import distributions, images, imagewalk
from licscan.inventory.archives import Level, Walker
from licscan.inventory.fsread import FILE_FLAGS, link_note, open_beneath, readlink, special_kind
from licscan.inventory.items import ArchiveSkipped, FileBlob, Item
from licscan.inventory.sniff import HEAD_SIZE, archive_kind
from licscan.model import Diagnostic, DiagnosticKind, Distribution, SpecialFile, SpecialKind

#: Told of every installed distribution as soon as its folder's parent is opened (walk.py ``distributions_ahead``).
Ahead = Callable[[Distribution], None]


@dataclass
class _Folder:
    """One folder being listed by :func:`folder`."""

    path: str
    vpath: str
    real: str  # its real path
    base: str  # vpath + "/"
    entries: Iterator[os.DirEntry[str]]
    plan: imagewalk.Plan | None
    installed: list[Item] = field(default_factory=list)  # what its *.dist-info / *.egg-info folders gave


def folder(walker: Walker, path: str, vpath: str, root: str, ahead: Ahead | None = None,
           whole: int = 0) -> Iterator[Item]:
    """The folder ``path`` (real path ``root``) and everything under it, depth first in name order. Iterative (a
    stack of open folders, not recursion): a tree nested thousands of folders deep is walked like any other.
    ``whole``: plain files up to this size are read whole (:func:`plain_file`)."""
    stack: list[_Folder] = []
    opened = yield from _open_folder(walker, path, vpath, root, ahead)
    if opened is not None:
        stack.append(opened)
    while stack:
        top = stack[-1]
        entry = next(top.entries, None)
        if entry is None:
            stack.pop()
            yield from _close_folder(walker, top)
            continue
        child, child_v, child_real = entry.path, top.base + entry.name, os.path.join(top.real, entry.name)
        if walker.excluded(child_v):
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as error:
            yield Diagnostic(child_v, DiagnosticKind.UNREADABLE, f"cannot stat: {error.strerror or error}")
            continue
        if stat.S_ISLNK(mode):
            yield SpecialFile(child_v, SpecialKind.SYMLINK, readlink(child), link_note(child, root))
        elif stat.S_ISDIR(mode):
            opened = yield from _open_folder(walker, child, child_v, child_real, ahead)
            if opened is not None:
                stack.append(opened)
        elif stat.S_ISREG(mode):
            if child in walker.deferred:
                continue  # an image layer: walked with its image
            yield from plain_file(walker, child, child_v, real=child_real, whole=whole)
        else:
            yield SpecialFile(child_v, special_kind(mode), note="not a regular file: never opened")


def _open_folder(walker: Walker, path: str, vpath: str, real: str,
                 ahead: Ahead | None) -> Generator[Item, None, _Folder | None]:
    """List one folder (sorted by name); its image plan; its installed distributions, read now (handed to
    ``ahead``) and yielded when it is closed. Returns the :class:`_Folder`, None when unlistable."""
    try:
        with os.scandir(path) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as error:
        yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot list folder: {error.strerror or error}")
        return None
    plan, layer_paths, problem = imagewalk.folder_plan(
        path, vpath, {e.name for e in entries if e.is_file(follow_symlinks=False)}, walker.limits)
    if problem is not None:
        yield problem
    walker.deferred.update(layer_paths)
    base = vpath if vpath.endswith("/") else vpath + "/"
    opened = _Folder(path, vpath, real, base, iter(entries), plan)
    for entry in entries:
        if entry.name.endswith((".dist-info", ".egg-info")) and _is_folder(entry) \
                and not walker.excluded(base + entry.name):
            for item in distributions.installed(entry.path, base + entry.name, vpath, walker.limits):
                opened.installed.append(item)
                if ahead is not None and isinstance(item, Distribution):
                    ahead(item)
    return opened


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """A folder, not a link to one (the walk below reports an entry it cannot stat)."""
    try:
        return stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return False


def _close_folder(walker: Walker, done: _Folder) -> Iterator[Item]:
    """After a folder's listing: the distributions of its ``*.dist-info`` folders, then its image's layers."""
    yield from done.installed
    if done.plan:
        path, base = done.path, done.base
        yield from imagewalk.layers(done.plan, lambda layer, vis: plain_file(
            walker, os.path.join(path, *layer.path.split("/")), base + layer.path, visibility=vis, layer=layer.id,
            beneath=(path, layer.path)))


def plain_file(walker: Walker, path: str, vpath: str, *, visibility: images.Visibility | None = None,
               layer: str | None = None, beneath: tuple[str, str] | None = None,
               real: str | None = None, whole: int = 0) -> Iterator[Item]:
    """A regular file: yielded as a FileBlob for the scan to map, or walked when it is an archive. ``beneath`` =
    (folder, relative path): open it without following a link on any component (an image layer named by a
    manifest). ``real``: its real path when the caller knows it (else ``os.path.realpath``). ``whole``: a file of
    at most this many bytes is read whole by the read that gets its first bytes (one read either way), and a
    plain one is yielded with its bytes (``FileBlob.whole``)."""
    try:
        fd = open_beneath(*beneath, FILE_FLAGS) if beneath is not None else os.open(path, FILE_FLAGS)
    except OSError as error:
        yield _open_error(error, path, vpath, beneath is not None, visibility is not None)
        return
    try:  # the descriptor itself, not a file object around it (a third of the walk's CPU per file)
        yield from _opened_file(walker, fd, path, vpath, visibility, layer, real, whole)
    finally:
        os.close(fd)


def _opened_file(walker: Walker, fd: int, path: str, vpath: str, visibility: images.Visibility | None,
                 layer: str | None, real: str | None, whole_max: int) -> Iterator[Item]:
    """:func:`plain_file` of the file open at ``fd``."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            yield SpecialFile(vpath, special_kind(st.st_mode), note="not a regular file: never opened")
            return
        whole = read_all(fd, st.st_size) if whole_max and st.st_size <= whole_max else None
        head = whole[:HEAD_SIZE] if whole is not None else os.read(fd, HEAD_SIZE) if st.st_size else b""
    except OSError as error:
        yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot read: {error.strerror or error}")
        return
    kind = archive_kind(head)
    if kind is None or walker.limits.max_depth < 1:
        if kind is not None:
            yield walker.depth_diagnostic(vpath)
        yield FileBlob(vpath, st.st_size, (), real or os.path.realpath(path), None, stat.S_IMODE(st.st_mode),
                       layer, False, whole=whole)
        return
    if visibility is None and walker.skip_archive is not None and walker.skip_archive(vpath, path, st):
        yield ArchiveSkipped(vpath, real or os.path.realpath(path))
        return
    try:
        buf = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as error:
        yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot map: {error}")
        return
    try:
        walker.root_maps.append(buf)
        level = Level(vpath, (vpath,), 1, visibility, layer, False, kind, source=(buf, fd, 0))
        yield from walker.archive(level, buf)
    finally:
        walker.root_maps.remove(buf)
        _close_map(buf)


def _open_error(error: OSError, path: str, vpath: str, beneath: bool, in_layer: bool) -> Item:
    """What a file that could not be opened is reported as."""
    if beneath and error.errno in (errno.ELOOP, errno.ENOTDIR):
        return Diagnostic(vpath, DiagnosticKind.MALFORMED, "image layer reached through a link (never followed)")
    if error.errno == errno.ELOOP:
        return SpecialFile(vpath, SpecialKind.SYMLINK, readlink(path), "replaced by a link while walking")
    if error.errno == errno.ENOENT and in_layer:
        return Diagnostic(vpath, DiagnosticKind.MALFORMED, "image layer blob is missing")
    return Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot open: {error.strerror or error}")


def _close_map(buf: mmap.mmap) -> None:
    try:
        buf.close()
    except BufferError:
        pass  # a consumer still holds a view of it: closed with its last reference
