"""cuobjdump as a differential oracle for ``licscan inspect`` (docs/binary-format.md §7).

Helpers shared by ``tests/test_oracle_diff.py``, ``tests/test_realworld_torch.py`` and
``benchmarks/bench_inspect.py``:

* :func:`find_cuobjdump` – the cuobjdump 13.x binary of the PyPI wheel ``nvidia-cuda-cuobjdump``
  (``site-packages/nvidia/cu13/bin/cuobjdump``), or ``$LICSCAN_CUOBJDUMP``.
* :func:`oracle_listing` – ``cuobjdump -all -lelf -lptx FILE`` parsed to ``[Entry(member, kind, arch)]``.
* :func:`oracle_extract` – ``cuobjdump -all -xelf all -xptx all FILE`` run in a temporary directory;
  the SHA-256 of every written file, in cuobjdump's order.
* :func:`run_inspect` / :func:`licscan_listing` – the licscan side (``python -m licscan inspect``).
* :func:`torch_cuda_lib` – ``torch/lib/libtorch_cuda.so`` from the PyPI torch wheel, cached.

What cuobjdump 13.5.37 prints (verified on synthetic fatbins, an ``ar`` archive built with objcopy and
``libtorch_cuda.so`` from torch 2.14.1):

* ``ELF file    N: <stem>.N.<arch>.cubin`` / ``PTX file    N: <stem>.N.<arch>.ptx``, ELF and PTX numbered
  separately, interleaved in file order whatever the option order. ``<stem>`` is the file name without its
  last extension (``libtorch_cuda.so`` -> ``libtorch_cuda``, ``a.b.c.fatbin`` -> ``a.b.c``). A standalone cubin has no ``N``
  (``kern_sm80.sm_80.cubin``). Family (``f``) ELF entries are listed without the ``f``; PTX keeps it.
* archives: a blank line, then ``member <path as cuobjdump resolved it>:<member name>:`` before each
  member that has device code (the path is made absolute by prefixing the cwd, ``..`` is kept); the
  numbering continues across members.
* exit 255 + ``cuobjdump info : File '…' does not contain device code`` for files without device code in
  ELF sections (PE, zip, ``.rodata``-only fatbins, and – for cuobjdump 13.5 – a bare ``.ptx`` text file);
  exit 1 with ``cuobjdump fatal : …`` otherwise (e.g. sm_3x entries).  ``No PTX file found to extract``
  goes to stderr with exit 0.

What ``-xelf all`` / ``-xptx all`` write (empirical, identical for uncompressed, LZ4 and zstd entries):

* **ELF**: exactly the ELF image, **not** the padded fatbin payload and not ``uncompressed_size`` bytes:
  ``data[:end]`` with ``end = max(e_shoff + e_shnum*e_shentsize, e_phoff + e_phnum*e_phentsize,
  max(sh_offset + sh_size))``.  Checked by appending zero padding (uncompressed: payload_size > ELF;
  compressed: uncompressed_size > ELF) and even non-zero junk after the image: cuobjdump drops it in every
  case; a section moved past the header tables extends the written size, a moved/absent program-header
  table shrinks it to the end of the section-header table.  For real nvcc/fatbinary output the
  decompressed size (``uncompressed_size``) *is* the ELF size (all 2,975 zstd cubins of libtorch_cuda.so:
  written size == uncompressed_size), so "decompressed payload" and cuobjdump's file coincide for
  compressed ELF entries; for uncompressed entries they differ only when payload_size was padded.
* **PTX**: the text up to (excluding) the **first NUL**: the trailing NUL that is part of
  ``uncompressed_size`` is *not* written, extra trailing NULs are not written, and text after an embedded
  NUL is dropped.  The ptxas options (``--compile-only``) are printed on stdout
  (``Extracting PTX file and ptxas options N: name -arch=sm_80 --compile-only``) and not written to the
  file.  Hence licscan's ``sha256`` of a PTX entry must be taken over the text without the NUL terminator
  to be byte-identical with cuobjdump.
* file names are the listing names; with ``-all`` every entry of every member gets a unique name because
  the numbering is global, so nothing is overwritten.
"""
from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"
FIXTURE_DIRS = ("cuda13", "cuda112", "oldtk")

TORCH_VERSION = "2.14.1"
TORCH_MEMBER = "torch/lib/libtorch_cuda.so"


class Entry(NamedTuple):
    member: str | None  # archive member name, None for a plain file
    kind: str  # "cubin" | "ptx"
    arch: str  # as cuobjdump spells it: sm_90a, sm_100 (ELF f), sm_100f (PTX f)


class Extracted(NamedTuple):
    entry: Entry
    name: str  # file name cuobjdump wrote
    size: int
    sha256: str


class OracleError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# locating cuobjdump


