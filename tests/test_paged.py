"""The bytes of one file as the readers get them (licscan/binary/paged.py): small files read whole, larger ones
mapped; a mapping's digest read from its file descriptor is the digest of its bytes."""

from __future__ import annotations

import hashlib
import mmap
import os

import pytest

from licscan.binary.buffer import PageDropper
from licscan.binary.paged import SMALL_FILE, PagedMap, file_bytes, with_mapping


def _write(path, size: int) -> bytes:
    body = (bytes(range(256)) * (size // 256 + 1))[:size]
    path.write_bytes(body)
    return body


def test_small_files_are_read_and_larger_ones_mapped(tmp_path):
    small, large, empty = tmp_path / "small", tmp_path / "large", tmp_path / "empty"
    small_body, large_body = _write(small, SMALL_FILE), _write(large, SMALL_FILE + 1)
    empty.write_bytes(b"")
    with file_bytes(str(small)) as data:
        assert type(data) is bytes and data == small_body
    with file_bytes(str(empty)) as data:
        assert data == b""
    with file_bytes(str(large), random_access=True) as data:
        assert isinstance(data, PagedMap) and data[:] == large_body
        assert data.find(large_body[-300:]) == large_body.find(large_body[-300:]) == 213  # 256-byte period
    assert data.closed


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        with file_bytes(str(tmp_path / "absent")):
            pass
    with pytest.raises(IsADirectoryError):
        with file_bytes(str(tmp_path)):
            pass
    assert with_mapping(str(tmp_path / "absent"), lambda data: data) is None
    assert with_mapping(str(tmp_path), lambda data: data) is None


@pytest.mark.parametrize("size", [1, 4095, 1 << 20, (1 << 20) + 17, (3 << 20) + 5])
def test_hash_from_the_descriptor_is_the_hash_of_the_bytes(tmp_path, size):
    path = tmp_path / "lib.so"
    body = _write(path, size)
    fd = os.open(path, os.O_RDONLY)
    try:
        with PagedMap.of(fd) as by_fd, PagedMap(fd, 0, access=mmap.ACCESS_READ) as by_pages:
            assert by_fd.hash("sha256") == by_pages.hash("sha256") == hashlib.sha256(body).hexdigest()
            assert by_fd.hash("sha1") == hashlib.sha1(body).hexdigest()
    finally:
        os.close(fd)


def test_hash_of_a_file_that_shrank_is_of_the_bytes_left(tmp_path):
    # The mapping keeps its length; reading past the file's new end would fault, pread stops there instead.
    path = tmp_path / "lib.so"
    body = _write(path, 3 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        with PagedMap.of(fd) as data:
            os.truncate(path, 1 << 20)
            assert data.hash("sha256") == hashlib.sha256(body[: 1 << 20]).hexdigest()
    finally:
        os.close(fd)


def test_with_mapping_gives_the_same_bytes_either_way(tmp_path):
    for size in (0, 10, SMALL_FILE, SMALL_FILE + 4096):
        path = tmp_path / f"f{size}"
        body = _write(path, size)
        assert with_mapping(str(path), lambda data: bytes(data[:]) if data is not None else None) == body


class _Recorded(PagedMap):
    calls: list[tuple[int, int, int]]

    def madvise(self, option: int, start: int = 0, length: int = 0) -> None:
        self.calls.append((option, start, length))


def test_page_dropper_drops_a_window_of_ranges_at_a_time(tmp_path):
    page = mmap.PAGESIZE
    path = tmp_path / "lib.so"
    _write(path, 64 * page)
    fd = os.open(path, os.O_RDONLY)
    try:
        with _Recorded(fd, 0, access=mmap.ACCESS_READ) as data:
            data.calls = []
            with PageDropper(data, window=8 * page) as dropper:
                for n in range(18):  # 18 entries of a page and a half, one every two pages
                    dropper.add(n * 2 * page, n * 2 * page + page + page // 2)
                dropper.add(3 * page, 4 * page)  # going back: what was pending is dropped first
            # Dropped once the pending span reaches the window; the half page at the end of a span stays mapped.
            drop = mmap.MADV_DONTNEED
            assert data.calls == [(drop, 0, 9 * page), (drop, 10 * page, 9 * page), (drop, 20 * page, 9 * page),
                                  (drop, 30 * page, 5 * page), (drop, 3 * page, page)]
    finally:
        os.close(fd)
