"""The CUDA EULA text of real NVIDIA parts where the release table cannot tell, and Attachment A's cuSOLVERMg
(docs/licenses.md#cuda-eula-unmapped-releases, #cuda-eula-attachment-a):

* nvidia-cuda-runtime 13.5.37 (win_amd64): CUDA 13.5 maps to no known text; the wheel ships the 2018 License.txt,
  which then governs its parts (basis shipped). cudart64_13.dll (its version resource says 13.5.37) copied into an
  application without that file is a CUDA-EULA-TEXT-UNKNOWN review that names the text it probably falls under and
  what to read; with the file beside it, no finding.
* nvidia-cusolver-cu12 11.7.5.82 (win_amd64): cusolverMg64_11.dll is in no examined text's Attachment A; a
  third-party copy is CUDA-EULA-NOT-REDISTRIBUTABLE, a review under CUDA 12.9.1's unexamined January 7, 2025 text
  and a violation under the 2018 text the wheel ships (policy shipped-beside).

Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/licence_copies.py)."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import licence_copies
import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld
EULA_2018 = "2018-07-26"
EULA_2018_SHA256 = "ad6f5853fba0ca0d159d0f58d49ae49830c2f8c93f7a92648b9ce90adb4c6ccd"
TITLE_2018 = ("License Agreement for NVIDIA Software Development Kits (Release Date: July 26, 2018) with the CUDA "
              "Toolkit Supplement to Software License Agreement for NVIDIA Software Development Kits (Release date: "
              "August 16, 2018)")
TITLE_2024 = "NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 12, 2024)"
NO_TEXT_13_5 = ("no NVIDIA CUDA Toolkit End User License Agreement text is known to be published with release "
                "13.5.37 (docs/licenses.md)")


def _wheel(request, name: str, version: str) -> Path:
    try:
        return licence_copies.wheel(name, version, realworld_enabled(request.config), "win_amd64")
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))


def _audit(cwd: Path, target: str, *args: str, code: int = 0) -> dict:
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", target, "--no-cache", "--format", "json", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=1800)
    assert proc.returncode == code, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["diagnostics"] == []
    return report


def _found(report: dict) -> list[tuple[str, str, str, str, str]]:
    return [(f["rule"], f["verdict"], f["path"], f["clause"]["section"], f["clause"]["document"])
            for f in report["findings"]]


def _copy(wheel: Path, member: str, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        (into / member.rsplit("/", 1)[-1]).write_bytes(zf.read(member))


def test_cuda_13_5_runtime_wheel_is_under_the_license_it_ships(request, tmp_path):
    wheel = _wheel(request, "nvidia-cuda-runtime", "13.5.37")
    report = _audit(tmp_path, str(wheel))
    assert report["findings"] == []
    (text,) = [c for c in report["components"] if c["kind"] == "license-text"]
    assert (text["properties"]["document"], text["properties"]["sha256"]) == ("nvidia-sdk-eula-2018", EULA_2018_SHA256)
    parts = {g["path"].split("!/", 1)[1]: g for g in report["governing"] if g["scope"] == "component"
             and g["component"] != text["id"]}
    assert sorted(parts) == ["nvidia/cu13/bin/x86_64/cudart64_13.dll", "nvidia/cu13/lib/x64/cuda.lib",
                             "nvidia/cu13/lib/x64/cudadevrt.lib", "nvidia/cu13/lib/x64/cudart.lib",
                             "nvidia/cu13/lib/x64/cudart_static.lib"]
    assert {(g["document"], g["text"], g["basis"]) for g in parts.values()} == {("cuda-eula", EULA_2018, "shipped")}
    licence = "nvidia_cuda_runtime-13.5.37.dist-info/licenses/License.txt"
    assert all(g["why"].startswith(f"{NO_TEXT_13_5}; the licence file shipped beside it: ") and
               f"!/{licence} (sha256 {EULA_2018_SHA256})" in g["why"] for g in parts.values())


def test_cuda_13_5_runtime_copied_without_its_license_is_a_review(request, tmp_path):
    wheel = _wheel(request, "nvidia-cuda-runtime", "13.5.37")
    _copy(wheel, "nvidia/cu13/bin/x86_64/cudart64_13.dll", tmp_path / "dist" / "app")
    report = _audit(tmp_path, "dist")  # a review: exit 0 under --fail-on error ...
    # Cited in the words of the January 12, 2024 text: the newest examined text before the January 26, 2026 one the
    # part probably falls under (documents.yaml unmapped_texts), which is named but not applied.
    assert _found(report) == [("CUDA-EULA-TEXT-UNKNOWN", "review", "dist/app/cudart64_13.dll", "1.1.1(3)", TITLE_2024)]
    (finding,) = report["findings"]
    assert finding["severity"] == "warning"
    assert ("so which text's Attachment A and conditions govern its distribution is unknown. It is probably the NVIDIA "
            "CUDA Toolkit End User License Agreement (Last updated: January 26, 2026), the newest revision licscan "
            "knows of, published online before CUDA 13.2") in finding["message"]
    assert "Read the EULA.txt installed with that toolkit release (/usr/local/cuda-13.N/EULA.txt)" in finding["message"]
    assert finding["clause"]["text"] == (
        "Distribute those portions of the SDK that are identified in this Agreement as distributable, as incorporated "
        "in object code format into a software application that meets the distribution requirements indicated in "
        "this Agreement.")
    assert finding["message"].startswith("cudart64_13.dll (cudart 13.5.37, toolkit 13.5.37) is under the NVIDIA CUDA "
                                         "Toolkit EULA, but licscan knows no EULA text published with its release")
    assert f"governing licence (published-with-toolkit): {NO_TEXT_13_5}" in finding["evidence"]
    _audit(tmp_path, "dist", "--fail-on", "warning", code=1)  # ... and fails a warning gate


def test_cuda_13_5_runtime_copied_with_its_license_is_judged_under_it(request, tmp_path):
    wheel = _wheel(request, "nvidia-cuda-runtime", "13.5.37")
    app = tmp_path / "dist" / "app"
    _copy(wheel, "nvidia/cu13/bin/x86_64/cudart64_13.dll", app)
    _copy(wheel, "nvidia_cuda_runtime-13.5.37.dist-info/licenses/License.txt", app)
    report = _audit(tmp_path, "dist", "--fail-on", "warning")
    assert report["findings"] == []
    (dll,) = [g for g in report["governing"] if g["path"] == "dist/app/cudart64_13.dll"]
    assert (dll["text"], dll["basis"], dll["license"]) == (EULA_2018, "shipped", "LicenseRef-NVIDIA-CUDA-EULA-2018-07-26")


def test_cusolvermg_is_not_in_attachment_a(request, tmp_path):
    wheel = _wheel(request, "nvidia-cusolver-cu12", "11.7.5.82")
    (tmp_path / "own").mkdir()
    assert _audit(tmp_path / "own", str(wheel), "--fail-on", "warning")["findings"] == []  # NVIDIA's own wheel
    app = tmp_path / "dist" / "app"
    _copy(wheel, "nvidia/cusolver/bin/cusolverMg64_11.dll", app)
    _copy(wheel, "nvidia/cusolver/bin/cusolver64_11.dll", app)
    report = _audit(tmp_path, "dist")
    assert _found(report) == [
        ("CUDA-EULA-NOT-REDISTRIBUTABLE", "review", "dist/app/cusolverMg64_11.dll", "2.2", TITLE_2024)]
    evidence = report["findings"][0]["evidence"]
    assert "cusolverMg 11.7.5.82 is pinned by cuda-toolkit 12.9.1, 12.9.2.0 (rules/toolkit/components.yaml)" in evidence
    assert ("Attachment A of NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 7, 2025) (toolkit "
            "12.9): cusolverMg64_11.dll is unlisted") in evidence
    # The wheel's License.txt beside the copies: under policy shipped-beside the 2018 text governs, firmly.
    _copy(wheel, "nvidia_cusolver_cu12-11.7.5.82.dist-info/licenses/License.txt", app)
    (tmp_path / ".licscan.yaml").write_text("eula:\n  governing-text: shipped-beside\n")
    shipped = _audit(tmp_path, "dist", code=1)
    assert _found(shipped) == [
        ("CUDA-EULA-NOT-REDISTRIBUTABLE", "violation", "dist/app/cusolverMg64_11.dll", "2.2", TITLE_2018)]
