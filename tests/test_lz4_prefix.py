"""An LZ4 cubin is read from prefixes of its decoded image, as a zstd one is (docs/binary-format.md section "1.7 What
licscan decodes, and when"): each prefix is the start of what the whole block decodes to, the reader stops once the
notes are found, and the facts are those of the whole image -- with liblz4's partial decoder or without it."""

from __future__ import annotations

import dataclasses
import itertools
import random

import lz4.block
import pytest
from helpers import fixture

from licscan.binary import compression, cubin, fatbin
from licscan.binary.compression import PrefixReader, decompress, lz4_partial
from licscan.binary.entry_image import Slot, cubin_entry_image, fatbin_slots
from licscan.binary.errors import FormatError
from licscan.model import Compression, Container


def _image(size: int = 400_000) -> bytes:
    """Bytes that compress into matches and literals of every length: random runs, repeats, zeros."""
    rng = random.Random(14)
    out = bytearray()
    while len(out) < size:
        what = rng.randrange(3)
        run = rng.randrange(1, 3000)
        if what == 0:
            out += bytes(rng.randrange(256) for _ in range(run))
        elif what == 1 and out:
            start = rng.randrange(len(out))
            out += (out[start:] * (run // max(1, len(out) - start) + 1))[:run]
        else:
            out += bytes(run)
    return bytes(out[:size])


@pytest.fixture(params=[True, False], ids=["liblz4-partial", "whole-block"])
def partial(request, monkeypatch):
    """Both ways of decoding a prefix: liblz4's partial decoder, and the whole block cut (where it is missing)."""
    if not request.param:
        monkeypatch.setattr(compression, "_lz4_decompress_safe_partial", lambda: None)
    elif compression._lz4_decompress_safe_partial() is None:
        pytest.fail("python-lz4's extension module no longer exports LZ4_decompress_safe_partial")
    return request.param


def test_lz4_partial_is_the_start_of_the_whole_block():
    image = _image()
    stream = lz4.block.compress(image, store_size=False)
    for want in (1, 64, 4097, 65_536, 123_457, len(image) - 1):
        assert lz4_partial(stream, want, len(image), 1 << 30) == image[:want]
        assert lz4_partial(memoryview(stream), want, len(image), 1 << 30) == image[:want]


def test_lz4_partial_reports_a_block_that_does_not_decode_that_far():
    image = _image(50_000)
    stream = lz4.block.compress(image, store_size=False)
    with pytest.raises(FormatError, match="does not decode to 90000 bytes"):
        lz4_partial(stream, 60_000, 90_000, 1 << 30)  # the block holds 50,000 bytes, its header says 90,000
    with pytest.raises(FormatError, match="malformed"):
        lz4_partial(bytes([0x10, ord("a"), 0x09, 0x00]) + stream, 100, 1000, 1 << 30)  # offset 9 before the start
    with pytest.raises(FormatError, match="exceeds the limit"):
        lz4_partial(stream, 100, len(image), 1000)
    with pytest.raises(FormatError, match="cannot decode to"):
        lz4_partial(stream[:10], 100, 1 << 20, 1 << 30)


def test_an_lz4_reader_decodes_longer_prefixes_then_the_whole_block(partial):
    image = _image()
    stream = lz4.block.compress(image, store_size=False)
    reader = PrefixReader(Compression.LZ4, memoryview(stream), len(image), 1 << 30)
    lengths = []
    while reader.more(65_536):
        lengths.append(len(reader.data))
        assert bytes(reader.data) == image[: len(reader.data)]
        assert reader.complete == (len(reader.data) == len(image))
    assert reader.complete and bytes(reader.data) == image and reader.consumed == len(stream)
    assert lengths[0] == 65_536 and all(b >= 2 * a or b == len(image) for a, b in itertools.pairwise(lengths))


def _padded_lz4_cubins() -> list[tuple[Slot, bytes, bytes]]:
    """(fatbin slot, decoded image, LZ4 block) of the LZ4 cubins of a fixture, each image with 1 MiB of random bytes
    after its section table (an ELF file's sections are found through the table, so the facts stay those of the
    cubin): the notes come in the first kilobytes of an image a prefix reader need not decode whole."""
    data = fixture("cuda13/exe_cmode_speed_all").read_bytes()
    tail = random.Random(7).randbytes(1 << 20)
    out = []
    for found in fatbin.scan(data):
        for slot in fatbin_slots(found, "exe", Container.NV_FATBIN, 0):
            entry = slot.entry
            if entry.flags & fatbin.Flag.COMPRESS_LZ4 and not entry.is_ptx:
                payload = data[entry.payload_offset : entry.payload_offset + entry.compressed_size]
                image = decompress(Compression.LZ4, payload, entry.uncompressed_size, 1 << 30) + tail
                out.append((slot, image, lz4.block.compress(image, store_size=False)))
    return out


def test_the_notes_of_an_lz4_cubin_come_from_a_prefix_with_the_facts_of_the_whole_image(partial):
    cubins = _padded_lz4_cubins()
    assert len(cubins) >= 10
    for slot, image, stream in cubins:
        reader = PrefixReader(Compression.LZ4, memoryview(stream), len(image), 1 << 30)
        facts = cubin.from_prefix(reader)
        assert not reader.complete and len(reader.data) < len(image) // 4
        whole = cubin.from_image(image)
        # Everything but ``accelerated``: the whole image's .nv.compat section says "a" where ptxas 13 wrote it, a
        # prefix stops at the notes (as for zstd). An entry's "a" suffix comes from its fatbin entry header
        # (entry_image.py), never from these facts, so the images listed are the same.
        assert dataclasses.replace(facts, accelerated=whole.accelerated) == whole
        assert facts.tool is not None and facts.abi == cubin.ABI_V8
        assert cubin_entry_image(slot, facts) == cubin_entry_image(slot, whole)
