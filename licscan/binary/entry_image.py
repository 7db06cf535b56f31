"""Fatbin entries -> :class:`DeviceImage` facts: what an image takes from its entry header (arch, PTX ISA, flags,
identifier, ptxas options) and from its cubin's facts (toolkit, producer, ABI), built once per distinct header.

:mod:`licscan.binary.images` decides which cubins are decoded and how; this module only assembles the facts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from licscan.binary import cubin, toolkit
from licscan.binary.fatbin import Entry, Fatbin, Flag, compression_of, host_of
from licscan.model import Compression, Container, DeviceImage, ImageKind, Producer, ToolInfo, ToolkitRange


@dataclass(frozen=True)
class Slot:
    """A fatbin entry waiting for its image facts."""

    path: str
    container: Container
    fatbin_offset: int  # in the buffer that was walked
    entry: Entry
    base: int  # offset of that buffer in the file, added to every reported offset


def fatbin_slots(fatbin: Fatbin, path: str, container: Container, base: int) -> list[Slot]:
    return [Slot(path, container, fatbin.offset, entry, base) for entry in fatbin.entries]


def producer_of(tool_name: str | None) -> Producer | None:
    """The producer a cubin's tool note names (``ptxas``, ``nvlink``, ...); OTHER for a tool licscan does not know."""
    if not tool_name:
        return None
    try:
        return Producer(tool_name)
    except ValueError:
        return Producer.OTHER


@functools.lru_cache(maxsize=1024)
def _ptx_traits(flags: int, arch_number: int, major: int, minor: int,
                ) -> tuple[str, str, ToolkitRange, Compression, bool, str | None]:
    """(arch, PTX ISA, toolkit range, compression, debug, host) of a PTX entry header, computed once per distinct
    header."""
    arch = Entry.arch_label(arch_number, flags, family_suffix=True)
    isa = f"{major}.{minor}"
    return (arch, isa, toolkit.for_ptx(isa, arch), compression_of(flags), bool(flags & Flag.DEBUG), host_of(flags))


def ptx_entry_image(slot: Slot) -> DeviceImage:
    entry = slot.entry
    arch, isa, tk, compression, debug, host = _ptx_traits(entry.flags, entry.arch, entry.major, entry.minor)
    # DeviceImage fields in declaration order (path, container, kind, arch, arch_full, ptx_isa, toolkit,
    # compression, size, uncompressed_size, producer, tool, linked_from, cubin_abi, virtual_arch, debug, host,
    # identifier, ptxas_options, fatbin_offset, entry_offset, sha256).
    return DeviceImage.from_values(
        slot.path, slot.container, ImageKind.PTX, arch, arch, isa, tk, compression, entry.payload_size,
        entry.uncompressed_size or None, None, None, (), None, None, debug, host, entry.identifier,
        entry.ptxas_options, slot.base + slot.fatbin_offset, slot.base + entry.offset, None)


@functools.lru_cache(maxsize=4096)
def _cubin_traits(facts: cubin.CubinFacts | None, flags: int, arch_number: int,
                  ) -> tuple[str, str, ToolkitRange, Compression, Producer | None, ToolInfo | None,
                             tuple[ToolInfo, ...], int | None, str | None, bool, str | None]:
    """Everything a cubin image takes from its entry header and its facts, computed once per distinct pair: the
    2,975 cubins of libtorch_cuda.so have a few dozen."""
    arch_full = Entry.arch_label(arch_number, flags, family_suffix=True)
    tk = toolkit.for_cubin(facts, arch_full) if facts is not None else toolkit.arch_bounds(arch_full)
    return (Entry.arch_label(arch_number, flags, family_suffix=False), arch_full, tk, compression_of(flags),
            producer_of(facts.tool.tool) if facts and facts.tool else None, facts.tool if facts else None,
            facts.inputs if facts else (), facts.abi if facts else None,
            f"sm_{facts.virtual_sm}" if facts and facts.virtual_sm else None, bool(flags & Flag.DEBUG),
            host_of(flags))


def cubin_entry_image(slot: Slot, facts: cubin.CubinFacts | None) -> DeviceImage:
    entry = slot.entry
    (arch, arch_full, tk, compression, producer, tool, linked_from, abi, virtual_arch, debug,
     host) = _cubin_traits(facts, entry.flags, entry.arch)
    return DeviceImage.from_values(
        slot.path, slot.container, ImageKind.CUBIN, arch, arch_full, None, tk, compression, entry.payload_size,
        entry.uncompressed_size or None, producer, tool, linked_from, abi, virtual_arch, debug, host,
        entry.identifier, None, slot.base + slot.fatbin_offset, slot.base + entry.offset, None)
