"""What the walker yields (docs/architecture.md "walk"): files with their virtual paths, special files, the packaging
metadata of enclosing distributions, and diagnostics. The scan layer (licscan/scan.py) consumes them.

Virtual paths (licscan/vpath.py): a file inside an archive is ``OUTER!/member/path``, nested as
``a.tar!/pkg.whl!/lib/x.so``; paths are given as the user passed them, with ``/`` separators.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

from licscan.model import Diagnostic, Distribution, Ecosystem, SpecialFile, SpecialKind

__all__ = ["ArchiveSkipped", "Diagnostic", "Distribution", "Ecosystem", "FileBlob", "Item", "SpecialFile",
           "SpecialKind"]


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
    data: bytes | mmap.mmap | None = None
    mode: int | None = None  # permission bits when the container records them
    layer: str | None = None
    deleted_in_upper_layer: bool = False  # a whiteout in a later layer hides it, but the earlier layer still ships it
    sha256: str | None = None  # of ``data``, when computed while it was read (walk(..., digests=...))
    whole: bytes | None = None  # a plain file's bytes, when the walk read them whole (walk(..., whole=...))


@dataclass(frozen=True)
class ArchiveSkipped:
    """An archive file the caller asked the walker not to open (``walk(..., skip_archive=...)``): the scan already
    has its results (the content cache). ``source`` is its real path."""

    vpath: str
    source: str


# What walk() yields.
Item = FileBlob | SpecialFile | Distribution | Diagnostic | ArchiveSkipped
