"""rules/toolkit/components.yaml: the CUDA toolkit release of the libraries numbered on their own (cuBLAS 12.9.1.4 is
CUDA 12.9.1's), checked row by row against NVIDIA's ``cuda-toolkit`` meta-package on PyPI, whose METADATA pins the
component wheels of each release ("Requires-Dist: nvidia-cublas-cu12==12.9.1.4.*; ... extra == 'all'").

The meta-packages are fetched into the test cache (tests/licence_copies.py) with LICSCAN_REALWORLD=1 or when cached;
a release missing from the table fails with the row to add."""
from __future__ import annotations

import re
import zipfile

import licence_copies
import pytest
from conftest import realworld_enabled

from licscan.knowledge import load_table
from licscan.rules.toolkits import component_toolkit

TABLE = load_table("toolkit/components.yaml")
# Every cuda-toolkit release on PyPI when the table was made (`pip index versions cuda-toolkit`).
RELEASES = ["11.8.0", "12.0.0", "12.0.1", "12.1.0", "12.1.1", "12.2.0", "12.2.1", "12.2.2", "12.3.0", "12.3.1",
            "12.3.2", "12.4.0", "12.4.1", "12.5.0", "12.5.1", "12.6.0", "12.6.1", "12.6.2", "12.6.3", "12.8.0",
            "12.8.1", "12.8.2.0", "12.9.0", "12.9.1", "12.9.2.0", "13.0.0", "13.0.1", "13.0.2", "13.0.3.0", "13.1.0",
            "13.1.1", "13.1.2.0", "13.2.0", "13.2.1", "13.2.2", "13.3.0", "13.3.1", "13.4.1.0", "13.4.2", "13.4.3",
            "13.5.0"]
_PIN = re.compile(r"^Requires-Dist: ([A-Za-z0-9_.-]+)\s*\(?==\s*([0-9][0-9.]*?)(?:\.\*)?\)?\s*(?:;|$)", re.M)


def _pins(release: str, download: bool) -> dict[str, str]:
    """{distribution without -cuNN: pinned version} of the cuda-toolkit meta-package ``release``."""
    with zipfile.ZipFile(licence_copies.wheel("cuda-toolkit", release, download)) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode("utf-8")
    assert re.search(rf"^Version: {re.escape(release)}$", meta, re.M)
    found: dict[str, str] = {}
    for name, version in _PIN.findall(meta):
        found.setdefault(re.sub(r"-cu\d+$", "", name.lower()), version)
    return found


def test_table_lists_every_release_and_names_catalog_components():
    from licscan.identify.catalog import load_catalog

    assert list(TABLE["releases"]) == RELEASES
    names = {entry.name for entry in load_catalog().entries}
    assert set(TABLE["distributions"]) <= names
    wanted = set(TABLE["distributions"].values())
    assert {d for row in TABLE["releases"].values() for d in row} <= wanted


@pytest.mark.realworld
@pytest.mark.parametrize("release", RELEASES)
def test_row_is_the_meta_package_pins(release, request):
    try:
        pins = _pins(release, realworld_enabled(request.config))
    except licence_copies.Unavailable as error:
        pytest.skip(str(error))
    wanted = dict.fromkeys(TABLE["distributions"].values())
    expected = {d: pins[d] for d in wanted if d in pins}
    row = ", ".join(f'{d}: "{v}"' for d, v in expected.items())
    assert TABLE["releases"].get(release) == expected, f'add:  "{release}": {{{row}}}'


@pytest.mark.parametrize("name,version,low,high,exact", [
    ("cublas", "12.9.1.4", "12.9", "12.9", "12.9.1"),  # pinned by 12.9.1 only
    ("cublasLt", "12.4.5.8", "12.4", "12.4", "12.4.1"),
    ("cufft", "11.4.1.4", "12.9", "12.9", None),  # 12.9.1 and the 12.9.2.0 meta-package: CUDA 12.9
    ("cufft", "11.0.2.54", "12.1", "12.1", "12.1.1"),  # cuFFT 11.x is a CUDA 12 library
    ("nvjpeg", "12.4.0.76", "12.9", "12.9", None),
    ("curand", "10.3.7.77", "12.6", "12.6", None),  # 12.6.2 and 12.6.3
    ("curand", "10.4.0.35", "13.0", "13.0", None),
    ("cusolverMg", "11.7.5.82", "12.9", "12.9", None),
    ("cublas", "12.9.3.13", None, None, None),  # no meta-package pins it: unknown
    ("cudnn", "9.28.1.4", None, None, None),  # not a toolkit library
])
def test_component_toolkit_of_libraries_with_their_own_numbering(name, version, low, high, exact):
    rng = component_toolkit({"name": name, "version": version, "vendor": "NVIDIA", "kind": "sdk-library"})
    assert (rng.low, rng.high, rng.exact) == (low, high, exact)
    if low is not None:
        assert rng.evidence and rng.evidence[0].startswith(f"{name} {version} is pinned by cuda-toolkit ")


def test_component_toolkit_from_a_version_prefix():
    """A Windows DLL's version resource states cuBLAS's first three parts ("NVIDIA NVBLAS Library, Version 12.9.1"):
    the meta-packages that pin a 12.9.1.* cuBLAS are 12.9.1's. A prefix of fewer parts says nothing."""
    def toolkit(name, prefix):
        return component_toolkit({"name": name, "version": None, "vendor": "NVIDIA", "kind": "sdk-library",
                                  "properties": {"version_range": prefix}})

    rng = toolkit("nvblas", "12.9.1.x")
    assert (rng.low, rng.high, rng.exact) == ("12.9", "12.9", "12.9.1")
    assert rng.evidence == ("nvblas 12.9.1.x: the cuda-toolkit meta-packages that pin a 12.9.1.* version are 12.9.1 "
                            "(rules/toolkit/components.yaml)",)
    assert toolkit("cublas", "12.x").is_unknown and toolkit("cublas", "12.9.x").is_unknown
