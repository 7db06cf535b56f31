"""licscan.scan.members: an image layer's members held in memory are examined by worker processes with jobs > 1;
the records (and so every report) are exactly those of examining each member where it is walked (--jobs 1), in
the same order (members of one name in one layer too), whichever process examined which batch, and when the
workers die (their batches are then examined in the scan's own process)."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor

import pytest
from inventory_builders import tar_bytes
from test_env_speed_paths import _NAMED, _QUIET

from licscan.inventory import unzstd
from licscan.scan import ScanConfig, members, scan
from tests.helpers import FIXTURES


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def _image(compression: str) -> bytes:
    """An OCI image tarball of two layers: the lower one has quiet and named members, ELF files, a member twice
    under one name and a member the upper layer deletes."""
    exe = (FIXTURES / "cuda13/exe_multi").read_bytes()
    lower = []
    for n in range(5):
        lower += [(f"usr/lib/p{n}/{vpath}", data) for vpath, data in _QUIET + _NAMED]
        lower.append((f"usr/lib/p{n}/exe", exe))
    lower += [("usr/lib/twice.txt", b"first\n"), ("usr/lib/twice.txt", b"second\n"), ("usr/lib/gone.py", b"x = 1\n")]
    # one name, a member sent to a worker and then one examined here (over SEND_MAX): their records in walk order
    lower += [("usr/lib/big.txt", b"small\n"), ("usr/lib/big.txt", b"large " * (members.SEND_MAX // 5))]
    upper = [("usr/lib/.wh.gone.py", b""), ("app/run.py", b"print('hi')\n"), ("app/exe", exe)]
    media = "tar+zstd" if compression == "zst" else "tar+gzip"
    layers = [_blob(tar_bytes(lower, compression)), _blob(tar_bytes(upper, compression))]
    config = _blob(b'{"architecture": "amd64", "os": "linux"}')
    manifest = _blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config[0],
                   "size": len(config[1])},
        "layers": [{"mediaType": f"application/vnd.oci.image.layer.v1.{media}", "digest": d, "size": len(b)}
                   for d, b in layers]}).encode())
    index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                           "digest": manifest[0], "size": len(manifest[1])}]})
    files = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index.encode())]
    files += [("blobs/sha256/" + digest.split(":")[1], data) for digest, data in (config, manifest, *layers)]
    return tar_bytes(files)


@pytest.fixture
def submitted(monkeypatch):
    """The batches of members handed to worker processes (counted in this process)."""
    count: list[int] = []
    real = ProcessPoolExecutor.submit

    def counting(self, fn, /, *args, **kwargs):
        if fn in (members.examine_members, _dying):
            count.append(len(args[0]))
        return real(self, fn, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", counting)
    monkeypatch.setattr(members, "BATCH_MEMBERS", 3)  # many batches
    monkeypatch.setattr(unzstd, "SPAWN_MIN", 0)  # zstd layers decompressed by the child process
    return count


@pytest.mark.parametrize("compression", ["zst", "gz"])
def test_image_members_examined_by_workers_are_those_examined_where_walked(tmp_path, submitted, compression):
    path = tmp_path / "image.tar"
    path.write_bytes(_image(compression))
    inventory, records = scan([str(path)], ScanConfig(jobs=3, cache_dir=None))
    assert sum(submitted) > 20  # most members went to the workers
    submitted.clear()
    alone, alone_records = scan([str(path)], ScanConfig(jobs=1, cache_dir=None))
    assert not submitted
    assert records == alone_records and inventory == alone
    twice = [r for r in records if r.vpath.endswith("!/usr/lib/twice.txt")]
    assert [r.size for r in twice] == [6, 7]  # in walk order
    big = [r.size for r in records if r.vpath.endswith("!/usr/lib/big.txt")]
    assert big[0] == 6 and big[1] > members.SEND_MAX
    assert [r.deleted_in_upper_layer for r in records if r.vpath.endswith("!/usr/lib/gone.py")] == [True]
    assert any(r.matches for r in records) and any(r.facts.elf is not None for r in records)


def test_members_of_workers_that_die_are_examined_here(tmp_path, submitted, monkeypatch):
    path = tmp_path / "image.tar"
    path.write_bytes(_image("gz"))
    expected = scan([str(path)], ScanConfig(jobs=1, cache_dir=None))
    monkeypatch.setattr(members, "examine_members", _dying)  # (inherited by the workers: forked after this)
    assert scan([str(path)], ScanConfig(jobs=2, cache_dir=None)) == expected
    assert submitted  # (the first batches went to the worker; the rest were examined here)


def _dying(batch):
    os._exit(3)
