"""Issue 13 (hostile input cannot silence, poison or crash the gate): configuration trust, output injection, crashes
that left no report, atomic outputs, --extract. One test (or more) per numbered item this part of the issue owns;
each reproduces the item and failed before its fix. docs/security.md states the trust model these tests hold."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import jsonschema
import pytest

from licscan import escape
from licscan.cli import main
from licscan.rules.yamlsource import MAX_NODES, parse
from tests.helpers import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo-dist" / "app"  # ZLUDA-shaped libcuda.so.1 + libamdhip64.so.6 + libkern.so
EPOCH = "1700000000"
LICSCAN = [sys.executable, "-m", "licscan"]
CI_COMMAND = "x\n::notice title=licscan::License review passed\n::stop-commands::x"
TERMINAL_NAMES = ["\x1b]0;pwned\x07\x1b[2J\x1b[31mred", CI_COMMAND, "evil\u202egpj.so", "a##[error]b"]
MARKDOWN_PAYLOAD = ("12.4.127 [Approved by Legal](https://evil.example/phish) ![](https://evil.example/pixel.png) "
                    "@octocat")


def _demo(folder: Path) -> Path:
    """The demo app (a CUDA-EULA-TRANSLATION review on libkern.so: a warning, so the gates below run with
    --fail-on warning) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in DEMO.iterdir():
        shutil.copyfile(item, folder / item.name)
    return folder


def _run(*args: str, cwd: Path, timeout: int = 300, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH, CI="true")
    env.pop("LICSCAN_DEBUG", None)
    return subprocess.run([*LICSCAN, *args], cwd=cwd, capture_output=True, timeout=timeout, env=env, **kwargs)


