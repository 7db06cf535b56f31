"""What one file says of itself, read while its bytes are held: which catalog entries its name, SONAME or banner
make it (``rules/catalog/nvidia.yaml``), what its bytes claim for each (version markers, a tool's release banner, a
kernel module's ``.modinfo``), and the layers its content signals name (:mod:`licscan.identify.signals`).

:func:`observe` is the only step of naming that reads a file's bytes; :func:`licscan.identify.catalog.name` turns
its :class:`Observation` into component matches once the file's enclosing distribution is known (at once for a
plain file, after the walk for an archive member: a wheel's ``RECORD`` and ``METADATA`` come after its libraries).
Which catalog entries a file is decides which of its bytes are read (the markers of those entries, a tool's
banner), so the catalog is looked up by name here, not again when naming.

Every literal the catalog and the signals look for is searched in one pass over the file
(:class:`licscan.binary.probe.Literals`), the first time one of them is asked for; a regex only parses the few bytes
after a literal that was found. The evidence of a static library linked into a binary is string constants: it is
searched in the binary's constant data only (:func:`_linked`, licscan/binary/regions.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from licscan.binary.buffer import Buffer
from licscan.binary.modinfo import modinfo
from licscan.binary.probe import Literals, LiteralSet, first_offsets_in, window
from licscan.binary.regions import host_format, host_regions
from licscan.identify.catalog_table import Catalog, Entry, Static, StaticRelease, load_catalog
from licscan.identify.versions import (
    banner_claims,
    code_claims,
    device_code_claim,
    marker_claims,
    release_claim,
    resource_claims,
)
from licscan.model import (
    ComponentKind,
    ComponentMatch,
    ElfFacts,
    FileFacts,
    FileFormat,
    PeFacts,
    PeVersionInfo,
    VersionClaim,
)
from licscan.vpath import basename

_CATALOG = "rules/catalog/nvidia.yaml"


@functools.cache
def literal_set() -> LiteralSet:
    """Every literal the catalog and the translation-layer signals look for in a whole file: searched together,
    in one pass over the file, the first time one of them is asked for."""
    from licscan.identify import signal_table  # the signals' literals only, read from the table's data

    return LiteralSet(catalog_literal_set().needles + signal_table.literals())


@functools.cache
def catalog_literal_set() -> LiteralSet:
    """The literals of :func:`literal_set` the catalog looks for (release line, copyright, tool banners, version
    markers): the whole-file pass of a file no signal runs on (``licscan inspect``). A literal is found at the same
    offset in either set's pass (:func:`licscan.binary.probe.first_offsets`)."""
    cat = load_catalog()
    own = [cat.release_banner, cat.copyright, cat.kernel_id_literal]
    own += [e.banner for e in cat.entries if e.banner is not None]
    own += [marker.literal for e in cat.entries for marker in e.markers if not marker.resource]
    return LiteralSet(tuple(own))


@functools.cache
def static_literal_set() -> LiteralSet:
    """The literals of the catalog's ``static`` evidence looked for in every host binary the catalog does not name:
    the evidence that has no ``gate`` (cudart's) and each gate; searched together in the binary's constant data
    only (:func:`_linked`), never in the whole-file pass of :func:`literal_set`."""
    statics = _statics(load_catalog())
    return LiteralSet(tuple(lit for static in statics if static.gate is None for group in static.evidence
                            for lit in group) + tuple(static.gate for static in statics if static.gate is not None))


@functools.cache
def gated_literal_set() -> LiteralSet:
    """The literals of the static libraries' evidence that has a ``gate`` (rules/catalog/nvidia.yaml), except those
    :func:`static_literal_set` holds: searched in a second pass over a host binary's constant data, and only in one
    that holds a gate literal (the PTX assembler's banner for the PTX compiler, nvJitLink and NVRTC). One set holds
    at most 64 literals (the SIMD prefilter's limit, tests/test_probe.py)."""
    first = static_literal_set().index
    return LiteralSet(tuple(lit for static in _statics(load_catalog()) if static.gate is not None
                            for group in static.evidence for lit in group if lit not in first))


