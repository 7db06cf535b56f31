"""One rule for a file that differs from its RECORD, the same for every *-MODIFIED rule (licscan/rules/modified.py,
docs/licenses.md#modified-files), on NVIDIA's real wheels:

* NVIDIA's wheel as published: no finding, also tensorrt-lean-cu12-libs 11.4.0.106 win_amd64, whose
  nvinfer_lean_11.dll and nvinfer_vc_plugin_11.dll differ from the sha256 its own RECORD states;
* the environment pip installs from it (``pip install --target``): pip copies each file's digest from the wheel's
  RECORD, so the TensorRT DLLs differ there too, and are still NVIDIA's bytes as published: no finding;
* a file changed after install: the *-MODIFIED rule of its licence fires on that file only, not on the other files
  of the same component (CUPTI's five libraries are one component; cuDNN's and cuTENSOR's libraries too).

cuDNN and cuTENSOR are installed in part (the dist-info folder and the small libraries: their wheels hold 0.7 and
0.5 GB): what pip writes for those files, byte for byte. Runs with LICSCAN_REALWORLD=1 or when the wheels are cached.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import census_wheels as cw
import licence_copies
import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld


def _census(pytestconfig, dist: str, version: str, platform: str) -> Path:
    try:
        return cw.fetch(cw.Pin(dist, version, platform), realworld_enabled(pytestconfig))
    except cw.Unavailable as error:
        pytest.skip(str(error))


def _sdk(pytestconfig, name: str, version: str) -> Path:
    try:
        return licence_copies.wheel(name, version, realworld_enabled(pytestconfig))
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))


def _pip_install(wheel: Path, target: Path, platform: str | None = None) -> None:
    args = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-compile",
            "--disable-pip-version-check", "--target", str(target)]
    if platform:
        args += ["--platform", platform, "--only-binary=:all:"]
    proc = subprocess.run([*args, str(wheel)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _install_part(wheel: Path, target: Path, members: tuple[str, ...]) -> None:
    """What pip writes for ``members`` and the dist-info folder (RECORD, METADATA, licence), byte for byte."""
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name in members or name.split("/", 1)[0].endswith(".dist-info"):
                zf.extract(name, target)


def _audit(cwd: Path, path: str) -> tuple[int, dict]:
    out = cwd / "report.json"
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", path, "--no-cache", "--format", "json", "-o",
                           str(out)], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.returncode, json.loads(out.read_text())


def _findings(report: dict) -> list[tuple[str, str, str]]:
    return sorted((f["rule"], f["verdict"], f["path"]) for f in report["findings"])


def _tamper(path: Path) -> None:
    with path.open("ab") as handle:
        handle.write(b"\0")


def test_tensorrt_windows_wheel_and_its_installed_environment(pytestconfig, tmp_path):
    wheel = _census(pytestconfig, "tensorrt-lean-cu12-libs", "11.4.0.106", cw.WINDOWS)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / wheel.name).write_bytes(wheel.read_bytes())
    code, report = _audit(tmp_path, "dist")
    dlls = [c for c in report["components"] if c["name"] == "tensorrt"]
    assert (code, _findings(report)) == (0, [])
    assert [c["properties"]["modified"] for c in dlls] == ["sha256-differs-from-record"]  # NVIDIA's packaging
    assert sum("differs from tensorrt_lean_cu12_libs RECORD" in e for c in dlls for e in c["evidence"]) == 2

    _pip_install(wheel, tmp_path / "env", cw.WINDOWS)
    code, report = _audit(tmp_path, "env")
    assert (code, _findings(report)) == (0, [])  # the installed RECORD states NVIDIA's digests: bytes as published
    (dll,) = [c for c in report["components"] if c["name"] == "tensorrt"]
    assert dll["properties"]["modified"] == "sha256-differs-from-record" and len(dll["paths"]) == 2

    _tamper(tmp_path / "env" / "tensorrt_lean_libs" / "nvinfer_vc_plugin_11.dll")
    code, report = _audit(tmp_path, "env")
    assert (code, _findings(report)) == (1, [
        ("TENSORRT-MODIFIED", "violation", "env/tensorrt_lean_libs/nvinfer_vc_plugin_11.dll")])
    (finding,) = report["findings"]
    assert finding["clause"]["section"] == "2.1(iv)"
    assert "is modified (sha256-differs-from-record)" in finding["message"]


def test_cupti_installed_one_library_changed_after_install(pytestconfig, tmp_path):
    """CUPTI's five libraries are one component; only the changed one is judged modified."""
    wheel = _census(pytestconfig, "nvidia-cuda-cupti-cu12", "12.9.79", cw.LINUX)
    _pip_install(wheel, tmp_path / "env")
    code, report = _audit(tmp_path, "env")
    assert (code, _findings(report)) == (0, [])
    (cupti,) = [c for c in report["components"] if c["name"] == "cupti"]
    assert len(cupti["paths"]) == 5
    _tamper(tmp_path / "env" / "nvidia" / "cuda_cupti" / "lib" / "libnvperf_host.so")
    code, report = _audit(tmp_path, "env")
    # review: CUDA 12.9's text (January 7, 2025) was not examined (docs/licenses.md)
    assert (code, _findings(report)) == (0, [
        ("CUDA-EULA-MODIFIED", "review", "env/nvidia/cuda_cupti/lib/libnvperf_host.so")])
    assert "is modified CUDA Toolkit object code (sha256-differs-from-record)" in report["findings"][0]["message"]


@pytest.mark.parametrize("name,version,members,changed,rule", [
    ("nvidia-cudnn-cu12", "9.28.0.42", ("nvidia/cudnn/lib/libcudnn.so.9", "nvidia/cudnn/lib/libcudnn_cnn.so.9"),
     "nvidia/cudnn/lib/libcudnn.so.9", "CUDNN-MODIFIED"),
    ("cutensor-cu12", "2.8.1", ("cutensor/lib/libcutensorMg.so.2", "cutensor/lib/libcutensorMp.so.2"),
     "cutensor/lib/libcutensorMg.so.2", "CUTENSOR-MODIFIED"),
], ids=["cudnn", "cutensor"])
def test_sla_library_changed_after_install(pytestconfig, tmp_path, name, version, members, changed, rule):
    wheel = _sdk(pytestconfig, name, version)
    _install_part(wheel, tmp_path / "env", members)
    code, report = _audit(tmp_path, "env")
    assert (code, _findings(report)) == (0, [])
    _tamper(tmp_path / "env" / changed)
    code, report = _audit(tmp_path, "env")
    assert (code, _findings(report)) == (1, [(rule, "violation", f"env/{changed}")])
    (finding,) = report["findings"]
    assert "is modified (sha256-differs-from-record)" in finding["message"]
    assert finding["clause"]["section"] == "2.2"
