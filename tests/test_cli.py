"""``licscan inspect``: JSON valid against the shipped schema for every fixture, golden outputs, README and CI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from licscan.cli import main
from tests.helpers import FIXTURES, fixture, manifest

REPO = Path(__file__).parent.parent
SCHEMA = json.loads(resources.files("licscan.schemas").joinpath("inspect.schema.json").read_text())


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "licscan", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("rel", sorted(manifest()))
def test_json_report_is_valid_for_every_fixture(rel, capsys):
    code = main(["inspect", str(FIXTURES / rel), "--format", "json", "--hash", "--jobs", "1"])
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, SCHEMA)
    assert code == (3 if report["diagnostics"] else 0)
    assert report["path"] == str(FIXTURES / rel)
    for entry in report["device_code"]:
        assert entry["sha256"] is not None
        assert entry["path"] == report["path"] or entry["path"].startswith(report["path"] + "!/")


@pytest.mark.parametrize("name, args", [
    ("kern_multi.fatbin.json", ["tests/fixtures/cuda13/kern_multi.fatbin", "--format", "json", "--hash"]),
    ("exe_rdc_sm80.txt", ["tests/fixtures/cuda13/exe_rdc_sm80"]),
    ("liblongnames.a.txt", ["tests/fixtures/cuda13/liblongnames.a"]),
    ("k112_ident_cmdline.fatbin.txt", ["tests/fixtures/cuda112/k112_ident_cmdline.fatbin"]),
])
def test_golden(name, args, golden):
    proc = run("inspect", *args)
    assert proc.returncode == 0, proc.stderr
    golden(name, proc.stdout)


def test_output_file_and_extract(tmp_path):
    out = tmp_path / "report.json"
    proc = run("inspect", str(fixture("cuda13/kern_multi.fatbin")), "--format", "json", "--hash", "-o", str(out),
               "--extract", str(tmp_path / "x"))
    assert proc.returncode == 0 and proc.stdout == ""
    report = json.loads(out.read_text())
    names = sorted(os.listdir(tmp_path / "x"))
    assert names == ["kern_multi.1.sm_75.cubin", "kern_multi.1.sm_90.ptx", "kern_multi.2.sm_120.ptx",
                     "kern_multi.2.sm_80.cubin", "kern_multi.3.sm_90.cubin", "kern_multi.4.sm_90a.cubin",
                     "kern_multi.5.sm_100.cubin"]
    import hashlib

    by_name = {n: hashlib.sha256((tmp_path / "x" / n).read_bytes()).hexdigest() for n in names}
    assert sorted(by_name.values()) == sorted(e["sha256"] for e in report["device_code"])


def test_usage_errors(tmp_path):
    assert run("inspect").returncode == 2
    assert run("inspect", str(tmp_path)).returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("--version").stdout.startswith("licscan ")


def test_readme_commands_and_ci_agree():
    """README opens with the two commands; .ci/run runs exactly README's test command."""
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^    (python3 -m venv .*)$", readme, re.MULTILINE)
    assert len(commands) >= 2
    demo, tests = commands[0], commands[1]
    assert "licscan audit examples/demo-dist" in demo
    assert tests in (REPO / ".ci" / "run").read_text().splitlines()
    assert "pytest" in tests


def test_bundled_demo_gives_the_findings_readme_promises():
    proc = run("audit", "examples/demo-dist", "--format", "json", "--no-cache", "--fail-on", "warning")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert sorted({(f["rule"], f["severity"], f["verdict"]) for f in report["findings"]}) == [
        ("CUDA-EULA-NVIDIA-GPU-ONLY", "warning", "review"), ("CUDA-EULA-TRANSLATION", "warning", "review")]
    assert run("audit", "examples/demo-dist", "--no-cache").returncode == 0  # reviews pass --fail-on error
    assert {f["path"] for f in report["findings"] if f["rule"] == "CUDA-EULA-TRANSLATION"} == {
        "examples/demo-dist/app/libkern.so",
        "examples/demo-dist/licscan_test-0.0.1-py3-none-linux_x86_64.whl!/licscan_test/libkern.so"}


def test_device_code_lines_equal_the_generic_encoder():
    """inspect's fast ``device_code`` lines are byte for byte the generic encoder's text of the same entry, for
    every image of every fixture (PTX and cubin, with and without tool notes, linked inputs, hashes, AMD images)
    and for an image whose strings need escaping."""
    from dataclasses import replace

    from licscan.binary.images import Limits
    from licscan.binary.inspect import inspect_file
    from licscan.report.inspect_json import _ENCODER, device_code_entry, device_code_line, device_code_lines

    seen = 0
    for rel in sorted(manifest()):
        facts = inspect_file(str(FIXTURES / rel), limits=Limits(jobs=1), want_hash=rel.endswith(".fatbin"))
        images = facts.all_images()
        assert device_code_lines(images) == [_ENCODER.encode(device_code_entry(i)) for i in images], rel
        for image in images:
            assert device_code_line(image) == _ENCODER.encode(device_code_entry(image)), rel
            seen += 1
    assert seen > 300
    image = inspect_file(str(FIXTURES / "cuda13/kern_multi.fatbin")).device_code[0]
    odd = replace(image, path='dist/"x"\\\u00e9\x01.so', identifier="\udcff-\n", size=0, debug=True)
    assert device_code_line(odd) == _ENCODER.encode(device_code_entry(odd))


def test_waive_replaces_the_configuration_atomically(tmp_path):
    """``licscan waive`` writes the new ``.licscan.yaml`` beside the old one and renames it over it (a reader, or a
    write cut short by a full disk, never sees half a file): the file's inode changes, its mode and comments are
    kept, and no temporary file is left."""
    config = tmp_path / ".licscan.yaml"
    config.write_text("# release gate\nfail-on: warning\n")
    os.chmod(config, 0o640)
    before = config.stat().st_ino
    done = run("waive", "0123456789abcdef", "--reason", "approved, LEGAL-1", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    after = config.stat()
    assert after.st_ino != before and after.st_mode & 0o777 == 0o640
    assert config.read_text().startswith("# release gate\nfail-on: warning\nwaivers:\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".licscan.yaml"]
