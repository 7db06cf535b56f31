"""CUDA-carrying wheels from PyPI that no other test read, audited as a reviewer would (the sweep of issue 14's stop):
each test names what was wrong before its fix.

* nvidia-nvjpeg2k-cu12 0.11.0.51 (Linux, Windows): libnvjpeg2k.so.0 and nvjpeg2k_0.dll were named nothing (no catalog
  entry). The wheel's LICENSE.txt is NVIDIA's SDK licence with an "nvJPEG2K SUPPLEMENT" whose section 2 lists "the
  runtime files .so and .h, nvjpeg2k_0.dll, nvjpeg2k.lib and libnvjpeg2k_static.a" as distributable; the DLL's
  version resource says FileVersion "0.11.0.51".
* nvidia-cufile-cu12 1.14.1.1: libcufile.so.0 was cuFile "0.x" (its SONAME number read as a release) beside
  libcufile_rdma.so.1 at 1.14.1.1: the numbers are ABI numbers; both are the wheel's 1.14.1.1.
* numba-cuda 0.30.4 win_amd64: its two test PTX files have Windows line ends ("\\r\\n") and were not read as PTX (the
  manylinux wheel's, with "\\n", were): the same device code on both platforms now.
* nvidia-cuda-sanitizer-api 13.5.25 (Linux, Windows): the Sanitizer API libraries (libsanitizer-public.so,
  sanitizer-public.dll, ...) and the tool's injection libraries were named nothing; only the compute-sanitizer
  executables were.
* A renamed DLL (cudart64_12.dll shipped as myruntime.dll, cudnn64_9.dll as dnn.dll, nvjpeg2k_0.dll as j2k.dll) was
  named nothing; its export directory's DLL name and its version resource name it, as a SONAME names an ELF file.
  Attachment A is read for that declared name: the renamed CUDA Runtime is listed (it was a review finding), and
  cusolverMg64_11.dll shipped as cusolver64_11.dll is cuSOLVERMg, unlisted (it was cuSOLVER by its file name,
  listed); libcudart.so.12 shipped as libmyrt.so likewise by its SONAME.
* The same DLLs vendored by delvewheel (``<stem>-<32 hex digits>.dll``, as cuda-bindings 13.5.0's win_amd64 wheel
  vendors cuda_bindings.libs/msvcp140-0fa7eb792d3fbcf2233e4ea47e9144b9.dll) were named nothing; named by their
  export directory, Attachment A's variant rule drops the hash as it drops auditwheel's: no finding.
* nvidia-npp 13.2.0.93 (Windows): NPP's DLLs bundled in an application were NPP "13.x" (their file names); their
  version resources say "NVIDIA CUDA NPPCORE Library, Version 13.2.0.93" and so on.
* xformers 0.0.35 (manylinux, win_amd64) and torchaudio 2.11.1 (manylinux): device code equal to cuobjdump's
  listing (the Windows DLL's fatbin sections cut out for it, tests/census_wheels.py); likewise warp-lang 1.19.0,
  faiss-gpu-cu12 1.14.1.post1, ctranslate2 4.8.5, nvidia-dali-cuda120 2.4.0, tensorflow 2.21.0
  (libtensorflow_framework.so.2; libtensorflow_cc.so.2 also keeps 5,745 images in fatbins inside .rodata, which
  cuobjdump does not list: its 1,494 .nv_fatbin images are equal), jax-cuda12-plugin 0.10.2 and cupy-cuda12x 14.2.0.
  Their statically linked CUDA runtimes: tests/test_realworld_static_cudart.py.
* Covered as they are (no fix needed): triton-windows 3.8.0.post29 (ptxas.exe 12.9.86 and cuda.lib for review),
  onnxruntime-gpu 1.31.1 win_amd64 (1,748 device images; CUDA 13 DLLs it imports and does not ship), tensorrt-lean-cu12-libs
  11.4.0.106 (TensorRT under its SLA, from its wheel's version).

Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/census_wheels.py downloads into the test cache).
"""
from __future__ import annotations

import collections
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import census_wheels as cw
import oracle
import pytest
from conftest import realworld_enabled

from licscan.binary import pe, peinfo

