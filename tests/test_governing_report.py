"""Every named NVIDIA part carries its governing licence in the JSON report (issue 11, deliverable 1): document,
text, title, licence id, basis and why, and what the other text policies would pick."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_device_code_governed_by_the_text_published_with_cuda_13_0():
    proc = subprocess.run([sys.executable, "-m", "licscan", "audit", "examples/demo-dist", "--format", "json",
                           "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    governing = {g["path"]: g for g in json.loads(proc.stdout)["governing"]}
    entry = governing["examples/demo-dist/app/libkern.so"]
    assert (entry["scope"], entry["document"], entry["text"], entry["license"], entry["basis"]) == (
        "device_code", "cuda-eula", "2025-01-07", "LicenseRef-NVIDIA-CUDA-EULA-2025-01-07", "inferred")
    assert entry["title"] == "NVIDIA CUDA Toolkit End User License Agreement (Last updated: January 7, 2025)"
    assert "published with release 13.0" in entry["why"]
    assert entry["other_policies"] == {"newest": "2026-01-26"}
    # the ZLUDA-shaped libcuda.so.1 and AMD's runtime are under no NVIDIA licence document
    assert not [p for p in governing if p.endswith(("libcuda.so.1", "libamdhip64.so.6"))]
