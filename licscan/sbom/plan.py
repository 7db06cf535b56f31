"""Build the SBOM (a :class:`licscan.sbom.nodes.Plan`) from a scan's inventory and records, in the order the
sections below name: the files listed, the toolkits and distributions, the components, the driver requirement,
the files with their dependencies, the root, the findings, the licences used. The model is in nodes.py."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from licscan import __version__
from licscan.identify.linkage import Providers
from licscan.model import Component, ComponentKind, DeviceImage, Distribution, FileFormat, Inventory
from licscan.sbom import ids
from licscan.sbom.data import DriverTables, driver_tables
from licscan.sbom.digests import chain, record_digests
from licscan.sbom.digests import filesystem_digests as filesystem_digests  # re-exported: the CLI's lookup
from licscan.sbom.driver import DriverRequirement, requirement
from licscan.sbom.governing import governing_licences
from licscan.sbom.licenses import extracted, normalise, refs
from licscan.sbom.nodes import ROOT, Digests, Edge, FileNode, Note, PackageNode, Plan
from licscan.sbom.packages import (
    component_node,
    display_names,
    distribution_from_component,
    distribution_node,
    first,
    norm_dist,
    properties,
    root_supplier,
)
from licscan.sbom.runtime import Toolkits, driver_node, driver_version, toolkits
from licscan.vpath import SEP, basename, innermost

if TYPE_CHECKING:
    from licscan.scan import FileRecord

Finding = Mapping[str, Any]  # a finding in its JSON form (licscan.findings.Finding.to_json())
_BINARY = {FileFormat.ELF, FileFormat.PE, FileFormat.AR, FileFormat.CUBIN, FileFormat.HSACO, FileFormat.FATBIN,
           FileFormat.PTX}


@dataclass(frozen=True)
class _Listing:
    """The files the SBOM lists (binaries, files with device code, component files) and what is known of them."""

    records: dict[str, FileRecord]  # virtual path -> its record
    owners: dict[str, list[Component]]  # virtual path -> the components (not distributions) it is part of
    images: dict[str, list[DeviceImage]]  # host file -> its device images
    ids: dict[str, str]  # virtual path -> file id, for every file listed (SHA-1 and SHA-256 known)
    digests: dict[str, tuple[str, str]]  # virtual path -> (SHA-1, SHA-256), lower case
    omitted: tuple[str, ...]  # wanted but not listed: no digest known


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
    listing = _listing(inventory, records, components, lookup)
    kits = toolkits(listing.images, components, tables)
    dists = _distributions(inventory, components, listing, lookup, creator_org)
    parts = _components(inventory, components, dists, listing, tables)
    platforms = {r.facts.format for r in records}
    need = requirement(kits.releases, tables)
    driver = _driver(inventory, components, kits, need, platforms, tables)
    driver_id = driver.packages[0].id if driver.packages else None
    files, file_edges = _files(records, components, listing, kits, parts, driver_id, tables)
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


# ------------------------------------------------------------------------------------------------ files listed


def _listing(inventory: Inventory, records: Sequence[FileRecord], components: Sequence[Component],
             lookup: Digests) -> _Listing:
    """Binaries, files with device code and component files; SHA-1 + SHA-256 required to be listed."""
    by_path = {r.vpath: r for r in records}
    owners: dict[str, list[Component]] = {}
    for component in components:
        if component.kind is not ComponentKind.PYTHON_DISTRIBUTION:
            for path in component.paths:
                owners.setdefault(path, []).append(component)
    images: dict[str, list[DeviceImage]] = {}
    for image in inventory.device_code:
        images.setdefault(_host_path(image.path, by_path), []).append(image)
    wanted = set(images) | set(owners)
    wanted.update(r.vpath for r in records if r.facts.format in _BINARY)
    file_ids: dict[str, str] = {}
    file_digest: dict[str, tuple[str, str]] = {}
    omitted = []
    for vpath in sorted(wanted):
        found = lookup(vpath)
        if not found:
            omitted.append(vpath)
            continue
        file_digest[vpath] = (found[0].lower(), found[1].lower())
        file_ids[vpath] = ids.element_id("File", basename(vpath), vpath, found[1].lower())
    return _Listing(by_path, owners, images, file_ids, file_digest, tuple(omitted))


def _host_path(path: str, by_path: Mapping[str, FileRecord]) -> str:
    """The inventoried file that holds an image: the path itself, or the nearest enclosing record."""
    probe = path
    while probe not in by_path and SEP in probe:
        probe = probe.rsplit(SEP, 1)[0]
    return probe if probe in by_path else path


# ------------------------------------------------------------------------------------------------ distributions


def _distributions(inventory: Inventory, components: Sequence[Component], listing: _Listing, lookup: Digests,
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


def _components(inventory: Inventory, components: Sequence[Component], dists: _Section, listing: _Listing,
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
        dist_name = first(properties(component), "distribution")
        home = dist_by_name.get(norm_dist(dist_name)) if dist_name else None
        node = component_node(pid, component, home, display, tables, listing.ids, listing.digests,
                              governing.get(component.id))
        packages.append(node)
        parent = dists.ids.get(norm_dist(dist_name)) if dist_name else None
        edges.append(Edge(parent or ROOT, "CONTAINS", pid))
        edges.extend(Edge(pid, "CONTAINS", fid) for fid in node.files)
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


# ------------------------------------------------------------------------------------------------ files, DEPENDS_ON (DT_NEEDED), GENERATED_FROM


@dataclass(frozen=True)
class _Linker:
    """What a DT_NEEDED entry of a listed file depends on: the file of the input that provides it (the nearest,
    licscan.identify.linkage), else the component it is part of, else a component shipped under that file name,
    else the driver when the name is one of the driver's libraries."""

    providers: Providers
    listing: _Listing
    component_ids: dict[str, str]  # component id -> package id
    component_by_lib: dict[str, str]  # file name -> package id of the first component with a file of that name
    driver_id: str | None
    driver_libraries: Sequence[re.Pattern[str]]  # rules/sbom/driver-requirements.yaml

    def resolve(self, lib: str, vpath: str) -> tuple[str | None, str]:
        """(element id, why) for ``lib`` needed by ``vpath``; (None, "") when the input does not provide it."""
        best = self.providers.nearest(lib, vpath)
        if best is not None:
            if best in self.listing.ids:
                return self.listing.ids[best], f" -> {best}"
            for component in self.listing.owners.get(best, ()):
                if component.id in self.component_ids:
                    return self.component_ids[component.id], f" -> {best}"
            return None, ""
        if lib in self.component_by_lib:
            return self.component_by_lib[lib], " (component shipped in the input)"
        if self.driver_id and any(p.fullmatch(lib) for p in self.driver_libraries):
            return self.driver_id, " (provided by the NVIDIA driver)"
        return None, ""


