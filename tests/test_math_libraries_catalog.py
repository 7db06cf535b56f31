"""NVIDIA's math libraries on PyPI (cuSOLVERMp, cuBLASMp, cuFFTMp, MathDx) and nvTIFF in the catalog
(rules/catalog/nvidia.yaml), their licence files (rules/catalog/license-texts.yaml math-libraries-sla, nvtiff-sla) and
the documents that govern them (rules/licenses/documents.yaml), and the vendor of every licence-text component read
from the licence-text table (its `vendor`), not from a list of id prefixes in the code."""
from __future__ import annotations

import pytest

from licscan.identify.catalog import VersionSource, identify
from licscan.identify.components import license_components
from licscan.identify.licensetext import identify_license_text
from licscan.inventory.items import Distribution, Ecosystem
from licscan.model import ElfFacts, FileFacts, FileFormat, ToolkitRange
from licscan.rules import documents, governing

MATH = "LicenseRef-NVIDIA-Math-Libraries-SLA"
NVTIFF = "LicenseRef-NVIDIA-nvTIFF-SLA"


def _elf(soname):
    return FileFacts("x", FileFormat.ELF, 100, elf=ElfFacts("ET_DYN", "EM_X86_64", soname, (), (), (), False, None))


@pytest.mark.parametrize("dist,version,member,name,license", [
    ("nvidia-cusolvermp-cu12", "0.9.1.9318", "nvidia/cu12/lib/libcusolverMp.so.0", "cusolvermp", MATH),
    ("nvidia-cublasmp-cu12", "0.10.0.3695", "nvidia/cublasmp/cu12/lib/libcublasmp.so.0", "cublasmp", MATH),
    ("nvidia-cufftmp-cu12", "11.4.0.6", "nvidia/cufftmp/cu12/lib/libcufftMp.so.11", "cufftmp", MATH),
    ("nvidia-libmathdx-cu12", "0.3.1.9", "nvidia/cu12/lib/libmathdx.so.0", "mathdx", MATH),
    ("nvidia-nvtiff-cu12", "0.8.0.82", "nvidia/nvtiff/lib/libnvtiff.so.0", "nvtiff", NVTIFF)])
def test_each_library_is_named_with_its_wheels_version(dist, version, member, name, license):
    """Before: none of these files was named (no catalog entry)."""
    wheel = Distribution(f"{dist}.whl", Ecosystem.PYPI, dist, version, "", license_declared="LicenseRef-X")
    (match,) = identify(f"w.whl!/{member}", _elf(member.rsplit("/", 1)[1]), wheel)
    assert (match.name, match.vendor, match.version, match.version_source, match.license) == (
        name, "NVIDIA", version, VersionSource.DISTRIBUTION, license)


def test_an_unrelated_wheel_gives_no_release():
    """libcufftMp.so.11 grafted into another project: 11 is not a release of cuFFTMp."""
    other = Distribution("t.whl", Ecosystem.PYPI, "torch", "2.9.0", "", license_declared="BSD-3-Clause")
    (match,) = identify("t.whl!/torch.libs/libcufftMp.so.11", _elf("libcufftMp.so.11"), other)
    assert (match.name, match.version, match.version_range) == ("cufftmp", None, None)


# The phrases each text is recognised by (the real files' hashes are in the table; their texts are not stored).
AGREEMENT = b"LICENSE AGREEMENT FOR NVIDIA MATH LIBRARIES SOFTWARE DEVELOPMENT KITS\n...\n(v. February 10, 2022)\n"
CUDSS = AGREEMENT + b"CUDSS OPEN-SOURCE LICENSED PORTIONS\n"
TIFF = (b"Chapter 8. nvTIFF SUPPLEMENT\nTO SOFTWARE LICENSE AGREEMENT FOR NVIDIA SOFTWARE DEVELOPMENT KITS\n"
        b"(v. March 31, 2022)\n")


@pytest.mark.parametrize("text,document,date,license", [
    (AGREEMENT, "math-libraries-sla", "2022-02-10", "LicenseRef-NVIDIA-Math-Libraries-SLA-2022-02-10"),
    (CUDSS, "cudss-sla", "2022-02-10", "LicenseRef-NVIDIA-cuDSS-SLA-2022-02-10"),
    (TIFF, "nvtiff-sla", "2022-03-31", "LicenseRef-NVIDIA-nvTIFF-SLA-2022-03-31")])
def test_licence_files(text, document, date, license):
    match = identify_license_text("x.dist-info/licenses/LICENSE.txt", text)
    assert match is not None and (match.document, match.date, match.license, match.method) == (
        document, date, license, "phrases")


