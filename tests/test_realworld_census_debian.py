"""Debian's packages of the CUDA toolkit (source nvidia-cuda-toolkit, trixie), audited as a reviewer would; docs/census.md
lists every input of the sweep these come from.

Debian Policy 5.6.12: a version is "[epoch:]upstream_version[-debian_revision]" and "~" sorts before anything. The
packages write "<part>~<CUDA release>-<revision>"; where a part's own number went back, one that sorts higher comes
first with "+~".

* nvidia-cuda-gdb 12.4.127~12.4.1-2: CUDA-GDB had no version (its binaries print "NVIDIA (R) cuda-gdb %d.%d" from
  numbers in code); it is 12.4.127, from the package, and stays under the GPL v3 the CUDA EULA's Attachment B names.
* libcurand10 11.1.1+~10.3.5.147~12.4.1-2: the package's version was read as cuRAND 11.1.1 (in the evidence, and
  contradicting the SONAME libcurand.so.10); it is 10.3.5.147, as the file name libcurand.so.10.3.5.147 says.
* nvidia-cuda-toolkit 12.4.131~12.4.1-2: cicc, nvdisasm, nvprune and cu++filt had no version (named by their file
  name, with no banner of their own, their "Cuda compilation tools, release 12.4, V12.4.127" line was not read); the
  package's version is nvcc's, not theirs. /usr/bin/nvcc, Debian's "#!/bin/sh" wrapper of
  /usr/lib/nvidia-cuda-toolkit/bin/nvcc, stays part of nvcc: a wrapper script is the tool in a package that ships
  the tool (elsewhere someone's wrapper: tests/test_catalog.py::test_a_wrapper_script_is_not_nvidias_tool).
* nvidia-profiler 12.4.127~12.4.1-2: nvprof (the ELF, and Debian's /usr/bin/nvprof wrapper of it) had no version
  (it prints "Release version %u.%u.%u"): 12.4.127, from the package.

Runs with LICSCAN_REALWORLD=1 or when the packages are cached (tests/licence_copies.py: apt-get download into the test
cache; 134 MB)."""
from __future__ import annotations

from pathlib import Path

import licence_copies
import pytest
from conftest import realworld_enabled
from helpers import audit_json

pytestmark = pytest.mark.realworld


def _deb(request, name: str, version: str) -> Path:
    try:
        return licence_copies.debian_package(name, version, realworld_enabled(request.config))
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))


def _nvidia(report: dict) -> list[tuple[str, str | None, str | None, list[str]]]:
    return sorted((c["name"], c["version"], c["properties"].get("version_source"),
                   sorted(p.split("!/", 1)[1] for p in c["paths"]))
                  for c in report["components"] if c["vendor"] == "NVIDIA" and c["kind"] != "license-text")


def test_cuda_gdb_version_from_the_debian_package(request, tmp_path):
    deb = _deb(request, "nvidia-cuda-gdb", "12.4.127~12.4.1-2")
    report = audit_json(tmp_path, deb)
    assert report["summary"]["complete"] is True and report["diagnostics"] == [] and report["findings"] == []
    assert _nvidia(report) == [("cuda-gdb", "12.4.127", "debian-metadata", ["usr/bin/cuda-gdb",
                                                                            "usr/bin/cuda-gdbserver"])]
    governing = {g["path"].split("!/", 1)[1]: (g["license"], g["document"], g["basis"]) for g in report["governing"]}
    assert governing["usr/bin/cuda-gdb"] == ("GPL-3.0-only", "cuda-gdb", "primary")
    assert governing["usr/bin/cuda-gdbserver"] == ("GPL-3.0-only", "cuda-gdb", "primary")


def test_curand_version_behind_debians_plus_tilde(request, tmp_path):
    deb = _deb(request, "libcurand10", "11.1.1+~10.3.5.147~12.4.1-2")
    report = audit_json(tmp_path, deb)
    assert report["summary"]["complete"] is True and report["diagnostics"] == [] and report["findings"] == []
    assert _nvidia(report) == [("curand", "10.3.5.147", "file-name",
                                ["usr/lib/x86_64-linux-gnu/libcurand.so.10.3.5.147"])]
    (curand,) = [c for c in report["components"] if c["name"] == "curand"]
    assert [e.split(": ", 1)[1] for e in curand["evidence"] if ": distribution " in e] == [
        "distribution libcurand10 10.3.5.147 (control)"]
    assert not any("conflict" in e for e in curand["evidence"])


