"""atheris driver for one target: ``python fuzz/driver.py TARGET OUTDIR [libFuzzer flags...]``.

Runs ``fuzz.targets.check_<TARGET>`` under libFuzzer with coverage from the instrumented licscan and pyelftools
modules. The address space is limited (RLIMIT_AS, default 1 GiB, ``LICSCAN_FUZZ_AS_MB``) so that an unbounded
allocation shows up as a MemoryError finding instead of swapping the machine.

A property violation does not stop the run: each distinct finding (exception type and innermost licscan frame) is
written once to ``OUTDIR/crashes/<sig>.bin`` with its traceback in ``<sig>.txt``, and fuzzing goes on, so a long
run counts every execution. Inputs taking more than ``LICSCAN_FUZZ_SLOW`` seconds of CPU time (default 2) are
findings too.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _limit_memory() -> None:
    limit = int(os.environ.get("LICSCAN_FUZZ_AS_MB", "1024")) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    target, outdir = sys.argv[1], Path(sys.argv[2])
    crashes = outdir / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    slow_after = float(os.environ.get("LICSCAN_FUZZ_SLOW", "2"))
    # A Python-level hang is interrupted (SIGPROF after that much CPU time of this process) and recorded, and
    # fuzzing goes on; libFuzzer's own -timeout (which ends the run) is left as a backstop for hangs in C code.
    # Both limits count this process's CPU time, not wall time: on a shared machine (other fuzzers, a paused
    # process) wall time made "slow" records that did not reproduce.
    hang_after = float(os.environ.get("LICSCAN_FUZZ_HANG", "20"))

    import atheris

    sys.path.insert(0, str(HERE.parent))
    import fuzz.targets as plain

    include = plain.INSTRUMENT[target]
    for name in [m for m in sys.modules if m.startswith("licscan")]:
        del sys.modules[name]  # imported by fuzz.targets' registry: re-import them instrumented
    with atheris.instrument_imports(include=include):
        from fuzz import targets

        targets.setup()
        if target == "walk":
            import licscan.inventory.walk  # noqa: F401
        if target == "rules":
            targets.rules_loader()
    check = targets.CHECKS[target]
    seen: dict[str, int] = {}
    counters = {"runs": 0, "findings": 0}

    def record(kind: str, text: str, sig_frames: list[str], data: bytes) -> None:
        sig = hashlib.sha1((kind + "|" + "|".join(sig_frames)).encode()).hexdigest()[:12]
        counters["findings"] += 1
        if sig in seen:
            seen[sig] += 1
            return
        seen[sig] = 1
        (crashes / f"{sig}.bin").write_bytes(data)
        (crashes / f"{sig}.txt").write_text(f"target: {target}\nkind: {kind}\ninput: {len(data)} bytes\n\n{text}\n")
        print(f"\n=== FINDING {sig} ({target}): {kind}\n{text}", file=sys.stderr, flush=True)

    class SlowInput(Exception):
        pass

    def alarm(_signum, _frame):
        raise SlowInput(f"input still running after {hang_after} s")

    signal.signal(signal.SIGPROF, alarm)

    def one_input(data: bytes) -> None:
        counters["runs"] += 1
        start = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, hang_after)
        try:
            try:
                check(data)
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
        except Exception as error:
            tb = traceback.extract_tb(error.__traceback__)
            frames = [f"{Path(f.filename).name}:{f.lineno}" for f in tb if "/licscan/" in f.filename]
            frames = frames[-1:] or [f"{Path(f.filename).name}:{f.lineno}" for f in tb[-1:]]
            if type(error).__name__ == "PropertyViolation":
                frames.append(re.sub(r"\d+", "N", str(error).split(":")[0])[:60])
            record(type(error).__name__, "".join(traceback.format_exception(error)), frames, data)
        elapsed = time.process_time() - start
        if elapsed > slow_after:
            record("Slow", f"input took {elapsed:.1f} s of CPU time (limit {slow_after} s)", ["slow"], data)

    _limit_memory()
    atheris.Setup([sys.argv[0], *sys.argv[3:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