def _candidates() -> list[Path]:
    out: list[Path] = []
    env = os.environ.get("LICSCAN_CUOBJDUMP")
    if env:
        out.append(Path(env))
    spec = importlib.util.find_spec("nvidia")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            out.extend(sorted(Path(loc).glob("cu*/bin/cuobjdump"), reverse=True))
    try:
        files = importlib.metadata.distribution("nvidia-cuda-cuobjdump").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == "cuobjdump" and f.parent.name == "bin":
            out.append(Path(f.locate()))
    return out


@cache
def find_cuobjdump() -> str | None:
    """Path of a runnable cuobjdump 13.x, or None."""
    for cand in _candidates():
        if not cand.is_file():
            continue
        if not os.access(cand, os.X_OK):
            try:  # wheels installed by some tools lose the x bit
                cand.chmod(cand.stat().st_mode | 0o111)
            except OSError:
                continue
        ver = cuobjdump_version(str(cand))
        if ver and ver.startswith("13."):
            return str(cand)
    return None


@cache
def cuobjdump_version(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return None
    m = re.search(r"release [\d.]+, V([\d.]+)", out)
    return m.group(1) if m else None


def require_cuobjdump() -> str:
    exe = find_cuobjdump()
    if exe is None:
        import pytest

        pytest.skip("cuobjdump 13.x not installed (pip install nvidia-cuda-cuobjdump)")
    return exe


# ---------------------------------------------------------------------------------------------
# listing

_ENTRY_RE = re.compile(r"^(?:Extracting )?(ELF|PTX) file(?: and ptxas options)?\s+(\d+): (\S+)")
_NO_DEVICE_CODE = "does not contain device code"


def _arch_from_name(name: str) -> str:
    # <stem>.<n>.<arch>.cubin | <stem>.<arch>.cubin ; the stem may contain dots
    base, arch, ext = name.rsplit(".", 2)
    if ext not in ("cubin", "ptx") or not arch.startswith("sm_"):
        raise OracleError(f"unexpected cuobjdump entry name {name!r}")
    return arch


def _member_of(line: str, abspath: str) -> str:
    body = line[len("member "):]
    if body.endswith(":"):
        body = body[:-1]
    prefix = abspath + ":"
    if body.startswith(prefix):
        return body[len(prefix):]
    return body.rpartition(":")[2]


def parse_listing(text: str, abspath: str) -> list[Entry]:
    """Parse ``-lelf -lptx`` output (or ``-xelf/-xptx`` progress output) into entries, in order."""
    entries: list[Entry] = []
    member: str | None = None
    for line in text.splitlines():
        if line.startswith("member "):
            member = _member_of(line, abspath)
            continue
        m = _ENTRY_RE.match(line)
        if m:
            kind = "cubin" if m.group(1) == "ELF" else "ptx"
            entries.append(Entry(member, kind, _arch_from_name(m.group(3))))
    return entries


def _run(args: Sequence[str], cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run the oracle. The oracles run from a thread pool; starting one has failed once in CI with EFAULT ("Bad
    address") from the vfork/exec of a healthy cuobjdump that ran fine when started again (a CPython/kernel process
    creation fault, not the tool's answer: https://github.com/python/cpython/issues/91401 discusses vfork's limits).
    Starting it is tried once more on that error only; the answer is never retried."""
    try:
        return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=1800)
    except OSError as error:
        if error.errno != errno.EFAULT:
            raise
        return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=1800)


def _check(proc: subprocess.CompletedProcess, path: str) -> bool:
    """True if the output is usable, False for 'does not contain device code'; raise otherwise."""
    if proc.returncode == 0:
        return True
    if proc.returncode == 255 and _NO_DEVICE_CODE in proc.stderr:
        return False
    raise OracleError(f"cuobjdump failed on {path} (exit {proc.returncode}): {proc.stderr.strip()}")


@cache
def oracle_listing(path: str) -> list[Entry]:
    """``cuobjdump -all -lelf -lptx PATH`` as a list of entries (empty if no device code)."""
    exe = require_cuobjdump()
    abspath = os.path.abspath(path)
    proc = _run([exe, "-all", "-lelf", "-lptx", abspath])
    if not _check(proc, path):
        return []
    return parse_listing(proc.stdout, abspath)


def oracle_extract(path: str, select: Sequence[str] | None = None,
                   outdir: str | None = None) -> list[Extracted]:
    """Run ``cuobjdump -all -xelf all -xptx all PATH`` in a temp dir; hash every written file in order.

    ``select`` restricts ELF extraction to names containing any of the given partial names
    (``-xelf a,b``; no PTX then) — cuobjdump matches substrings, so pass ``"<stem>.<n>.<arch>."``.
    ``outdir`` keeps the extracted files there instead of a temporary directory.
    """
    exe = require_cuobjdump()
    abspath = os.path.abspath(path)
    if select is None:
        args = ["-all", "-xelf", "all", "-xptx", "all"]
    else:
        args = ["-all", "-xelf", ",".join(select)]
    with tempfile.TemporaryDirectory(prefix="licscan-oracle-") as tmp:
        if outdir is not None:
            tmp = outdir
        proc = _run([exe, *args, abspath], cwd=tmp)
        if not _check(proc, path):
            return []
        out: list[Extracted] = []
        member: str | None = None
        for line in proc.stdout.splitlines():
            if line.startswith("member "):
                member = _member_of(line, abspath)
                continue
            m = _ENTRY_RE.match(line)
            if not m:
                continue
            name = m.group(3)
            data = (Path(tmp) / name).read_bytes()
            entry = Entry(member, "cubin" if m.group(1) == "ELF" else "ptx", _arch_from_name(name))
            out.append(Extracted(entry, name, len(data), hashlib.sha256(data).hexdigest()))
        return out


# ---------------------------------------------------------------------------------------------
# licscan side


def licscan_cmd() -> list[str]:
    return [sys.executable, "-m", "licscan"]


def licscan_available() -> bool:
    return (REPO_ROOT / "licscan" / "cli" / "__init__.py").exists()


def run_inspect(path: str, *extra: str, check: bool = True) -> dict:
    """``python -m licscan inspect PATH --format json [extra]`` -> parsed JSON."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [*licscan_cmd(), "inspect", path, "--format", "json", *extra],
        capture_output=True, text=True, cwd=str(REPO_ROOT), env=env, timeout=1800,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"licscan inspect {path} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(f"licscan inspect {path}: stdout is not JSON ({exc}): {proc.stdout[:500]!r}") from exc


def member_of_vpath(vpath: str, given: str) -> str | None:
    """``FILE`` -> None, ``FILE!/a.o`` -> ``a.o`` (only one level: cuobjdump reads only ar members)."""
    if vpath == given:
        return None
    prefix = given + "!/"
    if not vpath.startswith(prefix):
        raise AssertionError(f"device_code path {vpath!r} is not {given!r} or under {prefix!r}")
    return vpath[len(prefix):]


def licscan_listing(report: dict, given: str) -> list[Entry]:
    return [Entry(member_of_vpath(d["path"], given), d["kind"], d["arch"]) for d in report["device_code"]]


# ---------------------------------------------------------------------------------------------
# fixtures and the real-world file


def fixture_files(oracle: str = "cuobjdump13") -> list[Path]:
    """Fixtures whose manifest oracle is ``oracle``; without a manifest every file in the fixture dirs."""
    manifest = FIXTURES / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        items = data.get("files", data) if isinstance(data, dict) else data
        if isinstance(items, dict):
            pairs = items.items()
        else:  # list of records with a path/file key
            pairs = ((r.get("path") or r.get("file"), r) for r in items)
        out = []
        for rel, meta in pairs:
            if isinstance(meta, dict) and meta.get("oracle") == oracle:
                p = Path(rel)
                if not p.is_absolute():
                    p = (FIXTURES / p) if (FIXTURES / p).exists() else (REPO_ROOT / p)
                out.append(p)
        return sorted(out)
    out = []
    for d in FIXTURE_DIRS:
        base = FIXTURES / d
        if base.is_dir():
            out.extend(p for p in base.rglob("*") if p.is_file())
    return sorted(out)


def cache_dir() -> Path:
    d = Path(os.environ.get("LICSCAN_TEST_CACHE") or Path.home() / ".cache" / "licscan-tests").expanduser()
    d.mkdir(parents=True, exist_ok=True)
    return d


def torch_cuda_lib(download: bool = True) -> Path | None:
    """``libtorch_cuda.so`` from the torch 2.14.1 wheel, extracted once into the cache dir."""
    cache = cache_dir()
    target = cache / f"libtorch_cuda-{TORCH_VERSION}.so"
    if target.exists():
        return target
    wheels = sorted(cache.glob(f"torch-{TORCH_VERSION}-*.whl"))
    if not wheels:
        if not download:
            return None
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", f"torch=={TORCH_VERSION}", "--no-deps",
             "--only-binary=:all:", "-d", str(cache)],
            capture_output=True, text=True,
        )
        wheels = sorted(cache.glob(f"torch-{TORCH_VERSION}-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise RuntimeError(f"pip download torch=={TORCH_VERSION} failed: {proc.stderr.strip()[-2000:]}")
    tmp = target.with_suffix(".so.part")
    with zipfile.ZipFile(wheels[0]) as zf, zf.open(TORCH_MEMBER) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, target)
    return target
