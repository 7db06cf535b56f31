"""The decompressed stream of a compressed tar, decompressed by a thread of its own ahead of the thread that reads
the tar (pipe.py): the decompressors give up the GIL while they work, so one core decompresses while the other
reads the tar's headers, spools its members and examines them.

The tar's thread must see what it saw when it decompressed the stream itself. tarfile read a stream (``r|``) in
blocks of ``PIECE`` (10240) bytes; each read charged the walk's budget when it was made and was followed by the
count of compressed bytes consumed so far (what the ratio checks divide by); a decompressor's error ended the read
it happened in. So the thread reads the stream in those same pieces and notes after each the compressed count; it
hands them on in batches of about ``BATCH`` bytes, at most ``AHEAD`` batches ahead (memory stays bounded). A
batch's pieces are read into one buffer (zstandard's ``readinto`` of a piece reads the input its ``read`` of the
same size reads), reused once read: no object per piece, and no join or zeroing holding the GIL. The tar's thread
reads :class:`Inflow` directly (``tar_entries(direct=InflowTar)``, a plain member's bytes straight from it:
:class:`_Member`): a piece is charged when a byte of it is first read, :meth:`Inflow.packed` is the count noted
after the last piece reached, and the decompressor's error is raised by the read that reaches past the last piece
read before it.
"""

from __future__ import annotations

import bisect
import queue
import sys
import tarfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import zstandard

from licscan.inventory.entries import Reader, TarSource
from licscan.inventory.member import Tally
from licscan.inventory.offload import Offloaded

PIECE = tarfile.RECORDSIZE  # tarfile's stream block: the reads of the sequential walk
BATCH = 1 << 20  # decompressed bytes handed on together (whole pieces)
AHEAD = 8  # batches decompressed and not yet read, at most


@dataclass
class Batch:
    """Consecutive pieces of the stream, decompressed into one buffer (``view``: no object per piece, no join when
    they are read); ``error``/``last``: the stream ended (with that error) after them."""

    view: memoryview  # its pieces, then unused room
    ends: list[int] = field(default_factory=list)  # where each piece ends, from the start of the batch
    counts: list[int] = field(default_factory=list)  # compressed bytes consumed once the piece was read
    error: BaseException | None = None
    last: bool = False
    room: int = -1  # its room in the shared memory of a decompression process (unzstd.py); -1: a buffer of its own

    @property
    def size(self) -> int:
        return self.ends[-1] if self.ends else 0


_EMPTY = memoryview(b"")


class Counted(Protocol):
    """The reader of the compressed bytes (compressed.CountingReader, compressed.InPlace, unzstd.py's): ``count``
    bytes consumed by the decompressor so far."""

    count: int


class Lane(Protocol):
    """What decompresses the stream ahead of its reader: a thread (:class:`ThreadLane`) or a process (unzstd.py).
    ``rooms``: the batches it decompresses ahead, at most (the reader gives them back before it holds that many)."""

    rooms: int

    def get(self) -> Batch: ...

    def done(self, batch: Batch) -> None: ...

    def close(self) -> None: ...


