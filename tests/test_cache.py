"""The content cache (docs/cache.md): content keys (a copied tree hits), the code and knowledge tables in every key,
entries that cannot run code or lie (no pickle, HMAC-checked, licscan's own types only), refused folders, the size
bound. Issue 13 items 1 and 12, issue 14 goal 4, issue 12 item 6."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pytest

from licscan import cache as cache_module
from licscan.cache import Cache, CacheRefused
from licscan.model import Diagnostic, DiagnosticKind, FileFacts, FileFormat
from tests.helpers import FIXTURES, cache_entry_header

REPO = Path(__file__).resolve().parent.parent


PTXAS = Path("/usr/local/cuda/bin/ptxas")


def gate_dist(root: Path) -> Path:
    """A dist that fails the gate: NVIDIA's ptxas (CUDA-EULA-DEV-TOOL, a review), NVIDIA's cudart name on a library
    that is not NVIDIA's cudart, a wheel (cached whole, as an archive) and an executable with device code."""
    if not PTXAS.exists():
        pytest.skip("the CUDA toolkit's ptxas is not installed here")
    dist = root / "dist"
    (dist / "app").mkdir(parents=True)
    (dist / "tools").mkdir()
    shutil.copy(PTXAS, dist / "tools" / "ptxas")
    shutil.copy(FIXTURES / "cuda13/libkern.so", dist / "app" / "libcudart.so.13")
    shutil.copy(FIXTURES / "cuda13/exe_multi", dist / "app" / "exe_multi")
    shutil.copy(FIXTURES / "cuda13/licscan_test-0.0.1-py3-none-linux_x86_64.whl", dist)
    (dist / "README.txt").write_text("a small text file: examined again, never cached\n")
    return dist


def run(cwd: Path, *args: str, env: dict | None = None, fmt: str = "json") -> subprocess.CompletedProcess:
    """``licscan audit dist`` as a gate that fails on reviews too (NVIDIA's ptxas shipped: a warning)."""
    return subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--format", fmt, "--fail-on",
                           "warning", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300, env=env)


def kinds(cache: Path) -> Counter:
    return Counter(cache_entry_header(p)["kind"] for p in cache.rglob("*.entry"))


def content_kinds(cache: Path) -> Counter:
    """The entry kinds of the content cache, without the tree memo's: the ``tree`` entry and the reports kept beside
    it (stored for a tree that changed just before it was listed only when it was read twice, the same), and the
    ``treeid`` entry of this boot (stored only for a tree older than the racy window,
    ``licscan.cache.keys.RACY_NS``, which a tree made by the test a moment ago may or may not be)."""
    out = kinds(cache)
    for kind in ("tree", "report", "treeid"):
        del out[kind]
    return out


def entries(cache: Path, kind: str) -> list[Path]:
    return sorted(p for p in cache.rglob("*.entry") if cache_entry_header(p)["kind"] == kind)


@pytest.fixture()
def scanned(tmp_path):
    """(folder, cache, baseline report) after one audit that filled the cache."""
    gate_dist(tmp_path / "a")
    baseline = run(tmp_path / "a", "--no-cache", "--jobs", "1")
    assert baseline.returncode == 1, baseline.stderr
    assert ("CUDA-EULA-DEV-TOOL", "dist/tools/ptxas") in {
        (f["rule"], f["path"]) for f in json.loads(baseline.stdout)["findings"]}
    cache = tmp_path / "cache"
    first = run(tmp_path / "a", "--cache-dir", str(cache))
    assert (first.returncode, first.stdout, first.stderr) == (1, baseline.stdout, "")
    # batches of plain files by folder: dist/README.txt, dist/app/{exe_multi,libcudart.so.13}, dist/tools/ptxas;
    # the wheel
    assert content_kinds(cache) == {"batch": 3, "archive": 1, "findings": 1, "memo": 4}
    return tmp_path / "a", cache, baseline.stdout


# ------------------------------------------------------------------------------------------ content keys


def test_copied_tree_hits_the_cache_of_the_first(scanned, tmp_path):
    """Issue 14 goal 4: a cache restored into a fresh checkout of the same bytes (new inodes, mtimes and ctimes)
    finds the whole audit by the tree's content: the JSON report kept beside its ``tree`` entry (its rendering showed
    no path relative to the working folder, so it is kept for every folder) is replayed, and no other entry is read;
    the report is identical. A copy with one more file misses the ``tree`` entry and still hits every batch of files
    and every archive it shares with the first."""
    first, cache, baseline = scanned
    copy = tmp_path / "b"
    shutil.copytree(first / "dist", copy / "dist")
    for path in (copy / "dist").rglob("*"):
        os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    assert (copy / "dist/app/exe_multi").stat().st_ino != (first / "dist/app/exe_multi").stat().st_ino
    (tree,) = entries(cache, "tree")
    (report,) = entries(cache, "report")
    stored = {p: p.read_bytes() for kind in ("batch", "archive", "findings") for p in entries(cache, kind)}
    for path in [*stored, tree, report]:
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    again = run(copy, "--cache-dir", str(cache))
    assert (again.returncode, again.stdout, again.stderr) == (1, baseline, "")
    assert report.stat().st_mtime_ns > 1_000_000_000_000_000_000  # the whole audit's report, found by content
    assert all(p.stat().st_mtime_ns == 1_000_000_000_000_000_000 for p in [*stored, tree])  # nothing else was read
    # one more file, in a folder of its own (a batch of its own): the tree entry misses, the batches and the wheel
    # are found by the content of their files, and none of them is stored again
    (copy / "dist/extra").mkdir()
    (copy / "dist/extra/NOTICE.txt").write_text("one more file\n")
    more = run(copy, "--cache-dir", str(cache))
    assert more.returncode == 1 and json.loads(more.stdout) == json.loads(run(copy, "--no-cache").stdout)
    assert {p: p.read_bytes() for p in stored} == stored
    assert all(p.stat().st_mtime_ns > 1_000_000_000_000_000_000 for kind in ("batch", "archive")
               for p in entries(cache, kind) if p in stored)
    assert content_kinds(cache)["batch"] == 4  # the new folder's batch only


def test_changed_bytes_are_examined_again(scanned):
    first, cache, baseline = scanned
    (first / "dist/tools/ptxas").write_bytes((FIXTURES / "cuda13/exe_multi").read_bytes())
    report = json.loads(run(first, "--cache-dir", str(cache)).stdout)
    fresh = json.loads(run(first, "--no-cache").stdout)
    assert report == fresh
    assert report != json.loads(baseline)


