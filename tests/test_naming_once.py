"""Issue 12 (naming is its own layer, one pass): every file is observed once while its bytes are held
(licscan.identify.observe) and named once when its distribution is known (licscan.identify.catalog.name) -- at once
for a plain file (the installed ``.dist-info`` is read first), after the walk for an archive member (a wheel's
``RECORD`` and ``METADATA`` come after its libraries; a tar's may come anywhere). The digest a ``RECORD``
comparison needs is computed once, for named files only."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from inventory_builders import record_line, tar_bytes, write_tree, zip_bytes

from licscan.identify import catalog, examine
from licscan.scan import ScanConfig, scan

DIST = "nvidia_cuda_nvrtc_cu12-12.9.86.dist-info"
BUILTINS = "nvidia/cuda_nvrtc/lib/libnvrtc-builtins.so.12.9"
NVRTC = "nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
# What the bytes say (a marker: 12.9) and what only the distribution says (12.9.86, the RECORD digest).
BUILTINS_BYTES = b"\0" * 64 + b"#define CUDART_VERSION 12090\n" + b"\0" * 64
NVRTC_BYTES = b"not NVIDIA's bytes\n"


def _files() -> list[tuple[str, bytes]]:
    """Libraries first, then the .dist-info with its METADATA and RECORD (as a wheel is laid out): the RECORD lists
    a digest of other bytes for libnvrtc.so.12."""
    libs = [("nvidia/__init__.py", b""), (BUILTINS, BUILTINS_BYTES), (NVRTC, NVRTC_BYTES)]
    metadata = b"Metadata-Version: 2.1\nName: nvidia-cuda-nvrtc-cu12\nVersion: 12.9.86\nLicense: NVIDIA Proprietary Software\n"
    rows = [record_line(BUILTINS, BUILTINS_BYTES), record_line(NVRTC, b"NVIDIA's bytes\n"),
            record_line("nvidia/__init__.py", b""), record_line(f"{DIST}/METADATA", metadata), f"{DIST}/RECORD,,"]
    return libs + [(f"{DIST}/METADATA", metadata), (f"{DIST}/RECORD", ("\n".join(rows) + "\n").encode())]


def _input(tmp_path: Path, shape: str) -> Path:
    if shape == "wheel":
        out = tmp_path / "nvidia_cuda_nvrtc_cu12-12.9.86-py3-none-manylinux2014_x86_64.whl"
        out.write_bytes(zip_bytes(_files()))
    elif shape == "tar.gz":
        out = tmp_path / "env.tar.gz"
        out.write_bytes(tar_bytes([(f"site-packages/{name}", data) for name, data in _files()], "gz"))
    else:
        out = tmp_path / "site-packages"
        write_tree(out, dict(_files()))
    return out


@pytest.fixture()
def counted(monkeypatch):
    """Calls of the naming layer's two steps and of the SHA-256, by virtual path (digests by call)."""
    calls: dict[str, Counter[str]] = {"observe": Counter(), "name": Counter(), "identify": Counter()}
    hashed: list[str] = []
    observe, name, identify, digest = catalog.observe, catalog.name, catalog.identify, examine.digest

    def counting_observe(vpath, *args, **kwargs):
        calls["observe"][vpath] += 1
        return observe(vpath, *args, **kwargs)

    def counting_name(observed, *args, **kwargs):
        calls["name"][observed.vpath] += 1
        return name(observed, *args, **kwargs)

    def counting_identify(vpath, *args, **kwargs):
        calls["identify"][vpath] += 1
        return identify(vpath, *args, **kwargs)

    def counting_digest(data, algorithm):
        hashed.append(algorithm)
        return digest(data, algorithm)

    monkeypatch.setattr(catalog, "observe", counting_observe)
    monkeypatch.setattr(catalog, "name", counting_name)
    monkeypatch.setattr(catalog, "identify", counting_identify)
    monkeypatch.setattr(examine, "digest", counting_digest)
    return calls, hashed


@pytest.mark.parametrize("shape", ["wheel", "tar.gz", "installed"])
def test_every_file_is_observed_once_and_named_once(tmp_path, counted, shape):
    calls, hashed = counted
    root = _input(tmp_path, shape)
    _inventory, records = scan([str(root)], ScanConfig(jobs=1, cache_dir=None))
    by_path = {r.vpath.split(str(tmp_path) + "/", 1)[1].split("!/", 1)[-1].removeprefix("site-packages/"): r
               for r in records}
    assert sorted(by_path) == sorted(name for name, _ in _files())
    observed = {v.rsplit("site-packages/", 1)[-1].split("!/", 1)[-1]: n for v, n in calls["observe"].items()}
    assert observed == dict.fromkeys(by_path, 1)  # every file's bytes read by the naming layer once
    named = {v.rsplit("site-packages/", 1)[-1].split("!/", 1)[-1]: n for v, n in calls["name"].items()}
    if shape == "installed":  # observed and named at once, whether something is found or not
        assert named == dict.fromkeys(by_path, 1)
    else:  # named once after the walk; a member in which nothing was observed has nothing to name
        assert named == {BUILTINS: 1, NVRTC: 1}
    assert not [v for v in calls["identify"] if str(tmp_path) in v]
    assert hashed == ["sha256", "sha256"]  # the two named files, once each: their RECORD lists a digest

    (builtins,) = by_path[BUILTINS].matches
    assert (builtins.name, builtins.version, builtins.version_range, builtins.modifications) == \
        ("nvrtc-builtins", "12.9.86", None, ())
    assert [(c.source.value, c.value, c.exact) for c in builtins.versions] == [
        ("marker", "12.9", False), ("file-name", "12.9", False), ("distribution-metadata", "12.9.86", True)]
    assert builtins.license_declared == "NVIDIA Proprietary Software"
    (nvrtc,) = by_path[NVRTC].matches
    assert (nvrtc.name, nvrtc.version, nvrtc.modifications) == ("nvrtc", "12.9.86", ("sha256-differs-from-record",))
    assert by_path[BUILTINS].sha256 == examine.digest(BUILTINS_BYTES, "sha256")
    assert by_path["nvidia/__init__.py"].sha256 is None and by_path["nvidia/__init__.py"].matches == ()
