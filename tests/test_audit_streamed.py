"""The JSON report `licscan audit` writes line by line (no cache: licscan/streamed.py) is the report it renders whole
and keeps for replay (with a cache), byte for byte, on real fixture outputs; to a file and to standard output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INPUTS = [REPO / "examples" / "demo-dist", REPO / "tests" / "fixtures" / "cuda13"]


def _audit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "licscan", "audit", *args], capture_output=True, cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": "1700000000", "CI": "true"},
                          timeout=600)


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.name)
def test_streamed_json_report_is_the_whole_one(source, tmp_path):
    if not source.exists():
        pytest.skip(f"{source} not built")
    cache = str(tmp_path / "cache")
    whole = _audit(str(source), "--cache-dir", cache, "--format", "json", "-o", str(tmp_path / "whole.json"))
    replayed = _audit(str(source), "--cache-dir", cache, "--format", "json", "-o", str(tmp_path / "replayed.json"))
    streamed = _audit(str(source), "--no-cache", "--format", "json", "-o", str(tmp_path / "streamed.json"),
                      "--format", "text", "-o", str(tmp_path / "report.txt"))
    to_stdout = _audit(str(source), "--no-cache", "--format", "json")
    assert whole.returncode == replayed.returncode == streamed.returncode == to_stdout.returncode
    assert whole.returncode in (0, 1), whole.stderr
    data = (tmp_path / "whole.json").read_bytes()
    assert b'"device_code": [\n' in data
    assert (tmp_path / "streamed.json").read_bytes() == data
    assert (tmp_path / "replayed.json").read_bytes() == data
    assert to_stdout.stdout == data
