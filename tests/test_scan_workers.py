"""The scan's worker pool (issue 14, issue 13 item 11): bounded submission with the shared context given once, the
same records with one process and with workers, and no worker outliving a killed parent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from licscan.binary.images import Limits
from licscan.binary.paged import SMALL_FILE
from licscan.scan import ScanConfig, scan
from licscan.scan import feed as feed_module  # the plain files: worker processes fed while the walk goes on
from licscan.scan import plain as scan_module  # the plain files: batches, examined in any process
from tests.helpers import FIXTURES


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            out.update(int(x) for x in handle.read().split())
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def many_files(root: Path, copies: int) -> Path:
    """``copies`` names for one executable with device code (hard links: each is walked and examined as a file)."""
    dist = root / "dist"
    dist.mkdir()
    first = dist / "exe_0000"
    shutil.copy(FIXTURES / "cuda13/exe_multi", first)
    for i in range(1, copies):
        os.link(first, dist / f"exe_{i:04d}")
    return dist


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_killing_the_parent_ends_its_workers_and_frees_the_output_pipe(tmp_path):
    """Issue 13 item 11: SIGKILL to ``licscan audit --jobs 3`` (this process and 2 workers) during the worker phase;
    its workers end (they were armed with PR_SET_PDEATHSIG), so a caller reading its output sees end of file
    instead of hanging."""
    many_files(tmp_path, 600)
    proc = subprocess.Popen([sys.executable, "-m", "licscan", "audit", "dist", "--jobs", "3", "--no-cache"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: set[int] = set()
    while proc.poll() is None and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.01)
    assert proc.poll() is None, "the scan ended before its workers were seen: use more files"
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)  # returns only once no worker holds the pipes
    assert proc.returncode == -signal.SIGKILL
    assert out == b""
    deadline = time.monotonic() + 60
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers)


def test_workers_and_one_process_give_the_same_records(tmp_path):
    dist = many_files(tmp_path, 40)
    shutil.copy(FIXTURES / "cuda13/libkern.so", dist / "libcudart.so.13")
    one = scan([str(dist)], ScanConfig(jobs=1))
    two = scan([str(dist)], ScanConfig(jobs=2))
    assert one == two
    assert len(one[1]) == 41


def test_tasks_in_flight_are_bounded(tmp_path, monkeypatch):
    """Submission is windowed (during the walk 4 batches in flight per worker: --jobs 3 is this process and 2
    workers; after it, at most 32 per worker, as many as the estimated work ahead asks for), starts while the walk
    goes on, each task is a batch of (path, vpath) pairs (at most 5 here), and the distributions reach the workers
    once, through the pool's initializer; this process examines the batches the workers did not get."""
    monkeypatch.setattr(scan_module, "_BATCH_FILES", 5)
    dist = many_files(tmp_path, 60)
    events: list[str] = []
    submitted: list[tuple] = []
    here: list[tuple[tuple[str, str], ...]] = []
    in_flight: list[tuple[int, int]] = []  # (walk done, batches in flight) at each submission
    real = feed_module.ProcessPoolExecutor

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            assert kwargs["initializer"] is scan_module.worker_start
            assert isinstance(kwargs["initargs"][0], scan_module.Shared)
            super().__init__(*args, **kwargs)
            self.pending: set = set()

        def submit(self, fn, *args, **kwargs):
            events.append("submit")
            submitted.append(args)
            self.pending = {f for f in self.pending if not f.done()}
            future = super().submit(fn, *args, **kwargs)
            self.pending.add(future)
            in_flight.append((events.count("walk done"), len(self.pending)))
            return future

    def examine_here(shared, batch):
        here.append(batch.files)
        return scan_module.examine_here(shared, batch)

    finish = feed_module.PlainFiles.finish

    def finishing(self, distributions, meanwhile=None):
        events.append("walk done")
        return finish(self, distributions, meanwhile)

    monkeypatch.setattr(feed_module, "ProcessPoolExecutor", Recording)
    monkeypatch.setattr(feed_module, "examine_here", examine_here)
    monkeypatch.setattr(feed_module.PlainFiles, "finish", finishing)
    _, records = scan([str(dist)], ScanConfig(jobs=3))
    assert len(records) == 60
    assert events.index("submit") < events.index("walk done")
    assert all(len(args) == 1 and len(args[0]) == 5 for args in submitted)
    assert all(isinstance(s, str) and isinstance(v, str) for (batch,) in submitted for s, v in batch)
    assert max(n for done, n in in_flight if not done) <= 2 * feed_module.WINDOW_PER_WORKER == 8
    assert max(n for _, n in in_flight) <= 2 * feed_module.MAX_WINDOW_PER_WORKER == 64
    assert all(len(files) == 5 for files in here)
    assert {v for (batch,) in submitted for _, v in batch} | {v for files in here for _, v in files} == \
        {r.vpath for r in records}


