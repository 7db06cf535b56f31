"""Name NVIDIA components: the catalog in ``rules/catalog/nvidia.yaml`` (docs/architecture.md#layers) applied to
what :func:`licscan.identify.observe.observe` read of one file, and to its enclosing distribution.

Pure: :func:`name` takes an :class:`Observation` (the catalog entries the file's name, SONAME or banner make it, what
its bytes claim, the layers its signals name), the enclosing :class:`Distribution` and the file's digest, and
returns facts; it never opens, reads, runs or writes anything. It runs once per file, when the distribution is
known. Versions follow this order of trust: the file's own markers ("Cuda compilation tools, release
12.4, V12.4.127"), its full file name (``libcublas.so.12.9.1.4``), its SONAME, then the enclosing distribution's
metadata (wheel ``METADATA`` ``Version:``, Debian ``Version``, conda ``version``) -- and the last only when the
catalog says that distribution ships the component (a torch wheel's version is not cuDNN's).

The catalog itself is compiled by :mod:`licscan.identify.catalog_table`, the version claims are read and weighed by
:mod:`licscan.identify.versions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from licscan.binary.buffer import Buffer
from licscan.binary.probe import find, window
from licscan.identify.catalog_table import Catalog, Entry, load_catalog, prepare
from licscan.identify.observe import Observation, Seen, gated_literal_set, links_any, literal_set, observe
from licscan.identify.owner import recorded_sha256
from licscan.identify.versions import choose, distribution_claim, distribution_ships, name_claim, trusted_first
from licscan.model import (
    ComponentMatch,
    Confidence,
    Distribution,
    ElfFacts,
    FileFacts,
    Modification,
    ModInfo,
    VersionClaim,
    VersionSource,
)
from licscan.vpath import basename

NVIDIA = "NVIDIA"
_SOURCE = "rules/catalog/nvidia.yaml"

Digest = str | Callable[[], str]  # a hex digest, or a function that computes it when it is needed


# ----------------------------------------------------------------------------------------------- identify


def identify(vpath: str, facts: FileFacts | None, distribution: Distribution | None = None,
             data: Buffer | None = None, *, sha256: Digest | None = None,
             with_signals: bool = True) -> tuple[ComponentMatch, ...]:
    """Components in the file at ``vpath``, observed and named at once (:func:`observe`, then :func:`name`): for a
    file whose distribution is known when its bytes are held, and for a bare name (a DT_NEEDED entry)."""
    return name(observe(vpath, facts, data, with_signals=with_signals), distribution, sha256=sha256)


def linked_into(vpath: str, facts: FileFacts, data: Buffer) -> tuple[ComponentMatch, ...]:
    """The NVIDIA libraries linked into the binary at ``vpath`` (``linked_from`` set), as an audit names them with
    no distribution known (``licscan inspect``). Their evidence is looked for first (:func:`links_any`): the file is
    named only when it holds some (naming compiles the catalog's name patterns: 5 ms of CPU; most files link
    nothing NVIDIA's)."""
    if not links_any(vpath, facts, data):
        return ()
    return tuple(m for m in identify(vpath, facts, None, data, with_signals=False) if m.linked_from)


def name(observed: Observation, distribution: Distribution | None = None, *,
         sha256: Digest | None = None) -> tuple[ComponentMatch, ...]:
    """The components in one observed file: NVIDIA catalog matches, plus the translation-layer and non-NVIDIA GPU
    runtime matches its signals gave (:mod:`licscan.identify.signals`). Reads no bytes.

    ``distribution`` is the enclosing distribution (or None); ``sha256`` the file's hex digest (or a function that
    computes it, called only when the distribution's RECORD lists a digest for the file), to compare with that
    RECORD. A CUDA-named file that a high-confidence signal shows to be a drop-in replacement (``libcuda.so.1``
    importing ``libamdhip64.so``) is reported as that layer, not as NVIDIA's.
    """
    cat = load_catalog()
    matches = [_build(cat, seen, observed, distribution, sha256) for seen in observed.seen
               if not seen.script or (distribution is not None and distribution_ships(seen.entry, distribution))]
    layer_matches = observed.layers
    impostor = [s for s in layer_matches if s.confidence == Confidence.HIGH
                and s.layer is not None and s.layer.replaces]
    if impostor:
        dropped = [m for m in matches if m.vendor == NVIDIA]
        matches = [m for m in matches if m.vendor != NVIDIA]
        extra = tuple(f"named like NVIDIA {m.display} ({observed.name}), but not NVIDIA's file" for m in dropped)
        layer_matches = tuple(replace(s, evidence=s.evidence + extra) if s in impostor else s
                              for s in layer_matches)
    return tuple(matches) + layer_matches


# ------------------------------------------------------------------------------------- one catalog match


@dataclass
class _Draft:
    """The facts of one match while :func:`_build` gathers them (lists keep the order they were found in)."""

    evidence: list[str]
    license: str | None
    confidence: Confidence = Confidence.HIGH
    claims: list[VersionClaim] = field(default_factory=list)
    modifications: list[Modification] = field(default_factory=list)
    declared: str | None = None
    distribution: str | None = None
    grafted_hash: str | None = None
    module: str | None = None
    runpath: str | None = None
    modinfo: ModInfo | None = None
    flavour: str | None = None


def _build(cat: Catalog, found: Seen, file: Observation, distribution: Distribution | None,
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
    _content(draft, found)  # 1. markers inside the file
    if found.linked_from is None:  # the names and ELF facts of a file a part is linked into are not the part's
        _names(draft, found, file)  # 2. file name, 3. SONAME
        if elf is not None:
            _elf_changes(draft, found, elf)
    if entry.kernel_module:
        _kernel_module(cat, draft, dict(found.modinfo))
    if distribution is not None and found.linked_from is None:  # 4. the enclosing distribution
        _distribution(draft, entry, distribution, file.vpath, sha256)
    elif distribution is not None:  # a part linked into another's file: neither its version nor its RECORD digest
        draft.distribution = distribution.name
    version, source, version_range, conflicts = choose(draft.claims)
    evidence = draft.evidence + [c.evidence for c in draft.claims] + conflicts
    return ComponentMatch(
        name=entry.name, display=entry.display, kind=entry.kind, vendor=NVIDIA, version=version,
        version_source=source, license=draft.license, evidence=tuple(evidence), version_range=version_range,
        license_declared=draft.declared, confidence=draft.confidence, modifications=tuple(draft.modifications),
        versions=tuple(trusted_first(draft.claims)), distribution=draft.distribution,
        grafted_hash=draft.grafted_hash, module=draft.module, runpath=draft.runpath, modinfo=draft.modinfo,
        flavour=draft.flavour, declared_name=found.declared, linked_from=found.linked_from)


def _content(draft: _Draft, found: Seen) -> None:
    """What the bytes said: version markers, a tool's release banner (a tool named like NVIDIA's whose bytes hold
    none is less certain)."""
    draft.claims.extend(found.claims)
    if found.no_banner:
        draft.confidence = Confidence.MEDIUM
        draft.evidence.append("named like the NVIDIA tool, but its bytes hold no CUDA release banner")


def _names(draft: _Draft, found: Seen, file: Observation) -> None:
    """The version in the file name and the SONAME; an auditwheel graft; a kernel module's name."""
    m = found.name_match
    if m is not None:
        claim = name_claim(found.entry, m, f"file name {file.name!r}", VersionSource.FILE_NAME)
        if claim:
            draft.claims.append(claim)
        groups = m.groupdict()
        if groups.get("graft"):
            draft.modifications.append(Modification.AUDITWHEEL_GRAFTED)
            draft.grafted_hash = groups["graft"]
            draft.evidence.append(f"auditwheel-grafted name: '-{groups['graft']}' inserted before '.so'")
        if groups.get("module"):
            draft.module = groups["module"]
    elf = file.elf
    if elf is not None and elf.soname:
        soname = elf.soname
        sm = next((p.regex.fullmatch(soname) for p in found.entry.patterns if p.linux_stem
                   and p.regex.fullmatch(soname)), None)
        if sm is not None:
            claim = name_claim(found.entry, sm, f"SONAME {soname!r}", VersionSource.SONAME)
            if claim:
                draft.claims.append(claim)


def _elf_changes(draft: _Draft, found: Seen, elf: ElfFacts) -> None:
    """How the ELF file differs from what NVIDIA ships: SONAME missing or rewritten, RUNPATH added, stripped."""
    entry = found.entry
    linux_named = found.name_match is not None and any(
        p.linux_stem and p.regex.fullmatch(found.name_match.string) for p in entry.patterns)
    if elf.elf_type == "ET_DYN" and linux_named and entry.soname is not None:
        if elf.soname is None:
            draft.modifications.append(Modification.SONAME_MISSING)
            draft.evidence.append(f"no DT_SONAME (NVIDIA's {entry.display} has one)")
        elif not entry.soname.fullmatch(elf.soname):
            draft.modifications.append(Modification.SONAME_REWRITTEN)
            draft.evidence.append(f"SONAME {elf.soname!r} is not NVIDIA's ({entry.soname.pattern})")
    if elf.runpath or elf.rpath:
        draft.runpath = ":".join(elf.runpath or elf.rpath)
        if entry.runpath == "none":
            draft.modifications.append(Modification.RUNPATH_ADDED)
            draft.evidence.append(f"RUNPATH/RPATH {':'.join(elf.runpath or elf.rpath)!r} set; "
                                  "NVIDIA ships it without one")
    if entry.ships_symtab and not elf.has_symtab:
        draft.modifications.append(Modification.STRIPPED)
        draft.evidence.append("no .symtab, while NVIDIA ships it with one")


def _kernel_module(cat: Catalog, draft: _Draft, info: dict[str, str]) -> None:
    """A kernel module's own licence (its ``.modinfo`` ``license=`` field, read by :func:`observe`) and version."""
    if any(key in info for key in ("license", "version", "vermagic")):
        draft.modinfo = ModInfo(info.get("license"), info.get("version"), info.get("vermagic"))
    if "license" in info:
        declared = info["license"]
        draft.license, flavour = cat.kernel_licenses.get(declared, (None, "unknown"))
        draft.flavour = flavour
        draft.evidence.append(f".modinfo license={declared!r} -> {draft.license or 'unknown licence'} ({flavour})")
    elif "nvidia_id" in info and cat.kernel_id(info["nvidia_id"]) is not None:
        draft.license, draft.flavour = cat.kernel_id(info["nvidia_id"]) or (None, None)
        draft.evidence.append(f"no .modinfo; {cat.kernel_id_literal.decode()}{info['nvidia_id']!r} -> {draft.license} "
                              f"({draft.flavour})")
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
    draft.distribution = dist_name
    recorded = recorded_sha256(distribution, vpath)
    if recorded and sha256 is not None:
        actual = sha256() if callable(sha256) else sha256
        if actual and recorded.lower() != actual.lower():
            draft.modifications.append(Modification.SHA256_DIFFERS)
            draft.evidence.append(f"sha256 {actual} differs from {dist_name} RECORD {recorded}")


__all__ = ["ComponentMatch", "Observation", "VersionClaim", "VersionSource", "basename", "find", "gated_literal_set",
           "identify", "linked_into", "literal_set", "load_catalog", "name", "observe", "prepare", "window"]
