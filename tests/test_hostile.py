"""The hostile-input corpus (issues 7 and 13): ``licscan audit CATEGORY --format json --no-cache --jobs 2`` on every
category that tests/hostile/make_corpus.py builds, in a child process.

For every category: the run ends (timeout) with a JSON report and a documented exit code, 3 with a diagnostic (or
0/3 with a clean result where the input is harmless, make_corpus.EXPECT), never a traceback; peak memory stays at
most 256 MB, counting the worker processes: the child reports its own peak RSS (RUSAGE_SELF) and the largest
peak of its workers (RUSAGE_CHILDREN), and the bound is checked on ``own + jobs x workers`` (an upper bound of
the process tree at any moment; a forked worker's shared pages are even counted twice). The scanned tree hashes
the same before and after, and every file of the tree is inventoried or named in a diagnostic (special files in
``special_files``). When the tests run as root, the scan runs without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH
(setpriv), so that mode-000 files really are unreadable to it.

The corpus is built once per session into a tmp folder (~140 MB, ~30 s); nothing generated is committed. The
member-count case (a .tar.gz of 1,000,000 members) is the slowest: ~15-60 s until the member limit stops it.
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
import make_corpus

RSS_LIMIT_KB = 256 * 1024
TIMEOUT = 300
JOBS = 2  # CI's cores; the memory bound counts this many workers
LICSCAN = [sys.executable, "-m", "licscan"]
# licscan's entry point in a child that then reports its peak RSS and its workers' (kB) to the file named by
# LICSCAN_RUSAGE; the exit code is licscan's. licscan runs in a process forked from this small one: a process
# started by exec keeps the high-water RSS of the process it was forked from (Linux carries ``maxrss`` across
# execve), which would count pytest's own memory; a fork starts a fresh count.
MEASURED = [sys.executable, "-c", """
import json, os, resource, sys, traceback
pid = os.fork()
if pid == 0:
    code = 1
    try:
        from licscan.cli import main
        sys.argv[0] = "licscan"
        try:
            code = main()
        except SystemExit as stop:
            code = stop.code
    except BaseException:
        traceback.print_exc()
        code = 1
    with open(os.environ["LICSCAN_RUSAGE"], "w") as out:
        json.dump({"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, out)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""]


def walk_tree(root: bytes):
    """os.walk without recursion (os.walk recurses once per folder level before Python 3.12: deep_folders)."""
    stack = [root]
    while stack:
        dirpath = stack.pop()
        dirnames, filenames = [], []
        try:
            with os.scandir(dirpath) as listing:
                for entry in listing:
                    (dirnames if entry.is_dir(follow_symlinks=False) else filenames).append(entry.name)
        except OSError:
            continue  # as os.walk: a folder that cannot be listed is skipped
        yield dirpath, dirnames, filenames
        stack.extend(os.path.join(dirpath, name) for name in sorted(dirnames, reverse=True))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    os.chmod(root, 0o755)
    try:
        made = make_corpus.build(root)
    except BaseException:
        make_corpus.remove_deep(root)
        raise
    yield root, made
    # Give back what mode 000 took away, so that pytest can delete the tmp folder; remove the deep folders
    # (shutil.rmtree recurses once per level).
    for dirpath, dirnames, _files in walk_tree(os.fsencode(root)):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    make_corpus.remove_deep(root)


def tree_digest(root: Path) -> str:
    """Names, types, modes, sizes, mtimes, link targets and contents of everything under ``root`` (lstat; no link
    is followed, no FIFO or device opened)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in walk_tree(os.fsencode(root)):
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
    usage_file = tmp / "rusage.json"
    command = [*_scanner_prefix(), *MEASURED, "audit", str(path), "--format", "json", "--no-cache", "--jobs",
               str(JOBS)]
    env = dict(os.environ, HOME=str(tmp), XDG_CACHE_HOME=str(tmp / "cache"), LICSCAN_RUSAGE=str(usage_file),
               PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    start = time.monotonic()
    try:
        run = subprocess.run(command, capture_output=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"licscan audit {path.name} still running after {TIMEOUT} s")
    wall = time.monotonic() - start
    usage = json.loads(usage_file.read_text())
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
    return {"rc": run.returncode, "rss_kb": usage["self"] + JOBS * usage["children"], "own_kb": usage["self"],
            "workers_kb": usage["children"], "seconds": wall, "report": report, "problem": problem,
            "stderr": run.stderr.decode("utf-8", "replace")}


def _tree(root: Path):
    """(regular files, special entries, unreadable folders) under root, as bytes paths."""
    regular, special, locked = [], [], []
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in walk_tree(broot):
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
    summary = (f"{category}: exit {result['rc']}, peak RSS {result['own_kb'] / 1024:.0f} MB + {JOBS} x "
               f"{result['workers_kb'] / 1024:.0f} MB (workers) = {result['rss_kb'] / 1024:.0f} MB, "
               f"{result['seconds']:.1f} s, {len(report['diagnostics']) if report else '?'} diagnostics")
    print(summary)
    RESULTS[category]["summary"] = summary

    assert before == after, f"{category}: the scanned tree changed"
    assert "Traceback" not in result["stderr"], f"{category}: {result['stderr'][-3000:]}"
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
    if category in CATEGORY_CHECKS:
        CATEGORY_CHECKS[category](tree, report)
    if category.startswith("truncated_"):
        # Every cut of a file that has device code is an incomplete input.
        silent = sorted(os.fsdecode(os.path.basename(p)) for p in regular if os.path.getsize(p) and p not in named)
        assert not silent, f"{len(silent)} truncated files without a diagnostic: {silent[:10]}"


def _paths(report: dict) -> list[str]:
    return [entry["path"] for key in ("diagnostics", "special_files", "distributions", "device_code", "components")
            for entry in report.get(key, []) if isinstance(entry, dict) and "path" in entry]


def _image_escape(tree: Path, report: dict) -> None:
    """Issue 13 item 5: no layer outside the input is read; each escaping layout is refused with a diagnostic."""
    outside = make_corpus.OUTSIDE
    assert not [p for p in _paths(report) if outside in p or "hostname" in p or "libsecret" in p], _paths(report)
    # 2 regular files under docker/ (manifest, config) + own/layer.tar!/etc/os-release, docker_linked_layer's 2,
    # oci's 4 (oci-layout, index.json, 2 blobs; the sha256 layer is walked as an image layer: 1 member), the
    # escape.tar's 3 members + own/layer.tar's member: nothing from outside adds to the count.
    diagnostics = {(d["path"][len(str(tree)) + 1:], d["kind"]): d["message"] for d in report["diagnostics"]}
    assert set(diagnostics) == {("docker", "malformed"), ("escape.tar", "malformed"),
                                ("docker_linked_layer/abc/layer.tar", "malformed"),
                                (f"oci/blobs/sha512/{_outside_digest(tree)}", "malformed")}
    assert "points outside the image (never followed)" in diagnostics[("docker", "malformed")]
    assert diagnostics[("docker_linked_layer/abc/layer.tar", "malformed")] == \
        "image layer reached through a link (never followed)"


def _outside_digest(tree: Path) -> str:
    import hashlib

    return hashlib.sha256((tree.parent / make_corpus.OUTSIDE / "layer.tar").read_bytes()).hexdigest()


def _hostile_metadata(tree: Path, report: dict) -> None:
    """Issue 13 item 9: each piece of wrong metadata is one malformed diagnostic on its file; the rest is used."""
    found = sorted((d["path"][len(str(tree)) + 1:], d["message"]) for d in report["diagnostics"])
    assert found == [
        ("big-1.0-py3-none-any.whl!/big-1.0.dist-info/RECORD",
         "RECORD rows not used: line 2: field larger than field limit (131072)"),
        ("deep-json-1.0-0.tar.bz2!/info/paths.json", "not read: not valid JSON (nested too deep)"),
        ("dict-sha-1.0-0.tar.bz2!/info/paths.json", "sha256 not 64 hex digits, ignored: 1 of 1 entries"),
        ("int-path-1.0-0.tar.bz2!/info/paths.json", "_path not a string, entry ignored: 1 of 2 entries"),
        ("list-path-1.0-0.tar.bz2!/info/paths.json", "_path not a string, entry ignored: 1 of 1 entries"),
        ("paths-not-list-1.0-0.tar.bz2!/info/paths.json", "not read: no paths list"),
        ("site-packages/big-1.0.dist-info/RECORD",
         "RECORD rows not used: line 2: field larger than field limit (131072)"),
        ("typed-index-1.0-0.tar.bz2!/info/index.json", "name is not a string (dict): no distribution"),
    ]
    names = sorted((d["name"], d["version"]) for d in report["distributions"])
    assert names == [("big", "1.0"), ("big", "1.0"), ("deep-json", "1.0"), ("dict-sha", "1.0"), ("int-path", "1.0"),
                     ("list-path", "1.0"), ("paths-not-list", "1.0")]


def _deep_folders(tree: Path, report: dict) -> None:
    """Issue 13 item 9: 1,000 nested folders are walked to the bottom (no RecursionError)."""
    assert report["summary"]["files"] == 1 and report["summary"]["complete"]
    assert [d["path"] for d in report["device_code"]] == [str(tree) + "/d" * 1000 + "/libdeep.so"]


def _million_members(tree: Path, report: dict) -> None:
    """Issue 13 item 12: the member limit stops the walk; the members before it are inventoried."""
    messages = sorted((d["path"][len(str(tree)) + 1:], d["message"]) for d in report["diagnostics"])
    assert messages == [
        ("million.tar.gz", "rest of the archive not read: more than 100000 archive members (--max-members)"),
        ("million.tar.gz!/m/0100000", f"{tree}/million.tar.gz!/m/0100000 skipped: more than 100000 archive members "
                                      f"(--max-members)")]
    assert report["summary"]["files"] == 100_000


def _nested_tar_zst(tree: Path, report: dict) -> None:
    """Issue 13 item 12: all 8 levels are opened and the 60 MiB payload inventoried."""
    assert report["summary"]["files"] == 1 and report["summary"]["bytes"] == 60 * make_corpus.MiB
    assert report["summary"]["complete"]


def _huge_names(tree: Path, report: dict) -> None:
    """Names are bounded before they cost memory: the extended header is refused unread, the sparse chain is cut
    after 4 MiB of headers, the long zip name is quoted in part, the path budget stops the tar of long names."""
    found = [(d["path"][len(str(tree)) + 1:][:40], d["kind"], d["message"][:120]) for d in report["diagnostics"]]
    assert found == [
        ("long-name.zip", "malformed", "member name of 60000 characters (over 4096) not read: '" + "n" * 65),
        ("pax-300mb.tar.gz", "malformed", "extended header of 314572816 bytes at 0 (over the limit of 1048576): not "
                                          "read (tar header)"),
        ("sparse-chain.tar.gz", "malformed", "headers of one member longer than 4194304 bytes: not read (tar "
                                             "header)"),
        ("zz-long-names.tar.gz", "limit", "rest of the archive not read: the paths of the archive members walked "
                                          "exceed 33554432 characters in all"),
        ("zz-long-names.tar.gz!/" + "d" * 18, "limit", (f"{tree}/zz-long-names.tar.gz!/" + "d" * 199)[:120]),
    ]
    assert max(len(d["path"]) + len(d["message"]) for d in report["diagnostics"]) < 20_000


CATEGORY_CHECKS = {"image_escape": _image_escape, "hostile_metadata": _hostile_metadata,
                   "deep_folders": _deep_folders, "million_members": _million_members,
                   "nested_tar_zst": _nested_tar_zst, "huge_names": _huge_names}


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
    """All categories in one ``licscan audit TREE``: exit 3, bounded RSS of every process, the tree unchanged, no
    traceback. (Here the sum ``own + jobs x workers`` is not bounded: the workers are forked once the walk has
    collected 100,000 member records, and each counts those shared pages again -- measured 133 + 2 x 152 MB.)"""
    root, _made = corpus
    before = tree_digest(root)
    result = run_audit(root, tmp_path)
    assert tree_digest(root) == before, "the scanned tree changed"
    print(f"whole tree: exit {result['rc']}, peak RSS {result['own_kb'] / 1024:.0f} MB + {JOBS} x "
          f"{result['workers_kb'] / 1024:.0f} MB, {result['seconds']:.1f} s")
    assert "Traceback" not in result["stderr"], result["stderr"][-3000:]
    assert result["rc"] == 3, result["stderr"][-3000:]
    assert max(result["own_kb"], result["workers_kb"]) <= RSS_LIMIT_KB, (
        f"peak RSS {result['own_kb'] / 1024:.0f} MB, workers {result['workers_kb'] / 1024:.0f} MB: over 256 MB")
    assert result["problem"] is None, result["problem"]
