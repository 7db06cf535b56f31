"""Real-world checks on NVIDIA-built binaries (docs/binary-format.md §1.6, §2.4, §6, §9.4).

* CUPTI ``libcupti.so.11.7`` (nvidia-cuda-cupti-cu11 11.7.101), ``libcupti.so.12`` (nvidia-cuda-cupti-cu12
  12.4.127 and 12.8.90): three fatbins each, in ``.rodata`` only, so cuobjdump says "does not contain device
  code"; the oracle is the independent struct-based walker of ``tests/nvidia_wheels.py`` (docs/binary-format.md §1.7).
* ``nvjpeg64_12.dll`` (nvidia-nvjpeg-cu12 12.4.0.76, win_amd64 wheel): PE, 11 fatbins in ``.nv_fatb``;
  oracle = the walker over the section bytes (section table parsed by hand) + ``lz4.block.decompress``.
* ``libcudadevrt.a`` of the CUDA 13 toolkit installed on this machine (no download): cuobjdump 13.x.

The wheels are fetched with ``pip download --no-deps --only-binary=:all:`` into
``${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}`` (10-14 MB each) and only the needed member is extracted
(once); a failed download skips the test.  Once cached the module runs in a few seconds.

Facts established independently of licscan (walker + ELF notes):

=================  =======  =======  ==============================================================
file               fatbins  entries  contents
=================  =======  =======  ==============================================================
cupti 11.7.101     3 x 10   30       v7 cubins sm_35 50 60 62 70 72 75 80 86 87, e_version 117, 64-byte headers
cupti 12.4.127     3 x 11   33       v7 cubins sm_50 60 62 70 72 75 80 86 87 89 90, e_version 124, 72-byte headers
cupti 12.8.90      3 x 14   42       33 v7 (e_version 128) + 9 v8 sm_100/101/120 (flags 0x1000011, 3-byte compat
                                     blob, tkinfo ptxas V12.8.13)
nvjpeg 12.4.0.76   11       175      110 v7 sm_50..sm_90 e_version 129; 55 v8 sm_100/101/103/120/121 tkinfo
                   (15+10x16)        V12.9.79 (50 ptxas + 5 nvlink); 10 PTX ISA 8.8 sm_121; host 0x40; LZ4 on 160
=================  =======  =======  ==============================================================
"""
from __future__ import annotations

import collections
import glob
import os
import struct

import nvidia_wheels as nw
import oracle
import pytest

# ---------------------------------------------------------------------------------------------
# shared helpers

_REPORTS: dict[tuple[str, tuple[str, ...]], object] = {}


def _fetch(key: str) -> str:
    try:
        return str(nw.fetch(key))
    except nw.Unavailable as error:
        pytest.skip(str(error))


def _report(path: str, *extra: str) -> dict:
    """``licscan inspect PATH --format json [extra]``, run once per (path, options); a crash fails every test."""
    if not oracle.licscan_available():
        pytest.skip("licscan package (licscan/cli/) not present")
    key = (path, extra)
    if key not in _REPORTS:
        try:
            _REPORTS[key] = oracle.run_inspect(path, *extra)
        except AssertionError as error:
            _REPORTS[key] = error
    got = _REPORTS[key]
    if isinstance(got, AssertionError):
        pytest.fail(str(got), pytrace=False)
    return got


def _walk(data: bytes, start: int = 0, stop=None) -> tuple[list[int], list[nw.RawEntry]]:
    fatbins = list(nw.walk(data, start, stop))
    return [off for off, _ in fatbins], [e for _, es in fatbins for e in es]


def _release(e_version: int) -> str:
    return f"{e_version // 10}.{e_version % 10}"


def _tk_version(tk: dict) -> str:
    """'Cuda compilation tools, release 12.8, V12.8.13' -> '12.8.13'"""
    text = tk["version"]
    assert ", V" in text, text
    return text.rsplit(", V", 1)[1]


