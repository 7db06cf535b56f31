"""Which archive a byte string is, by its magic bytes, never by its name (docs/architecture.md "identify").

- zip: local file header ``PK\\x03\\x04``, or an empty archive's end record ``PK\\x05\\x06`` (wheel, egg, jar, .conda)
- tar: POSIX ``ustar\\0`` / GNU ``ustar  \\0`` magic at offset 257, or a v7 header whose checksum (the sum of the
  512 header bytes with the 8 checksum bytes at 148 counted as spaces) matches the octal field at 148
- gzip ``1f 8b``, bzip2 ``BZh`` + block size digit, xz ``FD 37 7A 58 5A 00``, zstd frame ``28 B5 2F FD``
- ar ``!<arch>\\n`` (a Debian package when its first member is ``debian-binary``)
"""

from __future__ import annotations

import enum

from licscan.binary import magic

HEAD_SIZE = 512


class ArchiveKind(enum.Enum):
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    ZSTD = "zstd"
    AR = "ar"


COMPRESSED = (ArchiveKind.GZIP, ArchiveKind.BZIP2, ArchiveKind.XZ, ArchiveKind.ZSTD)


def sniff(head: bytes) -> ArchiveKind | None:
    """The archive kind of content starting with ``head`` (give :data:`HEAD_SIZE` bytes when available)."""
    if head[:4] == magic.ZIP_LOCAL or (head[:4] == magic.ZIP_END and len(head) >= 22):
        return ArchiveKind.ZIP
    packed = magic.compression(head)
    if packed is not None:
        return ArchiveKind(packed)
    if head[:8] == magic.AR:
        return ArchiveKind.AR
    if is_tar_header(head):
        return ArchiveKind.TAR
    return None


def is_tar_header(head: bytes) -> bool:
    """A ustar magic at 257, or a plain (v7) tar header with a valid checksum."""
    if len(head) < 512:
        return False
    if head[257:263] in (b"ustar\x00", b"ustar "):
        return _checksum_ok(head)
    return head[0] != 0 and _checksum_ok(head)


def _checksum_ok(head: bytes) -> bool:
    field = head[148:156].split(b"\0", 1)[0].strip()
    if field.translate(None, _OCTAL):  # a byte int(field, 8) never accepts: not a header (no exception raised:
        return False  # most members sniffed are text, and a raised ValueError cost more than the sum below)
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    counted = head[:148] + head[156:512]
    unsigned = sum(counted) + 8 * 32
    # the signed sum counts each byte over 127 as b - 256: 256 less for each of them
    signed = unsigned - 256 * (len(counted) - len(counted.translate(None, _HIGH)))
    return stored in (unsigned, signed)


_HIGH = bytes(range(128, 256))
_OCTAL = b"01234567+-_oO \t\n\r\x0b\x0c"  # what int(field, 8) may accept: digits, sign, separators, prefix, spaces


def archive_kind(head: bytes) -> ArchiveKind | None:
    """The kind of archive the walker opens, by the content's first bytes; None for anything else (a static
    library is an ``ar`` archive too: licscan.binary reads its members; a .deb's first member is ``debian-binary``)."""
    kind = sniff(head)
    if kind is ArchiveKind.AR and head[8:24].rstrip(b" ").rstrip(b"/") != b"debian-binary":
        return None
    return kind
