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
