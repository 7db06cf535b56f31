"""The packages of an SBOM that the input needs but does not ship: the CUDA toolkit releases that built its device
code (a build tool) and the minimum NVIDIA driver that runs it (a runtime dependency)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from licscan.model import Component, DeviceImage, FileFormat, ToolkitRange, release_of
from licscan.rules import documents
from licscan.sbom import ids
from licscan.sbom.data import DriverTables
from licscan.sbom.driver import DriverRequirement, ToolkitRelease, driver_key
from licscan.sbom.governing import GENERIC_EULA
from licscan.sbom.nodes import NVIDIA, Method, PackageNode
from licscan.sbom.packages import first, purl

Seen = list[tuple[str, DeviceImage]]  # the device images of one toolkit release, with the file each is in


@dataclass(frozen=True)
class Toolkits:
    """The CUDA toolkit releases an input's device code was built with, and those its shipped parts are from."""

    packages: tuple[PackageNode, ...]  # one synthetic, not shipped package per release seen in device code
    ids: dict[str, str]  # release key ("13.0", "12.8-13.0") -> its package id
    releases: tuple[ToolkitRelease, ...]  # those of device code, then those named only by shipped components
    of_file: dict[str, set[str]]  # host file -> the release keys of its device code


def toolkits(images_by_file: Mapping[str, Sequence[DeviceImage]], components: Sequence[Component],
             tables: DriverTables) -> Toolkits:
    groups: dict[str, Seen] = {}
    of_file: dict[str, set[str]] = {}
    for vpath, images in images_by_file.items():
        for image in images:
            tk = image.toolkit
            key = tk.key if tk is not None else None
            if key is not None:
                groups.setdefault(key, []).append((vpath, image))
                of_file.setdefault(vpath, set()).add(key)
    packages, releases, package_ids = [], [], {}
    for key, seen in sorted(groups.items()):
        release, node = _toolkit_package(key, seen, tables)
        releases.append(release)
        packages.append(node)
        package_ids[key] = node.id
    # toolkit releases named by shipped toolkit-versioned components (cudart 13.0.96 -> CUDA 13.0)
    named = {release_of(c.version) for c in components
             if c.vendor == "NVIDIA" and c.name in tables.toolkit_versioned_components}
    releases.extend(ToolkitRelease(rel, rel, rel, None) for rel in sorted(r for r in named if r) if rel not in groups)
    return Toolkits(tuple(packages), package_ids, tuple(releases), of_file)


def _toolkit_package(key: str, seen: Seen, tables: DriverTables) -> tuple[ToolkitRelease, PackageNode]:
    ranges = [image.toolkit for _, image in seen if image.toolkit is not None]
    exact = sorted({tk.exact for tk in ranges if tk.exact and release_of(tk.exact) == key}, key=driver_key)
    low, high = (key, key) if exact else (ranges[0].low, ranges[0].high)
    files = sorted({vpath for vpath, _ in seen})
    evidence = sorted({e for tk in ranges for e in tk.evidence[:1]})
    release = ToolkitRelease(key, low, high, exact[0] if len(exact) == 1 else None,
                             any(image.kind.value == "ptx" for _, image in seen),
                             tuple(sorted({i.compression.value for _, i in seen if i.compression.value != "none"})))
    version = exact[0] if len(exact) == 1 else key
    template = tables.identifiers.toolkit_purl
    licence, licence_note = _toolkit_licence(low, high, key)
    node = PackageNode(
        id=ids.element_id("Package", f"CUDA-Toolkit-{key}", "toolkit", key), role="toolkit",
        name=f"CUDA Toolkit {key}", version=version, supplier=NVIDIA, purpose="APPLICATION", concluded=licence,
        declared=None, purls=(purl(template.type, template.namespace, template.name,
                                   version if release.single else None),),
        cpes=(tables.identifiers.toolkit_cpe.format(version=key),) if release.single else (), shipped=False,
        license_comment=licence_note,
        comment=(f"Not shipped: the NVIDIA CUDA toolkit that built the device code of {len(files)} "
                 f"file(s), as their device code states it ({'; '.join(evidence)})."
                 + (f" Exact releases seen: {', '.join(exact)}." if len(exact) > 1 else "")),
        methods=tuple(Method("binary-analysis", e) for e in evidence), occurrences=tuple(files),
        properties=(("licscan:role", "toolkit"), ("licscan:toolkit-range", key)))
    return release, node