def installed_runtime(root: Path) -> Path:
    """``root/site-packages`` with NVIDIA's runtime wheel installed: its RECORD lists ``libcudart.so.13`` with the
    SHA-256 of its bytes (a RECORD comparison: a fact that needs the whole file)."""
    import base64

    info = "nvidia_cuda_runtime_cu13-13.0.96.dist-info"
    site = root / "site-packages"
    (site / "nvidia/cu13/lib").mkdir(parents=True)
    lib = site / "nvidia/cu13/lib/libcudart.so.13"
    shutil.copy(FIXTURES / "cuda13/libkern.so", lib)
    (site / info).mkdir()
    (site / info / "METADATA").write_text("Metadata-Version: 2.1\nName: nvidia-cuda-runtime-cu13\nVersion: 13.0.96\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(lib.read_bytes()).digest()).rstrip(b"=").decode()
    (site / info / "RECORD").write_text(f"nvidia/cu13/lib/libcudart.so.13,sha256={digest},{lib.stat().st_size}\n"
                                       f"{info}/METADATA,,\n{info}/RECORD,,\n")
    return site


def audit_json(cwd: Path, *args: str) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "licscan", "audit", "site-packages", "--format", "json", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    assert done.stderr == ""
    return done.returncode, json.loads(done.stdout)


def runtime_modified(report: dict) -> str:
    (cudart,) = [c for c in report["components"] if c["name"] == "cudart"]
    return cudart["properties"]["modified"]


def test_one_byte_changed_in_the_middle_of_a_copy_is_never_a_cached_fact(tmp_path):
    """Keys bind every byte of a file (docs/cache.md): a copy of an audited tree whose NVIDIA library differs in one
    byte in its middle (same size, same name, a fresh copy's new inode and times) is not reported unmodified against
    its RECORD digest from the cache of the first; an unchanged copy is the first's report, from the cache."""
    installed_runtime(tmp_path / "a")
    cache = str(tmp_path / "cache")
    first = audit_json(tmp_path / "a", "--cache-dir", cache)
    assert first == audit_json(tmp_path / "a", "--no-cache")
    assert runtime_modified(first[1]) == "soname-missing"
    shutil.copytree(tmp_path / "a/site-packages", tmp_path / "b/site-packages")
    assert audit_json(tmp_path / "b", "--cache-dir", cache) == first
    lib = tmp_path / "b/site-packages/nvidia/cu13/lib/libcudart.so.13"
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 1
    shutil.rmtree(tmp_path / "b")
    shutil.copytree(tmp_path / "a/site-packages", tmp_path / "b/site-packages")
    lib.write_bytes(bytes(data))
    changed = audit_json(tmp_path / "b", "--cache-dir", cache)
    assert changed == audit_json(tmp_path / "b", "--no-cache")
    assert runtime_modified(changed[1]) == "sha256-differs-from-record,soname-missing"


def test_a_byte_changed_in_place_with_its_mtime_set_back_is_never_a_cached_fact(tmp_path):
    """On the boot that audited a tree, an unchanged identity stands for unchanged bytes because the kernel sets a
    file's ctime on every change and nothing sets it back (docs/cache.md): one byte of the NVIDIA library changed in
    place (same inode, same size) and its mtime set back to what it was is seen -- the re-audit reports it modified
    against its RECORD digest, as a fresh audit does, though the tree is older than the racy window both times."""
    installed_runtime(tmp_path / "a")
    cache = str(tmp_path / "cache")
    lib = tmp_path / "a/site-packages/nvidia/cu13/lib/libcudart.so.13"
    _age_past_the_racy_window()
    first = audit_json(tmp_path / "a", "--cache-dir", cache)
    assert runtime_modified(first[1]) == "soname-missing"
    assert audit_json(tmp_path / "a", "--cache-dir", cache) == first  # replayed from the tree memo
    before = lib.stat()
    with open(lib, "r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 1]))
    os.utime(lib, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = lib.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    _age_past_the_racy_window()
    changed = audit_json(tmp_path / "a", "--cache-dir", cache)
    assert runtime_modified(changed[1]) == "sha256-differs-from-record,soname-missing"
    assert changed == audit_json(tmp_path / "a", "--no-cache")


def test_a_cold_audit_reads_every_file_once_for_its_keys(tmp_path, monkeypatch):
    """The tree memo's content key reads every file once (BLAKE3); the scan keys its batches and archives by those
    digests instead of reading the files again. A file that changed after it was read for the key (another
    identity) is read again for its own key."""
    import licscan.audit as audit
    from licscan.scan import ScanConfig, plain

    gate_dist(tmp_path)
    reads: list[str] = []
    real = plain._content_digest
    monkeypatch.setattr(plain, "_content_digest", lambda source: reads.append(source) or real(source))
    monkeypatch.chdir(tmp_path)
    options = audit.AuditOptions(scan=ScanConfig(cache_dir=str(tmp_path / "cache"), jobs=1))
    cold = audit.Audit(["dist"], options)
    assert cold.memo is not None and cold.memo.known is not None
    assert len(cold.memo.known.by_real) == 5
    cold.result()
    assert reads == []
    readme = tmp_path / "dist/README.txt"
    readme.write_text("another text\n")
    later = audit.Audit(["dist"], options)
    assert later.memo is not None and later.memo.known is not None
    readme.write_text("changed again after the tree was read (another size)\n")
    result = later.result()
    assert reads == [os.path.realpath("dist/README.txt")]
    assert result.inventory == audit.Audit(["dist"], audit.AuditOptions(scan=ScanConfig(jobs=1))).result().inventory


def test_environment_tree_reports_cold_cached_and_copied_are_identical(tmp_path, request):
    """Issue 14 goal 4 on the installed CUDA environment of benchmarks/build_env.py (12,846 files, 4.2 GiB; needs
    LICSCAN_REALWORLD=1): the report with an empty cache, again from the cache, and of a copy in a new folder (new
    inodes and times) audited with the first's cache are the ``--no-cache`` report; a copy in which cuBLASLt differs
    in one byte in its middle is reported modified against its RECORD digest, as without the cache."""
    from conftest import realworld_enabled

    if not realworld_enabled(request.config):
        pytest.skip("set LICSCAN_REALWORLD=1 (copies the 4.2 GiB environment tree)")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import build_env

    tree = build_env.site_packages()
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")

    def audit(cwd: Path, *args: str) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "licscan", "audit", "site-packages", "--format", "json", *args],
                              capture_output=True, text=True, cwd=cwd, env=env, timeout=1800)
        assert done.stderr == ""
        return done.returncode, done.stdout

    cache = str(tmp_path / "cache")
    plain = audit(tree.parent, "--no-cache")
    assert plain[0] == 0
    assert audit(tree.parent, "--cache-dir", cache) == plain
    # the report (19,000 device images) is kept beside the tree entry: the re-audit of the unchanged tree replays it
    assert kinds(Path(cache))["report"] == 1
    assert audit(tree.parent, "--cache-dir", cache) == plain
    copy = tmp_path / "copy"
    try:  # the copy is 4.2 GiB: never leave it behind, passed or failed
        shutil.copytree(tree, copy / "site-packages", symlinks=True)
        assert audit(copy, "--cache-dir", cache) == plain
        lib = copy / "site-packages/nvidia/cublas/lib/libcublasLt.so.12"
        with open(lib, "r+b") as handle:
            handle.seek(lib.stat().st_size // 2)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 1]))
        changed = audit(copy, "--cache-dir", cache)
        assert changed == audit(copy, "--no-cache")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    (cublas_lt,) = [c for c in json.loads(changed[1])["components"] if c["name"] == "cublasLt"]
    assert "sha256-differs-from-record" in cublas_lt["properties"]["modified"].split(",")


def test_sbom_finds_a_copied_tree_by_content(tmp_path):
    """``licscan sbom`` keeps its whole scan (inventory and per-file records) in the tree memo (a ``scan`` entry):
    a copy of the tree (new inodes and times) reads that entry, no batch or archive entry, and writes the same SBOM
    as ``--no-cache``; a changed file is examined again."""
    gate_dist(tmp_path / "a")
    cache = tmp_path / "cache"
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")

    def sbom(cwd: Path, *args: str) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "licscan", "sbom", "dist", "--format", "spdx-json", "-o",
                               "out.spdx.json", "--organization", "Example Corp", *args], capture_output=True, text=True,
                              cwd=cwd, env=env, timeout=300)
        assert done.stderr == ""
        return done.returncode, (cwd / "out.spdx.json").read_text()

    plain = sbom(tmp_path / "a", "--no-cache")
    assert plain[0] == 0
    assert sbom(tmp_path / "a", "--cache-dir", str(cache)) == plain
    (scanned,) = entries(cache, "scan")
    stored = [p for kind in ("batch", "archive") for p in entries(cache, kind)]
    assert stored
    for path in [*stored, scanned]:
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    shutil.copytree(tmp_path / "a/dist", tmp_path / "b/dist")
    for path in (tmp_path / "b/dist").rglob("*"):
        os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    assert sbom(tmp_path / "b", "--cache-dir", str(cache)) == plain
    assert scanned.stat().st_mtime_ns > 1_000_000_000_000_000_000  # the whole scan, found by content
    assert all(p.stat().st_mtime_ns == 1_000_000_000_000_000_000 for p in stored)  # nothing else was read
    (tmp_path / "b/dist/tools/ptxas").write_bytes((FIXTURES / "cuda13/exe_multi").read_bytes())
    changed = sbom(tmp_path / "b", "--cache-dir", str(cache))
    assert changed == sbom(tmp_path / "b", "--no-cache") and changed != plain


