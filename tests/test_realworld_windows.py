"""Windows builds read as a reviewer would: imports resolved the way the Windows loader resolves them.

cupy-cuda12x 14.2.0 (win_amd64) imports ``cuTENSOR.dll`` and ``cuTENSORMg.dll`` from its cutensor extension; NVIDIA's
cutensor-cu12 2.8.1 wheel ships ``cutensor/bin/cutensor.dll`` and ``cutensorMg.dll``. Installed side by side, the
loader finds them (Windows names are case-insensitive): the scan's dependency is shipped and the SBOM's file
DEPENDS_ON the DLL (PE imports are relationships as DT_NEEDED entries are).

NVIDIA's Windows DLLs state their version in their VS_VERSIONINFO resource (UTF-16): "NVIDIA CUDA Runtime, Version
12.9.79" (cudart64_12.dll), "NVIDIA CUDA NVJPEG Library, Version 12.4.0.76", "NVIDIA NVBLAS Library, Version 12.9.1"
(cuBLAS's first three parts), cuDNN's FileVersion "9.10.2.21" (the cudnn64_9.dll ctranslate2 4.8.5 bundles). Outside
NVIDIA's wheels the file names say only 12.x / 9.x; the resource gives the version, and with it the toolkit and the
EULA text that governs the DLL.

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
#: (pin, member, file name in the application) of the DLLs an application bundles
BUNDLED = ((cw.Pin("nvidia-cuda-runtime-cu12", "12.9.79", cw.WINDOWS), "nvidia/cuda_runtime/bin/cudart64_12.dll"),
           (cw.Pin("nvidia-nvjpeg-cu12", "12.4.0.76", cw.WINDOWS), "nvidia/nvjpeg/bin/nvjpeg64_12.dll"),
           (cw.Pin("nvidia-cublas-cu12", "12.9.1.4", cw.WINDOWS), "nvidia/cublas/bin/nvblas64_12.dll"),
           (cw.Pin("ctranslate2", "4.8.5", cw.WINDOWS), "ctranslate2/cudnn64_9.dll"))


@pytest.fixture(scope="module")
def site(pytestconfig, tmp_path_factory) -> Path:
    """site-packages with cupy's cutensor extension and cutensor-cu12's cutensorMg.dll with its dist-info (not the
    450 MB cutensor.dll)."""
    try:
        cupy, cutensor = (cw.fetch(p, realworld_enabled(pytestconfig)) for p in (CUPY, CUTENSOR))
    except cw.Unavailable as error:
        pytest.skip(str(error))
    root = tmp_path_factory.mktemp("win") / "site-packages"
    with zipfile.ZipFile(cutensor) as zf:
        info = [n for n in zf.namelist() if n.startswith("cutensor_cu12-2.8.1.dist-info/")]
    for wheel, member in ((cupy, PYD), (cutensor, "cutensor/bin/cutensorMg.dll"), *((cutensor, n) for n in info)):
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


@pytest.fixture(scope="module")
def bundled(pytestconfig, tmp_path_factory) -> dict:
    """The JSON report of an application folder holding the four DLLs (taken out of their wheels)."""
    root = tmp_path_factory.mktemp("bundle")
    app = root / "dist" / "app"
    app.mkdir(parents=True)
    for pin, member in BUNDLED:
        try:
            wheel = cw.fetch(pin, realworld_enabled(pytestconfig))
        except cw.Unavailable as error:
            pytest.skip(str(error))
        with zipfile.ZipFile(wheel) as zf:
            (app / member.rsplit("/", 1)[1]).write_bytes(zf.read(member))
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--no-cache", "--format", "json",
                           "-o", "out.json"], capture_output=True, text=True, cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((root / "out.json").read_text())


def test_version_resources_name_the_version(bundled):
    assert bundled["findings"] == [] and bundled["diagnostics"] == []
    got = {(c["name"], c["version"], c["properties"].get("version_range"), c["properties"]["version_source"])
           for c in bundled["components"]}
    assert got == {("cudart", "12.9.79", None, "marker"), ("nvjpeg", "12.4.0.76", None, "marker"),
                   ("nvblas", None, "12.9.1.x", "marker"), ("cudnn", "9.10.2.21", None, "marker")}
    markers = sorted(e.split(": ", 1)[1].split(" at 0x")[0] for c in bundled["components"] for e in c["evidence"]
                     if ": marker " in e)
    assert markers == ["marker 'FileVersion\\x00\\x009.10.2.21\\x00'",
                       "marker 'NVIDIA CUDA NVJPEG Library, Version 12.4.0.76'",
                       "marker 'NVIDIA CUDA Runtime, Version 12.9.79'",
                       "marker 'NVIDIA NVBLAS Library, Version 12.9.1'"]


def test_version_resources_decide_the_governing_text(bundled):
    """CUDA 12.9 parts under the January 7, 2025 text (inferred, docs/licenses.md); cuDNN 9.10 is a release
    rules/licenses/documents.yaml does not map: its text stays unknown."""
    governing = {(g["path"].rsplit("/", 1)[1], g["document"], g["text"]) for g in bundled["governing"]
                 if g["scope"] == "component"}
    assert governing == {("cudart64_12.dll", "cuda-eula", "2025-01-07"), ("nvjpeg64_12.dll", "cuda-eula", "2025-01-07"),
                         ("nvblas64_12.dll", "cuda-eula", "2025-01-07"), ("cudnn64_9.dll", "cudnn-sla", None)}