pytestmark = pytest.mark.realworld
NVJPEG2K = "nvidia-nvjpeg2k-cu12", "0.11.0.51"
NVJPEG2K_LICENSE = "LicenseRef-NVIDIA-nvJPEG2000-SLA"



def _audit(cwd: Path, *paths: str, extra: tuple[str, ...] = (), code: int = 0) -> dict:
    out = cwd / "report.json"
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", *paths, "--no-cache", *extra, "--format", "json",
                           "-o", str(out)], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert proc.returncode == code, proc.stderr[-2000:]
    return json.loads(out.read_text())


def _named(report: dict) -> list[tuple[str, str | None, str | None, str, str]]:
    return sorted((c["name"], c["version"], c["properties"].get("version_source"), c["license"],
                   p.rsplit("!/", 1)[-1]) for c in report["components"] if c["kind"] == "sdk-library"
                  for p in c["paths"])


@pytest.mark.parametrize("platform,member,source", [
    (cw.LINUX, "nvidia/nvjpeg2k/lib/libnvjpeg2k.so.0", "distribution-metadata"),
    (cw.WINDOWS, "nvidia/nvjpeg2k/bin/nvjpeg2k_0.dll", "marker")])
def test_nvjpeg2k_is_named(pytestconfig, tmp_path, platform, member, source):
    wheel = cw.wheel_or_skip(pytestconfig, *NVJPEG2K, platform)
    report = _audit(tmp_path, str(wheel))
    assert _named(report) == [("nvjpeg2k", "0.11.0.51", source, NVJPEG2K_LICENSE, member)]
    assert report["findings"] == [] and report["diagnostics"] == []
    assert len([d for d in report["device_code"] if d["path"].endswith(member)]) == 80


def test_cufile_abi_numbers_are_not_releases(pytestconfig, tmp_path):
    wheel = cw.wheel_or_skip(pytestconfig, "nvidia-cufile-cu12", "1.14.1.1", cw.LINUX)
    report = _audit(tmp_path, str(wheel))
    eula = "LicenseRef-NVIDIA-CUDA-EULA"
    assert _named(report) == [
        ("cufile", "1.14.1.1", "distribution-metadata", eula, "nvidia/cufile/lib/libcufile.so.0"),
        ("cufile", "1.14.1.1", "distribution-metadata", eula, "nvidia/cufile/lib/libcufile_rdma.so.1")]
    assert report["findings"] == [] and report["diagnostics"] == []


def test_numba_cuda_windows_ptx_with_crlf_line_ends(pytestconfig, tmp_path):
    def ptx(platform: str) -> list[tuple[str, str, str, str, str]]:
        wheel = cw.wheel_or_skip(pytestconfig, "numba-cuda", "0.30.4", platform)
        report = _audit(tmp_path, str(wheel))
        assert report["findings"] == [] and report["diagnostics"] == []
        return sorted((d["path"].rsplit("!/", 1)[1], d["kind"], d["arch"], d["ptx_isa"], d["toolkit"]["exact"])
                      for d in report["device_code"])

    expected = [("numba_cuda/numba/cuda/tests/cudapy/jitlink.ptx", "ptx", "sm_20", "4.0", "6.0.1"),
                ("numba_cuda/numba/cuda/tests/data/jitlink.ptx", "ptx", "sm_50", "6.5", "10.2.89")]
    assert ptx(cw.LINUX) == expected
    assert ptx(cw.WINDOWS) == expected


@pytest.mark.parametrize("platform,api,tool", [
    (cw.LINUX, ["compute-sanitizer/libsanitizer-collection.so", "compute-sanitizer/libsanitizer-public.so"],
     ["bin/compute-sanitizer", "compute-sanitizer/TreeLauncherSubreaper",
      "compute-sanitizer/TreeLauncherTargetLdPreloadHelper", "compute-sanitizer/compute-sanitizer",
      "compute-sanitizer/libInterceptorInjectionTarget.so", "compute-sanitizer/libTreeLauncherPlaceholder.so",
      "compute-sanitizer/libTreeLauncherTargetInjection.so",
      "compute-sanitizer/libTreeLauncherTargetUpdatePreloadInjection.so", "compute-sanitizer/x86/TreeLauncherSubreaper",
      "compute-sanitizer/x86/TreeLauncherTargetLdPreloadHelper", "compute-sanitizer/x86/libInterceptorInjectionTarget.so",
      "compute-sanitizer/x86/libTreeLauncherPlaceholder.so", "compute-sanitizer/x86/libTreeLauncherTargetInjection.so",
      "compute-sanitizer/x86/libTreeLauncherTargetUpdatePreloadInjection.so"]),
    (cw.WINDOWS, ["bin/x86_64/sanitizer-collection.dll", "bin/x86_64/sanitizer-public.dll"],
     ["bin/compute-sanitizer.exe", "bin/x86_64/InterceptorInjectionTarget.dll",
      "bin/x86_64/TreeLauncherTargetInjection.dll"])])
