"""Lint and types are part of the test suite (README's test command is what CI runs): ruff with the rule set in
pyproject.toml ([tool.ruff.lint]) over the code and tests, and mypy --strict over licscan/ ([tool.mypy]; the modules
still listed under its overrides are the known debt, and the list only shrinks)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> list[str]:
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return [str(exe)]
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' installs it")
    return [found]


def test_ruff_clean():
    proc = subprocess.run([*_tool("ruff"), "check", "--no-cache", "licscan", "tests", "benchmarks", "fuzz", "scripts",
                           "examples"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_mypy_strict_clean():
    proc = subprocess.run([*_tool("mypy"), "--no-incremental"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
