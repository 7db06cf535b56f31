"""The CUDA Runtime linked statically into third-party binaries (nvcc's default ``-cudart static``: libcudart_static.a,
cudart_static.lib, both in Attachment A's "CUDA Runtime" list of every examined text), on real wheels.

Before: such a binary named no NVIDIA part; its runtime was in no audit fact and no SBOM. Now the catalog's
``static`` evidence of cudart (rules/catalog/nvidia.yaml) names it as a component of the binary, with
``linked_from`` (the static library, the name Attachment A is read for) and its release: the CUDART_VERSION its
version query stores (``marker``), else the toolkit of the device code linked beside it (``device-code``).

Checked against NVIDIA's own static libraries (nvidia-cuda-runtime-cu12 12.9.79, nvidia-cuda-runtime 13.0.96 and
13.5.37) and against binaries that link the runtime dynamically (none named).

Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/census_wheels.py downloads into the test cache).
"""
from __future__ import annotations

import census_wheels as cw
import pytest
from helpers import audit_json, run_licscan, sboms

from licscan.identify.catalog_table import load_catalog
from licscan.identify.versions import code_claims

pytestmark = pytest.mark.realworld
EULA = "LicenseRef-NVIDIA-CUDA-EULA"
CUPY_MODULES = ("cupy/cuda/cub", "cupy/cuda/jitify", "cupy/cuda/thrust", "cupy/random/_generator_api",
                "cupy_backends/cuda/api/runtime")
LINUX_SUFFIX = ".cpython-312-x86_64-linux-gnu.so"
WINDOWS_SUFFIX = ".cp312-win_amd64.pyd"
DALI_PYTHONS = ("310", "311", "312", "313", "314", "314t", "315", "315t")




def _linked(report: dict, name: str | None = "cudart") -> list[tuple[str, str | None, str | None, str, str,
                                                                     list[str]]]:
    """The parts named ``name`` (None: every part) linked into the report's binaries."""
    return sorted((c["id"], c["properties"].get("version_range"), c["properties"].get("version_source"),
                   c["properties"]["linked_from"], c["license"], [p.rsplit("!/", 1)[1] for p in c["paths"]])
                  for c in report["components"] if "linked_from" in c["properties"] and name in (None, c["name"]))


