"""Real inputs judged under their own licences, with the verdicts tests/legal_cases.yaml predicts (issue 11, G):
Debian libcuda1 470 and 535 (and their libraries shipped in an application without the licence), the PyPI NCCL and
cuDNN wheels (and NCCL shipped without its notice), the triton wheel and the nvidia-cuda-nvcc wheel.

Needs the packages (tests/licence_copies.py: pip download / apt-get download into the test cache); runs with
LICSCAN_REALWORLD=1 or when they are cached."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import licence_copies
import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld
ROOT = Path(__file__).resolve().parent.parent


def _deb(request, name, version):
    try:
        return licence_copies.debian_package(name, version, realworld_enabled(request.config))
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))


def _wheel(request, name, version):
    try:
        return licence_copies.wheel(name, version, realworld_enabled(request.config))
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))


def _audit(cwd: Path, *args: str, incomplete: int = 0) -> dict:
    """The JSON report; ``incomplete``: how many limit diagnostics the input is known to give (exit code 3)."""
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--format", "json", "--no-cache",
                           "--fail-on", "never", *args], capture_output=True, text=True, cwd=cwd, timeout=1800)
    assert proc.returncode == (3 if incomplete else 0), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert len(report["diagnostics"]) == incomplete and {d["kind"] for d in report["diagnostics"]} <= {"limit"}
    return report


def _found(report: dict) -> list[tuple[str, str, str, str]]:
    return sorted((f["rule"], f["verdict"], f["path"].rsplit("/", 1)[-1], f["clause"]["section"])
                  for f in report["findings"])


def _member(deb: Path, suffix: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(_data_tar(deb))) as tar:
        for info in tar:
            if info.name.endswith(suffix) and info.isfile():
                return tar.extractfile(info).read()
    raise AssertionError(f"{suffix} not in {deb}")


def _data_tar(deb: Path) -> bytes:
    raw = deb.read_bytes()
    offset = 8
    while offset < len(raw):
        name = raw[offset:offset + 16].decode().strip().rstrip("/")
        size = int(raw[offset + 48:offset + 58].decode().strip())
        if name.startswith("data.tar"):
            body = raw[offset + 60:offset + 60 + size]
            if name.endswith(".xz"):
                import lzma
                return lzma.decompress(body)
            if name.endswith(".zst"):
                import zstandard
                return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read()
            return body
        offset += 60 + size + (size & 1)
    raise AssertionError(f"no data.tar in {deb}")


def test_debian_libcuda1_packages_are_their_own_licensed_distribution(request, tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    for version in ("470.256.02-2", "535.261.03-1"):
        shutil.copy(_deb(request, "libcuda1", version), dist)
    report = _audit(tmp_path)
    assert _found(report) == []
    texts = {c["properties"]["document"] for c in report["components"] if c["kind"] == "license-text"}
    assert texts == {"nvidia-driver-license", "nvidia-driver-agreement"}
    from licscan.rules import facts

    index = facts.build(report)
    governing = {(f.fields["version"], f.fields["governing.text"]) for f in index.scope("component")
                 if f.fields["kind"] == "driver"}
    assert governing == {("470.256.02", "customer-use"), ("535.261.03", "driver-agreement")}
    for fact in index.scope("component"):
        if fact.fields["kind"] == "driver":  # the licence shipped beside it is the same text
            assert fact.governing["shipped-beside"].text == fact.fields["governing.text"]


def test_driver_libraries_shipped_without_their_licence(request, tmp_path):
    """Finding 1: libnvidia-ml/libcuda 535 under the NVIDIA Driver License Agreement (no Attachment A, no toolkit
    12.2), the same file named as a 580 driver a review, the 470 library under the License For Customer Use."""
    app = tmp_path / "dist" / "app"
    app.mkdir(parents=True)
    cuda535 = _member(_deb(request, "libcuda1", "535.261.03-1"), "/libcuda.so.535.261.03")
    (app / "libcuda.so.535.261.03").write_bytes(cuda535)
    (app / "libcuda.so.580.95.05").write_bytes(cuda535)
    (app / "libnvidia-ml.so.535.261.03").write_bytes(
        _member(_deb(request, "libnvidia-ml1", "535.261.03-1"), "/libnvidia-ml.so.535.261.03"))
    (app / "libcuda.so.470.256.02").write_bytes(
        _member(_deb(request, "libcuda1", "470.256.02-2"), "/libcuda.so.470.256.02"))
    report = _audit(tmp_path)
    assert _found(report) == [
        ("NVIDIA-DRIVER-LICENSE-NOT-PROVIDED", "review", "libcuda.so.580.95.05", "1.1(d)"),
        ("NVIDIA-DRIVER-LICENSE-NOT-PROVIDED", "violation", "libcuda.so.535.261.03", "1.1(d)"),
        ("NVIDIA-DRIVER-LICENSE-NOT-PROVIDED", "violation", "libnvidia-ml.so.535.261.03", "1.1(d)"),
        ("NVIDIA-DRIVER-SEPARATED", "review", "libcuda.so.470.256.02", "2.1.3 (No Separation of Components)"),
    ]
    titles = {f["clause"]["document"] for f in report["findings"]}
    assert titles == {"NVIDIA Driver License Agreement", "License For Customer Use of NVIDIA Software"}


def test_nccl_wheel_and_nccl_without_its_notice(request, tmp_path):
    """Finding 3: NCCL is BSD-3-Clause; no CUDA EULA rule fires on it; shipped without its notice it breaks
    condition 2."""
    wheel = _wheel(request, "nvidia-nccl-cu12", "2.32.3")
    (tmp_path / "dist").mkdir()
    shutil.copy(wheel, tmp_path / "dist")
    assert _found(_audit(tmp_path)) == []
    other = tmp_path / "other"
    (other / "dist" / "app").mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        lib = next(n for n in zf.namelist() if n.endswith("libnccl.so.2"))
        (other / "dist" / "app" / "libnccl.so.2").write_bytes(zf.read(lib))
    assert _found(_audit(other)) == [("NCCL-BSD-NOTICE", "violation", "libnccl.so.2", "condition 2")]


def test_cudnn_wheel_is_judged_under_its_sla(request, tmp_path):
    wheel = _wheel(request, "nvidia-cudnn-cu12", "9.28.0.42")
    (tmp_path / "dist").mkdir()
    shutil.copy(wheel, tmp_path / "dist")
    # libcudnn_engines_tensor_ir.so.9 (2,099,128 bytes from 6,413) is read: the ratio guard starts past 16 MiB.
    report = _audit(tmp_path)
    assert _found(report) == []
    from licscan.rules import facts

    cudnn = [f for f in facts.build(report).scope("component") if f.fields["name"] == "cudnn"]
    assert cudnn and {(f.fields["governing.document"], f.fields["governing.text"]) for f in cudnn} == {
        ("cudnn-sla", "2020-01-28")}


def test_triton_and_nvcc_wheels(request, tmp_path):
    """The triton wheel's NVIDIA tools are reviews (a third-party bundle, no public permission); CUPTI's own
    numbering is not a toolkit and its copies take the toolkit of libcupti.so.12/.13 (finding 7); NVIDIA's nvcc
    wheel is NVIDIA's own distribution."""
    (tmp_path / "dist").mkdir()
    shutil.copy(_wheel(request, "triton", "3.9.0"), tmp_path / "dist")
    shutil.copy(_wheel(request, "nvidia-cuda-nvcc-cu12", "12.9.86"), tmp_path / "dist")
    report = _audit(tmp_path)
    found = _found(report)
    assert [f for f in found if f[0] == "CUDA-EULA-DEV-TOOL"] == [
        ("CUDA-EULA-DEV-TOOL", "review", name, "1.1.2(4)") for name in ("cuobjdump", "nvdisasm", "ptxas",
                                                                          "ptxas-blackwell")]
    assert not [f for f in report["findings"] if "nvidia_cuda_nvcc" in f["path"]]
    assert not [f for f in found if f[2].startswith("libcupti.so")]
    listed_nowhere = {f[2] for f in found if f[0] == "CUDA-EULA-NOT-REDISTRIBUTABLE"}
    assert listed_nowhere == {"libcheckpoint.so", "libcupti_static.a", "libnvperf_host.so",
                              "libnvperf_host_static.a", "libnvperf_target.so", "libpcsamplingutil.so"}
    assert {f[1] for f in found} == {"review"}
    # ptxas-blackwell is CUDA 13.4.59's: no known EULA text is mapped to 13.4 and triton ships no licence file.
    assert [f for f in found if f[0] == "CUDA-EULA-TEXT-UNKNOWN"] == [
        ("CUDA-EULA-TEXT-UNKNOWN", "review", "ptxas-blackwell", "1.1.1(3)")]
    assert {f[0] for f in found} == {"CUDA-EULA-DEV-TOOL", "CUDA-EULA-NOT-REDISTRIBUTABLE", "CUDA-EULA-TEXT-UNKNOWN"}
    evidence = [e for f in report["findings"] if f["path"].endswith("libcupti_static.a") for e in f["evidence"]]
    assert any("toolkit 12.x from libcupti.so.12" in e for e in evidence)


def test_cuda_samples_helpers_from_debian(request, tmp_path):
    """Finding 8: the GitHub CUDA Samples (Debian nvidia-cuda-samples 11.8) are BSD-3-Clause: an intact helper
    carries its notice (no finding); the same helper without its header is undetermined (BSD or EULA-era code)."""
    deb = _deb(request, "nvidia-cuda-samples", "11.8~dfsg-2")
    helper = _member(deb, "/examples/Common/helper_cuda.h")
    intact = tmp_path / "a" / "dist" / "src" / "common"
    intact.mkdir(parents=True)
    (intact / "helper_cuda.h").write_bytes(helper)
    report = _audit(tmp_path / "a")
    assert _found(report) == []
    assert [c["properties"]["document"] for c in report["components"] if c["kind"] == "license-text"] == [
        "cuda-samples-bsd"]
    stripped = tmp_path / "b" / "dist" / "src" / "common"
    stripped.mkdir(parents=True)
    (stripped / "helper_cuda.h").write_bytes(helper.split(b"*/", 1)[1])
    assert _found(_audit(tmp_path / "b")) == [
        ("CUDA-SAMPLES-BSD-NOTICE", "undetermined", "helper_cuda.h", "condition 1")]
