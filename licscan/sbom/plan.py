"""The SBOM as one format-neutral value: which packages, files, relationships,
licences and annotations a scan's inventory becomes. ``spdx.py`` and ``cyclonedx.py`` render the same plan.

Model (every relationship type here validates with spdx-tools 0.8):
  DOCUMENT DESCRIBES root (the scanned input, files analysed)
  root CONTAINS every listed file, every distribution package, every component not inside a distribution
  distribution CONTAINS the components it ships;  component CONTAINS its listed files
  file DEPENDS_ON file / component / driver          (DT_NEEDED, resolved against the scan)
  file GENERATED_FROM "CUDA Toolkit <release>"        (the toolkit its device code says built it; not shipped)
  root DEPENDS_ON driver requirement                  (runtime dependency, even when no driver file ships)
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from packaging.utils import canonicalize_name

from licscan.escape import cpe_value
from licscan.model import Component, ComponentKind, DeviceImage, FileFormat, Inventory
from licscan.sbom import ids
from licscan.sbom.data import LicenseInfo, driver_tables
from licscan.sbom.driver import DriverRequirement, ToolkitRelease, driver_key, range_key, release_of, requirement
from licscan.sbom.licenses import extracted, normalise, refs
from licscan.vpath import innermost

NVIDIA = "NVIDIA Corporation"
Digests = Callable[[str], "tuple[str, str] | None"]
_BINARY = {FileFormat.ELF, FileFormat.PE, FileFormat.AR, FileFormat.CUBIN, FileFormat.HSACO, FileFormat.FATBIN,
           FileFormat.PTX}
_CONFIDENCE = {"high": "1.0", "medium": "0.7", "low": "0.4"}


@dataclass(frozen=True)
class Method:
    """How a component was identified (CycloneDX evidence.identity.methods)."""

    technique: str  # binary-analysis | filename | manifest-analysis | hash-comparison | other
    value: str
    confidence: str = "1.0"


@dataclass(frozen=True)
class PackageNode:
    id: str  # SPDX id; the CycloneDX bom-ref too
    role: str  # root | distribution | component | toolkit | driver-requirement
    name: str
    version: str
    supplier: str | None
    purpose: str  # spdx PackagePurpose name
    concluded: str | None  # SPDX expression, None = NOASSERTION
    declared: str | None
    license_comment: str | None = None
    purls: tuple[str, ...] = ()
    cpes: tuple[str, ...] = ()
    checksums: tuple[tuple[str, str], ...] = ()  # ("SHA1"|"SHA256", hex)
    comment: str | None = None
    summary: str | None = None
    files: tuple[str, ...] = ()  # ids of the files it contains (files analysed when non-empty)
    occurrences: tuple[str, ...] = ()  # virtual paths
    methods: tuple[Method, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()
    shipped: bool = True  # False for the toolkit and the driver requirement


@dataclass(frozen=True)
class FileNode:
    id: str
    path: str  # virtual path
    sha1: str
    sha256: str
    concluded: str | None
    comment: str | None = None
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Edge:
    source: str  # element id, or "SPDXRef-DOCUMENT"
    type: str  # spdx RelationshipType name
    target: str
    comment: str | None = None


@dataclass(frozen=True)
class Note:
    """A finding as an annotation on the element it concerns."""

    target: str
    text: str


@dataclass(frozen=True)
class Plan:
    name: str
    inputs: tuple[str, ...]
    created: datetime
    uuid: str
    tool: str  # "licscan-0.1.0"
    tool_version: str
    creator_org: str | None
    root: str
    packages: tuple[PackageNode, ...]
    files: tuple[FileNode, ...]
    edges: tuple[Edge, ...]
    notes: tuple[Note, ...]
    licenses: tuple[LicenseInfo, ...]
    driver: DriverRequirement
    comment: str
    omitted: tuple[str, ...] = field(default=())  # binaries not listed as files (no SHA-1/SHA-256 known)

    def package(self, element_id: str) -> PackageNode:
        return next(p for p in self.packages if p.id == element_id)


# ------------------------------------------------------------------------------------------------ digests


def record_digests(records: Sequence[Any]) -> Digests:
    """Digests from the scan's FileRecords: ``sha1`` and ``sha256`` attributes when the scan recorded them."""
    table = {}
    for record in records:
        sha1, sha256 = getattr(record, "sha1", None), getattr(record, "sha256", None)
        if sha1 and sha256:
            table[record.vpath] = (sha1, sha256)
    return table.get


