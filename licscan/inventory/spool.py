"""Holding one archive member while it is inspected: ``bytes`` when small, else a read-only mmap of a file in a
private temporary folder (never in the scanned tree), removed with the walk -- also on errors and generator close.

Memory stays bounded however deep archives nest (docs/security.md: eight nested ``.tar.zst`` levels of ~60 MiB
each were all held in memory at once, 600 MB): a member is kept in memory only while the members held in memory
at once stay within ``in_memory_total_bytes``; others are spooled, and the pages of the mappings being read are
given back (``drop_pages``) as reading goes on.

Every byte read is checked against the limits as it arrives, so a bomb is stopped after at most
``max(ratio_floor_bytes, max_ratio * packed)`` bytes or ``max_member_seconds`` of inflating, not after it has been
inflated.
"""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import BinaryIO

from licscan.binary.paged import PagedMap
from licscan.inventory.entries import Reader
from licscan.inventory.limits import WalkLimits
from licscan.inventory.offload import Offloaded

CHUNK = 1 << 20
DROP_EVERY = 16 << 20  # bytes read between two calls of the drop_pages callback
READ_AHEAD_SLACK = 64 * 1024  # compressed bytes a decompressor may have consumed ahead of a member's start


# A spool file gets the blocks of the member's declared size before it is written (up to this), its size unchanged
# (Linux fallocate(2) with FALLOC_FL_KEEP_SIZE): writing 450 MiB into it cost 0.07-0.09 s of system time against
# 0.11-0.37 s growing it write by write (ext4, this machine, under load).
PREALLOCATE_MAX = 2 << 30
_KEEP_SIZE = 0x01  # FALLOC_FL_KEEP_SIZE, <linux/falloc.h>


def preallocate(fd: int, length: int) -> None:
    """Give the file at ``fd`` the blocks of ``length`` bytes, its size unchanged; nothing where the system cannot
    (not Linux, a file system without fallocate, no space: the writes then allocate as they go)."""
    fallocate = getattr(_LIBC, "fallocate", None) if _LIBC is not None else None
    if fallocate is not None and length > 0:
        fallocate(fd, _KEEP_SIZE, ctypes.c_long(0), ctypes.c_long(length))


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True) if os.uname().sysname == "Linux" else None
    except OSError:
        return None


_LIBC = _libc()


class LimitExceeded(Exception):
    """A configured limit refused a member; ``walk_over`` marks the whole-walk budget (nothing more is read)."""

    def __init__(self, message: str, *, walk_over: bool = False):
        super().__init__(message)
        self.walk_over = walk_over


@dataclass
class Budget:
    """Counters over the whole walk."""

    limits: WalkLimits
    total: int = 0
    members: int = 0
    path_bytes: int = 0

    def charge(self, count: int) -> None:
        self.total += count
        if self.total > self.limits.max_total_bytes:
            raise LimitExceeded(f"total uncompressed bytes over the limit of {self.limits.max_total_bytes}",
                                walk_over=True)

    def count_member(self, path_bytes: int = 0) -> None:
        """One more archive member, whose virtual path has ``path_bytes`` characters (the scan keeps every member's
        path: a million members, or members with 4 KB names, are memory the limits must bound)."""
        self.members += 1
        self.path_bytes += path_bytes
        if self.members > self.limits.max_members:
            raise LimitExceeded(f"more than {self.limits.max_members} archive members (--max-members)",
                                walk_over=True)
        if self.path_bytes > self.limits.max_path_bytes:
            raise LimitExceeded(f"the paths of the archive members walked exceed {self.limits.max_path_bytes} "
                                f"characters in all", walk_over=True)


class Held:
    """One member's bytes: ``data`` is ``bytes`` or a read-only ``mmap``; valid until :meth:`release`. ``sha256``:
    their hex digest when it was computed while they were spooled (:meth:`Spool.hold`)."""

    def __init__(self, data: bytes | mmap.mmap, size: int, spool: Spool | None = None,
                 sha256: str | None = None) -> None:
        self._data: bytes | mmap.mmap | None = data
        self.size = size
        self._spool = spool  # set for bytes held in memory: given back to its in-memory total on release
        self.sha256 = sha256

    @property
    def data(self) -> bytes | mmap.mmap:
        if self._data is None:
            raise ValueError("member bytes used after release")
        return self._data

    def release(self) -> None:
        data, self._data = self._data, None
        if self._spool is not None:
            self._spool.in_memory -= self.size
            self._spool = None
        if isinstance(data, mmap.mmap):
            try:
                data.close()
            except BufferError:
                pass  # a consumer still holds a view: the mapping goes with its last reference (the file is unlinked)


