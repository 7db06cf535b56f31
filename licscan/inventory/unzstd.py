"""A streamed tar's zstd stream decompressed by a process of its own (the lane of inflow.py, out of the walk's
process): the decompression shares no GIL with the threads that read the tar and examine its files.

Why a process: a thread that decompresses gives the GIL up for each piece of C work and must take it back after
each, while the walker's threads run Python; an image's zstd layers (4.5 GB in 10 KiB pieces, inflow.py) took 3.6-4.8
s of CPU in a thread beside them against 2.9 s alone, and the thread was busy 7.3 s of a 10 s audit: the long pole.

Why a new process and not a fork: a forked child's resident set starts as the walker's (its anonymous pages are
mapped in both), so a fork doubled the memory the benchmarks count (222-227 MB for a fork per layer). The child is
started once per walk, at the first stream that is worth it (:data:`SPAWN_MIN`), and imports only this module, the
zstd decompressor and inflow.py's reading of pieces; it is reused for the next streams, one at a time.

What crosses, and how the reads stay exact:

- the compressed bytes: read by the child from the file they are in (an OCI layer blob, a window of an image
  tarball; its descriptor is passed over the socket), with ``pread`` in exactly the sizes the decompressor asks for
  (:class:`_Exact`), as :class:`compressed.InPlace` returns them: the same compressed count after each piece (a
  stream that is not a window of a file open in the walk, e.g. a spooled member, is decompressed by a thread);
- the decompressed bytes: the child runs inflow.py's ``_fill`` (the same pieces of ``PIECE`` bytes, the same
  counts, the same error at the same piece) into rooms of a shared memory area (``memfd_create``): batches of
  ``BATCH_FACTOR`` x ``inflow.BATCH`` bytes, as many rooms as hold the thread's ``AHEAD`` batches; it sends where
  each piece ends and the counts, and the walker reads the room in place (no copy) and gives it back when done;
- batches decompressed while the walker holds every room (it is busy with many small members): staged in a file
  of the child in the walk's private folder (:data:`STAGED_BYTES`, not mapped) and copied into the next room given
  back, the same pieces and counts sent in the same order: the child decompresses ahead of the walker instead of
  waiting for it;
- a member spooled from its first byte: written and hashed by the child from its rooms (offload.py);
- the walk of the zstd frames (compressed.ZstdFrames) is fed by the child with the bytes it reads, and its result
  sent at the end of the stream.

Failure is never a finding of its own when the child cannot start (no ``memfd_create``, no interpreter to run):
the stream is decompressed by a thread. A child that dies while decompressing ends the stream with an ``OSError``
(a diagnostic of the archive, one line), and the next streams use threads.
"""

from __future__ import annotations

import array
import json
import mmap
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.reduction import recvfds, sendfds
from typing import BinaryIO, cast

import zstandard

from licscan.inventory import inflow
from licscan.inventory.compressed import ZSTD_READ_SIZE, ZstdFrames
from licscan.inventory.entries import ArchiveError
from licscan.inventory.inflow import Batch, batch_bytes, fill, pieces_of
from licscan.inventory.offload import Offloaded, Sender, Told, Writer
from licscan.inventory.spool import preallocate
from licscan.model import DiagnosticKind

SPAWN_MIN = 16 << 20  # compressed bytes of a stream worth the process (starting it costs ~0.1 s of CPU, once)
# The child's batches are this many of the thread's (inflow.BATCH), in half as many rooms (the same memory): each
# batch costs the tar's thread two messages, and each message gives up the GIL, which the thread then waits for
# while the walker's thread runs Python (up to the 5 ms switch interval).
BATCH_FACTOR = 4
# Batches decompressed while the walker holds every room wait in a file of this many bytes (:class:`_Staged`) instead of
# stopping the decompression: a stretch of small members (torch's 11,337 files before its two libraries) keeps the
# walker's threads busy for seconds, during which the child decompresses what comes after them.
STAGED_BYTES = 512 << 20
_CODE = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
         "from licscan.inventory.unzstd import serve; serve(*map(int, sys.argv[2:8]))")


class FramesResult:
    """compressed.ZstdFrames' ``done`` and ``result``, as the child computed them."""

    def __init__(self) -> None:
        self.done = False
        self.result: ArchiveError | None = None


