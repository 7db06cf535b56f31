"""Zip members inflated by threads ahead of the walker (issue 14 goal 2: the members of a wheel inflated on the
second core while the first examines the ones before).

A zip's members are known from its central directory, so they can be read out of order: :meth:`ReadAhead.entries`
wraps the walker's sequence of zip entries, has the next ones read by a small thread pool (consecutive small members
in one task) and hands every entry on in the original order. Where the walker would read a member's stream it asks
:meth:`ReadAhead.take` instead, and gets the same bytes, the same errors and the same limit diagnostics:

- a thread reads a member exactly as the walker does (``Spool.hold``: every limit checked as the bytes arrive,
  spooled to a private file past ``in_memory_bytes``), through :mod:`licscan.inventory.inflate` (one pass:
  inflate and CRC-32 together), after zipfile's own checks of the local header (``ZipFile.open``);
- the whole-walk byte budget is charged when the walker takes the member, in walk order: the bytes the thread read
  are charged at once, and the budget refuses the member when the sequential read would have been refused at one
  of those bytes (``Spool.hold`` charges the budget before it checks any other limit on each piece);
- an error found while reading (damaged data, a bad CRC-32, a limit) is raised by ``take``, in walk order;
- an error of the entry sequence itself (a damaged zip) is raised after the entries before it were handed on.

Memory: the members read ahead and not yet taken hold at most ``ahead_bytes`` as estimated from their declared
sizes, and a member read ahead is kept in memory only up to twice its declared size (one that lies about its size
is spooled, as every member over ``in_memory_bytes`` is). The threads give back the pages of the zip they read with
the walker's ``drop_pages``; when the walker leaves a zip, no thread reads from it any more.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import BinaryIO

from licscan.inventory.entries import Entry, Reader
from licscan.inventory.inflate import open_member
from licscan.inventory.limits import WalkLimits
from licscan.inventory.spool import Budget, Held, LimitExceeded, Spool

AHEAD_BYTES = 8 << 20  # estimated bytes of the members read ahead and not yet taken
AHEAD_MEMBERS = 256
BATCH_BYTES = 1 << 20  # consecutive members read by one task: at most this many declared bytes ...
BATCH_MEMBERS = 32  # ... and members (a task and its future cost more than inflating a 1 KB header file)
SMALLEST_IN_MEMORY = 64 << 10  # a member read ahead stays in memory up to max(2 x declared size, this)
# One thread: the walker's side (examining the members: Python, one core) is the slower one (the torch wheel:
# ~1.2 s of inflating and checking CRCs against ~6 s of examining), so one thread on the second core keeps ahead of
# it; and one thread reads the members in walk order, one after the other, as the walker did.
THREADS = 1


@dataclass
class _Done:
    """One member read by a thread: its bytes or the error that stopped it, and the bytes it charged."""

    held: Held | None
    error: Exception | None
    charged: int


_TAKEN = _Done(None, None, 0)


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


class MemberSpool(Spool):
    """The spool of one member read by a thread: its own in-memory bound, counting what the walker holds in memory
    when the member is read (``held``: the members of the enclosing archives); its file in the read-ahead's private
    folder (made under a lock: the threads share it), removed with the walk."""

    def __init__(self, limits: WalkLimits, drop_pages: Callable[[], None] | None, files: Spool,
                 lock: threading.Lock, held: int = 0):
        super().__init__(limits, drop_pages)
        self._files = files
        self._lock = lock
        self.in_memory = held

    def _file(self) -> BinaryIO:
        with self._lock:
            return self._files._file()


class _Batch:
    """Consecutive members read by one task, in order. Used from the walker's thread only: what the walker passed
    without taking is released once read (:meth:`sweep`)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.future: Future[list[_Done]] | None = None
        self.dropped: set[int] = set()  # passed without being taken, not yet released
        self.taken: set[int] = set()

    def drop(self, index: int) -> None:
        if index in self.taken:
            return
        self.dropped.add(index)
        assert self.future is not None
        if len(self.dropped) + len(self.taken) == len(self.entries) and self.future.cancel():
            self.dropped.clear()  # never started: nothing was read
        self.sweep()

    def sweep(self) -> None:
        if self.future is not None and self.future.cancelled():
            self.dropped.clear()  # never read
        if self.dropped and self.future is not None and self.future.done():
            results = self.future.result()
            for index in self.dropped:
                held = results[index].held
                results[index] = _TAKEN
                if held is not None:
                    held.release()
            self.taken.update(self.dropped)
            self.dropped.clear()

    def settle(self) -> None:
        """Wait until the task is done (or was never started) and release what was passed."""
        if self.future is not None and not self.future.cancelled():
            self.future.exception()
        self.sweep()


