"""Identify a file by its content (magic bytes, licscan/binary/magic.py), never by its name."""

from __future__ import annotations

import re
import struct

from licscan.binary import fatbin, magic, pe, ptx
from licscan.binary.elf import EM_AMDGPU, EM_CUDA
from licscan.model import FileFormat

SNIFF_SIZE = 64 * 1024  # enough for the PE header and for the comment block before a PTX ".version"


def identify(head: bytes) -> FileFormat:
    """The format of a file whose first bytes are ``head`` (pass at least :data:`SNIFF_SIZE` when available)."""
    if head[:4] == magic.ELF:
        if len(head) >= 20:
            little = head[5] == 1
            (machine,) = struct.unpack_from("<H" if little else ">H", head, 18)
            if machine == EM_CUDA:
                return FileFormat.CUBIN
            if machine == EM_AMDGPU:
                return FileFormat.HSACO
        return FileFormat.ELF
    if head[:8] in (magic.AR, magic.AR_THIN):
        return FileFormat.AR
    if head[:4] == fatbin.FATBIN_MAGIC_BYTES:
        return FileFormat.FATBIN
    if head[:2] == magic.MZ and len(head) >= 0x40:
        (pe_offset,) = struct.unpack_from("<I", head, 0x3C)
        if pe_offset + 4 <= len(head) and head[pe_offset : pe_offset + 4] == magic.PE_SIGNATURE:
            return FileFormat.PE
    if pe.coff_object_header(head) is not None:
        return FileFormat.COFF
    if ptx.looks_like_ptx(head) and _is_text(head):  # the cheaper test first: most texts fail it
        return FileFormat.PTX
    return FileFormat.UNKNOWN


_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")  # control bytes other than tab, newlines, form feed, ESC


def _is_text(head: bytes) -> bool:
    sample = head[:4096].split(b"\0", 1)[0]
    return bool(sample) and _CONTROL.search(sample) is None
