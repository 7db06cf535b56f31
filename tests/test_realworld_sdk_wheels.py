"""NVIDIA's own SDK wheels beyond the CUDA toolkit, Linux and Windows builds side by side, audited with default
options and read as a reviewer would: every binary named with the wheel's version, the wheel's licence file
identified, and each part judged under the text its own wheel ships.

* nvidia-cudnn-cu13 9.28.1.4: the manylinux wheel ships the cuDNN SLA "(v. January 28, 2020)" (the same
  License.txt as nvidia-cudnn-cu12 9.28.0.42), the win_amd64 wheel of the same release "(v. February 22, 2022)",
  whose Supplement 2 reads "the runtime files .so and .dll." (the 2020 text: ".so and .h, cudnn64_7.dll, and
  cudnn.lib.").
* nvidia-cusparselt-cu12 0.8.1: both wheels ship nvidia/cusparselt/LICENSE.txt, the cuSPARSELt SLA "(v. October 12,
  2020)"; the Windows wheel's import library lib/cusparseLt.lib is cuSPARSELt too.
* cutensor-cu12 2.8.1: both wheels ship cutensor/LICENSE, the cuTENSOR SLA "(v. March 15, 2019)", whose Supplement 2
  also lists only ".so and .h"; libcutensorMp.so.2 and the Windows import libraries are cuTENSOR; the distribution
  is NVIDIA's though not named nvidia-*.
* nvidia-nvshmem-cu12 and -cu13 3.8.0: nvshmem_transport_*.so.7 carry their plugin ABI in the name, not the
  release; the device library also ships as LLVM bitcode (libnvshmem_device_sm_<N>.bc). Both wheels ship the CUDA
  EULA's 2018 License.txt (no NVSHMEM SLA): NVSHMEM, and the device code in its libraries, is judged under it.

Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/licence_copies.py downloads them into the test
cache)."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import licence_copies
import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld
_REPORTS: dict[tuple[str, str, str | None], dict] = {}


def _report(request, tmp_path_factory, name: str, version: str, platform: str | None = None) -> tuple[Path, dict]:
    try:
        wheel = licence_copies.wheel(name, version, realworld_enabled(request.config), platform)
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))
    key = (name, version, platform)
    if key not in _REPORTS:
        out = tmp_path_factory.mktemp("sdk") / "report.json"
        proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(wheel), "--no-cache", "--format", "json",
                               "-o", str(out)], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-2000:]
        _REPORTS[key] = json.loads(out.read_text())
    return wheel, _REPORTS[key]


def _member(path: str) -> str:
    return path.split("!/", 1)[1]


def _components(report: dict, kind: str) -> dict[str, tuple]:
    """Member path -> (component name, version, licence) of every component of ``kind``."""
    return {_member(p): (c["name"], c["version"], c["license"]) for c in report["components"] if c["kind"] == kind
            for p in c["paths"]}


def _governing(report: dict) -> set[tuple[str, str, str | None]]:
    """(member, document, text) of every named part's governing licence (scope component)."""
    return {(_member(g["path"]), g["document"], g["text"]) for g in report["governing"] if g["scope"] == "component"}


