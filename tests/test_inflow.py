"""inflow.py: a compressed tar's stream decompressed by a thread ahead of its reader gives the reader what reading
the decompressor itself gave tarfile (``r|`` reads it in 10240-byte blocks): the same bytes, the same charges in
the same order, the same compressed counts after each read, and the decompressor's error at the same read."""

from __future__ import annotations

import gzip
import hashlib
import random
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import zstandard
from inventory_builders import SequentialStream, tar_bytes

from licscan.binary.stream import WindowStream
from licscan.cli import main
from licscan.inventory import compressed, inflow
from licscan.inventory.entries import ArchiveError
from licscan.inventory.inflow import PIECE, Inflow
from licscan.inventory.items import FileBlob
from licscan.inventory.limits import WalkLimits
from licscan.inventory.member import Tally
from licscan.inventory.sniff import ArchiveKind
from licscan.inventory.walk import walk
from licscan.model import Diagnostic

_RANDOM = random.Random(14)
PLAIN = b"".join(b"%08d libcublas.so.12 sm_90 " % i + _RANDOM.randbytes(i % 97) for i in range(60_000))  # ~4.7 MB


def _blob(kind: ArchiveKind, data: bytes = PLAIN) -> bytes:
    if kind is ArchiveKind.GZIP:
        return gzip.compress(data, mtime=0)
    return zstandard.ZstdCompressor(level=3).compress(data)


def _reads(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([512, 7, 10240, 10239, 20481, 1 << 20, 3 * (1 << 20), 1]) for _ in range(400)]


def _both(blob: bytes, kind: ArchiveKind, sizes: list[int]) -> tuple[list[tuple], list[tuple]]:
    """For each read of ``sizes``: (bytes, charges of the read, compressed count after it), or the error raised."""
    outcomes = []
    for make in ("sequential", "inflow"):
        tally = Tally(WalkLimits())
        if make == "sequential":
            reader: SequentialStream | Inflow = SequentialStream(blob, kind, tally)
            flow = None
        else:
            raw = compressed.CountingReader(WindowStream(blob))
            reader = flow = Inflow(compressed.open_stream(kind, raw), raw, tally)
        got: list[tuple] = []
        try:
            for size in sizes:
                tally.reads = []
                try:
                    data = reader.read(size)
                except Exception as error:  # noqa: BLE001 - compared below
                    got.append(("error", type(error).__name__, str(error), tally.reads))
                    break
                packed = reader.packed if isinstance(reader, SequentialStream) else reader.packed()
                got.append((data, tally.reads, packed))
                if not data:
                    break
        finally:
            if flow is not None:
                flow.close()
        outcomes.append(got)
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("kind", [ArchiveKind.ZSTD, ArchiveKind.GZIP])
@pytest.mark.parametrize("seed", [1, 2])
def test_inflow_reads_as_the_decompressor_read_by_tarfile(kind, seed):
    sequential, ahead = _both(_blob(kind), kind, _reads(seed))
    assert ahead == sequential
    assert b"".join(r[0] for r in ahead) == PLAIN
    assert sum(sum(r[1]) for r in ahead) == len(PLAIN)
    assert {c for r in ahead for c in r[1]} == {10240, len(PLAIN) % 10240}


