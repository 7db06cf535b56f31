"""Every input the fuzzers found a fault with (tests/fuzz_corpus/<target>/) runs through its target's property
(fuzz/targets.py): the low-level readers raise only FormatError, inspect_buffer / the walker raise nothing and
report no internal error, results lie inside the input -- and each input is done within a time bound (a hang was
one of the faults). Each input runs in a child process with a 1 GiB address-space limit and a timeout, so a
regression shows up as a failure, never as a hung or swapping test run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz_corpus"
TIME_LIMIT = 5.0  # seconds per input; every corpus input takes well under 0.5 s when the property holds

sys.path.insert(0, str(ROOT))
from fuzz import targets

CASES = sorted(p for p in CORPUS.glob("*/*") if p.is_file() and p.suffix not in (".md", ".txt"))

_CHILD = r"""
import json, resource, sys, time, traceback
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
sys.path.insert(0, sys.argv[1])
from fuzz import targets
targets.setup()
data = open(sys.argv[3], "rb").read()
start = time.monotonic()
try:
    targets.check(sys.argv[2], data)
    error = None
except BaseException as exc:
    error = "".join(traceback.format_exception(exc))
print(json.dumps({"seconds": time.monotonic() - start, "error": error}))
"""


def test_corpus_is_not_empty():
    assert CASES, "tests/fuzz_corpus holds no regression inputs"


def test_every_corpus_folder_is_a_target():
    for folder in CORPUS.iterdir():
        if folder.is_dir():
            assert folder.name in targets.CHECKS, f"{folder.name}: no such fuzz target"


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_regression_input(path: Path):
    target = path.parent.name
    ok, why = targets.available(target)
    if not ok:
        pytest.skip(why)
    try:
        run = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), target, str(path)], capture_output=True,
                             text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{target} property on {path.name}: still running after 60 s (hang)")
    assert run.returncode == 0, f"child failed:\n{run.stderr[-4000:]}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["error"] is None, f"{target} property violated on {path.name}:\n{result['error']}"
    assert result["seconds"] < TIME_LIMIT, f"{target} on {path.name} took {result['seconds']:.1f} s"
