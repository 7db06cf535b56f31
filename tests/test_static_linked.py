"""NVIDIA libraries linked statically into a binary (``static`` of rules/catalog/nvidia.yaml), on shared objects built
here with gcc from the strings the catalog looks for (the real libraries: tests/test_realworld_static_nvidia.py)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from licscan.binary.inspect import inspect_file
from licscan.identify import observe
from licscan.identify.catalog import linked_into

GATE = "Ptx optimizing assembler"
PTX = [GATE, "Ptx assembly aborted due to errors"]
JITLINK = ["bad input: does not match type NVJITLINK_INPUT_PTX"]
NVRTC = ["__nv_nvrtc_builtin_header", "nvrtc: error: "]
CUDART = ["CUDA driver version is insufficient for CUDA runtime version", "CUDA driver is a stub library",
          "device doesn't have valid Grid license"]


def _release(version: str) -> str:
    return f"Cuda compilation tools, release {version.rsplit('.', 1)[0]}, V{version}"


def _library(tmp_path: Path, strings: list[str], name: str = "libhost.so") -> Path:
    """A shared object whose .rodata holds ``strings`` (each a C string of its own)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    src = tmp_path / "host.c"
    src.write_text("".join(f"__attribute__((used)) static const char s{i}[] = {json.dumps(text)};\n"
                           for i, text in enumerate(strings)) + "int host_entry(void) { return 0; }\n")
    out = tmp_path / name
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", str(src), "-o", str(out)], check=True)
    return out


def _linked(path: Path) -> list[tuple[str, str | None, str | None, str | None]]:
    facts = inspect_file(str(path))
    parts = linked_into(str(path), facts, path.read_bytes())
    return sorted((p.name, p.version, p.version_range, p.linked_from) for p in parts)


def test_nvjitlink_and_the_ptx_compiler_it_links_with(tmp_path):
    path = _library(tmp_path, PTX + JITLINK + [_release("12.9.86"), _release("12.9.86")])
    assert _linked(path) == [("nvJitLink", "12.9.86", None, "libnvJitLink_static.a"),
                             ("nvptxcompiler", "12.9.86", None, "libnvptxcompiler_static.a")]
    facts = inspect_file(str(path))
    jitlink = next(p for p in linked_into(str(path), facts, path.read_bytes()) if p.name == "nvJitLink")
    data = path.read_bytes()
    assert jitlink.evidence == (
        f"nvJitLink: linked from libnvJitLink_static.a: {GATE!r} at {data.find(GATE.encode()):#x}, "
        f"{JITLINK[0]!r} at {data.find(JITLINK[0].encode()):#x} (rules/catalog/nvidia.yaml: nvJitLink static)",
        f"marker {_release('12.9.86')!r} at {data.find(_release('12.9.86').encode()):#x}, the release of all 2 CUDA "
        "release lines of the file")


def test_release_lines_that_differ_state_no_release(tmp_path):
    # Device code of another toolkit beside the library: which line is the library's is not known.
    path = _library(tmp_path, PTX + [_release("12.9.86"), _release("12.4.131")])
    assert _linked(path) == [("nvptxcompiler", None, None, "libnvptxcompiler_static.a")]


def test_nvrtc_with_its_builtins(tmp_path):
    path = _library(tmp_path, PTX + NVRTC + ["#define CUDART_VERSION 12090", _release("12.9.86")])
    assert _linked(path) == [("nvptxcompiler", "12.9.86", None, "libnvptxcompiler_static.a"),
                             ("nvrtc", "12.9.86", None, "libnvrtc_static.a"),
                             ("nvrtc-builtins", None, "12.9.x", "libnvrtc-builtins_static.a")]


def test_without_the_gate_the_second_pass_does_not_run(tmp_path, monkeypatch):
    """The evidence of the PTX compiler, nvJitLink and NVRTC is searched only in a file holding the PTX assembler's
    banner: without it, nothing is named and the gated literals are never searched for."""
    path = _library(tmp_path, PTX[1:] + JITLINK + NVRTC + [_release("12.9.86")])

    def no_second_pass():
        raise AssertionError("the gated literals were searched for")

    monkeypatch.setattr(observe, "gated_literal_set", no_second_pass)
    assert _linked(path) == []
    # The runtime's evidence is in the one pass every binary gets: found without the gate.
    path = _library(tmp_path, CUDART, "libruntime.so")
    assert _linked(path) == [("cudart", None, None, "libcudart_static.a")]


def test_an_nvidia_library_is_not_linked_into_itself(tmp_path):
    # libnvJitLink.so.12 holds the PTX compiler it links with: it is nvJitLink, not a binary nvJitLink is linked into.
    path = _library(tmp_path, PTX + JITLINK + [_release("12.9.86")], "libnvJitLink.so.12")
    assert _linked(path) == []


SCHEMA = json.loads(resources.files("licscan.schemas").joinpath("inspect.schema.json").read_text())


def _inspect(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "licscan", "inspect", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_inspect_says_which_libraries_are_linked_in(tmp_path):
    path = _library(tmp_path, CUDART + PTX + JITLINK + [_release("13.4.92")])
    lines = _inspect(str(path)).stdout.splitlines()
    assert [line for line in lines if line.startswith("  LINKED")] == [
        "  LINKED   NVIDIA CUDA Runtime version unknown from libcudart_static.a",
        "  LINKED   NVIDIA nvJitLink 13.4.92 (marker) from libnvJitLink_static.a",
        "  LINKED   NVIDIA nvPTXCompiler 13.4.92 (marker) from libnvptxcompiler_static.a"]
    document = json.loads(_inspect(str(path), "--format", "json").stdout)
    jsonschema.validate(document, SCHEMA)
    assert [(p["name"], p["version"], p["version_source"], p["linked_from"], p["license"])
            for p in document["linked"]] == [
        ("cudart", None, None, "libcudart_static.a", "LicenseRef-NVIDIA-CUDA-EULA"),
        ("nvJitLink", "13.4.92", "marker", "libnvJitLink_static.a", "LicenseRef-NVIDIA-CUDA-EULA"),
        ("nvptxcompiler", "13.4.92", "marker", "libnvptxcompiler_static.a", "LicenseRef-NVIDIA-CUDA-EULA")]


def test_inspect_of_a_binary_with_nothing_linked_keeps_its_document(tmp_path):
    path = _library(tmp_path, ["nothing of NVIDIA's"])
    assert not [line for line in _inspect(str(path)).stdout.splitlines() if "LINKED" in line]
    document = json.loads(_inspect(str(path), "--format", "json").stdout)
    jsonschema.validate(document, SCHEMA)
    assert "linked" not in document