def _compare_entries(report: dict, given: str, entries: list[nw.RawEntry], container: str, host: str) -> None:
    """licscan's device_code equals the walker's entries, entry for entry."""
    dcs = report["device_code"]
    assert len(dcs) == len(entries), f"licscan {len(dcs)} device_code entries, walker {len(entries)}"
    diffs = []
    for i, (d, e) in enumerate(zip(dcs, entries)):
        want = {
            "path": given, "container": container, "kind": e.kind, "arch": e.arch, "arch_full": e.arch_full,
            "compression": e.compression, "host": host, "fatbin_offset": e.fatbin_offset, "entry_offset": e.offset,
            "size": e.payload_size, "uncompressed_size": e.uncompressed_size or None,
        }
        got = {k: d.get(k) for k in want}
        if got != want:
            diffs.append((i, {k: (got[k], want[k]) for k in want if got[k] != want[k]}))
    assert not diffs, f"{len(diffs)} entries differ (index, {{field: (licscan, walker)}}), first: {diffs[:5]}"


def _compare_hashes(report: dict, entries: list[nw.RawEntry]) -> None:
    dcs = report["device_code"]
    assert len(dcs) == len(entries)
    bad = [(i, d["kind"], d["arch"], d.get("sha256"), e.sha256())
           for i, (d, e) in enumerate(zip(dcs, entries)) if d.get("sha256") != e.sha256()]
    assert not bad, f"{len(bad)} sha256 differ (index, kind, arch, licscan, walker), first: {bad[:5]}"


def _compare_toolkits(report: dict, entries: list[nw.RawEntry]) -> collections.Counter:
    """Each cubin's toolkit is what its bytes say; returns a Counter of what was seen."""
    seen: collections.Counter = collections.Counter()
    bad = []
    for i, (d, e) in enumerate(zip(report["device_code"], entries)):
        tk = d.get("toolkit") or {}
        if e.kind == "ptx":
            seen[("ptx", e.code_version)] += 1
            want = {"ptx_isa": f"{e.code_version[0]}.{e.code_version[1]}"}
            got = {"ptx_isa": d.get("ptx_isa")}
        else:
            img = e.image()
            abi = nw.cubin_abi(img)
            if abi == 7:
                ev = nw.cubin_e_version(img)
                seen[("v7", ev)] += 1
                want = {"cubin_abi": 7, "min": _release(ev), "max": _release(ev), "exact": None}
                got = {"cubin_abi": d.get("cubin_abi"), "min": tk.get("min"), "max": tk.get("max"),
                       "exact": tk.get("exact")}
            else:
                note = nw.tkinfo(img)
                assert note is not None, f"entry {i}: ABI v{abi} cubin without .note.nv.tkinfo"
                exact = _tk_version(note)
                seen[("v8", note["tool"], exact)] += 1
                release = exact.rsplit(".", 1)[0]
                want = {"cubin_abi": abi, "min": release, "max": release, "exact": exact, "producer": note["tool"]}
                got = {"cubin_abi": d.get("cubin_abi"), "min": tk.get("min"), "max": tk.get("max"),
                       "exact": tk.get("exact"), "producer": d.get("producer")}
        if got != want:
            bad.append((i, d["arch"], got, want))
    assert not bad, f"{len(bad)} entries with a wrong toolkit (index, arch, licscan, bytes), first: {bad[:5]}"
    return seen


def _assert_clean(report: dict) -> None:
    assert report["diagnostics"] == [], report["diagnostics"]


def _cuobjdump_sees_nothing(path: str) -> None:
    if oracle.find_cuobjdump() is None:
        pytest.skip("cuobjdump 13.x not installed (pip install nvidia-cuda-cuobjdump)")
    assert oracle.oracle_listing(path) == []


# ---------------------------------------------------------------------------------------------
# 1. CUPTI: fatbins in .rodata

V7_ARCHS_117 = [35, 50, 60, 62, 70, 72, 75, 80, 86, 87]
V7_ARCHS_12 = [50, 60, 62, 70, 72, 75, 80, 86, 87, 89, 90]

