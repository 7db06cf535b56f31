"""Toolkit version of a device image, with its evidence (docs/binary-format.md, section "10 Version inference
order": a version is a range of releases).

Order of trust: an exact release written by the producing tool (cubin ``.note.nv.tkinfo``, the standalone PTX
header) > a major.minor marker (cubin ABI v7 ``e_version``, ``.note.nv.cuinfo``, tkinfo's first word in 12.8/12.9)
> bounds (PTX ISA, architecture, ABI v8). Every bound that applies is intersected, so a range is as tight as the
bytes allow and never tighter; an exact release is never invented.

Facts can contradict each other: cuBLAS 12.8/12.9 carries sm_100 and sm_120 cubins whose tkinfo note comes from an
internal pre-release ptxas ("V12.7.0, Build cuda_dev...") while the architecture table says sm_100 exists since
12.8. Such a pair never intersects to an empty range: the bounds of the format and the tables stand (a note names the
tool that wrote the cubin, and a pre-release tool names a release that never shipped that architecture), no exact
release is kept, and the contradiction is named in ``conflicts`` (:func:`reconcile`).
"""

from __future__ import annotations

import functools

from licscan.binary.cubin import ABI_V7, ABI_V8, CubinFacts
from licscan.knowledge import toolkit_tables
from licscan.model import PtxHeader, ToolkitRange


def _release_from_tenths(value: int) -> str:
    """``e_version`` / cuinfo / tkinfo word: "toolkit major*10+minor" (112 -> 11.2, 130 -> 13.0)."""
    return f"{value // 10}.{value % 10}"


@functools.lru_cache(maxsize=4096)
def arch_bounds(arch_full: str) -> ToolkitRange:
    """Which toolkits can produce code for ``sm_XX[a|f]``."""
    tables = toolkit_tables()
    base = arch_full.rstrip("af") if arch_full[-1:] in ("a", "f") else arch_full
    result = ToolkitRange()
    bounds = tables.arch.get(base)
    if bounds is not None:
        low, high = bounds
        result = result.intersect(ToolkitRange(low, high, None, (_bound_text(base, low, high),)))
    suffix = arch_full[len(base):]
    if suffix and suffix in tables.suffix:
        low = tables.suffix[suffix]
        result = result.intersect(ToolkitRange(low, None, None, (f"arch suffix '{suffix}' exists since CUDA {low}",)))
    return result


def _bound_text(arch: str, low: str | None, high: str | None) -> str:
    if low and high:
        return f"{arch} is supported by CUDA {low} to {high}"
    if low:
        return f"{arch} is supported since CUDA {low}"
    return f"{arch} was last supported by CUDA {high}"


@functools.lru_cache(maxsize=4096)
def ptx_isa_range(isa: str) -> ToolkitRange:
    """The toolkits whose NVIDIA compilers emit PTX ISA ``isa`` (rules/toolkit/versions.yaml)."""
    tables = toolkit_tables()
    row = tables.ptx_isa.get(isa)
    if row is None:
        newest = tables.newest_isa
        if newest is not None and _isa_key(isa) > _isa_key(newest[0]):
            low = newest[1]
            return ToolkitRange(low, None, None, (f"PTX ISA {isa} is newer than ISA {newest[0]} (CUDA {low})",))
        return ToolkitRange(None, None, None, (f"PTX ISA {isa} is not in the ISA table",))
    first, last = row
    if last is None:
        text = f"PTX ISA {isa} first appears in CUDA {first}"
    elif last == first:
        text = f"PTX ISA {isa} is emitted by NVIDIA compilers of CUDA {first}"
    else:
        text = f"PTX ISA {isa} is emitted by NVIDIA compilers of CUDA {first} to {last}"
    return ToolkitRange(first, last, None, (text,))


def _isa_key(isa: str) -> tuple[int, ...]:
    return tuple(int(p) for p in isa.split(".") if p.isdigit())