def test_toolkit_tools_read_their_own_release_line(request, tmp_path):
    deb = _deb(request, "nvidia-cuda-toolkit", "12.4.131~12.4.1-2")
    report = audit_json(tmp_path, deb)
    assert report["summary"]["complete"] is True and report["diagnostics"] == [] and report["findings"] == []
    tools = sorted((c["name"], c["version"], c["properties"].get("version_source"))
                   for c in report["components"] if c["kind"] == "developer-tool")
    assert tools == [
        ("bin2c", "12.4.131", "marker"), ("cicc", "12.4.131", "marker"),
        ("compute-sanitizer", None, None),  # its own numbering (2024.1.1), in no release line
        ("cu++filt", "12.4.127", "marker"), ("cudafe", "12.4.131", "marker"), ("cuobjdump", "12.4.127", "marker"),
        ("fatbinary", "12.4.131", "marker"), ("nvcc", "12.4.131", "debian-metadata,marker"),
        ("nvdisasm", "12.4.127", "marker"), ("nvlink", "12.4.131", "marker"), ("nvprune", "12.4.127", "marker"),
        ("ptxas", "12.4.131", "marker")]
    (nvcc,) = [c for c in report["components"] if c["name"] == "nvcc"]
    assert sorted(p.split("!/", 1)[1] for p in nvcc["paths"]) == ["usr/bin/nvcc", "usr/lib/nvidia-cuda-toolkit/bin/nvcc"]
    texts = {g["path"].rsplit("/", 1)[1]: (g["text"], g["basis"]) for g in report["governing"]
             if g["scope"] == "component" and g["component"] and g["component"].startswith("developer-tool:")}
    assert texts["nvdisasm"] == texts["cicc"] == ("2024-01-12", "primary")  # was the shipped text, release unknown


def test_profiler_version_from_the_debian_package(request, tmp_path):
    deb = _deb(request, "nvidia-profiler", "12.4.127~12.4.1-2")
    report = audit_json(tmp_path, deb)
    assert report["summary"]["complete"] is True and report["diagnostics"] == [] and report["findings"] == []
    assert _nvidia(report) == [("nvprof", "12.4.127", "debian-metadata",
                                ["usr/bin/nvprof", "usr/lib/nvidia-cuda-toolkit/bin/nvprof"])]


def test_dkms_kernel_objects_by_their_nvidia_id(request, tmp_path):
    """nvidia-kernel-dkms ships NVIDIA's prebuilt kernel objects (the driver, under the NVIDIA Driver License
    Agreement, which the package provides as its copyright file: no finding); nvidia-open-kernel-dkms the objects
    Debian built from the open sources (MIT OR GPL-2.0-only). Neither was named before (docs/census.md)."""
    for package, licence, flavour, document, text in (
            ("nvidia-kernel-dkms", "LicenseRef-NVIDIA-Driver", "proprietary", "nvidia-driver", "driver-agreement"),
            ("nvidia-open-kernel-dkms", "MIT OR GPL-2.0-only", "open", "nvidia-open-kernel-modules", None)):
        report = audit_json(tmp_path, _deb(request, package, "550.163.01-2"))
        assert report["summary"]["complete"] is True and report["diagnostics"] == [] and report["findings"] == []
        folder = "nvidia-current-550.163.01" if flavour == "proprietary" else "nvidia-current-open-550.163.01"
        assert [(c["name"], c["version"], c["license"], c["properties"].get("flavour"),
                 sorted(p.split("!/", 1)[1] for p in c["paths"]))
                for c in report["components"] if c["kind"] == "kernel-module"] == [
            ("nvidia-kernel-object", "550.163.01", licence, flavour,
             [f"usr/src/{folder}/nvidia-modeset/nv-modeset-kernel.o_binary", f"usr/src/{folder}/nvidia/nv-kernel.o_binary"])]
        assert {(g["document"], g["text"]) for g in report["governing"] if "o_binary" in g["path"]} == {(document, text)}
