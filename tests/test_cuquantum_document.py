"""The cuQuantum licence as a document of its own (rules/licenses/documents.yaml cuquantum-sla): its libraries are
governed by it by their own releases, not by the CUDA EULA (docs/licenses.md#cuquantum)."""
from __future__ import annotations

import pytest

from licscan.model import ToolkitRange
from licscan.rules import documents, governing
from licscan.rules.facts import part_of

DOC = documents.load().document("cuquantum-sla")


@pytest.mark.parametrize("component,version,expected", [
    ("custatevec", "1.15.0", ("2021-08-18", "primary")), ("cutensornet", "2.14.0", ("2021-08-18", "primary")),
    ("custatevec", "1.16.0", None), ("cutensornet", "1.15.0", None)])
def test_each_library_by_its_own_release(component, version, expected):
    found = DOC.for_release(ToolkitRange.of_version(version), component=component)
    assert (None if found is None else [(text.id, basis) for text, basis, _ in found]) == (
        None if expected is None else [expected])


def test_the_catalog_licence_and_the_text_map_to_the_document():
    assert governing.document_of({"license": "LicenseRef-NVIDIA-cuQuantum-SLA"}) == "cuquantum-sla"
    assert governing.license_text("cuquantum-sla") == ("cuquantum-sla", "2021-08-18")
    text = DOC.text("2021-08-18")
    assert (text.title, text.license, sorted(text.clauses)) == (
        "NVIDIA SOFTWARE LICENSE (version August 18, 2021), for the NVIDIA cuQuantum software",
        "LicenseRef-NVIDIA-cuQuantum-SLA-2021-08-18", ["no-modification"])


def test_a_cuquantum_library_is_not_called_a_cuda_toolkit_file():
    """A component with a table of its own under a document other than the CUDA EULA is a file of itself, not
    "not part of the CUDA Toolkit but ... under the governing text" (said of NVSHMEM under the CUDA EULA)."""
    fields = {"name": "custatevec", "version": "1.15.0", "governing.document": "cuquantum-sla", "scope": "component"}
    assert part_of(fields, ToolkitRange.of_version("1.15.0")) == "a file of custatevec"