# ---------------------------------------------------------------------------------- the same-boot tree memo


def _age_past_the_racy_window() -> None:
    """A tree just written is not memoised (a file rewritten within its file system's timestamp granularity could
    keep its ctime): wait until everything the test wrote is older than the window."""
    import time

    from licscan.cache import keys

    time.sleep(keys.RACY_NS / 1e9 + 0.1)


def _mtimes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths}


def test_tree_memo_replays_an_unchanged_tree_and_misses_any_change(tmp_path):
    """Re-auditing a tree unchanged since it was audited on this boot reads one ``report`` entry (the report kept
    beside the ``tree`` entry): no tree, batch, archive or findings entry is read (a hit refreshes an entry's
    mtime), and the report and exit code are the same. Changed bytes, a new file, a renamed file and a retargeted
    link each make it a miss, and the report is then a fresh one's."""
    gate_dist(tmp_path / "a")
    (tmp_path / "a/dist/app/current").symlink_to("exe_multi")
    first = tmp_path / "a"
    cache = tmp_path / "cache"
    _age_past_the_racy_window()
    cold = run(first, "--cache-dir", str(cache))
    assert cold.returncode == 1, cold.stderr
    assert (kinds(cache)["tree"], kinds(cache)["report"]) == (1, 1)
    assert cold.stdout == run(first, "--no-cache").stdout
    content = [p for kind in ("batch", "archive", "findings") for p in entries(cache, kind)]
    (tree,) = entries(cache, "tree")
    (report,) = entries(cache, "report")
    for path in content + [tree, report]:
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    warm = run(first, "--cache-dir", str(cache))
    assert (warm.returncode, warm.stdout, warm.stderr) == (1, cold.stdout, "")
    assert report.stat().st_mtime_ns > 1_000_000_000_000_000_000  # the kept report was read
    assert all(p.stat().st_mtime_ns == 1_000_000_000_000_000_000 for p in content + [tree])  # nothing else was

    def changed(edit) -> None:
        edit()
        again = run(first, "--cache-dir", str(cache))
        assert again.returncode == 1, again.stderr
        fresh = run(first, "--no-cache")
        assert json.loads(again.stdout) == json.loads(fresh.stdout)
        assert again.stdout != warm.stdout

    readme = first / "dist/README.txt"
    changed(lambda: readme.write_text(readme.read_text() + "one more line\n"))
    changed(lambda: (first / "dist/tools/libcudart.so.13").write_bytes((FIXTURES / "cuda13/libkern.so").read_bytes()))
    changed(lambda: (first / "dist/tools/libcudart.so.13").rename(first / "dist/tools/libcublas.so.13"))
    link = first / "dist/app/current"

    def retarget() -> None:
        link.unlink()
        link.symlink_to("libcudart.so.13")

    changed(retarget)


def test_a_tree_audited_yesterday_is_found_today_unless_a_waiver_expired_in_between(tmp_path):
    """The findings depend on the date only through the waivers' expiry (``licscan.rules.waivers.apply``): the
    ``tree`` entry binds which waivers have expired, not the date, so the audit of the same tree the next day finds
    it (no batch, archive or findings entry read) and gives that day's ``--no-cache`` report; once a waiver has
    expired the ``tree`` entry misses, and the report (the waiver reported expired) is again that day's."""
    gate_dist(tmp_path / "a")
    first, cache = tmp_path / "a", tmp_path / "cache"
    (first / ".licscan.yaml").write_text(
        "waivers:\n  - rule: CUDA-EULA-DEV-TOOL\n    path: \"dist/tools/ptxas\"\n    reason: reviewed\n"
        "    expires: 2023-11-20\n")
    _age_past_the_racy_window()

    def day(epoch: int, *args: str) -> subprocess.CompletedProcess:
        return run(first, *args, env=dict(os.environ, SOURCE_DATE_EPOCH=str(epoch)))

    monday, tuesday, later = 1_700_000_000, 1_700_000_000 + 86_400, 1_700_000_000 + 10 * 86_400  # 2023-11-14...
    cold = day(monday, "--cache-dir", str(cache))
    assert (cold.returncode, cold.stdout) == (1, day(monday, "--no-cache").stdout)
    (tree,) = entries(cache, "tree")
    content = [p for kind in ("batch", "archive", "findings") for p in entries(cache, kind)]
    for path in content + [tree]:
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    next_day = day(tuesday, "--cache-dir", str(cache))
    assert (next_day.returncode, next_day.stdout) == (1, day(tuesday, "--no-cache").stdout)
    assert tree.stat().st_mtime_ns > 1_000_000_000_000_000_000  # the audit of the day before
    assert all(p.stat().st_mtime_ns == 1_000_000_000_000_000_000 for p in content)
    assert not any(f["rule"] == "LICSCAN-WAIVER-EXPIRED" for f in json.loads(next_day.stdout)["findings"])
    expired = day(later, "--cache-dir", str(cache))
    assert (expired.returncode, expired.stdout) == (1, day(later, "--no-cache").stdout)
    assert any(f["rule"] == "LICSCAN-WAIVER-EXPIRED" for f in json.loads(expired.stdout)["findings"])
    assert kinds(cache)["tree"] == 2


