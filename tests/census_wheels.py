"""The census of popular CUDA-bearing wheels (issue 15): pins, download, and cuobjdump per file.

Used by ``tests/test_census.py``, ``tests/test_pe_coff.py`` and ``benchmarks/bench_census.py``. Nothing here imports
licscan: the ar, PE and COFF section tables are read with ``struct`` from Microsoft's "PE Format" specification, so
that cuobjdump (which on Linux reads ELF, ``ar`` of ELF objects, cubins and fatbins) can be given the fatbin
sections of Windows files cut out of them.

Wheels are fetched with ``pip download --no-deps --only-binary=:all:`` (for a pinned platform) into
``${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}`` and kept there between runs.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import oracle

LINUX = "linux"
WINDOWS = "win_amd64"
_PLATFORM_ARGS = {
    LINUX: ("--python-version", "3.12", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64",
            "--platform", "manylinux_2_25_x86_64", "--platform", "manylinux_2_24_x86_64",
            "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
            "--platform", "manylinux2010_x86_64", "--platform", "manylinux1_x86_64"),
    WINDOWS: ("--python-version", "3.12", "--platform", "win_amd64"),
}


class Pin(NamedTuple):
    dist: str  # PyPI name
    version: str
    platform: str  # LINUX or WINDOWS

    @property
    def label(self) -> str:
        return f"{self.dist}=={self.version} ({'Linux' if self.platform == LINUX else 'Windows'})"


class Unavailable(RuntimeError):
    """The wheel is not cached and could not (or may not) be downloaded."""


def built_for(pin: Pin, name: str) -> bool:
    """Whether wheel file ``name`` is ``pin``'s distribution and version built for its platform (x86-64 Linux or
    Windows): the test cache holds the wheels of every platform side by side."""
    stem = f"{re.sub(r'[-_.]+', '_', pin.dist)}-{pin.version}-"
    if not name.lower().startswith(stem.lower()) or not name.endswith(".whl"):
        return False
    tags = name[:-4].split("-")[-1]
    return "win_amd64" in tags if pin.platform == WINDOWS else ("win" not in tags and "macosx" not in tags
                                                                 and "aarch64" not in tags)


def cached(pin: Pin) -> Path | None:
    found = sorted(p for p in oracle.cache_dir().glob("*.whl") if built_for(pin, p.name))
    return found[0] if found else None


def fetch(pin: Pin, download: bool = True) -> Path:
    """The wheel of ``pin`` in the cache dir, downloaded on first use (the machine's pip constraints do not apply:
    the pin is exact)."""
    path = cached(pin)
    if path is not None:
        return path
    if not download:
        raise Unavailable(f"{pin.label} is not cached (LICSCAN_REALWORLD=1 downloads it)")
    env = dict(os.environ, PIP_CONSTRAINT=os.devnull)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *_PLATFORM_ARGS[pin.platform],
         "--retries", "2", "--timeout", "60", "--disable-pip-version-check", "-d", str(oracle.cache_dir()),
         f"{pin.dist}=={pin.version}"], capture_output=True, text=True, env=env)
    path = cached(pin)
    if proc.returncode != 0 or path is None:
        raise Unavailable(f"pip download {pin.dist}=={pin.version} ({pin.platform}) failed: "
                          f"{proc.stderr.strip()[-800:]}")
    return path


# ---------------------------------------------------------------------------------------------------------------
# independent readers: ar members, PE / COFF section tables

def ar_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the ordinary members of a System V / GNU / Microsoft archive."""
    assert data[:8] == b"!<arch>\n"
    pos, longnames = 8, b""
    while pos + 60 <= len(data):
        name = data[pos:pos + 16].rstrip(b" ")
        size = int(data[pos + 48:pos + 58].strip() or b"0")
        body = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name in (b"/", b"/SYM64/"):
            continue
        if name == b"//":
            longnames = body
            continue
        if name.startswith(b"/") and name[1:].isdigit():
            start = int(name[1:])
            end = min(x for x in (longnames.find(b"/\n", start), longnames.find(b"\0", start), len(longnames))
                      if x >= 0)
            name = longnames[start:end]
        elif name.endswith(b"/"):
            name = name[:-1]
        yield name.decode("latin-1"), body


