"""The cheaper ways the binary readers take their bytes give the facts the plain ways give: headers read with
``pread`` (paged.read_at), an LZ4 prefix decoded from a head read ahead, notes located without unpacking every
section header, data sections without a magic skipped after one search, the entries built without the frozen
``__init__``."""

from __future__ import annotations

import dataclasses
import gc
import os
import random

import lz4.block
import pytest
from helpers import fixture

from licscan.binary import cubin, fatbin, readlog
from licscan.binary.compression import PrefixReader, lz4_block_prefix
from licscan.binary.errors import FormatError
from licscan.binary.images import Limits, NotesMode
from licscan.binary.inspect import inspect_buffer
from licscan.binary.paged import PagedMap, read_at
from licscan.binary.probe import contains_any, occurrence_table
from licscan.model import Compression, FileFormat


def test_read_at_is_the_slice_of_the_bytes(tmp_path):
    body = bytes(random.Random(5).randrange(256) for _ in range(300_000))
    path = tmp_path / "lib.so"
    path.write_bytes(body)
    fd = os.open(path, os.O_RDONLY)
    try:
        with PagedMap.of(fd) as mapped:
            for offset, size in ((0, 16), (4095, 2), (299_990, 256), (300_000, 8), (123_456, 0)):
                assert read_at(mapped, offset, size) == read_at(body, offset, size) == body[offset : offset + size]
            os.truncate(path, 100_000)  # pread stops at the file's new end, where the mapping would fault
            assert read_at(mapped, 99_990, 256) == body[99_990:100_000]
    finally:
        os.close(fd)


