"""CI-gate outputs of `licscan audit` (issue 5): SARIF, Markdown, HTML and text on the fixed fixture dist of
tests/report_dist.py, golden files in tests/golden/report/ (regenerate with LICSCAN_UPDATE_GOLDEN=1), several
outputs from one scan, and the HTML in headless Chromium."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from licscan.cli import main
from licscan.findings import Finding
from licscan.report import markdown, sarif
from licscan.report.outputs import OutputRequest, audit_outputs
from licscan.report.progress import progress_reporter, wants_progress
from licscan.report.text_report import use_color
from tests.report_dist import SOURCE_DATE_EPOCH, build

FORMATS = {"sarif": "dist.sarif", "json": "dist.json", "markdown": "dist.md", "html": "dist.html", "text": "dist.txt"}


@pytest.fixture(scope="module")
def dist_root(tmp_path_factory):
    return build(tmp_path_factory.mktemp("report"))


def _audit(root: Path, *args: str, monkeypatch) -> int:
    monkeypatch.chdir(root)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return main(["audit", "dist", "--no-cache", "--jobs", "1", "--config", ".licscan.yaml", *args])


@pytest.fixture(scope="module")
def reports(dist_root):
    """Every format from one scan, twice (separate runs), as {format: [text run 1, text run 2]}."""
    mp = pytest.MonkeyPatch()
    out: dict[str, list[str]] = {k: [] for k in FORMATS}
    try:
        for run in ("a", "b"):
            args = []
            for fmt, name in FORMATS.items():
                args += ["--format", fmt, "-o", f"{run}-{name}"]
            assert _audit(dist_root, *args, monkeypatch=mp) == 1  # an unwaived error remains
            for fmt, name in FORMATS.items():
                out[fmt].append((dist_root / f"{run}-{name}").read_text(encoding="utf-8"))
    finally:
        mp.undo()
    return out


# --- determinism and goldens -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_outputs_are_byte_identical_across_runs(reports, fmt):
    first, second = reports[fmt]
    assert first == second


def test_sarif_golden(reports, golden):
    golden("report/dist.sarif", reports["sarif"][0])


def test_markdown_golden(reports, golden):
    golden("report/dist.md", reports["markdown"][0])


def test_text_golden(reports, golden):
    golden("report/dist.txt", reports["text"][0])


class _Outline(HTMLParser):
    """The structure of the HTML report: headings, sections, tables (header and row count), findings."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self._text: list[str] | None = None
        self._row_counts: list[int] = []
        self._headers: list[str] = []
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "section":
            self.lines.append(f"section #{attrs.get('id')}")
        elif tag in ("h1", "h2", "h3"):
            self._text = []
        elif tag == "article":
            self.lines.append(f"  finding .{attrs.get('class')}")
        elif tag == "table":
            self._row_counts.append(0)
            self._headers = []
        elif tag == "th":
            self._in_th, self._text = True, []
        elif tag == "tr" and self._row_counts:
            self._row_counts[-1] += 1

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._text is not None:
            self.lines.append(f"  {tag}: {' '.join(''.join(self._text).split())}")
            self._text = None
        elif tag == "th" and self._in_th:
            self._headers.append("".join(self._text or []).strip())
            self._in_th, self._text = False, None
        elif tag == "table":
            rows = self._row_counts.pop() - 1
            self.lines.append(f"  table [{' | '.join(self._headers)}] rows={rows}")

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def _outline(html: str) -> _Outline:
    parser = _Outline()
    parser.feed(html)
    parser.close()
    return parser


def test_html_structure_golden(reports, golden):
    golden("report/dist.html.outline", "\n".join(_outline(reports["html"][0]).lines) + "\n")


# --- SARIF -------------------------------------------------------------------------------------------------------

