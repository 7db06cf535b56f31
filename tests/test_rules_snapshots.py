"""The built-in rule packs are read from their JSON snapshots (licscan.knowledge.pack_snapshot, rules/packs/*.json)
while those were made from the packs' current YAML: the same rules, each at its place in the YAML, without
ruamel.yaml's pure-Python parse; a stale snapshot is never used."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from licscan import knowledge
from licscan.rules.errors import Span
from licscan.rules.loader import RulePack, builtin_pack_paths, load_packs
from licscan.rules.yamlsource import builtin_data

pytestmark = pytest.mark.unit


def _same(a: object) -> str:
    """A value's repr without the addresses of the compiled conditions' functions."""
    return re.sub(r" at 0x[0-9a-f]+", "", repr(a))


def test_every_builtin_pack_has_a_current_snapshot():
    paths = builtin_pack_paths()
    assert [p.name for p in paths] == ["cuda-eula.yaml", "nvidia-driver.yaml", "nvidia-other.yaml", "scale.yaml"]
    for path in paths:
        assert knowledge.pack_snapshot(str(path)) is not None, f"stale snapshot of {path.name}: " \
                                                               "run python -m licscan.knowledge"


def test_a_pack_from_its_snapshot_is_the_pack_from_its_yaml():
    from_snapshots = load_packs()
    from_yaml = [RulePack.from_path(path) for path in builtin_pack_paths()]
    assert [_same(p) for p in from_snapshots] == [_same(p) for p in from_yaml]
    assert [r.span for p in from_snapshots for r in p.rules] == [r.span for p in from_yaml for r in p.rules]
    first = from_snapshots[0].rules[0]
    assert (first.id, first.span) == ("CUDA-EULA-TRANSLATION", Span(str(builtin_pack_paths()[0]), 16, 5))


def test_a_stale_or_damaged_snapshot_is_not_used(tmp_path):
    source = builtin_pack_paths()[0]
    yaml, json = tmp_path / source.name, tmp_path / source.with_suffix(".json").name
    shutil.copy(source, yaml)
    shutil.copy(source.with_suffix(".json"), json)
    assert builtin_data(str(yaml)) is not None
    # The YAML edited (a comment is enough): the snapshot was made from other bytes.
    yaml.write_text(yaml.read_text() + "# edited\n")
    assert knowledge.pack_snapshot(str(yaml)) is None and builtin_data(str(yaml)) is None
    pack = RulePack.from_path(yaml, builtin=True)
    assert _same(pack) == _same(RulePack.from_path(source)).replace(str(source), str(yaml))
    # A snapshot whose rule positions do not match its rules.
    shutil.copy(source, yaml)
    json.write_text(json.read_text().replace('"rules_at": [', '"rules_at": [[1, 1], ', 1))
    assert knowledge.pack_snapshot(str(yaml)) is not None and builtin_data(str(yaml)) is None
    json.write_text("{not json")
    assert knowledge.pack_snapshot(str(yaml)) is None


def test_the_snapshot_is_what_the_writer_makes_of_the_yaml():
    import json

    for path in builtin_pack_paths():
        snapshot = json.loads(Path(path).with_suffix(".json").read_text())
        document = knowledge._pack_document(path.read_text())
        assert document is not None
        assert (snapshot["data"], snapshot["rules_at"]) == (document["data"], document["rules_at"])


def test_a_pack_with_a_duplicate_key_gets_no_snapshot():
    assert knowledge._pack_document("version: 1\nname: x\nname: y\nrules: []\n") is None
