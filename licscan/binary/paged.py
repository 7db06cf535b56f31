"""A read-only file mapping that does not stay resident (an installed CUDA environment of
4 GiB is audited within 256 MB of RSS for the whole process tree: benchmarks/bench_env.py).

Searching a mapping with ``find`` faults in every page it passes, and the kernel maps the cached neighbours of each
faulting page too ("fault-around"); those pages count in the process's resident set until the mapping is closed.
:class:`PagedMap` is an ``mmap`` whose long searches walk the mapping in windows and drop each window's pages
behind them (``madvise(MADV_DONTNEED)``: for a read-only file mapping the pages stay in the page cache and are
mapped again on the next touch, with the same bytes).

A small file is not mapped at all (:func:`file_bytes`): reading it whole costs less than mapping it, faulting its
pages in and unmapping them (an installed environment is 13,000 files, nine in ten under 16 KiB).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import stat
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from licscan.binary.buffer import Buffer, release_pages

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

Result = TypeVar("Result")

# Files up to this size are read into memory, larger ones mapped. Measured on the environment tree (12,846 files):
# open + read + close is a quarter of the CPU of open + mmap + first touch + munmap + close, up to 1 MiB.
SMALL_FILE = 256 << 10
HASH_READ = 1 << 20  # bytes read per pread() when a mapping's file is hashed from its descriptor


class PagedMap(mmap.mmap):
    """``mmap.mmap`` (read-only) whose ``find`` over more than :data:`WINDOW` bytes walks the mapping window by
    window and drops each window's pages behind it, so searching a 1 GB library costs one window of resident memory,
    not 1 GB (a worker reached 747 MB on cuBLASLt and cuDNN). Whole-file searches are remembered per needle.
    :meth:`hash` digests the whole file the same way, or with ``pread`` when the mapping knows its file descriptor
    (:meth:`of`). (The naming layer searches all its literals in one pass: :class:`licscan.binary.probe.Literals`.)"""

    WINDOW = 16 << 20

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()
        self._found: dict[bytes, int] = {}
        self._fd: int | None = None
        self._digests: dict[str, str] = {}

    @classmethod
    def of(cls, fd: int) -> PagedMap:
        """The whole file open at ``fd`` mapped read-only; :meth:`hash` then reads the file with ``pread`` instead of
        faulting the mapping's pages in (the caller keeps ``fd`` open while the mapping is used)."""
        data = cls(fd, 0, access=mmap.ACCESS_READ)
        data._fd = fd
        return data

    @property
    def fd(self) -> int | None:
        """The descriptor of the mapped file when the mapping was made by :meth:`of` (searches read it with
        ``pread`` instead of faulting the mapping's pages in), else None."""
        return self._fd

    def find(self, needle: ReadableBuffer, start: int | None = 0, end: int | None = None) -> int:
        needle = bytes(needle)
        start = start or 0
        size = len(self)
        end = size if end is None else max(0, min(end, size))
        whole = start == 0 and end == size
        if whole and needle in self._found:
            return self._found[needle]
        if end - start <= self.WINDOW:
            at = super().find(needle, start, end)
        else:
            at, pos = -1, start
            while pos < end:
                stop = min(end, pos + self.WINDOW + len(needle) - 1)
                at = super().find(needle, pos, stop)
                release_pages(self, pos, stop)
                if at >= 0:
                    break
                pos += self.WINDOW
        if whole:
            self._found[needle] = at
        return at

    def remember(self, name: str, hexdigest: str) -> None:
        """Keep the ``name`` digest of the whole file that a pass reading it for another purpose computed
        (:meth:`licscan.binary.probe.Literals.digest_too`): :meth:`hash` answers with it."""
        self._digests[name] = hexdigest

    def known(self, name: str) -> bool:
        """Whether the ``name`` digest is known already (remembered or computed)."""
        return name in self._digests

    def hash(self, name: str) -> str:
        """The hex digest of the whole file (``sha256``, ``sha1``), in one pass: read from the file descriptor when
        the mapping has one (no page of the mapping is touched), else window by window over the mapping; computed
        once per mapping."""
        known = self._digests.get(name)
        if known is not None:
            return known
        digest = hashlib.new(name, usedforsecurity=False) if name == "sha1" else hashlib.new(name)
        if self._fd is not None:
            _read_into(digest.update, self._fd, len(self))
            self._digests[name] = digest.hexdigest()
            return self._digests[name]
        with memoryview(self) as whole:
            for pos in range(0, len(self), self.WINDOW):
                with whole[pos : pos + self.WINDOW] as window:
                    digest.update(window)
                release_pages(self, pos, pos + self.WINDOW)
        return digest.hexdigest()


