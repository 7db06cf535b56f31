"""The NVIDIA component catalog (rules/catalog/nvidia.yaml) and licence-text fingerprints
(rules/catalog/license-texts.yaml), through licscan.identify.catalog.identify and licensetext."""
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import realworld_enabled

from licscan.binary.inspect import inspect_file
from licscan.identify import catalog
from licscan.identify.catalog import VersionSource, identify
from licscan.identify.licensetext import identify_license_text
from licscan.inventory.items import Distribution, Ecosystem
from licscan.model import ComponentKind, ElfFacts, FileFacts, FileFormat, Modification

CUDA = Path("/usr/local/cuda")

# (file name, component, version, version_range, modifications)
NAMES = [
    ("libcudart.so.12", "cudart", None, "12.x", ()),
    ("libcudart.so.11.0", "cudart", None, "11.x", ()),
    ("libcudart.so.12.4.127", "cudart", "12.4.127", None, ()),
    ("libcudart-9a4b3c2d.so.12", "cudart", None, "12.x", ("auditwheel-grafted",)),
    ("libcudart_static.a", "cudart", None, None, ()),
    ("libcudadevrt.a", "cudart", None, None, ()),
    ("cudart64_12.dll", "cudart", None, "12.x", ()),
    ("cudart64_110.dll", "cudart", None, "11.x", ()),
    ("libcublas.so.12", "cublas", None, "12.x", ()),
    ("libcublas.so.12.9.1.4", "cublas", "12.9.1.4", None, ()),
    ("libcublas-0e9b1c2a.so.12", "cublas", None, "12.x", ("auditwheel-grafted",)),
    ("libcublas_static.a", "cublas", None, None, ()),
    ("cublas64_12.dll", "cublas", None, "12.x", ()),
    ("libcublasLt.so.12", "cublasLt", None, "12.x", ()),
    ("cublasLt64_12.dll", "cublasLt", None, "12.x", ()),
    ("libnvblas.so.12", "nvblas", None, "12.x", ()),
    ("libcufft.so.11", "cufft", None, "11.x", ()),
    ("cufft64_11.dll", "cufft", None, "11.x", ()),
    ("libcufftw.so.11", "cufftw", None, "11.x", ()),
    ("libcurand.so.10", "curand", None, "10.x", ()),
    ("curand64_10.dll", "curand", None, "10.x", ()),
    ("libcusparse.so.12", "cusparse", None, "12.x", ()),
    ("libcusolver.so.11", "cusolver", None, "11.x", ()),
    ("libcusolverMg.so.11", "cusolverMg", None, "11.x", ()),
    ("cusolverMg64_11.dll", "cusolverMg", None, "11.x", ()),
    ("libnppc.so.12", "npp", None, "12.x", ()),
    ("libnppicc.so.12.3.1.54", "npp", "12.3.1.54", None, ()),
    ("npps64_12.dll", "npp", None, "12.x", ()),
    ("libnvjpeg.so.12", "nvjpeg", None, "12.x", ()),
    ("nvjpeg64_12.dll", "nvjpeg", None, "12.x", ()),
    # nvidia-nvjpeg2k-cu12 0.11.0.51: the 0 is the ABI, the release 0.11.0.51 (its METADATA, the DLL's FileVersion)
    ("libnvjpeg2k.so.0", "nvjpeg2k", None, None, ()),
    ("nvjpeg2k_0.dll", "nvjpeg2k", None, None, ()),
    ("libnvjpeg2k_static.a", "nvjpeg2k", None, None, ()),
    # NVIDIA's math libraries and nvTIFF on PyPI: the SONAME number is an ABI number, the release the wheel's
    ("libcusolverMp.so.0", "cusolvermp", None, None, ()),
    ("libcublasmp.so.0", "cublasmp", None, None, ()),
    ("libcufftMp.so.11", "cufftmp", None, None, ()),
    ("libmathdx.so.0", "mathdx", None, None, ()),
    # their Windows wheels (nvidia-libmathdx-cu12 0.3.1.9, nvidia-cudss-cu12 1.0.0.35, nvidia-libnvcomp-cu12 6.0.0.12
    # win_amd64): these were named nothing
    ("mathdx64_0.dll", "mathdx", None, None, ()),
    ("mathdx.lib", "mathdx", None, None, ()),
    ("cudss_mtlayer_vcomp14064_1.dll", "cudss", None, None, ()),
    ("cudss.lib", "cudss", None, None, ()),
    ("cudss_mtlayer_vcomp140.lib", "cudss", None, None, ()),
    ("nvcomp_cpu64_6.dll", "nvcomp", None, None, ()),
    ("nvcomp.lib", "nvcomp", None, None, ()),
    ("libnvtiff.so.0", "nvtiff", None, None, ()),
    ("nvTIFF_0.dll", "nvtiff", None, None, ()),
    # nvidia-cuda-sanitizer-api 13.5.25: the Sanitizer API libraries and the tool's injection libraries
    ("libsanitizer-public.so", "sanitizer-api", None, None, ()),
    ("sanitizer-collection.dll", "sanitizer-api", None, None, ()),
    ("libTreeLauncherTargetInjection.so", "compute-sanitizer", None, None, ()),
    ("InterceptorInjectionTarget.dll", "compute-sanitizer", None, None, ()),
    ("libnvrtc.so.12", "nvrtc", None, "12.x", ()),
    ("libnvrtc.alt.so.12", "nvrtc", None, "12.x", ()),
    ("nvrtc64_120_0.dll", "nvrtc", None, "12.x", ()),
    ("libnvrtc-builtins.so.12.4", "nvrtc-builtins", None, "12.4.x", ()),
    ("nvrtc-builtins64_124.dll", "nvrtc-builtins", None, "12.4.x", ()),
    ("libnvJitLink.so.12", "nvJitLink", None, "12.x", ()),
    ("nvJitLink_120_0.dll", "nvJitLink", None, "12.x", ()),
    ("libnvfatbin.so.12", "nvfatbin", None, "12.x", ()),
    ("libnvptxcompiler_static.a", "nvptxcompiler", None, None, ()),
    ("libnvvm.so.4", "nvvm", None, None, ()),
    ("nvvm64_40_0.dll", "nvvm", None, None, ()),
    ("libdevice.10.bc", "libdevice", None, None, ()),
    ("libcupti.so.12", "cupti", None, "12.x", ()),
    ("libcupti.so.11.7", "cupti", None, "11.7.x", ()),
    ("cupti64_2024.1.0.dll", "cupti", None, None, ()),
    ("libcheckpoint.so", "cupti", None, None, ()),
    ("libpcsamplingutil.so", "cupti", None, None, ()),
    ("libnvToolsExt.so.1", "nvtx", None, None, ()),
    ("nvToolsExt64_1.dll", "nvtx", None, None, ()),
    ("libnvtx3interop.so.1", "nvtx3interop", None, None, ()),
    ("libculibos.a", "culibos", None, None, ()),
    # ABI numbers (nvidia-cufile-cu12 1.14.1.1 ships libcufile.so.0 and libcufile_rdma.so.1): no release
    ("libcufile.so.0", "cufile", None, None, ()),
    ("libcufile_rdma.so.1", "cufile", None, None, ()),
    ("libcuobjclient.so.1", "cuobject", None, "1.x", ()),
    ("libcudnn.so.9", "cudnn", None, "9.x", ()),
    ("libcudnn_ops.so.9", "cudnn", None, "9.x", ()),
    ("libcudnn_engines_precompiled.so.9.1.0", "cudnn", "9.1.0", None, ()),
    ("libcudnn_cnn_infer.so.8", "cudnn", None, "8.x", ()),
    ("cudnn_ops64_9.dll", "cudnn", None, "9.x", ()),
    ("libnccl.so.2", "nccl", None, "2.x", ()),
    ("libnccl.so.2.21.5", "nccl", "2.21.5", None, ()),
    ("libnvinfer.so.10", "tensorrt", None, "10.x", ()),
    ("libnvinfer_plugin.so.10.4.0", "tensorrt", "10.4.0", None, ()),
    ("libnvonnxparser.so.10", "tensorrt", None, "10.x", ()),
    ("nvinfer_10.dll", "tensorrt", None, "10.x", ()),
    ("libcusparseLt.so.0", "cusparselt", None, "0.x", ()),
    ("libnvshmem_host.so.3", "nvshmem", None, "3.x", ()),
    ("nvshmem_bootstrap_uid.so.3", "nvshmem", None, "3.x", ()),
    ("libcudss.so.0", "cudss", None, "0.x", ()),
    ("libcutensor.so.2", "cutensor", None, "2.x", ()),
    ("libcustatevec.so.1", "custatevec", None, "1.x", ()), ("libcutensornet.so.2", "cutensornet", None, "2.x", ()),
    ("libnvcomp.so.4", "nvcomp", None, "4.x", ()),
    # driver user space: the suffix is the driver version, .so.1 is an ABI number
    ("libcuda.so.1", "cuda-driver", None, None, ()),
    ("libcuda.so.580.159.04", "cuda-driver", "580.159.04", None, ()),
    ("libcuda-984fdb42.so.570.133.07", "cuda-driver", "570.133.07", None, ("auditwheel-grafted",)),
    ("nvcuda.dll", "cuda-driver", None, None, ()),
    ("libnvidia-ml.so.580.159.04", "nvml", "580.159.04", None, ()),
    ("nvml.dll", "nvml", None, None, ()),
    ("cuda.lib", "cuda-driver-api-lib", None, None, ()),
    ("libnvidia-ptxjitcompiler.so.1", "ptxjitcompiler", None, None, ()),
    ("libnvidia-nvvm.so.4", "nvidia-nvvm-driver", None, None, ()),
    ("libnvcuvid.so.1", "nvcuvid", None, None, ()),
    ("libnvidia-encode.so.580.159.04", "nvidia-encode", "580.159.04", None, ()),
    ("libcudadebugger.so.1", "cudadebugger", None, None, ()),
    ("libGLX_nvidia.so.0", "nvidia-driver-gl", None, None, ()),
    ("libEGL_nvidia.so.580.159.04", "nvidia-driver-gl", "580.159.04", None, ()),
    ("libnvidia-opencl.so.1", "nvidia-driver-lib", None, None, ()),
    ("libnvidia-gpucomp.so.580.159.04", "nvidia-driver-lib", "580.159.04", None, ()),
    ("nvidia-smi", "nvidia-driver-tools", None, None, ()),
    ("nvidia-smi.exe", "nvidia-driver-tools", None, None, ()),
    ("nvcudart_hybrid64.dll", "cudart-hybrid", None, None, ()),
    # developer tools by name
    ("nvcc", "nvcc", None, None, ()), ("nvcc.exe", "nvcc", None, None, ()),
    ("ptxas", "ptxas", None, None, ()), ("ptxas-blackwell", "ptxas", None, None, ()),
    ("cicc", "cicc", None, None, ()), ("nvlink", "nvlink", None, None, ()),
    ("fatbinary", "fatbinary", None, None, ()), ("cuobjdump", "cuobjdump", None, None, ()),
    ("nvdisasm", "nvdisasm", None, None, ()), ("cuda-gdb", "cuda-gdb", None, None, ()),
    ("compute-sanitizer", "compute-sanitizer", None, None, ()), ("nsys", "nsight-systems", None, None, ()),
    ("ncu", "nsight-compute", None, None, ()), ("cudafe++", "cudafe", None, None, ()),
    ("bin2c", "bin2c", None, None, ()), ("nvprune", "nvprune", None, None, ()),
    ("cu++filt", "cu++filt", None, None, ()), ("nvprof", "nvprof", None, None, ()),
    # kernel modules
    ("nvidia.ko", "nvidia-kernel-module", None, None, ()),
    ("nvidia-uvm.ko.xz", "nvidia-kernel-module", None, None, ()),
    ("nvidia-drm.ko.zst", "nvidia-kernel-module", None, None, ()),
    ("nvidia-peermem.ko", "nvidia-kernel-module", None, None, ()),
    ("nvidia-modeset.ko", "nvidia-kernel-module", None, None, ()),
    ("nv-kernel.o_binary", "nvidia-kernel-object", None, None, ()),
    ("nv-modeset-kernel.o_binary", "nvidia-kernel-object", None, None, ()),
    ("nv-kernel.o", "nvidia-kernel-object", None, None, ()),
]


