"""The licence documents as data (rules/licenses/documents.yaml): which document governs a part named under a
catalog licence, which text a licence file identified by the catalog is, and by which release a part's text is
looked up are read from the table, not from Python; the table agrees with the catalog; and adding an NVIDIA licence
is a change of the data only."""
from __future__ import annotations

from pathlib import Path

import pytest
import sbom_inventory as si

from licscan.identify.catalog_table import load_catalog
from licscan.knowledge import builtin_rules_dir, catalog_table
from licscan.model import Component, ComponentKind, ToolkitRange
from licscan.rules import documents, facts, governing
from licscan.sbom.governing import GENERIC_EULA, governing_licences

TABLE = documents.load()


def _catalog_licences() -> dict[str, str]:
    """Every licence id the catalog names a part under -> one part named under it."""
    out: dict[str, str] = {}
    for entry in load_catalog().entries:
        if entry.license:
            out.setdefault(entry.license, entry.name)
    for flag, spec in catalog_table("nvidia")["kernel_licenses"].items():
        out.setdefault(str(spec["license"]), f"kernel modules ({flag})")
    for name, layer in catalog_table("translation-layers")["layers"].items():
        if layer.get("license"):
            out.setdefault(str(layer["license"]), name)
    return out


def test_every_licenceref_of_the_catalog_maps_to_a_document():
    """A part the catalog names under a LicenseRef is governed by the document whose ``license`` it is (none is left
    to governing.unread); the other ids are SPDX licences, governed by name (NCCL) or by no NVIDIA document."""
    licences = _catalog_licences()
    assert "LicenseRef-NVIDIA-CUDA-EULA" in licences and "LicenseRef-Spectral-SCALE-Free" in licences
    unmapped = {lic: part for lic, part in licences.items()
                if lic.startswith("LicenseRef-") and lic not in TABLE.by_catalog_license}
    assert not unmapped, f"catalog licences with no document (add `license:` to its document): {unmapped}"
    assert all(governing.unread(lic) is None for lic in licences)
    for lic in licences:
        if lic.startswith("LicenseRef-"):
            assert governing.document_of({"license": lic}) == TABLE.by_catalog_license[lic].id


def test_every_documents_licence_is_one_the_sbom_defines():
    """A document's ``license`` is the SBOM's concluded licence of its parts when the text is unknown: it has an
    entry in rules/licenses/licenses.yaml, and the CUDA EULA's is the SBOM's generic EULA id."""
    from licscan.sbom.data import license_tables

    defined = license_tables().licenses
    for doc in TABLE.documents.values():
        assert doc.license is None or doc.license in defined, doc.id
        assert doc.license is None or doc.spdx is None, doc.id
    assert TABLE.document("cuda-eula").license == GENERIC_EULA


def test_the_sbom_concludes_the_documents_licence_when_the_text_is_unknown():
    """cuTENSOR 9.9 (no row of its own_texts): its SBOM licence is the document's, as for cuDNN and the CUDA EULA
    (was: NOASSERTION for every SLA but cuDNN's, a list of four documents in licscan/sbom/governing.py)."""
    part = Component("sdk-library:nvidia/cutensor@9.9.0", "cutensor", "NVIDIA", ComponentKind.SDK_LIBRARY, "9.9.0",
                     "LicenseRef-NVIDIA-cuTENSOR-SLA", ("dist/lib/libcutensor.so.9",), ("file name 'libcutensor.so.9'",))
    inventory, _records, _digests = si.build(extra_components=(part,))
    licence, note = governing_licences(inventory)[part.id]
    assert licence == "LicenseRef-NVIDIA-cuTENSOR-SLA"
    assert note.startswith("governed by the NVIDIA cuTENSOR Software License Agreement; text unknown (")


