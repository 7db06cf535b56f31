"""The walker: inputs (files, folders) -> FileBlob / SpecialFile / Distribution / Diagnostic, in a deterministic
order (docs/architecture.md "walk"; issue 3 items 1-2).

Folders are listed sorted by name and never left through a symlink: links are reported (SpecialFile SYMLINK with
their target, noted when dangling, looping or pointing out of the tree), FIFOs, sockets and devices are reported
and never opened. Regular files are opened only to read their first 512 bytes: an archive (by magic, sniff.py) is
mapped read-only and its members are walked, any other file is yielded with ``source`` set for the scan to map.
A top-level input that is itself a symlink is followed (the user named it).

Virtual paths (licscan/vpath.py): ``input!/member``, nested ``a.tar!/pkg.whl!/lib/x.so``. Containers that only package
a file tree are transparent and add no level: a compression around a tar (``x.tar.gz!/member``), the
``data.tar.*`` of a .deb (``pkg.deb!/usr/lib/x.so``; ``control.tar.*`` stays a level:
``pkg.deb!/control.tar.xz!/control``), the ``pkg-*.tar.zst`` and ``info-*.tar.zst`` of a .conda
(``pkg.conda!/lib/x.so``, ``pkg.conda!/info/index.json``, as in a v1 ``.tar.bz2``). A lone compressed file
(not a tar) is one member named from its gzip header or its name without the suffix: ``x.so.gz!/x.so``.

Images (images.py): a layer is the archive it is stored as, ``image.tar!/blobs/sha256/<hex>!/usr/lib/x.so``
(OCI), ``image.tar!/<id>/layer.tar!/usr/lib/x.so`` (docker save), ``layout/blobs/sha256/<hex>!/usr/lib/x.so``
(an OCI layout folder); FileBlob.layer is the layer digest (``sha256:<hex>``) or, for a docker-save layer path,
that path. The image's other files (index, manifests, config) are yielded first, as plain members, then the
layers of each manifest from the top layer down.

Static libraries (``ar`` archives other than .deb) are yielded as files: licscan.binary reads their members.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import mmap
import os
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import zstandard

from licscan.binary.stream import WindowStream
from licscan.inventory import compressed, images, metadata, names
from licscan.inventory.entries import ArchiveError, Entry, EntryType, ar_entries, tar_entries, zip_entries
from licscan.inventory.items import ArchiveSkipped, Distribution, FileBlob, SpecialFile, SpecialKind
from licscan.inventory.limits import WalkLimits
from licscan.inventory.sniff import COMPRESSED, HEAD_SIZE, ArchiveKind, is_tar_header, sniff
from licscan.inventory.spool import Budget, LimitExceeded, Spool
from licscan.model import Diagnostic, DiagnosticKind

__all__ = ["Item", "WalkLimits", "walk"]

Item = FileBlob | SpecialFile | Distribution | Diagnostic

# conda metadata at the root of a package, kept (up to max_metadata_bytes) to build its Distribution.
_CONDA_METADATA = {"info/index.json", "info/about.json", "info/paths.json", "info/files"}
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, RuntimeError, ArchiveError, tarfile.TarError,
                zlib.error, zstandard.ZstdError)
_IMAGE_FILES = {"manifest.json", "oci-layout", "index.json"}
_MAX_INFO_FILES = 100_000  # files of one *.dist-info folder looked at for licence files
_SPECIAL = {EntryType.FIFO: SpecialKind.FIFO, EntryType.CHAR_DEVICE: SpecialKind.CHAR_DEVICE,
            EntryType.BLOCK_DEVICE: SpecialKind.BLOCK_DEVICE, EntryType.HARDLINK: SpecialKind.HARDLINK,
            EntryType.SYMLINK: SpecialKind.SYMLINK}
_SUFFIXES = {ArchiveKind.GZIP: (".gz", ".tgz", ".z"), ArchiveKind.BZIP2: (".bz2", ".tbz2", ".tbz"),
             ArchiveKind.XZ: (".xz", ".txz"), ArchiveKind.ZSTD: (".zst", ".zstd", ".tzst")}


def walk(paths: Iterable[str], limits: WalkLimits = WalkLimits(), *,
         exclude: Callable[[str], bool] | None = None,
         skip_archive: Callable[[str, str, os.stat_result], bool] | None = None) -> Iterator[Item]:
    """Everything in ``paths`` (files or folders, as the user passed them). ``exclude(vpath)`` True skips a file,
    folder or member (and what is inside it). A yielded FileBlob's ``data`` is valid until the walk is advanced.
    ``skip_archive(vpath, real_path, stat)`` True for an archive *file* yields :class:`ArchiveSkipped` instead of
    its contents (the content cache has them)."""
    walker = _Walker(limits, exclude)
    walker.skip_archive = skip_archive
    try:
        for path in paths:
            yield from walker.input(path)
            walker.forget()
    finally:
        walker.close()


@dataclass
class _Folder:
    """One folder being listed by :meth:`_Walker.folder`."""

    path: str
    vpath: str
    base: str  # vpath + "/"
    entries: Iterator[os.DirEntry]
    plan: list | None
    infos: list[tuple[str, str]] = field(default_factory=list)  # its *.dist-info / *.egg-info folders


@dataclass
class _Level:
    """One archive being walked: its members are ``vpath!/name`` at ``depth``, inside ``containers``."""

    vpath: str
    containers: tuple[str, ...]  # of its members (this archive included)
    depth: int
    visibility: images.Visibility | None = None  # set while walking an image layer
    layer: str | None = None
    deleted: bool = False
    kind: ArchiveKind | None = None
    extra: list = field(default_factory=list)


class _Walker:
    def __init__(self, limits: WalkLimits, exclude: Callable[[str], bool] | None):
        self.limits = limits
        self.exclude = exclude
        self.spool = Spool(limits, drop_pages=self._drop_pages)
        self.budget = Budget(limits)
        self.over: str | None = None  # set once a whole-walk limit is reached
        self.seen: set[str] = set()  # member vpaths that distributions() may look for (licence files, metadata)
        self.kept: dict[str, bytes] = {}  # small metadata members of the archives being walked
        self.kept_bytes = 0
        self.deferred: set[str] = set()  # image layer files of a layout folder, walked after the folder
        self.skip_archive: Callable[[str, str, os.stat_result], bool] | None = None
        self.root_maps: list = []  # mappings of the archives being walked, files and spooled members (outermost first)

    def close(self) -> None:
        self.spool.close()

    def forget(self) -> None:
        self.seen.clear()
        self.kept.clear()
        self.kept_bytes = 0

    def _drop_pages(self) -> None:
        """Unmap the pages of the archive files read so far (they stay in the page cache): resident memory stays
        bounded by the member being read, not by the size of the archive."""
        for buf in self.root_maps:
            try:
                buf.madvise(mmap.MADV_DONTNEED)
            except (AttributeError, OSError, ValueError):
                pass

    def _excluded(self, vpath: str) -> bool:
        return self.exclude is not None and self.exclude(vpath)

    # ------------------------------------------------------------------------------------------------ inputs
    def input(self, path: str) -> Iterator[Item]:
        vpath = names.display(path)
        if self._excluded(vpath):
            return
        try:
            st = os.stat(path)
        except OSError as error:
            if os.path.islink(path):
                yield SpecialFile(vpath, SpecialKind.SYMLINK, _readlink(path), _link_note(path, None))
            else:
                yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot read: {error.strerror or error}")
            return
        if stat.S_ISDIR(st.st_mode):
            yield from self.folder(path, vpath, os.path.realpath(path))
        elif stat.S_ISREG(st.st_mode):
            yield from self.plain_file(path, vpath)
        else:
            yield SpecialFile(vpath, _special_kind(st.st_mode), note="not a regular file: never opened")

    def folder(self, path: str, vpath: str, root: str) -> Iterator[Item]:
        """The folder ``path`` and everything under it, depth first in name order. Iterative (a stack of open
        folders, not recursion): a tree nested thousands of folders deep is walked like any other."""
        stack: list[_Folder] = []
        opened = yield from self._open_folder(path, vpath)
        if opened is not None:
            stack.append(opened)
        while stack:
            top = stack[-1]
            entry = next(top.entries, None)
            if entry is None:
                stack.pop()
                yield from self._close_folder(top)
                continue
            child, child_v = entry.path, top.base + entry.name
            if self._excluded(child_v):
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as error:
                yield Diagnostic(child_v, DiagnosticKind.UNREADABLE, f"cannot stat: {error.strerror or error}")
                continue
            if stat.S_ISLNK(mode):
                yield SpecialFile(child_v, SpecialKind.SYMLINK, _readlink(child), _link_note(child, root))
            elif stat.S_ISDIR(mode):
                if entry.name.endswith((".dist-info", ".egg-info")):
                    top.infos.append((child, child_v))
                opened = yield from self._open_folder(child, child_v)
                if opened is not None:
                    stack.append(opened)
            elif stat.S_ISREG(mode):
                if child in self.deferred:
                    continue  # an image layer: walked with its image
                yield from self.plain_file(child, child_v)
            else:
                yield SpecialFile(child_v, _special_kind(mode), note="not a regular file: never opened")

    def _open_folder(self, path: str, vpath: str):
        """List one folder (sorted by name); its image plan. Returns the :class:`_Folder`, None when unlistable."""
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as error:
            yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot list folder: {error.strerror or error}")
            return None
        plan, layer_paths, problem = self._folder_image(
            path, vpath, {e.name for e in entries if e.is_file(follow_symlinks=False)})
        if problem is not None:
            yield problem
        self.deferred.update(layer_paths)
        return _Folder(path, vpath, vpath if vpath.endswith("/") else vpath + "/", iter(entries), plan)

    def _close_folder(self, done: _Folder) -> Iterator[Item]:
        """After a folder's listing: the distributions of its ``*.dist-info`` folders, then its image's layers."""
        for info_path, info_v in done.infos:
            yield from self._installed_distribution(info_path, info_v, done.vpath)
        if done.plan:
            path, base = done.path, done.base
            yield from self._image_layers(done.plan, lambda layer, vis: self.plain_file(
                os.path.join(path, *layer.path.split("/")), base + layer.path, visibility=vis, layer=layer.id,
                beneath=(path, layer.path)))

    def _folder_image(self, path: str, vpath: str, files: set[str]):
        """The image plan of a folder holding an OCI layout or an extracted docker-save, else (None, set())."""
        if not images.is_image(files):
            return None, set(), None
        present = set(files)
        blobs = os.path.join(path, "blobs")
        if _is_real_dir(blobs):
            for algorithm in sorted(os.listdir(blobs)):
                folder = os.path.join(blobs, algorithm)
                if _is_real_dir(folder):
                    present.update(f"blobs/{algorithm}/{n}" for n in os.listdir(folder))
        for layer_dir in os.listdir(path):  # docker-save: <id>/layer.tar
            candidate = os.path.join(path, layer_dir, "layer.tar")
            if _is_real_dir(os.path.join(path, layer_dir)) and os.path.isfile(candidate) \
                    and not os.path.islink(candidate):
                present.add(f"{layer_dir}/layer.tar")

        def read_json(rel: str):
            return json.loads(_read_small(path, rel, self.limits.max_metadata_bytes))

        plan, problem = self._plan(vpath, present, read_json)
        if not plan:
            return None, set(), problem
        return plan, {os.path.join(path, *layer.path.split("/")) for layers in plan for layer in layers}, problem

    def _plan(self, vpath: str, present: set[str], read_json):
        try:
            return images.manifests(present, read_json), None
        except (images.ImageError, ValueError, OSError, KeyError, TypeError, AttributeError, RecursionError) as error:
            return None, Diagnostic(vpath, DiagnosticKind.MALFORMED, f"image layout not followed ({error}): "
                                                                     f"walked as plain files")

    def _installed_distribution(self, info_path: str, info_v: str, parent_v: str) -> Iterator[Item]:
        meta_name = "METADATA" if info_v.endswith(".dist-info") else "PKG-INFO"
        try:
            meta = _read_small(info_path, meta_name, self.limits.max_metadata_bytes)
        except OSError:
            return
        try:
            record = _read_small(info_path, "RECORD", self.limits.max_metadata_bytes) \
                if meta_name == "METADATA" else None
        except OSError:
            record = None
        present = set()
        folders = [(info_path, info_v)]  # iterative: os.walk recurses once per level before Python 3.12
        while folders and len(present) <= _MAX_INFO_FILES:
            folder, prefix = folders.pop()
            try:
                with os.scandir(folder) as listing:
                    for entry in listing:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append((entry.path, f"{prefix}/{entry.name}"))
                        elif entry.is_file(follow_symlinks=False):
                            present.add(f"{prefix}/{entry.name}")
            except OSError:
                continue  # the folder walk reports it
        yield from _parsed(metadata.python_distribution(info_v, parent_v, info_v, meta, record, present,
                                                        record_base=parent_v))

    def plain_file(self, path: str, vpath: str, *, visibility: images.Visibility | None = None,
                   layer: str | None = None, beneath: tuple[str, str] | None = None) -> Iterator[Item]:
        """``beneath`` = (folder, relative path): open it without following a link on any component (an image
        layer named by a manifest)."""
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = _open_beneath(*beneath, flags) if beneath is not None else os.open(path, flags)
        except OSError as error:
            if beneath is not None and error.errno in (errno.ELOOP, errno.ENOTDIR):
                yield Diagnostic(vpath, DiagnosticKind.MALFORMED, "image layer reached through a link (never "
                                                                  "followed)")
            elif error.errno == errno.ELOOP:
                yield SpecialFile(vpath, SpecialKind.SYMLINK, _readlink(path), "replaced by a link while walking")
            elif error.errno == errno.ENOENT and visibility is not None:
                yield Diagnostic(vpath, DiagnosticKind.MALFORMED, "image layer blob is missing")
            else:
                yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot open: {error.strerror or error}")
            return
        with open(fd, "rb", buffering=0, closefd=True) as handle:
            try:
                st = os.fstat(handle.fileno())
                if not stat.S_ISREG(st.st_mode):
                    yield SpecialFile(vpath, _special_kind(st.st_mode), note="not a regular file: never opened")
                    return
                head = handle.read(HEAD_SIZE) if st.st_size else b""
            except OSError as error:
                yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot read: {error.strerror or error}")
                return
            kind = _archive_kind(head)
            if kind is None or self.limits.max_depth < 1:
                if kind is not None:
                    yield self._depth_diagnostic(vpath)
                yield FileBlob(vpath, st.st_size, (), os.path.realpath(path), None, stat.S_IMODE(st.st_mode),
                               layer, False)
                return
            if visibility is None and self.skip_archive is not None and self.skip_archive(vpath, path, st):
                yield ArchiveSkipped(vpath, os.path.realpath(path))
                return
            try:
                buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as error:
                yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot map: {error}")
                return
            try:
                level = _Level(vpath, (vpath,), 1, visibility, layer, False, kind)
                self.root_maps.append(buf)
                yield from self.archive(level, buf)
            finally:
                self.root_maps.remove(buf)
                _close_map(buf)

    # ---------------------------------------------------------------------------------------------- archives
    def archive(self, level: _Level, buf) -> Iterator[Item]:
        """Walk the archive ``buf`` (of kind ``level.kind``) and then yield the distributions found in it."""
        if self.over:
            yield Diagnostic(level.vpath, DiagnosticKind.LIMIT, f"archive not opened: {self.over}")
            return
        try:
            yield from self.contents(level, buf, level.kind)
        except Exception as error:  # noqa: BLE001
            # A reader fault on a hostile archive (zipfile's NotImplementedError for an unknown version, a corrupt
            # xz stream's LZMAError, ...) must not end the scan: the archive is reported as not read completely.
            yield Diagnostic(level.vpath, DiagnosticKind.MALFORMED,
                             f"archive could not be read completely ({type(error).__name__}: {error})")
        yield from self.distributions(level.vpath)
        self._forget_archive(level.vpath)

    def contents(self, level: _Level, buf, kind: ArchiveKind) -> Iterator[Item]:
        if kind is ArchiveKind.ZIP:
            yield from self.zip(level, buf)
        elif kind is ArchiveKind.TAR:
            yield from self.tar(level, buf)
        elif kind in COMPRESSED:
            yield from self.compressed(level, buf, kind)
        elif kind is ArchiveKind.AR:
            yield from self.deb(level, buf)

    def members(self, level: _Level, entries: Iterator[Entry], *, only: Callable[[Entry], bool] | None = None,
                on_entry: Callable[[Entry], Iterator[Item] | None] | None = None) -> Iterator[Item]:
        """Walk the entries; returns True when the archive could not be read to its end."""
        try:
            for entry in entries:
                if self.over:
                    yield Diagnostic(level.vpath, DiagnosticKind.LIMIT, f"rest of the archive not read: {self.over}")
                    return True
                if only is not None and not only(entry):
                    continue
                special = on_entry(entry) if on_entry is not None else None
                if special is not None:
                    yield from special
                    continue
                yield from self.entry(level, entry)
                self._drop_pages()
        except ArchiveError as error:
            yield Diagnostic(level.vpath, error.kind, error.message, error.offset)
            return True
        except LimitExceeded as error:
            yield self._limit(level.vpath, error)
            return True
        return False

    def _count_member(self, vpath: str) -> Diagnostic | None:
        """Count one more member against ``max_members``; the LIMIT diagnostic when that is one too many."""
        try:
            self.budget.count_member(len(vpath))
        except LimitExceeded as error:
            return self._limit(vpath, error)
        return None

    def _limit(self, vpath: str, error: LimitExceeded) -> Diagnostic:
        if error.walk_over:
            self.over = str(error)
        return Diagnostic(vpath, DiagnosticKind.LIMIT, f"{vpath} skipped: {error}")

    def entry(self, level: _Level, entry: Entry) -> Iterator[Item]:
        if len(entry.name) > names.MAX_NAME:
            yield Diagnostic(level.vpath, DiagnosticKind.MALFORMED, f"member name of {len(entry.name)} characters "
                                                                    f"(over {names.MAX_NAME}) not read: "
                                                                    f"{entry.name[:80]!r}...")
            return
        clean, problem = names.sanitize(entry.name)
        if not clean:
            if problem:
                yield Diagnostic(level.vpath, DiagnosticKind.MALFORMED, f"{problem} {entry.name!r}: not read")
            return
        vpath = names.member(level.vpath, clean)
        if problem:
            yield Diagnostic(vpath, DiagnosticKind.MALFORMED, f"{problem} {entry.name!r} (read as {clean!r}, "
                                                              f"never written anywhere)")
        if self._excluded(vpath):
            return
        refused = self._count_member(vpath)
        if refused is not None:
            yield refused
            return
        hidden = level.deleted
        if level.visibility is not None:
            whiteout = images.Visibility.whiteout(clean)
            if whiteout is not None:
                target, opaque = whiteout
                level.visibility.record(target, "opaque" if opaque else "whiteout")
                note = (f"opaque folder: hides what lower layers have under {target or '/'}" if opaque
                        else f"deletes {target} of lower layers")
                yield SpecialFile(vpath, SpecialKind.WHITEOUT, target, note)
                return
            is_dir = entry.type is EntryType.DIR
            hidden = hidden or level.visibility.hidden(clean, is_dir)
            level.visibility.record(clean, "dir" if is_dir else "file")
        if entry.type is EntryType.DIR:
            return
        if entry.type in _SPECIAL:
            note = _member_link_note(clean, entry.link) if entry.type is EntryType.SYMLINK else None
            if hidden:
                note = "; ".join(n for n in (note, "deleted in an upper layer") if n)
            yield SpecialFile(vpath, _SPECIAL[entry.type], entry.link, note)
            return
        if entry.type is not EntryType.FILE:
            yield Diagnostic(vpath, DiagnosticKind.UNSUPPORTED, "member of an unsupported type: not read")
            return
        yield from self.member_file(level, vpath, entry, hidden)

    def member_file(self, level: _Level, vpath: str, entry: Entry, hidden: bool, *,
                    visibility: images.Visibility | None = None, layer: str | None = None) -> Iterator[Item]:
        limits = self.limits
        layer = layer or level.layer
        if entry.size is not None and entry.size > limits.max_member_bytes:
            yield Diagnostic(vpath, DiagnosticKind.LIMIT, f"{vpath} skipped: declares {entry.size} bytes, over the "
                                                          f"member limit of {limits.max_member_bytes}")
            return
        if isinstance(entry.packed, int) and entry.size and entry.size > limits.ratio_floor_bytes \
                and entry.size > limits.max_ratio * max(entry.packed, 1):
            yield Diagnostic(vpath, DiagnosticKind.LIMIT, f"{vpath} skipped: compression ratio over "
                                                          f"{limits.max_ratio:g} ({entry.size} bytes from "
                                                          f"{entry.packed} compressed bytes)")
            return
        child = _Level(vpath, level.containers + (vpath,), level.depth + 1, visibility, layer, hidden)
        if entry.window is not None:
            buf, offset, size = entry.window
            kind = _archive_kind(bytes(buf[offset : offset + min(size, HEAD_SIZE)]))
            if kind is not None and child.depth <= limits.max_depth:
                child.kind = kind
                view = memoryview(buf)[offset : offset + size]
                try:
                    yield from self.archive(child, view)
                finally:
                    view.release()
                return
        try:
            held = self.spool.hold(entry.open(), self.budget, charge=not entry.charged, packed=entry.packed)
        except LimitExceeded as error:
            yield self._limit(vpath, error)
            return
        except _READ_ERRORS as error:
            text = str(error) or type(error).__name__
            kind = DiagnosticKind.TRUNCATED if isinstance(error, EOFError) or "end of data" in text \
                or "ended before" in text else DiagnosticKind.MALFORMED
            yield Diagnostic(vpath, kind, f"member not read completely: {text}")
            return
        try:
            refused = self._keep(vpath, held.data)
            if refused is not None:
                yield refused
            kind = _archive_kind(bytes(held.data[:HEAD_SIZE]))
            if kind is not None and child.depth <= limits.max_depth:
                child.kind = kind
                spooled = isinstance(held.data, mmap.mmap)
                if spooled:
                    self.root_maps.append(held.data)
                try:
                    yield from self.archive(child, held.data)
                finally:
                    if spooled:
                        self.root_maps.remove(held.data)
                return
            if kind is not None:
                yield self._depth_diagnostic(vpath)
            yield FileBlob(vpath, held.size, level.containers, None, held.data, entry.mode, layer, hidden)
        finally:
            held.release()

    def _depth_diagnostic(self, vpath: str) -> Diagnostic:
        return Diagnostic(vpath, DiagnosticKind.LIMIT, f"archive {vpath} not opened: nesting deeper than the "
                                                       f"limit of {self.limits.max_depth} levels")

    def _keep(self, vpath: str, data) -> Diagnostic | None:
        """Remember what :meth:`distributions` needs of a member: its path when it can be a licence file or a
        metadata file, its bytes when it is packaging metadata (within ``max_kept_metadata_bytes`` in all)."""
        rel = vpath.rsplit(names.SEP, 1)[-1]
        if not _needed_path(rel):
            return None
        self.seen.add(vpath)
        if not _metadata_file(vpath, rel) or len(data) > self.limits.max_metadata_bytes:
            return None
        if self.kept_bytes + len(data) > self.limits.max_kept_metadata_bytes:
            return Diagnostic(vpath, DiagnosticKind.LIMIT, f"packaging metadata not read: the metadata files held "
                                                           f"at once exceed {self.limits.max_kept_metadata_bytes} "
                                                           f"bytes")
        self.kept[vpath] = bytes(data)
        self.kept_bytes += len(data)
        return None

    def _forget_archive(self, vpath: str) -> None:
        """Drop what was remembered of the members of an archive whose distributions are done (a .deb's
        ``control.tar.*`` is the .deb's: dropped with it)."""
        if vpath.rsplit(names.SEP, 1)[-1].startswith("control.tar"):
            return
        prefix = vpath + names.SEP
        for key in [k for k in self.kept if k.startswith(prefix)]:
            self.kept_bytes -= len(self.kept.pop(key))
        self.seen.difference_update([p for p in self.seen if p.startswith(prefix)])

    # ------------------------------------------------------------------------------------------ zip / conda
    def zip(self, level: _Level, buf) -> Iterator[Item]:
        try:
            with zipfile.ZipFile(WindowStream(buf)) as probe:
                root = [n for n in probe.namelist() if "/" not in n]
        except Exception:  # noqa: BLE001 - damaged: zip_entries reports it
            root = []
        conda = "metadata.json" in root and any(fnmatch.fnmatchcase(n, "pkg-*.tar.*") for n in root)
        if not conda:
            yield from self.members(level, zip_entries(buf))
            return
        # A .conda (conda-package-handling "v2"): metadata.json, info-<pkg>.tar.zst, pkg-<pkg>.tar.zst; both
        # tars are the package's file tree and are walked transparently (info/ first, as in a v1 .tar.bz2).
        def inner(entry: Entry):
            if "/" in entry.name or not fnmatch.fnmatchcase(entry.name, "[ip][nk][fg]*-*.tar.*"):
                return None
            return self._transparent(level, entry)

        yield from self.members(level, zip_entries(buf), on_entry=inner)

    def _transparent(self, level: _Level, entry: Entry) -> Iterator[Item]:
        """A tar inside an archive whose files belong to the outer archive's tree (no level of its own)."""
        vpath = names.member(level.vpath, entry.name)
        try:
            held = self.spool.hold(entry.open(), self.budget, charge=not entry.charged, packed=entry.packed)
        except LimitExceeded as error:
            yield self._limit(vpath, error)
            return
        except _READ_ERRORS as error:
            yield Diagnostic(vpath, DiagnosticKind.MALFORMED, f"member not read completely: {error}")
            return
        try:
            kind = _archive_kind(bytes(held.data[:HEAD_SIZE]))
            if kind not in COMPRESSED + (ArchiveKind.TAR,):
                yield FileBlob(vpath, held.size, level.containers, None, held.data, entry.mode, level.layer,
                               level.deleted)
                return
            yield from self.contents(level, held.data, kind)
        finally:
            held.release()

    # ------------------------------------------------------------------------------------------------- tar
    def tar(self, level: _Level, buf) -> Iterator[Item]:
        listed: dict[str, Entry] = {}
        plan = None
        if self._tar_has_image_files(buf):  # only then is every entry listed (a tar may have 1,000,000 members)
            try:
                for entry in tar_entries(WindowStream(buf), streamed=False, buf=buf):
                    clean, _ = names.sanitize(entry.name)
                    listed.setdefault(clean, entry)
            except (ArchiveError, LimitExceeded):
                listed = {}
        if listed and images.is_image(set(listed)):
            plan = self._tar_image_plan(level, listed)
        if plan:
            layer_paths = {layer.path for layers in plan for layer in layers}
            yield from self.members(level, tar_entries(WindowStream(buf), streamed=False, buf=buf),
                                    only=lambda e: names.sanitize(e.name)[0] not in layer_paths)
            yield from self._image_layers(plan, lambda layer, vis: self._tar_layer(level, listed, layer, vis))
            return
        yield from level.extra
        level.extra.clear()
        yield from self.members(level, tar_entries(WindowStream(buf), streamed=False, buf=buf))

    @staticmethod
    def _tar_has_image_files(buf) -> bool:
        """Whether the tar has the top-level files of an image (images.is_image), by name only."""
        top: set[str] = set()
        try:
            for entry in tar_entries(WindowStream(buf), streamed=False, buf=buf):
                clean, _ = names.sanitize(entry.name)
                if clean in _IMAGE_FILES:
                    top.add(clean)
                    if images.is_image(top):
                        return True
        except (ArchiveError, LimitExceeded):
            return False
        return False

    def _tar_image_plan(self, level: _Level, listed: dict[str, Entry]):
        def read_json(rel: str):
            entry = listed.get(rel)
            if entry is None or entry.window is None:
                raise images.ImageError(f"{rel} is missing or not a plain member")
            buf, offset, size = entry.window
            if size > self.limits.max_metadata_bytes:
                raise images.ImageError(f"{rel} is larger than {self.limits.max_metadata_bytes} bytes")
            return json.loads(bytes(buf[offset : offset + size]))

        plan, problem = self._plan(level.vpath, set(listed), read_json)
        if problem is not None:
            level.extra.append(problem)
        return plan

    def _tar_layer(self, level: _Level, listed: dict[str, Entry], layer: images.Layer,
                   visibility: images.Visibility) -> Iterator[Item]:
        vpath = names.member(level.vpath, layer.path)
        entry = listed.get(layer.path)
        if entry is None or entry.type is not EntryType.FILE:
            yield Diagnostic(vpath, DiagnosticKind.MALFORMED, f"image layer {layer.id} is missing from the image")
            return
        refused = self._count_member(vpath)
        if refused is not None:
            yield refused
            return
        self.seen.add(vpath)
        yield from self.member_file(level, vpath, entry, level.deleted, visibility=visibility, layer=layer.id)

    def _image_layers(self, plan: list[list[images.Layer]], walk_layer) -> Iterator[Item]:
        done: set[str] = set()
        for layers in plan:
            visibility = images.Visibility()
            for layer in reversed(layers):
                if layer.path in done:
                    continue
                done.add(layer.path)
                yield from walk_layer(layer, visibility)
                visibility.end_layer()

    def compressed(self, level: _Level, buf, kind: ArchiveKind) -> Iterator[Item]:
        damage = compressed.zstd_problem(buf) if kind is ArchiveKind.ZSTD else None
        try:
            with compressed.open_stream(kind, WindowStream(buf)) as probe:
                head = probe.read(HEAD_SIZE)
        except _READ_ERRORS + (LimitExceeded,) as error:
            head = b""
            if damage is None:
                damage = (0, f"cannot decompress: {error}")
        raw = compressed.CountingReader(WindowStream(buf))
        stream = compressed.CountingReader(compressed.open_stream(kind, raw), on_read=self.budget.charge)
        if is_tar_header(head):
            failed = yield from self.members(level, tar_entries(stream, streamed=True, packed=lambda: raw.count))
            try:
                while not failed and stream.read(1 << 20):
                    pass
            except LimitExceeded as error:
                yield self._limit(level.vpath, error)
            except _READ_ERRORS as error:
                if damage is None:
                    yield Diagnostic(level.vpath, DiagnosticKind.TRUNCATED, f"compressed stream: {error}")
        elif head or damage is None:
            name = compressed.gzip_name(bytes(buf[:1024])) if kind is ArchiveKind.GZIP else None
            entry = Entry(name or _strip_suffix(posixpath.basename(level.vpath.split(names.SEP)[-1]), kind),
                          EntryType.FILE, None, lambda: raw.count, open=lambda: stream, charged=True)
            yield from self.members(level, iter([entry]))
        if damage is not None:
            offset, message = damage
            kind_ = DiagnosticKind.TRUNCATED if "short" in message else DiagnosticKind.MALFORMED
            yield Diagnostic(level.vpath, kind_, message, offset)

    # ------------------------------------------------------------------------------------------------- deb
    def deb(self, level: _Level, buf) -> Iterator[Item]:
        """A Debian binary package (deb(5)): ar members ``debian-binary``, ``control.tar[.gz|.xz|.zst]``,
        ``data.tar[.gz|.xz|.bz2|.zst]``; the data tar is the package's file tree (transparent)."""
        def data(entry: Entry):
            if entry.name.startswith("data.tar"):
                return self._transparent(level, entry)
            return None

        yield from self.members(level, ar_entries(buf), on_entry=data)

    # --------------------------------------------------------------------------------------- distributions
    def distributions(self, vpath: str) -> Iterator[Item]:
        prefix = vpath + names.SEP
        own = sorted(k for k in self.kept if k.startswith(prefix) and names.SEP not in k[len(prefix):])
        for key in own:
            rel = key[len(prefix):]
            folder, base = posixpath.split(rel)
            if (base == "METADATA" and folder.endswith(".dist-info")) or \
                    (base == "PKG-INFO" and (folder.endswith(".egg-info") or folder == "EGG-INFO")):
                info_v = prefix + folder
                parent = posixpath.dirname(folder)
                scope = prefix + parent if parent else vpath
                dist_v = info_v if parent else vpath
                record = self.kept.get(info_v + "/RECORD") if base == "METADATA" else None
                present = {p for p in self.seen if p.startswith(info_v + "/")}
                base_v = prefix + parent if parent else prefix
                yield from _parsed(metadata.python_distribution(dist_v, scope, info_v, self.kept[key], record,
                                                                present, record_base=base_v))
            elif rel == "info/index.json":
                yield from _parsed(metadata.conda_distribution(
                    vpath, self.kept[key], self.kept.get(prefix + "info/about.json"),
                    self.kept.get(prefix + "info/paths.json"), self.kept.get(prefix + "info/files"), self.seen))
        controls = sorted(k for k in self.kept if k.startswith(prefix + "control.tar")
                          and k.endswith(names.SEP + "control") and k.count(names.SEP) == vpath.count(names.SEP) + 2)
        if controls:
            dist = metadata.debian_distribution(vpath, self.kept[controls[0]], self.seen)
            if dist is not None:
                yield dist


# ---------------------------------------------------------------------------------------------------- helpers
def _needed_path(rel: str) -> bool:
    """Whether :meth:`_Walker.distributions` may look for a member at ``rel`` (its path in its archive): files of
    a ``*.dist-info`` / ``*.egg-info`` / ``EGG-INFO`` folder, conda ``info/``, a Debian ``copyright`` or
    ``control``. Other members are not remembered: a tar of 1,000,000 members keeps nothing per member."""
    if rel.startswith("info/") or rel == "control" or (rel.startswith("usr/share/doc/")
                                                       and rel.endswith("/copyright")):
        return True
    folders = rel.split("/")[:-1]
    return bool(folders) and (folders[0] == "EGG-INFO" or any(f.endswith((".dist-info", ".egg-info"))
                                                             for f in folders))


def _metadata_file(vpath: str, rel: str) -> bool:
    """Whether the member is packaging metadata that :meth:`_Walker.distributions` reads."""
    if rel in _CONDA_METADATA:
        return True
    if rel == "control":  # pkg.deb!/control.tar.xz!/control
        return vpath[: -len(rel) - len(names.SEP)].rsplit(names.SEP, 1)[-1].startswith("control.tar")
    folder, base = posixpath.split(rel)
    return (base in ("METADATA", "RECORD") and folder.endswith(".dist-info")) or \
        (base == "PKG-INFO" and (folder.endswith(".egg-info") or folder == "EGG-INFO"))


def _parsed(parsed: metadata.Parsed) -> Iterator[Item]:
    if parsed.distribution is not None:
        yield parsed.distribution
    for problem in parsed.problems:
        yield Diagnostic(problem.path, DiagnosticKind.MALFORMED, problem.message)


def _archive_kind(head: bytes) -> ArchiveKind | None:
    kind = sniff(head)
    if kind is ArchiveKind.AR and head[8:24].rstrip(b" ").rstrip(b"/") != b"debian-binary":
        return None  # a static library: licscan.binary reads its members
    return kind


def _strip_suffix(name: str, kind: ArchiveKind) -> str:
    lower = name.lower()
    for suffix in _SUFFIXES.get(kind, ()):
        if lower.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            return stem + ".tar" if suffix.startswith(".t") and suffix != ".tar" and len(suffix) > 3 else stem
    return f"{name}.decompressed"


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _open_beneath(root: str, rel: str, flags: int) -> int:
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


def _read_small(path: str, rel: str | None, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path`` (or ``path/rel``, opened beneath ``path``)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = _open_beneath(path, rel, flags) if rel is not None else os.open(path, flags)
    with open(fd, "rb", closefd=True) as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return data


def _close_map(buf) -> None:
    try:
        buf.close()
    except BufferError:
        pass  # a consumer still holds a view of it: closed with its last reference


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _link_note(path: str, root: str | None) -> str | None:
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


def _member_link_note(name: str, target: str | None) -> str | None:
    if not target:
        return None
    if target.startswith("/"):
        return "absolute target (never followed)"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        return "points out of the archive (never followed)"
    return None


def _special_kind(mode: int) -> SpecialKind:
    if stat.S_ISFIFO(mode):
        return SpecialKind.FIFO
    if stat.S_ISSOCK(mode):
        return SpecialKind.SOCKET
    if stat.S_ISCHR(mode):
        return SpecialKind.CHAR_DEVICE
    if stat.S_ISBLK(mode):
        return SpecialKind.BLOCK_DEVICE
    return SpecialKind.SYMLINK if stat.S_ISLNK(mode) else SpecialKind.FIFO
