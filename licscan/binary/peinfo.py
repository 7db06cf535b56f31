"""What a PE image says of itself, read from its headers' data directories (licscan/binary/pe.py reads the headers):
the DLL name and the function names of its export directory, the function names it imports, and the strings of its
version resource. Each reads a few pages, never the whole image; a malformed table gives what could be read (or
None), never an error.

Layouts, from Microsoft's "PE Format" specification (https://learn.microsoft.com/windows/win32/debug/pe-format):

* "The .edata Section (Image Only)", data directory index 0: the Export Directory Table, 40 bytes {Export Flags,
  Time/Date Stamp, Major Version u16, Minor Version u16, Name RVA ("The address of the ASCII string that contains
  the name of the DLL"), Ordinal Base, Address Table Entries, Number of Name Pointers, Export Address Table RVA,
  Name Pointer RVA, Ordinal Table RVA}.
* "The .rsrc Section", data directory index 2: a tree of Resource Directory Tables (16 bytes, then Number of Name
  Entries and Number of ID Entries entries of 8 bytes {Name Offset or Integer ID, Data Entry Offset or Subdirectory
  Offset}; "High bit 1. The lower 31 bits are the address of another resource directory table"; offsets from the
  start of the resource section); levels type, name, language; a leaf is a Resource Data Entry {Data RVA, Size,
  Codepage, Reserved}. The version resource is type 16 (RT_VERSION). Its layout, from Microsoft's "VS_VERSIONINFO
  structure" (https://learn.microsoft.com/windows/win32/menurc/vs-versioninfo): every block is {wLength u16,
  wValueLength u16, wType u16 (1 text, 0 binary), szKey (UTF-16, NUL-terminated), padding to 32 bits, Value,
  padding to 32 bits, Children}; VS_VERSION_INFO holds StringFileInfo, which holds one StringTable per language,
  which holds String blocks (szKey "OriginalFilename", "InternalName", ... and a UTF-16 value).
* "Import Lookup Table": "A 32-bit number for PE32 and a 64-bit number for PE32+"; bit 31 / 63 "Ordinal/Name
  Flag": set, import by ordinal; clear, bits 30-0 are the RVA of a Hint/Name Table entry {Hint u16, Name ASCII}.
"""

from __future__ import annotations

import struct
from collections import deque

from licscan.binary.buffer import Buffer
from licscan.binary.pe import IMPORT_ENTRY, MAX_IMPORTS, PeView, Window, rva_to_offset
from licscan.model import PeVersionInfo

_EXPORT = struct.Struct("<IIHHIIIIIII")
_RESOURCE_DIRECTORY = struct.Struct("<IIHHHH")
_RESOURCE_ENTRY = struct.Struct("<II")
_RESOURCE_DATA = struct.Struct("<IIII")
_BLOCK = struct.Struct("<HHH")
RT_VERSION = 16
VERSION_LIMIT = 64 << 10  # bytes of a version resource read at most (NVIDIA's: under 2 KiB)
MAX_RESOURCE_ENTRIES = 4096  # entries of one resource directory looked at
MAX_VERSION_BLOCKS = 256  # blocks of a version resource looked at
#: szKey of a String block -> the PeVersionInfo field it fills
VERSION_KEYS = {"OriginalFilename": "original_filename", "InternalName": "internal_name",
                "FileDescription": "file_description", "ProductName": "product_name", "CompanyName": "company_name",
                "FileVersion": "file_version", "ProductVersion": "product_version"}


def export_name(buf: Buffer, view: PeView, start: int = 0, size: int | None = None) -> str | None:
    """The DLL name of the image's export directory (the name it was linked as: ``cudart64_12.dll`` whatever the
    file is called now), or None: no export directory, or one that does not parse."""
    if len(view.directories) < 1 or not view.directories[0][0]:
        return None
    window = Window(buf, start, len(buf) - start if size is None else size)
    at = rva_to_offset(view.sections, view.directories[0][0])
    if at is None or at + _EXPORT.size > window.size:
        return None
    name_rva = _EXPORT.unpack(window.read(at, _EXPORT.size))[4]
    name_at = rva_to_offset(view.sections, name_rva)
    name = window.cstring(name_at) if name_at is not None else None
    return name if name is not None and name.isprintable() else None


