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
    Members up to ``in_memory_bytes`` are handed out as ``bytes`` while the members held in memory at once (nested
    archives) stay within ``in_memory_total_bytes``; others as a read-only mmap of a spool file.
    """

    max_depth: int = 8
    max_total_bytes: int = 64 * GiB
    max_member_bytes: int = 8 * GiB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1 * MiB
    # Every member walked is a record the scan keeps until the report (~650 bytes plus its path, measured): the
    # member and path limits keep a tar of 1,000,000 one-byte members, or of members with 4 KB names, under 256 MB.
    max_members: int = 100_000
    max_path_bytes: int = 32 * MiB
    in_memory_bytes: int = 16 * MiB
    in_memory_total_bytes: int = 48 * MiB  # members held in memory at once (one per nesting level); others spooled
    max_metadata_bytes: int = 16 * MiB  # METADATA, RECORD, control, index.json, manifests kept to build Distributions
    max_kept_metadata_bytes: int = 64 * MiB  # metadata files held at once (those of the archives being walked)
