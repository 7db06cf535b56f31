"""The one type of the bytes a binary reader is given: a file mapping (``mmap``, :class:`~licscan.binary.paged.PagedMap`)
or bytes already in memory. Readers slice it, search it (``find``) and unpack from it; they never write to it."""

from __future__ import annotations

import mmap
from typing import TypeAlias

Buffer: TypeAlias = bytes | bytearray | mmap.mmap
# A window already cut from a Buffer (a ``memoryview`` of the mapping) or decoded bytes: sliced and unpacked from,
# not searched.
ByteView: TypeAlias = bytes | bytearray | memoryview


def release_pages(buf: Buffer | memoryview, start: int, end: int) -> None:
    """Drop the pages of ``buf[start:end]`` from this process's resident set (they stay in the page cache); only a
    file mapping has pages to drop."""
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        page = mmap.PAGESIZE
        lo = start - start % page
        hi = end - end % page
        if hi > lo:
            try:
                buf.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
            except (OSError, ValueError):
                pass


class PageDropper:
    """Drops from this process the pages of ranges a reader went through in rising order (the entries of a fatbin
    section), one ``madvise`` per ``window`` bytes rather than one per range: a library holds thousands of entries.
    The bytes between ranges are dropped with them (no page needs to stay resident). Use it as a context manager:
    what is left is dropped on exit."""

    def __init__(self, buf: Buffer | memoryview, window: int = 16 << 20) -> None:
        self._buf = buf
        self._window = window
        self._lo = self._hi = -1

    def add(self, start: int, end: int) -> None:
        if self._lo < 0 or start < self._lo:
            self.flush()
            self._lo = start
        self._hi = max(self._hi, end)
        if self._hi - self._lo >= self._window:
            self.flush()

    def flush(self) -> None:
        if self._lo >= 0:
            release_pages(self._buf, self._lo, self._hi)
        self._lo = self._hi = -1

    def __enter__(self) -> PageDropper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
