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
