"""NVIDIA's own SDK wheels beyond the CUDA toolkit, Linux and Windows builds side by side, audited with default
options and read as a reviewer would: every binary named with the wheel's version, the wheel's licence file
identified, and each part judged under the text its own wheel ships.

* nvidia-cudnn-cu13 9.28.1.4: the manylinux wheel ships the cuDNN SLA "(v. January 28, 2020)" (the same
  License.txt as nvidia-cudnn-cu12 9.28.0.42), the win_amd64 wheel of the same release "(v. February 22, 2022)",
  whose Supplement 2 reads "the runtime files .so and .dll." (the 2020 text: ".so and .h, cudnn64_7.dll, and
  cudnn.lib.").
* nvidia-cusparselt-cu12 0.8.1: both wheels ship nvidia/cusparselt/LICENSE.txt, the cuSPARSELt SLA "(v. October 12,
  2020)"; the Windows wheel's import library lib/cusparseLt.lib is cuSPARSELt too.
* cutensor-cu12 2.8.1: both wheels ship cutensor/LICENSE, the cuTENSOR SLA "(v. March 15, 2019)", whose Supplement 2
  also lists only ".so and .h"; libcutensorMp.so.2 and the Windows import libraries are cuTENSOR; the distribution
  is NVIDIA's though not named nvidia-*.
* nvidia-nvshmem-cu12 and -cu13 3.8.0: nvshmem_transport_*.so.7 carry their plugin ABI in the name, not the
  release; the device library also ships as LLVM bitcode (libnvshmem_device_sm_<N>.bc). Both wheels ship the CUDA
  EULA's 2018 License.txt (no NVSHMEM SLA): NVSHMEM, and the device code in its libraries, is judged under it.

Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/licence_copies.py downloads them into the test
cache)."""
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
_REPORTS: dict[tuple[str, str, str | None], dict] = {}


def _report(request, tmp_path_factory, name: str, version: str, platform: str | None = None) -> tuple[Path, dict]:
    try:
        wheel = licence_copies.wheel(name, version, realworld_enabled(request.config), platform)
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))
    key = (name, version, platform)
    if key not in _REPORTS:
        out = tmp_path_factory.mktemp("sdk") / "report.json"
        proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(wheel), "--no-cache", "--format", "json",
                               "-o", str(out)], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-2000:]
        _REPORTS[key] = json.loads(out.read_text())
    return wheel, _REPORTS[key]


def _member(path: str) -> str:
    return path.split("!/", 1)[1]


def _components(report: dict, kind: str) -> dict[str, tuple]:
    """Member path -> (component name, version, licence) of every component of ``kind``."""
    return {_member(p): (c["name"], c["version"], c["license"]) for c in report["components"] if c["kind"] == kind
            for p in c["paths"]}


def _governing(report: dict) -> set[tuple[str, str, str | None]]:
    """(member, document, text) of every named part's governing licence (scope component)."""
    return {(_member(g["path"]), g["document"], g["text"]) for g in report["governing"] if g["scope"] == "component"}


