"""The decompressed stream of a compressed tar, decompressed by a thread of its own ahead of the thread that reads
the tar (pipe.py): the decompressors give up the GIL while they work, so one core decompresses while the other
reads the tar's headers, spools its members and examines them.

The tar's thread must see what it saw when it decompressed the stream itself. tarfile read a stream (``r|``) in
blocks of ``PIECE`` (10240) bytes; each read charged the walk's budget when it was made and was followed by the
count of compressed bytes consumed so far (what the ratio checks divide by); a decompressor's error ended the read
it happened in. So the thread reads the stream in those same pieces and notes after each the compressed count; it
hands them on in batches of about ``BATCH`` bytes, at most ``AHEAD`` batches ahead (memory stays bounded). The
tar's thread reads :class:`Inflow` directly (``tar_entries(direct=InflowTar)``, a plain member's bytes straight from
it: :class:`_Member`): a piece is charged when a byte of it is first read, :meth:`Inflow.packed` is the count noted after the last piece reached, and the decompressor's error is
raised by the read that reaches past the last piece read before it.
"""

from __future__ import annotations

import bisect
import queue
import sys
import tarfile
import threading
from dataclasses import dataclass, field

from licscan.inventory.compressed import CountingReader
from licscan.inventory.entries import Reader, TarSource
from licscan.inventory.member import Tally

PIECE = tarfile.RECORDSIZE  # tarfile's stream block: the reads of the sequential walk
BATCH = 1 << 20  # decompressed bytes handed on together (whole pieces)
AHEAD = 8  # batches decompressed and not yet read, at most


@dataclass
class _Batch:
    """Consecutive pieces of the stream; ``error``/``last``: the stream ended (with that error) after them."""

    pieces: list[bytes] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # where each piece ends, from the start of the batch
    counts: list[int] = field(default_factory=list)  # compressed bytes consumed once the piece was read
    error: BaseException | None = None
    last: bool = False

    @property
    def size(self) -> int:
        return self.ends[-1] if self.ends else 0


class Inflow:
    """``stream`` (decompressing what it reads through ``raw``) read ahead by a thread, read here as the sequential
    walk read it, charging ``tally`` (pipe.py's) piece by piece. :meth:`close` stops the thread: call it before the
    buffer ``raw`` reads from is released."""

    def __init__(self, stream: Reader, raw: CountingReader, tally: Tally) -> None:
        self._stream = stream
        self._raw = raw
        self._tally = tally
        self._filled: queue.SimpleQueue[_Batch] = queue.SimpleQueue()
        self._room = threading.Semaphore(AHEAD)
        self._stop = threading.Event()
        self._batch = _Batch()
        self._at = 0  # bytes of the batch read
        self._charged = 0  # pieces of the batch charged
        self._pos = 0  # bytes of the stream read
        self._packed = 0
        self._thread = threading.Thread(target=self._run, name="licscan-inflow", daemon=True)
        self._thread.start()

    def packed(self) -> int:
        """The compressed bytes consumed when the stream had been read as far as it is here."""
        return self._packed

    def read(self, size: int = -1, /) -> bytes:
        out: list[bytes] = []
        want = size if size >= 0 else sys.maxsize
        while want > 0:
            if self._at == self._batch.size and not self._next_batch():
                break
            batch, at = self._batch, self._at
            end = min(at + want, batch.size)
            first = bisect.bisect_right(batch.ends, at)  # the piece holding byte ``at``
            last = bisect.bisect_left(batch.ends, end)  # the piece holding byte ``end - 1``
            if last >= self._charged:
                self._charge(batch, last)
            start = batch.ends[first] - len(batch.pieces[first])
            if first == last:
                piece = batch.pieces[first]
                out.append(piece if end - at == len(piece) else piece[at - start : end - start])
            else:
                out.append(batch.pieces[first][at - start :])
                out.extend(batch.pieces[first + 1 : last])
                out.append(batch.pieces[last][: end - (batch.ends[last] - len(batch.pieces[last]))])
            want -= end - at
            self._at = end
        data = out[0] if len(out) == 1 else b"".join(out)
        self._pos += len(data)
        return data

    def _charge(self, batch: _Batch, last: int) -> None:
        """Charge the pieces reached up to ``last``, one by one (as ``Tally.charge`` does for each)."""
        sizes = [batch.ends[k] - (batch.ends[k - 1] if k else 0) for k in range(self._charged, last + 1)]
        self._tally.total += sum(sizes)
        if self._tally.reads is not None:
            self._tally.reads.extend(sizes)
        self._charged = last + 1
        self._packed = batch.counts[last]

    def _next_batch(self) -> bool:
        """Move to the next batch; False at the end of the stream; raises the stream's error there."""
        if self._batch.last:
            if self._batch.error is not None:
                raise self._batch.error
            return False
        if self._batch.ends:
            self._room.release()  # read: the thread may decompress one more
        self._batch = self._filled.get()
        self._at = self._charged = 0
        return True

    def tell(self) -> int:
        return self._pos

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
        self._stop.set()
        self._room.release()
        self._thread.join()

    def _run(self) -> None:
        """The thread: batches until the end of the stream, its error, or :meth:`close`."""
        while True:
            self._room.acquire()
            if self._stop.is_set():
                return
            batch = self._fill()
            self._filled.put(batch)
            if batch.last:
                return

    def _fill(self) -> _Batch:
        batch = _Batch()
        size = 0
        try:
            while size < BATCH and not self._stop.is_set():
                piece = self._stream.read(PIECE)
                if not piece:
                    batch.last = True
                    break
                size += len(piece)
                batch.pieces.append(piece)
                batch.ends.append(size)
                batch.counts.append(self._raw.count)
        except BaseException as error:  # noqa: BLE001 - raised by the read that reaches it, in the tar's thread
            batch.error, batch.last = error, True
        return batch


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
        left = self._size - self._position
        size = left if size < 0 else min(size, left)
        if size <= 0:
            return b""
        self._stream.seek(self._offset + self._position)
        data = self._stream.read(size)
        if len(data) != size:
            raise tarfile.ReadError("unexpected end of data")
        self._position += size
        return data


def _open_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Reader:
    if info.issparse() or tar.fileobj is None:
        return tarfile.ExFileObject(tar, info)
    return _Member(tar.fileobj, info.offset_data, info.size)


class InflowTar(tarfile.TarFile):
    """tarfile's reader of a tar read from an :class:`Inflow`: plain members are read by :class:`_Member`."""

    fileobject = staticmethod(_open_member)  # type: ignore[assignment]  # extractfile calls fileobject(tar, info)
