"""Fuzz targets of licscan's readers: one property per target, shared by the atheris driver (fuzz/driver.py) and
the regression tests (tests/test_fuzz_regressions.py).

Each ``check_<target>(data)`` returns normally when the property holds and raises otherwise:

* the low-level parsers may raise only their documented :class:`FormatError` (caught here, everything else
  escapes and is a finding);
* ``inspect_buffer`` / ``inspect_file`` / the walker must not raise at all, and a diagnostic that reports an
  "internal error" (a reader exception that ``inspect_buffer`` swallowed) is a finding too: the reader is
  re-run directly so that the finding carries the real traceback;
* results must lie inside the input (entries, members, extents).

Nothing here writes outside a private temporary folder.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class PropertyViolation(AssertionError):
    """The reader returned, but what it returned breaks the target's property."""


def _imports():
    # Imported lazily so that the atheris driver can instrument them first.
    global archive, compression, cubin, fatbin, ptx, identify, inspect, images, elf, pe, FormatError, Compression
    global WindowStream, Limits, DiagnosticKind
    from licscan.binary import archive, compression, cubin, elf, fatbin, identify, images, inspect, pe, ptx
    from licscan.binary.errors import FormatError
    from licscan.binary.images import Limits
    from licscan.binary.stream import WindowStream
    from licscan.model import Compression, DiagnosticKind


# Limits of the end-to-end checks: no worker processes (a fork per input), the default image limit.
def _limits():
    return Limits(jobs=1)


# --------------------------------------------------------------------------------------------------- inspect


def _check_inspect(data: bytes, want_hash: bool = False) -> None:
    """inspect_buffer must return, never raise, and report no reader exception as an "internal error"."""
    facts = inspect.inspect_buffer(data, "fuzz", _limits(), want_hash=want_hash)
    for diag in facts.all_diagnostics():
        if "internal error" in diag.message:
            _reraise_internal(data, diag, want_hash)
    for image in _all_images(facts):
        if image.entry_offset is not None and not 0 <= image.entry_offset <= len(data):
            raise PropertyViolation(f"device image at {image.entry_offset} outside the {len(data)}-byte input")


def _all_images(facts):
    yield from facts.device_code
    for member in facts.members:
        yield from _all_images(member)


def _reraise_internal(data: bytes, diag, want_hash: bool) -> None:
    """Re-run what failed without inspect_buffer's safety net, to surface the original exception."""
    # Reader-level: the format's reader called directly (for archive members, the member's own bytes).
    path = diag.path
    buf = data
    if "!/" in path:
        buf = _member_bytes(data, path)
    kind = identify.identify(bytes(buf[: identify.SNIFF_SIZE]))
    reader = inspect._READERS.get(kind)
    if reader is not None:
        try:
            reader(buf, path, _limits(), 0, len(buf), want_hash, 0)
        except FormatError:
            pass
    # Image-level: the cubin readers that images.resolve guards, on every fatbin entry of the buffer.
    for found in fatbin.scan(buf, partial=True):
        if isinstance(found, fatbin.ScanError):
            continue
        for entry in found.entries:
            if not entry.is_ptx:
                _cubin_entry(buf, entry, notes=True)
                if want_hash:
                    try:
                        images.hashed_cubin_facts(buf, entry, _limits())
                    except FormatError:
                        pass
    raise PropertyViolation(f"internal error reported by inspect_buffer (not reproduced directly): {diag.message}")


def _member_bytes(data: bytes, vpath: str) -> bytes:
    names = vpath.split("!/")[1:]
    buf = data
    for name in names:
        for member in archive.members(buf):
            if member.name == name:
                buf = bytes(buf[member.offset : member.offset + member.size])
                break
    return buf


