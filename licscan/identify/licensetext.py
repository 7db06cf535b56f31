"""Which licence text a file is (rules/licenses/documents.yaml, docs/licenses.md): by the hash of its normalised text where a real copy was
hashed, else by the dated phrases that tell the texts apart. The texts themselves are not stored (rules/catalog/
license-texts.yaml holds hashes and phrases only).

Normalisation: UTF-8 (errors replaced), every whitespace run collapsed to one space, stripped. Phrases are
compared with the normalised text lower-cased, so EULA.txt wrapping, Debian ``copyright`` continuation lines and
HTML-to-text copies all match.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from licscan.binary import magic
from licscan.binary.buffer import Buffer
from licscan.binary.probe import window
from licscan.knowledge import catalog_table
from licscan.model import LicenseTextMatch
from licscan.vpath import basename


@dataclass(frozen=True)
class _Known:
    """A real copy of a document that was hashed, and where it was seen."""

    sha256: str | None
    normalized_sha256: str | None
    seen_in: str | None

    @staticmethod
    def of(data: Mapping[str, Any]) -> _Known:
        return _Known(data.get("sha256"), data.get("normalized_sha256"), data.get("seen_in"))


@dataclass(frozen=True)
class _Doc:
    id: str
    title: str
    date: str | None
    license: str | None
    all_of: tuple[str, ...]
    none_of: tuple[str, ...]
    translation_clause: bool | None
    variants: tuple[tuple[str, tuple[str, ...]], ...]
    known: tuple[_Known, ...]
    file_names: re.Pattern[str] | None = None
    any_of: tuple[str, ...] = ()
    vendor: str = ""

    def named(self, base: str, helpers: re.Pattern[str]) -> bool:
        """Whether a file of this base name can be this document (sample helpers only the helper documents)."""
        if self.file_names is not None:
            return bool(self.file_names.fullmatch(base))
        return not helpers.fullmatch(base)


@dataclass(frozen=True)
class _Table:
    file_names: re.Pattern[str]
    max_size: int
    clause: str
    documents: tuple[_Doc, ...]


@functools.cache
def _table() -> _Table:
    data = catalog_table("license-texts")
    docs = tuple(
        _Doc(k, v["title"], v.get("date"), v.get("license"), tuple(p.lower() for p in v.get("all_of", ())),
             tuple(p.lower() for p in v.get("none_of", ())), v.get("translation_clause"),
             tuple((x["id"], tuple(p.lower() for p in x["all_of"])) for x in v.get("variants", ())),
             tuple(_Known.of(k) for k in v.get("known", ())),
             re.compile(v["file_names"], re.IGNORECASE) if v.get("file_names") else None,
             tuple(p.lower() for p in v.get("any_of", ())), v.get("vendor", ""))
        for k, v in data["documents"].items())
    return _Table(re.compile(data["file_names"], re.IGNORECASE), int(data["max_size"]),
                  data["translation_clause"].lower(), docs)


def normalize(text: bytes) -> str:
    return " ".join(text.decode("utf-8", "replace").split())


def is_candidate(vpath: str, size: int | None = None) -> bool:
    """Whether ``vpath`` is named like a licence file worth reading (and small enough)."""
    table = _table()
    return bool(table.file_names.fullmatch(basename(vpath))) and (size is None or size <= table.max_size)


def identify_license_text(vpath: str, data: Buffer | None) -> LicenseTextMatch | None:
    """The NVIDIA (or known) licence text held by ``data`` (bytes or mmap), or None. Files not named like a
    licence file, or larger than the catalog's ``max_size``, are not read."""
    table = _table()
    if data is None or not is_candidate(vpath, len(data)):
        return None
    raw = window(data, 0, table.max_size + 1)
    if raw[:2] == magic.GZIP:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as handle:
                raw = handle.read(table.max_size + 1)
        except (OSError, EOFError):
            return None
    if len(raw) > table.max_size:
        return None
    digest = hashlib.sha256(raw).hexdigest()
    text = normalize(raw)
    ndigest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    base = basename(vpath)
    helpers = re.compile(r"helper_.*", re.IGNORECASE)
    documents = tuple(doc for doc in table.documents if doc.named(base, helpers))
    for doc in documents:
        for known in doc.known:
            if known.sha256 == digest:
                return _match(doc, digest, ndigest, "sha256", text, known.seen_in)
            if known.normalized_sha256 == ndigest:
                return _match(doc, digest, ndigest, "normalized-sha256", text, known.seen_in)
    lower = text.lower()
    for doc in documents:
        if (doc.all_of or doc.any_of) and all(p in lower for p in doc.all_of) \
                and not any(p in lower for p in doc.none_of) and (not doc.any_of or any(p in lower for p in doc.any_of)):
            return _match(doc, digest, ndigest, "phrases", text, None)
    return None


def _match(doc: _Doc, digest: str, ndigest: str, method: str, text: str, seen_in: str | None) -> LicenseTextMatch:
    lower = text.lower()
    clause_present = _table().clause in lower
    variant = next((vid for vid, phrases in doc.variants if all(p in lower for p in phrases)), None)
    evidence = [f"{method}: {doc.title}" + (f" ({doc.date})" if doc.date else "")]
    evidence.extend(f"phrase {p!r}" for p in doc.all_of)
    if seen_in:
        evidence.append(f"identical to the copy in {seen_in}")
    if doc.translation_clause is not None and clause_present != doc.translation_clause:
        evidence.append("translation clause presence differs from the catalogued text")
    clause = doc.translation_clause if doc.translation_clause is not None else (True if clause_present else None)
    return LicenseTextMatch(doc.id, doc.title, doc.date, doc.license, digest, ndigest, method, clause, variant,
                            seen_in, tuple(evidence), doc.vendor)


__all__ = ["LicenseTextMatch", "identify_license_text", "is_candidate", "normalize"]
