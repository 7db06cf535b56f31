"""The table of legal cases (tests/legal_cases.yaml): facts in, expected findings out (rule, verdict, the title and
section of the clause cited). Every licence document and text version of rules/licenses/documents.yaml is covered
by at least one case, and every cited clause is a verbatim quote of rules/licenses/documents.yaml (itself checked
against primary copies by tests/test_license_documents.py)."""
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from licscan.rules import documents
from licscan.rules.config import Config
from licscan.rules.engine import evaluate
from licscan.rules.loader import load_packs

ROOT = Path(__file__).resolve().parent.parent
CASES = YAML(typ="safe", pure=True).load((ROOT / "tests" / "legal_cases.yaml").read_text(encoding="utf-8"))["cases"]
PACKS = load_packs()
DEFAULT_LICENSE = {"sdk-library": "LicenseRef-NVIDIA-CUDA-EULA", "developer-tool": "LicenseRef-NVIDIA-CUDA-EULA",
                   "driver": "LicenseRef-NVIDIA-Driver"}


def document_of(case: dict) -> dict:
    facts = case["facts"]
    components = []
    for index, c in enumerate(facts.get("components") or ()):
        kind = c.get("kind", "sdk-library")
        components.append({"id": f"c{index}", "name": c["name"], "kind": kind, "version": c.get("version"),
                           "vendor": c.get("vendor", "NVIDIA"), "license": c.get("license", DEFAULT_LICENSE.get(kind)),
                           "paths": [c["path"]], "evidence": [f"{c['path']}: {e}" for e in c.get("evidence") or ()],
                           "properties": dict(c.get("props") or {})})
    for index, t in enumerate(facts.get("texts") or ()):
        components.append({"id": f"t{index}", "name": t["document"], "kind": "license-text", "version": None,
                           "vendor": "NVIDIA", "license": None, "paths": [t["path"]], "evidence": [],
                           "properties": {"document": t["document"], "sha256": "0" * 64}})
    device = []
    for d in facts.get("device_code") or ():
        parts = str(d["toolkit"]).split(".")
        toolkit = ({"min": d["toolkit"], "max": d["toolkit"], "exact": d["toolkit"]} if len(parts) == 3
                   else {"min": d["toolkit"], "max": d["toolkit"], "exact": None})
        device.append({"path": d["path"], "kind": d["kind"], "arch": d["arch"], "container": "nv_fatbin",
                       "toolkit": toolkit, "compression": "none", "size": 100, "producer": None})
    dists = [{"ecosystem": "pypi", "name": d["name"], "path": d["path"], "version": "1.0",
              "license_declared": d.get("license"), "license_files": []} for d in facts.get("dists") or ()]
    return {"schema": "licscan-report/1", "inputs": ["dist"], "components": components, "device_code": device,
            "distributions": dists, "findings": [], "diagnostics": [], "special_files": []}


def run(case: dict):
    config = Config(governing_text=case.get("policy", "published-with-toolkit"))
    return evaluate(document_of(case), PACKS, config)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_legal_case(case):
    findings = run(case)
    got = sorted([f.rule, f.verdict.value, f.clause.document, f.clause.section] for f in findings)
    assert got == sorted(case["expect"]), "\n".join(f"{f.rule} {f.verdict.value}: {f.message}" for f in findings)
    severity = {"violation": "error", "review": "warning", "undetermined": "note"}
    for finding in findings:
        if finding.rule != "CUDA-EULA-TRANSLATION-PRE-CLAUSE":  # a note that says why 1.2(8) is not reported
            assert finding.severity.value == severity[finding.verdict.value], finding.rule
    for needle in case.get("evidence", ()):
        assert any(needle in line for f in findings for line in f.evidence), (needle, [f.evidence for f in findings])


def test_at_least_forty_cases_covering_every_text():
    assert len(CASES) >= 40
    covered = {c for case in CASES for c in case.get("covers", ())}
    for doc in documents.load().documents.values():
        if not doc.texts:
            assert doc.id in covered, doc.id
        for text_id in doc.texts:
            assert f"{doc.id}/{text_id}" in covered, f"{doc.id}/{text_id}"


def test_cited_clauses_are_verbatim_quotes():
    quotes = {(t.title, c.section, c.quote) for t in documents.load().all_texts() for c in t.clauses.values()}
    for case in CASES:
        for finding in run(case):
            key = (finding.clause.document, finding.clause.section, " ".join(finding.clause.text.split()))
            if finding.rule == "CUDA-EULA-TRANSLATION-PRE-CLAUSE":
                continue  # cites the clause its text lacks, from the pack
            assert key in quotes, (case["id"], key)


def test_rules_cite_public_urls_or_docs_licenses_md():
    """Finding 9: rules cite docs/licenses.md (anchors that exist) or public URLs, never internal notes."""
    import re

    docs = (ROOT / "docs" / "licenses.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', docs))
    for pack in PACKS:
        for rule in pack.rules:
            for ref in rule.references:
                if ref.startswith("https://"):
                    continue
                assert ref.startswith("docs/licenses.md#"), (rule.id, ref)
                assert ref.split("#", 1)[1] in anchors, (rule.id, ref)
            text = " ".join((rule.message, rule.rationale, rule.remediation, *rule.references))
            assert not re.search(r"eula\.md|translation-layers\.md|anchors\.md|DESIGN [A-Z]\d", text), rule.id
    for path in (ROOT / "rules" / "packs").glob("*.yaml"):
        assert not re.search(r"eula\.md|translation-layers\.md|shared/knowledge", path.read_text()), path


def test_supplement_title_is_spelled_as_in_the_texts():
    """Finding 9: "CUDA Toolkit Supplement to Software License Agreement for NVIDIA Software Development Kits"."""
    titles = {rule.clause.document for pack in PACKS for rule in pack.rules}
    assert "CUDA Toolkit Supplement to the License Agreement for NVIDIA Software Development Kits" not in titles
    assert "CUDA Toolkit Supplement to Software License Agreement for NVIDIA Software Development Kits" in titles


def test_pack_clauses_are_verbatim_quotes_or_marked():
    """Every clause a built-in pack quotes occurs in the quotes of rules/licenses/documents.yaml (verified against
    primary copies), or is a shorter excerpt of one."""
    quotes = [c.quote for t in documents.load().all_texts() for c in t.clauses.values()]
    for pack in PACKS:
        for rule in pack.rules:
            text = " ".join(rule.clause.text.split())
            assert any(text in q for q in quotes), rule.id
