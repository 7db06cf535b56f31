"""Small helpers shared by licscan's own tests (the oracle helpers live in tests/oracle.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from licscan.binary.images import Limits
from licscan.binary.inspect import inspect_file
from licscan.model import FileFacts

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(rel: str) -> Path:
    path = FIXTURES / rel
    assert path.exists(), f"fixture {rel} missing: rebuild with tests/fixtures/build.sh"
    return path


def inspect(rel_or_path, **kwargs) -> FileFacts:
    path = rel_or_path if isinstance(rel_or_path, Path) else fixture(rel_or_path)
    limits = kwargs.pop("limits", Limits(jobs=1))
    return inspect_file(str(path), limits=limits, **kwargs)


def listing(facts: FileFacts) -> list[tuple[str, str, str]]:
    """(kind, arch_full, compression) of every image, in file order."""
    return [(i.kind.value, i.arch_full, i.compression.value) for i in facts.all_images()]


def manifest() -> dict:
    return json.loads((FIXTURES / "manifest.json").read_text())


def cache_entry_header(path: Path) -> dict:
    """The header (key, kind, size, mac) of the cache entry the file at ``path`` holds under its name: an entry file
    of its own, or a pack of entries named by hard links (docs/cache.md, "Packs")."""
    from licscan.cache import store

    raw = store._entry_bytes(str(path), path.name.removesuffix(".entry"))
    assert raw is not None, path
    return json.loads(raw.split(b"\n")[1])


def run_licscan(cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """``python -m licscan ARGS`` in ``cwd``; asserts its exit code and that it printed no traceback."""
    proc = subprocess.run([sys.executable, "-m", "licscan", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return proc


def audit_json(cwd: Path, path: Path) -> dict:
    """The JSON report of ``licscan audit PATH --no-cache``, written in ``cwd``."""
    run_licscan(cwd, "audit", str(path), "--no-cache", "--format", "json", "-o", str(cwd / "report.json"))
    return json.loads((cwd / "report.json").read_text())


def sboms(cwd: Path, path: Path) -> tuple[dict, dict]:
    """The SPDX (checked by pyspdxtools) and CycloneDX (checked against its schema) documents ``licscan sbom PATH
    --no-cache`` writes in ``cwd``."""
    from licscan.sbom.cyclonedx import validate_json

    spdx, cdx = cwd / "out.spdx.json", cwd / "out.cdx.json"
    run_licscan(cwd, "sbom", str(path), "--no-cache", "--format", "spdx-json", "-o", str(spdx))
    run_licscan(cwd, "sbom", str(path), "--no-cache", "--format", "cyclonedx-json", "-o", str(cdx))
    parsed = subprocess.run([str(Path(sys.executable).parent / "pyspdxtools"), "-i", str(spdx)], capture_output=True,
                            text=True)
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    validate_json(cdx.read_text())
    return json.loads(spdx.read_text()), json.loads(cdx.read_text())

