"""The files an SBOM lists (binaries, files with device code, component files; SHA-1 and SHA-256 known) and their
relationships: GENERATED_FROM the toolkit their device code names, DEPENDS_ON what their ELF DT_NEEDED entries and PE
imports (import and delay-load directories) resolve to (licscan.identify.linkage)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from licscan.identify.linkage import Providers, is_windows_module
from licscan.model import Component, ComponentKind, DeviceImage, FileFormat, Inventory
from licscan.sbom import ids
from licscan.sbom.data import DriverTables
from licscan.sbom.licenses import normalise
from licscan.sbom.nodes import ROOT, Digests, Edge, FileNode
from licscan.sbom.runtime import Toolkits
from licscan.vpath import SEP, basename

if TYPE_CHECKING:
    from licscan.scan import FileRecord

_BINARY = {FileFormat.ELF, FileFormat.PE, FileFormat.AR, FileFormat.CUBIN, FileFormat.HSACO, FileFormat.FATBIN,
           FileFormat.PTX}


@dataclass(frozen=True)
class Listing:
    """The files the SBOM lists (binaries, files with device code, component files) and what is known of them."""

    records: dict[str, FileRecord]  # virtual path -> its record
    owners: dict[str, list[Component]]  # virtual path -> the components (not distributions) it is part of
    images: dict[str, list[DeviceImage]]  # host file -> its device images
    ids: dict[str, str]  # virtual path -> file id, for every file listed (SHA-1 and SHA-256 known)
    digests: dict[str, tuple[str, str]]  # virtual path -> (SHA-1, SHA-256), lower case
    omitted: tuple[str, ...]  # wanted but not listed: no digest known


def listed_files(inventory: Inventory, records: Sequence[FileRecord], components: Sequence[Component],
                 lookup: Digests) -> Listing:
    """Binaries, files with device code and component files; SHA-1 + SHA-256 required to be listed."""
    by_path = {r.vpath: r for r in records}
    owners: dict[str, list[Component]] = {}
    for component in components:  # a part linked into a file (a static runtime) is not what the file is
        if component.kind is not ComponentKind.PYTHON_DISTRIBUTION and not component.linked_from:
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
    return Listing(by_path, owners, images, file_ids, file_digest, tuple(omitted))


def _host_path(path: str, by_path: Mapping[str, FileRecord]) -> str:
    """The inventoried file that holds an image: the path itself, or the nearest enclosing record."""
    probe = path
    while probe not in by_path and SEP in probe:
        probe = probe.rsplit(SEP, 1)[0]
    return probe if probe in by_path else path


@dataclass(frozen=True)
class Linker:
    """What a DT_NEEDED entry or PE import of a listed file depends on: the file of the input that provides it (the
    nearest, licscan.identify.linkage), else the component it is part of, else a component shipped under that file
    name, else the driver when the name is one of the driver's libraries (Windows module names without case)."""

    providers: Providers
    listing: Listing
    component_ids: Mapping[str, str]  # component id -> package id
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
        key = lib.casefold() if is_windows_module(lib) else lib
        if key in self.component_by_lib:
            return self.component_by_lib[key], " (component shipped in the input)"
        if self.driver_id and any(p.fullmatch(key) for p in self.driver_libraries):
            return self.driver_id, " (provided by the NVIDIA driver)"
        return None, ""


def file_nodes(records: Sequence[FileRecord], components: Sequence[Component], listing: Listing, kits: Toolkits,
               component_ids: Mapping[str, str], driver_id: str | None, tables: DriverTables
               ) -> tuple[tuple[FileNode, ...], list[Edge]]:
    """A file node per listed file, with its GENERATED_FROM and DEPENDS_ON relationships; the root contains it."""
    component_by_lib: dict[str, str] = {}
    for component in components:
        if component.id in component_ids and not component.linked_from:
            for path in component.paths:
                name = basename(path)
                component_by_lib.setdefault(name.casefold() if is_windows_module(name) else name,
                                            component_ids[component.id])
    linker = Linker(Providers.index((r.vpath, r.facts) for r in records), listing, component_ids, component_by_lib,
                    driver_id, tables.driver_libraries)
    files: list[FileNode] = []
    edges: list[Edge] = []
    for vpath in sorted(listing.ids):
        node, file_edges = _file_node(vpath, listing, kits, linker)
        files.append(node)
        edges.extend(file_edges)
        edges.append(Edge(ROOT, "CONTAINS", node.id))
    return tuple(files), edges


def _file_node(vpath: str, listing: Listing, kits: Toolkits, linker: Linker) -> tuple[FileNode, list[Edge]]:
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
    # ELF DT_NEEDED, or a PE image's imports then its delay-loaded imports (FileFacts.needed).
    needed = record.facts.needed if record is not None else ()
    what = "imports" if record is not None and record.facts.elf is None else "DT_NEEDED"
    for lib in needed:
        target, why = linker.resolve(lib, vpath)
        if target is None:
            unresolved.append(lib)
        elif target != fid:
            edges.append(Edge(fid, "DEPENDS_ON", target, f"{what} {lib}{why}"))
    if needed:
        props.append(("licscan:dt-needed" if what == "DT_NEEDED" else "licscan:pe-imports", " ".join(needed)))
    if unresolved:
        comment.append(f"{what} not in the input: {', '.join(unresolved)}")
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