@pytest.mark.parametrize("dist,version,platform,expected,findings", [
    ("ctranslate2", "4.8.5", cw.WINDOWS,
     [("sdk-library:nvidia/cudart@12.8.x", "12.8.x", "marker", "cudart_static.lib", EULA,
       ["ctranslate2/ctranslate2.dll"])], []),
    ("cupy-cuda12x", "14.2.0", cw.LINUX,
     [("sdk-library:nvidia/cudart@12.9.x", "12.9.x", "marker", "libcudart_static.a", EULA,
       [m + LINUX_SUFFIX for m in CUPY_MODULES])], []),
    ("cupy-cuda12x", "14.2.0", cw.WINDOWS,
     [("sdk-library:nvidia/cudart@12.9.x", "12.9.x", "marker", "cudart_static.lib", EULA,
       [m + WINDOWS_SUFFIX for m in CUPY_MODULES])], []),
    ("ctranslate2", "4.8.5", cw.LINUX,
     [("sdk-library:nvidia/cudart@12.8.x", "12.8.x", "marker", "libcudart_static.a", EULA,
       ["ctranslate2.libs/libctranslate2-a7a60d30.so.4.8.5"])], []),
    # warp.so has no SONAME and holds ptxas's banner (the PTX compiler it links): it was named ptxas 13.4.92, a
    # developer tool (CUDA-EULA-DEV-TOOL), and its runtime was not looked for. No EULA text is mapped to 13.4 or
    # 13.5 yet (rules/licenses/documents.yaml): a review on each path. warp also links the PTX compiler, nvJitLink
    # and NVRTC statically (tests/test_realworld_static_nvidia.py, which checks their findings): one review per
    # linked part, and for each of the four others an Attachment A finding.
    ("warp-lang", "1.19.0", cw.LINUX,
     [("sdk-library:nvidia/cudart@13.4.x", "13.4.x", "marker", "libcudart_static.a", EULA, ["warp/bin/warp.so"])],
     [("CUDA-EULA-NOT-REDISTRIBUTABLE", "note", "warp/bin/warp.so")] * 4
     + [("CUDA-EULA-TEXT-UNKNOWN", "warning", "warp/bin/warp.so")] * 5),
    ("warp-lang", "1.19.0", cw.WINDOWS,
     [("sdk-library:nvidia/cudart@13.4.x", "13.4.x", "device-code", "cudart_static.lib", EULA,
       ["warp/bin/warp.dll"])],
     [("CUDA-EULA-NOT-REDISTRIBUTABLE", "warning", "warp/bin/warp.dll")] * 4
     + [("CUDA-EULA-TEXT-UNKNOWN", "warning", "warp/bin/warp.dll")] * 5),
    ("cuda-bindings", "13.5.0", cw.LINUX,
     [("sdk-library:nvidia/cudart@13.5.x", "13.5.x", "marker", "libcudart_static.a", EULA,
       ["cuda/bindings/_internal/runtime" + LINUX_SUFFIX, "cuda/bindings/_internal/runtime_ptds" + LINUX_SUFFIX])],
     [("CUDA-EULA-TEXT-UNKNOWN", "warning", "cuda/bindings/_internal/runtime" + LINUX_SUFFIX),
      ("CUDA-EULA-TEXT-UNKNOWN", "warning", "cuda/bindings/_internal/runtime_ptds" + LINUX_SUFFIX)]),
    ("cuda-bindings", "13.5.0", cw.WINDOWS,
     [("sdk-library:nvidia/cudart@unknown", None, None, "cudart_static.lib", EULA,
       ["cuda/bindings/_internal/runtime" + WINDOWS_SUFFIX, "cuda/bindings/_internal/runtime_ptds" + WINDOWS_SUFFIX])],
     []),
    # NVIDIA's DALI links the runtime into each of its libraries and Python modules (nvidia-* distributions are not
    # judged by CUDA-EULA-NOT-REDISTRIBUTABLE).
    ("nvidia-dali-cuda120", "2.4.0", cw.LINUX,
     [("sdk-library:nvidia/cudart@12.9.x", "12.9.x", "marker", "libcudart_static.a", EULA,
       ["nvidia/dali/.libs/libcvcuda-a00410f9.so.0", "nvidia/dali/.libs/libnvcv_types-8eb37806.so.0",
        *(f"nvidia/dali/backend_impl.cpython-{v}-x86_64-linux-gnu.so" for v in DALI_PYTHONS),
        "nvidia/dali/libdali.so", "nvidia/dali/libdali_core.so", "nvidia/dali/libdali_kernels.so",
        "nvidia/dali/libdali_operators.so",
        *(f"nvidia/dali/python_function_plugin.cpython-{v}-x86_64-linux-gnu.so" for v in DALI_PYTHONS)])], []),
    # tensorflow 2.21.0: two op libraries link CUDA 12.5's runtime; libtensorflow_cc.so.2 (1.1 GB, past the 512 MiB
    # content probe) holds none of its strings (checked with bytes.find).
    ("tensorflow", "2.21.0", cw.LINUX,
     [("sdk-library:nvidia/cudart@12.5.x", "12.5.x", "marker", "libcudart_static.a", EULA,
       ["tensorflow/compiler/tf2xla/ops/_xla_ops.so",
        "tensorflow/lite/experimental/microfrontend/python/ops/_audio_microfrontend_op.so"])], []),
    # Gradient boosting libraries link the runtime of their CUDA builds: catboost's of 11.8, xgboost's of 13.3 (no
    # EULA text is mapped to 13.3 yet: a review).
    ("catboost", "1.2.10", cw.LINUX,
     [("sdk-library:nvidia/cudart@11.8.x", "11.8.x", "marker", "libcudart_static.a", EULA, ["catboost/_catboost.so"])],
     []),
    ("xgboost", "3.4.1", cw.LINUX,
     [("sdk-library:nvidia/cudart@13.3.x", "13.3.x", "marker", "libcudart_static.a", EULA,
       ["xgboost/lib/libxgboost.so"])],
     [("CUDA-EULA-TEXT-UNKNOWN", "warning", "xgboost/lib/libxgboost.so")]),
    # No EULA text is mapped to CUDA 13.2 yet (rules/licenses/documents.yaml): a review on each path.
    ("cupy-cuda13x", "14.2.0", cw.WINDOWS,
     [("sdk-library:nvidia/cudart@13.2.x", "13.2.x", "marker", "cudart_static.lib", EULA,
       [m + WINDOWS_SUFFIX for m in CUPY_MODULES])],
     [("CUDA-EULA-TEXT-UNKNOWN", "warning", m + WINDOWS_SUFFIX) for m in CUPY_MODULES]),
    # CUDA 13's cudart_static.lib loads the runtime of the driver's nvcudart_hybrid64.dll: no version query in the
    # binary; the CUDA provider's release is its device code's, the TensorRT provider (no device code) states none.
    ("onnxruntime-gpu", "1.31.1", cw.WINDOWS,
     [("sdk-library:nvidia/cudart@13.0.x", "13.0.x", "device-code", "cudart_static.lib", EULA,
       ["onnxruntime/capi/onnxruntime_providers_cuda.dll"]),
      ("sdk-library:nvidia/cudart@unknown", None, None, "cudart_static.lib", EULA,
       ["onnxruntime/capi/onnxruntime_providers_tensorrt.dll"])], []),
])
def test_statically_linked_runtime_is_a_component(pytestconfig, tmp_path, dist, version, platform, expected,
                                                  findings):
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, dist, version, platform))
    assert _linked(report) == expected
    assert sorted((f["rule"], f["severity"], f["path"].rsplit("!/", 1)[1]) for f in report["findings"]) == findings
    assert report["diagnostics"] == []