def export_names(buf: Buffer, view: PeView, start: int = 0, size: int | None = None,
                 limit: int = MAX_IMPORTS) -> tuple[str, ...]:
    """The names of the functions the image exports (its Export Name Pointer Table, at most ``limit``); what could
    be read of a malformed table, never an error."""
    window = Window(buf, start, len(buf) - start if size is None else size)
    at = rva_to_offset(view.sections, view.directories[0][0]) if view.directories and view.directories[0][0] else None
    if at is None or at + _EXPORT.size > window.size:
        return ()
    fields = _EXPORT.unpack(window.read(at, _EXPORT.size))
    count, table_rva = min(fields[7], limit), fields[9]
    table_at = rva_to_offset(view.sections, table_rva)
    if table_at is None:
        return ()
    raw = window.read(table_at, 4 * count)
    return _names_at(window, view, struct.unpack(f"<{len(raw) // 4}I", raw[: len(raw) // 4 * 4]), 0)


def imported_names(buf: Buffer, view: PeView, start: int = 0, size: int | None = None,
                   limit: int = MAX_IMPORTS) -> tuple[str, ...]:
    """The names of the functions the image imports by name, from every DLL of its import directory (the "Import
    Lookup Table" of each entry, else its Import Address Table: 32-bit entries in PE32, 64-bit in PE32+; bit 31 /
    63 set: "Import by ordinal"; otherwise a "Hint/Name Table RVA": a u16 hint, then the name); at most ``limit``."""
    window = Window(buf, start, len(buf) - start if size is None else size)
    at = rva_to_offset(view.sections, view.directories[1][0]) if len(view.directories) > 1 and view.directories[1][0] \
        else None
    if at is None:
        return ()
    width, fmt = (8, "<Q") if view.pe32_plus else (4, "<I")
    ordinal = 1 << (8 * width - 1)
    names: list[str] = []
    for n in range(MAX_IMPORTS):
        entry = window.read(at + n * IMPORT_ENTRY.size, IMPORT_ENTRY.size)
        if len(entry) < IMPORT_ENTRY.size or not any(entry):
            break
        lookup, *_rest, address = IMPORT_ENTRY.unpack(entry)
        table_at = rva_to_offset(view.sections, lookup or address)
        if table_at is None:
            continue
        raw = window.read(table_at, width * (limit - len(names)))
        values = [struct.unpack_from(fmt, raw, i)[0] for i in range(0, len(raw) - width + 1, width)]
        values = values[: values.index(0)] if 0 in values else values
        names.extend(_names_at(window, view, [v for v in values if not v & ordinal], 2))
        if len(names) >= limit:
            break
    return tuple(names[:limit])


def _names_at(window: Window, view: PeView, rvas: list[int] | tuple[int, ...], skip: int) -> tuple[str, ...]:
    """The printable NUL-terminated names at ``rvas`` (each past ``skip`` bytes: a Hint/Name entry's hint)."""
    out = []
    for rva in rvas:
        at = rva_to_offset(view.sections, rva & 0x7FFFFFFF)
        name = window.cstring(at + skip) if at is not None else None
        if name is not None and name.isprintable():
            out.append(name)
    return tuple(out)


def version_info(buf: Buffer, view: PeView, start: int = 0, size: int | None = None) -> PeVersionInfo | None:
    """The String blocks of the image's version resource (the first of each key, of the first StringTable that has
    it), or None: no version resource, or one that does not parse. Reads the resource directories on the way to it
    and at most VERSION_LIMIT bytes of it."""
    if len(view.directories) < 3 or not view.directories[2][0]:
        return None
    window = Window(buf, start, len(buf) - start if size is None else size)
    base = rva_to_offset(view.sections, view.directories[2][0])
    if base is None:
        return None
    leaf = base
    for level in range(3):  # type, name, language: the first entry at each level, the type RT_VERSION
        entry = _resource_entry(window, leaf, RT_VERSION if level == 0 else None)
        if entry is None:
            return None
        is_directory, offset = bool(entry & 0x80000000), entry & 0x7FFFFFFF
        if is_directory != (level < 2):
            return None
        leaf = base + offset
    if leaf + _RESOURCE_DATA.size > window.size:
        return None
    data_rva, length, _codepage, _reserved = _RESOURCE_DATA.unpack(window.read(leaf, _RESOURCE_DATA.size))
    data_at = rva_to_offset(view.sections, data_rva)
    if data_at is None:
        return None
    strings = _version_strings(window.read(data_at, min(length, VERSION_LIMIT)))
    return PeVersionInfo(**strings) if strings else None


def _resource_entry(window: Window, table: int, wanted: int | None) -> int | None:
    """The Data Entry / Subdirectory Offset of the first entry of the resource directory at ``table`` (the one whose
    Integer ID is ``wanted``, when given)."""
    if table + _RESOURCE_DIRECTORY.size > window.size:
        return None
    *_head, named, ids = _RESOURCE_DIRECTORY.unpack(window.read(table, _RESOURCE_DIRECTORY.size))
    count = min(named + ids, MAX_RESOURCE_ENTRIES)
    raw = window.read(table + _RESOURCE_DIRECTORY.size, count * _RESOURCE_ENTRY.size)
    for n in range(len(raw) // _RESOURCE_ENTRY.size):
        ident, offset = _RESOURCE_ENTRY.unpack_from(raw, n * _RESOURCE_ENTRY.size)
        if wanted is None or (n >= named and ident == wanted):  # ID entries follow the named ones
            return int(offset)
    return None


def _version_strings(data: bytes) -> dict[str, str]:
    """The String blocks of a VS_VERSIONINFO resource, by PeVersionInfo field."""
    out: dict[str, str] = {}
    queue = deque([(0, len(data), 0)])  # (start, end, depth) of the blocks to read, in file order; 3: String blocks
    seen = 0
    while queue and seen < MAX_VERSION_BLOCKS:
        at, end, depth = queue.popleft()
        while at + _BLOCK.size <= end and seen < MAX_VERSION_BLOCKS:
            seen += 1
            length, value_length, _kind = _BLOCK.unpack_from(data, at)
            if length < _BLOCK.size or at + length > end:
                break
            key, value_at = _utf16z(data, at + _BLOCK.size, at + length)
            value_at = (value_at + 3) & ~3
            if depth == 0 and key == "VS_VERSION_INFO":  # its Value is the 52-byte VS_FIXEDFILEINFO
                queue.append(((value_at + value_length + 3) & ~3, at + length, 1))
            elif depth == 1 and key == "StringFileInfo":
                queue.append((value_at, at + length, 2))
            elif depth == 2:  # a StringTable, keyed by its language and code page
                queue.append((value_at, at + length, 3))
            elif depth == 3 and key in VERSION_KEYS:
                value = _utf16z(data, value_at, at + length)[0]
                if value and value.isprintable():
                    out.setdefault(VERSION_KEYS[key], value)
            at = (at + length + 3) & ~3
    return out


def _utf16z(data: bytes, at: int, end: int) -> tuple[str, int]:
    """The NUL-terminated UTF-16 string at ``at`` (not past ``end``), and the offset after its NUL."""
    n = at
    while True:
        n = data.find(b"\0\0", n, end)
        if n < 0:
            n = end
            break
        if (n - at) % 2 == 0:
            break
        n += 1
    return data[at:n].decode("utf-16-le", "replace"), n + 2
