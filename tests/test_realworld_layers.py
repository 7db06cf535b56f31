"""The layer catalog on real packages from PyPI (docs/layers.md), each audited with default options.

Wheels (pinned, fetched with ``pip download --no-deps --only-binary=:all:`` into
``${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}/layers``; a test runs when its wheel is cached or
LICSCAN_REALWORLD=1 is set):

====================================  ==========================================================================
hip-python-interop 10.0.0.0.1.2       AMD: ``cuda.bindings.{driver,runtime,nvrtc,cufile}``, ``cuda.core``, ``pynvml``,
                                      ``nvtx`` implemented on HIP Python (api-reimplementation)
cupy-rocm-7-0 14.2.0                  CuPy's ROCm build: 5 modules define CUDA API functions on HIP (source-port);
                                      14 modules link ROCm (target-linked)
numba-hip 0.2.1                       AMD: ``numba.hip`` with ``pose_as_cuda`` (source-port)
torchada 0.1.103                      PyTorch CUDA code on Moore Threads MUSA: CUDA->MUSA porting rules (source-port)
bitsandbytes 0.50.2                   CUDA, HIP and SYCL builds side by side: 6 ROCm builds and 2 XPU builds
                                      target-linked, each with its own DT_NEEDED; no layer. Its win_amd64 wheel:
                                      3 ROCm and 2 XPU DLLs, the same components from PE imports
pytorch-triton-rocm 2.1.0             Triton's ROCm build: bundles libamdhip64, libhsa-runtime64, libamd_comgr
                                      (ships ROCm); libtriton.so targets ROCm; NVIDIA's ptxas and libdevice beside
dpctl 0.22.1                          Intel's SYCL Python bindings: 5 files target oneAPI; no runtime shipped
intel-sycl-rt 2026.2.0                Intel's DPC++ runtime: ``libsycl.so.9`` ships oneAPI (one member read)
libamdhip64-5 5.2.3-8 (Debian)       Debian's HIP runtime package: libamdhip64.so.5.2.21153 ships ROCm
cuda-bindings 13.5.0                  NVIDIA's own ``cuda.bindings``: no layer
numpy 2.3.5                           CPU only: no layer
====================================  ==========================================================================
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from licscan.binary.inspect import inspect_file
from licscan.identify.catalog import identify
from licscan.model import GPU_LAYER_KINDS, component_properties

pytestmark = pytest.mark.realworld

WHEELS = {
    "hip-python-interop": ("10.0.0.0.1.2", "hip_python_interop-10.0.0.0.1.2-cp312-abi3-manylinux1_x86_64."
                           "manylinux_2_28_x86_64.manylinux_2_5_x86_64.whl"),
    "cupy-rocm-7-0": ("14.2.0", "cupy_rocm_7_0-14.2.0-cp312-cp312-manylinux2014_x86_64.whl"),
    "numba-hip": ("0.2.1", "numba_hip-0.2.1-py3-none-manylinux_2_28_x86_64.whl"),
    "torchada": ("0.1.103", "torchada-0.1.103-py3-none-any.whl"),
    "bitsandbytes": ("0.50.2", "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"),
    "bitsandbytes-win": ("0.50.2", "bitsandbytes-0.50.2-py3-none-win_amd64.whl"),
    "pytorch-triton-rocm": ("2.1.0", "pytorch_triton_rocm-2.1.0-cp311-cp311-manylinux_2_17_x86_64."
                            "manylinux2014_x86_64.whl"),
    "dpctl": ("0.22.1", "dpctl-0.22.1-0-cp312-cp312-manylinux_2_28_x86_64.whl"),
    "intel-sycl-rt": ("2026.2.0", "intel_sycl_rt-2026.2.0-py2.py3-none-manylinux_2_28_x86_64.whl"),
    "cuda-bindings": ("13.5.0", "cuda_bindings-13.5.0-cp312-cp312-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"),
    "numpy": ("2.3.5", "numpy-2.3.5-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"),
}


def _cache() -> Path:
    d = Path(os.environ.get("LICSCAN_TEST_CACHE") or Path.home() / ".cache" / "licscan-tests").expanduser() / "layers"
    d.mkdir(parents=True, exist_ok=True)
    return d


def wheel(request, name: str) -> Path:
    from tests.conftest import realworld_enabled

    version, filename = WHEELS[name]
    path = _cache() / filename
    if path.exists():
        return path
    if not realworld_enabled(request.config):
        pytest.skip(f"realworld: {filename} not cached; set LICSCAN_REALWORLD=1 to download")
    platforms = (["win_amd64"] if name.endswith("-win") else
                 ["manylinux_2_28_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64"])
    tag = re.search(r"-(cp\d+|py[\d.]+(?:\.py\d)?)-", filename).group(1)  # the wheel's python tag
    python = tag.removeprefix("cp") if tag.startswith("cp") else "312"
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", f"{name.removesuffix('-win')}=={version}",
                           "--no-deps", "--only-binary=:all:", "--python-version", python,
                           *[a for p in platforms for a in ("--platform", p)], "-d", str(_cache())],
                          capture_output=True, text=True)
    if not path.exists():
        pytest.skip(f"pip download {name}=={version} gave no {filename}: {proc.stderr.strip()[-500:]}")
    return path


def audit(path: Path) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "--format", "json", "--no-cache", str(path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def layers(report: dict) -> dict[str, dict]:
    kinds = {k.value for k in GPU_LAYER_KINDS}
    return {c["name"]: c for c in report["components"] if c["kind"] in kinds}


def members(path: Path, report_component: dict) -> list[str]:
    return sorted(p.split("!/", 1)[1] for p in report_component["paths"])


def test_hip_python_interop_is_cuda_api_on_hip(request):
    path = wheel(request, "hip-python-interop")
    _code, report = audit(path)
    found = layers(report)
    assert set(found) == {"hip-python-interop"}
    interop = found["hip-python-interop"]
    assert (interop["kind"], interop["vendor"], interop["license"]) == ("api-reimplementation", "AMD", "MIT")
    assert interop["properties"]["confidence"] == "high" and interop["properties"]["platform"] == "ROCm"
    assert members(path, interop) == ["cuda/bindings/cufile.abi3.so", "cuda/bindings/driver.abi3.so",
                                      "cuda/bindings/nvrtc.abi3.so", "cuda/bindings/runtime.abi3.so",
                                      "cuda/core/__init__.py", "nvtx/__init__.py", "pynvml/__init__.py"]
    driver = [e for e in interop["evidence"] if "cuda/bindings/driver.abi3.so: " in e
              and "[hip-python-cuda-bindings, " in e]
    assert len(driver) == 1 and "'__pyx_f_4rocm_8bindings_' at 0x" in driver[0]
    assert not [c for c in report["components"] if c["vendor"] == "NVIDIA"]


def test_cupy_rocm_build_is_a_source_port_that_targets_rocm(request):
    path = wheel(request, "cupy-rocm-7-0")
    _code, report = audit(path)
    found = layers(report)
    assert set(found) == {"cupy-rocm", "targets-rocm"}
    assert found["cupy-rocm"]["kind"] == "source-port"
    assert members(path, found["cupy-rocm"]) == [
        "cupy/cuda/texture.cpython-312-x86_64-linux-gnu.so",
        "cupy_backends/cuda/api/driver.cpython-312-x86_64-linux-gnu.so",
        "cupy_backends/cuda/api/runtime.cpython-312-x86_64-linux-gnu.so",
        "cupy_backends/cuda/libs/cusolver.cpython-312-x86_64-linux-gnu.so",
        "cupyx/_cusolver.cpython-312-x86_64-linux-gnu.so"]
    assert len(found["targets-rocm"]["paths"]) == 14
    cublas = [e for e in found["targets-rocm"]["evidence"] if "/libs/cublas.cpython" in e]
    assert cublas == [f"{path}!/cupy_backends/cuda/libs/cublas.cpython-312-x86_64-linux-gnu.so: targets ROCm: links "
                      "against ROCm (DT_NEEDED / PE import) [rocm-needed, high]: DT_NEEDED libhipblas.so.3, "
                      "librocfft.so.0"]
    runtime = [e for e in found["cupy-rocm"]["evidence"] if "api/runtime.cpython" in e and "[cupy-rocm-backend, " in e]
    assert len(runtime) == 1 and "defines __pyx_module_is_main_cupy_backends__cuda__api__runtime; defines " \
        "cudaCreateSurfaceObject, cudaCreateTextureObject, cudaDestroySurfaceObject (+" in runtime[0]
    assert not [c for c in report["components"] if c["vendor"] == "NVIDIA"]


def test_numba_hip_stands_in_for_numba_cuda(request):
    path = wheel(request, "numba-hip")
    _code, report = audit(path)
    found = layers(report)
    assert set(found) == {"numba-hip"}
    assert members(path, found["numba-hip"]) == ["numba/hip/__init__.py"]
    assert found["numba-hip"]["kind"] == "source-port"


def test_torchada_ports_cuda_code_to_musa(request):
    path = wheel(request, "torchada")
    _code, report = audit(path)
    found = layers(report)
    assert set(found) == {"torchada"}
    assert members(path, found["torchada"]) == ["torchada/_mappings/cuda_runtime.py"]
    assert (found["torchada"]["kind"], found["torchada"]["properties"]["platform"]) == ("source-port", "MUSA")


def test_bitsandbytes_builds_side_by_side_are_targets_with_their_own_evidence(request):
    """CUDA, HIP and SYCL builds of one library in one wheel: the HIP and SYCL builds target ROCm / oneAPI (no
    runtime ships, no layer), each with its own DT_NEEDED entries (issue 15 item 4)."""
    path = wheel(request, "bitsandbytes")
    _code, report = audit(path)
    found = layers(report)
    assert set(found) == {"targets-rocm", "targets-sycl"}
    rocm = found["targets-rocm"]
    assert members(path, rocm) == [f"bitsandbytes/libbitsandbytes_rocm{v}.so"
                                   for v in ("64", "70", "71", "714", "715", "72")]
    assert members(path, found["targets-sycl"]) == ["bitsandbytes/libbitsandbytes_xpu2025.so",
                                                    "bitsandbytes/libbitsandbytes_xpu2026.so"]
    needed = {e.split("!/", 1)[1].split(":", 1)[0]: e.rsplit("DT_NEEDED ", 1)[1]
              for e in rocm["evidence"] + found["targets-sycl"]["evidence"]}
    assert needed == {
        "bitsandbytes/libbitsandbytes_rocm64.so": "libhipblas.so.2, libhipblaslt.so.0",
        "bitsandbytes/libbitsandbytes_rocm70.so": "libhipblas.so.3, libhipblaslt.so.1",
        "bitsandbytes/libbitsandbytes_rocm71.so": "libhipblas.so.3, libhipblaslt.so.1",
        "bitsandbytes/libbitsandbytes_rocm714.so": "libhipblas.so.3, libhipblaslt.so.1, librocrand.so.1",
        "bitsandbytes/libbitsandbytes_rocm715.so": "libhipblas.so.3, libhipblaslt.so.1, librocrand.so.1",
        "bitsandbytes/libbitsandbytes_rocm72.so": "libhipblas.so.3, libhipblaslt.so.1",
        "bitsandbytes/libbitsandbytes_xpu2025.so": "libsycl.so.8",
        "bitsandbytes/libbitsandbytes_xpu2026.so": "libsycl.so.9",
    }
    # a finding's "together with" line quotes the other file's own facts, not the first file's
    for finding in report["findings"]:
        for line in finding["evidence"]:
            if line.startswith("together with targets-rocm") and "rocm72.so: " in line:
                assert line.endswith("DT_NEEDED libhipblas.so.3, libhipblaslt.so.1")


def test_bitsandbytes_windows_build_names_the_same_targets_from_pe_imports(request):
    linux_code, linux = audit(wheel(request, "bitsandbytes"))
    path = wheel(request, "bitsandbytes-win")
    code, report = audit(path)
    found = layers(report)
    assert {(c["name"], c["kind"]) for c in found.values()} == {(c["name"], c["kind"]) for c in layers(linux).values()}
    assert members(path, found["targets-rocm"]) == [f"bitsandbytes/libbitsandbytes_rocm{v}.dll"
                                                    for v in ("714", "715", "72")]
    imports = {e.split("!/", 1)[1].split(":", 1)[0]: e.rsplit("]: ", 1)[1]
               for e in found["targets-rocm"]["evidence"] + found["targets-sycl"]["evidence"]}
    assert imports == {
        "bitsandbytes/libbitsandbytes_rocm714.dll": "imports hipblas.dll, rocblas.dll, libhipblaslt.dll, amdhip64_7.dll",
        "bitsandbytes/libbitsandbytes_rocm715.dll": "imports hipblas.dll, rocblas.dll, libhipblaslt.dll, amdhip64_7.dll",
        "bitsandbytes/libbitsandbytes_rocm72.dll": "imports hipblas.dll, rocblas.dll, libhipblaslt.dll, amdhip64_7.dll",
        "bitsandbytes/libbitsandbytes_xpu2025.dll": "imports sycl8.dll",
        "bitsandbytes/libbitsandbytes_xpu2026.dll": "imports sycl9.dll",
    }
    # The Windows CUDA 13 DLLs link cudart_static.lib (the Linux .so files link libcudart.so): the runtime linked into
    # libbitsandbytes_cuda132.dll is CUDA 13.2's, a release no EULA text is mapped to yet (a review on that path).
    static = [(f["rule"], f["severity"], f["verdict"], f["path"].split("!/", 1)[1]) for f in report["findings"]
              if f["component"] and f["component"].startswith("sdk-library:nvidia/cudart@")
              and f["rule"] != "CUDA-EULA-NVIDIA-GPU-ONLY"]
    assert static == [("CUDA-EULA-TEXT-UNKNOWN", "warning", "review", "bitsandbytes/libbitsandbytes_cuda132.dll")]
    rules = sorted({(f["rule"], f["severity"], f["verdict"]) for f in report["findings"] if f["rule"] != static[0][0]})
    assert (code, rules) == (linux_code, sorted({(f["rule"], f["severity"], f["verdict"]) for f in linux["findings"]}))


def test_triton_rocm_ships_rocm_and_targets_it(request):
    path = wheel(request, "pytorch-triton-rocm")
    _code, report = audit(path)
    found = layers(report)
    assert set(found) == {"rocm", "targets-rocm"}
    assert members(path, found["rocm"]) == [f"triton/third_party/rocm/lib/{n}.so"
                                            for n in ("libamd_comgr", "libamdhip64", "libhsa-runtime64")]
    assert (found["rocm"]["kind"], found["rocm"]["properties"]["relation"]) == ("runtime-shipped", "ships")
    sonames = sorted(e.rsplit("DT_SONAME ", 1)[1] for e in found["rocm"]["evidence"] if "[rocm-soname," in e)
    assert sonames == ["libamd_comgr.so.2", "libamdhip64.so.5", "libhsa-runtime64.so.1"]
    assert members(path, found["targets-rocm"]) == ["triton/_C/libtriton.so"]
    assert found["targets-rocm"]["evidence"][0].endswith("DT_NEEDED libhsa-runtime64.so")
    nvidia = {c["name"] for c in report["components"] if c["vendor"] == "NVIDIA"}
    assert nvidia == {"ptxas", "libdevice"}  # the verdicts on them are the rule packs' (not asserted here)


def test_dpctl_targets_oneapi_and_ships_no_runtime(request):
    path = wheel(request, "dpctl")
    _code, report = audit(path)
    found = layers(report)
    assert set(found) == {"targets-sycl"}
    assert len(found["targets-sycl"]["paths"]) == 5
    assert all(e.endswith("libsycl.so.9") or "libsycl.so.9," in e for e in found["targets-sycl"]["evidence"])


def test_intel_sycl_runtime_ships_oneapi(request, tmp_path):
    path = wheel(request, "intel-sycl-rt")
    member = "intel_sycl_rt-2026.2.0.data/data/lib/libsycl.so.9.0.0"
    with zipfile.ZipFile(path) as zf:
        data = zf.read(member)
    lib = tmp_path / "libsycl.so.9.0.0"
    lib.write_bytes(data)
    got = {m.name: m for m in identify(f"{path}!/{member}", inspect_file(str(lib)), None, data)}
    assert set(got) == {"sycl"}
    sycl = got["sycl"]
    assert sycl.kind.value == "runtime-shipped" \
        and dict(component_properties(sycl.to_component("", ())))["relation"] == "ships"
    assert sycl.evidence == ("ships oneAPI (DPC++ SYCL runtime): the DPC++ SYCL runtime itself (DT_SONAME libsycl.so)"
                             " [sycl-soname, high]: DT_SONAME libsycl.so.9",)


DEB = "libamdhip64-5_5.2.3-8_amd64.deb"


def test_debian_hip_runtime_ships_rocm(request):
    """Debian's ``libamdhip64-5`` (fetched with ``apt-get download`` into the cache's layers/debian folder)."""
    from tests.conftest import realworld_enabled

    folder = _cache() / "debian"
    path = folder / DEB
    if not path.exists():
        if not realworld_enabled(request.config):
            pytest.skip(f"realworld: {DEB} not cached; set LICSCAN_REALWORLD=1 to download")
        folder.mkdir(exist_ok=True)
        subprocess.run(["apt-get", "download", "libamdhip64-5=5.2.3-8"], cwd=folder, capture_output=True)
        if not path.exists():
            pytest.skip(f"apt-get download libamdhip64-5=5.2.3-8 gave no {DEB}")
    _code, report = audit(path)
    found = layers(report)
    assert set(found) == {"rocm"}
    rocm = found["rocm"]
    assert members(path, rocm) == ["usr/lib/x86_64-linux-gnu/libamdhip64.so.5.2.21153"]
    assert set(rocm["properties"]["signals"].split(",")) == {"rocm-soname", "rocm-hip-exports"}
    assert any(e.endswith("DT_SONAME libamdhip64.so.5") for e in rocm["evidence"])


@pytest.mark.parametrize("name", ["cuda-bindings", "numpy"])
def test_nvidia_and_cpu_only_packages_name_no_layer(request, name):
    _code, report = audit(wheel(request, name))
    assert layers(report) == {}
