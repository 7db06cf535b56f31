#!/usr/bin/env python3
"""The facts floor of an audit (issue 14, benchmarks/bench_env.py): the least any complete audit of a tree must do --
read every byte of it once, and compute the SHA-256 of every file whose full hash a fact needs (a named part its
distribution's ``RECORD`` lists a digest for: the *-MODIFIED rules compare them) -- on every core.

    python benchmarks/facts_floor.py --list FILES          # time the floor over a list made by --make-list
    python benchmarks/facts_floor.py --make-list FILES TREE  # which files of TREE a fact needs hashed (one audit)

``--make-list`` scans the tree once with licscan (``--no-cache``) and writes one line per regular file: ``H`` and
its path when the scan computed its SHA-256 (the record has a digest), ``R`` and its path otherwise. ``--list``
does only the floor's work, on ``--jobs`` threads (default: every core; the files dealt out in advance, largest
first): each ``R`` file read with ``preadv`` into a 256 KiB buffer and dropped (as ``cat`` reads it, without the
pipe), each ``H`` file read with ``preadv`` into a 1 MiB buffer and fed to ``hashlib.sha256`` (OpenSSL, as licscan
hashes; ``preadv`` and hashing release the GIL).
No start-up of licscan, no walk beyond the list, no parsing: nothing but the reads and the digests.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading

READ_BLOCK = 256 << 10
HASH_BLOCK = 1 << 20


def make_list(out: str, tree: str) -> int:
    """Scan ``tree`` once (no cache) and write the list (module docstring); returns the number of hashed files."""
    from licscan.scan import ScanConfig, scan

    _, records = scan([tree], ScanConfig(cache_dir=None))
    hashed = {r.vpath for r in records if r.sha256 is not None and not r.containers}
    from licscan.inventory.names import display

    root = display(tree)
    lines = []
    for folder, _dirs, files in os.walk(tree):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            vpath = root + "/" + os.path.relpath(path, tree).replace(os.sep, "/")
            lines.append(f"{'H' if vpath in hashed else 'R'}\t{os.path.abspath(path)}\n")
    with open(out, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.writelines(lines)
    return sum(1 for line in lines if line.startswith("H"))


def floor(entries: list[tuple[bool, str]], jobs: int) -> None:
    """Read (and hash where marked) every file of ``entries``, on ``jobs`` threads: the files dealt out in advance,
    largest first, each to the thread with the least estimated work (a hashed byte counted as three read ones), so
    that no thread takes a task per file."""
    sized = sorted(((os.stat(path).st_size, hashed, path) for hashed, path in entries), reverse=True)
    shares: list[list[tuple[int, bool, str]]] = [[] for _ in range(max(1, jobs))]
    work = [0] * len(shares)
    for item in sized:
        least = work.index(min(work))
        shares[least].append(item)
        work[least] += item[0] * (3 if item[1] else 1) + 4096

    def run(share: list[tuple[int, bool, str]]) -> None:
        read = memoryview(bytearray(READ_BLOCK))
        hashed_view = memoryview(bytearray(HASH_BLOCK))
        for size, hashed, path in share:
            view = hashed_view if hashed else read
            digest = hashlib.sha256() if hashed else None
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                offset = 0
                while offset < size:
                    n = os.preadv(fd, [view], offset)
                    if n <= 0:
                        break
                    if digest is not None:
                        digest.update(view[:n])
                    offset += n
            finally:
                os.close(fd)

    threads = [threading.Thread(target=run, args=(share,)) for share in shares[1:]]
    for thread in threads:
        thread.start()
    run(shares[0])
    for thread in threads:
        thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", help="time the floor over this list")
    parser.add_argument("--make-list", nargs=2, metavar=("OUT", "TREE"), help="write the list for TREE to OUT")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.make_list:
        print(make_list(*args.make_list))
        return 0
    if not args.list:
        parser.error("--list or --make-list")
    with open(args.list, encoding="utf-8", errors="surrogateescape") as handle:
        entries = [(line[0] == "H", line[2:].rstrip("\n")) for line in handle if line.strip()]
    floor(entries, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
