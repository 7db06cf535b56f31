"""``licscan audit``: the inventory part of the report (the JSON report schema (licscan/schemas/report.schema.json)) on our fixtures and on real wheels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from tests.helpers import FIXTURES, inspect

REPORT_SCHEMA = json.loads(resources.files("licscan.schemas").joinpath("report.schema.json").read_text())
REPO = Path(__file__).parent.parent


def audit(*args: str, cwd: Path = REPO) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", *args, "--format", "json", "--no-cache"],
                          capture_output=True, text=True, cwd=cwd, timeout=900)
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, REPORT_SCHEMA)
    return proc.returncode, report


def test_fixture_tree_inventory_matches_inspect():
    code, report = audit("tests/fixtures/cuda13")
    assert code == 0 and report["summary"]["complete"] and not report["diagnostics"]
    assert report["inputs"] == ["tests/fixtures/cuda13"]
    expected = []
    for path in sorted((FIXTURES / "cuda13").iterdir()):
        if path.suffix == ".whl":
            continue
        for image in inspect(path).all_images():
            rel = os.path.relpath(image.path, REPO)
            expected.append((rel, image.kind.value, image.arch_full))
    wheel = "tests/fixtures/cuda13/licscan_test-0.0.1-py3-none-linux_x86_64.whl!/licscan_test/libkern.so"
    expected += [(wheel, i.kind.value, i.arch_full) for i in inspect("cuda13/libkern.so").all_images()]
    got = [(d["path"], d["kind"], d["arch_full"]) for d in report["device_code"]]
    assert sorted(got) == sorted(expected)
    assert report["summary"]["files"] == _regular_files(FIXTURES / "cuda13")
    # the wheel's libkern.so needs the CUDA runtime, which the tree does not ship
    deps = {(d["path"], d["needs"], d["component"], tuple(d["shipped"])) for d in report["dependencies"]}
    assert (wheel, "libcudart.so.13", "cudart", ()) in deps


def _regular_files(folder: Path) -> int:
    """Files an inventory must count: plain files, and the members of zip archives instead of the zip (static
    libraries are one file each: the binary readers report their members' device code themselves)."""
    count = 0
    for path in folder.iterdir():
        if zipfile.is_zipfile(path):
            count += sum(1 for i in zipfile.ZipFile(path).infolist() if not i.is_dir())
        else:
            count += 1
    return count


def test_static_archive_members_are_virtual_paths():
    code, report = audit("tests/fixtures/cuda13/liblongnames.a")
    assert code == 0
    assert {d["path"] for d in report["device_code"]} == {
        "tests/fixtures/cuda13/liblongnames.a!/a_member_name_longer_than_sixteen_chars.o",
        "tests/fixtures/cuda13/liblongnames.a!/rdc_kern.o"}


def test_missing_input_is_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(tmp_path / "nope")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_unreadable_part_makes_the_scan_incomplete(tmp_path):
    data = (FIXTURES / "cuda13/kern_multi.fatbin").read_bytes()
    (tmp_path / "cut.fatbin").write_bytes(data[:3000])
    code, report = audit(str(tmp_path))
    assert code == 3 and not report["summary"]["complete"]
    assert [d["path"] for d in report["diagnostics"]] == [str(tmp_path / "cut.fatbin")]


# --------------------------------------------------------------------------------------------- real wheels
def _wheel(dist: str, version: str) -> Path:
    from tests.oracle import cache_dir

    cache = cache_dir()
    from tests.census_wheels import LINUX, Pin, built_for

    def found_wheels() -> list[Path]:  # this platform's wheel: the cache may hold other platforms' of one version
        return sorted(p for p in cache.glob(f"{dist.replace('-', '_')}-{version}-*.whl")
                      if built_for(Pin(dist, version, LINUX), p.name))

    found = found_wheels()
    if not found:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--disable-pip-version-check", "-d", str(cache), f"{dist}=={version}"],
                              capture_output=True, text=True, timeout=900)
        found = found_wheels()
        if proc.returncode or not found:
            pytest.skip(f"cannot download {dist}=={version}: {proc.stderr.strip()[-300:]}")
    return found[0]


