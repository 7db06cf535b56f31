"""Shared pytest configuration for licscan's tests (keep small)."""
import os
import tempfile

import pytest

# Integration tests run the whole program (the CLI in a subprocess or in-process, whole dists, real NVIDIA wheels,
# the cuobjdump oracle, the hostile corpus); every other test module is a unit test of one layer. `pytest -m unit`
# is the fast loop while editing; the README's test command (what CI runs) runs both.
INTEGRATION_MODULES = ("test_cli", "test_lint", "test_gate_e2e", "test_hostile", "test_oracle_diff", "test_report_outputs",
                       "test_sbom_cli", "test_security_outputs", "test_audit", "test_fuzz_regressions", "test_census",
                       "test_env", "test_cache", "test_scan_workers")


def _is_integration(module: str) -> bool:
    return module.startswith("test_realworld") or module.startswith(INTEGRATION_MODULES)


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""
        item.add_marker(pytest.mark.integration if _is_integration(module) else pytest.mark.unit)


def pytest_configure(config):
    config.addinivalue_line("markers", "unit: a test of one layer, in process (the fast loop: pytest -m unit)")
    config.addinivalue_line("markers", "integration: the whole program on whole inputs (pytest -m integration)")
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


GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "golden")


@pytest.fixture
def golden():
    """The one golden-file check: ``golden("report/dist.md", text)`` compares ``text`` (str or bytes) with
    tests/golden/report/dist.md. ``LICSCAN_UPDATE_GOLDEN=1`` rewrites the file; without it a missing golden fails
    (it is never written silently)."""
    from pathlib import Path

    def check(name: str, actual: str | bytes) -> None:
        path = Path(GOLDEN_DIR) / name
        data = actual.encode("utf-8") if isinstance(actual, str) else actual
        if os.environ.get("LICSCAN_UPDATE_GOLDEN", "") not in ("", "0"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        if not path.is_file():
            pytest.fail(f"golden file {path} is missing (LICSCAN_UPDATE_GOLDEN=1 writes it; review and commit it)")
        assert data == path.read_bytes(), f"{name} differs from its golden file (LICSCAN_UPDATE_GOLDEN=1 rewrites)"

    return check


@pytest.fixture
def spool_root(tmp_path, monkeypatch):
    """tempfile's folder for this test, to check the walker's private spool folders are gone afterwards."""
    root = tmp_path / "spool-root"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Work in tmp_path with relative input paths, so virtual paths are short and exact."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
