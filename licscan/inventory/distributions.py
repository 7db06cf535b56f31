"""The distributions the walker finds: an installed ``*.dist-info`` / ``*.egg-info`` folder, and the packaging
metadata of the archives being walked (wheel and egg metadata, conda ``info/``, a .deb's ``control``), remembered
member by member (:class:`Memory`) and parsed by metadata.py once the archive's members are done."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator

from licscan.inventory import metadata
from licscan.inventory.entries import Buffer
from licscan.inventory.fsread import read_small
from licscan.inventory.items import Item
from licscan.inventory.limits import WalkLimits
from licscan.model import Diagnostic, DiagnosticKind
from licscan.vpath import container, is_member_of, join, member

# conda metadata at the root of a package, kept (up to max_metadata_bytes) to build its Distribution.
_CONDA_METADATA = {"info/index.json", "info/about.json", "info/paths.json", "info/files"}
_MAX_INFO_FILES = 100_000  # files of one *.dist-info folder looked at for licence files


def installed(info_path: str, info_v: str, parent_v: str, limits: WalkLimits) -> Iterator[Item]:
    """The distribution of the ``*.dist-info`` / ``*.egg-info`` folder ``info_path`` (``info_v``) installed in the
    folder ``parent_v``."""
    meta_name = "METADATA" if info_v.endswith(".dist-info") else "PKG-INFO"
    try:
        meta = read_small(info_path, meta_name, limits.max_metadata_bytes)
    except OSError:
        return
    try:
        record = read_small(info_path, "RECORD", limits.max_metadata_bytes) if meta_name == "METADATA" else None
    except OSError:
        record = None
    present: set[str] = set()
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
    yield from parsed(metadata.python_distribution(info_v, parent_v, info_v, meta, record, present,
                                                   record_base=parent_v))


def parsed(result: metadata.Parsed) -> Iterator[Item]:
    if result.distribution is not None:
        yield result.distribution
    yield from result.problems


class Memory:
    """What the walker remembers of the members of the archives being walked: ``seen``, the paths of members that
    can be licence or metadata files; ``kept``, the bytes of packaging metadata (``kept_bytes`` in all)."""

    def __init__(self, limits: WalkLimits) -> None:
        self.limits = limits
        self.seen: set[str] = set()  # member vpaths that distributions() may look for (licence files, metadata)
        self.kept: dict[str, bytes] = {}  # small metadata members of the archives being walked
        self.kept_bytes = 0

    def clear(self) -> None:
        self.seen.clear()
        self.kept.clear()
        self.kept_bytes = 0

    def keep(self, vpath: str, data: Buffer) -> Diagnostic | None:
        """Remember what :meth:`distributions` needs of a member: its path when it can be a licence file or a
        metadata file, its bytes when it is packaging metadata (within ``max_kept_metadata_bytes`` in all)."""
        rel = member(vpath)
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

    def forget_archive(self, vpath: str) -> None:
        """Drop what was remembered of the members of an archive whose distributions are done (a .deb's
        ``control.tar.*`` is the .deb's: dropped with it)."""
        if member(vpath).startswith("control.tar"):
            return
        for key in [k for k in self.kept if is_member_of(k, vpath)]:
            self.kept_bytes -= len(self.kept.pop(key))
        self.seen.difference_update([p for p in self.seen if is_member_of(p, vpath)])

    def distributions(self, vpath: str) -> Iterator[Item]:
        """The distributions of the archive ``vpath``, from the metadata remembered of its members."""
        own = sorted(k for k in self.kept if container(k) == vpath)
        for key in own:
            rel = member(key)
            folder, base = posixpath.split(rel)
            if (base == "METADATA" and folder.endswith(".dist-info")) or \
                    (base == "PKG-INFO" and (folder.endswith(".egg-info") or folder == "EGG-INFO")):
                info_v = join(vpath, folder)
                parent = posixpath.dirname(folder)
                scope = join(vpath, parent) if parent else vpath
                dist_v = info_v if parent else vpath
                record = self.kept.get(info_v + "/RECORD") if base == "METADATA" else None
                present = {p for p in self.seen if p.startswith(info_v + "/")}
                base_v = join(vpath, parent)  # RECORD paths are relative to the folder holding the dist-info
                yield from parsed(metadata.python_distribution(dist_v, scope, info_v, self.kept[key], record,
                                                               present, record_base=base_v))
            elif rel == "info/index.json":
                yield from parsed(metadata.conda_distribution(
                    vpath, self.kept[key], self.kept.get(join(vpath, "info/about.json")),
                    self.kept.get(join(vpath, "info/paths.json")), self.kept.get(join(vpath, "info/files")), self.seen))
        controls = sorted(k for k in self.kept if _is_deb_control(k, vpath))
        if controls:
            dist = metadata.debian_distribution(vpath, self.kept[controls[0]], self.seen)
            if dist is not None:
                yield dist


def _needed_path(rel: str) -> bool:
    """Whether :meth:`Memory.distributions` may look for a member at ``rel`` (its path in its archive): files of
    a ``*.dist-info`` / ``*.egg-info`` / ``EGG-INFO`` folder, conda ``info/``, a Debian ``copyright`` or
    ``control``. Other members are not remembered: a tar of 1,000,000 members keeps nothing per member."""
    if rel.startswith("info/") or rel == "control" or (rel.startswith("usr/share/doc/")
                                                       and rel.endswith("/copyright")):
        return True
    end = rel.rfind("/")
    if end < 0:
        return False
    folders = rel[: end + 1]  # every folder with its "/": one ends with ".dist-info" iff ".dist-info/" is in it
    return folders.startswith("EGG-INFO/") or ".dist-info/" in folders or ".egg-info/" in folders


def _metadata_file(vpath: str, rel: str) -> bool:
    """Whether the member is packaging metadata that :meth:`Memory.distributions` reads."""
    if rel in _CONDA_METADATA:
        return True
    if rel == "control":  # pkg.deb!/control.tar.xz!/control
        return member(container(vpath) or "").startswith("control.tar")
    folder, base = posixpath.split(rel)
    return (base in ("METADATA", "RECORD") and folder.endswith(".dist-info")) or \
        (base == "PKG-INFO" and (folder.endswith(".egg-info") or folder == "EGG-INFO"))


def _is_deb_control(vpath: str, deb: str) -> bool:
    """Whether ``vpath`` is the ``control`` file of the .deb ``deb``: ``pkg.deb!/control.tar.xz!/control``."""
    tar = container(vpath)
    return member(vpath) == "control" and tar is not None and container(tar) == deb \
        and member(tar).startswith("control.tar")
