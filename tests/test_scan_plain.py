"""Plain files from the content cache (licscan/scan/plain.py): a batch's entry and its same-boot memo are bound to
what the files are named from, the metadata of the distribution that owns them, not only to the files."""

from __future__ import annotations

import errno
import os
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


def test_a_fifo_or_link_put_in_a_walked_files_place_is_refused_not_waited_on_or_followed(tmp_path):
    """A worker opens a plain file after the walk saw it regular: a FIFO put in its place is not waited on for a
    writer (opened without blocking, refused as not a regular file), a link put there is not followed (nothing
    outside the inputs is read); either is the file's unreadable diagnostic."""
    import threading

    from licscan.binary.images import Limits
    from licscan.scan import plain

    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    fifo, link = tmp_path / "site" / "was_a_file.py", tmp_path / "site" / "was_a_file_too.py"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    link.symlink_to(outside)
    shared = plain.shared_context(Limits(), False, None, [])
    got: dict[str, object] = {}

    def examine() -> None:
        for path in (fifo, link):
            got[path.name] = plain.examine_here(shared, plain.Batch(((str(path), f"site/{path.name}"),), 0))

    worker = threading.Thread(target=examine, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    messages = {name: [d.message for d in records[0].facts.diagnostics] for name, records in got.items()}
    assert messages == {"was_a_file.py": ["cannot read: not a regular file"],
                        "was_a_file_too.py": [f"cannot read: {os.strerror(errno.ELOOP)}"]}
