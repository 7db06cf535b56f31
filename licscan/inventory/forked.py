"""The large members of a zip read by a forked process (the early lane of early.py): inflating, checking the CRC-32
and writing the spool file happen in a process that shares no GIL with the walker.

Why a process and not a thread: a thread that inflates gives the GIL up for every piece of C work (zlib-ng's
``decompress`` releases it for each block of its output buffer, ``crc32`` and the spool ``write`` once each) and
must get it back after each, while the walker's thread runs Python and yields it only every switch interval (5 ms,
``sys.getswitchinterval()``). Inflating the torch wheel's libtorch_cuda.so (479 MiB) and spooling it took 1.2-1.5 s
alone and 3.9-5.2 s beside one busy Python thread; the walker waited for it.

The child is forked from the walker when the zip is opened (it inherits the zip's buffer, its entries and the
limits: nothing of the zip is pickled) and reads the members it is sent, one after the other, exactly as a
thread does (:func:`licscan.inventory.member.read_member`: zipfile's check of the local header, one pass of
inflate and CRC-32, ``Spool.hold`` with every limit checked as the bytes arrive, the sha256 when asked). A spooled
member's file is created unlinked in the walk's private folder and its descriptor is passed back over the pipe
(SCM_RIGHTS), so no name is left behind if either process dies; an error goes back as the exception the read raised
(:func:`_portable`).

Failure is never a finding of its own: when the child cannot be started or dies, the members it did not hand back
are read by the walker itself (``result`` returns None), with the same bytes, errors and limits.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import pickle
import signal
import socket
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import recvfds, sendfds
from typing import BinaryIO

from licscan.binary.paged import PagedMap
from licscan.inventory.entries import ArchiveError, Entry
from licscan.inventory.limits import WalkLimits
from licscan.inventory.member import Done, member_limits, read_member
from licscan.inventory.spool import PREALLOCATE_MAX, Held, LimitExceeded, Spool, preallocate
from licscan.workers import die_with_parent, fork_context

JOIN_SECONDS = 5.0  # how long close() waits for the child to stop at its next piece before killing it

# What the child sends for one member: (index, size, sha256, bytes held in memory, error, bytes charged, whether a
# descriptor follows). An error that cannot be pickled is sent as None with size -1: the walker reads the member.
_Result = tuple[int, int, "str | None", "bytes | None", "object", int, bool]


def _portable(error: Exception | None) -> object:
    """``error`` as it crosses the pipe: the two exceptions whose ``__init__`` takes more than their message
    (pickle rebuilds an exception from its message alone) as a tuple :func:`_rebuilt` turns back into them."""
    if isinstance(error, ArchiveError):
        return ("ArchiveError", error.kind, error.message, error.offset)
    if isinstance(error, LimitExceeded):
        return ("LimitExceeded", str(error), error.walk_over)
    return error


def _rebuilt(sent: object) -> Exception | None:
    if isinstance(sent, tuple) and sent and sent[0] == "ArchiveError":
        return ArchiveError(sent[1], sent[2], sent[3])
    if isinstance(sent, tuple) and sent and sent[0] == "LimitExceeded":
        return LimitExceeded(sent[1], walk_over=sent[2])
    return sent if isinstance(sent, Exception) else None


class _Flags:
    """One byte per member in memory shared with the child: set when the walk no longer wants the member."""

    def __init__(self, count: int) -> None:
        self._map = mmap.mmap(-1, max(count, 1))  # anonymous and shared: the forked child sees every change

    def set(self, index: int) -> None:
        self._map[index] = 1

    def flag(self, index: int) -> _Flag:
        return _Flag(self._map, index)

    def close(self) -> None:
        self._map.close()


class _Flag:
    def __init__(self, shared: mmap.mmap, index: int) -> None:
        self._shared = shared
        self._index = index

    def is_set(self) -> bool:
        return self._shared[self._index] != 0


class _ChildSpool(Spool):
    """The spool of one member read by the child: its file is created unlinked in the walk's folder, and a
    descriptor of it is kept (``fd``) to be sent to the walker."""

    def __init__(self, limits: WalkLimits, drop_pages: Callable[[], None] | None, folder: str, declared: int) -> None:
        super().__init__(limits, drop_pages)  # no hasher thread: the child hashes as it writes
        self._folder = folder
        self._declared = declared
        self.fd: int | None = None

    def _file(self) -> BinaryIO:
        handle = tempfile.TemporaryFile(dir=self._folder)  # O_TMPFILE where the system has it: never named
        self.fd = os.dup(handle.fileno())
        preallocate(self.fd, min(self._declared, self.limits.max_member_bytes, PREALLOCATE_MAX))
        return handle


def _read_one(entry: Entry, limits: WalkLimits, drop_pages: Callable[[], None] | None, folder: str,
              flag: _Flag, digest: bool, index: int) -> tuple[_Result, int | None]:
    spool = _ChildSpool(member_limits(limits, entry), drop_pages, folder, entry.size or 0)
    done = read_member(entry, spool, flag, digest)
    held = done.held
    fd = spool.fd
    if held is None:
        if fd is not None:
            os.close(fd)
        return (index, 0, None, None, _portable(done.error), done.charged, False), None
    data = held.data
    result: _Result = (index, held.size, held.sha256, data if isinstance(data, bytes) else None, None,
                       done.charged, not isinstance(data, bytes))
    held.release()
    if isinstance(data, bytes) and fd is not None:
        os.close(fd)
        fd = None
    return result, fd


def _serve(conn: Connection, entries: Sequence[Entry], limits: WalkLimits, drop_pages: Callable[[], None] | None,
           folder: str, flags: _Flags, parent: int) -> None:
    """The child: read the members whose indexes arrive on ``conn``, in that order, until None or the end."""
    try:
        die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the walker's to handle: it ends this process
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            while True:
                try:
                    asked = conn.recv()
                except (EOFError, OSError):
                    return
                if asked is None:
                    return
                index, digest = asked
                result, fd = _read_one(entries[index], limits, drop_pages, folder, flags.flag(index), digest, index)
                try:
                    conn.send(result)
                except (pickle.PicklingError, TypeError, AttributeError):
                    conn.send((index, -1, None, None, None, 0, False))  # an error not pickled: the walker reads it
                    if fd is not None:
                        os.close(fd)
                    continue
                if fd is not None:
                    sendfds(sock, [fd])
                    os.close(fd)
    except BaseException:  # noqa: BLE001 - the walker sees the end of the pipe and reads what is left itself
        os._exit(1)
    os._exit(0)


class ForkedReader:
    """One forked process reading the members of ``entries`` (of one zip) it is sent, in the order sent."""

    def __init__(self, entries: Sequence[Entry], limits: WalkLimits, drop_pages: Callable[[], None] | None,
                 files: Spool) -> None:
        if fork_context() is None:
            raise OSError("no fork on this platform")
        context = multiprocessing.get_context("fork")
        self._flags = _Flags(len(entries))
        self._conn, child = context.Pipe()  # a socket pair: results, and descriptors beside them
        self._process = context.Process(target=_serve, name="licscan-inflate-early", daemon=True,
                                        args=(child, entries, limits, drop_pages, files.folder(), self._flags,
                                              os.getpid()))
        try:
            self._process.start()
        finally:
            child.close()
        self._sock = socket.socket(fileno=os.dup(self._conn.fileno()))
        self._sent: deque[int] = deque()  # sent and not yet received, in order
        self._got: dict[int, Done] = {}
        self._unwanted: set[int] = set()  # passed before their result arrived: released when it does
        self._broken = False

    def submit(self, index: int, digest: bool) -> None:
        if self._broken:
            return
        try:
            self._conn.send((index, digest))
        except OSError:
            self._break()
            return
        self._sent.append(index)

    def result(self, index: int) -> Done | None:
        """What the child read for member ``index`` (None: the walker reads it itself)."""
        while index not in self._got and self._sent and not self._broken:
            self._receive()
        return self._got.pop(index, None)

    def discard(self, index: int) -> None:
        """Member ``index`` is not wanted: the child stops reading it; what it read is released."""
        self._flags.set(index)
        done = self._got.pop(index, None)
        if done is not None:
            _release(done)
        elif index in self._sent:
            self._unwanted.add(index)

    def close(self) -> None:
        """Stop the child and release what it read and was not taken; it has ended when this returns."""
        for index in self._sent:
            self._flags.set(index)
        try:
            self._conn.send(None)
        except OSError:
            pass
        while self._sent and not self._broken:
            self._receive()
        for done in self._got.values():
            _release(done)
        self._got.clear()
        self._process.join(JOIN_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._sock.close()
        self._conn.close()
        self._flags.close()

    def _receive(self) -> None:
        expected = self._sent[0]
        try:
            index, size, sha256, data, error, charged, has_fd = self._conn.recv()
            fd = recvfds(self._sock, 1)[0] if has_fd else None
        except Exception:  # noqa: BLE001 - a damaged pipe or a result that does not unpickle: the walker reads
            self._break()
            return
        self._sent.popleft()
        if index != expected:
            if fd is not None:
                os.close(fd)
            self._break()
            return
        if size < 0:
            return  # not sent back: the walker reads it
        held = None
        if fd is not None:
            try:
                held = Held(PagedMap(fd, 0, access=mmap.ACCESS_READ), size, sha256=sha256)
            finally:
                os.close(fd)
        elif data is not None:
            held = Held(data, size)
        done = Done(held, _rebuilt(error), charged)
        if index in self._unwanted:
            self._unwanted.discard(index)
            _release(done)
        else:
            self._got[index] = done

    def _break(self) -> None:
        """The child is gone or the pipe is damaged: everything not received is read by the walker."""
        self._broken = True
        self._sent.clear()
        self._unwanted.clear()
        if self._process.is_alive():
            self._process.kill()


def _release(done: Done) -> None:
    if done.held is not None:
        done.held.release()