def test_kept_reports_replay_only_what_they_were_rendered_for(tmp_path):
    """A report kept beside the tree memo is replayed for the same format and render options only: another
    ``--fail-on`` changes the exit code of the replayed report (it is computed from the kept findings); another
    format is rendered from the tree entry and kept too; an HTML report (it says when it was made) is kept only
    with SOURCE_DATE_EPOCH set, then replayed byte for byte."""
    gate_dist(tmp_path / "a")
    first, cache = tmp_path / "a", tmp_path / "cache"
    _age_past_the_racy_window()
    cold = run(first, "--cache-dir", str(cache))
    assert (cold.returncode, kinds(cache)["report"]) == (1, 1)
    (tree,) = entries(cache, "tree")
    os.utime(tree, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    relaxed = run(first, "--cache-dir", str(cache), "--fail-on", "never")
    assert (relaxed.returncode, relaxed.stdout, relaxed.stderr) == (0, cold.stdout, "")
    assert tree.stat().st_mtime_ns == 1_000_000_000_000_000_000  # replayed: the tree entry was not read
    sarif = run(first, "--cache-dir", str(cache), fmt="sarif")
    assert (sarif.returncode, sarif.stdout) == (1, run(first, "--no-cache", fmt="sarif").stdout)
    assert tree.stat().st_mtime_ns > 1_000_000_000_000_000_000 and kinds(cache)["report"] == 2
    html = run(first, "--cache-dir", str(cache), fmt="html")
    assert html.returncode == 1 and kinds(cache)["report"] == 2  # made at a time of day: not kept
    epoch = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    fresh = run(first, "--no-cache", fmt="html", env=epoch)
    kept = run(first, "--cache-dir", str(cache), fmt="html", env=epoch)
    assert (kept.returncode, kept.stdout, kinds(cache)["report"]) == (1, fresh.stdout, 3)
    os.utime(tree, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    replayed = run(first, "--cache-dir", str(cache), fmt="html", env=epoch)
    assert (replayed.returncode, replayed.stdout) == (1, fresh.stdout)
    assert tree.stat().st_mtime_ns == 1_000_000_000_000_000_000


def test_a_report_that_showed_paths_relative_to_the_working_folder_is_kept_for_that_folder_only(tmp_path):
    """A kept report is replayed in another working folder only when its rendering showed no path relative to the
    working folder (``licscan.report._shared.rel`` did not look at it): the JSON report of an absolute input is
    kept once for every folder; its text report, which shows the input relative to the folder it was audited from,
    is kept for each folder and is in each the report a fresh audit there gives."""
    gate_dist(tmp_path / "a")
    dist, cache = str(tmp_path / "a" / "dist"), tmp_path / "cache"
    _age_past_the_racy_window()

    def audit(cwd: Path, fmt: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "licscan", "audit", dist, "--format", fmt, "--fail-on",
                               "warning", *args], capture_output=True, text=True, cwd=cwd, timeout=300)

    inner, outer = tmp_path / "a", tmp_path
    first = audit(inner, "json", "--cache-dir", str(cache))
    assert first.returncode == 1 and kinds(cache)["report"] == 1
    (tree,) = entries(cache, "tree")
    os.utime(tree, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    again = audit(outer, "json", "--cache-dir", str(cache))
    assert (again.returncode, again.stdout) == (1, first.stdout) and kinds(cache)["report"] == 1
    assert tree.stat().st_mtime_ns == 1_000_000_000_000_000_000  # replayed in the other folder
    texts = {}
    for cwd in (inner, outer, inner, outer):
        kept = audit(cwd, "text", "--cache-dir", str(cache))
        assert (kept.returncode, kept.stdout) == (1, audit(cwd, "text", "--no-cache").stdout)
        texts[cwd] = kept.stdout
    assert texts[inner] != texts[outer]  # "dist" and "a/dist"
    assert kinds(cache)["report"] == 3


def test_a_damaged_or_swapped_kept_report_is_a_miss(tmp_path):
    """The cache folder is hostile input: a kept report with a flipped byte, or another kept report copied over it
    (a valid entry under another name), is a miss -- the report is rendered again from the tree entry, the same
    as a fresh audit's, and kept again."""
    gate_dist(tmp_path / "a")
    first, cache = tmp_path / "a", tmp_path / "cache"
    _age_past_the_racy_window()
    cold = run(first, "--cache-dir", str(cache))
    (json_entry,) = entries(cache, "report")
    sarif = run(first, "--cache-dir", str(cache), fmt="sarif")
    (sarif_entry,) = set(entries(cache, "report")) - {json_entry}
    assert (cold.returncode, sarif.returncode) == (1, 1)
    for damage in ("flip", "swap"):
        raw = bytearray(json_entry.read_bytes())
        if damage == "flip":
            raw[-3] ^= 0x20
        else:
            raw = bytearray(sarif_entry.read_bytes())
        json_entry.write_bytes(bytes(raw))
        again = run(first, "--cache-dir", str(cache))
        assert (again.returncode, again.stdout, again.stderr) == (1, cold.stdout, ""), damage
        assert json_entry.read_bytes() != bytes(raw), damage  # kept again
    assert run(first, "--cache-dir", str(cache)).stdout == cold.stdout


def test_a_racy_tree_is_stored_after_its_newest_files_are_read_again(tmp_path, monkeypatch):
    """A tree in which something changed just before it was listed (racy: a file rewritten within its file
    system's timestamp granularity keeps its identity) is stored only after the files that changed within the racy
    window are read again and hold the bytes read for the key -- only those: an older file cannot have been
    rewritten without a new ctime. One that holds other bytes (as if rewritten with the same identity during the
    scan) stores nothing."""
    import dataclasses
    import time

    import licscan.audit as audit
    from licscan.cache import keys, memo
    from licscan.scan import ScanConfig

    (tmp_path / "t").mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / "t" / name).write_text(name)
    time.sleep(0.5)
    monkeypatch.setattr(keys, "RACY_NS", 250_000_000)
    (tmp_path / "t/new.txt").write_text("written just now")
    monkeypatch.chdir(tmp_path)
    reads: list[list[str]] = []
    real = memo.content_digests
    monkeypatch.setattr(memo, "content_digests",
                        lambda files, *jobs: reads.append([f[0] for f in files]) or real(files, *jobs))
    options = audit.AuditOptions(scan=ScanConfig(cache_dir=str(tmp_path / "cache"), jobs=1))
    first = audit.Audit(["t"], options)
    assert first.memo is not None and first.memo.listing.racy and first.memo.known is not None
    first.result()
    assert [sorted(r) for r in reads] == [["t/a.txt", "t/b.txt", "t/c.txt", "t/new.txt"], ["t/new.txt"]]
    assert first._remembered  # stored
    (tmp_path / "t/new.txt").write_text("written again")
    again = audit.Audit(["t"], options)
    assert again.memo is not None and again.memo.known is not None
    known = dict(again.memo.known.by_real)
    real_new = os.path.realpath("t/new.txt")
    known[real_new] = (known[real_new][0], "0" * 64)  # other bytes under the same identity
    again.memo = dataclasses.replace(again.memo, known=cache_module.KnownDigests(known))
    again.result()
    assert not again._remembered


def test_tree_identity_sees_every_change_and_no_racy_tree(tmp_path, monkeypatch):
    """licscan.cache.tree_identity: equal for an unchanged tree; different after a change of bytes (same size),
    mode, name, a new file or folder, a retargeted link or a link whose target appears; None for a tree changed
    within the racy window."""
    from licscan.cache import keys, tree_identity

    monkeypatch.setattr(keys, "RACY_NS", 0)
    root = tmp_path / "t"
    (root / "sub").mkdir(parents=True)
    (root / "sub/a.so").write_bytes(b"\x7fELF one")
    (root / "b.txt").write_text("b")
    (root / "link").symlink_to("../elsewhere")
    seen = {tree_identity([str(root)])}
    assert tree_identity([str(root)]) in seen and None not in seen

    def differs(edit) -> None:
        edit()
        now = tree_identity([str(root)])
        assert now is not None and now not in seen
        seen.add(now)

    differs(lambda: (root / "sub/a.so").write_bytes(b"\x7fELF two"))
    differs(lambda: os.chmod(root / "b.txt", 0o600))
    differs(lambda: (root / "b.txt").rename(root / "c.txt"))
    differs(lambda: (root / "sub/new").write_bytes(b""))
    differs(lambda: (root / "sub/deeper").mkdir())
    differs(lambda: (tmp_path / "elsewhere").write_text("now the link points at something"))

    def retarget() -> None:
        (root / "link").unlink()
        (root / "link").symlink_to("c.txt")

    differs(retarget)
    assert tree_identity([str(root / "missing")]) is None
    monkeypatch.setattr(keys, "RACY_NS", 10**18)
    assert tree_identity([str(root)]) is None


def test_listing_gives_the_files_in_walk_order_and_sees_times_past_2262(tmp_path, monkeypatch):
    """licscan.cache.list_tree: every regular file (inputs and under folders; not links, folders or what a link
    points at) with its path as walked, its real path and its identity (device, inode, size, mtime ns, ctime ns),
    folders in name order; the files changed within the racy window; a time too large for a 64-bit machine integer
    (after 2262) still lists, and a change of it is seen."""
    from licscan.cache import keys, list_tree

    root = tmp_path / "t"
    (root / "b").mkdir(parents=True)
    (root / "b/z.so").write_bytes(b"\x7fELF")
    (root / "a.txt").write_text("a")
    (root / "c").symlink_to("a.txt")
    (tmp_path / "one.txt").write_text("one")
    monkeypatch.chdir(tmp_path)

    def identity(path: str) -> tuple[int, ...]:
        st = os.lstat(path)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    monkeypatch.setattr(keys, "RACY_NS", 10**18)
    listing = list_tree(["one.txt", "t"])
    assert listing is not None and listing.racy
    expect = ["one.txt", "t/a.txt", "t/b/z.so"]
    assert listing.files == tuple((path, identity(path)) for path in expect)
    assert listing.reals == tuple(os.path.realpath(path) for path in expect)
    assert listing.racy_files == (0, 1, 2)
    (tmp_path / "linked").symlink_to("t")  # an input given as a link to a folder is followed; links under it not
    linked = list_tree(["linked"])
    assert linked is not None
    assert linked.files == (("linked/a.txt", identity("t/a.txt")), ("linked/b/z.so", identity("t/b/z.so")))
    assert linked.reals == (os.path.realpath("t/a.txt"), os.path.realpath("t/b/z.so"))
    monkeypatch.setattr(keys, "RACY_NS", 0)
    listing = list_tree(["one.txt", "t"])
    assert listing is not None and not listing.racy and listing.racy_files == ()
    seen = {listing.identity}
    for mtime in (10**19, 10**19 + 1):  # past 2**63 ns: kept as text, not as a machine integer
        try:
            os.utime(root / "a.txt", ns=(mtime, mtime))
        except (OSError, OverflowError):
            pytest.skip("this file system keeps no time that large")
        if os.stat(root / "a.txt").st_mtime_ns != mtime:
            pytest.skip("this file system keeps no time that large")
        listing = list_tree(["one.txt", "t"])
        assert listing is not None and listing.identity not in seen
        assert listing.files[1] == ("t/a.txt", identity("t/a.txt"))
        seen.add(listing.identity)


def test_content_key_is_a_copys_and_changes_with_anything_the_walker_sees(tmp_path, monkeypatch):
    """licscan.cache.content_key: the same for a copy of a tree elsewhere (new inodes and times, other permission
    bits: a checkout made with another umask) audited under the same name; different after a change of bytes (same
    size), a name, a new file or folder, a retargeted link, or a dangling link whose target appears (the walker then
    says it points out of the tree)."""
    from licscan.cache import content_digests, content_key, list_tree

    def key(base: Path) -> str:
        monkeypatch.chdir(base)
        listing = list_tree(["t"])
        assert listing is not None
        digests = content_digests(listing.files)
        assert digests is not None
        return content_key(listing, digests)

    root = tmp_path / "a/t"
    (root / "sub").mkdir(parents=True)
    (root / "sub/a.so").write_bytes(b"\x7fELF one")
    (root / "b.txt").write_text("b")
    (root / "link").symlink_to("b.txt")
    (root / "out").symlink_to("../../elsewhere")
    first = key(tmp_path / "a")
    shutil.copytree(root, tmp_path / "b/t", symlinks=True)
    for path in (tmp_path / "b/t").rglob("*"):
        os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000), follow_symlinks=False)
    os.chmod(tmp_path / "b/t/b.txt", 0o600)
    os.chmod(tmp_path / "b/t/sub", 0o700)
    seen = {key(tmp_path / "b")}
    assert seen == {first}
    copy = tmp_path / "b/t"

    def differs(edit) -> None:
        edit()
        now = key(tmp_path / "b")
        assert now not in seen
        seen.add(now)

    differs(lambda: (copy / "sub/a.so").write_bytes(b"\x7fELF two"))
    differs(lambda: (copy / "b.txt").rename(copy / "c.txt"))
    differs(lambda: (copy / "sub/new").write_bytes(b""))
    differs(lambda: (copy / "sub/deeper").mkdir())
    differs(lambda: (tmp_path / "elsewhere").write_text("the link now points out of the tree"))

    def retarget() -> None:
        (copy / "link").unlink()
        (copy / "link").symlink_to("c.txt")

    differs(retarget)


