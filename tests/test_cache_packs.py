"""Packs of cache entries (docs/cache.md, "Packs"): the entries a scan writes per batch or archive are written as one
file named by hard links; each is read by its own name and checked as any entry; a damaged pack is a miss, never a
wrong value; a worker process's entries are written when it exits; the size bound counts a pack once."""

from __future__ import annotations

import multiprocessing
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from licscan.cache import Cache, pack
from licscan.cache import store as store_module
from tests.helpers import cache_entry_header
from tests.test_cache import gate_dist


def _values(n: int) -> list[tuple[str, int, tuple[str, ...]]]:
    return [(f"dist/lib{i}.so", i * 4096, tuple(f"sm_{80 + j}" for j in range(i % 5))) for i in range(n)]


def test_entries_of_a_scan_are_one_file_named_by_links(tmp_path):
    """An audit with one job writes the batch, memo and archive entries of the gate dist as one pack (one inode,
    one link per entry), the others as files of their own; every entry reads back by its name."""
    gate_dist(tmp_path / "a")
    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--format", "json", "--fail-on",
                           "warning", "--jobs", "1", "--cache-dir", str(cache)],
                          capture_output=True, text=True, cwd=tmp_path / "a", timeout=300)
    assert proc.returncode == 1, proc.stderr
    by_kind: dict[str, set[int]] = {}
    for path in cache.rglob("*.entry"):
        by_kind.setdefault(cache_entry_header(path)["kind"], set()).add(path.stat().st_ino)
    packed = by_kind["batch"] | by_kind["memo"] | by_kind["archive"]
    assert len(packed) == 1
    (inode,) = packed
    links = [p for p in cache.rglob("*.entry") if p.stat().st_ino == inode]
    assert len(links) == links[0].stat().st_nlink == 8  # 3 batches, their 3 memos, the wheel and its memo
    assert links[0].read_bytes().startswith(pack.MAGIC)
    for kind in ("tree", "findings", "report"):
        assert len(by_kind[kind]) == 1 and not by_kind[kind] & packed
    assert not list(cache.rglob("*.tmp"))


def test_pending_entries_are_read_before_they_are_written_and_written_by_trim(tmp_path):
    store = Cache.open(str(tmp_path / "c"), "s")
    n = pack.MAX_ENTRIES - 1
    values = _values(n)
    keys = [store.key("batch", str(i)) for i in range(n)]
    for key, value in zip(keys, values):
        assert store.put(key, "batch", value)
    assert not list((tmp_path / "c").rglob("*.entry"))  # kept in this process
    assert [store.get(k, "batch", tuple) for k in keys] == values
    store.trim()
    files = list((tmp_path / "c").rglob("*.entry"))
    assert len(files) == n and len({p.stat().st_ino for p in files}) == 1
    assert sorted(p.name for p in files) == sorted(k + ".entry" for k in keys)
    other = Cache.open(str(tmp_path / "c"), "s")
    assert [other.get(k, "batch", tuple) for k in keys] == values


def test_a_pack_replaces_an_entry_of_the_same_name(tmp_path):
    store = Cache.open(str(tmp_path / "c"), "s")
    key, other = store.key("batch", "k"), store.key("batch", "other")
    assert store.put(key, "batch", ("old",))
    store.flush()  # one entry: a file of its own
    assert Path(store._file(key)).stat().st_nlink == 1
    assert store.put(key, "batch", ("new",)) and store.put(other, "batch", ("other",))
    store.flush()
    assert Path(store._file(key)).stat().st_nlink == 2
    fresh = Cache.open(str(tmp_path / "c"), "s")
    assert (fresh.get(key, "batch", tuple), fresh.get(other, "batch", tuple)) == (("new",), ("other",))


