"""The layer catalog (rules/catalog/translation-layers.yaml, docs/layers.md): every layer, runtime and target it
names has a positive case and a negative case (a near miss) here, on inputs built with gcc from our own C
(tests/layer_fixtures.py); the real packages are in tests/test_realworld_layers.py."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from licscan.binary.inspect import inspect_file
from licscan.identify import signals
from licscan.identify.catalog import identify
from licscan.model import ComponentKind, component_properties
from tests.layer_fixtures import PTX_DIRECTIVES, Stubs, so

CATALOG = set(signals.load_signals().layers)


@pytest.fixture
def stubs(tmp_path):
    folder = tmp_path / "stubs"
    folder.mkdir()
    return Stubs(folder)


def named(vpath: str, target) -> dict:
    """name -> ComponentMatch for one file (a Path to inspect and read, or bytes)."""
    if isinstance(target, Path):
        return {m.name: m for m in identify(vpath, inspect_file(str(target)), None, target.read_bytes())}
    return {m.name: m for m in signals.detect(vpath, None, target)}


# ------------------------------------------------------------------------------------------------ builders
# Each returns (virtual path, Path or bytes). `s` holds the stub runtimes; the new file goes beside them.

def zluda_libcuda(s):
    return "zluda/libcuda.so.1", so(s.folder, "libcuda.so.1", 'extern int hipInit(unsigned); '
                                     'const char *suffix = " [ZLUDA]"; int cuInit(unsigned f){return hipInit(f);}',
                                     libs=[s.lib("libamdhip64.so.6")])


def zluda_launcher(s):
    return "bin/run-with-zluda", b'#!/bin/sh\nLD_LIBRARY_PATH="/opt/zluda:$LD_LIBRARY_PATH" exec "$@"\n'


def other_launcher(s):
    return "bin/run-with-mylibs", b'#!/bin/sh\nLD_LIBRARY_PATH="/opt/mylibs:$LD_LIBRARY_PATH" exec "$@"\n'


def zluda_named_only(s):
    return "zluda/libzluda_ld.so", b"not an ELF file"


def nvidia_libcuda(s):
    return "lib/libcuda.so.580.159.04", so(s.folder, "libcuda.so.580.159.04", "int cuInit(unsigned f){return 0;}",
                                          soname="libcuda.so.1")


def ocelot_app(s):
    return "bin/app", so(s.folder, "app_ocelot", "extern int ocelot_emulate(void); int main(){return ocelot_emulate();}",
                         libs=[s.lib("libgpuocelot.so")], shared=False)


def ocelot_named_only(s):
    return "lib/libgpuocelot.so", b"not an ELF file"


def ptx_loader(s):
    return "lib/libptxjit.so", so(s.folder, "libptxjit.so", PTX_DIRECTIVES + "extern int hipModuleLoadData(void **, "
                                  "const void *); int cuModuleLoadData(void **m, const void *i)"
                                  "{return hipModuleLoadData(m, i);} int cuInit(unsigned f){return 0;}",
                                  soname="libptxjit.so", libs=[s.lib("libamdhip64.so.6")])


def ptx_loader_without_runtime(s):
    return "lib/libptxjit.so", so(s.folder, "libptxjit_nv.so", PTX_DIRECTIVES + "int cuModuleLoadData(void **m, "
                                  "const void *i){return 0;}", soname="libptxjit.so")


def scale_cublas(s):
    return "opt/scale/lib/libcublas.so.12", so(
        s.folder, "libcublas.so.12", 'const char *e = "redscale::SimpleException"; int cublasCreate_v2(void **h)'
        "{return 0;}", soname="libcublas.so.12", libs=[s.lib("libredscale.so"), s.lib("librocblas.so.4")],
        runpath="/opt/scale/targets/gfx90a/lib")


def scale_named_only(s):
    return "opt/scale/targets/gfx1100/lib/libredscale.so", b"not an ELF file"


def chipstar_app(s):
    return "bin/app", so(s.folder, "app_chip", "extern int __hipRegisterFatBinary(void); "
                         "int main(){return __hipRegisterFatBinary();}", libs=[s.lib("libCHIP.so")], shared=False)


def empty_cudart(s):
    return "chipstar/lib/libcudart.so", b""


def cupbop_app(s):
    return "bin/app", so(s.folder, "app_cupbop", "extern int cupbop_launch(void); int main(){return cupbop_launch();}",
                         libs=[s.lib("libCPUruntime.so")], shared=False)


def cupbop_named_only(s):
    return "lib/libCPUruntime.so", b"not an ELF file"


def dpct_lib(s):
    return "lib/libmigrated.so", so(s.folder, "libmigrated.so", 'int get_q(void) __asm__('
                                    '"_ZN4dpct3dev14get_default_queueEv"); int get_q(void){return 0;}',
                                    soname="libmigrated.so", libs=[s.lib("libsycl.so.8")])


def dpcpp_lib(s):
    return "lib/libother.so", so(s.folder, "libother.so", 'int get_q(void) __asm__("_ZN5dpcpp3getEv"); '
                                 "int get_q(void){return 0;}", soname="libother.so")


_CUPY_MARKER = 'int cupy_marker __asm__("__pyx_module_is_main_cupy_backends__cuda__api__runtime") = 0;'


def cupy_rocm_module(s):
    return "cupy_backends/cuda/api/runtime.so", so(
        s.folder, "runtime_rocm.so", _CUPY_MARKER + "extern int hipMalloc(void **, unsigned long); "
        "int cudaMalloc(void **p, unsigned long n){return hipMalloc(p, n);} int PyInit_runtime(void){return 0;}",
        libs=[s.lib("libamdhip64.so.6")])


def cupy_cuda_module(s):
    """CuPy's CUDA build: the same module imports cudaMalloc from NVIDIA's runtime instead of defining it."""
    return "cupy_backends/cuda/api/runtime.so", so(
        s.folder, "runtime_cuda.so", _CUPY_MARKER + "extern int cudaMalloc(void **, unsigned long); "
        "int PyInit_runtime(void){void *p; return cudaMalloc(&p, 1);}", libs=[s.lib("libcudart.so.12")])


def numba_hip_init(s):
    return "numba/hip/__init__.py", (b'"""Numba HIP."""\n\ndef pose_as_cuda():\n    """Delegate all \'numba.cuda*\' '
                                     b"imports to 'numba.hip'.\"\"\"\n    import sys\n")