def _cubin_entry(buf, entry, notes: bool) -> None:
    """What images.cubin_facts does for one ELF entry, without its catch-all."""
    start = entry.payload_offset
    algorithm = fatbin.compression_of(entry.flags)
    try:
        if algorithm is Compression.NONE:
            cubin.from_image(buf, start, entry.payload_size, [])
            return
        stream = memoryview(buf)[start : start + entry.compressed_size]
        reader = compression.PrefixReader(algorithm, stream, entry.uncompressed_size, _limits().max_image_bytes)
        cubin.from_prefix(reader, notes=notes)
    except FormatError:
        pass


# ---------------------------------------------------------------------------------------------------- fatbin


def check_fatbin(data: bytes) -> None:
    """parse_fatbin / scan over arbitrary bytes: FormatError only, entries inside the buffer, then the image
    readers on every entry and the whole thing end to end."""
    n = len(data)
    partial = bool(n and data[-1] & 1)
    try:
        found = fatbin.parse_fatbin(data, 0, n, partial=partial)
    except FormatError:
        found = None
    results = list(fatbin.scan(data, partial=partial))
    if found is not None:
        results.append(found)
    for result in results:
        if isinstance(result, fatbin.ScanError):
            if not isinstance(result.error, FormatError):
                raise PropertyViolation(f"scan error is {type(result.error).__name__}")
            continue
        for entry in result.entries:
            if entry.payload_offset + entry.payload_size > n or entry.offset < result.offset:
                raise PropertyViolation(f"entry at {entry.offset} runs outside the {n}-byte buffer")
            if entry.stored_size > entry.payload_size:
                raise PropertyViolation("entry stores more bytes than its payload")
            entry.arch_name(family_suffix=True)
    # The image readers (cubin.from_image / from_prefix, PrefixReader, decompress) run inside inspect_buffer; an
    # exception there becomes an "internal error" diagnostic that _check_inspect re-raises directly.
    _check_inspect(data)


# ----------------------------------------------------------------------------------------------------- cubin


