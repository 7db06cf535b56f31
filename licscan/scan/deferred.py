"""SHA-256 digests checked after the scan, while the caller judges and renders (an audit without the cache).

An audit spends about 0.4 s of CPU after its scan in this process alone -- building the inventory, judging,
rendering (the installed environment of ``benchmarks/bench_env.py``) -- while the worker processes idle. The SHA-256
of a catalogued library that its distribution's ``RECORD`` lists is a read of the whole file (about 1.6 GB/s with
SHA-NI here: libcudnn_engines_precompiled.so.9, 547 MB, takes 0.34 s) and decides one fact: whether the file differs from its
RECORD (``Modification.SHA256_DIFFERS``). So the largest such libraries, up to about that much hashing, are named
with the digest their RECORD states (:data:`licscan.scan.plain.Batch.assume`), and a worker hashes them while this
process builds the inventory, judges and renders. :meth:`Deferred.settle` then compares: a file whose digest is
not its RECORD's is examined again with its real digest and the inventory is built again (the caller judges and
renders again), so the reports are those of a scan that hashed every file first.

Only files the naming layer reads no literal of are deferred (larger than the catalog's ``probe_limit`` and the
signals' ``named`` limit): a smaller one is hashed in the literal pass that reads it anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from licscan.binary.paged import file_bytes
from licscan.identify.examine import FileRecord, digest
from licscan.identify.owner import distribution_of, recorded_sha256
from licscan.model import Distribution
from licscan.vpath import basename

if TYPE_CHECKING:
    from licscan.model import Inventory

# Estimated CPU seconds of an audit after its scan (0.35-0.42 on the environment tree). The wall time saved is half
# the hashing deferred, less what of it outlasts this work (the caller then waits): best when they are equal, so
# at most this much is deferred (there libcudnn_engines_precompiled.so.9, 0.34 s; libcublasLt.so.12, 0.47 s, not).
TAIL = 0.4
HASH_RATE = 1.6e9  # bytes per second of SHA-256 read from the page cache (pread + OpenSSL with SHA-NI here)


@functools.cache
def min_bytes() -> int:
    """Files at least this large get no literal pass (catalog ``probe_limit``, signals ``named`` limit)."""
    from licscan.identify.catalog_table import load_catalog
    from licscan.identify.signal_table import load_signals

    return max(load_catalog().probe_limit, load_signals().named_limit) + 1


def file_sha256(source: str) -> str | None:
    """The SHA-256 of the file at ``source`` (a worker's task); None when it cannot be read."""
    try:
        with file_bytes(source, follow=False) as data:
            return digest(data, "sha256")
    except OSError:
        return None


@dataclass(frozen=True)
class _Assumed:
    source: str
    vpath: str
    sha256: str  # the digest it was named with: its RECORD's


class Deferred:
    """The digests one scan leaves to check: :meth:`wants` while the files are walked, :meth:`start` when every file
    has been examined, :meth:`settle` after the caller's own work, :meth:`close` always."""

    def __init__(self, budget: float = TAIL) -> None:
        self.budget = budget  # estimated seconds of hashing left to defer
        self.sources: dict[str, str] = {}  # virtual path -> real path, of the files named with their RECORD's digest
        self._pending: list[tuple[_Assumed, Future[str | None] | None]] = []
        self._executor: Executor | None = None
        self._again: Callable[[list[tuple[str, str]]], list[FileRecord]] | None = None
        self.rebuild: Callable[[list[FileRecord]], Inventory] | None = None  # set by the scan

    def wants(self, source: str, vpath: str, size: int) -> bool:
        """Whether the plain file at ``vpath`` (``size`` bytes) is to be named with its RECORD's digest (a catalogued
        library, larger than :func:`min_bytes`, while the budget lasts)."""
        from licscan.scan.plain import named_by_catalog

        cost = size / HASH_RATE
        if size < min_bytes() or cost > self.budget or not named_by_catalog(basename(vpath)):
            return False
        self.budget -= cost
        self.sources[vpath] = source
        return True

    def start(self, records: Sequence[FileRecord], distributions: Sequence[Distribution], executor: Executor | None,
              again: Callable[[list[tuple[str, str]]], list[FileRecord]]) -> bool:
        """Hash, in ``executor`` (None: at :meth:`settle`, here), every deferred file whose record took its RECORD's
        digest; ``again`` examines files (real path, virtual path) hashing them. Returns whether ``executor`` was
        given work (then :meth:`close` shuts it down)."""
        self._again = again
        for record in records:
            source = self.sources.get(record.vpath)
            if source is None or record.sha256 is None:
                continue  # not deferred, or named without a digest (no component, no RECORD digest)
            recorded = recorded_sha256(distribution_of(record.vpath, distributions), record.vpath)
            if not recorded or recorded.lower() != record.sha256.lower():
                continue  # examined again with its digest (a stale worker's file), or no RECORD digest to assume
            assumed = _Assumed(source, record.vpath, record.sha256)
            self._pending.append((assumed, executor.submit(file_sha256, source) if executor is not None else None))
        if executor is not None and self._pending:
            self._executor = executor
            return True
        return False

    def settle(self, records: list[FileRecord]) -> tuple[Inventory, list[FileRecord]] | None:
        """None when every deferred file has the digest its record took; else the inventory and records with those
        files examined again."""
        differ = []
        for assumed, future in self._pending:
            actual = future.result() if future is not None else file_sha256(assumed.source)
            if actual is None or actual.lower() != assumed.sha256.lower():
                differ.append((assumed.source, assumed.vpath))
        self._pending = []
        if not differ:
            return None
        assert self._again is not None and self.rebuild is not None
        again = {record.vpath: record for record in self._again(differ)}
        fixed = [again.get(record.vpath, record) for record in records]
        return self.rebuild(fixed), fixed

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


__all__ = ["Deferred", "file_sha256", "min_bytes"]
