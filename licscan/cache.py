"""The content cache of ``licscan audit`` (``--cache-dir``, disabled by ``--no-cache``).

A plain file's results are keyed by what identifies its bytes without reading them -- real path, device, inode,
size, modification time (ns), change time (ns) -- plus the licscan version and the scan settings that change
results. An entry is a pickle written by licscan itself into the user's cache folder (never into the scanned
tree), replaced atomically; an unreadable or foreign entry is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from typing import Any

from licscan import __version__

FORMAT = 1


def default_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "licscan")


class Cache:
    def __init__(self, directory: str, settings: str):
        self.directory = os.path.join(directory, f"v{FORMAT}")
        self._salt = f"{__version__}\0{settings}"
        self.hits = 0
        self.misses = 0

    def key(self, path: str, stat: os.stat_result, extra: str = "") -> str:
        ident = "\0".join(str(x) for x in (os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size,
                                            stat.st_mtime_ns, stat.st_ctime_ns, extra, self._salt))
        return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()

    def _file(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".pickle")

    def get(self, key: str) -> Any | None:
        try:
            with open(self._file(key), "rb") as handle:
                value = pickle.load(handle)  # noqa: S301 -- our own cache folder, written only by licscan
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        target = self._file(key)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, target)
        except OSError:
            pass  # a cache that cannot be written only costs time
