"""The SBOM carries the same answer as the rules (issue 11, deliverable 8): each package's concluded licence is its
governing document and text; the NTIA minimum elements hold by default (the root supplier from distribution
metadata, else one line on standard error saying what to pass); the toolkit is tied into the graph."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import licence_copies
import pytest
from conftest import realworld_enabled

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO = ROOT / "examples" / "demo-dist"


def _sbom(inputs, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "licscan", "sbom", *map(str, inputs), "--format", "spdx-json",
                           "-o", str(out), "--no-cache", *args], capture_output=True, text=True, timeout=600)


def _ntia(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ntia-checker"), "-c", "ntia", "--file", str(path)], capture_output=True,
                          text=True)


def test_no_supplier_in_metadata_says_what_to_pass(tmp_path):
    out = tmp_path / "demo.spdx.json"
    proc = _sbom([DEMO], out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "licscan: the SBOM's root package has no supplier (none: the distributions name no single author (no "
        "author)): pass --organization NAME to name who supplies it (an NTIA minimum element)"]
    assert _ntia(out).returncode != 0  # honestly incomplete: the checker says so too
    proc = _sbom([DEMO], out, "--organization", "Example Corp")
    assert proc.returncode == 0 and proc.stderr == ""
    checked = _ntia(out)
    assert checked.returncode == 0, checked.stdout
    assert "floating" not in checked.stdout + checked.stderr  # the toolkit is tied to the root
    doc = json.loads(out.read_text())
    root = next(r["relatedSpdxElement"] for r in doc["relationships"] if r["relationshipType"] == "DESCRIBES")
    toolkit = next(p["SPDXID"] for p in doc["packages"] if p["name"] == "CUDA Toolkit 13.0")
    assert {"spdxElementId": root, "relatedSpdxElement": toolkit, "relationshipType": "HAS_PREREQUISITE",
            "comment": "build tool: the CUDA toolkit that built its device code"} in doc["relationships"]
    licences = {p["name"]: p["licenseConcluded"] for p in doc["packages"]}
    assert licences["CUDA Toolkit 13.0"] == "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07"
    extracted = {e["licenseId"]: e for e in doc["hasExtractedLicensingInfos"]}
    assert "January 7, 2025" in extracted["LicenseRef-NVIDIA-CUDA-EULA-2025-01-07"]["name"]


@pytest.mark.realworld
def test_concluded_licences_are_the_governing_texts(request, tmp_path):
    """A wheel's Author metadata names the root supplier (NTIA passes without --organization); cudart, NCCL and a
    535 driver library conclude to their governing texts (finding 1: the driver's licence is the NVIDIA Driver
    License Agreement, not the old title)."""
    allow = realworld_enabled(request.config)
    try:
        runtime = licence_copies.wheel("nvidia-cuda-runtime-cu12", "12.9.79", allow)
        deb = licence_copies.debian_package("libcuda1", "535.261.03-1", allow)
        nccl_wheel = licence_copies.wheel("nvidia-nccl-cu12", "2.32.3", allow)
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))
    dist = tmp_path / "dist"
    dist.mkdir()
    shutil.copy(runtime, dist)
    out = tmp_path / "rt.spdx.json"
    proc = _sbom([dist], out)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert _ntia(out).returncode == 0
    doc = json.loads(out.read_text())
    by_name = {p["name"]: p for p in doc["packages"]}
    assert by_name["dist"]["supplier"] == "Organization: Nvidia CUDA Installer Team"
    assert by_name["CUDA Runtime"]["licenseConcluded"] == "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07"

    import zipfile

    app = tmp_path / "app"
    app.mkdir()
    from test_realworld_licences import _member

    (app / "libcuda.so.535.261.03").write_bytes(_member(deb, "/libcuda.so.535.261.03"))
    with zipfile.ZipFile(nccl_wheel) as zf:
        (app / "libnccl.so.2").write_bytes(zf.read(next(n for n in zf.namelist() if n.endswith("libnccl.so.2"))))
    out = tmp_path / "app.spdx.json"
    assert _sbom([app], out, "--organization", "Example Corp").returncode == 0
    assert _ntia(out).returncode == 0
    doc = json.loads(out.read_text())
    concluded = {(p["name"], p["licenseConcluded"]) for p in doc["packages"]}
    assert ("NCCL", "BSD-3-Clause") in concluded or any(
        c == "BSD-3-Clause" and "nccl" in n.lower() for n, c in concluded)
    driver = [c for n, c in concluded if c.startswith("LicenseRef-NVIDIA-Driver")]
    assert "LicenseRef-NVIDIA-Driver-License-Agreement" in driver
    extracted = {e["licenseId"]: e for e in doc["hasExtractedLicensingInfos"]}
    assert extracted["LicenseRef-NVIDIA-Driver-License-Agreement"]["name"] == "NVIDIA Driver License Agreement"
    assert "libcuda1 535.261.03-1" in extracted["LicenseRef-NVIDIA-Driver-License-Agreement"]["extractedText"]
