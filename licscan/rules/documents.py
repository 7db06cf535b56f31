"""The licence documents that govern NVIDIA parts (rules/licenses/documents.yaml), as frozen dataclasses.

Per document: the catalog licence its parts are named under, and which release of a part picks its text (the
toolkit's, the driver's, the part's own); per text version: title, date, the licence-text catalog ids that identify
a file as it, copies (primary: a registry package; secondary: a URL), the quoted clauses with their sections; and the
tables that map a release to the text NVIDIA published with it (``basis`` primary or inferred). How each clause is
read: docs/licenses.md. Adding an NVIDIA licence is a change of the data only (tests/test_documents_data.py).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import SpecifierSet

from licscan.model import ToolkitRange
from licscan.rules.versions import Tri, contains, contains_releases, parse_specifier

TABLE = "licenses/documents.yaml"
PRIMARY, INFERRED = "primary", "inferred"
PLATFORMS = ("linux", "windows")


class TextsBy(enum.Enum):
    """Which release of a part picks its text from the document's release table (documents.yaml: the table's key)."""

    TOOLKIT = "toolkit_texts"  # the CUDA toolkit release of the part (device code: the toolkit that built it)
    DRIVER = "driver_texts"  # the driver release: a driver part's own version
    OWN = "own_texts"  # the part's own release (an SLA library, SCALE)


@dataclass(frozen=True)
class Copy:
    kind: str  # primary | secondary
    registry: str | None
    package: str | None
    version: str | None
    member: str | None
    format: str  # text | debian-copyright
    sha256: str | None
    url: str | None
    suite: str | None = None
    note: str | None = None
    platform: str | None = None  # a wheel's platform tag when the copy is in one platform's wheel only (win_amd64)

    @property
    def label(self) -> str:
        if self.registry == "pypi":
            where = f" ({self.platform})" if self.platform else ""
            return f"PyPI {self.package} {self.version}{where}, {self.member}"
        if self.registry == "debian":
            return f"Debian {self.suite} {self.package} {self.version}, /{self.member}"
        return self.url or f"{self.package} {self.version} {self.member}"


@dataclass(frozen=True)
class Clause:
    id: str
    section: str
    quote: str


@dataclass(frozen=True)
class Text:
    document: str
    id: str
    title: str
    date: str | None
    examined: bool
    license: str
    copies: tuple[Copy, ...]
    phrases: tuple[str, ...]
    clauses: dict[str, Clause]
    absent: frozenset[str]
    license_texts: tuple[str, ...] = ()  # the license-texts.yaml ids that identify a file as this text

    @property
    def primary(self) -> bool:
        return any(c.kind == "primary" for c in self.copies)

    @property
    def label(self) -> str:
        return self.title

    def has(self, clause: str) -> Tri:
        """Whether this text has ``clause``: TRUE/FALSE when the text was examined, else UNKNOWN."""
        if clause in self.clauses:
            return Tri.TRUE
        if self.examined:
            return Tri.FALSE
        return Tri.UNKNOWN


@dataclass(frozen=True)
class Mapping:
    versions: SpecifierSet
    spec: str
    text: str
    basis: str  # primary | inferred
    source: str
    platform: str | None = None  # "linux" or "windows": the row holds for that platform's parts only


@dataclass(frozen=True)
class Unmapped:
    """A release range no table row maps to a text (documents.yaml ``unmapped_texts``): what a reviewer of a part
    of such a release is told. ``likely`` is never applied; it only names the text the part probably falls under."""

    versions: SpecifierSet
    spec: str
    likely: str | None  # text id: the text that probably governs (e.g. CUDA 13.2 on: "2026-01-26"); None: no guess
    why: str  # why it is probably that text ("" when ``likely`` is None)
    unread: str  # why no text is applied: what was tried and not read
    read: str  # what the reviewer must read instead


@dataclass(frozen=True)
class Document:
    id: str
    name: str
    kind: str
    spdx: str | None
    governs: str
    texts: dict[str, Text]
    releases: tuple[Mapping, ...]  # the release table: toolkit_texts, driver_texts or own_texts (``texts_by``)
    #: component_texts: catalog component -> its own release -> text table, for a part numbered on its own that
    #: NVIDIA ships under this document's text (NVSHMEM 3.x wheels carry the CUDA EULA's 2018 License.txt).
    components: dict[str, tuple[Mapping, ...]] = field(default_factory=dict)
    unmapped: tuple[Unmapped, ...] = ()  # unmapped_texts: ranges no row of ``releases`` maps, explained
    #: The LicenseRef the catalog names this document's parts under (the SBOM's licence of such a part whose text
    #: is unknown); None: parts come to the document otherwise (by name, kind or SPDX licence: governing.document_of).
    license: str | None = None
    texts_by: TextsBy = TextsBy.TOOLKIT  # which release of a part ``releases`` is keyed by

    def text(self, text_id: str) -> Text:
        return self.texts[text_id]

    def newest(self) -> Text | None:
        dated = [(t.date, t) for t in self.texts.values() if t.date]
        if dated:
            return max(dated, key=lambda pair: pair[0])[1]
        return list(self.texts.values())[-1] if self.texts else None  # undated: listed oldest first

    def for_release(self, rng: ToolkitRange, platform: str | None = None,
                    component: str | None = None) -> tuple[tuple[Text, str, str], ...] | None:
        """The text(s) published with a release range: ((text, basis, source), ...) when every release the range
        may hold is mapped, else None (unknown). Several entries mean the range spans texts. ``platform`` ("linux",
        "windows" or None: not known) leaves out the rows of the other platform. ``component``: a component with a
        table of its own (``components``), whose ``rng`` is its own release, not a toolkit's."""
        out: dict[str, tuple[Text, str, str]] = {}
        covered = Tri.FALSE
        table = self.components[component] if component is not None else self.releases
        rows = tuple(r for r in table if r.platform is None or platform is None or r.platform == platform)
        for row in rows:
            truth = contains(row.versions, rng)
            if truth is Tri.FALSE:
                continue
            text = self.texts[row.text]
            previous = out.get(text.id)
            basis = row.basis if previous is None or previous[1] == row.basis else INFERRED
            out[text.id] = (text, basis, row.source if previous is None else previous[2])
            if truth is Tri.TRUE:
                covered = Tri.TRUE
        if not out:
            return None
        if covered is not Tri.TRUE and not _covers(rows, rng):
            return None
        return tuple(out.values())


    def maps_none(self, rng: ToolkitRange, platform: str | None = None, component: str | None = None) -> bool:
        """Whether no row of the table (or of ``component``'s table) may hold a release of ``rng``: a known release
        the table leaves out (CUDA 13.5, 11.4), not one it only partly covers (13.x)."""
        table = self.components[component] if component is not None else self.releases
        rows = (r for r in table if r.platform is None or platform is None or r.platform == platform)
        return not rng.is_unknown and all(contains(r.versions, rng) is Tri.FALSE for r in rows)

    def unmapped_row(self, rng: ToolkitRange) -> Unmapped | None:
        """The ``unmapped_texts`` row that holds every release ``rng`` may be (CUDA 13.5.37: ">=13.2"), else None."""
        if rng.is_unknown:
            return None
        return next((row for row in self.unmapped if contains(row.versions, rng) is Tri.TRUE), None)


