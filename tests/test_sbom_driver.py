"""The toolkit -> driver requirement (the CUDA Toolkit release notes, https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/ Tables 5a/5b, rules/sbom/driver-requirements.yaml)."""

from __future__ import annotations

import hashlib
import json

import pytest

from licscan.knowledge import builtin_rules_dir
from licscan.model import ToolkitRange
from licscan.sbom.data import driver_tables, license_tables
from licscan.sbom.driver import ToolkitRelease, release_of, requirement
from licscan.sbom.licenses import normalise, refs


def test_cuda13_minimum_is_580():
    need = requirement([ToolkitRelease("13.0", "13.0", "13.0", "13.0.88")])
    assert need.linux == "580.65.06"
    assert need.windows is None  # Table 5b states no Windows minimum for 13.x


def test_cuda12_minor_version_compat_and_ptx_jit():
    assert requirement([ToolkitRelease("12.8", "12.8", "12.8", None)]).linux == "525.60.13"
    with_ptx = requirement([ToolkitRelease("12.8", "12.8", "12.8", None, ptx=True)])
    assert (with_ptx.linux, with_ptx.windows) == ("570.26", "570.65")
    zstd = requirement([ToolkitRelease("12.2", "12.2", "12.2", None, compressions=("zstd",))])
    assert zstd.linux == "550.54.14"


def test_cuda11_and_ranges():
    assert requirement([ToolkitRelease("11.8", "11.8", "11.8", None)]).linux == "450.80.02"
    spread = requirement([ToolkitRelease("12.8-13.0", "12.8", "13.0", None)])
    assert spread.linux == "580.65.06"  # a driver for the newest possible toolkit satisfies all of them
    open_ended = requirement([ToolkitRelease(">=12.8", "12.8", None, None)])
    assert open_ended.linux == "525.60.13" and any("at least" in r for r in open_ended.reasons)


def test_unknown_major_is_undetermined():
    need = requirement([ToolkitRelease("14.0", "14.0", "14.0", None), ToolkitRelease("12.4", "12.4", "12.4", None)])
    assert need.linux is None and need.windows is None


def test_release_keys():
    assert release_of("13.0.96") == "13.0" and release_of("13") is None
    assert ToolkitRange("13.0", "13.0", "13.0.88").key == "13.0"
    assert ToolkitRange("12.8", "13.0", None).key == "12.8-13.0"
    assert ToolkitRange("12.8", None, None).key == ">=12.8"
    assert ToolkitRange(None, None, None).key is None


def test_tables_cover_eula_md():
    tables = driver_tables()
    assert tables.toolkit_driver["13.0"][0].linux == "580.65.06"
    assert tables.toolkit_driver["11.8"][0].linux == "520.43"
    assert any(p.fullmatch("libcuda.so.1") for p in tables.driver_libraries)
    assert "cudart" in tables.toolkit_versioned_components


def test_licence_normalisation():
    assert normalise("Apache 2.0") == "Apache-2.0"
    assert normalise("NVIDIA Proprietary Software") is None
    assert normalise("LicenseRef-NVIDIA-Proprietary") == "LicenseRef-NVIDIA-Proprietary"
    assert normalise("MIT OR GPL-2.0-only") == "MIT OR GPL-2.0-only"
    assert normalise("MIT OR") is None and normalise("MIT AND (") is None
    assert refs("MIT AND LicenseRef-A-b.1") == {"LicenseRef-A-b.1"}


def test_licence_texts_are_descriptions_not_nvidia_texts():
    for info in license_tables().licenses.values():
        assert "full text not reproduced" in info.text
        assert len(info.text) < 1500


@pytest.mark.parametrize("name", ["sbom/driver-requirements.yaml", "licenses/licenses.yaml"])
def test_snapshots_current(name):
    raw = builtin_rules_dir().joinpath(name).read_bytes()
    snapshot = json.loads(builtin_rules_dir().joinpath(name.rsplit(".", 1)[0] + ".json").read_text())
    assert snapshot["source_sha256"] == hashlib.sha256(raw).hexdigest(), "run python -m licscan.knowledge"