def _statics(cat: Catalog) -> list[Static]:
    return [e.static for e in cat.entries if e.static is not None]


@dataclass(frozen=True)
class Seen:
    """A catalog entry a file is (``how``: "file name", "SONAME" or the content evidence of a tool found by its
    banner) and what the file's bytes say for it."""

    entry: Entry
    name_match: re.Match[str] | None
    how: str
    claims: tuple[VersionClaim, ...] = ()  # its version markers, a tool's release banner line
    no_banner: bool = False  # a tool named like NVIDIA's whose bytes hold no CUDA release banner
    modinfo: tuple[tuple[str, str], ...] = ()  # a kernel module's .modinfo license=, version=, vermagic=
    declared: str | None = None  # named by the name it declares (SONAME, DLL name), not by the one it is shipped as
    linked_from: str | None = None  # linked into the file: the static library it came from
    script: bool = False  # a wrapper script named like the tool: the tool only in a distribution that ships it


@dataclass(frozen=True)
class Observation:
    """Everything naming needs of one file besides its distribution and digest; it holds none of the bytes."""

    vpath: str
    facts: FileFacts | None
    seen: tuple[Seen, ...]
    layers: tuple[ComponentMatch, ...]  # translation layers and GPU runtimes its content signals name

    @property
    def name(self) -> str:
        return basename(self.vpath)

    @property
    def elf(self) -> ElfFacts | None:
        return self.facts.elf if self.facts is not None else None

    @property
    def named(self) -> bool:
        """Whether naming finds a component in the file (what decides whether its digest may be needed)."""
        return bool(self.seen or self.layers)


@dataclass(frozen=True)
class _File:
    vpath: str
    name: str
    facts: FileFacts | None
    size: int
    literals: Literals

    @property
    def elf(self) -> ElfFacts | None:
        return self.facts.elf if self.facts is not None else None


def observe(vpath: str, facts: FileFacts | None, data: Buffer | None = None, *,
            with_signals: bool = True) -> Observation:
    """Read what naming needs from the file at ``vpath``: its facts and its bytes (``data``; None: no content
    probe runs). ``with_signals``: also the translation-layer and GPU runtime signals."""
    cat = load_catalog()
    file = _file(vpath, facts, data, literal_set if with_signals else catalog_literal_set)
    found = _by_name(cat, file)
    if found:
        # A catalogued file is hashed for its RECORD comparison (identify/examine.py): should its literals be
        # searched over the whole file, the same read gives the digest.
        file.literals.digest_too("sha256")
    content_tool = _tool_by_content(cat, file, tuple(f.entry.name for f in found))
    if content_tool is not None:
        found = [f for f in found if f.entry.kind is not ComponentKind.DEVELOPER_TOOL] + [content_tool]
    seen = tuple(_content(cat, f, file) for f in found) or _linked(cat, file)
    layers: tuple[ComponentMatch, ...] = ()
    if with_signals:
        from licscan.identify import signals  # not imported where no signal runs (licscan inspect)

        layers = signals.detect(vpath, facts, data, file.literals)
    return Observation(vpath, facts, seen, layers)


def links_any(vpath: str, facts: FileFacts | None, data: Buffer) -> bool:
    """Whether the file's constant data holds the evidence of a catalogued static library (:func:`_linked`), whether
    or not the catalog names the file: where it holds none, :func:`observe` finds no part linked into it, and
    naming it (its name against every entry, its banners) can be left out by one that wants those parts only."""
    return bool(_linked(load_catalog(), _file(vpath, facts, data, catalog_literal_set)))


def _file(vpath: str, facts: FileFacts | None, data: Buffer | None, literals: Callable[[], LiteralSet]) -> _File:
    size = facts.size if facts is not None else (len(data) if data is not None else 0)
    return _File(vpath, basename(vpath), facts, size, Literals(data, literals))