def _binaries(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        out = []
        for info in zf.infolist():
            with zf.open(info) as handle:
                head = handle.read(8)
            if head[:4] in (b"\x7fELF", b"BC\xc0\xde") or head[:2] == b"MZ" or head == b"!<arch>\n":
                out.append(info.filename)
        return sorted(out)


@pytest.mark.parametrize("platform,text,licence_file", [
    (None, "2020-01-28", "nvidia_cudnn_cu13-9.28.1.4.dist-info/licenses/License.txt"),
    ("win_amd64", "2022-02-22", "nvidia_cudnn_cu13-9.28.1.4.dist-info/licenses/LICENSE"),
], ids=["linux", "windows"])
def test_cudnn_cu13_each_platform_under_the_text_its_wheel_ships(request, tmp_path_factory, platform, text,
                                                                 licence_file):
    wheel, report = _report(request, tmp_path_factory, "nvidia-cudnn-cu13", "9.28.1.4", platform)
    assert report["findings"] == [] and report["diagnostics"] == []
    licences = _components(report, "license-text")
    assert licences == {licence_file: (licences[licence_file][0], text, f"LicenseRef-NVIDIA-cuDNN-SLA-{text}")}
    assert [c["properties"]["document"] for c in report["components"] if c["kind"] == "license-text"] == [
        "cudnn-sla" if text == "2020-01-28" else "cudnn-sla-2022-02-22"]
    libraries = _components(report, "sdk-library")
    assert sorted(libraries) == _binaries(wheel)
    assert set(libraries.values()) == {("cudnn", "9.28.1.4", "LicenseRef-NVIDIA-cuDNN-SLA")}
    assert _governing(report) - {(licence_file, "cudnn-sla", None)} == {
        (member, "cudnn-sla", text) for member in libraries}


@pytest.mark.parametrize("platform,files", [
    (None, ["nvidia/cusparselt/lib/libcusparseLt.so.0"]),
    ("win_amd64", ["nvidia/cusparselt/bin/cusparseLt.dll", "nvidia/cusparselt/lib/cusparseLt.lib"]),
], ids=["linux", "windows"])
def test_cusparselt_named_and_under_its_own_sla(request, tmp_path_factory, platform, files):
    wheel, report = _report(request, tmp_path_factory, "nvidia-cusparselt-cu12", "0.8.1", platform)
    assert report["findings"] == [] and report["diagnostics"] == []
    assert _binaries(wheel) == files
    assert _components(report, "sdk-library") == {
        f: ("cusparselt", "0.8.1", "LicenseRef-NVIDIA-cuSPARSELt-SLA") for f in files}
    licence = "nvidia/cusparselt/LICENSE.txt"
    assert {k: v[1:] for k, v in _components(report, "license-text").items()} == {
        licence: ("2020-10-12", "LicenseRef-NVIDIA-cuSPARSELt-SLA-2020-10-12")}
    assert _governing(report) == {(f, "cusparselt-sla", "2020-10-12") for f in files} | {
        (licence, "cusparselt-sla", None)}
    assert {c["vendor"] for c in report["components"]} == {"NVIDIA"}


@pytest.mark.parametrize("platform,files", [
    (None, ["cutensor/lib/libcutensor.so.2", "cutensor/lib/libcutensorMg.so.2", "cutensor/lib/libcutensorMp.so.2"]),
    ("win_amd64", ["cutensor/bin/cutensor.dll", "cutensor/bin/cutensorMg.dll", "cutensor/lib/cutensor.lib",
                   "cutensor/lib/cutensorMg.lib"]),
], ids=["linux", "windows"])
def test_cutensor_named_and_under_its_own_sla(request, tmp_path_factory, platform, files):
    wheel, report = _report(request, tmp_path_factory, "cutensor-cu12", "2.8.1", platform)
    assert report["findings"] == [] and report["diagnostics"] == []
    assert _binaries(wheel) == files
    assert _components(report, "sdk-library") == {f: ("cutensor", "2.8.1", "LicenseRef-NVIDIA-cuTENSOR-SLA") for f in files}
    licence = "cutensor/LICENSE"
    assert {k: v[1:] for k, v in _components(report, "license-text").items()} == {
        licence: ("2019-03-15", "LicenseRef-NVIDIA-cuTENSOR-SLA-2019-03-15")}
    assert _governing(report) == {(f, "cutensor-sla", "2019-03-15") for f in files} | {(licence, "cutensor-sla", None)}
    assert [(c["name"], c["vendor"]) for c in report["components"] if c["kind"] == "python-distribution"] == [
        ("cutensor-cu12", "NVIDIA")]


EULA_2018 = "2018-07-26"
EULA_2018_SHA256 = "ad6f5853fba0ca0d159d0f58d49ae49830c2f8c93f7a92648b9ce90adb4c6ccd"


@pytest.mark.parametrize("name", ["nvidia-nvshmem-cu12", "nvidia-nvshmem-cu13"])
def test_nvshmem_every_library_named_and_under_the_cuda_eula_its_wheel_ships(request, tmp_path_factory, name):
    """NVSHMEM's wheels ship the CUDA EULA's 2018 License.txt (the same sha256 as nvidia-cuda-runtime's), not an
    NVSHMEM SLA: every part, and the device code inside them, is judged under that text."""
    wheel, report = _report(request, tmp_path_factory, name, "3.8.0")
    assert report["findings"] == [] and report["diagnostics"] == []
    libraries = _components(report, "sdk-library")
    binaries = _binaries(wheel)
    assert sorted(libraries) == binaries
    assert set(libraries.values()) == {("nvshmem", "3.8.0", "LicenseRef-NVIDIA-CUDA-EULA")}
    if name.endswith("cu12"):
        assert len(binaries) == 19
        assert [b for b in binaries if b.endswith(".bc")] == [
            f"nvidia/nvshmem/lib/libnvshmem_device_sm_{n}.bc" for n in (100, 70, 80, 89, 90)]
    conflicts = [e for c in report["components"] for e in c["evidence"] if "version conflict" in e]
    assert conflicts == []
    licence = f"{name.replace('-', '_')}-3.8.0.dist-info/licenses/License.txt"
    texts = [c for c in report["components"] if c["kind"] == "license-text"]
    assert [(_member(c["paths"][0]), c["version"], c["license"], c["properties"]["document"],
             c["properties"]["sha256"]) for c in texts] == [
        (licence, EULA_2018, f"LicenseRef-NVIDIA-CUDA-EULA-{EULA_2018}", "nvidia-sdk-eula-2018", EULA_2018_SHA256)]
    assert _governing(report) == {(m, "cuda-eula", EULA_2018) for m in libraries} | {(licence, "cuda-eula", None)}
    devices = {g["path"]: g for g in report["governing"] if g["scope"] == "device_code"}
    assert {_member(p) for p in {d["path"] for d in report["device_code"]}} == {_member(p) for p in devices}
    assert devices and {(g["document"], g["text"], g["basis"]) for g in devices.values()} == {
        ("cuda-eula", EULA_2018, "primary")}
    assert all(g["why"].startswith("part of nvshmem 3.8.0 (libnvshmem_") for g in devices.values())


def test_nvshmem_library_shipped_by_a_third_party_is_not_in_attachment_a(request, tmp_path):
    """libnvshmem_host.so.3 copied out of the wheel into an application: its own bytes say NVSHMEM 3.8.0
    ("NVSHMEM_ARTIFACT_VERSION=3.8.0"), whose wheel ships the 2018 text; that text's Attachment A lists no
    NVSHMEM file, and 2.2 makes the list the distributable portions."""
    try:
        wheel = licence_copies.wheel("nvidia-nvshmem-cu12", "3.8.0", realworld_enabled(request.config))
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))
    app = tmp_path / "dist" / "app"
    app.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        (app / "libnvshmem_host.so.3").write_bytes(zf.read("nvidia/nvshmem/lib/libnvshmem_host.so.3"))
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--no-cache", "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert [(f["rule"], f["verdict"], f["path"], f["clause"]["section"], f["clause"]["date"])
            for f in report["findings"]] == [
        ("CUDA-EULA-NOT-REDISTRIBUTABLE", "violation", "dist/app/libnvshmem_host.so.3", "2.2", EULA_2018)]
    (finding,) = report["findings"]
    assert finding["clause"]["text"] == ("The portions of the SDK that are distributable under the Agreement are "
                                         "listed in Attachment A.")
    assert finding["clause"]["document"].startswith(
        "License Agreement for NVIDIA Software Development Kits (Release Date: July 26, 2018)")
    assert finding["message"] == (
        "libnvshmem_host.so.3 (nvshmem 3.8.0) is a file of NVSHMEM, which is not part of the CUDA Toolkit but which "
        "NVIDIA ships under the governing text as its licence; Attachment A of " + finding["clause"]["document"]
        + " does not list it as distributable. libnvshmem_host.so.3 (a file for Linux) is not in Attachment A of the "
        "License Agreement for NVIDIA Software Development Kits (Release Date: July 26, 2018) + CUDA Toolkit "
        "Supplement (August 16, 2018), which lists no file of nvshmem under any component.")
    assert "marker 'NVSHMEM_ARTIFACT_VERSION=3.8.0' at 0x2bb070" in finding["evidence"]
    assert any(e.endswith("(the text that governs it): libnvshmem_host.so.3 is unlisted") for e in finding["evidence"])


