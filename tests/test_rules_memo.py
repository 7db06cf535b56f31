"""A rule's condition is evaluated once per distinct set of the values it reads (licscan/rules/memo.py): the same
findings as evaluating it for every fact, far fewer evaluations over the thousands of device images of a library."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from licscan.rules import conditions, engine, memo
from licscan.rules.conditions import Context, compile_condition
from licscan.rules.engine import evaluate
from licscan.rules.errors import Span
from licscan.rules.facts import Fact, FactIndex
from licscan.rules.loader import load_packs
from licscan.rules.versions import Tri

CASES = Path(__file__).resolve().parent / "rules"
PACKS = load_packs()
DOCUMENTS = sorted(CASES.glob("*/*/report.json"))


class _Unmemoized:
    """What the engine did before the memo: the condition evaluated for every fact."""

    def __init__(self, condition: conditions.Condition) -> None:
        self.evaluate = condition.evaluate


def _condition(data: dict, scopes: tuple[str, ...] = ("component",)) -> conditions.Condition:
    condition, problems = compile_condition(data, scopes, "test", Span("test"))
    assert problems == [] and condition is not None
    return condition


class _AppliesEveryTime:
    """What the engine did before: whether a rule applies, asked for every fact."""

    def __init__(self, rule, policy, ctx) -> None:
        self.rule, self.policy, self.ctx = rule, policy, ctx

    def __call__(self, fact):
        return engine._applies(self.rule, fact, self.policy, self.ctx)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_every_rule_case_gives_the_same_findings_memoized_or_not(path, monkeypatch):
    """Also with the translation clause set in the configuration (``applies_to`` then reads each fact's toolkit)."""
    document = json.loads(path.read_text())
    memoized = evaluate(copy.deepcopy(document), PACKS)
    configured = evaluate(copy.deepcopy(document), PACKS, _translation_clause_set())
    monkeypatch.setattr(engine, "Memo", _Unmemoized)
    monkeypatch.setattr(engine, "_AppliesMemo", _AppliesEveryTime)
    assert evaluate(copy.deepcopy(document), PACKS) == memoized
    assert evaluate(document, PACKS, _translation_clause_set()) == configured


def _translation_clause_set():
    from licscan.rules.config import config_from_yaml

    return config_from_yaml("eula:\n  translation-clause-since: '12.0'\n", "test.yaml")


def test_device_images_of_one_library_are_judged_once_per_rule(monkeypatch):
    """300 images of one file that differ only in their arch (what no device-code condition reads): as many
    evaluations of the rules' conditions as for one image, the same findings but for the images' evidence."""
    calls: list[str] = []
    real = conditions.All.evaluate

    def counting(self, fact, ctx):
        if fact.scope == "device_code":
            calls.append(fact.get("arch"))
        return real(self, fact, ctx)

    monkeypatch.setattr(conditions.All, "evaluate", counting)
    one = json.loads((CASES / "CUDA-EULA-TRANSLATION" / "positive" / "report.json").read_text())
    many = copy.deepcopy(one)
    first = one["device_code"][0]
    many["device_code"] = [dict(first, arch=f"sm_{n}") for n in range(300)]
    one["device_code"] = [first]
    evaluate(one, PACKS)
    once = len(calls)
    calls.clear()
    findings = evaluate(many, PACKS)
    assert once > 0 and len(calls) == once
    monkeypatch.setattr(engine, "Memo", _Unmemoized)
    calls.clear()
    assert evaluate(many, PACKS) == findings
    assert len(calls) == 300 * once


def _ctx(facts: list[Fact]) -> Context:
    return Context(FactIndex(facts), {})


def test_values_of_different_types_are_different_keys():
    """True, 1 and 1.0 are equal (and hash alike) but an ``equals: "1"`` test holds for 1 only."""
    condition = memo.Memo(_condition({"field": "version", "equals": "1"}))
    facts = [Fact("component", f"p{n}", {"version": value}) for n, value in enumerate((True, 1, 1.0, "1"))]
    ctx = _ctx(facts)
    assert [condition.evaluate(f, ctx).truth for f in facts] == [Tri.FALSE, Tri.TRUE, Tri.FALSE, Tri.TRUE]


def test_a_join_over_the_facts_own_scope_is_evaluated_per_fact():
    """``together_with`` over the fact's own scope leaves the fact itself out: two components alike in every field
    the condition reads are each joined with the other, not with themselves."""
    condition = memo.Memo(_condition({"together_with": {"scope": "component", "within": "input",
                                                        "match": {"field": "kind", "equals": "output-consumer"}}}))
    groups = {"input": "dist", "distribution": None, "path": None}
    first = Fact("component", "dist/a", {"kind": "output-consumer"}, "a", groups=groups)
    second = Fact("component", "dist/b", {"kind": "output-consumer"}, "b", groups=groups)
    ctx = _ctx([first, second])
    assert condition.evaluate(first, ctx).others == (second,)
    assert condition.evaluate(second, ctx).others == (first,)


def test_list_values_are_evaluated_per_fact():
    condition = memo.Memo(_condition({"field": "paths", "matches": "*/libcudart.so*"}))
    facts = [Fact("component", "x", {"paths": ["lib/libcudart.so.13"]}), Fact("component", "y", {"paths": ["x"]})]
    ctx = _ctx(facts)
    assert [condition.evaluate(f, ctx).truth for f in facts] == [Tri.TRUE, Tri.FALSE]
    assert condition.results == {}


def test_what_a_condition_reads():
    condition = _condition({"all": [{"field": "vendor", "equals": "NVIDIA"}, {"not": {"attachment_a": "listed"}},
                                    {"together_with": {"scope": "device_code", "within": "path",
                                                       "match": {"field": "kind", "equals": "ptx"}}}]})
    assert memo.reads(condition) == memo.Reads(("vendor", "basename", "properties.linked_from",
                                                "properties.declared_name", "name"), True, (("device_code", "path"),))


def test_a_configured_translation_clause_is_read_per_fact(monkeypatch):
    """With ``eula.translation-clause-since`` set, whether CUDA-EULA-TRANSLATION applies depends on each device
    image's toolkit, not only on the licence that governs it: CUDA 11.5 and 11.4 output share a governing text, and
    with the clause taken from 11.5 on only the 11.5 library gets the finding."""
    from licscan.rules.config import config_from_yaml

    document = json.loads((CASES / "CUDA-EULA-TRANSLATION" / "positive" / "report.json").read_text())
    first = document["device_code"][0]
    document["device_code"] = [
        dict(first, path=f"dist/lib{minor}.so", toolkit={"min": f"11.{minor}", "max": f"11.{minor}", "exact": None})
        for minor in (5, 4)]
    config = config_from_yaml("eula:\n  translation-clause-since: '11.5'\n", "c.yaml")
    found = evaluate(copy.deepcopy(document), PACKS, config)
    assert [f.path for f in found if f.rule == "CUDA-EULA-TRANSLATION"] == ["dist/lib5.so"]
    monkeypatch.setattr(engine, "Memo", _Unmemoized)
    monkeypatch.setattr(engine, "_AppliesMemo", _AppliesEveryTime)
    assert evaluate(document, PACKS, config) == found


def test_applies_to_is_asked_per_fact_when_it_reads_the_toolkit():
    """Two device images governed by the very same licence object but built by different toolkits: with the
    translation clause configured from 11.5 on, the rule applies to the 11.5 image and not to the 11.4 one (asked
    once per governing licence, the second image would get the first one's answer)."""
    from licscan.model import ToolkitRange
    from licscan.rules import facts as facts_module
    from licscan.rules import governing as gov
    from licscan.rules.config import config_from_yaml
    from licscan.rules.loader import all_rules

    rule = next(r for r in all_rules(PACKS) if r.id == "CUDA-EULA-TRANSLATION")
    config = config_from_yaml("eula:\n  translation-clause-since: '11.5'\n", "c.yaml")
    document = json.loads((CASES / "CUDA-EULA-TRANSLATION" / "positive" / "report.json").read_text())
    governing = facts_module.build(document).scope("device_code")[0].governing  # one object for both images
    assert governing[gov.DEFAULT_POLICY].document == "cuda-eula"
    facts = [Fact("device_code", f"lib{minor}.so", {}, toolkit=ToolkitRange.of_version(f"11.{minor}"),
                  governing=governing) for minor in (5, 4)]
    ctx = Context(FactIndex(facts), engine.settings_from(config))
    applies = engine._AppliesMemo(rule, gov.DEFAULT_POLICY, ctx)
    assert applies.per_fact
    assert [applies(f).truth for f in facts] == [Tri.TRUE, Tri.FALSE]


def test_linked_parts_of_one_binary_are_read_each_for_its_own_name():
    """Attachment A is read for the static library a part came from (``linked_from``): two parts of one toolkit
    linked into one binary share its basename and toolkit, not the answer (the second got the first's)."""
    document = json.loads((CASES / "CUDA-EULA-NOT-REDISTRIBUTABLE" / "negative" / "report.json").read_text())
    path = "dist/app.whl!/app/libs/host.dll"
    document["components"] = [
        {"evidence": [], "id": f"part-{name}", "kind": "sdk-library", "license": "LicenseRef-NVIDIA-CUDA-EULA",
         "name": name, "paths": [path], "properties": {"linked_from": library}, "vendor": "NVIDIA",
         "version": "12.4.127"}
        for name, library in (("cudart", "cudart_static.lib"), ("nvJitLink", "nvJitLink_static.lib"))]
    found = [(f.rule, f.component) for f in evaluate(copy.deepcopy(document), PACKS)]
    assert ("CUDA-EULA-NOT-REDISTRIBUTABLE", "part-nvJitLink") in found
    assert ("CUDA-EULA-NOT-REDISTRIBUTABLE", "part-cudart") not in found
    document["components"].reverse()
    assert sorted(found) == sorted((f.rule, f.component) for f in evaluate(document, PACKS))


def _unversioned_jitlink_beside(folder: str, text_document: str) -> list[dict]:
    """libnvJitLink.so with no release (no toolkit to pick a text by) and a CUDA EULA text in the same folder."""
    return [{"evidence": [], "id": f"jit-{folder}", "kind": "sdk-library", "license": "LicenseRef-NVIDIA-CUDA-EULA",
             "name": "nvJitLink", "paths": [f"dist/{folder}/libnvJitLink.so"], "properties": {}, "vendor": "NVIDIA",
             "version": None},
            {"evidence": [], "id": f"txt-{folder}", "kind": "license-text", "license": None, "name": text_document,
             "paths": [f"dist/{folder}/EULA.txt"], "properties": {"document": text_document}, "vendor": "NVIDIA",
             "version": None}]


@pytest.mark.parametrize("first", ["a", "b"])
def test_attachment_a_is_memoized_per_governing_text(first):
    """Two copies of libnvJitLink.so that agree on every field Attachment A reads and on their (unknown) toolkit,
    each beside a different EULA text, which then governs it: the 2024 text lists libnvJitLink.so, the 2018 text
    does not. Before, the first copy's result was reused for the second (no finding at all, or a violation of the
    2024 text for the listed copy, by the order of the components)."""
    document = json.loads((CASES / "CUDA-EULA-NOT-REDISTRIBUTABLE" / "positive" / "report.json").read_text())
    document["distributions"] = []
    parts = {"a": _unversioned_jitlink_beside("a", "cuda-eula-2024-01-12"),
             "b": _unversioned_jitlink_beside("b", "nvidia-sdk-eula-2018")}
    document["components"] = parts[first] + parts["b" if first == "a" else "a"]
    assert [(f.rule, f.path, f.verdict.value, f.clause.date) for f in evaluate(document, PACKS)] == [
        ("CUDA-EULA-NOT-REDISTRIBUTABLE", "dist/b/libnvJitLink.so", "violation", "2018-07-26")]
