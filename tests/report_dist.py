"""The fixed dist the report tests scan: tests/fixtures/cuda13/libkern.so (NVIDIA device code, CUDA 13.0.88), a
ZLUDA-shaped ``zluda/libcuda.so.1`` built with gcc whose DT_NEEDED is a gcc-built stub ``libamdhip64.so.6``
(CUDA-EULA-TRANSLATION and CUDA-EULA-NVIDIA-GPU-ONLY, reviews: warnings), a copy of the CUDA toolkit's ptxas
(CUDA-EULA-DEV-TOOL, waived by the .licscan.yaml beside the dist, which fails the gate on warnings). Paths are
relative to the returned folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import fixture

PTXAS = Path("/usr/local/cuda/bin/ptxas")
SOURCE_DATE_EPOCH = "1700000000"
CONFIG = """version: 1
fail-on: warning
waivers:
  - rule: CUDA-EULA-DEV-TOOL
    path: "dist/ptxas"
    reason: "Redistribution approved by NVIDIA, ticket LEGAL-123"
    expires: 2099-12-31
    approver: legal@example.com
"""


def _so(folder: Path, name: str, body: str, soname: str | None = None, libs=()) -> None:
    src = folder / f"{name}.c"
    src.write_text(body + "\n")
    cmd = ["gcc", "-shared", "-fPIC", "-o", str(folder / name), str(src), f"-L{folder}"]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    cmd += ["-Wl,--no-as-needed"] + [f"-l:{lib}" for lib in libs]
    subprocess.run(cmd, check=True)
    src.unlink()


def build(root: Path) -> Path:
    """Lay out root/dist and root/.licscan.yaml; skip when gcc or the CUDA toolkit's ptxas is missing."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed (needed to build the ZLUDA-shaped fixture)")
    if not PTXAS.is_file():
        pytest.skip(f"{PTXAS} missing (the CUDA toolkit gives the developer-tool finding)")
    dist = root / "dist"
    (dist / "zluda").mkdir(parents=True)
    shutil.copyfile(fixture("cuda13/libkern.so"), dist / "libkern.so")
    try:
        os.link(PTXAS, dist / "ptxas")
    except OSError:
        shutil.copyfile(PTXAS, dist / "ptxas")
    zluda = dist / "zluda"
    _so(zluda, "libamdhip64.so.6", "int hipInit(unsigned f){return 0;}", soname="libamdhip64.so.6")
    _so(zluda, "libcuda.so.1", 'extern int hipInit(unsigned); const char *suffix = " [ZLUDA]";'
        "int cuInit(unsigned f){return hipInit(f);}", libs=["libamdhip64.so.6"])
    (root / ".licscan.yaml").write_text(CONFIG)
    return root
