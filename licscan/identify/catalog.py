"""Name NVIDIA components: match one file against the catalog in ``rules/catalog/nvidia.yaml`` (docs/architecture.md#layers).

Pure: :func:`identify` takes what the walker and ``inspect`` already know (virtual path, :class:`FileFacts`, the
enclosing :class:`Distribution`, the file's bytes for bounded literal probes) and returns facts; it never opens,
runs or writes anything. Versions follow the order of trust of issue 3: the file's own markers ("Cuda compilation
tools, release 12.4, V12.4.127"), its full file name (``libcublas.so.12.9.1.4``), its SONAME, then the enclosing
distribution's metadata (wheel ``METADATA`` ``Version:``, Debian ``Version``, conda ``version``) -- and the last
only when the catalog says that distribution ships the component (a torch wheel's version is not cuDNN's).

Content probes are ``find`` calls for literals the catalog names (``mmap.find`` / ``bytes.find``: memchr speed, no
regex over the file); a regex only parses the few bytes after a literal that was found.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from packaging.utils import canonicalize_name

from licscan.binary.modinfo import modinfo
from licscan.binary.probe import Literals, LiteralSet, find, window
from licscan.identify import signals
from licscan.knowledge import catalog_table
from licscan.model import ComponentKind, ComponentMatch, Confidence, FileFacts, FileFormat, VersionClaim, VersionSource
from licscan.vpath import basename

NVIDIA = "NVIDIA"


_TRUST = list(VersionSource)



# ----------------------------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern
    linux_stem: bool  # built from a `linux` stem: the SONAME check applies


@dataclass(frozen=True)
class _Entry:
    name: str
    display: str
    kind: ComponentKind
    license: str | None
    patterns: tuple[_Pattern, ...]
    soname: re.Pattern | None
    name_version: str
    distributions: dict[str, tuple[str, ...]]
    markers: tuple[tuple[bytes, re.Pattern, str], ...]
    banner: bytes | None
    kernel_module: bool
    executable: bool
    runpath: str | None  # "none": NVIDIA ships it without RUNPATH (verified)
    ships_symtab: bool


@dataclass(frozen=True)
class Catalog:
    entries: tuple[_Entry, ...]
    release_banner: bytes
    copyright: bytes
    probe_limit: int
    kernel_licenses: dict[str, tuple[str, str]]
    any_name: re.Pattern  # matches every name some entry's pattern matches (fewer names: a prefilter)

    def entry(self, name: str) -> _Entry:
        return next(e for e in self.entries if e.name == name)


_VERSION = r"(?P<version>\d+(?:\.\d+)*)"


def _stem_patterns(stem: str) -> list[str]:
    return [
        rf"lib(?:{stem})\.so(?:\.{_VERSION})?",
        rf"lib(?:{stem})-(?P<graft>[0-9a-f]{{8}})\.so(?:\.{_VERSION})?",
        rf"lib(?:{stem})(?:_static(?:_nocallback)?)?\.a",
        rf"lib(?:{stem})(?:\.{_VERSION})?\.dylib",
    ]


@functools.cache
def load_catalog() -> Catalog:
    data = catalog_table("nvidia")
    licenses = data["licenses"]
    entries = []
    for name, spec in data["components"].items():
        patterns: list[_Pattern] = []
        for stem in spec.get("linux", ()):
            patterns.extend(_Pattern(re.compile(p), True) for p in _stem_patterns(stem))
        patterns.extend(_Pattern(re.compile(p), False) for p in spec.get("names", ()))
        patterns.extend(_Pattern(re.compile(p, re.IGNORECASE), False) for p in spec.get("windows", ()))
        stems = spec.get("linux", ())
        soname = re.compile("|".join(rf"lib(?:{s})\.so(?:\.\d+)*" for s in stems)) if stems else None
        markers = tuple((m["literal"].encode("latin-1"), re.compile(m["regex"].encode("latin-1")), m["format"])
                        for m in spec.get("markers", ()))
        tool = spec.get("tool") or {}
        entries.append(_Entry(
            name=name, display=spec["display"], kind=ComponentKind(spec["kind"]),
            license=licenses.get(spec.get("license"), spec.get("license")), patterns=tuple(patterns),
            soname=soname, name_version=spec.get("name_version", "release"),
            distributions={k: tuple(v) for k, v in (spec.get("distributions") or {}).items()},
            markers=markers, banner=tool["banner"].encode() if tool.get("banner") else None,
            kernel_module=bool(spec.get("kernel_module")), executable=bool(spec.get("executable")),
            runpath=spec.get("runpath"), ships_symtab=bool(spec.get("ships_symtab"))))
    kernel = {k: (v["license"], v["flavour"]) for k, v in data["kernel_licenses"].items()}
    return Catalog(tuple(entries), data["release_banner"].encode(), data["nvidia_copyright"].encode(),
                   int(data["probe_limit"]), kernel, _any_name(entries))


def _any_name(entries: list[_Entry]) -> re.Pattern:
    """One regex that matches a name when some entry's pattern does: the alternation of every pattern with its
    named groups made plain (group names repeat across patterns; nothing refers back to them) and its
    IGNORECASE kept as an inline flag. A file name it does not match is no catalogued name (13,000 files of an
    installed environment each took 346 ``fullmatch`` calls)."""
    parts = []
    for entry in entries:
        for pattern in entry.patterns:
            text = pattern.regex.pattern
            if "(?P=" in text or "(?(" in text:
                raise ValueError(f"rules/catalog/nvidia.yaml: {entry.name}: back-references are not supported")
            text = re.sub(r"\(\?P<\w+>", "(?:", text)
            parts.append(f"(?i:{text})" if pattern.regex.flags & re.IGNORECASE else f"(?:{text})")
    return re.compile("|".join(parts) or "(?!)")


@functools.cache
def literal_set() -> LiteralSet:
    """Every literal the catalog and the translation-layer signals look for in a whole file: searched together,
    in one pass over the file, the first time one of them is asked for."""
    cat = load_catalog()
    own = [cat.release_banner, cat.copyright]
    own += [e.banner for e in cat.entries if e.banner is not None]
    own += [literal for e in cat.entries for literal, _regex, _fmt in e.markers]
    return LiteralSet(tuple(own) + signals.literal_set().needles)


# ----------------------------------------------------------------------------------------------- identify


def identify(vpath: str, facts: FileFacts | None, distribution: Any = None, data: Any = None, *,
             sha256: str | Callable[[], str] | None = None,
             with_signals: bool = True) -> tuple[ComponentMatch, ...]:
    """Components in the file at ``vpath``: NVIDIA catalog matches, plus (``with_signals``) translation-layer and
    non-NVIDIA GPU runtime facts from :mod:`licscan.identify.signals`.

    ``distribution`` is the enclosing :class:`licscan.inventory.items.Distribution` (or None); ``data`` the file's
    bytes (bytes or mmap, or None: then no content probe runs); ``sha256`` the file's hex digest (or a function that
    computes it, called only when the distribution's RECORD lists a digest for ``vpath``), to compare with that
    RECORD. A CUDA-named file that a high-confidence signal shows to be a drop-in
    replacement (``libcuda.so.1`` importing ``libamdhip64.so``) is reported as that layer, not as NVIDIA's.
    """
    cat = load_catalog()
    name = basename(vpath)
    elf = facts.elf if facts is not None else None
    size = facts.size if facts is not None else (len(data) if data is not None else 0)
    found: list[tuple[_Entry, re.Match | None, str]] = []
    for entry in cat.entries if cat.any_name.fullmatch(name) else ():
        for pattern in entry.patterns:
            m = pattern.regex.fullmatch(name)
            if m:
                found.append((entry, m, "file name"))
                break
    if not found and elf is not None and elf.soname:
        for entry in cat.entries:
            if entry.soname is not None and entry.soname.fullmatch(elf.soname):
                found.append((entry, None, "SONAME"))
                break
    literals = Literals(data, literal_set())
    content_tool = _tool_by_content(cat, facts, literals, size, tuple(f[0].name for f in found))
    if content_tool is not None:
        entry, _release, evidence = content_tool
        found = [f for f in found if f[0].kind is not ComponentKind.DEVELOPER_TOOL]
        found.append((entry, None, evidence))
    matches = [_build(cat, entry, m, how, vpath, name, facts, distribution, literals, sha256, size)
               for entry, m, how in found]
    if with_signals:
        layer_matches = signals.detect(vpath, facts, data, literals)
        impostor = [s for s in layer_matches if s.confidence == Confidence.HIGH
                    and dict(s.properties).get("replaces") == "cuda-named"]
        if impostor:
            dropped = [m for m in matches if m.vendor == NVIDIA]
            matches = [m for m in matches if m.vendor != NVIDIA]
            layer_matches = tuple(
                _with_evidence(s, tuple(f"named like NVIDIA {m.display} ({name}), but not NVIDIA's file"
                                        for m in dropped)) if s in impostor else s
                for s in layer_matches)
        matches.extend(layer_matches)
    return tuple(matches)


def _with_evidence(match: ComponentMatch, extra: tuple[str, ...]) -> ComponentMatch:
    from dataclasses import replace

    return replace(match, evidence=match.evidence + extra)


def _is_executable(facts: FileFacts | None) -> bool:
    elf = facts.elf if facts is not None else None
    if elf is None:
        return False
    return elf.elf_type == "ET_EXEC" or (elf.elf_type == "ET_DYN" and elf.soname is None)


def _tool_by_content(cat: Catalog, facts, literals: Literals, size: int, prefer: tuple[str, ...] = ()):
    """An NVIDIA developer tool recognised by its banner, whatever its file name: the CUDA release line, NVIDIA's
    copyright notice and the tool's own banner ("Ptx optimizing assembler") must all be in the file."""
    data = literals.data
    if data is None or not _is_executable(facts) or size > cat.probe_limit:
        return None
    at = literals.find(cat.release_banner)
    if at < 0 or literals.find(cat.copyright) < 0:
        return None
    hits = [(entry, where) for entry in cat.entries if entry.banner is not None
            for where in (literals.find(entry.banner),) if where >= 0]
    if not hits:
        return None
    # A tool may quote another's banner: prefer the one its own name says, else the first in catalog order.
    named = [h for h in hits if h[0].name in prefer]
    entry, where = (named or hits)[0]
    line = _cstring(data, at)
    return entry, line, (f"content: banner {entry.banner.decode()!r} at {where:#x}, "
                         f"{line!r} at {at:#x}, {cat.copyright.decode()!r}")