def _one_line(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def _audit(cwd: Path, *args: str, monkeypatch) -> int:
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    return main(["audit", *args, "--fail-on", "warning", "--no-cache", "--jobs", "1"])


# --- item 2: the gate takes its configuration from the tree it judges ------------------------------------------

PLANTED = 'fail-on: never\nexclude: ["*"]\nwaivers:\n  - rule: "*"\n    reason: "approved"\n'


def test_item2_config_planted_in_the_input_is_not_applied(tmp_path, monkeypatch, capsys):
    """dist/.licscan.yaml written by the build (fail-on: never, exclude *, waiver rule *) made the gate pass."""
    dist = _demo(tmp_path / "dist")
    (dist / ".licscan.yaml").write_text(PLANTED)
    assert _audit(tmp_path, "dist", "--format", "json", "-o", "r.json", monkeypatch=monkeypatch) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert [f["rule"] for f in report["findings"] if not f["waived"]].count("CUDA-EULA-TRANSLATION") == 1
    err = capsys.readouterr().err
    assert "dist/.licscan.yaml lies inside a scanned input and is not applied" in err


def test_item2_config_above_the_input_is_not_applied(tmp_path, monkeypatch):
    """A .licscan.yaml in a folder above the scanned PATH (a shared temporary folder) was applied: discovery now
    starts in the working directory and stops at its repository (here: none, so the working directory only)."""
    (tmp_path / ".licscan.yaml").write_text(PLANTED)
    work = tmp_path / "job"
    _demo(work / "dist")
    assert _audit(work, "dist", "--format", "json", "-o", "r.json", monkeypatch=monkeypatch) == 1


def test_item2_config_found_inside_the_input_is_refused(tmp_path, monkeypatch, capsys):
    """`cd dist && licscan audit .`: the configuration discovery finds lies inside the input: exit 2."""
    dist = _demo(tmp_path / "dist")
    (dist / ".licscan.yaml").write_text(PLANTED)
    assert _audit(dist, ".", monkeypatch=monkeypatch) == 2
    assert "a scanned tree may not configure its own gate" in capsys.readouterr().err


def test_item2_config_in_a_folder_everyone_may_write_is_refused(tmp_path, monkeypatch, capsys):
    work = tmp_path / "shared"
    _demo(work / "dist")
    (work / ".licscan.yaml").write_text(PLANTED)
    work.chmod(0o777)  # world-writable, no sticky bit: anyone could have put the file there
    assert _audit(work, "dist", monkeypatch=monkeypatch) == 2
    assert "every user may write" in capsys.readouterr().err
    assert main(["audit", str(work / "dist"), "--no-cache", "--jobs", "1", "--config",
                 str(work / ".licscan.yaml")]) == 0  # given explicitly: trusted (fail-on: never)


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.yaml"])
def test_item2_rules_outside_the_configuration_folder_are_not_read(tmp_path, monkeypatch, capsys, target):
    """`rules: [/etc/passwd]` read the file and echoed its lines into the CI log as parse errors."""
    (tmp_path / "outside.yaml").write_text("root:x:0:0:root:/root:/bin/bash\n")
    work = tmp_path / "repo"
    _demo(work / "dist")
    (work / ".licscan.yaml").write_text(f"rules: [{target!r}]\n")
    assert _audit(work, "dist", monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert "lies outside" in err and "the configuration's folder: not read" in err
    assert "root:x:0:0" not in err


def test_item2_rules_inside_a_repository_may_be_anywhere_in_it(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "policy").mkdir()
    shutil.copyfile(ROOT / "rules" / "packs" / "scale.yaml", repo / "policy" / "pack.yaml")
    text = (repo / "policy" / "pack.yaml").read_text().replace("pack: ", "pack: copy-", 1)
    ids = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("- id:")]
    for rule_id in ids:
        text = text.replace(rule_id, rule_id + "-COPY")
    (repo / "policy" / "pack.yaml").write_text(text)
    (repo / "sub").mkdir()
    (repo / "sub" / ".licscan.yaml").write_text("rules: [../policy/pack.yaml]\n")
    _demo(repo / "sub" / "dist")
    assert _audit(repo / "sub", "dist", "--format", "json", "-o", "r.json", monkeypatch=monkeypatch) == 1


@pytest.mark.parametrize("kind", ["fifo", "devzero-link", "large"])
def test_item2_rule_pack_that_is_not_a_small_regular_file_is_refused(tmp_path, kind):
    """A FIFO hung the gate, /dev/zero exhausted memory: packs are regular files of at most 4 MiB."""
    work = tmp_path / "repo"
    _demo(work / "dist")
    pack = work / "pack.yaml"
    if kind == "fifo":
        os.mkfifo(pack)
    elif kind == "devzero-link":
        pack.symlink_to("/dev/zero")
    else:
        pack.write_bytes(b"#" * (4 << 20) + b"\n")
    (work / ".licscan.yaml").write_text("rules: [pack.yaml]\n")
    proc = _run("audit", "dist", "--no-cache", cwd=work, timeout=120)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.decode()
    assert "Traceback" not in err
    expected = {"fifo": "not a regular file", "devzero-link": "lies outside", "large": "larger than 4194304 bytes"}
    assert expected[kind] in err
    proc = _run("rules", "validate", "pack.yaml", cwd=work, timeout=120)  # the same reader for `rules validate`
    assert proc.returncode == 2 and "Traceback" not in proc.stderr.decode()


# --- item 3: Markdown injection into $GITHUB_STEP_SUMMARY -------------------------------------------------------

def _kernel_module(folder: Path, version: str) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed (builds the kernel-module fixture)")
    src = folder / "mod.c"
    src.write_text(f'__attribute__((section(".modinfo"), used)) static const char a[] = "license=NVIDIA";\n'
                   f'__attribute__((section(".modinfo"), used)) static const char b[] = "version={version}";\n'
                   "int init_module(void) { return 0; }\n")
    out = folder / "nvidia.ko"
    subprocess.run(["gcc", "-c", "-O0", str(src), "-o", str(out)], check=True)
    src.unlink()
    return out


def _html_of_markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").enable("strikethrough").render(text)


def test_item3_markdown_summary_has_no_link_image_or_mention(tmp_path, monkeypatch):
    """A version (here a kernel module's .modinfo) and a member path with Markdown rendered a phishing link, a
    tracking pixel and a mention in the step summary."""
    dist = tmp_path / "dist"
    _demo(dist / "[Approved](http:evil.example) ![x](https:evil.example) @octocat")
    (dist / "mod").mkdir()
    _kernel_module(dist / "mod", MARKDOWN_PAYLOAD)
    assert _audit(tmp_path, "dist", "--format", "markdown", "-o", "s.md", monkeypatch=monkeypatch) == 1
    text = (tmp_path / "s.md").read_text(encoding="utf-8")
    assert "nvidia" in text.lower() and "12.4.127" in text  # the payload is shown, as text
    rendered = _html_of_markdown(text)
    assert "<a " not in rendered and "<img" not in rendered
    import re

    outside_code = re.sub(r"<code>.*?</code>", "", rendered, flags=re.S)  # GitHub links no mention inside code
    assert "octocat" in outside_code and "@octocat" not in outside_code  # a WORD JOINER follows the @
    assert "https://" not in text  # no bare URL for GFM's autolinks either


def test_markdown_escaping_renders_literally():
    hostile = "*b* _i_ `c` <b>h</b> &amp; | [l](u) ![i](u) ~~s~~ www.evil.example mailto:x@y.z #12"
    rendered = _html_of_markdown(f"| a |\n|---|\n| {escape.markdown(hostile)} |\n")
    for tag in ("<em>", "<strong>", "<code>", "<b>", "<a ", "<img", "<s>", "<del>"):
        assert tag not in rendered
    assert "&amp;amp;" in rendered  # the entity is shown as typed
    assert escape.markdown("- item") == "\\- item" and escape.markdown("1. x") == "1\\. x"


# --- item 4: terminal and CI-log injection ----------------------------------------------------------------------

def _assert_inert(text: str, log: bool = True) -> None:
    """No control or bidirectional character; for what a CI log shows (``log``), no workflow command either."""
    for char in ("\x1b", "\x07", "\u202e", "\r"):
        assert char not in text, repr(char)
    if log:
        assert "##[" not in text
        for line in text.splitlines():
            assert not line.lstrip().startswith("::"), line


def test_item4_text_report_escapes_control_sequences_and_workflow_commands(tmp_path, monkeypatch, capsys):
    for _number, name in enumerate(TERMINAL_NAMES):
        _demo(tmp_path / "dist" / name)
    assert _audit(tmp_path, "dist", monkeypatch=monkeypatch) == 1
    out = capsys.readouterr().out
    _assert_inert(out)
    assert "x\\n::notice title=licscan::License review passed\\n::stop-commands::x" in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in out and "evil\\u202egpj.so" in out and "a##\\x5berror]b" in out


def test_item4_path_at_the_start_of_a_line_cannot_be_a_workflow_command(tmp_path, monkeypatch, capsys):
    _demo(tmp_path / "::error::forged")
    assert _audit(tmp_path / "::error::forged", ".", monkeypatch=monkeypatch) == 1
    _assert_inert(capsys.readouterr().out)
    assert escape.terminal("::error::forged/libkern.so") == "\\x3a:error::forged/libkern.so"
    assert escape.terminal("  ::x") == "  \\x3a:x"


def test_item4_inspect_text_and_stderr_are_inert(tmp_path):
    data = (FIXTURES / "cuda13" / "kern_multi.fatbin").read_bytes()
    for name in TERMINAL_NAMES:
        safe = name.replace("/", "_")
        (tmp_path / safe).write_bytes(data[: len(data) // 2])  # truncated: a diagnostic for stderr too
        text = _run("inspect", safe, cwd=tmp_path)
        assert text.returncode == 3
        _assert_inert(text.stdout.decode())
        as_json = _run("inspect", safe, "--format", "json", cwd=tmp_path)
        assert as_json.returncode == 3 and as_json.stderr
        assert "Traceback" not in as_json.stderr.decode()
        _assert_inert(as_json.stderr.decode())
    missing = _run("audit", "no\x1b[2Jsuch\n::warning::x", cwd=tmp_path)
    assert missing.returncode == 2
    _assert_inert(_one_line(missing.stderr))


# --- item 6: YAML alias bomb ------------------------------------------------------------------------------------

def _bomb(levels: int = 10) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\nversion: 1\n"


def test_item6_alias_bomb_is_refused_without_expanding_it(tmp_path):
    text = _bomb()
    assert len(text) == 533  # ten levels of nine aliases
    data, problems = parse(text, "bomb.yaml")
    assert data is None
    # 1 + 10 keys + sum over the ten lists: 9^k + ... counted once per distinct node, never expanded
    assert [p.message for p in problems] == [
        f"YAML not accepted: aliases expand it to 4,412,961,518 nodes (at most {MAX_NODES:,} allowed)"]
    data, problems = parse("a: &a [1, *a]\n", "loop.yaml")
    assert data is None and "refers to a node that contains it" in problems[0].message
    data, problems = parse("base: &b {x: 1}\nuse: *b\n", "ok.yaml")  # a small alias stays allowed
    assert problems == [] and data["use"]["x"] == 1


def test_item6_alias_bomb_config_and_pack_exit_2(tmp_path):
    _demo(tmp_path / "dist")
    (tmp_path / "bomb.yaml").write_text(_bomb())
    for args in (["audit", "dist", "--no-cache", "--config", "bomb.yaml"], ["rules", "validate", "bomb.yaml"],
                 ["audit", "dist", "--no-cache", "--rules", "bomb.yaml"]):
        proc = _run(*args, cwd=tmp_path, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "aliases expand it to 4,412,961,518 nodes" in proc.stderr.decode()


# --- item 7: SPDX tag-value injection ---------------------------------------------------------------------------

def test_item7_spdx_tag_value_names_cannot_write_tags(tmp_path):
    from spdx_tools.spdx.parser.tagvalue.tagvalue_parser import parse_from_file

    dist = tmp_path / "dist"
    dist.mkdir()
    name = "lib\nFileComment: reviewed and approved by legal\nPackageName: x<text>.so"
    shutil.copyfile(FIXTURES / "cuda13" / "libkern.so", dist / name)
    proc = _run("sbom", "dist", "--format", "spdx-tv", "-o", "s.spdx", "--no-cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "s.spdx").read_text(encoding="utf-8")
    assert "\nFileComment: reviewed" not in text and "\nPackageName: x" not in text
    document = parse_from_file(str(tmp_path / "s.spdx"))
    names = [f.name for f in document.files]
    assert "./dist/lib\\nFileComment: reviewed and approved by legal\\nPackageName: x\\x3ctext>.so" in names
    assert not any((f.comment or "") == "approved by legal" for f in document.files)


# --- item 8: non-UTF-8 names in every output format -------------------------------------------------------------

@pytest.fixture(scope="module")
def non_utf8_dist(tmp_path_factory):
    root = tmp_path_factory.mktemp("nonutf8")
    broot = os.fsencode(root)
    os.makedirs(os.path.join(broot, b"dist", b"d\xff"))
    for item in DEMO.iterdir():
        shutil.copyfile(item, os.path.join(broot, b"dist", b"d\xff", os.fsencode(item.name)))
    shutil.copyfile(FIXTURES / "cuda13" / "libkern.so", os.path.join(broot, b"dist", b"lib\xff.so"))
    with tarfile.open(os.path.join(broot, b"dist", b"t.tar"), "w", format=tarfile.GNU_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:
        tar.add(FIXTURES / "cuda13" / "libkern.so", arcname=os.fsdecode(b"lib\xfe.so"))
    return root


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "markdown", "html"])
def test_item8_audit_reports_with_non_utf8_names(non_utf8_dist, fmt):
    out = f"r-{fmt}"
    proc = _run("audit", "dist", "--no-cache", "--fail-on", "warning", "--format", fmt, "-o", out, cwd=non_utf8_dist)
    assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    text = (non_utf8_dist / out).read_bytes().decode("utf-8")  # valid UTF-8
    if fmt == "json":
        report = json.loads(text)
        paths = {f["path"] for f in report["findings"]}
        assert os.fsdecode(b"dist/d\xff/libkern.so") in paths  # lossless: the JSON escape \udcff
        assert any(c["paths"] == [os.fsdecode(b"dist/t.tar!/lib\xfe.so")] or os.fsdecode(b"dist/t.tar!/lib\xfe.so")
                   in c["paths"] for c in report["components"]) or any(
            d["path"] == os.fsdecode(b"dist/t.tar!/lib\xfe.so") for d in report["device_code"])
    elif fmt == "sarif":
        from licscan.report.sarif import schema

        document = json.loads(text)
        jsonschema.validate(document, schema())
        uris = {a["location"]["uri"] for a in document["runs"][0]["artifacts"]}
        assert "dist/d%FF/libkern.so" in uris
    else:
        assert "d\\xff" in text


@pytest.mark.parametrize("fmt", ["spdx-tv", "spdx-json", "cyclonedx-json"])
def test_item8_sboms_with_non_utf8_names(non_utf8_dist, fmt):
    out = non_utf8_dist / f"s-{fmt}"
    proc = _run("sbom", "dist", "--no-cache", "--format", fmt, "-o", out.name, cwd=non_utf8_dist)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    text = out.read_bytes().decode("utf-8")
    visible = "lib\\xff.so" if fmt == "spdx-tv" else json.dumps("lib\\xff.so")[1:-1]  # JSON doubles the \\
    assert visible in text and "\\udc" not in text
    if fmt == "spdx-tv":
        from spdx_tools.spdx.parser.tagvalue.tagvalue_parser import parse_from_file

        assert "./dist/lib\\xff.so" in {f.name for f in parse_from_file(str(out)).files}
    elif fmt == "cyclonedx-json":
        from licscan.sbom.cyclonedx import validate_json

        validate_json(text)


# --- item 9 (this part): CPE from .modinfo, --extract names, -o errors, closed stdout, SIGINT ---------------------

@pytest.mark.parametrize("version,cpe", [("580.159.04 x:y", None),
                                         ("580.65.06:beta", "cpe:2.3:a:nvidia:gpu_display_driver:580.65.06\\:beta:"
                                                            "*:*:*:*:*:*:*")])
def test_item9_modinfo_version_in_the_cpe(tmp_path, version, cpe):
    dist = tmp_path / "dist"
    dist.mkdir()
    _kernel_module(dist, version)
    for fmt in ("spdx-json", "spdx-tv", "cyclonedx-json"):
        proc = _run("sbom", "dist", "--no-cache", "--format", fmt, "-o", f"s.{fmt}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    document = json.loads((tmp_path / "s.spdx-json").read_text())
    cpes = [r["referenceLocator"] for p in document["packages"] for r in p.get("externalRefs", [])
            if r["referenceType"] == "cpe23Type" and "gpu_display_driver" in r["referenceLocator"]]
    assert cpes == ([cpe] if cpe else [])


def test_item9_extract_with_a_300_character_ptx_target(tmp_path):
    (tmp_path / "long.ptx").write_text("//\n// Generated by NVIDIA NVVM Compiler\n.version 8.0\n.target sm_90"
                                       + "a" * 300 + "\n.address_size 64\n.visible .entry k()\n{\n ret;\n}\n")
    proc = _run("inspect", "long.ptx", "--extract", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (written,) = os.listdir(tmp_path / "out")
    assert len(written.encode()) <= 200 and written.startswith("long.1.sm_90aaa") and written.endswith(".ptx")
    assert (tmp_path / "out" / written).read_text().startswith("//\n// Generated by NVIDIA NVVM Compiler")


@pytest.mark.parametrize("target,message", [
    ("folder", "is a folder"), ("missing/r.json", "does not exist"), ("/dev/full", "No space left on device"),
    ("/proc/version", "cannot write the output")])
@pytest.mark.parametrize("command", ["audit", "sbom", "inspect"])
def test_item9_unwritable_output_is_one_line_and_exit_2(tmp_path, target, message, command):
    _demo(tmp_path / "dist")
    (tmp_path / "folder").mkdir()
    args = {"audit": ["audit", "dist", "--no-cache", "--format", "json", "-o", target],
            "sbom": ["sbom", "dist", "--no-cache", "-o", target],
            "inspect": ["inspect", "dist/libkern.so", "-o", target]}[command]
    proc = _run(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in _one_line(proc.stderr)


def test_item9_standard_output_closed_early(tmp_path):
    _demo(tmp_path / "dist")
    env = dict(os.environ, CI="true")
    proc = subprocess.Popen([*LICSCAN, "audit", "dist", "--no-cache", "--format", "json"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # `licscan audit dist | true`: the reader is gone before the report is written
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 2
    assert _one_line(err) == "licscan: standard output was closed before the whole report was written"


@pytest.mark.parametrize("command", ["audit", "inspect"])
def test_item9_standard_output_closed_from_the_start(tmp_path, command):
    """`licscan audit dist >&-`: Python has no sys.stdout at all; one line and exit 2, not an internal error."""
    _demo(tmp_path / "dist")
    args = {"audit": ["audit", "dist", "--no-cache", "--format", "json"], "inspect": ["inspect", "dist/libkern.so"]}
    proc = _run(*args[command], cwd=tmp_path, stdout=None, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 2
    assert _one_line(proc.stderr) == "licscan: standard output is closed: nowhere to write the report (give -o FILE)"


def test_item9_sigint_is_one_line_and_exit_130(tmp_path):
    """A real SIGINT during the scan (delivered by the process to itself from inside the scan, so the test does not
    depend on timing): one line, exit 130, no traceback."""
    _demo(tmp_path / "dist")
    code = ("import os, signal, sys, time\n"
            "import licscan.audit as audit\n"
            "def scan(*args, **kwargs):\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    time.sleep(60)\n"
            "audit.scan = scan\n"
            "from licscan.cli import main\n"
            "sys.exit(main(['audit', 'dist', '--no-cache']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.returncode == 130
    assert _one_line(proc.stderr) == "licscan: interrupted"


def test_internal_error_is_one_line_and_exit_4(tmp_path, monkeypatch, capsys):
    import licscan.audit as audit

    def broken(*args, **kwargs):
        raise ValueError("boom\nsecond line")

    monkeypatch.setattr(audit, "scan", broken)
    monkeypatch.delenv("LICSCAN_DEBUG", raising=False)
    _demo(tmp_path / "dist")
    assert _audit(tmp_path, "dist", monkeypatch=monkeypatch) == 4
    assert _one_line(capsys.readouterr().err).startswith("licscan: internal error: ValueError: boom\\nsecond line")


# --- item 10: reports and SBOMs written to a temporary file beside the target, then renamed ---------------------

def test_item10_a_failed_output_leaves_every_report_as_it_was(tmp_path):
    _demo(tmp_path / "dist")
    (tmp_path / "r.json").write_text("previous report\n")
    (tmp_path / "r.json").chmod(0o640)
    proc = _run("audit", "dist", "--no-cache", "--format", "json", "-o", "r.json", "--format", "sarif", "-o",
                "/dev/full", cwd=tmp_path)
    assert proc.returncode == 2 and "/dev/full" in _one_line(proc.stderr)
    assert (tmp_path / "r.json").read_text() == "previous report\n"
    assert sorted(os.listdir(tmp_path)) == ["dist", "r.json"]  # no temporary file left behind
    proc = _run("audit", "dist", "--no-cache", "--fail-on", "warning", "--format", "json", "-o", "r.json",
                cwd=tmp_path)
    assert proc.returncode == 1
    assert json.loads((tmp_path / "r.json").read_text())["schema"] == "licscan-report/1"
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o640  # the file's mode is kept


def test_item10_sbom_on_a_full_disk_leaves_no_empty_file(tmp_path):
    _demo(tmp_path / "dist")
    (tmp_path / "s.spdx").write_text("previous sbom\n")
    from licscan import cli

    with pytest.raises(cli.OutputError, match="No space left on device"):
        cli.write_outputs([(str(tmp_path / "s.spdx"), "new\n"), ("/dev/full", "x" * 100_000)])
    assert (tmp_path / "s.spdx").read_text() == "previous sbom\n"
    proc = _run("sbom", "dist", "--no-cache", "--format", "spdx-tv", "-o", "s.spdx", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "s.spdx").read_text().startswith("## Document Information\nSPDXVersion: SPDX-2.3")


def test_item10_output_through_a_symlink_and_to_dev_null(tmp_path):
    from licscan import cli

    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    cli.write_outputs([(str(tmp_path / "link.txt"), "new"), (os.devnull, "discarded")])
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real.txt").read_text() == "new"


# --- item 13: --extract follows a symlink; a FIFO or socket on the command line ---------------------------------

def test_item13_extract_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    (tmp_path / "victim").write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "kern_multi.1.sm_75.cubin").symlink_to(tmp_path / "victim")
    shutil.copyfile(FIXTURES / "cuda13" / "kern_multi.fatbin", tmp_path / "kern_multi.fatbin")
    proc = _run("inspect", "kern_multi.fatbin", "--extract", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "victim").read_text() == "keep me\n"
    target = out / "kern_multi.1.sm_75.cubin"
    assert not target.is_symlink() and target.read_bytes()[:4] == b"\x7fELF"
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


@pytest.mark.parametrize("kind", ["fifo", "socket"])
@pytest.mark.parametrize("command", ["audit", "inspect", "sbom"])
def test_item13_fifo_or_socket_on_the_command_line(tmp_path, kind, command):
    """It was reported as "every input was read completely" (audit) or waited on forever (inspect)."""
    path = tmp_path / "special"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    args = {"audit": ["audit", "special", "--no-cache"], "inspect": ["inspect", "special"],
            "sbom": ["sbom", "special", "--no-cache", "-o", "s.json"]}[command]
    proc = _run(*args, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert line == (f"licscan: special: is {'a FIFO' if kind == 'fifo' else 'a socket'}, not a file or folder: "
                    "nothing licscan can read completely")


# --- the escaping functions themselves --------------------------------------------------------------------------

def test_escape_functions_per_medium():
    hostile = "a\x1b[2J\nb\u202ec\udcffd"
    assert escape.terminal(hostile) == "a\\x1b[2J\\nb\\u202ec\\xffd"
    assert escape.html('<a href="x">' + hostile) == "&lt;a href=&quot;x&quot;&gt;a\\x1b[2J\\nb\\u202ec\\xffd"
    assert escape.sarif_text("see [here](https://evil) \\") == "see \\[here\\](https://evil) \\\\"
    assert escape.sbom_text("x\nFileComment: y</TEXT>") == "x\\nFileComment: y\\x3c/TEXT>"
    assert escape.sbom_text("licence\ntext", multiline=True) == "licence\ntext"
    assert escape.cpe_value("13.0") == "13.0" and escape.cpe_value("1 2") is None
    assert escape.cpe_value("a:b*c") == "a\\:b\\*c"
    assert escape.markdown_code("a`b|c", table=True) == "`` a`b\\|c ``"
    assert escape.terminal("plain text, nothing to do") == "plain text, nothing to do"


# --- docs/github-actions.yml is safe by default ------------------------------------------------------------------

def test_example_workflow_is_safe_by_default():
    from ruamel.yaml import YAML

    workflow = YAML(typ="safe", pure=True).load((ROOT / "docs" / "github-actions.yml").read_text())
    triggers = workflow.get("on") or workflow.get(True)  # YAML 1.1 reads a bare `on` as true
    assert "pull_request_target" not in triggers
    assert workflow["permissions"] == {"contents": "read"}
    build, gate = workflow["jobs"]["build"], workflow["jobs"]["licence-gate"]
    assert "security-events" not in build["permissions"] and gate["permissions"]["security-events"] == "write"
    assert gate["needs"] == "build"
    build_runs = " ".join(step.get("run", "") for step in build["steps"])
    gate_runs = " ".join(step.get("run", "") for step in gate["steps"])
    assert "licscan" not in build_runs  # the gate never runs where the contributor's build ran
    assert "--config .licscan.yaml" in gate_runs and "--no-cache" in gate_runs
    assert [s["with"]["persist-credentials"] for s in build["steps"] + gate["steps"]
            if s.get("uses", "").startswith("actions/checkout")] == [False, False]


# --- the hostile corpus's name categories through every output format -------------------------------------------

@pytest.fixture(scope="module")
def hostile_names(tmp_path_factory):
    from tests.hostile import make_corpus

    root = tmp_path_factory.mktemp("hostile-names")
    make_corpus.build(root / "corpus", only=["control_names", "non_utf8", "planted_config"])
    return root


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "markdown", "html", "spdx-tv", "spdx-json",
                                 "cyclonedx-json"])
def test_hostile_names_in_every_output_format(hostile_names, fmt):
    command = ["sbom", "corpus", "--format", fmt] if fmt.startswith(("spdx", "cyclonedx")) else \
        ["audit", "corpus", "--format", fmt]
    proc = _run(*command, "--no-cache", "-o", f"out-{fmt}", cwd=hostile_names)
    assert proc.returncode in (0, 3), proc.stderr.decode()[-3000:]
    assert "Traceback" not in proc.stderr.decode()
    _assert_inert(proc.stderr.decode())
    text = (hostile_names / f"out-{fmt}").read_bytes().decode("utf-8")
    if fmt in ("text", "markdown", "html", "spdx-tv"):
        _assert_inert(text, log=fmt in ("text", "markdown"))
    if fmt in ("text", "html", "spdx-tv"):  # (the Markdown summary names only findings and components)
        assert "\\x1b]0;pwned\\x07" in text and "\\xff" in text
    if fmt == "spdx-tv":
        from spdx_tools.spdx.parser.tagvalue.tagvalue_parser import parse_from_file

        files = parse_from_file(str(hostile_names / f"out-{fmt}")).files
        assert not any((f.comment or "").startswith("reviewed and approved") for f in files)
    elif fmt == "sarif":
        from licscan.report.sarif import schema

        jsonschema.validate(json.loads(text), schema())
    elif fmt == "cyclonedx-json":
        from licscan.sbom.cyclonedx import validate_json

        validate_json(text)
    elif fmt in ("json", "spdx-json"):
        json.loads(text)


def _unprivileged() -> list[str]:
    """Run as root without the capabilities that bypass file modes (as tests/test_hostile.py does)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes cannot be tested")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]


def test_item9_read_only_output_and_read_only_folder(tmp_path):
    """A read-only report is not replaced by the rename (exit 2, file unchanged); a writable report in a folder
    that is not is written in place; a new report in such a folder is exit 2."""
    _demo(tmp_path / "dist")
    (tmp_path / "r.json").write_text("old\n")
    (tmp_path / "r.json").chmod(0o444)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "r.json").write_text("old\n")
    (tmp_path / "locked").chmod(0o555)
    env = dict(os.environ, CI="true")

    def audit(out: str) -> subprocess.CompletedProcess:
        return subprocess.run([*_unprivileged(), *LICSCAN, "audit", "dist", "--no-cache", "--fail-on", "warning",
                               "--format", "json", "-o", out], cwd=tmp_path, capture_output=True, timeout=300, env=env)

    try:
        proc = audit("r.json")
        assert proc.returncode == 2 and _one_line(proc.stderr) == ("licscan: r.json: cannot write the output: "
                                                                   "Permission denied")
        assert (tmp_path / "r.json").read_text() == "old\n"
        proc = audit("locked/r.json")
        assert proc.returncode == 1, proc.stderr
        assert json.loads((tmp_path / "locked" / "r.json").read_text())["schema"] == "licscan-report/1"
        proc = audit("locked/new.json")
        assert proc.returncode == 2 and "cannot create a file in" in _one_line(proc.stderr)
    finally:
        (tmp_path / "locked").chmod(0o755)


@pytest.mark.parametrize("kind,reason", [("loop", "Too many levels of symbolic links"),
                                         ("dangling", "No such file or directory")])
def test_item13_link_on_the_command_line_that_leads_nowhere(tmp_path, kind, reason):
    if kind == "loop":
        (tmp_path / "a").symlink_to("b")
        (tmp_path / "b").symlink_to("a")
    else:
        (tmp_path / "a").symlink_to(tmp_path / "missing")
    proc = _run("audit", "a", "--no-cache", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert _one_line(proc.stderr) == f"licscan: a: cannot be read: {reason}"


def test_item9_sigint_in_forked_workers_is_still_one_line(tmp_path):
    """Ctrl-C reaches the whole process group: inspect's decode workers (forked) got it too and each printed a
    traceback. The SIGINT is sent from inside a worker to the group, so the test does not depend on timing."""
    code = ("import os, signal, sys, time\n"
            "import licscan.binary.images as images\n"
            "images.PARALLEL_THRESHOLD = 0\n"
            "def work(batch):\n"
            "    os.killpg(os.getpgid(0), signal.SIGINT)\n"
            "    time.sleep(60)\n"
            "images._work = work\n"
            "from licscan.cli import main\n"
            f"sys.exit(main(['inspect', {str(FIXTURES / 'cuda13' / 'kern_multi.fatbin')!r}, '--jobs', '2', "
            "'--notes', 'always']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=120,
                          start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.returncode == 130
    assert _one_line(proc.stderr) == "licscan: interrupted"


def test_sigint_inside_lief_is_deferred_until_the_call_returns():
    """lief's bindings abort the process (std::terminate) when a Python exception is raised while they run (seen on
    SIGINT during `import lief`): there the handler asks again 50 ms later instead of raising."""
    from licscan import cli

    namespace = {"__name__": "lief._native"}
    exec("import sys\ndef here():\n    return sys._getframe()\n", namespace)
    handler = cli._interrupt_handler()
    previous = signal.getsignal(signal.SIGALRM)
    try:
        assert handler(signal.SIGINT, namespace["here"]()) is None
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0  # asked again shortly
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, sys._getframe())