@pytest.mark.parametrize("period", [1, 2, 3, 7, 64, 300])
def test_lz4_prefix_with_overlapping_matches(period):
    # A periodic image compresses to matches whose offset is shorter than their length (an overlapping copy).
    rng = random.Random(period)
    image = bytes(rng.randrange(256) for _ in range(period)) * (20_000 // period) + b"tail"
    stream = lz4.block.compress(image, store_size=False)
    for want in (1, 5, 64, 65, 1000, 4096):
        prefix, used = lz4_block_prefix(stream, want, len(image))
        assert prefix == image[:want] and 0 < used <= len(stream)


def _lz4_entries() -> list[tuple[bytes, int]]:
    data = fixture("cuda13/exe_cmode_speed_all").read_bytes()
    return [(data[e.payload_offset : e.payload_offset + e.compressed_size], e.uncompressed_size)
            for found in fatbin.scan(data) for e in found.entries if e.flags & fatbin.Flag.COMPRESS_LZ4]


def test_an_lz4_prefix_from_a_head_read_ahead_is_the_prefix_of_the_stream():
    entries = _lz4_entries()
    assert len(entries) >= 3
    for stream, declared in entries:
        for head_size in (0, 1, 20, 40, 70, 256, len(stream), len(stream) + 8):
            plain = PrefixReader(Compression.LZ4, memoryview(stream), declared, 1 << 30)
            ahead = PrefixReader(Compression.LZ4, memoryview(stream), declared, 1 << 30, stream[:head_size])
            plain.more(64)
            ahead.more(64)
            assert bytes(ahead.data) == bytes(plain.data) == lz4.block.decompress(stream, declared)[:64]
            assert ahead.consumed == plain.consumed


def test_a_head_that_holds_the_whole_stream_reports_its_errors():
    # A block whose first sequence points back before the output: the error is the stream's, not "ran out".
    stream = bytes([0x10, ord("a"), 0x09, 0x00])
    for head in (stream, stream + b"pad"):
        reader = PrefixReader(Compression.LZ4, memoryview(stream), 100, 1 << 30, head)
        with pytest.raises(FormatError, match="points before the start"):
            reader.more(64)


@pytest.mark.parametrize("rel", ["cuda13/kern_sm80.cubin", "cuda13/kern_sm90a.cubin", "cuda13/kern_sm120a.cubin",
                                 "cuda13/kern_sm100f.cubin", "cuda13/kern_sm86_debug.cubin"])
def test_notes_are_the_note_sections_of_the_table(rel):
    data = fixture(rel).read_bytes()
    _abi, _t, _m, _v, _f, shoff = cubin.parse_header(data[:64])
    shentsize, shnum = int.from_bytes(data[0x3A:0x3C], "little"), int.from_bytes(data[0x3C:0x3E], "little")
    types = (cubin.SHT_NOTE, cubin.SHT_CUDA_COMPAT)
    every = cubin._section_table(data, shoff, shnum, shentsize)
    wanted = [row for row in every if row[0] in types]
    assert any(row[0] == cubin.SHT_NOTE for row in wanted)
    assert cubin._sections_of_type(data, shoff, shnum, shentsize, types) == wanted
    assert cubin._sections_of_type(data, shoff, shnum, shentsize, (0x70000007,)) == [
        row for row in every if row[0] == 0x70000007]
    assert cubin._sections_of_type(data, 0, shnum, shentsize, types) == []
    with pytest.raises(FormatError):
        cubin._sections_of_type(data[: shoff + 10], shoff, shnum, shentsize, types)


def test_contains_any_is_any_occurrence():
    rng = random.Random(17)
    needles = (b"\x50\xed\x55\xba", b"__CLANG_OFFLOAD_BUNDLE__", b"CCOB")
    for _ in range(800):
        pieces = [bytes(rng.choice(b"\x50\xed\x55\xbaCOB_") for _ in range(rng.randint(0, 40)))]
        if rng.random() < 0.3:
            pieces.insert(rng.randint(0, 1), rng.choice(needles))
        data = b"".join(pieces)
        start, end = sorted((rng.randint(0, len(data)), rng.randint(0, len(data))))
        table = occurrence_table(data, needles, start, end)
        assert contains_any(data, needles, start, end) == any(table), (data, start, end)


def test_entries_from_values_equal_the_init_ones():
    data = fixture("cuda13/kern_multi.fatbin").read_bytes()
    entries = fatbin.parse_fatbin(data, 0, len(data)).entries
    assert len(entries) >= 4
    for entry in entries:
        built = fatbin.Entry(*(getattr(entry, f.name) for f in dataclasses.fields(fatbin.Entry)))
        assert built == entry and hash(built) == hash(entry) and vars(built) == vars(entry)
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.arch = 1
    with pytest.raises(TypeError):
        fatbin.Entry.from_values(1, 2)


@pytest.mark.parametrize("rel", ["cuda13/exe_multi", "cuda13/librdc_static.a", "cuda13/exe_cmode_speed_all",
                                 "cuda13/kern_multi.fatbin", "cuda13/libkern.so", "cuda112/k112_compressall.fatbin"])
@pytest.mark.parametrize("notes", [NotesMode.ALWAYS, NotesMode.NEVER])
def test_a_mapping_read_with_pread_gives_the_facts_of_its_bytes(rel, notes):
    # A PagedMap with its descriptor (what inspect_file maps a large file as): headers and LZ4 heads come by pread;
    # the facts and the bytes read are those of the same bytes in memory.
    path = fixture(rel)
    limits = Limits(notes=notes, jobs=1)
    fd = os.open(path, os.O_RDONLY)
    try:
        with PagedMap.of(fd) as mapped, readlog.reading() as log:
            from_map = inspect_buffer(mapped, rel, limits)
            read_from_map = log.total()
    finally:
        os.close(fd)
    with readlog.reading() as log:
        in_memory = inspect_buffer(path.read_bytes(), rel, limits)
    assert from_map.format is not FileFormat.UNKNOWN and from_map.all_images()
    assert from_map == in_memory
    assert read_from_map == log.total() > 0


def test_the_collector_is_paused_only_while_a_binary_is_read(monkeypatch):
    from licscan.binary import inspect as inspect_module

    seen: list[bool] = []
    plain_inspect = inspect_module.inspect_buffer

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return plain_inspect(*args, **kwargs)

    monkeypatch.setattr(inspect_module, "inspect_buffer", spy)
    data = fixture("cuda13/libkern.so").read_bytes()
    assert gc.isenabled()
    facts = inspect_module.inspect_read(data, "libkern.so")
    assert seen == [False] and gc.isenabled() and facts.all_images()
    assert inspect_module.inspect_read(b"plain text\n", "notes.txt").format is FileFormat.UNKNOWN
    assert seen == [False] and gc.isenabled()  # no reader: nothing paused
    gc.disable()
    try:
        inspect_module.inspect_read(data, "libkern.so")
        assert seen == [False, False] and not gc.isenabled()  # an application's own choice is left alone
    finally:
        gc.enable()


def test_literals_asked_one_by_one_or_in_one_pass_are_where_find_puts_them(monkeypatch):
    from licscan.binary import probe

    passes: list[int] = []
    one_pass = probe.first_offsets

    def counted(data, literals, step=probe.LITERAL_STEP):
        passes.append(len(data))
        return one_pass(data, literals, step)

    monkeypatch.setattr(probe, "first_offsets", counted)
    rng = random.Random(8)
    for _ in range(500):
        needles = tuple(bytes(rng.choice(b"abc") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 6)))
        data = bytes(rng.choice(b"abcd") for _ in range(rng.randint(0, 120)))
        literals = probe.Literals(data, probe.LiteralSet(needles))
        asked = [rng.choice(needles) for _ in range(rng.randint(1, 8))]
        before = len(passes)
        assert [literals.find(n) for n in asked] == [data.find(n) for n in asked]
        assert len(passes) - before == (1 if len(set(asked)) > probe.Literals.SINGLE_FINDS else 0)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 10_000, 300_001])
