"""Real-world check on ``torch/lib/libtorch_cuda.so`` from the PyPI torch 2.14.1 wheel (503 MB).

The file is fetched with ``pip download torch==2.14.1 --no-deps --only-binary=:all:`` into
``${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}`` and only that member is extracted (once).

Facts established independently of licscan (cuobjdump 13.5.37 + ``readelf -n`` on extracted cubins +
a separate fatbin walker): 2,975 ELF entries, no PTX, all zstd, all ABI v8 cubins whose
``.note.nv.tkinfo`` says ``ptxas`` ``Cuda compilation tools, release 13.0, V13.0.88``; archs
475 x {sm_75, sm_80, sm_86, sm_90, sm_100, sm_120}, 59 x sm_100a, 59 x sm_103f (listed ``sm_103`` by
``-lelf``), 4 x sm_90a, 1 x sm_89, sm_120a, sm_121a.
"""
from __future__ import annotations

import collections
import os
import re
import subprocess

import oracle
import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld

EXPECTED_TOOLKITS = {"13.0.88"}


@pytest.fixture(scope="module")
def torch_lib(request):
    if oracle.find_cuobjdump() is None:
        pytest.skip("cuobjdump 13.x not installed (pip install nvidia-cuda-cuobjdump)")
    path = oracle.torch_cuda_lib(download=realworld_enabled(request.config))
    if path is None:
        pytest.skip("libtorch_cuda.so not cached; set LICSCAN_REALWORLD=1 or run with -m realworld to fetch it")
    return str(path)


@pytest.fixture(scope="module")
def report(torch_lib):
    if not oracle.licscan_available():
        pytest.skip("licscan package (licscan/cli/) not present")
    return oracle.run_inspect(torch_lib, "--hash")


@pytest.fixture(scope="module")
def expected(torch_lib):
    return oracle.oracle_listing(torch_lib)


def test_oracle_facts(expected):
    # what cuobjdump 13.5.37 says about this file (guards against a different wheel build)
    assert len(expected) == 2975
    assert {e.kind for e in expected} == {"cubin"}
    assert all(e.member is None for e in expected)
    counts = collections.Counter(e.arch for e in expected)
    assert counts["sm_103"] == 59 and "sm_103f" not in counts


