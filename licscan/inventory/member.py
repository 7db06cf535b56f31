"""One archive member read by a thread ahead of the walker (ahead.py, early.py, pipe.py), exactly as the walker would
read it, and handed over to the walker where it would have read it.

A thread reads a member with ``Spool.hold`` (every limit checked as the bytes arrive) under a :class:`Tally`: a
budget that only counts. The walker charges its own budget with those bytes when it takes the member
(:func:`hand_over`), in walk order, and gets the error that stopped the read there. A zip member is read in one
pass by :mod:`licscan.inventory.inflate` (inflate and CRC-32 together) after zipfile's own checks of its local
header (``ZipFile.open``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import BinaryIO, Protocol

from licscan.inventory.entries import Entry, Reader
from licscan.inventory.inflate import open_checked, open_member
from licscan.inventory.limits import WalkLimits
from licscan.inventory.spool import Budget, Held, LimitExceeded, Spool

SMALLEST_IN_MEMORY = 64 << 10  # a member read ahead stays in memory up to max(2 x declared size, this)


@dataclass
class Done:
    """One member read by a thread: its bytes or the error that stopped it, and the bytes it charged."""

    held: Held | None
    error: Exception | None
    charged: int


TAKEN = Done(None, None, 0)


class Tally(Budget):
    """The budget a thread charges: it only counts (the walker's budget decides, in walk order), and notes each
    charge in ``reads`` while that is a list."""

    reads: list[int] | None = None

    def charge(self, count: int) -> None:
        self.total += count
        if self.reads is not None:
            self.reads.append(count)


def charge(budget: Budget, count: int) -> None:
    """Charge ``count`` bytes read by a thread, as the walker's own reads charged them: a read that brought no bytes
    charged nothing, and so refused nothing, even past the limit."""
    if count:
        budget.charge(count)


def hand_over(done: Done, budget: Budget, spool: Spool) -> Held:
    """What the walker gets for a member a thread read: its bytes, after charging ``budget`` with what the thread
    read (raises what the sequential read would have raised). Bytes held in memory count in ``spool``'s in-memory
    total until released."""
    try:
        charge(budget, done.charged)
    except LimitExceeded:
        if done.held is not None:
            done.held.release()
        raise
    if done.error is not None:
        raise done.error
    held = done.held
    assert held is not None
    if isinstance(held.data, bytes):
        spool.in_memory += held.size
        return Held(held.data, held.size, spool, held.sha256)
    return held


class MemberSpool(Spool):
    """The spool of one member read by a thread: its own in-memory bound, counting what the walker holds in memory
    when the member is read (``held``: the members of the enclosing archives); its file in the read-ahead's private
    folder (made under a lock: the threads share it), removed with the walk."""

    def __init__(self, limits: WalkLimits, drop_pages: Callable[[], None] | None, files: Spool,
                 lock: threading.Lock, held: int = 0):
        super().__init__(limits, drop_pages, files.hasher)
        self._files = files
        self._lock = lock
        self.in_memory = held

    def _file(self) -> BinaryIO:
        with self._lock:
            return self._files._file()


_LIMITS: dict[tuple[WalkLimits, int], WalkLimits] = {}


def member_limits(limits: WalkLimits, entry: Entry) -> WalkLimits:
    """The limits of one member read by a thread: in memory up to about twice its declared size (a member that lies
    about its size is spooled), never more than ``in_memory_bytes``; one declared larger is spooled at once."""
    declared = entry.size or 0
    if declared > limits.in_memory_bytes:
        bound = 0  # spooled from its first bytes: a thread never holds in_memory_bytes before spooling
    else:
        bound = max(2 * declared, SMALLEST_IN_MEMORY)
        bound = min(1 << (bound - 1).bit_length(), limits.in_memory_bytes)  # a power of two: few distinct values
    own = _LIMITS.get((limits, bound))
    if own is None:
        if len(_LIMITS) > 256:
            _LIMITS.clear()
        own = _LIMITS[(limits, bound)] = replace(limits, in_memory_bytes=bound)
    return own


class StopFlag(Protocol):
    """Set when a member's read is no longer wanted: a ``threading.Event``, or a flag shared with a forked reader
    (forked.py)."""

    def is_set(self) -> bool: ...


class Stopped(Exception):
    """The walker left the archive (or passed the member): a member read by a thread is not read to its end."""


class _Stoppable:
    """A member's stream that stops at its next read once ``stop`` is set."""

    def __init__(self, raw: Reader, stop: StopFlag) -> None:
        self._raw = raw
        self._stop = stop

    def read(self, size: int = -1, /) -> bytes:
        if self._stop.is_set():
            raise Stopped("the walk no longer needs this member")
        return self._raw.read(size)


Digests = Callable[[str], bool]  # by a member's file name: whether its sha256 is computed while it is spooled


def wants_digest(digests: Digests | None, entry: Entry) -> bool:
    """Whether ``entry``'s sha256 is computed while it is spooled (``Spool.hold(digest=...)``)."""
    return digests is not None and digests(entry.name.rsplit("/", 1)[-1])


def read_member(entry: Entry, spool: Spool, stop: StopFlag | None = None, digest: bool = False) -> Done:
    """Read one zip member as ``Spool.hold`` does (in a thread): zipfile's checks of the local header (made here
    when they pass, :func:`licscan.inventory.inflate.open_checked`, else by ``ZipFile.open``), then the data is read
    in one pass by :mod:`licscan.inventory.inflate` (zipfile's stream when it cannot). ``stop``:
    set when the read is no longer wanted (it then ends with :class:`Stopped` at its next piece); ``digest``: see
    ``Spool.hold``."""
    tally = Tally(spool.limits)
    try:
        checked = open_checked(entry.span) if entry.span is not None else None  # zipfile's checks passed
        stream: Reader = checked if checked is not None else entry.reader()
        fast = open_member(entry.span) if entry.span is not None and checked is None else None
        if fast is not None:
            _close(stream)
            stream = fast
        try:
            source = _Stoppable(stream, stop) if stop is not None else stream
            return Done(spool.hold(source, tally, charge=not entry.charged, packed=entry.packed, digest=digest), None,
                        tally.total)
        finally:
            _close(stream)
    except Exception as error:  # noqa: BLE001 - raised by hand_over, where the walker reads the member
        return Done(None, error, tally.total)


def _close(stream: Reader) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