def test_a_literal_pass_over_a_mapped_file_gives_its_digest_too(tmp_path, size, monkeypatch):
    import hashlib
    import mmap

    from licscan.binary import paged, probe

    body = bytes(random.Random(size).choice(b"abc_") for _ in range(size)) + b"abc"
    path = tmp_path / "lib.so"
    path.write_bytes(body)
    literals = probe.LiteralSet((b"abc", b"c_a", b"absent"))
    want = {n: body.find(n) for n in literals.needles if n in body}
    reads: list[int] = []
    monkeypatch.setattr(paged, "_read_into", lambda update, fd, n: reads.append(n))  # a second read would show
    fd = os.open(path, os.O_RDONLY)
    try:
        with PagedMap.of(fd) as data:
            for step in (7, 4096, 1 << 20):  # many steps, the last one short; every literal found early
                digest = hashlib.sha256()
                assert probe.first_offsets(data, literals, step, digest=digest.update) == want
                assert digest.hexdigest() == hashlib.sha256(body).hexdigest()
            found = probe.Literals(data, literals)
            found.digest_too("sha256")
            assert not data.known("sha256")
            assert [found.find(n) for n in (b"absent", b"abc", b"c_a")] == [body.find(n) for n in
                                                                             (b"absent", b"abc", b"c_a")]
            assert data.known("sha256") and data.hash("sha256") == hashlib.sha256(body).hexdigest() and not reads
        with open(path, "rb") as handle, PagedMap(handle.fileno(), 0, access=mmap.ACCESS_READ) as plain:
            found = probe.Literals(plain, literals)  # no descriptor: no digest on the side
            found.digest_too("sha256")
            found.find(b"abc")
            assert not plain.known("sha256")
    finally:
        os.close(fd)


def test_a_section_is_found_by_name_the_first_of_its_name():
    from licscan.binary.elf import read_elf

    view = read_elf(fixture("cuda13/libkern.so").read_bytes())
    text = view.section(".text")
    assert text is not None and text == next(s for s in view.sections if s.name == ".text")
    second = text._replace(number=len(view.sections), offset=text.offset + 1)
    doubled = dataclasses.replace(view, sections=view.sections + (second,))
    assert doubled.section(".text") == text and doubled.section(".absent") is None
    assert dataclasses.replace(view, sections=(second,) + view.sections).section(".text") == second
