"""The ``.modinfo`` fields of a Linux kernel module: a fact about its bytes.

The kernel's ``MODULE_LICENSE("...")`` / ``MODULE_VERSION("...")`` macros store NUL-terminated ``key=value`` strings
in the ELF section ``.modinfo`` (include/linux/moduleparam.h, ``__MODULE_INFO``); distributions ship modules
compressed (``.ko.xz``, ``.ko.zst``, ``.ko.gz``), so those are streamed for the same fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from licscan.binary import magic
from licscan.binary.buffer import Buffer
from licscan.binary.probe import window
from licscan.model import FileFacts

_MODINFO_KEYS = (b"license", b"version", b"vermagic")
_COMPRESSED_LIMIT = 1 << 30  # decompressed bytes read from a .ko.xz/.ko.zst/.ko.gz before giving up


def modinfo(vpath: str, facts: FileFacts | None, data: Buffer | memoryview | None) -> dict[str, str]:
    """``license=``, ``version=``, ``vermagic=`` of a kernel module: from the ``.modinfo`` section of an ELF
    ``.ko``, or by streaming a compressed ``.ko.xz`` / ``.ko.zst`` / ``.ko.gz`` for the NUL-separated fields."""
    if data is None:
        return {}
    head = window(data, 0, 6)
    if head[:4] == magic.ELF:
        return _modinfo_elf(data)
    return _modinfo_compressed(data, head)


def _modinfo_elf(data: Buffer | memoryview) -> dict[str, str]:
    from licscan.binary.elf import read_elf
    from licscan.binary.errors import FormatError

    try:
        view = read_elf(data, read_notes=False)
    except FormatError:
        return {}
    section = view.section(".modinfo")
    if section is None or not section.has_bytes:
        return {}
    return _parse_modinfo(window(data, section.offset, min(section.size, 1 << 16)))


def _parse_modinfo(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key in _MODINFO_KEYS and key.decode() not in out:
            out[key.decode()] = value.decode("utf-8", "replace")
    return out


_FIELD = re.compile(rb"\0(license|version|vermagic)=([^\0]{1,200})\0")


def _modinfo_compressed(data: Buffer | memoryview, head: bytes) -> dict[str, str]:
    import lzma
    import zlib

    feed: Callable[[bytes], bytes]
    packed = magic.compression(head)
    if packed == "xz":
        decomp = lzma.LZMADecompressor()
        feed = decomp.decompress
    elif packed == "zstd":
        import zstandard

        feed = zstandard.ZstdDecompressor().decompressobj().decompress
    elif packed == "gzip":
        feed = zlib.decompressobj(31).decompress
    else:
        return {}
    out: dict[str, str] = {}
    tail = b""
    total = 0
    step = 1 << 20
    for pos in range(0, len(data), step):
        try:
            chunk = feed(window(data, pos, step))
        except Exception:  # noqa: BLE001 -- a corrupt stream just yields no fields
            break
        total += len(chunk)
        buf = tail + chunk
        for m in _FIELD.finditer(buf):
            out.setdefault(m.group(1).decode(), m.group(2).decode("utf-8", "replace"))
        if ("license" in out and "version" in out) or total > _COMPRESSED_LIMIT:
            break
        tail = buf[-256:]
    return out