@pytest.mark.parametrize("name,component,version,version_range,mods", NAMES, ids=[n[0] for n in NAMES])
def test_names(name, component, version, version_range, mods):
    (match,) = [m for m in identify(f"dist/x.whl!/pkg/{name}", None, None, None) if m.vendor == "NVIDIA"]
    assert (match.name, match.version, match.version_range, match.modifications) == (
        component, version, version_range, tuple(Modification(m) for m in mods))
    assert match.vendor == "NVIDIA" and match.license


def test_every_catalog_entry_is_exercised():
    assert {e.name for e in catalog.load_catalog().entries} <= {n[1] for n in NAMES}


@pytest.mark.parametrize("name", ["libcudart.so.12.bak", "libcuda_stub.txt", "libtorch_cuda.so", "libc10_cuda.so",
                                  "libcudnn_frontend.h", "cuda.h", "libnvidia.so.1x", "libcublas.so.12.py",
                                  "numpy.libs/libopenblas64_p-r0-0cf96a72.3.23.dev.so"])
def test_non_nvidia_names(name):
    assert identify(name, None, None, None) == ()


def _name_corpus() -> list[str]:
    """Names to hold each union against the patterns it stands for: the catalog's named files and the non-NVIDIA
    names above, each also upper-cased, with a suffix, a prefix, an auditwheel graft, a version, a static suffix."""
    base = [n[0] for n in NAMES] + ["libcudart.so.12.bak", "libcuda_stub.txt", "libtorch_cuda.so", "libcufft.dylib",
                                    "libcufft.12.dylib", "libcudart_static_nocallback.a", "libnvrtc.alt.so.12",
                                    "libnvptxcompiler_static.a", "nvptxcompiler_static.lib", "libcuda.so", "lib.so"]
    out = set()
    for name in base:
        stem, dot, ext = name.partition(".")
        out |= {name, name.upper(), name.lower(), name + ".1", name + ".bak", "x" + name, name[1:], name[:-1],
                f"{stem}-0123abcd.{ext}" if dot else name + "-0123abcd", f"{stem}_static.a", f"{stem}.so.12.4.127",
                f"{stem}.so.x", f"{stem}64_12.dll", f"{stem}.LIB"}
    return sorted(out)