class Decompressor:
    """The child of one walk (started on first use; :meth:`close` with the walk); ``folder()``: the walk's private
    folder, where the child stages batches (:class:`_Staged`)."""

    def __init__(self, folder: Callable[[], str] | None = None) -> None:
        self._folder = folder
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._sock: socket.socket | None = None
        self._shm: mmap.mmap | None = None
        self._busy = False
        self._failed = False
        self.rooms = 0  # batches of the shared memory

    def lane(self, length: int, at: tuple[int, int]) -> ProcessLane | None:
        """A lane decompressing in the child the zstd stream of ``length`` bytes at ``at`` = (descriptor, offset) of
        a file; None: use a thread (the child is busy with another stream, could not start, or the stream is too
        small to be worth it)."""
        if self._busy or self._failed or length < SPAWN_MIN:
            return None
        if self._process is None and not self._start():
            return None
        assert self._conn is not None and self._sock is not None and self._shm is not None
        self._busy = True
        try:
            return ProcessLane(self, self._conn, self._sock, self._shm, length, at,
                               self._folder() if self._folder is not None else "")
        except OSError:
            self._busy = False
            self.broken()
            return None

    def _start(self) -> bool:
        shm_fd = -1
        ours, theirs = socket.socketpair()
        try:
            shm_fd = os.memfd_create("licscan-unzstd", os.MFD_CLOEXEC)
            batch, rooms = inflow.BATCH * BATCH_FACTOR, max(2, inflow.AHEAD * 2 // BATCH_FACTOR)
            os.ftruncate(shm_fd, rooms * batch_bytes(batch) + 1)
            self._shm = mmap.mmap(shm_fd, 0)
            args = (theirs.fileno(), shm_fd, os.getpid(), batch, rooms, STAGED_BYTES)
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CODE, json.dumps(sys.path), *map(str, args)],
                pass_fds=(theirs.fileno(), shm_fd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, close_fds=True)
        except (OSError, AttributeError, ValueError):  # no memfd_create (not Linux), no interpreter to run
            ours.close()
            self._failed = True
            return False
        finally:
            theirs.close()
            if shm_fd >= 0:
                os.close(shm_fd)
        self._sock = ours
        self._conn = Connection(os.dup(ours.fileno()))
        self.rooms = rooms
        return True

    def released(self) -> None:
        self._busy = False

    def broken(self) -> None:
        """The child is gone or out of step: the next streams use threads."""
        self._failed = True
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    def close(self) -> None:
        if self._process is None:
            return
        if self._conn is not None:
            try:
                self._conn.send(("quit",))
            except OSError:
                pass
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for closing in (self._conn, self._sock, self._shm):
            if closing is not None:
                try:
                    closing.close()
                except BufferError:
                    pass  # a window of the shared memory is still referenced: the mapping goes with it
        self._process = self._conn = self._sock = self._shm = None


class ProcessLane:
    """One stream decompressed by the child; inflow.py's lane interface (:meth:`get`, :meth:`done`, :meth:`close`),
    used from one thread at a time."""

    def __init__(self, owner: Decompressor, conn: Connection, sock: socket.socket, shm: mmap.mmap, length: int,
                 at: tuple[int, int], folder: str = "") -> None:
        self._owner = owner
        self._conn = conn
        self._sock = sock
        self._shm = shm
        self._stash: deque[tuple[object, ...]] = deque()  # messages received while waiting for a member's answer
        self._offloaded: dict[int, tuple[object, ...]] = {}  # answers received, by member
        self._members = 0
        self.rooms = owner.rooms
        self._room = (len(shm) - 1) // owner.rooms
        self._view = memoryview(shm)
        self.frames = FramesResult()
        self._ended = False
        shm[len(shm) - 1] = 0  # the stop flag
        fd, offset = at
        conn.send(("stream", offset, length, folder))
        sendfds(sock, [fd])

    def get(self) -> Batch:
        """The next batch (the walker then reads its room in place, until :meth:`done`)."""
        while True:
            message = self._stash.popleft() if self._stash else self._receive()
            if message is None:
                return Batch(memoryview(b""), error=OSError("the zstd decompression process ended unexpectedly"),
                             last=True)
            if message[0] == "batch":
                _, sent_room, ends, counts, error, last = message
                room = sent_room if isinstance(sent_room, int) else -1
                start = room * self._room
                return Batch(self._view[start : start + self._room], _ints(ends), _ints(counts), _rebuilt(error),
                             bool(last), room)
            if message[0] == "end":  # never before the last batch: the child is out of step
                self._end(message)
                self._owner.broken()
                return Batch(memoryview(b""), error=OSError("the zstd decompression process is out of step"),
                             last=True)
            if message[0] == "offloaded" and isinstance(message[1], int):
                self._offloaded[message[1]] = message

    def offload(self, start: int, size: int, fd: int, digest: bool) -> Offloaded | None:
        """Have the child write the stream's bytes ``[start, start + size)`` (a member none of whose bytes the
        walker has read yet) to the file at ``fd``, and hash them with ``digest`` (offload.py); None: the child is
        gone (the stream ends with its error)."""
        if self._ended:
            return None
        self._members += 1
        self._conn.send(("offload", self._members, start, size, digest))
        sendfds(self._sock, [fd])
        return Offloaded(self, self._members)

    def offloaded(self, ident: int) -> tuple[object, ...]:
        """The child's answer for member ``ident`` (the batches received meanwhile are kept for :meth:`get`)."""
        while ident not in self._offloaded:
            message = self._receive()
            if message is None:
                raise OSError("the zstd decompression process ended unexpectedly")
            if message[0] == "offloaded" and isinstance(message[1], int):
                self._offloaded[message[1]] = message
                continue
            self._stash.append(message)
            if message[0] == "end":
                raise OSError("the zstd decompression process is out of step")
        return self._offloaded.pop(ident)

    def unoffload(self, ident: int) -> None:
        self._offloaded.pop(ident, None)
        if not self._ended:
            try:
                self._conn.send(("unoffload", ident))
            except OSError:
                pass

    def done(self, batch: Batch) -> None:
        if not self._ended and batch.room >= 0:
            try:
                self._conn.send(("free", batch.room))
            except OSError:
                pass

    def close(self) -> None:
        """Stop the child's work on this stream (it ends at its next piece) and wait until it says it ended."""
        self._shm[len(self._shm) - 1] = 1
        try:
            self._conn.send(("stop",))
        except OSError:
            pass
        while not self._ended:
            message = self._receive()
            if message is None:
                break
            if message[0] == "end":
                self._end(message)
        self._view.release()
        self._owner.released()

    def _end(self, message: tuple[object, ...]) -> None:
        self._ended = True
        _, done, result = message
        self.frames.done = bool(done)
        if isinstance(result, tuple):
            kind, text, offset = result
            self.frames.result = ArchiveError(DiagnosticKind(kind), str(text), offset if isinstance(offset, int)
                                              else None)

    def _receive(self) -> tuple[object, ...] | None:
        try:
            message = self._conn.recv()
        except (EOFError, OSError, pickle.UnpicklingError):
            message = None
        if not isinstance(message, tuple) or not message:
            self._ended = True
            self._owner.broken()
            return None
        return message


