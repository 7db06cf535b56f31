"""The magic bytes licscan recognises content by (never by name): one table for every reader and the walker.

Sources: ELF ``e_ident`` (System V gABI, "EI_MAG0..3"), PE/COFF ("MS-DOS stub ... 'MZ'", signature "PE\\0\\0" at
the offset stored at 0x3c), ar ``!<arch>\\n`` (and GNU thin archives ``!<thin>\\n``), gzip RFC 1952 (ID1 ID2 =
1f 8b), bzip2 "BZh" + block size, xz "FD 37 7A 58 5A 00" (xz file format 1.0.4, 2.1.1.1), zstd frame magic
0xFD2FB528 little-endian (RFC 8878, 3.1.1), zip local header "PK\\3\\4" and end of central directory "PK\\5\\6"
(APPNOTE 4.3.7, 4.3.16).
"""

from __future__ import annotations

ELF = b"\x7fELF"
MZ = b"MZ"
PE_SIGNATURE = b"PE\0\0"
AR = b"!<arch>\n"
AR_THIN = b"!<thin>\n"
GZIP = b"\x1f\x8b"
BZIP2 = b"BZh"
XZ = b"\xfd7zXZ\x00"
ZSTD = b"\x28\xb5\x2f\xfd"
ZIP_LOCAL = b"PK\x03\x04"
ZIP_END = b"PK\x05\x06"


def compression(head: bytes) -> str | None:
    """``gzip``, ``bzip2``, ``xz`` or ``zstd`` for a stream starting with ``head``, else None."""
    if head[:2] == GZIP:
        return "gzip"
    if head[:3] == BZIP2 and head[3:4].isdigit() and head[3:4] != b"0":
        return "bzip2"
    if head[:6] == XZ:
        return "xz"
    if head[:4] == ZSTD:
        return "zstd"
    return None
