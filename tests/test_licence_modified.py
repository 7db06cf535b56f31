"""One rule for "modified" across every *-MODIFIED rule (licscan/rules/modified.py, docs/licenses.md#modified-files):
each file is judged by its own differences, not by those of the other files of its component; a RECORD mismatch
inside NVIDIA's own wheel, or of bytes NVIDIA publishes with a RECORD that states another digest, is NVIDIA's
packaging; anywhere else (an installed environment, a third party's package) it is a modification."""

from __future__ import annotations

from licscan.model import Modification
from licscan.rules import documents
from licscan.rules.facts import build
from licscan.rules.modified import FileChanges, file_changes

ACTUAL = "a" * 64
RECORDED = "b" * 64
TRT_LEAN_DLL = "a0b70299bf9a3b8d90f0e493d1126dc38d5abd97b624f9b6fd57790f5035589b"


def _sha_line(path: str, actual: str = ACTUAL, dist: str = "nvidia-cudnn-cu12") -> str:
    return f"{path}: sha256 {actual} differs from {dist} RECORD {RECORDED}"


def test_each_file_keeps_only_its_own_differences():
    """One patched file of a component named in two files: only that file is modified (the component's
    properties.modified is the union of its files')."""
    evidence = [_sha_line("env/nvidia/cudnn/lib/libcudnn.so.9"), "env/nvidia/cudnn/lib/libcudnn_cnn.so.9: file name"]
    assert file_changes("sha256-differs-from-record", evidence, "env/nvidia/cudnn/lib/libcudnn.so.9",
                        "env/nvidia_cudnn_cu12-9.28.0.42.dist-info", False, ()) == FileChanges(
        "sha256-differs-from-record")
    assert file_changes("sha256-differs-from-record", evidence, "env/nvidia/cudnn/lib/libcudnn_cnn.so.9",
                        "env/nvidia_cudnn_cu12-9.28.0.42.dist-info", False, ()) == FileChanges(None)


def test_every_difference_the_naming_layer_writes_is_read_back():
    path = "dist/app.whl!/app.libs/libcudart-9a4b3c2d.so.12"
    evidence = [f"{path}: auditwheel-grafted name: '-9a4b3c2d' inserted before '.so'",
                f"{path}: no DT_SONAME (NVIDIA's CUDA Runtime has one)",
                f"{path}: SONAME 'libfoo.so' is not NVIDIA's (libcudart\\.so\\.\\d+)",
                f"{path}: RUNPATH/RPATH '$ORIGIN' set; NVIDIA ships it without one",
                f"{path}: no .symtab, while NVIDIA ships it with one",
                _sha_line(path, dist="app")]
    union = ",".join(sorted(m.value for m in Modification))
    assert file_changes(union, evidence, path, "dist/app.whl", False, ()).modified == union


def test_record_mismatch_in_nvidias_own_wheel_is_its_packaging():
    path = "dist/nvidia_cudnn_cu12-9.28.0.42-py3-none-manylinux_2_27_x86_64.whl!/nvidia/cudnn/lib/libcudnn.so.9"
    wheel = path.split("!/")[0]
    got = file_changes("sha256-differs-from-record", [_sha_line(path)], path, wheel, True, ())
    assert got.modified is None
    assert got.notes == (f"a member of NVIDIA's wheel {wheel} as published: its RECORD mismatch is NVIDIA's "
                         f"packaging, not a modification (docs/licenses.md#modified-files)",)
    # a graft is compared with NVIDIA's published form, not with a RECORD: it counts even there
    both = [_sha_line(path), f"{path}: auditwheel-grafted name: '-9a4b3c2d' inserted before '.so'"]
    assert file_changes("auditwheel-grafted,sha256-differs-from-record", both, path, wheel, True, ()).modified == \
        "auditwheel-grafted"
    # the same mismatch in a third party's wheel, or in an environment installed from NVIDIA's wheel, counts
    assert file_changes("sha256-differs-from-record", [_sha_line(path)], path, wheel, False, ()).modified == \
        "sha256-differs-from-record"
    installed = "env/nvidia/cudnn/lib/libcudnn.so.9"
    assert file_changes("sha256-differs-from-record", [_sha_line(installed)], installed,
                        "env/nvidia_cudnn_cu12-9.28.0.42.dist-info", True, ()).modified == "sha256-differs-from-record"


