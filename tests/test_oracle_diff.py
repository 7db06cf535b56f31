"""Differential test: ``licscan inspect`` against ``cuobjdump -all -lelf -lptx`` / ``-xelf all -xptx all``.

For every fixture whose manifest oracle is ``cuobjdump13`` (every file under tests/fixtures/{cuda13,
cuda112,oldtk} if there is no manifest):

* the sequence of (archive member, kind, arch) that licscan reports equals cuobjdump's, entry for entry;
* every LZ4/zstd entry's ``sha256`` equals the SHA-256 of the file cuobjdump extracts for it.

cuobjdump writes the exact ELF image and the PTX text without its NUL terminator (see tests/oracle.py).
The subprocesses for all fixtures run in a small thread pool on first use, so the whole module takes a few
seconds rather than (fixtures x 3 process starts) in sequence.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import oracle
import pytest

FILES: list[Path] = oracle.fixture_files("cuobjdump13")
COMPRESSED = ("lz4", "zstd")


def _ids(p: Path) -> str:
    try:
        return str(p.relative_to(oracle.FIXTURES))
    except ValueError:
        return str(p)


class _Results:
    """Run licscan and both cuobjdump passes for every fixture, in parallel, once per session."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._futs: dict[str, dict[str, Future]] = {}

    def _start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
        for p in FILES:
            s = str(p)
            self._futs[s] = {
                "licscan": self._pool.submit(oracle.run_inspect, s, "--hash"),
                "listing": self._pool.submit(oracle.oracle_listing, s),
                "extract": self._pool.submit(oracle.oracle_extract, s),
            }

    def get(self, path: Path, what: str):
        if oracle.find_cuobjdump() is None:
            pytest.skip("cuobjdump 13.x not installed (pip install nvidia-cuda-cuobjdump)")
        if not oracle.licscan_available():
            pytest.skip("licscan package (licscan/cli/) not present")
        if self._pool is None:
            self._start()
        try:
            return self._futs[str(path)][what].result()
        except (AssertionError, oracle.OracleError) as exc:
            pytest.fail(f"{_ids(path)}: {exc}", pytrace=False)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def results():
    r = _Results()
    yield r
    r.close()


def _fmt(entries) -> str:
    return "\n".join(f"  [{i}] {e.member or '-'} {e.kind} {e.arch}" for i, e in enumerate(entries))


def _first_diff(a, b) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


params = [pytest.param(p, id=_ids(p)) for p in FILES] or [
    pytest.param(None, marks=pytest.mark.skip(reason="no fixtures with oracle cuobjdump13 found"), id="none")
]


@pytest.mark.parametrize("path", params)
def test_listing_matches_cuobjdump(path, results):
    expected = results.get(path, "listing")
    report = results.get(path, "licscan")
    got = oracle.licscan_listing(report, str(path))
    if got != expected:
        i = _first_diff(got, expected)
        lo = max(0, i - 3)
        pytest.fail(
            f"{_ids(path)}: licscan lists {len(got)} entries, cuobjdump {len(expected)}; "
            f"first difference at index {i}\n"
            f"cuobjdump[{lo}:{i + 4}]:\n{_fmt(expected[lo:i + 4])}\n"
            f"licscan[{lo}:{i + 4}]:\n{_fmt(got[lo:i + 4])}",
            pytrace=False,
        )


@pytest.mark.parametrize("path", params)
def test_compressed_payloads_match_cuobjdump(path, results):
    expected = results.get(path, "listing")
    extracted = results.get(path, "extract")
    assert [x.entry for x in extracted] == expected, "cuobjdump -xelf/-xptx order differs from -lelf/-lptx"
    report = results.get(path, "licscan")
    dcs = report["device_code"]
    if oracle.licscan_listing(report, str(path)) != expected:
        pytest.fail(f"{_ids(path)}: listings differ (see test_listing_matches_cuobjdump); "
                    "cannot pair payloads", pytrace=False)
    bad = []
    for i, (dc, ex) in enumerate(zip(dcs, extracted)):
        if dc.get("compression") not in COMPRESSED:
            continue
        if dc.get("sha256") != ex.sha256:
            bad.append(f"  [{i}] {dc['path']} {dc['kind']} {dc['arch']} {dc['compression']}: "
                       f"licscan sha256={dc.get('sha256')} uncompressed_size={dc.get('uncompressed_size')}; "
                       f"cuobjdump {ex.name} sha256={ex.sha256} size={ex.size}")
    if bad:
        pytest.fail(f"{_ids(path)}: {len(bad)} compressed payload(s) differ from cuobjdump's:\n"
                    + "\n".join(bad), pytrace=False)


def test_corpus_exercises_both_compressions(results):
    """Guard against a vacuous pass: the oracle corpus must hold LZ4 and zstd entries."""
    if not FILES:
        pytest.skip("no fixtures with oracle cuobjdump13 found")
    seen = set()
    for p in FILES:
        seen.update(dc.get("compression") for dc in results.get(p, "licscan")["device_code"])
    assert {"lz4", "zstd"} <= seen, f"compressions seen in the oracle corpus: {sorted(map(str, seen))}"


def test_parse_listing_shapes():
    """The listing parser on the output shapes cuobjdump 13.5 prints (no cuobjdump needed)."""
    text = (
        "\nmember /x/lib.a:a.o:\nELF file    1: lib.1.sm_80.cubin\nPTX file    1: lib.1.sm_100f.ptx\n"
        "\nmember /x/lib.a:tmpxft_00001_00000000-1_rdc_kern.o:\nELF file    2: lib.2.sm_90a.cubin\n"
    )
    E = oracle.Entry
    assert oracle.parse_listing(text, "/x/lib.a") == [
        E("a.o", "cubin", "sm_80"), E("a.o", "ptx", "sm_100f"),
        E("tmpxft_00001_00000000-1_rdc_kern.o", "cubin", "sm_90a"),
    ]
    assert oracle.parse_listing("ELF file    1: kern_sm80.sm_80.cubin\n", "/k/kern_sm80.cubin") == [
        E(None, "cubin", "sm_80")]
    assert oracle.parse_listing("Extracting PTX file and ptxas options    3: a.b.3.sm_75.ptx -arch=sm_75 \n",
                                "/a.b.fatbin") == [E(None, "ptx", "sm_75")]
