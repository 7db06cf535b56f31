"""Three-valued evaluation, version ranges, fingerprints, exit codes, .licscan.yaml and waivers."""

import argparse
import datetime
import io
import json
from pathlib import Path

import pytest

from licscan.cli.main_rules import cmd_show, cmd_waive
from licscan.findings import FailOn, exit_code, fingerprint
from licscan.model import ToolkitRange
from licscan.rules.attachment import canonical
from licscan.rules.config import Config, ConfigError, config_from_yaml, find_config, load_config, resolve_config, waive
from licscan.rules.engine import evaluate
from licscan.rules.loader import load_packs
from licscan.rules.versions import Tri, contains, parse_specifier

CASES = Path(__file__).resolve().parent / "rules"
PACKS = load_packs()
TODAY = datetime.date(2026, 6, 1)


def _doc(rule, kind="positive"):
    return json.loads((CASES / rule / kind / "report.json").read_text())


def _zluda(toolkit):
    document = _doc("CUDA-EULA-TRANSLATION")
    for entry in document["device_code"]:
        entry["toolkit"] = toolkit
    return document


@pytest.mark.parametrize("spec,toolkit,expected", [
    (">=11.6", {"min": "13.0", "max": "13.0", "exact": "13.0.88"}, Tri.TRUE),
    (">=11.6", {"min": "11.2", "max": "11.2", "exact": None}, Tri.FALSE),
    (">=11.6", {"min": "11.0", "max": "12.9", "exact": None}, Tri.UNKNOWN),
    (">=11.6", None, Tri.UNKNOWN),
    (">=11.6", {"min": "11.6", "max": None, "exact": None}, Tri.TRUE),
    (">=11.4.3", {"min": "11.4", "max": "11.4", "exact": None}, Tri.UNKNOWN),
    ("<11.6", {"min": "11.5", "max": "11.5", "exact": None}, Tri.TRUE),
    ("==12.*", {"min": "12.0", "max": "12.9", "exact": None}, Tri.TRUE),
    ("!=12.4", {"min": "12.4", "max": "12.4", "exact": None}, Tri.UNKNOWN),  # 12.4.0 vs 12.4.1
    ("~=11.6", {"min": "12.0", "max": "12.1", "exact": None}, Tri.FALSE),
])
def test_contains_is_three_valued(spec, toolkit, expected):
    assert contains(parse_specifier(spec), ToolkitRange.from_json(toolkit)) is expected


def test_version_strings_as_ranges():
    assert ToolkitRange.of_version("13.0.96").is_point
    assert contains(parse_specifier(">=12"), ToolkitRange.of_version("12.x")) is Tri.TRUE
    assert ToolkitRange.of_version("not a version").is_unknown


@pytest.mark.parametrize("name,expected", [
    ("libcudart.so.12.9.79", "libcudart.so"), ("libcudart-1a2b3c4d.so.12", "libcudart.so"),
    ("cudart64_12.dll", "cudart.dll"), ("nvrtc64_120_0.dll", "nvrtc.dll"), ("cublasLt64_12.dll", "cublaslt.dll"),
    ("libcublas.12.dylib", "libcublas.dylib"), ("libcudart_static.a", "libcudart_static.a"),
    ("nvJitLink_120_0.dll", "nvjitlink.dll"), ("libdevice.10.bc", "libdevice.10.bc"),
    # delvewheel's mangled copies of vendored DLLs
    ("cudart64_12-0fa7eb792d3fbcf2233e4ea47e9144b9.dll", "cudart.dll"),
    ("nvJitLink_120_0-0fa7eb792d3fbcf2233e4ea47e9144b9.dll", "nvjitlink.dll"),
])
def test_attachment_a_variant_rule(name, expected):
    assert canonical(name) == expected


def test_translation_undetermined_shows_range_and_why():
    """A toolkit range 11.0-12.9 spans EULA texts with and without 1.2(8): undetermined (a note), and the message
    says which texts have the clause."""
    findings = evaluate(_zluda({"min": "11.0", "max": "12.9", "exact": None}), PACKS)
    translation = [f for f in findings if f.rule == "CUDA-EULA-TRANSLATION"]
    assert len(translation) == 1
    finding = translation[0]
    assert finding.verdict.value == "undetermined" and finding.severity.value == "note"
    assert "11.0–12.9" in finding.message and "Undetermined" in finding.message
    assert "2021-10-08, 2024-01-12" in finding.message and "2018-07-26, 2020-11-02 do not" in finding.message
    # the pre-clause note is not reported for an unknown verdict (report_undetermined: false)
    assert not [f for f in findings if f.rule == "CUDA-EULA-TRANSLATION-PRE-CLAUSE"]