def _binaries(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        out = []
        for info in zf.infolist():
            with zf.open(info) as handle:
                head = handle.read(8)
            if head[:4] in (b"\x7fELF", b"BC\xc0\xde") or head[:2] == b"MZ" or head == b"!<arch>\n":
                out.append(info.filename)
        return sorted(out)


@pytest.mark.parametrize("platform,text,licence_file", [
    (None, "2020-01-28", "nvidia_cudnn_cu13-9.28.1.4.dist-info/licenses/License.txt"),
    ("win_amd64", "2022-02-22", "nvidia_cudnn_cu13-9.28.1.4.dist-info/licenses/LICENSE"),
], ids=["linux", "windows"])
def test_cudnn_cu13_each_platform_under_the_text_its_wheel_ships(request, tmp_path_factory, platform, text,
                                                                 licence_file):
    wheel, report = _report(request, tmp_path_factory, "nvidia-cudnn-cu13", "9.28.1.4", platform)
    assert report["findings"] == [] and report["diagnostics"] == []
    licences = _components(report, "license-text")
    assert licences == {licence_file: (licences[licence_file][0], text, f"LicenseRef-NVIDIA-cuDNN-SLA-{text}")}
    assert [c["properties"]["document"] for c in report["components"] if c["kind"] == "license-text"] == [
        "cudnn-sla" if text == "2020-01-28" else "cudnn-sla-2022-02-22"]
    libraries = _components(report, "sdk-library")
    assert sorted(libraries) == _binaries(wheel)
    assert set(libraries.values()) == {("cudnn", "9.28.1.4", "LicenseRef-NVIDIA-cuDNN-SLA")}
    assert _governing(report) - {(licence_file, "cudnn-sla", None)} == {
        (member, "cudnn-sla", text) for member in libraries}


@pytest.mark.parametrize("platform,files", [
    (None, ["nvidia/cusparselt/lib/libcusparseLt.so.0"]),
    ("win_amd64", ["nvidia/cusparselt/bin/cusparseLt.dll", "nvidia/cusparselt/lib/cusparseLt.lib"]),
], ids=["linux", "windows"])
def test_cusparselt_named_and_under_its_own_sla(request, tmp_path_factory, platform, files):
    wheel, report = _report(request, tmp_path_factory, "nvidia-cusparselt-cu12", "0.8.1", platform)
    assert report["findings"] == [] and report["diagnostics"] == []
    assert _binaries(wheel) == files
    assert _components(report, "sdk-library") == {
        f: ("cusparselt", "0.8.1", "LicenseRef-NVIDIA-cuSPARSELt-SLA") for f in files}
    licence = "nvidia/cusparselt/LICENSE.txt"
    assert {k: v[1:] for k, v in _components(report, "license-text").items()} == {
        licence: ("2020-10-12", "LicenseRef-NVIDIA-cuSPARSELt-SLA-2020-10-12")}
    assert _governing(report) == {(f, "cusparselt-sla", "2020-10-12") for f in files} | {
        (licence, "cusparselt-sla", None)}
    assert {c["vendor"] for c in report["components"]} == {"NVIDIA"}


@pytest.mark.parametrize("platform,files", [
    (None, ["cutensor/lib/libcutensor.so.2", "cutensor/lib/libcutensorMg.so.2", "cutensor/lib/libcutensorMp.so.2"]),
    ("win_amd64", ["cutensor/bin/cutensor.dll", "cutensor/bin/cutensorMg.dll", "cutensor/lib/cutensor.lib",
                   "cutensor/lib/cutensorMg.lib"]),
], ids=["linux", "windows"])
def test_cutensor_named_and_under_its_own_sla(request, tmp_path_factory, platform, files):
    wheel, report = _report(request, tmp_path_factory, "cutensor-cu12", "2.8.1", platform)
    assert report["findings"] == [] and report["diagnostics"] == []
    assert _binaries(wheel) == files
    assert _components(report, "sdk-library") == {f: ("cutensor", "2.8.1", "LicenseRef-NVIDIA-cuTENSOR-SLA") for f in files}
    licence = "cutensor/LICENSE"
    assert {k: v[1:] for k, v in _components(report, "license-text").items()} == {
        licence: ("2019-03-15", "LicenseRef-NVIDIA-cuTENSOR-SLA-2019-03-15")}
    assert _governing(report) == {(f, "cutensor-sla", "2019-03-15") for f in files} | {(licence, "cutensor-sla", None)}
    assert [(c["name"], c["vendor"]) for c in report["components"] if c["kind"] == "python-distribution"] == [
        ("cutensor-cu12", "NVIDIA")]


EULA_2018 = "2018-07-26"
EULA_2018_SHA256 = "ad6f5853fba0ca0d159d0f58d49ae49830c2f8c93f7a92648b9ce90adb4c6ccd"


@pytest.mark.parametrize("name", ["nvidia-nvshmem-cu12", "nvidia-nvshmem-cu13"])
def test_nvshmem_every_library_named_and_under_the_cuda_eula_its_wheel_ships(request, tmp_path_factory, name):
    """NVSHMEM's wheels ship the CUDA EULA's 2018 License.txt (the same sha256 as nvidia-cuda-runtime's), not an
    NVSHMEM SLA: every part, and the device code inside them, is judged under that text."""
    wheel, report = _report(request, tmp_path_factory, name, "3.8.0")
    assert report["findings"] == [] and report["diagnostics"] == []
    libraries = _components(report, "sdk-library")
    binaries = _binaries(wheel)
    assert sorted(libraries) == binaries
    assert set(libraries.values()) == {("nvshmem", "3.8.0", "LicenseRef-NVIDIA-CUDA-EULA")}
    if name.endswith("cu12"):
        assert len(binaries) == 19
        assert [b for b in binaries if b.endswith(".bc")] == [
            f"nvidia/nvshmem/lib/libnvshmem_device_sm_{n}.bc" for n in (100, 70, 80, 89, 90)]
    conflicts = [e for c in report["components"] for e in c["evidence"] if "version conflict" in e]
    assert conflicts == []
    licence = f"{name.replace('-', '_')}-3.8.0.dist-info/licenses/License.txt"
    texts = [c for c in report["components"] if c["kind"] == "license-text"]
    assert [(_member(c["paths"][0]), c["version"], c["license"], c["properties"]["document"],
             c["properties"]["sha256"]) for c in texts] == [
        (licence, EULA_2018, f"LicenseRef-NVIDIA-CUDA-EULA-{EULA_2018}", "nvidia-sdk-eula-2018", EULA_2018_SHA256)]
    assert _governing(report) == {(m, "cuda-eula", EULA_2018) for m in libraries} | {(licence, "cuda-eula", None)}
    devices = {g["path"]: g for g in report["governing"] if g["scope"] == "device_code"}
    assert {_member(p) for p in {d["path"] for d in report["device_code"]}} == {_member(p) for p in devices}
    assert devices and {(g["document"], g["text"], g["basis"]) for g in devices.values()} == {
        ("cuda-eula", EULA_2018, "primary")}
    assert all(g["why"].startswith("part of nvshmem 3.8.0 (libnvshmem_") for g in devices.values())


def test_nvshmem_library_shipped_by_a_third_party_is_not_in_attachment_a(request, tmp_path):
    """libnvshmem_host.so.3 copied out of the wheel into an application: its own bytes say NVSHMEM 3.8.0
    ("NVSHMEM_ARTIFACT_VERSION=3.8.0"), whose wheel ships the 2018 text; that text's Attachment A lists no
    NVSHMEM file, and 2.2 makes the list the distributable portions."""
    try:
        wheel = licence_copies.wheel("nvidia-nvshmem-cu12", "3.8.0", realworld_enabled(request.config))
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))
    app = tmp_path / "dist" / "app"
    app.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        (app / "libnvshmem_host.so.3").write_bytes(zf.read("nvidia/nvshmem/lib/libnvshmem_host.so.3"))
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--no-cache", "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert [(f["rule"], f["verdict"], f["path"], f["clause"]["section"], f["clause"]["date"])
            for f in report["findings"]] == [
        ("CUDA-EULA-NOT-REDISTRIBUTABLE", "violation", "dist/app/libnvshmem_host.so.3", "2.2", EULA_2018)]
    (finding,) = report["findings"]
    assert finding["clause"]["text"] == ("The portions of the SDK that are distributable under the Agreement are "
                                         "listed in Attachment A.")
    assert finding["clause"]["document"].startswith(
        "License Agreement for NVIDIA Software Development Kits (Release Date: July 26, 2018)")
    assert finding["message"] == (
        "libnvshmem_host.so.3 (nvshmem 3.8.0) is a file of NVSHMEM, which is not part of the CUDA Toolkit but which "
        "NVIDIA ships under the governing text as its licence; Attachment A of " + finding["clause"]["document"]
        + " does not list it as distributable.")
    assert "marker 'NVSHMEM_ARTIFACT_VERSION=3.8.0' at 0x2bb070" in finding["evidence"]
    assert any(e.endswith("(the text that governs it): libnvshmem_host.so.3 is unlisted") for e in finding["evidence"])


def test_tensorrt_bindings_wheel_ships_the_tensorrt_sla(request, tmp_path_factory):
    """tensorrt-cu12-bindings 11.4.0.106's LICENSE.txt is the TensorRT SLA (its Supplement's 12.1 names libnvinfer
    and libnvinfer_plugin as distributable), identified by its hash and phrases; the wheel holds no library the
    catalog names."""
    _wheel, report = _report(request, tmp_path_factory, "tensorrt-cu12-bindings", "11.4.0.106")
    assert report["findings"] == [] and report["diagnostics"] == []
    (text,) = [c for c in report["components"] if c["kind"] == "license-text"]
    assert (_member(text["paths"][0]), text["license"], text["properties"]["document"], text["properties"]["sha256"]) == (
        "tensorrt_cu12_bindings-11.4.0.106.dist-info/licenses/LICENSE.txt", "LicenseRef-NVIDIA-TensorRT-SLA-2021",
        "tensorrt-sla-2021", "64bd290f0251405f783ba1d2e155c500542be69795e51147a1d9f11a57bda8cc")
    assert _components(report, "sdk-library") == {}
