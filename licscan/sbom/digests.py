"""The SHA-1 and SHA-256 of the files an SBOM lists (SPDX 2.3 requires a SHA-1 for every file): from the scan's
records, from the file system, or from a lookup the caller gives."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from licscan.sbom.nodes import Digests
from licscan.vpath import SEP

if TYPE_CHECKING:
    from licscan.scan import FileRecord


def record_digests(records: Sequence[FileRecord]) -> Digests:
    """Digests from the scan's FileRecords: their ``sha1`` and ``sha256`` when the scan recorded both."""
    table = {r.vpath: (r.sha1, r.sha256) for r in records if r.sha1 and r.sha256}
    return table.get


def chain(*sources: Digests | None) -> Digests:
    """The first of ``sources`` that knows a file's digests."""

    def lookup(vpath: str) -> tuple[str, str] | None:
        for source in sources:
            if source is not None:
                found = source(vpath)
                if found:
                    return found
        return None

    return lookup


def filesystem_digests(vpath: str) -> tuple[str, str] | None:
    """SHA-1 and SHA-256 of a plain file named by its virtual path (not of archive members: those contain "!/")."""
    if SEP in vpath:
        return None
    try:
        h1, h256 = hashlib.sha1(), hashlib.sha256()
        with open(vpath, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h1.update(block)
                h256.update(block)
        return h1.hexdigest(), h256.hexdigest()
    except OSError:
        return None