def test_translation_clause_by_text_and_configurable_reading():
    """Finding 2: 1.2(8) applies by the governing text, never as a violation; the 11.4.3/11.5 texts were not
    examined, so 11.5 output is undetermined; eula.translation-clause-since is a reading the user may choose."""
    document = _zluda({"min": "11.5", "max": "11.5", "exact": None})
    default = {f.rule: f.verdict.value for f in evaluate(document, PACKS)}
    assert default.get("CUDA-EULA-TRANSLATION") == "undetermined"
    assert "CUDA-EULA-TRANSLATION-PRE-CLAUSE" not in default
    for value in ('"11.4.3"', "2021-10-08"):
        config = config_from_yaml(f"eula:\n  translation-clause-since: {value}\n", "c.yaml")
        found = {f.rule: f for f in evaluate(document, PACKS, config)}
        if value == "2021-10-08":  # the first toolkit mapped to that text is 11.6: 11.5 output is below it
            assert "CUDA-EULA-TRANSLATION" not in found and "CUDA-EULA-TRANSLATION-PRE-CLAUSE" in found
            continue
        assert found["CUDA-EULA-TRANSLATION"].verdict.value == "review", value
        assert any("a reading set in .licscan.yaml" in e for e in found["CUDA-EULA-TRANSLATION"].evidence)


def test_attachment_a_undetermined_without_toolkit():
    document = _doc("CUDA-EULA-NOT-REDISTRIBUTABLE")
    document["components"] = [c for c in document["components"] if c["name"] == "nvJitLink"]
    document["components"][0]["version"] = None
    [finding] = evaluate(document, PACKS)
    assert finding.verdict.value == "undetermined" and finding.severity.value == "note"
    assert "2024-01-12" in finding.message
    pinned = config_from_yaml("eula:\n  text: 2024-01-12\n", "c.yaml")
    assert evaluate(document, PACKS, pinned) == []


def test_findings_sorted_and_fingerprints_stable():
    findings = evaluate(_doc("CUDA-EULA-NOT-REDISTRIBUTABLE"), PACKS)
    assert findings == sorted(findings, key=lambda f: (f.path, f.rule, f.fingerprint))
    for finding in findings:
        assert finding.fingerprint == fingerprint(finding.rule, finding.path, finding.component)
        assert len(finding.fingerprint) == 16
    assert evaluate(_doc("CUDA-EULA-NOT-REDISTRIBUTABLE"), PACKS) == findings


@pytest.mark.parametrize("fail_on,expected", [("error", 0), ("warning", 1), ("note", 1), ("never", 0)])
def test_exit_code_fail_on(fail_on, expected):
    """The triton ptxas is a review (a third-party bundle with no public permission): a warning."""
    findings = evaluate(_doc("CUDA-EULA-DEV-TOOL"), PACKS)
    assert exit_code(findings, FailOn(fail_on)) == expected


def _finding(severity: str, waived: bool):
    from licscan.findings import Finding, Severity, Verdict, Waived

    return Finding(rule="R-X", title="t", severity=Severity(severity), verdict=Verdict.VIOLATION, path="p",
                   component=None, message="m", remediation="r", clause=None,
                   waiver=Waived("ok", None, None, "c:1") if waived else None)


def test_exit_code_levels():
    warning = [_finding("warning", False)]
    assert exit_code(warning, FailOn.ERROR) == 0 and exit_code(warning, FailOn.WARNING) == 1
    assert exit_code([_finding("error", True)], FailOn.NOTE) == 0
    assert exit_code([], FailOn.ERROR, complete=False) == 3
    with pytest.raises(ValueError):
        FailOn("fatal")


def _dev_tool_config(expires):
    return config_from_yaml(
        "fail-on: error\n"
        "waivers:\n"
        "  - rule: CUDA-EULA-DEV-TOOL\n"
        "    path: \"dist/*.whl!/triton/backends/nvidia/bin/ptxas\"\n"
        "    reason: \"Redistribution approved by NVIDIA, ticket LEGAL-123\"\n"
        f"    expires: {expires}\n"
        "  - rule: CUDA-EULA-MODIFIED\n"
        "    reason: nothing to waive\n", "cfg/.licscan.yaml")


def test_waiver_waives_and_unused_is_reported():
    findings = evaluate(_doc("CUDA-EULA-DEV-TOOL"), PACKS, _dev_tool_config("2027-06-30"), today=TODAY)
    [tool] = [f for f in findings if f.rule == "CUDA-EULA-DEV-TOOL"]
    assert tool.waived and tool.waiver.reason.startswith("Redistribution approved")
    [unused] = [f for f in findings if f.rule == "LICSCAN-WAIVER-UNUSED"]
    assert unused.severity.value == "note" and "cfg/.licscan.yaml:7:5" in unused.message
    assert exit_code(findings, FailOn.ERROR) == 0
    assert exit_code(findings, FailOn.NOTE) == 1  # the unused-waiver note


def test_expired_waiver_stops_waiving():
    findings = evaluate(_doc("CUDA-EULA-DEV-TOOL"), PACKS, _dev_tool_config("2026-01-31"), today=TODAY)
    [tool] = [f for f in findings if f.rule == "CUDA-EULA-DEV-TOOL"]
    assert not tool.waived and any("expired on 2026-01-31" in e for e in tool.evidence)
    [expired] = [f for f in findings if f.rule == "LICSCAN-WAIVER-EXPIRED"]
    assert expired.severity.value == "warning"
    assert exit_code(findings, FailOn.WARNING) == 1