def test_unions_match_the_names_their_patterns_match():
    # Catalog.any_name and Entry.names join the patterns' texts (the `linux` stems factored: lib(?:S1|S2|...) and
    # the stem suffixes); they must match exactly the names the patterns, compiled one by one, do.
    cat = catalog.load_catalog()
    names = _name_corpus()
    for entry in cat.entries:
        want = [n for n in names if any(p.regex.fullmatch(n) for p in entry.patterns)]
        assert [n for n in names if entry.names.fullmatch(n)] == want, entry.name
        assert all(entry.first_match(n) is not None for n in want)
    want = [n for n in names if any(p.regex.fullmatch(n) for e in cat.entries for p in e.patterns)]
    assert [n for n in names if cat.any_name.fullmatch(n)] == want
    assert "libcudart-0123abcd.so.12" in want and "CUDART64_12.DLL" in want and "libtorch_cuda.so" not in want
    # Every expected SONAME is a name the union matches (the SONAME test is skipped for any other).
    sonames = [n for n in names for e in cat.entries if e.soname is not None and e.soname.fullmatch(n)]
    assert sonames and all(cat.any_name.fullmatch(n) for n in sonames)


def test_licences_and_kinds():
    by = {n[0]: identify(n[0], None, None, None, with_signals=False)[0] for n in NAMES}
    assert by["libcudart.so.12"].license == "LicenseRef-NVIDIA-CUDA-EULA"
    assert by["libcudnn.so.9"].license == "LicenseRef-NVIDIA-cuDNN-SLA"
    assert by["libnccl.so.2"].license == "BSD-3-Clause"
    assert by["libnvinfer.so.10"].license == "LicenseRef-NVIDIA-TensorRT-SLA"
    assert by["libnvtx3interop.so.1"].license == "Apache-2.0 WITH LLVM-exception"
    assert by["libcuda.so.1"].license == "LicenseRef-NVIDIA-Driver"
    assert by["libcuda.so.1"].kind is ComponentKind.DRIVER
    assert by["ptxas"].kind is ComponentKind.DEVELOPER_TOOL
    assert by["nvidia.ko"].kind is ComponentKind.KERNEL_MODULE