def _cstring(data, offset: int, limit: int = 120) -> str:
    raw = window(data, offset, limit).split(b"\0", 1)[0].split(b"\n", 1)[0]
    return raw.decode("latin-1")


def _build(cat: Catalog, entry: _Entry, m: re.Match | None, how: str, vpath: str, name: str, facts, distribution,
           literals: Literals, sha256: str | Callable[[], str] | None, size: int) -> ComponentMatch:
    data = literals.data
    evidence = [f"{how} {name!r} matches {entry.display} (rules/catalog/nvidia.yaml: {entry.name})"
                if how in ("file name", "SONAME") else f"{entry.display}: {how}"]
    if how == "SONAME":
        evidence[0] = f"SONAME {facts.elf.soname!r} matches {entry.display} (rules/catalog/nvidia.yaml: {entry.name})"
    elf = facts.elf if facts is not None else None
    claims: list[VersionClaim] = []
    properties: list[tuple[str, str]] = []
    modifications: list[str] = []
    confidence = Confidence.HIGH
    license_ = entry.license
    # 1. markers inside the file
    claims.extend(_marker_claims(cat, entry, literals, size))
    if entry.banner is not None and data is not None and size <= cat.probe_limit:
        at = literals.find(cat.release_banner)
        if at >= 0:
            claims.extend(_release_claim(data, at, cat.release_banner))
        elif how == "file name" and facts is not None and facts.format is not FileFormat.UNKNOWN:
            confidence = Confidence.MEDIUM
            evidence.append("named like the NVIDIA tool, but its bytes hold no CUDA release banner")
    # 2. file name, 3. SONAME
    if m is not None:
        claim = _name_claim(entry, m, f"file name {name!r}", VersionSource.FILE_NAME)
        if claim:
            claims.append(claim)
        groups = m.groupdict()
        if groups.get("graft"):
            modifications.append("auditwheel-grafted")
            properties.append(("grafted_hash", groups["graft"]))
            evidence.append(f"auditwheel-grafted name: '-{groups['graft']}' inserted before '.so'")
        if groups.get("module"):
            properties.append(("module", groups["module"]))
    if elf is not None and elf.soname:
        sm = next((p.regex.fullmatch(elf.soname) for p in entry.patterns if p.linux_stem
                   and p.regex.fullmatch(elf.soname)), None)
        if sm is not None:
            claim = _name_claim(entry, sm, f"SONAME {elf.soname!r}", VersionSource.SONAME)
            if claim:
                claims.append(claim)
    linux_named = m is not None and any(p.linux_stem and p.regex.fullmatch(name) for p in entry.patterns)
    if elf is not None and elf.elf_type == "ET_DYN" and linux_named and entry.soname is not None:
        if elf.soname is None:
            modifications.append("soname-missing")
            evidence.append(f"no DT_SONAME (NVIDIA's {entry.display} has one)")
        elif not entry.soname.fullmatch(elf.soname):
            modifications.append("soname-rewritten")
            evidence.append(f"SONAME {elf.soname!r} is not NVIDIA's ({entry.soname.pattern})")
    if elf is not None and (elf.runpath or elf.rpath):
        properties.append(("runpath", ":".join(elf.runpath or elf.rpath)))
        if entry.runpath == "none":
            modifications.append("runpath-added")
            evidence.append(f"RUNPATH/RPATH {':'.join(elf.runpath or elf.rpath)!r} set; NVIDIA ships it without one")
    if elf is not None and entry.ships_symtab and not elf.has_symtab:
        modifications.append("stripped")
        evidence.append("no .symtab, while NVIDIA ships it with one")
    # kernel modules: the module's own licence
    if entry.kernel_module:
        info = modinfo(vpath, facts, data)
        for key in ("license", "version", "vermagic"):
            if key in info:
                properties.append((f"modinfo_{key}", info[key]))
        if "license" in info:
            declared = info["license"]
            license_, flavour = cat.kernel_licenses.get(declared, (None, "unknown"))
            properties.append(("flavour", flavour))
            evidence.append(f".modinfo license={declared!r} -> {license_ or 'unknown licence'} ({flavour})")
        else:
            confidence = Confidence.MEDIUM
            evidence.append("module licence not read (no .modinfo license= field found)")
        if "version" in info:
            claims.append(VersionClaim(VersionSource.MODINFO, info["version"], True,
                                       f".modinfo version={info['version']!r}"))
    # 4. the enclosing distribution
    declared = None
    if distribution is not None:
        declared = getattr(distribution, "license_declared", None)
        dist_name = getattr(distribution, "name", "")
        if declared:
            evidence.append(f"declared: {declared} (by {dist_name} {getattr(distribution, 'version', '') or ''})".rstrip())
        claim = _distribution_claim(entry, distribution)
        if claim:
            claims.append(claim)
        properties.append(("distribution", dist_name))
        recorded = _recorded_sha256(distribution, vpath)
        actual = sha256() if recorded and callable(sha256) else sha256
        if recorded and actual and recorded.lower() != actual.lower():
            modifications.append("sha256-differs-from-record")
            evidence.append(f"sha256 {actual} differs from {dist_name} RECORD {recorded}")
    version, source, version_range, conflicts = _choose(claims)
    evidence.extend(c.evidence for c in claims)
    evidence.extend(conflicts)
    return ComponentMatch(
        name=entry.name, display=entry.display, kind=entry.kind, vendor=NVIDIA, version=version,
        version_source=source, license=license_, evidence=tuple(evidence), version_range=version_range,
        license_declared=declared, confidence=confidence, modifications=tuple(modifications),
        versions=tuple(sorted(claims, key=lambda c: _TRUST.index(c.source))), properties=tuple(properties))


