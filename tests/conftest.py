"""Shared pytest configuration for licscan's tests (keep small)."""
import os

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "realworld: needs a large NVIDIA-built binary fetched from PyPI into the test cache "
        "(${LICSCAN_TEST_CACHE:-~/.cache/licscan-tests}); runs when the file is cached, "
        "LICSCAN_REALWORLD=1 is set, or the marker is selected with -m realworld",
    )


def realworld_enabled(config) -> bool:
    """True if realworld tests may download what they need."""
    if os.environ.get("LICSCAN_REALWORLD", "") not in ("", "0"):
        return True
    expr = config.getoption("markexpr", default="") or ""
    return "realworld" in expr and "not realworld" not in expr
