#!/usr/bin/env python3
"""The census wheels (tests/census_wheels.py): ``licscan audit`` of each wheel against ``unzip -tq`` (inflating
and checking every member: the floor of reading a wheel), and ``licscan inspect`` against ``cuobjdump -all -lelf
-lptx`` on each wheel's largest binary, in one run, with the audit's peak RSS (GNU time, Debian package ``time``).

    python benchmarks/bench_census.py            # every census wheel (downloaded into the test cache when missing)
    python benchmarks/bench_census.py -n 3       # best of 3 rounds per measurement

Every measurement is a fresh process (``audit --no-cache``: nothing is served from the content cache); rounds
alternate between the two sides of each ratio so that both meet the same machine phases. The largest binary is
extracted once into the cache; cuobjdump reads PE images only through their fatbin sections, which it is not given
here: for a Windows binary the cuobjdump column is the cut-and-list of tests/census_wheels.py (a Python loop around
one cuobjdump call per fatbin), marked "cut".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import census_wheels as cw
import oracle


def timed(argv: list[str], env=None) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in MB, exit code) of one child process. The peak comes from GNU time's %M: a
    child's own rusage would include the pages it shared with this process before exec."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, env=env)
    seconds = time.perf_counter() - start
    lines = proc.stderr.strip().splitlines()
    peak = int(lines[-1]) // 1024 if lines and lines[-1].isdigit() else 0
    return seconds, peak, proc.returncode


def best(runs: list[tuple[float, int, int]]) -> tuple[float, int, int]:
    return min(runs, key=lambda r: r[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rounds", type=int, default=1)
    args = parser.parse_args()
    cuobjdump = oracle.find_cuobjdump()
    licscan = [sys.executable, "-m", "licscan"]
    print(f"{'wheel':<52} {'MB':>6} {'audit s':>8} {'unzip s':>8} {'ratio':>6} {'RSS MB':>7} | "
          f"{'largest binary':<42} {'MB':>6} {'inspect s':>9} {'cuobjdump s':>11} {'ratio':>6}")
    ratios_audit, ratios_inspect = [], []
    for pin in cw.CENSUS:
        wheel = cw.fetch(pin)
        audit_runs, unzip_runs, inspect_runs, oracle_runs = [], [], [], []
        member, size = cw.largest_binary(wheel)
        binary = cw.extract(wheel, member) if member else None
        windows = binary is not None and binary.read_bytes()[:2] == b"MZ"
        for _ in range(args.rounds):
            audit_runs.append(timed(licscan + ["audit", "--no-cache", str(wheel), "--format", "json", "-o",
                                               os.devnull]))
            unzip_runs.append(timed(["unzip", "-tq", str(wheel)]))
            if binary is None:
                continue
            inspect_runs.append(timed(licscan + ["inspect", str(binary), "--format", "json", "-o", os.devnull]))
            if windows:
                start = time.perf_counter()
                cw.cuobjdump_listing(binary.name, binary.read_bytes())
                oracle_runs.append((time.perf_counter() - start, 0, 0))
            elif cuobjdump:
                oracle_runs.append(timed([cuobjdump, "-all", "-lelf", "-lptx", str(binary)]))
        audit, unzip = best(audit_runs), best(unzip_runs)
        ratio = audit[0] / unzip[0]
        ratios_audit.append(ratio)
        line = (f"{pin.label:<52} {wheel.stat().st_size / 1e6:>6.1f} {audit[0]:>8.2f} {unzip[0]:>8.2f} "
                f"{ratio:>6.2f} {audit[1]:>7} | ")
        if inspect_runs and oracle_runs and not (windows and not cw.cuobjdump_listing(binary.name,
                                                                                   binary.read_bytes()).images):
            inspect, other = best(inspect_runs), best(oracle_runs)
            r = inspect[0] / other[0]
            ratios_inspect.append(r)
            line += (f"{Path(member).name[:42]:<42} {size / 1e6:>6.1f} {inspect[0]:>9.2f} "
                     f"{other[0]:>10.2f}{'*' if windows else ' '} {r:>6.2f}")
        elif binary is not None:
            line += f"{Path(member).name[:42]:<42} {size / 1e6:>6.1f} {best(inspect_runs)[0]:>9.2f}  (no device code)"
        print(line, flush=True)
    def geomean(values):
        product = 1.0
        for v in values:
            product *= v
        return product ** (1 / len(values)) if values else float("nan")

    print(f"\naudit / unzip -tq: geometric mean {geomean(ratios_audit):.2f} (min {min(ratios_audit):.2f}, max "
          f"{max(ratios_audit):.2f}); inspect / cuobjdump: geometric mean {geomean(ratios_inspect):.2f} (min "
          f"{min(ratios_inspect):.2f}, max {max(ratios_inspect):.2f}); * = cuobjdump given the cut fatbin sections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
