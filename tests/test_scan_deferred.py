"""A library named with its RECORD's digest and hashed by a worker while the audit judges and renders
(licscan/scan/deferred.py) gives the reports of an audit that hashed it first: when the digest matches, and when
it does not (then the file is examined again and everything after the scan runs again)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from licscan.audit import Audit, AuditOptions
from licscan.report import RenderOptions
from licscan.scan import ScanConfig
from licscan.scan import deferred as deferred_module
from licscan.scan import plain as plain_module

LIBRARY = "nvidia/cublas/lib/libcublasLt.so.12"


def _tree(root: Path, record_matches: bool, folders: int) -> Path:
    """An installed nvidia-cublas-cu12 whose RECORD lists cuBLASLt's digest (right or wrong), and ``folders``
    folders of Python sources beside it, each with a file named like a licence text (it is examined by path, not
    given its record by the walk as the sources are: enough batches for a worker process to start)."""
    site = root / "site-packages"
    library = site / LIBRARY
    library.parent.mkdir(parents=True)
    body = b"\x7fELF not really, " * 4096
    library.write_bytes(body)
    rows = []
    for n in range(folders):
        for m in range(3):
            path = site / "nvidia" / f"pkg{n}" / f"mod{m}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"VALUE = {n * 10 + m}\n")
            rows.append(f"nvidia/pkg{n}/mod{m}.py,,")
        (path.parent / "LICENSE").write_text(f"Package {n}: no licence text licscan knows\n")
        rows.append(f"nvidia/pkg{n}/LICENSE,,")
    digest = hashlib.sha256(body if record_matches else body + b"!").digest()
    encoded = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    info = site / "nvidia_cublas_cu12-12.8.4.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nvidia-cublas-cu12\nVersion: 12.8.4.1\n"
                                   "License: NVIDIA Proprietary Software\n")
    (info / "RECORD").write_text("\n".join([f"{LIBRARY},sha256={encoded},{len(body)}", *rows,
                                            "nvidia_cublas_cu12-12.8.4.1.dist-info/RECORD,,"]) + "\n")
    return site


def _reports(site: Path, jobs: int) -> tuple[str, int]:
    audit = Audit([str(site)], AuditOptions(scan=ScanConfig(jobs=jobs, cache_dir=None)))
    reports = audit.reports([("json", RenderOptions())])
    return reports.texts[0], int(reports.exit_code)


@pytest.fixture
def spied(monkeypatch):
    """Let a small library be deferred, and record what each Deferred checked and settled."""
    monkeypatch.setattr(deferred_module, "min_bytes", lambda: 1)
    seen: list[tuple[object, bool]] = []  # (files checked, whether settle examined any again), start's answer
    original = deferred_module.Deferred.settle
    original_start = deferred_module.Deferred.start

    def start(self, *args):
        given = original_start(self, *args)
        seen.append(("a worker hashes", given))
        return given

    def settle(self, records):
        checked = len(self._pending)
        fixed = original(self, records)
        seen.append((checked, fixed is not None))
        return fixed

    monkeypatch.setattr(deferred_module.Deferred, "settle", settle)
    monkeypatch.setattr(deferred_module.Deferred, "start", start)
    return seen


@pytest.mark.parametrize("record_matches", [True, False], ids=["digest-matches", "digest-differs"])
@pytest.mark.parametrize("folders", [1, 12], ids=["no-worker-started", "worker-hashes"])
def test_a_deferred_digest_gives_the_reports_of_hashing_first(tmp_path, monkeypatch, spied, record_matches,
                                                              folders):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.setattr(plain_module, "_BATCH_FILES", 1)  # a batch a licence file: enough for a worker to start
    site = _tree(tmp_path, record_matches, folders)
    text, code = _reports(site, jobs=2)
    # the library was named with its RECORD's digest, then hashed (by the worker when one was started) and checked
    assert spied == [("a worker hashes", folders > 1), (1, not record_matches)]
    assert (text, code) == _reports(site, jobs=1)  # one process: hashed while examined
    (part,) = [c for c in json.loads(text)["components"] if c["name"] == "cublasLt"]
    differs = [e for e in part["evidence"] if "differs from nvidia-cublas-cu12 RECORD" in e]
    assert bool(differs) is not record_matches


def test_nothing_is_deferred_with_the_cache_or_one_process(tmp_path, monkeypatch, spied):
    site = _tree(tmp_path, True, 12)
    _reports(site, jobs=1)
    Audit([str(site)], AuditOptions(scan=ScanConfig(jobs=2, cache_dir=str(tmp_path / "cache")))).reports(
        [("json", RenderOptions())])
    assert spied == [(0, False)]  # one process: nothing deferred (nothing to check); with the cache: no Deferred


def test_only_catalogued_libraries_beyond_the_literal_passes_are_deferred_within_the_budget():
    deferred = deferred_module.Deferred(budget=0.5)
    big = deferred_module.min_bytes()
    assert not deferred.wants("/x/libfoo.so", "x/libfoo.so", big * 2)  # not a catalogued name
    assert not deferred.wants("/x/libcublas.so.12", "x/libcublas.so.12", big - 1)  # read by a literal pass anyway
    assert not deferred.wants("/x/libcublasLt.so.12", "x/libcublasLt.so.12", int(0.6 * deferred_module.HASH_RATE))
    assert deferred.wants("/x/libcublasLt.so.12", "x/libcublasLt.so.12", int(0.45 * deferred_module.HASH_RATE))
    assert not deferred.wants("/y/libcublasLt.so.12", "y/libcublasLt.so.12", int(0.45 * deferred_module.HASH_RATE))
    assert deferred.sources == {"x/libcublasLt.so.12": "/x/libcublasLt.so.12"}