def _covers(rows: tuple[Mapping, ...], rng: ToolkitRange) -> bool:
    """Whether the union of the rows' ranges certainly holds ``rng`` (checked at its ends)."""
    if rng.is_unknown:
        return False
    return all(any(contains_releases(row.versions, end, end) is Tri.TRUE for row in rows) for end in rng.releases)


@dataclass(frozen=True)
class Published:
    """A file NVIDIA publishes whose bytes differ from the digest its own wheel's RECORD states (``as_published``):
    those bytes are NVIDIA's as published, not a modification (licscan/rules/modified.py)."""

    package: str
    version: str
    platform: str | None
    member: str
    sha256: str  # of the bytes NVIDIA publishes
    record_sha256: str  # what the wheel's RECORD states


@dataclass(frozen=True)
class Documents:
    documents: dict[str, Document]
    as_published: tuple[Published, ...] = ()
    #: Catalog licence id -> document (each document's ``license``); licence-text catalog id -> its text.
    by_catalog_license: dict[str, Document] = field(default_factory=dict)
    by_license_text: dict[str, Text] = field(default_factory=dict)

    @property
    def published(self) -> frozenset[str]:
        """The sha256 digests of :attr:`as_published`."""
        return frozenset(p.sha256 for p in self.as_published)

    def document(self, doc_id: str) -> Document:
        return self.documents[doc_id]

    def text(self, doc_id: str, text_id: str) -> Text:
        return self.documents[doc_id].texts[text_id]

    def all_texts(self) -> list[Text]:
        return [t for d in self.documents.values() for t in d.texts.values()]

    def by_license(self, license_id: str) -> Text | None:
        return next((t for t in self.all_texts() if t.license == license_id), None)