def _ints(packed: object) -> list[int]:
    return array.array("q", packed if isinstance(packed, bytes) else b"").tolist()


def _portable(error: BaseException | None) -> object:
    """``error`` as it crosses the connection (the decompressor's errors pickle as they are)."""
    if error is None:
        return None
    try:
        pickle.dumps(error)
    except Exception:  # noqa: BLE001 - any error that does not pickle crosses as its text
        return OSError(f"{type(error).__name__}: {error}")
    return error


def _rebuilt(sent: object) -> BaseException | None:
    return sent if isinstance(sent, BaseException) else None


# --------------------------------------------------------------------------------------------------- the child
class _Exact:
    """The compressed bytes at ``offset`` of the file at ``fd``, in the sizes asked for (``min(size, left)``:
    compressed.InPlace's reads), counted, each fed to the walk of the frames."""

    def __init__(self, fd: int, offset: int, length: int, frames: ZstdFrames) -> None:
        self._fd = fd
        self._offset = offset
        self._length = length
        self.frames = frames
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        left = self._length - self.count
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._offset + self.count)
        while 0 < len(data) < want:  # a file read short: only at its end (it was cut while walked)
            more = os.pread(self._fd, want - len(data), self._offset + self.count + len(data))
            if not more:
                break
            data += more
        if not data:
            self._length = self.count  # the file ended early: its end is the stream's
            return b""
        self.count += len(data)
        self.frames.feed(data)
        return data