def _by_name(cat: Catalog, file: _File) -> list[Seen]:
    """Every catalog entry (in catalog order) one of whose patterns matches the file name (its first such pattern),
    else the entries the name the file declares makes it: its SONAME, a DLL's export name or version resource. A
    file whose declared name makes it other entries than its file name does (cusolverMg64_11.dll shipped as
    cusolver64_11.dll) is what it declares: a file name is chosen by whoever ships it, the declared name was given
    when it was linked."""
    found = []
    if cat.any_name.fullmatch(file.name):
        script = _foreign_script(cat, file)
        for entry in cat.entries:
            m = entry.first_match(file.name)
            if m is not None:
                found.append(Seen(entry, m, "file name", script=script and entry.executable))
    declared = _by_declared(cat, file)
    if found and declared and not {f.entry.name for f in found} & {d.entry.name for d in declared}:
        return [replace(d, how=f"{d.how}, shipped as {file.name!r}") for d in declared]
    return found or declared


def _foreign_script(cat: Catalog, file: _File) -> bool:
    """A script ("#!": an interpreter file, POSIX exec) that does not say "NVIDIA Corporation": a wrapper named like
    NVIDIA's tool, the tool only in a distribution the catalog says ships it (nvidia-cuda-sanitizer-api 13.5.25's
    bin/compute-sanitizer, three lines of "#!/bin/sh" and exec, is NVIDIA's launcher; catalog.name). Elsewhere it is
    someone's wrapper: Debian's nvidia-profiler 12.4.127~12.4.1-2 installs /usr/bin/nvprof as "#!/bin/sh" + "exec
    /usr/lib/nvidia-cuda-toolkit/bin/nvprof", its nvidia-cuda-toolkit /usr/bin/nvcc likewise; a project's bin/nvcc
    calling the installed compiler was a CUDA-EULA-DEV-TOOL finding."""
    data = file.literals.data
    if data is None or window(data, 0, 2) != b"#!":
        return False
    return file.literals.find(cat.copyright) < 0


def _by_declared(cat: Catalog, file: _File) -> list[Seen]:
    """The entries the name the file declares makes it: the first entry whose expected SONAME is the ELF file's,
    else :func:`_by_pe_names`."""
    elf = file.elf
    # An expected SONAME (libS.so[.<digits>]) is a name of its stem S: one the catalog's union does not match is
    # no entry's, and no entry's SONAME regex is compiled for it (libtorch_cuda.so).
    if elf is not None and elf.soname and cat.any_name.fullmatch(elf.soname):
        for entry in cat.entries:
            if entry.soname is not None and entry.soname.fullmatch(elf.soname):
                return [Seen(entry, None, "SONAME", declared=elf.soname)]
    return _by_pe_names(cat, file.facts.pe if file.facts is not None else None)


def _by_pe_names(cat: Catalog, pe: PeFacts | None) -> list[Seen]:
    """A DLL whose file name says nothing, named by the names it gives itself, as an ELF file by its SONAME: the
    DLL name of its export directory (the name it was linked as), then its version resource's OriginalFilename and
    InternalName. A renamed cudart64_12.dll keeps them all."""
    if pe is None:
        return []
    info = pe.version_info or PeVersionInfo()
    for what, other in (("export directory names it", pe.export_name),
                        ("version resource OriginalFilename", info.original_filename),
                        ("version resource InternalName", info.internal_name)):
        if not other or not cat.any_name.fullmatch(other):
            continue
        found = [Seen(entry, None, f"{what} {other!r} ({_CATALOG}: {entry.name})", declared=other)
                 for entry in cat.entries if entry.names.fullmatch(other)]
        if found:
            return found
    return []