class Sha256:
    """The sha256 of a member being spooled, computed by ``hasher`` (one thread: the pieces in order) beside the
    thread that reads the member: hashlib gives up the GIL while it hashes, so the reader goes on inflating (an
    image layer's thread spent 1.7 of its 7.8 s hashing). At most ``PENDING`` pieces wait to be hashed. A window of
    a streamed tar's batch buffer (inflow.py) is hashed by the reading thread at once, as it is written: the buffer
    is decompressed into again once read, and a copy for the hasher cost more CPU than it gained in wall time."""

    PENDING = 8

    def __init__(self, hasher: Executor | None) -> None:
        self._sha = hashlib.sha256()
        self._hasher = hasher
        self._pending: deque[Future[None]] = deque()

    def update(self, piece: bytes | memoryview) -> None:
        """Hash ``piece`` next: ``bytes`` by the hasher; a window of a buffer that is reused once read (Inflow's)
        here, now, after the pieces before it."""
        if self._hasher is None or isinstance(piece, memoryview):
            while self._pending:
                self._pending.popleft().result()
            self._sha.update(piece)
            return
        while len(self._pending) >= self.PENDING:
            self._pending.popleft().result()
        self._pending.append(self._hasher.submit(self._sha.update, piece))

    def hexdigest(self) -> str:
        while self._pending:
            self._pending.popleft().result()
        return self._sha.hexdigest()


# Whether a spooled member is hashed while written: a flag, or a function asked only when the member is spooled (a
# member kept in memory is never hashed here: a streamed tar's thread asked the catalog's name pattern of every
# member, 8 % of its time on torch's 11,000 small members).
Digest = bool | Callable[[], bool]


def _asked(digest: Digest) -> bool:
    return digest() if callable(digest) else digest


class _Out:
    """Where :meth:`Spool.hold` puts a member's bytes: kept in memory, then (past the bounds) written to a spool file
    and hashed there; or, offloaded, not at all: the process that decompresses them writes and hashes them from
    the same memory (offload.py) and :meth:`held` waits for its answer."""

    def __init__(self, spool: Spool, digest: Digest, offloaded: tuple[BinaryIO, Offloaded] | None) -> None:
        self._spool = spool
        self._digest = digest
        self.kept: list[bytes] = []
        self.spill: BinaryIO | None = None
        self.sha: Sha256 | None = None
        self._offloaded: Offloaded | None = None
        if offloaded is not None:
            self.spill, self._offloaded = offloaded

    def to_file(self) -> None:
        self.spill, self.sha = self._spool._spill(self.kept, _asked(self._digest))
        self.kept = []

    def put(self, chunk: Sequence[bytes | memoryview]) -> None:
        if self._offloaded is not None:
            return
        for part in chunk:
            if self.spill is None:
                self.kept.append(part if type(part) is bytes else bytes(part))
            else:
                self.spill.write(part)
                if self.sha is not None:
                    self.sha.update(part)

    def held(self, size: int) -> Held:
        if self.spill is None:
            self._spool.in_memory += size
            return Held(self.kept[0] if len(self.kept) == 1 else b"".join(self.kept), size, self._spool)
        self.spill.flush()
        sha256 = self.sha.hexdigest() if self.sha is not None else None
        if self._offloaded is not None:
            offloaded, self._offloaded = self._offloaded, None
            written, sha256 = offloaded.result()
            if written != size:
                raise OSError(f"the spool file has {written} of the member's {size} bytes")
        # PagedMap: searches over a large member (a 700 MB library in an image layer) drop the pages they passed
        return Held(PagedMap(self.spill.fileno(), 0, access=mmap.ACCESS_READ), size, sha256=sha256)

    def close(self) -> None:
        if self._offloaded is not None:
            self._offloaded.cancel()  # not read to its end: the process stops writing it
        if self.spill is not None:
            self.spill.close()  # unlinked on open: the mapping keeps the data until released


