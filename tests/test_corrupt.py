"""Corrupt input: truncated fatbins, lying sizes, bad compression. Every fault is a diagnostic with its offset;
no exception escapes ``inspect``; memory stays bounded (docs/binary-format.md §10, B1 exit 3)."""

from __future__ import annotations

import resource
import struct
import subprocess
import sys

import pytest

from licscan.binary import fatbin
from licscan.model import DiagnosticKind
from tests.helpers import fixture, inspect

ENTRY_FIELDS = {"header_size": (4, "<I"), "payload_size": (8, "<Q"), "compressed_size": (16, "<I"),
                "uncompressed_size": (56, "<Q"), "kind": (0, "<H")}


def _entries(data: bytes) -> list[fatbin.Entry]:
    return list(fatbin.parse_fatbin(data, 0, len(data)).entries)


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def multi() -> bytes:
    return fixture("cuda13/kern_multi_compressall.fatbin").read_bytes()


def test_truncated_at_every_64_byte_boundary(tmp_path, multi):
    for cut in [8, *range(64, len(multi), 64)]:  # from 4 bytes on, the magic says "fatbin"
        facts = inspect(_write(tmp_path, f"cut{cut}.fatbin", multi[:cut]))
        diagnostics = facts.all_diagnostics()
        assert diagnostics, f"truncation at {cut} went unreported"
        assert all(d.offset is not None for d in diagnostics), diagnostics
        assert {d.kind for d in diagnostics} <= {DiagnosticKind.TRUNCATED, DiagnosticKind.MALFORMED}


def test_truncated_fatbin_keeps_the_entries_before_the_cut(tmp_path, multi):
    entries = _entries(multi)
    cut = entries[3].offset + 8  # inside the fourth entry header
    facts = inspect(_write(tmp_path, "t.fatbin", multi[:cut]))
    assert [i.arch_full for i in facts.all_images()] == ["sm_75", "sm_80", "sm_90"]
    (diag,) = facts.all_diagnostics()
    assert diag.kind is DiagnosticKind.TRUNCATED and diag.offset == 0


@pytest.mark.parametrize("field, value, kind", [
    ("payload_size", 1 << 40, DiagnosticKind.MALFORMED),
    ("header_size", 0, DiagnosticKind.MALFORMED),
    ("header_size", 1 << 31, DiagnosticKind.MALFORMED),
    ("kind", 7, DiagnosticKind.MALFORMED),
])
def test_lying_entry_header(tmp_path, multi, field, value, kind):
    entry = _entries(multi)[2]
    rel, fmt = ENTRY_FIELDS[field]
    facts = inspect(_write(tmp_path, "l.fatbin", _patch(multi, entry.offset + rel, fmt, value)))
    diagnostics = facts.all_diagnostics()
    assert [d.kind for d in diagnostics] == [kind]
    assert diagnostics[0].offset == entry.offset
    assert [i.arch_full for i in facts.all_images()] == ["sm_75", "sm_80"]


def test_compressed_size_larger_than_payload(tmp_path, multi):
    entry = _entries(multi)[0]
    facts = inspect(_write(tmp_path, "c.fatbin", _patch(multi, entry.offset + 16, "<I", entry.payload_size + 8)))
    (diag,) = facts.all_diagnostics()
    assert "compressed_size" in diag.message and diag.offset == entry.offset


@pytest.mark.parametrize("index", [0, 3])  # a zstd cubin and a zstd PTX
def test_terabyte_declared_size_is_a_limit_diagnostic(tmp_path, multi, index):
    entry = _entries(multi)[index]
    data = _patch(multi, entry.offset + 56, "<Q", 1 << 42)
    facts = inspect(_write(tmp_path, "tb.fatbin", data), want_hash=True)
    kinds = [d.kind for d in facts.all_diagnostics()]
    assert DiagnosticKind.LIMIT in kinds
    assert all(d.offset is not None for d in facts.all_diagnostics())
    assert len(facts.all_images()) == 7  # the image is still listed


