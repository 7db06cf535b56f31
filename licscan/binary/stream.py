"""A read-only binary stream over a window of a buffer, so that stream readers (``zipfile``, ``tarfile``, the
decompressors) can read an archive member or an embedded image in place (an mmap slice: no copy, only the touched
pages are read)."""

from __future__ import annotations

import io
import mmap
from typing import TYPE_CHECKING

from licscan.binary import readlog
from licscan.binary.buffer import Buffer, ByteView

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class WindowStream(io.RawIOBase):
    """``buf[start:start+size]`` as a seekable, read-only stream."""

    DROP_EVERY = 8 << 20  # after this many bytes read from a file mapping, unmap the pages read so far

    def __init__(self, buf: Buffer | ByteView, start: int = 0, size: int | None = None) -> None:
        super().__init__()
        self._view = memoryview(buf)[start : (start + size) if size is not None else None]
        self._base = start
        self._pos = 0
        self._map = buf if isinstance(buf, mmap.mmap) else None
        self._since_drop = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = len(self._view) + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._view):
            return b""
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        data = self._view[self._pos : end].tobytes()
        readlog.record(self._base + self._pos, len(data))
        self._pos = end
        self._since_drop += len(data)
        if self._map is not None and self._since_drop >= self.DROP_EVERY:
            # A zip member decompressed from a mapped wheel would otherwise keep every page of it resident.
            self._since_drop = 0
            try:
                self._map.madvise(mmap.MADV_DONTNEED)
            except (AttributeError, OSError, ValueError):
                pass
        return data

    def readinto(self, target: WriteableBuffer) -> int:
        view = memoryview(target).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._view.release()
        super().close()
