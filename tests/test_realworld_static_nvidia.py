"""NVIDIA libraries other than the runtime linked statically into third-party binaries, on real wheels: the PTX
compiler (libnvptxcompiler_static.a), nvJitLink (libnvJitLink_static.a) and NVRTC with its builtins
(libnvrtc_static.a, libnvrtc-builtins_static.a), each listed in Attachment A of the 2024 CUDA EULA.

Before: warp-lang's warp.so and pynvjitlink's module named none of them (warp's build script, shipped in its wheel as
warp/_src/build_dll.py, links "-lcudart_static -lnvrtc_static -lnvrtc-builtins_static -lnvptxcompiler_static" and
"-lnvJitLink_static"). Now the catalog's ``static`` evidence of each (rules/catalog/nvidia.yaml) names it as a
component of the binary, with ``linked_from`` and its release (the file's CUDA release line when every such line
states the same release; NVRTC's builtins: the CUDART_VERSION of their headers).

The evidence is checked against NVIDIA's own libraries (the static PTX compiler of nvidia-nvptxcompiler 13.4.92;
nvJitLink and NVRTC as shared libraries, which hold the same code: PyPI ships no static nvJitLink or NVRTC) and
against binaries that load these libraries (none named).

Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/census_wheels.py downloads into the test cache).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import census_wheels as cw
import pytest
from helpers import audit_json, run_licscan, sboms

from licscan.identify.catalog_table import load_catalog
from licscan.identify.versions import banner_claims

pytestmark = pytest.mark.realworld
EULA = "LicenseRef-NVIDIA-CUDA-EULA"
PYNVJITLINK = "pynvjitlink/_nvjitlinklib.cpython-312-x86_64-linux-gnu.so"




def _linked(report: dict) -> list[tuple[str, str | None, str | None, str, str, list[str]]]:
    return sorted((c["id"], c["properties"].get("version_range"), c["properties"].get("version_source"),
                   c["properties"]["linked_from"], c["license"], [p.rsplit("!/", 1)[1] for p in c["paths"]])
                  for c in report["components"] if "linked_from" in c["properties"])


def _warp(names: dict[str, str], path: str, cudart: str) -> list[tuple]:
    return [("sdk-library:nvidia/cudart@13.4.x", "13.4.x", cudart, names["cudart"], EULA, [path]),
            ("sdk-library:nvidia/nvjitlink@13.4.92", None, "marker", names["nvJitLink"], EULA, [path]),
            ("sdk-library:nvidia/nvptxcompiler@13.4.92", None, "marker", names["nvptxcompiler"], EULA, [path]),
            ("sdk-library:nvidia/nvrtc-builtins@13.4.x", "13.4.x", "marker", names["nvrtc-builtins"], EULA, [path]),
            ("sdk-library:nvidia/nvrtc@13.4.92", None, "marker", names["nvrtc"], EULA, [path])]


ELF_NAMES = {"cudart": "libcudart_static.a", "nvJitLink": "libnvJitLink_static.a",
             "nvptxcompiler": "libnvptxcompiler_static.a", "nvrtc": "libnvrtc_static.a",
             "nvrtc-builtins": "libnvrtc-builtins_static.a"}
PE_NAMES = {"cudart": "cudart_static.lib", "nvJitLink": "nvJitLink_static.lib",
            "nvptxcompiler": "nvptxcompiler_static.lib", "nvrtc": "nvrtc_static.lib",
            "nvrtc-builtins": "nvrtc-builtins_static.lib"}
OTHERS = ("nvjitlink@13.4.92", "nvptxcompiler@13.4.92", "nvrtc-builtins@13.4.x", "nvrtc@13.4.92")


@pytest.mark.parametrize("dist,version,platform,expected,findings", [
    # No EULA text is mapped to 13.4 (rules/licenses/documents.yaml): a review of each part. The 2024 text lists
    # libnvjitlink_static.a, libnvptxcompiler_static.a, libnvrtc_static.a and libnvrtc-builtins_static.a, the older
    # texts do not: which text governs is not known, so "undetermined" notes.
    ("warp-lang", "1.19.0", cw.LINUX, _warp(ELF_NAMES, "warp/bin/warp.so", "marker"),
     sorted([("CUDA-EULA-NOT-REDISTRIBUTABLE", "note", f"sdk-library:nvidia/{p}") for p in OTHERS]
            + [("CUDA-EULA-TEXT-UNKNOWN", "warning", f"sdk-library:nvidia/{p}")
               for p in ("cudart@13.4.x",) + OTHERS])),
    # No text lists a Windows static library of the four (Attachment A names .a files only): unlisted in each.
    ("warp-lang", "1.19.0", cw.WINDOWS, _warp(PE_NAMES, "warp/bin/warp.dll", "device-code"),
     sorted([("CUDA-EULA-NOT-REDISTRIBUTABLE", "warning", f"sdk-library:nvidia/{p}") for p in OTHERS]
            + [("CUDA-EULA-TEXT-UNKNOWN", "warning", f"sdk-library:nvidia/{p}")
               for p in ("cudart@13.4.x",) + OTHERS])),
    # nvJitLink 12.9.86 and the PTX compiler it links with; the text of 12.9 lists both.
    ("pynvjitlink-cu12", "0.7.0", cw.LINUX,
     [("sdk-library:nvidia/nvjitlink@12.9.86", None, "marker", "libnvJitLink_static.a", EULA, [PYNVJITLINK]),
      ("sdk-library:nvidia/nvptxcompiler@12.9.86", None, "marker", "libnvptxcompiler_static.a", EULA, [PYNVJITLINK])],
     []),
])
def test_statically_linked_nvidia_libraries_are_components(pytestconfig, tmp_path, dist, version, platform, expected,
                                                           findings):
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, dist, version, platform))
    assert _linked(report) == expected
    assert sorted((f["rule"], f["severity"], f["component"]) for f in report["findings"]) == findings
    assert report["diagnostics"] == []


def test_release_evidence_of_pynvjitlink(pytestconfig, tmp_path):
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, "pynvjitlink-cu12", "0.7.0", cw.LINUX))
    jitlink, = (c for c in report["components"] if c["name"] == "nvJitLink")
    assert [e.split("!/", 1)[1] for e in jitlink["evidence"]] == [
        f"{PYNVJITLINK}: marker 'Cuda compilation tools, release 12.9, V12.9.86' at 0x62d2cc0, the release of all 5 "
        "CUDA release lines of the file",
        f"{PYNVJITLINK}: nvJitLink: linked from libnvJitLink_static.a: 'Ptx optimizing assembler' at 0x6794689, "
        "'bad input: does not match type NVJITLINK_INPUT_PTX' at 0x6193b38 (rules/catalog/nvidia.yaml: nvJitLink "
        "static)"]
    data = zipfile.ZipFile(cw.wheel_or_skip(pytestconfig, "pynvjitlink-cu12", "0.7.0", cw.LINUX)).read(PYNVJITLINK)
    assert (data.find(b"Cuda compilation tools, release 12.9, V12.9.86"), data.find(b"Ptx optimizing assembler"),
            data.find(b"bad input: does not match type NVJITLINK_INPUT_PTX")) == (0x62d2cc0, 0x6794689, 0x6193b38)
    assert data.count(b"Cuda compilation tools, release ") == 7  # 5 lines and 2 format strings ("release %d.%d")


@pytest.mark.parametrize("dist,version,platform", [
    ("jax-cuda12-pjrt", "0.12.0.1", cw.LINUX),  # loads nvJitLink (a stub), names libnvptxcompiler's provider only
    ("onnxruntime-gpu", "1.31.1", cw.LINUX),  # its CUDA provider loads NVRTC
    ("cuda-bindings", "13.5.0", cw.LINUX),  # its nvrtc module binds libnvrtc.so
    ("triton", "3.9.0", cw.LINUX),  # ships ptxas executables: tools, not linked libraries
    ("torchvision", "0.29.1", cw.LINUX),  # bundles libnvjpeg, which loads nvJitLink
    ("cumm-cu128", "0.8.2", cw.LINUX)])  # bundles libnvrtc 12.8.93 (auditwheel-grafted): the file is NVRTC
def test_binaries_that_load_them_link_none(pytestconfig, tmp_path, dist, version, platform):
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, dist, version, platform))
    assert [part for part in _linked(report) if not part[0].startswith("sdk-library:nvidia/cudart@")] == []
    assert report["diagnostics"] == []


def test_a_bundled_nvrtc_is_the_file_not_a_linked_part(pytestconfig, tmp_path):
    """cumm-cu128 ships NVRTC's shared libraries (renamed by auditwheel): they hold NVRTC's and the PTX compiler's
    strings and are named as NVRTC, by name, not as binaries NVRTC is linked into."""
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, "cumm-cu128", "0.8.2", cw.LINUX))
    assert sorted((c["id"], c["properties"].get("linked_from"), [p.rsplit("!/", 1)[1] for p in c["paths"]])
                  for c in report["components"] if c["name"] in ("nvrtc", "nvrtc-builtins", "nvptxcompiler")) == [
        ("sdk-library:nvidia/nvrtc-builtins@12.8.93", None, ["cumm_cu128.libs/libnvrtc-builtins-eccaa824.so.12.8.93"]),
        ("sdk-library:nvidia/nvrtc@12.8.93", None, ["cumm_cu128.libs/libnvrtc-2bb82d1a.so.12.8.93"])]


def test_the_ptx_compiler_wheel_is_nvidias(pytestconfig, tmp_path):
    """nvidia-nvptxcompiler 13.4.92 (NVIDIA's "PTX Compiler Libraries" wheel) ships libnvptxcompiler_static.a: the
    PTX compiler at the wheel's version, under the CUDA EULA text shipped beside it (no text is known to be published
    with CUDA 13.4). Before the catalog listed the wheel: nvptxcompiler@unknown, governed by no known release."""
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, "nvidia-nvptxcompiler", "13.4.92", cw.LINUX))
    assert [(c["id"], c["license"], c["properties"].get("version_source"), c["properties"].get("distribution"),
             [p.rsplit("!/", 1)[1] for p in c["paths"]]) for c in report["components"]
            if c["id"].startswith("sdk-library:")] == [
        ("sdk-library:nvidia/nvptxcompiler@13.4.92", EULA, "distribution-metadata", "nvidia-nvptxcompiler",
         ["nvidia/cu13/lib/libnvptxcompiler_static.a"])]
    assert [(g["component"], g["license"], g["basis"]) for g in report["governing"]
            if g["component"].startswith("sdk-library:")] == [
        ("sdk-library:nvidia/nvptxcompiler@13.4.92", "LicenseRef-NVIDIA-CUDA-EULA-2018-07-26", "shipped")]


#: NVIDIA's own libraries: (pin, member, the evidence the catalog finds there by entry, the release of its lines)
NVIDIA_LIBRARIES = [
    (cw.Pin("nvidia-nvptxcompiler", "13.4.92", cw.LINUX), "nvidia/cu13/lib/libnvptxcompiler_static.a",
     {"nvptxcompiler"}, "13.4.92"),
    # nvJitLink and NVRTC as shared libraries hold the PTX compiler they link with.
    (cw.Pin("nvidia-nvjitlink", "13.4.92", cw.LINUX), "nvidia/cu13/lib/libnvJitLink.so.13",
     {"nvJitLink", "nvptxcompiler"}, "13.4.92"),
    (cw.Pin("nvidia-nvjitlink-cu12", "12.9.86", cw.WINDOWS), "nvidia/nvjitlink/bin/nvJitLink_120_0.dll",
     {"nvJitLink", "nvptxcompiler"}, "12.9.86"),
    (cw.Pin("nvidia-cuda-nvrtc", "13.4.92", cw.LINUX), "nvidia/cu13/lib/libnvrtc.so.13",
     {"nvrtc", "nvptxcompiler"}, "13.4.92"),
    (cw.Pin("nvidia-cuda-nvrtc-cu12", "12.9.86", cw.LINUX), "nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
     {"nvrtc", "nvptxcompiler"}, "12.9.86"),
    (cw.Pin("nvidia-cuda-nvrtc-cu12", "12.9.86", cw.WINDOWS), "nvidia/cuda_nvrtc/bin/nvrtc64_120_0.dll",
     {"nvrtc", "nvptxcompiler"}, "12.9.86")]


@pytest.mark.parametrize("pin,member,entries,release", NVIDIA_LIBRARIES)
def test_catalog_evidence_is_in_nvidias_libraries(pytestconfig, pin, member, entries, release):
    data = cw.member_or_skip(pytestconfig, pin, member)
    cat = load_catalog()
    held = {e.name for e in cat.entries if e.static is not None and e.static.gate is not None
            and any(all(lit in data for lit in group) for group in e.static.evidence)}
    assert held == entries
    assert [c.value for c in banner_claims(data, cat.release_banner)] == [release]


def test_builtins_hold_the_marker_of_their_release(pytestconfig):
    """libnvrtc-builtins' headers state the CUDART_VERSION the static builtins are named by; libnvrtc holds none."""
    wheel = cw.wheel_or_skip(pytestconfig, "nvidia-cuda-nvrtc", "13.4.92", cw.LINUX)
    with zipfile.ZipFile(wheel) as zf:
        builtins = zf.read("nvidia/cu13/lib/libnvrtc-builtins.so.13.4")
        nvrtc = zf.read("nvidia/cu13/lib/libnvrtc.so.13")
    assert builtins.count(b"#define CUDART_VERSION 13040") == 1
    assert b"#define CUDART_VERSION " not in nvrtc


