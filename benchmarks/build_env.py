#!/usr/bin/env python3
"""Build the three inputs of ``bench_env.py`` from pinned PyPI wheels (issue 14), once, under
``${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}/env``:

- ``site-packages/``: torch 2.14.1, triton 3.6.0 and the CUDA 12 wheels below unzipped into one folder, as pip
  installs them (about 13,000 files, 4.5 GB);
- ``images/docker-save.tar``: a ``docker save`` tarball of that tree (``manifest.json``, ``<id>/layer.tar``), one
  gzip layer per wheel;
- ``images/oci-gzip.tar`` and ``images/oci-zstd.tar``: OCI image layouts (``oci-layout``, ``index.json``,
  ``blobs/sha256/``) with the same layers, gzip (``tar+gzip``) and zstd (``tar+zstd``) compressed.

No Docker daemon: the layers are tar files written by Python's ``tarfile`` (members under
``usr/local/lib/python3.11/site-packages/``), compressed by ``gzip -6``/zstandard level 3, as ``docker save`` and
registries store them.

    python benchmarks/build_env.py            # builds what is missing, prints the paths
    python benchmarks/build_env.py --wheels   # only the wheels (pip download)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

# (distribution, version): torch 2.14.1 and the CUDA 12 parts a cu12 environment has beside it.
WHEELS = (
    ("torch", "2.14.1"),
    ("triton", "3.6.0"),
    ("nvidia-cublas-cu12", "12.8.4.1"),
    ("nvidia-cudnn-cu12", "9.10.2.21"),
    ("nvidia-nccl-cu12", "2.27.3"),
    ("nvidia-cuda-cupti-cu12", "12.8.90"),
    ("nvidia-nvjitlink-cu12", "12.8.93"),
    ("nvidia-cuda-nvrtc-cu12", "12.8.93"),
    ("nvidia-cuda-runtime-cu12", "12.8.90"),
)
PREFIX = "usr/local/lib/python3.11/site-packages/"


def root() -> Path:
    base = Path(os.environ.get("LICSCAN_TEST_CACHE") or Path.home() / ".cache" / "licscan-tests").expanduser()
    out = base / "env"
    out.mkdir(parents=True, exist_ok=True)
    return out


def wheel_of(folder: Path, name: str, version: str) -> Path | None:
    found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    return found[0] if found else None


def wheels() -> list[Path]:
    folder = root() / "wheels"
    folder.mkdir(exist_ok=True)
    missing = [f"{n}=={v}" for n, v in WHEELS if wheel_of(folder, n, v) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "--disable-pip-version-check", "-d", str(folder), *missing], check=True)
    return [wheel_of(folder, n, v) for n, v in WHEELS]  # type: ignore[misc]


def site_packages() -> Path:
    target = root() / "site-packages"
    if (target / ".complete").exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    for wheel in wheels():
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                archive.extract(info, target)
                mode = (info.external_attr >> 16) & 0o777
                if mode and not info.is_dir():
                    os.chmod(target / info.filename, mode)
    (target / ".complete").write_text("")
    return target


def _layer_tar(wheel: Path, tree: Path) -> bytes:
    """An uncompressed layer: the files the wheel installed, under PREFIX, in the wheel's order."""
    out = io.BytesIO()
    with zipfile.ZipFile(wheel) as archive, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders: set[str] = set()
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = info.filename.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    folders.add(folder)
                    entry = tarfile.TarInfo(PREFIX + folder)
                    entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o755, 0
                    tar.addfile(entry)
            source = tree / info.filename
            entry = tarfile.TarInfo(PREFIX + info.filename)
            entry.size, entry.mode, entry.mtime = source.stat().st_size, source.stat().st_mode & 0o777, 0
            with open(source, "rb") as handle:
                tar.addfile(entry, handle)
    return out.getvalue()


def _compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    import zstandard

    return zstandard.ZstdCompressor(level=3, threads=-1).compress(data)


def images() -> dict[str, Path]:
    folder = root() / "images"
    folder.mkdir(exist_ok=True)
    targets = {"docker-save": folder / "docker-save.tar", "oci-gzip": folder / "oci-gzip.tar",
               "oci-zstd": folder / "oci-zstd.tar"}
    if all(p.exists() for p in targets.values()):
        return targets
    tree = site_packages()
    raw_layers = [_layer_tar(w, tree) for w in wheels()]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in raw_layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
    config_hex = hashlib.sha256(config).hexdigest()

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        entry = tarfile.TarInfo(name)
        entry.size, entry.mode, entry.mtime = len(data), 0o644, 0
        tar.addfile(entry, io.BytesIO(data))

    # docker save (the classic layout: <id>/layer.tar, here gzip-compressed as `docker load` accepts them)
    gz_layers = [_compress(layer, "gzip") for layer in raw_layers]
    tmp = targets["docker-save"].with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for layer in gz_layers:
            layer_id = hashlib.sha256(layer).hexdigest()
            paths.append(f"{layer_id}/layer.tar")
            add(tar, f"{layer_id}/layer.tar", layer)
        add(tar, f"{config_hex}.json", config)
        add(tar, "manifest.json", json.dumps([{"Config": f"{config_hex}.json", "RepoTags": ["env:latest"],
                                               "Layers": paths}]).encode())
    os.replace(tmp, targets["docker-save"])
    for how, compressed in (("gzip", gz_layers), ("zstd", None)):
        layers = compressed if compressed is not None else [_compress(layer, how) for layer in raw_layers]
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{config_hex}",
                       "size": len(config)},
            "layers": [{"mediaType": f"application/vnd.oci.image.layer.v1.tar+{how}",
                        "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": len(layer)}
                       for layer in layers]}, sort_keys=True).encode()
        manifest_hex = hashlib.sha256(manifest).hexdigest()
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                           "digest": f"sha256:{manifest_hex}", "size": len(manifest)}]}).encode()
        target = targets[f"oci-{how}"]
        tmp = target.with_suffix(".tmp")
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            add(tar, "index.json", index)
            add(tar, f"blobs/sha256/{manifest_hex}", manifest)
            add(tar, f"blobs/sha256/{config_hex}", config)
            for layer in layers:
                add(tar, "blobs/sha256/" + hashlib.sha256(layer).hexdigest(), layer)
        os.replace(tmp, target)
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", action="store_true", help="only download the wheels")
    parser.add_argument("--tree", action="store_true", help="only the wheels and the site-packages tree")
    args = parser.parse_args()
    for wheel in wheels():
        print(wheel)
    if args.wheels:
        return 0
    print(site_packages())
    if args.tree:
        return 0
    for path in images().values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