def test_sanitizer_api_libraries_are_named(pytestconfig, tmp_path, platform, api, tool):
    wheel = cw.wheel_or_skip(pytestconfig, "nvidia-cuda-sanitizer-api", "13.5.25", platform)
    report = _audit(tmp_path, str(wheel))
    named = {(c["name"], c["kind"], c["version"], c["properties"].get("version_source")):
             sorted(p.rsplit("!/", 1)[1].removeprefix("nvidia/cu13/") for p in c["paths"])
             for c in report["components"] if c["kind"] in ("sdk-library", "developer-tool")}
    assert named == {("sanitizer-api", "sdk-library", "13.5.25", "distribution-metadata"): api,
                     ("compute-sanitizer", "developer-tool", "13.5.25", "distribution-metadata"): tool}
    assert report["findings"] == [] and report["diagnostics"] == []


#: (pin, member, the name it is shipped under)
RENAMED = ((cw.Pin("nvidia-cuda-runtime-cu12", "12.9.79", cw.WINDOWS), "nvidia/cuda_runtime/bin/cudart64_12.dll",
            "myruntime.dll"),
           (cw.Pin("ctranslate2", "4.8.5", cw.WINDOWS), "ctranslate2/cudnn64_9.dll", "dnn.dll"),
           (cw.Pin(*NVJPEG2K, cw.WINDOWS), "nvidia/nvjpeg2k/bin/nvjpeg2k_0.dll", "j2k.dll"),
           (cw.Pin("nvidia-cusolver-cu12", "11.7.5.82", cw.WINDOWS), "nvidia/cusolver/bin/cusolverMg64_11.dll",
            "cusolver64_11.dll"))