def test_sbom_links_each_part_into_its_binary(pytestconfig, tmp_path):
    wheel = cw.wheel_or_skip(pytestconfig, "pynvjitlink-cu12", "0.7.0", cw.LINUX)
    doc, bom = sboms(tmp_path, wheel)
    parts = {p["name"]: p for p in doc["packages"] if p["name"] in ("nvJitLink", "nvPTXCompiler")}
    assert {name: (p["versionInfo"], p["licenseConcluded"]) for name, p in parts.items()} == {
        "nvJitLink": ("12.9.86", "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07"),
        "nvPTXCompiler": ("12.9.86", "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07")}
    so, = (f for f in doc["files"] if f["fileName"].endswith(PYNVJITLINK))
    links = sorted((r["spdxElementId"], r["relatedSpdxElement"], r.get("comment"))
                   for r in doc["relationships"] if r["relationshipType"] == "STATIC_LINK")
    assert links == sorted([(so["SPDXID"], parts["nvJitLink"]["SPDXID"], "linked from libnvJitLink_static.a"),
                            (so["SPDXID"], parts["nvPTXCompiler"]["SPDXID"],
                             "linked from libnvptxcompiler_static.a")])
    deps = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert {parts["nvJitLink"]["SPDXID"], parts["nvPTXCompiler"]["SPDXID"]} <= set(deps[so["SPDXID"]])


