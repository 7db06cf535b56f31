"""The CI gate end to end through the CLI: a ZLUDA-shaped dist with CUDA 13.0 and pre-11.6 device code, fail-on,
waivers written by ``licscan waive``, expired waivers; and the scan's cache and worker processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, cache_entry_header

PTXAS = Path("/usr/local/cuda/bin/ptxas")


def _gcc(*args: str) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    subprocess.run(["gcc", *args], check=True, capture_output=True)


def zluda_dist(root: Path, app: str = "cuda13/libkern.so", *, tool: bool = True) -> Path:
    """app/: our CUDA library, a libcuda.so.1 that imports AMD's HIP runtime (the shape of ZLUDA's drop-in), the
    HIP stub it needs, and optionally NVIDIA's ptxas."""
    build = root / "build"
    build.mkdir(parents=True)
    dist = root / "dist" / "app"
    dist.mkdir(parents=True)
    (build / "hip.c").write_text("int hipInit(int x) { return x; }\n")
    (build / "cuda.c").write_text("extern int hipInit(int); int cuInit(unsigned f) { return hipInit((int)f); }\n")
    _gcc("-shared", "-fPIC", "-o", str(dist / "libamdhip64.so.6"), "-Wl,-soname,libamdhip64.so.6",
         str(build / "hip.c"))
    _gcc("-shared", "-fPIC", "-o", str(dist / "libcuda.so.1"), "-Wl,-soname,libcuda.so.1", str(build / "cuda.c"),
         "-L", str(dist), "-l:libamdhip64.so.6")
    shutil.copy(FIXTURES / app, dist / Path(app).name)
    if tool:
        if not PTXAS.exists():
            pytest.skip("the CUDA toolkit's ptxas is not installed here")
        shutil.copy(PTXAS, dist / "ptxas")
    return root / "dist"


