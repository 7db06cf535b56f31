"""One-pass zip member reading (licscan/inventory/inflate.py) and the read-ahead threads (licscan/inventory/ahead.py):
the same bytes, errors and diagnostics as zipfile and the sequential walk, on good and damaged zips."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import random
import struct
import threading
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import zstandard
from inventory_builders import EXE, LIB, tar_bytes, wheel_bytes, zip_bytes

from licscan.inventory import ahead, compressed, early, forked, inflate, member
from licscan.inventory.entries import ArchiveError, Entry, EntryType, zip_entries, zip_large_files
from licscan.inventory.items import Distribution, FileBlob, SpecialFile
from licscan.inventory.spool import Budget, LimitExceeded, Spool
from licscan.inventory.walk import WalkLimits, walk
from licscan.model import Diagnostic, DiagnosticKind

MB = 1 << 20
# 3 MiB that deflate to about a third: several 256 KiB input pieces and 1 MiB output reads per member.
# Seeded, so that the damaged-data tests below are deterministic (with os.urandom a run of 0xff could decode).
_RANDOM = random.Random(14)
TEXTISH = b"".join(b"%08d libcudart.so.12 sm_90 " % i + _RANDOM.randbytes(8).hex().encode() for i in range(80_000))[: 3 * MB]


def _span(blob: bytes, name: str) -> inflate.ZipSpan:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return inflate.ZipSpan.of(blob, zf.getinfo(name))


def _read_all(reader, size: int = MB) -> bytes:
    out = []
    while True:
        piece = reader.read(size)
        if not piece:
            return b"".join(out)
        out.append(piece)


def _outcome(read) -> tuple[str, str]:
    """(bytes read or error type, error message) of one way of reading a member."""
    try:
        data = read()
        return data.hex()[:64] + f"/{len(data)}", ""
    except Exception as error:  # noqa: BLE001 - compared between the two readers
        return type(error).__name__, str(error)


def _both(blob: bytes, name: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """zipfile's outcome and this module's for the member ``name`` of ``blob``."""
    def by_zipfile() -> bytes:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf, zf.open(name) as stream:
            return _read_all(stream)

    def by_inflate() -> bytes:
        reader = inflate.open_member(_span(blob, name))
        assert reader is not None
        return _read_all(reader)

    return _outcome(by_zipfile), _outcome(by_inflate)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_member_bytes_are_zipfiles(method):
    blob = zip_bytes([("a/text.txt", TEXTISH), ("lib.so", LIB), ("empty", b""), ("exe", EXE)], method)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for info in zf.infolist():
            reader = inflate.open_member(inflate.ZipSpan.of(blob, info))
            assert reader is not None
            assert _read_all(reader) == zf.read(info)
            whole = inflate.open_member(inflate.ZipSpan.of(blob, info))
            assert whole is not None and whole.read() == zf.read(info)
    # 1 MiB reads are 1 MiB until the last piece, as ZipExtFile.read(n) gives them (the spool's limits count them).
    reader = inflate.open_member(_span(blob, "a/text.txt"))
    assert reader is not None
    assert [len(reader.read(MB)) for _ in range(4)] == [MB, MB, MB, 0]


def _patch_crc(blob: bytes, name: str, crc: int) -> bytes:
    """``blob`` with the CRC-32 of ``name`` replaced in its local header and its central directory entry."""
    out = bytearray(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = zf.getinfo(name)
    struct.pack_into("<I", out, info.header_offset + 14, crc)
    central = out.find(b"PK\x01\x02")
    while central >= 0:
        name_len = struct.unpack_from("<H", out, central + 28)[0]
        if bytes(out[central + 46 : central + 46 + name_len]) == name.encode():
            struct.pack_into("<I", out, central + 16, crc)
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def test_bad_crc_is_zipfiles_error():
    blob = _patch_crc(zip_bytes([("lib.so", LIB), ("text", TEXTISH)]), "text", 0x12345678)
    expected, got = _both(blob, "text")
    assert expected == got == ("BadZipFile", "Bad CRC-32 for file 'text'")
    stored = _patch_crc(zip_bytes([("text", TEXTISH)], zipfile.ZIP_STORED), "text", 1)
    assert _both(stored, "text")[1] == ("BadZipFile", "Bad CRC-32 for file 'text'")


def test_damaged_deflate_data_is_zipfiles_error():
    blob = bytearray(zip_bytes([("text", TEXTISH)]))
    start = _span(bytes(blob), "text").data_offset()
    assert start is not None
    blob[start + 1000 : start + 1064] = b"\xff" * 64  # a run no deflate block can hold
    expected, got = _both(bytes(blob), "text")
    assert got == expected and got[0] == "error" and got[1].startswith("Error -3 while decompressing data")
    reader = inflate.open_member(_span(bytes(blob), "text"))
    assert reader is not None
    with pytest.raises(zlib.error):  # the walker's own catch (not zlib-ng's exception class)
        _read_all(reader)


def test_sizes_that_lie_are_read_as_zipfile_reads_them():
    """A declared size below the real one cuts the output there (then the CRC-32 fails); a compressed size below
    the real one ends the stream early (flushed, then the CRC-32 fails): zipfile's outcome both times."""
    blob = zip_bytes([("text", TEXTISH)])
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = zf.getinfo("text")
    for field, value in (("file_size", 1000), ("compress_size", info.compress_size // 2), ("file_size", 4 * MB)):
        lying = bytearray(blob)
        central = blob.rfind(b"PK\x01\x02")
        struct.pack_into("<I", lying, central + (24 if field == "file_size" else 20), value)
        expected, got = _both(bytes(lying), "text")
        assert got == expected, field


def test_other_methods_and_data_past_the_end_are_left_to_zipfile():
    blob = zip_bytes([("text", TEXTISH)], zipfile.ZIP_BZIP2)
    assert inflate.open_member(_span(blob, "text")) is None
    whole = zip_bytes([("text", TEXTISH)])
    span = _span(whole, "text")
    cut = inflate.ZipSpan(whole[: len(whole) // 2], span.header_offset, span.packed, span.size, span.crc,
                          span.method, span.name)
    assert inflate.open_member(cut) is None


def _walked(path: str, limits: WalkLimits = WalkLimits(), **kwargs) -> list[tuple]:
    out = []
    for item in walk([path], limits, **kwargs):
        if isinstance(item, FileBlob):
            out.append(("file", item.vpath, item.size, bytes(item.data) if item.data is not None else None))
        elif isinstance(item, Diagnostic):
            out.append(("diag", item.path, item.kind.value, item.message))
        elif isinstance(item, (Distribution, SpecialFile)):
            out.append((type(item).__name__, item.vpath))
    return out


def _sequential(monkeypatch) -> None:
    """The walk without read-ahead: every zip member read in turn by the walker, as before."""
    monkeypatch.setattr(ahead.ReadAhead, "entries", lambda self, entries, wanted, large=(): iter(entries))


def test_read_ahead_walk_equals_the_sequential_walk(here, monkeypatch):
    members = [(f"pkg/m{i:03}.so" if i % 3 else f"pkg/m{i:03}.txt", LIB if i % 3 else TEXTISH[: 1000 * i])
               for i in range(150)]
    members += [("pkg/big.bin", TEXTISH), ("inner.whl", wheel_bytes()), ("pkg/link", ("symlink", "m001.so")),
                ("pkg/dir/", ("dir",))]
    Path("a.zip").write_bytes(zip_bytes(members))
    damaged = _patch_crc(zip_bytes([("one.so", LIB), ("text", TEXTISH), ("exe", EXE)]), "text", 7)
    Path("crc.zip").write_bytes(damaged)
    limits = [WalkLimits(), WalkLimits(in_memory_bytes=MB), WalkLimits(max_total_bytes=3 * MB),
              WalkLimits(max_ratio=2, ratio_floor_bytes=MB), WalkLimits(max_members=40)]
    ahead_runs = [(_walked("a.zip", lim), _walked("crc.zip", lim)) for lim in limits]
    excluded = _walked("a.zip", exclude=lambda v: v.endswith(".txt"))
    _sequential(monkeypatch)
    assert ahead_runs == [(_walked("a.zip", lim), _walked("crc.zip", lim)) for lim in limits]
    assert excluded == _walked("a.zip", exclude=lambda v: v.endswith(".txt"))
    crc_diag = [d for d in ahead_runs[0][1] if d[0] == "diag"]
    assert crc_diag == [("diag", "crc.zip!/text", "malformed", "member not read completely: Bad CRC-32 for file 'text'")]
    budget = [d for d in ahead_runs[2][0] if d[0] == "diag"]
    assert budget[0][2:] == ("limit", f"{budget[0][1]} skipped: total uncompressed bytes over the limit of {3 * MB}")


def test_members_passed_without_being_taken_are_released(here, monkeypatch):
    """Members read ahead that the walker skips (a whole-walk limit reached) are released, and closing the walk
    early leaves no thread reading and no spool file."""
    released = []
    real = ahead._Batch.sweep

    def sweep(self):
        released.extend(self.dropped)
        real(self)

    monkeypatch.setattr(ahead._Batch, "sweep", sweep)
    Path("a.zip").write_bytes(zip_bytes([(f"m{i}.so", LIB) for i in range(20)]))
    items = _walked("a.zip", WalkLimits(max_members=5))
    assert [i[1] for i in items if i[0] == "file"] == [f"a.zip!/m{i}.so" for i in range(5)]
    assert released  # read ahead, never taken
    gen = walk(["a.zip"])
    assert next(gen).vpath == "a.zip!/m0.so"
    gen.close()  # the walker's ReadAhead is closed with the walk: no thread left
    assert not [t for t in threading.enumerate() if t.name.startswith("licscan-inflate")]


def test_entry_sequence_error_comes_after_the_entries_before_it():
    blob = zip_bytes([("a.so", LIB), ("b.so", EXE)])
    good = list(zip_entries(blob))

    def entries():
        yield from good
        raise ArchiveError(DiagnosticKind.TRUNCATED, "cut short", 99)

    limits = WalkLimits()
    reader = ahead.ReadAhead(limits)
    spool = Spool(limits)
    seen = []
    try:
        with pytest.raises(ArchiveError, match="cut short"):
            for entry in reader.entries(entries(), lambda e: e.type is EntryType.FILE):
                held = reader.take(entry, Budget(limits), spool)
                assert held is not None
                seen.append((entry.name, bytes(held.data)))
                held.release()
    finally:
        reader.close()
        spool.close()
    assert seen == [("a.so", LIB), ("b.so", EXE)]


def test_budget_is_charged_in_walk_order():
    """The bytes a thread read are charged when taken: the member during which the budget runs out is refused with
    the budget's message (whole-walk), the ones before it are not."""
    blob = zip_bytes([("a.so", LIB), ("b.so", LIB), ("c.so", LIB)])
    limits = WalkLimits(max_total_bytes=2 * len(LIB) - 1)
    reader = ahead.ReadAhead(limits)
    budget, spool = Budget(limits), Spool(limits)
    outcome = []
    try:
        for entry in reader.entries(zip_entries(blob), lambda e: True):
            try:
                held = reader.take(entry, budget, spool)
                assert held is not None
                outcome.append((entry.name, held.size))
                held.release()
            except LimitExceeded as error:
                outcome.append((entry.name, f"{error} walk_over={error.walk_over}"))
                break
    finally:
        reader.close()
        spool.close()
    assert outcome == [("a.so", len(LIB)), ("b.so", f"total uncompressed bytes over the limit of "
                                                    f"{2 * len(LIB) - 1} walk_over=True")]


def test_entries_without_a_span_are_read_by_the_walker():
    entry = Entry("x", EntryType.FILE, 1, 1, open=lambda: io.BytesIO(b"x"))
    reader = ahead.ReadAhead(WalkLimits())
    try:
        assert list(reader.entries([entry], lambda e: True)) == [entry]
        assert reader.take(entry, Budget(WalkLimits()), Spool(WalkLimits())) is None
    finally:
        reader.close()


# --------------------------------------------------------------------------------- large members (early.py)
def _large_zip() -> bytes:
    """Small members, then three members over 1 MiB (large under in_memory_bytes=1 MiB), then small ones again."""
    members = [(f"pkg/s{i:02}.so", LIB) for i in range(30)]
    members += [("pkg/big1.bin", TEXTISH), ("pkg/big2.bin", TEXTISH[::-1]), ("pkg/big3.bin", LINES)]
    return zip_bytes(members + [("pkg/t.so", EXE), ("pkg/u.txt", TEXTISH[:5000])])


def _record_readers(monkeypatch, log: Path) -> None:
    """Every member read by a thread or by the forked reader is noted in ``log`` (one line each, appended: the
    forked reader writes from its own process) as ``pid thread-name member``."""
    real = member.read_member

    def read_member(entry, spool, stop=None, digest=False):
        with open(log, "a") as out:
            out.write(f"{os.getpid()} {threading.current_thread().name.rsplit('_', 1)[0]} {entry.name}\n")
        return real(entry, spool, stop, digest)

    monkeypatch.setattr(ahead, "read_member", read_member)
    monkeypatch.setattr(forked, "read_member", read_member)


def _readers(log: Path) -> list[tuple[str, str, str]]:
    """(who, thread name, member) of every read noted; who is "here" (this process) or "forked"."""
    lines = [line.split(" ", 2) for line in log.read_text().splitlines()] if log.exists() else []
    return [("here" if int(pid) == os.getpid() else "forked", thread, name) for pid, thread, name in lines]


def test_large_members_are_read_by_a_process_of_their_own_with_the_walks_facts(here, monkeypatch):
    """The members declared over in_memory_bytes are read by the early lane's forked process, in archive order
    (the small ones by the pool's thread in this process), and the walk (files, bytes, diagnostics, under every
    limit) is the sequential walk's."""
    Path("l.zip").write_bytes(_large_zip())
    log = here / "readers.log"
    _record_readers(monkeypatch, log)
    small = WalkLimits(in_memory_bytes=MB)
    limits = [small, replace(small, max_total_bytes=5 * MB), replace(small, max_ratio=2, ratio_floor_bytes=MB // 2),
              replace(small, max_members=32), replace(small, max_member_bytes=3 * MB - 1)]
    early_runs = [_walked("l.zip", lim) for lim in limits]
    readers = _readers(log)
    large = [r for r in readers if r[2].startswith("pkg/big")]
    assert large[:3] == [("forked", "MainThread", f"pkg/big{i}.bin") for i in (1, 2, 3)]  # in archive order
    assert {r[0] for r in large} == {"forked"}  # never by the pool
    assert ("here", "licscan-inflate", "pkg/s00.so") in readers
    assert not [p for p in multiprocessing.active_children() if p.name == "licscan-inflate-early"]
    _sequential(monkeypatch)
    assert early_runs == [_walked("l.zip", lim) for lim in limits]
    assert [d[1:] for d in early_runs[1] if d[0] == "diag"][0] == (
        "l.zip!/pkg/big2.bin", "limit", f"l.zip!/pkg/big2.bin skipped: total uncompressed bytes over the limit of "
                                        f"{5 * MB}")


def test_large_members_are_read_by_a_thread_where_there_is_no_fork(here, monkeypatch):
    """Without fork (or in a daemonic process, which may not have children) the lane is a thread: the same walk."""
    Path("l.zip").write_bytes(_large_zip())
    log = here / "readers.log"
    _record_readers(monkeypatch, log)
    monkeypatch.setattr(forked, "fork_context", lambda: None)
    small = WalkLimits(in_memory_bytes=MB)
    got = _walked("l.zip", small)
    assert [r for r in _readers(log) if r[2].startswith("pkg/big")] == [
        ("here", "licscan-inflate-early", f"pkg/big{i}.bin") for i in (1, 2, 3)]
    _sequential(monkeypatch)
    assert got == _walked("l.zip", small)


def _damaged_large_zip() -> bytes:
    """Large members with a bad CRC-32, damaged deflate data, and a header whose name is not the directory's."""
    blob = _patch_crc(zip_bytes([("pkg/s.so", LIB), ("pkg/crc.bin", TEXTISH), ("pkg/deflate.bin", TEXTISH[::-1]),
                                 ("pkg/name.bin", LINES), ("pkg/ok.bin", TEXTISH), ("pkg/t.so", EXE)]),
                      "pkg/crc.bin", 7)
    out = bytearray(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        start = inflate.ZipSpan.of(blob, zf.getinfo("pkg/deflate.bin")).data_offset()
        named = zf.getinfo("pkg/name.bin").header_offset + 30
    assert start is not None
    out[start + 1000 : start + 1064] = b"\xff" * 64
    out[named : named + 3] = b"PKG"  # the local header's name differs from the central directory's
    return bytes(out)


def test_errors_of_large_members_come_back_from_the_forked_reader(here, monkeypatch):
    """A bad CRC-32, damaged deflate data and a local header that does not match (errors raised in the forked
    process, sent back as exceptions) give the sequential walk's diagnostics; a limit too."""
    Path("d.zip").write_bytes(_damaged_large_zip())
    small = WalkLimits(in_memory_bytes=MB)
    runs = [_walked("d.zip", lim) for lim in (small, replace(small, max_ratio=2, ratio_floor_bytes=MB // 2))]
    diags = [d[1:] for d in runs[0] if d[0] == "diag"]
    assert [d[:2] for d in diags] == [("d.zip!/pkg/crc.bin", "malformed"), ("d.zip!/pkg/deflate.bin", "malformed"),
                                      ("d.zip!/pkg/name.bin", "malformed")]
    assert "Bad CRC-32 for file 'pkg/crc.bin'" in diags[0][2]
    assert "Error -3 while decompressing data" in diags[1][2]
    assert "File name in directory 'pkg/name.bin' and header b'PKG/name.bin' differ" in diags[2][2]
    assert any(d[0] == "diag" and d[2] == "limit" for d in runs[1])
    _sequential(monkeypatch)
    assert runs == [_walked("d.zip", lim) for lim in (small, replace(small, max_ratio=2, ratio_floor_bytes=MB // 2))]


def test_a_forked_reader_that_dies_leaves_its_members_to_the_walker(here, spool_root, monkeypatch):
    """The forked reader ends in the middle of the second large member (killed, out of memory, ...): the walker
    reads what it did not hand back itself, and the walk is the sequential walk."""
    Path("l.zip").write_bytes(_large_zip())
    real = forked._read_one

    def dying(entry, *args):
        if entry.name == "pkg/big2.bin":
            os._exit(9)
        return real(entry, *args)

    monkeypatch.setattr(forked, "_read_one", dying)
    small = WalkLimits(in_memory_bytes=MB)
    got = _walked("l.zip", small)
    assert ("file", "l.zip!/pkg/big2.bin", 3 * MB, TEXTISH[::-1]) in got
    assert os.listdir(spool_root) == []
    _sequential(monkeypatch)
    assert got == _walked("l.zip", small)


def test_large_members_read_early_are_bounded_and_released(here, spool_root, monkeypatch):
    """At most EARLY_BYTES of declared large members are read and not yet taken (one at least); those the walker
    passes (a limit reached) or leaves behind (the walk closed) are stopped and removed, the thread ends with the
    zip's walk."""
    Path("l.zip").write_bytes(_large_zip())
    monkeypatch.setattr(early, "EARLY_BYTES", 4 * MB)
    in_flight = []
    real_submit = early.EarlyLane._submit

    def submit(self):
        real_submit(self)
        in_flight.append([(read.entry.name, read.entry.size) for read in self._reading.values()])

    monkeypatch.setattr(early.EarlyLane, "_submit", submit)
    files = [i[1] for i in _walked("l.zip", WalkLimits(in_memory_bytes=MB))]
    assert "l.zip!/pkg/big3.bin" in files
    assert in_flight[:2] == [[("pkg/big1.bin", 3 * MB)], [("pkg/big2.bin", 3 * MB)]]  # 3 + 3 MiB: over 4 MiB
    assert [("pkg/big3.bin", 2 * MB), ("pkg/t.so", len(EXE))] in in_flight  # 2 MiB + EXE: within
    assert all(len(reads) == 1 or sum(size for _, size in reads) <= 4 * MB for reads in in_flight)
    items = _walked("l.zip", WalkLimits(in_memory_bytes=MB, max_members=10))
    assert items[-1][2:] == ("limit", "rest of the archive not read: more than 10 archive members (--max-members)")
    gen = walk(["l.zip"], WalkLimits(in_memory_bytes=MB))
    assert next(gen).vpath == "l.zip!/pkg/s00.so"
    gen.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("licscan-inflate") and t.is_alive()]
    assert os.listdir(spool_root) == []


def test_a_member_listed_twice_is_read_early_once():
    """Two central directory entries for one member (a hostile zip): the lane reads it once, the walker the copy."""
    blob = zip_bytes([("big.bin", TEXTISH)])
    zf = zipfile.ZipFile(io.BytesIO(blob))
    entries = list(zip_entries(blob, zf)) * 2
    limits = WalkLimits(in_memory_bytes=MB)
    reader = ahead.ReadAhead(limits)
    spool, budget = Spool(limits), Budget(limits)
    got = []
    try:
        for entry in reader.entries(entries, lambda e: True, zip_large_files(blob, zf, MB)):
            held = reader.take(entry, budget, spool)
            got.append(None if held is None else bytes(held.data[:16]))
            if held is not None:
                held.release()
    finally:
        reader.close()
        spool.close()
        zf.close()
    assert got == [TEXTISH[:16], None]  # the second copy: read by the walker itself
    assert budget.total == len(TEXTISH)


@pytest.mark.parametrize("name", ["l.zip", "l.tar.zst", "l.tar"])
def test_spooled_members_are_hashed_while_read_when_asked(here, name, monkeypatch):
    """``walk(digests=...)``: a member spooled while it is read gets its sha256 from that read (by the early lane,
    the pool, the streamed tar's thread or the walker itself); a member kept in memory, or not asked for, gets
    none (the scan hashes it where it needs to, from memory)."""
    members = [("pkg/s.so", LIB), ("pkg/big1.bin", TEXTISH), ("pkg/big2.bin", LINES), ("pkg/t.so", EXE)]
    blob = zip_bytes(members) if name.endswith(".zip") else tar_bytes(members, "zst" if name.endswith(".zst") else None)
    Path(name).write_bytes(blob)
    limits = WalkLimits(in_memory_bytes=MB)

    def digests_of():
        return {i.vpath.rsplit("/", 1)[-1]: (i.sha256, hashlib.sha256(i.data).hexdigest())
                for i in walk([name], limits, digests=lambda n: n.startswith("big") or n == "s.so")
                if isinstance(i, FileBlob)}

    got = digests_of()
    assert got["big1.bin"][0] == got["big1.bin"][1] == hashlib.sha256(TEXTISH).hexdigest()
    assert got["big2.bin"][0] == got["big2.bin"][1] == hashlib.sha256(LINES).hexdigest()
    assert got["s.so"][0] is None and got["t.so"][0] is None  # in memory / not asked for
    _sequential(monkeypatch)
    assert digests_of() == got


# ------------------------------------------------------------------------------------------ streamed tars (pipe.py)
LINES = b"".join(b"%07d sm_90 libcublas.so.12\n" % i for i in range(120_000))[: 2 * MB]


def _nested_tar(comp: str) -> bytes:
    inner = tar_bytes([("x/one.so", LIB), ("x/t.bin", LINES), ("x/two.so", EXE)], comp)
    return tar_bytes([("a.so", LIB), (f"inner.tar.{comp}", inner), ("t.bin", LINES), ("b.so", EXE)], comp)


def _listing(path: str, limits: WalkLimits) -> list[tuple]:
    return [("file", i.vpath, i.size) if isinstance(i, FileBlob) else ("diag", i.path, i.kind.value, i.message)
            for i in walk([path], limits) if isinstance(i, (FileBlob, Diagnostic))]


def _limit(path: str, what: str) -> tuple:
    return ("diag", path, "limit", f"{path} skipped: {what}")


@pytest.mark.parametrize("comp", ["gz", "zst"])
def test_streamed_tar_read_by_its_thread_keeps_the_walks_facts(here, comp):
    """A compressed tar is read by a thread; the budget is charged in walk order, so the member during which it runs
    out, and the archives around it, get the diagnostics of the sequential walk (these lists are what the walk
    gave before the thread: the bytes of a member past the refused read are charged as the walk skipped them)."""
    Path(f"n.tar.{comp}").write_bytes(_nested_tar(comp))
    n, inner = f"n.tar.{comp}", f"n.tar.{comp}!/inner.tar.{comp}"
    over = "total uncompressed bytes over the limit of"
    assert _listing(n, WalkLimits(max_total_bytes=2 * MB)) == [
        ("file", f"{n}!/a.so", len(LIB)), ("file", f"{inner}!/x/one.so", len(LIB)),
        _limit(f"{inner}!/x/t.bin", f"{over} {2 * MB}"), _limit(inner, f"{over} {2 * MB}"),
        ("diag", n, "limit", f"rest of the archive not read: {over} {2 * MB}")]
    assert _listing(n, WalkLimits(max_total_bytes=5 * MB)) == [
        ("file", f"{n}!/a.so", len(LIB)), ("file", f"{inner}!/x/one.so", len(LIB)),
        ("file", f"{inner}!/x/t.bin", 2 * MB), ("file", f"{inner}!/x/two.so", len(EXE)),
        _limit(f"{n}!/t.bin", f"{over} {5 * MB}"), _limit(n, f"{over} {5 * MB}")]
    assert _listing(n, WalkLimits()) == [
        ("file", f"{n}!/a.so", len(LIB)), ("file", f"{inner}!/x/one.so", len(LIB)),
        ("file", f"{inner}!/x/t.bin", 2 * MB), ("file", f"{inner}!/x/two.so", len(EXE)),
        ("file", f"{n}!/t.bin", 2 * MB), ("file", f"{n}!/b.so", len(EXE))]


def test_streamed_tar_ratio_and_truncation_as_the_sequential_walk(here):
    """The compressed bytes behind a member are counted by the thread's own reads: the ratio diagnostics name the
    figures the sequential walk named; a tar cut short ends with its members' and its own truncation."""
    data = _nested_tar("gz")
    Path("cut.tar.gz").write_bytes(data[: len(data) * 3 // 4])
    c, inner = "cut.tar.gz", "cut.tar.gz!/inner.tar.gz"
    ended = "Compressed file ended before the end-of-stream marker was reached"
    assert _listing(c, WalkLimits(max_ratio=3, ratio_floor_bytes=MB // 2)) == [
        ("file", f"{c}!/a.so", len(LIB)), ("file", f"{inner}!/x/one.so", len(LIB)),
        _limit(f"{inner}!/x/t.bin", "compression ratio over 3 (1048576 bytes from 159083 compressed bytes, still "
                                    "inflating)"),
        ("file", f"{inner}!/x/two.so", len(EXE)),
        _limit(f"{c}!/t.bin", "compression ratio over 3 (1048576 bytes from 159234 compressed bytes, still "
                              "inflating)"),
        ("diag", f"{c}!/b.so", "truncated", f"member not read completely: {ended}"),
        ("diag", c, "truncated", f"{ended} (after 4 members)")]


def test_streamed_tar_closed_early_stops_its_thread(here, spool_root):
    Path("big.tar.zst").write_bytes(tar_bytes([(f"m{i}.bin", os.urandom(2 * MB)) for i in range(6)], "zst"))
    gen = walk(["big.tar.zst"], WalkLimits(in_memory_bytes=MB))
    assert next(gen).vpath == "big.tar.zst!/m0.bin"
    gen.close()
    assert not [t for t in threading.enumerate() if t.name == "licscan-untar" and t.is_alive()]
    assert os.listdir(spool_root) == []


def _zstd_frames_blob() -> bytes:
    """Two zstd frames (one with a checksum, several blocks; one without a content size), a skippable frame
    between them and an empty frame after them."""
    noisy = bytes((i * 7919 >> 3) & 3 for i in range(300_000))
    skippable = struct.pack("<II", 0x184D2A53, 5) + b"abcde"
    return (zstandard.ZstdCompressor(level=3, write_checksum=True).compress(noisy) + skippable
            + zstandard.ZstdCompressor(level=1, write_content_size=False).compress(b"hello" * 1000)
            + zstandard.ZstdCompressor(level=1).compress(b""))


def test_zstd_frames_checked_from_the_pieces_read_as_from_the_buffer():
    """ZstdFrames (fed the pieces a decompressor reads, of any size) says what zstd_problem says of the whole
    buffer, for every cut and for damaged headers."""
    blob = _zstd_frames_blob()
    walk, headers = compressed._frames(len(blob)), []  # where the frame and block headers are
    try:
        want = next(walk)
        while True:
            headers.append(want)
            want = walk.send(blob[want[0] : want[0] + want[1]])
    except StopIteration:
        pass
    assert len(headers) > 6
    cases = [blob[:cut] for cut in range(0, len(blob), 97)] + [blob]
    cases += [blob[: pos + k] for pos, size in headers for k in range(-4, size + 2)]
    for pos, size in headers:
        for at in range(pos, pos + size):
            for mask in (0x01, 0x06, 0x80, 0xFF):
                damaged = bytearray(blob)
                damaged[at] ^= mask
                cases.append(bytes(damaged))
    sizes = [1, 2, 3, 5, 8, 64, 1000, 65536]
    seen = set()
    for number, case in enumerate(cases):
        frames = compressed.ZstdFrames(len(case))
        pos = 0
        while pos < len(case):
            size = sizes[(number + pos) % len(sizes)]
            frames.feed(case[pos : pos + size])
            pos += size
        expected = compressed.zstd_problem(case)
        assert frames.done
        got = frames.result
        assert (got and (got.kind, got.message, got.offset)) == (expected and (expected.kind, expected.message,
                                                                             expected.offset))
        seen.add(expected.message if expected else None)
    assert {None, "zstd block cut short", "zstd block header cut short", "zstd frame header cut short",
            "skippable zstd frame cut short", "zstd checksum cut short", "reserved zstd block type"} <= seen, seen


def test_a_tar_zst_read_to_its_end_is_checked_without_a_second_pass(here, monkeypatch):
    """A .tar.zst read to its end is checked from the pieces its decompressor read (zstd_problem, which walks the
    buffer again, is not called); one cut short still gets the truncation diagnostic."""
    data = tar_bytes([("a.so", LIB), ("t.bin", LINES)], "zst")
    Path("n.tar.zst").write_bytes(data)
    Path("cut.tar.zst").write_bytes(data[: len(data) - 100])
    whole = _listing("n.tar.zst", WalkLimits())
    cut = _listing("cut.tar.zst", WalkLimits())
    monkeypatch.setattr(compressed, "zstd_problem", lambda *a, **k: pytest.fail("second pass over the stream"))
    assert _listing("n.tar.zst", WalkLimits()) == whole == [("file", "n.tar.zst!/a.so", len(LIB)),
                                                            ("file", "n.tar.zst!/t.bin", 2 * MB)]
    assert _listing("cut.tar.zst", WalkLimits()) == cut
    assert cut[-1] == ("diag", "cut.tar.zst", "truncated", "zstd block cut short")


def _opens(blob: bytes, name: str) -> bool:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        try:
            zf.open(name).close()
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, UnicodeDecodeError):
            return False
    return True


def test_local_headers_are_checked_as_zipfile_checks_them():
    """open_checked skips ZipFile.open exactly when it would have opened the member (else zipfile opens it, and
    says what is wrong): a damaged signature, a local name that differs, in UTF-8 or cp437, the encryption,
    compressed-patch and strong-encryption flags."""
    blob = zip_bytes([("pkg/ä.txt", TEXTISH[:5000]), ("pkg/plain.so", LIB)])
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    uni, plain = infos["pkg/ä.txt"], infos["pkg/plain.so"]
    cases = {"as written": blob}
    for label, info, at, value in (("signature", plain, 0, b"PK\x03\x05"), ("name", plain, 30, b"PKG"),
                                   ("UTF-8 name", uni, 34, b"a"), ("UTF-8 flag off", uni, 7, b"\x00")):
        damaged = bytearray(blob)
        damaged[info.header_offset + at : info.header_offset + at + len(value)] = value
        cases[label] = bytes(damaged)
    for flag in (0x01, 0x20, 0x40):  # the central directory's flags, as zipfile reads them
        damaged = bytearray(blob)
        central = blob.rfind(b"PK\x01\x02")  # the last entry of the central directory: pkg/plain.so's
        struct.pack_into("<H", damaged, central + 8, plain.flag_bits | flag)
        cases[f"flag {flag:#x}"] = bytes(damaged)
    verdicts = {}
    for label, data in cases.items():
        for name in ("pkg/ä.txt", "pkg/plain.so"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    span = inflate.ZipSpan.of(data, zf.getinfo(name))
            except zipfile.BadZipFile:
                continue
            checked = inflate.open_checked(span)
            assert (checked is not None) == _opens(data, name), (label, name)
            verdicts[(label, name)] = checked is not None
    assert verdicts[("as written", "pkg/ä.txt")] and verdicts[("as written", "pkg/plain.so")]
    assert [key for key, ok in verdicts.items() if not ok] == [
        ("signature", "pkg/plain.so"), ("name", "pkg/plain.so"), ("UTF-8 name", "pkg/ä.txt"),
        ("UTF-8 flag off", "pkg/ä.txt"), ("flag 0x1", "pkg/plain.so"), ("flag 0x20", "pkg/plain.so"),
        ("flag 0x40", "pkg/plain.so")]