def _copy(data: dict[str, Any]) -> Copy:
    return Copy(str(data["kind"]), data.get("registry"), data.get("package"),
                None if data.get("version") is None else str(data["version"]), data.get("member"),
                data.get("format", "text"), data.get("sha256"), data.get("url"), data.get("suite"), data.get("note"),
                data.get("platform"))


def _rows(where: str, rows: Any, texts: dict[str, Text]) -> tuple[Mapping, ...]:
    """A release -> text table (toolkit_texts, driver_texts, one component's component_texts), checked."""
    out = tuple(Mapping(parse_specifier(r["versions"]), str(r["versions"]), str(r["text"]), str(r["basis"]),
                        str(r["source"]), r.get("platform")) for r in rows)
    for row in out:
        if row.text not in texts:
            raise ValueError(f"{TABLE}: {where} maps {row.spec} to unknown text {row.text!r}")
        if row.platform not in (None, *PLATFORMS):
            raise ValueError(f"{TABLE}: {where} maps {row.spec} for unknown platform {row.platform!r}")
    return out


@functools.lru_cache(maxsize=1)
def load() -> Documents:
    """The built-in table (rules/licenses/documents.yaml, through its JSON snapshot)."""
    from licscan.knowledge import load_table

    return parse(load_table(TABLE))


def read(path: str) -> Documents:
    """A documents table from a YAML file of documents.yaml's schema (a test's copy with a licence added)."""
    from licscan.knowledge import _parse_yaml

    with open(path, encoding="utf-8") as handle:
        return parse(_parse_yaml(handle.read()))


def parse(data: dict[str, Any]) -> Documents:
    """The documents of a table's data, checked: a release table names texts of its document, one release table
    per document, a catalog licence id names one document and a licence-text catalog id one text."""
    documents = {}
    for doc_id, doc in data["documents"].items():
        texts = {}
        for text_id, text in (doc.get("texts") or {}).items():
            clauses = {cid: Clause(cid, str(c["section"]), " ".join(str(c["quote"]).split()))
                       for cid, c in (text.get("clauses") or {}).items()}
            texts[str(text_id)] = Text(doc_id, str(text_id), " ".join(str(text["title"]).split()),
                                       None if text.get("date") is None else str(text["date"]),
                                       bool(text["examined"]), str(text["license"]),
                                       tuple(_copy(c) for c in text.get("copies") or ()),
                                       tuple(text.get("phrases") or ()), clauses, frozenset(text.get("absent") or ()),
                                       tuple(str(t) for t in text.get("license_texts") or ()))
        tables = [by for by in TextsBy if by.value in doc]
        if len(tables) > 1:
            raise ValueError(f"{TABLE}: {doc_id} has {' and '.join(t.value for t in tables)}: one release table only")
        texts_by = tables[0] if tables else TextsBy.TOOLKIT
        releases = _rows(doc_id, doc.get(texts_by.value) or (), texts)
        components = {str(name): _rows(f"{doc_id} ({name})", rows, texts)
                      for name, rows in (doc.get("component_texts") or {}).items()}
        documents[doc_id] = Document(doc_id, str(doc["name"]), str(doc["kind"]), doc.get("spdx"),
                                     " ".join(str(doc.get("governs", "")).split()), texts, releases, components,
                                     _unmapped(doc_id, doc.get("unmapped_texts") or (), texts),
                                     None if doc.get("license") is None else str(doc["license"]), texts_by)
    return Documents(documents, tuple(_published(row) for row in data.get("as_published") or ()),
                     _by_catalog_license(documents), _by_license_text(documents))