def audit(cwd: Path, *args: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--format", "json", "--no-cache", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def rules_of(report: dict, *, waived: bool | None = False) -> list[tuple[str, str, str, str]]:
    return sorted((f["rule"], f["severity"], f["verdict"], f["path"]) for f in report["findings"]
                  if waived is None or f["waived"] == waived)


def test_zluda_shaped_dist_with_cuda13_device_code(tmp_path):
    """Finding 2: 1.2(8) forbids an act (reverse engineering output for the purpose of translating it), not
    distribution: a review; CUDA 13.0's text (January 7, 2025) was not examined, so the clause is quoted from the
    January 12, 2024 text and the evidence says so. Reviews are warnings: they pass --fail-on error."""
    zluda_dist(tmp_path)
    code, report = audit(tmp_path)
    assert code == 0
    assert rules_of(report) == [
        ("CUDA-EULA-DEV-TOOL", "warning", "review", "dist/app/ptxas"),
        ("CUDA-EULA-NVIDIA-GPU-ONLY", "warning", "review", "dist/app/libkern.so"),
        ("CUDA-EULA-TRANSLATION", "warning", "review", "dist/app/libkern.so"),
    ]
    translation = next(f for f in report["findings"] if f["rule"] == "CUDA-EULA-TRANSLATION")
    assert translation["clause"]["section"] == "1.2(8)" and translation["clause"]["date"] == "2024-01-12"
    assert any("(Last updated: January 7, 2025) was not examined" in e for e in translation["evidence"])
    # the clause names the text its words stand in for (docs/licenses.md, "not examined")
    assert translation["clause"]["read_for"] == \
        "NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 7, 2025)"
    assert "PTX" in translation["message"] and translation["clause"]["text"]
    assert audit(tmp_path, "--fail-on", "warning")[0] == 1
    kinds = {(c["name"], c["kind"]) for c in report["components"]}
    # a libcuda stand-in on HIP without ZLUDA's own strings: a driver drop-in of no catalogued project
    assert ("ptx-jit-on-nonnvidia", "output-consumer") in kinds and ("ptxas", "developer-tool") in kinds
    assert not [c for c in report["components"] if c["name"] == "cuda-driver"]  # ZLUDA's libcuda is not NVIDIA's


def test_pre_11_6_device_code_is_not_a_translation_violation(tmp_path):
    zluda_dist(tmp_path, "cuda112/libk112.so", tool=False)
    code, report = audit(tmp_path)
    found = rules_of(report)
    assert not [f for f in found if f[0] == "CUDA-EULA-TRANSLATION"]
    assert ("CUDA-EULA-TRANSLATION-PRE-CLAUSE", "note", "review", "dist/app/libk112.so") in found
    assert ("CUDA-EULA-NVIDIA-GPU-ONLY", "warning", "review", "dist/app/libk112.so") in found
    # CUDA 11.2's own text (November 2, 2020) was examined: its words are quoted, standing in for no other text
    gpu_only = next(f for f in report["findings"] if f["rule"] == "CUDA-EULA-NVIDIA-GPU-ONLY")
    assert (gpu_only["clause"]["section"], gpu_only["clause"]["date"]) == ("2.1", "2020-11-02")
    assert "read_for" not in gpu_only["clause"]
    assert code == 0  # warnings and notes pass the default gate ...
    code, _ = audit(tmp_path, "--fail-on", "warning")
    assert code == 1  # ... and fail a stricter one


def test_translation_clause_threshold_is_configurable(tmp_path):
    zluda_dist(tmp_path, "cuda112/libk112.so", tool=False)
    (tmp_path / ".licscan.yaml").write_text('eula:\n  translation-clause-since: "11.0"\n')
    code, report = audit(tmp_path, "--fail-on", "warning")
    assert ("CUDA-EULA-TRANSLATION", "warning", "review", "dist/app/libk112.so") in rules_of(report)
    assert code == 1


def test_waivers_written_by_licscan_waive(tmp_path):
    zluda_dist(tmp_path)
    config = tmp_path / ".licscan.yaml"
    config.write_text("# release gate for the demo app\nfail-on: warning\n")
    _, report = audit(tmp_path)
    for finding in report["findings"]:
        if finding["rule"] in ("CUDA-EULA-DEV-TOOL", "CUDA-EULA-TRANSLATION"):
            proc = subprocess.run([sys.executable, "-m", "licscan", "waive", finding["fingerprint"], "--reason",
                                   "approved by legal, ticket LEGAL-1", "--expires", "2099-12-31", "--config",
                                   str(config)], capture_output=True, text=True, cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
    assert config.read_text().startswith("# release gate for the demo app\n")  # comments survive
    code, report = audit(tmp_path)
    assert code == 1  # the 2.1 review is not waived and fails the fail-on: warning gate
    assert [r for r, *_ in rules_of(report, waived=True)] == ["CUDA-EULA-DEV-TOOL", "CUDA-EULA-TRANSLATION"]
    assert report["summary"]["findings"] == {"error": 0, "warning": 1, "note": 0}
    assert audit(tmp_path, "--fail-on", "error")[0] == 0


def test_expired_waiver_stops_waiving_and_is_reported(tmp_path):
    zluda_dist(tmp_path)
    (tmp_path / ".licscan.yaml").write_text(
        "waivers:\n  - rule: CUDA-EULA-DEV-TOOL\n    path: \"dist/app/ptxas\"\n    reason: old approval\n"
        "    expires: 2020-01-01\n")
    code, report = audit(tmp_path, "--fail-on", "warning")
    assert code == 1
    found = rules_of(report)
    assert ("CUDA-EULA-DEV-TOOL", "warning", "review", "dist/app/ptxas") in found
    assert any(r == "LICSCAN-WAIVER-EXPIRED" for r, *_ in found)


def test_invalid_rule_pack_is_exit_2(tmp_path):
    zluda_dist(tmp_path, tool=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: X\n    when: {frobnicate: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--rules", str(bad), "--no-cache"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "bad.yaml:" in proc.stderr


def test_cache_and_workers_give_the_same_report(tmp_path):
    zluda_dist(tmp_path)
    shutil.copy(FIXTURES / "cuda13/licscan_test-0.0.1-py3-none-linux_x86_64.whl", tmp_path / "dist")
    for name in ("exe_multi", "kern_multi.o", "libkern_static.a", "rdc_kern.o"):
        shutil.copy(FIXTURES / "cuda13" / name, tmp_path / "dist" / "app")
    cache = tmp_path / "cache"

    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--format", "json", "--fail-on",
                               "warning", *args],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        return proc.stdout

    baseline = run("--no-cache", "--jobs", "1")
    assert run("--no-cache", "--jobs", "2") == baseline
    assert run("--cache-dir", str(cache)) == baseline
    kinds = Counter(cache_entry_header(p)["kind"] for p in cache.rglob("*.entry"))
    # the 8 plain files of dist/app (3 batches: ptxas, 36 MiB, is alone in its batch), 1 wheel, the
    # findings of this tree, and the same-boot memos (identities -> digests) of the batches and the wheel; a
    # whole audit by the tree's content, and the report kept beside it (docs/cache.md); the same-boot map from the
    # tree's identity to its content key only once the tree is older than the racy window
    assert (kinds.pop("tree"), kinds.pop("report"), kinds.pop("treeid", 0) <= 1) == (1, 1, True)
    assert kinds == {"batch": 3, "archive": 1, "findings": 1, "memo": 4}
    assert run("--cache-dir", str(cache)) == baseline  # from the cache
    # a changed file is read again, not served stale
    (tmp_path / "dist" / "app" / "ptxas").unlink()
    changed = json.loads(run("--cache-dir", str(cache)))
    assert not any(f["path"] == "dist/app/ptxas" for f in changed["findings"])
