"""Component facts are typed fields (licscan/model/component.py); ``component_properties`` is the one place they
become the ``properties`` strings that the JSON report, SARIF, the SBOM (``licscan:<key>``) and the rules'
``properties.<key>`` fields read. These tests pin the strings of real components, named by the real pipeline."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from licscan.cache import codec
from licscan.model import (
    PROPERTY_KEYS,
    Component,
    ComponentKind,
    Confidence,
    Ecosystem,
    LayerFacts,
    LicenseTextMatch,
    Modification,
    ModInfo,
    VersionSource,
    component_properties,
    property_map,
)
from licscan.report.json_report import component_entry
from licscan.rules.facts import named_distribution
from licscan.scan import ScanConfig, scan
from tests.layer_fixtures import Stubs
from tests.test_catalog import _ko
from tests.test_layers import zluda_libcuda

FIXTURES = Path(__file__).parent / "fixtures"
GRAFTED = ("app.libs/libcudart-9a4b3c2d.so.12", "app.libs/sub/libcudart-1b2c3d4e.so.12")


def _record_digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(path: Path) -> None:
    """A wheel that grafted NVIDIA's cudart twice (auditwheel's "-<hash>" names); RECORD lists the first copy with
    the digest of other bytes."""
    lib = (FIXTURES / "cuda13/libkern.so").read_bytes()
    record = [f"{GRAFTED[0]},{_record_digest(b'other bytes')},{len(lib)}", f"{GRAFTED[1]},{_record_digest(lib)},"
              f"{len(lib)}", "app-1.0.dist-info/METADATA,,", "app-1.0.dist-info/RECORD,,"]
    with zipfile.ZipFile(path, "w") as zf:
        for name in GRAFTED:
            zf.writestr(name, lib)
        zf.writestr("app-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: app\nVersion: 1.0\nLicense: MIT\n")
        zf.writestr("app-1.0.dist-info/RECORD", "\n".join(record) + "\n")


@pytest.fixture(scope="module")
def named(tmp_path_factory) -> dict[str, Component]:
    root = tmp_path_factory.mktemp("props")
    stubs = root / "stubs"  # the stub runtimes the layer links against: not scanned
    stubs.mkdir()
    dist = root / "dist"
    (dist / "zluda").mkdir(parents=True)
    (dist / "modules").mkdir()
    _wheel(dist / "app-1.0-py3-none-linux_x86_64.whl")
    _vpath, lib = zluda_libcuda(Stubs(stubs))
    shutil.copy(lib, dist / "zluda" / "libcuda.so.1")
    shutil.copy(_ko(root, "Dual MIT/GPL"), dist / "modules" / "nvidia.ko")
    inventory, _records = scan([str(dist)], ScanConfig(jobs=1))
    return {c.name: c for c in inventory.components}


def test_grafted_cudart_in_a_wheel(named):
    cudart = named["cudart"]
    assert cudart.paths == tuple(f"{named['app'].paths[0]}!/{g}" for g in sorted(GRAFTED))
    assert (cudart.confidence, cudart.grafted_hashes, cudart.distributions) == (
        Confidence.HIGH, ("1b2c3d4e", "9a4b3c2d"), ("app",))
    assert cudart.modifications == (Modification.AUDITWHEEL_GRAFTED, Modification.SHA256_DIFFERS,
                                    Modification.SONAME_MISSING)
    assert component_properties(cudart) == (
        ("confidence", "high"), ("distribution", "app"), ("grafted_hash", "1b2c3d4e"), ("grafted_hash", "9a4b3c2d"),
        ("license_declared", "MIT"), ("modified", "auditwheel-grafted"), ("modified", "sha256-differs-from-record"),
        ("modified", "soname-missing"), ("version_range", "12.x"), ("version_source", "file-name"))
    # the JSON report (and the rules' facts) keep every value of a key: sorted, joined with "," as signals is
    assert component_entry(cudart)["properties"] == {
        "confidence": "high", "distribution": "app", "grafted_hash": "1b2c3d4e,9a4b3c2d", "license_declared": "MIT",
        "modified": "auditwheel-grafted,sha256-differs-from-record,soname-missing", "version_range": "12.x",
        "version_source": "file-name"}


def test_every_modification_in_the_report_and_the_rule_message(tmp_path):
    """The JSON report of an audit of the wheel names all three modifications of the component, and the
    CUDA-EULA-MODIFIED finding on each grafted copy names every one of that copy's own (the legal reviewer needs
    every one, not the greatest): only the first copy differs from its RECORD (licscan/rules/modified.py)."""
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = dist / "app-1.0-py3-none-linux_x86_64.whl"
    _wheel(wheel)
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "--no-cache", "--jobs", "1", "--format", "json",
                           "-o", str(out), "dist"], cwd=tmp_path, capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")  # the findings are reviews, under --fail-on error
    report = json.loads(out.read_text())
    cudart, = (c for c in report["components"] if c["name"] == "cudart")
    assert cudart["properties"]["modified"] == "auditwheel-grafted,sha256-differs-from-record,soname-missing"
    eula = "NVIDIA CUDA Toolkit End User License Agreement"
    assert sorted((f["path"], f["message"]) for f in report["findings"] if f["rule"] == "CUDA-EULA-MODIFIED") == [
        (f"dist/{wheel.name}!/{g}",
         f"{g.rsplit('/', 1)[1]} (cudart unknown) at dist/{wheel.name}!/{g} is modified CUDA Toolkit object code "
         f"({own}); 2.3 of {eula}, text unknown allows "
         f"redistributing Linux object code only unmodified. Review: this rests on a reading (the {eula} (Last "
         f"updated: January 7, 2025) was not examined; its clause is taken to be as in the {eula} (Last updated: "
         f"January 12, 2024)).") for g, own in sorted(zip(GRAFTED, (
            "auditwheel-grafted,sha256-differs-from-record,soname-missing", "auditwheel-grafted,soname-missing")))]


def test_zluda_layer(named):
    zluda = named["zluda"]
    assert (zluda.kind, zluda.confidence) == (ComponentKind.OUTPUT_CONSUMER, Confidence.HIGH)
    assert zluda.layer == LayerFacts(
        signals=("cuda-exports-on-hip", "cuda-named-imports-rocm", "cuda-named-without-soname",
                 "driver-named-imports-nonnvidia", "zluda-strings"),
        replaces=True, platform="ROCm", project="https://github.com/vosen/ZLUDA")
    assert property_map(zluda) == {
        "confidence": "high", "platform": "ROCm", "project": "https://github.com/vosen/ZLUDA",
        "replaces": "cuda-named", "signals": "cuda-exports-on-hip,cuda-named-imports-rocm,cuda-named-without-soname,"
                                             "driver-named-imports-nonnvidia,zluda-strings"}
    target = named["targets-rocm"]
    assert property_map(target) == {"confidence": "high", "platform": "ROCm", "project": "https://rocm.docs.amd.com/",
                                    "relation": "targets", "signals": "rocm-needed"}


def test_kernel_module_with_modinfo(named):
    module = named["nvidia-kernel-module"]
    assert (module.modinfo, module.flavours, module.modules, module.version_sources) == (
        (ModInfo("Dual MIT/GPL", "580.159.04", "6.1.0-28-amd64 SMP preempt mod_unload modversions"),), ("open",),
        ("nvidia",), (VersionSource.MODINFO,))
    assert component_properties(module) == (
        ("confidence", "high"), ("flavour", "open"), ("modinfo_license", "Dual MIT/GPL"),
        ("modinfo_vermagic", "6.1.0-28-amd64 SMP preempt mod_unload modversions"),
        ("modinfo_version", "580.159.04"), ("module", "nvidia"), ("version_source", "modinfo"))


def test_python_distribution(named):
    app = named["app"]
    assert (app.kind, app.ecosystem, app.licenses_declared) == (ComponentKind.PYTHON_DISTRIBUTION, Ecosystem.PYPI,
                                                                 ("MIT",))
    assert component_properties(app) == (("ecosystem", "pypi"), ("license_declared", "MIT"))


def test_every_key_has_its_field():
    """Every field that serializes is in PROPERTY_KEYS (what the fact schema documents), and nothing else is."""
    text = LicenseTextMatch("cuda-eula-2025-01-07", "EULA", "2025-01-07", None, "ab" * 32, "cd" * 32, "sha256",
                            True, "v1")
    full = Component("x", "x", "NVIDIA", ComponentKind.TARGET_LINKED, None, None, (), (), Confidence.LOW,
                     (VersionSource.SONAME,), ("12.x",), ("MIT",), (Modification.STRIPPED,), ("d",), "1.0", ("h",),
                     ("m",), ("/opt",), (ModInfo("GPL", "1", "v"),), ("open",), LayerFacts(("s",), True, "p", "q"),
                     text, Ecosystem.PYPI, ("cudart64_12.dll",), ("libcudart_static.a",))
    assert {k for k, _ in component_properties(full)} == set(PROPERTY_KEYS)
    bare = Component("x", "x", "", ComponentKind.SDK_LIBRARY, None, None, (), ())
    assert component_properties(bare) == ()


def test_cache_codec_keeps_the_typed_fields(named):
    """A cached component decodes to the same typed values (Confidence is a str enum: not a plain string)."""
    for component in named.values():
        back = codec.loads(codec.dumps(component))
        assert back == component and type(back.confidence) is type(component.confidence)


def test_components_that_differ_only_in_licence_have_distinct_ids(tmp_path):
    """A proprietary driver's kernel modules of one version: nvidia.ko (license=NVIDIA) and nvidia-drm.ko
    (license=MIT) are two components. They shared one id, and the SPDX SBOM of them failed to validate (exit 4)."""
    dist = tmp_path / "dist"
    dist.mkdir()
    for licence, name in (("NVIDIA", "nvidia.ko"), ("MIT", "nvidia-drm.ko")):
        build = tmp_path / name
        build.mkdir()
        shutil.copy(_ko(build, licence, name), dist / name)
    inventory, _records = scan([str(dist)], ScanConfig(jobs=1))
    assert sorted((c.id, c.license, c.paths) for c in inventory.components) == [
        ("kernel-module:nvidia/nvidia-kernel-module@580.159.04+licenseref-nvidia-driver", "LicenseRef-NVIDIA-Driver",
         (f"{dist}/nvidia.ko",)),
        ("kernel-module:nvidia/nvidia-kernel-module@580.159.04+mit", "MIT", (f"{dist}/nvidia-drm.ko",))]
    out = tmp_path / "sbom.spdx.json"
    proc = subprocess.run([sys.executable, "-m", "licscan", "sbom", "--no-cache", "--organization", "Example",
                           "--format", "spdx-json", "-o", str(out), str(dist)], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")
    packages = json.loads(out.read_text())["packages"]
    assert sorted(p["licenseConcluded"] for p in packages if p["name"] == "NVIDIA GPU kernel module") == [
        "LicenseRef-NVIDIA-Driver-License-Agreement", "MIT"]


ROOT = Path(__file__).resolve().parent.parent
_PACK_KEY = re.compile(r"properties\.([A-Za-z_][A-Za-z0-9_]*)")  # a condition's field, a message's {placeholder}
_CODE_KEY = re.compile(r"""props(?:\.get\(|\[)["']([^"']+)["']""")  # the rules' code reading a property


def test_every_property_a_pack_or_the_rules_read_is_produced():
    """A ``properties.<key>`` nothing produces is dead: inside ``not:`` it always holds (rules/packs/cuda-eula.yaml
    had two, ``properties.nvidia_distribution``; licscan/rules/toolkits.py read ``properties.toolkit``)."""
    packs = {(p.name, key) for p in sorted((ROOT / "rules" / "packs").glob("*.yaml"))
             for key in _PACK_KEY.findall(p.read_text(encoding="utf-8"))}
    code = {(p.name, key) for p in sorted((ROOT / "licscan" / "rules").rglob("*.py"))
            for text in [p.read_text(encoding="utf-8")]
            for key in _PACK_KEY.findall(text) + _CODE_KEY.findall(text)}
    assert {k for _, k in packs} >= {"modified", "document"} and {k for _, k in code} >= {"document", "distribution"}
    assert sorted(ref for ref in packs | code if ref[1] not in PROPERTY_KEYS) == []


def test_a_pack_naming_an_unknown_property_is_invalid():
    """As an unknown field is: one line per problem, exit 2 (README "Exit codes": rule-pack error)."""
    proc = subprocess.run([sys.executable, "-m", "licscan", "rules", "validate",
                           "tests/rules/invalid/unknown-property.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == (
        "tests/rules/invalid/unknown-property.yaml:13:26: unknown property 'properties.nvidia_distribution': no "
        "component has it; properties are: " + ", ".join(f"properties.{k}" for k in sorted(PROPERTY_KEYS)))


def test_a_component_in_several_distributions_is_grouped_as_before():
    """``properties.distribution`` now names every distribution; the facts view's ``distribution`` group (for a path
    no distribution's archive holds) still takes the greatest name, as when the report kept only that one."""
    assert named_distribution({"distribution": "nvidia-cuda-runtime-cu12,torch"}) == "torch"
    assert named_distribution({"distribution": "app"}) == "app"
    assert named_distribution({}) is None
