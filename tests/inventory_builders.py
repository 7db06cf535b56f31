"""Builders of small real archives for the walker tests (tests/test_inventory*.py): tar (plain and compressed),
zip, ar / .deb, conda (.conda and .tar.bz2), OCI image layouts (folder and tar) and docker-save tarballs."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import zipfile
from pathlib import Path

import zstandard

from licscan.binary.stream import WindowStream
from licscan.inventory import compressed
from licscan.inventory.member import Tally
from licscan.inventory.sniff import ArchiveKind

FIXTURES = Path(__file__).parent / "fixtures" / "cuda13"
LIB = (FIXTURES / "libkern.so").read_bytes()
EXE = (FIXTURES / "exe_multi").read_bytes()
FATBIN = (FIXTURES / "kern_multi.fatbin").read_bytes()
WHEEL = FIXTURES / "licscan_test-0.0.1-py3-none-linux_x86_64.whl"

# A member is (name, bytes) for a file, or (name, ("dir",)), (name, ("symlink", target)), (name, ("hardlink",
# target)), (name, ("fifo",)).


def tar_bytes(members, compression: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if isinstance(content, tuple):
                kind = content[0]
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE}[kind]
                info.mode = 0o755
                if len(content) > 1:
                    info.linkname = content[1]
                tf.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o755 if content[:4] == b"\x7fELF" else 0o644
                tf.addfile(info, io.BytesIO(content))
    return compress(out.getvalue(), compression)


def compress(data: bytes, compression: str | None) -> bytes:
    if compression is None:
        return data
    if compression == "gz":
        return gzip.compress(data, mtime=0)
    if compression == "bz2":
        return bz2.compress(data)
    if compression == "xz":
        return lzma.compress(data)
    if compression == "zst":
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(compression)


def zip_bytes(members, method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, content in members:
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            if isinstance(content, tuple) and content[0] == "dir":
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
            elif isinstance(content, tuple) and content[0] == "symlink":
                info.create_system = 3
                info.external_attr = 0o120777 << 16
                zf.writestr(info, content[1])
            else:
                info.create_system = 3
                info.external_attr = (0o100755 if content[:4] == b"\x7fELF" else 0o100644) << 16
                zf.writestr(info, content)
    return out.getvalue()


def ar_bytes(members) -> bytes:
    """System V / GNU ar: "!<arch>\\n", then per member a 60-byte header and the data padded to even size."""
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += header + data
        if len(data) & 1:
            out += b"\n"
    return bytes(out)


def record_line(name: str, data: bytes) -> str:
    import base64

    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_bytes(name: str = "demo_pkg", version: str = "1.2.3") -> bytes:
    """A wheel with METADATA (License-Expression, License-File, classifiers), licenses/ and RECORD."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"",
        f"{name}/libkern.so": LIB,
        f"{info}/METADATA": (f"Metadata-Version: 2.4\nName: {name.replace('_', '-')}\nVersion: {version}\n"
                             "Summary: demo\nLicense-Expression: MIT\nLicense-File: LICENSE.txt\n"
                             "Classifier: License :: OSI Approved :: MIT License\nClassifier: Programming Language"
                             " :: Python\nRequires-Dist: numpy\n").encode(),
        f"{info}/licenses/LICENSE.txt": b"MIT License\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: py3-none-any\n",
    }
    record = "\n".join(record_line(k, v) for k, v in files.items()) + f"\n{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    return zip_bytes(list(files.items()))


def deb_bytes(package: str = "libkern1", version: str = "13.0.88-1") -> bytes:
    control = (f"Package: {package}\nVersion: {version}\nArchitecture: amd64\nMaintainer: Test <t@example.com>\n"
               "Description: test kernels\n long description\n").encode()
    control_tar = tar_bytes([("./", ("dir",)), ("./control", control), ("./md5sums", b"")], "gz")
    data_tar = tar_bytes([("./", ("dir",)), ("./usr/", ("dir",)), ("./usr/lib/x86_64-linux-gnu/libkern.so.1", LIB),
                          ("./usr/lib/x86_64-linux-gnu/libkern.so", ("symlink", "libkern.so.1")),
                          (f"./usr/share/doc/{package}/copyright", b"Format: dep5\nLicense: MIT\n")], "xz")
    return ar_bytes([("debian-binary", b"2.0\n"), ("control.tar.gz", control_tar), ("data.tar.xz", data_tar)])


