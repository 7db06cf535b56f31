"""The hostile-input corpus (issue 7): ``licscan audit CATEGORY --format json --no-cache`` on every category that
tests/hostile/make_corpus.py builds, in a child process.

For every category: the run ends (timeout), exits 3 with a diagnostic (or 0/3 with a clean result where the input
is harmless, make_corpus.EXPECT), peak RSS stays at most 256 MB (GNU time %M), the scanned tree hashes the same
before and after, and every file of the tree is inventoried or named in a diagnostic (special files in
``special_files``). When the tests run as root, the scan runs without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH
(setpriv), so that mode-000 files really are unreadable to it.

The corpus is built once per session into a tmp folder (~75 MB, ~20 s); nothing generated is committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "hostile"))
import make_corpus  # noqa: E402

RSS_LIMIT_KB = 256 * 1024
TIMEOUT = 300
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")
LICSCAN = [sys.executable, "-m", "licscan"]

pytestmark = pytest.mark.skipif(GNU_TIME is None, reason="GNU time (/usr/bin/time) is needed to measure peak RSS")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    os.chmod(root, 0o755)
    made = make_corpus.build(root)
    yield root, made
    # Give back what mode 000 took away, so that pytest can delete the tmp folder.
    for dirpath, dirnames, _files in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)


def tree_digest(root: Path) -> str:
    """Names, types, modes, sizes, mtimes, link targets and contents of everything under ``root`` (lstat; no link
    is followed, no FIFO or device opened)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            h.update(b"%s\0%o\0%d\0%d\0" % (os.path.relpath(path, os.fsencode(root)), st.st_mode, st.st_size,
                                              st.st_mtime_ns))
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:  # the test may run as root: mode 000 files are hashed too
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        h.update(chunk)
    return h.hexdigest()


def _scanner_prefix() -> list[str]:
    if os.geteuid() == 0 and shutil.which("setpriv"):
        caps = "-dac_override,-dac_read_search"
        return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
    return []


def run_audit(path: Path, tmp: Path) -> dict:
    time_file = tmp / "time.txt"
    command = [GNU_TIME, "-f", "%M %e", "-o", str(time_file), *_scanner_prefix(), *LICSCAN, "audit", str(path),
               "--format", "json", "--no-cache"]
    env = dict(os.environ, HOME=str(tmp), XDG_CACHE_HOME=str(tmp / "cache"))
    start = time.monotonic()
    try:
        run = subprocess.run(command, capture_output=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"licscan audit {path.name} still running after {TIMEOUT} s")
    wall = time.monotonic() - start
    rss_kb, _elapsed = time_file.read_text().split()[-2:]
    report, problem = None, None
    try:
        text = run.stdout.decode("utf-8")  # RFC 8259: a JSON text is UTF-8
    except UnicodeDecodeError as error:
        problem = f"the JSON report is not UTF-8 ({error})"
        text = run.stdout.decode("utf-8", "surrogateescape")
    if text:
        try:
            report = json.loads(text)
        except ValueError as error:
            problem = problem or f"the report is not JSON ({error})"
    return {"rc": run.returncode, "rss_kb": int(rss_kb), "seconds": wall, "report": report, "problem": problem,
            "stderr": run.stderr.decode("utf-8", "replace")}


