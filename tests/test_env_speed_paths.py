"""The shortcuts an installed environment's audit takes (issue 14) give what the plain ways give: RECORD hashes
decoded without base64's per-call set-up, rule facts built without the frozen ``__init__``, the translation-layer
signals asked content first (corroborating ones only when a content signal fired)."""

from __future__ import annotations

import base64
import hashlib
import itertools

import pytest

from licscan.identify import signals
from licscan.inventory import names
from licscan.inventory.metadata import record_rows
from licscan.model import ToolkitRange
from licscan.rules.fact import Fact

_PARTS = ["a", "b.py", ".", "..", "", ".hidden", "x..y", "torch", "lib", "!", "c d"]


@pytest.mark.parametrize("base", ["site-packages", "dist/x.whl!/", "a/b", "/abs/site-packages", "w.whl!/pkg"])
def test_record_rows_are_the_joined_normalized_paths(base):
    rows = ["/".join(p) for n in (1, 2, 3) for p in itertools.product(_PARTS, repeat=n)]
    rows += ["/etc/passwd", "a//b", "a/", "./a", "../a", "a/./b", "a/../b", "a\\b", "../../bin/tool"]
    rows = [r for r in rows if r]
    digest = hashlib.sha256(b"x").digest()
    encoded = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    text = "".join(f'"{r}",sha256={encoded},1\n' for r in rows) + 'plain,,\nbad,sha256=@@@,\n'
    got, unread = record_rows(text.encode(), base)
    assert unread == []
    assert got == [(names.join_relative(base, r), digest.hex()) for r in rows] + \
        [(names.join_relative(base, "plain"), None), (names.join_relative(base, "bad"), _urlsafe("@@@"))]


def test_record_hashes_decode_as_urlsafe_base64_does():
    for payload in (b"", b"\xfb\xff", b"\xfe" * 31, hashlib.sha256(b"?>").digest()):
        encoded = base64.urlsafe_b64encode(payload).decode()
        for text in (encoded, encoded.rstrip("=")):
            got, _ = record_rows(f"f,sha256={text},0\n".encode(), "b")
            assert got == [("b/f", payload.hex())]
    for broken in ("a", "\u00e9\u00e9\u00e9\u00e9", "ab=c", "@@@", "a+/b"):
        got, _ = record_rows(f"f,sha256={broken},0\n".encode(), "b")
        assert got == [("b/f", _urlsafe(broken))]
    assert _urlsafe("a") is None and _urlsafe("\u00e9") is None and _urlsafe("@@@") == ""


