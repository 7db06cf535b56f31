"""The walker (licscan.inventory.walk) over small real archives built from the fixtures: exact items, the
Distribution fields, diagnostics, limits, spool cleanup, and an unchanged scanned tree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from inventory_builders import (
    EXE,
    FATBIN,
    LIB,
    WHEEL,
    ar_bytes,
    conda_v1_bytes,
    conda_v2_bytes,
    deb_bytes,
    docker_save_bytes,
    oci_files,
    oci_tar_bytes,
    tar_bytes,
    wheel_bytes,
    write_tree,
    zip_bytes,
)

from licscan.inventory.items import Distribution, Ecosystem, FileBlob, SpecialFile, SpecialKind
from licscan.inventory.walk import WalkLimits, walk
from licscan.model import Diagnostic

TAR_MEMBERS = [("./lib/", ("dir",)), ("./lib/libkern.so", LIB), ("./bin/exe_multi", EXE),
               ("./lib/libkern.so.1", ("symlink", "libkern.so")), ("./hard", ("hardlink", "lib/libkern.so"))]


def kind(item) -> str:
    if isinstance(item, FileBlob):
        return "file"
    if isinstance(item, SpecialFile):
        return item.kind.value
    if isinstance(item, Distribution):
        return "dist"
    return "diag:" + item.kind.value


def vpath(item) -> str:
    return item.path if isinstance(item, Diagnostic) else item.vpath


def listing(paths, limits: WalkLimits = WalkLimits(), **kw) -> list[tuple[str, str]]:
    return [(vpath(i), kind(i)) for i in walk(paths, limits, **kw)]


def collect(paths, limits: WalkLimits = WalkLimits(), **kw) -> list:
    """Items with FileBlob.data copied to bytes (it is valid only until the walk advances)."""
    out = []
    for item in walk(paths, limits, **kw):
        if isinstance(item, FileBlob) and item.data is not None:
            item = FileBlob(item.vpath, item.size, item.containers, item.source, bytes(item.data), item.mode,
                            item.layer, item.deleted_in_upper_layer)
        out.append(item)
    return out


# --------------------------------------------------------------------------------------------------- zip/wheel
def test_zip_members_by_content_not_suffix(here):
    Path("app.bin").write_bytes(zip_bytes([("lib/", ("dir",)), ("lib/libkern.so", LIB), ("k.fatbin", FATBIN),
                                           ("link", ("symlink", "../../etc/passwd"))]))
    items = collect(["app.bin"])
    assert [(vpath(i), kind(i)) for i in items] == [
        ("app.bin!/lib/libkern.so", "file"), ("app.bin!/k.fatbin", "file"), ("app.bin!/link", "symlink")]
    lib = items[0]
    assert lib.data == LIB and lib.size == len(LIB) and lib.source is None and lib.containers == ("app.bin",)
    assert lib.mode == 0o755
    assert items[2].target == "../../etc/passwd" and "out of the archive" in items[2].note


def test_wheel_distribution(here):
    Path("dist").mkdir()
    Path("dist/demo_pkg-1.2.3-py3-none-any.whl").write_bytes(wheel_bytes())
    shutil.copy(WHEEL, "dist/")
    items = collect(["dist/"])
    w1, w2 = "dist/demo_pkg-1.2.3-py3-none-any.whl", f"dist/{WHEEL.name}"
    info = "demo_pkg-1.2.3.dist-info"
    assert [(vpath(i), kind(i)) for i in items] == [
        (f"{w1}!/demo_pkg/__init__.py", "file"), (f"{w1}!/demo_pkg/libkern.so", "file"),
        (f"{w1}!/{info}/METADATA", "file"), (f"{w1}!/{info}/licenses/LICENSE.txt", "file"),
        (f"{w1}!/{info}/WHEEL", "file"), (f"{w1}!/{info}/RECORD", "file"), (w1, "dist"),
        (f"{w2}!/licscan_test/__init__.py", "file"), (f"{w2}!/licscan_test/libkern.so", "file"),
        (f"{w2}!/licscan_test-0.0.1.dist-info/METADATA", "file"), (f"{w2}!/licscan_test-0.0.1.dist-info/RECORD",
                                                                    "file"),
        (f"{w2}!/licscan_test-0.0.1.dist-info/WHEEL", "file"), (w2, "dist")]
    demo = items[6]
    assert (demo.vpath, demo.ecosystem, demo.name, demo.version, demo.scope) == (w1, Ecosystem.PYPI, "demo-pkg",
                                                                                 "1.2.3", w1)
    assert demo.license_declared == "MIT"
    assert demo.license_classifiers == ("License :: OSI Approved :: MIT License",)
    assert demo.license_files == (f"{w1}!/{info}/licenses/LICENSE.txt",)
    import hashlib
    assert (f"{w1}!/demo_pkg/libkern.so", hashlib.sha256(LIB).hexdigest()) in demo.files
    assert (f"{w1}!/{info}/RECORD", None) in demo.files
    assert ("Requires-Dist", "numpy") in demo.metadata
    fixture = items[-1]
    assert (fixture.name, fixture.version, fixture.license_declared) == ("licscan-test", "0.0.1", None)
    assert dict(fixture.files)[f"{w2}!/licscan_test/libkern.so"] == \
        "2db1a6cf16b967d052f25c61798e5355e6c6872a89fb218e83f261b9529162e8"


def test_installed_site_packages(here):
    site = Path("venv/lib/python3.11/site-packages")
    import zipfile
    with zipfile.ZipFile(WHEEL) as zf:
        zf.extractall(site)
    items = collect(["venv"])
    sp = "venv/lib/python3.11/site-packages"
    assert [(vpath(i), kind(i)) for i in items] == [
        (f"{sp}/licscan_test/__init__.py", "file"), (f"{sp}/licscan_test/libkern.so", "file"),
        (f"{sp}/licscan_test-0.0.1.dist-info/METADATA", "file"), (f"{sp}/licscan_test-0.0.1.dist-info/RECORD", "file"),
        (f"{sp}/licscan_test-0.0.1.dist-info/WHEEL", "file"), (f"{sp}/licscan_test-0.0.1.dist-info", "dist")]
    dist = items[-1]
    assert dist.scope == sp and dist.name == "licscan-test"
    assert dist.files[1] == (f"{sp}/licscan_test/libkern.so",
                             "2db1a6cf16b967d052f25c61798e5355e6c6872a89fb218e83f261b9529162e8")
    plain = items[1]
    assert plain.source == os.path.realpath(f"{sp}/licscan_test/libkern.so") and plain.data is None


# ------------------------------------------------------------------------------------------------------- tars
@pytest.mark.parametrize("compression", [None, "gz", "xz", "zst", "bz2"])
def test_tar_compressions(here, compression):
    Path("t.pkg").write_bytes(tar_bytes(TAR_MEMBERS, compression))
    items = collect(["t.pkg"])
    assert [(vpath(i), kind(i)) for i in items] == [
        ("t.pkg!/lib/libkern.so", "file"), ("t.pkg!/bin/exe_multi", "file"), ("t.pkg!/lib/libkern.so.1", "symlink"),
        ("t.pkg!/hard", "hardlink")]
    assert items[0].data == LIB and items[1].data == EXE and items[2].target == "libkern.so" and items[2].note is None
    assert items[3].target == "lib/libkern.so"


def test_lone_compressed_file(here):
    import gzip
    Path("libkern.so.gz").write_bytes(gzip.compress(LIB))
    items = collect(["libkern.so.gz"])
    assert [(vpath(i), kind(i)) for i in items] == [("libkern.so.gz!/libkern.so", "file")]
    assert items[0].data == LIB


def test_static_library_is_a_file(here):
    """An ar archive that is not a .deb is a static library: licscan.binary reads its members."""
    Path("libx.a").write_bytes(ar_bytes([("a.o", LIB[:100])]))
    assert listing(["libx.a"]) == [("libx.a", "file")]


# ---------------------------------------------------------------------------------------------- deb and conda
def test_deb(here):
    Path("libkern1_13.0.88-1_amd64.deb").write_bytes(deb_bytes())
    items = collect(["libkern1_13.0.88-1_amd64.deb"])
    d = "libkern1_13.0.88-1_amd64.deb"
    assert [(vpath(i), kind(i)) for i in items] == [
        (f"{d}!/debian-binary", "file"), (f"{d}!/control.tar.gz!/control", "file"),
        (f"{d}!/control.tar.gz!/md5sums", "file"), (f"{d}!/usr/lib/x86_64-linux-gnu/libkern.so.1", "file"),
        (f"{d}!/usr/lib/x86_64-linux-gnu/libkern.so", "symlink"), (f"{d}!/usr/share/doc/libkern1/copyright", "file"),
        (d, "dist")]
    dist = items[-1]
    assert (dist.ecosystem, dist.name, dist.version, dist.scope) == (Ecosystem.DEBIAN, "libkern1", "13.0.88-1", d)
    assert dist.license_files == (f"{d}!/usr/share/doc/libkern1/copyright",)
    assert ("Architecture", "amd64") in dist.metadata
    assert items[3].data == LIB and items[3].containers == (d,)


@pytest.mark.parametrize("fmt", ["conda", "tar.bz2"])
def test_conda(here, fmt):
    name = f"cuda-kern-13.0.88-h123_0.{fmt}"
    Path(name).write_bytes(conda_v2_bytes() if fmt == "conda" else conda_v1_bytes())
    items = collect([name])
    expected = [(f"{name}!/metadata.json", "file")] if fmt == "conda" else []
    expected += [(f"{name}!/info/index.json", "file"), (f"{name}!/info/about.json", "file"),
                 (f"{name}!/info/paths.json", "file"), (f"{name}!/info/licenses/LICENSE.txt", "file"),
                 (f"{name}!/lib/libkern.so", "file"), (name, "dist")]
    assert [(vpath(i), kind(i)) for i in items] == expected
    dist = items[-1]
    import hashlib
    assert (dist.ecosystem, dist.name, dist.version, dist.scope, dist.license_declared) == (
        Ecosystem.CONDA, "cuda-kern", "13.0.88", name, "LicenseRef-NVIDIA-EULA")
    assert dist.license_files == (f"{name}!/info/licenses/LICENSE.txt",)
    assert dist.files == ((f"{name}!/lib/libkern.so", hashlib.sha256(LIB).hexdigest()),)
    assert ("home", "https://developer.nvidia.com") in dist.metadata


# ---------------------------------------------------------------------------------------------------- images
def _layer_items(prefix: str, lower: str, upper: str, lower_id: str, upper_id: str):
    return [
        (f"{prefix}{upper}!/usr/lib/.wh.libgone.so", "whiteout", None, False),
        (f"{prefix}{upper}!/opt/.wh..wh..opq", "whiteout", None, False),
        (f"{prefix}{upper}!/app/exe_multi", "file", upper_id, False),
        (f"{prefix}{lower}!/usr/lib/libkern.so", "file", lower_id, False),
        (f"{prefix}{lower}!/usr/lib/libgone.so", "file", lower_id, True),
        (f"{prefix}{lower}!/opt/old/kern.fatbin", "file", lower_id, True),
    ]


def _image_view(items):
    return [(vpath(i), kind(i), getattr(i, "layer", None) if isinstance(i, FileBlob) else None,
             getattr(i, "deleted_in_upper_layer", False)) for i in items]


def test_oci_layout_folder_and_tar(here):
    files, (lower, upper) = oci_files()
    write_tree(Path("layout"), files)
    blobs = sorted(p for p in files if p.startswith("blobs/") and p.split("/")[-1] not in (lower[7:], upper[7:]))
    items = collect(["layout"])
    expected = [(f"layout/{b}", "file", None, False) for b in blobs] + [
        ("layout/index.json", "file", None, False), ("layout/oci-layout", "file", None, False)]
    expected += _layer_items("layout/", f"blobs/sha256/{lower[7:]}", f"blobs/sha256/{upper[7:]}", lower, upper)
    assert _image_view(items) == expected
    whiteouts = [i for i in items if isinstance(i, SpecialFile)]
    assert [(w.kind, w.target) for w in whiteouts] == [(SpecialKind.WHITEOUT, "usr/lib/libgone.so"),
                                                       (SpecialKind.WHITEOUT, "opt")]
    assert [i for i in items if kind(i) == "file" and i.vpath.endswith("libkern.so")][0].data == LIB

    data, _ = oci_tar_bytes()
    Path("image.tar").write_bytes(data)
    items = collect(["image.tar"])
    expected = [(f"image.tar!/{b}", "file", None, False) for b in blobs] + [
        ("image.tar!/index.json", "file", None, False), ("image.tar!/oci-layout", "file", None, False)]
    expected += _layer_items("image.tar!/", f"blobs/sha256/{lower[7:]}", f"blobs/sha256/{upper[7:]}", lower, upper)
    assert _image_view(items) == expected
    layer_blob = [i for i in items if kind(i) == "file" and i.vpath.endswith("exe_multi")][0]
    assert layer_blob.containers == ("image.tar", f"image.tar!/blobs/sha256/{upper[7:]}")


def test_docker_save(here):
    Path("image.tar").write_bytes(docker_save_bytes())
    items = collect(["image.tar"])
    assert _image_view(items) == [
        ("image.tar!/aaa/VERSION", "file", None, False), ("image.tar!/config.json", "file", None, False),
        ("image.tar!/manifest.json", "file", None, False),
    ] + _layer_items("image.tar!/", "aaa/layer.tar", "bbb/layer.tar", "aaa/layer.tar", "bbb/layer.tar")


# ------------------------------------------------------------------------------------------------ nesting
def test_nested_zip_in_tar_in_zip_and_depth_limit(here):
    inner_zip = zip_bytes([("libkern.so", LIB)])
    Path("outer.zip").write_bytes(zip_bytes([("inner.tar.gz", tar_bytes([("w/x.zip", inner_zip)], "gz"))]))
    items = collect(["outer.zip"])
    assert [(vpath(i), kind(i)) for i in items] == [("outer.zip!/inner.tar.gz!/w/x.zip!/libkern.so", "file")]
    assert items[0].containers == ("outer.zip", "outer.zip!/inner.tar.gz", "outer.zip!/inner.tar.gz!/w/x.zip")
    assert items[0].data == LIB
    assert listing(["outer.zip"], WalkLimits(max_depth=2)) == [
        ("outer.zip!/inner.tar.gz!/w/x.zip", "diag:limit"), ("outer.zip!/inner.tar.gz!/w/x.zip", "file")]
    assert listing(["outer.zip"], WalkLimits(max_depth=0)) == [("outer.zip", "diag:limit"), ("outer.zip", "file")]


def test_exclude(here):
    Path("d").mkdir()
    Path("d/a.zip").write_bytes(zip_bytes([("keep.so", LIB), ("skip/x.so", LIB)]))
    Path("d/skipme").write_bytes(b"x")
    assert listing(["d"], exclude=lambda v: v.endswith("skipme") or "!/skip/" in v) == [("d/a.zip!/keep.so", "file")]