class _Staged:
    """Batches decompressed while the walker held every room, in order, in a file of ``capacity`` bytes, one slot a
    batch (in the walk's private folder, never named, as the spool files: the system may write its pages out under
    memory pressure; a memory file when there is no folder); not mapped: no resident page of either process. A
    batch is copied into a room when one is given back, and sent from there as it would have been sent (the same
    pieces, counts and error)."""

    def __init__(self, capacity: int, room_bytes: int, folder: str = "") -> None:
        self._folder = folder
        self._room_bytes = room_bytes
        self._slots = capacity // room_bytes
        self._fd = -1
        self._free: list[int] = []
        self._scratch: memoryview | None = None  # where a batch is decompressed before it is written to its slot
        self._pieces: list[memoryview] = []  # its windows of inflow.PIECE bytes (fill)
        self.waiting: deque[tuple[int, Batch]] = deque()  # (slot, batch) in stream order

    def has_room(self) -> bool:
        if self._fd < 0 and self._slots:
            try:
                if self._folder:
                    with tempfile.TemporaryFile(dir=self._folder) as handle:
                        self._fd = os.dup(handle.fileno())
                    preallocate(self._fd, self._slots * self._room_bytes)
                else:
                    self._fd = os.memfd_create("licscan-unzstd-staged", os.MFD_CLOEXEC)
            except (OSError, AttributeError):
                self._slots = 0
            self._free = list(range(self._slots - 1, -1, -1))
            self._scratch = memoryview(bytearray(self._room_bytes))
            self._pieces = pieces_of(self._scratch)
        return bool(self._free)

    def fill(self, reader: BinaryIO, source: _Exact, stopped: Callable[[], bool]) -> Batch:
        """The next batch of the stream, decompressed into the next free slot."""
        assert self._scratch is not None
        batch = fill(reader, source, self._scratch, stopped, self._pieces)
        slot = self._free.pop()
        with self._scratch[: batch.size] as data:
            _write_all(self._fd, data, slot * self._room_bytes)
        self.waiting.append((slot, batch))
        return batch

    def take(self, target: memoryview) -> Batch:
        """The first batch waiting, copied into ``target`` (a room)."""
        slot, batch = self.waiting.popleft()
        with target[: batch.size] as data:
            got = 0
            while got < len(data):
                read = os.preadv(self._fd, [data[got:]], slot * self._room_bytes + got)
                if read <= 0:
                    raise OSError("the staged batches of the zstd stream are cut short")
                got += read
        self._free.append(slot)
        batch.view = target
        return batch

    def close(self) -> None:
        for piece in self._pieces:
            piece.release()
        if self._scratch is not None:
            self._scratch.release()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: memoryview, offset: int) -> None:
    written = 0
    while written < len(data):
        written += os.pwrite(fd, data[written:], offset + written)


def serve(sock_fd: int, shm_fd: int, parent: int, batch: int, ahead: int, staged: int) -> None:
    """The child: the streams it is sent, one after the other, until told to quit or the walker is gone; its
    batches are the walker's (``batch`` bytes, ``ahead`` rooms); up to ``staged`` bytes of batches wait for a room
    (:class:`_Staged`)."""
    from licscan.workers import die_with_parent

    die_with_parent(parent)
    inflow.BATCH, inflow.AHEAD = batch, ahead
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the walker's to handle: it ends this process
    shm = mmap.mmap(shm_fd, 0)
    os.close(shm_fd)
    sock = socket.socket(fileno=sock_fd)
    conn = Connection(os.dup(sock_fd))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "quit":
            return
        if message[0] == "stream":
            fd = recvfds(sock, 1)[0]
            try:
                _stream(conn, sock, shm, _Exact(fd, int(message[1]), int(message[2]), ZstdFrames(int(message[2]))),
                        staged, str(message[3]))
            finally:
                os.close(fd)
        # nothing else is sent between two streams


def _stream(conn: Connection, sock: socket.socket, shm: mmap.mmap, source: _Exact, staged_bytes: int,
            folder: str) -> None:
    # compressed.open_stream's reader, over the bytes read from the file
    reader = zstandard.ZstdDecompressor().stream_reader(cast(BinaryIO, source), read_size=ZSTD_READ_SIZE,
                                                        read_across_frames=True, closefd=False)
    room_bytes = batch_bytes()
    flag = len(shm) - 1
    view = memoryview(shm)
    send = Sender(conn)  # this thread's and the writer's (the members written to their spool files: offload.py)
    writer = Writer(view, room_bytes, send)
    told = Told(conn, sock, list(range(inflow.AHEAD - 1, -1, -1)), writer)
    staged = _Staged(staged_bytes, room_bytes, folder)
    decompressed = False  # the stream's last batch was decompressed (into a room or staged)
    pieces: dict[int, list[memoryview]] = {}  # each room's windows of inflow.PIECE bytes (fill)

    def stopped() -> bool:
        return shm[flag] != 0

    try:
        while not stopped():
            told.poll()
            room = told.room_now()
            if room is None and not decompressed and told.walker_holds_all() and staged.has_room():
                decompressed = staged.fill(reader, source, stopped).last
                continue
            if room is None:
                room = told.room(stopped)
                if room is None:
                    break
            target = view[room * room_bytes : (room + 1) * room_bytes]
            if staged.waiting:
                batch = staged.take(target)
            else:
                cut = pieces.get(room)
                if cut is None:
                    cut = pieces[room] = pieces_of(target)
                batch = fill(reader, source, target, stopped, cut)
            writer.filled(room, batch.size)
            send(("batch", room, array.array("q", batch.ends).tobytes(), array.array("q", batch.counts).tobytes(),
                  _portable(batch.error), batch.last))
            if batch.last:
                break
        while not told.stop:  # the members in the batches sent are written until the walker is done with them
            told.handle(conn.recv())
    finally:
        writer.close()
        staged.close()
        for cut in pieces.values():
            for piece in cut:
                piece.release()
        view.release()
    frames = source.frames
    result = frames.result
    send(("end", frames.done, None if result is None else (result.kind.value, result.message, result.offset)))