def reconcile(first: ToolkitRange, second: ToolkitRange) -> ToolkitRange:
    """Both facts, intersected when they agree. When they contradict each other (an empty intersection, or an exact
    release outside the other's bounds) ``second`` -- the bounds of the format and the tables -- stands, without an
    exact release; both facts stay in the evidence and the contradiction is named in ``conflicts``."""
    joined = first.intersect(second)
    if not joined.is_empty and not (joined.exact and not _holds(second, joined.exact)):
        return joined
    text = (f"contradiction: {'; '.join(first.evidence) or 'no evidence'} vs {'; '.join(second.evidence)}"
            f" -- the second stands")
    return ToolkitRange(second.low, second.high, None, joined.evidence, joined.conflicts + (text,))


def _holds(bounds: ToolkitRange, exact: str) -> bool:
    def key(release: str) -> tuple[int, ...]:
        return tuple(int(p) for p in release.split(".")[:2] if p.isdigit())

    return (bounds.low is None or key(bounds.low) <= key(exact)) and (bounds.high is None or key(exact) <= key(bounds.high))


@functools.lru_cache(maxsize=4096)
def for_cubin(facts: CubinFacts, arch_full: str) -> ToolkitRange:
    """Toolkit of a cubin: exact from tkinfo, major.minor from e_version / cuinfo, else ABI and arch bounds."""
    result = ToolkitRange()
    tool = facts.tool
    if tool is not None and tool.version and tool.release:
        build = f" ({tool.build})" if tool.build and "cuda_dev" in tool.build else ""  # an internal pre-release
        result = result.intersect(ToolkitRange(
            tool.release, tool.release, tool.version,
            (f".note.nv.tkinfo: {tool.tool} 'Cuda compilation tools, release {tool.release}, V{tool.version}'"
             f"{build}",)))
    elif facts.tkinfo_word is not None and facts.tkinfo_word >= 100:
        release = _release_from_tenths(facts.tkinfo_word)
        result = result.intersect(ToolkitRange(release, release, None,
                                               (f".note.nv.tkinfo first word {facts.tkinfo_word}",)))
    if facts.cuinfo_toolkit:
        release = _release_from_tenths(facts.cuinfo_toolkit)
        result = reconcile(result, ToolkitRange(release, release, None,
                                                (f".note.nv.cuinfo toolkit {facts.cuinfo_toolkit}",)))
    if facts.abi == ABI_V7 and facts.e_version >= 10:
        release = _release_from_tenths(facts.e_version)
        result = reconcile(result, ToolkitRange(release, release, None,
                                                (f"cubin ABI v7 e_version {facts.e_version}",)))
    elif facts.abi == ABI_V8:
        abi = toolkit_tables().cubin_abi_v8
        low = abi["min"] if facts.sm >= 100 else abi["min_below_sm100"]
        source = "fatbin entry code version [1,8]" if facts.from_entry else "cubin ABI v8"
        result = reconcile(result, ToolkitRange(low, None, None, (f"{source} for sm_{facts.sm}",)))
    return reconcile(result, arch_bounds(arch_full))


@functools.lru_cache(maxsize=4096)
def for_ptx(isa: str, arch_full: str, header: PtxHeader | None = None) -> ToolkitRange:
    """Toolkit of a PTX image: exact from a standalone header, else the ISA range and the arch bounds."""
    result = ToolkitRange()
    if header is not None and header.version and header.release:
        build = f" (CL-{header.build_id})" if header.build_id else ""
        result = ToolkitRange(header.release, header.release, header.version,
                              (f"PTX header 'Cuda compilation tools, release {header.release}, "
                               f"V{header.version}'{build}",))
    isa_range = ptx_isa_range(isa)
    if header is not None and header.generator and "NVIDIA" not in header.generator:
        # Only NVIDIA's compilers are known to emit their own release's ISA; LLVM picks its own.
        isa_range = ToolkitRange(isa_range.low, None, None,
                                 (f"PTX ISA {isa} needs CUDA {isa_range.low} or newer to assemble; generated by "
                                  f"{header.generator}",) if isa_range.low else isa_range.evidence)
    return reconcile(reconcile(result, isa_range), arch_bounds(arch_full))
