"""Resource limits of one walk (DESIGN issue 3 item 2: bombs, deep nesting, huge members)."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class WalkLimits:
    """Limits against hostile archives; exceeding one gives a LIMIT diagnostic naming the member, which is skipped.

    ``max_depth`` counts archive levels (``!/`` separators) a member may sit under: a top-level archive's members are
    at depth 1; an archive whose members would be deeper is yielded as a plain file with a diagnostic.
    ``max_total_bytes`` bounds the uncompressed bytes the walker reads out of archives over the whole walk;
    ``max_ratio`` (uncompressed / compressed) is checked per member once it is past ``ratio_floor_bytes``.
    Members up to ``in_memory_bytes`` are handed out as ``bytes``, bigger ones as a read-only mmap of a spool file.
    """

    max_depth: int = 8
    max_total_bytes: int = 64 * GiB
    max_member_bytes: int = 8 * GiB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1 * MiB
    max_members: int = 1_000_000
    in_memory_bytes: int = 64 * MiB
    max_metadata_bytes: int = 16 * MiB  # METADATA, RECORD, control, index.json, manifests kept to build Distributions