def check_cubin(data: bytes) -> None:
    """from_image, image_extent, from_prefix (zstd-compressed copy), parse_tkinfo / parse_cuinfo."""
    n = len(data)
    try:
        cubin.from_image(data)
    except FormatError:
        pass
    try:
        extent = cubin.image_extent(data)
        if not 0 <= extent <= n:
            raise PropertyViolation(f"image_extent {extent} outside [0, {n}]")
    except FormatError:
        pass
    try:
        cubin.parse_tkinfo(data)
    except FormatError:
        pass
    cubin.parse_cuinfo(data)  # documented to return (None, None) on short input: no exception at all
    # The prefix reader over a zstd copy: the note search in a progressively decoded image.
    if n >= 64:
        import zstandard

        frame = zstandard.ZstdCompressor(level=1).compress(data)
        try:
            reader = compression.PrefixReader(Compression.ZSTD, frame, n, 1 << 30)
            cubin.from_prefix(reader, step=max(64, n // 3))
        except FormatError:
            pass
    # And the buffer as a standalone file.
    _check_inspect(data)


# ------------------------------------------------------------------------------------------------------- PTX


def check_ptx(data: bytes) -> None:
    identify.identify(data)
    ptx.looks_like_ptx(data)
    try:
        header = ptx.parse_header(data)
        ptx.cuobjdump_arch(header.target)
    except FormatError:
        pass
    _check_inspect(data)


# ------------------------------------------------------------------------------------------------------- ELF


def check_elf(data: bytes) -> None:
    """inspect_buffer end to end; it reads the ELF headers with read_elf. read_elf may raise only FormatError:
    anything else surfaces as an "internal error" diagnostic,
    which _check_inspect re-raises with the reader's traceback. (Calling read_elf a second time directly would
    halve the execution rate for no extra coverage.)"""
    _check_inspect(data)


def check_read_elf(data: bytes) -> None:
    """read_elf alone (used by the regression tests)."""
    try:
        view = elf.read_elf(data)
        elf.gnu_build_id(view)
    except FormatError:
        pass


# -------------------------------------------------------------------------------------------------------- ar


def check_ar(data: bytes) -> None:
    n = len(data)
    try:
        for member in archive.members(data):
            if not 0 <= member.offset <= member.offset + member.size <= n:
                raise PropertyViolation(f"member {member.name!r} at {member.offset}+{member.size} outside {n}")
    except FormatError:
        pass
    _check_inspect(data)


# -------------------------------------------------------------------------------------------------------- PE


def check_pe(data: bytes) -> None:
    """read_pe (the PE header reader) through inspect_buffer end to end; as for ELF, a non-FormatError out of read_pe becomes an
    "internal error" diagnostic that _check_inspect re-raises with its traceback."""
    if data[:2] != b"MZ":
        try:
            pe.read_pe(data)  # the adapter alone on what is not even a DOS header
        except FormatError:
            pass
        return
    _check_inspect(data)


# ------------------------------------------------------------------------------------------------------- LZ4


def check_lz4(data: bytes) -> None:
    """Differential: licscan's LZ4 prefix decoder against python-lz4 (the reference) on the same block.

    Input layout: u16 ``want``, then the block. When the reference decodes the block to D, the prefix decoder must
    return exactly D[:want] for any want (and D for want = len(D)); when the reference rejects the block, the
    prefix decoder asked for the whole declared size must reject it too (FormatError), or return a prefix of what
    the block declares."""
    import lz4.block

    if len(data) < 2:
        return
    want = struct.unpack_from("<H", data)[0] % 8192 + 1
    block = data[2:]
    capacity = 1 << 16
    try:
        ref = lz4.block.decompress(block, uncompressed_size=capacity)
    except lz4.block.LZ4BlockError:
        ref = None
    if ref is not None:
        for w in (want, len(ref), len(ref) + 1):
            try:
                out, used = compression.lz4_block_prefix(block, w, len(ref))
            except FormatError as error:
                if "match offset 0 " in error.reason:
                    # The LZ4 block format: "The presence of a 0 offset value denotes an invalid (corrupted)
                    # block." liblz4 copies from the output position itself and goes on; rejecting is right.
                    return
                raise PropertyViolation(f"prefix decoder rejects a block python-lz4 decodes ({len(ref)} bytes), "
                                        f"want={w}: {error}") from None
            if out != ref[:w]:
                raise PropertyViolation(f"prefix decoder output differs from python-lz4 at want={w}: "
                                        f"{len(out)} vs {len(ref[:w])} bytes, first difference at "
                                        f"{_first_difference(out, ref[:w])}")
            if not 0 <= used <= len(block):
                raise PropertyViolation(f"prefix decoder reports {used} input bytes used of {len(block)}")
        return
    try:
        out, used = compression.lz4_block_prefix(block, capacity, capacity)
    except FormatError:
        return
    # Accepted by the prefix decoder, rejected by the reference: the prefix reader is lenient about the end
    # conditions only (the last sequence is literals; no match starts in the last 12 bytes). Its output must then
    # still be what the reference produces when it decodes only as far as needed for that prefix.
    if out:
        try:
            partial = lz4.block.decompress(block[:used], uncompressed_size=capacity)
        except lz4.block.LZ4BlockError:
            partial = None
        if partial is not None and out != partial[: len(out)]:
            raise PropertyViolation("prefix decoder accepts a block python-lz4 rejects, with different output")


def _first_difference(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# ------------------------------------------------------------------------------------ walker and rule packs


def walker_available() -> bool:
    try:
        import licscan.inventory.walk  # noqa: F401
    except Exception:
        return False
    return True


def check_walk(data: bytes) -> None:
    """The archive walker over a temporary file holding ``data`` (zip, tar, compressed, ar, nested ...): it must
    never raise; every item must be a known item type; every member's bytes are inspected as the scan does."""
    from licscan.inventory import walk

    known = {"FileBlob", "SpecialFile", "Distribution", "Diagnostic", "ArchiveSkipped"}
    with tempfile.TemporaryDirectory(prefix="licscan-fuzz-") as tmp:
        path = os.path.join(tmp, "input.bin")
        with open(path, "wb") as out:
            out.write(data)
        limits = walk.WalkLimits(max_total_bytes=256 << 20, max_member_bytes=64 << 20, in_memory_bytes=4 << 20)
        for item in walk.walk([path], limits):
            name = type(item).__name__
            if name not in known:
                raise PropertyViolation(f"walker yielded a {name}")
            if name == "FileBlob" and item.data is not None:
                if len(item.data) != item.size:
                    raise PropertyViolation(f"member {item.vpath!r}: {len(item.data)} bytes, size says {item.size}")
                facts = inspect.inspect_buffer(item.data, item.vpath, _limits())
                for diag in facts.all_diagnostics():
                    if "internal error" in diag.message:
                        _reraise_internal(bytes(item.data), diag, False)


def rules_loader():
    """The rule-pack loader's entry point (RulePack.from_path), or None while it does not exist yet."""
    try:
        from licscan.rules.loader import RulePack
    except Exception:
        return None
    return RulePack.from_path


def check_rules(data: bytes) -> None:
    """The rule-pack loader on arbitrary bytes in a file: a RulePack, or its documented RulePackError (whose
    render() must work too); never another exception."""
    from licscan.rules.errors import LoadError

    load = rules_loader()
    with tempfile.TemporaryDirectory(prefix="licscan-fuzz-") as tmp:
        path = os.path.join(tmp, "pack.yaml")
        with open(path, "wb") as out:
            out.write(data)
        try:
            load(path)
        except LoadError as error:
            error.render()
            str(error)


# ------------------------------------------------------------------------------------------------- registry


CHECKS = {
    "fatbin": check_fatbin,
    "cubin": check_cubin,
    "ptx": check_ptx,
    "elf": check_elf,
    "ar": check_ar,
    "pe": check_pe,
    "lz4": check_lz4,
    "walk": check_walk,
    "rules": check_rules,
}
# Modules instrumented for coverage feedback (pyelftools' construct is too slow instrumented: 10x fewer runs).
INSTRUMENT = {
    "fatbin": ["licscan.binary.fatbin", "licscan.binary.cubin", "licscan.binary.compression",
               "licscan.binary.images"],
    "cubin": ["licscan.binary.cubin", "licscan.binary.compression"],
    "ptx": ["licscan.binary.ptx", "licscan.binary.identify"],
    "elf": ["licscan.binary.elf", "licscan.binary.inspect", "licscan.binary.images", "licscan.binary.fatbin",
            "licscan.binary.amdgpu"],
    "ar": ["licscan.binary.archive", "licscan.binary.inspect"],
    "pe": ["licscan.binary.pe", "licscan.binary.inspect"],
    "lz4": ["licscan.binary.compression"],
    "walk": ["licscan.inventory"],
    "rules": ["licscan.rules"],
}
# Largest input libFuzzer generates per target (seeds are cut to it).
MAX_LEN = {"fatbin": 16384, "cubin": 16384, "ptx": 8192, "elf": 16384, "ar": 16384, "pe": 16384, "lz4": 4096,
           "walk": 65536, "rules": 2048}


def available(target: str) -> tuple[bool, str]:
    if target == "walk" and not walker_available():
        return False, "licscan/inventory/walk.py does not exist yet"
    if target == "rules" and rules_loader() is None:
        return False, "no rule-pack loader (licscan.rules.loader) yet"
    return True, ""


def check(target: str, data: bytes) -> None:
    _imports()
    CHECKS[target](data)


_imports_done = False


def setup() -> None:
    _imports()


# ------------------------------------------------------------------------------------------------------ seeds


def seeds(target: str) -> list[bytes]:
    """Seed inputs from our fixtures (and small synthetic files built from them), each at most MAX_LEN."""
    _imports()
    from fuzz import seeds as seed_module

    return [s[: MAX_LEN[target]] for s in seed_module.SEEDS[target]()]