def test_tensorrt_bindings_wheel_ships_the_tensorrt_sla(request, tmp_path_factory):
    """tensorrt-cu12-bindings 11.4.0.106's LICENSE.txt is the TensorRT SLA (its Supplement's 12.1 names libnvinfer
    and libnvinfer_plugin as distributable), identified by its hash and phrases; the wheel holds no library the
    catalog names."""
    _wheel, report = _report(request, tmp_path_factory, "tensorrt-cu12-bindings", "11.4.0.106")
    assert report["findings"] == [] and report["diagnostics"] == []
    (text,) = [c for c in report["components"] if c["kind"] == "license-text"]
    assert (_member(text["paths"][0]), text["license"], text["properties"]["document"], text["properties"]["sha256"]) == (
        "tensorrt_cu12_bindings-11.4.0.106.dist-info/licenses/LICENSE.txt", "LicenseRef-NVIDIA-TensorRT-SLA-2021",
        "tensorrt-sla-2021", "64bd290f0251405f783ba1d2e155c500542be69795e51147a1d9f11a57bda8cc")
    assert _components(report, "sdk-library") == {}


NVJPEG2K = "nvidia-nvjpeg2k-cu12", "0.11.0.51"
NVJPEG2K_LICENCE = "nvidia_nvjpeg2k_cu12-0.11.0.51.dist-info/licenses/LICENSE.txt"