@pytest.fixture(scope="module")
def runtime_dist(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    for name, version in (("nvidia-cuda-runtime", "13.0.96"), ("nvidia-cuda-runtime-cu12", "12.4.127")):
        shutil.copy(_wheel(name, version), dist)
    shutil.copy(FIXTURES / "cuda13/licscan_test-0.0.1-py3-none-linux_x86_64.whl", dist)
    return dist


def test_nvidia_runtime_wheels_are_cuda_runtime_with_exact_versions(runtime_dist):
    code, report = audit(str(runtime_dist))
    assert code == 0
    cudart = sorted((c["version"], c["license"]) for c in report["components"] if c["name"] == "cudart")
    assert cudart == [("12.4.127", "LicenseRef-NVIDIA-CUDA-EULA"), ("13.0.96", "LicenseRef-NVIDIA-CUDA-EULA")]
    by_version = {c["version"]: c for c in report["components"] if c["name"] == "cudart"}
    assert any(p.endswith("!/nvidia/cuda_runtime/lib/libcudart.so.12") for p in by_version["12.4.127"]["paths"])
    assert any(p.endswith("!/nvidia/cu13/lib/libcudart.so.13") for p in by_version["13.0.96"]["paths"])
    assert by_version["13.0.96"]["properties"]["license_declared"] == "LicenseRef-NVIDIA-Proprietary"
    texts = [c for c in report["components"] if c["kind"] == "license-text"]
    assert [(t["version"], t["properties"]["translation_clause"]) for t in texts] == [("2018-07-26", "no")]
    assert len(texts[0]["paths"]) == 2
    dists = {(d["name"], d["version"]) for d in report["distributions"]}
    assert dists == {("nvidia-cuda-runtime", "13.0.96"), ("nvidia-cuda-runtime-cu12", "12.4.127"),
                     ("licscan-test", "0.0.1")}
    assert not any("modified" in c["properties"] for c in report["components"])


def test_cpu_only_wheel_has_no_nvidia_component():
    numpy = _wheel("numpy", "2.3.5")
    code, report = audit(str(numpy))
    assert code == 0
    assert not [c for c in report["components"] if c["vendor"] == "NVIDIA"]
    assert not report["device_code"] and report["summary"]["files"] > 100


@pytest.mark.realworld
def test_torch_wheel_device_code_and_nvidia_dependencies(request):
    from tests import oracle
    from tests.conftest import realworld_enabled

    lib = oracle.torch_cuda_lib(download=realworld_enabled(request.config))
    if lib is None:
        pytest.skip("torch wheel not cached; set LICSCAN_REALWORLD=1")
    wheel = next(oracle.cache_dir().glob("torch-2.14.1-*.whl"))
    code, report = audit(str(wheel))
    assert code == 0, report["diagnostics"][:5]
    member = f"{wheel}!/torch/lib/libtorch_cuda.so"
    got = [(d["kind"], d["arch"]) for d in report["device_code"] if d["path"] == member]
    expected = [(e.kind, e.arch) for e in oracle.oracle_listing(str(lib))]
    assert len(got) == 2975 and got == expected
    needed = {d["needs"] for d in report["dependencies"] if d["path"] == member and d["vendor"] == "NVIDIA"}
    from elftools.elf.elffile import ELFFile

    with open(lib, "rb") as handle:
        dynamic = ELFFile(handle).get_section_by_name(".dynamic")
        all_needed = {t.needed for t in dynamic.iter_tags() if t.entry.d_tag == "DT_NEEDED"}
    nvidia_prefixes = ("libcud", "libcublas", "libcufft", "libcurand", "libcusparse", "libcusolver", "libnccl",
                       "libnvrtc", "libnvJitLink", "libcupti", "libnvToolsExt", "libnvshmem", "libcufile")
    assert needed == {n for n in all_needed if n.startswith(nvidia_prefixes)}
    assert needed  # torch's CUDA library needs cudart, cuBLAS, ... from the nvidia-* wheels
