"""The archive formats the walker opens, each turned into entries for :meth:`Walker.members` (archives.py): zip
(wheel, egg, jar) and .conda, tar (and the images stored as one, imagewalk.py), a compression around a tar or a
lone file (compressed.py), a Debian package (an ``ar`` archive whose first member is ``debian-binary``).

Transparent containers add no level to the virtual paths (walk.py): the ``data.tar.*`` of a .deb, the
``pkg-*.tar.*`` and ``info-*.tar.*`` of a .conda, a compression around a tar.
"""

from __future__ import annotations

import fnmatch
import zipfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from licscan.binary.stream import WindowStream
from licscan.inventory import compressed, images, imagewalk, names
from licscan.inventory.entries import (
    READ_ERRORS,
    ArchiveError,
    Buffer,
    Entry,
    EntryType,
    ar_entries,
    tar_entries,
    zip_entries,
    zip_large_files,
)
from licscan.inventory.inflow import Inflow, InflowTar
from licscan.inventory.items import FileBlob, Item
from licscan.inventory.member import Tally, charge
from licscan.inventory.pipe import TarAhead
from licscan.inventory.sniff import COMPRESSED, HEAD_SIZE, ArchiveKind, archive_kind, is_tar_header
from licscan.inventory.spool import LimitExceeded
from licscan.inventory.unzstd import FramesResult
from licscan.model import Diagnostic, DiagnosticKind
from licscan.vpath import basename, join

if TYPE_CHECKING:
    from licscan.inventory.archives import Level, Walker

_SUFFIXES = {ArchiveKind.GZIP: (".gz", ".tgz", ".z"), ArchiveKind.BZIP2: (".bz2", ".tbz2", ".tbz"),
             ArchiveKind.XZ: (".xz", ".txz"), ArchiveKind.ZSTD: (".zst", ".zstd", ".tzst")}


def walk(walker: Walker, level: Level, buf: Buffer, kind: ArchiveKind) -> Iterator[Item]:
    """The members of the archive ``buf`` of kind ``kind``."""
    if kind is ArchiveKind.ZIP:
        yield from zip_members(walker, level, buf)
    elif kind is ArchiveKind.TAR:
        yield from tar_members(walker, level, buf)
    elif kind in COMPRESSED:
        yield from compressed_members(walker, level, buf, kind)
    elif kind is ArchiveKind.AR:
        yield from deb_members(walker, level, buf)


# ------------------------------------------------------------------------------------------------- zip / conda
def zip_members(walker: Walker, level: Level, buf: Buffer) -> Iterator[Item]:
    opened: zipfile.ZipFile | None
    try:
        opened = zipfile.ZipFile(WindowStream(buf))  # its central directory read once, here (zip_entries lists it)
        root = [n for n in opened.namelist() if "/" not in n]
    except Exception:  # noqa: BLE001 - damaged: zip_entries reports it
        opened, root = None, []
    conda = "metadata.json" in root and any(fnmatch.fnmatchcase(n, "pkg-*.tar.*") for n in root)
    # The large members (spooled anyway) are inflated by a thread of their own from the start (early.py).
    large = zip_large_files(buf, opened, walker.limits.in_memory_bytes) if opened is not None else []
    entries = walker.ahead.entries(zip_entries(buf, opened), lambda e: walker.worth_reading(level, e), large)
    if not conda:
        yield from walker.members(level, entries)
        return
    # A .conda (conda-package-handling "v2"): metadata.json, info-<pkg>.tar.zst, pkg-<pkg>.tar.zst; both
    # tars are the package's file tree and are walked transparently (info/ first, as in a v1 .tar.bz2).
    def inner(entry: Entry) -> Iterator[Item] | None:
        if "/" in entry.name or not fnmatch.fnmatchcase(entry.name, "[ip][nk][fg]*-*.tar.*"):
            return None
        return transparent(walker, level, entry)

    yield from walker.members(level, entries, on_entry=inner)


def transparent(walker: Walker, level: Level, entry: Entry) -> Iterator[Item]:
    """A tar inside an archive whose files belong to the outer archive's tree (no level of its own)."""
    vpath = join(level.vpath, entry.name)
    held = yield from walker.hold(vpath, entry)
    if held is None:
        return
    try:
        kind = archive_kind(bytes(held.data[:HEAD_SIZE]))
        if kind not in COMPRESSED + (ArchiveKind.TAR,):
            yield FileBlob(vpath, held.size, level.containers, None, held.data, entry.mode, level.layer,
                           level.deleted)
            return
        yield from walker.contents(level, held.data, kind)
    finally:
        held.release()


# --------------------------------------------------------------------------------------------------------- tar
def tar_members(walker: Walker, level: Level, buf: Buffer) -> Iterator[Item]:
    listed: dict[str, Entry] = {}
    plan = None
    if imagewalk.tar_has_image_files(buf):  # only then is every entry listed (a tar may have 1,000,000 members)
        try:
            for entry in tar_entries(WindowStream(buf), streamed=False, buf=buf):
                clean, _ = names.sanitize(entry.name)
                listed.setdefault(clean, entry)
        except (ArchiveError, LimitExceeded):
            listed = {}
    if listed and images.is_image(set(listed)):
        plan = imagewalk.tar_plan(walker.limits, level, listed)
    if plan:
        layer_paths = {layer.path for layers in plan for layer in layers}
        yield from walker.members(level, tar_entries(WindowStream(buf), streamed=False, buf=buf),
                                  only=lambda e: names.sanitize(e.name)[0] not in layer_paths)
        yield from imagewalk.layers(plan, lambda layer, vis: imagewalk.tar_layer(walker, level, listed, layer, vis))
        return
    yield from level.extra
    level.extra.clear()
    yield from walker.members(level, tar_entries(WindowStream(buf), streamed=False, buf=buf))


