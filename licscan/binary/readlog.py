"""Which bytes of a file the readers touched, for the ``bytes_read`` figure of a report.

Readers call :func:`record` with absolute ranges; the ranges of one :func:`reading` block are merged, so bytes
read twice (a header read again by a second reader) count once. Outside a ``reading`` block ``record`` does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar


class ReadLog:
    def __init__(self) -> None:
        self._ranges: list[tuple[int, int]] = []

    def add(self, start: int, length: int) -> None:
        if length > 0:
            self._ranges.append((start, start + length))

    def add_many(self, ranges: list[tuple[int, int]]) -> None:
        self._ranges.extend((start, start + length) for start, length in ranges if length > 0)

    def total(self) -> int:
        """Distinct bytes in all recorded ranges."""
        total = 0
        end = -1
        for lo, hi in sorted(self._ranges):
            if hi <= end:
                continue
            total += hi - max(lo, end)
            end = hi
        return total


_CURRENT: ContextVar[ReadLog | None] = ContextVar("licscan_read_log", default=None)


def record(start: int, length: int) -> None:
    log = _CURRENT.get()
    if log is not None:
        log.add(start, length)


def record_many(ranges: list[tuple[int, int]]) -> None:
    """:func:`record` for a batch of (start, length) ranges."""
    log = _CURRENT.get()
    if log is not None:
        log.add_many(ranges)


@contextlib.contextmanager
def reading() -> Iterator[ReadLog]:
    log = ReadLog()
    token = _CURRENT.set(log)
    try:
        yield log
    finally:
        _CURRENT.reset(token)
