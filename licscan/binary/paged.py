"""A read-only file mapping that does not stay resident (issue 14: peak RSS of the whole process tree <= 256 MB).

Searching a mapping with ``find`` faults in every page it passes, and the kernel maps the cached neighbours of each
faulting page too ("fault-around"); those pages count in the process's resident set until the mapping is closed.
:class:`PagedMap` is an ``mmap`` whose long searches walk the mapping in windows and drop each window's pages
behind them (``madvise(MADV_DONTNEED)``: for a read-only file mapping the pages stay in the page cache and are
mapped again on the next touch, with the same bytes).
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from licscan.binary.buffer import Buffer, release_pages

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

Result = TypeVar("Result")


class PagedMap(mmap.mmap):
    """``mmap.mmap`` (read-only) whose ``find`` over more than :data:`WINDOW` bytes walks the mapping window by
    window and drops each window's pages behind it, so searching a 1 GB library costs one window of resident memory,
    not 1 GB (a worker reached 747 MB on cuBLASLt and cuDNN). Whole-file searches are remembered per needle.
    :meth:`hash` digests the whole mapping the same way. (The naming layer searches all its literals in one pass:
    :class:`licscan.binary.probe.Literals`.)"""

    WINDOW = 16 << 20

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()
        self._found: dict[bytes, int] = {}

    def find(self, needle: ReadableBuffer, start: int | None = 0, end: int | None = None) -> int:
        needle = bytes(needle)
        start = start or 0
        size = len(self)
        end = size if end is None else max(0, min(end, size))
        whole = start == 0 and end == size
        if whole and needle in self._found:
            return self._found[needle]
        if end - start <= self.WINDOW:
            at = super().find(needle, start, end)
        else:
            at, pos = -1, start
            while pos < end:
                stop = min(end, pos + self.WINDOW + len(needle) - 1)
                at = super().find(needle, pos, stop)
                release_pages(self, pos, stop)
                if at >= 0:
                    break
                pos += self.WINDOW
        if whole:
            self._found[needle] = at
        return at

    def hash(self, name: str) -> str:
        """The hex digest of the whole file (``sha256``, ``sha1``), window by window."""
        digest = hashlib.new(name, usedforsecurity=False) if name == "sha1" else hashlib.new(name)
        with memoryview(self) as whole:
            for pos in range(0, len(self), self.WINDOW):
                with whole[pos : pos + self.WINDOW] as window:
                    digest.update(window)
                release_pages(self, pos, pos + self.WINDOW)
        return digest.hexdigest()


def with_mapping(path: str, use: Callable[[Buffer | None], Result]) -> Result:
    """``use(data)`` with the file at ``path`` mapped read-only as a :class:`PagedMap` (``b""`` for an empty file,
    None when it cannot be opened or mapped); every page of the mapping is dropped from this process afterwards."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return use(b"")
            with PagedMap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                try:
                    return use(data)
                finally:
                    release_pages(data, 0, len(data) + mmap.PAGESIZE)
    except OSError:
        return use(None)