def test_bytes_nvidia_publishes_with_a_mismatching_record_are_not_modified_anywhere():
    published = documents.load().published
    assert TRT_LEAN_DLL in published
    path = "env/tensorrt_lean_libs/nvinfer_lean_11.dll"
    got = file_changes("sha256-differs-from-record", [_sha_line(path, TRT_LEAN_DLL, "tensorrt-lean-cu12-libs")],
                       path, "env/tensorrt_lean_cu12_libs-11.4.0.106.dist-info", True, published)
    assert got == FileChanges(None, (
        f"sha256 {TRT_LEAN_DLL} is the file as NVIDIA publishes it, with a RECORD that states another digest "
        f"(rules/licenses/documents.yaml as_published): not a modification",))


def test_a_hand_written_document_keeps_the_component_values():
    """No evidence line of any difference: each file has the component's values (tests/rules fixtures)."""
    assert file_changes("auditwheel-grafted", [], "dist/app.whl!/x/libcusparseLt-1a2b3c4d.so.0", "dist/app.whl",
                        False, ()).modified == "auditwheel-grafted"


def _component(cid: str, paths: list[str], evidence: list[str], modified: str | None, **extra) -> dict:
    return {"id": cid, "kind": "sdk-library", "vendor": "NVIDIA", "name": "cupti", "version": "12.9.79",
            "license": "LicenseRef-NVIDIA-CUDA-EULA", "paths": paths, "evidence": evidence,
            "properties": {"modified": modified} if modified else {}, **extra}


def test_the_fact_of_each_path_carries_its_own_value_and_the_note():
    lib = "env/nvidia/cuda_cupti/lib/"
    wheel = "dist/nvidia_cuda_cupti_cu12-12.9.79-py3-none-manylinux_2_25_x86_64.whl"
    document = {
        "inputs": ["env", "dist"],
        "distributions": [
            {"ecosystem": "pypi", "name": "nvidia-cuda-cupti-cu12", "version": "12.9.79",
             "path": "env/nvidia_cuda_cupti_cu12-12.9.79.dist-info", "license_files": []},
            {"ecosystem": "pypi", "name": "nvidia-cuda-cupti-cu12", "version": "12.9.79", "path": wheel,
             "license_files": []}],
        "components": [
            _component("c0", [lib + "libcupti.so.12", lib + "libnvperf_host.so"],
                       [_sha_line(lib + "libnvperf_host.so", dist="nvidia-cuda-cupti-cu12"),
                        f"{lib}libcupti.so.12: file name"], "sha256-differs-from-record",
                       properties={"modified": "sha256-differs-from-record",
                                   "distribution": "nvidia-cuda-cupti-cu12"}),
            _component("c1", [f"{wheel}!/nvidia/cuda_cupti/lib/libcheckpoint.so"],
                       [_sha_line(f"{wheel}!/nvidia/cuda_cupti/lib/libcheckpoint.so")], "sha256-differs-from-record"),
            {"id": "d0", "kind": "python-distribution", "vendor": "NVIDIA", "name": "nvidia-cuda-cupti-cu12",
             "version": "12.9.79", "license": None, "paths": [wheel, "env/nvidia_cuda_cupti_cu12-12.9.79.dist-info"],
             "evidence": [], "properties": {}}],
        "device_code": []}
    facts = {f.path: f for f in build(document).scope("component") if f.fields["kind"] == "sdk-library"}
    assert {p: f.fields.get("properties.modified") for p, f in facts.items()} == {
        lib + "libcupti.so.12": None, lib + "libnvperf_host.so": "sha256-differs-from-record",
        f"{wheel}!/nvidia/cuda_cupti/lib/libcheckpoint.so": None}
    assert facts[f"{wheel}!/nvidia/cuda_cupti/lib/libcheckpoint.so"].evidence[-1].startswith(
        f"a member of NVIDIA's wheel {wheel} as published")
