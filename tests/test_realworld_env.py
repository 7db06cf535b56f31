"""Real-world check (issue 14): an installed CUDA environment -- torch 2.14.1, triton 3.6.0 and the CUDA 12 wheels
of ``benchmarks/build_env.py`` (cuBLAS 12.8.4.1, cuDNN 9.10.2.21, NCCL 2.27.3, CUPTI, nvJitLink, NVRTC, the CUDA
runtime) unzipped into one ``site-packages`` folder, 12,846 files, 4.2 GiB -- audited with default options (worker
processes: this crashed with BrokenProcessPool at 12 GB before the pool was bounded) and with ``--jobs 1``: both
complete and give the same report.

Needs LICSCAN_REALWORLD=1 (the wheels, 1.9 GB, are fetched with ``pip download`` into
``${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}/env``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import build_env

NVIDIA_DISTRIBUTIONS = [("nvidia-cublas-cu12", "12.8.4.1"), ("nvidia-cuda-cupti-cu12", "12.8.90"),
                        ("nvidia-cuda-nvrtc-cu12", "12.8.93"), ("nvidia-cuda-runtime-cu12", "12.8.90"),
                        ("nvidia-cudnn-cu12", "9.10.2.21"), ("nvidia-nccl-cu12", "2.27.3"),
                        ("nvidia-nvjitlink-cu12", "12.8.93")]


@pytest.fixture(scope="module")
def tree(request):
    folder = build_env.root()
    if not realworld_enabled(request.config) and not (folder / "site-packages" / ".complete").exists():
        pytest.skip("environment tree not built; set LICSCAN_REALWORLD=1")
    return build_env.site_packages()


def audit(tree: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    return subprocess.run([sys.executable, "-m", "licscan", "audit", "site-packages", "--no-cache", "--format",
                           "json", *args], capture_output=True, text=True, cwd=tree.parent, env=env, timeout=1800)


def test_installed_environment_default_jobs_and_one_process_agree(tree):
    default = audit(tree)
    assert (default.returncode, default.stderr) == (0, ""), default.stderr[-3000:]
    report = json.loads(default.stdout)
    assert report["summary"]["files"] == 12846
    assert report["summary"]["complete"] is True
    assert report["diagnostics"] == []
    assert sorted((c["name"], c["version"]) for c in report["components"]
                  if c["kind"] == "python-distribution") == NVIDIA_DISTRIBUTIONS + [("triton", "3.6.0")]  # ships ptxas
    assert sorted((d["name"], d["version"]) for d in report["distributions"]) == \
        NVIDIA_DISTRIBUTIONS + [("torch", "2.14.1"), ("triton", "3.6.0")]
    # Every part is credited to the distribution whose RECORD lists it (all .dist-info folders share one scope:
    # before, the first distribution read owned every file, cudart had no version and triton's tools no findings).
    parts = sorted((c["name"], c["version"] or "", c["properties"].get("distribution", ""))
                   for c in report["components"] if c["kind"] in ("sdk-library", "developer-tool"))
    assert parts == [
        ("cublas", "12.8.4.1", "nvidia-cublas-cu12"), ("cublasLt", "12.8.4.1", "nvidia-cublas-cu12"),
        ("cudart", "12.8.90", "nvidia-cuda-runtime-cu12"), ("cudnn", "9.10.2.21", "nvidia-cudnn-cu12"),
        ("cuobjdump", "12.8.55", "triton"), ("cupti", "", "triton"), ("cupti", "12.8.90", "nvidia-cuda-cupti-cu12"),
        ("cupti", "2025.1.1", "triton"), ("libdevice", "", "triton"), ("nccl", "2.27.3", "nvidia-nccl-cu12"),
        ("nvJitLink", "12.8.93", "nvidia-nvjitlink-cu12"), ("nvblas", "12.8.4.1", "nvidia-cublas-cu12"),
        ("nvdisasm", "12.8.55", "triton"), ("nvrtc", "12.8.93", "nvidia-cuda-nvrtc-cu12"),
        ("nvrtc-builtins", "12.8.93", "nvidia-cuda-nvrtc-cu12"), ("ptxas", "12.8.93", "triton"),
        ("ptxas", "12.9.86", "triton")]
    # triton ships NVIDIA's tools and CUPTI's extras: the same reviews as the triton wheel audited alone.
    tools = "triton/backends/nvidia/bin/"
    cupti = "triton/backends/nvidia/lib/cupti/"
    assert sorted((f["rule"], f["severity"], f["path"].split("site-packages/", 1)[1]) for f in report["findings"]) == \
        [("CUDA-EULA-DEV-TOOL", "warning", tools + name) for name in ("cuobjdump", "nvdisasm", "ptxas",
                                                                       "ptxas-blackwell")] + \
        [("CUDA-EULA-NOT-REDISTRIBUTABLE", "warning", cupti + name)
         for name in ("libcheckpoint.so", "libcupti_static.a", "libnvperf_host.so", "libnvperf_host_static.a",
                      "libnvperf_target.so", "libpcsamplingutil.so")]
    assert len(report["device_code"]) == 19234
    one = audit(tree, "--jobs", "1")
    assert one.returncode == 0
    assert one.stdout == default.stdout
