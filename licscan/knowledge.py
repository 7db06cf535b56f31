"""Loads the version knowledge kept as data under ``rules/`` (shipped in the wheel as ``licscan._builtin_rules``).

The YAML files are the source. Parsing YAML costs more than listing the 2,975 cubins of a 500 MB library, so each
table also has a JSON snapshot beside it (``versions.yaml`` -> ``versions.json``) that carries the SHA-256 of the
YAML it was made from; the snapshot is used only while that hash matches, so an edited YAML file is never shadowed
by a stale snapshot. The built-in rule packs (``rules/packs/*.yaml``) have one too, with the position of each rule
(:func:`pack_snapshot`). ``python -m licscan.knowledge`` rewrites the snapshots; a test keeps them in sync.
"""

from __future__ import annotations

import datetime
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
          "licenses/licenses.yaml", "licenses/documents.yaml", "attachment-a.yaml")


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


@dataclass(frozen=True)
class PackSnapshot:
    """A built-in rule pack (``rules/packs/*.yaml``) as its JSON snapshot holds it: the pack's round-trip data as
    plain JSON values (:func:`plain`), and the (line, column) of each rule in the YAML, where a rule is reported
    (``licscan rules``, a rule id defined twice). Parsing the four built-in packs with ruamel.yaml's pure-Python
    round-trip loader cost 0.2 s of CPU in every audit; the snapshot costs a ``json.loads``."""

    data: Any
    rules_at: tuple[tuple[int, int], ...]


def pack_snapshot(path: str) -> PackSnapshot | None:
    """The snapshot beside the rule pack at ``path`` (``cuda-eula.yaml`` -> ``cuda-eula.json``) while it was made
    from the pack's current bytes; None otherwise (the pack is then read from its YAML, the source)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        with open(_snapshot_name(path), "rb") as handle:
            cached = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or cached.get("source_sha256") != hashlib.sha256(raw).hexdigest():
        return None
    at = cached.get("rules_at")
    if not isinstance(at, list) or not all(isinstance(p, list) and len(p) == 2 and all(type(n) is int for n in p)
                                           for p in at):
        return None
    return PackSnapshot(cached.get("data"), tuple((line, column) for line, column in at))


def plain(data: Any) -> Any:
    """Round-trip YAML data as plain dicts, lists and scalars (dates as ISO strings)."""
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    if isinstance(data, (datetime.date, datetime.datetime)):
        return data.isoformat()
    if isinstance(data, str):
        return str(data)
    if isinstance(data, bool):
        return bool(data)
    if isinstance(data, int):
        return int(data)
    if isinstance(data, float):
        return float(data)
    return data


def _pack_document(text: str) -> dict[str, Any] | None:
    """What a rule pack's snapshot holds besides its source: the data and each rule's position; None when the YAML
    does not read or has a duplicate key (the loader then reads the YAML and reports it)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="rt", pure=True).load(text)  # duplicate keys raise (DuplicateKeyError)
    except YAMLError:
        return None
    rules = data.get("rules") if isinstance(data, dict) else None
    lines = [getattr(rule, "lc", None) for rule in rules] if isinstance(rules, list) else []
    return {"data": plain(data),
            "rules_at": [[lc.line + 1, lc.col + 1] if lc is not None else [0, 0] for lc in lines]}


def _write(target: Traversable, document: dict[str, Any]) -> str:
    with open(str(target), "w", encoding="utf-8") as out:
        json.dump(document, out, indent=1, sort_keys=True)
        out.write("\n")
    return str(target)


def write_snapshots() -> list[str]:
    """Write the JSON snapshot of every table (:data:`TABLES`) and of every built-in rule pack (``packs/*.yaml``;
    a pack whose YAML does not read gets none)."""
    written = []
    rules = builtin_rules_dir()
    for name in TABLES:
        raw = rules.joinpath(name).read_bytes()
        written.append(_write(rules.joinpath(_snapshot_name(name)), {
            "source": name, "source_sha256": hashlib.sha256(raw).hexdigest(),
            "data": _parse_yaml(raw.decode("utf-8"))}))
    for pack in sorted(p.name for p in rules.joinpath("packs").iterdir() if p.name.endswith(".yaml")):
        name = f"packs/{pack}"
        raw = rules.joinpath(name).read_bytes()
        document = _pack_document(raw.decode("utf-8"))
        target = rules.joinpath(_snapshot_name(name))
        if document is None:
            if target.is_file():
                os.remove(str(target))
            continue
        written.append(_write(target, {"source": name, "source_sha256": hashlib.sha256(raw).hexdigest(),
                                       **document}))
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