def test_sarif_is_valid_and_shaped_for_github(reports):
    log = json.loads(reports["sarif"][0])
    validator = jsonschema.Draft4Validator(sarif.schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "licscan" and re.match(r"^\d+\.\d+\.\d+", driver["semanticVersion"])
    ids = [r["id"] for r in driver["rules"]]
    assert len(ids) == len(set(ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        assert len(rule["shortDescription"]["text"]) <= 1024 and len(rule["fullDescription"]["text"]) <= 1024
        assert "security-severity" not in rule.get("properties", {})
    translation = driver["rules"][ids.index("CUDA-EULA-TRANSLATION")]
    assert "> You may not reverse engineer" in translation["help"]["markdown"]
    assert "Remediation" in translation["help"]["markdown"] and translation["helpUri"].startswith("https://")
    assert run["automationDetails"]["id"] == "licscan/dist/"
    results = run["results"]
    assert {r["ruleId"] for r in results} == {"CUDA-EULA-TRANSLATION", "CUDA-EULA-NVIDIA-GPU-ONLY"}
    for result in results:
        assert result["ruleId"] in ids and ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        loc = result["locations"][0]
        assert loc["physicalLocation"]["region"] == {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1}
        assert loc["physicalLocation"]["artifactLocation"]["uri"] == "dist/libkern.so"
        assert loc["logicalLocations"][0]["fullyQualifiedName"] == "dist/libkern.so"
        assert re.fullmatch(r"[0-9a-f]{16}:1", result["partialFingerprints"]["primaryLocationLineHash"])
        assert re.fullmatch(r"[0-9a-f]{16}", result["partialFingerprints"]["licscan/v1"])


def test_sarif_leaves_waived_findings_out(reports):
    report = json.loads(reports["json"][0])
    waived = [f for f in report["findings"] if f["waived"]]
    assert [f["rule"] for f in waived] == ["CUDA-EULA-DEV-TOOL"]
    log = json.loads(reports["sarif"][0])
    prints = {r["partialFingerprints"]["licscan/v1"] for r in log["runs"][0]["results"]}
    assert waived[0]["fingerprint"] not in prints
    assert prints == {f["fingerprint"] for f in report["findings"] if not f["waived"]}


def test_sarif_fingerprints_stable_across_runs(reports):
    runs = [json.loads(text)["runs"][0]["results"] for text in reports["sarif"]]
    assert [r["partialFingerprints"] for r in runs[0]] == [r["partialFingerprints"] for r in runs[1]]


def test_sarif_nested_member_is_a_child_artifact():
    from licscan.model import Inventory, Summary

    inventory = Inventory(inputs=("dist",), components=(), device_code=(), diagnostics=(), summary=Summary(1, 1, 0))
    finding = {"rule": "CUDA-EULA-DEV-TOOL", "title": "t", "severity": "error", "verdict": "violation",
               "path": "dist/app-1.2.3-py3-none-any.whl!/app/bin/ptxas", "component": "developer-tool:nvidia/ptxas@13.0",
               "message": "m", "remediation": "r", "clause": None, "references": [], "evidence": [],
               "waived": False, "fingerprint": "0123456789abcdef"}
    finding = Finding.from_json(finding)
    log = sarif.document(inventory, [finding])
    jsonschema.validate(log, sarif.schema())
    run = log["runs"][0]
    assert run["artifacts"] == [
        {"location": {"uri": "dist/app-1.2.3-py3-none-any.whl"}, "roles": ["analysisTarget"]},
        {"location": {"uri": "app/bin/ptxas"}, "parentIndex": 0}]
    (result,) = run["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "dist/app-1.2.3-py3-none-any.whl", "index": 0}
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == finding.path
    assert result["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["index"] == 1
    # the same alert for the next release of the wheel
    bumped = dataclasses.replace(finding, path="dist/app-1.2.4-py3-none-any.whl!/app/bin/ptxas",
                  component="developer-tool:nvidia/ptxas@13.1")
    assert sarif.stable_hash(bumped) == sarif.stable_hash(finding)
    assert sarif.stable_hash(dataclasses.replace(finding, rule="CUDA-EULA-TRANSLATION")) != sarif.stable_hash(finding)


# --- Markdown ----------------------------------------------------------------------------------------------------

def test_markdown_stays_under_the_step_summary_limit_and_says_so(reports):
    from licscan.model import Inventory, Summary

    assert len(reports["markdown"][0].encode()) < 1 << 20 and "Truncated" not in reports["markdown"][0]
    inventory = Inventory(inputs=("dist",), components=(), device_code=(), diagnostics=(), summary=Summary(1, 1, 0))
    many = [{"rule": "CUDA-EULA-DEV-TOOL", "title": "x" * 200, "severity": "error", "verdict": "violation",
             "path": f"dist/lib{i:05}.so", "component": None, "message": "m " * 200, "remediation": "r " * 100,
             "clause": {"document": "d", "section": "1", "text": "t " * 100, "date": "2021-10-08"},
             "references": [], "evidence": [], "waived": False, "fingerprint": f"{i:016x}"} for i in range(20000)]
    many = [Finding.from_json(f) for f in many]
    text = markdown.render(inventory, many, top=25000)
    assert len(text.encode("utf-8")) <= markdown.MAX_BYTES < 1 << 20
    assert re.search(r"\*\*Truncated\*\*: \d+ more findings are not shown", text)
    small = markdown.render(inventory, many, max_bytes=20_000)
    assert len(small.encode()) <= 20_000 and "Truncated" in small


# --- HTML --------------------------------------------------------------------------------------------------------

def test_html_is_self_contained_and_complete_for_review(reports):
    html = reports["html"][0]
    parsed = _outline(html)
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "source"}
    for _tag, attrs in parsed.tags:
        assert "src" not in attrs and "srcset" not in attrs
        if "href" in attrs:
            assert attrs["href"].startswith("#"), attrs
        assert "url(" not in (attrs.get("style") or "")
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html
    for expected in ("You may not reverse engineer", "2024-01-12", "January 7, 2025", "Evidence chain",
                     "DT_NEEDED libamdhip64.so.6", "Redistribution approved by NVIDIA, ticket LEGAL-123", "2099-12-31",
                     "legal@example.com", "ptxas", "13.0.88", "LicenseRef-NVIDIA-CUDA-EULA", "sm_90a", "sm_120",
                     "libcudart.so.13", "Every input was read completely"):
        assert expected in html, expected


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@needs_chromium
def test_html_opens_in_headless_chromium(reports, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(reports["html"][0], encoding="utf-8")
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<h1>licscan licence review</h1>" in proc.stdout
    assert 'id="finding-315af78017a67709"' in proc.stdout or "finding-" in proc.stdout
    assert "Refused to" not in proc.stderr  # a CSP violation: something tried to load


@needs_chromium
def test_screenshot_script_writes_a_png(reports, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(reports["html"][0], encoding="utf-8")
    script = Path(__file__).parents[1] / "scripts" / "screenshot_report.sh"
    proc = subprocess.run(["bash", str(script), str(page), str(tmp_path / "shot.png"), "1400x2000"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = (tmp_path / "shot.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


# --- CLI: several outputs from one scan, stdout, conflicts --------------------------------------------------------

def test_single_json_to_stdout_still_works(dist_root, monkeypatch, capsys):
    assert _audit(dist_root, "--format", "json", monkeypatch=monkeypatch) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == "licscan-report/1" and report["summary"]["findings"]["warning"] == 2


def test_text_is_the_default_and_plain_off_a_terminal(dist_root, monkeypatch, capsys):
    assert _audit(dist_root, monkeypatch=monkeypatch) == 1
    out = capsys.readouterr()
    assert out.out.startswith("licscan audit: 4 files") and "\x1b[" not in out.out
    assert out.err == ""  # no progress bar off a terminal


def test_output_pairs():
    fmt = lambda *pairs: [OutputRequest(f, o) for f, o in pairs]
    assert audit_outputs(None) == [("text", None)]
    assert audit_outputs(fmt(("sarif", "a.sarif"), ("json", "b.json"))) == [("sarif", "a.sarif"), ("json", "b.json")]
    assert audit_outputs(fmt((None, "r.html"), (None, "r.md"), ("json", "-"))) == [
        ("html", "r.html"), ("markdown", "r.md"), ("json", None)]
    with pytest.raises(ValueError, match="standard output"):
        audit_outputs(fmt(("json", None), ("sarif", None)))
    with pytest.raises(ValueError, match="same file"):
        audit_outputs(fmt(("json", "x"), ("sarif", "x")))


def test_pairs_follow_command_line_order():
    from licscan.cli import build_parser

    args = build_parser().parse_args(["audit", "d", "--format", "sarif", "-o", "a.sarif", "--format", "json",
                                      "-o", "b.json", "--format", "markdown"])
    assert audit_outputs(args.outputs) == [("sarif", "a.sarif"), ("json", "b.json"), ("markdown", None)]
    args = build_parser().parse_args(["audit", "d", "-o", "x.json", "--format", "json"])
    assert audit_outputs(args.outputs) == [("json", "x.json")]


def test_two_reports_to_stdout_is_a_usage_error(dist_root, monkeypatch, capsys):
    assert _audit(dist_root, "--format", "json", "--format", "sarif", monkeypatch=monkeypatch) == 2
    assert "standard output" in capsys.readouterr().err


# --- text: colour, NO_COLOR, progress ---------------------------------------------------------------------------

class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color():
    assert use_color(_Tty(), {"TERM": "xterm"})
    assert not use_color(_Tty(), {"TERM": "xterm", "NO_COLOR": "1"})
    assert not use_color(io.StringIO(), {"TERM": "xterm"})
    assert not use_color(_Tty(), {"TERM": "dumb"})


def test_coloured_text_is_the_plain_text_with_styles(dist_root, reports):
    from licscan.report import text_report
    from tests.report_dist import SOURCE_DATE_EPOCH as _  # noqa: F401
    plain = reports["text"][0]
    cwd = os.getcwd()
    os.chdir(dist_root)
    try:
        from licscan.report import json_report
        from licscan.rules.config import load_config
        from licscan.rules.engine import evaluate
        from licscan.rules.loader import load_packs
        from licscan.scan import ScanConfig, scan

        seen: list[str] = []
        inventory, _records = scan(["dist"], ScanConfig(jobs=1), progress=seen.append)
        findings = evaluate(json_report.document(inventory), load_packs(), load_config(".licscan.yaml"))
    finally:
        os.chdir(cwd)
    assert sorted(seen) == ["dist/libkern.so", "dist/ptxas", "dist/zluda/libamdhip64.so.6", "dist/zluda/libcuda.so.1"]
    coloured = text_report.render(inventory, findings, color=True)
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_progress_is_silent_off_a_terminal_and_in_ci():
    assert not wants_progress(io.StringIO(), {})
    assert not wants_progress(_Tty(), {"CI": "true"})
    assert wants_progress(_Tty(), {"TERM": "xterm"})
    with progress_reporter(io.StringIO(), {}) as callback:
        assert callback is None
    stream = _Tty()
    with progress_reporter(stream, {"TERM": "xterm"}, delay=0) as callback:
        for i in range(5):
            callback(f"dist/lib{i}.so")
    assert "scanning" in stream.getvalue()
