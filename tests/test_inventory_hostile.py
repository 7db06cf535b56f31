"""The walker against hostile and damaged input: links, FIFOs, unreadable files, bombs, evil member names,
truncated archives, limits; spool cleanup, determinism, and a scanned tree left unchanged."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest

from inventory_builders import (EXE, LIB, conda_v2_bytes, deb_bytes, docker_save_bytes, oci_files, tar_bytes,
                                tree_digest, wheel_bytes, write_tree, zip_bytes)
from licscan.inventory.items import FileBlob, SpecialFile
from licscan.inventory.walk import WalkLimits, walk
from licscan.model import Diagnostic
from test_inventory import collect, kind, listing, vpath

MB = 1 << 20


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def spool_root(tmp_path, monkeypatch):
    """tempfile's folder for this test, to check the walker's private spool folder is gone afterwards."""
    root = tmp_path / "spool-root"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _in_thread(fn, timeout=20.0):
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the walk blocked"
    return result[0]


def test_folder_links_fifo_and_unreadable(here):
    root = Path("tree")
    (root / "sub").mkdir(parents=True)
    (root / "sub/libkern.so").write_bytes(LIB)
    os.symlink("/etc/passwd", root / "out")
    os.symlink("../..", root / "sub/up")
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink("nothing-here", root / "dangling")
    os.symlink("sub/libkern.so", root / "inside")
    os.mkfifo(root / "pipe")
    (root / "secret").write_bytes(b"x")
    os.chmod(root / "secret", 0)
    before = tree_digest(root)
    try:
        items = _in_thread(lambda: collect(["tree"]))
    finally:
        os.chmod(root / "secret", 0o644)
    expected = [("tree/dangling", "symlink"), ("tree/inside", "symlink"), ("tree/loop_a", "symlink"),
                ("tree/loop_b", "symlink"), ("tree/out", "symlink"), ("tree/pipe", "fifo")]
    if os.geteuid() == 0:  # root reads a mode-000 file anyway
        expected.append(("tree/secret", "file"))
    else:
        expected.append(("tree/secret", "diag:unreadable"))
    expected += [("tree/sub/libkern.so", "file"), ("tree/sub/up", "symlink")]
    assert [(vpath(i), kind(i)) for i in items] == expected
    notes = {i.vpath: (i.target, i.note) for i in items if isinstance(i, SpecialFile)}
    assert notes["tree/out"] == ("/etc/passwd", "points out of the scanned tree (never followed)")
    assert notes["tree/sub/up"] == ("../..", "points out of the scanned tree (never followed)")
    assert notes["tree/loop_a"] == ("loop_b", "link loop (never followed)")
    assert notes["tree/dangling"] == ("nothing-here", "dangling: the target does not exist")
    assert notes["tree/inside"] == ("sub/libkern.so", None)
    assert notes["tree/pipe"][1] == "not a regular file: never opened"
    os.chmod(root / "secret", 0)
    assert tree_digest(root) == before


def test_fifo_as_input_and_missing_input(here):
    os.mkfifo("pipe")
    assert _in_thread(lambda: listing(["pipe", "missing"])) == [("pipe", "fifo"), ("missing", "diag:unreadable")]


def test_zip_bomb_ratio_limit(here, spool_root):
    zeros = b"\0" * (50 * MB)
    Path("bomb.zip").write_bytes(zip_bytes([("ok.so", LIB), ("zeros.bin", zeros), ("after.so", LIB)]))
    items = listing(["bomb.zip"], WalkLimits(max_ratio=50))
    assert items == [("bomb.zip!/ok.so", "file"), ("bomb.zip!/zeros.bin", "diag:limit"),
                     ("bomb.zip!/after.so", "file")]
    diag = [i for i in walk(["bomb.zip"], WalkLimits(max_ratio=50)) if isinstance(i, Diagnostic)][0]
    assert "bomb.zip!/zeros.bin" in diag.message and "compression ratio" in diag.message
    # The same member inside a tar.gz (ratio measured on the stream, while inflating).
    Path("bomb.tgz").write_bytes(tar_bytes([("zeros.bin", zeros), ("after.so", LIB)], "gz"))
    assert listing(["bomb.tgz"], WalkLimits(max_ratio=50)) == [("bomb.tgz!/zeros.bin", "diag:limit"),
                                                               ("bomb.tgz!/after.so", "file")]
    # Under the default limits the member is read, spooled (over in_memory_bytes) and handed out as an mmap.
    seen = []
    for item in walk(["bomb.zip"], WalkLimits(in_memory_bytes=MB, max_ratio=10_000)):
        if isinstance(item, FileBlob) and item.vpath.endswith("zeros.bin"):
            seen.append((type(item.data).__name__, item.size, item.data[:4], len(os.listdir(spool_root))))
    assert seen == [("mmap", 50 * MB, b"\0\0\0\0", 1)]
    assert os.listdir(spool_root) == []


def test_member_total_and_count_limits(here):
    Path("a.zip").write_bytes(zip_bytes([("one.so", LIB), ("two.so", LIB), ("exe", EXE)]))
    assert listing(["a.zip"], WalkLimits(max_member_bytes=len(LIB))) == [
        ("a.zip!/one.so", "file"), ("a.zip!/two.so", "file"), ("a.zip!/exe", "diag:limit")]
    assert listing(["a.zip"], WalkLimits(max_total_bytes=len(LIB) + 10)) == [
        ("a.zip!/one.so", "file"), ("a.zip!/two.so", "diag:limit"), ("a.zip", "diag:limit")]
    assert listing(["a.zip"], WalkLimits(max_members=2)) == [
        ("a.zip!/one.so", "file"), ("a.zip!/two.so", "file"), ("a.zip!/exe", "diag:limit")]


def test_evil_member_names(here):
    Path("evil.tar").write_bytes(tar_bytes([("../evil", LIB), ("/etc/x", b"root::0:0\n"), ("ok/../../up", b"u")]))
    items = collect(["evil.tar"])
    assert [(vpath(i), kind(i)) for i in items] == [
        ("evil.tar!/evil", "diag:malformed"), ("evil.tar!/evil", "file"),
        ("evil.tar!/etc/x", "diag:malformed"), ("evil.tar!/etc/x", "file"),
        ("evil.tar!/ok/up", "diag:malformed"), ("evil.tar!/ok/up", "file")]
    assert "'../evil'" in items[0].message and "'/etc/x'" in items[2].message
    assert items[1].data == LIB
    assert not Path("evil").exists() and not Path("/evil").exists()
    Path("evil.zip").write_bytes(zip_bytes([("../evil", LIB)]))
    assert listing(["evil.zip"]) == [("evil.zip!/evil", "diag:malformed"), ("evil.zip!/evil", "file")]


def test_truncated_tar_gz_keeps_members_read(here):
    whole = tar_bytes([("a.so", LIB), ("b/exe", EXE), ("c.so", LIB)], "gz")
    Path("cut.tar.gz").write_bytes(whole[: len(whole) * 2 // 3])
    items = listing(["cut.tar.gz"])
    assert items[0] == ("cut.tar.gz!/a.so", "file")
    assert ("cut.tar.gz!/c.so", "file") not in items
    assert any(k == "diag:truncated" for _, k in items)
    # An uncompressed tar cut inside a member.
    plain = tar_bytes([("a.so", LIB), ("b/exe", EXE)])
    Path("cut.tar").write_bytes(plain[: 2048 + len(LIB) + 5000])
    assert listing(["cut.tar"]) == [("cut.tar!/a.so", "file"), ("cut.tar!/b/exe", "diag:truncated"),
                                    ("cut.tar", "diag:truncated")]


def test_truncated_zip_recovers_local_headers(here):
    whole = zip_bytes([("a.so", LIB), ("exe", EXE)])
    Path("cut.zip").write_bytes(whole[: len(whole) // 2])
    items = collect(["cut.zip"])
    assert [(vpath(i), kind(i)) for i in items] == [("cut.zip!/a.so", "file"), ("cut.zip", "diag:truncated")]
    assert items[0].data == LIB
    assert "1 members recovered" in items[1].message


def test_truncated_zstd_and_garbage(here):
    whole = tar_bytes([("a.so", LIB), ("exe", EXE)], "zst")
    Path("cut.tar.zst").write_bytes(whole[: len(whole) // 2])
    assert ("cut.tar.zst", "diag:truncated") in listing(["cut.tar.zst"])
    Path("junk.gz").write_bytes(b"\x1f\x8b" + b"junk" * 100)
    items = listing(["junk.gz"])
    assert items and all(k.startswith("diag:") for _, k in items)


def test_generator_close_removes_spool(here, spool_root):
    Path("big.zip").write_bytes(zip_bytes([("a.bin", os.urandom(3 * MB)), ("b.bin", os.urandom(3 * MB))]))
    gen = walk(["big.zip"], WalkLimits(in_memory_bytes=MB))
    first = next(gen)
    assert first.vpath == "big.zip!/a.bin" and len(first.data) == 3 * MB
    assert len(os.listdir(spool_root)) == 1
    gen.close()
    assert os.listdir(spool_root) == []


def test_whole_tree_deterministic_and_unchanged(here, spool_root):
    root = Path("dist")
    root.mkdir()
    (root / "demo.whl").write_bytes(wheel_bytes())
    (root / "pkg.deb").write_bytes(deb_bytes())
    (root / "pkg.conda").write_bytes(conda_v2_bytes())
    (root / "image.tar").write_bytes(docker_save_bytes())
    write_tree(root / "oci", oci_files()[0])
    (root / "nested.zip").write_bytes(zip_bytes([("in.tar", tar_bytes([("x.zip", zip_bytes([("l.so", LIB)]))]))]))
    os.symlink("/", root / "rootlink")
    before = tree_digest(root)
    limits = WalkLimits(in_memory_bytes=64 * 1024)  # spool most members
    first = _in_thread(lambda: collect(["dist"], limits))
    second = _in_thread(lambda: collect(["dist"], limits))
    assert first == second
    assert tree_digest(root) == before
    assert os.listdir(spool_root) == []
    assert not [i for i in first if isinstance(i, Diagnostic)]
    assert sorted(os.listdir(root)) == ["demo.whl", "image.tar", "nested.zip", "oci", "pkg.conda", "pkg.deb",
                                        "rootlink"]
