"""What cache keys bind besides the input: licscan's code and knowledge tables, this boot, a file's bytes."""

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


def file_digest(fd: int, size: int, *, block: int = 1 << 20) -> str:
    """SHA-256 of the first ``size`` bytes of the open file ``fd``, read with ``preadv`` in 1 MiB blocks (no
    mapping, so the pages read do not stay in this process's resident set; hashlib releases the GIL)."""
    digest = hashlib.sha256()
    buf = bytearray(block)
    view = memoryview(buf)
    offset = 0
    while offset < size:
        n = os.preadv(fd, [view[: min(block, size - offset)]], offset)
        if n <= 0:
            break
        digest.update(view[:n])
        offset += n
    if offset != size:
        raise OSError("file changed while it was hashed")
    return digest.hexdigest()


#: A tree whose newest change is younger than this is not memoised: a file written again within the timestamp
#: granularity of its file system (a few milliseconds) could keep its ctime with other bytes.
RACY_NS = 2_000_000_000