def _marker_claims(cat: Catalog, entry: _Entry, literals: Literals, size: int) -> list[VersionClaim]:
    out = []
    data = literals.data
    if data is None or size > cat.probe_limit:
        return out
    for literal, regex, fmt in entry.markers:
        at = literals.find(literal)
        if at < 0:
            continue
        tail = window(data, at + len(literal), 64)
        m = regex.match(tail)
        if not m:
            continue
        text = (literal + tail[: m.end()]).decode("latin-1")
        if fmt == "cudart":
            v = int(m.group("v"))
            value, exact = f"{v // 1000}.{(v % 1000) // 10}", False
        else:
            value = m.group("version").decode()
            exact = value.count(".") >= 2
        out.append(VersionClaim(VersionSource.MARKER, value, exact, f"marker {text!r} at {at:#x}"))
    return out


_RELEASE = re.compile(rb"(\d+\.\d+), V(\d+\.\d+\.\d+)")


def _release_claim(data, at: int, banner: bytes) -> list[VersionClaim]:
    tail = window(data, at + len(banner), 40)
    m = _RELEASE.match(tail)
    if not m:
        return []
    line = (banner + tail[: m.end()]).decode("latin-1")
    return [VersionClaim(VersionSource.MARKER, m.group(2).decode(), True, f"marker {line!r} at {at:#x}")]