def test_a_distribution_found_after_the_workers_started(tmp_path, monkeypatch):
    """A venv-like tree: ``aaa/libcudart.so.13`` and 30 files in ``bbb/`` are walked (and sent to the workers)
    before ``lib/site-packages`` is opened, whose RECORD lists the library (``../../aaa/libcudart.so.13``). The
    workers had no distribution when they examined it: it is examined again with every distribution, and the
    records are those of one process (the version comes from the distribution's METADATA)."""
    monkeypatch.setattr(scan_module, "_BATCH_FILES", 5)
    monkeypatch.setattr(feed_module._Pool, "take_back", lambda self: None)  # every batch sent is examined there
    root = tmp_path / "venv"
    (root / "aaa").mkdir(parents=True)
    many_files(tmp_path, 30).rename(root / "bbb")
    shutil.copy(FIXTURES / "cuda13/libkern.so", root / "aaa" / "libcudart.so.13")
    info = root / "lib" / "site-packages" / "nvidia_cuda_runtime_cu13-13.0.96.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nvidia-cuda-runtime-cu13\nVersion: 13.0.96\n")
    (info / "RECORD").write_text("../../aaa/libcudart.so.13,,\nnvidia_cuda_runtime_cu13-13.0.96.dist-info/METADATA,,\n"
                                 "nvidia_cuda_runtime_cu13-13.0.96.dist-info/RECORD,,\n")
    checked: list[tuple[tuple[str, ...], bool]] = []
    may_differ = feed_module._owners_may_differ

    def recording(records, seen, final):
        answer = may_differ(records, seen, final)
        checked.append((tuple(r.vpath.split("/venv/", 1)[1] for r in records), answer))
        return answer

    monkeypatch.setattr(feed_module, "_owners_may_differ", recording)
    one = scan([str(root)], ScanConfig(jobs=1))
    assert checked == []
    three = scan([str(root)], ScanConfig(jobs=3))
    assert one == three
    cudart = [m for r in three[1] if r.vpath.endswith("aaa/libcudart.so.13") for m in r.matches]
    assert [(m.name, m.version) for m in cudart] == [("cudart", "13.0.96")]
    # (without the cache a batch may hold files of several folders: the library's holds bbb's first files too)
    assert [answer for files, answer in checked if "aaa/libcudart.so.13" in files] == [True]
    assert all(not answer for files, answer in checked if "aaa/libcudart.so.13" not in files)


def test_after_the_walk_the_costliest_batches_go_first(tmp_path, monkeypatch):
    """Batches wait in walk order; after the walk they are examined by estimated cost, costliest first: a static
    archive (every member read), then a library the catalog names (hashed whole), then an unnamed library four times
    its size (headers only), then a small source file -- the cheapest last, so that processes finish together."""
    sizes = {"a/setup.py": 2_000, "b/libcublasLt.so.12": 100 << 20, "c/libtorch_cpu.so": 400 << 20,
             "d/libfoo_static.a": 30 << 20}
    order: list[str] = []

    def examine_here(shared, batch):
        order.extend(v for _, v in batch.files)
        return []

    monkeypatch.setattr(feed_module, "examine_here", examine_here)
    plain = feed_module.PlainFiles(Limits(), False, 1, None)
    for vpath, size in sizes.items():
        plain.add(str(tmp_path / vpath), vpath, size)
    assert plain.finish([]) == []
    assert order == ["d/libfoo_static.a", "b/libcublasLt.so.12", "c/libtorch_cpu.so", "a/setup.py"]
    assert scan_module.file_cost("b/libcublasLt.so.12", 100 << 20) > scan_module.file_cost("c/libtorch_cpu.so",
                                                                                          400 << 20)


def test_a_plain_file_is_opened_once(tmp_path, monkeypatch):
    """Inspecting a file and naming it read the same bytes: one open per file for both (two before: 0.1 s of CPU
    over the 12,846 files of an installed environment), for a small file (read) and a large one (mapped), besides
    the walk's own (it reads the first bytes: is it an archive?)."""
    dist = tmp_path / "dist"
    dist.mkdir()
    shutil.copy(FIXTURES / "cuda13/exe_multi", dist / "exe")
    (dist / "big.bin").write_bytes(b"\0" * (SMALL_FILE + 1))
    opened: list[str] = []
    real = os.open

    def counting(path, *args, **kwargs):
        if str(path).startswith(str(dist)):
            opened.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    _, records = scan([str(dist)], ScanConfig(jobs=1))
    assert sorted(opened) == ["big.bin", "big.bin", "exe", "exe"]
    assert [r.facts.format.value for r in sorted(records, key=lambda r: r.vpath)] == ["unknown", "elf"]


