"""The JSON report's ``device_code`` entries made in one pass (licscan.report.inspect_json.device_code_entries: the
values images share turned into JSON once) are the entries made one image at a time, for every image of every
fixture together (images of many files, toolkits, tools and enum members side by side)."""

from __future__ import annotations

from licscan.binary.images import Limits
from licscan.binary.inspect import inspect_file
from licscan.report.inspect_json import device_code_entries, device_code_entry
from tests.helpers import FIXTURES, manifest


def test_entries_in_one_pass_are_the_entries_one_at_a_time():
    images = []
    for rel in sorted(manifest()):
        images += inspect_file(str(FIXTURES / rel), limits=Limits(jobs=1), want_hash=rel.endswith(".fatbin")).all_images()
    assert len(images) > 300
    entries = device_code_entries(images)
    assert entries == [device_code_entry(image) for image in images]
    assert len({e["toolkit"]["exact"] if e["toolkit"] else None for e in entries}) > 1
    assert {e["kind"] for e in entries} >= {"ptx", "cubin"}