def batch_bytes(batch: int | None = None) -> int:
    """The room of one batch: the pieces read while it is under ``batch`` (default BATCH) bytes."""
    return -(-(BATCH if batch is None else batch) // PIECE) * PIECE


def fill(stream: Reader, raw: Counted, target: memoryview, stop: Callable[[], bool],
         pieces: Sequence[memoryview] | None = None) -> Batch:
    """The next batch of ``stream``: pieces of ``PIECE`` bytes read into ``target`` (``readinto``: the
    decompressors read the same input for it as for ``read(PIECE)``: the same counts after each piece, the same error
    at the same piece). ``pieces``: ``target`` cut in windows of ``PIECE`` bytes, made once for every batch read
    into it (the windows of the zstd child's rooms: ``pieces_of``); the same reads, without a window made and
    released per piece (450,000 of them on an image's zstd layers: the child's decompressing thread is the walk's
    critical path)."""
    batch = Batch(target)
    readinto = _into(stream)
    size = 0
    ends, counts = batch.ends, batch.counts
    try:
        if pieces is not None:
            for piece in pieces:
                if size >= BATCH or stop():
                    return batch
                got = readinto(piece)
                if not got:
                    batch.last = True
                    return batch
                size += got
                ends.append(size)
                counts.append(raw.count)
                if got < PIECE:  # (the stream's end: zstandard's readinto fills its target) read on as below
                    break
        while size < BATCH and not stop():
            with target[size : size + PIECE] as piece:
                got = readinto(piece)
            if not got:
                batch.last = True
                break
            size += got
            ends.append(size)
            counts.append(raw.count)
    except BaseException as error:  # noqa: BLE001 - raised by the read that reaches it, in the tar's thread
        batch.error, batch.last = error, True
    return batch


def pieces_of(target: memoryview) -> list[memoryview]:
    """``target`` (a room of :func:`batch_bytes`) cut in windows of ``PIECE`` bytes, for :func:`fill`."""
    return [target[at : at + PIECE] for at in range(0, len(target) - PIECE + 1, PIECE)]


class ThreadLane:
    """A thread that decompresses ``stream`` up to ``AHEAD`` batches ahead."""

    def __init__(self, stream: Reader, raw: Counted) -> None:
        self._stream = stream
        self._raw = raw
        self._filled: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()  # rooms of batches read
        self.rooms = AHEAD
        self._room = threading.Semaphore(AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="licscan-inflow", daemon=True)
        self._thread.start()

    def get(self) -> Batch:
        return self._filled.get()

    def done(self, batch: Batch) -> None:
        """``batch`` was read and copied out: the thread may decompress one more, into its room."""
        self._free.put(batch.view)  # decompressed into again, not zeroed again (a memset of 1 MiB holding the GIL)
        self._room.release()

    def close(self) -> None:
        """Stop the thread (it ends at its next piece) and wait for it."""
        self._stop.set()
        self._room.release()
        self._thread.join()

    def _run(self) -> None:
        """The thread: batches until the end of the stream, its error, or :meth:`close`."""
        while True:
            self._room.acquire()
            if self._stop.is_set():
                return
            try:
                room = self._free.get_nowait()
            except queue.Empty:
                room = memoryview(bytearray(batch_bytes()))
            try:
                batch = fill(self._stream, self._raw, room, self._stop.is_set)
            except BaseException as error:  # noqa: BLE001 - the reader must not wait for a batch never put
                batch = Batch(room, error=error, last=True)
            self._filled.put(batch)
            if batch.last:
                return


class Inflow:
    """``stream`` (decompressing what it reads through ``raw``) read ahead by a thread, read here as the sequential
    walk read it, charging ``tally`` (pipe.py's) piece by piece. :meth:`close` stops the thread: call it before the
    buffer ``raw`` reads from is released."""

    def __init__(self, stream: Reader | None, raw: Counted | None, tally: Tally, *, lane: Lane | None = None) -> None:
        """``stream`` read through ``raw`` by a :class:`ThreadLane`, or by ``lane`` when given (unzstd.py)."""
        if lane is None:
            assert stream is not None and raw is not None
            lane = ThreadLane(stream, raw)
        self._lane = lane
        self._tally = tally
        self._batch = Batch(_EMPTY)
        self._at = 0  # bytes of the batch read
        self._charged = 0  # pieces of the batch charged
        self._pos = 0  # bytes of the stream read
        self._packed = 0
        self._spent: list[Batch] = []  # batches passed by this read: still seen by the parts it returned
        self._parts: list[memoryview] = []  # the parts of this read
        self.opened: _Member | None = None  # the plain member tarfile opened last (pipe.py has it offloaded)

    def packed(self) -> int:
        """The compressed bytes consumed when the stream had been read as far as it is here."""
        return self._packed

    def read(self, size: int = -1, /) -> bytes:
        parts = self.read_parts(size)
        data = parts[0].tobytes() if len(parts) == 1 else b"".join(parts)
        return data

    def read_parts(self, size: int = -1, /) -> list[memoryview]:
        """What :meth:`read` reads, as windows of the batches (no copy): valid until the next read."""
        self._give_back()  # the batches the read before passed: their rooms may be decompressed into again
        out = self._parts = []
        want = size if size >= 0 else sys.maxsize
        while want > 0:
            if self._at == self._batch.size and not self._next_batch():
                break
            batch, at = self._batch, self._at
            end = min(at + want, batch.size)
            last = bisect.bisect_left(batch.ends, end)  # the piece holding byte ``end - 1``
            if last >= self._charged:
                self._charge(batch, last)
            out.append(batch.view[at:end])
            want -= end - at
            self._at = end
            self._pos += end - at
        return out

    def _give_back(self) -> None:
        for batch in self._spent:
            self._lane.done(batch)
        self._spent.clear()

    def _charge(self, batch: Batch, last: int) -> None:
        """Charge the pieces reached up to ``last``, one by one (as ``Tally.charge`` does for each)."""
        ends = batch.ends
        start = ends[self._charged - 1] if self._charged else 0
        self._tally.total += ends[last] - start
        if self._tally.reads is not None:
            whole = last + 1 - self._charged
            if ends[last] - start == whole * PIECE:  # every piece whole (all but the stream's last are)
                self._tally.reads.extend([PIECE] * whole)
            else:
                self._tally.reads.extend(ends[k] - (ends[k - 1] if k else 0) for k in range(self._charged, last + 1))
        self._charged = last + 1
        self._packed = batch.counts[last]

    def _next_batch(self) -> bool:
        """Move to the next batch; False at the end of the stream; raises the stream's error there."""
        if self._batch.last:
            if self._batch.error is not None:
                raise self._batch.error
            return False
        if self._batch.ends:
            self._spent.append(self._batch)
        if len(self._spent) >= self._lane.rooms:  # the lane has no room left: the parts read so far are copied out
            self._parts[:] = [memoryview(b"".join(self._parts))] if self._parts else []
            self._give_back()
        self._batch = self._lane.get()
        self._at = self._charged = 0
        if not self._batch.ends:  # the stream ended (or failed) at the first piece of the batch
            if self._batch.error is not None:
                raise self._batch.error
            return False
        return True

    def tell(self) -> int:
        return self._pos

    def offload(self, start: int, size: int, fd: int, digest: bool) -> Offloaded | None:
        """The stream's bytes ``[start, start + size)``, none of them read yet, written to ``fd`` by the lane
        (unzstd.py's process: offload.py); None where the lane does not (a thread)."""
        offload: Callable[[int, int, int, bool], Offloaded | None] | None = getattr(self._lane, "offload", None)
        return offload(start, size, fd, digest) if offload is not None and start >= self._pos else None

    def seek(self, pos: int, /) -> int:
        """Forward only (as tarfile's own stream): the bytes before ``pos`` are read and passed."""
        if pos < self._pos:
            raise tarfile.StreamError("seeking backwards is not allowed")
        while self._pos < pos and self.read(min(pos - self._pos, BATCH)):
            pass
        return self._pos

    def write(self, data: bytes, /) -> int:
        raise OSError("a decompressed stream is read only")

    def close(self) -> None:
        """Stop the thread (it ends at its next piece) and wait for it."""
        self._lane.close()


def _into(stream: Reader) -> Callable[[memoryview], int]:
    """``stream.readinto``, where it reads the input ``read`` reads for the same size (zstandard's reader: the same C
    path); else ``read`` and a copy (bz2's ``readinto`` reads ahead of its ``read``)."""
    if isinstance(stream, zstandard.ZstdDecompressionReader):
        return stream.readinto

    def read_into(target: memoryview) -> int:
        piece = stream.read(len(target))
        target[: len(piece)] = piece
        return len(piece)

    return read_into


class _Member:
    """A plain (not sparse) member's bytes read straight from the stream, as tarfile's ``_FileInFile`` reads them
    (the same reads of the stream, the same error when it ends early), without ``io.BufferedReader``'s copy of
    every byte (4.5 GB on an image of the CUDA environment)."""

    def __init__(self, stream: TarSource, offset: int, size: int) -> None:
        self._stream = stream
        self._offset = offset
        self._size = size
        self._position = 0

    def read(self, size: int = -1, /) -> bytes:
        parts = self.read_parts(size)
        return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)

    def read_parts(self, size: int = -1, /) -> Sequence[bytes | memoryview]:
        """The member's next ``size`` bytes: windows of the stream's batches (Inflow.read_parts: Spool.hold writes
        them to its file with no copy), valid until the next read."""
        left = self._size - self._position
        size = left if size < 0 else min(size, left)
        if size <= 0:
            return []
        self._stream.seek(self._offset + self._position)
        parts: Sequence[bytes | memoryview] = self._stream.read_parts(size) if isinstance(self._stream, Inflow) \
            else [self._stream.read(size)]
        if sum(len(part) for part in parts) != size:
            raise tarfile.ReadError("unexpected end of data")
        self._position += size
        return parts

    def offload(self, fd: int, digest: bool) -> Offloaded | None:
        """The member written to ``fd`` by the process decompressing the stream (Inflow.offload), before any of
        its bytes is read here."""
        if self._position or not isinstance(self._stream, Inflow):
            return None
        return self._stream.offload(self._offset, self._size, fd, digest)


def _open_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Reader:
    stream = tar.fileobj
    if isinstance(stream, Inflow):
        stream.opened = None
    if info.issparse() or stream is None:
        return tarfile.ExFileObject(tar, info)
    member = _Member(stream, info.offset_data, info.size)
    if isinstance(stream, Inflow):
        stream.opened = member
    return member


class InflowTar(tarfile.TarFile):
    """tarfile's reader of a tar read from an :class:`Inflow`: plain members are read by :class:`_Member`."""

    fileobject = staticmethod(_open_member)  # type: ignore[assignment]  # extractfile calls fileobject(tar, info)