def test_content_digest_is_blake3_of_every_byte_and_sees_one_changed_byte_anywhere(tmp_path):
    """A file's content digest (licscan.cache.file_digest; content_digests over a tree) is BLAKE3 of all its bytes
    however they are read: on one core in small blocks (files hashed side by side), on every core in large ones
    (one file alone), into a buffer of any size; one byte changed anywhere -- the first, the last, either side of a
    block's end -- gives another digest."""
    import blake3

    from licscan.cache import content_digests, file_digest, keys, list_tree

    sizes = [0, 1, keys.SMALL_BLOCK - 1, keys.SMALL_BLOCK, keys.SMALL_BLOCK + 1, keys.BLOCK + keys.SMALL_BLOCK + 3]
    rng = random.Random(14)
    tree = tmp_path / "t"
    tree.mkdir()
    for size in sizes:
        (tree / f"f{size}").write_bytes(rng.randbytes(size))
    listing = list_tree([str(tree)])
    assert listing is not None and len(listing.files) == len(sizes)
    expected = tuple(blake3.blake3(Path(path).read_bytes()).hexdigest() for path, _identity in listing.files)
    assert content_digests(listing.files, 1) == content_digests(listing.files, 2) == expected
    big = tree / f"f{sizes[-1]}"
    data = big.read_bytes()
    for threads in (True, False):
        for buffer in (None, memoryview(bytearray(1000)), memoryview(bytearray(keys.BLOCK * 2))):
            with open(big, "rb") as handle:
                assert file_digest(handle.fileno(), len(data), buffer, threads=threads) \
                    == blake3.blake3(data).hexdigest()
    seen = {blake3.blake3(data).hexdigest()}
    for at in (0, keys.SMALL_BLOCK - 1, keys.SMALL_BLOCK, keys.BLOCK - 1, keys.BLOCK, len(data) - 1):
        changed = bytearray(data)
        changed[at] ^= 0x80
        big.write_bytes(changed)
        listing = list_tree([str(tree)])
        assert listing is not None
        digests = {content_digests(listing.files, jobs) for jobs in (1, 2)}
        assert len(digests) == 1
        (now,) = digests
        assert now is not None
        by_path = dict(zip((path for path, _identity in listing.files), now))
        digest = by_path.pop(str(big))
        assert digest == blake3.blake3(bytes(changed)).hexdigest() and digest not in seen
        assert sorted(by_path.values()) == sorted(d for (path, _i), d in zip(listing.files, expected) if path != str(big))
        seen.add(digest)


