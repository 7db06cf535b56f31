"""The inventory's components from the naming layer's per-file facts: NVIDIA parts and layers grouped across files
(one component per vendor, name, version, kind and licence), licence texts grouped by their normalised text, and
the Python distributions that are NVIDIA's or ship NVIDIA parts."""

from __future__ import annotations

import enum
import fnmatch
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import TypeVar

from packaging.utils import canonicalize_name

from licscan.identify.catalog_table import load_catalog
from licscan.model import (
    CONFIDENCE_ORDER,
    Component,
    ComponentKind,
    ComponentMatch,
    Distribution,
    LicenseTextMatch,
    ModInfo,
)

_T = TypeVar("_T")


def component_id(vendor: str, name: str, version: str | None, kind: ComponentKind) -> str:
    slug = f"{vendor or 'unknown'}/{name}@{version or 'unknown'}".lower().replace(" ", "-")
    return f"{kind.value}:{slug}"


_Key = tuple[str, str, str | None, ComponentKind, str | None, str | None, str | None]


def components(hits: list[tuple[ComponentMatch, str]]) -> list[Component]:
    """One component per (vendor, name, version, kind, licence, static library it was linked from, name it
    declares); paths, evidence and properties merged, sorted. A part linked into other binaries, or shipped under
    another name, is a component of its own: Attachment A is read for its own name (``linked_from``,
    ``declared_name``), which every path of a component shares."""
    groups: dict[_Key, list[tuple[ComponentMatch, str]]] = {}
    for match, vpath in hits:
        # A linked part has no file of its own to name its release: its range ("12.9.x") stands for its version.
        version = match.version or (match.version_range if match.linked_from else None)
        key = (match.vendor, match.name, version, match.kind, match.license, match.linked_from, match.declared_name)
        groups.setdefault(key, []).append((match, vpath))
    out = []
    for (vendor, name, version, kind, _license, _linked, _declared), members in groups.items():
        paths = tuple(sorted({v for _, v in members}))
        first = members[0][0].to_component(component_id(vendor, name, version, kind), paths)
        evidence = sorted({e for m, v in members for e in (f"{v}: {x}" for x in m.evidence)})
        parts = [m.to_component("", ()) for m, _ in members]
        out.append(replace(_merged(first, parts), evidence=tuple(evidence)))
    return _distinct_ids(out)


def _distinct_ids(found: list[Component]) -> list[Component]:
    """An id names one component in the report, its findings and the SBOM: components that differ only in their
    licence (a proprietary driver's nvidia.ko, ``license=NVIDIA``, beside its nvidia-drm.ko, ``license=MIT``, of the
    same version) get their licence in the id."""
    # The same part shipped under its own name, under another, and linked into a binary: the name it is read for
    # (``linked_from``, ``declared_name``) is added to the id of the latter two.
    counts = Counter(c.id for c in found)
    found = [replace(c, id=f"{c.id}+{(c.linked_from or c.declared_names)[0].lower()}")
             if counts[c.id] > 1 and (c.linked_from or c.declared_names) else c for c in found]
    counts = Counter(c.id for c in found)
    return [replace(c, id=f"{c.id}+{(c.license or 'unknown').lower().replace(' ', '-')}") if counts[c.id] > 1 else c
            for c in found]


def _merged(first: Component, parts: list[Component]) -> Component:
    """A component named in several files: every file's value of each fact (distinct, in the order of their
    serialized strings), except the two that describe how it was named (docs/layers.md), which must hold for the
    component as a whole -- ``confidence`` the highest of its files', the layer's signals the union of theirs."""
    levels = [p.confidence for p in parts if p.confidence is not None]
    layers = [p.layer for p in parts if p.layer is not None]
    layer = None
    if layers:
        layer = replace(layers[0], signals=tuple(sorted({s for x in layers for s in x.signals if s})),
                        replaces=any(x.replaces for x in layers))
    return replace(
        first, confidence=max(levels, key=CONFIDENCE_ORDER.index) if levels else None,
        version_sources=_union(p.version_sources for p in parts),
        version_ranges=_union(p.version_ranges for p in parts),
        licenses_declared=_union(p.licenses_declared for p in parts),
        modifications=_union(p.modifications for p in parts),
        distributions=_union(p.distributions for p in parts), grafted_hashes=_union(p.grafted_hashes for p in parts),
        modules=_union(p.modules for p in parts), runpaths=_union(p.runpaths for p in parts),
        modinfo=_union(p.modinfo for p in parts), flavours=_union(p.flavours for p in parts), layer=layer)


def _union(values: Iterable[tuple[_T, ...]]) -> tuple[_T, ...]:
    """The distinct values, in the order of their serialized strings (enums by value)."""
    return tuple(sorted({v for same in values for v in same}, key=_sort_key))


def _sort_key(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, ModInfo):
        return repr((value.license or "", value.version or "", value.vermagic or ""))
    return str(value)


def license_components(texts: list[tuple[LicenseTextMatch, str]]) -> list[Component]:
    groups: dict[str, list[tuple[LicenseTextMatch, str]]] = {}
    for match, vpath in texts:
        groups.setdefault(match.normalized_sha256, []).append((match, vpath))
    out = []
    for members in groups.values():
        match = members[0][0]
        vendor = match.vendor
        out.append(Component(component_id(vendor, match.document, match.date, ComponentKind.LICENSE_TEXT),
                             match.title, vendor, ComponentKind.LICENSE_TEXT, match.date, match.license,
                             tuple(sorted(v for _, v in members)), tuple(match.evidence), license_text=match))
    return out


def _nvidia_distribution(name: str) -> bool:
    """Whether a PyPI distribution is NVIDIA's: an ``nvidia-*`` name, or one the catalog says ships an NVIDIA part
    (``cutensor-cu12``, ``tensorrt-cu12-libs``; rules/catalog/nvidia.yaml ``distributions``)."""
    canonical = canonicalize_name(name)
    return canonical.startswith("nvidia-") or any(
        fnmatch.fnmatchcase(canonical, pattern.lower())
        for entry in load_catalog().entries for pattern in entry.distributions.get("pypi", ()))


def distribution_components(distributions: Iterable[Distribution]) -> list[Component]:
    """Python distributions that are NVIDIA's or ship NVIDIA parts (kind python-distribution, the JSON report schema (licscan/schemas/report.schema.json))."""
    out = []
    for dist in distributions:
        if dist.ecosystem.value != "pypi":
            continue
        evidence = [f"{dist.vpath}: Name: {dist.name}, Version: {dist.version}"]
        if dist.license_declared:
            evidence.append(f"declared license: {dist.license_declared}")
        vendor = "NVIDIA" if _nvidia_distribution(dist.name) else ""
        out.append(Component(component_id(vendor or "pypi", dist.name, dist.version,
                                           ComponentKind.PYTHON_DISTRIBUTION),
                             dist.name, vendor, ComponentKind.PYTHON_DISTRIBUTION, dist.version,
                             dist.license_declared, (dist.vpath,), tuple(evidence), ecosystem=dist.ecosystem,
                             licenses_declared=(dist.license_declared,) if dist.license_declared else ()))
    return out


__all__ = ["component_id", "components", "distribution_components", "license_components"]
