"""Archive members held in memory, examined while the walk goes on: in this process, or, for an image layer's
members with ``jobs`` > 1, by worker processes (the installed tree's plain files are handed to workers the same
way: licscan.scan.feed).

Why: profiled on the OCI zstd image of the CUDA environment, torch's ~11,300 small members were inspected and
observed one by one in the walker's main thread, under one GIL with the thread that reads the layer's tar headers,
while the second core idled (the layer's decompression had run ahead into its staging file): ~1.8 s of wall time.

A worker inspects a member (``inspect_buffer``) and gives its record when naming surely finds nothing in it
(:func:`licscan.identify.examine.quiet_record`: 11,000 of torch's members), else its facts, and this process
observes it (:func:`licscan.identify.examine.observe`, from the facts and the bytes it kept: what it observes holds
the catalog's entries and name matches): :func:`examine_member` in two steps. Neither needs the distributions (an
archive member is named after the walk, here: ``Gathered.name_members``), so a worker needs nothing but the
limits, given once (the pool's initializer). Members go in batches (at most :data:`BATCH_MEMBERS`
members or :data:`BATCH_BYTES` bytes), at most :data:`WINDOW_PER_WORKER` batches per worker in flight; a batch that
finds no room is examined here. Each member's result takes the place the member had in the walk
(``Gathered.reserve``): the records, and so the reports, are those of ``--jobs 1``.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from licscan.binary.images import Limits
from licscan.binary.inspect import inspect_buffer
from licscan.identify import examine as examining
from licscan.identify.examine import FileRecord, Observed
from licscan.inventory.items import FileBlob
from licscan.model import FileFacts, FileFormat
from licscan.scan.archives import Gathered, Place
from licscan.workers import die_with_parent, fork_context

BATCH_MEMBERS = 128
BATCH_BYTES = 1 << 20
WINDOW_PER_WORKER = 8
SEND_MAX = 256 << 10  # larger members are examined here: the bytes in flight stay under ~9 MiB per worker

# (vpath, bytes (a spooled member's mapping, in this process), size, containers, layer, deleted in an upper layer,
# sha256)
Member = tuple[str, "bytes | mmap.mmap", int, tuple[str, ...], str | None, bool, str | None]


@dataclass(frozen=True)
class _Setting:
    limits: Limits  # with jobs=1: one member's reader runs on one core
    digests: bool


_SETTING: _Setting | None = None


def setting(limits: Limits, digests: bool) -> _Setting:
    return _Setting(replace(limits, jobs=1), digests)


def examine_member(member: Member, how: _Setting) -> FileRecord | Observed:
    """The record of an archive member held whole in memory when naming surely finds nothing in it, else what
    :func:`licscan.identify.examine.observe` gives (named after the walk)."""
    found = member_facts(member, how)
    return found if isinstance(found, FileRecord) else observe_member(member, found, how)


def member_facts(member: Member, how: _Setting) -> FileRecord | FileFacts:
    """What inspecting the member gives: its record when naming surely finds nothing in it, else its facts (then
    :func:`observe_member`)."""
    vpath, data, size, containers, layer, deleted, _ = member
    facts = inspect_buffer(data, vpath, how.limits) if len(data) else FileFacts(vpath, FileFormat.UNKNOWN, 0)
    # a member held in memory in which naming surely finds nothing: its record at once (a wheel's sources)
    quiet = examining.quiet_record(vpath, facts, data, size, containers) \
        if isinstance(data, bytes) and not how.digests else None
    if quiet is None:
        return facts
    if layer is not None or deleted:
        quiet = replace(quiet, layer=layer, deleted_in_upper_layer=deleted)
    return quiet


def observe_member(member: Member, facts: FileFacts, how: _Setting) -> Observed:
    """:func:`licscan.identify.examine.observe` of the member (in the scan's process: what it observes holds the
    catalog's entries and name matches, which do not cross a pipe)."""
    vpath, data, size, containers, layer, deleted, sha256 = member
    return examining.observe(vpath, facts, data, size, containers, digests=how.digests, layer=layer,
                             deleted_in_upper_layer=deleted, sha256=sha256)


def as_member(item: FileBlob, data: bytes | mmap.mmap) -> Member:
    return (item.vpath, data, item.size, item.containers, item.layer, item.deleted_in_upper_layer, item.sha256)


def examine_members(batch: list[Member]) -> list[FileRecord | FileFacts]:
    """A worker's task: :func:`member_facts` of each member of ``batch``."""
    how = _SETTING
    if how is None:
        raise RuntimeError("member examination not set up")
    return [member_facts(member, how) for member in batch]


def _start(how: _Setting, parent: int) -> None:
    """Pool initializer: die with the parent (docs/security.md), take the limits."""
    global _SETTING
    die_with_parent(parent)
    _SETTING = how


@dataclass
class _Sent:
    batch: list[Member]
    places: list[Place]


class MemberFeed:
    """The image members of one scan handed to worker processes: :meth:`add` during the walk, :meth:`finish` once
    after it, :meth:`close` always."""

    def __init__(self, how: _Setting, workers: int, got: Gathered,
                 progress: Callable[[str], None] | None = None) -> None:
        self.how = how
        self.workers = workers
        self.got = got
        self.progress = progress
        self.batch: list[Member] = []
        self.places: list[Place] = []
        self.bytes = 0
        self.executor: ProcessPoolExecutor | None = None
        self.in_flight: dict[Future[list[FileRecord | FileFacts]], _Sent] = {}
        self.broken = False

    def add(self, member: Member) -> None:
        """One member (held in memory, at most :data:`SEND_MAX` bytes), in walk order; its result takes its place
        in ``got``, kept now."""
        self.places.append(self.got.reserve())
        self.batch.append(member)
        self.bytes += len(member[1])
        if len(self.batch) >= BATCH_MEMBERS or self.bytes >= BATCH_BYTES:
            self._send()

    def finish(self) -> None:
        """Every member's result in its place (waits for the workers)."""
        self._send()
        while self.in_flight:
            self._collect(block=True)
        self.close()

    def close(self) -> None:
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _send(self) -> None:
        batch, places, self.batch, self.places, self.bytes = self.batch, self.places, [], [], 0
        if not batch:
            return
        self._collect(block=False)
        if self.broken or len(self.in_flight) >= self.workers * WINDOW_PER_WORKER:
            self._here(batch, places)
            return
        if self.executor is None:
            from licscan.scan.plain import prepare_workers

            prepare_workers()  # before the fork: inherited, not built again by each worker
            self.executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=fork_context(),
                                                initializer=_start, initargs=(self.how, os.getpid()))
        try:
            future = self.executor.submit(examine_members, batch)
        except (BrokenProcessPool, RuntimeError):
            self.broken = True
            self._here(batch, places)
            return
        self.in_flight[future] = _Sent(batch, places)

    def _here(self, batch: list[Member], places: list[Place]) -> None:
        self._fill(places, [examine_member(member, self.how) for member in batch])

    def _collect(self, block: bool) -> None:
        if block and self.in_flight:
            wait(self.in_flight, return_when=FIRST_COMPLETED)
        for future in [f for f in self.in_flight if f.done()]:
            sent = self.in_flight.pop(future)
            try:
                results = future.result()
            except BrokenProcessPool:  # a worker died (killed, out of memory): its members are examined here
                self.broken = True
                self._here(sent.batch, sent.places)
                continue
            self._fill(sent.places, [result if isinstance(result, FileRecord) else
                                    observe_member(member, result, self.how)
                                    for member, result in zip(sent.batch, results)])

    def _fill(self, places: list[Place], results: list[FileRecord | Observed]) -> None:
        self.got.fill(places, results)
        if self.progress is not None:
            for result in results:
                self.progress(result.vpath if isinstance(result, FileRecord) else result.record.vpath)


__all__ = ["BATCH_BYTES", "BATCH_MEMBERS", "SEND_MAX", "WINDOW_PER_WORKER", "Member", "MemberFeed", "as_member",
           "examine_member", "examine_members", "member_facts", "observe_member", "setting"]