def numba_cuda_init(s):
    return "numba/cuda/__init__.py", b'"""numba.cuda: CUDA kernels in Python."""\nfrom numba.cuda.api import *\n'


def musa_porting_rules(s):
    return "pkg/_mappings/cuda_runtime.py", (b'"""CUDA->MUSA porting rules."""\nMAPPING = {\n    \'cudaMalloc\': '
                                              b"'musaMalloc',\n    'cudaFree': 'musaFree',\n}\n")


def hip_porting_rules(s):
    return "pkg/_mappings/cuda_runtime.py", (b'"""CUDA->HIP renames."""\nMAPPING = {\n    \'cudaMalloc\': '
                                              b"'hipMalloc',\n    'cudaFree': 'hipFree',\n}\n")


def interop_driver(s):
    return "cuda/bindings/driver.abi3.so", so(
        s.folder, "driver_hip.so", 'int f(void) __asm__("__pyx_f_4rocm_8bindings_5cyhip_hipInit"); '
        "int f(void){return 0;} int PyInit_driver(void){return f();}")


def interop_pynvml(s):
    return "pynvml/__init__.py", b'"""NVML on AMD GPUs."""\nimport ctypes\nfrom rocm.bindings import amdsmi\n'


def cupy_cuda_subpackage(s):
    """A package's own `cuda` subpackage (cupy/cuda) is not the top-level `cuda` namespace."""
    return "site-packages/cupy/cuda/device.so", so(
        s.folder, "device_sub.so", 'const char *f = "hipGetDeviceCount"; int PyInit_device(void){return 0;}')


def cuda_namespace_on_hip(s):
    """Not HIP Python's: a `cuda.bindings.runtime` module that loads HIP itself."""
    return "cuda/bindings/runtime.cpython-312-x86_64-linux-gnu.so", so(
        s.folder, "runtime_dl.so", 'const char *lib = "libamdhip64.so.6"; const char *f = "hipGetDeviceCount";'
        "int PyInit_runtime(void){return 0;}")


def nvidia_style_driver(s):
    return "cuda/bindings/driver.abi3.so", so(
        s.folder, "driver_nv.so", 'const char *lib = "libcuda.so.1"; int PyInit_driver(void){return 0;}')