@pytest.mark.parametrize("platform,files", [
    (None, ["nvidia/nvjpeg2k/lib/libnvjpeg2k.so.0"]),
    ("win_amd64", ["nvidia/nvjpeg2k/bin/nvjpeg2k_0.dll"]),
], ids=["linux", "windows"])
def test_nvjpeg2k_named_and_under_its_own_sla(request, tmp_path_factory, platform, files):
    """Both wheels ship the SDK agreement with the nvJPEG2K Supplement (v. November 14, 2020), whose Supplement 2
    lists "the runtime files .so and .h, nvjpeg2k_0.dll, nvjpeg2k.lib and libnvjpeg2k_static.a": NVIDIA's own
    wheel gives no finding."""
    wheel, report = _report(request, tmp_path_factory, *NVJPEG2K, platform)
    assert report["findings"] == [] and report["diagnostics"] == []
    assert _binaries(wheel) == files
    assert _components(report, "sdk-library") == {
        f: ("nvjpeg2k", "0.11.0.51", "LicenseRef-NVIDIA-nvJPEG2000-SLA") for f in files}
    assert {k: v[1:] for k, v in _components(report, "license-text").items()} == {
        NVJPEG2K_LICENCE: ("2020-11-14", "LicenseRef-NVIDIA-nvJPEG2000-SLA-2020-11-14")}
    assert _governing(report) == {(f, "nvjpeg2k-sla", "2020-11-14") for f in files} | {
        (NVJPEG2K_LICENCE, "nvjpeg2k-sla", None)}


def _wheels(request, name: str, version: str, *platforms: str | None) -> list[Path]:
    try:
        return [licence_copies.wheel(name, version, realworld_enabled(request.config), p) for p in platforms]
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))


def _audit_dir(cwd: Path, path: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", path, "--no-cache", "--format", "json"],
                          capture_output=True, text=True, cwd=cwd, timeout=900)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def _rules(report: dict) -> list[tuple[str, str, str]]:
    return sorted((f["rule"], f["verdict"], f["path"]) for f in report["findings"])


def _rocm(folder: Path) -> None:
    """A stub HIP runtime (libamdhip64.so.6 and its libhsa-runtime64.so.1, tests/layer_fixtures.py)."""
    from layer_fixtures import Stubs

    Stubs(folder).lib("libamdhip64.so.6")


def test_nvjpeg2k_vendored_by_a_third_party(request, tmp_path):
    """nvJPEG2000 copied out of NVIDIA's wheels into an application: the listed files as they are give no finding,
    nor does the DLL renamed (it declares nvjpeg2k_0.dll, a name Supplement 2 lists); an auditwheel graft is
    modified (2.2); beside a ROCm runtime, Supplement 4.1 (review)."""
    linux, windows = _wheels(request, *NVJPEG2K, None, "win_amd64")
    lib = zipfile.ZipFile(linux).read("nvidia/nvjpeg2k/lib/libnvjpeg2k.so.0")
    dll = zipfile.ZipFile(windows).read("nvidia/nvjpeg2k/bin/nvjpeg2k_0.dll")
    app = tmp_path / "dist" / "app"
    for folder, name, data in (("lib", "libnvjpeg2k.so.0", lib), ("bin", "nvjpeg2k_0.dll", dll),
                               ("bin", "jpeg2k.dll", dll), ("app.libs", "libnvjpeg2k-1a2b3c4d.so.0", lib)):
        (app / folder).mkdir(parents=True, exist_ok=True)
        (app / folder / name).write_bytes(data)
    code, report = _audit_dir(tmp_path, "dist")
    # The Linux library's bytes state no release (its version came from the wheel's metadata): under an unknown
    # text the graft is a review, since every nvJPEG2000 text licscan knows has 2.2.
    assert (code, _rules(report)) == (0, [
        ("NVJPEG2K-MODIFIED", "review", "dist/app/app.libs/libnvjpeg2k-1a2b3c4d.so.0")])
    (modified,) = report["findings"]
    assert (modified["clause"]["section"], modified["clause"]["date"]) == ("2.2", "2020-11-14")
    assert "is modified (auditwheel-grafted)" in modified["message"]
    assert "every text licscan knows has this clause" in modified["message"]
    (renamed,) = [c for c in report["components"] if "dist/app/bin/jpeg2k.dll" in c["paths"]]
    assert (renamed["version"], renamed["properties"]["declared_name"]) == ("0.11.0.51", "nvjpeg2k_0.dll")

    rocm = tmp_path / "rocm" / "app"
    rocm.mkdir(parents=True)
    (rocm / "libnvjpeg2k.so.0").write_bytes(lib)
    _rocm(rocm)
    code, report = _audit_dir(tmp_path, "rocm")
    assert (code, _rules(report)) == (0, [("NVJPEG2K-NVIDIA-GPU-ONLY", "review", "rocm/app/libnvjpeg2k.so.0")])
    assert report["findings"][0]["clause"]["section"] == "nvJPEG2K Supplement 4.1"


