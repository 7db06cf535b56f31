"""Which licence governs a part: the document (CUDA EULA, driver licence, cuDNN SLA, NCCL's BSD-3-Clause, ...), the
text version within it, and why (docs/licenses.md, "Which text governs").

The document follows from what the part is: its catalog licence, its kind (a driver library), its name (cuda-gdb:
GPL v3 by the CUDA EULA's Attachment B), or for device code the toolkit that produced it. The text follows from a
policy (``.licscan.yaml`` ``eula.governing-text``):

- ``published-with-toolkit`` (default): the text NVIDIA published with the part's toolkit or driver release, or
  with the part's own release (rules/licenses/documents.yaml ``toolkit_texts`` / ``driver_texts`` / ``own_texts``);
- ``shipped-beside``: the licence file shipped in the same distribution (or folder), identified by its hash or
  phrases; the published text when none is;
- ``newest``: the newest text of the document.

A release the table does not map, or a range that spans texts, leaves the text unknown: rules that depend on it are
undetermined. A mapping that is inferred (not read from a copy packaged with that release), a text known only from
a secondary copy, or a text that was not examined makes a rule's verdict a ``review`` at most.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from licscan.model import ToolkitRange
from licscan.rules import documents
from licscan.rules.versions import Tri

POLICIES = ("published-with-toolkit", "shipped-beside", "newest")
#: Governing.basis of a part whose release is known but maps to no text (CUDA 13.2 and later, 11.3 to 11.5, ...).
UNMAPPED = "unmapped"
DEFAULT_POLICY = "published-with-toolkit"


@dataclass(frozen=True)
class Governing:
    """The licence that governs one part under one policy."""

    document: str | None  # documents.yaml id; None: not an NVIDIA-licensed part (or the document is unknown)
    text: str | None  # text id; None: unknown (or the document has no versioned text)
    candidates: tuple[str, ...]  # texts that may govern when ``text`` is None (empty: any text of the document)
    basis: str  # primary | inferred | shipped | newest | unknown | unmapped (UNMAPPED) | none
    why: str  # one line of evidence
    unknown: str | None = None  # set: which text governs cannot be told at all (every clause is undetermined)
    #: basis UNMAPPED: the text that probably governs (documents.yaml ``unmapped_texts``; never applied, only cited
    #: for the wording of a clause every text has) and the reviewer's advice: why no text is applied, what to read.
    likely: str | None = None
    advice: str | None = None

    @property
    def label(self) -> str:
        if self.document is None:
            return "no NVIDIA licence document"
        doc = documents.load().document(self.document)
        if self.text is None:
            return f"{doc.name}, text unknown"
        return doc.text(self.text).label

    def license_id(self) -> str | None:
        """The SBOM's concluded licence: the text's LicenseRef or SPDX id, the document's SPDX id, else None."""
        if self.document is None:
            return None
        doc = documents.load().document(self.document)
        if self.text is not None:
            return doc.text(self.text).license
        return doc.spdx

    def clause(self, clause_id: str) -> tuple[Tri, str | None, documents.Text | None]:
        """Whether the governing text has ``clause_id``: (truth, reading, text quoted).

        ``reading`` is set when the answer is not firm: the text-to-release mapping is inferred, the text was not
        examined (its clauses are taken from the newest examined text before it), or the text is only known from
        a secondary copy. The quoted text is the one whose words the finding cites."""
        if self.document is None:  # not an NVIDIA-licensed part: no text of NVIDIA's has the clause for it
            return Tri.FALSE, None, None
        doc = documents.load().document(self.document)
        if self.unknown:
            return Tri.UNKNOWN, self.unknown, None
        ids = (self.text,) if self.text else (self.candidates or tuple(doc.texts))
        results = [_has(doc, tid, clause_id) for tid in ids]
        truths = {r[0] for r in results}
        quoted = next((r[2] for r in results if r[2] is not None), None)
        if self.text is None and self.likely is not None:  # cite the wording of the text it probably falls under
            guess = _has(doc, self.likely, clause_id)
            quoted = guess[2] if guess[0] is Tri.TRUE and guess[2] is not None else quoted
        readings = [r[1] for r in results if r[1]]
        if self.basis == documents.INFERRED:
            readings.append(f"the text is mapped to this release by inference ({self.why})")
        if self.text is None and not self.candidates and all(r[0] is Tri.TRUE for r in results):
            readings.append(f"which {doc.name} text governs is unknown ({self.why}); every text licscan knows has "
                            f"this clause")
        if truths == {Tri.TRUE}:
            return Tri.TRUE, "; ".join(dict.fromkeys(readings)) or None, quoted
        if truths == {Tri.FALSE}:
            return Tri.FALSE, "; ".join(dict.fromkeys(readings)) or None, None
        have = [tid for tid, r in zip(ids, results) if r[0] is Tri.TRUE]
        lack = [tid for tid, r in zip(ids, results) if r[0] is Tri.FALSE]
        return Tri.UNKNOWN, (f"the governing text is unknown: of the texts that may govern, {', '.join(have) or 'none'} "
                             f"have clause {clause_id} and {', '.join(lack) or 'none'} do not"), quoted


