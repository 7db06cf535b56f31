"""Byte probes over a file's contents held as bytes, a memoryview or an mmap (the readers' common buffer types)."""

from __future__ import annotations

from typing import Any


def find(data: Any, needle: bytes, start: int = 0, end: int | None = None) -> int:
    """``data.find`` for bytes / mmap (memchr speed); -1 when absent or ``data`` is None."""
    if data is None:
        return -1
    end = len(data) if end is None else min(end, len(data))
    if isinstance(data, memoryview):
        data = data.obj if isinstance(data.obj, (bytes, bytearray)) else bytes(data)
    found: int = data.find(needle, start, end)
    return found


def window(data: Any, offset: int, size: int) -> bytes:
    return bytes(data[offset : offset + size])
