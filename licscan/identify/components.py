"""The inventory's components from the naming layer's per-file facts: NVIDIA parts and layers grouped across files
(one component per vendor, name, version, kind and licence), licence texts grouped by their normalised text, and
the Python distributions that are NVIDIA's or ship NVIDIA parts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from packaging.utils import canonicalize_name

from licscan.model import Component, ComponentKind, ComponentMatch, Distribution, LicenseTextMatch


def component_id(vendor: str, name: str, version: str | None, kind: ComponentKind) -> str:
    slug = f"{vendor or 'unknown'}/{name}@{version or 'unknown'}".lower().replace(" ", "-")
    return f"{kind.value}:{slug}"


def components(hits: list[tuple[ComponentMatch, str]]) -> list[Component]:
    """One component per (vendor, name, version, kind, licence); paths, evidence and properties merged, sorted."""
    groups: dict[tuple[str, str, str | None, ComponentKind, str | None], list[tuple[ComponentMatch, str]]] = {}
    for match, vpath in hits:
        groups.setdefault((match.vendor, match.name, match.version, match.kind, match.license), []).append(
            (match, vpath))
    out = []
    for (vendor, name, version, kind, _license), members in groups.items():
        paths = tuple(sorted({v for _, v in members}))
        first = members[0][0].to_component(component_id(vendor, name, version, kind), paths)
        evidence = sorted({e for m, v in members for e in (f"{v}: {x}" for x in m.evidence)})
        props = _merged_properties({p for m, v in members for p in m.to_component("", ()).properties})
        out.append(replace(first, evidence=tuple(evidence), properties=tuple(props)))
    return out


_CONFIDENCE = ("low", "medium", "high")


def _merged_properties(props: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The properties of a component named in several files: each file's own, except the two that describe how it
    was named (docs/layers.md), which must hold for the component as a whole -- ``confidence`` the highest of its
    files', ``signals`` the union of theirs (a report keeps one value per key)."""
    levels = [v for k, v in props if k == "confidence" and v in _CONFIDENCE]
    fired = sorted({s for k, v in props if k == "signals" for s in v.split(",") if s})
    out = {p for p in props if p[0] not in ("confidence", "signals") or (p[0] == "confidence" and not levels)}
    if levels:
        out.add(("confidence", max(levels, key=_CONFIDENCE.index)))
    if fired:
        out.add(("signals", ",".join(fired)))
    return sorted(out)


def license_components(texts: list[tuple[LicenseTextMatch, str]]) -> list[Component]:
    groups: dict[str, list[tuple[LicenseTextMatch, str]]] = {}
    for match, vpath in texts:
        groups.setdefault(match.normalized_sha256, []).append((match, vpath))
    out = []
    for members in groups.values():
        match = members[0][0]
        props = [("document", match.document), ("match_method", match.method), ("sha256", match.sha256)]
        if match.date:
            props.append(("eula_text_date", match.date))
        if match.translation_clause is not None:
            props.append(("translation_clause", "yes" if match.translation_clause else "no"))
        if match.variant:
            props.append(("variant", match.variant))
        vendor = "NVIDIA" if match.document.startswith(("nvidia", "cuda", "cudnn", "tensorrt")) else ""
        out.append(Component(component_id(vendor, match.document, match.date, ComponentKind.LICENSE_TEXT),
                             match.title, vendor, ComponentKind.LICENSE_TEXT, match.date, match.license,
                             tuple(sorted(v for _, v in members)), tuple(match.evidence), tuple(sorted(props))))
    return out


def distribution_components(distributions: Iterable[Distribution]) -> list[Component]:
    """Python distributions that are NVIDIA's or ship NVIDIA parts (kind python-distribution, the JSON report schema (licscan/schemas/report.schema.json))."""
    out = []
    for dist in distributions:
        if dist.ecosystem.value != "pypi":
            continue
        evidence = [f"{dist.vpath}: Name: {dist.name}, Version: {dist.version}"]
        props = [("ecosystem", "pypi")]
        if dist.license_declared:
            evidence.append(f"declared license: {dist.license_declared}")
            props.append(("license_declared", dist.license_declared))
        vendor = "NVIDIA" if canonicalize_name(dist.name).startswith("nvidia-") else ""
        out.append(Component(component_id(vendor or "pypi", dist.name, dist.version,
                                           ComponentKind.PYTHON_DISTRIBUTION),
                             dist.name, vendor, ComponentKind.PYTHON_DISTRIBUTION, dist.version,
                             dist.license_declared, (dist.vpath,), tuple(evidence), tuple(props)))
    return out


__all__ = ["component_id", "components", "distribution_components", "license_components"]