def dropin_libcuda(s):
    """A drop-in libcuda exporting cuInit backed by HIP, without a catalogued project's strings: a driver stand-in
    is the module loader the CUDA runtime hands its fatbins to."""
    return "lib/libcuda.so.1", so(s.folder, "libcuda_dropin.so", "extern int hipInit(unsigned); "
                                  "int cuInit(unsigned f){return hipInit(f);} int cuDeviceGetCount(int *n)"
                                  "{*n = 1; return 0;}", soname="libcuda.so.1", libs=[s.lib("libamdhip64.so.6")])


def dropin_libcublas(s):
    """A drop-in libcublas on rocBLAS: CUDA's library API re-implemented."""
    return "lib/libcublas.so.12", so(s.folder, "libcublas_dropin.so", "extern int rocblas_initialize(void); "
                                     "int cublasCreate_v2(void **h){return rocblas_initialize();}",
                                     soname="libcublas.so.12", libs=[s.lib("librocblas.so.4")])


def cuda_shim_on_hip(s):
    """Not CUDA-named: the exported cu* API with imported hip* is the signal."""
    return "lib/libgpushim.so", so(s.folder, "libgpushim.so", "extern int hipInit(unsigned); "
                                   "int cuInit(unsigned f){return hipInit(f);}", soname="libgpushim.so",
                                   libs=[s.lib("libamdhip64.so.6")])


def hip_build_side_by_side(s):
    """A library's own HIP build (bitsandbytes ships one beside its CUDA builds): its own API, not CUDA's."""
    return "pkg/libkernels_rocm.so", so(s.folder, "libkernels_rocm.so", "extern int hipMalloc(void **, unsigned long); "
                                        "int kernels_gemm(void){void *p; return hipMalloc(&p, 1);}",
                                        libs=[s.lib("libhipblas.so.3"), s.lib("libamdhip64.so.6")])


def cudart_on_sycl(s):
    """A .so exporting CUDA runtime symbols that imports libsycl."""
    return "lib/libcudart_sycl.so", so(s.folder, "libcudart_sycl.so", 'extern int q_wait(void) __asm__('
                                       '"_ZN4sycl3_V15queue4waitEv"); int cudaDeviceSynchronize(void)'
                                       "{return q_wait();} int cudaMalloc(void **p, unsigned long n){return 0;}",
                                       soname="libcudart_sycl.so", libs=[s.lib("libsycl.so.8")])


def sycl_build_side_by_side(s):
    return "pkg/libkernels_xpu.so", so(s.folder, "libkernels_xpu.so", 'extern int q_wait(void) __asm__('
                                       '"_ZN4sycl3_V15queue4waitEv"); int kernels_gemm(void){return q_wait();}',
                                       libs=[s.lib("libsycl.so.8")])


def shipped(lib):
    def build(s):
        return f"lib/{lib}", s.folder / s.lib(lib)
    build.__name__ = f"shipped {lib}"
    return build


def linked(lib):
    def build(s):
        out = so(s.folder, f"liblinked_{lib.split('.')[0]}.so", "int user(void){return 0;}", libs=[s.lib(lib)])
        return f"pkg/{out.name}", out
    build.__name__ = f"linked against {lib}"
    return build


_PE_HEAD = b"MZ" + b"\0" * 62  # enough for the format sniff of a raw probe; strings signals read the rest


def nvcuda_dll_on_hip(s):
    return "bin/nvcuda.dll", _PE_HEAD + b"\0amdhip64_7.dll\0cuInit\0"


def nvcuda_dll(s):
    return "bin/nvcuda.dll", _PE_HEAD + b"\0KERNEL32.dll\0cuInit\0"


def amdhip_dll(s):
    return "bin/amdhip64_7.dll", _PE_HEAD + b"\0hipInit\0hipMalloc\0"


def zluda_preload(s):
    return "bin/zluda-run", b'#!/bin/sh\nLD_PRELOAD=/opt/zluda/libzluda_ld.so exec "$@"\n'


def zluda_tree_shim(s):
    return "zluda/trace/libzluda_ld.so", so(s.folder, "libzluda_ld.so", 'const char *tag = " [ZLUDA]";'
                                            "int zluda_ld(void){return 0;}", soname="libzluda_ld.so")


def zluda_cache(s):
    import sqlite3

    db = s.folder / "cache.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE modules (hash TEXT, compiler_version TEXT, zluda_version TEXT, device TEXT, "
                "backend_key TEXT, binary BLOB, last_access INTEGER)")
    con.commit()
    con.close()
    return "home/u/.cache/x/cache.sqlite", db.read_bytes()