def coff_sections(data: bytes, base: int = 0) -> list[tuple[str, int, int]]:
    """(name, offset, size) of the sections of a PE image (base 0, ``MZ``) or a COFF object (plain or /bigobj)."""
    if data[:2] == b"MZ":
        pe, = struct.unpack_from("<I", data, 0x3C)
        header = pe + 4
    else:
        header = 0
    if data[header:header + 4] == b"\0\0\xff\xff":  # ANON_OBJECT_HEADER_BIGOBJ
        count, symtab, nsyms = struct.unpack_from("<III", data, header + 44)
        table, record = header + 56, 20
    else:
        count, = struct.unpack_from("<H", data, header + 2)
        symtab, nsyms, optsize = struct.unpack_from("<IIH", data, header + 8)
        table, record = header + 20 + optsize, 18
    strings = symtab + nsyms * record
    out = []
    for i in range(count):
        raw, _vs, _va, size, offset = struct.unpack_from("<8sIIII", data, table + 40 * i)
        name = raw.rstrip(b"\0").decode("latin-1")
        if name.startswith("/") and name[1:].isdigit() and symtab:
            at = strings + int(name[1:])
            name = data[at:data.index(b"\0", at)].decode("latin-1")
        out.append((name, offset, size))
    return out


FATBIN_SECTIONS = {".nv_fatbin", "__nv_relfatbin", ".nv_fatb", "__nv_rel"}
_OUTER = struct.Struct("<IHHQ")  # fatbin header: magic 0xBA55ED50, version, header size, payload size
_SM3X = "Support for 'sm_3"


class Oracle(NamedTuple):
    """What the oracle says about one file: (kind, arch) per image, and how it was asked."""

    images: list[tuple[str, str]]
    how: str  # "cuobjdump", "cuobjdump (sections cut)", "walker (cuobjdump 13 refuses sm_3x)"


def _cuobjdump(data: bytes, suffix: str) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="licscan-census-") as tmp:
        path = os.path.join(tmp, "input" + suffix)
        with open(path, "wb") as out:
            out.write(data)
        return [(e.kind, e.arch) for e in oracle.oracle_listing(path)]


