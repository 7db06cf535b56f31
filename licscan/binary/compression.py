"""Fatbin payload decompression, bounded by the declared size and a configurable limit (docs/binary-format.md,
section "3 Compression").

| flag     | algorithm                         | decoder                      |
|----------|-----------------------------------|------------------------------|
| 0x8000   | zstd, one standard frame          | PyPI ``zstandard``           |
| 0x2000   | LZ4 *block* (no frame, no magic)  | PyPI ``lz4.block``           |
| 0x1000   | legacy, never observed            | treated like 0x2000          |
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, TypeAlias, cast

from licscan.binary import magic
from licscan.binary.errors import FormatError
from licscan.model import Compression

if TYPE_CHECKING:
    import zstandard

# A compressed payload: a window of the file mapping (``memoryview``) or bytes.
Payload: TypeAlias = bytes | memoryview

ZSTD_MAGIC = magic.ZSTD


def decompress(algorithm: Compression, stream: Payload, declared_size: int, limit: int) -> bytes:
    """Decode ``stream`` (the ``compressed_size`` bytes of a payload) to exactly ``declared_size`` bytes.

    Nothing larger than ``limit`` is ever allocated: a payload declaring more raises a ``limit`` error before any
    decoding, so a lying header cannot make licscan allocate terabytes.
    """
    if declared_size > limit:
        raise FormatError(None, f"declared uncompressed size {declared_size} exceeds the limit of {limit} bytes",
                          limit=True)
    data: bytes
    if algorithm is Compression.ZSTD:
        data = _zstd(stream, declared_size)
    elif algorithm is Compression.LZ4:
        if declared_size > 255 * len(stream) + 255:  # LZ4 expands at most ~255:1; never allocate a lying size
            raise FormatError(None, f"LZ4 block of {len(stream)} bytes cannot decode to {declared_size} bytes",
                              decompression=True)
        # The codecs load on first use: listing headers needs neither. python-lz4 ships no type information.
        import lz4.block  # type: ignore[import-untyped]

        try:
            data = lz4.block.decompress(stream, uncompressed_size=declared_size)
        except lz4.block.LZ4BlockError as error:
            raise FormatError(None, f"LZ4 block does not decode to {declared_size} bytes: {error}",
                              decompression=True) from None
    else:
        return bytes(stream)
    if len(data) != declared_size:
        raise FormatError(None, f"{algorithm.value} payload decodes to {len(data)} bytes, header declares "
                                f"{declared_size}", decompression=True)
    return data


def _zstd(stream: Payload, declared_size: int) -> bytes:
    import zstandard

    if bytes(stream[:4]) != ZSTD_MAGIC:
        raise FormatError(None, "zstd payload does not start with the zstd frame magic 28 B5 2F FD",
                              decompression=True)
    try:
        return zstandard.ZstdDecompressor().decompress(stream, max_output_size=declared_size)
    except zstandard.ZstdError as error:
        raise FormatError(None, f"zstd frame does not decode within {declared_size} bytes: {error}",
                          decompression=True) from None


class PrefixReader:
    """Decode a compressed payload progressively, so that a caller can stop after the bytes it needs.

    zstd streams decode chunk by chunk, ``more(n)`` asking for ``n`` more *output* bytes (cubins compress 20:1, so
    counting input would overshoot). An LZ4 block has no streaming form: its first bytes (an ELF header) come from
    :func:`lz4_block_prefix`, longer prefixes from liblz4's partial decoder (:func:`lz4_partial`), each decoded from
    the start of the block, and the whole block from :func:`decompress` once a prefix would reach its declared size.
    """

    def __init__(self, algorithm: Compression, stream: Payload, declared_size: int, limit: int,
                 head: bytes | None = None) -> None:
        if declared_size > limit:
            raise FormatError(None, f"declared uncompressed size {declared_size} exceeds the limit of {limit} "
                                    "bytes", limit=True)
        self.declared_size = declared_size
        self.data: bytes | bytearray = bytearray()
        self._stream = stream
        self._head = head  # the first bytes of ``stream``, when the caller has read them (an LZ4 prefix comes from them)
        self._reader: zstandard.ZstdDecompressionReader | None = None
        self._done = False
        self._algorithm = algorithm
        self._limit = limit
        self._whole: bytes | None = None  # an LZ4 block decoded whole where liblz4's partial decoder is missing
        if algorithm is Compression.ZSTD:
            if bytes(stream[:4]) != ZSTD_MAGIC:
                raise FormatError(None, "zstd payload does not start with the zstd frame magic 28 B5 2F FD",
                              decompression=True)
            import zstandard

            self._source = _CountingSource(stream)
            # zstandard reads its source with read(size) only, which _CountingSource provides.
            source = cast("IO[bytes]", self._source)
            self._reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=16384, closefd=False)
        elif algorithm is Compression.NONE:
            self.data = bytes(stream)
            self._done = True

    @property
    def consumed(self) -> int:
        """Compressed bytes read so far."""
        if self._reader is not None:
            return self._source.position
        return len(self._stream) if self._done else self._lz4_position

    _lz4_position = 0

    @property
    def complete(self) -> bool:
        return self._done

    def more(self, output_bytes: int) -> bool:
        """Decode up to ``output_bytes`` more bytes; returns False once the image is complete."""
        if self._done:
            return False
        if self._algorithm is Compression.LZ4:
            return self._more_lz4(output_bytes)
        want = min(output_bytes, self.declared_size + 1 - len(self.data))
        import zstandard

        assert self._reader is not None  # set for zstd in __init__

        try:
            out = self._reader.read(want)
        except zstandard.ZstdError as error:
            raise FormatError(None, f"zstd frame does not decode: {error}", decompression=True) from None
        if not out:
            self._done = True
            if len(self.data) != self.declared_size:
                raise FormatError(None, f"zstd payload decodes to {len(self.data)} bytes, header declares "
                                        f"{self.declared_size}", decompression=True)
            return False
        if len(self.data) + len(out) > self.declared_size:
            raise FormatError(None, f"zstd payload decodes past its declared size {self.declared_size}",
                              decompression=True)
        self.data += out
        if len(self.data) == self.declared_size:
            self._done = True
        return True


    def _more_lz4(self, output_bytes: int) -> bool:
        if not self.data and output_bytes <= LZ4_PREFIX_MAX:
            self.data, self._lz4_position = self._lz4_prefix(output_bytes)
            if len(self.data) >= self.declared_size:
                self._done = True
            return bool(self.data)  # an empty prefix means an empty block: report no progress, never spin
        # A block decodes from its start only: each longer prefix is decoded again, at least twice the last one, so
        # all of them cost at most twice the longest (a cubin's notes lie in its first tenth: cuDNN's 66 LZ4
        # cubins of libcudnn_adv.so.9 decode 307 MB whole, 0.2 s of CPU, for notes within their first 730 KB).
        want = min(self.declared_size, max(len(self.data) + output_bytes, 2 * len(self.data)))
        self._lz4_position = len(self._stream)  # the decoder may read up to the end of the block
        if want < self.declared_size:
            if not isinstance(self._stream, bytes):
                self._stream = bytes(self._stream)  # (copied once: liblz4 takes a pointer; the mapping is read-only)
            prefix = lz4_partial(self._stream, want, self.declared_size, self._limit)
            if prefix is None:  # no partial decoder: the same prefix, cut from the whole block
                if self._whole is None:
                    self._whole = decompress(Compression.LZ4, self._stream, self.declared_size, self._limit)
                prefix = self._whole[:want]
            self.data = prefix
            return True
        self.data = self._whole or decompress(Compression.LZ4, self._stream, self.declared_size, self._limit)
        self._done = True
        return True


    def _lz4_prefix(self, want: int) -> tuple[bytes, int]:
        """:func:`lz4_block_prefix` of the stream, from its head when the head holds enough input for ``want``
        output bytes (the decoding reads the input in order, so a prefix decoded whole from the head is the one the
        whole stream gives); else from the stream."""
        head = self._head
        if head is not None and len(head) >= len(self._stream):
            return lz4_block_prefix(head[: len(self._stream)], want, self.declared_size)
        if head is not None:
            try:
                out, used = lz4_block_prefix(head, want, self.declared_size)
                if len(out) >= want:
                    return out, used
            except FormatError:
                pass  # the head ended inside a sequence: decoded again from the stream below
        return lz4_block_prefix(self._stream, want, self.declared_size)


LZ4_PREFIX_MAX = 4096
LZ4_HEAD = 256  # input bytes read ahead for an LZ4 prefix (a cubin's 64-byte ELF header takes about 70)


def _lz4_length(stream: Payload, pos: int, value: int, extended: int, what: str) -> tuple[int, int]:
    """A token length, extended when it is ``extended``: "keep adding the following bytes until one is not 255
    (that byte is added too)". Returns (length, position after the extension bytes)."""
    if value != extended:
        return value, pos
    while True:
        if pos >= len(stream):
            raise FormatError(pos, f"LZ4 {what} length runs past the end of the block", decompression=True)
        extra = stream[pos]
        pos += 1
        value += extra
        if extra != 255:
            return value, pos