def _has(doc: documents.Document, text_id: str, clause_id: str) -> tuple[Tri, str | None, documents.Text | None]:
    text = doc.text(text_id)
    truth = text.has(clause_id)
    if truth is Tri.TRUE:
        reading = None if text.primary else f"the {text.label} is known from a secondary copy only"
        return truth, reading, text
    if truth is Tri.FALSE:
        return truth, None, None
    # Not examined: take the newest examined text dated before it, and say that this is a reading.
    earlier = [t for t in doc.texts.values() if t.examined and t.date and text.date and t.date < text.date]
    if not earlier:
        return Tri.UNKNOWN, None, None
    base = max(earlier, key=lambda t: t.date or "")
    inner = base.has(clause_id)
    reading = (f"the {text.label} was not examined; its clause is taken to be as in the {base.label}"
               if inner is Tri.TRUE else None)
    return inner, reading, base if clause_id in base.clauses else None


def document_of(fields: Mapping[str, Any]) -> str | None:
    """The documents.yaml document that governs a component or device-code fact (None: none of NVIDIA's)."""
    name, kind, license_id = fields.get("name"), fields.get("kind"), fields.get("license")
    props_doc = fields.get("properties.document")
    if kind == "license-text":
        ident = license_text(props_doc) if props_doc else None
        return ident[0] if ident is not None else None
    if fields.get("scope") == "device_code":
        return "cuda-eula" if fields.get("vendor") == "NVIDIA" else None
    if name == "cuda-gdb":
        return "cuda-gdb"
    if name == "scale":
        return "scale-free"
    if license_id == "MIT OR GPL-2.0-only" and kind == "kernel-module":
        return "nvidia-open-kernel-modules"
    if name == "nccl" or (license_id == "BSD-3-Clause" and str(name or "").startswith("nccl")):
        return "nccl"
    if kind == "driver" and "/stubs/" in str(fields.get("path") or ""):
        return "cuda-eula"  # the toolkit's link stubs (lib64/stubs/libcuda.so) come with the toolkit, not the driver
    if kind == "driver" or (kind == "kernel-module" and license_id == "LicenseRef-NVIDIA-Driver"):
        return "nvidia-driver"
    doc = documents.load().by_catalog_license.get(str(license_id)) if license_id else None
    return doc.id if doc is not None else None


def unread(license_id: object) -> Governing | None:
    """An NVIDIA licence the catalog names a part under but no document of documents.yaml has as its ``license``
    (none today: tests/test_documents_data.py): no document governs it here, and the reason says so rather than
    "not an NVIDIA-licensed part"."""
    name = str(license_id or "")
    if not name.startswith("LicenseRef-NVIDIA-") or name in documents.load().by_catalog_license:
        return None
    return Governing(None, None, (), "none", f"{name}: NVIDIA's licence of this part, whose text licscan has not "
                                             f"read (docs/licenses.md); no rule judges it")


def platform_of(basename: str) -> str | None:
    """The platform a part is built for, by its file name: "windows" (``.dll``, ``.lib``, ``.exe``, ``.pyd``),
    "linux" (``.so``, ``.so.<N>``, ``.a``), else None (not known)."""
    name = basename.lower()
    if name.endswith((".dll", ".lib", ".exe", ".pyd")):
        return "windows"
    if name.endswith((".so", ".a")) or ".so." in name:
        return "linux"
    return None


