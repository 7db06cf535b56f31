"""Run the fuzz targets one after the other: ``python fuzz/run.py --seconds N [--runs R] [TARGET...]``.

Each target runs in its own atheris process (fuzz/driver.py) under ``nice -n 19``, for N seconds or R executions,
whichever comes first, with its seeds from the fixtures and a growing corpus under ``fuzz/out/TARGET/`` (not
committed). Prints executions, wall time and findings per target; a finding's input and traceback are in
``fuzz/out/TARGET/crashes/``. Copy the inputs worth keeping to ``tests/fuzz_corpus/TARGET/``.

Exit status: 0 when no target found anything, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fuzz import targets

ORDER = ["fatbin", "cubin", "ptx", "lz4", "ar", "pe", "elf", "walk", "rules"]


def run_target(name: str, seconds: int, runs: int | None, jobs_nice: int = 19) -> dict:
    ok, why = targets.available(name)
    if not ok:
        return {"target": name, "skipped": why}
    out = HERE / "out" / name
    corpus, seed_dir, crashes = out / "corpus", out / "seeds", out / "crashes"
    for d in (corpus, seed_dir, crashes):
        d.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(targets.seeds(name)):
        (seed_dir / f"seed-{i:03d}").write_bytes(seed)
    before = set(crashes.glob("*.bin"))
    flags = [f"-max_total_time={seconds}", f"-max_len={targets.MAX_LEN[name]}", "-timeout=300",
             f"-artifact_prefix={out}/artifacts-",
             "-rss_limit_mb=1536", "-print_final_stats=1", "-reload=0"]
    if runs:
        flags.append(f"-runs={runs}")
    command = ["nice", "-n", str(jobs_nice), sys.executable, str(HERE / "driver.py"), name, str(out), *flags,
               str(corpus), str(seed_dir)]
    log = out / "log.txt"
    start = time.monotonic()
    with open(log, "w") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
    wall = time.monotonic() - start
    text = log.read_text(errors="replace")
    executed = _stat(text, "number_of_executed_units")
    if executed is None:
        done = re.findall(r"Done (\d+) runs in (\d+) second", text)
        executed = int(done[-1][0]) if done else None
    new = sorted(set(crashes.glob("*.bin")) - before)
    return {"target": name, "executions": executed, "seconds": round(wall, 1),
            "exec_per_s": round(executed / wall) if executed and wall else None,
            "findings_total": len(list(crashes.glob("*.bin"))), "new_findings": [p.stem for p in new],
            "exit": code, "peak_rss_mb": _stat(text, "peak_rss_mb"), "log": str(log.relative_to(HERE.parent))}


def _stat(text: str, name: str) -> int | None:
    found = re.findall(rf"stat::{name}:\s+(\d+)", text)
    return int(found[-1]) if found else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, required=True, help="time budget per target")
    parser.add_argument("--runs", type=int, help="stop a target after this many executions")
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"default: all of {', '.join(ORDER)}")
    args = parser.parse_args(argv)
    names = args.targets or ORDER
    unknown = [n for n in names if n not in targets.CHECKS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {', '.join(ORDER)}")
    results = []
    for name in names:
        result = run_target(name, args.seconds, args.runs)
        results.append(result)
        if "skipped" in result:
            print(f"{name:8s} skipped: {result['skipped']}", flush=True)
        else:
            print(f"{name:8s} {result['executions'] or 0:>10,} executions in {result['seconds']:>7.1f} s "
                  f"({result['exec_per_s'] or 0:,}/s), peak RSS {result['peak_rss_mb']} MB, "
                  f"findings {result['findings_total']} (new: {', '.join(result['new_findings']) or 'none'})",
                  flush=True)
    with open(HERE / "out" / "results.jsonl", "a") as out:
        for result in results:
            out.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **result}) + "\n")
    return 1 if any(r.get("new_findings") or r.get("findings_total") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
