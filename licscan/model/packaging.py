"""What the walker learns from packaging: distributions (wheel, Debian, conda metadata) and special files."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SpecialKind(enum.Enum):
    """Directory entries that are not regular files: recorded, never followed out of the tree, never opened."""

    SYMLINK = "symlink"
    HARDLINK = "hardlink"  # a tar/zip hard link member
    FIFO = "fifo"
    SOCKET = "socket"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    WHITEOUT = "whiteout"  # an OCI/docker layer deletion marker (.wh.<name>)


@dataclass(frozen=True)
class SpecialFile:
    vpath: str
    kind: SpecialKind
    target: str | None = None  # link target as stored
    note: str | None = None  # e.g. "points out of the scanned tree", "deleted in an upper layer"


class Ecosystem(enum.Enum):
    PYPI = "pypi"
    DEBIAN = "deb"
    CONDA = "conda"


@dataclass(frozen=True)
class Distribution:
    """Packaging metadata of a distribution found in the input: a wheel/egg (``*.dist-info/METADATA``,
    ``PKG-INFO``), a Debian package (``control``), a conda package (``info/index.json``).

    ``vpath`` names the metadata's home (the wheel, .deb or .conda, or the ``*.dist-info`` folder of an installed
    tree); ``scope`` is the virtual-path prefix its files live under; ``files`` lists them when a manifest says so
    (wheel ``RECORD``, with sha256 where recorded).
    """

    vpath: str
    ecosystem: Ecosystem
    name: str
    version: str | None
    scope: str
    license_declared: str | None = None  # License-Expression, else License, else conda/deb license field
    license_classifiers: tuple[str, ...] = ()
    license_files: tuple[str, ...] = ()  # vpaths of the license texts it ships
    files: tuple[tuple[str, str | None], ...] = ()  # (vpath, sha256 hex or None) from RECORD
    metadata: tuple[tuple[str, str], ...] = ()  # other fields worth keeping (Summary, Home-page, Requires-Dist...)
