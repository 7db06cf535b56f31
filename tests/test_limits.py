"""Resource limits (licscan/inventory/limits.py): the bomb guard lets NVIDIA's padded stub libraries through and still
stops bombs; every limit is an option and a `limits:` key of .licscan.yaml; the ar reader's member limit.

issue 15 item 1: nvidia-cudnn-cu12 9.x ships ``libcudnn_engines_tensor_ir.so.9``, 2,099,128 bytes deflated to
6,413 (a ratio of 327): a stub ELF whose segments are aligned to 2 MiB. The same shape is built here from our own
fixture (libkern.so padded with zero pages to 4 MiB); ``tests/test_census.py`` audits the real file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from inventory_builders import LIB, ar_bytes, zip_bytes

from licscan.cli import main
from licscan.inventory import limits, spool
from licscan.inventory.items import FileBlob
from licscan.inventory.walk import WalkLimits, walk
from licscan.model import Diagnostic
from licscan.rules.config import config_from_yaml
from licscan.rules.errors import ConfigError

MB = 1 << 20
PADDED = LIB + b"\0" * (4 * MB - len(LIB))  # a stub ELF padded with zero pages, as the cuDNN one is (ratio > 200)


def _items(path, walk_limits=WalkLimits()):
    return [(i.vpath, "file") if isinstance(i, FileBlob) else (i.path, f"diag:{i.kind.value}")
            for i in walk([path], walk_limits) if isinstance(i, (FileBlob, Diagnostic))]


def test_padded_stub_is_read_and_a_bomb_is_not(here):
    Path("stub.zip").write_bytes(zip_bytes([("libstub.so.9", PADDED)]))
    with zipfile.ZipFile("stub.zip") as zf:
        info = zf.getinfo("libstub.so.9")
        assert info.file_size > 200 * info.compress_size  # the ratio the old guard refused
    assert _items("stub.zip") == [("stub.zip!/libstub.so.9", "file")]
    # A bomb past the 16 MiB floor is still stopped, while inflating.
    Path("bomb.zip").write_bytes(zip_bytes([("zeros.bin", b"\0" * (20 * MB)), ("after.so", LIB)]))
    assert _items("bomb.zip") == [("bomb.zip!/zeros.bin", "diag:limit"), ("bomb.zip!/after.so", "file")]
    diag = next(i for i in walk(["bomb.zip"]) if isinstance(i, Diagnostic))
    assert "compression ratio over 200" in diag.message


def test_inflating_time_is_bounded(here, monkeypatch):
    """A member that takes longer than ``max_member_seconds`` to inflate is refused (a fake clock: one second per
    look, so the test does not depend on the machine's speed)."""
    clock = iter(range(1_000_000))
    monkeypatch.setattr(spool.time, "monotonic", lambda: float(next(clock)))
    Path("slow.zip").write_bytes(zip_bytes([("big.bin", b"\1" * (5 * MB)), ("small.so", LIB)]))
    assert _items("slow.zip", WalkLimits(max_member_seconds=2.5)) == [("slow.zip!/big.bin", "diag:limit"),
                                                                      ("slow.zip!/small.so", "file")]
    diag = next(i for i in walk(["slow.zip"], WalkLimits(max_member_seconds=2.5)) if isinstance(i, Diagnostic))
    assert "inflating took longer than 2.5 seconds (2097152 bytes read)" in diag.message


def test_every_limit_is_an_option_and_a_config_key(here, capsys):
    Path("stub.zip").write_bytes(zip_bytes([("libstub.so.9", PADDED)]))
    assert main(["audit", "stub.zip", "--no-cache", "--format", "json", "-o", "default.json"]) == 0
    assert json.loads(Path("default.json").read_text())["diagnostics"] == []
    # The old behaviour, asked for on the command line ...
    assert main(["audit", "stub.zip", "--no-cache", "--ratio-floor", "1M", "--format", "json", "-o", "cli.json"]) == 3
    diags = json.loads(Path("cli.json").read_text())["diagnostics"]
    assert [(d["kind"], d["path"]) for d in diags] == [("limit", "stub.zip!/libstub.so.9")]
    assert "compression ratio over 200" in diags[0]["message"]
    # ... and in .licscan.yaml; the command line wins over the file.
    Path(".licscan.yaml").write_text("limits:\n  ratio-floor: 1MiB\n  max-compression-ratio: 400\n")
    assert main(["audit", "stub.zip", "--no-cache", "--format", "json", "-o", "cfg.json"]) == 0
    Path(".licscan.yaml").write_text("limits:\n  ratio-floor: 1MiB\n  max-compression-ratio: 100\n")
    assert main(["audit", "stub.zip", "--no-cache", "--format", "json", "-o", "cfg.json"]) == 3
    assert main(["audit", "stub.zip", "--no-cache", "--max-compression-ratio", "1000", "--format", "json",
                 "-o", "cfg.json"]) == 0
    for option in limits.OPTIONS:  # every limit is an option of audit (and of inspect unless archives-only)
        capsys.readouterr()
        assert main(["audit", "--help"]) == 0
        assert f"--{option.key} {option.metavar}" in capsys.readouterr().out
        assert main(["inspect", "--help"]) == 0
        assert (f"--{option.key} {option.metavar}" in capsys.readouterr().out) is not option.archives


def test_limit_values_and_config_errors():
    config = config_from_yaml("limits:\n  max-member-size: 2G\n  max-file-seconds: 0\n  max-ar-members: 10\n", "c.yaml")
    assert config.limits == (("max-ar-members", 10), ("max-file-seconds", 0.0), ("max-member-size", 2 << 30))
    values = limits.resolve({"max_ar_members": 7}, dict(config.limits))
    assert (values["max_ar_members"], values["max_member_size"], values["max_depth"]) == (7, 2 << 30, 8)
    assert limits.walk_limits(values).max_member_seconds is None  # 0 = no limit
    with pytest.raises(ConfigError) as error:
        config_from_yaml("limits:\n  max-ratio: 3\n  max-depth: -1\n  ratio-floor: lots\n  max-members: 2.5\n",
                         "c.yaml")
    messages = [p.message for p in error.value.problems]
    assert messages[0].startswith("unknown limit 'max-ratio'; expected one of max-file-seconds, max-depth,")
    assert messages[1:] == ["max-depth must be at least 1 (got -1)", "ratio-floor: not a size: 'lots'",
                            "max-members must be a whole number (got 2.5)"]
    with pytest.raises(ConfigError):
        config_from_yaml("limits: [1, 2]\n", "c.yaml")


def test_bad_limit_option_is_a_usage_error(here, capsys):
    Path("x.so").write_bytes(LIB)
    assert main(["audit", "x.so", "--max-compression-ratio", "1"]) == 2
    assert "max-compression-ratio must be more than 1" in capsys.readouterr().err
    Path(".licscan.yaml").write_text("limits: {max-depth: zero}\n")
    assert main(["audit", "x.so", "--no-cache"]) == 2


def test_ar_member_limit(here):
    """issue 13 item 12: the ar reader had no member limit (1,000,000 members: 972 MB of facts)."""
    Path("many.a").write_bytes(ar_bytes([(f"m{n}.o", b"x") for n in range(5)]))
    assert main(["inspect", "many.a", "--format", "json", "-o", "all.json"]) == 0
    assert len(json.loads(Path("all.json").read_text())["members"]) == 5
    assert main(["inspect", "many.a", "--max-ar-members", "3", "--format", "json", "-o", "cut.json"]) == 3
    report = json.loads(Path("cut.json").read_text())
    assert [m["path"] for m in report["members"]] == ["many.a!/m0.o", "many.a!/m1.o", "many.a!/m2.o"]
    assert [(d["kind"], d["message"]) for d in report["diagnostics"]] == [
        ("limit", "more than 3 archive members: members from 'm3.o' (offset 0xfe) on were not read")]
    assert limits.BY_KEY["max-ar-members"].default == 100_000


@pytest.mark.realworld
def test_cudnn_padded_stub_is_audited(here, pytestconfig):
    """The real file: ``libcudnn_engines_tensor_ir.so.9`` of nvidia-cudnn-cu12 9.27.0.42 (766 MB wheel, fetched
    under LICSCAN_REALWORLD=1 into the test cache), deflated into a wheel of its own with the original METADATA:
    the audit completes and names the file as cuDNN 9.27.0.42."""
    import census_wheels as cw
    from conftest import realworld_enabled

    try:
        wheel = cw.fetch(cw.Pin("nvidia-cudnn-cu12", "9.27.0.42", cw.LINUX), realworld_enabled(pytestconfig))
    except cw.Unavailable as error:
        pytest.skip(str(error))
    member = "nvidia/cudnn/lib/libcudnn_engines_tensor_ir.so.9"
    stub = cw.extract(wheel, member).read_bytes()
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo(member)
        assert (info.file_size, info.compress_size) == (2_099_128, 6_413)
        meta = [(n, zf.read(n)) for n in zf.namelist() if n.endswith(("METADATA", "WHEEL"))]
    Path("cudnn_stub-9.27.0.42-py3-none-any.whl").write_bytes(zip_bytes([(member, stub)] + meta))
    assert main(["audit", "cudnn_stub-9.27.0.42-py3-none-any.whl", "--no-cache", "--format", "json",
                 "-o", "r.json"]) in (0, 1)
    report = json.loads(Path("r.json").read_text())
    assert report["diagnostics"] == []
    (cudnn,) = [c for c in report["components"] if c["name"] == "cudnn"]
    assert cudnn["version"] == "9.27.0.42" and cudnn["paths"] == [
        f"cudnn_stub-9.27.0.42-py3-none-any.whl!/{member}"]
