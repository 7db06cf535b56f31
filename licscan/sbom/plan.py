"""Build the SBOM (a :class:`licscan.sbom.nodes.Plan`) from a scan's inventory and records, in this order: the
files listed (files.py), the toolkit releases (runtime.py), the distributions and components (packages.py), the
driver requirement (runtime.py), the files with their relationships (files.py), the root, the findings, the
licences used. The model is in nodes.py."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from licscan import __version__
from licscan.findings import Finding
from licscan.model import Component, ComponentKind, Distribution, FileFormat, Inventory
from licscan.sbom import ids
from licscan.sbom.data import DriverTables, driver_tables
from licscan.sbom.digests import chain, record_digests
from licscan.sbom.digests import filesystem_digests as filesystem_digests  # re-exported: the CLI's lookup
from licscan.sbom.driver import DriverRequirement, requirement
from licscan.sbom.files import Listing, file_nodes, listed_files
from licscan.sbom.governing import governing_licences
from licscan.sbom.licenses import extracted, refs
from licscan.sbom.nodes import ROOT, Digests, Edge, FileNode, Note, PackageNode, Plan
from licscan.sbom.packages import (
    component_node,
    display_names,
    distribution_from_component,
    distribution_node,
    first,
    norm_dist,
    root_supplier,
)
from licscan.sbom.runtime import Toolkits, driver_node, driver_version, toolkits
from licscan.vpath import innermost

if TYPE_CHECKING:
    from licscan.scan import FileRecord



@dataclass(frozen=True)
class _Section:
    """Packages and relationships one step of the build adds, and the ids it gives."""

    packages: tuple[PackageNode, ...]
    edges: tuple[Edge, ...]
    ids: dict[str, str]  # distributions: normalised name -> id; components: component id -> id


# ------------------------------------------------------------------------------------------------ build


def build_plan(inventory: Inventory, records: Sequence[FileRecord], *, created: datetime, creator_org: str | None,
               namespace_seed: str | None = None, digests: Digests | None = None,
               findings: Iterable[Finding] | None = None, name: str | None = None,
               root_version: str | None = None, tool_version: str | None = None) -> Plan:
    tool_version = tool_version or __version__
    lookup = chain(digests, record_digests(records))
    tables = driver_tables()
    components = tuple(c for c in inventory.components if c.kind is not ComponentKind.LICENSE_TEXT)
    listing = listed_files(inventory, records, components, lookup)
    kits = toolkits(listing.images, components, tables)
    dists = _distributions(inventory, components, listing, lookup, creator_org)
    parts = _components(inventory, components, dists, listing, tables)
    platforms = {r.facts.format for r in records}
    need = requirement(kits.releases, tables)
    driver = _driver(inventory, components, kits, need, platforms, tables)
    driver_id = driver.packages[0].id if driver.packages else None
    files, file_edges = file_nodes(records, components, listing, kits, parts.ids, driver_id, tables)
    packages = [*kits.packages, *dists.packages, *parts.packages, *driver.packages]
    edges = [*dists.edges, *parts.edges, *driver.edges, *file_edges]
    root_name = name or _root_name(inventory.inputs)
    content = ids.digest(*(f"{f.path}={f.sha256}" for f in files), *(p.id for p in packages),
                         *(f"{r.vpath}:{r.size}" for r in records))
    root = _root_node(inventory, root_name, root_version or f"content-{content[:12]}", files, listing.omitted,
                      creator_org)
    packages = [root, *_supplied(packages, root.supplier)]
    edges = [Edge(root.id if e.source == ROOT else e.source, e.type, root.id if e.target == ROOT else e.target,
                  e.comment) for e in edges]
    edges.append(Edge("SPDXRef-DOCUMENT", "DESCRIBES", root.id))
    # The toolkit that built the device code is a build tool of the scanned input (not shipped): tied to the root.
    edges.extend(Edge(root.id, "HAS_PREREQUISITE", pid, "build tool: the CUDA toolkit that built its device code")
                 for pid in kits.ids.values())
    return Plan(
        name=root_name, inputs=tuple(inventory.inputs), created=created,
        uuid=str(ids.document_uuid(namespace_seed or "", root_name, content)), tool=f"licscan-{tool_version}",
        tool_version=tool_version, creator_org=creator_org, root=root.id,
        packages=(root, *sorted(packages[1:], key=lambda p: p.id)), files=files,
        edges=tuple(sorted(set(edges), key=lambda e: (e.source, e.type, e.target, e.comment or ""))),
        notes=_notes(findings or (), listing.ids, components, parts.ids, root.id),
        licenses=tuple(extracted(_licences_used(packages, files))), driver=need,
        comment=("Generated by licscan from a static scan of build outputs. NVIDIA licence texts are referenced, "
                 "not reproduced. Driver requirement: " + driver_version(need, platforms) + "."),
        omitted=listing.omitted)


# ------------------------------------------------------------------------------------------------ distributions


def _distributions(inventory: Inventory, components: Sequence[Component], listing: Listing, lookup: Digests,
                   creator_org: str | None) -> _Section:
    """A package per distribution; it contains the listed files under its scope (the innermost one wins)."""
    dist_ids: dict[str, str] = {}
    packages: list[PackageNode] = []
    for dist in sorted(inventory.distributions, key=lambda d: d.vpath):
        pid = ids.element_id("Package", dist.name, "distribution", dist.vpath, dist.name, dist.version or "")
        dist_ids.setdefault(norm_dist(dist.name), pid)
        packages.append(distribution_node(pid, dist, lookup, creator_org))
    for component in components:  # python-distribution components without a Distribution value
        if component.kind is ComponentKind.PYTHON_DISTRIBUTION and norm_dist(component.name) not in dist_ids:
            pid = ids.element_id("Package", component.name, "distribution", component.id)
            dist_ids[norm_dist(component.name)] = pid
            packages.append(distribution_from_component(pid, component))
    dist_files: dict[str, list[str]] = {}
    for vpath, fid in listing.ids.items():
        home = innermost(vpath, inventory.distributions, lambda d: d.scope)
        if home is not None and norm_dist(home.name) in dist_ids:
            dist_files.setdefault(dist_ids[norm_dist(home.name)], []).append(fid)
    edges = [Edge(ROOT, "CONTAINS", p.id) for p in packages]
    for pid, fids in sorted(dist_files.items()):
        edges.extend(Edge(pid, "CONTAINS", fid) for fid in sorted(fids))
    return _Section(tuple(replace(p, files=tuple(sorted(dist_files.get(p.id, ())))) for p in packages),
                    tuple(edges), dist_ids)


# ------------------------------------------------------------------------------------------------ components


def _components(inventory: Inventory, components: Sequence[Component], dists: _Section, listing: Listing,
                tables: DriverTables) -> _Section:
    """A package per component (not the python distributions: they are distribution packages), inside its
    distribution's package when it has one, else the root's; it contains its listed files."""
    dist_by_name: dict[str, Distribution] = {}
    for dist in inventory.distributions:
        dist_by_name.setdefault(norm_dist(dist.name), dist)
    display = display_names()
    governing = governing_licences(inventory)
    component_ids: dict[str, str] = {}
    packages, edges = [], []
    for component in sorted(components, key=lambda c: c.id):
        if component.kind is ComponentKind.PYTHON_DISTRIBUTION:
            continue
        pid = ids.element_id("Package", component.name, "component", component.id)
        component_ids[component.id] = pid
        dist_name = first(component.distributions)
        home = dist_by_name.get(norm_dist(dist_name)) if dist_name else None
        node = component_node(pid, component, home, display, tables, listing.ids, listing.digests,
                              governing.get(component.id))
        packages.append(node)
        parent = dists.ids.get(norm_dist(dist_name)) if dist_name else None
        edges.append(Edge(parent or ROOT, "CONTAINS", pid))
        edges.extend(Edge(pid, "CONTAINS", fid) for fid in node.files)
        # SPDX 2.3 STATIC_LINK: "SPDXRef-A statically links to SPDXRef-B" (the file the runtime is linked into).
        edges.extend(Edge(listing.ids[path], "STATIC_LINK", pid, f"linked from {', '.join(component.linked_from)}")
                     for path in component.paths if component.linked_from and path in listing.ids)
    return _Section(tuple(packages), tuple(edges), component_ids)


# ------------------------------------------------------------------------------------------------ driver requirement


def _driver(inventory: Inventory, components: Sequence[Component], kits: Toolkits, need: DriverRequirement,
            platforms: set[FileFormat], tables: DriverTables) -> _Section:
    """The driver requirement, whenever CUDA is in the input: a runtime dependency of the root."""
    cuda_present = bool(kits.releases or inventory.device_code
                        or any(c.vendor == "NVIDIA" and c.kind is not ComponentKind.PYTHON_DISTRIBUTION
                               for c in components))
    if not cuda_present:
        return _Section((), (), {})
    driver_id = ids.element_id("Package", "NVIDIA-GPU-Driver", "driver-requirement")
    shipped = [c for c in components if c.kind in (ComponentKind.DRIVER, ComponentKind.KERNEL_MODULE)]
    edge = Edge(ROOT, "DEPENDS_ON", driver_id,
                "runtime dependency: the NVIDIA driver is provided by the target system, not by this input"
                if not shipped else "runtime dependency; the input ships NVIDIA driver parts too (see the "
                "driver package's comment)")
    return _Section((driver_node(driver_id, need, shipped, platforms, tables),), (edge,), {})


# ------------------------------------------------------------------------------------------------ root


def _root_name(inputs: Sequence[str]) -> str:
    names = [posixpath.basename(p.rstrip("/")) or p for p in inputs]
    return "+".join(names) or "input"


def _root_node(inventory: Inventory, name: str, version: str, files: Sequence[FileNode], omitted: Sequence[str],
               creator_org: str | None) -> PackageNode:
    """The scanned input as a package: it contains every listed file (files analysed)."""
    summary = inventory.summary
    comment = (f"Scanned input(s): {', '.join(inventory.inputs)}; {summary.files} file(s), {summary.bytes} "
               f"byte(s); {len(files)} binary file(s) listed with SHA-1/SHA-256")
    if omitted:
        comment += f"; {len(omitted)} binary file(s) not listed (no digest recorded): " + \
            ", ".join(omitted[:20]) + (" ..." if len(omitted) > 20 else "")
    if inventory.diagnostics:
        comment += f"; SCAN INCOMPLETE: {len(inventory.diagnostics)} diagnostic(s)"
    supplier, supplier_source = (creator_org, "--organization") if creator_org else \
        root_supplier(inventory.distributions)
    return PackageNode(
        id=ids.element_id("Package", name, "root", *inventory.inputs), role="root", name=name, version=version,
        supplier=supplier, purpose="APPLICATION", concluded=None, declared=None, files=tuple(f.id for f in files),
        comment=comment + ".", occurrences=tuple(inventory.inputs),
        properties=(("licscan:role", "root"), ("licscan:supplier-source", supplier_source)))


def _supplied(packages: Iterable[PackageNode], supplier: str | None) -> list[PackageNode]:
    """Parts whose vendor is not known are supplied, as far as the SBOM can tell, by whoever supplies the input."""
    return [replace(p, supplier=supplier, properties=p.properties + (
                ("licscan:supplier-source", "the supplier of the scanned input (no vendor named)"),))
            if p.role == "component" and p.supplier is None and supplier else p for p in packages]


# ------------------------------------------------------------------------------------------------ findings


def _notes(findings: Iterable[Finding], file_ids: Mapping[str, str], components: Sequence[Component],
           component_ids: Mapping[str, str], root: str) -> tuple[Note, ...]:
    """Each finding as an annotation on the file it names, else on the component that has that file, else on the
    root."""
    notes = []
    for finding in findings:
        path = finding.path
        target = file_ids.get(path)
        if target is None:
            target = next((component_ids[c.id] for c in components
                           if path in c.paths and c.id in component_ids), None)
        text = (f"licscan finding {finding.rule} [{finding.severity.value}, {finding.verdict.value}"
                + (", waived" if finding.waived else "") + f"] {path}: {finding.message}")
        if finding.clause is not None:
            text += (f" | clause: {finding.clause.document} {finding.clause.section}: "
                     f"\"{' '.join(finding.clause.text.split())}\"")
        if finding.evidence:
            text += " | evidence: " + "; ".join(finding.evidence)
        if finding.fingerprint:
            text += f" | fingerprint {finding.fingerprint}"
        notes.append(Note(target or root, text))
    return tuple(sorted(set(notes), key=lambda n: (n.target, n.text)))


# ------------------------------------------------------------------------------------------------ licences used


def _licences_used(packages: Iterable[PackageNode], files: Iterable[FileNode]) -> set[str]:
    used: set[str] = set()
    for p in packages:
        used |= refs(p.concluded) | refs(p.declared)
    for f in files:
        used |= refs(f.concluded)
    return used
