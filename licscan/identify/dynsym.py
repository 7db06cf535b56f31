"""The names of an ELF file's dynamic symbol table, or of a PE image's export and import tables, read for the
translation-layer ``symbols`` signals (:mod:`licscan.identify.signals`): pure functions over the file's bytes."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from licscan.binary import magic, pe, peinfo
from licscan.binary.buffer import Buffer
from licscan.binary.errors import FormatError
from licscan.binary.probe import Bytes, window


@dataclass(frozen=True)
class DynamicSymbols:
    """Names from an ELF file's ``.dynsym`` (only those a catalog regex may ask about)."""

    defined: frozenset[str]
    undefined: frozenset[str]


NO_SYMBOLS = DynamicSymbols(frozenset(), frozenset())
_STRTAB_LIMIT = 64 << 20  # bytes of .dynstr read at most; names past it are not kept
SHT_DYNSYM = 11
SHN_UNDEF = 0

# (sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize)
_Header = tuple[int, int, int, int, int, int, int, int, int, int]


def _section_headers(data: Bytes) -> tuple[bool, str, list[_Header]] | None:
    """(is 64-bit, struct byte order, the section headers) of an ELF file, or None when it is not one."""
    head = window(data, 0, 64)
    if len(head) < 52 or head[:4] != magic.ELF or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    is64 = head[4] == 2
    end = "<" if head[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", head, 0x28)
        shentsize, shnum = struct.unpack_from(end + "HH", head, 0x3A)
        sh_fmt = end + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(end + "I", head, 0x20)
        shentsize, shnum = struct.unpack_from(end + "HH", head, 0x2E)
        sh_fmt = end + "IIIIIIIIII"
    if not shoff or shentsize < struct.calcsize(sh_fmt) or shoff + shentsize * shnum > len(data):
        return None
    size = struct.calcsize(sh_fmt)
    headers: list[_Header] = [struct.unpack(sh_fmt, window(data, shoff + index * shentsize, size))
                              for index in range(shnum)]
    return is64, end, headers


def dynamic_symbols(data: Bytes, keep: re.Pattern[str] | None = None, limit: int = 2_000_000) -> DynamicSymbols:
    """The defined and undefined names of the ELF dynamic symbol table in ``data`` (bytes or mmap).

    Implements the ELF gABI "Symbol Table" (https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.symtab.html):
    ``Elf64_Sym {st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64}`` (24 bytes),
    ``Elf32_Sym {st_name, st_value, st_size u32, st_info, st_other u8, st_shndx u16}`` (16 bytes); a symbol with
    ``st_shndx == SHN_UNDEF`` is imported; ``sh_link`` of SHT_DYNSYM is the section index of its string table.
    Names are kept only when ``keep`` matches them. Malformed tables give what could be read, never an error.
    """
    read = _section_headers(data)
    if read is None:
        return NO_SYMBOLS
    is64, end, headers = read
    ent = 24 if is64 else 16
    size = len(data)
    defined: set[str] = set()
    undefined: set[str] = set()
    for sh in headers:
        if sh[1] != SHT_DYNSYM or sh[6] >= len(headers):
            continue
        strtab = headers[sh[6]]
        str_off, str_size = strtab[4], strtab[5]
        if sh[4] + sh[5] > size or str_off + str_size > size:
            continue
        names = window(data, str_off, min(str_size, _STRTAB_LIMIT))
        count = min(sh[5] // ent, limit)
        table = window(data, sh[4], count * ent)
        for i in range(1, count):  # entry 0 is the null symbol
            if is64:
                st_name, _info, _other, shndx = struct.unpack_from(end + "IBBH", table, i * ent)
            else:
                st_name, = struct.unpack_from(end + "I", table, i * ent)
                shndx, = struct.unpack_from(end + "H", table, i * ent + 14)
            if st_name >= len(names):
                continue
            stop = names.find(b"\0", st_name)
            name = names[st_name: stop if stop >= 0 else len(names)].decode("latin-1")
            if keep is not None and not keep.search(name):
                continue
            (undefined if shndx == SHN_UNDEF else defined).add(name)
    return DynamicSymbols(frozenset(defined), frozenset(undefined))


def pe_symbols(data: Buffer, keep: re.Pattern[str] | None = None, limit: int = 2_000_000) -> DynamicSymbols:
    """A PE image's counterpart of :func:`dynamic_symbols`: the names it exports are its defined symbols, the
    functions it imports by name (from any DLL) its undefined ones (licscan/binary/peinfo.py). Names are kept only
    when ``keep`` matches them; an image whose headers do not parse has none."""
    try:
        view = pe.read_pe(data)
    except FormatError:
        return NO_SYMBOLS
    defined = peinfo.export_names(data, view, limit=limit)
    undefined = peinfo.imported_names(data, view, limit=limit)
    return DynamicSymbols(frozenset(n for n in defined if keep is None or keep.search(n)),
                          frozenset(n for n in undefined if keep is None or keep.search(n)))


__all__ = ["NO_SYMBOLS", "DynamicSymbols", "dynamic_symbols", "pe_symbols"]
