"""``licscan inspect --extract`` (licscan/binary/extract.py) writes NVIDIA cubins and PTX, as ``cuobjdump -xelf all
-xptx all`` does; AMD code objects in the same file are named in a remark, not a crash (it raised KeyError on an
.hsaco before)."""

from __future__ import annotations

import os

from helpers import fixture, inspect

from licscan.binary.extract import extract
from licscan.binary.images import Limits


def test_an_amd_code_object_is_left_out_with_a_remark(tmp_path):
    path = str(fixture("amd/kern_gfx90a.hsaco"))
    facts = extract(path, inspect(path), str(tmp_path / "x"), Limits())
    assert os.listdir(tmp_path / "x") == []
    assert facts.remarks == ("1 AMD code objects or SPIR-V modules were not extracted: --extract writes NVIDIA "
                             "cubins and PTX",)
    assert facts.diagnostics == ()


def test_nvidia_images_are_written_and_no_remark_is_added(tmp_path):
    path = str(fixture("cuda13/kern_multi.fatbin"))
    before = inspect(path)
    facts = extract(path, before, str(tmp_path / "x"), Limits())
    assert facts == before
    assert len(os.listdir(tmp_path / "x")) == len(before.device_code) == 7
