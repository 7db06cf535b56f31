"""Windows builds read as a reviewer would: imports resolved the way the Windows loader resolves them.

cupy-cuda12x 14.2.0 (win_amd64) imports ``cuTENSOR.dll`` and ``cuTENSORMg.dll`` from its cutensor extension; NVIDIA's
cutensor-cu12 2.8.1 wheel ships ``cutensor/bin/cutensor.dll`` and ``cutensorMg.dll``. Installed side by side, the
loader finds them (Windows names are case-insensitive): the scan's dependency is shipped and the SBOM's file
DEPENDS_ON the DLL (PE imports are relationships as DT_NEEDED entries are).

Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/census_wheels.py downloads into the test cache).
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import census_wheels as cw
import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld
CUPY = cw.Pin("cupy-cuda12x", "14.2.0", cw.WINDOWS)
CUTENSOR = cw.Pin("cutensor-cu12", "2.8.1", cw.WINDOWS)
PYD = "cupy_backends/cuda/libs/cutensor.cp312-win_amd64.pyd"


@pytest.fixture(scope="module")
def site(pytestconfig, tmp_path_factory) -> Path:
    """site-packages with cupy's cutensor extension and cutensor-cu12's cutensorMg.dll (not the 450 MB
    cutensor.dll)."""
    try:
        cupy, cutensor = (cw.fetch(p, realworld_enabled(pytestconfig)) for p in (CUPY, CUTENSOR))
    except cw.Unavailable as error:
        pytest.skip(str(error))
    root = tmp_path_factory.mktemp("win") / "site-packages"
    for wheel, member in ((cupy, PYD), (cutensor, "cutensor/bin/cutensorMg.dll")):
        target = root / member
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            target.write_bytes(zf.read(member))
    return root


def _run(site: Path, *args: str) -> dict:
    out = site.parent / "out.json"
    proc = subprocess.run([sys.executable, "-m", "licscan", *args, "site-packages", "-o", str(out)],
                          capture_output=True, text=True, cwd=site.parent, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_imports_resolve_without_case(site):
    report = _run(site, "audit", "--no-cache", "--format", "json")
    assert report["findings"] == [] and report["diagnostics"] == []
    deps = sorted((d["path"], d["needs"], d["component"], tuple(d["shipped"])) for d in report["dependencies"])
    pyd, mg = f"site-packages/{PYD}", "site-packages/cutensor/bin/cutensorMg.dll"
    assert deps == [(pyd, "cuTENSOR.dll", "cutensor", ()), (pyd, "cuTENSORMg.dll", "cutensor", (mg,)),
                    (mg, "cuTENSOR.dll", "cutensor", ())]


def test_sbom_file_depends_on_the_imported_dll(site):
    doc = _run(site, "sbom", "--format", "spdx-json", "--organization", "test")
    files = {f["SPDXID"]: f["fileName"] for f in doc["files"]}
    depends = sorted((files[r["spdxElementId"]], files[r["relatedSpdxElement"]], r["comment"])
                     for r in doc["relationships"] if r["relationshipType"] == "DEPENDS_ON"
                     and r["spdxElementId"] in files and r["relatedSpdxElement"] in files)
    assert depends == [(f"./site-packages/{PYD}", "./site-packages/cutensor/bin/cutensorMg.dll",
                        "imports cuTENSORMg.dll -> site-packages/cutensor/bin/cutensorMg.dll")]
