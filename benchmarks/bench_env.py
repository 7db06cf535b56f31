#!/usr/bin/env python3
"""Issue 14 in one run: ``licscan audit`` of an installed CUDA environment, of the torch wheel and of container
images of the same environment, each against its reading floor, with the peak RSS of the whole process tree.

    python benchmarks/bench_env.py                 # builds the inputs first (benchmarks/build_env.py)
    python benchmarks/bench_env.py -n 3            # best of 3 for every timed command (wall and CPU)
    python benchmarks/bench_env.py --only env      # env | wheel | images | cache
    python benchmarks/bench_env.py --only images --image oci-zstd   # one image only

Figures (wall time of a fresh process each; page cache warm: every input is read once, untimed, first):

- env: ``audit --no-cache site-packages`` (default jobs) vs ``find -type f | xargs cat`` of the tree and vs the
  facts floor (``benchmarks/facts_floor.py``: every byte read once and the SHA-256 of each file whose full hash a
  fact needs, on every core -- the least any complete audit does); also ``--jobs 1``;
- cache: the same tree audited with ``--no-cache`` and with an empty cache (cold: what keying the cache costs),
  again (warm: the same-boot memo), a copy of the tree in a new folder (new inodes and times: content digests;
  each run from a copy of the cold run's cache, as a CI job restores one), and a fresh copy into that folder (the
  CI case: a checkout into the same folder, whose reports were kept) -- each re-audit, and ``cat`` of the tree
  (the floor of a copy: one read), against the cold run;
- wheel: ``audit --no-cache torch-2.14.1-*.whl`` vs ``unzip -tq`` of the wheel;
- images: ``audit --no-cache`` of the docker-save and OCI (gzip, zstd) tarballs vs reading their layers once
  (``tar -xOf IMAGE LAYER | gzip -dc`` / ``zstd -dc`` per layer, to /dev/null).

Peak memory of the whole process tree (the licscan process and its workers), sampled every 20 ms from /proc: the
largest sum of VmRSS (pages shared by the forked workers counted in each of them: an upper bound) and the largest
sum of Pss (shared pages divided among the processes sharing them: what the tree costs the machine).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import build_env


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out.extend(int(x) for x in handle.read().split())
    except OSError:
        pass
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> tuple[int, int]:
    """(sum of VmRSS, sum of Pss) in KiB over ``pid`` and its descendants."""
    rss = pss = 0
    todo, seen = [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        rss += _rss_kib(p)
        pss += _pss_kib(p)
        todo.extend(_children(p))
    return rss, pss


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], *, cwd: Path | None = None, shell: bool = False) -> tuple[float, int, int, int, float]:
    """(wall seconds, peak RSS and peak PSS of the process tree in KiB, exit code, CPU seconds of the tree).

    CPU is user + system time of the command and every descendant it waited for (licscan's workers, a shell
    pipeline's commands), from ``RUSAGE_CHILDREN``: on a machine shared with other work it moves far less than the
    wall time does."""
    peak = peak_pss = 0
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, shell=shell, env=_env())
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        while not stop.is_set():
            rss, pss = tree_memory(proc.pid)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        sys.stderr.write(f"[{' '.join(map(str, cmd))[:120]} exited {proc.returncode}]\n{err.decode()[-2000:]}\n")
    return wall, peak, peak_pss, proc.returncode, _children_cpu() - cpu_before


class Timing(tuple):
    """(best wall time, (peak RSS, peak PSS) over the runs, exit code of the last); ``cpu``: the least CPU time
    (user + system, whole process tree) of the runs, ``walls``/``cpus``: every run's."""

    walls: list[float]
    cpus: list[float]

    @property
    def cpu(self) -> float:
        return min(self.cpus)


def best(n: int, cmd, **kwargs) -> Timing:
    runs = [timed(cmd, **kwargs) for _ in range(n)]
    out = Timing((min(r[0] for r in runs), (max(r[1] for r in runs), max(r[2] for r in runs)), runs[-1][3]))
    out.walls, out.cpus = [r[0] for r in runs], [r[4] for r in runs]
    return out


def once(cmd, **kwargs) -> Timing:
    return best(1, cmd, **kwargs)


def licscan(*args: str) -> list[str]:
    return [sys.executable, "-m", "licscan", "audit", *args, "--format", "json", "-o", os.devnull]


_PYCACHE = tempfile.mkdtemp(prefix="licscan-bench-pyc-")
atexit.register(shutil.rmtree, _PYCACHE, True)


def _env() -> dict:
    """Where licscan runs: from the input's parent folder, with a relative path (as CI runs in a checkout), so
    virtual paths -- part of every cache key -- are the same for a copy of the tree elsewhere. With licscan's
    bytecode compiled, as an installed licscan has it (``pip install`` compiles it): under
    ``PYTHONDONTWRITEBYTECODE=1`` (set in the sandbox these figures were first taken in) every run compiled
    licscan's ~150 modules from source, about 0.25 s of CPU on the critical path of every command; the bytecode
    goes to a folder of this run (``PYTHONPYCACHEPREFIX``), compiled before anything is timed."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONPYCACHEPREFIX=_PYCACHE)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _compile() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "licscan")], env=_env(), check=True,
                   stdout=subprocess.DEVNULL)


def row(name: str, run: Timing, floor: Timing | None = None, floor_name: str = "", *,
        memory: bool = True) -> dict:
    """One line: best wall time, least CPU time (whole process tree), peak memory, and both against the floor."""
    wall, (rss, pss), code = run
    ratio = wall / floor[0] if floor else None
    cpu_ratio = run.cpu / floor.cpu if floor and floor.cpu else None
    shown = f"{ratio:6.2f}x {floor_name} (cpu {cpu_ratio:4.2f}x)" if ratio is not None and cpu_ratio else ""
    mem = f"{rss / 1024:6.0f} MB RSS {pss / 1024:5.0f} MB PSS" if memory else " " * 26
    print(f"  {name:<48}{wall:8.2f}s cpu {run.cpu:7.2f}s {mem}  {shown}" + (f"  (exit {code})" if code else ""),
          flush=True)
    return {"name": name, "wall": wall, "walls": run.walls, "cpu": run.cpu, "cpus": run.cpus,
            "peak_rss_mb": rss / 1024 if memory else None, "peak_pss_mb": pss / 1024 if memory else None,
            "ratio": ratio, "cpu_ratio": cpu_ratio, "vs": floor_name, "exit": code}


def env_section(n: int) -> list[dict]:
    tree = build_env.site_packages()
    cat = ["sh", "-c", f"find '{tree}' -type f -print0 | xargs -0 cat > /dev/null"]
    timed(cat)
    floor = best(n, cat)
    print(f"installed environment {tree} ({_count(tree)} files, {_size(tree) / 2**30:.2f} GiB)")
    with tempfile.TemporaryDirectory(prefix="licscan-bench-") as scratch:
        facts = best(n, _facts_floor(tree, Path(scratch) / "facts-floor.list"))
    out = [row("find -type f | xargs cat (warm floor)", floor, memory=False),
           row("facts floor: read all + SHA-256 where needed", facts, floor, "cat", memory=False)]
    audit = best(n, licscan("--no-cache", str(tree)))
    out.append(row("audit --no-cache (default jobs)", audit, floor, "cat"))
    out.append(row("  (the same run against the facts floor)", audit, facts, "facts", memory=False))
    out.append(row("audit --no-cache --jobs 1", once(licscan("--no-cache", "--jobs", "1", str(tree))), floor, "cat"))
    return out


def _facts_floor(tree: Path, listing: Path) -> list[str]:
    """The command of the facts floor (benchmarks/facts_floor.py: every byte read once, the SHA-256 of each file a
    fact needs hashed, on every core), after its list of files is made in ``listing`` (one scan of the tree,
    untimed) and the command run once (warm)."""
    script = str(REPO / "benchmarks" / "facts_floor.py")
    subprocess.run([sys.executable, script, "--make-list", str(listing), str(tree)], check=True, env=_env(),
                   stdout=subprocess.DEVNULL)
    command = [sys.executable, script, "--list", str(listing)]
    timed(command)
    return command


def cache_section(n: int) -> list[dict]:
    """The cold run with the cache against ``--no-cache`` (what keying the cache costs), then re-audits from the
    cache: the unchanged tree, a copy in a new folder, and a fresh copy into the folder of an audited copy (new
    inodes and times at the same path: a CI job that checks out into the same folder every run). Each re-audit of
    a copy starts from a copy of the cold run's cache (``cp -a``, as ``actions/cache`` restores one), so that none
    finds the copy by the ``treeid`` entry an earlier run wrote; the floor of a copy is one read of every byte
    (docs/cache.md, "The floor"): ``cat`` of the tree is shown against the cold run too."""
    tree = build_env.site_packages()
    out = []
    with tempfile.TemporaryDirectory(prefix="licscan-bench-") as scratch:
        cat = ["sh", "-c", f"find '{tree}' -type f -print0 | xargs -0 cat > /dev/null"]
        timed(cat)  # page cache warm
        plain = best(n, licscan("--no-cache", tree.name), cwd=tree.parent)
        print(f"content cache on {tree}")
        out.append(row("audit --no-cache", plain))
        colds = []
        for i in range(n):  # each with an empty cache of its own; the re-audits below use the last one
            cache = os.path.join(scratch, f"cache{i}")
            colds.append(once(licscan("--cache-dir", cache, tree.name), cwd=tree.parent))
        cold = _merged(colds)
        out.append(row("audit, empty cache (cold)", cold, plain, "no-cache"))
        out.append(_files_row(cache))
        out.append(row("find -type f | xargs cat (warm floor)", best(n, cat), cold, "cold", memory=False))
        out.append(row("audit, unchanged tree (same-boot memo)",
                       best(n, licscan("--cache-dir", cache, tree.name), cwd=tree.parent), cold, "cold"))
        copy = Path(scratch, "copy", "site-packages")
        shutil.copytree(tree, copy, symlinks=True)
        copies = [once(licscan("--cache-dir", _restored(cache, scratch, i), tree.name), cwd=copy.parent)
                  for i in range(n)]
        out.append(row("audit, copy in a new folder (content digests)", _merged(copies), cold, "cold"))
        shutil.rmtree(copy)
        shutil.copytree(tree, copy, symlinks=True)
        out.append(row("audit, fresh copy in that folder (CI checkout)",
                       once(licscan("--cache-dir", _restored(cache, scratch, n), tree.name), cwd=copy.parent),
                       cold, "cold"))
    return out


def _merged(runs: list[Timing]) -> Timing:
    """Runs of one command made one at a time (each with a cache of its own) as one :class:`Timing`."""
    out = Timing((min(r[0] for r in runs), (max(r[1][0] for r in runs), max(r[1][1] for r in runs)), runs[-1][2]))
    out.walls, out.cpus = [w for r in runs for w in r.walls], [x for r in runs for x in r.cpus]
    return out


def _restored(cache: str, scratch: str, i: int) -> str:
    """A copy of the cache folder (``cp -a``: modes and the packs' hard links kept, as ``tar`` does)."""
    restored = os.path.join(scratch, f"restored{i}")
    subprocess.run(["cp", "-a", cache, restored], check=True)
    return restored


def _files_row(cache: str) -> dict:
    """How many entries the cold run wrote, and in how many files (packs: docs/cache.md)."""
    entries = list(Path(cache).rglob("*.entry"))
    files = len({p.stat().st_ino for p in entries})
    print(f"  {'(the cold run wrote ' + str(len(entries)) + ' entries in ' + str(files) + ' files)':<48}", flush=True)
    return {"name": "cache entries written cold", "entries": len(entries), "files": files}


def wheel_section(n: int) -> list[dict]:
    wheel = build_env.wheel_of(build_env.root() / "wheels", "torch", "2.14.1")
    assert wheel is not None
    unzip = ["unzip", "-tq", str(wheel)]
    timed(unzip)
    floor = best(n, unzip)
    print(f"wheel {wheel.name} ({wheel.stat().st_size / 2**20:.0f} MiB)")
    out = [row("unzip -tq", floor, memory=False)]
    out.append(row("audit --no-cache", best(n, licscan("--no-cache", str(wheel))), floor, "unzip -tq"))
    return out


def _layers(image: Path) -> list[tuple[str, str]]:
    """(member name, decompressor) of every layer blob of a docker-save or OCI tarball."""
    with tarfile.open(image) as tar:
        names = tar.getnames()
        if "manifest.json" in names:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            layers = [name for entry in manifest for name in entry["Layers"]]
        else:
            index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
            digest = index["manifests"][0]["digest"].replace(":", "/")
            manifest = json.load(tar.extractfile(f"blobs/{digest}"))  # type: ignore[arg-type]
            layers = [f"blobs/{layer['digest'].replace(':', '/')}" for layer in manifest["layers"]]
        out = []
        for name in layers:
            head = tar.extractfile(name).read(4)  # type: ignore[union-attr]
            out.append((name, "gzip -dc" if head[:2] == b"\x1f\x8b" else
                        "zstd -dc" if head == b"\x28\xb5\x2f\xfd" else "cat"))
    return out


IMAGES: list[str] = []  # --image: only these images (default: all)


def images_section(n: int) -> list[dict]:
    out = []
    for name, image in build_env.images().items():
        if IMAGES and name not in IMAGES:
            continue
        layers = _layers(image)
        script = " && ".join(f"tar -xOf '{image}' '{layer}' | {how} > /dev/null" for layer, how in layers)
        floor_cmd = ["sh", "-c", script]
        timed(floor_cmd)
        floor = best(n, floor_cmd)
        print(f"image {image.name} ({image.stat().st_size / 2**20:.0f} MiB, {len(layers)} layers)")
        out.append(row(f"{name}: tar -xOf + decompress each layer", floor, memory=False))
        out.append(row(f"{name}: audit --no-cache", best(n, licscan("--no-cache", str(image))), floor,
                       "layers read once"))
    return out


def _count(tree: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(tree))


def _size(tree: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tree) for f in files
               if not os.path.islink(os.path.join(d, f)))


SECTIONS = {"env": env_section, "cache": cache_section, "wheel": wheel_section, "images": images_section}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1, help="runs of each timed command; the best is reported")
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--image", action="append", choices=["docker-save", "oci-gzip", "oci-zstd"],
                        help="with the images section: only these images (each takes minutes)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    IMAGES.extend(args.image or [])
    if shutil.which("zstd") is None:
        print("(zstd not installed: the zstd image floor needs it; apt-get install zstd)", file=sys.stderr)
    results = {}
    os.chdir(REPO)
    _compile()
    for name in args.only or list(SECTIONS):
        results[name] = SECTIONS[name](args.n)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
