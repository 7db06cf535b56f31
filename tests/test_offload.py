"""offload.py: a streamed tar's large members written to their spool files (and hashed) by the process that
decompresses its zstd stream: the walk yields what the threads' walk yields (the same bytes, sha256, limit
diagnostics and damage), and the child writes exactly the member's bytes of the stream, in order."""

from __future__ import annotations

import hashlib
import os
import random

import pytest
from inventory_builders import tar_bytes

from licscan.inventory import inflow, offload, unzstd
from licscan.inventory.items import FileBlob
from licscan.inventory.limits import WalkLimits
from licscan.inventory.walk import walk
from licscan.model import Diagnostic, DiagnosticKind

_RNG = random.Random(14)
SPOOLED = 64 << 10  # in_memory_bytes of these walks: members declared larger are spooled from their first byte
MEMBERS = [("lib/small.txt", b"small " * 100),
           ("lib/libcublasLt.so.12", _RNG.randbytes(3 << 20)),
           ("lib/empty", b""),
           ("lib/zeros.bin", bytes(4 << 20)),
           ("lib/libcudnn.so.9", _RNG.randbytes((1 << 20) + 12345)),
           ("lib/between.txt", b"x" * 700),
           ("lib/libnccl.so.2", _RNG.randbytes(SPOOLED + 1))]
LIMITS = {"whole": WalkLimits(in_memory_bytes=SPOOLED),
          "ratio": WalkLimits(in_memory_bytes=SPOOLED, ratio_floor_bytes=1 << 20, max_ratio=50),
          "member size": WalkLimits(in_memory_bytes=SPOOLED, max_member_bytes=2 << 20),
          "budget": WalkLimits(in_memory_bytes=SPOOLED, max_total_bytes=5 << 20)}


def _items(path: str, limits: WalkLimits) -> list[tuple]:
    out = []
    for item in walk([path], limits, digests=lambda name: True):
        if isinstance(item, FileBlob):
            out.append(("file", item.vpath, hashlib.sha256(bytes(item.data)).hexdigest(), item.sha256))
        elif isinstance(item, Diagnostic):
            out.append(("diagnostic", item.path, item.kind, item.message, item.offset))
    return out