def _files(records: Sequence[FileRecord], components: Sequence[Component], listing: _Listing, kits: Toolkits,
           parts: _Section, driver_id: str | None, tables: DriverTables) -> tuple[tuple[FileNode, ...], list[Edge]]:
    component_by_lib: dict[str, str] = {}
    for component in components:
        if component.id in parts.ids:
            for path in component.paths:
                component_by_lib.setdefault(basename(path), parts.ids[component.id])
    linker = _Linker(Providers.index((r.vpath, r.facts) for r in records), listing, parts.ids, component_by_lib,
                     driver_id, tables.driver_libraries)
    files: list[FileNode] = []
    edges: list[Edge] = []
    for vpath in sorted(listing.ids):
        node, file_edges = _file_node(vpath, listing, kits, linker)
        files.append(node)
        edges.extend(file_edges)
        edges.append(Edge(ROOT, "CONTAINS", node.id))
    return tuple(files), edges


def _file_node(vpath: str, listing: _Listing, kits: Toolkits, linker: _Linker) -> tuple[FileNode, list[Edge]]:
    fid = listing.ids[vpath]
    record = listing.records.get(vpath)
    owners = listing.owners.get(vpath, [])
    licences = {normalise(c.license) for c in owners}
    comment: list[str] = []
    props: list[tuple[str, str]] = []
    edges: list[Edge] = []
    if vpath in listing.images:
        comment.append(_summarise_images(listing.images[vpath]))
        for key in sorted(kits.of_file.get(vpath, ())):
            edges.append(Edge(fid, "GENERATED_FROM", kits.ids[key], f"device code built by CUDA {key}"))
        if not kits.of_file.get(vpath):
            comment.append("toolkit undetermined from the device code")
        props.append(("licscan:device-images", str(len(listing.images[vpath]))))
    unresolved = []
    needed = record.facts.elf.needed if record is not None and record.facts.elf is not None else ()
    for lib in needed:
        target, why = linker.resolve(lib, vpath)
        if target is None:
            unresolved.append(lib)
        elif target != fid:
            edges.append(Edge(fid, "DEPENDS_ON", target, f"DT_NEEDED {lib}{why}"))
    if needed:
        props.append(("licscan:dt-needed", " ".join(needed)))
    if unresolved:
        comment.append(f"DT_NEEDED not in the input: {', '.join(unresolved)}")
    if owners:
        comment.append("part of " + ", ".join(sorted(c.id for c in owners)))
    sha1, sha256 = listing.digests[vpath]
    return FileNode(fid, vpath, sha1, sha256, licences.pop() if len(licences) == 1 else None,
                    "; ".join(comment) or None, tuple(props)), edges


def _summarise_images(images: Sequence[DeviceImage]) -> str:
    kinds: dict[str, list[str]] = {}
    for image in images:
        arches = kinds.setdefault(image.kind.value, [])
        if image.arch not in arches:
            arches.append(image.arch)
    parts = [f"{kind} {', '.join(arches)}" for kind, arches in sorted(kinds.items())]
    return f"device code: {len(images)} image(s) ({'; '.join(parts)})"


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
        path = finding.get("path") or ""
        target = file_ids.get(path)
        if target is None:
            target = next((component_ids[c.id] for c in components
                           if path in c.paths and c.id in component_ids), None)
        clause = finding.get("clause") or {}
        text = (f"licscan finding {finding.get('rule')} [{finding.get('severity')}, {finding.get('verdict')}"
                + (", waived" if finding.get("waived") else "") + f"] {path}: {finding.get('message')}")
        if clause:
            text += (f" | clause: {clause.get('document')} {clause.get('section')}: "
                     f"\"{' '.join(str(clause.get('text') or '').split())}\"")
        if finding.get("evidence"):
            text += " | evidence: " + "; ".join(str(e) for e in finding["evidence"])
        if finding.get("fingerprint"):
            text += f" | fingerprint {finding['fingerprint']}"
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