def resolve(document: str | None, release: ToolkitRange, beside: tuple[tuple[str, str, str], ...],
            policy: str, platform: str | None = None, component: str | None = None,
            fallback: bool = True) -> Governing:
    """The governing text of ``document`` for a part of release range ``release`` under ``policy``.

    ``beside``: licence texts shipped with the part, as (document, text, "path (sha256 ...)"); ``platform``: the
    part's (:func:`platform_of`), for a release whose text differs by platform; ``component``: a catalog component
    with a release table of its own in the document (:func:`own_table`), ``release`` then being its own release;
    ``fallback``: where no table row tells the text, take the one licence file of the document shipped beside the
    part (false for a licence file itself)."""
    if document is None:
        return Governing(None, None, (), "none", "not an NVIDIA-licensed part")
    doc = documents.load().document(document)
    if not doc.texts:
        return Governing(document, None, (), "primary", f"{doc.name}: {doc.governs}")
    if len(doc.texts) == 1 and not doc.releases and not doc.components:  # else: a release no row maps is unknown
        (text,) = doc.texts.values()
        return Governing(document, text.id, (), documents.PRIMARY, f"{doc.name} ({text.label})")
    if policy == "newest":
        newest = doc.newest()
        if newest is not None:  # always: doc.texts is not empty here
            return Governing(document, newest.id, (), "newest", f"policy newest: the newest text, {newest.label}")
    mine = sorted({(t, w) for d, t, w in beside if d == document})
    if policy == "shipped-beside":
        if len(mine) == 1:
            text_id, where = mine[0]
            return Governing(document, text_id, (), "shipped",
                             f"the licence file shipped beside it: {where} ({doc.text(text_id).label})")
        if len(mine) > 1:
            return Governing(document, None, tuple(t for t, _ in mine), "unknown",
                             "several licence texts are shipped beside it: " + "; ".join(w for _, w in mine))
    what = f"{component} {release.text}" if component else f"release {release.text}"
    mapped = None if release.is_unknown else doc.for_release(release, platform, component)
    if mapped is None:
        why = (f"the release of the part is unknown, so is its {doc.name} text" if release.is_unknown else
               f"no {doc.name} text is known to be published with {what} (docs/licenses.md)")
        if fallback and len(mine) == 1:  # the part's own text where the table cannot tell: the file shipped with it
            text_id, where = mine[0]
            return Governing(document, text_id, (), "shipped", f"{why}; the licence file shipped beside it: {where} "
                                                               f"({doc.text(text_id).label})")
        if not doc.maps_none(release, platform, component):
            return Governing(document, None, (), "unknown", why)
        row = None if component else doc.unmapped_row(release)
        return Governing(document, None, (), UNMAPPED, why, likely=row.likely if row else None,
                         advice=advice(doc, row))
    if len(mapped) > 1:
        shipped = [(t, w) for t, w in mine if t in {m.id for m, _, _ in mapped}]
        if fallback and len(mine) == 1 and shipped:  # the table cannot tell; the file shipped with it does
            text_id, where = shipped[0]
            return Governing(document, text_id, (), "shipped",
                             f"{what} may fall under " + " or ".join(t.label for t, _, _ in mapped)
                             + f"; the licence file shipped beside it: {where} ({doc.text(text_id).label})")
        return Governing(document, None, tuple(t.id for t, _, _ in mapped), "unknown",
                         f"{what} may fall under " + " or ".join(t.label for t, _, _ in mapped))
    text, basis, source = mapped[0]
    note = " (no licence file of this document is shipped beside it)" if policy == "shipped-beside" else ""
    return Governing(document, text.id, (), basis, f"{text.label}, published with {what}: {source}{note}")


#: What a reviewer of a part whose release no row maps is told when documents.yaml explains nothing more.
ADVICE = "Review it against the EULA NVIDIA published with that release."


def advice(doc: documents.Document, row: documents.Unmapped | None) -> str:
    """The reviewer's advice for a part of a release no row maps: the text it probably falls under and why, why
    no text is applied, and what to read (documents.yaml ``unmapped_texts``)."""
    if row is None:
        return ADVICE
    lead = (f"It is probably the {doc.text(row.likely).label}, {row.why}; that text is not applied: "
            if row.likely else "No text is applied: ")
    return f"{lead}{row.unread}. Read {row.read}."


def own_table(document: str | None, fields: Mapping[str, Any]) -> str | None:
    """The component's name when ``document`` maps that component's own releases to its texts
    (documents.yaml ``component_texts``: NVSHMEM under the CUDA EULA), else None."""
    name = fields.get("name")
    if document is None or fields.get("scope") == "device_code" or not name:
        return None
    return str(name) if str(name) in documents.load().document(document).components else None


def release_range(document: str | None, fields: Mapping[str, Any], toolkit: ToolkitRange) -> ToolkitRange:
    """The release a part's text is looked up by: the part's own version where the document's release table is
    keyed by it (documents.yaml ``driver_texts``: the driver version of a driver part; ``own_texts``: SCALE's
    version, an SLA library's) and for a component with its own table (:func:`own_table`), else the toolkit
    range."""
    by = documents.load().document(document).texts_by if document is not None else documents.TextsBy.TOOLKIT
    if by is not documents.TextsBy.TOOLKIT or own_table(document, fields):
        version = str(fields.get("version") or "")
        return ToolkitRange.of_version(".".join(version.split(".")[:3])) if version else ToolkitRange.unknown()
    return toolkit


#: CUDA Samples helpers by their header (licence-text catalog ids).
SAMPLES = {
    "cuda-samples-bsd": Governing("cuda-samples-bsd", "bsd-3-clause", (), documents.PRIMARY,
                                  "the helper's own header: BSD-3-Clause (github.com/NVIDIA/cuda-samples)"),
    "cuda-samples-eula": Governing("cuda-eula", None, ("2018-07-26", "2020-11-02", "2021-10-08"), documents.PRIMARY,
                                   "the helper's header refers to the NVIDIA EULA: CUDA Samples installed with a "
                                   "toolkit up to 11.5 (texts of 2018, 2020 or 2021)"),
    "cuda-samples-unmarked": Governing("cuda-samples-bsd", None, (), "unknown",
                                       "a CUDA Samples helper without its licence header",
                                       unknown="the helper's licence header is gone: it may be BSD-3-Clause "
                                               "(github.com/NVIDIA/cuda-samples, 11.6 on) or CUDA EULA code (up "
                                               "to 11.5)"),
}


def license_text(catalog_id: object) -> tuple[str, str] | None:
    """(document, text) of a licence-text catalog id (rules/catalog/license-texts.yaml; documents.yaml
    ``license_texts``), None when it is no text of a document (a notice, Apache-2.0, a CUDA Samples helper)."""
    text = documents.load().by_license_text.get(str(catalog_id))
    return (text.document, text.id) if text is not None else None