CUPTI = {
    # key: (soname, entries per fatbin, arch order in each fatbin, e_version of the v7 cubins, v8 tkinfo version,
    #       entry header sizes)
    "cupti-11.7": ("libcupti.so.11.7", 10, V7_ARCHS_117, 117, None, {64}),
    "cupti-12.4": ("libcupti.so.12", 11, V7_ARCHS_12, 124, None, {72}),
    "cupti-12.8": ("libcupti.so.12", 14, V7_ARCHS_12 + [100, 101, 120], 128, "12.8.13", {64, 80}),
}


@pytest.fixture(scope="module", params=sorted(CUPTI))
def cupti(request):
    key = request.param
    path = _fetch(key)
    data = open(path, "rb").read()
    offsets, entries = _walk(data)
    return key, path, data, offsets, entries


@pytest.mark.realworld
def test_cupti_walker_facts(cupti):
    """What the bytes say, independent of licscan (guards against a different wheel build)."""
    key, path, data, offsets, entries = cupti
    soname, per_fatbin, archs, ev, v8, header_sizes = CUPTI[key]
    assert nw.elf_soname(data) == soname
    assert len(offsets) == 3
    ro_off, ro_size = nw.elf_sections(data)[".rodata"]
    for off, (_, fat_size) in zip(offsets, (struct.unpack_from("<QQ", data, o) for o in offsets)):
        assert ro_off <= off and off + 16 + fat_size <= ro_off + ro_size, f"fatbin at {off:#x} outside .rodata"
    assert [e.sm for e in entries] == archs * 3
    assert len(entries) == 3 * per_fatbin
    assert {e.kind for e in entries} == {"cubin"}
    assert {e.compression for e in entries} == {"none"}
    assert {e.host for e in entries} == {"linux"}
    assert {e.header_size for e in entries} == header_sizes
    assert {e.arch_full for e in entries} == {f"sm_{a}" for a in archs}  # no a/f targets
    for e in entries:
        img = e.image()
        if e.sm < 100:
            assert (e.code_version, nw.cubin_abi(img), nw.cubin_e_version(img), e.flags) == ((1, 7), 7, ev, 0x11)
            assert e.extra is None
        else:
            assert (e.code_version, nw.cubin_abi(img), e.flags) == ((1, 8), 8, 0x1000011)
            assert _tk_version(nw.tkinfo(img)) == v8
            assert e.extra in (b"\x01\x00\x05", b"\x02\x00\x05"), e.extra  # the 3-byte compat blob
            if e.sm in (100, 101):
                assert e.extra == b"\x01\x00\x05"


@pytest.mark.realworld
def test_cupti_cuobjdump_sees_no_device_code(cupti):
    _cuobjdump_sees_nothing(cupti[1])


@pytest.mark.realworld
def test_cupti_elf_facts(cupti):
    key, path, *_ = cupti
    report = _report(path)
    _assert_clean(report)
    assert report["format"] == "elf"
    assert report["elf"]["soname"] == CUPTI[key][0]
    assert report["elf"]["elf_type"] in ("ET_DYN", "DYN")
    assert ".rodata" in report["elf"]["sections"]


@pytest.mark.realworld
def test_cupti_device_code_matches_walker(cupti):
    _, path, _, _, entries = cupti
    report = _report(path)
    _compare_entries(report, path, entries, container="rodata", host="linux")


@pytest.mark.realworld
def test_cupti_toolkit_from_bytes(cupti):
    key, path, _, _, entries = cupti
    seen = _compare_toolkits(_report(path), entries)
    ev, v8 = CUPTI[key][3], CUPTI[key][4]
    expected = {("v7", ev): len(CUPTI[key][2]) * 3 - (9 if v8 else 0)}
    if v8:
        expected[("v8", "ptxas", v8)] = 9
    assert dict(seen) == expected


@pytest.mark.realworld
def test_cupti_hashes(cupti):
    _, path, _, _, entries = cupti
    _compare_hashes(_report(path, "--hash"), entries)


