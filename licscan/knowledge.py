"""Loads the version knowledge kept as data under ``rules/`` (shipped in the wheel as ``licscan._builtin_rules``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ruamel.yaml import YAML


def builtin_rules_dir():
    """The ``rules/`` folder of the source tree, installed as the package ``licscan._builtin_rules``."""
    return resources.files("licscan._builtin_rules")


def load_yaml(name: str) -> Any:
    yaml = YAML(typ="safe", pure=True)
    return yaml.load(builtin_rules_dir().joinpath(name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ToolkitTables:
    ptx_isa: dict[str, tuple[str, str | None]]  # ISA -> (first toolkit, last toolkit or None)
    arch: dict[str, tuple[str | None, str | None]]  # sm_XX -> (min, max)
    suffix: dict[str, str]  # "a"/"f" -> min toolkit
    cubin_abi_v8: dict[str, str]
    newest_isa: tuple[str, str] | None  # (ISA, first toolkit) of the newest ISA in the table


@functools.cache
def toolkit_tables() -> ToolkitTables:
    data = load_yaml("toolkit/versions.yaml")
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
