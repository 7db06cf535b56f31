"""A streamed tar's large members written to their spool files by the process that decompresses the tar's zstd
stream (unzstd.py), rather than by the tar's thread in the walker's process.

Why: profiled on the OCI image of the CUDA environment (zstd layers, 4.5 GB of members, most of them spooled),
the walker's tar thread spent 40 % of its samples writing spool files and 18 % hashing them, each write and each
hash a round trip for the GIL against the thread that examines the files; the process that decompressed those
bytes already has them in memory.

What changes, and what does not: the walker still reads every byte of the member from the shared memory, in the
same pieces, charging the same budget and checking the same limits at the same bytes (``Spool.hold``); only the
``write`` of each part to the spool file and its sha256 happen in the child, from the same memory, before that
memory is given back. The walker asks for a member when it has read its header and none of its bytes
(:class:`Writer` in the child: ``add``); the rooms holding bytes of the member are given back only after that
request (the walker gives a room back once it read past it), so the child writes each byte of the member before
its room is decompressed into again. It answers once the last byte of the member is written (``offloaded``: bytes
written, their sha256 when asked, or the error that stopped the writes). The walker waits for that answer only
after it has read and checked the whole member itself; a member it stops reading (a limit, damage) is cancelled
(``unoffload``): the child writes at most the rooms decompressed ahead (``inflow.AHEAD`` batches) past the byte
where the walker stopped, as it decompresses at most that far ahead of it.

Measured (the same image, same-minute A/B on a loaded machine): CPU of the process tree 14.5-16.3 s before, 13.0-14.9
s after; the walker's process ~10-11 s before, ~5 s after; the child's decompressing thread 4.5-6.1 s, its writer
thread 2.8-3.1 s.
"""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.reduction import recvfds
from typing import Protocol, cast

# The bytes written and hashed at a time: each step is read twice (write, sha256) while it is in the processor's
# cache; writing and hashing 2 GiB took 2.0-2.3 s of CPU in steps of 64 KiB-1 MiB, 3.5-4.9 s in steps of 4 MiB.
STEP = 256 << 10
# What the child sends for one member: ("offloaded", id, bytes written, sha256 hex or None, error text or None)
Result = tuple[str, int, int, "str | None", "str | None"]


class _Answers(Protocol):
    """The lane that asked for the member (unzstd.ProcessLane)."""

    def offloaded(self, ident: int) -> tuple[object, ...]: ...

    def unoffload(self, ident: int) -> None: ...


class Offloaded:
    """The walker's side: a member being written to its spool file by the child (``Spool.hold(offload=...)``)."""

    def __init__(self, lane: _Answers, ident: int) -> None:
        self._lane = lane
        self._ident = ident

    def result(self) -> tuple[int, str | None]:
        _, _, written, digest, error = self._lane.offloaded(self._ident)
        if error is not None or not isinstance(written, int):
            raise OSError(str(error))
        return written, digest if isinstance(digest, str) else None

    def cancel(self) -> None:
        self._lane.unoffload(self._ident)


class _Job:
    """One member: the stream's bytes ``[start, end)`` written to ``fd`` at ``offset - start``, in order."""

    def __init__(self, ident: int, fd: int, start: int, size: int, digest: bool) -> None:
        self.ident = ident
        self.fd = fd
        self.start = start
        self.end = start + size
        self.next = start  # the next byte of the stream to write
        self.sha = hashlib.sha256() if digest else None
        self.error: str | None = None

    def take(self, data: memoryview, at: int) -> bool:
        """Write what of ``data`` (the stream's bytes from ``at``) is the member's; True when the job ended."""
        low, high = max(self.next, at), min(self.end, at + len(data))
        if high > low:
            if low > self.next:  # never: a room with bytes of the member was given back before the request
                self.error = "the zstd decompression process lost part of the member"
                return True
            try:
                for step in range(low, high, STEP):  # written, then hashed while in the processor's cache
                    with data[step - at : min(step + STEP, high) - at] as part:
                        written = 0
                        while written < len(part):
                            written += os.pwrite(self.fd, part[written:], step - self.start + written)
                        if self.sha is not None:
                            self.sha.update(part)
            except OSError as error:
                self.error = f"cannot write the spool file: {error}"
                return True
            self.next = high
        return self.next >= self.end

    def result(self) -> Result:
        digest = self.sha.hexdigest() if self.sha is not None and self.error is None else None
        return ("offloaded", self.ident, self.next - self.start, digest, self.error)