def test_listing_matches_cuobjdump(torch_lib, report, expected):
    got = oracle.licscan_listing(report, torch_lib)
    assert len(got) == len(expected), f"licscan {len(got)} entries, cuobjdump {len(expected)}"
    diffs = [(i, g, e) for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert not diffs, f"{len(diffs)} entries differ, first: {diffs[:5]}"


def test_format_and_containers(report):
    assert report["schema"] == "licscan-inspect/1"
    assert report["format"] == "elf"
    dcs = report["device_code"]
    assert {d["container"] for d in dcs} == {"nv_fatbin"}
    assert {d["compression"] for d in dcs} == {"zstd"}
    assert all(d["ptx_isa"] is None for d in dcs)
    f_entries = [d for d in dcs if d["arch_full"].endswith("f")]
    assert len(f_entries) == 59 and {d["arch_full"] for d in f_entries} == {"sm_103f"}


def _assert_exact_toolkits(report):
    dcs = report["device_code"]
    missing = [i for i, d in enumerate(dcs) if not d.get("toolkit") or not d["toolkit"].get("exact")]
    assert not missing, (f"{len(missing)} of {len(dcs)} images without toolkit.exact, e.g. indexes {missing[:10]}; "
                         f"remarks: {report.get('remarks')}")
    assert {d["toolkit"]["exact"] for d in dcs} == EXPECTED_TOOLKITS
    assert {d["toolkit"]["min"] for d in dcs} == {"13.0"}
    assert {d.get("producer") for d in dcs} == {"ptxas"}


def test_every_image_has_exact_toolkit(report):
    """The default invocation (here with --hash, which decompresses every image anyway) names the toolkit."""
    _assert_exact_toolkits(report)


def test_every_image_has_exact_toolkit_notes_always(torch_lib, report):
    _assert_exact_toolkits(oracle.run_inspect(torch_lib, "--notes", "always"))


@pytest.fixture(scope="module")
def sample(torch_lib, expected, tmp_path_factory):
    """A few zstd cubins (first, last, first sm_103f, first sm_100a) extracted by ``cuobjdump -xelf``."""
    stem = os.path.basename(torch_lib).rsplit(".", 1)[0]
    picks = sorted({0, len(expected) - 1,
                    next(i for i, e in enumerate(expected) if e.arch == "sm_103"),
                    next(i for i, e in enumerate(expected) if e.arch == "sm_100a")})
    # ELF numbering is 1-based and global (no PTX here); the trailing dot stops "1." matching "11."
    names = [f"{stem}.{i + 1}.{expected[i].arch}." for i in picks]
    out = tmp_path_factory.mktemp("torch-xelf")
    extracted = oracle.oracle_extract(torch_lib, select=names, outdir=str(out))
    assert [x.name.rsplit(".", 1)[0] + "." for x in extracted] == names
    return out, list(zip(picks, extracted))


def test_sample_payloads_byte_identical(report, sample):
    dcs = report["device_code"]
    for i, x in sample[1]:
        assert dcs[i]["sha256"] == x.sha256, (i, dcs[i]["arch"], dcs[i]["sha256"], x.sha256, x.size)
        assert dcs[i]["uncompressed_size"] == x.size, (i, dcs[i]["uncompressed_size"], x.size)


def test_tkinfo_independently(sample):
    """``readelf -n`` on the extracted cubins says ptxas V13.0.88 (independent of licscan)."""
    out, items = sample
    for _, x in items:
        try:
            notes = subprocess.run(["readelf", "-n", "-W", str(out / x.name)], capture_output=True,
                                   check=True).stdout
        except FileNotFoundError:
            pytest.skip("readelf not installed")
        desc = bytes.fromhex("".join(
            m.replace(" ", "") for m in re.findall(r"description data:\s*([0-9a-f ]+)", notes.decode())
        ))
        assert b"\x00ptxas\x00Cuda compilation tools, release 13.0, V13.0.88\x00" in desc, x.name


def test_default_listing_reads_only_headers_and_says_so(torch_lib):
    """Without --hash, auto mode skips the 5.4 GB of toolkit notes: ranges the fatbin entry headers prove, a remark
    saying so, no invented exact version, and only a few percent of the file read."""
    report = oracle.run_inspect(torch_lib)
    dcs = report["device_code"]
    assert len(dcs) == 2975 and not report["diagnostics"]
    assert all(d["toolkit"]["exact"] is None and d["toolkit"]["max"] is None for d in dcs)
    mins = collections.Counter((d["arch_full"], d["toolkit"]["min"]) for d in dcs)
    assert mins[("sm_75", "13.0")] == 475 and mins[("sm_100", "12.8")] == 475 and mins[("sm_103f", "12.9")] == 59
    assert len(report["remarks"]) == 1 and "2975 compressed cubins" in report["remarks"][0]
    assert report["bytes_read"] < report["size"] // 20


def test_time_budget_in_the_parallel_decode(torch_lib):
    """--notes always on two worker processes with a budget of 0.5 s: the workers inherit the file's budget, the
    cubins decoded in time keep their exact toolkit, the others are listed from their entry headers, and a limit
    diagnostic counts exactly those -- or, on a machine fast enough to decode all 2,975 in time, there is none. How
    many are cut depends on the machine's speed; the accounting does not, and both outcomes are checked exactly."""
    report = oracle.run_inspect(torch_lib, "--notes", "always", "--jobs", "2", "--max-file-seconds", "0.5", check=False)
    dcs = report["device_code"]
    assert len(dcs) == 2975
    exact = [d for d in dcs if d["toolkit"]["exact"] == "13.0.88"]
    header_only = [d for d in dcs if d["tool"] is None]
    assert len(exact) + len(header_only) == 2975
    assert all(d["toolkit"]["exact"] is None and d["toolkit"]["min"] in ("12.8", "12.9", "13.0") for d in header_only)
    notes = [d["message"] for d in report["diagnostics"] if d["kind"] == "limit" and "toolkit notes" in d["message"]]
    if header_only:
        assert len(notes) == 1
        assert f"the toolkit notes of {len(header_only)} compressed cubins were not read" in notes[0]
    else:
        assert notes == []