def _tree(root: Path):
    """(regular files, special entries, unreadable folders) under root, as bytes paths."""
    regular, special, locked = [], [], []
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot):
        for name in list(dirnames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                special.append(path)
                dirnames.remove(name)
            elif stat.S_IMODE(st.st_mode) & 0o500 != 0o500:
                locked.append(path)
                dirnames.remove(name)  # the scanner cannot list it: it must say so, its contents are unseen
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            (regular if stat.S_ISREG(st.st_mode) else special).append(path)
    return regular, special, locked


def _outer(vpath: str) -> bytes:
    return os.fsencode(vpath.split("!/", 1)[0])


RESULTS: dict[str, dict] = {}


@pytest.mark.parametrize("category", list(make_corpus.BUILDERS))
def test_hostile_category(category, corpus, tmp_path):
    root, made = corpus
    tree = root / category
    before = tree_digest(tree)
    result = run_audit(tree, tmp_path)
    after = tree_digest(tree)
    report = result["report"]
    RESULTS[category] = {k: v for k, v in result.items() if k != "report"}
    summary = (f"{category}: exit {result['rc']}, peak RSS {result['rss_kb'] / 1024:.0f} MB, "
               f"{result['seconds']:.1f} s, {len(report['diagnostics']) if report else '?'} diagnostics")
    print(summary)
    RESULTS[category]["summary"] = summary

    assert before == after, f"{category}: the scanned tree changed"
    assert result["problem"] is None, f"{category}: {result['problem']}"
    assert report is not None, f"{category}: no JSON report (exit {result['rc']}):\n{result['stderr'][-3000:]}"
    assert result["rc"] in (0, 3), f"{category}: exit {result['rc']}:\n{result['stderr'][-3000:]}"
    assert "internal error" not in json.dumps(report["diagnostics"]), f"{category}: a reader raised"
    if make_corpus.EXPECT[category] == "diag":
        assert result["rc"] == 3 and report["diagnostics"], f"{category}: no diagnostic, exit {result['rc']}"
    assert result["rc"] == (3 if report["diagnostics"] else 0), "exit 3 exactly when the scan is incomplete"
    assert result["rss_kb"] <= RSS_LIMIT_KB, f"{category}: peak RSS {result['rss_kb'] / 1024:.0f} MB > 256 MB"

    # Every file is inventoried or named in a diagnostic.
    regular, special, locked = _tree(tree)
    named = {_outer(d["path"]) for d in report["diagnostics"]}
    listed = {_outer(s["path"]) for s in report.get("special_files", [])}
    for path in special:
        assert path in listed or path in named, f"{os.fsdecode(path)}: special file neither listed nor diagnosed"
    for path in locked:
        assert path in named, f"{os.fsdecode(path)}: unreadable folder not named in a diagnostic"
    unaccounted = [p for p in regular if p not in named]
    assert report["summary"]["files"] >= len(unaccounted), (
        f"{category}: {len(unaccounted)} readable files, summary.files = {report['summary']['files']}")
    if category.startswith("truncated_"):
        # Every cut of a file that has device code is an incomplete input.
        silent = sorted(os.fsdecode(os.path.basename(p)) for p in regular if os.path.getsize(p) and p not in named)
        assert not silent, f"{len(silent)} truncated files without a diagnostic: {silent[:10]}"


def test_report_file_with_non_utf8_names(corpus, tmp_path):
    """``-o FILE`` on a tree with non-UTF-8 names: a report, exit 0/3, no traceback."""
    root, _made = corpus
    out = tmp_path / "report.json"
    run = subprocess.run([*LICSCAN, "audit", str(root / "non_utf8"), "--format", "json", "--no-cache", "-o",
                          str(out)], capture_output=True, timeout=TIMEOUT)
    stderr = run.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr[-3000:]
    assert run.returncode in (0, 3), stderr[-3000:]
    json.loads(out.read_bytes().decode("utf-8"))


def test_whole_tree(corpus, tmp_path):
    """All categories in one ``licscan audit TREE``: exit 3, bounded RSS, the tree unchanged, every unreadable or
    special entry accounted for."""
    root, _made = corpus
    before = tree_digest(root)
    result = run_audit(root, tmp_path)
    assert tree_digest(root) == before, "the scanned tree changed"
    print(f"whole tree: exit {result['rc']}, peak RSS {result['rss_kb'] / 1024:.0f} MB, {result['seconds']:.1f} s")
    assert result["rc"] == 3, result["stderr"][-3000:]
    assert result["rss_kb"] <= RSS_LIMIT_KB, f"peak RSS {result['rss_kb'] / 1024:.0f} MB > 256 MB"
    assert result["problem"] is None, result["problem"]
