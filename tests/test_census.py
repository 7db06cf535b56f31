"""The census (issue 15): popular CUDA-bearing wheels that nobody here wrote, each audited with default options.

The pinned list is ``census_wheels.CENSUS`` (NVIDIA's cu12/cu11 libraries and third parties' -- bitsandbytes,
torchvision, torchaudio -- Linux and Windows builds of one release side by side; bitsandbytes-cuda110 0.26.0.post2
was built with CUDA 11.0). For every wheel:

* the audit completes: exit 0 or 1 (never 2 or 3), no diagnostic;
* device code equals cuobjdump's, per file (``census_wheels.cuobjdump_listing``: PE images and COFF objects with their
  fatbin sections cut out; images in ``.rodata`` or other data sections, which cuobjdump does not read, and AMD
  images are counted apart);
* every NVIDIA binary of an NVIDIA wheel is named, and every NVIDIA component carries the version the wheel or the
  file name states (``EXPECTED``): none is wrong, missed or invented;
* the Linux and Windows builds of one release get the same components (less the files only one platform ships,
  ``PLATFORM_ONLY``) and the same verdicts (exit code, rule ids and severities).

Runs when the wheels are cached or LICSCAN_REALWORLD=1 (CI); downloads stay in
``${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}`` (295 MB in all). test_print_census_table prints the census
table into the test log (CI's too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import census_wheels as cw
import pytest
from conftest import realworld_enabled

pytestmark = pytest.mark.realworld

# The NVIDIA components each wheel holds, with the version its wheel (or, for files other projects bundle, the
# file name) states: name -> (version, version range). Established from the wheels' file lists and METADATA.
# A list when the wheel holds several components of that name.
EXPECTED: dict[tuple[str, str], dict[str, tuple[str | None, str | None] | list[tuple[str | None, str | None]]]] = {
    ("nvidia-cuda-runtime-cu12", cw.LINUX): {"cudart": ("12.9.79", None), "culibos": ("12.9.79", None)},
    ("nvidia-cuda-runtime-cu12", cw.WINDOWS): {"cudart": ("12.9.79", None),
                                               "cuda-driver-api-lib": ("12.9.79", None)},
    ("nvidia-cuda-cupti-cu12", cw.LINUX): {"cupti": ("12.9.79", None)},
    ("nvidia-cuda-cupti-cu12", cw.WINDOWS): {"cupti": ("12.9.79", None)},
    ("nvidia-cuda-nvrtc-cu12", cw.LINUX): {"nvrtc": ("12.9.86", None), "nvrtc-builtins": ("12.9.86", None)},
    ("nvidia-cuda-nvrtc-cu12", cw.WINDOWS): {"nvrtc": ("12.9.86", None), "nvrtc-builtins": ("12.9.86", None)},
    ("nvidia-nvjpeg-cu12", cw.LINUX): {"nvjpeg": ("12.4.0.76", None)},
    ("nvidia-nvjpeg-cu12", cw.WINDOWS): {"nvjpeg": ("12.4.0.76", None)},
    ("nvidia-nvtx-cu12", cw.LINUX): {"nvtx3interop": ("12.9.79", None)},
    ("nvidia-nvtx-cu12", cw.WINDOWS): {},  # the Windows wheel ships the licence and metadata only
    ("nvidia-cuda-cupti-cu11", cw.LINUX): {"cupti": ("11.7.101", None)},
    ("bitsandbytes", cw.LINUX): {},  # links against cudart/cuBLAS (dependencies), ships none
    # libbitsandbytes_cuda130.dll and _cuda132.dll link cudart_static.lib: CUDA 13.0's and 13.2's runtime (their
    # device code's toolkit; tests/test_realworld_static_cudart.py)
    ("bitsandbytes", cw.WINDOWS): {"cudart": [(None, "13.0.x"), (None, "13.2.x")]},
    ("bitsandbytes-cuda110", cw.LINUX): {},
    # torchvision.libs/libcudart.faf08d9a.so.13, libnvjpeg.36e11081.so.13 (auditwheel grafts): the names say 13
    ("torchvision", cw.LINUX): {"cudart": (None, "13.x"), "nvjpeg": (None, "13.x")},
    ("torchaudio", cw.LINUX): {},
}
# Components that only one platform's build of a release ships, with the file that makes them.
PLATFORM_ONLY = {
    ("nvidia-cuda-runtime-cu12", "culibos"): "lib/libculibos.a (Linux; Windows links it into cudart_static.lib)",
    ("nvidia-cuda-runtime-cu12", "cuda-driver-api-lib"): "lib/x64/cuda.lib (Windows import library of nvcuda.dll)",
    ("nvidia-nvtx-cu12", "nvtx3interop"): "lib/libnvtx3interop.so.1 (the Windows wheel has no library)",
    ("bitsandbytes", "cudart"): "the CUDA 13 DLLs link cudart_static.lib (the Linux .so files load libcudart.so)",
    ("bitsandbytes", "bitsandbytes"): "the distribution itself, listed when it ships an NVIDIA part (that runtime)",
}
CUOBJDUMP_CONTAINERS = {"nv_fatbin", "relfatbin", "standalone"}


class Audit(NamedTuple):
    pin: cw.Pin
    wheel: Path
    exit_code: int
    report: dict
    stderr: str


_AUDITS: dict[cw.Pin, Audit] = {}


@pytest.fixture(scope="module")
def download(pytestconfig) -> bool:
    return realworld_enabled(pytestconfig)


def _audit(pin: cw.Pin, download: bool, tmp_root: Path) -> Audit:
    if pin not in _AUDITS:
        try:
            wheel = cw.fetch(pin, download)
        except cw.Unavailable as error:
            pytest.skip(str(error))
        out = tmp_root / f"{wheel.name}.json"
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp_root / "xdg"))  # default options, a fresh content cache
        proc = subprocess.run([sys.executable, "-m", "licscan", "audit", str(wheel), "--format", "json", "-o",
                               str(out)], capture_output=True, text=True, env=env, cwd=tmp_root)
        report = json.loads(out.read_text()) if out.exists() else {}
        _AUDITS[pin] = Audit(pin, wheel, proc.returncode, report, proc.stderr)
    return _AUDITS[pin]


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("census")


def _ids(pins) -> list[str]:
    return [f"{p.dist}-{p.version}-{'linux' if p.platform == cw.LINUX else 'win'}" for p in pins]


# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pin", cw.CENSUS, ids=_ids(cw.CENSUS))
def test_audit_completes(pin, download, tmp_root):
    audit = _audit(pin, download, tmp_root)
    assert audit.exit_code in (0, 1), f"{pin.label}: exit {audit.exit_code}: {audit.stderr[-2000:]}"
    assert audit.report["diagnostics"] == [], f"{pin.label}: {audit.report['diagnostics'][:5]}"
    assert audit.report["summary"]["complete"] is True


def device_code_parity(audit: Audit) -> tuple[list[str], Counter]:
    """Files whose device code differs from cuobjdump's (empty = parity), and how each file was compared."""
    per_file: dict[str, list[tuple[str, str]]] = {}
    for image in audit.report["device_code"]:
        member = image["path"].split("!/", 2)[1]
        if image["container"] in CUOBJDUMP_CONTAINERS:
            per_file.setdefault(member, []).append((image["kind"], image["arch"]))
    differing = []
    how: Counter = Counter()
    for name, data in cw.wheel_binaries(audit.wheel):
        expected = cw.cuobjdump_listing(name, data)
        how[expected.how] += 1
        if sorted(expected.images) != sorted(per_file.get(name, [])):
            differing.append(f"{name}: cuobjdump {len(expected.images)} images ({expected.how}), "
                             f"licscan {len(per_file.get(name, []))}")
    return differing, how