def other_sqlite(s):
    import sqlite3

    db = s.folder / "other.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE modules (hash TEXT, binary BLOB)")
    con.commit()
    con.close()
    return "home/u/.cache/x/other.sqlite", db.read_bytes()


def fake_ptxas(s):
    return "zluda/ptxas", so(s.folder, "ptxas", '#include <stdio.h>\nint main(){puts("Cuda compilation tools, '
                             'release 12.8, V12.8.0");return 0;}', shared=False)


def bitcode_libcuda(s):
    return "lib/libcuda.so.1", so(s.folder, "libcuda_bc.so", 'const char bc[] = "BC\\xc0\\xde\\x35\\x14";'
                                  "int cuInit(unsigned f){return 0;}", soname="libcuda.so.1")


def shipped_named(lib, vpath):
    def build(s):
        return vpath, s.folder / s.lib(lib)
    build.__name__ = f"shipped {lib} at {vpath}"
    return build


def ocelot_strings(s):
    return "lib/libemu.so", so(s.folder, "libemu.so", 'const char *c = "configure.ocelot"; int e(void){return 0;}',
                               soname="libemu.so")


def cublas_dll_on_rocblas(s):
    return "bin/cublas64_12.dll", _PE_HEAD + b"\0rocblas.dll\0cublasCreate_v2\0"


def sycl_dll(s):
    return "bin/sycl8.dll", _PE_HEAD + b"\0?wait@queue@_V1@sycl@@QEAAXXZ\0"


def chipstar_cucc(s):
    return "bin/cucc", so(s.folder, "cucc", "extern int __hipRegisterFatBinary(void); "
                          "int main(){return __hipRegisterFatBinary();}", libs=[s.lib("libCHIP.so")], shared=False)


def cpu_only(s):
    return "pkg/libcpu.so", so(s.folder, "libcpu.so", "double twice(double x){return 2 * x;}", libs=[])