def test_an_unchanged_tree_is_read_once_on_the_boot_that_hashed_it(tmp_path, monkeypatch):
    """The tree memo's ``treeid`` entry maps an unchanged tree's identity to its content key on the boot that
    hashed it: a second audit reads no file's bytes for the key; changed bytes (same size) are hashed again."""
    import licscan.audit as audit
    from licscan.cache import keys, memo
    from licscan.scan import ScanConfig

    monkeypatch.setattr(keys, "RACY_NS", 0)  # the tree below is not "just changed"
    calls = []
    real = memo.content_digests
    monkeypatch.setattr(memo, "content_digests", lambda files, *jobs: calls.append(len(files)) or real(files, *jobs))
    (tmp_path / "t").mkdir()
    (tmp_path / "t/a.txt").write_text("a")
    (tmp_path / "t/b.txt").write_text("b")
    monkeypatch.chdir(tmp_path)
    options = audit.AuditOptions(scan=ScanConfig(cache_dir=str(tmp_path / "cache"), jobs=1))

    def content() -> str:
        memo = audit.Audit(["t"], options).memo
        assert memo is not None
        return memo.content

    first = content()
    assert (content(), calls) == (first, [2])
    (tmp_path / "t/b.txt").write_text("B")
    os.utime(tmp_path / "t/b.txt", ns=(1_000_000_000, 1_000_000_000))  # another identity, however fast the test ran
    assert content() != first and calls == [2, 2]


def test_columns_round_trip_exactly():
    """A tuple of many values of one dataclass is stored by columns with each distinct value once: the decoded
    values are equal and of the same types (True, 1, 1.0, 0.0 and -0.0 are not merged, nor (1,) and (True,)),
    and the images that share a value share one decoded value."""
    import math

    from licscan.model import Compression, Container, DeviceImage, ImageKind, ToolInfo, ToolkitRange

    kit = ToolkitRange("12.0", "12.4", None, ("a note",))
    images = tuple(DeviceImage(f"lib{i % 3}.so", Container.NV_FATBIN, ImageKind.CUBIN, "sm_80", "sm_80", None,
                               (kit, ToolkitRange("1"), None)[i % 3], Compression.NONE, i, (None, 0, 1)[i % 3],
                               tool=ToolInfo("ptxas", "12.4.1", None, None, None) if i % 2 else None,
                               debug=bool(i % 2))
                   for i in range(30))
    odd = (1, True, 0, False, 1.0, -0.0, 0.0, None, (1,), (True,), (1.0,))
    mixed = tuple(Diagnostic("x", DiagnosticKind.MALFORMED, "m", odd[i % len(odd)]) for i in range(2 * len(odd)))
    for value in (images, mixed):
        raw = cache_module.dumps(value)
        assert raw.startswith(b'{"@c":')
        back = cache_module.loads(raw)
        assert back == value
        assert [repr(vars(b)) for b in back] == [repr(vars(v)) for v in value]  # 1 vs True, 0.0 vs -0.0
    assert math.copysign(1, cache_module.loads(cache_module.dumps(mixed))[5].offset) == -1
    back = cache_module.loads(cache_module.dumps(images))
    assert back[0].toolkit is back[3].toolkit  # one decoded value for the images that share it
    data = json.loads(cache_module.dumps(images))
    data["c"][0]["i"][0] = 99  # the path column: an index past its table
    with pytest.raises(cache_module.CodecError):
        cache_module.decode(data)


def test_long_strings_are_kept_after_the_json_and_round_trip_exactly(tmp_path):
    """A string of 4,096 characters or more (a rendered report) is kept after the entry's JSON as UTF-8 and named
    by its place; it decodes to the same string, lone surrogates (file names that are not UTF-8), quotes, line
    breaks and non-ASCII text included; shorter strings stay in the JSON. A reference outside the kept bytes, or
    kept bytes that are not what was written, is an error (a miss), never another string."""
    from licscan.cache import codec

    long = 'a "quoted" line\n\udcff caf\u00e9 \u2014 ' * 200
    value = (Diagnostic("dist/x.so", DiagnosticKind.MALFORMED, long, 1), "short", long[:4095], long + "!")
    raw = cache_module.dumps(value)
    head, _, tail = raw.partition(b"\n")
    data = json.loads(head)
    assert data[0]["f"][2] == {"@t": [0, len(long.encode("utf-8", "surrogatepass"))]}
    assert data[1:3] == ["short", long[:4095]]
    assert tail == long.encode("utf-8", "surrogatepass") + (long + "!").encode("utf-8", "surrogatepass")
    back = cache_module.loads(raw)
    assert back == value and back[0].message == long
    for bad in ([0, len(tail) + 1], [5, 4], [-1, 3], ["0", 3], [0]):
        with pytest.raises(codec.CodecError):
            cache_module.decode({"@t": bad}, tail)
    with pytest.raises(ValueError):
        cache_module.decode({"@t": [0, 2]}, b"\xff\xfe")
    store = Cache.open(str(tmp_path / "c"), "settings")
    key = store.key("file", "2" * 64)
    assert store.put(key, "file", value) and store.get(key, "file", tuple) == value