def elf_sections(data: bytes) -> list[tuple[str, int, int]]:
    """(name, offset, size) of the sections of a little-endian ELF64 file that have bytes (not SHT_NOBITS)."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]
    out = []
    for name, kind, _flags, _addr, offset, size in headers:
        if kind != 8:  # SHT_NOBITS
            out.append((data[strtab + name:data.index(b"\0", strtab + name)].decode("latin-1"), offset, size))
    return out


def _fatbins(blob: bytes) -> Iterator[bytes]:
    """Each fatbin of a fatbin section, cut out on its own (a section holds one per translation unit, padded)."""
    import nvidia_wheels

    for offset, _entries in nvidia_wheels.walk(blob):
        _magic, _version, header, size = _OUTER.unpack_from(blob, offset)
        yield blob[offset:offset + header + size]


def _cut_listing(data: bytes, sections: list[tuple[str, int, int]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, offset, size in sections:
        if name in FATBIN_SECTIONS and size:
            for fatbin in _fatbins(data[offset:offset + size]):
                out.extend(_cuobjdump(fatbin, ".fatbin"))
    return out


def _walker_listing(data: bytes, sections: list[tuple[str, int, int]]) -> list[tuple[str, str]]:
    import nvidia_wheels

    out: list[tuple[str, str]] = []
    for name, offset, size in sections:
        if name in FATBIN_SECTIONS and size:
            for _fatbin, entries in nvidia_wheels.walk(data[offset:offset + size]):
                out.extend((e.kind, e.arch) for e in entries)
    return out


def cuobjdump_listing(name: str, data: bytes) -> Oracle:
    """(kind, arch) of every image cuobjdump lists for one file. cuobjdump reads ELF files and archives of them
    whole; PE images and COFF objects (also inside ``.lib`` archives) -- and ELF files it calls invalid -- are
    read by cutting each fatbin out of their fatbin sections. cuobjdump 13 refuses files with sm_3x images ("Support
    for 'sm_35' has been removed"): those are listed by the struct-based walker of tests/nvidia_wheels.py."""
    try:
        return _listing(data)
    except oracle.OracleError as error:
        if _SM3X in str(error):
            why = "walker (cuobjdump 13 refuses sm_3x)"
        elif "Invalid ELF in" in str(error):
            why = "walker (cuobjdump: 'Invalid ELF' in an image)"
        else:
            raise
    if data[:4] == b"\x7fELF":
        return Oracle(_walker_listing(data, elf_sections(data)), why)
    if data[:2] == b"MZ":
        return Oracle(_walker_listing(data, coff_sections(data)), why)
    raise oracle.OracleError(why)


def _listing(data: bytes) -> Oracle:
    if data[:4] == b"\x7fELF":
        try:
            return Oracle(_cuobjdump(data, ".so"), "cuobjdump")
        except oracle.OracleError as error:
            if "Invalid ELF" not in str(error):
                raise
            return Oracle(_cut_listing(data, elf_sections(data)), "cuobjdump (sections cut; whole file: Invalid ELF)")
    if data[:2] == b"MZ":
        return Oracle(_cut_listing(data, coff_sections(data)), "cuobjdump (sections cut)")
    if data[:8] == b"!<arch>\n":
        members = list(ar_members(data))
        if any(body[:4] == b"\x7fELF" for _, body in members):
            return Oracle(_cuobjdump(data, ".a"), "cuobjdump")
        out: list[tuple[str, str]] = []
        for _member_name, body in members:
            if _looks_coff(body):
                out.extend(_cut_listing(body, coff_sections(body)))
        return Oracle(out, "cuobjdump (sections cut)")
    if data[:4] == bytes.fromhex("50ed55ba"):
        return Oracle(_cuobjdump(data, ".fatbin"), "cuobjdump")
    return Oracle([], "not a binary")


def _looks_coff(body: bytes) -> bool:
    if len(body) < 20:
        return False
    machine, = struct.unpack_from("<H", body, 0)
    if machine in (0x8664, 0x14C, 0xAA64) and struct.unpack_from("<H", body, 16)[0] == 0:
        return True
    return body[:4] == b"\0\0\xff\xff" and struct.unpack_from("<H", body, 4)[0] >= 2


def cuobjdump_coff_listing(path: Path) -> list[tuple[str, str]]:
    return cuobjdump_listing(path.name, path.read_bytes()).images


def wheel_binaries(wheel: Path) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of every member of the wheel that may hold device code (ELF, PE, ar, fatbin)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            with zf.open(info) as handle:
                head = handle.read(8)
            if head[:4] == b"\x7fELF" or head[:2] == b"MZ" or head == b"!<arch>\n" or \
                    head[:4] == bytes.fromhex("50ed55ba"):
                yield info.filename, zf.read(info)


def largest_binary(wheel: Path) -> tuple[str, int]:
    with zipfile.ZipFile(wheel) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        best = None
        for info in sorted(infos, key=lambda i: -i.file_size):
            with zf.open(info) as handle:
                head = handle.read(8)
            if head[:4] == b"\x7fELF" or head[:2] == b"MZ" or head == b"!<arch>\n":
                best = info
                break
        return (best.filename, best.file_size) if best else ("", 0)


def extract(wheel: Path, member: str) -> Path:
    """``member`` of ``wheel`` extracted once into the cache dir."""
    target = oracle.cache_dir() / "members" / wheel.name / member
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        with zipfile.ZipFile(wheel) as zf:
            tmp.write_bytes(zf.read(member))
        os.replace(tmp, target)
    return target


Listing = dict[str, list[tuple[str, str]]]


#: The census: popular CUDA-bearing wheels, NVIDIA's and third parties', Linux and Windows builds of one release
#: side by side; bitsandbytes-cuda110 was built with CUDA 11.0.
CENSUS: tuple[Pin, ...] = (
    Pin("nvidia-cuda-runtime-cu12", "12.9.79", LINUX),
    Pin("nvidia-cuda-runtime-cu12", "12.9.79", WINDOWS),
    Pin("nvidia-cuda-cupti-cu12", "12.9.79", LINUX),
    Pin("nvidia-cuda-cupti-cu12", "12.9.79", WINDOWS),
    Pin("nvidia-cuda-nvrtc-cu12", "12.9.86", LINUX),
    Pin("nvidia-cuda-nvrtc-cu12", "12.9.86", WINDOWS),
    Pin("nvidia-nvjpeg-cu12", "12.4.0.76", LINUX),
    Pin("nvidia-nvjpeg-cu12", "12.4.0.76", WINDOWS),
    Pin("nvidia-nvtx-cu12", "12.9.79", LINUX),
    Pin("nvidia-nvtx-cu12", "12.9.79", WINDOWS),
    Pin("nvidia-cuda-cupti-cu11", "11.7.101", LINUX),
    Pin("bitsandbytes", "0.50.2", LINUX),
    Pin("bitsandbytes", "0.50.2", WINDOWS),
    Pin("bitsandbytes-cuda110", "0.26.0.post2", LINUX),
    Pin("torchvision", "0.29.1", LINUX),
    Pin("torchaudio", "2.11.0", LINUX),
)


def wheel_or_skip(pytestconfig, dist: str, version: str, platform: str) -> Path:
    """The pinned wheel from the test cache, fetched from PyPI when the real-world tests are enabled; the calling test
    is skipped when it is unavailable."""
    return pin_or_skip(pytestconfig, Pin(dist, version, platform))


def pin_or_skip(pytestconfig, pin: Pin) -> Path:
    """:func:`wheel_or_skip` of a :class:`Pin`."""
    import pytest
    from conftest import realworld_enabled

    try:
        return fetch(pin, realworld_enabled(pytestconfig))
    except Unavailable as error:
        pytest.skip(str(error))


def member_or_skip(pytestconfig, pin: Pin, member: str) -> bytes:
    """The bytes of ``member`` of the pinned wheel (:func:`pin_or_skip`)."""
    with zipfile.ZipFile(pin_or_skip(pytestconfig, pin)) as zf:
        return zf.read(member)