def _by_catalog_license(documents: dict[str, Document]) -> dict[str, Document]:
    out: dict[str, Document] = {}
    for doc in documents.values():
        if doc.license is None:
            continue
        if doc.license in out:
            raise ValueError(f"{TABLE}: {doc.license} is the licence of {out[doc.license].id} and {doc.id}")
        out[doc.license] = doc
    return out


def _by_license_text(documents: dict[str, Document]) -> dict[str, Text]:
    out: dict[str, Text] = {}
    for text in (t for d in documents.values() for t in d.texts.values()):
        for catalog_id in text.license_texts:
            if catalog_id in out:
                other = out[catalog_id]
                raise ValueError(f"{TABLE}: license text {catalog_id} is claimed by {other.document} {other.id} and "
                                 f"{text.document} {text.id}")
            out[catalog_id] = text
    return out


def _unmapped(where: str, rows: Any, texts: dict[str, Text]) -> tuple[Unmapped, ...]:
    """``unmapped_texts``, checked: a ``likely`` text is one of the document's, and only it comes with a ``why``."""
    out = []
    for row in rows:
        likely = None if row.get("likely") is None else str(row["likely"])
        spec, why = str(row["versions"]), " ".join(str(row.get("why") or "").split())
        if likely is not None and likely not in texts:
            raise ValueError(f"{TABLE}: {where} unmapped_texts {spec}: unknown likely text {likely!r}")
        if (likely is None) != (not why):
            raise ValueError(f"{TABLE}: {where} unmapped_texts {spec}: a likely text needs a why, and only it")
        out.append(Unmapped(parse_specifier(spec), spec, likely, why, " ".join(str(row["unread"]).split()),
                            " ".join(str(row["read"]).split())))
    return tuple(out)


def _published(row: dict[str, Any]) -> Published:
    digests = (str(row["sha256"]).lower(), str(row["record_sha256"]).lower())
    if not all(len(d) == 64 and all(c in "0123456789abcdef" for c in d) for d in digests):
        raise ValueError(f"{TABLE}: as_published {row.get('member')!r}: sha256 and record_sha256 must be hex digests")
    return Published(str(row["package"]), str(row["version"]), row.get("platform"), str(row["member"]), *digests)


def normalise(raw: bytes, fmt: str = "text") -> str:
    """The text a quote is compared with: UTF-8, Debian copyright continuation lines unfolded (``fmt``
    debian-copyright: the leading space removed, a lone "." an empty line; c-comment: the comment markers "/*",
    "*" and "*/" at the start of a line removed), whitespace runs collapsed."""
    text = raw.decode("utf-8", "replace")
    if fmt == "debian-copyright":
        lines = []
        for line in text.splitlines():
            body = line[1:] if line.startswith(" ") else line
            lines.append("" if body.strip() == "." else body)
        text = "\n".join(lines)
    elif fmt == "c-comment":
        text = "\n".join(line.strip().lstrip("/").lstrip("*").rstrip("/") for line in text.splitlines())
    return " ".join(text.split())