@pytest.mark.parametrize("pin", cw.CENSUS, ids=_ids(cw.CENSUS))
def test_device_code_equals_cuobjdump(pin, download, tmp_root):
    audit = _audit(pin, download, tmp_root)
    differing, _how = device_code_parity(audit)
    assert differing == []


def component_score(audit: Audit) -> dict[str, list[str]]:
    """right / wrong / missed / invented NVIDIA components against ``EXPECTED`` (licence texts and the wheel's own
    python-distribution entry aside)."""
    expected = EXPECTED[(audit.pin.dist, audit.pin.platform)]
    found: dict[str, list[tuple[str | None, str | None]]] = {}
    for c in audit.report["components"]:
        if c["vendor"] == "NVIDIA" and c["kind"] not in ("license-text", "python-distribution"):
            found.setdefault(c["name"], []).append((c["version"], (c.get("properties") or {}).get("version_range")))
    score: dict[str, list[str]] = {"right": [], "wrong": [], "missed": [], "invented": []}
    for name, want in expected.items():
        if name not in found:
            score["missed"].append(name)
        elif sorted(found[name]) != (want if isinstance(want, list) else [want]):
            score["wrong"].append(f"{name} {found[name]} (expected {want})")
        else:
            score["right"].append(name)
    score["invented"] = sorted(set(found) - set(expected))
    return score