@pytest.mark.parametrize("rooms", ["one batch a room", "many small rooms"])
@pytest.mark.parametrize("case", ["whole", "truncated", "damaged", "ratio", "member size", "budget"])
def test_members_written_by_the_child_are_what_the_threads_read(here, monkeypatch, case, rooms):
    if rooms == "many small rooms":  # rooms given back and decompressed into again while members are written
        monkeypatch.setattr(inflow, "BATCH", 3 * inflow.PIECE + 1)
        monkeypatch.setattr(inflow, "AHEAD", 2)
    blob = tar_bytes(MEMBERS, "zst")
    if case == "truncated":
        blob = blob[: len(blob) * 3 // 4]
    elif case == "damaged":
        damaged = bytearray(blob)
        for k in range(0, 64, 8):
            damaged[len(blob) * 2 // 3 + k] ^= 0x5A
        blob = bytes(damaged)
    with open("t.tar.zst", "wb") as handle:
        handle.write(blob)
    limits = LIMITS.get(case, LIMITS["whole"])
    monkeypatch.setattr(unzstd, "SPAWN_MIN", 1 << 40)
    threads = _items("t.tar.zst", limits)
    monkeypatch.setattr(unzstd, "SPAWN_MIN", 0)
    asked: list[tuple[int, int]] = []
    real = unzstd.ProcessLane.offload
    monkeypatch.setattr(unzstd.ProcessLane, "offload",
                        lambda self, start, size, fd, digest: asked.append((start, size)) or
                        real(self, start, size, fd, digest))
    process = _items("t.tar.zst", limits)
    assert process == threads
    large = [size for name, data in MEMBERS if (size := len(data)) > SPOOLED]
    if case == "whole":
        assert [size for _start, size in asked] == large  # every member spooled from its first byte
        assert [i[1] for i in process] == [f"t.tar.zst!/{name}" for name, _ in MEMBERS]
        assert all(i[2] == i[3] for i in process if i[3] is not None)  # the child's sha256 is the bytes'
        assert sum(i[3] is not None for i in process) == len(large)
    else:
        assert asked  # the members before the damage or the limit were written by the child
    if case == "ratio":
        assert ("diagnostic", "t.tar.zst!/lib/zeros.bin", DiagnosticKind.LIMIT) in [i[:3] for i in process]
    if case == "member size":
        assert ("diagnostic", "t.tar.zst!/lib/libcublasLt.so.12", DiagnosticKind.LIMIT) in [i[:3] for i in process]


def _writer(tmp_path, rooms: list[bytes], room: int) -> tuple[offload.Writer, list[tuple], memoryview]:
    memory = bytearray(room * len(rooms))
    for k, data in enumerate(rooms):
        memory[k * room : k * room + len(data)] = data
    answers: list[tuple] = []
    return offload.Writer(memoryview(memory), room, answers.append), answers, memoryview(memory)


def test_the_writer_writes_the_members_bytes_of_the_rooms_in_stream_order(tmp_path):
    stream = _RNG.randbytes(3000)
    room = 1024
    writer, answers, view = _writer(tmp_path, [stream[:1000], stream[1000:2000]], room)
    files = [tmp_path / "a", tmp_path / "b"]
    writer.filled(0, 1000)
    writer.filled(1, 1000)  # both sent before the walker asks for the first member (it starts in room 0)
    writer.add(1, os.open(files[0], os.O_RDWR | os.O_CREAT), 700, 1500, True)
    writer.add(2, os.open(files[1], os.O_RDWR | os.O_CREAT), 2300, 500, False)
    writer.freed(0)
    assert writer.reusable(0, wait=True)
    view[:1000] = stream[2000:]  # room 0 again: the stream's bytes 2000-3000
    writer.filled(0, 1000)
    writer.close()
    assert files[0].read_bytes() == stream[700:2200]
    assert files[1].read_bytes() == stream[2300:2800]
    assert answers == [("offloaded", 1, 1500, hashlib.sha256(stream[700:2200]).hexdigest(), None),
                       ("offloaded", 2, 500, None, None)]


def test_a_cancelled_member_is_no_longer_written_and_a_lost_part_is_an_error(tmp_path):
    stream = _RNG.randbytes(3000)
    writer, answers, _view = _writer(tmp_path, [stream[:1000], stream[1000:2000], stream[2000:]], 1024)
    cancelled, lost = tmp_path / "cancelled", tmp_path / "lost"
    writer.filled(0, 1000)
    writer.add(1, os.open(cancelled, os.O_RDWR | os.O_CREAT), 500, 2000, True)
    writer.cancel(1)
    writer.filled(1, 1000)
    writer.freed(0)
    writer.add(2, os.open(lost, os.O_RDWR | os.O_CREAT), 900, 300, True)  # its first bytes were in room 0
    writer.filled(2, 1000)
    writer.close()
    assert cancelled.read_bytes() == stream[500:1000]
    assert lost.read_bytes() == b""
    assert answers == [("offloaded", 2, 0, None, "the zstd decompression process lost part of the member")]


def test_a_child_killed_while_it_writes_a_member_ends_the_walk_of_the_tar_with_diagnostics(here, monkeypatch):
    """The walker waits for the child's answer only while the child lives: killed after it was asked for the
    second large member, the walk of the tar ends (no hang) with a diagnostic, and the members before are whole."""
    import signal

    with open("t.tar.zst", "wb") as handle:
        handle.write(tar_bytes(MEMBERS, "zst"))
    monkeypatch.setattr(unzstd, "SPAWN_MIN", 0)
    asked: list[int] = []
    real = unzstd.ProcessLane.offload

    def offload_then_kill(self, start, size, fd, digest):
        asked.append(size)
        answer = real(self, start, size, fd, digest)
        if len(asked) == 2:
            os.kill(self._owner._process.pid, signal.SIGKILL)
        return answer

    monkeypatch.setattr(unzstd.ProcessLane, "offload", offload_then_kill)
    got = _items("t.tar.zst", LIMITS["whole"])
    files = [i[1] for i in got if i[0] == "file"]
    assert files[:2] == ["t.tar.zst!/lib/small.txt", "t.tar.zst!/lib/libcublasLt.so.12"]
    assert "t.tar.zst!/lib/zeros.bin" not in files
    assert any(i[0] == "diagnostic" and "zstd decompression process ended unexpectedly" in i[3] for i in got)


@pytest.mark.parametrize("staged", [0, 5 * 3 * (1 << 16)])
def test_members_decompressed_while_the_walker_holds_every_room_are_what_the_threads_read(here, monkeypatch,
                                                                                           staged):
    """A walker that takes its time over many small members holds every room: the child decompresses the next
    batches into its memory file (``staged`` bytes, 0: none) and hands them on when a room is given back; the
    walk yields what the threads' walk yields, and the spooled members after them are whole with their sha256."""
    import time

    monkeypatch.setattr(inflow, "BATCH", 1 << 16)
    monkeypatch.setattr(inflow, "AHEAD", 2)
    monkeypatch.setattr(unzstd, "STAGED_BYTES", staged)
    members = [(f"lib/small{k:03d}.py", _RNG.randbytes(k * 37)) for k in range(120)] + MEMBERS
    with open("t.tar.zst", "wb") as handle:
        handle.write(tar_bytes(members, "zst"))
    monkeypatch.setattr(unzstd, "SPAWN_MIN", 1 << 40)
    threads = _items("t.tar.zst", LIMITS["whole"])
    monkeypatch.setattr(unzstd, "SPAWN_MIN", 0)
    process = []
    for item in walk(["t.tar.zst"], LIMITS["whole"], digests=lambda name: True):
        if isinstance(item, FileBlob):
            time.sleep(0.002)  # the walker's work on each member: the child runs ahead of it
            process.append(("file", item.vpath, hashlib.sha256(bytes(item.data)).hexdigest(), item.sha256))
        elif isinstance(item, Diagnostic):
            process.append(("diagnostic", item.path, item.kind, item.message, item.offset))
    assert process == threads
    assert [i[1] for i in process] == [f"t.tar.zst!/{name}" for name, _ in members]
    assert sum(i[3] is not None for i in process) == sum(len(data) > SPOOLED for _, data in MEMBERS)
