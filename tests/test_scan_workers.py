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

from licscan.scan import ScanConfig, scan
from licscan.scan import plain as scan_module  # the plain files: batches and worker processes
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
    """Issue 13 item 11: SIGKILL to ``licscan audit --jobs 2`` during the worker phase; its workers end (they were
    armed with PR_SET_PDEATHSIG), so a caller reading its output sees end of file instead of hanging."""
    many_files(tmp_path, 600)
    proc = subprocess.Popen([sys.executable, "-m", "licscan", "audit", "dist", "--jobs", "2", "--no-cache"],
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
    """Submission is windowed (jobs x 4 tasks in flight), each task is a batch of (path, vpath) pairs (at most 5
    here), and the distributions reach the workers once through the pool's initializer."""
    monkeypatch.setattr(scan_module, "_BATCH_FILES", 5)
    dist = many_files(tmp_path, 60)
    submitted: list[tuple] = []
    in_flight: list[int] = []
    real = scan_module.ProcessPoolExecutor

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            assert kwargs["initializer"] is scan_module._worker_start
            super().__init__(*args, **kwargs)
            self.pending: set = set()

        def submit(self, fn, *args, **kwargs):
            submitted.append(args)
            self.pending = {f for f in self.pending if not f.done()}
            future = super().submit(fn, *args, **kwargs)
            self.pending.add(future)
            in_flight.append(len(self.pending))
            return future

    monkeypatch.setattr(scan_module, "ProcessPoolExecutor", Recording)
    _, records = scan([str(dist)], ScanConfig(jobs=2))
    assert len(records) == 60
    assert len(submitted) == 12
    assert all(len(args) == 1 and len(args[0]) == 5 for args in submitted)
    assert all(isinstance(s, str) and isinstance(v, str) for (batch,) in submitted for s, v in batch)
    assert max(in_flight) <= 8
