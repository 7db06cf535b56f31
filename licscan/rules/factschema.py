"""The fact schema that rule packs are written against, generated from the model.

A rule's ``when`` selects facts of one scope (``component``, ``device_code``, ``distribution``) and tests their
fields (``licscan.rules.facts.FIELDS``, a closed table). Users write rules against these names, so they are a
versioned contract: ``licscan/schemas/facts.schema.json`` lists every field of every scope with its JSON type, what it
means and the model attribute it comes from. ``python -m licscan.rules.factschema`` rewrites the file; a test fails
when the file, the table and the model disagree (a field without a description, a source attribute the model does
not have, a stale file).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from licscan import model
from licscan.rules.facts import FIELDS

VERSION = 1
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "facts.schema.json"

_RANGE: dict[str, Any] = {"type": "object", "description": "a version range {min, max, exact}; `version_in` tests it",
          "properties": {"min": {"type": ["string", "null"]}, "max": {"type": ["string", "null"]},
                         "exact": {"type": ["string", "null"]}}}
_STR: dict[str, Any] = {"type": ["string", "null"]}
_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

# name -> (JSON schema of the value, meaning, model attribute it is read from ("Class.field") or None when derived)
_Spec = tuple[dict[str, Any], str, str | None]
_DIST: dict[str, _Spec] = {
    "distribution.name": (_STR, "name of the enclosing distribution (wheel, Debian or conda package)",
                          "Distribution.name"),
    "distribution.path": (_STR, "virtual path of the enclosing distribution", "Distribution.vpath"),
    "distribution.ecosystem": (_STR, "pypi, deb or conda", "Distribution.ecosystem"),
    "distribution.version": (_RANGE, "version of the enclosing distribution", "Distribution.version"),
    "distribution.license_declared": (_STR, "licence the enclosing distribution declares",
                                      "Distribution.license_declared"),
}
_GOV: dict[str, _Spec] = {
    "governing.document": (_STR, "the licence document that governs the part (rules/licenses/documents.yaml: "
                                 "cuda-eula, nvidia-driver, cudnn-sla, nccl, ...); null: none of NVIDIA's", None),
    "governing.text": (_STR, "the text version of that document under the configured policy "
                             "(eula.governing-text); null: unknown", None),
    "governing.title": (_STR, "title of the governing text (or the document, text unknown)", None),
    "governing.license": (_STR, "SPDX id or LicenseRef of the governing text", None),
    "governing.basis": (_STR, "how the governing text was chosen: primary or inferred (the release table), shipped "
                              "(the licence file beside the part), newest, unknown (release unknown), unmapped "
                              "(a known release no table row maps: docs/licenses.md), none", None),
    "governing.advice": (_STR, "basis unmapped only: the text the part probably falls under and why, why no text "
                               "is applied, and what a reviewer must read (documents.yaml unmapped_texts); null "
                               "otherwise", None),
}
_COMMON: dict[str, _Spec] = {
    "path": (_STR, "virtual path of the file (archive members: outer!/member)", None),
    "basename": (_STR, "file name of the path", None),
    "input": (_STR, "the command-line input the path lies under", None),
}
SPEC: dict[str, dict[str, _Spec]] = {
    "component": {
        **_COMMON,
        "id": (_STR, "component id: kind:vendor/name@version", "Component.id"),
        "name": (_STR, "catalog name (cublas, cuda-driver, zluda, ...)", "Component.name"),
        "vendor": (_STR, "NVIDIA, AMD, Intel, ...", "Component.vendor"),
        "kind": (_STR, "component kind (sdk-library, driver, developer-tool, output-consumer, target-linked, ...)",
                 "Component.kind"),
        "version": (_RANGE, "the component's version", "Component.version"),
        "license": (_STR, "concluded licence: SPDX id or LicenseRef-", "Component.license"),
        "paths": (_LIST, "every path of the component", "Component.paths"),
        "evidence": (_LIST, "how the component was recognised", "Component.evidence"),
        "toolkit": (_RANGE, "CUDA toolkit release of the component", None),
        "part": (_STR, "what the part is, for messages: 'a CUDA Toolkit file (toolkit 12.2.140)', or a product "
                       "NVIDIA ships under the governing document though it is not part of the toolkit (NVSHMEM "
                       "under the CUDA EULA)", None),
        **_DIST,
        **_GOV,
    },
    "device_code": {
        **_COMMON,
        "container": (_STR, "where the image was found (nv_fatbin, relfatbin, rodata, ...)", "DeviceImage.container"),
        "kind": (_STR, "cubin, ptx, hsaco or spirv", "DeviceImage.kind"),
        "arch": (_STR, "architecture as cuobjdump spells it (sm_90a, compute_90)", "DeviceImage.arch"),
        "ptx_isa": (_STR, "PTX ISA version of PTX images", "DeviceImage.ptx_isa"),
        "toolkit": (_RANGE, "CUDA toolkit that built the image, with its evidence", "DeviceImage.toolkit"),
        "compression": (_STR, "none, lz4, zstd or zlib", "DeviceImage.compression"),
        "size": ({"type": ["integer", "null"]}, "size of the image in bytes", "DeviceImage.size"),
        "producer": (_STR, "the NVIDIA tool that wrote the cubin (ptxas, nvlink)", "DeviceImage.producer"),
        "vendor": (_STR, "NVIDIA for cubin and PTX, AMD for hsaco", None),
        "ptx_in_file": ({"type": "boolean"}, "the same file also holds PTX", None),
        "device_summary": (_STR, "one line: the kinds and architectures in the file", None),
        **_DIST,
        **_GOV,
    },
    "distribution": {
        **_COMMON,
        "ecosystem": (_STR, "pypi, deb or conda", "Distribution.ecosystem"),
        "name": (_STR, "distribution name", "Distribution.name"),
        "version": (_RANGE, "distribution version", "Distribution.version"),
        "license_declared": (_STR, "licence the metadata declares", "Distribution.license_declared"),
        "license_files": (_LIST, "licence files the distribution ships", "Distribution.license_files"),
        **_DIST,
    },
}


def _property_fields() -> dict[str, dict[str, Any]]:
    """``properties.<key>``: the component facts the model serializes (licscan.model.PROPERTY_KEYS), each with
    the typed field it comes from; a pack that names another key is invalid (nothing produces it)."""
    out: dict[str, dict[str, Any]] = {
        f"properties.{key}": {"type": "string", "description": f"{meaning} (model: {source})"}
        for key, (source, meaning) in sorted(model.PROPERTY_KEYS.items())}
    out["properties.<key>"] = {
        "type": "string",
        "description": "component facts (the JSON report's components[].properties): only the keys above (a pack "
                       "naming another key is invalid); one string per key: a component named in several files "
                       f"with several values of a key has all of them, sorted and joined with "
                       f"'{model.VALUE_SEPARATOR}' as signals is (modified: "
                       "'auditwheel-grafted,sha256-differs-from-record,soname-missing'): `equals` and `in` compare "
                       "the whole string, test one value with `matches` ('*soname-missing*') or `regex`"}
    return out


def problems() -> list[str]:
    """Disagreements between the closed field table, this specification and the model."""
    out = []
    for scope, names in FIELDS.items():
        spec = SPEC.get(scope, {})
        out += [f"{scope}.{n}: no description in licscan/rules/factschema.py" for n in names if n not in spec]
        out += [f"{scope}.{n}: described but not a field" for n in spec if n not in names]
        for name, (_, _, source) in spec.items():
            if source is None:
                continue
            if not _in_model(source):
                out.append(f"{scope}.{name}: the model has no {source}")
    out += [f"component.properties.{key}: the model has no {source}"
            for key, (source, _meaning) in model.PROPERTY_KEYS.items() if not _in_model(source)]
    return out


def _in_model(source: str) -> bool:
    """``Class.field`` names a field of a dataclass of licscan.model."""
    cls_name, _, attr = source.partition(".")
    cls = getattr(model, cls_name, None)
    return cls is not None and attr in {f.name for f in dataclasses.fields(cls)}


def schema() -> dict[str, Any]:
    scopes = {}
    for scope, names in FIELDS.items():
        props: dict[str, dict[str, Any]] = {}
        for name in names:
            value, meaning, source = SPEC[scope][name]
            props[name] = {**value, "description": meaning + (f" (model: {source})" if source else "")}
        if scope == "component":
            props.update(_property_fields())
        scopes[scope] = {"type": "object", "properties": props}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"licscan-facts/{VERSION}",
            "title": "licscan rule facts",
            "description": "The facts a rule pack's `when` can test, per scope (generated by "
                           "`python -m licscan.rules.factschema` from licscan.rules.facts and licscan.model).",
            "type": "object", "properties": scopes}


def render() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    found = problems()
    if found:
        print("\n".join(found), file=sys.stderr)
        return 1
    SCHEMA_FILE.write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
