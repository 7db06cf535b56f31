"""Naming one file: the components the catalog and the signals name in it, its licence text, the digests a
comparison or the SBOM needs (:func:`examine`), and the second look at an archive member once the walk has read
its distribution's metadata (:func:`refine`). The scan (``licscan.scan``) calls these; the result of one file is a
:class:`FileRecord`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from licscan.binary.buffer import Buffer
from licscan.binary.paged import PagedMap
from licscan.identify import catalog, licensetext
from licscan.identify.owner import distribution_of, recorded_sha256
from licscan.model import (
    GPU_LAYER_KINDS,
    ComponentMatch,
    Distribution,
    FileFacts,
    FileFormat,
    LicenseTextMatch,
)


@dataclass(frozen=True)
class FileRecord:
    """One inventoried file: its facts, the components the catalog names in it, its sha256 when it was needed."""

    vpath: str
    size: int
    containers: tuple[str, ...]
    facts: FileFacts
    matches: tuple[ComponentMatch, ...]
    sha256: str | None
    license_text: LicenseTextMatch | None = None
    sha1: str | None = None  # with ScanConfig.digests, for binaries and named parts
    layer: str | None = None
    deleted_in_upper_layer: bool = False


def digest(data: Buffer, name: str) -> str:
    """The ``sha256`` or ``sha1`` hex digest of ``data`` (a PagedMap window by window, its pages dropped behind)."""
    if isinstance(data, PagedMap):
        return data.hash(name)
    return (hashlib.sha1(data, usedforsecurity=False) if name == "sha1" else hashlib.sha256(data)).hexdigest()


def examine(vpath: str, facts: FileFacts, data: Buffer | None, size: int, containers: tuple[str, ...] = (),
            distributions: Sequence[Distribution] = (), *, digests: bool = False,
            sha256: str | None = None) -> FileRecord:
    """Name the components in one file from its facts, its bytes and its enclosing distribution; hash it when the
    distribution's RECORD has a hash to compare with; identify licence texts. ``sha256``: the digest of ``data``
    when the caller already has it (the content cache hashed the file), so the bytes are not hashed twice.
    ``catalog.identify`` runs once: the digest it compares with the RECORD is computed when it asks for it."""
    dist = distribution_of(vpath, distributions)
    hashed: list[str] = []

    def content_sha256() -> str:  # at most once, and only when a digest is compared or kept
        if not hashed:
            assert data is not None
            hashed.append(sha256 or digest(data, "sha256"))
        return hashed[0]

    matches = catalog.identify(vpath, facts, dist, data, sha256=content_sha256 if data is not None else None)
    kept = None
    if data is not None and matches and (dist is None or recorded_sha256(dist, vpath)):
        # Hashed now while the bytes are here: the enclosing wheel's RECORD may only be read later in the walk.
        kept = content_sha256()
    text = None
    if data is not None and licensetext.is_candidate(vpath, size):
        text = licensetext.identify_license_text(vpath, data)
    sha1 = None
    if digests and data is not None and (matches or facts.format is not FileFormat.UNKNOWN or text is not None):
        sha1 = digest(data, "sha1")
        kept = kept or content_sha256()
    return FileRecord(vpath, size, containers, facts, matches, kept, text, sha1)


def refine(record: FileRecord, distributions: Sequence[Distribution]) -> FileRecord:
    """Name the components of an archive member again once the walk has read its distribution's metadata (a wheel's
    RECORD and METADATA come after its libraries). The first pass saw the bytes: what it learnt from them (content
    markers, tools found by content, translation-layer signals) is kept."""
    dist = distribution_of(record.vpath, distributions)
    if dist is None or not record.matches:
        return record
    second = catalog.identify(record.vpath, record.facts, dist, None, sha256=record.sha256)
    first = {m.name: m for m in record.matches}
    # Layers (docs/layers.md) are named from the bytes: the first pass's match is the whole truth (its symbols and
    # strings signals, its confidence), and a drop-in it proved by content keeps NVIDIA's name match out.
    dropin = any(m.kind in GPU_LAYER_KINDS and m.confidence == "high"
                 and dict(m.properties).get("replaces") == "cuda-named" for m in record.matches)
    merged = []
    for match in second:
        if match.kind in GPU_LAYER_KINDS:
            merged.append(first.pop(match.name, match))
            continue
        if dropin and match.vendor == "NVIDIA" and match.name not in first:
            continue
        seen = first.pop(match.name, None)
        if seen is not None and seen.versions:
            # The version claims of both passes (markers from the bytes, the distribution's from its metadata)
            # decide together: a marker that gives only "12.9" leaves the distribution's 12.9.86 standing.
            match = catalog.with_claims(match, seen.versions + match.versions)
        if seen is not None:
            match = replace(match, evidence=tuple(dict.fromkeys(match.evidence + seen.evidence)),
                            modifications=tuple(dict.fromkeys(match.modifications + seen.modifications)))
        merged.append(match)
    merged.extend(first.values())  # found from the bytes only
    return replace(record, matches=tuple(merged))


__all__ = ["FileRecord", "digest", "examine", "refine"]
