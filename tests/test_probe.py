"""One pass for many literals (licscan/binary/probe.py): the offsets found are exactly those of ``bytes.find``."""

from __future__ import annotations

import mmap
import os
import random

from licscan.binary.paged import PagedMap
from licscan.binary.probe import Finder, Literals, LiteralSet, first_offsets, occurrence_table, occurrences
from licscan.identify import catalog, observe, signals


def test_hidden_occurrences_are_found():
    # Leftmost-longest reports REDSCALE_CCMAP at 1 only; SCALE_CCMAP starts 3 bytes into it, and "CCMAPX" runs past
    # its end (the byte after the match decides).
    data = b"xREDSCALE_CCMAPX SCALE_CCMAP"
    literals = LiteralSet((b"REDSCALE_CCMAP", b"SCALE_CCMAP", b"CCMAPX", b"absent"))
    assert first_offsets(data, literals) == {b"REDSCALE_CCMAP": 1, b"SCALE_CCMAP": 4, b"CCMAPX": 10}
    found = Literals(data, literals)
    assert found.find(b"absent") == -1
    assert found.find(b"SCALE") == 4  # outside the set: a plain find
    assert found.all_found((b"CCMAPX", b"SCALE_CCMAP")) == [(b"CCMAPX", 10), (b"SCALE_CCMAP", 4)]
    assert found.all_found((b"CCMAPX", b"absent")) is None
    assert Literals(None, literals).find(b"CCMAPX") == -1


def test_same_offsets_as_find_on_random_bytes():
    rng = random.Random(20261207)
    for _ in range(2000):
        needles = tuple(bytes(rng.choice(b"abc") for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 6)))
        data = bytes(rng.choice(b"abcd") for _ in range(rng.randint(0, 200)))
        literals = LiteralSet(needles)
        want = {n: data.find(n) for n in literals.needles if data.find(n) >= 0}
        assert first_offsets(data, literals, step=rng.randint(1, 50)) == want, (needles, data)


def test_windows_over_a_mapping(tmp_path):
    # Occurrences across every window boundary of a file searched in 4 KiB windows, through a PagedMap.
    needles = (b"Cuda compilation tools, release ", b"NVIDIA Corporation", b"release 12")
    body = bytearray(b"\0" * (64 << 10))
    body[4096 - 5 : 4096 - 5 + len(needles[0]) + 4] = needles[0] + b"12.4"
    body[3 * 4096 - 1 : 3 * 4096 - 1 + len(needles[1])] = needles[1]
    path = tmp_path / "lib.so"
    path.write_bytes(bytes(body))
    with open(path, "rb") as handle, PagedMap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        got = first_offsets(data, LiteralSet(needles), step=4096)
    assert got == {needles[0]: 4091, needles[1]: 12287, b"release 12": 4091 + 24}


def test_the_naming_literals_are_one_set():
    # Every literal the catalog and the signals look for in a whole file is searched in the same pass.
    table = signals.load_signals()
    wanted = {lit for s in table.signals if s.kind is not signals.SignalKind.MAGIC
              for lit in s.all_of + s.any_of + s.none_of}
    cat = catalog.load_catalog()
    wanted |= {cat.release_banner, cat.copyright} | {e.banner for e in cat.entries if e.banner is not None}
    # (A PE version resource's markers are searched in its .rsrc section, not in the whole file.)
    wanted |= {literal for e in cat.entries for literal in (m.literal for m in e.markers if not m.resource)}
    assert set(catalog.literal_set().needles) == wanted
    # The literals that show a static library linked into a binary (cudart's ``static`` evidence), and the gate of
    # the evidence searched in a second pass only in a file that holds it (the PTX assembler's banner), are sets of
    # their own, searched in a host binary's constant data only (licscan/binary/regions.py), never in the whole-file
    # pass.
    statics = [e.static for e in cat.entries if e.static is not None]
    first = {lit for s in statics if s.gate is None for group in s.evidence for lit in group}
    first |= {s.gate for s in statics if s.gate is not None}
    assert set(observe.static_literal_set().needles) == first and len(first) <= 64
    assert b"CUDA driver is a stub library" in first and b"Ptx optimizing assembler" in first
    gated = {lit for s in statics if s.gate is not None for group in s.evidence for lit in group} - first
    assert set(catalog.gated_literal_set().needles) == gated
    assert b"bad input: does not match type NVJITLINK_INPUT_PTX" in gated and len(gated) <= 64
    assert b"ZLUDA_CUDA_LIB" in wanted and b"#define CUDART_VERSION " in wanted
    # ahocorasick-rs's SIMD prefilter takes at most 64 literals: with 65 the pass over libcublas.so.12 (110 MiB) took
    # 0.175 s of CPU instead of 0.012 s (measured twice, this machine). A catalog or signal table that needs more
    # must split the set, not grow it.
    assert len(catalog.literal_set().needles) <= 64


