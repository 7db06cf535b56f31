"""SBOM export (issue 6, README.md#commands (licscan sbom)): SPDX 2.3 that validates, parses back with pyspdxtools and meets the NTIA
minimum elements; CycloneDX 1.6 that passes the strict schema; golden files; byte-identical reruns."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sbom_inventory as si

from licscan import sbom
from licscan.model import Component, ComponentKind, ModInfo
from licscan.sbom.driver import driver_key

pytest.importorskip("spdx_tools")
pytest.importorskip("cyclonedx")

BIN = Path(sys.executable).parent
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z
OPTS = {"namespace_seed": "licscan-tests", "creator_org": "Example Corp"}


@pytest.fixture(scope="module")
def dist():
    return si.build()


def _spdx(dist, **extra):
    inventory, records, digests = dist
    return sbom.build_spdx(inventory, records, digests=digests, findings=si.FINDINGS,
                           created=datetime(2026, 1, 1, tzinfo=timezone.utc), **OPTS, **extra)


def _render(dist, fmt, out, monkeypatch, **extra):
    inventory, records, digests = dist
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    sbom.render(inventory, records, fmt, out, digests=digests, findings=si.FINDINGS, **OPTS, **extra)
    return Path(out).read_bytes()


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    exe = BIN / tool
    assert exe.exists(), f"{tool} not installed next to {sys.executable}"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300, check=False)


def _check_spdx_file(path: Path):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    back = parse_file(str(path))
    assert validate_full_spdx_document(back) == []
    done = _run("pyspdxtools", "-i", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    return back


def _check_ntia(path: Path):
    done = _run("ntia-checker", "-c", "ntia", "-r", "json", "--file", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["isNtiaConformant"] is True, report


# ------------------------------------------------------------------------------------------------ SPDX


def test_spdx_document_validates(dist):
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    assert validate_full_spdx_document(_spdx(dist)) == []


@pytest.mark.parametrize("fmt,suffix", [("spdx-json", ".spdx.json"), ("spdx-tv", ".spdx")])
def test_spdx_parses_back_and_meets_ntia(dist, tmp_path, monkeypatch, fmt, suffix):
    out = tmp_path / f"dist{suffix}"
    _render(dist, fmt, out, monkeypatch)
    back = _check_spdx_file(out)
    _check_ntia(out)
    original = _spdx(dist)
    # tag-value expresses CONTAINS -> File by placement: compare relationship sets (the spdx-tools documentation, https://github.com/spdx/tools-python)
    rel = lambda d: {(r.spdx_element_id, r.relationship_type.name, r.related_spdx_element_id)
                     for r in d.relationships}
    assert rel(back) == rel(original)
    assert {p.spdx_id for p in back.packages} == {p.spdx_id for p in original.packages}


def _by_name(document, name):
    return next(p for p in document.packages if p.name == name)


def test_cuda_runtime_package(dist):
    document = _spdx(dist)
    cudart = _by_name(document, "CUDA Runtime")
    assert cudart.version == "13.0.96"
    assert cudart.supplier.name == "NVIDIA Corporation"
    # The governing text (docs/licenses.md): CUDA 13.0 -> the January 7, 2025 EULA (mapped by release date).
    assert str(cudart.license_concluded) == "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07"
    assert "January 7, 2025" in cudart.license_comment
    assert str(cudart.license_declared) == "LicenseRef-NVIDIA-Proprietary"
    locators = {r.locator for r in cudart.external_references}
    assert "pkg:pypi/nvidia-cuda-runtime@13.0.96" in locators
    assert "cpe:2.3:a:nvidia:cuda_toolkit:13.0:*:*:*:*:*:*:*" in locators
    assert {c.algorithm.name for c in cudart.checksums} == {"SHA1", "SHA256"}
    eula = next(e for e in document.extracted_licensing_info
                if e.license_id == "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07")
    assert "2025-01-07" in eula.extracted_text and "full text not reproduced" in eula.extracted_text
    assert eula.cross_references == ["https://docs.nvidia.com/cuda/eula/index.html"]
    alias = next(e for e in document.extracted_licensing_info if e.license_id == "LicenseRef-NVIDIA-Proprietary")
    assert "LicenseRef-NVIDIA-CUDA-EULA" in alias.extracted_text


def test_relationships(dist):
    document = _spdx(dist)
    names = {p.spdx_id: p.name for p in document.packages}
    names.update({f.spdx_id: f.name.rsplit("/", 1)[-1] for f in document.files})
    rels = {(names.get(r.spdx_element_id, r.spdx_element_id), r.relationship_type.name,
             names.get(r.related_spdx_element_id)) for r in document.relationships}
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", "dist") in rels
    assert ("libkern.so", "GENERATED_FROM", "CUDA Toolkit 13.0") in rels
    assert ("libkern.so", "DEPENDS_ON", "libcudart.so.13") in rels
    assert ("nvidia-cuda-runtime", "CONTAINS", "CUDA Runtime") in rels
    assert ("CUDA Runtime", "CONTAINS", "libcudart.so.13") in rels
    assert ("licscan-test", "CONTAINS", "libkern.so") in rels
    assert ("dist", "DEPENDS_ON", "NVIDIA GPU Driver") in rels
    toolkit = _by_name(document, "CUDA Toolkit 13.0")
    assert toolkit.version == "13.0.88"
    kern = next(f for f in document.files if f.name.endswith("libkern.so"))
    assert {c.algorithm.name for c in kern.checksums} == {"SHA1", "SHA256"}
    assert "sm_90a" in kern.comment


def test_finding_is_an_annotation_on_the_file(dist):
    document = _spdx(dist)
    (note,) = document.annotations
    target = next(f for f in document.files if f.spdx_id == note.spdx_id)
    assert target.name.endswith("libcudart.so.13")
    assert "CUDA-EULA-ATTACH-A" in note.annotation_comment and "Attachment A" in note.annotation_comment


def test_cuda13_needs_driver_580(dist):
    driver = _by_name(_spdx(dist), "NVIDIA GPU Driver")
    assert driver.version == ">=580.65.06"  # rules/sbom/driver-requirements.yaml: CUDA release notes, 13.x >= 580 (13.0 GA driver 580.65.06)
    assert driver_key(driver.version.lstrip(">=")) >= (580,)
    assert str(driver.license_concluded) == "LicenseRef-NVIDIA-Driver"
    assert "MIT OR GPL-2.0-only" in driver.license_comment


def test_shipped_driver_and_open_kernel_module(dist, tmp_path, monkeypatch):
    inventory, records, digests = si.build(extra_components=(
        Component("driver:nvidia/cuda-driver@580.159.04", "cuda-driver", "NVIDIA", ComponentKind.DRIVER,
                  "580.159.04", "LicenseRef-NVIDIA-Driver", ("dist/lib/libcuda.so.580.159.04",),
                  ("file name 'libcuda.so.580.159.04'",)),
        Component("kernel-module:nvidia/nvidia-kernel-module@580.159.04", "nvidia-kernel-module", "NVIDIA",
                  ComponentKind.KERNEL_MODULE, "580.159.04", "MIT OR GPL-2.0-only", ("dist/modules/nvidia.ko",),
                  (".modinfo license='Dual MIT/GPL' -> MIT OR GPL-2.0-only (open)",),
                  flavours=("open",), modinfo=(ModInfo(license="Dual MIT/GPL"),)),
        Component("sdk-library:nvidia/nccl@2.27.7", "nccl", "NVIDIA", ComponentKind.SDK_LIBRARY, "2.27.7",
                  "BSD-3-Clause", ("dist/lib/libnccl.so.2",), ("file name 'libnccl.so.2'",)),
    ))
    document = sbom.build_spdx(inventory, records, digests=digests, **OPTS)
    kmod = next(p for p in document.packages if (p.comment or "").startswith("kernel-module "))
    assert str(kmod.license_concluded) == "MIT OR GPL-2.0-only"
    assert kmod.version == "580.159.04"
    assert "open" in kmod.license_comment
    nccl = next(p for p in document.packages if (p.comment or "").startswith("sdk-library sdk-library:nvidia/nccl"))
    assert str(nccl.license_concluded) == "BSD-3-Clause"
    assert "pkg:generic/nvidia/nccl@2.27.7" in {r.locator for r in nccl.external_references}
    driver = _by_name(document, "NVIDIA GPU Driver")
    assert "580.159.04" in driver.comment and "satisfies" in driver.comment and "open kernel module" in driver.comment
    libcuda = next(p for p in document.packages if (p.comment or "").startswith("driver driver:nvidia/cuda-driver"))
    assert "cpe:2.3:a:nvidia:gpu_display_driver:580.159.04:*:*:*:*:*:*:*" in \
        {r.locator for r in libcuda.external_references}
    out = tmp_path / "driver.spdx.json"
    sbom.write(document, "spdx-json", out)
    _check_spdx_file(out)
    _check_ntia(out)


def test_unknown_and_non_spdx_licences(tmp_path):
    inventory, records, digests = si.build(extra_components=(
        Component("sdk-library:nvidia/cudnn@9.10.2.21", "cudnn", "NVIDIA", ComponentKind.SDK_LIBRARY, "9.10.2.21",
                  "LicenseRef-NVIDIA-cuDNN-SLA", ("dist/lib/libcudnn.so.9",), ("file name 'libcudnn.so.9'",),
                  licenses_declared=("NVIDIA Proprietary Software",)),
        Component("source-port:acme/thing@1.0", "thing", "Acme", ComponentKind.SOURCE_PORT, "1.0",
                  "LicenseRef-Acme-Custom", ("dist/lib/libthing.so",), ("file name",)),
    ))
    document = sbom.build_spdx(inventory, records, digests=digests, **OPTS)
    ids = {e.license_id: e for e in document.extracted_licensing_info}
    assert "cuDNN Software License Agreement" in ids["LicenseRef-NVIDIA-cuDNN-SLA"].extracted_text
    assert "no text" in ids["LicenseRef-Acme-Custom"].extracted_text
    cudnn = next(p for p in document.packages if (p.comment or "").startswith("sdk-library sdk-library:nvidia/cudnn"))
    assert "NVIDIA Proprietary Software" in cudnn.license_comment
    assert str(cudnn.license_declared) == "NOASSERTION"


# ------------------------------------------------------------------------------------------------ CycloneDX


def test_cyclonedx_strict_1_6(dist, tmp_path, monkeypatch):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    out = tmp_path / "dist.cdx.json"
    text = _render(dist, "cyclonedx-json", out, monkeypatch).decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6"

    def walk(items):
        for item in items:
            yield item
            yield from walk(item.get("components", []))

    comps = {c["name"]: c for c in walk(bom["components"])}
    cudart = comps["CUDA Runtime"]
    assert cudart["version"] == "13.0.96" and cudart["purl"] == "pkg:pypi/nvidia-cuda-runtime@13.0.96"
    techniques = {m["technique"] for i in cudart["evidence"]["identity"] for m in i["methods"]}
    assert {"binary-analysis", "filename", "manifest-analysis"} <= techniques
    assert [o["location"] for o in cudart["evidence"]["occurrences"]] == [si.CUDART]
    assert comps["NVIDIA GPU Driver"]["version"] == ">=580.65.06"
    assert comps["NVIDIA GPU Driver"]["scope"] == "required"
    assert bom["metadata"]["timestamp"].startswith("2026-01-01T00:00:00")


# ------------------------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("fmt,name", [("spdx-json", "dist.spdx.json"), ("spdx-tv", "dist.spdx"),
                                      ("cyclonedx-json", "dist.cdx.json")])
def test_golden_and_byte_identical(dist, tmp_path, monkeypatch, fmt, name, golden):
    first = _render(dist, fmt, tmp_path / "a", monkeypatch)
    second = _render(si.build(), fmt, tmp_path / "b", monkeypatch)
    assert first == second
    golden(f"sbom/{name}", first)


def test_created_from_source_date_epoch(dist, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    inventory, records, digests = dist
    document = sbom.build_spdx(inventory, records, digests=digests, **OPTS)
    assert document.creation_info.created == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert "#" not in document.creation_info.document_namespace


def test_format_mismatch_is_refused(dist):
    with pytest.raises(ValueError):
        sbom.write(_spdx(dist), "spdx-xml", "/dev/null")
    with pytest.raises(TypeError):
        sbom.write(_spdx(dist), "cyclonedx-json", "/dev/null")


def test_validation_reads_the_ids_of_the_document_once(dist, monkeypatch):
    """spdx-tools lists every id of the document again for each relationship it checks (quadratic: the SBOM of
    flashinfer-cubin 0.6.13's 16,017 cubins took minutes); licscan checks the relationships and annotations
    against one set. The listing is counted: the same few calls however many files the document has."""
    from spdx_tools.spdx.validation import spdx_id_validators

    from licscan.sbom import spdx

    calls = []
    listing = spdx_id_validators.get_list_of_all_spdx_ids

    def counted(document):
        calls.append(1)
        return listing(document)

    monkeypatch.setattr(spdx_id_validators, "get_list_of_all_spdx_ids", counted)
    document = _spdx(dist)
    calls.clear()
    spdx.validate(document)
    few = len(calls)
    document.files = document.files * 50  # duplicate ids are found (by the one listing spdx-tools makes)
    document.relationships = document.relationships + [r for r in document.relationships
                                                       if r.relationship_type.name != "DESCRIBES"] * 50
    document.annotations = document.annotations * 50
    with pytest.raises(spdx.SbomValidationError, match="every spdx_id must be unique"):
        calls.clear()
        spdx.validate(document)
    assert len(calls) == few


@pytest.mark.parametrize("where", ["source", "target", "annotation", "unanalysed-contains"])
def test_validation_still_finds_a_missing_or_malformed_id(dist, where):
    from spdx_tools.spdx.model.relationship import Relationship, RelationshipType

    from licscan.sbom import spdx

    document = _spdx(dist)
    some_file = document.files[0].spdx_id
    if where == "source":
        document.relationships = [*document.relationships,
                                  Relationship("SPDXRef-nowhere", RelationshipType.DEPENDS_ON, some_file)]
        expected = 'did not find the referenced spdx_id "SPDXRef-nowhere" in the SPDX document'
    elif where == "target":
        document.relationships = [*document.relationships,
                                  Relationship(some_file, RelationshipType.DEPENDS_ON, "SPDXRef-bad_id")]
        expected = 'spdx_id must only contain letters, numbers, "." and "-"'
    elif where == "annotation":
        note = document.annotations[0]
        note.spdx_id = "SPDXRef-gone"
        expected = 'did not find the referenced spdx_id "SPDXRef-gone" in the SPDX document'
    else:  # read by spdx-tools' package check: a package whose files were not analysed contains no file
        driver = _by_name(document, "NVIDIA GPU Driver")
        document.relationships = [*document.relationships,
                                  Relationship(driver.spdx_id, RelationshipType.CONTAINS, some_file)]
        expected = "package must contain no elements if files_analyzed is False"
    with pytest.raises(spdx.SbomValidationError) as error:
        spdx.validate(document)
    assert [m.validation_message for m in error.value.messages if expected in m.validation_message]


def test_spdx_does_not_import_the_cyclonedx_validator():
    """The CycloneDX validator's import compiles an RFC 3987 grammar (1.6 s of CPU): only a CycloneDX SBOM loads it."""
    code = ("import sys, licscan.sbom, licscan.cli.main_sbom; "
            "print(sorted(m for m in sys.modules if m.startswith(('cyclonedx.validation', 'rfc3987'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("items", [
    [1, True], [0, False], [1, 1.0], ["1", 1], [None, 0], [[1, 2], [2, 1]], [{"a": 1}, {"a": True}],
    [{"a": [1, {"b": "x"}]}, {"a": [1, {"b": "x"}]}], [{"a": 1, "b": 2}, {"b": 2, "a": 1}], [{}, []], [],
    [{"bom-ref": f"r{i}", "dependsOn": [f"r{i + 1}"]} for i in range(50)]])
