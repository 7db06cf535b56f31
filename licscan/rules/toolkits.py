"""The CUDA toolkit release of a component, for the rules' ``toolkit`` field and the licence text that governs it.

A component's version when that is the toolkit release (a toolkit-versioned component of rules/attachment-a.yaml:
cudart 13.0.96 is CUDA 13.0), else the toolkit of a driver's branch. A file whose component states none may still name it: ``libcupti.so.12`` is CUDA 12.x, and a copy of the same
component in the same folder (``libcupti.so`` beside it) shares that.
"""

from __future__ import annotations

import re
from typing import Any

from licscan.model import ToolkitRange
from licscan.rules import attachment
from licscan.vpath import basename

Json = dict[str, Any]


def dirname(path: str) -> str:
    """Everything of a virtual path before its last "/" ("" for a bare name)."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


def component_toolkit(component: Json) -> ToolkitRange:
    """The toolkit release a component belongs to: its version when that is the toolkit release (attachment-a.yaml
    ``toolkit_versioned``), else the toolkit of a driver's branch. (The naming layer states no toolkit of its own
    for a component: cuBLAS 12.9.1.4's release is not a fact of its file.)"""
    data = attachment.load()
    if component.get("name") in data.toolkit_versioned:
        return ToolkitRange.of_version(attachment.toolkit_version(component.get("version")))
    if component.get("kind") == "driver":
        return data.driver_toolkit(component.get("version"))
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