def test_excluded_paths_are_not_judged():
    config = config_from_yaml("exclude: ['dist/triton-*']\n", "c.yaml")
    assert evaluate(_doc("CUDA-EULA-DEV-TOOL"), PACKS, config) == []


def test_config_errors_have_positions():
    text = ("fail-on: fatal\n"
            "eula:\n"
            "  translation-clause-since: 11.6\n"
            "  text: 1999-01-01\n"
            "colour: red\n"
            "waivers:\n"
            "  - rule: X\n"
            "    expires: someday\n"
            "    fail-on: error\n"
            "fail-on: note\n")
    with pytest.raises(ConfigError) as error:
        config_from_yaml(text, "c.yaml")
    rendered = [str(p) for p in error.value.problems]
    assert rendered == [
        "c.yaml:1:10: 'fail-on' must be one of error, warning, note, never (got 'fatal')",
        "c.yaml:3:29: 'translation-clause-since' must be a toolkit release like \"11.6\" or an EULA text date like "
        "2021-10-08 (got 11.6) (quote it: YAML reads 11.6 as a number)",
        "c.yaml:4:9: unknown EULA text '1999-01-01'; known: 2018-07-26, 2020-11-02, 2021-10-08, 2024-01-12, 2025-01-07, "
        "2026-01-26",
        "c.yaml:5:1: unknown key 'colour'; expected one of version, fail-on, eula, rules, exclude, waivers, limits",
        "c.yaml:7:5: a waiver needs a 'reason'",
        "c.yaml:8:14: 'expires' must be a date YYYY-MM-DD (got 'someday')",
        "c.yaml:9:5: unknown key 'fail-on' in waiver; expected one of rule, path, fingerprint, reason, expires, approver",
        "c.yaml:10:1: duplicate key 'fail-on' (first at line 1)",
    ]


def test_find_config_from_the_working_directory_up_to_the_repository(tmp_path, monkeypatch):
    """Discovery starts in the working directory and stops at the repository root (issue 13 item 2: never from
    the scanned PATH, whose own .licscan.yaml was applied before)."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".licscan.yaml").write_text("fail-on: warning\n")
    (tmp_path / ".licscan.yaml").write_text("fail-on: never\n")  # above the repository: never found
    dist = repo / "a" / "dist"
    dist.mkdir(parents=True)
    (dist / ".licscan.yaml").write_text("fail-on: never\n")  # inside the input: never found from the input
    monkeypatch.chdir(repo / "a")
    assert find_config() == repo / ".licscan.yaml"
    assert resolve_config([dist]).fail_on.value == "warning"
    other = tmp_path / "o.yaml"
    other.write_text("fail-on: never\nrules: [extra.yaml]\n")
    config = resolve_config([dist], other)
    assert config.fail_on.value == "never" and config.rules == (str(tmp_path / "extra.yaml"),)


def test_waive_keeps_comments_and_order(tmp_path):
    path = tmp_path / ".licscan.yaml"
    original = ("# licscan settings for this repository\n"
                "fail-on: error   # the CI gate\n"
                "eula:\n"
                "  translation-clause-since: \"11.6\"     # product default\n"
                "waivers:\n"
                "  - rule: CUDA-EULA-DEV-TOOL\n"
                "    path: \"dist/*.whl!/triton/backends/nvidia/bin/ptxas\"\n"
                "    reason: \"ticket LEGAL-123\"\n"
                "    expires: 2027-06-30\n")
    path.write_text(original)
    waive(path, "0123456789abcdef", "approved in LEGAL-124", "2027-01-31", "legal@example.com")
    text = path.read_text()
    assert text.startswith(original)
    assert text[len(original):] == ("  - fingerprint: 0123456789abcdef\n"
                                    "    reason: approved in LEGAL-124\n"
                                    "    expires: 2027-01-31\n"
                                    "    approver: legal@example.com\n")
    config = load_config(path)
    assert config.waivers[1].fingerprint == "0123456789abcdef"
    assert config.waivers[1].expires == datetime.date(2027, 1, 31)


def test_waive_command(tmp_path):
    target = tmp_path / ".licscan.yaml"
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(fingerprint="0123456789abcdef", reason="ok", expires="2027-01-01", approver=None,
                              rule=None, path=None, config=str(target))
    assert cmd_waive(args, out, err) == 0
    assert load_config(target).waivers[0].reason == "ok"
    args.fingerprint = "XYZ"
    assert cmd_waive(args, out, err) == 2 and "16 lower-case hex" in err.getvalue()


def test_rules_show_unknown_id():
    err = io.StringIO()
    assert cmd_show(argparse.Namespace(id="NO-SUCH-RULE", rules=None), io.StringIO(), err) == 2


def test_default_config_matches_product_defaults():
    config = Config()
    assert config.fail_on.value == "error" and config.governing_text == "published-with-toolkit"
    assert config.settings() == {"eula.translation-clause-since": "11.6", "eula.translation-clause-set": ""}