def test_unique_items_as_jsonschema_reads_it(items):
    """licscan's linear ``uniqueItems`` says what jsonschema's pairwise one says (true is not 1, 1 is 1.0)."""
    from jsonschema._utils import uniq

    from licscan.sbom.cyclonedx import _json_key

    keys = [_json_key(i) for i in items]
    assert (len(set(keys)) == len(keys)) is uniq(items)


def test_cyclonedx_validation_is_linear_and_still_finds_duplicates(dist, monkeypatch):
    """jsonschema compares every pair of an array of objects for ``uniqueItems`` (the CycloneDX SBOM of
    flashinfer-cubin 0.6.13's 16,017 cubins took 677 s wall); licscan's validator never calls that comparison, and a
    duplicate component is still an error."""
    import json as _json

    from jsonschema import _keywords

    from licscan.sbom import cyclonedx

    def pairwise(*args):
        raise AssertionError("jsonschema's pairwise uniqueItems was called")

    monkeypatch.setattr(_keywords, "uniq", pairwise)
    inventory, records, digests = dist
    text = cyclonedx.serialize(sbom.build_cyclonedx(inventory, records, digests=digests, findings=si.FINDINGS,
                                                    created=datetime(2026, 1, 1, tzinfo=timezone.utc), **OPTS))
    cyclonedx.validate_json(text)
    doc = _json.loads(text)
    doc["components"].append(doc["components"][0])
    with pytest.raises(ValueError, match="has non-unique elements"):
        cyclonedx.validate_json(_json.dumps(doc))
