"""Issue 12 (naming is its own layer, one pass): every file is observed once while its bytes are held
(licscan.identify.observe) and named once when its distribution is known (licscan.identify.catalog.name) -- at once
for a plain file (the installed ``.dist-info`` is read first), after the walk for an archive member (a wheel's
``RECORD`` and ``METADATA`` come after its libraries; a tar's may come anywhere). The digest a ``RECORD``
comparison needs is computed once, for named files only. (A file or member in which naming surely finds nothing
gets its record from its bytes without being observed: licscan.identify.examine.quiet_record.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from inventory_builders import record_line, tar_bytes, write_tree, zip_bytes

from licscan.identify import catalog, examine
from licscan.model import Modification
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
    from licscan.scan import plain

    calls: dict[str, Counter[str]] = {"observe": Counter(), "name": Counter(), "identify": Counter(),
                                      "quiet": Counter()}
    hashed: list[str] = []
    observe, name, identify, digest = catalog.observe, catalog.name, catalog.identify, examine.digest
    quiet_record = plain.quiet_record

    def counting_quiet(vpath, *args, **kwargs):
        record = quiet_record(vpath, *args, **kwargs)
        if record is not None:
            calls["quiet"][vpath] += 1
        return record

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
    monkeypatch.setattr(plain, "quiet_record", counting_quiet)  # (a worker's, or with the cache)
    monkeypatch.setattr(examine, "quiet_record", counting_quiet)  # (the scan's, for a file the walk read whole)
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
    quiet = {v.rsplit("site-packages/", 1)[-1].split("!/", 1)[-1]: n for v, n in calls["quiet"].items()}
    named = {v.rsplit("site-packages/", 1)[-1].split("!/", 1)[-1]: n for v, n in calls["name"].items()}
    # a file or member in which naming surely finds nothing gets its record at once (examine.quiet_record); every
    # other one is observed once (its bytes read by the naming layer once) and named once: at once for a plain
    # file, after the walk for an archive member
    assert quiet == dict.fromkeys(["nvidia/__init__.py", f"{DIST}/METADATA", f"{DIST}/RECORD"], 1)
    assert observed == named == {BUILTINS: 1, NVRTC: 1}
    assert not [v for v in calls["identify"] if str(tmp_path) in v]
    assert hashed == ["sha256", "sha256"]  # the two named files, once each: their RECORD lists a digest

    (builtins,) = by_path[BUILTINS].matches
    assert (builtins.name, builtins.version, builtins.version_range, builtins.modifications) == \
        ("nvrtc-builtins", "12.9.86", None, ())
    assert [(c.source.value, c.value, c.exact) for c in builtins.versions] == [
        ("marker", "12.9", False), ("file-name", "12.9", False), ("distribution-metadata", "12.9.86", True)]
    assert builtins.license_declared == "NVIDIA Proprietary Software"
    (nvrtc,) = by_path[NVRTC].matches
    assert (nvrtc.name, nvrtc.version, nvrtc.modifications) == ("nvrtc", "12.9.86", (Modification.SHA256_DIFFERS,))
    assert by_path[BUILTINS].sha256 == examine.digest(BUILTINS_BYTES, "sha256")
    assert by_path["nvidia/__init__.py"].sha256 is None and by_path["nvidia/__init__.py"].matches == ()


def test_kernel_module_in_a_deb_keeps_what_its_modinfo_says(tmp_path):
    """A .deb's control is read after its data: its members are named once the Debian distribution is known, from
    what was observed of their bytes. (Named twice, the second pass had no bytes: an open module lost its
    ``.modinfo`` licence and was reported as NVIDIA's proprietary driver licence, with medium confidence.)"""
    from inventory_builders import ar_bytes
    from test_catalog import _ko

    ko = _ko(tmp_path, "Dual MIT/GPL").read_bytes()
    control = (b"Package: nvidia-kernel-open-dkms\nVersion: 580.159.04-1\nArchitecture: amd64\n"
               b"Maintainer: Test <t@example.com>\nDescription: test module\n")
    data = tar_bytes([("./", ("dir",)), ("./lib/modules/6.1.0/updates/dkms/nvidia.ko", ko)], "xz")
    deb = tmp_path / "nvidia-kernel-open-dkms_580.159.04-1_amd64.deb"
    deb.write_bytes(ar_bytes([("debian-binary", b"2.0\n"), ("control.tar.gz", tar_bytes([("./control", control)],
                                                                                           "gz")),
                              ("data.tar.xz", data)]))
    _inventory, records = scan([str(deb)], ScanConfig(jobs=1, cache_dir=None))
    (module,) = [m for r in records for m in r.matches]
    assert (module.name, module.license, module.version, module.confidence.value, module.license_declared) == \
        ("nvidia-kernel-module", "MIT OR GPL-2.0-only", "580.159.04", "high", None)
    assert (module.flavour, module.modinfo.license, module.distribution) == \
        ("open", "Dual MIT/GPL", "nvidia-kernel-open-dkms")


def test_an_archive_member_is_named_as_the_same_file_installed(tmp_path):
    """A developer tool found by its banner (the CUDA toolkit's bin2c) is named the same inside a wheel whose RECORD
    and METADATA come after it as installed beside its .dist-info: one pass, the same evidence. (Named twice, the
    second pass had no bytes, did not find the tool by content and merged its file-name match into the first.)"""
    tool = Path("/usr/local/cuda/bin/bin2c")
    if not tool.is_file():
        pytest.skip(f"{tool} missing (the CUDA toolkit's bin2c carries the banners)")
    info = "pkg-1.0.dist-info"
    metadata = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"
    files = [("pkg/bin/bin2c", tool.read_bytes()), (f"{info}/METADATA", metadata)]
    files.append((f"{info}/RECORD", ("\n".join(record_line(n, d) for n, d in files) + f"\n{info}/RECORD,,\n").encode()))
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    wheel.write_bytes(zip_bytes(files))
    write_tree(tmp_path / "site-packages", dict(files))
    named = {}
    for root in (wheel, tmp_path / "site-packages"):
        _inventory, records = scan([str(root)], ScanConfig(jobs=1, cache_dir=None))
        (record,) = [r for r in records if r.vpath.endswith("/bin2c")]
        named[root.name] = record.matches
    (member,) = named[wheel.name]
    assert named["site-packages"] == (member,)
    assert (member.name, member.confidence.value, member.version) == ("bin2c", "high", "13.0.88")
    assert member.evidence[0].startswith("bin2c: content: banner 'File to C data converter' at 0x")
    assert not [e for e in member.evidence if e.startswith("file name")]
    assert member.distribution == "pkg"
