"""Reports and SBOMs written piece by piece (licscan/streamed.py, issue 14: bounded memory): the same bytes as the
whole text, and what is held at once while a large report is written is bounded."""

from __future__ import annotations

import os
import tracemalloc
from datetime import datetime, timezone

import pytest
import sbom_inventory as si

from licscan import sbom
from licscan.cli.common import write_outputs
from licscan.model import (
    Compression,
    Container,
    DeviceImage,
    ImageKind,
    Inventory,
    Summary,
    ToolInfo,
    ToolkitRange,
)
from licscan.report import json_report
from licscan.report.inspect_json import device_code_lines, iter_device_code_lines
from licscan.streamed import Streamed

ODD = "naïve \u00e9\u4e2d \udcff\udc80 \ud800 \U0001f600 \\ \"q\" \r\n\x00 end"


def _images(count: int, path: str = "lib/libkern.so") -> tuple[DeviceImage, ...]:
    kit = ToolkitRange("12.4", "12.4", None, ("a note",))
    tool = ToolInfo("ptxas", "12.4.131", None, None, None)
    return tuple(DeviceImage(path, Container.NV_FATBIN, ImageKind.CUBIN, f"sm_{80 + i % 3}", f"sm_{80 + i % 3}", None,
                             kit, Compression.ZSTD, 1000 + i, 4000 + i, tool=tool, identifier=f"kernel_{i}.cu",
                             fatbin_offset=64 * i, entry_offset=64 * i + 16, sha256=f"{i:064x}")
                 for i in range(count))


def _inventory(images: tuple[DeviceImage, ...], odd: str = ODD) -> Inventory:
    return Inventory(inputs=(f"dist/{odd}",), components=(), device_code=images, diagnostics=(),
                     summary=Summary(files=len(images), bytes=sum(i.size for i in images), diagnostics=0),
                     remarks=(odd,))


def test_pieces_are_the_whole_text(tmp_path):
    inventory = _inventory(_images(50) + _images(3, path=f"lib/{ODD}.so"))
    whole = json_report.render(inventory)
    report = json_report.streamed(inventory)
    assert str(report) == whole
    write_outputs([(str(tmp_path / "whole.json"), whole), (str(tmp_path / "streamed.json"), report)])
    assert (tmp_path / "streamed.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    assert list(iter_device_code_lines(inventory.device_code)) == device_code_lines(inventory.device_code)
    empty = _inventory(())
    assert str(json_report.streamed(empty)) == json_report.render(empty)
    assert '"device_code": [],' in json_report.render(empty)


def test_streamed_outputs_are_the_bytes_of_the_text(tmp_path):
    pieces = ["a", ODD, "", "\udcff", "\ud83d", "\ude00", "x" * 70_000, ODD * 500, "\n"]
    text = "".join(pieces)
    write_outputs([(str(tmp_path / "t"), text), (str(tmp_path / "s"), Streamed.of_pieces(lambda: pieces)),
                   (os.devnull, Streamed.of_pieces(lambda: pieces))])
    assert (tmp_path / "s").read_bytes() == (tmp_path / "t").read_bytes()
    assert (tmp_path / "s").read_bytes() == text.encode("utf-8", "backslashreplace")


def test_a_failing_stream_leaves_the_previous_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("previous\n")

    def pieces():
        yield "new"
        raise ValueError("does not validate")

    with pytest.raises(ValueError):
        write_outputs([(str(target), Streamed.of_pieces(pieces))])
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_writing_a_large_report_holds_one_line_at_a_time(tmp_path):
    """20,000 device images (a report of about 14 MB): writing it piece by piece allocates a bounded amount at once
    (the whole text held its lines, their join and its bytes: well over 3 times its size). A generous constant: the
    bound does not depend on the machine."""
    inventory = _inventory(_images(20_000))
    size = len(json_report.render(inventory).encode("utf-8", "backslashreplace"))
    assert size > 10 << 20
    report = json_report.streamed(inventory)
    tracemalloc.start()
    try:
        write_outputs([(str(tmp_path / "report.json"), report)])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "report.json").stat().st_size == size
    assert peak < 6 << 20, f"writing a {size >> 20} MiB report allocated {peak >> 20} MiB at once"


def test_fingerprint_is_the_digest_of_the_text():
    import hashlib

    inventory = _inventory(_images(40) + _images(2, path="lib/\udcff\u00e9.so"), odd="\udc80 \u4e2d")  # what surrogateescape reads
    text = json_report.dumps(json_report._encoded(inventory, []))
    assert json_report.fingerprint(inventory) == hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@pytest.mark.parametrize("fmt", sbom.FORMATS)
def test_streamed_sbom_is_the_written_document(fmt, tmp_path, monkeypatch):
    """What `licscan sbom` writes piece by piece is what the validated document gives whole (sbom.api.dumps)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    inventory, records, digests = si.build()
    options = {"namespace_seed": "licscan-tests", "creator_org": "Example Corp", "digests": digests,
               "findings": si.FINDINGS, "created": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    build = sbom.build_cyclonedx if fmt == "cyclonedx-json" else sbom.build_spdx
    whole = sbom.api.dumps(build(inventory, records, **options), fmt)
    text = sbom.api.streamed(inventory, records, fmt, **options)
    assert str(text) == whole
    write_outputs([(str(tmp_path / "sbom"), text)])
    assert (tmp_path / "sbom").read_bytes() == whole.encode("utf-8")