def _urlsafe(text: str) -> str | None:
    """What RECORD hashes were decoded with before (base64.urlsafe_b64decode, padded; None when it refuses)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).hex()
    except ValueError:
        return None


def test_a_fact_made_with_of_equals_the_init_one():
    rng = ToolkitRange("12.4", "12.8", None)
    values = ("device_code", "lib/x.so", {"arch": "sm_90"}, None, ("cubin sm_90",), {"input": "x"}, rng, {})
    made = Fact.of(*values)
    assert [made.scope, made.path, made.fields, made.component, made.evidence, made.groups, made.toolkit,
            made.governing] == list(values)
    assert made == Fact(*values) and made.label == "None sm_90"


def _every_signal(vpath, facts, data, monkeypatch):
    """:func:`signals.detect` as it was: every applicable signal asked of every file, in table order."""
    plans = signals._plans

    def all_content(fmt, has_elf):
        (plain, named), differ = plans(fmt, has_elf)
        merge = lambda plan: (tuple(sorted(plan[0] + plan[1], key=lambda t: t[0])), ())
        return (merge(plain), merge(named)), differ

    with monkeypatch.context() as patch:
        patch.setattr(signals, "_plans", all_content)
        return signals.detect(vpath, facts, data)


_SCRIPT = b"#!/bin/sh\nLD_LIBRARY_PATH=/opt/zluda:$LD_LIBRARY_PATH exec \"$@\"\n"
_CASES = [
    ("opt/zluda/trace/zluda_ld", _SCRIPT),  # a content signal (the loader script), a path and a file-name one
    ("zluda/bin/run.sh", _SCRIPT),
    ("lib/run.sh", _SCRIPT),
    ("opt/zluda/trace/notes.txt", b"nothing here"),  # corroborating signals alone: no layer
    ("numba/hip/__init__.py", b"def pose_as_cuda():\n    import numba.cuda\n"),
    ("zluda/zluda.db", b"SQLite format 3\0 zluda_version backend_key compiler_version"),
    ("x/empty.py", b""),
]


@pytest.mark.parametrize(("vpath", "data"), _CASES)
def test_signals_asked_content_first_fire_as_when_all_are_asked(vpath, data, monkeypatch):
    assert signals.detect(vpath, None, data) == _every_signal(vpath, None, data, monkeypatch)


def test_corroborating_signals_are_asked_once_a_content_signal_fired():
    (match,) = signals.detect("opt/zluda/trace/zluda_ld", None, _SCRIPT)
    assert match.name == "zluda" and match.layer is not None
    assert match.layer.signals == ("zluda-loader-script", "zluda-files", "zluda-trace-dirs")
    assert signals.detect("opt/zluda/trace/zluda_ld", None, b"#!/bin/sh\n") == ()


def test_signals_of_libraries_asked_content_first_fire_as_when_all_are_asked(tmp_path, monkeypatch):
    from layer_fixtures import Stubs, so

    from licscan.binary.inspect import inspect_buffer
    from licscan.binary.limits import Limits

    stubs = Stubs(tmp_path)
    drop_in = so(tmp_path, "libcuda.so.1", "extern int hipInit(unsigned); int cuInit(unsigned f){return hipInit(f);}",
                 "libcuda.so.1", (stubs.lib("libamdhip64.so.6"),))
    for path in (drop_in, tmp_path / stubs.lib("libamdhip64.so.6")):
        data = path.read_bytes()
        facts = inspect_buffer(data, path.name, Limits(jobs=1))
        for vpath in (path.name, "zluda/" + path.name, "opt/scale/targets/gfx90a/lib/" + path.name):
            expected = _every_signal(vpath, facts, data, monkeypatch)
            assert expected and signals.detect(vpath, facts, data) == expected


# A file in which naming surely finds nothing gets its record without naming (identify.examine.quiet_record): the
# record examine gives, and None (examine it) whenever something could be named. Its bytes decide its format.
_LICENCE = b"NVIDIA Software License Agreement\n"
_QUIET = [
    ("torch/nn/functional.py", b"import torch\n\ndef relu(x):\n    return x.clamp(min=0)\n"),
    ("torch/__init__.py", b""),
    ("torch/include/ATen/core/Tensor.h", b"#pragma once\n#include <cstdint>\n"),
    ("torch/py.typed", b"partial\n"),
    ("torch/share/data.bin", bytes(range(256)) * 64),  # binary data of no format
    ("scripts/run.sh", b"#!/bin/sh\nexec python -m torch \"$@\"\n"),  # a script, no layer's literals
    ("x/porting.txt", b"'cudaMalloc': 'musaMalloc', 'cudaFree': 'musaFree'"),  # torchada's literals, not in a .py
]
_NAMED = [
    ("torchada/rules.py", b"RULES = {'cudaMalloc': 'musaMalloc', 'cudaFree': 'musaFree'}\n"),  # torchada
    ("numba/hip/__init__.py", b"def pose_as_cuda():\n    import numba.cuda\n"),
    ("cuda/bindings/runtime.py", b"from rocm.bindings import hip\n"),  # hip-python's shim
    ("opt/zluda/run.sh", _SCRIPT),
    ("bin/preload", b"#!/bin/sh\nLD_PRELOAD=libzluda_ld.so exec \"$@\"\n"),
    ("zluda/zluda.db", b"SQLite format 3\0 zluda_version backend_key compiler_version"),
    ("nvidia/cuda_runtime/lib/libcudart.so.12", b"not an ELF file, named like the CUDA runtime\n"),  # catalog name
    ("nvidia/cublas/LICENSE.txt", _LICENCE),  # named like a licence text
    ("kernels/k.ptx", b"//\n.version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k()\n{\n ret;\n}\n"),
    ("lib/fake.so", b"\x7fELF" + bytes(60)),  # ELF magic: a header is read (an error diagnostic)
    ("lib/fake.dll", b"MZ" + bytes(100)),  # MZ without a PE header: the signals read it as a PE image
]


def _examined(vpath, data):
    from licscan.binary.inspect import head_facts, inspect_read
    from licscan.identify.examine import examine, quiet_record

    head = head_facts(data, vpath)
    quick = quiet_record(vpath, head, data) if head is not None else None
    return quick, examine(vpath, inspect_read(data, vpath), data, len(data))


@pytest.mark.parametrize(("vpath", "data"), _QUIET + _NAMED)
def test_a_quiet_record_is_the_record_examine_gives(vpath, data):
    quick, full = _examined(vpath, data)
    if (vpath, data) in _QUIET:
        assert quick == full and not full.matches and full.license_text is None
    else:
        assert quick is None
        if vpath.endswith((".py", ".db")) or "/run.sh" in vpath or "preload" in vpath:
            assert full.matches  # a layer's signal fired: what quiet_record must never skip


def test_quiet_records_of_the_fixtures_are_the_records_examine_gives():
    from tests.helpers import FIXTURES

    quiet = 0
    for path in sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.stat().st_size <= 256 << 10):
        vpath = path.relative_to(FIXTURES).as_posix()
        quick, full = _examined(vpath, path.read_bytes())
        assert quick is None or quick == full, vpath
        quiet += quick is not None
    assert quiet >= 10  # sources and scripts of the fixtures: the shortcut is taken


@pytest.mark.parametrize(("vpath", "data"), _CASES + _QUIET + _NAMED)
def test_silent_files_are_those_detect_finds_nothing_in(vpath, data):
    name = vpath.rsplit("/", 1)[-1]
    found = signals.detect(vpath, None, data)
    if signals.silent(vpath, name, data):
        assert found == ()
    else:  # the files a layer's signal names, and those whose magic detect reads headers for
        assert found or name in ("fake.so", "fake.dll")


def test_the_walk_reads_a_small_plain_file_whole_when_asked(tmp_path):
    """walk(..., whole=N): a plain file of at most N bytes comes with its bytes (read by the read of its first
    bytes); a larger one, an archive (walked), or any file without ``whole`` comes without."""
    from inventory_builders import zip_bytes

    from licscan.inventory import items
    from licscan.inventory.walk import walk

    tree = tmp_path / "t"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg/a.py").write_bytes(b"x = 1\n")
    (tree / "pkg/empty.py").write_bytes(b"")
    (tree / "pkg/big.bin").write_bytes(b"\1" * 5000)
    (tree / "pkg/w.zip").write_bytes(zip_bytes([("m.txt", b"member")]))
    for whole, expected in ((4096, {"a.py": b"x = 1\n", "empty.py": b"", "big.bin": None}),
                            (0, {"a.py": None, "empty.py": None, "big.bin": None})):
        blobs = {b.vpath.rsplit("/", 1)[1]: b for b in walk([str(tree)], whole=whole) if isinstance(b, items.FileBlob)}
        assert {n: b.whole for n, b in blobs.items() if b.source is not None} == expected
        assert blobs["m.txt"].data == b"member" and blobs["m.txt"].whole is None  # the zip was walked


@pytest.mark.parametrize("jobs", [1, 2])
def test_records_given_where_files_are_walked_are_those_workers_give(tmp_path, monkeypatch, jobs):
    """Without the cache, a small file the walk read whole in which naming surely finds nothing gets its record
    in the scan's own process (licscan.scan._gather); the records are those of examining every file by path."""
    import shutil

    from licscan.scan import ScanConfig, scan
    from licscan.scan import plain as plain_module
    from tests.helpers import FIXTURES

    tree = tmp_path / "site-packages"
    for n in range(6):
        folder = tree / f"pkg{n}"
        folder.mkdir(parents=True)
        for vpath, data in _QUIET + _NAMED:
            (folder / vpath.replace("/", "_")).write_bytes(data)
        shutil.copy(FIXTURES / "cuda13/exe_multi", folder / "exe")
    import licscan.scan as scan_module
    from licscan.scan import feed

    handed: list[str] = []  # the files the scan hands on to be examined by path (a worker, or this process)
    add = feed.PlainFiles.add

    def counting(self, source, vpath, size):
        handed.append(vpath)
        return add(self, source, vpath, size)

    monkeypatch.setattr(feed.PlainFiles, "add", counting)
    monkeypatch.setattr(plain_module, "_BATCH_FILES", 4)  # several batches: a worker starts
    files = 6 * (len(_QUIET) + len(_NAMED) + 1)
    given = scan([str(tree)], ScanConfig(jobs=jobs, cache_dir=None))
    walked = files - len(handed)  # records given where the files were walked
    assert walked >= 6 * len(_QUIET)  # (flattened, some of _NAMED's paths name nothing)
    handed.clear()
    monkeypatch.setattr(scan_module, "_QUIET_READ", 0)  # every file examined by path
    assert given == scan([str(tree)], ScanConfig(jobs=jobs, cache_dir=None))
    assert len(handed) == files