class _Window:
    """The entries of one zip between the walker and the threads: handed on in order, read ahead in batches."""

    def __init__(self, ahead: ReadAhead, entries: Iterable[Entry], wanted: Callable[[Entry], bool]):
        self.ahead = ahead
        self.source = iter(entries)
        self.wanted = wanted
        self.queue: deque[tuple[Entry, _Batch | None, int]] = deque()
        self.batches: list[_Batch] = []  # submitted
        self.forming = _Batch()
        self.ended = False
        self.failure: Exception | None = None  # of the entry sequence: raised after the entries before it
        self.bytes = 0  # estimated bytes of the entries in the queue that are read ahead

    def fill(self) -> None:
        ahead = self.ahead
        while not self.ended and (not self.queue or (len(self.queue) < ahead.ahead_members
                                                     and self.bytes < ahead.ahead_bytes)):
            try:
                entry = next(self.source)
            except StopIteration:
                self.ended = True
                break
            except Exception as error:  # noqa: BLE001 - raised after the entries before it
                self.failure, self.ended = error, True
                break
            if entry.span is None or not self.wanted(entry):
                self.queue.append((entry, None, 0))
                continue
            if self.forming.entries and (entry.size or 0) >= BATCH_BYTES:
                self.submit()  # a large member is a task of its own: the small ones before it need not wait for it
            self.forming.entries.append(entry)
            self.bytes += ahead._cost(entry)
            self.queue.append((entry, self.forming, len(self.forming.entries) - 1))
            if len(self.forming.entries) >= BATCH_MEMBERS or \
                    sum(e.size or 0 for e in self.forming.entries) >= BATCH_BYTES:
                self.submit()
        if self.forming.entries and (self.ended or self.queue[0][1] is self.forming):
            self.submit()

    def submit(self) -> None:
        if len(self.batches) > 64:
            self.batches = [b for b in self.batches if b.dropped or (b.future is not None and not b.future.done())]
        self.batches.append(self.ahead._submit(self.forming))
        self.forming = _Batch()

    def close(self) -> None:
        for _entry, batch, index in self.queue:
            if batch is not None and batch.future is not None:
                batch.drop(index)
        for batch in self.batches:
            batch.settle()


class ReadAhead:
    """A thread pool that reads zip members ahead of the walker; one per walk (:meth:`close` with the walk)."""

    def __init__(self, limits: WalkLimits, drop_pages: Callable[[], None] | None = None, *,
                 walker: Spool | None = None, threads: int | None = None, ahead_bytes: int = AHEAD_BYTES,
                 ahead_members: int = AHEAD_MEMBERS):
        self.limits = limits
        self.drop_pages = drop_pages
        self.walker = walker  # the walker's spool: what it holds in memory counts in the threads' bound
        self.threads = threads if threads is not None else THREADS
        self.ahead_bytes = ahead_bytes
        self.ahead_members = ahead_members
        self._pool: ThreadPoolExecutor | None = None
        self.files = Spool(limits)  # the private folder of the members spooled by the threads (pipe.py's too)
        self.lock = threading.Lock()
        self._offered: dict[int, tuple[Entry, _Batch, int]] = {}  # entries handed on and not yet passed

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.files.close()

    def take(self, entry: Entry, budget: Budget, spool: Spool) -> Held | None:
        """The bytes of ``entry`` if it is being read ahead (None: read it now), as ``spool.hold`` would have read
        them under ``budget``; raises what that would have raised. Bytes held in memory count in ``spool``'s
        in-memory total until released."""
        offered = self._offered.get(id(entry))
        if offered is None or offered[0] is not entry:
            return None
        _entry, batch, index = offered
        batch.taken.add(index)
        assert batch.future is not None
        results = batch.future.result()
        done, results[index] = results[index], _TAKEN  # the task keeps no reference to the bytes handed on
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
            return Held(held.data, held.size, spool)
        return held

    def entries(self, entries: Iterable[Entry], wanted: Callable[[Entry], bool]) -> Iterator[Entry]:
        """``entries`` in their order; the files among them for which ``wanted`` is True (and whose ``span`` says
        where their data is) are read ahead. When closed, what was not taken is released and the threads are done
        with the zip's buffer before this returns."""
        window = _Window(self, entries, wanted)
        try:
            while True:
                window.fill()
                if not window.queue:
                    if window.failure is not None:
                        raise window.failure
                    return
                entry, batch, index = window.queue.popleft()
                if batch is None:
                    yield entry
                    continue
                window.bytes -= self._cost(entry)
                self._offered[id(entry)] = (entry, batch, index)
                try:
                    yield entry
                finally:
                    del self._offered[id(entry)]
                    batch.drop(index)
        finally:
            window.close()

    def _cost(self, entry: Entry) -> int:
        return min(entry.size or 0, self.limits.in_memory_bytes) + 1

    def _submit(self, batch: _Batch) -> _Batch:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="licscan-inflate")
        batch.future = self._pool.submit(self._read, list(batch.entries))
        return batch

    def _read(self, entries: list[Entry]) -> list[_Done]:
        """One task (in a thread): its members read in order."""
        return [read_member(entry, self.member_spool(entry)) for entry in entries]

    def member_spool(self, entry: Entry) -> MemberSpool:
        """The spool a thread reads ``entry`` with."""
        return MemberSpool(member_limits(self.limits, entry), self.drop_pages, self.files, self.lock,
                           self.walker.in_memory if self.walker is not None else 0)


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


def read_member(entry: Entry, spool: Spool) -> _Done:
    """Read one zip member as ``Spool.hold`` does (in a thread): zipfile checks the local header, then the data is
    read in one pass by :func:`licscan.inventory.inflate.open_member` (zipfile's stream when it cannot)."""
    tally = Tally(spool.limits)
    try:
        stream: Reader = entry.reader()
        fast = open_member(entry.span) if entry.span is not None else None
        if fast is not None:
            _close(stream)
            stream = fast
        try:
            return _Done(spool.hold(stream, tally, charge=not entry.charged, packed=entry.packed), None,
                         tally.total)
        finally:
            _close(stream)
    except Exception as error:  # noqa: BLE001 - raised by ReadAhead.take, where the walker reads the member
        return _Done(None, error, tally.total)


def _close(stream: Reader) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
