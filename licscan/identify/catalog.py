"""Name NVIDIA components: match one file against the catalog in ``rules/catalog/nvidia.yaml`` (docs/architecture.md#layers).

Pure: :func:`identify` takes what the walker and ``inspect`` already know (virtual path, :class:`FileFacts`, the
enclosing :class:`Distribution`, the file's bytes for bounded literal probes) and returns facts; it never opens,
runs or writes anything. Versions follow the order of trust of issue 3: the file's own markers ("Cuda compilation
tools, release 12.4, V12.4.127"), its full file name (``libcublas.so.12.9.1.4``), its SONAME, then the enclosing
distribution's metadata (wheel ``METADATA`` ``Version:``, Debian ``Version``, conda ``version``) -- and the last
only when the catalog says that distribution ships the component (a torch wheel's version is not cuDNN's).

Content probes look for literals the catalog names, all of them (and the translation-layer signals' literals) in one
pass over the file (:class:`licscan.binary.probe.Literals`; no regex over the file); a regex only parses the few
bytes after a literal that was found. The catalog itself is compiled by :mod:`licscan.identify.catalog_table`, the
version claims are read and weighed by :mod:`licscan.identify.versions`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from licscan.binary.buffer import Buffer
from licscan.binary.modinfo import modinfo
from licscan.binary.probe import Literals, LiteralSet, find, window
from licscan.identify import signals
from licscan.identify.catalog_table import Catalog, Entry, load_catalog
from licscan.identify.owner import recorded_sha256
from licscan.identify.versions import (
    choose,
    distribution_claim,
    marker_claims,
    name_claim,
    release_claim,
    trusted_first,
    with_claims,
)
from licscan.model import (
    ComponentKind,
    ComponentMatch,
    Confidence,
    Distribution,
    ElfFacts,
    FileFacts,
    FileFormat,
    VersionClaim,
    VersionSource,
)
from licscan.vpath import basename

NVIDIA = "NVIDIA"
_SOURCE = "rules/catalog/nvidia.yaml"

Digest = str | Callable[[], str]  # a hex digest, or a function that computes it when it is needed


@functools.cache
def literal_set() -> LiteralSet:
    """Every literal the catalog and the translation-layer signals look for in a whole file: searched together,
    in one pass over the file, the first time one of them is asked for."""
    cat = load_catalog()
    own = [cat.release_banner, cat.copyright]
    own += [e.banner for e in cat.entries if e.banner is not None]
    own += [marker.literal for e in cat.entries for marker in e.markers]
    return LiteralSet(tuple(own) + signals.literal_set().needles)


# ----------------------------------------------------------------------------------------------- identify


@dataclass(frozen=True)
class _Found:
    """A catalog entry a file is: how it was recognised (``how``: "file name", "SONAME" or content evidence)."""

    entry: Entry
    name_match: re.Match[str] | None
    how: str


@dataclass(frozen=True)
class _File:
    """What naming knows of the file being named."""

    vpath: str
    name: str
    facts: FileFacts | None
    size: int
    literals: Literals

    @property
    def elf(self) -> ElfFacts | None:
        return self.facts.elf if self.facts is not None else None


def identify(vpath: str, facts: FileFacts | None, distribution: Distribution | None = None,
             data: Buffer | None = None, *, sha256: Digest | None = None,
             with_signals: bool = True) -> tuple[ComponentMatch, ...]:
    """Components in the file at ``vpath``: NVIDIA catalog matches, plus (``with_signals``) translation-layer and
    non-NVIDIA GPU runtime facts from :mod:`licscan.identify.signals`.

    ``distribution`` is the enclosing distribution (or None); ``data`` the file's bytes (bytes or mmap, or None:
    then no content probe runs); ``sha256`` the file's hex digest (or a function that computes it, called only when
    the distribution's RECORD lists a digest for ``vpath``), to compare with that RECORD. A CUDA-named file that a
    high-confidence signal shows to be a drop-in replacement (``libcuda.so.1`` importing ``libamdhip64.so``) is
    reported as that layer, not as NVIDIA's.
    """
    cat = load_catalog()
    size = facts.size if facts is not None else (len(data) if data is not None else 0)
    file = _File(vpath, basename(vpath), facts, size, Literals(data, literal_set()))
    found = _by_name(cat, file)
    content_tool = _tool_by_content(cat, file, tuple(f.entry.name for f in found))
    if content_tool is not None:
        found = [f for f in found if f.entry.kind is not ComponentKind.DEVELOPER_TOOL] + [content_tool]
    matches = [_build(cat, f, file, distribution, sha256) for f in found]
    if not with_signals:
        return tuple(matches)
    layer_matches = signals.detect(vpath, facts, data, file.literals)
    impostor = [s for s in layer_matches if s.confidence == Confidence.HIGH
                and dict(s.properties).get("replaces") == "cuda-named"]
    if impostor:
        dropped = [m for m in matches if m.vendor == NVIDIA]
        matches = [m for m in matches if m.vendor != NVIDIA]
        extra = tuple(f"named like NVIDIA {m.display} ({file.name}), but not NVIDIA's file" for m in dropped)
        layer_matches = tuple(replace(s, evidence=s.evidence + extra) if s in impostor else s
                              for s in layer_matches)
    return tuple(matches) + layer_matches


def _by_name(cat: Catalog, file: _File) -> list[_Found]:
    """Every catalog entry (in catalog order) one of whose patterns matches the file name (its first such pattern),
    else the first entry whose expected SONAME is the file's."""
    found = []
    if cat.any_name.fullmatch(file.name):
        for entry in cat.entries:
            m = next((m for p in entry.patterns for m in (p.regex.fullmatch(file.name),) if m), None)
            if m is not None:
                found.append(_Found(entry, m, "file name"))
    if found:
        return found
    elf = file.elf
    if elf is not None and elf.soname:
        for entry in cat.entries:
            if entry.soname is not None and entry.soname.fullmatch(elf.soname):
                return [_Found(entry, None, "SONAME")]
    return []


