"""``licscan sbom`` end to end on a dist holding the PyPI nvidia-cuda-runtime 13.x wheel and our fixture app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES
from tests.test_audit import _wheel

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sbomdist")
    shutil.copy(_wheel("nvidia-cuda-runtime", "13.0.96"), folder)
    shutil.copy(FIXTURES / "cuda13/licscan_test-0.0.1-py3-none-linux_x86_64.whl", folder)
    return folder


def _sbom(dist: Path, fmt: str, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")
    return subprocess.run([sys.executable, "-m", "licscan", "sbom", str(dist), "--format", fmt, "-o", str(out),
                           "--organization", "Example Corp", "--no-cache"], capture_output=True, text=True, env=env,
                          cwd=dist.parent)


def test_spdx_names_cuda_runtime_toolkit_and_driver(dist, tmp_path):
    out = tmp_path / "dist.spdx.json"
    proc = _sbom(dist, "spdx-json", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    by_id = {p["SPDXID"]: p for p in doc["packages"]}
    runtime = [p for p in doc["packages"] if p["name"] == "CUDA Runtime"]
    assert [(p["versionInfo"], p["licenseConcluded"], p["supplier"]) for p in runtime] == [
        ("13.0.96", "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07", "Organization: NVIDIA Corporation")]
    extracted = {e["licenseId"]: e for e in doc["hasExtractedLicensingInfos"]}
    assert extracted["LicenseRef-NVIDIA-CUDA-EULA-2025-01-07"]["extractedText"]
    driver = [p for p in doc["packages"] if p["name"] == "NVIDIA GPU Driver"]
    assert len(driver) == 1 and driver[0]["versionInfo"].startswith(">=580")
    files = {f["SPDXID"]: f for f in doc["files"]}
    app = [i for i, f in files.items() if f["fileName"].endswith("!/licscan_test/libkern.so")]
    assert len(app) == 1
    generated = [r["relatedSpdxElement"] for r in doc["relationships"]
                 if r["spdxElementId"] == app[0] and r["relationshipType"] == "GENERATED_FROM"]
    assert [by_id[g]["name"] for g in generated] == ["CUDA Toolkit 13.0"]
    algorithms = {c["algorithm"] for c in files[app[0]]["checksums"]}
    assert algorithms == {"SHA1", "SHA256"}
    parsed = subprocess.run([str(BIN / "pyspdxtools"), "-i", str(out)], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    ntia = subprocess.run([str(BIN / "ntia-checker"), "-c", "ntia", "--file", str(out)], capture_output=True,
                          text=True)
    assert ntia.returncode == 0, ntia.stdout + ntia.stderr


def test_sbom_is_byte_identical_across_runs(dist, tmp_path):
    for fmt in ("spdx-json", "spdx-tv", "cyclonedx-json"):
        first, second = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        assert _sbom(dist, fmt, first).returncode == 0
        assert _sbom(dist, fmt, second).returncode == 0
        assert first.read_bytes() == second.read_bytes(), fmt


def test_cyclonedx_is_valid_1_6(dist, tmp_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    out = tmp_path / "bom.json"
    assert _sbom(dist, "cyclonedx-json", out).returncode == 0
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(out.read_text())
    assert errors is None
    bom = json.loads(out.read_text())

    def components(items):
        for item in items:
            yield item
            yield from components(item.get("components", []))

    assert any(c["name"] == "CUDA Runtime" and c["version"] == "13.0.96" for c in components(bom["components"]))
