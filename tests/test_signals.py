"""Layer signals (rules/catalog/translation-layers.yaml, docs/layers.md) on inputs built with gcc in the shapes the
layers' own projects document (no ZLUDA/SCALE release binary is needed) and on real NVIDIA binaries as decoys.
The per-layer positive/negative table is tests/test_layers.py."""
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from licscan.binary.inspect import inspect_file
from licscan.identify import signals
from licscan.identify.catalog import identify
from licscan.model import ComponentKind, component_properties

CUDA = Path("/usr/local/cuda")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


def _so(tmp_path: Path, name: str, soname: str | None, body: str = "int cuInit(unsigned f){return 0;}",
        libs=(), runpath: str | None = None) -> Path:
    src = tmp_path / (name + ".c")
    src.write_text(body + "\n")
    out = tmp_path / name
    cmd = ["gcc", "-shared", "-fPIC", "-o", str(out), str(src), f"-L{tmp_path}"]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if runpath:
        cmd.append(f"-Wl,--enable-new-dtags,-rpath,{runpath}")
    cmd += ["-Wl,--no-as-needed"] + [f"-l:{lib}" for lib in libs]
    subprocess.run(cmd, check=True)
    return out


def _identify(path: Path, vpath: str | None = None):
    return identify(vpath or path.name, inspect_file(str(path)), None, path.read_bytes())


@pytest.fixture
def hip_stub(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    return _so(tmp_path, "libamdhip64.so.6", "libamdhip64.so.6", "int hipInit(unsigned f){return 0;}")


def test_zluda_shaped_libcuda(tmp_path, hip_stub):
    lib = _so(tmp_path, "libcuda.so.1", None,
              'extern int hipInit(unsigned); const char *suffix = " [ZLUDA]";'
              "int cuInit(unsigned f){return hipInit(f);}", libs=["libamdhip64.so.6"])
    matches = _identify(lib, "img.tar!/usr/lib/zluda/libcuda.so.1")
    names = {m.name: m for m in matches}
    assert "cuda-driver" not in names  # not NVIDIA's driver, although named like it
    zluda = names["zluda"]
    assert (zluda.kind, zluda.confidence, zluda.license) == (ComponentKind.OUTPUT_CONSUMER, "high",
                                                             "MIT OR Apache-2.0")
    assert zluda.layer.replaces is True
    assert {"cuda-named-imports-rocm", "zluda-strings", "cuda-named-without-soname"} <= set(zluda.layer.signals)
    assert any("DT_NEEDED libamdhip64.so.6" in e for e in zluda.evidence)
    assert any("named like NVIDIA NVIDIA CUDA driver (libcuda)" in e for e in zluda.evidence)
    target = names["targets-rocm"]
    assert target.kind is ComponentKind.TARGET_LINKED
    assert dict(component_properties(target.to_component("", ())))["relation"] == "targets"
    assert "rocm" not in names  # it links against ROCm; it is not ROCm


@needs_gcc
def test_nvidia_shaped_libcuda_is_the_driver(tmp_path):
    lib = _so(tmp_path, "libcuda.so.580.159.04", "libcuda.so.1")
    (m,) = _identify(lib)
    assert (m.name, m.vendor, m.version, m.modifications) == ("cuda-driver", "NVIDIA", "580.159.04", ())


def test_scale_shaped_cublas(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    _so(tmp_path, "libredscale.so", "libredscale.so", "int rs(void){return 0;}")
    _so(tmp_path, "librocblas.so.4", "librocblas.so.4", "int rb(void){return 0;}")
    lib = _so(tmp_path, "libcublas.so.12", "libcublas.so.12",
              'const char *e = "redscale::SimpleException"; int cublasCreate_v2(void **h){return 0;}',
              libs=["libredscale.so", "librocblas.so.4"], runpath="/opt/scale/targets/gfx90a/lib")
    names = {m.name: m for m in _identify(lib)}
    assert "cublas" not in names and "zluda" not in names
    scale = names["scale"]
    assert scale.confidence == "high" and scale.license == "LicenseRef-Spectral-SCALE-Free"
    assert {"scale-needed", "scale-runpath", "scale-strings", "scale-cuda-named-imports"} <= set(scale.layer.signals)


@needs_gcc
def test_fake_ptxas(tmp_path):
    src = tmp_path / "p.c"
    src.write_text('#include <stdio.h>\nint main(){puts("Cuda compilation tools, release 12.8, V12.8.0");return 0;}\n')
    exe = tmp_path / "ptxas"
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
    names = {m.name: m for m in _identify(exe, "zluda/ptxas")}
    assert set(names) == {"zluda"} and names["zluda"].layer.replaces is True


def test_zluda_cache_database(tmp_path):
    db = tmp_path / "cache.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE modules (hash TEXT, compiler_version TEXT, zluda_version TEXT, device TEXT, "
                "backend_key TEXT, binary BLOB, last_access INTEGER)")
    con.commit()
    con.close()
    (m,) = signals.detect("layer.tar!/root/.cache/x/cache.sqlite", None, db.read_bytes())
    assert (m.name, m.confidence) == ("zluda", "high")
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (a TEXT)")
    con.commit()
    con.close()
    assert signals.detect("other.sqlite", None, other.read_bytes()) == ()


@pytest.mark.parametrize("vpath", [
    "zluda/libzluda_ld.so", "zluda/zluda_with.exe", "zluda/trace/libcuda.so.1", "home/u/.cache/zluda/zluda2.db",
    "opt/scale/targets/gfx1100/lib/libredscale.so", "lib/libCHIP.so", "tmp/hip-spirv-0123abcd.spv",
    "lib/libgpuocelot.so", "lib/libcudaonamd.so", "usr/local/musa/lib/libmusart.so.4", "opt/maca/lib/libmcruntime.so",
    "opt/rocm/lib/libamdhip64.so.6", "bin/amdhip64_7.dll", "lib/libsycl.so.8", "chipstar/lib/libcudart.so"])
def test_file_names_and_paths_alone_name_nothing(vpath):
    """Names only corroborate: a file named like a layer's, with nothing of the layer inside, is not named."""
    assert signals.detect(vpath, None, b"x") == ()
    assert signals.detect(vpath, None, b"") == ()


@pytest.mark.skipif(not (CUDA / "lib64").exists(), reason="no local CUDA toolkit")
@pytest.mark.parametrize("rel", ["lib64/libcudart.so.13", "lib64/libcupti.so.13", "lib64/libnvvm.so.4",
                                 "lib64/libnvtx3interop.so.1", "bin/ptxas", "bin/nvcc"])
def test_nvidia_files_give_no_translation_fact(rel):
    path = CUDA / rel
    matches = _identify(path, f"cuda/{rel}")
    assert matches and all(m.vendor == "NVIDIA" for m in matches)


def test_every_signal_has_a_known_confidence_and_layer():
    table = signals.load_signals()
    assert all(s.confidence in ("high", "medium", "low") and s.layer in table.layers for s in table.signals)