def conda_info(name: str, version: str, files: list[tuple[str, bytes]]):
    index = json.dumps({"name": name, "version": version, "build": "h123_0", "license": "LicenseRef-NVIDIA-EULA",
                        "subdir": "linux-64"}).encode()
    about = json.dumps({"home": "https://developer.nvidia.com", "license": "LicenseRef-NVIDIA-EULA",
                        "summary": "test"}).encode()
    paths = json.dumps({"paths": [{"_path": p, "sha256": hashlib.sha256(d).hexdigest()} for p, d in files],
                        "paths_version": 1}).encode()
    return [("info/index.json", index), ("info/about.json", about), ("info/paths.json", paths),
            ("info/licenses/LICENSE.txt", b"NVIDIA EULA\n")]


def conda_v2_bytes(name: str = "cuda-kern", version: str = "13.0.88") -> bytes:
    files = [("lib/libkern.so", LIB)]
    stem = f"{name}-{version}-h123_0"
    return zip_bytes([("metadata.json", b'{"conda_pkg_format_version": 2}'),
                      (f"info-{stem}.tar.zst", tar_bytes(conda_info(name, version, files), "zst")),
                      (f"pkg-{stem}.tar.zst", tar_bytes(files, "zst"))], method=zipfile.ZIP_STORED)


def conda_v1_bytes(name: str = "cuda-kern", version: str = "13.0.88") -> bytes:
    files = [("lib/libkern.so", LIB)]
    return tar_bytes(conda_info(name, version, files) + files, "bz2")


# ------------------------------------------------------------------------------------------------------ images
LOWER = [("usr/", ("dir",)), ("usr/lib/", ("dir",)), ("usr/lib/libkern.so", LIB), ("usr/lib/libgone.so", LIB),
         ("opt/", ("dir",)), ("opt/old/kern.fatbin", FATBIN)]
UPPER = [("usr/lib/.wh.libgone.so", b""), ("opt/.wh..wh..opq", b""), ("app/exe_multi", EXE)]


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def oci_files(gzip_layers: bool = True) -> tuple[dict[str, bytes], list[str]]:
    """The files of an OCI layout with two layers (the upper one deletes usr/lib/libgone.so and hides opt/);
    returns (path -> bytes, [lower digest, upper digest])."""
    layers = [_blob(tar_bytes(LOWER, "gz" if gzip_layers else None)), _blob(tar_bytes(UPPER, None))]
    config = _blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                                                                  "diff_ids": []}}).encode())
    manifest = _blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config[0],
                   "size": len(config[1])},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": len(b)}
                   for d, b in layers]}).encode())
    index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                           "digest": manifest[0], "size": len(manifest[1])}]})
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index.encode()}
    for digest, data in (config, manifest, *layers):
        files["blobs/sha256/" + digest.split(":")[1]] = data
    return files, [layers[0][0], layers[1][0]]


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def oci_tar_bytes() -> tuple[bytes, list[str]]:
    files, digests = oci_files()
    return tar_bytes(sorted(files.items())), digests


def docker_save_bytes() -> bytes:
    lower, upper = tar_bytes(LOWER), tar_bytes(UPPER)
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["demo:1"],
                            "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]).encode()
    return tar_bytes([("aaa/", ("dir",)), ("aaa/layer.tar", lower), ("aaa/VERSION", b"1.0"), ("bbb/", ("dir",)),
                      ("bbb/layer.tar", upper), ("config.json", b"{}"), ("manifest.json", manifest)])


def tree_digest(root: Path) -> str:
    """A digest of every name, type, mode and content under ``root`` (links not followed, FIFOs not opened)."""
    h = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]):
            path = os.path.join(folder, name)
            st = os.lstat(path)
            h.update(f"{os.path.relpath(path, root)}:{st.st_mode:o}:{st.st_size}:{st.st_mtime_ns}".encode())
            if os.path.islink(path):
                h.update(os.readlink(path).encode())
            elif os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    h.update(hashlib.sha256(handle.read()).digest())
    return h.hexdigest()


class SequentialStream:
    """A compressed tar stream as tarfile's ``r|`` reads it (the model test_inflow.py and test_unzstd.py compare the
    read-ahead decompressors with): the decompressor read in 10240-byte blocks, each when a byte of it is first
    needed, each charged then; ``packed`` the compressed count after the last block read."""

    def __init__(self, blob: bytes, kind: ArchiveKind, tally: Tally) -> None:
        self.raw = compressed.CountingReader(WindowStream(blob))
        self.stream = compressed.CountingReader(compressed.open_stream(kind, self.raw), on_read=tally.charge)
        self.buf = b""
        self.packed = 0

    def read(self, size: int) -> bytes:
        while len(self.buf) < size:
            block = self.stream.read(tarfile.RECORDSIZE)  # 10240
            if not block:
                break
            self.packed = self.raw.count
            self.buf += block
        out, self.buf = self.buf[:size], self.buf[size:]
        return out