def read_at(buf: Buffer, offset: int, size: int) -> bytes:
    """``bytes(buf[offset : offset + size])``, read from the file descriptor (``pread``) when ``buf`` is a
    :class:`PagedMap` made by :meth:`PagedMap.of`. A reader that takes a few bytes here and there from a large file
    (the entry headers of a fatbin section: one every few hundred KB) pays a page fault for each, the kernel maps
    the cached neighbours of every faulting page, and those pages must be dropped again; a ``pread`` of the same
    bytes costs a third of that. Fewer bytes come back only at the end of the file (or when it shrank since it was
    mapped)."""
    fd = buf.fd if isinstance(buf, PagedMap) else None
    if fd is None:
        return bytes(buf[offset : offset + size])
    size = min(size, len(buf) - offset)
    return os.pread(fd, size, offset) if size > 0 and offset >= 0 else b""


def _read_into(update: Callable[[memoryview], None], fd: int, size: int) -> None:
    """Feed the first ``size`` bytes of the file open at ``fd`` (fewer if it ends before) to ``update``,
    :data:`HASH_READ` bytes per read."""
    buffer = bytearray(min(size, HASH_READ))
    with memoryview(buffer) as view:
        pos = 0
        while pos < size:
            got = os.preadv(fd, [view[: min(len(buffer), size - pos)]], pos)
            if got <= 0:
                return  # the file shrank since it was mapped: the digest is of the bytes it still has
            with view[:got] as part:
                update(part)
            pos += got


def read_all(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of the file open at ``fd`` (its size when it was opened, as a mapping would take
    it), in one read unless the file shrank meanwhile (then up to its end)."""
    data = os.read(fd, size) if size else b""
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size and (chunk := os.read(fd, size - got)):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def open_file(path: str, *, follow: bool = True) -> tuple[int, bytes | None]:
    """The regular file at ``path`` opened once: ``(-1, its bytes)`` when it is small (:data:`SMALL_FILE`: read
    whole, closed), else ``(descriptor, None)`` for :func:`mapped` (which closes it). Without :func:`file_bytes`'s
    context managers (4 us a file: 12,700 files of an installed environment). Opened without blocking: a FIFO put
    in a file's place after it was walked is refused, not waited on for a writer; ``follow=False``: nor is a link
    put there followed (a scan reads nothing outside its inputs). Raises ``OSError`` when the file cannot be
    opened or read, or is not a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags if follow else flags | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_size > SMALL_FILE:
            opened, fd = fd, -1
            return opened, None
        return -1, read_all(fd, st.st_size)
    finally:
        if fd >= 0:
            os.close(fd)


@contextlib.contextmanager
def mapped(fd: int, *, random_access: bool = False) -> Iterator[PagedMap]:
    """The whole file open at ``fd`` (from :func:`open_file`) mapped read-only as a :class:`PagedMap` whose pages
    are all dropped from this process afterwards; ``fd`` is closed at the end (also when it cannot be mapped:
    ``OSError``). ``random_access``: the reader touches headers scattered over the file (no read-ahead, so only
    touched pages are read)."""
    try:
        with PagedMap.of(fd) as data:
            if random_access and hasattr(mmap, "MADV_RANDOM"):
                data.madvise(mmap.MADV_RANDOM)
            try:
                yield data
            finally:
                release_pages(data, 0, len(data) + mmap.PAGESIZE)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_bytes(path: str, *, random_access: bool = False, follow: bool = True) -> Iterator[Buffer]:
    """The bytes of the regular file at ``path``: read whole when it is small (:data:`SMALL_FILE`), else mapped
    read-only as a :class:`PagedMap` whose pages are all dropped from this process afterwards; ``random_access``:
    the reader touches headers scattered over the file (no read-ahead, so only touched pages are read);
    ``follow``: see :func:`open_file`. Raises ``OSError`` when the file cannot be opened, read or mapped, or is not
    a regular file."""
    fd, small = open_file(path, follow=follow)
    if small is not None:
        yield small
        return
    with mapped(fd, random_access=random_access) as data:
        yield data


def with_mapping(path: str, use: Callable[[Buffer | None], Result]) -> Result:
    """``use(data)`` with the bytes of the file at ``path`` (:func:`file_bytes`), None when it cannot be opened, read
    or mapped."""
    with contextlib.ExitStack() as stack:
        try:
            data = stack.enter_context(file_bytes(path))
        except OSError:
            return use(None)
        return use(data)