def _is_executable(facts: FileFacts | None) -> bool:
    elf = facts.elf if facts is not None else None
    if elf is None:
        return False
    return elf.elf_type == "ET_EXEC" or (elf.elf_type == "ET_DYN" and elf.soname is None)


def _tool_by_content(cat: Catalog, file: _File, prefer: tuple[str, ...] = ()) -> _Found | None:
    """An NVIDIA developer tool recognised by its banner, whatever its file name: the CUDA release line, NVIDIA's
    copyright notice and the tool's own banner ("Ptx optimizing assembler") must all be in the file."""
    literals = file.literals
    data = literals.data
    if data is None or not _is_executable(file.facts) or file.size > cat.probe_limit:
        return None
    at = literals.find(cat.release_banner)
    if at < 0 or literals.find(cat.copyright) < 0:
        return None
    hits = [(entry, entry.banner, where) for entry in cat.entries if entry.banner is not None
            for where in (literals.find(entry.banner),) if where >= 0]
    if not hits:
        return None
    # A tool may quote another's banner: prefer the one its own name says, else the first in catalog order.
    named = [h for h in hits if h[0].name in prefer]
    entry, banner, where = (named or hits)[0]
    line = _cstring(data, at)
    return _Found(entry, None, f"content: banner {banner.decode()!r} at {where:#x}, "
                               f"{line!r} at {at:#x}, {cat.copyright.decode()!r}")


def _cstring(data: Buffer, offset: int, limit: int = 120) -> str:
    raw = window(data, offset, limit).split(b"\0", 1)[0].split(b"\n", 1)[0]
    return raw.decode("latin-1")


# ------------------------------------------------------------------------------------- one catalog match


@dataclass
class _Draft:
    """The facts of one match while :func:`_build` gathers them (lists keep the order they were found in)."""

    evidence: list[str]
    license: str | None
    confidence: Confidence = Confidence.HIGH
    claims: list[VersionClaim] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)
    modifications: list[str] = field(default_factory=list)
    declared: str | None = None


def _build(cat: Catalog, found: _Found, file: _File, distribution: Distribution | None,
           sha256: Digest | None) -> ComponentMatch:
    entry = found.entry
    elf = file.elf
    if found.how == "SONAME" and elf is not None:
        first = f"SONAME {elf.soname!r} matches {entry.display} ({_SOURCE}: {entry.name})"
    elif found.how == "file name":
        first = f"file name {file.name!r} matches {entry.display} ({_SOURCE}: {entry.name})"
    else:
        first = f"{entry.display}: {found.how}"
    draft = _Draft([first], entry.license)
    _content(cat, draft, found, file)  # 1. markers inside the file
    _names(draft, found, file)  # 2. file name, 3. SONAME
    if elf is not None:
        _elf_changes(draft, found, elf)
    if entry.kernel_module:
        _kernel_module(cat, draft, file)
    if distribution is not None:  # 4. the enclosing distribution
        _distribution(draft, entry, distribution, file.vpath, sha256)
    version, source, version_range, conflicts = choose(draft.claims)
    evidence = draft.evidence + [c.evidence for c in draft.claims] + conflicts
    return ComponentMatch(
        name=entry.name, display=entry.display, kind=entry.kind, vendor=NVIDIA, version=version,
        version_source=source, license=draft.license, evidence=tuple(evidence), version_range=version_range,
        license_declared=draft.declared, confidence=draft.confidence, modifications=tuple(draft.modifications),
        versions=tuple(trusted_first(draft.claims)), properties=tuple(draft.properties))


def _content(cat: Catalog, draft: _Draft, found: _Found, file: _File) -> None:
    """Version markers, and a tool's release banner (a tool named like NVIDIA's whose bytes hold none is less
    certain)."""
    data = file.literals.data
    if data is None or file.size > cat.probe_limit:
        return
    draft.claims.extend(marker_claims(found.entry, file.literals))
    if found.entry.banner is None:
        return
    at = file.literals.find(cat.release_banner)
    if at >= 0:
        draft.claims.extend(release_claim(data, at, cat.release_banner))
    elif found.how == "file name" and file.facts is not None and file.facts.format is not FileFormat.UNKNOWN:
        draft.confidence = Confidence.MEDIUM
        draft.evidence.append("named like the NVIDIA tool, but its bytes hold no CUDA release banner")


