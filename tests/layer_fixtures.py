"""Inputs for the layer-catalog tests, built with gcc from a few lines of our own C (no ZLUDA, SCALE, chipStar or
vendor runtime binary is needed): stub runtimes that declare the SONAME and define the entry points of the real
ones, and libraries shaped like each layer -- a drop-in ``libcuda`` exporting ``cuInit`` backed by HIP, a
PTX-consuming module loader, a ``.so`` exporting CUDA runtime symbols that imports ``libsycl`` -- each with a
near miss beside it. C++ symbol names are given with asm labels (``int f(void) __asm__("_ZN4sycl...")``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HAVE_GCC = shutil.which("gcc") is not None


def so(folder: Path, name: str, body: str, soname: str | None = None, libs=(), runpath: str | None = None,
       shared: bool = True, libdir: Path | None = None) -> Path:
    """Compile ``body`` into ``folder/name`` (a shared library unless ``shared`` is False), linking ``libs``
    (file names in ``libdir``, default ``folder``) as DT_NEEDED entries."""
    if not HAVE_GCC:
        pytest.skip("gcc not installed")
    src = folder / f"{name}.c"
    src.write_text(body + "\n")
    out = folder / name
    cmd = ["gcc", "-o", str(out), str(src), f"-L{libdir or folder}"]
    if shared:
        cmd[1:1] = ["-shared", "-fPIC"]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if runpath:
        cmd.append(f"-Wl,--enable-new-dtags,-rpath,{runpath}")
    cmd += ["-Wl,--no-as-needed"] + [f"-l:{lib}" for lib in libs]
    subprocess.run(cmd, check=True, capture_output=True)
    src.unlink()
    return out


class Stubs:
    """Stub runtimes in one folder, built on first use."""

    def __init__(self, folder: Path):
        self.folder = folder

    def lib(self, name: str) -> str:
        if not (self.folder / name).exists():
            body, soname, libs = STUBS[name]
            for dep in libs:
                self.lib(dep)
            so(self.folder, name, body, soname, libs)
        return name


STUBS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "libhsa-runtime64.so.1": ("int hsa_init(void){return 0;}", "libhsa-runtime64.so.1", ()),
    "libamdhip64.so.6": ("extern int hsa_init(void); int hipInit(unsigned f){return hsa_init();}"
                         "int hipModuleLaunchKernel(void){return 0;} int hipModuleLoadData(void **m, const void *i)"
                         "{return 0;} int hipMalloc(void **p, unsigned long n){return 0;}",
                         "libamdhip64.so.6", ("libhsa-runtime64.so.1",)),
    "libhipblas.so.2": ("extern int hipInit(unsigned); int hipblasCreate(void **h){return hipInit(0);}",
                        "libhipblas.so.2", ("libamdhip64.so.6",)),
    "libhipblas.so.3": ("extern int hipInit(unsigned); int hipblasCreate(void **h){return hipInit(0);}",
                        "libhipblas.so.3", ("libamdhip64.so.6",)),
    "libsycl.so.8": ('int q_wait(void) __asm__("_ZN4sycl3_V15queue4waitEv"); int q_wait(void){return 0;}',
                     "libsycl.so.8", ()),
    "libcudart.so.12": ("int cudaMalloc(void **p, unsigned long n){return 0;}", "libcudart.so.12", ()),
    "libredscale.so": ("int rs(void){return 0;}", "libredscale.so", ()),
    "librocblas.so.4": ("int rocblas_initialize(void){return 0;}", "librocblas.so.4", ()),
    "libCHIP.so": ("int __hipRegisterFatBinary(void){return 0;}", "libCHIP.so", ()),
    "libgpuocelot.so": ("int ocelot_emulate(void){return 0;}", "libgpuocelot.so", ()),
    "libCPUruntime.so": ("int cupbop_launch(void){return 0;}", "libCPUruntime.so", ()),
    "libmusart.so.4": ("int musaMalloc(void **p, unsigned long n){return 0;}", "libmusart.so.4", ()),
    "libmcruntime.so": ("int mcMalloc(void **p, unsigned long n){return 0;}", "libmcruntime.so", ()),
}

PTX_DIRECTIVES = 'const char *ptx_directives[] = {".version", ".target", ".address_size", ".entry", ".reg"};'