@pytest.fixture(scope="module")
def renamed(pytestconfig, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("renamed")
    (root / "dist").mkdir()
    for pin, member, name in RENAMED:
        try:
            wheel = cw.fetch(pin, realworld_enabled(pytestconfig))
        except cw.Unavailable as error:
            pytest.skip(str(error))
        with zipfile.ZipFile(wheel) as zf:
            (root / "dist" / name).write_bytes(zf.read(member))
    return root


def test_renamed_dlls_are_named(renamed):
    report = _audit(renamed, "dist")
    assert _named(report) == [
        ("cudart", "12.9.79", "marker", "LicenseRef-NVIDIA-CUDA-EULA", "dist/myruntime.dll"),
        ("cudnn", "9.10.2.21", "marker", "LicenseRef-NVIDIA-cuDNN-SLA", "dist/dnn.dll"),
        ("cusolverMg", "11.7.5.82", "marker", "LicenseRef-NVIDIA-CUDA-EULA", "dist/cusolver64_11.dll"),
        ("nvjpeg2k", "0.11.0.51", "marker", NVJPEG2K_LICENSE, "dist/j2k.dll")]
    named_by = sorted(e for c in report["components"] for e in c["evidence"] if "export directory" in e)
    assert named_by == [
        "dist/cusolver64_11.dll: cuSOLVERMg: export directory names it 'cusolverMg64_11.dll' "
        "(rules/catalog/nvidia.yaml: cusolverMg), shipped as 'cusolver64_11.dll'",
        "dist/dnn.dll: cuDNN: export directory names it 'cudnn64_9.dll' (rules/catalog/nvidia.yaml: cudnn)",
        "dist/j2k.dll: nvJPEG2000: export directory names it 'nvjpeg2k_0.dll' (rules/catalog/nvidia.yaml: nvjpeg2k)",
        "dist/myruntime.dll: CUDA Runtime: export directory names it 'cudart64_12.dll' "
        "(rules/catalog/nvidia.yaml: cudart)"]
    declared = sorted((c["name"], c["properties"].get("declared_name")) for c in report["components"])
    assert declared == [("cudart", "cudart64_12.dll"), ("cudnn", "cudnn64_9.dll"),
                        ("cusolverMg", "cusolverMg64_11.dll"), ("nvjpeg2k", "nvjpeg2k_0.dll")]
    # Attachment A lists "portions of the SDK" by NVIDIA's file names: it is read for the name the file declares. The
    # CUDA Runtime shipped as myruntime.dll is cudart64_12.dll, listed (before: a review finding on the shipped name);
    # cuSOLVERMg shipped under cuSOLVER's listed name is still cusolverMg64_11.dll, unlisted (before: named cuSOLVER
    # by its file name, and listed).
    findings = [(f["rule"], f["severity"], f["verdict"], f["path"]) for f in report["findings"]]
    assert findings == [("CUDA-EULA-NOT-REDISTRIBUTABLE", "warning", "review", "dist/cusolver64_11.dll")]
    assert ("Attachment A of NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 7, 2025) "
            "(toolkit 12.9): cusolverMg64_11.dll is unlisted") in report["findings"][0]["evidence"]
    assert report["diagnostics"] == []
    _audit(renamed, "dist", extra=("--fail-on", "warning"), code=1)


def test_renamed_shared_object_is_read_by_its_soname(pytestconfig, tmp_path):
    """libcudart.so.12 shipped as libmyrt.so: named by its SONAME, and listed in Attachment A by it."""
    wheel = cw.wheel_or_skip(pytestconfig, "nvidia-cuda-runtime-cu12", "12.9.79", cw.LINUX)
    (tmp_path / "dist").mkdir()
    with zipfile.ZipFile(wheel) as zf:
        (tmp_path / "dist" / "libmyrt.so").write_bytes(zf.read("nvidia/cuda_runtime/lib/libcudart.so.12"))
    report = _audit(tmp_path, "dist")
    assert [(c["name"], c["version"], c["properties"].get("version_range"), c["properties"].get("declared_name"),
             c["paths"]) for c in report["components"]] == [
        ("cudart", None, "12.x", "libcudart.so.12", ["dist/libmyrt.so"])]
    assert report["findings"] == [] and report["diagnostics"] == []


def test_delvewheel_vendored_dlls_are_named_and_listed(pytestconfig, tmp_path):
    libs = tmp_path / "site-packages" / "app.libs"
    libs.mkdir(parents=True)
    mangled = {"cudart64_12.dll": "cudart64_12-0fa7eb792d3fbcf2233e4ea47e9144b9.dll",
               "nvjpeg2k_0.dll": "nvjpeg2k_0-20076bc0e3fcb1842cab77dfe8ef816b.dll"}
    for pin, member, _renamed in RENAMED:
        name = member.rsplit("/", 1)[1]
        if name in mangled:
            try:
                wheel = cw.fetch(pin, realworld_enabled(pytestconfig))
            except cw.Unavailable as error:
                pytest.skip(str(error))
            with zipfile.ZipFile(wheel) as zf:
                (libs / mangled[name]).write_bytes(zf.read(member))
    report = _audit(tmp_path, "site-packages")
    assert _named(report) == [
        ("cudart", "12.9.79", "marker", "LicenseRef-NVIDIA-CUDA-EULA", f"site-packages/app.libs/{mangled['cudart64_12.dll']}"),
        ("nvjpeg2k", "0.11.0.51", "marker", NVJPEG2K_LICENSE, f"site-packages/app.libs/{mangled['nvjpeg2k_0.dll']}")]
    assert report["findings"] == [] and report["diagnostics"] == []


def test_npp_dlls_bundled_state_their_version(pytestconfig, tmp_path):
    wheel = cw.wheel_or_skip(pytestconfig, "nvidia-npp", "13.2.0.93", cw.WINDOWS)
    (tmp_path / "dist").mkdir()
    with zipfile.ZipFile(wheel) as zf:
        for name in ("nppc64_13.dll", "nppidei64_13.dll"):
            (tmp_path / "dist" / name).write_bytes(zf.read(f"nvidia/cu13/bin/x86_64/{name}"))
    report = _audit(tmp_path, "dist")
    eula = "LicenseRef-NVIDIA-CUDA-EULA"
    assert _named(report) == [("npp", "13.2.0.93", "marker", eula, "dist/nppc64_13.dll"),
                              ("npp", "13.2.0.93", "marker", eula, "dist/nppidei64_13.dll")]
    markers = sorted(e.split(": ", 1)[1].split(" at 0x")[0] for c in report["components"] for e in c["evidence"]
                     if ": marker " in e)
    assert markers == ["marker 'NVIDIA CUDA NPPCORE Library, Version 13.2.0.93'",
                       "marker 'NVIDIA CUDA NPPIDEI Library, Version 13.2.0.93'"]
    # No EULA text is mapped to CUDA 13.2 (rules/licenses/documents.yaml) and no licence file ships beside them.
    assert sorted((f["rule"], f["severity"], f["verdict"], f["path"]) for f in report["findings"]) == [
        ("CUDA-EULA-TEXT-UNKNOWN", "warning", "review", "dist/nppc64_13.dll"),
        ("CUDA-EULA-TEXT-UNKNOWN", "warning", "review", "dist/nppidei64_13.dll")]
    assert report["diagnostics"] == []


def test_export_names_and_version_resources_agree_with_lief(renamed):
    lief = pytest.importorskip("lief")
    lief.logging.disable()
    for path in sorted((renamed / "dist").iterdir()):
        data = path.read_bytes()
        view = pe.read_pe(data)
        binary = lief.PE.parse(str(path))
        assert peinfo.export_name(data, view) == binary.get_export().name
        version = binary.resources_manager.version
        version = version[0] if isinstance(version, list) else version
        strings = {e.key: e.value for t in version.string_file_info.children for e in t.entries}
        info = peinfo.version_info(data, view)
        assert info is not None
        assert (info.original_filename, info.internal_name, info.file_version) == (
            strings.get("OriginalFilename"), strings.get("InternalName"), strings.get("FileVersion"))


@pytest.mark.parametrize("dist,version,platform,member,images", [
    ("xformers", "0.0.35", cw.LINUX, "xformers/_C.so", 44),
    ("xformers", "0.0.35", cw.WINDOWS, "xformers/_C.pyd", 44),
    ("torchaudio", "2.11.1", cw.LINUX, "torchaudio/lib/libtorchaudio.so", 21),
    ("warp-lang", "1.19.0", cw.LINUX, "warp/bin/warp.so", 117),
    ("warp-lang", "1.19.0", cw.WINDOWS, "warp/bin/warp.dll", 117),
    ("faiss-gpu-cu12", "1.14.1.post1", cw.LINUX, "faiss_gpu_cu12.libs/libfaiss-6b43fd57.so", 364),
    ("ctranslate2", "4.8.5", cw.LINUX, "ctranslate2.libs/libctranslate2-a7a60d30.so.4.8.5", 272),
    ("ctranslate2", "4.8.5", cw.WINDOWS, "ctranslate2/ctranslate2.dll", 272),
    ("nvidia-dali-cuda120", "2.4.0", cw.LINUX, "nvidia/dali/libdali_operators.so", 1040),
    ("tensorflow", "2.21.0", cw.LINUX, "tensorflow/libtensorflow_framework.so.2", 240),
    ("jax-cuda12-plugin", "0.10.2", cw.LINUX, "jax_cuda12_plugin/_solver.so", 18),
    ("cupy-cuda12x", "14.2.0", cw.LINUX, "cupy/cuda/cub.cpython-312-x86_64-linux-gnu.so", 13),
    ("cupy-cuda12x", "14.2.0", cw.WINDOWS, "cupy/cuda/cub.cp312-win_amd64.pyd", 13)])
def test_device_code_equals_cuobjdump(pytestconfig, tmp_path, dist, version, platform, member, images):
    oracle.require_cuobjdump()
    wheel = cw.wheel_or_skip(pytestconfig, dist, version, platform)
    target = tmp_path / member.rsplit("/", 1)[1]
    with zipfile.ZipFile(wheel) as zf:
        target.write_bytes(zf.read(member))
    expected = cw.cuobjdump_listing(target.name, target.read_bytes())
    assert expected.how == ("cuobjdump" if platform == cw.LINUX else "cuobjdump (sections cut)")
    got = [(d["kind"], d["arch"]) for d in oracle.run_inspect(str(target))["device_code"]]
    assert len(got) == images
    assert collections.Counter(got) == collections.Counter(expected.images)


def test_triton_windows(pytestconfig, tmp_path):
    wheel = cw.wheel_or_skip(pytestconfig, "triton-windows", "3.8.0.post29", cw.WINDOWS)
    report = _audit(tmp_path, str(wheel))
    named = sorted((c["name"], c["version"], c["kind"], p.rsplit("!/", 1)[1]) for c in report["components"]
                   if c["vendor"] == "NVIDIA" for p in c["paths"])
    nvidia = "triton/backends/nvidia/"
    assert named == [("cuda-driver-api-lib", None, "sdk-library", nvidia + "lib/x64/cuda.lib"),
                     ("libdevice", None, "sdk-library", nvidia + "lib/libdevice.10.bc"),
                     ("ptxas", "12.9.86", "developer-tool", nvidia + "bin/ptxas.exe")]
    assert sorted((f["rule"], f["severity"], f["verdict"], f["path"].rsplit("!/", 1)[1]) for f in report["findings"]) == [
        ("CUDA-EULA-DEV-TOOL", "warning", "review", nvidia + "bin/ptxas.exe"),
        ("CUDA-EULA-NOT-REDISTRIBUTABLE", "warning", "review", nvidia + "lib/x64/cuda.lib")]
    assert report["diagnostics"] == []
    _audit(tmp_path, str(wheel), extra=("--fail-on", "warning"), code=1)


def test_onnxruntime_gpu_windows(pytestconfig, tmp_path):
    wheel = cw.wheel_or_skip(pytestconfig, "onnxruntime-gpu", "1.31.1", cw.WINDOWS)
    report = _audit(tmp_path, str(wheel))
    capi = "onnxruntime/capi/"
    deps = sorted((d["path"].rsplit("!/", 1)[1], d["needs"], d["component"], tuple(d["shipped"]))
                  for d in report["dependencies"] if d["component"])
    assert deps == [(capi + "onnxruntime_providers_cuda.dll", "cublas64_13.dll", "cublas", ()),
                    (capi + "onnxruntime_providers_cuda.dll", "cublasLt64_13.dll", "cublasLt", ()),
                    (capi + "onnxruntime_providers_tensorrt.dll", "cublas64_13.dll", "cublas", ()),
                    (capi + "onnxruntime_providers_tensorrt.dll", "cudnn64_9.dll", "cudnn", ()),
                    (capi + "onnxruntime_providers_tensorrt.dll", "nvinfer_10.dll", "tensorrt", ()),
                    (capi + "onnxruntime_providers_tensorrt.dll", "nvonnxparser_10.dll", "tensorrt", ())]
    images = collections.Counter((d["kind"], d["arch"]) for d in report["device_code"])
    assert images == {("cubin", "sm_75"): 217, ("cubin", "sm_80"): 308, ("cubin", "sm_86"): 308,
                      ("cubin", "sm_89"): 308, ("cubin", "sm_90a"): 290, ("cubin", "sm_120a"): 279,
                      ("ptx", "sm_120"): 38}
    assert report["findings"] == [] and report["diagnostics"] == []


@pytest.mark.parametrize("platform,members", [
    (cw.LINUX, ["tensorrt_lean_libs/libnvinfer_lean.so.11", "tensorrt_lean_libs/libnvinfer_vc_plugin.so.11"]),
    (cw.WINDOWS, ["tensorrt_lean_libs/nvinfer_lean_11.dll", "tensorrt_lean_libs/nvinfer_vc_plugin_11.dll"])])
def test_tensorrt_lean_libs(pytestconfig, tmp_path, platform, members):
    wheel = cw.wheel_or_skip(pytestconfig, "tensorrt-lean-cu12-libs", "11.4.0.106", platform)
    report = _audit(tmp_path, str(wheel))
    assert _named(report) == [("tensorrt", "11.4.0.106", "distribution-metadata", "LicenseRef-NVIDIA-TensorRT-SLA", m)
                              for m in members]
    assert report["findings"] == [] and report["diagnostics"] == []