def test_knowledge_table_edit_is_seen_through_a_warm_cache(tmp_path):
    """Issue 12 item 6: the key binds the digests of rules/ (catalog, licence tables, packs) and of the code. A copy
    of licscan with cudart's licence edited in rules/catalog/nvidia.yaml, run on a warm cache, reports the new
    licence."""
    package = tmp_path / "pkg"
    shutil.copytree(REPO / "licscan", package / "licscan", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "rules", package / "licscan" / "_builtin_rules",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(package))
    probe = subprocess.run([sys.executable, "-c", "import licscan, licscan._builtin_rules as r; "
                                                  "print(licscan.__file__); print(r.__file__)"],
                           capture_output=True, text=True, env=env, check=True, cwd=tmp_path)
    assert probe.stdout.splitlines() == [str(package / "licscan/__init__.py"),
                                         str(package / "licscan/_builtin_rules/__init__.py")]
    gate_dist(tmp_path / "w")
    cache = tmp_path / "cache"

    def cudart_licence() -> str:
        proc = run(tmp_path / "w", "--cache-dir", str(cache), env=env)
        assert proc.returncode == 1, proc.stderr
        return next(c["license"] for c in json.loads(proc.stdout)["components"] if c["name"] == "cudart")

    assert cudart_licence() == "LicenseRef-NVIDIA-CUDA-EULA"
    assert cudart_licence() == "LicenseRef-NVIDIA-CUDA-EULA"  # warm
    table = package / "licscan/_builtin_rules/catalog/nvidia.yaml"
    text = table.read_text()
    old = "  cudart:\n    display: CUDA Runtime\n    kind: sdk-library\n    license: cuda-eula\n"
    assert old in text
    table.write_text(text.replace(old, old.replace("license: cuda-eula", "license: nccl")))
    assert cudart_licence() == "BSD-3-Clause"


# ------------------------------------------------------------------------------------------ hostile entries


class _Boom:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_in_the_cache_is_never_executed(scanned, tmp_path):
    """Issue 13 item 1: entries are not pickles; a pickle written over every entry (and where the old format kept
    them) is a miss, never loaded."""
    first, cache, baseline = scanned
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Boom(marker))
    assert not marker.exists()
    for path in cache.rglob("*.entry"):
        path.write_bytes(payload)
    (cache / "v1" / "ab").mkdir(parents=True)
    (cache / "v1" / "ab" / ("ab" + "0" * 62 + ".pickle")).write_bytes(payload)
    again = run(first, "--cache-dir", str(cache))
    assert (again.returncode, again.stdout) == (1, baseline)
    assert not marker.exists()


