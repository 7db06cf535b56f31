"""What the walker yields (DESIGN A1 "walk"): files with their virtual paths, special files, the packaging
metadata of enclosing distributions, and diagnostics. The scan layer (licscan/scan.py) consumes them.

Virtual paths (DESIGN B2): a file inside an archive is ``OUTER!/member/path``, nested as
``a.tar!/pkg.whl!/lib/x.so``; paths are given as the user passed them, with ``/`` separators.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True)
class FileBlob:
    """A regular file to inspect.

    ``source`` is the real filesystem path of a plain file (the scan maps it itself, possibly in a worker process);
    for an archive member it is None and ``data`` holds its bytes (``bytes``, or a read-only ``mmap`` of a private
    spool file) -- valid only until the walker is advanced. ``containers`` are the virtual paths of the enclosing
    archives, outermost first (empty for a plain file). ``layer`` names the image layer of an OCI/docker image.
    """

    vpath: str
    size: int
    containers: tuple[str, ...] = ()
    source: str | None = None
    data: Any = None
    mode: int | None = None  # permission bits when the container records them
    layer: str | None = None
    deleted_in_upper_layer: bool = False  # still ships in the image (DESIGN issue 3)


@dataclass(frozen=True)
class ArchiveSkipped:
    """An archive file the caller asked the walker not to open (``walk(..., skip_archive=...)``): the scan already
    has its results (the content cache). ``source`` is its real path."""

    vpath: str
    source: str


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
