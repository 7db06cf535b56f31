"""A streamed tar (an image layer, a ``.tar.gz``, a ``.tar.zst``) read by a thread ahead of the walker (the
layers of an image decompressed on the second core while the first examines the files before).

A compressed tar can only be read in order, so one thread per streamed tar does what the walker did with it, in the
same order and with the same reads: it takes the next header from ``tar_entries`` and reads the member's bytes
(``Spool.hold``, every limit checked as the bytes arrive; the compressed bytes consumed are counted by the same
reader, so ratio checks see the same figures), then hands the entry on through a bounded queue. The walker takes
the bytes where it would have read them (:meth:`TarAhead.take`).

The whole-walk byte budget is charged in walk order, where the sequential walk charged it: the bytes decompressed
while the thread read a header are charged when the walker gets that entry (the budget refuses the rest of the tar,
as the entry sequence did), the bytes of a member when the walker takes it (the budget refuses the member). The
errors of a member, and of the entry sequence, are raised where the walker would have met them.

Memory: at most ``AHEAD_MEMBERS`` members and ``AHEAD_BYTES`` of members held in memory wait in the queue (a member
over ``in_memory_bytes`` is spooled, as the walker spools it).

The tar's thread does not decompress: another does, ahead of it (inflow.py).
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from licscan.inventory.ahead import ReadAhead
from licscan.inventory.entries import Entry
from licscan.inventory.inflow import Inflow
from licscan.inventory.member import Tally, charge, wants_digest
from licscan.inventory.spool import Budget, Held, LimitExceeded, Spool

AHEAD_MEMBERS = 64
AHEAD_BYTES = 16 << 20


@dataclass
class _Step:
    """One entry of the tar as the thread met it: the budget bytes its header cost, and its bytes when read."""

    entry: Entry | None  # None: the end of the entries (or ``error``)
    header_reads: list[int]  # the bytes each read of the decompressed stream brought while the header was read
    held: Held | None = None
    error: Exception | None = None  # of the member (entry set) or of the entry sequence (entry None)
    data_reads: list[int] = field(default_factory=list)  # ... while the member's bytes were read
    read: bool = False  # by the thread
    taken: bool = False  # by the walker


class TarAhead:
    """The thread and queue of one streamed tar; :meth:`entries` in the walker, :meth:`take` for each member."""

    def __init__(self, ahead: ReadAhead, tally: Tally, stream: Inflow | None = None):
        self.limits = ahead.limits
        self._stream = stream  # the tar's decompressed stream: its large members may be written by its lane
        self.tally = tally  # charged by the decompressed stream the tar is read from (in the thread)
        self._ahead = ahead  # its spool folder and the walker's spool
        self._queue: queue.Queue[_Step] = queue.Queue()
        self._room = threading.Condition()
        self._waiting = 0  # members in the queue
        self._waiting_bytes = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self._current: _Step | None = None
        self._owed = 0  # bytes read past the one the budget refused: the sequential walk skipped them next

    def entries(self, source: Iterator[Entry], wanted: Callable[[Entry], bool], budget: Budget) -> Iterator[Entry]:
        """``source`` (read by the thread) in its order, charging ``budget`` as the sequential walk did."""
        self._thread = threading.Thread(target=self._run, args=(source, wanted), name="licscan-untar", daemon=True)
        self._thread.start()
        try:
            while True:
                step = self._queue.get()
                self._left(step)
                owed, self._owed = self._owed, 0
                self._charge(budget, [owed, *step.header_reads])  # raised as the entry sequence raised it
                if step.entry is None:
                    if step.error is not None:
                        raise step.error
                    return
                self._current = step
                try:
                    yield step.entry
                finally:
                    self._current = None
                    if step.held is not None and not step.taken:
                        step.held.release()
                        step.held = None
                if step.read and not step.taken:
                    # Passed without being read: the sequential walk charged these bytes skipping them on its way
                    # to the next header (raised as the entry sequence raised it).
                    step.taken = True
                    self._charge(budget, step.data_reads)
        finally:
            self._close()

    def take(self, entry: Entry, budget: Budget, spool: Spool) -> Held | None:
        """The bytes of ``entry`` (the entry just handed on) as the walker would have read them; None when the
        thread did not read it (then the walker reads it, as before)."""
        step = self._current
        if step is None or step.entry is not entry or not step.read or step.taken:
            return None
        step.taken = True
        held, step.held = step.held, None
        try:
            self._charge(budget, step.data_reads)
        except LimitExceeded:
            if held is not None:
                held.release()
            raise
        if step.error is not None:
            raise step.error
        assert held is not None
        if isinstance(held.data, bytes):
            spool.in_memory += held.size
            return Held(held.data, held.size, spool, held.sha256)
        return held

    def _charge(self, budget: Budget, reads: list[int]) -> None:
        """Charge ``reads`` one by one, as the reads charged the budget in the sequential walk; the bytes of the
        reads after the one refused are owed: the walk skipped them on its way to the next header. When none of
        them can be refused they are charged as one sum (a 700 MB member is 70,000 reads of 10 KiB: 0.3 s of the
        walker's time one by one)."""
        whole = sum(reads)
        if type(budget) is Budget and budget.total + whole <= budget.limits.max_total_bytes:
            budget.total += whole
            return
        for index, count in enumerate(reads):
            try:
                charge(budget, count)
            except LimitExceeded:
                self._owed = sum(reads[index + 1 :])
                raise

    def _run(self, source: Iterator[Entry], wanted: Callable[[Entry], bool]) -> None:
        """The thread: :meth:`_read` and, should it fail unexpectedly, an end that says so (the walker waits)."""
        try:
            self._read(source, wanted)
        except BaseException as error:
            self._put(_Step(None, [], error=RuntimeError(f"tar reader thread failed: {error!r}")))
            raise

    def _read(self, source: Iterator[Entry], wanted: Callable[[Entry], bool]) -> None:
        """The walker's reads, in its order, until the end, an error or :meth:`_close`."""
        tally = self.tally
        while not self._stop:
            reads: list[int] = []
            tally.reads = reads
            try:
                entry = next(source)
            except StopIteration:
                self._put(_Step(None, reads))
                return
            except Exception as error:  # noqa: BLE001 - raised by the walker after the entries before it
                self._put(_Step(None, reads, error=error))
                return
            step = _Step(entry, reads)
            if entry.open is not None and wanted(entry):
                step.read = True
                tally.reads = step.data_reads
                spool = self._ahead.member_spool(entry)
                try:
                    reader = entry.reader()
                    opened = self._stream.opened if self._stream is not None else None  # this entry's (inflow.py)
                    step.held = spool.hold(reader, tally, charge=not entry.charged, packed=entry.packed,
                                           declared=entry.size,
                                           digest=functools.partial(wants_digest, self._ahead.digests, entry),
                                           offload=opened.offload if opened is not None else None)
                except Exception as error:  # noqa: BLE001 - raised by take, where the walker reads the member
                    step.error = error
            tally.reads = None
            self._put(step)

    def _put(self, step: _Step) -> None:
        size = step.held.size if step.held is not None and isinstance(step.held.data, bytes) else 0
        with self._room:
            while not self._stop and self._waiting and (self._waiting >= AHEAD_MEMBERS
                                                         or self._waiting_bytes + size > AHEAD_BYTES):
                self._room.wait()
            self._waiting += 1
            self._waiting_bytes += size
        self._queue.put(step)

    def _left(self, step: _Step) -> None:
        size = step.held.size if step.held is not None and isinstance(step.held.data, bytes) else 0
        with self._room:
            self._waiting -= 1
            self._waiting_bytes -= size
            self._room.notify()

    def _close(self) -> None:
        """Stop the thread (it finishes the member it reads) and release what it read and nobody took."""
        with self._room:
            self._stop = True
            self._room.notify_all()
        if self._thread is not None:
            self._thread.join()
        while not self._queue.empty():
            step = self._queue.get_nowait()
            if step.held is not None:
                step.held.release()