CUDSS_LICENCE = "nvidia_cudss_cu12-1.0.0.35.dist-info/licenses/LICENSE.txt"


def test_cudss_wheel_under_the_math_libraries_agreement_it_ships(request, tmp_path_factory):
    """nvidia-cudss-cu12 1.0.0.35 ships the "LICENSE AGREEMENT FOR NVIDIA MATH LIBRARIES SOFTWARE DEVELOPMENT KITS"
    (v. February 10, 2022): the library and the communication and threading layers NVIDIA builds are cuDSS under
    it; NVIDIA's wheel gives no finding."""
    wheel, report = _report(request, tmp_path_factory, "nvidia-cudss-cu12", "1.0.0.35")
    assert report["findings"] == [] and report["diagnostics"] == []
    files = _binaries(wheel)
    assert files == ["nvidia/cu12/lib/libcudss.so.1", "nvidia/cu12/lib/libcudss_commlayer_nccl.so.1",
                     "nvidia/cu12/lib/libcudss_commlayer_openmpi.so.1", "nvidia/cu12/lib/libcudss_mtlayer_gomp.so.1"]
    assert _components(report, "sdk-library") == {f: ("cudss", "1.0.0.35", "LicenseRef-NVIDIA-cuDSS-SLA") for f in files}
    assert {k: v[1:] for k, v in _components(report, "license-text").items()} == {
        CUDSS_LICENCE: ("2022-02-10", "LicenseRef-NVIDIA-cuDSS-SLA-2022-02-10")}
    assert _governing(report) == {(f, "cudss-sla", "2022-02-10") for f in files} | {(CUDSS_LICENCE, "cudss-sla", None)}


def test_cudss_layer_vendored(request, tmp_path):
    """A cuDSS threading layer in an application: grafted, it is not judged modified (its sources are
    BSD-3-Clause and users build their own); beside a ROCm runtime, 2.1 (review)."""
    (wheel,) = _wheels(request, "nvidia-cudss-cu12", "1.0.0.35", None)
    layer = zipfile.ZipFile(wheel).read("nvidia/cu12/lib/libcudss_mtlayer_gomp.so.1")
    app = tmp_path / "dist" / "app"
    app.mkdir(parents=True)
    (app / "libcudss_mtlayer_gomp-1a2b3c4d.so.1").write_bytes(layer)
    code, report = _audit_dir(tmp_path, "dist")
    (cudss,) = [c for c in report["components"] if c["name"] == "cudss"]
    assert cudss["properties"]["modified"] == "auditwheel-grafted"
    assert (code, _rules(report)) == (0, [])
    _rocm(app)
    code, report = _audit_dir(tmp_path, "dist")
    assert (code, _rules(report)) == (0, [
        ("CUDSS-NVIDIA-GPU-ONLY", "review", "dist/app/libcudss_mtlayer_gomp-1a2b3c4d.so.1")])
    assert report["findings"][0]["clause"]["text"] == (
        "2.1 The SDK is licensed for you to develop applications only for use in systems with NVIDIA GPUs.")


NVCOMP_TEXT = ("2022-04-26", "LicenseRef-NVIDIA-nvCOMP-SLA-2022-04-26")
#: nvCOMP's NOTICE: the third-party notices of the code in nvCOMP (rules/catalog/license-texts.yaml
#: nvcomp-third-party-notices), not nvCOMP's licence; it holds dlpack's whole Apache License 2.0 and was read as it.
NVCOMP_NOTICE = (None, "MIT AND BSD-3-Clause AND Zlib AND Apache-2.0 AND BSD-2-Clause")


