"""The CUDA toolkit release of a component, for the rules' ``toolkit`` field and the licence text that governs it.

A component's version when that is the toolkit release (a toolkit-versioned component of rules/attachment-a.yaml:
cudart 13.0.96 is CUDA 13.0), the release whose ``cuda-toolkit`` meta-package pins a library's own version
(rules/toolkit/components.yaml: cuBLAS 12.9.1.4 is CUDA 12.9.1), else the toolkit of a driver's branch. A file whose
component states none may still name it: ``libcupti.so.12`` is CUDA 12.x, and a copy of the same component in the
same folder (``libcupti.so`` beside it) shares that.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from licscan.model import ToolkitRange
from licscan.rules import attachment
from licscan.vpath import basename

Json = dict[str, Any]
COMPONENTS_TABLE = "toolkit/components.yaml"


@dataclass(frozen=True)
class LibraryReleases:
    """rules/toolkit/components.yaml: which toolkit release pins each version of a library with its own numbering."""

    distributions: dict[str, str]  # catalog component -> PyPI distribution without -cuNN
    pins: dict[tuple[str, str], tuple[str, ...]]  # (distribution, pinned version) -> meta-package versions

    def toolkit(self, name: str | None, version: str | None, prefix: str | None = None) -> ToolkitRange:
        """The toolkit release(s) whose meta-package pins ``version`` of component ``name``, or (no version) a
        version that starts with ``prefix`` of three parts or more ("12.9.1" of cuBLAS 12.9.1.4, as a Windows
        DLL's version resource states it); unknown: none."""
        dist = self.distributions.get(str(name))
        if not dist:
            return ToolkitRange.unknown()
        if version:
            releases = self.pins.get((dist, str(version)), ())
        elif prefix and prefix.count(".") >= 2:
            releases = tuple(sorted({r for (d, v), rs in self.pins.items() if d == dist
                                     and v.startswith(prefix + ".") for r in rs}, key=_release_key))
        else:
            releases = ()
        if not releases:
            return ToolkitRange.unknown()
        minors = sorted({tuple(int(p) for p in r.split(".")[:2]) for r in releases})
        low, high = (f"{m[0]}.{m[1]}" for m in (minors[0], minors[-1]))
        exact = releases[0] if len(releases) == 1 and releases[0].count(".") == 2 else None
        pinned = ', '.join(releases)
        why = (f"{name} {version} is pinned by cuda-toolkit {pinned} (rules/{COMPONENTS_TABLE})" if version else
               f"{name} {prefix}.x: the cuda-toolkit meta-packages that pin a {prefix}.* version are {pinned} "
               f"(rules/{COMPONENTS_TABLE})",)
        return ToolkitRange(low, high, exact, why)


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


@functools.lru_cache(maxsize=1)
def library_releases() -> LibraryReleases:
    from licscan.knowledge import load_table

    data = load_table(COMPONENTS_TABLE)
    if data.get("version") != 1:
        raise ValueError(f"rules/{COMPONENTS_TABLE}: unsupported version")
    pins: dict[tuple[str, str], list[str]] = {}
    for release, row in data["releases"].items():
        for dist, version in row.items():
            pins.setdefault((str(dist), str(version)), []).append(str(release))
    return LibraryReleases({str(k): str(v) for k, v in data["distributions"].items()},
                           {k: tuple(v) for k, v in pins.items()})


def dirname(path: str) -> str:
    """Everything of a virtual path before its last "/" ("" for a bare name)."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


def component_toolkit(component: Json) -> ToolkitRange:
    """The toolkit release a component belongs to: its version when that is the toolkit release (attachment-a.yaml
    ``toolkit_versioned``), the release whose meta-package pins a library's own version (components.yaml), else the
    toolkit of a driver's branch. (The naming layer states no toolkit of its own for a component: cuBLAS 12.9.1.4's
    release is not a fact of its file but of NVIDIA's packaging.)"""
    data = attachment.load()
    props = component.get("properties") or {}
    prefix = str(props.get("version_range") or "").removesuffix(".x")
    if component.get("name") in data.toolkit_versioned:
        # A runtime linked into another binary has no file name to read a release from: its range ("12.9.x", read
        # from the code it carries) is its toolkit.
        version = component.get("version") or (prefix if props.get("linked_from") else None)
        return ToolkitRange.of_version(attachment.toolkit_version(version))
    if component.get("kind") == "driver":
        return data.driver_toolkit(component.get("version"))
    if component.get("vendor") == "NVIDIA":
        return library_releases().toolkit(component.get("name"), component.get("version"), prefix or None)
    return ToolkitRange.unknown()


_NAME_VERSION = re.compile(r"\.so\.(\d+(?:\.\d+)*)$|\.(\d+(?:\.\d+)*)\.dylib$")


def path_toolkits(components: list[Json], toolkits: dict[int, ToolkitRange]) -> dict[tuple[int, str], tuple[ToolkitRange, str]]:
    """Per path, the toolkit of a component whose own is unknown: from the file name (``libcupti.so.12`` -> 12.x;
    CUPTI's year numbering ``libcupti.so.2025.1.1`` is not a toolkit), else from a copy of the same component in the
    same folder whose name states it (``libcupti.so``, ``libcupti_static.a`` beside ``libcupti.so.12``)."""
    data = attachment.load()
    own: dict[tuple[int, str], ToolkitRange] = {}
    for index, component in enumerate(components):
        if not toolkits[index].is_unknown or component.get("name") not in data.toolkit_versioned:
            continue
        for path in component.get("paths") or ():
            match = _NAME_VERSION.search(basename(path))
            version = attachment.toolkit_version(match and (match.group(1) or match.group(2)))
            if version:
                own[(index, path)] = ToolkitRange.of_version(version)
    by_folder: dict[tuple[str, str], dict[str, tuple[ToolkitRange, str]]] = {}
    for (index, path), rng in own.items():
        by_folder.setdefault((str(components[index].get("name")), dirname(path)), {})[rng.text] = (rng, path)
    out: dict[tuple[int, str], tuple[ToolkitRange, str]] = {}
    for index, component in enumerate(components):
        if not toolkits[index].is_unknown:
            continue
        for path in component.get("paths") or ():
            if (index, path) in own:
                out[(index, path)] = (own[(index, path)], f"toolkit {own[(index, path)].text} from the file name")
                continue
            found = by_folder.get((str(component.get("name")), dirname(path)), {})
            if len(found) == 1:
                (rng, sibling), = found.values()
                out[(index, path)] = (rng, f"toolkit {rng.text} from {basename(sibling)}, a copy of the same "
                                           f"component in the same folder")
    return out