def _linked(cat: Catalog, file: _File) -> tuple[Seen, ...]:
    """The catalogued static libraries linked into a host binary the catalog does not name (an NVIDIA library's own
    copy of the static runtime is part of that library): an entry's ``static`` evidence, every literal of one of
    its lists in the file's constant data; its release where ``static.release`` says (:func:`_static_claims`).

    The literals are string constants of the library: the linker puts them in the output's ``.rodata`` (ELF) or
    ``.rdata`` (PE), so only those sections (and a PE image's import tables) are read, whatever the size of the
    file (licscan/binary/regions.py); a file whose headers do not parse is searched whole, up to the catalog's
    ``probe_limit``."""
    host = host_format(file.facts)
    data = file.literals.data
    if host is None or data is None:
        return ()
    statics = [(e, e.static) for e in cat.entries if e.static is not None and host in e.static.library]
    if not statics:
        return ()
    regions = host_regions(data)
    if regions is None and file.size > cat.probe_limit:
        return ()
    evidence = _Evidence(data, regions.constants if regions is not None else ((0, len(data)),))
    out = []
    for entry, static in statics:
        hits = evidence.held(static)
        if hits is None:
            continue
        library = static.library[host]
        how = (f"linked from {library}: " + ", ".join(f"{lit.decode('latin-1')!r} at {at:#x}" for lit, at in hits)
               + f" ({_CATALOG}: {entry.name} static)")
        code = regions.code if regions is not None else None
        out.append(Seen(entry, None, how, _static_claims(cat, entry, static, file, code), linked_from=library))
    return tuple(out)


class _Evidence:
    """Where the literals of static-library evidence first occur in one host binary's constant data (``regions``):
    those of :func:`static_literal_set` from one pass, the gated ones from a second pass (:func:`gated_literal_set`),
    run at most once and only when a gate is found."""

    def __init__(self, data: Buffer, regions: Sequence[tuple[int, int]]) -> None:
        self._data, self._regions = data, regions
        self._first: dict[bytes, int] | None = None
        self._second: dict[bytes, int] | None = None

    def find(self, needle: bytes) -> int:
        if needle in static_literal_set().index:
            if self._first is None:
                self._first = first_offsets_in(self._data, static_literal_set(), self._regions)
            return self._first.get(needle, -1)
        if self._second is None:
            self._second = first_offsets_in(self._data, gated_literal_set(), self._regions)
        return self._second.get(needle, -1)

    def held(self, static: Static) -> list[tuple[bytes, int]] | None:
        """``(literal, offset)`` of the first of ``static``'s evidence lists the file holds whole, else None."""
        if static.gate is not None and self.find(static.gate) < 0:
            return None
        for group in static.evidence:
            hits = [(lit, self.find(lit)) for lit in group]
            if all(at >= 0 for _lit, at in hits):
                return hits
        return None


def _static_claims(cat: Catalog, entry: Entry, static: Static, file: _File,
                   code: Sequence[tuple[int, int]] | None) -> tuple[VersionClaim, ...]:
    """The release of a library linked into ``file``: the CUDART_VERSION its version query stores (in ``code``, the
    file's executable sections; None: the whole file), else the toolkit of the device code linked beside it (nvcc
    links the runtime of its own toolkit); or the file's CUDA release line when all agree; or the entry's version
    markers (those two read the whole file: every release line of it, a marker anywhere)."""
    data = file.literals.data
    if data is None:
        return ()
    if static.release is StaticRelease.BANNER:
        return tuple(banner_claims(data, cat.release_banner))
    if static.release is StaticRelease.MARKER:
        return tuple(marker_claims(entry, file.literals))
    device = device_code_claim(file.facts.all_images() if file.facts is not None else ())
    return tuple(code_claims(static, data, code)) + ((device,) if device else ())


def _is_executable(facts: FileFacts | None) -> bool:
    elf = facts.elf if facts is not None else None
    if elf is None:
        return False
    # A position-independent executable is ET_DYN too; it asks for its program interpreter (.interp), a shared
    # library does not: warp-lang 1.19.0's warp.so (no SONAME) holds ptxas's banner in the PTX compiler it links,
    # and is no ptxas. A file without section headers keeps the SONAME test.
    if elf.elf_type != "ET_DYN" or elf.soname is not None:
        return elf.elf_type == "ET_EXEC"
    return ".interp" in elf.sections or not elf.sections


