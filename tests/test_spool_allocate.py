"""spool.py: a spooled member's file gets its blocks ahead of the writes (fallocate, size unchanged), up to its
declared size and never more than four times the bytes read so far; the bytes held are the same whatever the
header declares."""

from __future__ import annotations

import io
import random

import pytest

from licscan.inventory import spool
from licscan.inventory.limits import WalkLimits
from licscan.inventory.spool import Budget, Spool

DATA = random.Random(5).randbytes(9 << 20)


@pytest.mark.parametrize("declared", [None, len(DATA), 64 << 20, 1 << 20])
def test_a_spooled_member_is_its_bytes_whatever_its_header_declares(monkeypatch, declared):
    asked: list[tuple[int, int]] = []
    real = spool.preallocate
    held_so_far = {"size": 0}

    def recording(fd: int, length: int) -> None:
        asked.append((length, held_so_far["size"]))
        real(fd, length)

    monkeypatch.setattr(spool, "preallocate", recording)
    limits = WalkLimits(in_memory_bytes=1 << 20)
    store = Spool(limits)
    source = io.BytesIO(DATA)

    class Counting:
        def read(self, size: int = -1) -> bytes:
            data = source.read(size)
            held_so_far["size"] += len(data)
            return data

    try:
        held = store.hold(Counting(), Budget(limits), declared=declared)
        assert held.size == len(DATA) and bytes(held.data) == DATA  # the mapping is the file: its size unchanged
        held.release()
    finally:
        store.close()
    if not declared:
        assert asked == []
        return
    assert asked  # spooled past 1 MiB: blocks given ahead
    assert all(length <= min(declared, 4 * read) for length, read in asked)
    assert [length for length, _ in asked] == sorted({length for length, _ in asked})  # only ever grown
    assert asked[-1][0] == min(declared, 4 * asked[-1][1])
    if declared == len(DATA):
        assert asked[-1][0] == len(DATA)  # the whole member, before its last bytes were written
