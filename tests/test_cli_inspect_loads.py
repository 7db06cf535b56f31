"""What one ``licscan inspect`` run loads besides reading its file: the naming layer (rules/catalog/nvidia.yaml) only
where a library may be linked into the file, the catalog's name patterns only where some library's evidence is in
its constant data, and never the modules of work it does not do (translation-layer signals, worker pools,
pyelftools' enums, packaging's wheel tags).

Each run is ``licscan.cli.main()`` in a fresh interpreter, with the command line's arguments, then the modules and
compiled regexes it left. Before: every run loaded all of it (146 -> 274 ms for libtorch_cuda.so, 106-131 ->
190-215 ms for small files: benchmarks/bench_inspect.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import fixture

PROBE = r"""
import contextlib, io, json, sys
from licscan.cli import main

out = io.StringIO()
sys.argv = ["licscan", "inspect", "--jobs", "1", sys.argv[1]]
with contextlib.redirect_stdout(out):
    code = main()  # as the command line runs it (argv None)
loaded = {m for m in ("licscan.identify.catalog", "licscan.identify.signals", "licscan.identify.signal_table",
                      "multiprocessing", "elftools", "packaging.tags") if m in sys.modules}
compiled = []
if "licscan.identify.catalog_table" in sys.modules:
    cat = sys.modules["licscan.identify.catalog_table"].load_catalog()
    compiled = ["any_name"] * ("any_name" in vars(cat)) + [e.name for e in cat.entries if "names" in vars(e)]
    compiled += [f"{e.name} patterns" for e in cat.entries if any("regex" in vars(p) for p in e.patterns)]
linked = [line.split()[1:] for line in out.getvalue().splitlines() if line.lstrip().startswith("LINKED")]
print(json.dumps({"code": code, "loaded": sorted(loaded), "compiled": compiled, "linked": linked}))
"""


def _run(rel: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(fixture(rel))], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("rel", ["cuda13/librdc_static.a", "cuda112/k112_nosm35_compressall.fatbin",
                                 "cuda13/kern_sm80.cubin"])
def test_a_file_nothing_is_linked_into_loads_no_naming(rel):
    # An archive, a fatbin, a cubin: objects are linked later, not into (licscan.binary.regions.host_format).
    assert _run(rel) == {"code": 0, "loaded": [], "compiled": [], "linked": []}


def test_a_library_without_evidence_compiles_no_name_pattern():
    # libkern.so is a host binary: its constant data is searched for the static libraries' evidence (none), so the
    # file is not named and no regex of the catalog is compiled.
    assert _run("cuda13/libkern.so") == {"code": 0, "loaded": ["licscan.identify.catalog"], "compiled": [],
                                         "linked": []}


def test_an_executable_linking_the_runtime_is_named_without_signals():
    # exe_multi links libcudart_static.a: the file is named (the catalog's union of names: no entry's name, so no
    # entry's own patterns), then the runtime reported as linked; no translation-layer signal runs.
    assert _run("cuda13/exe_multi") == {
        "code": 0, "loaded": ["licscan.identify.catalog"], "compiled": ["any_name"],
        "linked": [["NVIDIA", "CUDA", "Runtime", "13.0.x", "(marker)", "from", "libcudart_static.a"]]}
