"""The one resolver of DT_NEEDED entries and PE imports (licscan/identify/linkage.py): the scan's Dependency facts
and the SBOM's DEPENDS_ON relationships come from the same providers."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone

from helpers import fixture

from licscan.identify.linkage import Providers
from licscan.model import ElfFacts, FileFacts, FileFormat
from licscan.sbom import build_plan_for
from licscan.scan import ScanConfig, scan


def _elf(path: str, soname: str | None, needed: tuple[str, ...] = ()) -> tuple[str, FileFacts]:
    return path, FileFacts(path, FileFormat.ELF, 1, elf=ElfFacts("ET_DYN", "EM_X86_64", soname, needed, (), (),
                                                                  True, None))


def test_providers_by_file_name_and_soname():
    providers = Providers.index([
        _elf("c/libx.so.1", None),
        _elf("a.whl!/lib/libx.so.1.2", "libx.so.1"),  # provides libx.so.1 by its SONAME only
        _elf("b/libx.so.1", "libx.so.1"),  # SONAME equal to the file name: listed once
        ("d/libx.so.1", FileFacts("d/libx.so.1", FileFormat.UNKNOWN, 3)),  # any file by its name
    ])
    assert providers.of("libx.so.1") == ("a.whl!/lib/libx.so.1.2", "b/libx.so.1", "c/libx.so.1", "d/libx.so.1")
    assert providers.of("libx.so.1.2") == ("a.whl!/lib/libx.so.1.2",)
    assert providers.of("LIBX.SO.1") == ()  # names compare as written
    assert providers.of("libmissing.so") == ()


def test_nearest_provider_shares_the_longest_path_and_is_never_the_needer():
    app = "dist/app.whl!/pkg/libapp.so"
    providers = Providers.index([
        _elf(app, "libapp.so", ("libcudart.so.13",)),
        _elf("dist/app.whl!/pkg/libcudart.so.13", "libcudart.so.13"),
        _elf("dist/rt.whl!/nvidia/cu13/lib/libcudart.so.13", "libcudart.so.13"),
        _elf("dist/z/libcudart.so.13", "libcudart.so.13"),
    ])
    assert providers.nearest("libcudart.so.13", app) == "dist/app.whl!/pkg/libcudart.so.13"
    # between providers that share as much with the needer, the greatest path
    assert providers.nearest("libcudart.so.13", "dist/y/libk.so") == "dist/z/libcudart.so.13"
    assert providers.nearest("libapp.so", app) is None  # only the needer itself provides it
    assert providers.nearest("libcudart.so.13", "dist/z/libcudart.so.13") == "dist/rt.whl!/nvidia/cu13/lib/libcudart.so.13"
    assert providers.nearest("libnone.so", app) is None


def test_scan_dependencies_and_sbom_relationships_agree(tmp_path):
    # libkern.so (tests/fixtures/cuda13) has DT_NEEDED libcudart.so.13; two folders ship a file of that name
    # (copies of libkern.so, so each needs libcudart.so.13 too).
    kern = fixture("cuda13/libkern.so")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(kern, tmp_path / folder / "libcudart.so.13")
    shutil.copyfile(kern, tmp_path / "a" / "libkern.so")
    root = str(tmp_path)
    needer, near, far = f"{root}/a/libkern.so", f"{root}/a/libcudart.so.13", f"{root}/b/libcudart.so.13"
    inventory, records = scan([root], ScanConfig(jobs=1, digests=True))

    shipped = {(d.path, d.needs): d.shipped for d in inventory.dependencies}
    assert shipped == {(needer, "libcudart.so.13"): (near, far), (near, "libcudart.so.13"): (near, far),
                       (far, "libcudart.so.13"): (near, far)}

    plan = build_plan_for(inventory, records, created=datetime(2026, 1, 1, tzinfo=timezone.utc),
                          namespace_seed="t")
    path_of = {f.id: f.path for f in plan.files}
    depends = {(path_of[e.source], path_of.get(e.target, e.target), e.comment) for e in plan.edges
               if e.type == "DEPENDS_ON" and e.source in path_of}
    assert depends == {(needer, near, f"DT_NEEDED libcudart.so.13 -> {near}"),
                       (near, far, f"DT_NEEDED libcudart.so.13 -> {far}"),
                       (far, near, f"DT_NEEDED libcudart.so.13 -> {near}")}


def test_windows_module_names_compare_without_case():
    """cupy-cuda12x 14.2.0's cutensor.cp312-win_amd64.pyd imports cuTENSOR.dll and cuTENSORMg.dll; the cutensor-cu12
    2.8.1 wheel ships cutensor/bin/cutensor.dll and cutensorMg.dll. The Windows loader finds them; ELF names stay
    exact."""
    def pe(path: str) -> tuple[str, FileFacts]:
        return path, FileFacts(path, FileFormat.PE, 1)

    providers = Providers.index([pe("sp/cutensor/bin/cutensor.dll"), pe("sp/cutensor/bin/cutensorMg.dll"),
                                 pe("sp/torch/lib/CUDART64_12.DLL"), _elf("sp/lib/libx.so.1", "libx.so.1")])
    assert providers.of("cuTENSOR.dll") == ("sp/cutensor/bin/cutensor.dll",)
    assert providers.of("CUTENSORMG.DLL") == ("sp/cutensor/bin/cutensorMg.dll",)
    assert providers.of("cudart64_12.dll") == ("sp/torch/lib/CUDART64_12.DLL",)
    assert providers.nearest("cuTENSOR.dll", "sp/cupy_backends/cuda/libs/cutensor.cp312-win_amd64.pyd") == \
        "sp/cutensor/bin/cutensor.dll"
    assert providers.of("LIBX.SO.1") == () and providers.of("libx.so.1") == ("sp/lib/libx.so.1",)
    assert providers.of("cutensor") == ()
