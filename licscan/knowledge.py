"""Loads the version knowledge kept as data under ``rules/`` (shipped in the wheel as ``licscan._builtin_rules``).

The YAML files are the source. Parsing YAML costs more than listing the 2,975 cubins of a 500 MB library, so each
table also has a JSON snapshot beside it (``versions.yaml`` -> ``versions.json``) that carries the SHA-256 of the
YAML it was made from; the snapshot is used only while that hash matches, so an edited YAML file is never shadowed
by a stale snapshot. ``python -m licscan.knowledge`` rewrites the snapshots; a test keeps them in sync.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TABLES = ("toolkit/versions.yaml", "toolkit/components.yaml", "catalog/nvidia.yaml", "catalog/license-texts.yaml",
          "catalog/translation-layers.yaml", "catalog/amdgpu.yaml", "sbom/driver-requirements.yaml",
          "licenses/licenses.yaml", "licenses/documents.yaml")


def builtin_rules_dir() -> Traversable:
    """The ``rules/`` folder of the source tree, installed as the package ``licscan._builtin_rules``."""
    from importlib import resources

    return resources.files("licscan._builtin_rules")


def _parse_yaml(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def _read_builtin(name: str) -> bytes:
    """The bytes of ``rules/<name>``: straight from the package folder when it is one (every install but a zip
    import; importlib.resources alone costs more start-up time than a whole ``licscan inspect`` of a fatbin)."""
    import importlib

    package = importlib.import_module("licscan._builtin_rules")  # rules/, installed under this name (pyproject.toml)
    folder = os.path.dirname(package.__file__ or "")
    path = os.path.join(folder, *name.split("/"))
    if folder and os.path.isfile(os.path.join(folder, "__init__.py")):
        with open(path, "rb") as handle:
            return handle.read()
    return builtin_rules_dir().joinpath(name).read_bytes()


def load_table(name: str) -> Any:
    """The data of ``rules/<name>``, from its JSON snapshot when that is current."""
    raw = _read_builtin(name)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        cached = json.loads(_read_builtin(_snapshot_name(name)).decode("utf-8"))
        if cached.get("source_sha256") == digest:
            return cached["data"]
    except (OSError, ValueError):
        pass
    return _parse_yaml(raw.decode("utf-8"))


def _snapshot_name(name: str) -> str:
    return name.rsplit(".", 1)[0] + ".json"


def write_snapshots() -> list[str]:
    written = []
    for name in TABLES:
        source = builtin_rules_dir().joinpath(name)
        raw = source.read_bytes()
        document = {"source": name, "source_sha256": hashlib.sha256(raw).hexdigest(),
                    "data": _parse_yaml(raw.decode("utf-8"))}
        target = builtin_rules_dir().joinpath(_snapshot_name(name))
        with open(str(target), "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1, sort_keys=True)
            out.write("\n")
        written.append(str(target))
    return written


@dataclass(frozen=True)
class ToolkitTables:
    ptx_isa: dict[str, tuple[str, str | None]]  # ISA -> (first toolkit, last toolkit or None)
    arch: dict[str, tuple[str | None, str | None]]  # sm_XX -> (min, max)
    suffix: dict[str, str]  # "a"/"f" -> min toolkit
    cubin_abi_v8: dict[str, str]
    newest_isa: tuple[str, str] | None  # (ISA, first toolkit) of the newest ISA in the table


@functools.cache
def toolkit_tables() -> ToolkitTables:
    data = load_table("toolkit/versions.yaml")
    if data.get("version") != 1:
        raise ValueError("rules/toolkit/versions.yaml: unsupported version")
    isa = {str(k): (str(v["first"]), str(v["last"]) if v.get("last") else None) for k, v in data["ptx_isa"].items()}
    arch = {str(k): (str(v["min"]) if v.get("min") else None, str(v["max"]) if v.get("max") else None)
            for k, v in data["arch"].items()}
    newest = max(isa.items(), key=lambda kv: tuple(int(p) for p in kv[0].split(".")), default=None)
    return ToolkitTables(
        ptx_isa=isa,
        arch=arch,
        suffix={str(k): str(v["min"]) for k, v in data["suffix"].items()},
        cubin_abi_v8={str(k): str(v) for k, v in data["cubin_abi_v8"].items()},
        newest_isa=(newest[0], newest[1][0]) if newest else None,
    )


@functools.cache
def catalog_table(name: str) -> Any:
    """The data of ``rules/catalog/<name>.yaml`` (version 1), e.g. ``catalog_table("nvidia")``; compiled by
    licscan/identify/catalog.py, licensetext.py, signals.py and licscan/binary/amdgpu.py."""
    data = load_table(f"catalog/{name}.yaml")
    if data.get("version") != 1:
        raise ValueError(f"rules/catalog/{name}.yaml: unsupported version")
    return data


if __name__ == "__main__":
    for path in write_snapshots():
        print(f"wrote {path}", file=sys.stderr)
