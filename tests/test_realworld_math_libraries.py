"""NVIDIA's math libraries and nvTIFF on PyPI, each audited as NVIDIA ships it (Linux x86-64 wheels):

* nvidia-cusolvermp-cu12 0.9.1.9318 (nvidia/cu12/lib/libcusolverMp.so.0), nvidia-cufftmp-cu12 11.4.0.6
  (nvidia/cufftmp/cu12/lib/libcufftMp.so.11) and nvidia-libmathdx-cu12 0.3.1.9 (nvidia/cu12/lib/libmathdx.so.0) ship the
  "LICENSE AGREEMENT FOR NVIDIA MATH LIBRARIES SOFTWARE DEVELOPMENT KITS" (v. February 10, 2022) in their dist-info,
  the agreement cuDSS ships without its open-source section (rules/licenses/documents.yaml math-libraries-sla);
* nvidia-cublasmp-cu12 0.10.0.3695 (nvidia/cublasmp/cu12/lib/libcublasmp.so.0) ships no licence file: the same
  agreement governs it, text unknown (no examined text is published with it);
* nvidia-nvtiff-cu12 0.8.0.82 (nvidia/nvtiff/lib/libnvtiff.so.0) ships the SDK agreement "(v. March 31, 2022)" with
  its "nvTIFF SUPPLEMENT" (nvtiff-sla).

Before: no library was named (no catalog entry), the Math Libraries agreement was not recognised as such and nvTIFF's
SLA not at all. Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/census_wheels.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import census_wheels as cw
import pytest

pytestmark = pytest.mark.realworld
MATH = ("math-libraries-sla", "2022-02-10", "LicenseRef-NVIDIA-Math-Libraries-SLA-2022-02-10",
        "License Agreement for NVIDIA Math Libraries Software Development Kits (v. February 10, 2022)")
TIFF = ("nvtiff-sla", "2022-03-31", "LicenseRef-NVIDIA-nvTIFF-SLA-2022-03-31",
        "License Agreement for NVIDIA Software Development Kits (v. March 31, 2022) with the nvTIFF Supplement")


@pytest.mark.parametrize("dist,version,name,member,licence,text,device", [
    ("nvidia-cusolvermp-cu12", "0.9.1.9318", "cusolvermp", "nvidia/cu12/lib/libcusolverMp.so.0",
     "nvidia_cusolvermp_cu12-0.9.1.9318.dist-info/licenses/LICENSE", MATH, True),
    ("nvidia-cublasmp-cu12", "0.10.0.3695", "cublasmp", "nvidia/cublasmp/cu12/lib/libcublasmp.so.0", None, None, True),
    ("nvidia-cufftmp-cu12", "11.4.0.6", "cufftmp", "nvidia/cufftmp/cu12/lib/libcufftMp.so.11",
     "nvidia_cufftmp_cu12-11.4.0.6.dist-info/licenses/LICENSE.txt", MATH, True),
    ("nvidia-libmathdx-cu12", "0.3.1.9", "mathdx", "nvidia/cu12/lib/libmathdx.so.0",
     "nvidia_libmathdx_cu12-0.3.1.9.dist-info/licenses/LICENSE.txt", MATH, False),
    ("nvidia-nvtiff-cu12", "0.8.0.82", "nvtiff", "nvidia/nvtiff/lib/libnvtiff.so.0",
     "nvidia_nvtiff_cu12-0.8.0.82.dist-info/licenses/LICENSE.txt", TIFF, True)])
def test_named_and_governed_by_the_licence_its_wheel_ships(pytestconfig, tmp_path, dist, version, name, member,
                                                          licence, text, device):
    wheel = cw.wheel_or_skip(pytestconfig, dist, version, cw.LINUX)
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(wheel), "--no-cache", "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    document = "math-libraries-sla" if text is None else text[0]
    spdx = "LicenseRef-NVIDIA-nvTIFF-SLA" if document == "nvtiff-sla" else "LicenseRef-NVIDIA-Math-Libraries-SLA"
    named = [(c["id"], c["version"], c["license"], c["properties"].get("version_source"),
              [p.rsplit("!/", 1)[1] for p in c["paths"]])
             for c in report["components"] if c["vendor"] == "NVIDIA" and c["kind"] != "python-distribution"]
    library = (f"sdk-library:nvidia/{name}@{version}", version, spdx, "distribution-metadata", [member])
    texts = [] if text is None else [
        (f"license-text:nvidia/{text[0]}@{text[1]}", text[1], text[2], None, [licence])]
    assert sorted(named) == sorted([library, *texts])
    governing = sorted((g["scope"], g["component"] or "", g["path"].rsplit("!/", 1)[1], g["document"], g["text"],
                        g["basis"]) for g in report["governing"])
    own = (None, "unknown") if text is None else (text[1], "primary")
    expected = [("component", library[0], member, document, *own)]
    if device:  # the device code in the library is governed with it
        expected.append(("device_code", "", member, document, *own))
    if text is not None:  # the licence file itself has no release to look its text up by
        expected.append(("component", texts[0][0], licence, document, None, "unknown"))
    assert governing == sorted(expected)
    if text is not None:
        (title,) = {g["title"] for g in report["governing"] if g["component"] == library[0]}
        assert title == text[3]
    assert [f["rule_id"] for f in report["findings"]] == [] and report["diagnostics"] == []


def test_mathdx_windows_wheel(pytestconfig, tmp_path):
    """nvidia-libmathdx-cu12 0.3.1.9 win_amd64 ships nvidia/cu12/bin/mathdx64_0.dll and lib/x64/mathdx.lib under the
    same agreement (dist-info LICENSE.txt): both were named nothing (the catalog had MathDx's Linux name only; likewise
    cuDSS's threading layer and import libraries and nvCOMP's CPU DLL and import library, tests/test_catalog.py)."""
    wheel = cw.wheel_or_skip(pytestconfig, "nvidia-libmathdx-cu12", "0.3.1.9", cw.WINDOWS)
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(wheel), "--no-cache", "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    named = sorted((c["name"], c["version"], c["license"], sorted(p.rsplit("!/", 1)[1] for p in c["paths"]))
                   for c in report["components"] if c["vendor"] == "NVIDIA" and c["kind"] == "sdk-library")
    assert named == [("mathdx", "0.3.1.9", "LicenseRef-NVIDIA-Math-Libraries-SLA",
                      ["nvidia/cu12/bin/mathdx64_0.dll", "nvidia/cu12/lib/x64/mathdx.lib"])]
    governing = {g["path"].rsplit("/", 1)[1]: (g["document"], g["text"], g["basis"]) for g in report["governing"]
                 if g["scope"] == "component" and "mathdx" in (g["component"] or "")}
    assert governing == {"mathdx64_0.dll": ("math-libraries-sla", "2022-02-10", "primary"),
                         "mathdx.lib": ("math-libraries-sla", "2022-02-10", "primary")}
    assert report["findings"] == [] and report["diagnostics"] == []
