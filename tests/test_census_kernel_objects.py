"""The driver's kernel objects in a DKMS source tree, audited whole (docs/census.md, the sweep of December 7: Debian's
nvidia-kernel-dkms and nvidia-open-kernel-dkms 550.163.01-2 named no NVIDIA part).

NVIDIA's prebuilt ``nv-kernel.o_binary`` is part of the driver: under the NVIDIA Driver License Agreement, whose
1.1(d)(ii) asks that the Agreement be provided to each recipient (Debian's package ships it as its copyright file).
The objects built from the open sources are MIT OR GPL-2.0-only and judged by no NVIDIA clause. The objects are made
here from the "nvidia id:" lines of the real ones (tests/test_catalog.py); no NVIDIA binary is committed."""
from __future__ import annotations

import json
from pathlib import Path

from helpers import audit_json, run_licscan
from test_catalog import KERNEL_OBJECTS, kernel_object

AGREEMENT = ("NVIDIA Driver License Agreement\n\nIMPORTANT NOTICE - PLEASE READ AND AGREE BEFORE USING THE SOFTWARE.\n"
             "... provided that (i) the binary files thereof are not modified in any way (except for uncompressing of "
             "compressed files) and (ii) this Agreement is provided to each SOFTWARE recipient.\n")


def _tree(tmp_path: Path, flavour: str, agreement: bool = False) -> Path:
    root = tmp_path / "dist"
    for name, line, _, kind in KERNEL_OBJECTS:
        if kind == flavour:
            path = root / "usr/src/nvidia-current-550.163.01" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            work = tmp_path / f"build-{path.stem}"
            work.mkdir(exist_ok=True)
            path.write_bytes(kernel_object(work, line))
    if agreement:
        (root / "usr/share/doc/nvidia-kernel-dkms").mkdir(parents=True)
        (root / "usr/share/doc/nvidia-kernel-dkms/copyright").write_text(AGREEMENT)
    return root


def _parts(report: dict) -> list[tuple]:
    return sorted((c["name"], c["version"], c["license"], c["properties"].get("flavour"))
                  for c in report["components"] if c["vendor"] == "NVIDIA" and c["kind"] == "kernel-module")


def test_proprietary_kernel_objects_without_the_agreement(tmp_path):
    # exit 1: violations (errors) fail the gate at the default --fail-on error
    run_licscan(tmp_path, "audit", str(_tree(tmp_path, "proprietary")), "--no-cache", "--format", "json", "-o",
                str(tmp_path / "report.json"), code=1)
    report = json.loads((tmp_path / "report.json").read_text())
    assert _parts(report) == [("nvidia-kernel-object", "550.163.01", "LicenseRef-NVIDIA-Driver", "proprietary")]
    governing = {g["path"].rsplit("/", 1)[1]: (g["document"], g["text"], g["basis"]) for g in report["governing"]}
    assert governing == {"nv-kernel.o_binary": ("nvidia-driver", "driver-agreement", "primary"),
                         "nv-modeset-kernel.o_binary": ("nvidia-driver", "driver-agreement", "primary")}
    got = sorted((f["rule"], f["verdict"], f["clause"]["document"], f["clause"]["section"], f["path"].rsplit("/", 1)[1])
                 for f in report["findings"])
    assert got == [
        ("NVIDIA-DRIVER-LICENSE-NOT-PROVIDED", "violation", "NVIDIA Driver License Agreement", "1.1(d)",
         "nv-kernel.o_binary"),
        ("NVIDIA-DRIVER-LICENSE-NOT-PROVIDED", "violation", "NVIDIA Driver License Agreement", "1.1(d)",
         "nv-modeset-kernel.o_binary")]
    assert all("this Agreement is provided to each SOFTWARE recipient" in f["clause"]["text"]
               for f in report["findings"])


def test_proprietary_kernel_objects_with_the_agreement(tmp_path):
    report = audit_json(tmp_path, _tree(tmp_path, "proprietary", agreement=True))
    assert report["summary"]["complete"] is True and report["findings"] == []


def test_open_kernel_objects_are_judged_by_no_nvidia_clause(tmp_path):
    report = audit_json(tmp_path, _tree(tmp_path, "open"))
    assert _parts(report) == [("nvidia-kernel-object", "550.163.01", "MIT OR GPL-2.0-only", "open")]
    assert {g["document"] for g in report["governing"]} == {"nvidia-open-kernel-modules"}
    assert report["findings"] == [] and report["summary"]["complete"] is True
