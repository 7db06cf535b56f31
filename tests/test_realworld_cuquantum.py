"""cuQuantum's libraries on PyPI: custatevec-cu12 1.15.0 (cuquantum/lib/libcustatevec.so.1) and cutensornet-cu12
2.14.0 (cuquantum/lib/libcutensornet.so.2).

Before: neither was named (no catalog entry); the only NVIDIA part reported was the CUDA runtime each links
statically. Now each is named with its wheel's version under the licence its wheel ships, cuquantum/LICENSE, "NVIDIA
SOFTWARE LICENSE (version August 18, 2021)" for "the NVIDIA cuQuantum software" (LicenseRef-NVIDIA-cuQuantum-SLA,
rules/licenses/licenses.yaml); the runtime inside NVIDIA's own library is part of it, not a component of its own; the
device code equals cuobjdump's listing.

Runs with LICSCAN_REALWORLD=1 or when the wheels are cached (tests/census_wheels.py downloads into the test cache).
"""
from __future__ import annotations

import collections
import json
import subprocess
import sys
import zipfile

import census_wheels as cw
import oracle
import pytest

pytestmark = pytest.mark.realworld
SLA = "LicenseRef-NVIDIA-cuQuantum-SLA"



@pytest.mark.parametrize("dist,version,name,member,images", [
    ("custatevec-cu12", "1.15.0", "custatevec", "cuquantum/lib/libcustatevec.so.1", 714),
    ("cutensornet-cu12", "2.14.0", "cutensornet", "cuquantum/lib/libcutensornet.so.2", 63)])
def test_cuquantum_libraries_are_named(pytestconfig, tmp_path, dist, version, name, member, images):
    wheel = cw.wheel_or_skip(pytestconfig, dist, version, cw.LINUX)
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(wheel), "--no-cache", "--format", "json",
                           "-o", str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    named = [(c["name"], c["kind"], c["version"], c["license"], c["properties"].get("version_source"),
              [p.rsplit("!/", 1)[1] for p in c["paths"]])
             for c in report["components"] if c["vendor"] == "NVIDIA" and c["kind"] not in ("python-distribution", "license-text")]
    assert named == [(name, "sdk-library", version, SLA, "distribution-metadata", [member])]
    assert report["findings"] == [] and report["diagnostics"] == []
    assert len(report["device_code"]) == images
    sbom = tmp_path / "sbom.spdx.json"
    proc = subprocess.run([sys.executable, "-m", "licscan", "sbom", str(wheel), "--no-cache", "--format",
                           "spdx-json", "-o", str(sbom)], capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(sbom.read_text())
    texts = {e["licenseId"]: e["extractedText"] for e in doc["hasExtractedLicensingInfos"]}
    assert texts[SLA].startswith('"NVIDIA SOFTWARE LICENSE (version August 18, 2021)", which "governs your use of '
                                 'the NVIDIA cuQuantum software"')
    oracle.require_cuobjdump()
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    target = tmp_path / member.rsplit("/", 1)[1]
    target.write_bytes(data)
    expected = cw.cuobjdump_listing(target.name, data)
    got = [(d["kind"], d["arch"]) for d in oracle.run_inspect(str(target))["device_code"]]
    assert expected.how == "cuobjdump" and len(got) == images
    assert collections.Counter(got) == collections.Counter(expected.images)


TITLE = "NVIDIA SOFTWARE LICENSE (version August 18, 2021), for the NVIDIA cuQuantum software"
TEXT_ID = "LicenseRef-NVIDIA-cuQuantum-SLA-2021-08-18"


@pytest.mark.parametrize("dist,version,name,member", [
    ("custatevec-cu12", "1.15.0", "custatevec", "cuquantum/lib/libcustatevec.so.1"),
    ("cutensornet-cu12", "2.14.0", "cutensornet", "cuquantum/lib/libcutensornet.so.2")])
def test_cuquantum_is_governed_by_its_own_licence(pytestconfig, tmp_path, dist, version, name, member):
    """Before: cuquantum/LICENSE was not recognised (no licence-text component, no document) and no licence governed
    the libraries (the report's governing list was empty). Now the file is the cuQuantum licence's text of August 18,
    2021 (rules/catalog/license-texts.yaml cuquantum-sla), and it governs the library and its device code
    (rules/licenses/documents.yaml cuquantum-sla, its component_texts: the library's own release, read from this
    wheel), never the CUDA EULA."""
    wheel = cw.wheel_or_skip(pytestconfig, dist, version, cw.LINUX)
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(wheel), "--no-cache", "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    texts = [(c["kind"], c["name"], c["license"], c["version"], [p.rsplit("!/", 1)[1] for p in c["paths"]])
             for c in report["components"] if c["kind"] == "license-text"]
    assert texts == [("license-text", TITLE, TEXT_ID, "2021-08-18", ["cuquantum/LICENSE"])]
    governing = sorted((g["scope"], (g["component"] or "").split(":", 1)[0], g["path"].rsplit("!/", 1)[1],
                        g["document"], g["text"], g["title"], g["license"], g["basis"]) for g in report["governing"])
    # the licence file itself has no release to look its text up by (as cuTENSOR's and nvCOMP's LICENSE)
    assert governing == sorted([
        ("component", "license-text", "cuquantum/LICENSE", "cuquantum-sla", None,
         "NVIDIA Software License for cuQuantum, text unknown", None, "unknown"),
        ("component", "sdk-library", member, "cuquantum-sla", "2021-08-18", TITLE, TEXT_ID, "primary"),
        ("device_code", "", member, "cuquantum-sla", "2021-08-18", TITLE, TEXT_ID, "primary")])
    library, = (g for g in report["governing"] if g["component"] == f"sdk-library:nvidia/{name}@{version}")
    assert library["why"] == (f"{TITLE}, published with {name} {version}: PyPI {dist} {version}, cuquantum/LICENSE")
    assert library["other_policies"] == {}
    assert report["findings"] == [] and report["diagnostics"] == []