@pytest.mark.parametrize("shape", ["wheel", "tar"])
def test_records_of_quiet_members_are_those_observe_gives(tmp_path, monkeypatch, shape):
    """An archive member held in memory in which naming surely finds nothing gets its record where it is walked
    (licscan.scan._gather); the records are those of observing and naming every member."""
    from inventory_builders import tar_bytes, zip_bytes

    from licscan.identify import examine as examine_module
    from licscan.scan import ScanConfig, scan

    members = [(f"pkg/{vpath}", data) for vpath, data in _QUIET + _NAMED]
    path = tmp_path / ("x-1.0-py3-none-any.whl" if shape == "wheel" else "x.tar.gz")
    path.write_bytes(zip_bytes(members) if shape == "wheel" else tar_bytes(members, "gz"))
    quiet = examine_module.quiet_record
    given: list[str] = []

    def counting(vpath, *args, **kwargs):
        record = quiet(vpath, *args, **kwargs)
        given.extend([vpath] if record is not None else [])
        return record

    monkeypatch.setattr(examine_module, "quiet_record", counting)
    _, records = scan([str(path)], ScanConfig(jobs=1, cache_dir=None))
    assert sorted(v.split("!/pkg/", 1)[1] for v in given) == sorted(v for v, _ in _QUIET)
    assert all(r.containers == (str(path),) for r in records)
    monkeypatch.setattr(examine_module, "quiet_record", lambda *args, **kwargs: None)
    assert records == scan([str(path)], ScanConfig(jobs=1, cache_dir=None))[1]
