"""The walker against hostile and damaged input: links, FIFOs, unreadable files, bombs, evil member names,
truncated archives, limits; spool cleanup, determinism, and a scanned tree left unchanged."""

from __future__ import annotations

import mmap
import os
import tarfile
import threading
import zipfile
import zlib
from pathlib import Path

import pytest
from inventory_builders import (
    EXE,
    LIB,
    conda_v2_bytes,
    deb_bytes,
    docker_save_bytes,
    oci_files,
    tar_bytes,
    tree_digest,
    wheel_bytes,
    write_tree,
    zip_bytes,
)
from test_inventory import collect, kind, listing, vpath

from licscan.inventory import compressed
from licscan.inventory.archives import Walker
from licscan.inventory.entries import Entry, EntryType
from licscan.inventory.items import Distribution, FileBlob, SpecialFile
from licscan.inventory.walk import WalkLimits, walk
from licscan.model import Diagnostic, DiagnosticKind

MB = 1 << 20


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
    items = listing(["bomb.zip"], WalkLimits(max_ratio=50, ratio_floor_bytes=MB))
    assert items == [("bomb.zip!/ok.so", "file"), ("bomb.zip!/zeros.bin", "diag:limit"),
                     ("bomb.zip!/after.so", "file")]
    diag = [i for i in walk(["bomb.zip"], WalkLimits(max_ratio=50, ratio_floor_bytes=MB)) if isinstance(i, Diagnostic)][0]
    assert "bomb.zip!/zeros.bin" in diag.message and "compression ratio" in diag.message
    # The same member inside a tar.gz (ratio measured on the stream, while inflating).
    Path("bomb.tgz").write_bytes(tar_bytes([("zeros.bin", zeros), ("after.so", LIB)], "gz"))
    assert listing(["bomb.tgz"], WalkLimits(max_ratio=50, ratio_floor_bytes=MB)) == [("bomb.tgz!/zeros.bin", "diag:limit"),
                                                               ("bomb.tgz!/after.so", "file")]
    # Under the default limits the member is read, spooled (over in_memory_bytes) and handed out as an mmap.
    seen = []
    for item in walk(["bomb.zip"], WalkLimits(in_memory_bytes=MB, max_ratio=10_000)):
        if isinstance(item, FileBlob) and item.vpath.endswith("zeros.bin"):
            seen.append((isinstance(item.data, mmap.mmap), item.size, item.data[:4], len(os.listdir(spool_root))))
    assert seen == [(True, 50 * MB, b"\0\0\0\0", 1)]  # a read-only mapping of the spool file (a PagedMap)
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