def _elf(soname=None, needed=(), runpath=(), elf_type="ET_DYN", symtab=False):
    return FileFacts("x", FileFormat.ELF, 100, elf=ElfFacts(elf_type, "EM_X86_64", soname, tuple(needed),
                                                             tuple(runpath), (), symtab, None))


def _dist(name, version, declared="LicenseRef-NVIDIA-Proprietary", files=(), eco=Ecosystem.PYPI):
    return Distribution(f"{name}.whl", eco, name, version, "", license_declared=declared, files=tuple(files))


def test_version_order_of_trust_and_distribution_scope():
    facts = _elf("libcublas.so.12")
    (m,) = identify("w.whl!/nvidia/cublas/lib/libcublas.so.12", facts, _dist("nvidia-cublas-cu12", "12.9.1.4"))
    assert (m.version, m.version_source) == ("12.9.1.4", VersionSource.DISTRIBUTION)
    assert m.license_declared == "LicenseRef-NVIDIA-Proprietary" and m.license == "LicenseRef-NVIDIA-CUDA-EULA"
    assert "declared: LicenseRef-NVIDIA-Proprietary (by nvidia-cublas-cu12 12.9.1.4)" in m.evidence
    # the full file name beats the wheel
    (m,) = identify("w.whl!/libcublas.so.12.9.0.13", facts, _dist("nvidia-cublas-cu12", "12.9.1.4"))
    assert (m.version, m.version_source) == ("12.9.0.13", VersionSource.FILE_NAME)
    # a grafted copy inside torch: torch's version is not cuBLAS's
    (m,) = identify("t.whl!/torch.libs/libcublas-0e9b1c2a.so.12", _elf("libcublas-0e9b1c2a.so.12"),
                    _dist("torch", "2.14.1", declared="BSD-3-Clause"))
    assert m.version is None and m.version_range == "12.x"
    assert set(m.modifications) == {Modification.AUDITWHEEL_GRAFTED, Modification.SONAME_REWRITTEN}
    assert m.license_declared == "BSD-3-Clause"
    # a wheel version that contradicts the SONAME is not taken
    (m,) = identify("w.whl!/libcudart.so.12", _elf("libcudart.so.12"), _dist("nvidia-cuda-runtime", "13.0.96"))
    assert m.version is None and any("conflict" in e for e in m.evidence)
    # Debian metadata
    (m,) = identify("x.deb!/usr/lib/x86_64-linux-gnu/libcudart.so.11.0", _elf("libcudart.so.11.0"),
                    _dist("libcudart11.0", "11.2.152~11.2.2-3+deb11u3", eco=Ecosystem.DEBIAN))
    assert (m.version, m.version_source) == ("11.2.152", VersionSource.DEBIAN)
    # Debian trixie's libcurand10 "11.1.1+~10.3.5.147~12.4.1-2": the "+~" prefix only sorts it higher; cuRAND
    # 10.3.5.147 (was 11.1.1, contradicting the SONAME: 10.x)
    (m,) = identify("x.deb!/usr/lib/x86_64-linux-gnu/libcurand.so.10", _elf("libcurand.so.10"),
                    _dist("libcurand10", "11.1.1+~10.3.5.147~12.4.1-2", eco=Ecosystem.DEBIAN))
    assert (m.version, m.version_source, m.version_range) == ("10.3.5.147", VersionSource.DEBIAN, None)
    assert "distribution libcurand10 10.3.5.147 (control)" in "; ".join(m.evidence)
    # Debian's nvidia-cuda-gdb 12.4.127~12.4.1-2: the binaries state no version; the package does (was unknown)
    (m,) = identify("x.deb!/usr/bin/cuda-gdb", _elf(elf_type="ET_EXEC"),
                    _dist("nvidia-cuda-gdb", "12.4.127~12.4.1-2", eco=Ecosystem.DEBIAN))
    assert (m.name, m.version, m.version_source) == ("cuda-gdb", "12.4.127", VersionSource.DEBIAN)


@pytest.mark.parametrize("version, part", [
    ("11.2.152~11.2.2-3+deb11u3", "11.2.152"), ("11.8.89~11.8.0-5~deb12u1", "11.8.89"),
    ("11.1.1+~10.3.5.147~12.4.1-2", "10.3.5.147"), ("11.1.1+~10.2.3.152~11.2.2-3+deb11u3", "10.2.3.152"),
    ("12.4.127~12.4.1-8.2+b1", "12.4.127"), ("550.163.01-2", "550.163.01"), ("12.4.1-2", "12.4.1"),
    ("1:2.3-1", "2.3"), ("2.0", "2.0")])
def test_debian_part_version(version, part):
    from licscan.identify.versions import debian_part_version

    assert debian_part_version(version) == part


def test_the_ptx_compiler_wheel_gives_its_version():
    # nvidia-nvptxcompiler (13.0.48 to 13.5.37 on PyPI; no -cuNN name) ships the static PTX compiler alone: the
    # archive's name says no release, the wheel's METADATA does (before, the catalog did not list the wheel: version
    # unknown, and with it which CUDA EULA text governs it).
    vpath = "nvidia_nvptxcompiler-13.4.92-py3-none-manylinux2014_x86_64.whl!/nvidia/cu13/lib/libnvptxcompiler_static.a"
    (m,) = identify(vpath, None, _dist("nvidia-nvptxcompiler", "13.4.92"))
    assert (m.name, m.display, m.kind, m.license, m.version, m.version_source, m.distribution) == (
        "nvptxcompiler", "nvPTXCompiler", ComponentKind.SDK_LIBRARY, "LicenseRef-NVIDIA-CUDA-EULA", "13.4.92",
        VersionSource.DISTRIBUTION, "nvidia-nvptxcompiler")
    assert m.license_declared == "LicenseRef-NVIDIA-Proprietary"
    # A wheel of another name is no source of its version.
    (m,) = identify(vpath, None, _dist("nvidia-nvptxcompiler-extra", "13.4.92"))
    assert (m.name, m.version, m.version_source) == ("nvptxcompiler", None, None)