def _name_claim(entry: _Entry, m: re.Match, what: str, source: VersionSource) -> VersionClaim | None:
    groups = m.groupdict()
    mode = entry.name_version
    if groups.get("version"):
        parts = groups["version"].split(".")
    elif groups.get("major"):
        parts = [groups["major"]] + ([groups["minor"]] if groups.get("minor") else [])
    else:
        return None
    if mode == "abi":
        return None
    if mode == "driver":
        if len(parts) >= 2 and int(parts[0]) >= 100:
            return VersionClaim(source, ".".join(parts), True, f"{what}: driver version {'.'.join(parts)}")
        return None
    if mode == "major" and len(parts) < 3:
        return VersionClaim(source, parts[0], False, f"{what}: major version {parts[0]}")
    value = ".".join(parts)
    exact = len(parts) >= 3
    return VersionClaim(source, value, exact, f"{what}: version {value}" + ("" if exact else " (prefix)"))


_ECOSYSTEM = {"pypi": VersionSource.DISTRIBUTION, "deb": VersionSource.DEBIAN, "conda": VersionSource.CONDA}
_ECO_KEY = {"pypi": "pypi", "deb": "debian", "conda": "conda"}


def _normalise_dist_name(name: str) -> str:
    return canonicalize_name(name)


def _distribution_claim(entry: _Entry, distribution) -> VersionClaim | None:
    eco = getattr(getattr(distribution, "ecosystem", None), "value", None) or "pypi"
    patterns = entry.distributions.get(_ECO_KEY.get(eco, eco), ())
    dname = _normalise_dist_name(getattr(distribution, "name", "") or "")
    if not any(fnmatch.fnmatchcase(dname, p.lower()) for p in patterns):
        return None
    version = getattr(distribution, "version", None)
    if not version:
        return None
    if eco == "deb":
        # "[epoch:]upstream[-debian]"; NVIDIA packages write "11.2.152~11.2.2-3+deb11u3"
        version = version.split(":", 1)[-1].split("~", 1)[0].rsplit("-", 1)[0]
    m = re.match(r"\d+(?:\.\d+)*", version)
    if not m:
        return None
    value = m.group(0)
    label = {"pypi": "METADATA", "deb": "control", "conda": "info/index.json"}.get(eco, "metadata")
    return VersionClaim(_ECOSYSTEM.get(eco, VersionSource.DISTRIBUTION), value, value.count(".") >= 2,
                        f"distribution {getattr(distribution, 'name', '')} {version} ({label})")