def _names(draft: _Draft, found: _Found, file: _File) -> None:
    """The version in the file name and the SONAME; an auditwheel graft; a kernel module's name."""
    m = found.name_match
    if m is not None:
        claim = name_claim(found.entry, m, f"file name {file.name!r}", VersionSource.FILE_NAME)
        if claim:
            draft.claims.append(claim)
        groups = m.groupdict()
        if groups.get("graft"):
            draft.modifications.append("auditwheel-grafted")
            draft.properties.append(("grafted_hash", groups["graft"]))
            draft.evidence.append(f"auditwheel-grafted name: '-{groups['graft']}' inserted before '.so'")
        if groups.get("module"):
            draft.properties.append(("module", groups["module"]))
    elf = file.elf
    if elf is not None and elf.soname:
        soname = elf.soname
        sm = next((p.regex.fullmatch(soname) for p in found.entry.patterns if p.linux_stem
                   and p.regex.fullmatch(soname)), None)
        if sm is not None:
            claim = name_claim(found.entry, sm, f"SONAME {soname!r}", VersionSource.SONAME)
            if claim:
                draft.claims.append(claim)


def _elf_changes(draft: _Draft, found: _Found, elf: ElfFacts) -> None:
    """How the ELF file differs from what NVIDIA ships: SONAME missing or rewritten, RUNPATH added, stripped."""
    entry = found.entry
    linux_named = found.name_match is not None and any(
        p.linux_stem and p.regex.fullmatch(found.name_match.string) for p in entry.patterns)
    if elf.elf_type == "ET_DYN" and linux_named and entry.soname is not None:
        if elf.soname is None:
            draft.modifications.append("soname-missing")
            draft.evidence.append(f"no DT_SONAME (NVIDIA's {entry.display} has one)")
        elif not entry.soname.fullmatch(elf.soname):
            draft.modifications.append("soname-rewritten")
            draft.evidence.append(f"SONAME {elf.soname!r} is not NVIDIA's ({entry.soname.pattern})")
    if elf.runpath or elf.rpath:
        draft.properties.append(("runpath", ":".join(elf.runpath or elf.rpath)))
        if entry.runpath == "none":
            draft.modifications.append("runpath-added")
            draft.evidence.append(f"RUNPATH/RPATH {':'.join(elf.runpath or elf.rpath)!r} set; "
                                  "NVIDIA ships it without one")
    if entry.ships_symtab and not elf.has_symtab:
        draft.modifications.append("stripped")
        draft.evidence.append("no .symtab, while NVIDIA ships it with one")


def _kernel_module(cat: Catalog, draft: _Draft, file: _File) -> None:
    """A kernel module's own licence (its ``.modinfo`` ``license=`` field) and version."""
    info = modinfo(file.vpath, file.facts, file.literals.data)
    for key in ("license", "version", "vermagic"):
        if key in info:
            draft.properties.append((f"modinfo_{key}", info[key]))
    if "license" in info:
        declared = info["license"]
        draft.license, flavour = cat.kernel_licenses.get(declared, (None, "unknown"))
        draft.properties.append(("flavour", flavour))
        draft.evidence.append(f".modinfo license={declared!r} -> {draft.license or 'unknown licence'} ({flavour})")
    else:
        draft.confidence = Confidence.MEDIUM
        draft.evidence.append("module licence not read (no .modinfo license= field found)")
    if "version" in info:
        draft.claims.append(VersionClaim(VersionSource.MODINFO, info["version"], True,
                                         f".modinfo version={info['version']!r}"))


def _distribution(draft: _Draft, entry: Entry, distribution: Distribution, vpath: str,
                  sha256: Digest | None) -> None:
    """What the enclosing distribution says: its declared licence, its version (when it ships ``entry``), and
    whether its RECORD's digest is the file's."""
    declared = distribution.license_declared
    draft.declared = declared
    dist_name = distribution.name
    if declared:
        draft.evidence.append(f"declared: {declared} (by {dist_name} {distribution.version or ''})".rstrip())
    claim = distribution_claim(entry, distribution)
    if claim:
        draft.claims.append(claim)
    draft.properties.append(("distribution", dist_name))
    recorded = recorded_sha256(distribution, vpath)
    if recorded and sha256 is not None:
        actual = sha256() if callable(sha256) else sha256
        if actual and recorded.lower() != actual.lower():
            draft.modifications.append("sha256-differs-from-record")
            draft.evidence.append(f"sha256 {actual} differs from {dist_name} RECORD {recorded}")


__all__ = ["ComponentMatch", "VersionClaim", "VersionSource", "basename", "find", "identify", "literal_set",
           "load_catalog", "window", "with_claims"]
