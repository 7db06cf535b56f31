"""What cache keys bind besides the input: licscan's code and knowledge tables, this boot, a file's bytes (its
BLAKE3 digest)."""

from __future__ import annotations

import functools
import hashlib
import importlib
import os

from licscan import __version__

FORMAT = 2


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 over licscan's version, its Python sources and the knowledge tables and rule packs under ``rules/``
    (the shipped ``licscan._builtin_rules``): a changed catalog entry, licence fingerprint, toolkit table or reader
    makes every cached result a miss (docs/cache.md). About 1.5 MB of reading, once per process."""
    import licscan

    rules = importlib.import_module("licscan._builtin_rules")  # rules/, installed under this name (pyproject.toml)
    digest = hashlib.sha256(f"licscan {__version__} cache {FORMAT}\0".encode())
    roots = [os.path.dirname(licscan.__file__)]
    rules_root = os.path.dirname(rules.__file__ or "")
    if rules_root and not rules_root.startswith(roots[0] + os.sep):
        roots.append(rules_root)
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(folder, name)
                try:
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError:
                    continue
                digest.update(os.path.relpath(path, root).encode("utf-8", "surrogateescape") + b"\0")
                digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def boot_id() -> str | None:
    """This boot's id (Linux): identity memos are trusted only on the boot that wrote them."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
            return handle.read(64).decode("ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


#: The block a file is read in for its content digest when BLAKE3 hashes it on every core (its own threads): large
#: enough that BLAKE3 spreads a block over every core, small enough to stay out of the way (``preadv`` into one
#: buffer: no file page stays in this process).
BLOCK = 8 << 20
#: The block a file is read in when it is hashed on one core (the files of a tree side by side, a small file): small
#: enough that the block the kernel copies from the page cache is still in the core's L2 cache (1 MiB a core here)
#: when BLAKE3 reads it. Measured over the 4.2 GiB environment of benchmarks/bench_env.py on 2 threads: 1.15-1.26 s
#: of CPU with 256 KiB blocks, 1.38-1.49 s with 8 MiB ones (docs/cache.md).
SMALL_BLOCK = 256 << 10
_THREADED_FROM = 1 << 20  # a file this large is hashed on every core (BLAKE3's own threads)


def file_digest(fd: int, size: int, buffer: memoryview | None = None, *, threads: bool = True) -> str:
    """The content digest of the open file ``fd``: BLAKE3 of its first ``size`` bytes, read with ``preadv`` into
    ``buffer`` (a new one when None) in :data:`BLOCK`-byte blocks hashed on every core (BLAKE3's own threads) when
    ``threads`` and the file is large, else in :data:`SMALL_BLOCK`-byte blocks on this thread (the caller hashes
    files side by side). BLAKE3 is a cryptographic hash (256-bit digests, no collision known) at about 7 GB/s per
    core here, SHA-256 1.9 GB/s (docs/cache.md); it releases the GIL. OSError when the file is shorter than
    ``size``."""
    import blake3  # not on the path of an audit replayed from the cache, which reads no file

    threaded = threads and size >= _THREADED_FROM
    block = max(1, min(BLOCK if threaded else SMALL_BLOCK, size))
    view = buffer[:block] if buffer is not None and len(buffer) >= block else memoryview(bytearray(block))
    digest = blake3.blake3(max_threads=blake3.blake3.AUTO) if threaded else blake3.blake3()
    offset = 0
    while offset < size:
        n = os.preadv(fd, [view[: min(len(view), size - offset)]], offset)
        if n <= 0:
            raise OSError("file changed while it was hashed")
        digest.update(view[:n])
        offset += n
    return digest.hexdigest()


#: A tree whose newest change is younger than this is not memoised: a file written again within the timestamp
#: granularity of its file system (a few milliseconds) could keep its ctime with other bytes.
RACY_NS = 2_000_000_000
