#!/usr/bin/env python3
"""``licscan audit`` on a whole tree: cold (no cache), re-scan of the unchanged tree from the content cache, and the
I/O floor (reading every byte of the tree once), in one run, with peak RSS.

    python benchmarks/bench_audit.py                  # a dist of the torch 2.14.1 CUDA wheel + nvidia-cuda-runtime
    python benchmarks/bench_audit.py PATH...          # your own tree(s)
    python benchmarks/bench_audit.py -n 3 PATH        # best of 3 for the cached run

The default dist is assembled (copied, once) under ${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}/bench-dist from
wheels fetched with ``pip download`` (torch 2.14.1 is 555 MB). Page cache is warm for every run (one untimed
read of the tree first); the numbers are wall time of a fresh ``python -m licscan audit`` process each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WHEELS = (("torch", "2.14.1"), ("nvidia-cuda-runtime", "13.0.96"), ("nvidia-cuda-runtime-cu12", "12.4.127"))


def default_dist() -> Path:
    from tests.oracle import cache_dir

    cache = cache_dir()
    dist = cache / "bench-dist"
    dist.mkdir(exist_ok=True)
    for name, version in WHEELS:
        pattern = f"{name.replace('-', '_')}-{version}-*.whl"
        if list(dist.glob(pattern)):
            continue
        found = sorted(cache.glob(pattern))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                            "-d", str(cache), f"{name}=={version}"], check=True)
            found = sorted(cache.glob(pattern))
        shutil.copy(found[0], dist)
    return dist


def io_floor(paths: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    buf = bytearray(1 << 20)
    for top in paths:
        files = [top] if os.path.isfile(top) else [os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
        for name in files:
            if os.path.islink(name) or not os.path.isfile(name):
                continue
            with open(name, "rb", buffering=0) as handle:
                while n := handle.readinto(buf):
                    total += n
    return time.perf_counter() - start, total


def run(args: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS KiB, exit code) of one licscan process, via GNU time when present."""
    cmd = [sys.executable, "-m", "licscan", "audit", *args, "--format", "json", "-o", os.devnull]
    timer = shutil.which("time") or "/usr/bin/time"
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        start = time.perf_counter()
        if os.path.exists(timer):
            proc = subprocess.run([timer, "-f", "%M", "-o", out.name, *cmd], cwd=REPO, capture_output=True)
            wall = time.perf_counter() - start
            rss = int(out.read().strip().splitlines()[-1] or 0)
        else:
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True)
            wall, rss = time.perf_counter() - start, 0
    return wall, rss, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("-n", type=int, default=3, help="cached runs; the best is reported")
    args = parser.parse_args()
    paths = args.paths or [str(default_dist())]
    floor, size = io_floor(paths)  # also warms the page cache
    floor, size = io_floor(paths)
    with tempfile.TemporaryDirectory(prefix="licscan-bench-cache-") as cache:
        cold, cold_rss, code = run([*paths, "--cache-dir", cache])
        warm = [run([*paths, "--cache-dir", cache]) for _ in range(args.n)]
    nocache, nocache_rss, _ = run([*paths, "--no-cache"])
    best = min(warm)
    print(f"tree: {', '.join(paths)}  ({size / 2**20:.1f} MiB, exit code {code})")
    print(f"{'run':<28}{'wall':>10}{'peak RSS':>12}{'vs cold':>10}{'vs I/O floor':>14}")
    for name, wall, rss in (("I/O floor (read all bytes)", floor, 0), ("audit --no-cache", nocache, nocache_rss),
                            ("audit, cache empty", cold, cold_rss), ("audit, unchanged (cached)", best[0], best[1])):
        print(f"{name:<28}{wall:>9.2f}s{(f'{rss / 1024:.0f} MB' if rss else '-'):>12}"
              f"{cold / wall if wall else 0:>9.1f}x{wall / floor if floor else 0:>13.1f}x")
    print(f"re-scan speed-up: {cold / best[0]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
