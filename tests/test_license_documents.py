"""rules/licenses/documents.yaml: every quoted clause occurs verbatim in every primary copy of its text, every
primary copy has the recorded sha256, and no full licence text is committed.

The primary copies are fetched from the registries (PyPI wheels, Debian packages) into the test cache
(tests/licence_copies.py); the network tests run with LICSCAN_REALWORLD=1 or when the packages are cached.
"""
import hashlib
import re
from pathlib import Path

import licence_copies
import pytest

from licscan.rules import documents

ROOT = Path(__file__).resolve().parent.parent
DOCS = documents.load()
PRIMARY = [(t, c) for t in DOCS.all_texts() for c in t.copies if c.kind == "primary"]


def _id(pair):
    text, copy = pair
    return f"{text.document}/{text.id}/{copy.registry}:{copy.package}={copy.version}"


@pytest.mark.realworld
@pytest.mark.parametrize("pair", PRIMARY, ids=[_id(p) for p in PRIMARY])
def test_quotes_verbatim_in_primary_copy(pair, request):
    text, copy = pair
    raw = licence_copies.copy_or_skip(copy, request.config)
    assert hashlib.sha256(raw).hexdigest() == copy.sha256, f"{copy.label}: not the copy that was read"
    body = documents.normalise(raw, copy.format)
    missing = [c.id for c in text.clauses.values() if c.quote not in body]
    assert not missing, f"{copy.label}: quotes not found verbatim: {missing}"
    lower = body.lower()
    assert [p for p in text.phrases if p not in lower] == []
    for clause in text.absent:
        other = next((t.clauses[clause] for t in DOCS.document(text.document).texts.values()
                      if clause in t.clauses), None)
        if other is not None:
            assert other.quote not in body, f"{copy.label}: has {clause}, recorded as absent"


def test_every_text_has_a_copy_and_every_quote_a_section():
    for text in DOCS.all_texts():
        assert text.copies, f"{text.document}/{text.id}: no copy recorded"
        for copy in text.copies:
            if copy.kind == "primary":
                assert copy.registry in ("pypi", "debian") and copy.package and copy.version and copy.member
                assert re.fullmatch(r"[0-9a-f]{64}", copy.sha256 or "")
            else:
                assert copy.kind == "secondary" and (copy.url or "").startswith("https://")
        for clause in text.clauses.values():
            assert clause.section and clause.quote
        if not text.examined:
            assert not text.clauses, "an unexamined text cannot be quoted"


def test_only_short_quotations_are_committed():
    """NVIDIA's texts are never committed: no quote is longer than 700 characters, and the whole table holds less
    than a tenth of the smallest NVIDIA text it describes (the 18,174-byte cuDNN License.txt)."""
    quotes = [c.quote for t in DOCS.all_texts() for c in t.clauses.values()]
    assert max(len(q) for q in quotes) < 700
    # distinct quotations: a sentence quoted word for word for several texts (the 2018 + 2020 + 2021 + 2024 EULAs,
    # the Math Libraries agreement of cuDSS and of the other math libraries) is committed once; 14,936 characters
    # counted per text (6,975 distinct) before the 15,000 bound per text was replaced by this one
    assert sum(len(q) for q in {c.quote for t in DOCS.all_texts() if t.document != "scale-free"
                                for c in t.clauses.values()}) < 8000
    for path in (ROOT / "rules").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"1.6. Termination" not in data and b"IMPORTANT NOTICE -- READ CAREFULLY" not in data, path


def test_toolkit_mapping_leaves_unknown_releases_unknown():
    from licscan.model import ToolkitRange

    eula = DOCS.document("cuda-eula")
    assert [(t.id, b) for t, b, _ in eula.for_release(ToolkitRange.of_version("11.2.2"))] == [("2020-11-02", "primary")]
    assert [(t.id, b) for t, b, _ in eula.for_release(ToolkitRange.of_version("11.8.89"))] == [("2021-10-08", "primary")]
    assert [(t.id, b) for t, b, _ in eula.for_release(ToolkitRange.of_version("12.4.131"))] == [("2024-01-12", "primary")]
    assert [(t.id, b) for t, b, _ in eula.for_release(ToolkitRange.of_version("12.9.86"))] == [("2025-01-07", "inferred")]
    # 9.x is a different agreement, 11.4.3 was never examined, 13.2+ is not mapped to the January 2026 text.
    for version in ("9.2.148", "10.2.89", "11.4.3", "11.5.1", "13.2.0", "13.5.37"):
        assert eula.for_release(ToolkitRange.of_version(version)) is None, version
    driver = DOCS.document("nvidia-driver")
    assert driver.for_release(ToolkitRange.of_version("470.256.02"))[0][0].id == "customer-use"
    assert driver.for_release(ToolkitRange.of_version("535.261.03"))[0][:2] == (driver.text("driver-agreement"), "primary")
    assert driver.for_release(ToolkitRange.of_version("580.95.05"))[0][1] == "inferred"
    assert driver.for_release(ToolkitRange.of_version("525.60.13")) is None


def test_translation_clause_only_in_texts_from_october_2021():
    eula = DOCS.document("cuda-eula")
    has = {tid: text.has("translation").name for tid, text in eula.texts.items()}
    assert has == {"2018-07-26": "FALSE", "2020-11-02": "FALSE", "2021-10-08": "TRUE", "2024-01-12": "TRUE",
                   "2025-01-07": "UNKNOWN", "2026-01-26": "UNKNOWN"}
    # Finding 5: the OSI sentence of 1.1.6 is already in the Nov 2020 text, not new in Oct 2021.
    assert eula.text("2020-11-02").has("osi-development").name == "TRUE"
    assert eula.text("2018-07-26").has("osi-development").name == "FALSE"