# ---------------------------------------------------------------------------------------------
# 2. PE: nvjpeg64_12.dll


@pytest.fixture(scope="module")
def nvjpeg():
    path = _fetch("nvjpeg-12.4-win")
    data = open(path, "rb").read()
    sections = {s.name: s for s in nw.pe_sections(data)}
    fatb = sections[".nv_fatb"]
    offsets, entries = _walk(data, fatb.raw_offset, fatb.raw_offset + min(fatb.raw_size, fatb.virtual_size))
    return path, data, sections, offsets, entries


@pytest.mark.realworld
def test_nvjpeg_walker_facts(nvjpeg):
    """docs/binary-format.md §2.4, re-derived from the bytes (section table by hand, walker, lz4, ELF notes)."""
    path, data, sections, offsets, entries = nvjpeg
    assert {".nv_fatb", ".nvFatBi"} <= set(sections)
    assert len(offsets) == 11 and all(off % 8 == 0 for off in offsets)
    assert len(entries) == 175
    # nothing outside .nv_fatb
    assert _walk(data)[1] == entries
    assert {e.host for e in entries} == {"windows"}
    assert sum(e.compression == "lz4" for e in entries) == 160
    assert {e.compression for e in entries} == {"lz4", "none"}
    v7, v8, ptx = collections.Counter(), collections.Counter(), collections.Counter()
    for e in entries:
        if e.kind == "ptx":
            ptx[(e.arch_full, e.code_version)] += 1
            assert e.image().lstrip().startswith(b"//") and b"\n.version 8.8\n" in e.image()
            continue
        img = e.image()
        assert len(img) == (e.uncompressed_size or len(img))
        if nw.cubin_abi(img) == 7:
            v7[(e.arch_full, nw.cubin_e_version(img))] += 1
        else:
            note = nw.tkinfo(img)
            v8[(e.arch_full, note["tool"], _tk_version(note))] += 1
    assert sum(v7.values()) == 110
    assert {a for a, _ in v7} == {f"sm_{a}" for a in (50, 52, 60, 61, 70, 75, 80, 86, 89, 90)}
    assert {ev for _, ev in v7} == {129}
    assert sum(v8.values()) == 55
    assert {a for a, _, _ in v8} == {"sm_100", "sm_101", "sm_103", "sm_120", "sm_121"}
    assert {v for _, _, v in v8} == {"12.9.79"}
    assert collections.Counter(t for _, t, _ in v8.elements()) == {"ptxas": 50, "nvlink": 5}
    assert ptx == {("sm_121", (8, 8)): 10}


@pytest.mark.realworld
def test_nvjpeg_cuobjdump_sees_no_device_code(nvjpeg):
    _cuobjdump_sees_nothing(nvjpeg[0])


@pytest.mark.realworld
def test_nvjpeg_inspect(nvjpeg):
    path, _, _, _, entries = nvjpeg
    report = _report(path)
    _assert_clean(report)
    assert report["format"] == "pe"
    dcs = report["device_code"]
    assert len(dcs) == 175
    assert {d["container"] for d in dcs} == {"nv_fatbin"}
    assert {d["host"] for d in dcs} == {"windows"}
    assert sum(d["compression"] == "lz4" for d in dcs) == 160
    assert collections.Counter(d["kind"] for d in dcs) == {"cubin": 165, "ptx": 10}


@pytest.mark.realworld
def test_nvjpeg_device_code_matches_walker(nvjpeg):
    path, _, _, _, entries = nvjpeg
    _compare_entries(_report(path), path, entries, container="nv_fatbin", host="windows")