def test_every_licence_text_of_the_catalog_maps_to_a_text():
    """Every rules/catalog/license-texts.yaml id (a licence-text component's properties.document) is claimed by the
    one documents.yaml text it is, with the same licence id; or is a CUDA Samples helper (governing.SAMPLES); or is
    no text of a document: not NVIDIA's, a notice, or a document's generic licence (its text not told)."""
    catalog = catalog_table("license-texts")["documents"]
    text_licences = {t.license for t in TABLE.all_texts()}
    generic = set(TABLE.by_catalog_license)
    claimed = {cid for t in TABLE.all_texts() for cid in t.license_texts}
    assert claimed <= set(catalog), f"claimed ids not in the catalog: {sorted(claimed - set(catalog))}"
    assert set(governing.SAMPLES) <= set(catalog)
    unclaimed = []
    for cid, entry in catalog.items():
        text = TABLE.by_license_text.get(cid)
        if text is not None:
            assert entry.get("license") == text.license, cid
            assert governing.license_text(cid) == (text.document, text.id)
            assert governing.document_of({"kind": "license-text", "properties.document": cid}) == text.document
            continue
        if cid in governing.SAMPLES:
            continue
        licence = entry.get("license")
        assert licence not in text_licences, f"{cid} is the text with licence {licence}: claim it in its text"
        assert not str(licence or "").startswith("LicenseRef-") or licence in generic, (
            f"{cid} ({licence}) is a licence text of no document: claim it (documents.yaml `license_texts`)")
        unclaimed.append(cid)
    # Today: Apache-2.0, nvCOMP's third-party notices, the 1.1.2(3) notice, the undated TensorRT SLA.
    assert sorted(unclaimed) == ["apache-2.0", "nvcomp-third-party-notices", "nvidia-sample-notice", "tensorrt-sla"]


def test_the_release_a_text_is_looked_up_by():
    """driver_texts: the driver's version; own_texts: the SLA library's or SCALE's own; toolkit_texts: the
    toolkit's."""
    by = {doc.id: doc.texts_by for doc in TABLE.documents.values()}
    assert by["cuda-eula"] is documents.TextsBy.TOOLKIT and by["nvidia-driver"] is documents.TextsBy.DRIVER
    assert {d for d, b in by.items() if b is documents.TextsBy.OWN} == {
        "scale-free", "cudnn-sla", "cusparselt-sla", "cutensor-sla", "tensorrt-sla", "nvjpeg2k-sla", "cudss-sla",
        "nvcomp-sla", "nvtiff-sla"}
    fields = {"name": "cudnn", "version": "9.28.0.42"}
    toolkit = ToolkitRange.of_version("12.9.1")
    assert governing.release_range("cudnn-sla", fields, toolkit).text == "9.28.0"
    assert governing.release_range("nvidia-driver", {"version": "535.261.03"}, toolkit).text == "535.261.03"
    assert governing.release_range("cuda-eula", fields, toolkit) is toolkit
    assert governing.release_range(None, fields, toolkit) is toolkit


NEW_SLA = '''
  newlib-sla:
    name: NVIDIA NewLib Software License Agreement
    kind: proprietary
    license: LicenseRef-NVIDIA-NewLib-SLA
    governs: The NewLib libraries (libnewlib.so).
    texts:
      "2026-06-01":
        title: "License Agreement for NVIDIA Software Development Kits (v. June 1, 2026) with the NewLib Supplement"
        date: "2026-06-01"
        examined: true
        license: LicenseRef-NVIDIA-NewLib-SLA-2026-06-01
        license_texts: [newlib-sla]
        copies: []
        clauses:
          no-modification:
            section: "2.2"
            quote: "2.2 you may not modify any portion of the SDK."
    own_texts:
      - {versions: ">=1.2.0,<1.3", text: "2026-06-01", basis: primary, source: "PyPI nvidia-newlib 1.2.0, LICENSE"}
'''


def _table_with(tmp_path: Path, added: str) -> Path:
    """A copy of documents.yaml with the document ``added`` first in its ``documents``."""
    source = builtin_rules_dir().joinpath(documents.TABLE).read_text(encoding="utf-8")
    assert source.count("\ndocuments:\n") == 1
    copy = tmp_path / "documents.yaml"
    copy.write_text(source.replace("\ndocuments:\n", "\ndocuments:" + added), encoding="utf-8")
    return copy