def test_member_read_errors_keep_their_kind(here):
    """A reader's failure reaches the walker as an ArchiveError of its kind (entries.read_error), quoting the reader:
    a zip member whose CRC-32 does not match is malformed, a tar member cut short is truncated; a .conda's inner
    tar (walked transparently) is reported the same way."""
    stored = bytearray(zip_bytes([("a.so", LIB), ("exe", EXE)], zipfile.ZIP_STORED))
    stored[stored.find(LIB[100:120])] ^= 0xFF
    Path("crc.zip").write_bytes(bytes(stored))
    items = collect(["crc.zip"])
    assert [(vpath(i), kind(i)) for i in items] == [("crc.zip!/a.so", "diag:malformed"), ("crc.zip!/exe", "file")]
    assert items[0].message == "member not read completely: Bad CRC-32 for file 'a.so'"
    plain = tar_bytes([("a.so", LIB), ("b/exe", EXE)])
    Path("cut.tar").write_bytes(plain[: 2048 + len(LIB) + 5000])
    assert [(vpath(i), kind(i), i.message) for i in collect(["cut.tar"]) if isinstance(i, Diagnostic)] == [
        ("cut.tar!/b/exe", "diag:truncated", "member not read completely: unexpected end of data"),
        ("cut.tar", "diag:truncated", "unexpected end of data (after 2 members)")]
    conda = bytearray(conda_v2_bytes())
    pkg = tar_bytes([("lib/libkern.so", LIB)], "zst")
    conda[conda.find(pkg) + len(pkg) // 2] ^= 0xFF
    Path("bad.conda").write_bytes(bytes(conda))
    damaged = [i for i in collect(["bad.conda"]) if isinstance(i, Diagnostic)]
    assert [(i.path, i.kind, i.message) for i in damaged] == [
        ("bad.conda!/pkg-cuda-kern-13.0.88-h123_0.tar.zst", DiagnosticKind.MALFORMED,
         "member not read completely: Bad CRC-32 for file 'pkg-cuda-kern-13.0.88-h123_0.tar.zst'")]


class _Failing:
    """A member stream that fails on the first read with ``error``."""

    def __init__(self, error: Exception):
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error


@pytest.mark.parametrize(("error", "expected"), [
    (EOFError(), (DiagnosticKind.TRUNCATED, "member not read completely: EOFError")),
    (EOFError("Compressed file ended before the end-of-stream marker was reached"),
     (DiagnosticKind.TRUNCATED, "member not read completely: Compressed file ended before the end-of-stream marker "
                                "was reached")),
    (tarfile.ReadError("unexpected end of data"),
     (DiagnosticKind.TRUNCATED, "member not read completely: unexpected end of data")),
    (zipfile.BadZipFile("Truncated file header"),
     (DiagnosticKind.TRUNCATED, "member not read completely: Truncated file header")),
    (zipfile.BadZipFile("Bad magic number for file header"),
     (DiagnosticKind.MALFORMED, "member not read completely: Bad magic number for file header")),
    (zlib.error("Error -3 while decompressing data: invalid block type"),
     (DiagnosticKind.MALFORMED, "member not read completely: Error -3 while decompressing data: invalid block type")),
])
def test_one_place_reports_a_member_that_cannot_be_read(error, expected):
    """Walker.hold (archives.py) is the one place a failed member read becomes a diagnostic, for members walked
    as files and for the transparent tars of a .deb or .conda alike; the kind comes from the reader's error."""
    walker = Walker(WalkLimits(), None)
    try:
        entry = Entry("a.so", EntryType.FILE, open=lambda: _Failing(error))
        assert list(walker.hold("x.zip!/a.so", entry)) == [Diagnostic("x.zip!/a.so", *expected)]
    finally:
        walker.close()


def test_zstd_damage_is_typed():
    """compressed.zstd_problem says what is wrong as an ArchiveError: cut short is truncated at the end of the
    data, a bad magic or a reserved block type is malformed at its offset."""
    whole = tar_bytes([("a.so", LIB), ("exe", EXE)], "zst")
    assert compressed.zstd_problem(whole) is None
    cut = compressed.zstd_problem(whole[: len(whole) // 2])
    assert (cut.kind, cut.message, cut.offset) == (DiagnosticKind.TRUNCATED, "zstd block cut short", len(whole) // 2)
    bad = compressed.zstd_problem(b"\0" * 16)
    assert (bad.kind, bad.message, bad.offset) == (DiagnosticKind.MALFORMED, "no zstd frame magic (found 0x00000000)",
                                                   0)
    # frame magic, descriptor 0x20 (single segment, 1-byte content size), content size, block header of type 3
    reserved = compressed.zstd_problem(b"\x28\xb5\x2f\xfd\x20\x00\x07\x00\x00")
    assert (reserved.kind, reserved.message, reserved.offset) == (DiagnosticKind.MALFORMED, "reserved zstd block type",
                                                                  6)


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


# ------------------------------------------------------------------------------------------------- issue 13
def test_docker_save_layers_outside_the_input_are_not_read(here):
    """Issue 13 item 5: a manifest.json whose Layers climb out of the image (relative, absolute) makes the layout
    refused (one diagnostic; its files walked as plain files); nothing outside the input is read."""
    import json

    Path("outside").mkdir()
    Path("outside/x.tar").write_bytes(tar_bytes([("usr/lib/libsecret.so", LIB)]))
    image = Path("scan/img")
    image.mkdir(parents=True)
    (image / "own").mkdir()
    (image / "own/layer.tar").write_bytes(tar_bytes([("etc/os-release", b"ID=x\n")]))
    (image / "manifest.json").write_text(json.dumps([{"Config": "c.json", "Layers": [
        "own/layer.tar", "../../outside/x.tar", "../../../../etc/hostname"]}]))
    (image / "c.json").write_text("{}")
    items = collect(["scan"])
    assert [(vpath(i), kind(i)) for i in items] == [
        ("scan/img", "diag:malformed"), ("scan/img/c.json", "file"), ("scan/img/manifest.json", "file"),
        ("scan/img/own/layer.tar!/etc/os-release", "file")]
    assert items[0].message == ("image layout not followed (manifest.json Layers entry '../../outside/x.tar' points "
                                "outside the image (never followed)): walked as plain files")
    # The same manifest inside an image tarball; an absolute entry alone.
    for layers in (["own/layer.tar", "../../outside/x.tar"], ["/etc/hostname"]):
        Path("image.tar").write_bytes(tar_bytes([
            ("own/layer.tar", tar_bytes([("etc/os-release", b"ID=x\n")])), ("c.json", b"{}"),
            ("manifest.json", json.dumps([{"Config": "c.json", "Layers": layers}]).encode())]))
        found = listing(["image.tar"])
        assert found == [("image.tar", "diag:malformed"), ("image.tar!/own/layer.tar!/etc/os-release", "file"),
                         ("image.tar!/c.json", "file"), ("image.tar!/manifest.json", "file")]


def test_image_layers_behind_links_are_not_read(here):
    """Issue 13 item 5: a docker-save layer folder, or an OCI blobs/<algorithm> folder, that is a link out of the
    input: the link is reported, the layer is a diagnostic, its content is never read."""
    import hashlib
    import json

    secret = tar_bytes([("usr/lib/libsecret.so", LIB)])
    digest = hashlib.sha256(secret).hexdigest()
    Path("outside/blobs").mkdir(parents=True)
    Path("outside/layer.tar").write_bytes(secret)
    Path(f"outside/blobs/{digest}").write_bytes(secret)
    docker = Path("scan/docker")
    docker.mkdir(parents=True)
    os.symlink("../../outside", docker / "abc")
    (docker / "manifest.json").write_text(json.dumps([{"Config": "c.json", "Layers": ["abc/layer.tar"]}]))
    (docker / "c.json").write_text("{}")
    oci = Path("scan/oci")
    (oci / "blobs/sha256").mkdir(parents=True)
    os.symlink("../../../outside/blobs", oci / "blobs/sha512")
    manifest = json.dumps({"schemaVersion": 2, "layers": [{"digest": "sha512:" + digest}]}).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    (oci / f"blobs/sha256/{manifest_digest}").write_bytes(manifest)
    (oci / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (oci / "index.json").write_text(json.dumps({"manifests": [{"digest": "sha256:" + manifest_digest}]}))
    items = collect(["scan"])
    assert [(vpath(i), kind(i)) for i in items] == [
        ("scan/docker/abc", "symlink"), ("scan/docker/c.json", "file"), ("scan/docker/manifest.json", "file"),
        ("scan/docker/abc/layer.tar", "diag:malformed"),
        (f"scan/oci/blobs/sha256/{manifest_digest}", "file"), ("scan/oci/blobs/sha512", "symlink"),
        ("scan/oci/index.json", "file"), ("scan/oci/oci-layout", "file"),
        (f"scan/oci/blobs/sha512/{digest}", "diag:malformed")]
    assert {i.message for i in items if isinstance(i, Diagnostic)} == {
        "image layer reached through a link (never followed)"}


def test_oci_digest_grammar(here):
    """Issue 13 item 5: a digest outside the image-spec grammar never becomes a path."""
    from licscan.inventory import images

    assert images.blob_path("sha256:" + "a" * 64) == "blobs/sha256/" + "a" * 64
    for bad in ("sha256:../../x", "../x:abc", "sha256:a/b", ":abc", "sha256:", "SHA256:abc", 5, None, "sha256:a b"):
        with pytest.raises(images.ImageError):
            images.blob_path(bad)
    for bad in ("../x.tar", "/etc/hostname", "a/../../x", "", ".", 7, None, ["a"]):
        with pytest.raises(images.ImageError):
            images.docker_layer_path(bad)
    assert images.docker_layer_path("./abc//layer.tar") == "abc/layer.tar"


def test_record_field_over_the_csv_limit(here):
    """Issue 13 item 9: a RECORD field over csv.field_size_limit() (131,072) is a diagnostic on RECORD; the rows
    before and after it are used (wheel, and an installed dist-info)."""
    meta = b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n"
    record = b"big/a.py,,\n" + b"x" * (200 * 1024) + b",,\nbig/b.py,sha256=" + b"A" * 43 + b",3\n"
    Path("big-1.0-py3-none-any.whl").write_bytes(zip_bytes([
        ("big/a.py", b""), ("big-1.0.dist-info/METADATA", meta), ("big-1.0.dist-info/RECORD", record)]))
    info = Path("site/big-1.0.dist-info")
    info.mkdir(parents=True)
    (info / "METADATA").write_bytes(meta)
    (info / "RECORD").write_bytes(record)
    items = collect(["big-1.0-py3-none-any.whl", "site"])
    dists = [i for i in items if isinstance(i, Distribution)]
    diags = [(i.path, i.kind, i.message) for i in items if isinstance(i, Diagnostic)]
    message = "RECORD rows not used: line 2: field larger than field limit (131072)"
    assert diags == [("big-1.0-py3-none-any.whl!/big-1.0.dist-info/RECORD", DiagnosticKind.MALFORMED, message),
                     ("site/big-1.0.dist-info/RECORD", DiagnosticKind.MALFORMED, message)]
    assert [d.files for d in dists] == [
        (("big-1.0-py3-none-any.whl!/big/a.py", None), ("big-1.0-py3-none-any.whl!/big/b.py", "00" * 32)),
        (("site/big/a.py", None), ("site/big/b.py", "00" * 32))]


def test_conda_metadata_of_the_wrong_type(here):
    """Issue 13 item 9: info/paths.json entries with a non-string _path or sha256, a non-list paths, JSON nested
    deeper than the parser allows, an index.json name that is not a string: diagnostics, never an exception."""
    import json

    def conda(name, paths, index=None):
        index = index or json.dumps({"name": name, "version": "1.0", "license": "MIT"}).encode()
        text = paths if isinstance(paths, bytes) else json.dumps(paths).encode()
        Path(f"{name}-1.0-0.tar.bz2").write_bytes(tar_bytes([
            ("info/index.json", index), ("info/paths.json", text), ("lib/libx.so", b"x")], "bz2"))
        return f"{name}-1.0-0.tar.bz2"

    good = "ab" * 32
    files = [conda("ints", {"paths": [{"_path": 5, "sha256": good}, {"_path": "lib/libx.so", "sha256": good}]}),
             conda("lists", {"paths": [{"_path": ["lib"]}, {"_path": "lib/libx.so", "sha256": {"a": 1}}, "x"]}),
             conda("notlist", {"paths": 12}),
             conda("deep", b"[" * 100_000 + b"]" * 100_000),
             conda("typed", {"paths": []}, json.dumps({"name": {"n": 1}, "version": "1"}).encode()),
             conda("version", {"paths": []}, json.dumps({"name": "version", "version": ["1"], "build": 0}).encode())]
    items = collect(files)
    diags = [(i.path, i.message) for i in items if isinstance(i, Diagnostic)]
    assert diags == [
        ("ints-1.0-0.tar.bz2!/info/paths.json", "_path not a string, entry ignored: 1 of 2 entries"),
        ("lists-1.0-0.tar.bz2!/info/paths.json", "_path not a string, entry ignored: 2 of 3 entries"),
        ("lists-1.0-0.tar.bz2!/info/paths.json", "sha256 not 64 hex digits, ignored: 1 of 3 entries"),
        ("notlist-1.0-0.tar.bz2!/info/paths.json", "not read: no paths list"),
        ("deep-1.0-0.tar.bz2!/info/paths.json", "not read: not valid JSON (nested too deep)"),
        ("typed-1.0-0.tar.bz2!/info/index.json", "name is not a string (dict): no distribution"),
        ("version-1.0-0.tar.bz2!/info/index.json", "not strings, ignored: version")]
    dists = {d.name: d for d in items if isinstance(d, Distribution)}
    assert sorted(dists) == ["deep", "ints", "lists", "notlist", "version"]
    assert dists["ints"].files == (("ints-1.0-0.tar.bz2!/lib/libx.so", good),)
    assert dists["lists"].files == (("lists-1.0-0.tar.bz2!/lib/libx.so", None),)
    assert dists["version"].version is None and dists["version"].metadata == (("build", "0"),)


def _nest(top: str, name: str, depth: int) -> str:
    path = top
    os.mkdir(path)
    for _ in range(depth):
        path = os.path.join(path, name)
        os.mkdir(path)
    return path


def _remove_nested(top: str) -> None:
    """Remove a chain of nested folders without recursion (shutil.rmtree, and so pytest's tmp cleanup, recurses
    once per level before Python 3.12)."""
    chain = [top]
    while True:
        subs = [e.path for e in os.scandir(chain[-1]) if e.is_dir(follow_symlinks=False)]
        if not subs:
            break
        chain.append(subs[0])
    for folder in reversed(chain):
        for entry in os.scandir(folder):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        os.rmdir(folder)


def test_folders_nested_deeper_than_the_recursion_limit(here):
    """Issue 13 item 9: a tree nested deeper than Python's recursion limit is walked to the bottom, and so is an
    installed dist-info whose folders nest as deep (its licence files are listed iteratively too)."""
    import sys

    depth = sys.getrecursionlimit() + 50
    info = Path("site/k-1.0.dist-info")
    try:
        bottom = _nest("deep", "d", depth)
        Path(bottom, "libk.so").write_bytes(LIB)
        info.mkdir(parents=True)
        licenses = _nest(str(info / "licenses"), "x", depth)
        (info / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: k\nVersion: 1.0\n")
        Path(licenses, "LICENSE").write_bytes(b"MIT\n")
        items = collect(["deep", "site"])
    finally:
        for top in ("deep", "site"):
            if os.path.isdir(top):
                _remove_nested(top)
    assert [(vpath(i), kind(i)) for i in items] == [
        (f"{bottom}/libk.so", "file"), ("site/k-1.0.dist-info/METADATA", "file"), (f"{licenses}/LICENSE", "file"),
        ("site/k-1.0.dist-info", "dist")]
    assert licenses == "site/k-1.0.dist-info/licenses" + "/x" * depth
    assert items[-1].license_files == (f"{licenses}/LICENSE",)


def test_tar_members_are_not_retained(here):
    """Issue 13 item 12: tarfile keeps every TarInfo it reads (for extraction by name); the walker does not let it
    (a tar of 1,000,000 members held ~500 MB). Counted while the walk is at its last member."""
    import gc
    import tarfile

    for compression in (None, "gz"):
        Path("many.tar").write_bytes(tar_bytes([(f"m/{i:05d}", b"x") for i in range(5_000)], compression))
        alive = None
        count = 0
        for _item in walk(["many.tar"]):
            count += 1
            if count == 5_000:
                alive = sum(isinstance(o, tarfile.TarInfo) for o in gc.get_objects())
        assert count == 5_000
        assert alive is not None and alive < 10, f"{alive} TarInfo objects alive after 5,000 members"


def test_nested_members_held_in_memory_are_bounded(here, spool_root):
    """Issue 13 item 12: archives nested in archives hold one member per level; those held in memory at once stay
    within in_memory_total_bytes, the others are spooled (an mmap)."""
    payload = os.urandom(300 * 1024)
    data = payload
    name = "payload.bin"
    for level in range(4):
        data = tar_bytes([(name, data)], "zst")
        name = f"l{level}.tar.zst"
    Path("nested.tar.zst").write_bytes(data)
    limits = WalkLimits(in_memory_bytes=1 * MB, in_memory_total_bytes=700 * 1024)
    seen = []
    walker_items = walk(["nested.tar.zst"], limits)
    for item in walker_items:
        assert isinstance(item, FileBlob)
        seen.append((item.vpath, isinstance(item.data, mmap.mmap), bytes(item.data) == payload))
    assert seen == [("nested.tar.zst!/l2.tar.zst!/l1.tar.zst!/l0.tar.zst!/payload.bin", True, True)]
    # Two levels of ~300 KiB fit in 700 KiB: with the default limits everything is in memory.
    assert [type(i.data).__name__ for i in walk(["nested.tar.zst"])] == ["bytes"]
    assert os.listdir(spool_root) == []


def test_metadata_kept_only_for_distributions(here):
    """Issue 13 item 12: members named like metadata outside a dist-info / info/ (index.json of a web app, a file
    named ``files``) are not held; held metadata stays within max_kept_metadata_bytes."""
    from licscan.inventory.items import Distribution as Dist

    members = [(f"site/{i}/index.json", b"{}" * 1000) for i in range(50)] + [("files", b"x" * 5000)]
    members += [(f"p{i}-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: p%d\nVersion: 1\n" % i + b"#" * 3000)
                for i in range(3)]
    Path("web.tar").write_bytes(tar_bytes(members))
    items = collect(["web.tar"], WalkLimits(max_kept_metadata_bytes=7000))
    dists = [i.name for i in items if isinstance(i, Dist)]
    limited = [(i.path, i.message) for i in items if isinstance(i, Diagnostic)]
    assert dists == ["p0", "p1"]
    assert limited == [("web.tar!/p2-1.0.dist-info/METADATA", "packaging metadata not read: the metadata files "
                                                               "held at once exceed 7000 bytes")]


def test_names_bounded_before_they_cost_memory(here):
    """Issue 13 item 12: a pax extended header over 1 MiB is refused before tarfile reads it (300 MB of "path="
    compress to 300 KB: 3 GB resident and a 629 MB report before); a member name over 4096 characters is a
    diagnostic quoting 80 of them; the paths of all members walked are bounded by max_path_bytes."""
    name = "a" * (2 * MB)
    Path("pax.tar.gz").write_bytes(tar_bytes([(name, b"x")], "gz"))  # tarfile writes the name as a pax "path="
    record = len(f" path={name}\n") + len(str(len(f" path={name}\n") + 7))  # "%d path=...\n", length counted in
    assert [(i.path, i.kind, i.message) for i in walk(["pax.tar.gz"])] == [
        ("pax.tar.gz", DiagnosticKind.MALFORMED,
         f"extended header of {record} bytes at 0 (over the limit of 1048576): not read (tar header)")]
    Path("long.zip").write_bytes(zip_bytes([("n" * 5000, b"x"), ("ok.txt", b"ok")]))
    items = collect(["long.zip"])
    assert [(vpath(i), kind(i)) for i in items] == [("long.zip", "diag:malformed"), ("long.zip!/ok.txt", "file")]
    assert items[0].message == "member name of 5000 characters (over 4096) not read: '" + "n" * 80 + "'..."
    Path("names.tar").write_bytes(tar_bytes([(f"{'d' * 90}/{i:03d}", b"x") for i in range(20)]))
    assert listing(["names.tar"], WalkLimits(max_path_bytes=1000)) == [
        *[(f"names.tar!/{'d' * 90}/{i:03d}", "file") for i in range(9)],
        (f"names.tar!/{'d' * 90}/009", "diag:limit"), ("names.tar", "diag:limit")]


def test_header_chain_of_one_member_is_bounded(here):
    """Issue 13 item 12: an old GNU sparse member whose extension blocks chain on (tarfile kept every (offset,
    numbytes) pair: 1.6 GB resident for 400,000 blocks) stops after 4 MiB of headers, with a diagnostic."""
    import zlib

    block = bytearray(512)
    for i in range(21):
        block[i * 24 : i * 24 + 24] = b"%011o\0%011o\0" % (i + 1, 1)
    block[504] = 1  # isextended
    head = bytearray(512)
    head[0:6] = b"sparse"
    head[100:148] = b"0000644\0" + b"0000000\0" * 2 + b"%011o\0" % 0 + b"00000000000\0"
    head[156:157] = b"S"
    head[257:265] = b"ustar  \0"
    head[386:410] = b"%011o\0%011o\0" % (1, 1)
    head[482] = 1
    head[483:495] = b"%011o\0" % (1 << 30)
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    chain = bytes(block) * 10_000  # 5 MB of extension blocks
    block[504] = 0
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    Path("sparse.tar.gz").write_bytes(compressor.compress(bytes(head) + chain + bytes(block) + bytes(1024))
                                      + compressor.flush())
    assert [(i.path, i.kind, i.message) for i in walk(["sparse.tar.gz"])] == [
        ("sparse.tar.gz", DiagnosticKind.MALFORMED, "headers of one member longer than 4194304 bytes: not read "
                                                    "(tar header)")]