def _tool_by_content(cat: Catalog, file: _File, prefer: tuple[str, ...] = ()) -> Seen | None:
    """An NVIDIA developer tool recognised by its banner, whatever its file name: the CUDA release line, NVIDIA's
    copyright notice and the tool's own banner ("Ptx optimizing assembler") must all be in the file."""
    literals = file.literals
    data = literals.data
    if data is None or not _is_executable(file.facts) or file.size > cat.probe_limit:
        return None
    at = literals.find(cat.release_banner)
    if at < 0 or literals.find(cat.copyright) < 0:
        return None
    hits = [(entry, entry.banner, where) for entry in cat.entries if entry.banner is not None
            for where in (literals.find(entry.banner),) if where >= 0]
    if not hits:
        return None
    # A tool may hold another's banner: the catalog says which (`tool: embeds`, nvlink holds ptxas's), so the
    # embedded one is not what the file is. Of the rest, the one its own name says; else, when banners of unrelated
    # tools remain, the first by name (never by catalog order) and the evidence says which others were seen.
    embedded = {name for entry, _, _ in hits for name in entry.embeds}
    hits = sorted((h for h in hits if h[0].name not in embedded), key=lambda h: h[0].name) or hits
    named = [h for h in hits if h[0].name in prefer]
    entry, banner, where = (named or hits)[0]
    others = [h[0].name for h in hits if h[0] is not entry]
    line = _cstring(data, at)
    return Seen(entry, None, f"content: banner {banner.decode()!r} at {where:#x}, "
                             f"{line!r} at {at:#x}, {cat.copyright.decode()!r}"
                             + (f"; the banners of {', '.join(others)} too" if others else ""))


def _cstring(data: Buffer, offset: int, limit: int = 120) -> str:
    raw = window(data, offset, limit).split(b"\0", 1)[0].split(b"\n", 1)[0]
    return raw.decode("latin-1")


def _content(cat: Catalog, found: Seen, file: _File) -> Seen:
    """``found`` with what the bytes say for it: version markers, a tool's release banner (a tool named like
    NVIDIA's whose bytes hold none is less certain), a kernel module's ``.modinfo`` fields."""
    info = tuple(modinfo(file.vpath, file.facts, file.literals.data).items()) if found.entry.kernel_module else ()
    data = file.literals.data
    pe = file.facts is not None and file.facts.format is FileFormat.PE
    if data is None or file.size > cat.probe_limit:  # a PE image's version resource costs a few pages: still read
        claims = resource_claims(found.entry, data) if data is not None and pe else []
        return Seen(found.entry, found.name_match, found.how, tuple(claims), modinfo=info, declared=found.declared,
                    script=found.script)
    claims = marker_claims(found.entry, file.literals) + (resource_claims(found.entry, data) if pe else [])
    if found.entry.kernel_module and "license" not in dict(info):  # an object before it is linked: no .modinfo
        at = file.literals.find(cat.kernel_id_literal)
        if at >= 0:
            info += (("nvidia_id", _cstring(data, at + len(cat.kernel_id_literal), 160)),)
    no_banner = False
    if found.entry.banner is not None:
        at = file.literals.find(cat.release_banner)
        if at >= 0:
            claims.extend(release_claim(data, at, cat.release_banner))
        else:
            no_banner = found.how == "file name" and file.facts is not None \
                and file.facts.format is not FileFormat.UNKNOWN
    elif found.entry.kind is ComponentKind.DEVELOPER_TOOL:
        # a tool with no banner of its own to be known by: nvdisasm and nvprune print "%s: NVIDIA (R) %s", cicc
        # nothing; their bytes still hold their toolkit's "Cuda compilation tools, release 12.4, V12.4.127" (Debian's
        # nvidia-cuda-toolkit 12.4.131~12.4.1-2: nvdisasm, nvprune and cu++filt V12.4.127, cicc V12.4.131). Taken
        # when every such line of the file states the same release.
        claims.extend(banner_claims(data, cat.release_banner))
    return Seen(found.entry, found.name_match, found.how, tuple(claims), no_banner, info, found.declared,
                script=found.script)


__all__ = ["Observation", "Seen", "catalog_literal_set", "gated_literal_set", "links_any", "literal_set", "observe",
           "static_literal_set"]