def test_declared_size_smaller_than_the_stream(tmp_path, multi):
    entry = _entries(multi)[1]
    facts = inspect(_write(tmp_path, "s.fatbin", _patch(multi, entry.offset + 56, "<Q", 100)), want_hash=True)
    assert {d.kind for d in facts.all_diagnostics()} == {DiagnosticKind.DECOMPRESSION}


def test_damaged_zstd_stream(tmp_path, multi):
    entry = _entries(multi)[1]
    out = bytearray(multi)
    start = entry.payload_offset + 16
    out[start : start + 64] = b"\xff" * 64
    facts = inspect(_write(tmp_path, "z.fatbin", bytes(out)), want_hash=True)
    diagnostics = facts.all_diagnostics()
    assert diagnostics and all(d.kind is DiagnosticKind.DECOMPRESSION for d in diagnostics)
    assert len(facts.all_images()) == 7


def test_damaged_lz4_stream(tmp_path):
    data = fixture("cuda112/k112_compressall.fatbin").read_bytes()
    entry = _entries(data)[0]
    # Half of the LZ4 stream: its last sequence now ends in the middle of a match.
    out = _patch(data, entry.offset + 16, "<I", entry.compressed_size // 2)
    facts = inspect(_write(tmp_path, "lz.fatbin", out), want_hash=True)
    assert {d.kind for d in facts.all_diagnostics()} == {DiagnosticKind.DECOMPRESSION}


def test_outer_header_declares_more_than_the_file(tmp_path, multi):
    facts = inspect(_write(tmp_path, "o.fatbin", _patch(multi, 8, "<Q", 1 << 50)))
    diagnostics = facts.all_diagnostics()
    assert diagnostics[0].kind is DiagnosticKind.TRUNCATED and diagnostics[0].offset == 0
    assert len(facts.all_images()) == 7  # every entry that is there is still read


def test_elf_section_running_past_the_end(tmp_path):
    data = fixture("cuda13/libkern.so").read_bytes()
    cut = len(data) - 1024  # cuts into the section header table / trailing sections
    facts = inspect(_write(tmp_path, "cut.so", data[: cut]))
    assert facts.all_diagnostics(), "a truncated ELF must not pass silently"


def test_truncated_elf_inside_nv_fatbin(tmp_path):
    facts = inspect("cuda13/libkern.so")
    first = facts.all_images()[0]
    data = fixture("cuda13/libkern.so").read_bytes()[: first.entry_offset + 200]
    facts = inspect(_write(tmp_path, "cut2.so", data))
    assert facts.all_diagnostics()


def test_garbage_after_magic_in_data_sections_is_not_a_fault(tmp_path):
    """A fatbin magic in ordinary data that does not validate is a false positive, not a diagnostic."""
    bytearray(fixture("cuda13/exe_sm86_cudart_shared").read_bytes())
    facts = inspect("cuda13/exe_sm86_cudart_shared")
    assert not facts.all_diagnostics()


def _limited(max_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    return apply


def test_cli_on_hostile_sizes_exits_3_within_bounded_memory(tmp_path, multi):
    entries = _entries(multi)
    data = multi
    for entry in entries:  # every entry declares 4 TB
        data = _patch(data, entry.offset + 56, "<Q", 1 << 42)
    path = _write(tmp_path, "all.fatbin", data)
    proc = subprocess.run([sys.executable, "-m", "licscan", "inspect", str(path), "--hash", "--format", "json"],
                          capture_output=True, text=True, preexec_fn=_limited(1 << 30), timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count('"kind": "limit"') == 7


def test_cli_exit_codes(tmp_path, multi):
    ok = subprocess.run([sys.executable, "-m", "licscan", "inspect", str(fixture("cuda13/kern_multi.fatbin"))],
                        capture_output=True, text=True)
    assert ok.returncode == 0
    missing = subprocess.run([sys.executable, "-m", "licscan", "inspect", str(tmp_path / "nope")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = subprocess.run([sys.executable, "-m", "licscan", "inspect", str(_write(tmp_path, "b.fatbin", multi[:500]))],
                         capture_output=True, text=True)
    assert bad.returncode == 3 and "truncated at 0x0" in bad.stdout