def test_the_built_in_table_read_from_a_copy_is_the_same():
    copy = documents.read(str(builtin_rules_dir().joinpath(documents.TABLE)))
    assert copy == TABLE


def test_a_new_sla_is_a_change_of_the_data_only(tmp_path, monkeypatch):
    """A licence added to documents.yaml, and nothing else: the catalog licence names it, a licence file the
    catalog identifies as its text is its text, its parts are looked up by their own release, and the facts the
    rules read carry it."""
    table = documents.read(str(_table_with(tmp_path, NEW_SLA)))
    monkeypatch.setattr(documents, "load", lambda: table)
    lic = "LicenseRef-NVIDIA-NewLib-SLA"
    assert governing.unread(lic) is None  # was: "NVIDIA's licence of this part, whose text licscan has not read"
    assert governing.document_of({"name": "newlib", "kind": "library", "license": lic}) == "newlib-sla"
    assert governing.license_text("newlib-sla") == ("newlib-sla", "2026-06-01")
    assert governing.document_of({"kind": "license-text", "properties.document": "newlib-sla"}) == "newlib-sla"
    release = governing.release_range("newlib-sla", {"version": "1.2.0.7"}, ToolkitRange.of_version("12.9.0"))
    found = governing.resolve("newlib-sla", release, (), governing.DEFAULT_POLICY)
    assert (found.text, found.basis, found.license_id()) == ("2026-06-01", "primary",
                                                             "LicenseRef-NVIDIA-NewLib-SLA-2026-06-01")
    # Through the facts: the library by its own release; a release no row maps falls to the file shipped beside it.
    document = {"inputs": ["dist"], "distributions": [], "device_code": [], "components": [
        {"id": "c1", "name": "newlib", "vendor": "NVIDIA", "kind": "library", "version": "1.2.0.7", "license": lic,
         "paths": ["dist/a/libnewlib.so.1"], "evidence": [], "properties": {}},
        {"id": "c2", "name": "newlib", "vendor": "NVIDIA", "kind": "library", "version": "1.4.0.1", "license": lic,
         "paths": ["dist/b/libnewlib.so.1"], "evidence": [], "properties": {}},
        {"id": "c3", "name": "license-text:newlib-sla", "vendor": "NVIDIA", "kind": "license-text", "version": None,
         "license": "LicenseRef-NVIDIA-NewLib-SLA-2026-06-01", "paths": ["dist/b/LICENSE.txt"], "evidence": [],
         "properties": {"document": "newlib-sla"}}]}
    by_path = {f.path: f.fields for f in facts.build(document).scope("component")}
    assert (by_path["dist/a/libnewlib.so.1"]["governing.document"], by_path["dist/a/libnewlib.so.1"]["governing.text"],
            by_path["dist/a/libnewlib.so.1"]["governing.basis"]) == ("newlib-sla", "2026-06-01", "primary")
    assert (by_path["dist/b/libnewlib.so.1"]["governing.text"],
            by_path["dist/b/libnewlib.so.1"]["governing.basis"]) == ("2026-06-01", "shipped")


@pytest.mark.parametrize("added,error", [
    (NEW_SLA.replace("license: LicenseRef-NVIDIA-NewLib-SLA\n", "license: LicenseRef-NVIDIA-cuTENSOR-SLA\n"),
     "LicenseRef-NVIDIA-cuTENSOR-SLA is the licence of newlib-sla and cutensor-sla"),
    (NEW_SLA.replace("[newlib-sla]", "[cutensor-sla]"),
     "license text cutensor-sla is claimed by newlib-sla 2026-06-01 and cutensor-sla 2019-03-15"),
    (NEW_SLA.replace("    own_texts:", "    toolkit_texts: []\n    own_texts:"),
     "newlib-sla has toolkit_texts and own_texts: one release table only"),
])
def test_a_table_that_names_a_licence_twice_is_refused(tmp_path, added, error):
    with pytest.raises(ValueError) as caught:
        documents.read(str(_table_with(tmp_path, added)))
    assert error in str(caught.value)
