"""Version claims of an NVIDIA component and the choice between them (order of trust: the file's own markers, its
file name, its SONAME, then the enclosing distribution's metadata -- the last only when the catalog says that
distribution ships the component; :class:`licscan.model.VersionSource` lists them most trusted first)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from licscan.binary import pe
from licscan.binary.buffer import Buffer
from licscan.binary.errors import FormatError
from licscan.binary.probe import Literals, occurrence_table, window
from licscan.identify.catalog_table import Entry, Marker, Static
from licscan.model import DeviceImage, Distribution, Ecosystem, VersionClaim, VersionSource

_TRUST = list(VersionSource)


def trusted_first(claims: Iterable[VersionClaim]) -> list[VersionClaim]:
    return sorted(claims, key=lambda c: _TRUST.index(c.source))


def marker_claims(entry: Entry, literals: Literals) -> list[VersionClaim]:
    """Claims from the version markers the catalog lists for ``entry`` ("#define CUDART_VERSION 12040")."""
    out: list[VersionClaim] = []
    data = literals.data
    if data is None:
        return out
    for marker in entry.markers:
        if marker.resource:
            continue
        claim = _claim(marker, data, literals.find(marker.literal))
        if claim is not None:
            out.append(claim)
    return out


#: Bytes of a ``.rsrc`` section searched for version-resource strings (NVIDIA's DLLs: 1.5 to 27 KiB; cuDNN 9.28's
#: 209 MiB engines DLL: 27 KiB): a hostile section is not read whole.
RESOURCE_LIMIT = 4 << 20


def resource_claims(entry: Entry, data: Buffer) -> list[VersionClaim]:
    """Claims from the markers of ``entry`` that are strings of a PE image's version resource ("NVIDIA CUDA Runtime,
    Version 12.9.79" in UTF-16): searched in the image's ``.rsrc`` section (its headers and that section are read,
    never the whole image). Not a PE image, or none: no claim."""
    markers = [m for m in entry.markers if m.resource]
    if not markers:
        return []
    try:
        view = pe.read_pe(data)
    except FormatError:
        return []
    out: list[VersionClaim] = []
    for section in view.sections:
        if section.name != ".rsrc" or not section.has_bytes:
            continue
        raw = window(data, section.offset, min(section.size, RESOURCE_LIMIT))
        for marker in markers:
            at = raw.find(marker.literal)
            claim = _claim(marker, data, section.offset + at if at >= 0 else -1)
            if claim is not None:
                out.append(claim)
    return out


#: Bytes after a marker's literal its regex may read: 48 characters in UTF-16 ("CORE Library, Version 13.2.0.93"
#: after NPP's "NVIDIA CUDA NPP" is 31; 32 characters were read before).
MARKER_TAIL = 96


def _claim(marker: Marker, data: Buffer, at: int) -> VersionClaim | None:
    """The claim of ``marker`` found at ``at`` (-1: not found)."""
    if at < 0:
        return None
    tail = marker.text(window(data, at + len(marker.literal), MARKER_TAIL))
    m = marker.regex.match(tail)
    if not m:
        return None
    text = marker.literal.decode(marker.encoding) + tail[: m.end()]
    if marker.format == "cudart":
        v = int(m.group("v"))
        value, exact = f"{v // 1000}.{(v % 1000) // 10}", False
    else:
        value = m.group("version")
        exact = marker.format == "dotted" and value.count(".") >= 2
    return VersionClaim(VersionSource.MARKER, value, exact, f"marker {text!r} at {at:#x}")


#: Occurrences of one version-code prefix kept (a hostile file may repeat it): past this many it says nothing.
CODE_LIMIT = 4096


def code_claims(static: Static, data: Buffer, regions: Iterable[tuple[int, int]] | None = None
                ) -> list[VersionClaim]:
    """The release a statically linked runtime states in its version query's code (``version_code`` of
    rules/catalog/nvidia.yaml): each place where a prefix is followed by a 16-bit CUDART_VERSION (``1000 * major +
    10 * minor``) and the suffix. One claim when every such place agrees; none when they differ or none is found.
    ``regions``: the ``(start, end)`` ranges searched, ascending (a host binary's code, licscan/binary/regions.py;
    None: all of ``data``); the code lies whole in one of them."""
    prefixes = [code.prefix for code in static.version_code]
    if not prefixes:
        return []
    values: dict[int, int] = {}
    for start, end in ((0, len(data)),) if regions is None else regions:
        tables = occurrence_table(data, prefixes, start, end, limit=CODE_LIMIT)
        for code, offsets in zip(static.version_code, tables, strict=True):
            for at in offsets or ():
                raw = window(data, at + len(code.prefix), min(2 + len(code.suffix), end - at - len(code.prefix)))
                if raw[2:] != code.suffix:
                    continue
                v = int.from_bytes(raw[:2], "little")
                if v % 10 == 0 and 9000 <= v < 100000:
                    values.setdefault(v, at)
    if len(values) != 1:
        return []
    (v, at), = values.items()
    value = f"{v // 1000}.{(v % 1000) // 10}"
    return [VersionClaim(VersionSource.MARKER, value, False,
                         f"CUDART_VERSION {v} stored by the runtime's version query at {at:#x}")]


def device_code_claim(images: Iterable[DeviceImage]) -> VersionClaim | None:
    """The toolkit of the device code in a binary, as the release of a runtime statically linked beside it: the
    major.minor every image's toolkit range lies in (else the major), from the images whose range is bounded."""
    bounds = [(rng.low, rng.high) for rng in (image.toolkit for image in images) if rng is not None]
    known = [(lo, hi) for low, high in bounds if low and high
             for lo, hi in ((_release(low), _release(high)),) if lo is not None and hi is not None]
    if not known:
        return None
    low, high = min(lo for lo, _ in known), max(hi for _, hi in known)
    if low[:2] == high[:2]:
        value = ".".join(str(n) for n in low[:2])
    elif low[0] == high[0]:
        value = str(low[0])
    else:
        return None
    return VersionClaim(VersionSource.DEVICE_CODE, value, False,
                        f"toolkit {value} of the {len(known)} device images linked beside it")


