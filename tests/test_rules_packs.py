"""Built-in rule packs: per-rule test directories (tests/rules/<RULE-ID>/{positive,negative}/), meta-tests that
keep them honest, the invalid-pack corpus (tests/rules/invalid/) with error snapshots, and the pack JSON Schema.

Regenerate snapshots after an intended change with LICSCAN_UPDATE_SNAPSHOTS=1 and review the diff.
"""

import argparse
import io
import json
import os
from pathlib import Path

import jsonschema
import pytest

from licscan.cli.main_rules import cmd_validate
from licscan.rules.engine import evaluate
from licscan.rules.errors import RulePackError
from licscan.rules.loader import RulePack, all_rules, builtin_pack_paths, load_packs
from licscan.rules.yamlsource import parse, plain

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "rules"
INVALID = CASES / "invalid"
UPDATE = os.environ.get("LICSCAN_UPDATE_SNAPSHOTS", "") not in ("", "0")
RULES = all_rules(load_packs())
RULE_IDS = [rule.id for rule in RULES]
KEYS = ("rule", "path", "component", "severity", "verdict", "message", "evidence", "fingerprint")


def _report_schema():
    return json.loads((ROOT / "licscan" / "schemas" / "report.schema.json").read_text())


def _run(folder: Path):
    document = json.loads((folder / "report.json").read_text())
    findings = [f.to_json() for f in evaluate(document, load_packs())]
    return document, [{k: f[k] for k in KEYS} for f in findings], findings


@pytest.mark.parametrize("rule_id", RULE_IDS)
@pytest.mark.parametrize("kind", ["positive", "negative"])
def test_rule_directory(rule_id, kind):
    folder = CASES / rule_id / kind
    document, got, full = _run(folder)
    jsonschema.validate({**document, "findings": full}, _report_schema())
    expected_path = folder / "expected.json"
    if UPDATE:
        expected_path.write_text(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert expected_path.is_file(), f"{expected_path} is missing (LICSCAN_UPDATE_SNAPSHOTS=1 writes it)"
    assert got == json.loads(expected_path.read_text())
    mine = [f for f in got if f["rule"] == rule_id]
    if kind == "positive":
        assert mine, f"{rule_id}: the positive case gives no finding of the rule"
    else:
        assert not mine, f"{rule_id}: the negative case gives {mine}"


def test_every_rule_has_tests():
    missing = [f"{r}/{k}" for r in RULE_IDS for k in ("positive", "negative")
               if not (CASES / r / k / "report.json").is_file() or not (CASES / r / k / "expected.json").is_file()]
    assert not missing, f"rules without a test directory: {missing}"


def test_no_orphan_test_directories():
    folders = {p.name for p in CASES.iterdir() if p.is_dir() and p.name != "invalid"}
    assert folders <= set(RULE_IDS), f"test directories for no rule: {sorted(folders - set(RULE_IDS))}"


def test_rule_ids_unique_across_packs(tmp_path):
    assert len(RULE_IDS) == len(set(RULE_IDS))
    reused = tmp_path / "reuse.yaml"
    reused.write_text((ROOT / "rules" / "packs" / "scale.yaml").read_text())
    with pytest.raises(RulePackError) as error:
        load_packs([reused])
    assert "SCALE-FREE-LICENSE" in str(error.value) and "already defined" in str(error.value)


def test_every_rule_quotes_a_dated_clause():
    for rule in RULES:
        assert rule.clause.text and rule.clause.section and rule.clause.document
        assert rule.clause.date, rule.id


INVALID_FILES = sorted(p.name for p in INVALID.glob("*.yaml"))


@pytest.mark.parametrize("name", INVALID_FILES)
def test_invalid_pack_snapshot(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    out, err = io.StringIO(), io.StringIO()
    code = cmd_validate(argparse.Namespace(files=[f"tests/rules/invalid/{name}"]), out, err)
    assert code == 2
    snapshot = INVALID / (name[:-5] + ".expected.txt")
    if UPDATE or not snapshot.exists():
        snapshot.write_text(err.getvalue())
    assert err.getvalue() == snapshot.read_text()
    for line in err.getvalue().splitlines():
        if not line.startswith(" "):
            assert line.startswith(f"tests/rules/invalid/{name}:") and line.split(":")[1].isdigit(), line


def test_validate_builtin_packs_ok():
    out, err = io.StringIO(), io.StringIO()
    assert cmd_validate(argparse.Namespace(files=[str(p) for p in builtin_pack_paths()]), out, err) == 0
    assert err.getvalue() == ""


def test_builtin_packs_match_json_schema():
    schema = json.loads((ROOT / "rules" / "schema" / "rule-pack.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in builtin_pack_paths():
        data, problems = parse(path.read_text(), str(path))
        assert not problems
        jsonschema.validate(plain(data), schema)


def test_duplicate_keys_reported_all_at_once():
    text = (INVALID / "duplicate-keys.yaml").read_text()
    with pytest.raises(RulePackError) as error:
        RulePack.from_yaml(text, "dup.yaml")
    messages = [str(p) for p in error.value.problems]
    assert "dup.yaml:7:5: duplicate key 'severity' (first at line 6)" in messages
    assert any(m.startswith("dup.yaml:15:1: duplicate key 'pack'") for m in messages)
    assert any("duplicate key 'equals'" in m for m in messages)