@pytest.mark.parametrize("pin", cw.CENSUS, ids=_ids(cw.CENSUS))
def test_components_named_with_their_version(pin, download, tmp_root):
    audit = _audit(pin, download, tmp_root)
    score = component_score(audit)
    assert (score["wrong"], score["missed"], score["invented"]) == ([], [], [])
    if pin.dist.startswith("nvidia-"):
        # every binary of NVIDIA's own wheel belongs to a component named with the wheel's version
        named = {p.split("!/", 1)[1] for c in audit.report["components"] if c["vendor"] == "NVIDIA"
                 and c["kind"] not in ("license-text", "python-distribution") and c["version"] == pin.version
                 for p in c["paths"]}
        binaries = [name for name, _ in cw.wheel_binaries(audit.wheel)]
        assert [b for b in binaries if b not in named] == []
        dist = [c for c in audit.report["components"] if c["kind"] == "python-distribution"]
        assert [(c["name"], c["version"]) for c in dist] == [(pin.dist, pin.version)]


PAIRS = sorted({(p.dist, p.version) for p in cw.CENSUS if cw.Pin(p.dist, p.version, cw.WINDOWS) in cw.CENSUS
                and cw.Pin(p.dist, p.version, cw.LINUX) in cw.CENSUS})


def _components(audit: Audit) -> set:
    return {(c["name"], c["vendor"], c["kind"], c["version"], c["license"]) for c in audit.report["components"]
            if (audit.pin.dist, c["name"]) not in PLATFORM_ONLY}


def _verdicts(audit: Audit) -> tuple[int, set]:
    only = {c["id"] for c in audit.report["components"] if (audit.pin.dist, c["name"]) in PLATFORM_ONLY}
    return audit.exit_code, {(f["rule"], f["severity"]) for f in audit.report["findings"]
                             if f.get("component") not in only or f["rule"] == "CUDA-EULA-NVIDIA-GPU-ONLY"}


@pytest.mark.parametrize("dist,version", PAIRS, ids=[f"{d}-{v}" for d, v in PAIRS])
def test_linux_and_windows_builds_agree(dist, version, download, tmp_root):
    linux = _audit(cw.Pin(dist, version, cw.LINUX), download, tmp_root)
    windows = _audit(cw.Pin(dist, version, cw.WINDOWS), download, tmp_root)
    assert _components(linux) == _components(windows)
    assert _verdicts(linux) == _verdicts(windows)
    if dist == "bitsandbytes":
        # Windows imports count as dependencies too: each CUDA build needs cuBLAS and cuBLASLt on both
        def needs(audit):
            return Counter(d["component"] for d in audit.report["dependencies"])

        assert needs(linux)["cublas"] == needs(windows)["cublas"] == 7
        assert needs(linux)["cublasLt"] == needs(windows)["cublasLt"] == 7


def test_census_size():
    pins = cw.CENSUS
    assert len(pins) >= 15
    assert {p.platform for p in pins} == {cw.LINUX, cw.WINDOWS}
    assert any(p.dist.startswith("nvidia-") for p in pins) and any(not p.dist.startswith("nvidia-") for p in pins)
    assert cw.Pin("bitsandbytes-cuda110", "0.26.0.post2", cw.LINUX) in pins  # built with CUDA 11.0
    assert set(EXPECTED) == {(p.dist, p.platform) for p in pins}


def census_table(download: bool, tmp_root: Path) -> str:
    """The census as a Markdown table (``pytest -s`` prints it; benchmarks/bench_census.py too)."""
    rows = ["| wheel | exit | device code (images) | parity with cuobjdump | components right/wrong/missed/invented "
            "| findings |", "|---|---|---|---|---|---|"]
    for pin in cw.CENSUS:
        audit = _audit(pin, download, tmp_root)
        differing, how = device_code_parity(audit)
        score = component_score(audit)
        images = Counter(i["container"] in CUOBJDUMP_CONTAINERS for i in audit.report["device_code"])
        findings = Counter(f"{f['rule']} ({f['severity']})" for f in audit.report["findings"])
        parity = "yes" if not differing else f"NO: {'; '.join(differing)}"
        ways = ", ".join(f"{n} {h}" for h, n in sorted(how.items()) if h != "not a binary")
        rows.append(f"| {pin.label} | {audit.exit_code} | {images[True]} + {images[False]} not cuobjdump's | "
                    f"{parity} ({ways or 'no binary'}) | {len(score['right'])}/{len(score['wrong'])}/"
                    f"{len(score['missed'])}/{len(score['invented'])} | "
                    f"{', '.join(f'{k} x{v}' for k, v in sorted(findings.items())) or 'none'} |")
    return "\n".join(rows)


def test_print_census_table(download, tmp_root, capsys):
    table = census_table(download, tmp_root)
    with capsys.disabled():
        print("\n" + table)
    assert table.count("\n") == len(cw.CENSUS) + 1
