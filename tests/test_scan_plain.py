"""Plain files from the content cache (licscan/scan/plain.py): a batch's entry and its same-boot memo are bound to
what the files are named from, the metadata of the distribution that owns them, not only to the files."""

from __future__ import annotations

import shutil
from pathlib import Path

from licscan.scan import ScanConfig, scan
from tests.helpers import FIXTURES

INFO = "nvidia_cuda_runtime_cu13-13.0.96.dist-info"


def installed_cudart(root: Path, version: str) -> Path:
    """``site-packages`` with NVIDIA's runtime wheel installed: its RECORD lists ``libcudart.so.13``."""
    site = root / "site-packages"
    (site / "nvidia/cu13/lib").mkdir(parents=True)
    shutil.copy(FIXTURES / "cuda13/libkern.so", site / "nvidia/cu13/lib/libcudart.so.13")
    (site / INFO).mkdir()
    write_metadata(site, version)
    (site / INFO / "RECORD").write_text(f"nvidia/cu13/lib/libcudart.so.13,,\n{INFO}/METADATA,,\n{INFO}/RECORD,,\n")
    return site


def write_metadata(site: Path, version: str) -> None:
    (site / INFO / "METADATA").write_text(f"Metadata-Version: 2.1\nName: nvidia-cuda-runtime-cu13\nVersion: {version}\n")


def cudart_versions(site: Path, cache: Path | None) -> list[str | None]:
    _, records = scan([str(site)], ScanConfig(jobs=1, cache_dir=str(cache) if cache else None))
    return [m.version for r in records if r.vpath.endswith("/libcudart.so.13") for m in r.matches]


def test_an_edited_metadata_beside_unchanged_files_is_seen_through_the_cache(tmp_path):
    """The library's bytes, inode and times do not change when its distribution's METADATA is edited: the batch
    memo (keyed by the files' identities) must not hand back the records named from the old version."""
    site = installed_cudart(tmp_path, "13.0.96")
    cache = tmp_path / "cache"
    assert cudart_versions(site, cache) == ["13.0.96"]
    assert cudart_versions(site, cache) == ["13.0.96"]  # from the cache
    write_metadata(site, "13.0.97")
    assert cudart_versions(site, cache) == ["13.0.97"]
    assert cudart_versions(site, None) == ["13.0.97"]