def test_release_evidence_of_ctranslate2(pytestconfig, tmp_path):
    """Both witnesses of the release, and the Attachment A name, in the component's evidence and its fact."""
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, "ctranslate2", "4.8.5", cw.WINDOWS))
    cudart, = (c for c in report["components"] if c["name"] == "cudart")
    evidence = [e.split("!/", 1)[1] for e in cudart["evidence"]]
    assert evidence == [
        "ctranslate2/ctranslate2.dll: CUDA Runtime: linked from cudart_static.lib: 'CUDA driver version is "
        "insufficient for CUDA runtime version' at 0x23541e8, 'CUDA driver is a stub library' at 0x2352020, \"device "
        "doesn't have valid Grid license\" at 0x2352128 (rules/catalog/nvidia.yaml: cudart static)",
        "ctranslate2/ctranslate2.dll: CUDART_VERSION 12080 stored by the runtime's version query at 0x1417180",
        "ctranslate2/ctranslate2.dll: toolkit 12.8 of the 272 device images linked beside it"]
    # The device code of ctranslate2.dll stays the user's own (not "part of" the runtime linked beside it).
    assert {d["toolkit"]["min"] for d in report["device_code"] if d["path"].endswith("ctranslate2.dll")} == {"12.8"}


@pytest.mark.parametrize("dist,version,platform", [
    ("onnxruntime-gpu", "1.31.1", cw.LINUX),
    ("jax-cuda12-plugin", "0.10.2", cw.LINUX),
    ("bitsandbytes", "0.50.2", cw.LINUX),
    ("xformers", "0.0.35", cw.LINUX),
    ("faiss-gpu-cu12", "1.14.1.post1", cw.LINUX)])
def test_dynamically_linked_runtime_is_not_reported_as_linked(pytestconfig, tmp_path, dist, version, platform):
    """Binaries that load libcudart.so (DT_NEEDED or dlopen) carry none of the runtime's own strings."""
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, dist, version, platform))
    assert _linked(report, None) == []
    assert report["diagnostics"] == []


def test_bitsandbytes_windows_links_cuda_13_runtimes(pytestconfig, tmp_path):
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, "bitsandbytes", "0.50.2", cw.WINDOWS))
    assert _linked(report) == [
        ("sdk-library:nvidia/cudart@13.0.x", "13.0.x", "device-code", "cudart_static.lib", EULA,
         ["bitsandbytes/libbitsandbytes_cuda130.dll"]),
        ("sdk-library:nvidia/cudart@13.2.x", "13.2.x", "device-code", "cudart_static.lib", EULA,
         ["bitsandbytes/libbitsandbytes_cuda132.dll"])]


