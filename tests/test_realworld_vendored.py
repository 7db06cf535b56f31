"""Third-party wheels that vendor NVIDIA libraries under hashed names, judged as a reviewer would.

torchvision 0.29.1 (manylinux) vendors torchvision.libs/libcudart.faf08d9a.so.13 and libnvjpeg.36e11081.so.13 (a
dot and eight hex digits before ".so", SONAMEs libcudart.so.13 and libnvjpeg.so.13 kept). Attachment A lists
libcudart.so and libnvjpeg.so; the hash is not part of the name it lists, so no finding says they are not
distributable (there were two).

Runs with LICSCAN_REALWORLD=1 or when the wheel is cached (tests/census_wheels.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import census_wheels as cw
import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld


def test_torchvision_vendored_cuda_libraries_are_listed(pytestconfig, tmp_path):
    try:
        wheel = cw.fetch(cw.Pin("torchvision", "0.29.1", cw.LINUX), realworld_enabled(pytestconfig))
    except cw.Unavailable as error:
        pytest.skip(str(error))
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(wheel), "--no-cache", "--format", "json",
                           "-o", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    named = sorted((c["name"], c["properties"].get("version_range"), p.split("!/", 1)[1])
                   for c in report["components"] if c["vendor"] == "NVIDIA" for p in c["paths"])
    assert named == [("cudart", "13.x", "torchvision.libs/libcudart.faf08d9a.so.13"),
                     ("nvjpeg", "13.x", "torchvision.libs/libnvjpeg.36e11081.so.13")]
    assert report["findings"] == []
