"""The PE adapter: the only module that imports lief (style.md L3).

Windows images name the fatbin sections with the ELF names cut to eight characters (formats.md §2.4):
``.nv_fatbin`` -> ``.nv_fatb``, ``.nvFatBinSegment`` -> ``.nvFatBi`` (and ``__nv_relfatbin`` -> ``__nv_rel``).
Only headers are parsed here (no resources, relocations, signatures); section bytes are read by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import lief

from licscan.binary.errors import FormatError

IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x80


@dataclass(frozen=True)
class PeSection:
    name: str  # full name: the COFF string table name when the image uses one (MinGW long names)
    virtual_address: int
    offset: int  # PointerToRawData
    size: int  # SizeOfRawData
    characteristics: int

    @property
    def is_exec(self) -> bool:
        return bool(self.characteristics & IMAGE_SCN_MEM_EXECUTE)

    @property
    def has_bytes(self) -> bool:
        return self.size > 0 and not self.characteristics & IMAGE_SCN_CNT_UNINITIALIZED_DATA


@dataclass(frozen=True)
class PeView:
    machine: str
    image_base: int
    sections: tuple[PeSection, ...]
    imports: tuple[str, ...]  # imported DLL names, in table order


def read_pe(data) -> PeView:
    """Parse the headers of the PE image in ``data`` (bytes or a path)."""
    config = lief.PE.ParserConfig()
    config.parse_exports = False
    config.parse_reloc = False
    config.parse_rsrc = False
    config.parse_signature = False
    config.parse_exceptions = False
    lief.logging.disable()
    try:
        binary = lief.PE.parse(data if isinstance(data, str) else bytes(data), config)
    except Exception as error:  # lief raises a variety of types on hostile input
        raise FormatError(None, f"PE image does not parse: {error}") from None
    if binary is None:
        raise FormatError(None, "PE image does not parse")
    sections = []
    for section in binary.sections:
        name = section.fullname or section.name  # fullname: the COFF string-table name of a long section name
        if isinstance(name, bytes):  # lief 1.0 returns fullname as bytes
            name = name.decode("utf-8", "replace")
        sections.append(PeSection(name.rstrip("\0"), section.virtual_address, section.pointerto_raw_data,
                                  section.sizeof_raw_data, int(section.characteristics)))
    imports = tuple(entry.name for entry in binary.imports) if binary.has_imports else ()
    return PeView(str(binary.header.machine).split(".")[-1], binary.optional_header.imagebase, tuple(sections),
                  imports)