def test_reports_say_how_each_part_is_there(pytestconfig, tmp_path):
    wheel = cw.wheel_or_skip(pytestconfig, "pynvjitlink-cu12", "0.7.0", cw.LINUX)
    text = run_licscan(tmp_path, "audit", str(wheel), "--no-cache").stdout.splitlines()
    assert [line for line in text if "linked from" in line] == [
        "  component NVIDIA nvJitLink 12.9.86 (sdk-library; linked from libnvJitLink_static.a), license "
        "LicenseRef-NVIDIA-CUDA-EULA",
        "  component NVIDIA nvptxcompiler 12.9.86 (sdk-library; linked from libnvptxcompiler_static.a), license "
        "LicenseRef-NVIDIA-CUDA-EULA"]
    markdown = run_licscan(tmp_path, "audit", str(wheel), "--no-cache", "--format", "markdown").stdout.splitlines()
    assert [line for line in markdown if "linked from" in line] == [
        f"| nvJitLink | NVIDIA | sdk-library (linked from libnvJitLink_static.a) | 12.9.86 | {EULA} | "
        f"`{wheel}!/{PYNVJITLINK}` |",
        f"| nvptxcompiler | NVIDIA | sdk-library (linked from libnvptxcompiler_static.a) | 12.9.86 | {EULA} | "
        f"`{wheel}!/{PYNVJITLINK}` |"]


