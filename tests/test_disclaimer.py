"""Every audit report format says once that it is an engineering reading of the licence texts, not legal advice
(issue 11, finding 9)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "markdown", "html"])
def test_every_report_format_says_it_is_not_legal_advice(fmt):
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "examples/demo-dist", "--format", fmt,
                           "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "An engineering reading of the licence texts, not legal advice" in proc.stdout