def lz4_block_prefix(stream: Payload, want: int, declared_size: int) -> tuple[bytes, int]:
    """Decode the first ``want`` bytes of an LZ4 block (docs/binary-format.md, section "1.7 What licscan decodes,
    and when"); returns (output, input bytes used).

    python-lz4 decodes whole blocks only; a cubin's ELF header is the first 64 bytes of a block that may decode to
    megabytes, so this reads sequences until enough output exists:
    "Read a token byte. Literal length = high nibble; if it is 15, keep adding the following bytes until one is not
    255 ... Copy that many literal bytes ... Read the match offset as u16 little-endian. Match length = low nibble
    + 4; if the nibble is 15, extend with the same 255-rule ... Copy the match byte by byte from len(out) - offset
    (overlapping copies are legal)."
    """
    out = bytearray()
    pos = 0
    size = len(stream)
    while len(out) < want:
        if pos >= size:
            break
        token = stream[pos]
        pos += 1
        literal, pos = _lz4_length(stream, pos, token >> 4, 15, "literal")
        if pos + literal > size:
            raise FormatError(pos, "LZ4 literals run past the end of the block", decompression=True)
        out += stream[pos : pos + literal]
        pos += literal
        if pos >= size or len(out) >= want:
            break  # "the last sequence carries literals only"
        if pos + 2 > size:
            raise FormatError(pos, "LZ4 match offset truncated", decompression=True)
        offset = stream[pos] | stream[pos + 1] << 8
        pos += 2
        if offset == 0 or offset > len(out):
            raise FormatError(pos - 2, f"LZ4 match offset {offset} points before the start of the output",
                                  decompression=True)
        match, pos = _lz4_length(stream, pos, (token & 15) + 4, 19, "match")
        match = min(match, want + 64 - len(out))  # only the wanted prefix is produced
        start = len(out) - offset
        if offset >= match:
            out += out[start : start + match]
        else:
            # An overlapping copy repeats the last ``offset`` bytes: byte by byte, out[start + k] is always
            # out[start + k % offset].
            out += (out[start:] * (match // offset + 1))[:match]
    if len(out) > declared_size:
        raise FormatError(None, f"LZ4 block decodes past its declared size {declared_size}", decompression=True)
    return bytes(out[:want]) if len(out) > want else bytes(out), pos


@functools.cache
def _lz4_decompress_safe_partial() -> Callable[[bytes, ctypes.Array[ctypes.c_char], int, int, int], int] | None:
    """liblz4's ``LZ4_decompress_safe_partial`` (lz4.h: "Up to 'targetOutputSize' bytes will be decoded. The
    function stops decoding on reaching this objective."), from the liblz4 that python-lz4's extension module is
    built with and exports; None where it does not (then a block is decoded whole, to the same bytes)."""
    try:
        from lz4.block import _block

        function = ctypes.CDLL(_block.__file__).LZ4_decompress_safe_partial
    except (ImportError, OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    return cast("Callable[[bytes, ctypes.Array[ctypes.c_char], int, int, int], int]", function)


def lz4_partial(stream: Payload, want: int, declared_size: int, limit: int) -> bytes | None:
    """The first ``want`` bytes (``want`` < ``declared_size``) the LZ4 block ``stream`` (the whole block: lz4.h
    "srcSize: the exact size of the block") decodes to, the bytes :func:`decompress` gives; None when liblz4's
    partial decoder is not available. Raises FormatError as :func:`decompress` does for a block that cannot decode
    that far."""
    if declared_size > limit:
        raise FormatError(None, f"declared uncompressed size {declared_size} exceeds the limit of {limit} bytes",
                          limit=True)
    if declared_size > 255 * len(stream) + 255:
        raise FormatError(None, f"LZ4 block of {len(stream)} bytes cannot decode to {declared_size} bytes",
                          decompression=True)
    partial = _lz4_decompress_safe_partial()
    if partial is None or want <= 0 or len(stream) > 0x7FFFFFFF:
        return None
    out = ctypes.create_string_buffer(want)
    got = partial(stream if isinstance(stream, bytes) else bytes(stream), out, len(stream), want, want)
    if got != want:  # malformed (negative), or the block ends before its declared size
        raise FormatError(None, f"LZ4 block does not decode to {declared_size} bytes (its first {want} bytes: "
                                f"{'malformed' if got < 0 else f'{got} decoded'})", decompression=True)
    return out.raw


class _CountingSource:
    """The compressed stream as a file-like source, counting the bytes the decoder pulls (for ``bytes_read``)."""

    def __init__(self, stream: Payload) -> None:
        self._stream = stream
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._stream) if size is None or size < 0 else min(len(self._stream), self.position + size)
        chunk = bytes(self._stream[self.position : end])
        self.position = end
        return chunk