@pytest.mark.parametrize("name,libraries,licences,notices", [
    ("nvidia-libnvcomp-cu12", ["nvidia/libnvcomp/bin/nvlzcat", "nvidia/libnvcomp/lib64/libnvcomp.so.6",
                               "nvidia/libnvcomp/lib64/libnvcomp_cpu.so.6"],
     ["nvidia/libnvcomp/LICENSE", "nvidia_libnvcomp_cu12-6.0.0.12.dist-info/licenses/LICENSE"],
     ["nvidia/libnvcomp/NOTICE", "nvidia_libnvcomp_cu12-6.0.0.12.dist-info/licenses/NOTICE"]),
    ("nvidia-nvcomp-cu12", [], ["nvidia_nvcomp_cu12-6.0.0.12.dist-info/licenses/LICENSE"],
     ["nvidia_nvcomp_cu12-6.0.0.12.dist-info/licenses/NOTICE"]),
], ids=["libraries", "python"])
def test_nvcomp_wheels_under_the_agreement_they_ship(request, tmp_path_factory, name, libraries, licences, notices):
    """nvidia-libnvcomp-cu12 6.0.0.12 ships the libraries, nvidia-nvcomp-cu12 the Python extensions (not named):
    both ship the SDK agreement that "governs your use of the NVIDIA nvCOMP software development kit" (v. April 26,
    2022); nvlzcat's device code is nvCOMP's."""
    _wheel, report = _report(request, tmp_path_factory, name, "6.0.0.12")
    assert report["findings"] == [] and report["diagnostics"] == []
    named = _components(report, "sdk-library")
    assert {k: v for k, v in named.items() if v[0] == "nvcomp"} == {
        f: ("nvcomp", "6.0.0.12", "LicenseRef-NVIDIA-nvCOMP-SLA") for f in libraries}
    # the Python extensions link the CUDA runtime statically: that part of them is named cudart (CUDA EULA)
    assert {v for v in named.values() if v[0] != "nvcomp"} <= {("cudart", None, "LicenseRef-NVIDIA-CUDA-EULA")}
    texts = {k: v[1:] for k, v in _components(report, "license-text").items()}
    assert texts == {licence: NVCOMP_TEXT for licence in licences} | {notice: NVCOMP_NOTICE for notice in notices}
    assert {(m, d, t) for m, d, t in _governing(report) if d == "nvcomp-sla"} == {
        (f, "nvcomp-sla", "2022-04-26") for f in libraries} | {(lic, "nvcomp-sla", None) for lic in licences}
    if libraries:
        devices = {(g["document"], g["text"]) for g in report["governing"] if g["scope"] == "device_code"}
        assert devices == {("nvcomp-sla", "2022-04-26")}


def test_nvcomp_grafted_into_an_application_wheel(request, tmp_path):
    """libnvcomp_cpu.so.6 grafted by auditwheel into a third party's wheel: modified (2.3). Its bytes state no
    release and its name only the major 6, so the text is unknown: every nvCOMP text licscan knows has 2.3, a
    review."""
    (wheel,) = _wheels(request, "nvidia-libnvcomp-cu12", "6.0.0.12", None)
    lib = zipfile.ZipFile(wheel).read("nvidia/libnvcomp/lib64/libnvcomp_cpu.so.6")
    dist = tmp_path / "dist"
    dist.mkdir()
    with zipfile.ZipFile(dist / "app-1.0-py3-none-manylinux_2_28_x86_64.whl", "w") as zf:
        zf.writestr("app.libs/libnvcomp_cpu-1a2b3c4d.so.6", lib)
        zf.writestr("app-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: app\nVersion: 1.0\n")
    code, report = _audit_dir(tmp_path, "dist")
    path = "dist/app-1.0-py3-none-manylinux_2_28_x86_64.whl!/app.libs/libnvcomp_cpu-1a2b3c4d.so.6"
    assert (code, _rules(report)) == (0, [("NVCOMP-MODIFIED", "review", path)])
    (finding,) = report["findings"]
    assert (finding["clause"]["section"], finding["clause"]["date"]) == ("2.3", "2022-04-26")
    assert "is modified (auditwheel-grafted)" in finding["message"]
    assert "every text licscan knows has this clause" in finding["message"]
