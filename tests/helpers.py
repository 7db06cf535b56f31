"""Small helpers shared by licscan's own tests (the oracle helpers live in tests/oracle.py)."""

from __future__ import annotations

import json
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