def test_flipped_bytes_make_a_miss_never_a_wrong_value(tmp_path):
    """Issue 13 item 1: "21 of 60 two-byte flips in entries gave a silently wrong inventory, others a traceback".
    Every one of 200 two-byte flips (header, HMAC, payload) is a miss."""
    store = Cache.open(str(tmp_path / "c"), "settings")
    value = FileFacts("dist/x.so", FileFormat.ELF, 4096,
                      diagnostics=(Diagnostic("dist/x.so", DiagnosticKind.MALFORMED, "bad", 12),))
    key = store.key("file", "0" * 64)
    assert store.put(key, "file", value)
    assert store.get(key, "file", FileFacts) == value
    path = Path(store._file(key))
    original = path.read_bytes()
    rng = random.Random(13)
    for _ in range(200):
        data = bytearray(original)
        for at in rng.sample(range(len(data)), 2):
            data[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        assert store.get(key, "file", FileFacts) is None
    for cut in (0, 5, len(original) // 2, len(original) - 1):
        path.write_bytes(original[:cut])
        assert store.get(key, "file", FileFacts) is None
    path.write_bytes(original)
    assert store.get(key, "file", FileFacts) == value
    # an entry copied under another name (another file's key) is a miss too
    other = store.key("file", "1" * 64)
    os.makedirs(os.path.dirname(store._file(other)), exist_ok=True)
    shutil.copy(path, store._file(other))
    assert store.get(other, "file", FileFacts) is None


def _forge(path: Path, value, secret: bytes | None) -> None:
    """Rewrite an entry as someone without the cache's key would (or with ``secret``): same name and kind, new
    payload, a MAC (HMAC under ``secret``, else a plain SHA-256 of the payload)."""
    import hmac

    lines = path.read_bytes().split(b"\n", 2)
    header = json.loads(lines[1])
    payload = zlib.compress(cache_module.dumps(value), 1)
    message = f"{header['key']}\0{header['kind']}\0".encode() + payload
    mac = hmac.new(secret, message, hashlib.sha256).hexdigest() if secret else hashlib.sha256(payload).hexdigest()
    header.update(size=len(payload), mac=mac)
    path.write_bytes(lines[0] + b"\n" + json.dumps(header).encode() + b"\n" + payload)


def test_a_forged_empty_findings_entry_does_not_turn_the_gate_green(scanned):
    first, cache, baseline = scanned
    (findings,) = entries(cache, "findings")
    _forge(findings, [], None)
    again = run(first, "--cache-dir", str(cache))
    assert (again.returncode, again.stdout) == (1, baseline)


def test_with_a_secret_from_the_environment_a_replaced_key_file_forges_nothing(tmp_path):
    """CI: LICSCAN_CACHE_SECRET (from a CI secret) is the HMAC key; the key file of a restored cache is not used, so
    whoever could write the cache cannot make an entry that verifies."""
    gate_dist(tmp_path / "a")
    cache = tmp_path / "cache"
    env = dict(os.environ, LICSCAN_CACHE_SECRET="ci-secret-for-this-test")
    baseline = run(tmp_path / "a", "--cache-dir", str(cache), env=env)
    assert baseline.returncode == 1, baseline.stderr
    assert not (cache / "v2" / "secret").exists()
    forger_key = b"k" * 32
    (cache / "v2" / "secret").write_bytes(forger_key)
    os.chmod(cache / "v2" / "secret", 0o600)
    (findings,) = entries(cache, "findings")
    _forge(findings, [], forger_key)
    again = run(tmp_path / "a", "--cache-dir", str(cache), env=env)
    assert (again.returncode, again.stdout) == (1, baseline.stdout)


def test_foreign_types_in_an_entry_are_refused():
    for data in ({"@": "os:system"}, {"@": "subprocess:Popen"}, {"@e": "builtins:object", "v": 1},
                 {"@": "licscan.cache:Cache"}, {"@": "licscan.model:FileFacts", "path": "x"},
                 {"@": "licscan.model:FileFacts.__init__"}, {"nothing": 1}):
        with pytest.raises((cache_module.CodecError, TypeError, ValueError)):
            cache_module.decode(data)


# -------------------------------------------------------------------------------------------- the folder


def test_group_writable_cache_folder_is_refused(scanned):
    first, cache, baseline = scanned
    os.chmod(cache, 0o777)
    before = sorted(p.name for p in cache.rglob("*"))
    again = run(first, "--cache-dir", str(cache))
    assert (again.returncode, again.stdout) == (1, baseline)
    assert again.stderr == (f"licscan: cache folder {cache} is writable by group or others (mode 777): running "
                            "without the cache\n")
    assert sorted(p.name for p in cache.rglob("*")) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_cache_folder_of_another_user_is_refused(scanned):
    first, cache, baseline = scanned
    os.chown(cache, 65534, 65534)
    again = run(first, "--cache-dir", str(cache))
    assert (again.returncode, again.stdout) == (1, baseline)
    assert again.stderr == (f"licscan: cache folder {cache} belongs to another user (uid 65534): running without the "
                            "cache\n")


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    Cache.open(str(tmp_path / "c"), "s")
    os.chmod(tmp_path / "c" / "v2" / "secret", 0o644)
    with pytest.raises(CacheRefused, match="is not a private file of this user"):
        Cache.open(str(tmp_path / "c"), "s")


# -------------------------------------------------------------------------------------------- size bound


def test_size_bound_evicts_least_recently_used(tmp_path):
    store = Cache.open(str(tmp_path / "c"), "s", max_bytes=40_000)
    keys = [store.key("file", str(i)) for i in range(20)]
    rng = random.Random(5)
    for i, key in enumerate(keys):
        assert store.put(key, "file", ("x" * 100, bytes(rng.getrandbits(8) for _ in range(3000))))
        os.utime(store._file(key), ns=(i * 10**9, i * 10**9))
    sizes = {k: os.path.getsize(store._file(k)) for k in keys}
    assert sum(sizes.values()) > 40_000
    assert store.get(keys[0], "file") is not None  # a hit: the oldest becomes the most recently used
    removed = store.trim()
    left = [k for k in keys if os.path.exists(store._file(k))]
    assert sum(sizes[k] for k in left) <= 32_000
    assert removed == len(keys) - len(left) > 0
    assert keys[0] in left
    assert left[1:] == keys[len(keys) - len(left) + 1:]  # the rest: the newest ones


def test_trim_counts_again_only_the_entry_folders_that_changed(tmp_path, monkeypatch):
    """The size bound's look at the folder (docs/cache.md, "Size bound"): the bytes of a folder of entries are kept
    in the ``sizes`` file with the folder's identity and counted again only when the folder changed (an entry
    written) or changed just before it was counted (racy); a ``sizes`` file that does not verify (damaged, or
    written without the cache's key) is not used; over the bound, entries are evicted as before and the file goes."""
    from licscan.cache import keys
    from licscan.cache import store as store_module

    monkeypatch.setattr(keys, "RACY_NS", 0)
    store = Cache.open(str(tmp_path / "c"), "s", max_bytes=10**9)
    for i in range(12):
        assert store.put(store.key("file", str(i)), "file", ("x" * 100, i))
    folders = sorted(str(p) for p in (tmp_path / "c/v2").iterdir() if p.is_dir())
    counted: list[str] = []
    real = store_module._folder_bytes
    monkeypatch.setattr(store_module, "_folder_bytes", lambda folder: counted.append(folder) or real(folder))

    def trim() -> list[str]:
        counted.clear()
        assert store.trim() == 0
        return sorted(counted)

    assert trim() == folders
    assert trim() == []  # nothing changed: no folder of entries is read
    key = store.key("file", "one more")
    assert store.put(key, "file", "y")
    assert trim() == [os.path.dirname(store._file(key))]
    assert trim() == []
    sizes = tmp_path / "c/v2/sizes"
    sizes.write_bytes(sizes.read_bytes()[:-2])
    everything = sorted(set(folders) | {os.path.dirname(store._file(key))})
    assert trim() == everything
    forger = Cache(str(tmp_path / "c"), "s", secret=b"f" * 32)  # another key: its entries do not verify
    assert forger._store(str(sizes), "sizes", "sizes", tuple((os.path.basename(f), 0, 0, 0, 0) for f in folders))
    assert trim() == everything
    sizes.unlink()
    monkeypatch.setattr(keys, "RACY_NS", 10**18)  # every folder just changed: counted each time, never kept
    assert trim() == trim() == everything
    assert not sizes.exists()
    monkeypatch.setattr(keys, "RACY_NS", 0)
    assert trim() == everything and sizes.exists()
    store.max_bytes = 1000
    assert store.trim() > 0 and not sizes.exists()
    assert sum(p.stat().st_size for p in (tmp_path / "c/v2").rglob("*.entry")) <= 800


def test_cache_max_size_option_bounds_the_folder(scanned, tmp_path):
    first, cache, baseline = scanned
    again = run(first, "--cache-dir", str(cache), "--cache-max-size", "1k")
    assert (again.returncode, again.stdout) == (1, baseline)
    total = sum(p.stat().st_size for p in (cache / "v2").rglob("*") if p.is_file() and p.name != "secret")
    assert total <= 1024
    assert sum(kinds(cache).values()) < 9  # of the 9 (or 10, with a tree memo) entries the first audit wrote
    assert (cache / "v2" / "secret").exists()  # the key is never evicted


def test_trim_removes_the_folders_of_older_formats_and_nothing_they_link_to(tmp_path):
    """A cache written by format 1 (pickled entries) is never read again: its ``v1`` folder goes at the next trim, the
    way the size bound would have removed its entries; a link inside it is removed, not followed, and a link named
    like an old format's folder, a folder of a newer format and other files stay."""
    from licscan.cache.keys import FORMAT

    root = tmp_path / "c"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"not the cache's")
    old = root / "v1" / "ab"
    old.mkdir(parents=True)
    (old / "x.entry").write_bytes(b"\x80\x04pickled")
    (old / "link").symlink_to(outside)
    (root / "v0").symlink_to(outside, target_is_directory=True)
    (root / f"v{FORMAT + 1}").mkdir()
    (root / "notes.txt").write_text("mine")
    store = Cache.open(str(root), "s")
    assert store.put(store.key("file", "a"), "file", "a")
    store.trim()
    assert sorted(p.name for p in root.iterdir()) == sorted(["v0", f"v{FORMAT}", f"v{FORMAT + 1}", "notes.txt"])
    assert (outside / "keep").read_bytes() == b"not the cache's"
    assert store.get(store.key("file", "a"), "file") == "a"