def _recorded_sha256(distribution, vpath: str) -> str | None:
    for path, digest in getattr(distribution, "files", ()) or ():
        if path == vpath:
            return digest
    return None


def _consistent(value: str, prefix: str) -> bool:
    a, b = value.split("."), prefix.split(".")
    return a[: len(b)] == b


def with_claims(match: ComponentMatch, claims) -> ComponentMatch:
    """``match`` with its version chosen again from ``claims`` (duplicates dropped)."""
    claims = sorted(dict.fromkeys(claims), key=lambda c: _TRUST.index(c.source))
    version, source, version_range, conflicts = _choose(claims)
    evidence = tuple(dict.fromkeys(match.evidence + tuple(c.evidence for c in claims) + tuple(conflicts)))
    return replace(match, version=version, version_source=source, version_range=version_range,
                   versions=tuple(claims), evidence=evidence)


def _choose(claims: list[VersionClaim]) -> tuple[str | None, VersionSource | None, str | None, list[str]]:
    """The most trusted exact claim that agrees with every more trusted partial claim; else the most trusted
    prefix as a range ("12.x")."""
    ordered = sorted(claims, key=lambda c: _TRUST.index(c.source))
    partial_seen: list[VersionClaim] = []
    conflicts: list[str] = []
    for claim in ordered:
        if not claim.exact:
            partial_seen.append(claim)
            continue
        bad = [p for p in partial_seen if not _consistent(claim.value, p.value)]
        if bad:
            conflicts.append(f"version conflict: {claim.evidence} contradicts {bad[0].evidence}")
            continue
        return claim.value, claim.source, None, conflicts
    if partial_seen:
        best = partial_seen[0]
        return None, best.source, f"{best.value}.x", conflicts
    return None, None, None, conflicts


__all__ = ["ComponentMatch", "VersionClaim", "VersionSource", "basename", "find", "identify", "load_catalog", "window"]
