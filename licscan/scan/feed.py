"""The plain files of a scan, examined while the walk goes on (every core does the work).

The walk hands every plain file to :meth:`PlainFiles.add`; files are cut into batches of one folder
(:class:`licscan.scan.plain.Batcher`). With ``jobs`` > 1 there are ``jobs - 1`` worker processes beside this one:

- during the walk, batches go to the workers in walk order, at most ``4 x workers`` in flight (the rest wait here,
  as (path, virtual path) pairs), while this process goes on walking;
- after the walk, the batches still waiting are ordered by their estimated cost (:func:`licscan.scan.plain.file_cost`:
  a library the catalog names is hashed whole, most files cost their opening only), costliest first, and every
  process takes the costliest one left: before this process starts one, the workers are given twice as much work
  and a little more (:meth:`_Pool.room`, at most ``32 x workers`` batches in flight; the pool's own thread hands
  them over meanwhile), so that no worker runs dry while this process is busy; at the end this
  process takes back a batch sent to a worker that has not started it yet. The last batches are the cheapest, so
  the processes finish within one cheap batch of each other (largest first and smallest last, not an expensive
  library started last by one process while the others idle).

Workers are forked with the distributions known at that moment, once (the pool's initializer; never pickled per
task). The walk reads a folder's ``*.dist-info`` when it opens the folder (``distributions_ahead``), so in an
installed environment the workers have every distribution before the first file. A distribution found after the
workers were started (a venv's ``bin/`` comes before its ``site-packages``; a wheel's own metadata) makes those
workers *stale*: they get no more batches, and each file they examined whose owner the new distributions could
change (:func:`licscan.identify.owner.distribution_of`) is examined again here, with all of them. The records are
therefore those of one process examining every file with every distribution, whoever examined them.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from licscan.binary.images import Limits
from licscan.cache import Cache
from licscan.identify.examine import FileRecord
from licscan.identify.owner import distribution_of
from licscan.model import Distribution
from licscan.scan.deferred import Deferred
from licscan.scan.plain import (
    Batch,
    Batcher,
    Contexts,
    Shared,
    examine_batch,
    examine_here,
    file_cost,
    prepare_workers,
    shared_context,
    worker_start,
)
from licscan.vpath import is_within
from licscan.workers import fork_context

WINDOW_PER_WORKER = 4  # batches in flight per worker process (at least, after the walk)
MAX_WINDOW_PER_WORKER = 32  # batches in flight per worker process (at most)
AHEAD = 0.05  # estimated seconds of work in flight per worker after the walk, besides what this process does
START_AFTER = 4  # batches waiting before worker processes are started (a few files are examined here, unforked)
MAX_STARTS = 3  # worker pools started in one scan (each later one because distributions were found meanwhile)
# Estimated seconds of this process's work in ``finish(meanwhile=...)`` (an audit parses its rule packs and loads
# what judging reads: 0.1-0.2 s of CPU): the workers are given twice that first, so that they do not run dry.
MEANWHILE = 0.2


@dataclass
class _Pool:
    """Worker processes forked with one set of distributions, and the batches sent to them."""

    executor: ProcessPoolExecutor
    shared: Shared
    workers: int
    in_flight: dict[Future[list[FileRecord]], Batch] = field(default_factory=dict)  # in order of submission
    stale: bool = False  # a distribution was found after the fork: no more batches

    def room(self, work: float | None = None) -> bool:
        """Whether to send one more batch: fewer than ``4 x workers`` in flight, or, after the walk (``work``: the
        estimated cost of the batch this process examines next), up to the bound, less than twice that plus
        :data:`AHEAD` seconds of estimated work for each worker (estimates are off by half either way: a worker
        must not run dry while this process examines a library it took for a cheaper one)."""
        if self.stale:
            return False
        count = len(self.in_flight)
        return count < self.workers * WINDOW_PER_WORKER or (
            work is not None and count < self.workers * MAX_WINDOW_PER_WORKER
            and sum(b.cost for b in self.in_flight.values()) < (2 * work + AHEAD) * self.workers)

    def submit(self, batch: Batch) -> None:
        # (the flag only for a library named with its RECORD's digest: licscan/scan/deferred.py)
        task = self.executor.submit(examine_batch, batch.files, True) if batch.assume else \
            self.executor.submit(examine_batch, batch.files)
        self.in_flight[task] = batch

    def take_back(self) -> Batch | None:
        """The last batch sent that no worker has started (cancelled here), if any."""
        for future in reversed(list(self.in_flight)):
            if future.cancel():
                return self.in_flight.pop(future)
        return None


class PlainFiles:
    """The plain files of one scan: :meth:`ahead` and :meth:`add` during the walk, then :meth:`finish` once, then
    :meth:`close` (always)."""

    def __init__(self, limits: Limits, digests: bool, jobs: int, cache: Cache | None,
                 progress: Callable[[str], None] | None = None, deferred: Deferred | None = None) -> None:
        self.limits, self.digests, self.cache = limits, digests, cache
        self.workers = max(0, jobs - 1)
        self.progress = progress
        # digests a worker checks after the scan (never with the cache, the SBOM's digests or no worker)
        self.deferred = deferred if self.workers and cache is None and not digests else None
        self.known: list[Distribution] = []  # installed distributions read ahead by the walk
        self.contexts: Contexts = {}  # the digests of their metadata (cache keys), computed once each
        self.batcher = Batcher(by_folder=cache is not None)
        self.waiting: deque[Batch] = deque()
        self.records: list[FileRecord] = []
        self.pool: _Pool | None = None
        self.started = 0  # pools started
        # what workers examined, with the distributions they had: checked against the final ones in finish()
        self.from_workers: list[tuple[Batch, list[FileRecord], tuple[Distribution, ...]]] = []

    # ---- during the walk
    def ahead(self, distribution: Distribution) -> None:
        """An installed distribution, read before the files of its folder are walked."""
        self.known.append(distribution)
        if self.pool is not None:
            self.pool.stale = True

    def add(self, source: str, vpath: str, size: int) -> None:
        """One plain file (real path, virtual path, size), in walk order."""
        if self.deferred is not None and self.deferred.wants(source, vpath, size):
            batch: Batch | None = Batch(((source, vpath),), size, file_cost(vpath, size, hashed=False), assume=True)
        else:
            batch = self.batcher.add(source, vpath, size)
        if batch is None:
            return
        self.waiting.append(batch)
        self._renew(lambda: self._shared(self.known))
        self._feed()

    # ---- after the walk
    def finish(self, distributions: Sequence[Distribution],
               meanwhile: Callable[[], None] | None = None) -> list[FileRecord]:
        """Every plain file's record, each examined with ``distributions`` (all of the scan's); ``meanwhile`` is
        called first, once the workers have been given :data:`MEANWHILE` seconds of estimated work each."""
        last = self.batcher.flush()
        if last is not None:
            self.waiting.append(last)
        final = self._shared(distributions)
        if self.pool is not None and not _same(self.pool.shared.distributions, final.distributions):
            self.pool.stale = True
        self.waiting = deque(sorted(self.waiting, key=lambda b: -b.cost))
        if meanwhile is not None:
            self._renew(lambda: final)
            self._feed(MEANWHILE)
            meanwhile()
        while self.waiting or (self.pool is not None and self.pool.in_flight):
            self._step(final)
        checked: dict[int, bool] = {}  # id(distributions seen) -> the same as final
        for batch, records, seen in self.from_workers:
            same = checked.setdefault(id(seen), _same(seen, final.distributions))
            if not same and _owners_may_differ(records, seen, final.distributions):
                self.records.extend(examine_here(final, batch))  # (its files were reported to progress already)
            else:
                self.records.extend(records)
        self._defer(final)
        self.close()
        return self.records

    def _step(self, final: Shared) -> None:
        """One turn after the walk: collect what the workers finished, give them at least as much work as the
        costliest batch left, examine that batch here; or take back one they have not started, or wait for one."""
        self._renew(lambda: final)
        self._feed(self.waiting[0].cost if self.waiting else 0.0)
        if self.waiting:
            self._done(examine_here(final, self.waiting.popleft()))
            return
        pool = self.pool
        if pool is None:
            return
        batch = pool.take_back()
        if batch is not None:
            self._done(examine_here(final, batch))
        else:
            self._collect(block=True)

    def _defer(self, final: Shared) -> None:
        """Give the workers the files named with their RECORD's digest to hash while the caller judges (the pool is
        then the deferred's to shut down)."""
        if self.deferred is None:
            return
        pool = self.pool
        if self.deferred.start(self.records, final.distributions, pool.executor if pool is not None else None,
                               lambda files: examine_here(final, Batch(tuple(files), 0))):
            self.pool = None

    def close(self) -> None:
        """End the worker processes (waiting for the batches they have started)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.executor.shutdown(wait=True, cancel_futures=True)
            self._collect_from(pool, block=False)

    # ---- the workers
    def _shared(self, distributions: Sequence[Distribution]) -> Shared:
        return shared_context(self.limits, self.digests, self.cache, distributions, self.contexts)

    def _renew(self, shared: Callable[[], Shared]) -> None:
        """Start workers (with ``shared()``) when enough batches wait and there are none, or the ones there are
        went stale and have finished their batches."""
        pool = self.pool
        if pool is not None and pool.stale:
            self._collect_from(pool, block=False)
            if not pool.in_flight:
                self.close()
        if self.pool is None and self.workers and len(self.waiting) >= START_AFTER and self.started < MAX_STARTS:
            self._start(shared())

    def _start(self, shared: Shared) -> None:
        self.started += 1
        prepare_workers()  # before the fork: inherited, not built again by each worker
        executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=fork_context(), initializer=worker_start,
                                       initargs=(shared, os.getpid()))
        self.pool = _Pool(executor, shared, self.workers)

    def _feed(self, work: float | None = None) -> None:
        """Send waiting batches (from the front) to the workers while there is room (:meth:`_Pool.room`)."""
        pool = self.pool
        if pool is None:
            return
        self._collect(block=False)
        while self.waiting and pool.room(work):
            pool.submit(self.waiting.popleft())

    def _collect(self, block: bool) -> None:
        if self.pool is not None:
            self._collect_from(self.pool, block)

    def _collect_from(self, pool: _Pool, block: bool) -> None:
        if block and pool.in_flight:
            wait(pool.in_flight, return_when=FIRST_COMPLETED)
        for future in [f for f in pool.in_flight if f.done()]:
            batch = pool.in_flight.pop(future)
            if future.cancelled():
                self.waiting.append(batch)
                continue
            records = future.result()
            self.from_workers.append((batch, records, pool.shared.distributions))  # checked in finish()
            self._report(records)

    def _done(self, records: list[FileRecord]) -> None:
        self.records.extend(records)
        self._report(records)

    def _report(self, records: list[FileRecord]) -> None:
        if self.progress is not None:
            for record in records:
                self.progress(record.vpath)


def _same(one: Sequence[Distribution], other: Sequence[Distribution]) -> bool:
    return {id(d) for d in one} == {id(d) for d in other}


def _owners_may_differ(records: list[FileRecord], seen: Sequence[Distribution],
                       final: Sequence[Distribution]) -> bool:
    """Whether a file of ``records`` (examined with the distributions ``seen``) may have another owner among
    ``final``: only a distribution in one set and not the other can change it, and only for a file its RECORD
    lists or its scope holds."""
    ids = {id(d) for d in seen}
    final_ids = {id(d) for d in final}
    changed = [d for d in final if id(d) not in ids] + [d for d in seen if id(d) not in final_ids]
    listed = [{path for path, _ in d.files} for d in changed]
    for record in records:
        if any(record.vpath in paths or is_within(record.vpath, d.scope) for d, paths in zip(changed, listed)) \
                and distribution_of(record.vpath, seen) is not distribution_of(record.vpath, final):
            return True
    return False


__all__ = ["START_AFTER", "WINDOW_PER_WORKER", "PlainFiles"]