# ------------------------------------------------------------------------------------------ compressed streams
def compressed_members(walker: Walker, level: Level, buf: Buffer, kind: ArchiveKind) -> Iterator[Item]:
    """A compression around a tar (walked transparently) or around a lone file (one member)."""
    cannot = None
    try:
        with compressed.open_stream(kind, WindowStream(buf)) as probe:
            head = probe.read(HEAD_SIZE)
    except READ_ERRORS + (LimitExceeded,) as error:
        head = b""
        cannot = ArchiveError(DiagnosticKind.MALFORMED, f"cannot decompress: {error}", 0)
    tar = is_tar_header(head)
    # A zstd stream is checked by walking its frames (compressed.py); a tar's from the pieces its decompressor
    # reads (ZstdFrames), when it is read to its end, so the stream is read once.
    frames = compressed.ZstdFrames(len(buf)) if kind is ArchiveKind.ZSTD and tar else None
    damage = None if frames is not None or kind is not ArchiveKind.ZSTD else \
        compressed.zstd_problem(buf, walker.drop_pages)
    damage = damage or cannot
    watch = frames.feed if frames is not None else None
    # zstd reads a tar's input in place (compressed.InPlace: the same pieces, counted the same, no copy)
    raw: compressed.CountingReader | compressed.InPlace = compressed.InPlace(buf, watch) if frames is not None \
        else compressed.CountingReader(WindowStream(buf), watch=watch)
    if tar:
        # A tar's stream is decompressed by a thread (a large zstd stream by a process: unzstd.py) and read by
        # another (pipe.py): it charges the budget in order.
        tally = Tally(walker.limits)
        at = level.source[1:] if level.source is not None and level.source[0] is buf else None
        lane = walker.ahead.unzstd.lane(len(buf), at) if frames is not None and at is not None else None
        checked: compressed.ZstdFrames | FramesResult | None = frames if lane is None else lane.frames
        inflow = Inflow(compressed.open_stream(kind, raw), raw, tally) if lane is None else \
            Inflow(None, None, tally, lane=lane)
        yield from _compressed_tar(walker, level, inflow, tally,
                                   lambda: _zstd_damage(checked, buf, walker) if checked is not None else None)
        return
    stream = compressed.CountingReader(compressed.open_stream(kind, raw), on_read=walker.budget.charge)
    if head or damage is None:
        name = compressed.gzip_name(bytes(buf[:1024])) if kind is ArchiveKind.GZIP else None
        entry = Entry(name or _strip_suffix(basename(level.vpath), kind),
                      EntryType.FILE, None, lambda: raw.count, open=lambda: stream, charged=True)
        yield from walker.members(level, iter([entry]))
    if damage is not None:
        yield Diagnostic(level.vpath, damage.kind, damage.message, damage.offset)


def _zstd_damage(frames: compressed.ZstdFrames | FramesResult, buf: Buffer, walker: Walker) -> ArchiveError | None:
    """What is wrong with the zstd frames of ``buf``: from the pieces its decompressor read when it read them all,
    else by walking the frames in ``buf``."""
    return frames.result if frames.done else compressed.zstd_problem(buf, walker.drop_pages)


def _compressed_tar(walker: Walker, level: Level, stream: Inflow, tally: Tally,
                    damage_of: Callable[[], ArchiveError | None]) -> Iterator[Item]:
    """The members of a compressed tar (read by its thread, pipe.py), then the rest of its stream; then what is
    wrong with the stream (``damage_of``, known once the stream was read), as one diagnostic."""
    cut: Exception | None = None
    try:
        pipe = TarAhead(walker.ahead, tally, stream)
        walker.pipes.append(pipe)
        try:
            failed = yield from walker.members(level, pipe.entries(
                tar_entries(stream, streamed=True, packed=stream.packed, direct=InflowTar),
                lambda e: walker.worth_reading(level, e), walker.budget))
        finally:
            walker.pipes.remove(pipe)
        try:
            while not failed:
                before = tally.total
                more = stream.read(1 << 20)
                charge(walker.budget, tally.total - before)
                if not more:
                    break
        except LimitExceeded as error:
            yield walker.limit(level.vpath, error)
        except READ_ERRORS as error:
            cut = error
    finally:
        stream.close()  # its thread is done with the buffer (and with the frames it checks)
    damage = damage_of()
    if cut is not None and damage is None:
        yield Diagnostic(level.vpath, DiagnosticKind.TRUNCATED, f"compressed stream: {cut}")
    if damage is not None:
        yield Diagnostic(level.vpath, damage.kind, damage.message, damage.offset)


def _strip_suffix(name: str, kind: ArchiveKind) -> str:
    lower = name.lower()
    for suffix in _SUFFIXES.get(kind, ()):
        if lower.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            return stem + ".tar" if suffix.startswith(".t") and suffix != ".tar" and len(suffix) > 3 else stem
    return f"{name}.decompressed"


# --------------------------------------------------------------------------------------------------------- deb
def deb_members(walker: Walker, level: Level, buf: Buffer) -> Iterator[Item]:
    """A Debian binary package (deb(5)): ar members ``debian-binary``, ``control.tar[.gz|.xz|.zst]``,
    ``data.tar[.gz|.xz|.bz2|.zst]``; the data tar is the package's file tree (transparent)."""
    def data(entry: Entry) -> Iterator[Item] | None:
        if entry.name.startswith("data.tar"):
            return transparent(walker, level, entry)
        return None

    yield from walker.members(level, ar_entries(buf), on_entry=data)
