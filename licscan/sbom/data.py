"""The SBOM's knowledge, kept as data under ``rules/``: the toolkit -> driver tables
(``rules/sbom/driver-requirements.yaml``) and the licence references (``rules/licenses/licenses.yaml``).

Loaded through :func:`licscan.knowledge.load_table` (YAML source, JSON snapshot while it is current).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from licscan.knowledge import load_table

DRIVER_TABLE = "sbom/driver-requirements.yaml"
LICENSE_TABLE = "licenses/licenses.yaml"


def _versioned(name: str) -> dict[str, Any]:
    data = load_table(name)
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError(f"rules/{name}: unsupported version")
    return data


@dataclass(frozen=True)
class DriverRow:
    update: str  # "GA", "1", "2", "GA2"
    linux: str | None
    windows: str | None


@dataclass(frozen=True)
class PurlTemplate:
    """The package URL of a synthetic package (pkg:<type>/<namespace>/<name>), its version filled in per use."""

    type: str
    namespace: str | None
    name: str


@dataclass(frozen=True)
class Identifiers:
    """``identifiers`` of the driver table: CPE 2.3 templates (``{version}`` filled in) and package URLs."""

    toolkit_cpe: str
    driver_cpe: str
    toolkit_purl: PurlTemplate
    driver_purl: PurlTemplate


@dataclass(frozen=True)
class DriverTables:
    minor_version_compat: dict[str, tuple[str | None, str | None, str]]  # major -> (linux, windows, note)
    toolkit_driver: dict[str, tuple[DriverRow, ...]]  # "13.0" -> rows, GA first
    ptx_jit: bool
    compression: dict[str, tuple[str | None, str | None, str]]  # "zstd" -> (linux, windows, note)
    driver_libraries: tuple[re.Pattern[str], ...]
    toolkit_versioned_components: frozenset[str]
    identifiers: Identifiers


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


@functools.cache
def driver_tables() -> DriverTables:
    data = _versioned(DRIVER_TABLE)
    return DriverTables(
        minor_version_compat={str(k): (_opt(v.get("linux")), _opt(v.get("windows")), str(v.get("note") or ""))
                              for k, v in data["minor_version_compat"].items()},
        toolkit_driver={str(k): tuple(DriverRow(str(r["update"]), _opt(r.get("linux")), _opt(r.get("windows")))
                                      for r in rows)
                        for k, rows in data["toolkit_driver"].items()},
        ptx_jit=bool(data.get("ptx_jit")),
        compression={str(k): (_opt(v.get("linux")), _opt(v.get("windows")), str(v.get("note") or ""))
                     for k, v in (data.get("compression") or {}).items()},
        driver_libraries=tuple(re.compile(p) for p in data["driver_libraries"]),
        toolkit_versioned_components=frozenset(str(c) for c in data["toolkit_versioned_components"]),
        identifiers=_identifiers(data["identifiers"]),
    )


def _identifiers(data: dict[str, Any]) -> Identifiers:
    def purl(spec: dict[str, Any]) -> PurlTemplate:
        return PurlTemplate(str(spec["type"]), _opt(spec.get("namespace")), str(spec["name"]))

    return Identifiers(str(data["toolkit_cpe"]), str(data["driver_cpe"]), purl(data["toolkit_purl"]),
                       purl(data["driver_purl"]))


@dataclass(frozen=True)
class LicenseInfo:
    """One LicenseRef the SBOM may use, with the extracted text it writes for it."""

    id: str
    name: str
    text: str
    urls: tuple[str, ...]
    comment: str
    date: str | None = None
    see: str | None = None  # for an alias: the licence it stands for


@dataclass(frozen=True)
class LicenseTables:
    licenses: dict[str, LicenseInfo]
    aliases: dict[str, LicenseInfo]
    declared_names: dict[str, str | None]

    def info(self, license_id: str) -> LicenseInfo | None:
        return self.licenses.get(license_id) or self.aliases.get(license_id) or _text_info(license_id)


def _text_info(license_id: str) -> LicenseInfo | None:
    """A LicenseRef of one licence text (rules/licenses/documents.yaml): its title, date and where licscan read a
    copy; the text itself is not reproduced."""
    from licscan.rules import documents

    text = documents.load().by_license(license_id)
    if text is None:
        return None
    doc = documents.load().document(text.document)
    copies = "; ".join(f"{c.kind} copy: {c.label}" + (f" (sha256 {c.sha256})" if c.sha256 else "") for c in text.copies)
    urls = tuple(dict.fromkeys(c.url for c in text.copies if c.url))
    return LicenseInfo(
        id=license_id, name=text.title,
        text=(f"{text.title}" + (f", text dated {text.date}" if text.date else ", undated text")
              + f"; {doc.name}. {copies}. full text not reproduced; how licscan reads it: docs/licenses.md."),
        urls=urls, comment="Project-defined id for one text version of the licence (docs/licenses.md).",
        date=text.date)


def _squash(text: str) -> str:
    return " ".join(str(text).split())


@functools.cache
def license_tables() -> LicenseTables:
    data = _versioned(LICENSE_TABLE)
    licenses = {}
    for key, spec in data["licenses"].items():
        licenses[str(key)] = LicenseInfo(
            id=str(key), name=_squash(spec["name"]), text=_squash(spec["text"]),
            urls=tuple(str(u) for u in spec.get("urls") or ()), comment=_squash(spec.get("comment") or ""),
            date=_opt(spec.get("date")))
    aliases = {}
    for key, spec in (data.get("aliases") or {}).items():
        target = licenses[str(spec["see"])]
        where = _squash(spec.get("where") or "")
        aliases[str(key)] = LicenseInfo(
            id=str(key), name=f"{key} (as declared; see {target.id})",
            text=(f"Licence identifier {key} as declared in {where}. It names NVIDIA's proprietary licence that "
                  f"licscan records as {target.id}: {target.text}"),
            urls=target.urls, comment=f"Identifier seen in the wild: {where}. Concluded licence: {target.id}.",
            date=target.date, see=target.id)
    declared = {str(k): _opt(v) for k, v in (data.get("declared_names") or {}).items()}
    return LicenseTables(licenses, aliases, declared)
