"""Naming one file: the components the catalog and the signals name in it, its licence text, the digests a
comparison or the SBOM needs. The result of one file is a :class:`FileRecord`; the scan (``licscan.scan``) calls:

- :func:`examine` for a plain file: observed and named at once (an installed distribution's ``RECORD`` and
  ``METADATA`` are read by the walk before the plain files are examined);
- :func:`observe` for an archive member, while the walk holds its bytes, then :func:`name` once after the walk:
  a wheel's ``RECORD`` and ``METADATA`` come after its libraries, a tar's or a conda package's metadata may come
  anywhere, and a member's owner may be the distribution of an enclosing archive.

Either way :func:`licscan.identify.observe.observe` reads the bytes once and
:func:`licscan.identify.catalog.name` names the file once; the file's SHA-256 is computed at most once, and only
when a ``RECORD`` comparison or the SBOM may need it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from licscan.binary.buffer import Buffer
from licscan.binary.paged import PagedMap
from licscan.identify import catalog, licensetext, signals
from licscan.identify.catalog_table import load_catalog
from licscan.identify.observe import Observation
from licscan.identify.owner import distribution_of, recorded_sha256
from licscan.model import (
    ComponentMatch,
    Distribution,
    FileFacts,
    FileFormat,
    LicenseTextMatch,
)
from licscan.vpath import basename


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


class _Sha256:
    """The file's SHA-256, computed at most once and only when asked (``known``: the digest the content cache
    already computed, so the bytes are not hashed twice)."""

    def __init__(self, data: Buffer | None, known: str | None) -> None:
        self.data = data
        self.value = known

    def __call__(self) -> str:
        if self.value is None:
            assert self.data is not None
            self.value = digest(self.data, "sha256")
        return self.value


def examine(vpath: str, facts: FileFacts, data: Buffer | None, size: int, containers: tuple[str, ...] = (),
            distributions: Sequence[Distribution] = (), *, digests: bool = False,
            sha256: str | None = None) -> FileRecord:
    """Observe and name one file whose distribution is known now (a plain file): hash it when its distribution's
    RECORD has a digest to compare with (the digest is computed when the comparison asks for it); identify licence
    texts. ``sha256``: the digest of ``data`` when the caller already has it (the content cache hashed the file)."""
    observation = catalog.observe(vpath, facts, data)
    # Most files hold nothing to name (an installed environment's Python sources): their owner is not looked up.
    dist = distribution_of(vpath, distributions) if observation.named else None
    content = _Sha256(data, sha256)
    matches = catalog.name(observation, dist, sha256=content if data is not None else None)
    keep = bool(matches) and (dist is None or bool(recorded_sha256(dist, vpath)))
    return _record(vpath, facts, data, size, containers, content, keep=keep, matches=matches, named=bool(matches),
                   digests=digests)


def quiet_record(vpath: str, facts: FileFacts, data: bytes, size: int | None = None,
                 containers: tuple[str, ...] = ()) -> FileRecord | None:
    """:func:`examine` of a plain file, or :func:`observe` of an archive member (``containers``; ``size``: its
    size, default ``len(data)``), held whole in ``data``, with no SBOM digests asked, in which naming surely finds
    nothing; None when that is not certain (then examine or observe it). ``facts``: what inspecting it gave (for a
    plain file its head alone: :func:`licscan.binary.inspect.head_facts`). Such a file's facts show no format (an
    ELF or PE header would be read), the catalog has no name pattern its name matches, it is named unlike a licence
    text, and no translation-layer signal can fire on it (:func:`licscan.identify.signals.silent`). Its bytes
    decide its format; its name only which name-keyed tests are asked, as in :func:`examine`. The record is the one
    :func:`examine` (or :func:`observe`, with nothing to name after the walk) gives -- no components, no digest: no
    RECORD comparison is asked --, made without setting up a literal search or the naming of a file that names
    nothing (12,700 files of the environment tree: a third of their CPU)."""
    if facts.format is not FileFormat.UNKNOWN:
        return None
    size = len(data) if size is None else size
    name = basename(vpath)
    if load_catalog().any_name.fullmatch(name) is not None or licensetext.is_candidate(vpath, size) \
            or not signals.silent(vpath, name, data):
        return None
    return FileRecord(vpath, size, containers, facts, (), None)


@dataclass(frozen=True, slots=True)
class Observed:
    """An archive member read while the walk held its bytes: its record (no components yet) and what naming needs
    of it (None: naming finds nothing in it); :func:`name` completes it once the walk has read every
    distribution."""

    record: FileRecord
    observation: Observation | None


def observe(vpath: str, facts: FileFacts, data: Buffer | None, size: int, containers: tuple[str, ...] = (), *,
            digests: bool = False, layer: str | None = None, deleted_in_upper_layer: bool = False,
            sha256: str | None = None) -> Observed:
    """Read what naming needs of one archive member while its bytes are held; name it later with :func:`name`.
    Its owner is not known yet, so a member in which naming will find a component is hashed now: its
    distribution's RECORD may list a digest to compare with. ``sha256``: the digest of ``data`` when the walker
    computed it while reading the member (a spooled library: inventory/spool.py), so it is not read again."""
    observation = catalog.observe(vpath, facts, data)
    record = _record(vpath, facts, data, size, containers, _Sha256(data, sha256), keep=observation.named,
                     named=observation.named, digests=digests)
    if layer is not None or deleted_in_upper_layer:
        record = replace(record, layer=layer, deleted_in_upper_layer=deleted_in_upper_layer)
    return Observed(record, observation if observation.named else None)


def name(observed: Observed, distributions: Sequence[Distribution]) -> FileRecord:
    """The record of an observed archive member with its components, named once, by its owner among
    ``distributions`` (every distribution the walk found)."""
    record, observation = observed.record, observed.observation
    if observation is None:  # no catalog entry, no layer: nothing to name
        return record
    dist = distribution_of(record.vpath, distributions)
    return replace(record, matches=catalog.name(observation, dist, sha256=record.sha256))


def _record(vpath: str, facts: FileFacts, data: Buffer | None, size: int, containers: tuple[str, ...],
            content: _Sha256, *, keep: bool, named: bool, digests: bool,
            matches: tuple[ComponentMatch, ...] = ()) -> FileRecord:
    """The record of one file: its components (none yet for an archive member), its SHA-256 when ``keep`` (a
    RECORD comparison may need it), its licence text, and with ``digests`` its SHA-1 and SHA-256 when it is a
    binary or named part."""
    kept = content() if data is not None and keep else None
    text = None
    if data is not None and licensetext.is_candidate(vpath, size):
        text = licensetext.identify_license_text(vpath, data)
    sha1 = None
    if digests and data is not None and (named or facts.format is not FileFormat.UNKNOWN or text is not None):
        sha1 = digest(data, "sha1")
        kept = kept or content()
    return FileRecord(vpath, size, containers, facts, matches, kept, text, sha1)


__all__ = ["FileRecord", "Observed", "digest", "examine", "name", "observe", "quiet_record"]
