"""The resource limits and the notes mode of the binary readers (:class:`Limits`, :class:`NotesMode`; used by
:mod:`licscan.binary.images` and named by every scan's settings). A module of their own so that what only needs the
settings -- the command line, the cache key of an audit replayed from the cache -- does not import the readers."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass


class NotesMode(enum.Enum):
    """Whether to decode compressed cubins as far as their toolkit notes (``.note.nv.tkinfo``, ``.note.nv.cuinfo``).

    The notes follow ``.strtab``, ``.symtab`` and ``.debug_frame``: about 200 KB into each decoded image, so for
    the 2,975 zstd cubins of libtorch_cuda.so that is 0.6 GB of decoding. ``auto`` decodes them unless the file's
    compressed cubins declare more than ``Limits.notes_auto_bytes`` in total; then every compressed cubin of that
    file gets the toolkit range its ELF header proves, and the report says so.
    """

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class Limits:
    """Resource limits of the binary readers; every refusal becomes a ``limit`` diagnostic."""

    max_image_bytes: int = 2 << 30  # decompressed size of one device image
    # A fatbin holds one entry per target of one translation unit (libtorch_cuda.so: at most 7); 4,096 is far
    # above any real one and keeps a forged fatbin of 100,000 entries from costing gigabytes of facts.
    max_entries_per_fatbin: int = 4096
    max_archive_depth: int = 8
    # Members of one static archive: each leaves facts behind (an ar of 1,000,000 empty members cost 972 MB).
    max_ar_members: int = 100_000
    jobs: int = os.cpu_count() or 1
    notes: NotesMode = NotesMode.AUTO
    # Wall time one file may take (archive members share their file's); past it the readers leave out what can
    # be left out and say so in a ``limit`` diagnostic (budget.py). None or 0: no limit.
    max_file_seconds: float | None = 600.0
    notes_auto_bytes: int = 1 << 30  # declared decoded size of a file's compressed cubins, for NotesMode.AUTO