# (case, builder, layers named, layers not named, {layer: confidence})
CASES = [
    ("zluda drop-in libcuda", zluda_libcuda, {"zluda", "targets-rocm"}, {"cuda-api-on-rocm"}, {"zluda": "high"}),
    ("zluda launcher script", zluda_launcher, {"zluda"}, set(), {"zluda": "high"}),
    ("launcher for another library", other_launcher, set(), {"zluda"}, {}),
    ("zluda file name alone", zluda_named_only, set(), {"zluda"}, {}),
    ("NVIDIA-shaped libcuda", nvidia_libcuda, set(), {"zluda", "cuda-api-on-rocm"}, {}),
    ("app on gpuocelot", ocelot_app, {"gpuocelot"}, set(), {"gpuocelot": "high"}),
    ("gpuocelot file name alone", ocelot_named_only, set(), {"gpuocelot"}, {}),
    ("PTX-consuming loader on HIP", ptx_loader, {"ptx-jit-on-nonnvidia", "targets-rocm"}, {"cuda-api-on-rocm"},
     {"ptx-jit-on-nonnvidia": "high"}),
    ("PTX-consuming loader without a non-NVIDIA runtime", ptx_loader_without_runtime, set(),
     {"ptx-jit-on-nonnvidia"}, {}),
    ("SCALE cuBLAS wrapper", scale_cublas, {"scale", "targets-rocm"}, {"cuda-api-on-rocm", "zluda"},
     {"scale": "high"}),
    ("SCALE path and name alone", scale_named_only, set(), {"scale"}, {}),
    ("app on chipStar", chipstar_app, {"chipstar"}, set(), {"chipstar": "high"}),
    ("zero-byte libcudart alone", empty_cudart, set(), {"chipstar"}, {}),
    ("app on CuPBoP", cupbop_app, {"cupbop"}, set(), {"cupbop": "high"}),
    ("CuPBoP file name alone", cupbop_named_only, set(), {"cupbop"}, {}),
    ("SYCLomatic-migrated library", dpct_lib, {"dpct", "targets-sycl"}, set(), {"dpct": "medium"}),
    ("library with another namespace", dpcpp_lib, set(), {"dpct"}, {}),
    ("CuPy ROCm module", cupy_rocm_module, {"cupy-rocm", "targets-rocm"}, {"cuda-api-on-rocm"},
     {"cupy-rocm": "high"}),
    ("CuPy CUDA module", cupy_cuda_module, set(), {"cupy-rocm", "cuda-api-on-rocm"}, {}),
    ("numba.hip package", numba_hip_init, {"numba-hip"}, set(), {"numba-hip": "high"}),
    ("numba.cuda package", numba_cuda_init, set(), {"numba-hip"}, {}),
    ("CUDA->MUSA porting rules", musa_porting_rules, {"torchada"}, set(), {"torchada": "high"}),
    ("CUDA->HIP rename table", hip_porting_rules, set(), {"torchada"}, {}),
    ("cuda.bindings.driver on HIP", interop_driver, {"hip-python-interop"}, set(), {"hip-python-interop": "high"}),
    ("pynvml on amdsmi", interop_pynvml, {"hip-python-interop"}, set(), {"hip-python-interop": "high"}),
    ("NVIDIA-style cuda.bindings.driver", nvidia_style_driver, set(), {"hip-python-interop", "cuda-api-on-rocm"},
     {}),
    ("cuda subpackage of another package", cupy_cuda_subpackage, set(), {"cuda-api-on-rocm"}, {}),
    ("cuda.bindings.runtime loading HIP", cuda_namespace_on_hip, {"cuda-api-on-rocm"}, {"hip-python-interop"},
     {"cuda-api-on-rocm": "medium"}),
    ("drop-in libcuda on HIP", dropin_libcuda, {"ptx-jit-on-nonnvidia", "targets-rocm"}, {"zluda", "cuda-api-on-rocm"},
     {"ptx-jit-on-nonnvidia": "high"}),
    ("drop-in libcublas on rocBLAS", dropin_libcublas, {"cuda-api-on-rocm", "targets-rocm"}, {"scale"},
     {"cuda-api-on-rocm": "high"}),
    ("CUDA API shim on HIP", cuda_shim_on_hip, {"cuda-api-on-rocm", "targets-rocm"}, set(),
     {"cuda-api-on-rocm": "high"}),
    ("HIP build beside a CUDA build", hip_build_side_by_side, {"targets-rocm"}, {"cuda-api-on-rocm", "rocm"},
     {"targets-rocm": "high"}),
    ("CUDA runtime on SYCL", cudart_on_sycl, {"cuda-api-on-sycl", "targets-sycl"}, set(),
     {"cuda-api-on-sycl": "high"}),
    ("SYCL build beside a CUDA build", sycl_build_side_by_side, {"targets-sycl"}, {"cuda-api-on-sycl", "sycl"},
     {"targets-sycl": "high"}),
    ("HIP runtime shipped", shipped("libamdhip64.so.6"), {"rocm"}, {"targets-rocm"}, {"rocm": "high"}),
    ("SYCL runtime shipped", shipped("libsycl.so.8"), {"sycl"}, {"targets-sycl"}, {"sycl": "high"}),
    ("MUSA runtime shipped", shipped("libmusart.so.4"), {"musa"}, {"targets-musa"}, {"musa": "medium"}),
    ("MACA runtime shipped", shipped("libmcruntime.so"), {"maca"}, {"targets-maca"}, {"maca": "low"}),
    ("linked against hipBLAS", linked("libhipblas.so.2"), {"targets-rocm"}, {"rocm"}, {"targets-rocm": "high"}),
    ("linked against SYCL", linked("libsycl.so.8"), {"targets-sycl"}, {"sycl"}, {"targets-sycl": "high"}),
    ("linked against MUSA", linked("libmusart.so.4"), {"targets-musa"}, {"musa"}, {"targets-musa": "medium"}),
    ("linked against MACA", linked("libmcruntime.so"), {"targets-maca"}, {"maca"}, {"targets-maca": "low"}),
    ("nvcuda.dll naming amdhip64", nvcuda_dll_on_hip, {"ptx-jit-on-nonnvidia"}, set(),
     {"ptx-jit-on-nonnvidia": "high"}),
    ("nvcuda.dll without AMD imports", nvcuda_dll, set(), {"ptx-jit-on-nonnvidia", "cuda-api-on-rocm"}, {}),
    ("HIP runtime DLL shipped", amdhip_dll, {"rocm"}, set(), {"rocm": "medium"}),
    ("ZLUDA LD_PRELOAD launcher", zluda_preload, {"zluda"}, set(), {"zluda": "high"}),
    ("ZLUDA shim in the release tree", zluda_tree_shim, {"zluda"}, set(), {"zluda": "high"}),
    ("ZLUDA cache of translated modules", zluda_cache, {"zluda"}, set(), {"zluda": "high"}),
    ("another SQLite database", other_sqlite, set(), {"zluda"}, {}),
    ("ptxas without NVIDIA's notice", fake_ptxas, {"zluda"}, set(), {"zluda": "high"}),
    ("bitcode in a driver-named library", bitcode_libcuda, {"zluda"}, set(), {"zluda": "low"}),
    ("chipStar runtime shipped", shipped("libCHIP.so"), {"chipstar"}, set(), {"chipstar": "high"}),
    ("chipStar cucc", chipstar_cucc, {"chipstar"}, set(), {"chipstar": "high"}),
    ("gpuocelot shipped", shipped("libgpuocelot.so"), {"gpuocelot"}, set(), {"gpuocelot": "high"}),
    ("Ocelot strings", ocelot_strings, {"gpuocelot"}, set(), {"gpuocelot": "medium"}),
    ("CuPBoP runtime shipped", shipped("libCPUruntime.so"), {"cupbop"}, set(), {"cupbop": "high"}),
    ("SCALE runtime in its tree", shipped_named("libredscale.so", "opt/scale/targets/gfx1100/lib/libredscale.so"),
     {"scale"}, set(), {"scale": "high"}),
    ("cublas64 DLL naming rocblas", cublas_dll_on_rocblas, {"cuda-api-on-rocm"}, set(), {"cuda-api-on-rocm": "high"}),
    ("SYCL runtime DLL shipped", sycl_dll, {"sycl"}, set(), {"sycl": "medium"}),
    ("CPU-only library", cpu_only, set(), CATALOG, {}),
]


