"""Which distribution owns a file (licscan/identify/owner.py): the one whose RECORD lists it; by scope only when no
RECORD does; nobody when several tie."""

from __future__ import annotations

from licscan.identify.owner import distribution_of
from licscan.model import Distribution, Ecosystem

SITE = "env/site-packages"


def installed(name: str, version: str, *files: str) -> Distribution:
    """An installed wheel: its scope is the site-packages folder, like every other .dist-info beside it."""
    return Distribution(f"{SITE}/{name}-{version}.dist-info", Ecosystem.PYPI, name, version, SITE,
                        files=tuple((f"{SITE}/{path}", None) for path in files))


CUBLAS = installed("nvidia-cublas-cu12", "12.8.4.1", "nvidia/cublas/lib/libcublas.so.12", "nvidia/__init__.py")
CUDART = installed("nvidia-cuda-runtime-cu12", "12.8.90", "nvidia/cuda_runtime/lib/libcudart.so.12",
                   "nvidia/__init__.py")


def test_the_record_that_lists_a_file_owns_it_whatever_the_order():
    for order in ([CUBLAS, CUDART], [CUDART, CUBLAS]):
        assert distribution_of(f"{SITE}/nvidia/cuda_runtime/lib/libcudart.so.12", order) is CUDART
        assert distribution_of(f"{SITE}/nvidia/cublas/lib/libcublas.so.12", order) is CUBLAS


def test_a_tie_has_no_owner():
    # listed by both RECORDs, and listed by none in a folder both share
    assert distribution_of(f"{SITE}/nvidia/__init__.py", [CUBLAS, CUDART]) is None
    assert distribution_of(f"{SITE}/nvidia/cuda_runtime/lib/stray.so", [CUBLAS, CUDART]) is None


def test_scope_decides_only_when_no_record_lists_the_file():
    wheel = Distribution("dist/app.whl", Ecosystem.PYPI, "app", "1.0", "dist/app.whl")
    outer = Distribution("dist", Ecosystem.PYPI, "outer", "2.0", "dist")
    assert distribution_of("dist/app.whl!/app/libx.so", [outer, wheel]) is wheel
    assert distribution_of("dist/other.so", [outer, wheel]) is outer
    assert distribution_of("elsewhere/libx.so", [outer, wheel]) is None
