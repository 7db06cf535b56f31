"""The components whose version is the CUDA toolkit release are listed twice: rules/attachment-a.yaml
``toolkit_versioned`` (which EULA text governs a part) and rules/sbom/driver-requirements.yaml
``toolkit_versioned_components`` (the SBOM's toolkit and driver requirement). Both lists must name catalog
components (rules/catalog/nvidia.yaml, names compared exactly) and the same ones, and every component they name must
ship in CUDA toolkit packaging, never in a library with its own numbering (cuBLAS 12.9.1.4, cuDNN 9.x)."""

from __future__ import annotations

import fnmatch

from licscan.identify.catalog import load_catalog
from licscan.knowledge import load_table

# PyPI wheels of CUDA toolkit components: their version is the toolkit release's (nvidia-cuda-runtime-cu12 12.8.90,
# nvidia-cuda-nvrtc-cu12 12.8.93 and nvidia-nvjitlink-cu12 12.8.93 are CUDA 12.8 Update 1's; nvidia-nvptxcompiler
# 13.0.48 to 13.5.37 are CUDA 13's, e.g. 13.4.92 beside nvidia-nvjitlink 13.4.92).
TOOLKIT_WHEELS = ("nvidia-cuda-*", "nvidia-nvjitlink*", "nvidia-nvfatbin*", "nvidia-nvvm", "nvidia-nvptxcompiler")


def _attachment() -> set[str]:
    return set(load_table("attachment-a.yaml")["toolkit_versioned"])


def _sbom() -> set[str]:
    return set(load_table("sbom/driver-requirements.yaml")["toolkit_versioned_components"])


def test_the_lists_name_catalog_components():
    names = {entry.name for entry in load_catalog().entries}
    assert _attachment() - names == set()
    assert _sbom() - names == set()
    assert "nvJitLink" in _attachment() and "nvJitLink" in _sbom()


def test_the_two_lists_agree():
    assert _attachment() ^ _sbom() == set()


def test_listed_components_ship_in_toolkit_packaging():
    catalog = load_catalog()
    for name in sorted(_attachment() | _sbom()):
        wheels = catalog.entry(name).distributions.get("pypi", ())
        own = [w for w in wheels if not any(fnmatch.fnmatchcase(w, p) for p in TOOLKIT_WHEELS)]
        assert own == [], f"{name}: {own} are not CUDA toolkit component wheels"


def test_libraries_with_their_own_numbering_are_not_listed():
    listed = _attachment() | _sbom()
    assert {"cublas", "cublasLt", "cudnn", "nccl", "cufft", "cusparse", "npp", "nvjpeg"} & listed == set()
