"""The facts view of a report document: one release-range type, governing entries without a fact per image, and the
licence of device code by vendor."""

import copy
import json
from pathlib import Path

import pytest

from licscan.binary import toolkit
from licscan.model import ToolkitRange
from licscan.model.releases import LAST, OPEN
from licscan.rules import facts
from licscan.rules import governing as gov

CASES = sorted((Path(__file__).resolve().parent / "rules").glob("*/*/report.json"))


def test_release_range_from_a_version_string():
    point = ToolkitRange.of_version("13.0.96")
    assert (point.releases, point.text, point.key, point.is_point) == (((13, 0, 96), (13, 0, 96)), "13.0.96", "13.0",
                                                                        True)
    prefix = ToolkitRange.of_version("12.4")
    assert (prefix.releases, prefix.text, prefix.key) == (((12, 4, 0), (12, 4, OPEN)), "12.4.x", "12.4")
    major = ToolkitRange.of_version("12.x")
    assert (major.releases, major.text, major.key) == (((12, 0, 0), (12, OPEN, OPEN)), "12.x", "12")
    assert ToolkitRange.of_version("2025.1.1").releases == ((2025, 1, 1), (2025, 1, 1))
    for text in ("not a version", "", None, "13.0.96-rc1"):
        assert ToolkitRange.of_version(text).is_unknown, text


def test_release_range_from_a_report_toolkit_object():
    spread = ToolkitRange.from_json({"min": "12.8", "max": "13.0", "exact": None})
    assert (spread.releases, spread.text, spread.key) == (((12, 8, 0), (13, 0, OPEN)), "12.8–13.0", "12.8-13.0")
    open_ended = ToolkitRange.from_json({"min": "12.8", "max": None, "exact": None})
    assert (open_ended.releases, open_ended.text, open_ended.key) == (((12, 8, 0), LAST), ">= 12.8", ">=12.8")
    exact = ToolkitRange.from_json({"min": "13.0", "max": "13.0", "exact": "13.0.88", "evidence": ["tkinfo"]})
    assert (exact.releases, exact.text, exact.key, exact.evidence) == (((13, 0, 88), (13, 0, 88)), "13.0.88", "13.0",
                                                                       ())
    # a bound that is not a release is no bound; nothing known is unknown
    assert ToolkitRange.from_json({"min": "twelve", "max": None, "exact": None}).is_unknown
    assert ToolkitRange.from_json(None).is_unknown and ToolkitRange.from_json({}).text == "unknown"


@pytest.mark.parametrize("made", [
    toolkit.arch_bounds("sm_90a"), toolkit.arch_bounds("sm_35"), toolkit.arch_bounds("sm_100f"),
    toolkit.ptx_isa_range("8.5"), ToolkitRange("12.8", "13.0"), ToolkitRange("13.0", "13.0", "13.0.88"),
    ToolkitRange(),
])
def test_a_range_read_back_from_its_json_is_the_same_range(made):
    """The range the binary readers state and the one the rules read from the report are one type and agree."""
    back = ToolkitRange.from_json(made.to_json())
    assert (back.low, back.high, back.exact) == (made.low, made.high, made.exact)
    assert (back.releases, back.text, back.key, back.is_unknown) == (made.releases, made.text, made.key,
                                                                     made.is_unknown)


def _entries_from_every_fact(document, policy):
    """The governing list as it was made before: from every fact, the first with a document per (path, component)."""
    out = {}
    for fact in facts.build(document, None, policy).facts:
        if fact.scope == "distribution" or not fact.governing or fact.governing[policy].document is None:
            continue
        key = (fact.path, fact.component)
        if key in out:
            continue
        chosen = fact.governing[policy]
        others = {p: g.text for p, g in fact.governing.items() if p != policy and g.text != chosen.text}
        out[key] = {"path": fact.path, "component": fact.component, "scope": fact.scope,
                    "document": chosen.document, "text": chosen.text, "title": chosen.label,
                    "license": chosen.license_id(), "basis": chosen.basis, "why": chosen.why, "policy": policy,
                    "other_policies": others}
    return [out[k] for k in sorted(out, key=lambda k: (k[0], k[1] or ""))]


@pytest.mark.parametrize("policy", gov.POLICIES)
def test_governing_entries_are_those_of_the_facts(policy):
    """governing_entries looks device code up once per file, not once per image: the same entries as the facts."""
    assert CASES
    seen_device_code = False
    for case in CASES:
        document = json.loads(case.read_text())
        entries = facts.governing_entries(document, policy)
        assert entries == _entries_from_every_fact(document, policy), case
        seen_device_code |= any(e["scope"] == "device_code" for e in entries)
    assert seen_device_code


def _device(path, kind, arch, toolkit_json):
    return {"path": path, "container": "hip_fatbin" if kind == "hsaco" else "nv_fatbin", "kind": kind, "arch": arch,
            "ptx_isa": "8.5" if kind == "ptx" else None, "toolkit": toolkit_json, "compression": "none",
            "size": 100, "producer": None}


@pytest.mark.parametrize("order", ["amd-first", "nvidia-first"])
def test_device_code_licence_follows_its_vendor_in_a_shared_folder(order):
    """An AMD code object and NVIDIA PTX of unknown toolkit in one folder: the PTX is the CUDA EULA's, the code
    object no NVIDIA document's, whichever comes first (the lookup was shared by toolkit and folder alone)."""
    images = [_device("app/lib/libamd.so", "hsaco", "gfx90a", None),
              _device("app/lib/libnv.so", "ptx", "compute_90", None)]
    if order == "nvidia-first":
        images.reverse()
    document = {"inputs": ["app"], "components": [], "distributions": [], "device_code": copy.deepcopy(images)}
    by_path = {f.path: f for f in facts.build(document).scope("device_code")}
    assert by_path["app/lib/libnv.so"].fields["governing.document"] == "cuda-eula"
    assert by_path["app/lib/libamd.so"].fields["governing.document"] is None
    assert [e["path"] for e in facts.governing_entries(document)] == ["app/lib/libnv.so"]