@pytest.mark.parametrize("case,build,present,absent,confidence", CASES, ids=[c[0] for c in CASES])
def test_layer_case(case, build, present, absent, confidence, stubs):
    vpath, target = build(stubs)
    got = named(vpath, target)
    layers = {name for name, m in got.items() if name in CATALOG}
    assert layers == present, case
    assert not layers & absent
    for name, level in confidence.items():
        assert got[name].confidence == level
        kind = signals.load_signals().layers[name].kind
        assert got[name].kind is kind
        assert all(e.startswith(signals.load_signals().layers[name].display + ": ") for e in got[name].evidence
                   if not e.startswith("named like NVIDIA"))


def test_every_catalog_entry_has_a_positive_and_a_negative_case():
    positive = set().union(*(c[2] for c in CASES))
    negative = set().union(*(c[3] for c in CASES if c[1] is not cpu_only))
    assert positive == CATALOG
    assert negative == CATALOG


def test_every_signal_fires_in_some_case(stubs):
    fired = set()
    for _case, build, *_ in CASES:
        for match in named(*build(stubs)).values():
            fired |= set(match.layer.signals if match.layer is not None else ())
    assert {s.id for s in signals.load_signals().signals} - fired == set()


def test_every_signal_has_a_public_source_and_known_layer():
    table = signals.load_signals()
    assert all(s.source.startswith("https://") and s.layer in table.layers for s in table.signals)
    kinds = {lay.kind for lay in table.layers.values()}
    assert kinds == {ComponentKind.OUTPUT_CONSUMER, ComponentKind.SOURCE_PORT, ComponentKind.API_REIMPLEMENTATION,
                     ComponentKind.RUNTIME_SHIPPED, ComponentKind.TARGET_LINKED}


def test_zluda_libcuda_replaces_the_nvidia_driver_name(stubs):
    vpath, lib = zluda_libcuda(stubs)
    got = named(vpath, lib)
    assert "cuda-driver" not in got
    zluda = got["zluda"]
    layer = zluda.layer
    assert layer.replaces is True and layer.platform == "ROCm"
    assert layer.project == "https://github.com/vosen/ZLUDA"
    # the generic drop-in signal is explained by ZLUDA: its evidence moves to ZLUDA's match
    assert set(layer.signals) == {"zluda-strings", "cuda-named-without-soname",
                                                 "driver-named-imports-nonnvidia", "cuda-named-imports-rocm",
                                                 "cuda-exports-on-hip"}
    assert any("DT_NEEDED libamdhip64.so.6" in e for e in zluda.evidence)
    assert any("defines cuInit; imports hipInit" in e for e in zluda.evidence)
    assert any("named like NVIDIA NVIDIA CUDA driver (libcuda)" in e for e in zluda.evidence)
    target = got["targets-rocm"]
    assert target.kind is ComponentKind.TARGET_LINKED
    assert dict(component_properties(target.to_component("", ())))["relation"] == "targets"
    assert target.evidence == ("targets ROCm: links against ROCm (DT_NEEDED / PE import) [rocm-needed, high]: "
                               "DT_NEEDED libamdhip64.so.6",)