def test_inspect_lists_the_libraries_linked_into_a_module(pytestconfig, tmp_path):
    wheel = cw.wheel_or_skip(pytestconfig, "pynvjitlink-cu12", "0.7.0", cw.LINUX)
    with zipfile.ZipFile(wheel) as zf:
        module = Path(zf.extract(PYNVJITLINK, tmp_path))
    lines = run_licscan(tmp_path, "inspect", str(module)).stdout.splitlines()
    assert [line for line in lines if line.startswith("  LINKED")] == [
        "  LINKED   NVIDIA nvJitLink 12.9.86 (marker) from libnvJitLink_static.a",
        "  LINKED   NVIDIA nvPTXCompiler 12.9.86 (marker) from libnvptxcompiler_static.a"]
    module.unlink()


TITLE_2024 = "NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 12, 2024)"
GRANT_2_2 = "The portions of the SDK that are distributable under the Agreement are listed in Attachment A."
GRANT_1_1_1 = ("Distribute those portions of the SDK that are identified in this Agreement as distributable, as "
               "incorporated in object code format into a software application that meets the distribution "
               "requirements indicated in this Agreement.")
#: what the examined texts list instead, per part of warp.dll (tests/test_attachment_a_static.py has the texts)
_NVRTC_WINDOWS = ('"NVIDIA Runtime Compilation Library and Header" for Windows only nvrtc.dll, nvrtc-builtins.dll')
_READ_AS_2024 = "2024-01-12, 2025-01-07 (not examined; read as 2024-01-12) and 2026-01-26 (not examined; read as " \
                "2024-01-12)"
