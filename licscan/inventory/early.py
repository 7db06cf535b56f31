"""The large members of a zip inflated by a process of their own (forked.py; a thread where the system cannot
fork) from the moment the walker opens the zip (the members of a wheel inflated on both cores).

The torch wheel's two large libraries (libtorch_cpu.so and libtorch_cuda.so: 904 of its 1,091 MiB) come after
11,875 small members. Read in walk order by the read-ahead pool (ahead.py), they were inflated only when the walker
came near them, and the walker waited for them (1.3-1.8 s of a 3.5 s audit, measured with py-spy). Their place in
the zip is known from its central directory, so this lane inflates them from the start, in archive order, beside
the walker and the pool, which go through the small members. A thread would share the GIL with the walker and get
it back only every switch interval after each piece of C work (forked.py says how much that cost), so the lane is a
forked process.

A large member declares more than ``in_memory_bytes``: it is spooled to a private file from its first byte however
it is read, so reading it early costs disk, not memory. Otherwise it is read as everywhere else (member.py): as the
walker would read it, every limit checked as the bytes arrive, its output cut at its declared size; the whole-walk
budget is charged when the walker takes it, in walk order, and its errors are raised there.

Bounds: the members read early and not yet taken declare at most ``EARLY_BYTES`` together (one member at least),
so a zip of many large members does not fill the disk ahead of the walker. A member the walker passes without
taking it stops at its next piece and is removed; so is everything when the walker leaves the zip, and the process
(or thread) has ended, done with the zip's buffer, before :meth:`EarlyLane.close` returns.

Members are matched by the place their central directory entry gives (offset, sizes, CRC-32, method, name): a zip
that lists the same member twice reads it early once, and the walker reads the second copy itself.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from licscan.inventory.entries import Entry
from licscan.inventory.forked import ForkedReader
from licscan.inventory.member import Done, hand_over, wants_digest
from licscan.inventory.spool import Budget, Held, Spool

if TYPE_CHECKING:  # the pool that owns the lane (ahead.py imports this module)
    from licscan.inventory.ahead import ReadAhead

EARLY_BYTES = 1 << 30  # declared bytes of the large members read early and not yet taken (spooled: on disk)

Key = tuple[int, int, int, int, int, str]


def _key(entry: Entry) -> Key | None:
    span = entry.span
    return None if span is None else (span.header_offset, span.packed, span.size, span.crc, span.method, span.name)


class _Read:
    """One large member given to the lane: to the forked reader (``index``), or to the thread (``future``)."""

    def __init__(self, entry: Entry, index: int, future: Future[Done] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.entry = entry
        self.index = index
        self.future = future
        self.stop = stop

    def done(self, forked: ForkedReader | None) -> Done | None:
        if self.future is not None:
            return self.future.result()
        return forked.result(self.index) if forked is not None else None

    def discard(self, forked: ForkedReader | None) -> None:
        """Not wanted any more: stop the read and release what it read (now, or when it ends)."""
        if self.future is None:
            if forked is not None:
                forked.discard(self.index)
            return
        assert self.stop is not None
        self.stop.set()
        if not self.future.cancel():
            self.future.add_done_callback(_release)


def _release(future: Future[Done]) -> None:
    if not future.cancelled():
        held = future.result().held
        if held is not None:
            held.release()


class EarlyLane:
    """The large members of one zip, read in archive order by one process (or thread) from the start of the zip's
    walk."""

    def __init__(self, ahead: ReadAhead, large: Sequence[Entry]) -> None:
        self._ahead = ahead
        self._todo: deque[tuple[Key, Entry, int]] = deque()
        self._keys: set[Key] = set()
        for entry in large:
            key = _key(entry)
            if key is not None and key not in self._keys:
                self._todo.append((key, entry, len(self._todo)))
                self._keys.add(key)
        self._reading: dict[Key, _Read] = {}
        self._bytes = 0  # declared bytes of the members given to the reader and not yet taken or passed
        self._pool: ThreadPoolExecutor | None = None
        self._forked: ForkedReader | None = None
        if self._todo:
            try:
                self._forked = ForkedReader([e for _k, e, _i in self._todo], ahead.limits, ahead.drop_pages,
                                            ahead.files)
            except (OSError, AssertionError):  # no fork here, or a daemonic process (no children): a thread reads
                self._forked = None
        self._submit()

    def owns(self, entry: Entry) -> bool:
        """Whether ``entry`` is one of the lane's members (the pool does not read it)."""
        return _key(entry) in self._keys

    def take(self, entry: Entry, budget: Budget, spool: Spool) -> Held | None:
        """The bytes of ``entry`` as the walker would have read them (None: the walker reads it itself)."""
        key = _key(entry)
        read = self._reading.pop(key, None) if key is not None else None
        if read is None:
            self._forget(key)
            return None
        self._bytes -= read.entry.size or 0
        self._submit()
        done = read.done(self._forked)
        return hand_over(done, budget, spool) if done is not None else None

    def passed(self, entry: Entry) -> None:
        """The walker went past ``entry`` (taken or not): what was read of it and not taken is released."""
        key = _key(entry)
        read = self._reading.pop(key, None) if key is not None else None
        if read is None:
            self._forget(key)
            return
        self._bytes -= read.entry.size or 0
        read.discard(self._forked)
        self._submit()

    def close(self) -> None:
        """Stop reading and release what was read and not taken; the reader has ended when this returns."""
        self._todo.clear()
        reads, self._reading = list(self._reading.values()), {}
        for read in reads:
            read.discard(self._forked)
        if self._forked is not None:
            self._forked.close()
            self._forked = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _forget(self, key: Key | None) -> None:
        self._todo = deque((k, e, i) for k, e, i in self._todo if k != key)

    def _submit(self) -> None:
        while self._todo and (not self._reading or self._bytes + (self._todo[0][1].size or 0) <= EARLY_BYTES):
            key, entry, index = self._todo.popleft()
            if self._forked is not None:
                self._forked.submit(index, wants_digest(self._ahead.digests, entry))
                self._reading[key] = _Read(entry, index)
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="licscan-inflate-early")
                stop = threading.Event()
                self._reading[key] = _Read(entry, index, self._pool.submit(self._ahead.read, entry, stop), stop)
            self._bytes += entry.size or 0
