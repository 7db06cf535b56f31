"""The time budget per file (``--max-file-seconds``, licscan/binary/budget.py): past it the readers leave out what
can be left out, keep what they have, and say so in a ``limit`` diagnostic. A budget of 1 ns is spent before the
first check, which makes every case below deterministic."""

from __future__ import annotations

import json

from licscan.binary import budget
from licscan.binary.images import Limits
from licscan.binary.inspect import inspect_file
from licscan.cli import main
from licscan.model import DiagnosticKind
from tests.helpers import fixture

SPENT = 1e-9


def _limited(rel: str, **kw):
    return inspect_file(str(fixture(rel)), limits=Limits(jobs=1, max_file_seconds=SPENT), **kw)


def _full(rel: str, **kw):
    return inspect_file(str(fixture(rel)), limits=Limits(jobs=1), **kw)


def test_budget_blocks_nest_and_none_means_no_limit():
    assert not budget.expired()
    with budget.file_budget(None):
        assert not budget.expired()
    with budget.file_budget(0):
        assert not budget.expired()
    with budget.file_budget(SPENT):
        assert budget.expired()
        with budget.file_budget(3600):  # an archive member keeps its file's deadline
            assert budget.expired()
    with budget.file_budget(3600):
        with budget.file_budget(SPENT):
            assert not budget.expired()
    assert not budget.expired()


def test_compressed_cubins_fall_back_to_their_entry_headers():
    rel = "cuda13/kern_multi_compressall.fatbin"
    full, cut = _full(rel), _limited(rel)
    # Same listing, entry for entry.
    assert [(i.kind, i.arch, i.compression, i.entry_offset) for i in cut.device_code] == \
           [(i.kind, i.arch, i.compression, i.entry_offset) for i in full.device_code]
    cubins = [i for i in cut.device_code if i.kind.value == "cubin"]
    assert [i.arch for i in cubins] == ["sm_75", "sm_80", "sm_90", "sm_90a", "sm_100"]
    assert all(i.tool is None for i in cubins)  # the notes were not decoded ...
    assert [i.tool.version for i in full.device_code if i.kind.value == "cubin"] == ["13.0.88"] * 5
    # ... and the range is what the entry header proves (ABI v8), never a guess.
    assert [(i.toolkit.low, i.toolkit.exact) for i in cubins] == [("13.0", None)] * 4 + [("12.9", None)]
    assert [(d.kind, d.message) for d in cut.diagnostics] == [(
        DiagnosticKind.LIMIT,
        "time limit of 1e-09 s per file (--max-file-seconds) reached: the toolkit notes of 5 compressed cubins "
        "were not read; those cubins are listed from their entry headers, with the toolkit range the header "
        "proves")]
    assert full.diagnostics == ()


def test_hashes_left_out_are_named():
    cut = _limited("cuda13/kern_multi_compressall.fatbin", want_hash=True)
    assert all(i.sha256 is None for i in cut.device_code)
    assert [d.message.split(": ", 1)[1] for d in cut.diagnostics] == [
        "the toolkit notes of 5 compressed cubins were not read; those cubins are listed from their entry headers, "
        "with the toolkit range the header proves; the sha256 of 7 images was not computed"]


def test_uncompressed_cubins_keep_their_notes_read_in_place():
    cut = _limited("cuda13/kern_multi.fatbin", want_hash=True)
    assert [(i.kind.value, i.compression.value, i.tool.version if i.tool else None) for i in cut.device_code] == \
           [("cubin", "none", "13.0.88")] * 3 + [("ptx", "zstd", None)] + [("cubin", "none", "13.0.88")] * 2 + \
           [("ptx", "zstd", None)]
    assert all(i.sha256 is None for i in cut.device_code)
    assert [d.message for d in cut.diagnostics] == [
        "time limit of 1e-09 s per file (--max-file-seconds) reached: the sha256 of 7 images was not computed"]


def test_elf_sections_left_unscanned_are_named_and_wrappers_not_judged():
    cut = _limited("cuda13/exe_cmode_default")
    assert cut.device_code == ()
    assert cut.wrappers is None  # no "wrappers point where no fatbin was found" from a scan that did not run
    assert [(d.kind, d.message) for d in cut.diagnostics] == [(
        DiagnosticKind.LIMIT,
        "time limit of 1e-09 s per file (--max-file-seconds) reached: 5 sections not scanned for device code "
        "(.interp, .rodata, .nv_fatbin, __nv_module_id, .data)")]
    assert cut.elf is not None and cut.elf.needed == _full("cuda13/exe_cmode_default").elf.needed


def test_archive_members_left_unread_are_named():
    cut = _limited("cuda13/liblongnames.a")
    assert cut.members == ()
    assert [(d.kind, d.offset, d.message) for d in cut.diagnostics] == [(
        DiagnosticKind.LIMIT, 0x340,
        "time limit of 1e-09 s per file (--max-file-seconds) reached: members from "
        "'a_member_name_longer_than_sixteen_chars.o' (offset 0x340) on were not read")]


def test_cli_inspect_and_audit_report_the_limit_with_exit_3(tmp_path, capsys):
    rel = str(fixture("cuda13/kern_multi_compressall.fatbin"))
    assert main(["inspect", rel, "--format", "json", "--max-file-seconds", "1e-9"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert [d["kind"] for d in report["diagnostics"]] == ["limit"]
    assert main(["inspect", rel, "--format", "json"]) == 0
    capsys.readouterr()
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "k.fatbin").write_bytes(fixture("cuda13/kern_multi_compressall.fatbin").read_bytes())
    code = main(["audit", str(dist), "--format", "json", "--no-cache", "--jobs", "1", "--max-file-seconds", "1e-9"])
    report = json.loads(capsys.readouterr().out)
    assert code == 3
    assert [(d["path"], d["kind"]) for d in report["diagnostics"]] == [(str(dist / "k.fatbin"), "limit")]