def _all_finds(data: bytes, needle: bytes, start: int, end: int) -> list[int]:
    out, at = [], data.find(needle, start, end)
    while at >= 0:
        out.append(at)
        at = data.find(needle, at + 1, end)
    return out


def test_occurrences_are_every_find_offset():
    # Overlapping occurrences ("aa" in "aaaa", the bundle magic's "__" ends and starts), occurrences across step and
    # window boundaries, and regions that start or end inside an occurrence.
    rng = random.Random(20261207)
    for _ in range(3000):
        needle = bytes(rng.choice(b"ab_") for _ in range(rng.randint(1, 5)))
        data = bytes(rng.choice(b"ab_c") for _ in range(rng.randint(0, 300)))
        start, end = sorted((rng.randint(0, len(data)), rng.randint(0, len(data) + 3)))
        step = rng.randint(1, 40)
        got = list(occurrences(data, needle, start, end, step=step, window=step * rng.randint(1, 4)))
        assert got == _all_finds(data, needle, start, end), (needle, data, start, end, step)


def test_finder_answers_as_find_for_a_rising_position():
    rng = random.Random(7)
    for _ in range(1000):
        needle = bytes(rng.choice(b"ab") for _ in range(rng.randint(1, 4)))
        data = bytes(rng.choice(b"abc") for _ in range(rng.randint(0, 200)))
        start, end = sorted((rng.randint(0, len(data)), rng.randint(0, len(data))))
        finder, pos = Finder(data, needle, start, end), start
        while pos <= end:
            assert finder.find(pos) == data.find(needle, pos, end), (needle, data, start, end, pos)
            pos += rng.randint(0, 5)
        assert finder.find(start) == data.find(needle, start, end)  # a position going back: still exact


def test_occurrences_over_a_mapping_drop_their_windows(tmp_path):
    magic = b"\x50\xed\x55\xba"
    body = bytearray(b"\0" * (64 << 10))
    for at in (0, 4094, 8190, 20000, (64 << 10) - 4):
        body[at : at + 4] = magic
    path = tmp_path / "lib.so"
    path.write_bytes(bytes(body))
    with open(path, "rb") as handle, PagedMap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        assert list(occurrences(data, magic, 0, len(data), step=1000, window=4096)) == [0, 4094, 8190, 20000,
                                                                                        (64 << 10) - 4]
        assert list(occurrences(data, magic, 1, (64 << 10) - 1, step=1000, window=4096)) == [4094, 8190, 20000]


def test_occurrence_table_is_each_literals_occurrences():
    rng = random.Random(11)
    for _ in range(1500):
        needles = [bytes(rng.choice(b"ab_") for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(1, 3))]
        data = bytes(rng.choice(b"ab_c") for _ in range(rng.randint(0, 300)))
        start, end = sorted((rng.randint(0, len(data)), rng.randint(0, len(data) + 3)))
        step = rng.randint(1, 40)
        limit = rng.randint(0, 30)
        got = occurrence_table(data, needles, start, end, limit=limit, step=step, window=step * rng.randint(1, 4))
        for needle, offsets in zip(needles, got):
            want = _all_finds(data, needle, start, end)
            assert offsets == (tuple(want) if len(want) <= limit else None), (needles, data, start, end, step)
            if offsets is not None:  # what a scan is given: a Finder over the kept offsets
                finder = Finder(data, needle, start, end, offsets)
                assert [finder.find(p) for p in range(start, end + 1)] == [
                    data.find(needle, p, end) for p in range(start, end + 1)]


def test_a_mapping_with_its_descriptor_is_read_not_faulted_in(tmp_path):
    # PagedMap.of: the searches read the file with pread, step by step; the offsets are those of the bytes.
    rng = random.Random(3)
    body = bytes(rng.choice(b"ab_\x50\xed\x55\xba") for _ in range(100_000))
    path = tmp_path / "lib.so"
    path.write_bytes(body)
    magics = (b"\x50\xed\x55\xba", b"__", b"ab_a")
    literals = LiteralSet((b"ab_ab", b"b_a", b"\xed\x55\xba\x50", b"absent"))
    fd = os.open(path, os.O_RDONLY)
    try:
        with PagedMap.of(fd) as data:
            assert data.fd == fd
            for step in (7, 4096, 1 << 20):
                assert list(occurrences(data, magics[0], 5, 99_000, step=step)) == _all_finds(body, magics[0], 5,
                                                                                                99_000)
                assert occurrence_table(data, magics, 3, 90_001, step=step, limit=1 << 20) == tuple(
                    tuple(_all_finds(body, m, 3, 90_001)) for m in magics)
                assert first_offsets(data, literals, step=step) == first_offsets(body, literals)
        assert first_offsets(body, literals) == {n: body.find(n) for n in literals.needles if n in body}
    finally:
        os.close(fd)