@pytest.mark.realworld
def test_nvjpeg_toolkit_from_bytes(nvjpeg):
    path, _, _, _, entries = nvjpeg
    report = _report(path)
    seen = _compare_toolkits(report, entries)
    assert seen == {("v7", 129): 110, ("v8", "ptxas", "12.9.79"): 50, ("v8", "nvlink", "12.9.79"): 5,
                    ("ptx", (8, 8)): 10}
    # PTX ISA 8.8 is CUDA 12.9 (docs/binary-format.md §5.2)
    assert {(d["toolkit"] or {}).get("min") for d in report["device_code"] if d["kind"] == "ptx"} == {"12.9"}


@pytest.mark.realworld
def test_nvjpeg_hashes(nvjpeg):
    """--hash: LZ4 payloads hashed after lz4.block.decompress, ELF cut at its extent, PTX up to the first NUL."""
    path, _, _, _, entries = nvjpeg
    _compare_hashes(_report(path, "--hash"), entries)


# ---------------------------------------------------------------------------------------------
# 3. libcudadevrt.a of the local CUDA 13 toolkit (no download)


def _cudadevrt() -> str:
    candidates = ["/usr/local/cuda/lib64/libcudadevrt.a"]
    candidates += sorted(glob.glob("/usr/local/cuda-13*/targets/*/lib/libcudadevrt.a"), reverse=True)
    candidates += sorted(glob.glob("/usr/local/cuda-13*/lib64/libcudadevrt.a"), reverse=True)
    for cand in candidates:
        if os.path.isfile(cand):
            real = os.path.realpath(cand)
            if "/cuda-13" in real or cand.startswith("/usr/local/cuda-13"):
                return cand
    pytest.skip("libcudadevrt.a of a CUDA 13 toolkit not installed under /usr/local")


@pytest.fixture(scope="module")
def cudadevrt():
    path = _cudadevrt()
    if oracle.find_cuobjdump() is None:
        pytest.skip("cuobjdump 13.x not installed (pip install nvidia-cuda-cuobjdump)")
    return path


def test_cudadevrt_listing_matches_cuobjdump(cudadevrt):
    expected = oracle.oracle_listing(cudadevrt)
    assert expected, "cuobjdump lists no device code"
    assert {e.member for e in expected} == {"cuda_device_runtime.o"}
    report = _report(cudadevrt)
    _assert_clean(report)
    assert report["format"] == "ar"
    got = oracle.licscan_listing(report, cudadevrt)
    assert len(got) == len(expected), f"licscan {len(got)} entries, cuobjdump {len(expected)}"
    diffs = [(i, g, e) for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert not diffs, f"{len(diffs)} entries differ (index, licscan, cuobjdump), first: {diffs[:5]}"
    assert {d["container"] for d in report["device_code"]} == {"relfatbin"}


def test_cudadevrt_hashes_match_cuobjdump(cudadevrt):
    extracted = oracle.oracle_extract(cudadevrt)
    dcs = _report(cudadevrt, "--hash")["device_code"]
    assert [(d["kind"], d["arch"]) for d in dcs] == [(x.entry.kind, x.entry.arch) for x in extracted]
    bad = [(i, d["arch"], d["sha256"], x.sha256) for i, (d, x) in enumerate(zip(dcs, extracted))
           if d["sha256"] != x.sha256]
    assert not bad, f"sha256 differ (index, arch, licscan, cuobjdump): {bad}"


def test_cudadevrt_toolkit_from_bytes(cudadevrt):
    """Independent walker over the archive bytes: same entries, and each cubin's toolkit is its tkinfo."""
    data = open(cudadevrt, "rb").read()
    _, entries = _walk(data)
    report = _report(cudadevrt)
    assert [(d["kind"], d["arch"], d["compression"]) for d in report["device_code"]] == \
        [(e.kind, e.arch, e.compression) for e in entries]
    seen = _compare_toolkits(report, entries)
    v8 = {k for k in seen if k[0] == "v8"}
    assert v8 and all(tool == "ptxas" and ver.startswith("13.") for _, tool, ver in v8), seen
    ptx_isas = {d["ptx_isa"] for d in report["device_code"] if d["kind"] == "ptx"}
    assert all(isa.startswith("9.") for isa in ptx_isas), ptx_isas