def test_modified_copy_facts():
    (m,) = identify("w.whl!/nvidia/cuda_runtime/lib/libcudart.so.12", _elf(None), None)
    assert m.modifications == (Modification.SONAME_MISSING,)
    (m,) = identify("renamed.so", _elf("libcudnn.so.9"), None)
    assert m.name == "cudnn" and "SONAME 'libcudnn.so.9'" in m.evidence[0]
    dist = _dist("nvidia-cuda-runtime-cu12", "12.4.127", files=[("w.whl!/lib/libcudart.so.12", "ab" * 32)])
    (m,) = identify("w.whl!/lib/libcudart.so.12", _elf("libcudart.so.12"), dist, sha256="cd" * 32)
    assert Modification.SHA256_DIFFERS in m.modifications
    (m,) = identify("w.whl!/lib/libcudart.so.12", _elf("libcudart.so.12"), dist, sha256="ab" * 32)
    assert m.modifications == ()


# ------------------------------------------------------------------------------------------- kernel modules

MODINFO_C = r'''
__attribute__((section(".modinfo"), used)) static const char a[] = "license=%s";
__attribute__((section(".modinfo"), used)) static const char b[] = "version=580.159.04";
__attribute__((section(".modinfo"), used)) static const char c[] = "srcversion=0123456789ABCDEF";
__attribute__((section(".modinfo"), used)) static const char d[] = "vermagic=6.1.0-28-amd64 SMP preempt mod_unload modversions";
int init_module(void) { return 0; }
'''


def _ko(tmp_path, licence, name="nvidia.ko"):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    src = tmp_path / "mod.c"
    src.write_text(MODINFO_C % licence)
    out = tmp_path / name
    subprocess.run(["gcc", "-c", "-O0", str(src), "-o", str(out)], check=True)
    return out


@pytest.mark.parametrize("licence,spdx,flavour", [("Dual MIT/GPL", "MIT OR GPL-2.0-only", "open"),
                                                  ("NVIDIA", "LicenseRef-NVIDIA-Driver", "proprietary")])
def test_kernel_module_licence_from_modinfo(tmp_path, licence, spdx, flavour):
    path = _ko(tmp_path, licence)
    facts = inspect_file(str(path))
    (m,) = identify(f"img.tar!/lib/modules/6.1.0/kernel/drivers/video/{path.name}", facts, None, path.read_bytes())
    assert (m.kind, m.license, m.version, m.version_source) == (
        ComponentKind.KERNEL_MODULE, spdx, "580.159.04", VersionSource.MODINFO)
    assert (m.flavour, m.modinfo.license, m.module) == (flavour, licence, "nvidia")


@pytest.mark.parametrize("suffix", ["xz", "zst", "gz"])
def test_compressed_kernel_module(tmp_path, suffix):
    import gzip
    import lzma

    import zstandard

    raw = _ko(tmp_path, "Dual MIT/GPL").read_bytes()
    packed = {"xz": lambda b: lzma.compress(b, format=lzma.FORMAT_XZ), "gz": gzip.compress,
              "zst": lambda b: zstandard.ZstdCompressor().compress(b)}[suffix](raw)
    (m,) = identify(f"lib/modules/nvidia-uvm.ko.{suffix}", None, None, packed)
    assert (m.license, m.version) == ("MIT OR GPL-2.0-only", "580.159.04")


# The "nvidia id:" lines of the kernel objects of Debian trixie's nvidia-kernel-dkms (NVIDIA's prebuilt objects) and
# nvidia-open-kernel-dkms (built by Debian from the open sources) 550.163.01-2: (file, line, licence, flavour).
KERNEL_OBJECTS = [
    ("nvidia/nv-kernel.o_binary", "NVIDIA UNIX x86_64 Kernel Module  550.163.01  Tue Apr  8 12:41:17 UTC 2025",
     "LicenseRef-NVIDIA-Driver", "proprietary"),
    ("nvidia-modeset/nv-modeset-kernel.o_binary",
     "NVIDIA Kernel Mode Setting Driver for UNIX platforms  550.163.01  Tue Apr  8 12:09:34 UTC 2025",
     "LicenseRef-NVIDIA-Driver", "proprietary"),
    ("nvidia/nv-kernel.o_binary", "NVIDIA UNIX Open Kernel Module for x86_64  550.163.01  Release Build  "
     "(buildd@debian)  Mon Jul 21 21:45:24 UTC 2025", "MIT OR GPL-2.0-only", "open"),
    ("nvidia-modeset/nv-modeset-kernel.o_binary", "NVIDIA UNIX Open Kernel Mode Setting Driver for x86_64  "
     "550.163.01  Release Build  (buildd@debian)  Mon Jul 21 21:45:24 UTC 2025", "MIT OR GPL-2.0-only", "open"),
]


def kernel_object(tmp_path: Path, line: str) -> bytes:
    """A relocatable object holding the driver's "nvidia id:" line in .rodata, as nv-kernel.o_binary does (gcc),
    else the line alone in bytes."""
    if shutil.which("gcc") is None:
        return b"\x7fELF\x02\x01\x01" + b"\0" * 64 + b"nvidia id: " + line.encode() + b"\0"
    src = tmp_path / "nvid.c"
    src.write_text(f'__attribute__((used)) static const char id[] = "nvidia id: {line}";\n'
                   "int rm_init(void) { return 0; }\n")
    out = tmp_path / "nvid.o"
    subprocess.run(["gcc", "-c", "-O0", str(src), "-o", str(out)], check=True)
    return out.read_bytes()