def _toolkit_licence(low: str | None, high: str | None, key: str) -> tuple[str, str]:
    """The CUDA EULA text NVIDIA published with a toolkit release (docs/licenses.md), as the SBOM's concluded
    licence, and a comment that says which text and why."""
    eula = documents.load().document("cuda-eula")
    mapped = eula.for_release(ToolkitRange(low, high))
    if mapped and len(mapped) == 1:
        text, basis, source = mapped[0]
        return text.license, f"governing text: {text.title} ({basis}: {source})"
    return GENERIC_EULA, (f"the CUDA EULA; which text NVIDIA published with CUDA {key} is not known to licscan "
                          "(docs/licenses.md)")


# ------------------------------------------------------------------------------------------------ driver


def driver_version(need: DriverRequirement, platforms: set[FileFormat]) -> str:
    """The driver requirement as a version constraint: Windows' when the input holds PE files only."""
    windows_only = FileFormat.PE in platforms and FileFormat.ELF not in platforms
    if windows_only and need.windows:
        return f">={need.windows}"
    if need.linux:
        return f">={need.linux}"
    if need.windows:
        return f">={need.windows}"
    return "undetermined"


_DRIVER_LICENCE = (
    "User-mode driver libraries (libcuda, libnvidia-*) are licensed under the driver's own licence: \"NVIDIA Driver "
    "License Agreement\" (535 and later; LicenseRef-NVIDIA-Driver-License-Agreement), \"License For Customer Use of "
    "NVIDIA Software\" (470-era drivers; LicenseRef-NVIDIA-Driver-Customer-Use) (docs/licenses.md); the kernel "
    "modules are either the proprietary ones or the open GPU kernel modules (MIT OR GPL-2.0-only).")


def driver_node(pid: str, need: DriverRequirement, shipped: Sequence[Component], platforms: set[FileFormat],
                tables: DriverTables) -> PackageNode:
    lines = [(f"Runtime dependency, provided by the target system: the NVIDIA GPU driver, Linux >= "
              f"{need.linux or 'undetermined'}, Windows >= {need.windows or 'undetermined'}, for the CUDA "
              f"toolkit(s) {', '.join(need.toolkits) or 'undetermined'} found in the input.")]
    lines.extend(need.reasons)
    props = [("licscan:role", "driver-requirement"), ("licscan:min-driver-linux", need.linux or "undetermined"),
             ("licscan:min-driver-windows", need.windows or "undetermined")]
    for component in sorted(shipped, key=lambda c: c.id):
        flavour = first(component.flavours)
        ok = ""
        if component.version and need.linux and component.version.count(".") >= 1 \
                and component.version.split(".")[0].isdigit():
            ok = " (satisfies the requirement)" if driver_key(component.version) >= driver_key(need.linux) \
                else " (OLDER than the requirement)"
        lines.append(f"Shipped in the input: {component.name} {component.version or 'version unknown'}, "
                     f"{component.kind.value}, licence {component.license or 'undetermined'}"
                     + (f", {flavour} kernel module" if flavour else "") + ok + f": {', '.join(component.paths)}")
        props.append(("licscan:shipped", f"{component.id} {component.license or ''} {flavour or ''}".strip()))
    template = tables.identifiers.driver_purl
    return PackageNode(
        id=pid, role="driver-requirement", name="NVIDIA GPU Driver", version=driver_version(need, platforms),
        supplier=NVIDIA, purpose="LIBRARY", concluded="LicenseRef-NVIDIA-Driver", declared=None,
        license_comment=_DRIVER_LICENCE, purls=(purl(template.type, template.namespace, template.name, None),),
        comment=" ".join(lines), summary="Minimum NVIDIA driver the CUDA code in this input needs at run time",
        shipped=False, methods=tuple(Method("other", r) for r in need.reasons[:3]), properties=tuple(props))
