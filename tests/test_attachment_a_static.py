"""Attachment A of each examined CUDA EULA text for the libraries linked statically into third-party binaries
(rules/attachment-a.yaml; docs/licenses.md#windows-static-libraries).

Each examined text (2018: PyPI License.txt; 2020: Debian 11.2.2 copyright; 2021: Debian 11.8 EULA.txt; 2024: Debian
12.4.1 and 12.5.0 EULA.txt) lists one Windows static library, under "CUDA Runtime": "cudart.dll, cudart_static.lib,
cudadevrt.lib". For NVRTC each lists on Windows "nvrtc.dll, nvrtc-builtins.dll" only; the 2024 text adds the Linux
"libnvrtc_static.a, libnvrtx-builtins_static.a" [sic], "libnvJitLink.dll, libnvJitLink.lib" / "libnvJitLink.so,
libnvJitLink_static.a" and, under "NVIDIA CUDA Driver Libraries", Linux only, "libnvptxcompiler_static.a".
tests/test_realworld_attachment_a.py checks the data against the primary copies themselves.

A statically linked part is distributable exactly when the text that governs it lists its static library for the
platform; otherwise CUDA-EULA-NOT-REDISTRIBUTABLE cites 2.2 of that text and says what it lists instead.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from licscan.rules import attachment
from licscan.rules.attachment import Platform, canonical, platform_of
from licscan.rules.engine import evaluate
from licscan.rules.loader import load_packs

DATA = attachment.load()
EXAMINED = ("2018-07-26", "2020-11-02", "2021-10-08", "2024-01-12")
WINDOWS_STATIC = ("cudart_static.lib", "nvrtc_static.lib", "nvrtc-builtins_static.lib", "nvptxcompiler_static.lib",
                  "nvJitLink_static.lib")
LINUX_STATIC = ("libcudart_static.a", "libnvrtc_static.a", "libnvrtc-builtins_static.a", "libnvptxcompiler_static.a",
                "libnvJitLink_static.a")
TITLE_2024 = "NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 12, 2024)"
TITLE_2021 = "NVIDIA CUDA Toolkit End User License Agreement (Last updated: October 8, 2021)"
GRANT_2_2 = "The portions of the SDK that are distributable under the Agreement are listed in Attachment A."
NVRTC = "NVIDIA Runtime Compilation Library and Header"


def _status(name: str) -> dict[str, str]:
    return {tid: DATA.status(name, DATA.text(tid)) for tid in EXAMINED}


@pytest.mark.parametrize("name,listed_in", [
    ("cudart_static.lib", EXAMINED), ("cudadevrt.lib", EXAMINED),
    ("nvrtc_static.lib", ()), ("nvrtc-builtins_static.lib", ()), ("nvptxcompiler_static.lib", ()),
    ("nvJitLink_static.lib", ()),
    ("libcudart_static.a", EXAMINED), ("libnvrtc_static.a", ("2024-01-12",)),
    ("libnvrtc-builtins_static.a", ("2024-01-12",)), ("libnvptxcompiler_static.a", ("2024-01-12",)),
    ("libnvJitLink_static.a", ("2024-01-12",)),
])
def test_static_libraries_by_text(name, listed_in):
    assert _status(name) == {tid: "listed" if tid in listed_in else "unlisted" for tid in EXAMINED}


def test_windows_static_libraries_listed_by_each_text():
    """Of every name the data holds, the Windows static libraries each examined text lists."""
    for tid in EXAMINED:
        listed = sorted(n for item in DATA.listings if tid in item.texts for n in item.names
                        if platform_of(n) is Platform.WINDOWS and attachment.is_static(n))
        assert listed == ["cudart_static.lib"], tid


def test_the_static_suffix_is_no_variant():
    """"_static" is no "version number or architecture specific information": nvJitLink_static.lib is not read as
    the listed libnvJitLink.lib / nvJitLink.lib, whereas nvJitLink_120_0.dll is read as nvJitLink.dll."""
    assert canonical("nvJitLink_static.lib") == "nvjitlink_static.lib"
    assert canonical("nvrtc_static.lib") == "nvrtc_static.lib"
    assert DATA.status("nvJitLink_120_0.dll", DATA.text("2024-01-12")) == "listed"
    assert DATA.status("nvJitLink.lib", DATA.text("2024-01-12")) == "listed"


@pytest.mark.parametrize("name,platform", [
    ("nvrtc_static.lib", Platform.WINDOWS), ("nvrtc64_120_0.dll", Platform.WINDOWS),
    ("libnvrtc_static.a", Platform.LINUX), ("libnvrtc.so.12", Platform.LINUX), ("libcublas.12.dylib", Platform.MACOS),
    ("nvrtc.h", Platform.ALL), ("libdevice.10.bc", Platform.ALL)])
def test_platform_of_a_name(name, platform):
    assert platform_of(name) is platform


def test_what_each_text_lists_instead():
    text = DATA.text
    assert DATA.unlisted_because("nvrtc_static.lib", "nvrtc", [text("2024-01-12")]) == (
        f'nvrtc_static.lib (a static library for Windows) is not in Attachment A of the {TITLE_2024}, which lists '
        f'under "{NVRTC}" for Windows only nvrtc.dll, nvrtc-builtins.dll (static libraries there: libnvrtc_static.a, '
        'libnvrtc-builtins_static.a, not Windows files).')
    assert DATA.unlisted_because("nvptxcompiler_static.lib", "nvptxcompiler", [text("2024-01-12")]) == (
        f"nvptxcompiler_static.lib (a static library for Windows) is not in Attachment A of the {TITLE_2024}, "
        'which lists under "NVIDIA CUDA Driver Libraries" no file for Windows (static libraries there: '
        "libnvptxcompiler_static.a, not Windows files).")
    assert DATA.unlisted_because("nvJitLink_static.lib", "nvJitLink", [text(t) for t in EXAMINED]) == (
        "nvJitLink_static.lib (a static library for Windows) is not in Attachment A of the texts of 2018-07-26, "
        "2020-11-02, 2021-10-08 and 2024-01-12: the texts of 2018-07-26, 2020-11-02 and 2021-10-08 list no file of "
        'nvJitLink under any component; the text of 2024-01-12 lists under "NVIDIA JIT Linking Library" for Windows '
        "only libnvJitLink.dll, libnvJitLink.lib (static libraries there: libnvJitLink_static.a, not Windows "
        "files).")
    # an unexamined text is read as the newest examined one before it, and says so
    assert DATA.unlisted_because("nvrtc-builtins_static.lib", "nvrtc-builtins", [text("2025-01-07")]) == (
        "nvrtc-builtins_static.lib (a static library for Windows) is not in Attachment A of the NVIDIA CUDA Toolkit "
        "End User License Agreement (Last updated: January 7, 2025) (not examined; read as the "
        f'{TITLE_2024}), which lists under "{NVRTC}" for Windows only nvrtc.dll, nvrtc-builtins.dll (static '
        "libraries there: libnvrtc_static.a, libnvrtc-builtins_static.a, not Windows files).")
    # listed: nothing to say
    assert DATA.unlisted_because("cudart_static.lib", "cudart", [text(t) for t in EXAMINED]) == ""


def _warp_like(version: str, names: dict[str, str]) -> dict:
    """A report of one binary that links the five parts warp.dll / warp.so link, all of toolkit ``version``."""
    document = json.loads((Path(__file__).parent / "rules" / "CUDA-EULA-NOT-REDISTRIBUTABLE" / "positive"
                           / "report.json").read_text())
    binary = "dist/app.whl!/app/bin/app." + ("dll" if names["cudart"].endswith(".lib") else "so")
    document["components"] = [
        {"evidence": [f"linked from {library}"], "id": f"{part}-1", "kind": "sdk-library",
         "license": "LicenseRef-NVIDIA-CUDA-EULA", "name": part, "paths": [binary],
         "properties": {"linked_from": library}, "vendor": "NVIDIA", "version": version}
        for part, library in names.items()]
    return document


PE = {"cudart": "cudart_static.lib", "nvrtc": "nvrtc_static.lib", "nvrtc-builtins": "nvrtc-builtins_static.lib",
      "nvptxcompiler": "nvptxcompiler_static.lib", "nvJitLink": "nvJitLink_static.lib"}
ELF = {"cudart": "libcudart_static.a", "nvrtc": "libnvrtc_static.a", "nvrtc-builtins": "libnvrtc-builtins_static.a",
       "nvptxcompiler": "libnvptxcompiler_static.a", "nvJitLink": "libnvJitLink_static.a"}


def _found(document: dict) -> list[tuple[str, str | None, str, str, str, str, str]]:
    return sorted((f.rule, f.component, f.verdict.value, f.severity.value, f.clause.document, f.clause.section,
                   f.clause.text) for f in evaluate(copy.deepcopy(document), load_packs()))


def test_windows_static_libraries_under_the_2024_text():
    """CUDA 12.4 (the 2024 text, read from Debian's 12.4.1 copy): the runtime's cudart_static.lib is listed, the
    four others are not (a violation each, citing 2.2 of that text), and the message says what it lists."""
    findings = evaluate(_warp_like("12.4.127", PE), load_packs())
    assert _found(_warp_like("12.4.127", PE)) == [
        ("CUDA-EULA-NOT-REDISTRIBUTABLE", f"{part}-1", "violation", "error", TITLE_2024, "2.2", GRANT_2_2)
        for part in ("nvJitLink", "nvptxcompiler", "nvrtc", "nvrtc-builtins")]
    nvrtc, = (f for f in findings if f.component == "nvrtc-1")
    assert nvrtc.message == (
        "app.dll (nvrtc 12.4.127) is a CUDA Toolkit file (toolkit 12.4.127); Attachment A of "
        f"{TITLE_2024} does not list it as distributable. nvrtc_static.lib (a static library for Windows) is not in "
        f'Attachment A of the {TITLE_2024}, which lists under "{NVRTC}" for Windows only nvrtc.dll, '
        "nvrtc-builtins.dll (static libraries there: libnvrtc_static.a, libnvrtc-builtins_static.a, not Windows "
        "files).")


def test_linux_static_libraries_under_the_2024_text():
    """The same parts from their Linux static libraries: the 2024 text lists all five."""
    assert _found(_warp_like("12.4.127", ELF)) == []


def test_static_libraries_under_the_2021_text():
    """CUDA 11.8 (the 2021 text, Debian's 11.8 copy; nvJitLink came with 12.0): only the runtime's static
    libraries are listed, on both platforms."""
    for names in (PE, ELF):
        parts = {part: library for part, library in names.items() if part != "nvJitLink"}
        assert _found(_warp_like("11.8.89", parts)) == [
            ("CUDA-EULA-NOT-REDISTRIBUTABLE", f"{part}-1", "violation", "error", TITLE_2021, "2.2", GRANT_2_2)
            for part in ("nvptxcompiler", "nvrtc", "nvrtc-builtins")]