@pytest.mark.parametrize("text,component_id", [
    (AGREEMENT, "license-text:nvidia/math-libraries-sla@2022-02-10"),
    (CUDSS, "license-text:nvidia/cudss-sla@2022-02-10"),
    (TIFF, "license-text:nvidia/nvtiff-sla@2022-03-31"),
    # were "license-text:unknown/..." (the code's prefix list missed nvcomp, cudss, nvjpeg2k, cuquantum)
    (b"governs your use of the NVIDIA nvCOMP Software Development Kit (v. April 26, 2022)",
     "license-text:nvidia/nvcomp-sla@2022-04-26"),
    (b"nvJPEG2K SUPPLEMENT TO SOFTWARE LICENSE AGREEMENT FOR NVIDIA SOFTWARE DEVELOPMENT KITS (v. November 14, 2020)",
     "license-text:nvidia/nvjpeg2k-sla@2020-11-14"),
    (b"governs your use of the NVIDIA cuQuantum software (version August 18, 2021)",
     "license-text:nvidia/cuquantum-sla@2021-08-18"),
    (b"SCALE Free License\nThe Software is licensed, not sold.", None)])
def test_licence_text_vendor_is_the_tables(text, component_id):
    match = identify_license_text("LICENSE", text)
    if component_id is None:  # not an NVIDIA text: no vendor (the SCALE licences, when recognised, have none)
        assert match is None or license_components([(match, "LICENSE")])[0].vendor == ""
        return
    assert match is not None
    (component,) = license_components([(match, "LICENSE")])
    assert (component.id, component.vendor) == (component_id, "NVIDIA")


@pytest.mark.parametrize("component,version,expected", [
    ("cusolvermp", "0.9.1", ("math-libraries-sla", "2022-02-10")),
    ("cufftmp", "11.4.0", ("math-libraries-sla", "2022-02-10")),
    ("mathdx", "0.3.1", ("math-libraries-sla", "2022-02-10")),
    ("cusolvermp", "0.9.2", None)])
def test_math_libraries_by_their_own_release(component, version, expected):
    doc = documents.load().document("math-libraries-sla")
    found = doc.for_release(ToolkitRange.of_version(version), component=component)
    assert (None if found is None else [(doc.id, text.id) for text, _, _ in found]) == (
        None if expected is None else [expected])


def test_the_catalog_licences_and_texts_map_to_the_documents():
    assert governing.document_of({"license": MATH}) == "math-libraries-sla"
    assert governing.document_of({"license": NVTIFF}) == "nvtiff-sla"
    assert governing.license_text("math-libraries-sla") == ("math-libraries-sla", "2022-02-10")
    assert governing.license_text("nvtiff-sla") == ("nvtiff-sla", "2022-03-31")
    text = documents.load().document("nvtiff-sla").text("2022-03-31")
    assert (text.title, text.license, sorted(text.clauses)) == (
        "License Agreement for NVIDIA Software Development Kits (v. March 31, 2022) with the nvTIFF Supplement",
        "LicenseRef-NVIDIA-nvTIFF-SLA-2022-03-31", ["no-modification"])
    text = documents.load().document("math-libraries-sla").text("2022-02-10")
    assert (text.title, sorted(text.clauses)) == (
        "License Agreement for NVIDIA Math Libraries Software Development Kits (v. February 10, 2022)",
        ["no-modification"])


def test_cublasmp_text_unknown():
    """cuBLASMp's wheel ships no licence file and no row maps its release: the agreement governs it, text unknown."""
    fields = {"name": "cublasmp", "scope": "component", "version": "0.10.0.3695"}
    assert governing.own_table("math-libraries-sla", fields) is None
    release = governing.release_range("math-libraries-sla", fields, ToolkitRange.unknown())
    found = governing.resolve("math-libraries-sla", release, (), "published-with-toolkit")
    assert (found.document, found.text, found.basis) == ("math-libraries-sla", None, "unknown")


def test_nvtiff_by_its_own_release():
    """nvTIFF's text is looked up by nvTIFF's release (was: by the CUDA toolkit's, unknown, so taken from the file
    shipped beside it)."""
    fields = {"name": "nvtiff", "scope": "component", "version": "0.8.0.82"}
    release = governing.release_range("nvtiff-sla", fields, ToolkitRange.of_version("12.9.0"))
    found = governing.resolve("nvtiff-sla", release, (), "published-with-toolkit")
    assert (found.text, found.basis) == ("2022-03-31", "primary")