@pytest.mark.parametrize("name,line,spdx,flavour", KERNEL_OBJECTS, ids=["nv-kernel", "nv-modeset", "open-nv-kernel",
                                                                        "open-nv-modeset"])
def test_kernel_object_licence_from_its_nvidia_id(tmp_path, name, line, spdx, flavour):
    """NVIDIA's prebuilt kernel objects (nv-kernel.o_binary: the driver, under the driver's licence) and those
    built from the open sources (MIT OR GPL-2.0-only) have no .modinfo: the "nvidia id:" line tells them apart. Both
    were named nothing in the sweep of December 7 (docs/census.md)."""
    data = kernel_object(tmp_path, line)
    vpath = f"nvidia-kernel-dkms.deb!/data.tar.xz!/usr/src/nvidia-current-550.163.01/{name}"
    (m,) = identify(vpath, inspect_file(str(tmp_path / "nvid.o")) if (tmp_path / "nvid.o").exists() else None,
                    None, data)
    assert (m.name, m.kind, m.license, m.flavour) == ("nvidia-kernel-object", ComponentKind.KERNEL_MODULE, spdx, flavour)
    assert (m.version, m.version_source) == ("550.163.01", VersionSource.MARKER)
    assert any(e.startswith("no .modinfo; nvidia id: ") and e.endswith(f"-> {spdx} ({flavour})") for e in m.evidence)


def test_kernel_object_without_an_nvidia_id_stays_the_drivers():
    data = b"\x7fELF\x02\x01\x01" + b"\0" * 256
    (m,) = identify("src/nvidia/nv-kernel.o", None, None, data)
    assert (m.name, m.license, m.flavour, m.version) == ("nvidia-kernel-object", "LicenseRef-NVIDIA-Driver", None, None)
    assert "module licence not read (no .modinfo license= field found)" in m.evidence
    assert identify("src/nvidia/nv-kernel.c", None, None, b"int x;\n") == ()


# ------------------------------------------------------------------------------------------- developer tools


def _tool(path: Path, display: str):
    data = path.read_bytes()
    return identify(display, inspect_file(str(path)), None, data)


@pytest.mark.skipif(not (CUDA / "bin" / "ptxas").exists(), reason="no local CUDA toolkit")
def test_renamed_local_ptxas_found_by_content(tmp_path):
    renamed = tmp_path / "helper-bin"
    shutil.copy(CUDA / "bin" / "ptxas", renamed)
    (m,) = _tool(renamed, "dist/tools/helper-bin")
    assert (m.name, m.kind, m.version, m.version_source) == ("ptxas", ComponentKind.DEVELOPER_TOOL, "13.0.88",
                                                             VersionSource.MARKER)
    assert any("Ptx optimizing assembler" in e for e in m.evidence)


@pytest.mark.skipif(not (CUDA / "bin" / "nvlink").exists(), reason="no local CUDA toolkit")
@pytest.mark.parametrize("tool", ["nvlink", "fatbinary", "nvcc", "bin2c", "cudafe++"])
def test_local_tools_by_content(tmp_path, tool):
    renamed = tmp_path / "x"
    shutil.copy(CUDA / "bin" / tool, renamed)
    (m,) = _tool(renamed, "x")
    assert (m.name, m.version) == ({"cudafe++": "cudafe"}.get(tool, tool), "13.0.88")


@pytest.mark.skipif(not (CUDA / "lib64" / "libnvvm.so.4").exists(), reason="no local CUDA toolkit")
def test_local_libnvvm_marker():
    path = CUDA / "lib64" / "libnvvm.so.4"
    (m,) = identify("lib/libnvvm.so.4", inspect_file(str(path)), None, path.read_bytes())
    assert (m.name, m.version, m.version_source) == ("nvvm", "13.0.88", VersionSource.MARKER)


@pytest.mark.skipif(not (CUDA / "lib64" / "libcudart.so.13").exists(), reason="no local CUDA toolkit")
def test_local_libcudart_no_modifications():
    path = CUDA / "lib64" / "libcudart.so.13"
    (m,) = identify("lib/libcudart.so.13", inspect_file(str(path)), None, path.read_bytes())
    assert (m.name, m.version_range, m.modifications) == ("cudart", "13.x", ())


# ------------------------------------------------------------------------------------------- licence texts


@pytest.mark.skipif(not (CUDA / "dist-info").exists(), reason="no local CUDA 13.0 wheels")
def test_license_text_of_installed_wheels():
    texts = sorted((CUDA / "dist-info").glob("*/licenses/License.txt"))
    assert texts
    for path in texts:
        m = identify_license_text(str(path), path.read_bytes())
        if "nvtx" in str(path):
            assert m.document == "apache-2.0" and m.method == "sha256"
            continue
        assert (m.document, m.date, m.method, m.translation_clause) == (
            "nvidia-sdk-eula-2018", "2018-07-26", "sha256", False)


def test_license_text_phrases_and_normalisation():
    text = b"End User License Agreement\n  ----\n Last updated: October 8, 2021.\n ... samples are now located in\n https://github.com/nvidia/cuda-samples ... 8. You may not reverse engineer, decompile or disassemble any\n portion of the output generated using SDK elements for the purpose of translating such output artifacts\n to target a non-NVIDIA platform."
    m = identify_license_text("usr/share/doc/libcudart12/copyright", text)
    assert (m.document, m.method, m.translation_clause, m.variant) == (
        "cuda-eula-2021-10-08", "phrases", True, "samples-on-github")
    m = identify_license_text("EULA.txt", b"Last updated: Nov 2, 2020.")
    assert (m.document, m.translation_clause) == ("cuda-eula-2020-11-02", False)
    assert identify_license_text("EULA.txt", b"MIT License\nPermission is hereby granted") is None
    assert identify_license_text("libcudart.so.12", b"Last updated: Nov 2, 2020.") is None
    import gzip

    m = identify_license_text("EULA.txt.gz", gzip.compress(b"Last updated: January 12, 2024."))
    assert m.document == "cuda-eula-2024-01-12"


