"""issue 15 item 6: catalog gaps found on real wheels (rules/catalog/nvidia.yaml), and the version of a file whose
content marker gives only major.minor while its distribution gives the release (nvrtc-builtins 12.9 -> 12.9.86).

The file names are NVIDIA's as shipped: libnvrtc-builtins.alt.so.12.9 (12.9 NVRTC wheels), cuda.lib and
libculibos.a (nvidia-cuda-runtime-cu12 12.9.79 win_amd64 / Linux), libnccl_device.bc and .ltoir (nvidia-nccl-cu12
2.32.3). tests/test_census.py audits the real wheels.
"""

from __future__ import annotations

import pytest

from licscan.identify import catalog, examine
from licscan.inventory.items import Distribution, Ecosystem
from licscan.model import ComponentKind, FileFacts, FileFormat


def _dist(name: str, version: str) -> Distribution:
    return Distribution(f"{name}.whl", Ecosystem.PYPI, name, version, f"{name}.whl",
                        license_declared="LicenseRef-NVIDIA-Proprietary")


@pytest.mark.parametrize("member, dist, version, name, license_", [
    ("nvidia/cuda_nvrtc/lib/libnvrtc-builtins.alt.so.12.9", ("nvidia-cuda-nvrtc-cu12", "12.9.86"), "12.9.86",
     "nvrtc-builtins", "LicenseRef-NVIDIA-CUDA-EULA"),
    ("nvidia/cuda_nvrtc/bin/nvrtc-builtins64_129.alt.dll", ("nvidia-cuda-nvrtc-cu12", "12.9.86"), "12.9.86",
     "nvrtc-builtins", "LicenseRef-NVIDIA-CUDA-EULA"),
    ("nvidia/cuda_runtime/lib/x64/cuda.lib", ("nvidia-cuda-runtime-cu12", "12.9.79"), "12.9.79",
     "cuda-driver-api-lib", "LicenseRef-NVIDIA-CUDA-EULA"),
    ("nvidia/cuda_runtime/lib/libculibos.a", ("nvidia-cuda-runtime-cu12", "12.9.79"), "12.9.79", "culibos",
     "LicenseRef-NVIDIA-CUDA-EULA"),
    ("nvidia/nccl/lib/libnccl_device.bc", ("nvidia-nccl-cu12", "2.32.3"), "2.32.3", "nccl", "BSD-3-Clause"),
    ("nvidia/nccl/lib/libnccl_device.ltoir", ("nvidia-nccl-cu12", "2.32.3"), "2.32.3", "nccl", "BSD-3-Clause"),
])
def test_named_with_the_distribution_version(member, dist, version, name, license_):
    wheel = f"{dist[0]}.whl"
    matches = catalog.identify(f"{wheel}!/{member}", None, _dist(*dist), None)
    assert [(m.name, m.vendor, m.kind, m.version, m.license) for m in matches] == [
        (name, "NVIDIA", ComponentKind.SDK_LIBRARY, version, license_)]


def test_marker_prefix_does_not_hide_the_distribution_release():
    """The walk reads a wheel member before the wheel's METADATA: what the bytes say (the "#define CUDART_VERSION
    12090" marker: 12.9) is observed then, and the member is named once the distribution (12.9.86) is known. Both
    claims decide together."""
    dist = _dist("nvidia-cuda-nvrtc-cu12", "12.9.86")
    vpath = f"{dist.scope}!/nvidia/cuda_nvrtc/lib/libnvrtc-builtins.so.12.9"
    data = b"\0" * 64 + b"#define CUDART_VERSION 12090\n" + b"\0" * 64
    observed = examine.observe(vpath, FileFacts(vpath, FileFormat.UNKNOWN, len(data)), data, len(data),
                               (dist.scope,))
    assert observed.record.matches == ()
    assert catalog.name(observed.observation) == catalog.identify(vpath, None, None, data)
    assert [(m.version, m.version_range) for m in catalog.name(observed.observation)] == [(None, "12.9.x")]
    (match,) = examine.name(observed, [dist]).matches
    assert (match.version, match.version_range) == ("12.9.86", None)
    assert [(c.source.value, c.value, c.exact) for c in match.versions] == [
        ("marker", "12.9", False), ("file-name", "12.9", False), ("distribution-metadata", "12.9.86", True)]
