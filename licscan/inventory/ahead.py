"""Zip members inflated by threads ahead of the walker (the members of a wheel inflated on the
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from licscan.inventory.early import EarlyLane
from licscan.inventory.entries import Entry
from licscan.inventory.limits import WalkLimits
from licscan.inventory.member import (
    TAKEN,
    Digests,
    Done,
    MemberSpool,
    hand_over,
    member_limits,
    read_member,
    wants_digest,
)
from licscan.inventory.spool import Budget, Held, Spool
from licscan.inventory.unzstd import Decompressor

AHEAD_BYTES = 8 << 20  # estimated bytes of the members read ahead and not yet taken
AHEAD_MEMBERS = 256
BATCH_BYTES = 1 << 20  # consecutive members read by one task: at most this many declared bytes ...
BATCH_MEMBERS = 32  # ... and members (a task and its future cost more than inflating a 1 KB header file)
# One thread: the walker's side (examining the members: Python, one core) is the slower one (the torch wheel:
# ~1.2 s of inflating and checking CRCs against ~6 s of examining), so one thread on the second core keeps ahead of
# it; and one thread reads the members in walk order, one after the other, as the walker did.
THREADS = 1


class _Batch:
    """Consecutive members read by one task, in order. Used from the walker's thread only: what the walker passed
    without taking is released once read (:meth:`sweep`)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.future: Future[list[Done]] | None = None
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
                results[index] = TAKEN
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

    def __init__(self, ahead: ReadAhead, entries: Iterable[Entry], wanted: Callable[[Entry], bool],
                 early: EarlyLane | None = None):
        self.ahead = ahead
        self.source = iter(entries)
        self.wanted = wanted
        self.early = early  # its members are not read by the pool
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
            if entry.span is None or not self.wanted(entry) or (self.early is not None and self.early.owns(entry)):
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
        self.digests: Digests | None = None  # the members hashed while spooled (the walker's, member.py)
        self.threads = threads if threads is not None else THREADS
        self.ahead_bytes = ahead_bytes
        self.ahead_members = ahead_members
        self._pool: ThreadPoolExecutor | None = None
        # The private folder of the members spooled by the threads (pipe.py's too), and the thread that hashes
        # those asked for (Spool.hold(digest=True): no thread is started until one is).
        self.files = Spool(limits, hasher=ThreadPoolExecutor(1, thread_name_prefix="licscan-sha256"))
        self.lock = threading.Lock()
        self._offered: dict[int, tuple[Entry, _Batch, int]] = {}  # entries handed on and not yet passed
        self._early: dict[int, tuple[Entry, EarlyLane]] = {}  # ... those read by an early lane (early.py)
        self.unzstd = Decompressor(self.files.folder)  # the process decompressing a streamed tar's zstd stream (unzstd.py)

    def close(self) -> None:
        self.unzstd.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self.files.hasher is not None:
            self.files.hasher.shutdown(wait=True)
        self.files.close()

    def take(self, entry: Entry, budget: Budget, spool: Spool) -> Held | None:
        """The bytes of ``entry`` if it is being read ahead (None: read it now), as ``spool.hold`` would have read
        them under ``budget``; raises what that would have raised. Bytes held in memory count in ``spool``'s
        in-memory total until released."""
        early = self._early.get(id(entry))
        if early is not None and early[0] is entry:
            return early[1].take(entry, budget, spool)
        offered = self._offered.get(id(entry))
        if offered is None or offered[0] is not entry:
            return None
        _entry, batch, index = offered
        batch.taken.add(index)
        assert batch.future is not None
        results = batch.future.result()
        done, results[index] = results[index], TAKEN  # the task keeps no reference to the bytes handed on
        return hand_over(done, budget, spool)

    def entries(self, entries: Iterable[Entry], wanted: Callable[[Entry], bool],
                large: Sequence[Entry] = ()) -> Iterator[Entry]:
        """``entries`` in their order; the files among them for which ``wanted`` is True (and whose ``span`` says
        where their data is) are read ahead; those equal to one of ``large`` (the zip's large members, spooled
        anyway) by a thread of their own from the start (early.py). When closed, what was not taken is released
        and the threads are done with the zip's buffer before this returns."""
        early = EarlyLane(self, [e for e in large if wanted(e)]) if large else None
        window = _Window(self, entries, wanted, early)
        try:
            while True:
                window.fill()
                if not window.queue:
                    if window.failure is not None:
                        raise window.failure
                    return
                entry, batch, index = window.queue.popleft()
                if batch is None:
                    yield from self._hand_on(entry, early)
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
            if early is not None:
                early.close()

    def _hand_on(self, entry: Entry, early: EarlyLane | None) -> Iterator[Entry]:
        """An entry not read by the pool: read by the early lane, or by the walker."""
        if early is None or not early.owns(entry):
            yield entry
            return
        self._early[id(entry)] = (entry, early)
        try:
            yield entry
        finally:
            del self._early[id(entry)]
            early.passed(entry)

    def _cost(self, entry: Entry) -> int:
        return min(entry.size or 0, self.limits.in_memory_bytes) + 1

    def _submit(self, batch: _Batch) -> _Batch:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="licscan-inflate")
        batch.future = self._pool.submit(self._read, list(batch.entries))
        return batch

    def read(self, entry: Entry, stop: threading.Event | None = None) -> Done:
        """Read ``entry`` (in a thread) with the spool :meth:`member_spool` gives it."""
        return read_member(entry, self.member_spool(entry), stop, wants_digest(self.digests, entry))

    def _read(self, entries: list[Entry]) -> list[Done]:
        """One task (in a thread): its members read in order."""
        return [self.read(entry) for entry in entries]

    def member_spool(self, entry: Entry) -> MemberSpool:
        """The spool a thread reads ``entry`` with."""
        return MemberSpool(member_limits(self.limits, entry), self.drop_pages, self.files, self.lock,
                           self.walker.in_memory if self.walker is not None else 0)