# ------------------------------------------------------------------------------------------- real NVIDIA wheels


def _wheel(request, dist, version, member):
    from nvidia_wheels import WHEELS, Unavailable, Wheel, fetch

    key = f"catalog:{dist}=={version}:{member}"
    WHEELS.setdefault(key, Wheel(dist, version, member, f"{dist}-{version}-{member.replace('/', '_')}"))
    from oracle import cache_dir

    target = cache_dir() / WHEELS[key].target
    if not target.exists() and not realworld_enabled(request.config):
        pytest.skip("realworld: set LICSCAN_REALWORLD=1 or -m realworld to download")
    try:
        path = fetch(key)
    except Unavailable as error:
        pytest.skip(str(error))
    wheel = sorted(cache_dir().glob(f"{dist.replace('-', '_')}-{version}-*.whl"))[0]
    return path, wheel


def _dist_of(wheel: Path, vpath_prefix: str) -> Distribution:
    import base64
    import email

    with zipfile.ZipFile(wheel) as zf:
        meta = email.message_from_bytes(zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))))
        record = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))).decode()
    files = []
    for line in record.splitlines():
        path, digest, _ = line.rsplit(",", 2)
        if digest.startswith("sha256="):
            raw = base64.urlsafe_b64decode(digest[7:] + "=" * (-len(digest[7:]) % 4))
            files.append((f"{vpath_prefix}!/{path}", raw.hex()))
    return Distribution(vpath_prefix, Ecosystem.PYPI, meta["Name"], meta["Version"], vpath_prefix,
                        license_declared=meta.get("License-Expression") or meta.get("License"), files=tuple(files))


@pytest.mark.realworld
@pytest.mark.parametrize("dist,version,member", [
    ("nvidia-cuda-runtime-cu12", "12.4.127", "nvidia/cuda_runtime/lib/libcudart.so.12"),
    ("nvidia-cuda-runtime", "13.0.96", "nvidia/cu13/lib/libcudart.so.13"),
])
def test_cuda_runtime_wheels(request, dist, version, member):
    import hashlib

    path, wheel = _wheel(request, dist, version, member)
    data = path.read_bytes()
    distribution = _dist_of(wheel, wheel.name)
    vpath = f"{wheel.name}!/{member}"
    (m,) = identify(vpath, inspect_file(str(path), vpath), distribution, data,
                    sha256=hashlib.sha256(data).hexdigest())
    assert (m.name, m.display, m.version, m.version_source) == ("cudart", "CUDA Runtime", version,
                                                                VersionSource.DISTRIBUTION)
    assert m.modifications == () and m.license == "LicenseRef-NVIDIA-CUDA-EULA"
    assert m.license_declared in ("NVIDIA Proprietary Software", "LicenseRef-NVIDIA-Proprietary")
    with zipfile.ZipFile(wheel) as zf:
        lic = next(n for n in zf.namelist() if n.endswith("License.txt"))
        text = identify_license_text(lic, zf.read(lic))
    assert (text.document, text.method, text.sha256[:8]) == ("nvidia-sdk-eula-2018", "sha256", "ad6f5853")


@pytest.mark.realworld
def test_nvrtc_marker_version(request):
    path, wheel = _wheel(request, "nvidia-cuda-nvrtc-cu12", "12.4.127", "nvidia/cuda_nvrtc/lib/libnvrtc.so.12")
    (m,) = identify("libnvrtc.so.12", inspect_file(str(path)), None, path.read_bytes())
    assert (m.name, m.version, m.version_source) == ("nvrtc", "12.4.127", VersionSource.MARKER)
    path, _ = _wheel(request, "nvidia-cuda-nvrtc-cu12", "12.4.127",
                     "nvidia/cuda_nvrtc/lib/libnvrtc-builtins.so.12.4")
    (m,) = identify("libnvrtc-builtins.so.12.4", inspect_file(str(path)), None, path.read_bytes())
    assert (m.name, m.version, m.version_range) == ("nvrtc-builtins", None, "12.4.x")
    assert any("#define CUDART_VERSION 12040" in e for e in m.evidence)


@pytest.mark.realworld
def test_renamed_wheel_ptxas_found_by_content(request, tmp_path):
    path, _ = _wheel(request, "nvidia-cuda-nvcc-cu12", "12.4.131", "nvidia/cuda_nvcc/bin/ptxas")
    renamed = tmp_path / "triton-helper"
    shutil.copy(path, renamed)
    (m,) = _tool(renamed, "dist/x.whl!/triton/backends/nvidia/bin/triton-helper")
    assert (m.name, m.kind, m.version) == ("ptxas", ComponentKind.DEVELOPER_TOOL, "12.4.131")