class Writer:
    """The child's side: a thread that writes (and hashes) the members' bytes from the rooms, in stream order, while
    the child's main thread decompresses the next batches (both give the GIL up for their C work: ``pwrite``,
    sha256, zstd). A room given back by the walker is decompressed into again only once the thread is done with it
    (:meth:`reusable`)."""

    def __init__(self, view: memoryview, room: int, send: Callable[[tuple[object, ...]], None]) -> None:
        self._view = view
        self._room = room
        self._send = send  # the child's connection to the walker (thread-safe)
        self._sent: dict[int, tuple[int, int]] = {}  # room -> (stream offset, bytes) of the batches not given back
        self._position = 0  # the stream's bytes decompressed so far
        self._jobs: list[_Job] = []
        self._work: queue.SimpleQueue[tuple[object, ...]] = queue.SimpleQueue()
        self._out: set[int] = set()  # rooms filled and not given back (the main thread's view)
        self._last_use: dict[int, int] = {}  # room -> the last item put that may read it
        self._queued = 0  # items put (the main thread's count)
        self._done = 0  # items done (the thread's)
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------- the child's main thread
    def filled(self, room: int, size: int) -> None:
        """A batch of ``size`` bytes was decompressed into ``room``."""
        self._out.add(room)
        self._put(("filled", room, size), (room,))

    def add(self, ident: int, fd: int, start: int, size: int, digest: bool) -> None:
        """A member to write: its bytes in the batches already sent first, the rest as they come."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="licscan-offload", daemon=True)
            self._thread.start()
        self._put(("add", _Job(ident, fd, start, size, digest)), self._out)

    def freed(self, room: int) -> None:
        self._out.discard(room)
        self._put(("freed", room), ())

    def cancel(self, ident: int) -> None:
        self._put(("cancel", ident), ())

    def reusable(self, room: int, wait: bool) -> bool:
        """Whether the thread is done with ``room`` (given back by the walker), waiting until it is with ``wait``."""
        with self._idle:
            while self._thread is not None and self._done < self._last_use.get(room, 0):
                if not wait:
                    return False
                self._idle.wait()
        return True

    def close(self) -> None:
        """Stop the thread (the members not written to their end are abandoned) and close their files."""
        if self._thread is not None:
            self._work.put(("close",))
            self._thread.join()
            self._thread = None
        for job in list(self._jobs):
            self._end(job)

    def _put(self, item: tuple[object, ...], rooms: Iterable[int]) -> None:
        if self._thread is None:  # no member asked for yet: only where the batches are, here
            self._do(item)
            return
        with self._idle:
            self._queued += 1
            for room in rooms:
                self._last_use[room] = self._queued
        self._work.put(item)

    # ---------------------------------------------------------------------------------------------- the thread
    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item[0] == "close":
                return
            self._do(item)
            with self._idle:
                self._done += 1
                self._idle.notify_all()

    def _do(self, item: tuple[object, ...]) -> None:
        kind = item[0]
        if kind == "filled":
            room, size = cast(tuple[int, int], item[1:])
            at, self._position = self._position, self._position + size
            self._sent[room] = (at, size)
            self._feed(self._jobs, room, at, size)
        elif kind == "freed":
            self._sent.pop(cast(int, item[1]), None)
        elif kind == "add":
            job = cast(_Job, item[1])
            self._jobs.append(job)
            for room, (at, length) in sorted(self._sent.items(), key=lambda entry: entry[1][0]):
                if job not in self._jobs:
                    break
                self._feed([job], room, at, length)
        elif kind == "cancel":
            for job in [job for job in self._jobs if job.ident == item[1]]:
                self._end(job)

    def _feed(self, jobs: list[_Job], room: int, at: int, size: int) -> None:
        if not jobs:
            return
        data = self._view[room * self._room : room * self._room + size]
        try:
            for job in list(jobs):
                if job.take(data, at):
                    self._send(job.result())
                    self._end(job)
        finally:
            data.release()

    def _end(self, job: _Job) -> None:
        self._jobs.remove(job)
        os.close(job.fd)


class Sender:
    """The child's connection to the walker, sent on by its main thread and by the writer's."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, message: tuple[object, ...]) -> None:
        with self._lock:
            self._conn.send(message)


class Told:
    """The walker's messages about the stream being decompressed (in the child's main thread): rooms given back,
    members to write, stop."""

    def __init__(self, conn: Connection, sock: socket.socket, free: list[int], writer: Writer) -> None:
        self._conn = conn
        self._sock = sock
        self._free = free  # rooms to decompress into
        self._given_back: list[int] = []  # rooms given back by the walker, maybe still being written from
        self._writer = writer
        self.stop = False

    def poll(self) -> None:
        while self._conn.poll():
            self.handle(self._conn.recv())

    def room_now(self) -> int | None:
        """A room to decompress the next batch into, if one is free or given back and the writer is done with it;
        None without waiting."""
        if not self._free:
            ready = next((room for room in self._given_back if self._writer.reusable(room, wait=False)), None)
            if ready is None:
                return None
            self._given_back.remove(ready)
            self._free.append(ready)
        return self._free.pop()

    def walker_holds_all(self) -> bool:
        """Whether every room is with the walker (none is free or only waiting for the writer)."""
        return not self._free and not self._given_back

    def room(self, stopped: Callable[[], bool]) -> int | None:
        """A room to decompress the next batch into (None: stopped): one the walker gave back and the writer is
        done with, waiting for the first given back if need be."""
        while not self._free and not stopped():
            ready = [room for room in self._given_back if self._writer.reusable(room, wait=False)]
            if not ready and self._given_back and self._writer.reusable(self._given_back[0], wait=True):
                ready = [self._given_back[0]]
            if ready:
                self._free.append(ready[0])
                self._given_back.remove(ready[0])
            else:
                self.handle(self._conn.recv())
        return None if stopped() else self._free.pop()

    def handle(self, message: tuple[object, ...]) -> None:
        kind = message[0]
        if kind == "free" and isinstance(message[1], int):
            self._given_back.append(message[1])
            self._writer.freed(message[1])
        elif kind == "offload":
            fd = recvfds(self._sock, 1)[0]
            _, ident, start, size, digest = message
            assert isinstance(ident, int) and isinstance(start, int) and isinstance(size, int)
            self._writer.add(ident, fd, start, size, bool(digest))
        elif kind == "unoffload" and isinstance(message[1], int):
            self._writer.cancel(message[1])
        elif kind == "stop":
            self.stop = True
