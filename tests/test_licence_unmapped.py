"""Toolkit releases no CUDA EULA text is mapped to (rules/licenses/documents.yaml ``unmapped_texts``,
docs/licenses.md#cuda-eula-unmapped-releases): their parts' text stays unknown (the likely text is never applied),
and the review says which text the part probably falls under, why it is not applied and what to read."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML
from test_legal_cases import ROOT, run

from licscan.model import ToolkitRange
from licscan.rules import documents
from licscan.rules import governing as gov
from licscan.rules.versions import Tri, contains

EULA = documents.load().document("cuda-eula")
TITLE_2026 = "NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 26, 2026)"
TITLE_2024 = "NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 12, 2024)"


def _resolve(version: str, policy: str = gov.DEFAULT_POLICY, beside=()) -> gov.Governing:
    return gov.resolve("cuda-eula", ToolkitRange.of_version(version), beside, policy, "linux")


def test_every_meta_package_release_maps_to_a_text_or_is_explained():
    """Each toolkit release whose cuda-toolkit meta-package licscan knows (11.8.0 to 13.5.0) either maps to a text
    or has exactly one unmapped_texts row, never both."""
    releases = YAML(typ="safe", pure=True).load((ROOT / "rules" / "toolkit" / "components.yaml").read_text())
    unmapped = []
    for release in releases["releases"]:
        parts = str(release).split(".")  # 12.9.2.0: a later meta-package of the minor release (12.9.x)
        rng = ToolkitRange.of_version(".".join(parts[:2]) if len(parts) > 3 else str(release))
        mapped = EULA.for_release(rng)
        rows = [r for r in EULA.unmapped if contains(r.versions, rng) is Tri.TRUE]
        assert (mapped is None) == (len(rows) == 1), (release, mapped, rows)
        if mapped is None:
            unmapped.append(str(release))
    assert unmapped == ["13.2.0", "13.2.1", "13.2.2", "13.3.0", "13.3.1", "13.4.1.0", "13.4.2", "13.4.3", "13.5.0"]


@pytest.mark.parametrize("version", ["13.2.51", "13.3.29", "13.4.92", "13.5.37", "14.0.1"])
def test_cuda_13_2_and_later_name_the_likely_text_without_applying_it(version):
    found = _resolve(version)
    assert (found.text, found.basis, found.likely, found.license_id()) == (None, gov.UNMAPPED, "2026-01-26", None)
    assert found.advice is not None and found.advice.startswith(
        f"It is probably the {TITLE_2026}, the newest revision licscan knows of, published online before CUDA 13.2, "
        "whose release notes are dated March 5, 2026 "
        "(https://docs.nvidia.com/cuda/archive/13.2.0/pdf/CUDA_Toolkit_Release_Notes.pdf); that text is not applied: "
        "no copy packaged with a 13.2 or later release could be read: the nvidia-* wheels of 13.2 to 13.5 ship the "
        "2018 License.txt instead")
    assert "a later revision published with 13.3, 13.4 or 13.5 cannot be ruled out. Read the EULA.txt installed " \
           "with that toolkit release (/usr/local/cuda-13.N/EULA.txt)" in found.advice
    # 1.1.1(3) is in every text: true, and cited in the words of the text the likely one is read as (2024).
    truth, reading, quoted = found.clause("distribution-grant")
    assert (truth, quoted.title if quoted else None) == (Tri.TRUE, TITLE_2024)
    assert reading is not None and f"the {TITLE_2026} was not examined" in reading
    # A clause the texts disagree on stays unknown: the likely text does not decide it.
    assert found.clause("driver-container")[0] is Tri.UNKNOWN


def test_the_other_policies_are_unchanged_for_13_x():
    assert (_resolve("13.5.37", "newest").text, _resolve("13.5.37", "newest").likely) == ("2026-01-26", None)
    beside = (("cuda-eula", "2018-07-26", "dist/License.txt (sha256 ad6f...)"),)
    shipped = _resolve("13.5.37", beside=beside)
    assert (shipped.text, shipped.basis, shipped.likely, shipped.advice) == ("2018-07-26", "shipped", None, None)


def test_a_partly_known_13_x_release_is_not_unmapped():
    """libcudart.so.13 alone: 13.x spans mapped (13.0, 13.1) and unmapped releases, so the text is unknown without
    the unmapped advice."""
    found = gov.resolve("cuda-eula", ToolkitRange.of_version("13"), (), gov.DEFAULT_POLICY)
    assert (found.basis, found.likely, found.advice) == ("unknown", None, None)


def test_older_unmapped_releases_guess_no_text():
    found = _resolve("11.4.108")
    assert (found.basis, found.likely) == (gov.UNMAPPED, None)
    assert found.advice == (
        "No text is applied: Debian synchronised its copy with the toolkit's EULA.txt at 11.3.1, 11.4.1 and 11.4.3, "
        "and those texts were not examined; whether the translation clause 1.2(8) of the October 8, 2021 text first "
        "appeared at 11.4.3 or at 11.6 is open. Read the EULA.txt installed with that toolkit release "
        "(/usr/local/cuda-11.N/EULA.txt): 1.1.1(3), 2.2 and its Attachment A, 2.3, and whether 1.2 has the "
        "translation clause.")
    assert _resolve("10.1.243").advice.startswith("No text is applied: Debian synchronised its copy with the "
                                                  "toolkit's EULA.txt at 10.1.168, 10.1.243 and 11.1.0")


def test_a_component_table_release_gets_the_plain_advice():
    """NVSHMEM 4.0.1 (its own release table maps 3.1 to 3.8 only): no toolkit row applies to it."""
    found = gov.resolve("cuda-eula", ToolkitRange.of_version("4.0.1"), (), gov.DEFAULT_POLICY, "linux", "nvshmem")
    assert (found.basis, found.likely, found.advice) == (gov.UNMAPPED, None, gov.ADVICE)


def test_the_review_message_carries_the_advice():
    (finding,) = run({"facts": {"components": [{"name": "cudart", "version": "13.4.92",
                                                "path": "dist/app.whl!/app/libcudart.so.13"}],
                                "dists": [{"name": "app", "path": "dist/app.whl"}]}})
    assert (finding.rule, finding.verdict.value, finding.clause.document, finding.clause.section) == (
        "CUDA-EULA-TEXT-UNKNOWN", "review", TITLE_2024, "1.1.1(3)")
    assert finding.message == (
        "libcudart.so.13 (cudart 13.4.92, toolkit 13.4.92) is under the NVIDIA CUDA Toolkit EULA, but licscan knows "
        "no EULA text published with its release and no licence file ships beside it, so which text's Attachment A "
        "and conditions govern its distribution is unknown. " + _resolve("13.4.92").advice)
    assert finding.remediation.startswith("Ship beside libcudart.so.13 the licence file NVIDIA ships with it (the "
                                          "License.txt of the matching nvidia-* wheel, which then governs it)")
    assert (f"text unknown: probably the {TITLE_2026}, which is not applied "
            "(docs/licenses.md#cuda-eula-unmapped-releases)") in finding.evidence


@pytest.mark.parametrize(("row", "error"), [
    ({"versions": ">=20", "likely": "2099-01-01", "why": "w", "unread": "u", "read": "r"}, "unknown likely text"),
    ({"versions": ">=20", "likely": "2026-01-26", "unread": "u", "read": "r"}, "a likely text needs a why"),
    ({"versions": ">=20", "likely": None, "why": "w", "unread": "u", "read": "r"}, "a likely text needs a why"),
])
def test_unmapped_rows_are_checked(row, error):
    with pytest.raises(ValueError, match=error):
        documents._unmapped("cuda-eula", [row], EULA.texts)
