"""The packages of an SBOM that the input ships: its distributions (a wheel, a .deb, a conda package) and the
components licscan named in it, each with its identifiers (purl, CPE), licences and identification evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packageurl import PackageURL
from packaging.utils import canonicalize_name

from licscan.escape import cpe_value
from licscan.knowledge import load_table
from licscan.model import Component, ComponentKind, Confidence, Distribution, component_properties, release_of
from licscan.sbom import ids
from licscan.sbom.licenses import normalise
from licscan.sbom.nodes import NVIDIA, Digests, Method, PackageNode
from licscan.vpath import SEP, basename

if TYPE_CHECKING:
    from collections.abc import Sequence

    from licscan.sbom.data import DriverTables

_CONFIDENCE = {Confidence.HIGH: "1.0", Confidence.MEDIUM: "0.7", Confidence.LOW: "0.4"}


def first(values: tuple[str, ...]) -> str | None:
    """The first of a component's values of a fact (they are in the order of their strings), or None."""
    return values[0] if values else None


def display_names() -> dict[str, str]:
    """Catalog name -> the name NVIDIA gives the part (``display`` in rules/catalog/nvidia.yaml)."""
    try:
        data = load_table("catalog/nvidia.yaml")
        return {str(k): str(v.get("display") or k) for k, v in (data.get("components") or {}).items()}
    except (OSError, ValueError, AttributeError, KeyError):  # optional: fall back to the catalog names
        return {}


def norm_dist(name: str) -> str:
    """A distribution name as PEP 503 normalises it."""
    return str(canonicalize_name(name))


def purl(ptype: str, namespace: str | None, name: str, version: str | None,
         qualifiers: dict[str, str] | None = None) -> str:
    return str(PackageURL(type=ptype, namespace=namespace, name=name, version=version,
                          qualifiers=qualifiers or None).to_string())


def _technique(evidence: str) -> str:
    text = evidence.lower()
    if "file name" in text:
        return "filename"
    if any(k in text for k in ("declared", "metadata", "record", "distribution", "wheel", "version:")):
        return "manifest-analysis"
    if "sha256" in text or "hash" in text:
        return "hash-comparison"
    return "binary-analysis"


def _author(dist: Distribution) -> str | None:
    meta = dict(dist.metadata)
    return meta.get("Author") or meta.get("Maintainer") or meta.get("Author-email") or None


# ------------------------------------------------------------------------------------------------ distributions


def distribution_node(pid: str, dist: Distribution, lookup: Digests, fallback_supplier: str | None) -> PackageNode:
    eco = dist.ecosystem.value
    name = dist.name
    if eco == "pypi":
        base = basename(dist.vpath)
        ref = purl("pypi", None, norm_dist(name), dist.version, {"file_name": base} if base.endswith(".whl") else None)
    elif eco == "conda":
        ref = purl("conda", None, name, dist.version)
    else:
        ref = purl("generic", None, name, dist.version, {"type": eco})
    supplier = NVIDIA if norm_dist(name).startswith("nvidia-") else _author(dist)
    supplier_note = "package metadata" if supplier else "distributor of the scanned input (metadata names no author)"
    raw = dist.license_declared
    declared = normalise(raw)
    digest = lookup(dist.vpath)
    return PackageNode(
        id=pid, role="distribution", name=name, version=dist.version or "unknown",
        supplier=supplier or fallback_supplier,
        purpose="ARCHIVE" if basename(dist.vpath).endswith((".whl", ".deb", ".conda", ".tar.bz2")) else "INSTALL",
        concluded=None, declared=declared,
        license_comment=f"declared in the {eco} metadata as {raw!r}" if raw and declared != raw else None,
        purls=(ref,), checksums=(("SHA1", digest[0]), ("SHA256", digest[1])) if digest else (),
        summary=dict(dist.metadata).get("Summary"), occurrences=(dist.vpath,),
        methods=(Method("manifest-analysis", f"{dist.vpath}: Name: {name}, Version: {dist.version}"),),
        properties=(("licscan:role", "distribution"), ("licscan:ecosystem", eco),
                    ("licscan:supplier-source", supplier_note)))


def distribution_from_component(pid: str, component: Component) -> PackageNode:
    """A python-distribution component the scan named without a Distribution value behind it."""
    declared = normalise(component.license)
    return PackageNode(
        id=pid, role="distribution", name=component.name, version=component.version or "unknown",
        supplier=NVIDIA if component.vendor == "NVIDIA" else (component.vendor or None), purpose="ARCHIVE",
        concluded=None, declared=declared,
        license_comment=(f"declared as {component.license!r}" if component.license and declared !=
                         component.license else None),
        purls=(purl("pypi", None, norm_dist(component.name), component.version),),
        occurrences=component.paths, methods=tuple(Method("manifest-analysis", e) for e in component.evidence),
        properties=(("licscan:role", "distribution"), ("licscan:component", component.id)))


def root_supplier(distributions: Sequence[Distribution]) -> tuple[str | None, str]:
    """The supplier of the scanned input from its distribution metadata (Author, Maintainer, Author-email) when
    every distribution at the top of an input names the same one; (None, why) otherwise."""
    top = [d for d in distributions if SEP not in d.vpath.rstrip("/")]
    found = set()
    for dist in top:
        name = _author(dist)
        if name:
            found.add((" ".join(str(name).split()), dist.vpath))
    suppliers = {s for s, _ in found}
    if len(suppliers) == 1:
        supplier = suppliers.pop()
        return supplier, "package metadata of " + ", ".join(sorted(p for _, p in found))
    if not top:
        return None, "none: no distribution metadata at the top of the input; pass --organization"
    return None, ("none: the distributions name no single author (" + (", ".join(sorted(suppliers)) or "no author")
                  + "); pass --organization")