def test_inflow_cut_short_gzip_raises_at_the_same_read():
    blob = _blob(ArchiveKind.GZIP)
    sequential, ahead = _both(blob[: len(blob) * 2 // 3], ArchiveKind.GZIP, [10240] * 1000)
    assert ahead == sequential
    assert ahead[-1][:3] == ("error", "EOFError", "Compressed file ended before the end-of-stream marker was reached")
    assert len(ahead) > 100  # the blocks before the cut were read


def test_inflow_damaged_zstd_raises_at_the_same_read():
    blob = bytearray(_blob(ArchiveKind.ZSTD))
    at = len(blob) * 56 // 100  # in a compressed block (damage in a raw block only changes the bytes read)
    for k in range(0, 64, 8):
        blob[at + k] ^= 0x5A
    sequential, ahead = _both(bytes(blob), ArchiveKind.ZSTD, [5000] * 2000)
    assert ahead == sequential
    assert ahead[-1][:3] == ("error", "ZstdError", "zstd decompress error: Data corruption detected")
    assert 400 < len(ahead) < 700  # the reads before the damage gave their bytes (the whole stream: 949 reads)


def test_inflow_seeks_forward_only_and_close_stops_its_thread(monkeypatch):
    monkeypatch.setattr(inflow, "BATCH", 1 << 16)
    monkeypatch.setattr(inflow, "AHEAD", 2)
    blob = _blob(ArchiveKind.ZSTD)
    raw = compressed.CountingReader(WindowStream(blob))
    flow = Inflow(compressed.open_stream(ArchiveKind.ZSTD, raw), raw, Tally(WalkLimits()))
    assert flow.seek(100_000) == flow.tell() == 100_000
    assert flow.read(10) == PLAIN[100_000:100_010]
    with pytest.raises(Exception, match="seeking backwards is not allowed"):
        flow.seek(5)
    flow.close()
    assert not [t for t in threading.enumerate() if t.name == "licscan-inflow" and t.is_alive()]
    assert raw.count < len(blob) // 4  # stopped: at most AHEAD batches are decompressed ahead of the reader


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar makes the sparse member")
def test_a_streamed_tars_plain_and_sparse_members_read_whole(tmp_path):
    """Plain members are read straight from the stream (inflow._Member), a sparse one as tarfile expands it."""
    holes = tmp_path / "tree" / "holes.bin"
    holes.parent.mkdir()
    with open(holes, "wb") as handle:
        for at in (0, 3 << 20, 7 << 20):
            handle.seek(at)
            handle.write(PLAIN[at // 8 : at // 8 + 70_000])
        handle.truncate(9 << 20)
    (tmp_path / "tree" / "plain.bin").write_bytes(PLAIN)
    subprocess.run(["tar", "--sparse", "--format=pax", "-cf", str(tmp_path / "t.tar"), "-C", str(tmp_path / "tree"),
                    "holes.bin", "plain.bin"], check=True)
    raw = (tmp_path / "t.tar").read_bytes()
    assert b"GNU.sparse" in raw  # tar stored the member sparse
    (tmp_path / "t.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    got = {i.vpath: bytes(i.data) for i in walk([str(tmp_path / "t.tar.zst")]) if isinstance(i, FileBlob)}
    assert got == {f"{tmp_path}/t.tar.zst!/holes.bin": holes.read_bytes(),
                   f"{tmp_path}/t.tar.zst!/plain.bin": PLAIN}


# ------------------------------------------------------------------------------ zstd read in place, batch buffers
def _in_place(blob: bytes, frames: compressed.ZstdFrames | None = None) -> tuple[Inflow, compressed.InPlace]:
    raw = compressed.InPlace(blob, watch=frames.feed if frames is not None else None)
    return Inflow(compressed.open_stream(ArchiveKind.ZSTD, raw), raw, Tally(WalkLimits())), raw


@pytest.mark.parametrize("seed", [3, 4])
def test_zstd_read_in_place_reads_as_the_copying_reader(seed):
    """compressed.InPlace hands the decompressor windows of the buffer, not copies: it reads the same pieces of the
    input, so every read gives the same bytes, charges and compressed count as the sequential walk's."""
    blob = _blob(ArchiveKind.ZSTD)
    sequential, _ = _both(blob, ArchiveKind.ZSTD, _reads(seed))
    flow, _raw = _in_place(blob)
    tally = flow._tally
    got: list[tuple] = []
    try:
        for size in _reads(seed):
            tally.reads = []
            data = flow.read(size)
            got.append((data, tally.reads, flow.packed()))
            if not data:
                break
    finally:
        flow.close()
    assert got == sequential


def test_zstd_frames_fed_in_place_once_read_say_what_the_buffer_walk_says():
    """The frames of a stream read in place are fed to ZstdFrames once the decompressor has read them (the read
    after); read to its end, every byte was fed and the result is zstd_problem's, also for a damaged stream."""
    whole = _blob(ArchiveKind.ZSTD)
    damaged = bytearray(whole)
    for k in range(0, 64, 8):  # in a compressed block (as test_inflow_damaged_zstd_raises_at_the_same_read)
        damaged[len(whole) * 56 // 100 + k] ^= 0x5A
    outcomes = []
    for blob in (whole, whole + _blob(ArchiveKind.ZSTD, b"second frame"), whole[: len(whole) - 3], bytes(damaged)):
        frames = compressed.ZstdFrames(len(blob))
        flow, raw = _in_place(blob, frames)
        try:
            while flow.read(1 << 20):
                pass
            stopped = None
        except zstandard.ZstdError as error:
            stopped = str(error)
        finally:
            flow.close()
        outcomes.append((raw.count == len(blob), frames.done, stopped, _fact(frames.result)))
        assert frames.done is (raw.count == len(blob))
        if frames.done:
            assert _fact(frames.result) == _fact(compressed.zstd_problem(blob))
    assert outcomes[:3] == [(True, True, None, None), (True, True, None, None),
                            (True, True, None, ("truncated", "zstd block cut short", len(whole) - 3))]
    assert outcomes[3][2] == "zstd decompress error: Data corruption detected"  # stopped there: zstd_problem asked


def _fact(problem: ArchiveError | None) -> tuple | None:
    return (problem.kind.value, problem.message, problem.offset) if problem is not None else None


@pytest.mark.parametrize("batch", [PIECE * 3, PIECE * 3 + 1, 1 << 16])
def test_members_across_batch_and_piece_boundaries_read_whole(here, monkeypatch, batch):
    """A .tar.zst whose members start and end anywhere in the pieces and batches the thread decompresses into
    (reused buffers; read a megabyte at a time by Spool.hold, more batches than AHEAD: those passed are given back
    after a copy): every member's bytes are tarfile's, in order, and a spooled member's sha256 is its bytes'."""
    monkeypatch.setattr(inflow, "BATCH", batch)
    monkeypatch.setattr(inflow, "AHEAD", 2)
    rng = random.Random(batch)
    sizes = [0, 1, 511, 512, 513, PIECE - 1, PIECE, PIECE + 1, batch - 1, batch, batch + 1, 3 * batch + 7,
             rng.randrange(1, 5 * batch)]
    members = [(f"m{k:02d}.bin", rng.randbytes(size)) for k, size in enumerate(sizes)]
    Path("t.tar.zst").write_bytes(tar_bytes(members, "zst"))
    got = [(i.vpath, bytes(i.data), i.sha256) for i in walk(["t.tar.zst"], WalkLimits(in_memory_bytes=2 * batch),
                                                            digests=lambda name: True) if isinstance(i, FileBlob)]
    # spooled (over in_memory_bytes): written from the batches' buffers and hashed from them as it was written
    assert got == [(f"t.tar.zst!/{name}", data, hashlib.sha256(data).hexdigest() if len(data) > 2 * batch else None)
                   for name, data in members]


def test_zstd_bomb_in_a_tar_stops_with_the_same_message_and_exit_code(here, capsys):
    """A member of a .tar.zst that inflates more than 200 times is refused past the ratio floor with the figures
    the sequential walk named (the compressed count of each piece, unchanged by reading the input in place), and
    the audit ends with exit code 3 (incomplete)."""
    rng = random.Random(14)
    bomb = b"".join(rng.randbytes(8) + bytes(6000) for _ in range((40 << 20) // 6008))
    Path("bomb.tar.zst").write_bytes(tar_bytes([("a.bin", rng.randbytes(300_000)), ("bomb.bin", bomb),
                                                ("z.txt", b"after\n")], "zst"))
    message = ("bomb.tar.zst!/bomb.bin skipped: compression ratio over 200 (24117248 bytes from 119521 compressed "
               "bytes, still inflating)")
    items = list(walk(["bomb.tar.zst"], WalkLimits()))
    assert [(i.vpath, i.size) for i in items if isinstance(i, FileBlob)] == [
        ("bomb.tar.zst!/a.bin", 300_000), ("bomb.tar.zst!/z.txt", 6)]
    assert [(d.path, d.kind.value, d.message) for d in items if isinstance(d, Diagnostic)] == [
        ("bomb.tar.zst!/bomb.bin", "limit", message)]
    assert main(["audit", "--no-cache", "bomb.tar.zst"]) == 3
    assert f"bomb.tar.zst!/bomb.bin: {message}" in capsys.readouterr().out