def _release(text: str) -> tuple[int, ...] | None:
    parts = text.split(".")
    return tuple(int(p) for p in parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else None


_RELEASE = re.compile(rb"(\d+\.\d+), V(\d+\.\d+\.\d+)")


def release_claim(data: Buffer, at: int, banner: bytes) -> list[VersionClaim]:
    """The claim of the "Cuda compilation tools, release 12.4, V12.4.127" line found at ``at``."""
    tail = window(data, at + len(banner), 40)
    m = _RELEASE.match(tail)
    if not m:
        return []
    line = (banner + tail[: m.end()]).decode("latin-1")
    return [VersionClaim(VersionSource.MARKER, m.group(2).decode(), True, f"marker {line!r} at {at:#x}")]


#: CUDA release lines of one file read for a linked library's release (warp-lang 1.19.0's warp.so holds 104, one per
#: toolkit note of its device code and the library's own): past this many the file says nothing.
BANNER_LIMIT = 4096


def banner_claims(data: Buffer, banner: bytes) -> list[VersionClaim]:
    """The release of a library linked into a binary that holds its CUDA release line (``release: banner`` of
    rules/catalog/nvidia.yaml: "Cuda compilation tools, release 13.4, V13.4.92"): one claim when every such line in
    the file states the same release; none when they differ (device code of another toolkit beside it), none is
    found, or there are more than :data:`BANNER_LIMIT`."""
    offsets, = occurrence_table(data, [banner], limit=BANNER_LIMIT)
    lines: dict[bytes, tuple[bytes, int]] = {}  # release -> (the line, its first offset)
    count = 0
    for at in offsets or ():
        m = _RELEASE.match(window(data, at + len(banner), 40))
        if m is not None:  # (a format string, "release %d.%d", states none)
            lines.setdefault(m.group(2), (banner + m.group(0), at))
            count += 1
    if len(lines) != 1:
        return []
    (release, (line, at)), = lines.items()
    return [VersionClaim(VersionSource.MARKER, release.decode(), True,
                         f"marker {line.decode('latin-1')!r} at {at:#x}, the release of all "
                         f"{count} CUDA release lines of the file")]


def name_claim(entry: Entry, m: re.Match[str], what: str, source: VersionSource) -> VersionClaim | None:
    """The claim of a file name or SONAME matched by one of ``entry``'s patterns (``name_version`` says how)."""
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


_ECOSYSTEM = {Ecosystem.PYPI: VersionSource.DISTRIBUTION, Ecosystem.DEBIAN: VersionSource.DEBIAN,
              Ecosystem.CONDA: VersionSource.CONDA}
_ECO_KEY = {Ecosystem.PYPI: "pypi", Ecosystem.DEBIAN: "debian", Ecosystem.CONDA: "conda"}
_LABEL = {Ecosystem.PYPI: "METADATA", Ecosystem.DEBIAN: "control", Ecosystem.CONDA: "info/index.json"}


def distribution_ships(entry: Entry, distribution: Distribution) -> bool:
    """Whether the catalog says ``distribution`` ships ``entry`` (its ``distributions`` patterns)."""
    # Imported here: packaging.utils imports packaging.tags (logging, platform, subprocess, sysconfig: ~10 ms of
    # start-up), which naming a file with no distribution (licscan inspect) does not need.
    from packaging.utils import canonicalize_name

    patterns = entry.distributions.get(_ECO_KEY[distribution.ecosystem], ())
    dname = canonicalize_name(distribution.name or "")
    return any(fnmatch.fnmatchcase(dname, p.lower()) for p in patterns)


def distribution_claim(entry: Entry, distribution: Distribution) -> VersionClaim | None:
    """The claim of the enclosing distribution's version, when the catalog says that distribution ships ``entry``."""
    eco = distribution.ecosystem
    if not distribution_ships(entry, distribution):
        return None
    version = distribution.version
    if not version:
        return None
    if eco is Ecosystem.DEBIAN:
        version = debian_part_version(version)
    m = re.match(r"\d+(?:\.\d+)*", version)
    if not m:
        return None
    value = m.group(0)
    return VersionClaim(_ECOSYSTEM[eco], value, value.count(".") >= 2,
                        f"distribution {distribution.name} {version} ({_LABEL[eco]})")


def debian_part_version(version: str) -> str:
    """The version of the part a Debian package of the CUDA toolkit holds. Debian Policy 5.6.12: the version is
    "[epoch:]upstream_version[-debian_revision]" and "~" sorts before anything, so Debian's nvidia-cuda-toolkit
    source writes "<part>~<CUDA release>" ("11.2.152~11.2.2-3+deb11u3": CUDA Runtime 11.2.152 of CUDA 11.2.2);
    where a part's number went back, it prefixes one that sorts higher and a "+~": "11.1.1+~10.3.5.147~12.4.1-2" is
    cuRAND 10.3.5.147 of CUDA 12.4.1, not 11.1.1."""
    upstream = version.split(":", 1)[-1]
    if "-" in upstream:
        upstream = upstream.rsplit("-", 1)[0]
    parts = upstream.split("~")
    while len(parts) > 1 and parts[0].endswith("+"):
        parts.pop(0)
    return parts[0]


def _consistent(value: str, prefix: str) -> bool:
    a, b = value.split("."), prefix.split(".")
    return a[: len(b)] == b


def choose(claims: list[VersionClaim]) -> tuple[str | None, VersionSource | None, str | None, list[str]]:
    """The most trusted exact claim that agrees with every more trusted partial claim; else the most trusted
    prefix as a range ("12.x"). Returns (version, its source, range, conflict notes)."""
    partial_seen: list[VersionClaim] = []
    conflicts: list[str] = []
    for claim in trusted_first(claims):
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


__all__ = ["banner_claims", "choose", "code_claims", "debian_part_version", "device_code_claim", "distribution_claim", "distribution_ships", "marker_claims", "name_claim",
           "release_claim", "trusted_first"]