@pytest.mark.parametrize("order", ["catalog", "reversed"])
def test_tool_banners_name_the_tool_whatever_the_catalog_order(monkeypatch, order):
    """nvlink's bytes hold ptxas's banner too (CUDA 13.0.88): the catalog says so (`tool: embeds: [ptxas]`), so a
    renamed nvlink is nvlink in whichever order the catalog lists the two (a stale snapshot once listed ptxas
    first and named it ptxas)."""
    from dataclasses import replace

    from licscan.identify import observe
    from licscan.model import ElfFacts

    cat = catalog.load_catalog()
    if order == "reversed":
        monkeypatch.setattr(observe, "load_catalog", lambda: replace(cat, entries=tuple(reversed(cat.entries))))
    data = b"\0".join([b"\x7fELF", b"Ptx optimizing assembler", b"Cuda linker",
                       b"Cuda compilation tools, release 13.0, V13.0.88", b"NVIDIA Corporation", b""])
    facts = FileFacts("dist/bin/x", FileFormat.ELF, len(data),
                      elf=ElfFacts("ET_EXEC", "EM_X86_64", None, (), (), (), True, None))
    (m,) = identify("dist/bin/x", facts, None, data)
    assert (m.name, m.version, m.version_source) == ("nvlink", "13.0.88", VersionSource.MARKER)
    assert m.evidence[0].startswith("nvlink: content: banner 'Cuda linker' at ")
    ptxas_only = data.replace(b"Cuda linker", b"Cuda linkxx")
    (m,) = identify("dist/bin/x", replace(facts, size=len(ptxas_only)), None, ptxas_only)
    assert m.name == "ptxas"


def test_every_licenceref_the_catalog_assigns_has_an_sbom_text():
    """A LicenseRef licscan itself assigns to a named part gets its own extracted text in the SBOM (title, where the
    text was read), never the fallback for identifiers "as stated in the scanned input" (nvJPEG2000 had none)."""
    from licscan.identify.catalog_table import load_catalog
    from licscan.sbom.data import license_tables
    from licscan.sbom.licenses import refs

    assigned = {ref for entry in load_catalog().entries for ref in refs(entry.license)}
    assert "LicenseRef-NVIDIA-nvJPEG2000-SLA" in assigned
    assert sorted(ref for ref in assigned if license_tables().info(ref) is None) == []


@pytest.mark.parametrize("name, lines, version", [
    # Debian's nvidia-cuda-toolkit 12.4.131~12.4.1-2: usr/bin/nvdisasm holds two such lines, cicc one of its own
    ("nvdisasm", [b"Cuda compilation tools, release 12.4, V12.4.127"] * 2, "12.4.127"),
    ("cicc", [b"Cuda compilation tools, release 12.4, V12.4.131"], "12.4.131"),
    ("nvprune", [b"Cuda compilation tools, release 12.4, V12.4.127", b"Cuda compilation tools, release "], "12.4.127"),
    ("cu++filt", [b"Cuda compilation tools, release 12.4, V12.4.127"], "12.4.127"),
    # two releases in one file: neither is the tool's
    ("nvdisasm", [b"Cuda compilation tools, release 12.4, V12.4.127", b"Cuda compilation tools, release 13.1, V13.1.80"],
     None),
    ("nvdisasm", [], None)])
def test_tools_without_a_banner_read_their_release_line(name, lines, version):
    """nvdisasm, nvprune, cu++filt and cicc are named by their file name only (nvdisasm and nvprune print
    "%s: NVIDIA (R) %s", cicc no banner): their version was never read, though their bytes state it (Debian's
    toolkit and triton's nvdisasm: 12.8.55 in triton 3.6.0, 13.1.80 in 3.9.0)."""
    from licscan.model import ElfFacts

    data = b"\0".join([b"\x7fELF", *lines, b"NVIDIA Corporation", b""])
    facts = FileFacts(f"dist/bin/{name}", FileFormat.ELF, len(data),
                      elf=ElfFacts("ET_EXEC", "EM_X86_64", None, (), (), (), True, None))
    (m,) = identify(f"dist/bin/{name}", facts, None, data)
    assert (m.name, m.version) == (name, version)
    assert m.version_source == (VersionSource.MARKER if version else None)


@pytest.mark.parametrize("name, data, named", [
    # Debian's nvidia-profiler 12.4.127~12.4.1-2: /usr/bin/nvprof
    ("nvprof", b'#!/bin/sh\n\nexec /usr/lib/nvidia-cuda-toolkit/bin/nvprof "$@"\n', False),
    ("nvcc", b'#!/bin/sh\nexec /usr/local/cuda/bin/nvcc -ccbin g++-12 "$@"\n', False),
    ("ptxas", b"#!/usr/bin/env python3\nimport subprocess\n", False),
    # a script that says it is NVIDIA's stays named; so does a file that is no script
    ("nvcc", b"#!/bin/sh\n# Copyright (c) 2024, NVIDIA Corporation. All rights reserved.\nexec nvcc.bin\n", True),
    ("nvcc", b"\x7fELF\x02\x01\x01", True)])
def test_a_wrapper_script_is_not_nvidias_tool(name, data, named):
    """A script named like NVIDIA's tool ("#!", interpreter file) is someone's wrapper unless it says "NVIDIA
    Corporation": a project's bin/nvcc was CUDA-EULA-DEV-TOOL (a 'developer tool for internal use only')."""
    facts = FileFacts(f"dist/bin/{name}", FileFormat.UNKNOWN, len(data))
    found = identify(f"dist/bin/{name}", facts, None, data)
    assert [m.name for m in found] == ([name] if named else [])
    # in a distribution that ships the tool (nvidia-cuda-sanitizer-api 13.5.25's bin/compute-sanitizer is such a
    # launcher) it is NVIDIA's: named
    nvcc_wheel = _dist("nvidia-cuda-nvcc-cu12", "12.9.86")
    if name == "nvcc":
        assert [m.name for m in identify(f"dist/bin/{name}", facts, nvcc_wheel, data)] == ["nvcc"]
    assert [m.name for m in identify(f"dist/bin/{name}", facts, _dist("someproject", "1.0"), data)] == \
        ([name] if named else [])
