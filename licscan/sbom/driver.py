"""The NVIDIA driver a scanned build needs at run time, from the toolkits found (rules/sbom/driver-requirements.yaml).

A toolkit is known as a range (licscan.model.ToolkitRange, the one range type; its ``key`` names the release). The
requirement is the highest driver any release in the range could
need (a driver satisfies every older toolkit), so an unknown upper bound makes it "at least" the lower bound's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from licscan.model import release_of
from licscan.sbom.data import DriverRow, DriverTables, driver_tables

__all__ = ["DriverRequirement", "ToolkitRelease", "driver_key", "release_of", "requirement"]


@dataclass(frozen=True)
class ToolkitRelease:
    """One CUDA toolkit release (or range of releases) that built device code or ships a component."""

    key: str  # the range's ToolkitRange.key: "13.0", "12.8-13.0", ">=12.8"
    low: str | None
    high: str | None
    exact: str | None  # the full release ("13.0.88") when every source agrees on one
    ptx: bool = False  # PTX images (JIT-compiled by the driver) were built with it
    compressions: tuple[str, ...] = ()

    @property
    def single(self) -> bool:
        return self.low is not None and self.low == self.high


@dataclass(frozen=True)
class DriverRequirement:
    linux: str | None  # minimum driver version, None when no table row applies
    windows: str | None
    reasons: tuple[str, ...]  # one line per table row used, for the SBOM comment
    toolkits: tuple[str, ...]  # ToolkitRelease keys it was derived from

    @property
    def known(self) -> bool:
        return self.linux is not None or self.windows is not None


def driver_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def _newer(current: str | None, candidate: str | None) -> str | None:
    if candidate is None:
        return current
    if current is None or driver_key(candidate) > driver_key(current):
        return candidate
    return current


def _bounds(release: ToolkitRelease) -> list[str]:
    out = []
    for bound in (release.low, release.high):
        if bound and bound not in out:
            out.append(bound)
    return out


def _ga_row(tables: DriverTables, bound: str) -> tuple[str, DriverRow] | tuple[None, None]:
    rows = tables.toolkit_driver.get(bound)
    if rows:
        return bound, rows[0]
    # a release newer than the table within a known major: the newest row of that major is the best lower bound
    major = bound.split(".")[0]
    same = sorted((k for k in tables.toolkit_driver if k.split(".")[0] == major), key=driver_key)
    older = [k for k in same if driver_key(k) <= driver_key(bound)]
    if older:
        return older[-1], tables.toolkit_driver[older[-1]][0]
    return None, None


def requirement(releases: Iterable[ToolkitRelease], tables: DriverTables | None = None) -> DriverRequirement:
    """The minimum driver for all ``releases`` together, with the reason for every bound."""
    tables = tables or driver_tables()
    releases = list(releases)
    linux = windows = None
    missing_linux = missing_windows = False
    reasons: list[str] = []
    keys: list[str] = []
    compressions: set[str] = set()
    for release in sorted(releases, key=lambda r: r.key):
        keys.append(release.key)
        compressions.update(release.compressions)
        for bound in _bounds(release):
            major = bound.split(".")[0]
            compat = tables.minor_version_compat.get(major)
            if compat is not None:
                linux, windows = _newer(linux, compat[0]), _newer(windows, compat[1])
                missing_linux |= compat[0] is None
                missing_windows |= compat[1] is None
                reasons.append(f"CUDA {release.key}: {major}.x minor-version compatibility needs Linux "
                               f">= {compat[0] or 'not stated'}, Windows >= {compat[1] or 'not stated'} "
                               f"(CUDA Toolkit release notes, minor version compatibility table; {compat[2]})")
            else:
                missing_linux = missing_windows = True
                reasons.append(f"CUDA {release.key}: no minor-version compatibility row for CUDA {major}.x; requirement undetermined")
            row_key, row = _ga_row(tables, bound)
            if row is None:
                continue
            if release.ptx and tables.ptx_jit:
                linux, windows = _newer(linux, row.linux), _newer(windows, row.windows)
                reasons.append(f"CUDA {release.key}: PTX built by CUDA {row_key} is JIT-compiled by the driver, "
                               f"which needs the CUDA {row_key} GA driver: Linux >= {row.linux or 'not stated'}, "
                               f"Windows >= {row.windows or 'not stated'} (CUDA Toolkit release notes, toolkit and driver versions table)")
            else:
                reasons.append(f"CUDA {release.key}: full-feature driver of CUDA {row_key} GA: Linux >= "
                               f"{row.linux or 'not stated'}, Windows >= {row.windows or 'not stated'} "
                               f"(CUDA Toolkit release notes, toolkit and driver versions table; informative)")
    for name in sorted(compressions):
        rule = tables.compression.get(name)
        if rule is not None:
            linux, windows = _newer(linux, rule[0]), _newer(windows, rule[1])
            reasons.append(f"{name}-compressed fatbin entries: Linux >= {rule[0] or 'not stated'}, Windows >= "
                           f"{rule[1] or 'not stated'} ({rule[2]})")
    if any(r.high is None and r.low is not None for r in releases):
        reasons.append("a toolkit range has no upper bound: the requirement is at least the value given")
    # a platform some toolkit's table states no minimum for stays undetermined (never a partial answer)
    if missing_linux and linux is not None:
        reasons.append(f"Linux: some toolkit has no stated minimum; the bound {linux} from the others is not enough")
        linux = None
    if missing_windows and windows is not None:
        reasons.append(f"Windows: some toolkit has no stated minimum; the bound {windows} from the others is not "
                       f"enough")
        windows = None
    return DriverRequirement(linux, windows, tuple(reasons), tuple(keys))