_ALL_TEXTS = "2018-07-26, 2020-11-02, 2021-10-08, 2024-01-12, 2025-01-07 and 2026-01-26"
WARP_DLL_UNLISTED = {
    "sdk-library:nvidia/nvrtc@13.4.92":
        f"nvrtc_static.lib (a static library for Windows) is not in Attachment A of the texts of {_ALL_TEXTS}: the "
        f"texts of 2018-07-26, 2020-11-02 and 2021-10-08 list under {_NVRTC_WINDOWS} (no static library there for "
        f"any platform); the texts of {_READ_AS_2024} list under {_NVRTC_WINDOWS} (static libraries there: "
        "libnvrtc_static.a, libnvrtc-builtins_static.a, not Windows files).",
    "sdk-library:nvidia/nvrtc-builtins@13.4.x":
        f"nvrtc-builtins_static.lib (a static library for Windows) is not in Attachment A of the texts of "
        f"{_ALL_TEXTS}: the texts of 2018-07-26, 2020-11-02 and 2021-10-08 list under {_NVRTC_WINDOWS} (no static "
        f"library there for any platform); the texts of {_READ_AS_2024} list under {_NVRTC_WINDOWS} (static "
        "libraries there: libnvrtc_static.a, libnvrtc-builtins_static.a, not Windows files).",
    "sdk-library:nvidia/nvjitlink@13.4.92":
        f"nvJitLink_static.lib (a static library for Windows) is not in Attachment A of the texts of {_ALL_TEXTS}: "
        "the texts of 2018-07-26, 2020-11-02 and 2021-10-08 list no file of nvJitLink under any component; the "
        f'texts of {_READ_AS_2024} list under "NVIDIA JIT Linking Library" for Windows only libnvJitLink.dll, '
        "libnvJitLink.lib (static libraries there: libnvJitLink_static.a, not Windows files).",
    "sdk-library:nvidia/nvptxcompiler@13.4.92":
        f"nvptxcompiler_static.lib (a static library for Windows) is not in Attachment A of the texts of "
        f"{_ALL_TEXTS}: the texts of 2018-07-26, 2020-11-02 and 2021-10-08 list no file of nvptxcompiler under any "
        f'component; the texts of {_READ_AS_2024} list under "NVIDIA CUDA Driver Libraries" no file for Windows '
        "(static libraries there: libnvptxcompiler_static.a, not Windows files)."}


def test_warp_dll_static_libraries_against_attachment_a(pytestconfig, tmp_path):
    """warp.dll (CUDA 13.4: no text is mapped to it, so every text licscan knows is read): cudart_static.lib is in
    the "CUDA Runtime" Windows row of every text, so the runtime gets no CUDA-EULA-NOT-REDISTRIBUTABLE; the four
    other static libraries are in no text's Windows row, each a review citing 2.2 (Attachment A) of the 2024 text
    (the newest examined, which the 2025 and 2026 texts are read as), the message saying per text what it lists
    instead. Every part also gets the CUDA-EULA-TEXT-UNKNOWN review (1.1.1(3))."""
    report = audit_json(tmp_path, cw.wheel_or_skip(pytestconfig, "warp-lang", "1.19.0", cw.WINDOWS))
    assert sorted((f["rule"], f["verdict"], f["severity"], f["component"], f["path"].rsplit("!/", 1)[1],
                   f["clause"]["document"], f["clause"]["section"], f["clause"]["text"])
                  for f in report["findings"]) == sorted(
        [("CUDA-EULA-NOT-REDISTRIBUTABLE", "review", "warning", component, "warp/bin/warp.dll", TITLE_2024, "2.2",
          GRANT_2_2) for component in WARP_DLL_UNLISTED]
        + [("CUDA-EULA-TEXT-UNKNOWN", "review", "warning", f"sdk-library:nvidia/{p}", "warp/bin/warp.dll",
            TITLE_2024, "1.1.1(3)", GRANT_1_1_1) for p in ("cudart@13.4.x",) + OTHERS])
    said = {f["component"]: f["message"].split(" does not list it as distributable. ", 1)[1].split(" Review: ")[0]
            for f in report["findings"] if f["rule"] == "CUDA-EULA-NOT-REDISTRIBUTABLE"}
    assert said == WARP_DLL_UNLISTED