def test_the_heap_is_frozen_during_a_scan_and_released_after(tmp_path, monkeypatch):
    """The collector does not walk the objects alive when a scan starts (nor those a ``settle`` adds), up to the
    end of the outermost block; then they are collectable again: an audit leaves the collector as it found it."""
    import gc

    from licscan import workers
    from licscan.audit import run_audit

    assert gc.get_freeze_count() == 0
    seen: list[int] = []
    finish = feed_module.PlainFiles.finish

    def finishing(self, distributions, meanwhile=None):
        seen.append(gc.get_freeze_count())
        return finish(self, distributions, meanwhile)

    monkeypatch.setattr(feed_module.PlainFiles, "finish", finishing)
    with workers.steady_heap() as settle:
        outer = gc.get_freeze_count()
        kept = [[n] for n in range(1000)]  # tracked containers made after the block started
        settle()
        assert gc.get_freeze_count() >= outer + len(kept)
        with workers.steady_heap():
            pass
        assert gc.get_freeze_count() >= outer + len(kept)  # an inner block leaves the outer one's objects frozen
    assert gc.get_freeze_count() == 0
    run_audit([str(many_files(tmp_path, 3))], None)
    assert seen and seen[0] > 0 and gc.get_freeze_count() == 0
    gc.freeze()  # someone else's frozen objects are theirs: a scan neither adds to them nor releases them
    try:
        frozen = gc.get_freeze_count()
        with workers.steady_heap() as settle:
            settle()
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_steady_heap_collects_the_young_less_often_and_restores_the_collector():
    """Issue 14: inside the outermost block the youngest generation is collected every ``YOUNG`` allocations
    (0.11 s of the parent's CPU in the collector became 0.06 s on the environment tree); the thresholds are the
    caller's again after it."""
    import gc

    from licscan import workers

    before = gc.get_threshold()
    assert before[0] < workers.YOUNG
    with workers.steady_heap():
        assert gc.get_threshold() == (workers.YOUNG, *before[1:])
        with workers.steady_heap():
            assert gc.get_threshold() == (workers.YOUNG, *before[1:])
        assert gc.get_threshold() == (workers.YOUNG, *before[1:])
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_the_command_line_freezes_its_heap_at_exit_only_as_the_process_command(monkeypatch, capsys):
    """``main()`` with the process's own arguments (the ``licscan`` command) registers one ``gc.freeze`` at exit
    (the interpreter's last collection walked the scan's objects: 0.06-0.08 s after the reports were written);
    ``main([...])`` called by a program (a test session) does not: its objects stay collectable."""
    import atexit
    import gc

    from licscan import cli, workers

    registered: list[object] = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(workers, "_AT_EXIT", False)
    assert cli.main(["--version"]) == 0
    assert registered == []
    monkeypatch.setattr(sys, "argv", ["licscan", "--version"])
    assert cli.main() == 0
    assert cli.main() == 0
    assert registered == [gc.freeze]
    capsys.readouterr()


def test_meanwhile_runs_once_after_the_walk_while_workers_have_work(tmp_path, monkeypatch):
    """Issue 14: an audit parses its rule packs while the scan's workers examine files (they ran alone before the
    scan). The scan calls ``meanwhile`` once, after the walk (every file handed out), with batches already in the
    workers' hands, and the records are those of a scan without it."""
    many_files(tmp_path, 400)
    state: list[int] = []
    plain_files: list[feed_module.PlainFiles] = []
    init = feed_module.PlainFiles.__init__

    def keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        plain_files.append(self)

    def meanwhile():
        (plain,) = plain_files
        assert plain.pool is not None
        state.append(len(plain.pool.in_flight))

    monkeypatch.setattr(feed_module.PlainFiles, "__init__", keep)
    _, records = scan([str(tmp_path / "dist")], ScanConfig(jobs=2), meanwhile=meanwhile)
    assert len(state) == 1 and state[0] >= 1
    assert len(records) == 400
    _, alone = scan([str(tmp_path / "dist")], ScanConfig(jobs=1))
    assert [(r.vpath, r.facts, r.matches) for r in records] == [(r.vpath, r.facts, r.matches) for r in alone]


def test_an_audit_without_packs_of_its_own_parses_the_built_in_ones_during_the_scan(tmp_path, monkeypatch):
    """The built-in rule packs are parsed inside the scan (``meanwhile``), a pack named by the user before it (a bad
    one is an error before any file is read)."""
    from licscan import audit as audit_module
    from licscan.rules import loader

    many_files(tmp_path, 3)
    calls: list[str] = []
    scan_inputs = audit_module.scan
    load = loader.load_packs

    def scanning(*args, **kwargs):
        calls.append("scan")
        return scan_inputs(*args, **kwargs)

    def loading(*args, **kwargs):
        calls.append("packs")
        return load(*args, **kwargs)

    monkeypatch.setattr(audit_module, "scan", scanning)
    monkeypatch.setattr(loader, "load_packs", loading)
    result = audit_module.run_audit([str(tmp_path / "dist")], audit_module.AuditOptions(
        scan=ScanConfig(jobs=2, cache_dir=None)))
    assert calls == ["scan", "packs"] and result.rules
    calls.clear()
    (tmp_path / "bad.yaml").write_text("rules: [\n")
    with pytest.raises(loader.RulePackError):
        audit_module.run_audit([str(tmp_path / "dist")], audit_module.AuditOptions(
            scan=ScanConfig(jobs=2, cache_dir=None), extra_packs=(str(tmp_path / "bad.yaml"),)))
    assert calls == ["packs"]