def test_dropin_libcuda_is_not_nvidias_driver(stubs):
    got = named(*dropin_libcuda(stubs))
    assert "cuda-driver" not in got
    loader = got["ptx-jit-on-nonnvidia"]
    assert loader.layer.replaces is True and loader.kind is ComponentKind.OUTPUT_CONSUMER
    # the exported-API signal is explained by the driver stand-in and kept as its evidence
    assert any("defines cuDeviceGetCount, cuInit; imports hipInit" in e for e in loader.evidence)


def test_dropin_libcublas_is_not_nvidias_cublas(stubs):
    got = named(*dropin_libcublas(stubs))
    assert "cublas" not in got
    assert got["cuda-api-on-rocm"].layer.replaces is True


def test_ptx_loader_evidence(stubs):
    got = named(*ptx_loader(stubs))
    (line,) = [e for e in got["ptx-jit-on-nonnvidia"].evidence if "[ptx-loader-on-nonnvidia, high]" in e]
    assert "DT_NEEDED libamdhip64.so.6; defines cuModuleLoadData; '.address_size' at" in line


def test_shipped_runtime_is_not_also_a_target(stubs):
    got = named(*shipped("libamdhip64.so.6")(stubs))
    rocm = got["rocm"]
    assert rocm.kind is ComponentKind.RUNTIME_SHIPPED
    assert dict(component_properties(rocm.to_component("", ())))["relation"] == "ships"
    assert {"rocm-soname", "rocm-hip-exports"} == set(rocm.layer.signals)


def test_dynamic_symbols_reader(stubs):
    _, lib = cudart_on_sycl(stubs)
    symbols = signals.dynamic_symbols(lib.read_bytes())
    assert {"cudaDeviceSynchronize", "cudaMalloc"} <= symbols.defined
    assert "_ZN4sycl3_V15queue4waitEv" in symbols.undefined
    assert "cudaMalloc" not in symbols.undefined
    assert signals.dynamic_symbols(b"\x7fELF" + b"\0" * 60) == signals.DynamicSymbols(frozenset(), frozenset())
    assert signals.dynamic_symbols(lib.read_bytes()[:200]).defined == frozenset()  # truncated: nothing, no error


def test_dynamic_symbols_on_hostile_headers(stubs):
    """Every byte of the ELF header and of the section header table overwritten in turn (0x00 and 0xff): the
    reader returns what it could read and never raises."""
    import struct

    _, lib = cudart_on_sycl(stubs)
    good = lib.read_bytes()
    shoff, = struct.unpack_from("<Q", good, 0x28)
    shnum, = struct.unpack_from("<H", good, 0x3C)
    offsets = list(range(64)) + list(range(shoff, shoff + 64 * shnum, 7))
    for at in offsets:
        for value in (0x00, 0xFF):
            data = bytearray(good)
            data[at] = value
            symbols = signals.dynamic_symbols(bytes(data))
            assert isinstance(symbols, signals.DynamicSymbols)
            assert signals.detect("lib/libcudart_sycl.so", None, bytes(data)) is not None


# ------------------------------------------------------------------- one library per build, its own evidence


def _audit(root: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "--format", "json", str(root)],
                          capture_output=True, text=True, cwd=root.parent)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_targets_carry_each_files_own_dependencies(tmp_path, stubs):
    """issue 15 item 4: two HIP builds that need different hipBLAS sonames, and a SYCL build, are reported as
    targets of ROCm / oneAPI -- not as shipped runtimes -- each with its own DT_NEEDED entries as evidence."""
    dist = tmp_path / "dist"
    dist.mkdir()
    for name, lib in (("libk_rocm64.so", "libhipblas.so.2"), ("libk_rocm72.so", "libhipblas.so.3")):
        so(dist, name, "int k(void){return 0;}", libs=[stubs.lib(lib)], libdir=stubs.folder)
    so(dist, "libk_xpu.so", "int k(void){return 0;}", libs=[stubs.lib("libsycl.so.8")], libdir=stubs.folder)
    report = _audit(dist)
    comps = {c["name"]: c for c in report["components"]}
    assert {k: comps[k]["kind"] for k in comps} == {"targets-rocm": "target-linked", "targets-sycl": "target-linked"}
    rocm = comps["targets-rocm"]
    assert rocm["paths"] == [f"{dist}/libk_rocm64.so", f"{dist}/libk_rocm72.so"]
    assert rocm["properties"]["relation"] == "targets" and rocm["properties"]["confidence"] == "high"
    assert [e for e in rocm["evidence"] if "libk_rocm64" in e] == [
        f"{dist}/libk_rocm64.so: targets ROCm: links against ROCm (DT_NEEDED / PE import) [rocm-needed, high]: "
        "DT_NEEDED libhipblas.so.2"]
    assert [e for e in rocm["evidence"] if "libk_rocm72" in e] == [
        f"{dist}/libk_rocm72.so: targets ROCm: links against ROCm (DT_NEEDED / PE import) [rocm-needed, high]: "
        "DT_NEEDED libhipblas.so.3"]