def test_damaged_packs_are_misses_never_wrong_values(tmp_path):
    """Every one of 300 two-byte flips anywhere in a pack (magic, table, entries) leaves each entry read either
    exactly as written or a miss; a truncated pack too."""
    store = Cache.open(str(tmp_path / "c"), "s")
    values = _values(pack.MAX_ENTRIES)
    keys = [store.key("batch", str(i)) for i in range(pack.MAX_ENTRIES)]
    for key, value in zip(keys, values):
        store.put(key, "batch", value)
    store.flush()
    path = Path(store._file(keys[0]))
    original = path.read_bytes()
    assert original.startswith(pack.MAGIC)
    rng = random.Random(14)
    misses = 0
    for _ in range(300):
        data = bytearray(original)
        for at in rng.sample(range(len(data)), 2):
            data[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))  # the pack's inode: every entry's name sees it
        got = [store.get(k, "batch", tuple) for k in keys]
        assert all(g is None or g == v for g, v in zip(got, values))
        misses += got.count(None)
    assert misses >= 300  # each flip hit at least one entry (or the table, or the magic)
    for cut in (0, len(pack.MAGIC) + 2, len(original) // 2, len(original) - 1):
        path.write_bytes(original[:cut])
        got = [store.get(k, "batch", tuple) for k in keys]
        assert all(g is None or g == v for g, v in zip(got, values)) and None in got
    path.write_bytes(original)
    assert [store.get(k, "batch", tuple) for k in keys] == values


def _put_in_child(directory: str, keys: list[str], values: list) -> None:
    store = Cache.open(directory, "s")
    for key, value in zip(keys, values):
        store.put(key, "batch", value)
    # no flush: the process's exit writes them (a worker of the scan's pool is ended the same way)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="the scan's workers are forked")
def test_a_worker_process_writes_its_entries_when_it_exits(tmp_path):
    directory = str(tmp_path / "c")
    store = Cache.open(directory, "s")
    mine = store.key("batch", "parent")
    store.put(mine, "batch", ("parent",))  # pending in this process: not the child's to write
    keys = [store.key("batch", str(i)) for i in range(5)]
    values = _values(5)
    child = multiprocessing.get_context("fork").Process(target=_put_in_child, args=(directory, keys, values))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert [Cache.open(directory, "s").get(k, "batch", tuple) for k in keys] == values
    assert not os.path.exists(store._file(mine))
    store.flush()
    assert Cache.open(directory, "s").get(mine, "batch", tuple) == ("parent",)


def test_the_size_bound_counts_a_pack_once_and_evicts_it_whole(tmp_path):
    """The bytes of a pack are counted once (each name its share), and a pack is evicted with all its names (removing
    some of them would free nothing): the least recently used pack goes, the other stays whole."""
    store = Cache.open(str(tmp_path / "c"), "s", max_bytes=10**9)
    n = pack.MAX_ENTRIES
    old = [store.key("batch", f"old {i}") for i in range(n)]
    new = [store.key("batch", f"new {i}") for i in range(n)]
    for group in (old, new):
        for key, value in zip(group, _values(n)):
            store.put(key, "batch", value)
        store.flush()
    assert len({Path(store._file(k)).stat().st_ino for k in old + new}) == 2
    os.utime(store._file(old[0]), ns=(10**18, 10**18))  # the pack's inode: every name of it
    sizes = [Path(store._file(group[0])).stat().st_size for group in (old, new)]
    folders = [p for p in (tmp_path / "c/v2").iterdir() if p.is_dir()]
    counted = sum(store_module._folder_bytes(str(f)) or 0 for f in folders)
    assert sum(sizes) - 2 * n < counted <= sum(sizes)  # each of the names counts its share
    store.max_bytes = max(sizes) * 10 // 8 + 10
    assert store.trim() == n
    assert not any(os.path.exists(store._file(k)) for k in old)
    assert all(Path(store._file(k)).stat().st_nlink == n for k in new)


def test_entries_larger_than_a_packs_head_read_back(tmp_path):
    """An entry of its own larger than the first read of a file (a pack's magic and table), and the entries of a pack
    lying past it, read back exactly."""
    store = Cache.open(str(tmp_path / "c"), "s")
    rng = random.Random(3)
    big = ("report", bytes(rng.getrandbits(8) for _ in range(3 * pack.HEAD)))
    alone = store.key("file", "big")
    assert store.put(alone, "file", big)
    assert os.path.getsize(store._file(alone)) > pack.HEAD
    n = pack.MAX_ENTRIES
    keys = [store.key("batch", str(i)) for i in range(n)]
    values = [(i, bytes(rng.getrandbits(8) for _ in range(pack.HEAD // 4))) for i in range(n)]
    for key, value in zip(keys, values):
        store.put(key, "batch", value)
    store.flush()
    assert os.path.getsize(store._file(keys[0])) > 2 * pack.HEAD
    fresh = Cache.open(str(tmp_path / "c"), "s")
    assert fresh.get(alone, "file", tuple) == big
    assert [fresh.get(k, "batch", tuple) for k in keys] == values