#: NVIDIA's own static runtimes: (pin, member, the release its version query stores, the evidence list it holds)
STATIC_LIBRARIES = [
    (cw.Pin("nvidia-cuda-runtime-cu12", "12.9.79", cw.LINUX), "nvidia/cuda_runtime/lib/libcudart_static.a", "12.9", 0),
    (cw.Pin("nvidia-cuda-runtime-cu12", "12.9.79", cw.WINDOWS), "nvidia/cuda_runtime/lib/x64/cudart_static.lib",
     "12.9", 0),
    (cw.Pin("nvidia-cuda-runtime", "13.0.96", cw.LINUX), "nvidia/cu13/lib/libcudart_static.a", "13.0", 0),
    (cw.Pin("nvidia-cuda-runtime", "13.5.37", cw.LINUX), "nvidia/cu13/lib/libcudart_static.a", "13.5", 0),
    (cw.Pin("nvidia-cuda-runtime", "13.5.37", cw.WINDOWS), "nvidia/cu13/lib/x64/cudart_static.lib", None, 1)]


@pytest.mark.parametrize("pin,member,release,evidence", STATIC_LIBRARIES)
def test_catalog_evidence_is_in_nvidias_static_runtimes(pytestconfig, pin, member, release, evidence):
    """The literals and the version-query code the catalog looks for are those of the libraries NVIDIA ships."""
    data = cw.member_or_skip(pytestconfig, pin, member)
    static = load_catalog().entry("cudart").static
    assert static is not None
    held = [all(lit in data for lit in group) for group in static.evidence]
    assert held == [i == evidence for i in range(len(static.evidence))]
    claims = code_claims(static, data)
    assert [c.value for c in claims] == ([release] if release else [])


def test_sbom_links_the_runtime_into_its_binary(pytestconfig, tmp_path):
    wheel = cw.wheel_or_skip(pytestconfig, "ctranslate2", "4.8.5", cw.WINDOWS)
    doc, bom = sboms(tmp_path, wheel)
    runtime, = (p for p in doc["packages"] if p["name"] == "CUDA Runtime")
    assert (runtime["versionInfo"], runtime["licenseConcluded"]) == ("12.8.x",
                                                                      "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07")
    assert "checksums" not in runtime and runtime.get("hasFiles", []) == []
    dll, = (f for f in doc["files"] if f["fileName"].endswith("ctranslate2/ctranslate2.dll"))
    links = [(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"], r.get("comment"))
             for r in doc["relationships"] if r["relationshipType"] == "STATIC_LINK"]
    assert links == [(dll["SPDXID"], "STATIC_LINK", runtime["SPDXID"], "linked from cudart_static.lib")]
    # The file is ctranslate2's: the runtime's licence is not concluded for it.
    assert dll["licenseConcluded"] != "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07"
    deps = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert runtime["SPDXID"] in deps[dll["SPDXID"]]


def test_reports_say_how_the_runtime_is_there(pytestconfig, tmp_path):
    """Text and Markdown reports show the linked runtime's release range and the library it came from (before:
    "cudart (version unknown)", as if ctranslate2.dll were the runtime)."""
    wheel = cw.wheel_or_skip(pytestconfig, "ctranslate2", "4.8.5", cw.WINDOWS)
    text = run_licscan(tmp_path, "audit", str(wheel), "--no-cache").stdout.splitlines()
    assert ("  component NVIDIA cudart 12.8.x (sdk-library; linked from cudart_static.lib), license "
            "LicenseRef-NVIDIA-CUDA-EULA") in text
    markdown = run_licscan(tmp_path, "audit", str(wheel), "--no-cache", "--format", "markdown").stdout.splitlines()
    assert [line for line in markdown if line.startswith("| cudart |")] == [
        f"| cudart | NVIDIA | sdk-library (linked from cudart_static.lib) | 12.8.x | LicenseRef-NVIDIA-CUDA-EULA | "
        f"`{wheel}!/ctranslate2/ctranslate2.dll` |"]