def test_component_confidence_is_its_best_files_and_signals_their_union(tmp_path, stubs):
    """One layer named in two files at different confidences: the component says high, and lists both files'
    signals (a report keeps one value per property)."""
    dist = tmp_path / "dist"
    (dist / "a").mkdir(parents=True)
    (dist / "b").mkdir()
    _, high = zluda_libcuda(stubs)
    _, low = bitcode_libcuda(stubs)
    (dist / "a" / "libcuda.so.1").write_bytes(high.read_bytes())
    (dist / "b" / "libcuda.so.1").write_bytes(low.read_bytes())
    report = _audit(dist)
    (zluda,) = [c for c in report["components"] if c["name"] == "zluda"]
    assert len(zluda["paths"]) == 2 and zluda["properties"]["confidence"] == "high"
    assert set(zluda["properties"]["signals"].split(",")) == {
        "zluda-strings", "cuda-named-without-soname", "driver-named-imports-nonnvidia", "cuda-named-imports-rocm",
        "cuda-exports-on-hip", "zluda-bitcode-in-driver-named"}


def test_layers_in_a_wheel_keep_what_the_bytes_showed(tmp_path, stubs):
    """A wheel's METADATA and RECORD come after its libraries, so its members are observed while their bytes are
    held and named once after the walk: a layer keeps the signals and confidence its bytes gave, and a drop-in
    proven by content keeps NVIDIA's name match out."""
    from tests.inventory_builders import record_line, zip_bytes

    libs = {"pkg/libcuda.so.1": zluda_libcuda(stubs)[1].read_bytes(),
            "pkg/cublas64_12.dll": cublas_dll_on_rocblas(stubs)[1]}
    info = "pkg-1.0.dist-info"
    files = dict(libs)
    files[f"{info}/METADATA"] = b"Metadata-Version: 2.4\nName: pkg\nVersion: 1.0\n"
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: py3-none-any\n"
    files[f"{info}/RECORD"] = ("\n".join(record_line(k, v) for k, v in files.items()) + f"\n{info}/RECORD,,\n").encode()
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "pkg-1.0-py3-none-any.whl").write_bytes(zip_bytes(list(files.items())))
    report = _audit(dist)
    comps = {c["name"]: c for c in report["components"] if c["kind"] != "python-distribution"}
    assert set(comps) == {"zluda", "targets-rocm", "cuda-api-on-rocm"}  # no cuda-driver, no cublas
    assert comps["zluda"]["properties"]["confidence"] == "high"
    assert "zluda-strings" in comps["zluda"]["properties"]["signals"].split(",")
    assert comps["cuda-api-on-rocm"]["properties"]["replaces"] == "cuda-named"


def test_rule_facts_carry_each_paths_own_evidence():
    from licscan.rules.facts import build

    doc = {"inputs": ["dist"], "components": [{
        "id": "target-linked:amd/targets-rocm@unknown", "name": "targets-rocm", "vendor": "AMD",
        "kind": "target-linked", "version": None, "license": None, "paths": ["dist/a.so", "dist/b.so"],
        "evidence": ["dist/a.so: targets ROCm: DT_NEEDED libhipblas.so.2",
                     "dist/b.so: targets ROCm: DT_NEEDED libhipblas.so.3"], "properties": {}}],
        "device_code": [], "distributions": []}
    facts = {f.path: f.evidence for f in build(doc).facts if f.scope == "component"}
    assert facts == {"dist/a.so": ("targets ROCm: DT_NEEDED libhipblas.so.2",),
                     "dist/b.so": ("targets ROCm: DT_NEEDED libhipblas.so.3",)}
