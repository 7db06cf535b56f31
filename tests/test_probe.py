"""One pass for many literals (licscan/binary/probe.py): the offsets found are exactly those of ``bytes.find``."""

from __future__ import annotations

import mmap
import random

from licscan.binary.paged import PagedMap
from licscan.binary.probe import Literals, LiteralSet, first_offsets
from licscan.identify import catalog, signals


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
    wanted |= {literal for e in cat.entries for literal in (m.literal for m in e.markers)}
    assert set(catalog.literal_set().needles) == wanted
    assert b"ZLUDA_CUDA_LIB" in wanted and b"#define CUDART_VERSION " in wanted