# ------------------------------------------------------------------------------------------------ components


def _component_refs(component: Component, dist: Distribution | None,
                    tables: DriverTables) -> tuple[str, tuple[str, ...]]:
    """The component's package URL and CPEs."""
    nvidia = component.vendor == "NVIDIA"
    dist_name, dist_version = first(component.distributions), component.distribution_version
    if dist is not None and dist.ecosystem.value in ("pypi", "conda") and dist.version:
        ref = purl(dist.ecosystem.value, None, norm_dist(dist.name) if dist.ecosystem.value == "pypi" else dist.name,
                   dist.version)
    elif dist_name and dist_version:
        ref = purl("pypi", None, norm_dist(dist_name), dist_version)
    else:
        ref = purl("generic", "nvidia" if nvidia else ids.slug(component.vendor or "unknown"), component.name,
                   component.version)
    cpes = []
    release = cpe_value(release_of(component.version))
    if nvidia and component.name in tables.toolkit_versioned_components and release:
        cpes.append(tables.identifiers.toolkit_cpe.format(version=release))
    # The version comes from the file (a kernel module's .modinfo): quoted for CPE 2.3, none when it cannot be one.
    driver_version = cpe_value(component.version)
    if nvidia and component.kind in (ComponentKind.DRIVER, ComponentKind.KERNEL_MODULE) and driver_version \
            and component.version is not None and component.version.count(".") >= 1:
        cpes.append(tables.identifiers.driver_cpe.format(version=driver_version))
    return ref, tuple(cpes)


def _component_licences(component: Component, governing: tuple[str | None, str] | None
                        ) -> tuple[str | None, str | None, list[str]]:
    """The component's concluded and declared licences and the notes that explain them."""
    concluded = normalise(component.license)
    raw_declared = first(component.licenses_declared)
    declared = normalise(raw_declared)
    notes = []
    if governing is not None:
        concluded = governing[0]
        notes.append(governing[1])
    if component.license and concluded is None and governing is None:
        notes.append(f"concluded licence {component.license!r} is not an SPDX expression")
    if raw_declared and declared != raw_declared:
        notes.append(f"declared by its distribution as {raw_declared!r} (not an SPDX expression: NOASSERTION)")
    elif raw_declared:
        notes.append(f"declared by its distribution as {raw_declared}")
    if concluded and concluded.startswith("LicenseRef-NVIDIA-CUDA-EULA"):
        notes.append("the CUDA EULA; identifiers seen in the wild for it: LicenseRef-NVIDIA-Proprietary "
                     "(PyPI), LicenseRef-NVIDIA-End-User-License-Agreement (conda), ScanCode "
                     "LicenseRef-scancode-nvidia-sdk-12.8 / LicenseRef-scancode-nvidia-cuda-supplement-2020")
    flavour = first(component.flavours)
    if flavour:
        notes.append(f"kernel module flavour: {flavour}")
    return concluded, declared, notes


def component_node(pid: str, component: Component, dist: Distribution | None, display: dict[str, str],
                   tables: DriverTables, file_ids: dict[str, str], file_digest: dict[str, tuple[str, str]],
                   governing: tuple[str | None, str] | None = None) -> PackageNode:
    ref, cpes = _component_refs(component, dist, tables)
    concluded, declared, notes = _component_licences(component, governing)
    files: tuple[str, ...] = ()
    checksums: tuple[tuple[str, str], ...] = ()
    described = f"{component.kind.value} {component.id}"
    if component.linked_from:  # linked into the files at its paths: they are not its files, their digests not its
        described += f", linked from {', '.join(component.linked_from)} into {', '.join(component.paths)}"
    else:
        files = tuple(sorted(file_ids[p] for p in component.paths if p in file_ids))
        listed = [p for p in component.paths if p in file_digest]
        if len(component.paths) == 1 and listed:
            sha1, sha256 = file_digest[listed[0]]
            checksums = (("SHA1", sha1), ("SHA256", sha256))
    confidence = _CONFIDENCE[component.confidence or Confidence.HIGH]
    return PackageNode(
        id=pid, role="component", name=display.get(component.name, component.name),
        version=component.version or first(component.version_ranges) or "unknown",
        supplier=NVIDIA if component.vendor == "NVIDIA" else (component.vendor or None),
        purpose="APPLICATION" if component.kind is ComponentKind.DEVELOPER_TOOL else "LIBRARY",
        concluded=concluded, declared=declared, license_comment="; ".join(notes) or None, purls=(ref,),
        cpes=cpes, checksums=checksums, files=files, occurrences=component.paths,
        methods=tuple(Method(_technique(e), e, confidence) for e in component.evidence),
        comment=f"{described}; evidence: " + "; ".join(component.evidence) if component.evidence else described,
        properties=(("licscan:role", "component"), ("licscan:id", component.id),
                    ("licscan:kind", component.kind.value),
                    *((f"licscan:{k}", v) for k, v in component_properties(component))))