class Spool:
    """The private temporary folder of one walk (created on first use). ``hasher``: the thread that hashes the
    members spooled with ``hold(digest=True)``."""

    def __init__(self, limits: WalkLimits, drop_pages: Callable[[], None] | None = None,
                 hasher: Executor | None = None) -> None:
        self.limits = limits
        self.hasher = hasher
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._count = 0
        self.in_memory = 0  # bytes of the members held in memory now (nested archives hold one member a level)
        self._drop_pages = drop_pages  # called every DROP_EVERY bytes read: the mappings read from give pages back

    @property
    def path(self) -> str | None:
        return self._dir.name if self._dir is not None else None

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def hold(self, reader: Reader, budget: Budget, *, charge: bool = True, packed: int | Callable[[], int] | None = None,
             declared: int | None = None, digest: Digest = False,
             offload: Callable[[int, bool], Offloaded | None] | None = None) -> Held:
        """Read ``reader`` to its end within the limits. ``packed`` is the member's compressed size, or a function
        giving the compressed bytes consumed so far by the stream it comes from; ``charge`` False when the stream
        below already charged the budget. ``digest`` (or a function asked once the member is spooled): a spooled
        member's sha256 is computed as its bytes are written (:attr:`Held.sha256`), so the RECORD comparison that needs it does not read the spool file again
        (a member kept in memory is hashed where needed, from memory). A reader with ``read_parts`` (a streamed
        tar's member, inflow.py) hands its bytes over as windows of its buffers: written to the spool file from
        there, or copied once into the bytes kept in memory. ``declared``: the size the member's header declares, when
        known: the spool file gets its blocks ahead of the writes (:meth:`_allocate`)."""
        limits = self.limits
        start = packed() if callable(packed) else 0
        # Parts of the member (Inflow's windows, or what ``read`` returned): kept in memory as bytes, one copy
        read_parts = getattr(reader, "read_parts", None)
        out = _Out(self, digest, self._offload(offload, declared, digest))
        size = 0
        allocated = 0  # bytes of the spool file given their blocks ahead (_allocate)
        last_drop = 0
        deadline = time.monotonic() + limits.max_member_seconds if limits.max_member_seconds else None
        try:
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    raise LimitExceeded(f"inflating took longer than {limits.max_member_seconds:g} seconds "
                                        f"({size} bytes read)")
                chunk = read_parts(CHUNK) if read_parts is not None else (reader.read(CHUNK),)
                got = sum(len(part) for part in chunk)
                if not got:
                    break
                size += got
                if charge:
                    budget.charge(got)
                self._check(size, packed, start)
                if size - last_drop >= DROP_EVERY and self._drop_pages is not None:
                    last_drop = size
                    self._drop_pages()
                if out.spill is None and (size > limits.in_memory_bytes
                                          or self.in_memory + size > limits.in_memory_total_bytes):
                    out.to_file()
                if out.spill is not None and declared and size > allocated // 2 and allocated < declared:
                    allocated = self._allocate(out.spill, size, declared, allocated)
                out.put(chunk)
            return out.held(size)
        finally:
            out.close()

    def _offload(self, offload: Callable[[int, bool], Offloaded | None] | None, declared: int | None,
                 digest: Digest) -> tuple[BinaryIO, Offloaded] | None:
        """The spool file of a member spooled from its first byte (``in_memory_bytes`` 0: a large member read by a
        thread, member.py), when the process that decompresses it writes and hashes it (``offload``: a streamed
        tar's member, offload.py)."""
        if offload is None or self.limits.in_memory_bytes or not declared:
            return None
        spill = self._file()
        try:
            job = offload(spill.fileno(), _asked(digest))
        except OSError:  # the process is gone: the member's read ends with the stream's error
            job = None
        if job is None:
            spill.close()
            return None
        return spill, job

    def _allocate(self, spill: BinaryIO, size: int, declared: int, allocated: int) -> int:
        """Give the spool file of a member of ``declared`` bytes, ``size`` of them read, the blocks of the next
        bytes ahead (:func:`preallocate`): up to four times what was read, so that a header that lies about its
        size reserves at most that much disk."""
        want = min(declared, self.limits.max_member_bytes, PREALLOCATE_MAX, 4 * size)
        if want > allocated:
            preallocate(spill.fileno(), want)
        return max(want, allocated, size)

    def _check(self, size: int, packed: int | Callable[[], int] | None, start: int) -> None:
        """The limits of a member of which ``size`` bytes were read (``start``: ``packed()`` when it began)."""
        limits = self.limits
        if size > limits.max_member_bytes:
            raise LimitExceeded(f"member larger than the limit of {limits.max_member_bytes} bytes")
        if size > limits.ratio_floor_bytes and packed is not None:
            compressed = (packed() - start + READ_AHEAD_SLACK) if callable(packed) else packed
            if size > limits.max_ratio * max(compressed, 1):
                raise LimitExceeded(f"compression ratio over {limits.max_ratio:g} "
                                    f"({size} bytes from {compressed} compressed bytes, still inflating)")

    def _spill(self, kept: list[bytes], digest: bool) -> tuple[BinaryIO, Sha256 | None]:
        """A spool file holding the ``kept`` bytes of a member (hashed with ``digest``), to write the rest to."""
        spill = self._file()
        sha = Sha256(self.hasher) if digest else None
        for part in kept:
            spill.write(part)
            if sha is not None:
                sha.update(part)
        return spill, sha

    def folder(self) -> str:
        """The private folder, created on first use."""
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="licscan-spool-")
        return self._dir.name

    def _file(self) -> BinaryIO:
        folder = self.folder()
        self._count += 1
        path = os.path.join(folder, f"member-{self._count}")
        handle = open(path, "w+b")
        os.unlink(path)
        return handle
