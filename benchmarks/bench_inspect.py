#!/usr/bin/env python3
"""Benchmark ``licscan inspect FILE --format json`` against ``cuobjdump -all -lelf -lptx FILE`` and the I/O floor.

usage: python benchmarks/bench_inspect.py [-n N] [--hash] [--no-download] [FILES...]

Default files: ``libtorch_cuda.so`` from the torch 2.14.1 wheel (fetched into
``${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}`` like tests/test_realworld_torch.py does) plus a few fixtures.
See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))
import oracle

DEFAULT_FIXTURES = [
    "tests/fixtures/cuda13/exe_multi",
    "tests/fixtures/cuda13/libkern.so",
    "tests/fixtures/cuda13/librdc_static.a",
    "tests/fixtures/cuda13/exe_cmode_speed_all",
    "tests/fixtures/cuda112/k112_nosm35_compressall.fatbin",
]
MiB = 1 << 20


def run_measured(cmd: Sequence[str], env=None) -> tuple[float, int, int, bytes]:
    """Run cmd once; return (wall seconds, peak RSS in KiB of that child, exit code, stdout).

    Peak RSS comes from wait4() on the child itself (not RUSAGE_CHILDREN, whose ru_maxrss is a maximum over
    every child ever waited for and so cannot be differenced). stdout goes to a temp file so a large JSON
    report cannot block on a pipe.
    """
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=str(REPO_ROOT))
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return wall, ru.ru_maxrss, proc.returncode, out.read()


GNU_TIME = "/usr/bin/time"


def peak_rss(cmd: Sequence[str], env=None) -> tuple[int | None, int, bytes]:
    """Peak RSS (KiB) of cmd, exit code and stdout, measured by GNU time (``%M``) when available.

    A child forked from this Python process starts with the parent's RSS, and Linux folds that pre-exec value
    into the child's ``ru_maxrss``; so wait4() alone reports at least this process's size (~30 MB) even for
    a 2 MB program. GNU time forks the command from a tiny process instead. Without it, fall back to wait4().
    """
    if not os.access(GNU_TIME, os.X_OK):
        _, rss, rc, out = run_measured(cmd, env=env)
        return rss, rc, out
    with tempfile.NamedTemporaryFile("r") as rep:
        _, _, rc, out = run_measured([GNU_TIME, "-q", "-f", "%M", "-o", rep.name, *cmd], env=env)
        lines = [ln for ln in open(rep.name).read().splitlines() if ln.strip().isdigit()]
        return (int(lines[-1]) if lines else None), rc, out


def read_floor(path: Path, limit: int | None = None) -> float:
    """Seconds to read the file (or its first ``limit`` bytes) with a 1 MiB buffer."""
    buf = bytearray(MiB)
    view = memoryview(buf)
    left = limit if limit is not None else 1 << 62
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while left > 0:
            n = f.readinto(view[: min(MiB, left)])
            if not n:
                break
            left -= n
    return time.perf_counter() - t0


def best(runs: list[tuple[float, int, int, bytes]]) -> tuple[float, int, int]:
    return min(r[0] for r in runs), max(r[1] for r in runs), max(abs(r[2]) for r in runs)


def fmt_s(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x * 1000:.2f}ms" if x < 0.01 else f"{x * 1000:.0f}ms" if x < 10 else f"{x:.1f}s"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "n/a"
    ratio = a / b
    return f"{ratio:.3f}x" if ratio < 1 else f"{ratio:.2f}x"


def fmt_mb(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f}MB"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="files to inspect (default: libtorch_cuda.so + a few fixtures)")
    ap.add_argument("-n", "--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", 3)),
                    help="timed runs per command; the best (minimum) wall time is reported (default 3)")
    ap.add_argument("--hash", action="store_true", help="pass --hash to licscan (decompress + SHA-256 everything)")
    ap.add_argument("--no-download", action="store_true", help="do not fetch the torch wheel if it is not cached")
    ap.add_argument("--json", metavar="OUT", help="also write the raw figures as JSON to OUT")
    args = ap.parse_args(argv)

    files: list[Path] = [Path(f) for f in args.files]
    if not files:
        torch = oracle.torch_cuda_lib(download=not args.no_download)
        if torch is not None:
            files.append(torch)
        else:
            print("note: libtorch_cuda.so not cached and --no-download given; skipping it", file=sys.stderr)
        files += [REPO_ROOT / f for f in DEFAULT_FIXTURES if (REPO_ROOT / f).exists()]
    files = [f.resolve() for f in files]

    cuobjdump = oracle.find_cuobjdump()
    # An installed licscan runs from byte-compiled modules (pip compiles them at install); with
    # PYTHONDONTWRITEBYTECODE set, a source checkout would recompile every module on every run, which is not the
    # product's start-up. Compile them once into licscan's own __pycache__ folders (never into the measured files).
    compileall.compile_dir(str(REPO_ROOT / "licscan"), quiet=1)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    lic_base = [*oracle.licscan_cmd(), "inspect"]
    lic_extra = ["--format", "json"] + (["--hash"] if args.hash else [])

    print(f"licscan:   {' '.join(lic_base)} FILE {' '.join(lic_extra)}")
    print(f"cuobjdump: {cuobjdump or 'not found'}"
          + (f" (V{oracle.cuobjdump_version(cuobjdump)}) -all -lelf -lptx FILE" if cuobjdump else ""))
    rss_how = ("GNU time %M of the warm-up run" if os.access(GNU_TIME, os.X_OK)
               else "wait4() ru_maxrss of the warm-up run (includes this process's RSS at fork: a floor)")
    print(f"wall = best of {args.repeat} timed rounds (licscan then cuobjdump in each) after one untimed warm-up "
          f"run of each command (page cache warm, not dropped); peak RSS = {rss_how}")
    startup = min(run_measured([sys.executable, "-c", "import licscan.cli"], env=env)[0] for _ in range(args.repeat))
    startup_rss = peak_rss([sys.executable, "-c", "import licscan.cli"], env=env)[0]
    print(f"python + `import licscan.cli` alone: {fmt_s(startup)}, {fmt_mb(startup_rss)}")
    print()

    rows = []
    for path in files:
        size = path.stat().st_size
        # warm-up (untimed, but it gives the peak RSS): page cache for the file, .pyc files, the cuobjdump binary
        lic_rss, lrc, lout = peak_rss([*lic_base, str(path), *lic_extra], env=env)
        report = None
        try:
            report = json.loads(lout)
        except ValueError:
            pass
        cuo_rss = peak_rss([cuobjdump, "-all", "-lelf", "-lptx", str(path)])[0] if cuobjdump else None
        read_floor(path)

        # Rounds alternate the two commands, so that both meet the same phases of a shared machine (its speed
        # drifts by tens of percent over a minute; a block of short licscan runs could fall in one slow phase).
        lic_runs, cuo_runs = [], []
        for _ in range(args.repeat):
            lic_runs.append(run_measured([*lic_base, str(path), *lic_extra], env=env))
            if cuobjdump:
                cuo_runs.append(run_measured([cuobjdump, "-all", "-lelf", "-lptx", str(path)]))
        lic = best(lic_runs)
        cuo = best(cuo_runs) if cuo_runs else None
        round_ratios = sorted(a[0] / b[0] for a, b in zip(lic_runs, cuo_runs))
        io = min(read_floor(path) for _ in range(args.repeat))
        bytes_read = report.get("bytes_read") if isinstance(report, dict) else None
        io_read = (min(read_floor(path, int(bytes_read)) for _ in range(args.repeat))
                   if isinstance(bytes_read, int) else None)
        entries = len(report["device_code"]) if isinstance(report, dict) and "device_code" in report else None
        rows.append(dict(file=str(path), size=size, entries=entries, licscan_s=lic[0], licscan_rss_kib=lic_rss,
                         licscan_rc=lrc, cuobjdump_s=cuo[0] if cuo else None,
                         cuobjdump_rss_kib=cuo_rss, io_floor_s=io,
                         bytes_read=bytes_read, io_bytes_read_s=io_read,
                         round_ratios=round_ratios, licscan_runs_s=[r[0] for r in lic_runs],
                         cuobjdump_runs_s=[r[0] for r in cuo_runs]))

    hdr = ["file", "size", "entries", "licscan", "cuobjdump", "io-floor", "lic/cuobj", "lic/io",
           "lic RSS", "cuobj RSS", "bytes_read"]
    table = [hdr]
    for r in rows:
        br = "n/a" if r["bytes_read"] is None else (
            f"{r['bytes_read'] / MiB:.1f}MiB ({100 * r['bytes_read'] / max(r['size'], 1):.1f}%, "
            f"read {fmt_s(r['io_bytes_read_s'])})")
        table.append([
            Path(r["file"]).name + ("" if r["licscan_rc"] == 0 else f" [licscan exit {r['licscan_rc']}]"),
            f"{r['size'] / MiB:.1f}MiB", "n/a" if r["entries"] is None else str(r["entries"]),
            fmt_s(r["licscan_s"]), fmt_s(r["cuobjdump_s"]), fmt_s(r["io_floor_s"]),
            fmt_ratio(r["licscan_s"], r["cuobjdump_s"]), fmt_ratio(r["licscan_s"], r["io_floor_s"]),
            fmt_mb(r["licscan_rss_kib"]), fmt_mb(r["cuobjdump_rss_kib"]), br,
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(hdr))]
    for j, row in enumerate(table):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if r["round_ratios"]:
            ratios = r["round_ratios"]
            print(f"{Path(r['file']).name}: licscan/cuobjdump per round (same minute): min {ratios[0]:.3f}x, "
                  f"median {ratios[len(ratios) // 2]:.3f}x, max {ratios[-1]:.3f}x; licscan runs "
                  + ", ".join(f"{1000 * t:.0f}" for t in r["licscan_runs_s"]) + " ms")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(repeat=args.repeat, hash=args.hash, rows=rows), indent=1))
    return 0 if all(r["licscan_rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
