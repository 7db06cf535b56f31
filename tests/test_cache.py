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
from tests.helpers import FIXTURES

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


def run(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``licscan audit dist`` as a gate that fails on reviews too (NVIDIA's ptxas shipped: a warning)."""
    return subprocess.run([sys.executable, "-m", "licscan", "audit", "dist", "--format", "json", "--fail-on",
                           "warning", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300, env=env)


def kinds(cache: Path) -> Counter:
    return Counter(json.loads(p.read_bytes().split(b"\n")[1])["kind"] for p in cache.rglob("*.entry"))


def entries(cache: Path, kind: str) -> list[Path]:
    return sorted(p for p in cache.rglob("*.entry") if json.loads(p.read_bytes().split(b"\n")[1])["kind"] == kind)


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
    assert kinds(cache) == {"batch": 3, "archive": 1, "findings": 1, "memo": 4}
    return tmp_path / "a", cache, baseline.stdout


# ------------------------------------------------------------------------------------------ content keys


def test_copied_tree_hits_the_cache_of_the_first(scanned, tmp_path):
    """Issue 14 goal 4: a cache restored into a fresh checkout of the same bytes (new inodes, mtimes and ctimes)
    hits for every batch of files and every archive, and the report is identical."""
    first, cache, baseline = scanned
    copy = tmp_path / "b"
    shutil.copytree(first / "dist", copy / "dist")
    for path in (copy / "dist").rglob("*"):
        os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    assert (copy / "dist/app/exe_multi").stat().st_ino != (first / "dist/app/exe_multi").stat().st_ino
    stored = {p: p.read_bytes() for kind in ("batch", "archive", "findings") for p in entries(cache, kind)}
    for path in stored:
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    again = run(copy, "--cache-dir", str(cache))
    assert (again.returncode, again.stdout, again.stderr) == (1, baseline, "")
    # every batch, archive and findings entry was read (a hit refreshes its mtime) and none was added
    assert {p: p.read_bytes() for kind in ("batch", "archive", "findings") for p in entries(cache, kind)} == stored
    assert all(p.stat().st_mtime_ns > 1_000_000_000_000_000_000 for p in stored)
    # the copy's identities were memoised: 4 more memos (same digests, other inodes)
    assert kinds(cache) == {"batch": 3, "archive": 1, "findings": 1, "memo": 8}


def test_changed_bytes_are_examined_again(scanned):
    first, cache, baseline = scanned
    (first / "dist/tools/ptxas").write_bytes((FIXTURES / "cuda13/exe_multi").read_bytes())
    report = json.loads(run(first, "--cache-dir", str(cache)).stdout)
    fresh = json.loads(run(first, "--no-cache").stdout)
    assert report == fresh
    assert report != json.loads(baseline)


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


def test_cache_max_size_option_bounds_the_folder(scanned, tmp_path):
    first, cache, baseline = scanned
    again = run(first, "--cache-dir", str(cache), "--cache-max-size", "1k")
    assert (again.returncode, again.stdout) == (1, baseline)
    total = sum(p.stat().st_size for p in (cache / "v2").rglob("*") if p.is_file() and p.name != "secret")
    assert total <= 1024
    assert sum(kinds(cache).values()) < 9  # of the 9 entries the first audit wrote
    assert (cache / "v2" / "secret").exists()  # the key is never evicted
