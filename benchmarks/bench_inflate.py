#!/usr/bin/env python3
"""Inflate + CRC-32 of every deflated member of a wheel, one pass each, with each deflate available: the standard
library's zlib, zlib-ng (``zlib_ng``, licscan's pinned choice: licscan/inventory/inflate.py) and ISA-L (``isal``,
measured when installed). CPU seconds of this process, best of ``-n`` runs.

    python benchmarks/bench_inflate.py                      # the torch 2.14.1 wheel built by build_env.py
    python benchmarks/bench_inflate.py -n 3 some.whl
"""

from __future__ import annotations

import argparse
import importlib
import mmap
import struct
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_env

STEP = 256 << 10  # compressed bytes handed to the decompressor at once, as inflate.py does


def spans(buf: mmap.mmap, path: Path) -> list[tuple[int, int, int, int]]:
    """(data offset, compressed size, size, CRC-32) of every deflated member."""
    out = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.compress_type == zipfile.ZIP_DEFLATED:
                name_len, extra_len = struct.unpack_from("<HH", buf, info.header_offset + 26)
                out.append((info.header_offset + 30 + name_len + extra_len, info.compress_size, info.file_size,
                            info.CRC))
    return out


def run(module, buf: mmap.mmap, members: list[tuple[int, int, int, int]]) -> float:
    start = time.process_time()
    view = memoryview(buf)
    for offset, packed, size, crc in members:
        inflater = module.decompressobj(-15)
        produced = running = 0
        for pos in range(offset, offset + packed, STEP):
            data = inflater.decompress(view[pos : min(pos + STEP, offset + packed)])
            running = module.crc32(data, running)
            produced += len(data)
        if produced != size or running != crc:
            raise SystemExit(f"{module.__name__}: member at {offset} inflated wrong")
    view.release()
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", nargs="?", help="default: the torch 2.14.1 wheel of build_env.py")
    parser.add_argument("-n", type=int, default=3)
    args = parser.parse_args()
    path = Path(args.wheel) if args.wheel else build_env.wheel_of(build_env.root() / "wheels", "torch", "2.14.1")
    if path is None:
        raise SystemExit("no wheel: run benchmarks/build_env.py --wheels")
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        members = spans(buf, path)
        total = sum(m[2] for m in members)
        print(f"{path.name}: {len(members)} deflated members, {sum(m[1] for m in members) / 2**20:.0f} MiB -> "
              f"{total / 2**20:.0f} MiB")
        for name in ("zlib", "zlib_ng.zlib_ng", "isal.isal_zlib"):
            try:
                module = importlib.import_module(name)
            except ImportError:
                print(f"  {name:<16} not installed")
                continue
            best = min(run(module, buf, members) for _ in range(args.n))
            print(f"  {name:<16} {best:6.2f} s CPU  {total / best / 2**20:7.0f} MiB/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