def chain(*sources: Digests | None) -> Digests:
    def lookup(vpath: str):
        for source in sources:
            if source is not None:
                found = source(vpath)
                if found:
                    return found
        return None

    return lookup


def filesystem_digests(vpath: str) -> tuple[str, str] | None:
    """SHA-1 and SHA-256 of a plain file named by its virtual path (not of archive members: those contain "!/")."""
    import hashlib

    if "!/" in vpath:
        return None
    try:
        h1, h256 = hashlib.sha1(), hashlib.sha256()
        with open(vpath, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h1.update(block)
                h256.update(block)
        return h1.hexdigest(), h256.hexdigest()
    except OSError:
        return None


# ------------------------------------------------------------------------------------------------ helpers


def _props(component: Component) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in component.properties:
        out.setdefault(key, []).append(value)
    return out


def _first(props: dict[str, list[str]], key: str) -> str | None:
    values = props.get(key)
    return values[0] if values else None


def _display_names() -> dict[str, str]:
    try:
        from licscan.knowledge import load_table

        data = load_table("catalog/nvidia.yaml")
        return {str(k): str(v.get("display") or k) for k, v in (data.get("components") or {}).items()}
    except (OSError, ValueError, AttributeError, KeyError, ModuleNotFoundError):  # optional: fall back to keys
        return {}


def _norm_dist(name: str) -> str:
    return canonicalize_name(name)


def _purl(ptype: str, namespace: str | None, name: str, version: str | None, qualifiers: dict | None = None) -> str:
    from packageurl import PackageURL

    return PackageURL(type=ptype, namespace=namespace, name=name, version=version,
                      qualifiers=qualifiers or None).to_string()


def _technique(evidence: str) -> str:
    text = evidence.lower()
    if "file name" in text:
        return "filename"
    if any(k in text for k in ("declared", "metadata", "record", "distribution", "wheel", "version:")):
        return "manifest-analysis"
    if "sha256" in text or "hash" in text:
        return "hash-comparison"
    return "binary-analysis"


def _file_name(vpath: str) -> str:
    """SPDX file names are relative paths starting with "./" (spdx-tools validates it)."""
    if vpath.startswith("./"):
        return vpath
    return "./" + vpath.lstrip("/")


def _basename(vpath: str) -> str:
    return posixpath.basename(vpath.rsplit("!/", 1)[-1])


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _summarise_images(images: Sequence[DeviceImage]) -> str:
    kinds: dict[str, list[str]] = {}
    for image in images:
        arches = kinds.setdefault(image.kind.value, [])
        if image.arch not in arches:
            arches.append(image.arch)
    parts = [f"{kind} {', '.join(arches)}" for kind, arches in sorted(kinds.items())]
    return f"device code: {len(images)} image(s) ({'; '.join(parts)})"


# ------------------------------------------------------------------------------------------------ build


def build_plan(inventory: Inventory, records: Sequence[Any], *, created: datetime, creator_org: str | None,
               namespace_seed: str | None = None, digests: Digests | None = None,
               findings: Iterable[dict] | None = None, name: str | None = None,
               root_version: str | None = None, tool_version: str | None = None) -> Plan:
    from licscan import __version__

    tool_version = tool_version or __version__
    lookup = chain(digests, record_digests(records))
    tables = driver_tables()
    display = _display_names()
    by_path = {r.vpath: r for r in records}

    components = [c for c in inventory.components if c.kind is not ComponentKind.LICENSE_TEXT]
    owner: dict[str, list[Component]] = {}
    for component in components:
        if component.kind is ComponentKind.PYTHON_DISTRIBUTION:
            continue
        for path in component.paths:
            owner.setdefault(path, []).append(component)

    # ---- files: binaries, device code, component files; SHA-1 + SHA-256 required
    images_by_file: dict[str, list[DeviceImage]] = {}
    for image in inventory.device_code:
        images_by_file.setdefault(_host_path(image.path, by_path), []).append(image)
    wanted = set(images_by_file) | set(owner)
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
        file_ids[vpath] = ids.element_id("File", _basename(vpath), vpath, found[1].lower())

    edges: list[Edge] = []
    packages: list[PackageNode] = []

    # ---- toolkit releases seen in device code (one synthetic package each)
    releases: dict[str, dict] = {}
    file_release: dict[str, set[str]] = {}
    for vpath, images in images_by_file.items():
        for image in images:
            tk = image.toolkit
            if tk is None or tk.is_unknown:
                continue
            key = range_key(tk.low, tk.high, tk.exact)
            if key is None:
                continue
            entry = releases.setdefault(key, {"low": tk.low, "high": tk.high, "exact": set(), "ptx": False,
                                              "compressions": set(), "files": set(), "evidence": set()})
            if tk.exact and release_of(tk.exact) == key:
                entry["low"] = entry["high"] = key
                entry["exact"].add(tk.exact)
            entry["ptx"] |= image.kind.value == "ptx"
            if image.compression.value != "none":
                entry["compressions"].add(image.compression.value)
            entry["files"].add(vpath)
            entry["evidence"].update(tk.evidence[:1])
            file_release.setdefault(vpath, set()).add(key)
    toolkit_ids: dict[str, str] = {}
    toolkit_releases: list[ToolkitRelease] = []
    for key, entry in sorted(releases.items()):
        exact = sorted(entry["exact"], key=driver_key)
        version = exact[0] if len(exact) == 1 else key
        release = ToolkitRelease(key, entry["low"], entry["high"], exact[0] if len(exact) == 1 else None,
                                 entry["ptx"], tuple(sorted(entry["compressions"])))
        toolkit_releases.append(release)
        pid = ids.element_id("Package", f"CUDA-Toolkit-{key}", "toolkit", key)
        toolkit_ids[key] = pid
        ident = tables.identifiers
        cpes = (ident["toolkit_cpe"].format(version=key),) if release.single else ()
        tp = ident["toolkit_purl"]
        purl = _purl(tp["type"], tp.get("namespace"), tp["name"], version if release.single else None)
        toolkit_licence, toolkit_licence_note = _toolkit_licence(entry["low"], entry["high"], key)
        packages.append(PackageNode(
            id=pid, role="toolkit", name=f"CUDA Toolkit {key}", version=version, supplier=NVIDIA,
            purpose="APPLICATION", concluded=toolkit_licence, declared=None, purls=(purl,),
            cpes=cpes, shipped=False, license_comment=toolkit_licence_note,
            comment=(f"Not shipped: the NVIDIA CUDA toolkit that built the device code of {len(entry['files'])} "
                     f"file(s), as their device code states it ({'; '.join(sorted(entry['evidence']))})."
                     + (f" Exact releases seen: {', '.join(exact)}." if len(exact) > 1 else "")),
            methods=tuple(Method("binary-analysis", e) for e in sorted(entry["evidence"])),
            occurrences=tuple(sorted(entry["files"])),
            properties=(("licscan:role", "toolkit"), ("licscan:toolkit-range", key))))
    # toolkit releases named by shipped toolkit-versioned components (cudart 13.0.96 -> CUDA 13.0)
    component_releases = {}
    for component in components:
        if component.vendor == "NVIDIA" and component.name in tables.toolkit_versioned_components:
            rel = release_of(component.version)
            if rel:
                component_releases.setdefault(rel, []).append(component)
    for rel in sorted(set(component_releases) - set(releases)):
        toolkit_releases.append(ToolkitRelease(rel, rel, rel, None))

    # ---- distributions
    dist_ids: dict[str, str] = {}
    dist_by_name: dict[str, Any] = {}
    for dist in inventory.distributions:
        dist_by_name.setdefault(_norm_dist(dist.name), dist)
    for dist in sorted(inventory.distributions, key=lambda d: d.vpath):
        pid = ids.element_id("Package", dist.name, "distribution", dist.vpath, dist.name, dist.version or "")
        dist_ids[_norm_dist(dist.name)] = dist_ids.get(_norm_dist(dist.name), pid)
        packages.append(_distribution_node(pid, dist, lookup, creator_org))
        edges.append(Edge("@root", "CONTAINS", pid))
    for component in components:  # python-distribution components without a Distribution value
        if component.kind is ComponentKind.PYTHON_DISTRIBUTION and _norm_dist(component.name) not in dist_ids:
            pid = ids.element_id("Package", component.name, "distribution", component.id)
            dist_ids[_norm_dist(component.name)] = pid
            packages.append(_distribution_from_component(pid, component, lookup))
            edges.append(Edge("@root", "CONTAINS", pid))

    # a distribution contains the listed files under its scope (the innermost distribution wins)
    dist_files: dict[str, list[str]] = {}
    for vpath, fid in file_ids.items():
        dist = _innermost(vpath, inventory.distributions)
        if dist is not None and _norm_dist(dist.name) in dist_ids:
            dist_files.setdefault(dist_ids[_norm_dist(dist.name)], []).append(fid)
    packages = [replace(p, files=tuple(sorted(dist_files.get(p.id, ())))) if p.role == "distribution" else p
                for p in packages]
    for pid, fids in sorted(dist_files.items()):
        edges.extend(Edge(pid, "CONTAINS", fid) for fid in sorted(fids))

    # ---- components
    component_ids: dict[str, str] = {}
    governing = governing_licences(inventory)
    for component in sorted(components, key=lambda c: c.id):
        if component.kind is ComponentKind.PYTHON_DISTRIBUTION:
            continue
        pid = ids.element_id("Package", component.name, "component", component.id)
        component_ids[component.id] = pid
        props = _props(component)
        dist_name = _first(props, "distribution")
        dist = dist_by_name.get(_norm_dist(dist_name)) if dist_name else None
        node = _component_node(pid, component, props, dist, display, tables, file_ids, file_digest,
                               governing.get(component.id))
        packages.append(node)
        parent = dist_ids.get(_norm_dist(dist_name)) if dist_name else None
        edges.append(Edge(parent or "@root", "CONTAINS", pid))
        edges.extend(Edge(pid, "CONTAINS", fid) for fid in node.files)

    # ---- driver requirement (always when CUDA is in the input)
    cuda_present = bool(toolkit_releases or inventory.device_code
                        or any(c.vendor == "NVIDIA" and c.kind is not ComponentKind.PYTHON_DISTRIBUTION
                               for c in components))
    platforms = {r.facts.format for r in records}
    need = requirement(toolkit_releases, tables)
    driver_id = None
    if cuda_present:
        driver_id = ids.element_id("Package", "NVIDIA-GPU-Driver", "driver-requirement")
        shipped = [c for c in components if c.kind in (ComponentKind.DRIVER, ComponentKind.KERNEL_MODULE)]
        packages.append(_driver_node(driver_id, need, shipped, platforms, tables))
        edges.append(Edge("@root", "DEPENDS_ON", driver_id,
                          "runtime dependency: the NVIDIA driver is provided by the target system, not by this input"
                          if not shipped else "runtime dependency; the input ships NVIDIA driver parts too (see the "
                          "driver package's comment)"))

    # ---- files, DEPENDS_ON (DT_NEEDED) and GENERATED_FROM
    soname_index: dict[str, list[str]] = {}
    for record in records:
        elf = record.facts.elf
        names = {_basename(record.vpath)}
        if elf is not None and elf.soname:
            names.add(elf.soname)
        for n in names:
            soname_index.setdefault(n, []).append(record.vpath)
    component_by_lib: dict[str, str] = {}
    for component in components:
        if component.id in component_ids:
            for path in component.paths:
                component_by_lib.setdefault(_basename(path), component_ids[component.id])
    files: list[FileNode] = []
    for vpath in sorted(file_ids):
        fid = file_ids[vpath]
        record = by_path.get(vpath)
        owners = owner.get(vpath, [])
        licences = {normalise(c.license) for c in owners}
        concluded = licences.pop() if len(licences) == 1 else None
        comment: list[str] = []
        props: list[tuple[str, str]] = []
        if vpath in images_by_file:
            comment.append(_summarise_images(images_by_file[vpath]))
            for key in sorted(file_release.get(vpath, ())):
                edges.append(Edge(fid, "GENERATED_FROM", toolkit_ids[key], f"device code built by CUDA {key}"))
            if not file_release.get(vpath):
                comment.append("toolkit undetermined from the device code")
            props.append(("licscan:device-images", str(len(images_by_file[vpath]))))
        unresolved = []
        needed = record.facts.elf.needed if record is not None and record.facts.elf is not None else ()
        for lib in needed:
            target, why = _resolve(lib, vpath, soname_index, file_ids, owner, component_ids, component_by_lib,
                                   driver_id, tables)
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
        sha1, sha256 = file_digest[vpath]
        files.append(FileNode(fid, vpath, sha1, sha256, concluded, "; ".join(comment) or None, tuple(props)))
        edges.append(Edge("@root", "CONTAINS", fid))

    # ---- root
    name = name or _root_name(inventory.inputs)
    content = ids.digest(*(f"{f.path}={f.sha256}" for f in files), *(p.id for p in packages),
                         *(f"{r.vpath}:{r.size}" for r in records))
    root_version = root_version or f"content-{content[:12]}"
    root = ids.element_id("Package", name, "root", *inventory.inputs)
    uuid = str(ids.document_uuid(namespace_seed or "", name, content))
    root_files = tuple(f.id for f in files)
    summary = inventory.summary
    root_comment = (f"Scanned input(s): {', '.join(inventory.inputs)}; {summary.files} file(s), {summary.bytes} "
                    f"byte(s); {len(files)} binary file(s) listed with SHA-1/SHA-256")
    if omitted:
        root_comment += f"; {len(omitted)} binary file(s) not listed (no digest recorded): " + \
            ", ".join(omitted[:20]) + (" ..." if len(omitted) > 20 else "")
    if inventory.diagnostics:
        root_comment += f"; SCAN INCOMPLETE: {len(inventory.diagnostics)} diagnostic(s)"
    root_supplier, supplier_source = (creator_org, "--organization") if creator_org else \
        _root_supplier(inventory.distributions, inventory.inputs)
    # Parts whose vendor is not known are supplied, as far as the SBOM can tell, by whoever supplies the input.
    packages = [replace(p, supplier=root_supplier, properties=p.properties + (
                    ("licscan:supplier-source", "the supplier of the scanned input (no vendor named)"),))
                if p.role == "component" and p.supplier is None and root_supplier else p for p in packages]
    packages.insert(0, PackageNode(
        id=root, role="root", name=name, version=root_version, supplier=root_supplier, purpose="APPLICATION",
        concluded=None, declared=None, files=root_files, comment=root_comment + ".",
        occurrences=tuple(inventory.inputs),
        properties=(("licscan:role", "root"), ("licscan:supplier-source", supplier_source))))
    edges = [Edge(root if e.source == "@root" else e.source, e.type, root if e.target == "@root" else e.target,
                  e.comment) for e in edges]
    edges.append(Edge("SPDXRef-DOCUMENT", "DESCRIBES", root))
    # The toolkit that built the device code is a build tool of the scanned input (not shipped): tied to the root.
    edges.extend(Edge(root, "HAS_PREREQUISITE", pid, "build tool: the CUDA toolkit that built its device code")
                 for pid in toolkit_ids.values())

    # ---- findings
    notes = _notes(findings or (), file_ids, components, component_ids, root)

    # ---- licences used
    used: set[str] = set()
    for p in packages:
        used |= refs(p.concluded) | refs(p.declared)
    for f in files:
        used |= refs(f.concluded)
    edges = sorted(set(edges), key=lambda e: (e.source, e.type, e.target, e.comment or ""))
    return Plan(
        name=name, inputs=tuple(inventory.inputs), created=created, uuid=uuid, tool=f"licscan-{tool_version}",
        tool_version=tool_version, creator_org=creator_org, root=root,
        packages=(packages[0],) + tuple(sorted(packages[1:], key=lambda p: p.id)),
        files=tuple(files), edges=tuple(edges), notes=notes, licenses=tuple(extracted(used)), driver=need,
        comment=("Generated by licscan from a static scan of build outputs. NVIDIA licence texts are referenced, "
                 "not reproduced. Driver requirement: " + _driver_version(need, platforms) + "."),
        omitted=tuple(omitted))


def _innermost(vpath: str, distributions) -> Any | None:
    return innermost(vpath, distributions, lambda d: d.scope)


def _host_path(path: str, by_path) -> str:
    """The inventoried file that holds an image: the path itself, or the nearest enclosing record."""
    probe = path
    while probe not in by_path and "!/" in probe:
        probe = probe.rsplit("!/", 1)[0]
    return probe if probe in by_path else path


def _root_name(inputs: Sequence[str]) -> str:
    names = [posixpath.basename(p.rstrip("/")) or p for p in inputs]
    return "+".join(names) or "input"


def _resolve(lib, vpath, soname_index, file_ids, owner, component_ids, component_by_lib, driver_id, tables):
    candidates = [p for p in soname_index.get(lib, ()) if p != vpath]
    if candidates:
        best = max(candidates, key=lambda p: (_common_prefix(p, vpath), p))
        if best in file_ids:
            return file_ids[best], f" -> {best}"
        for component in owner.get(best, ()):
            if component.id in component_ids:
                return component_ids[component.id], f" -> {best}"
        return None, ""
    if lib in component_by_lib:
        return component_by_lib[lib], " (component shipped in the input)"
    if driver_id and any(p.fullmatch(lib) for p in tables.driver_libraries):
        return driver_id, " (provided by the NVIDIA driver)"
    return None, ""


def _driver_version(need: DriverRequirement, platforms) -> str:
    windows_only = FileFormat.PE in platforms and FileFormat.ELF not in platforms
    if windows_only and need.windows:
        return f">={need.windows}"
    if need.linux:
        return f">={need.linux}"
    if need.windows:
        return f">={need.windows}"
    return "undetermined"


def _driver_node(pid, need: DriverRequirement, shipped: list[Component], platforms, tables) -> PackageNode:
    version = _driver_version(need, platforms)
    lines = [(f"Runtime dependency, provided by the target system: the NVIDIA GPU driver, Linux >= "
              f"{need.linux or 'undetermined'}, Windows >= {need.windows or 'undetermined'}, for the CUDA "
              f"toolkit(s) {', '.join(need.toolkits) or 'undetermined'} found in the input.")]
    lines.extend(need.reasons)
    concluded = "LicenseRef-NVIDIA-Driver"
    license_comment = ("User-mode driver libraries (libcuda, libnvidia-*) are licensed under the driver's own "
                       "licence: \"NVIDIA Driver License Agreement\" (535 and later; "
                       "LicenseRef-NVIDIA-Driver-License-Agreement), \"License For Customer Use of NVIDIA Software\" "
                       "(470-era drivers; LicenseRef-NVIDIA-Driver-Customer-Use) (docs/licenses.md); the kernel "
                       "modules are either the proprietary ones or the open GPU kernel modules (MIT OR GPL-2.0-only).")
    props = [("licscan:role", "driver-requirement"), ("licscan:min-driver-linux", need.linux or "undetermined"),
             ("licscan:min-driver-windows", need.windows or "undetermined")]
    for component in sorted(shipped, key=lambda c: c.id):
        flavour = _first(_props(component), "flavour")
        ok = ""
        if component.version and need.linux and component.version.count(".") >= 1 \
                and component.version.split(".")[0].isdigit():
            ok = " (satisfies the requirement)" if driver_key(component.version) >= driver_key(need.linux) \
                else " (OLDER than the requirement)"
        lines.append(f"Shipped in the input: {component.name} {component.version or 'version unknown'}, "
                     f"{component.kind.value}, licence {component.license or 'undetermined'}"
                     + (f", {flavour} kernel module" if flavour else "") + ok + f": {', '.join(component.paths)}")
        props.append(("licscan:shipped", f"{component.id} {component.license or ''} {flavour or ''}".strip()))
    ident = tables.identifiers["driver_purl"]
    return PackageNode(
        id=pid, role="driver-requirement", name="NVIDIA GPU Driver", version=version, supplier=NVIDIA,
        purpose="LIBRARY", concluded=concluded, declared=None, license_comment=license_comment,
        purls=(_purl(ident["type"], ident.get("namespace"), ident["name"], None),), comment=" ".join(lines),
        summary="Minimum NVIDIA driver the CUDA code in this input needs at run time", shipped=False,
        methods=tuple(Method("other", r) for r in need.reasons[:3]), properties=tuple(props))


def _distribution_node(pid, dist, lookup, fallback_supplier: str | None) -> PackageNode:
    eco = dist.ecosystem.value
    name = dist.name
    meta = dict(dist.metadata)
    qualifiers = {}
    if eco == "pypi":
        base = _basename(dist.vpath)
        if base.endswith(".whl"):
            qualifiers["file_name"] = base
        purl = _purl("pypi", None, _norm_dist(name), dist.version, qualifiers)
    elif eco == "conda":
        purl = _purl("conda", None, name, dist.version)
    else:
        purl = _purl("generic", None, name, dist.version, {"type": eco})
    supplier = NVIDIA if _norm_dist(name).startswith("nvidia-") else \
        (meta.get("Author") or meta.get("Maintainer") or meta.get("Author-email") or None)
    supplier_note = "package metadata" if supplier else "distributor of the scanned input (metadata names no author)"
    supplier = supplier or fallback_supplier
    raw = dist.license_declared
    declared = normalise(raw)
    comment = None
    if raw and declared != raw:
        comment = f"declared in the {eco} metadata as {raw!r}"
    digest = lookup(dist.vpath)
    return PackageNode(
        id=pid, role="distribution", name=name, version=dist.version or "unknown", supplier=supplier,
        purpose="ARCHIVE" if _basename(dist.vpath).endswith((".whl", ".deb", ".conda", ".tar.bz2")) else "INSTALL",
        concluded=None, declared=declared, license_comment=comment, purls=(purl,),
        checksums=(("SHA1", digest[0]), ("SHA256", digest[1])) if digest else (),
        summary=meta.get("Summary"), occurrences=(dist.vpath,),
        methods=(Method("manifest-analysis", f"{dist.vpath}: Name: {name}, Version: {dist.version}"),),
        properties=(("licscan:role", "distribution"), ("licscan:ecosystem", eco),
                    ("licscan:supplier-source", supplier_note)))


def _distribution_from_component(pid, component: Component, lookup) -> PackageNode:
    declared = normalise(component.license)
    return PackageNode(
        id=pid, role="distribution", name=component.name, version=component.version or "unknown",
        supplier=NVIDIA if component.vendor == "NVIDIA" else (component.vendor or None), purpose="ARCHIVE",
        concluded=None, declared=declared,
        license_comment=(f"declared as {component.license!r}" if component.license and declared !=
                         component.license else None),
        purls=(_purl("pypi", None, _norm_dist(component.name), component.version),),
        occurrences=component.paths, methods=tuple(Method("manifest-analysis", e) for e in component.evidence),
        properties=(("licscan:role", "distribution"), ("licscan:component", component.id)))


def _root_supplier(distributions, inputs) -> tuple[str | None, str]:
    """The supplier of the scanned input from its distribution metadata (Author, Maintainer, Author-email) when
    every distribution at the top of an input names the same one; (None, why) otherwise."""
    top = [d for d in distributions if "!/" not in d.vpath.rstrip("/")]
    found = set()
    for dist in top:
        meta = dict(dist.metadata)
        name = meta.get("Author") or meta.get("Maintainer") or meta.get("Author-email")
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


def _toolkit_licence(low, high, key: str) -> tuple[str, str]:
    """The CUDA EULA text NVIDIA published with a toolkit release (docs/licenses.md), as the SBOM's concluded
    licence, and a comment that says which text and why."""
    from licscan.rules import documents
    from licscan.rules.versions import range_from_toolkit

    eula = documents.load().document("cuda-eula")
    mapped = eula.for_release(range_from_toolkit({"min": low, "max": high, "exact": None}))
    if mapped and len(mapped) == 1:
        text, basis, source = mapped[0]
        return text.license, f"governing text: {text.title} ({basis}: {source})"
    return GENERIC_EULA, (f"the CUDA EULA; which text NVIDIA published with CUDA {key} is not known to licscan "
                          "(docs/licenses.md)")


GENERIC_EULA = "LicenseRef-NVIDIA-CUDA-EULA"


def _facts_document(inventory: Inventory) -> dict[str, Any]:
    """The parts of a report document the rules' facts view reads for components (licscan/rules/facts.py)."""
    return {
        "inputs": list(inventory.inputs),
        "components": [{"id": c.id, "name": c.name, "vendor": c.vendor, "kind": c.kind.value, "version": c.version,
                        "license": c.license, "paths": list(c.paths), "evidence": list(c.evidence),
                        "properties": dict(c.properties)} for c in inventory.components],
        "distributions": [{"path": d.vpath, "name": d.name, "ecosystem": d.ecosystem.value, "version": d.version,
                           "license_declared": d.license_declared, "license_files": list(d.license_files)}
                          for d in inventory.distributions],
        "device_code": [],
    }


def governing_licences(inventory: Inventory) -> dict[str, tuple[str | None, str]]:
    """Component id -> (concluded licence, comment): the licence that governs it (licscan/rules/governing.py,
    default policy), the same answer the rules judge by. A text left unknown gives the document's generic id."""
    from licscan.rules import documents, facts

    out: dict[str, tuple[str | None, str]] = {}
    seen: dict[str, set[tuple[str | None, str]]] = {}
    for fact in facts.build(_facts_document(inventory)).scope("component"):
        governing = fact.governing.get("published-with-toolkit")
        if governing is None or governing.document is None or fact.component is None:
            continue
        doc = documents.load().document(governing.document)
        licence = governing.license_id()
        if licence is None:
            licence = GENERIC_EULA if governing.document == "cuda-eula" else \
                {"nvidia-driver": "LicenseRef-NVIDIA-Driver", "cudnn-sla": "LicenseRef-NVIDIA-cuDNN-SLA",
                 "scale-free": "LicenseRef-Spectral-SCALE-Free"}.get(governing.document)
            note = f"governed by the {doc.name}; text unknown ({governing.why})"
        else:
            note = f"governing licence: {governing.label} ({governing.why})"
        seen.setdefault(fact.component, set()).add((licence, note))
    for component, answers in seen.items():
        licences = {licence for licence, _ in answers}
        if len(licences) == 1:
            out[component] = sorted(answers, key=lambda a: a[1])[0]
        else:
            out[component] = (None, "its copies are governed by different texts: "
                              + "; ".join(sorted(n for _, n in answers)))
    return out


def _component_node(pid, component: Component, props, dist, display, tables, file_ids, file_digest,
                    governing: tuple[str | None, str] | None = None) -> PackageNode:
    version = component.version or _first(props, "version_range") or "unknown"
    nvidia = component.vendor == "NVIDIA"
    if dist is not None and dist.ecosystem.value in ("pypi", "conda") and dist.version:
        purl = _purl(dist.ecosystem.value, None,
                     _norm_dist(dist.name) if dist.ecosystem.value == "pypi" else dist.name, dist.version)
    elif _first(props, "distribution") and _first(props, "distribution_version"):
        purl = _purl("pypi", None, _norm_dist(_first(props, "distribution")), _first(props, "distribution_version"))
    else:
        purl = _purl("generic", "nvidia" if nvidia else ids.slug(component.vendor or "unknown"), component.name,
                     component.version)
    cpes = []
    ident = tables.identifiers
    if nvidia and component.name in tables.toolkit_versioned_components and cpe_value(release_of(component.version)):
        cpes.append(ident["toolkit_cpe"].format(version=cpe_value(release_of(component.version))))
    # The version comes from the file (a kernel module's .modinfo): quoted for CPE 2.3, none when it cannot be one.
    driver_version = cpe_value(component.version)
    if nvidia and component.kind in (ComponentKind.DRIVER, ComponentKind.KERNEL_MODULE) and driver_version \
            and component.version.count(".") >= 1:
        cpes.append(ident["driver_cpe"].format(version=driver_version))
    concluded = normalise(component.license)
    raw_declared = _first(props, "license_declared")
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
    flavour = _first(props, "flavour")
    if flavour:
        notes.append(f"kernel module flavour: {flavour}")
    files = tuple(sorted(file_ids[p] for p in component.paths if p in file_ids))
    checksums: tuple[tuple[str, str], ...] = ()
    listed = [p for p in component.paths if p in file_digest]
    if len(component.paths) == 1 and listed:
        sha1, sha256 = file_digest[listed[0]]
        checksums = (("SHA1", sha1), ("SHA256", sha256))
    confidence = _CONFIDENCE.get(_first(props, "confidence") or "high", "1.0")
    methods = tuple(Method(_technique(e), e, confidence) for e in component.evidence)
    properties = [("licscan:role", "component"), ("licscan:id", component.id), ("licscan:kind", component.kind.value)]
    properties.extend((f"licscan:{k}", v) for k, v in component.properties)
    return PackageNode(
        id=pid, role="component", name=display.get(component.name, component.name), version=version,
        supplier=NVIDIA if nvidia else (component.vendor or None),
        purpose="APPLICATION" if component.kind is ComponentKind.DEVELOPER_TOOL else "LIBRARY",
        concluded=concluded, declared=declared, license_comment="; ".join(notes) or None, purls=(purl,),
        cpes=tuple(cpes), checksums=checksums, files=files, occurrences=component.paths, methods=methods,
        comment=f"{component.kind.value} {component.id}; evidence: " + "; ".join(component.evidence)
        if component.evidence else f"{component.kind.value} {component.id}",
        properties=tuple(properties))


def _notes(findings, file_ids, components, component_ids, root) -> tuple[Note, ...]:
    notes = []
    for finding in findings:
        path = finding.get("path") or ""
        target = file_ids.get(path)
        if target is None:
            for component in components:
                if path in component.paths and component.id in component_ids:
                    target = component_ids[component.id]
                    break
        target = target or root
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
        notes.append(Note(target, text))
    return tuple(sorted(set(notes), key=lambda n: (n.target, n.text)))
