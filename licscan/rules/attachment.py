"""CUDA EULA Attachment A as data (rules/attachment-a.yaml): which EULA texts list a file, and under what condition.

``status(basename, text)`` gives, per EULA text, one of ``listed``, ``conditional`` (a driver library under the
Docker Hub / NGC container-only condition of the 2018, 2020 and 2021 texts), ``unlisted``, or ``unknown`` (a text
that was not examined, docs/licenses.md). Which texts apply to a file follows from its toolkit range and the table
of rules/licenses/documents.yaml (``texts_for``): a range that spans several texts leaves the answer undetermined
when they differ, and a release the table does not map leaves it unknown.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from licscan.knowledge import load_table
from licscan.model import ToolkitRange
from licscan.rules.versions import Tri

DATA = "attachment-a.yaml"

# A vendored copy's hash: auditwheel's "libcudart-1a2b3c4d.so.12", torchvision's "libcudart.faf08d9a.so.13",
# delvewheel's 32 hex digits before ".dll" (cuda-bindings 13.5.0's win_amd64 wheel vendors
# cuda_bindings.libs/msvcp140-0fa7eb792d3fbcf2233e4ea47e9144b9.dll).
_GRAFT = re.compile(r"[-.][0-9a-f]{8}(?=\.so)|-[0-9a-f]{32}(?=\.dll$)")
_SO = re.compile(r"\.so(?:\.\d+)+$")
_DYLIB = re.compile(r"(?:\.\d+)+\.dylib$")
_WINDOWS = re.compile(r"^(?P<stem>.+?)(?:32|64)?(?:_\d+)+\.(?P<ext>dll|lib)$")


@dataclass(frozen=True)
class EulaText:
    id: str
    title: str
    date: str
    examined: bool
    first_toolkit: str | None
    variants: bool
    driver_condition: bool


@dataclass(frozen=True)
class AttachmentA:
    texts: tuple[EulaText, ...]
    listed: dict[str, frozenset[str]]      # canonical name -> ids of the texts that list it
    driver: frozenset[str]                 # canonical names of the driver libraries
    toolkit_versioned: frozenset[str]
    driver_branches: tuple[tuple[int, str], ...]  # (driver major, toolkit), highest first

    def text(self, text_id: str) -> EulaText:
        for text in self.texts:
            if text.id == text_id:
                return text
        raise KeyError(text_id)

    def text_by_date(self, date: str) -> EulaText | None:
        return next((t for t in self.texts if t.date == date), None)

    def texts_for(self, rng: ToolkitRange) -> tuple[tuple[EulaText, Tri], ...]:
        """The texts that may govern a toolkit range (documents.yaml, cuda-eula toolkit_texts), each with whether
        it certainly does; every text when the table does not map the range."""
        from licscan.rules import documents

        mapped = documents.load().document("cuda-eula").for_release(rng)
        if mapped is None:
            return tuple((text, Tri.UNKNOWN) for text in self.texts)
        ids = [text.id for text, _, _ in mapped]
        truth = Tri.TRUE if len(ids) == 1 else Tri.UNKNOWN
        return tuple((self.text(tid), truth) for tid in ids)

    def candidates(self, rng: ToolkitRange, configured: str | None,
                   governing: str | None) -> tuple[tuple[tuple[EulaText, Tri], ...], str]:
        """The texts whose Attachment A decides a file, and why: the configured ``eula.text``; else the texts its
        toolkit range may fall under; with no toolkit to pick by, the text that governs the part when that is
        known (NVSHMEM 3.8.0's own release, a text shipped beside it, the newest)."""
        if configured:
            return ((self.text(configured), Tri.TRUE),), "configured eula.text"
        if rng.is_unknown and governing is not None:
            return ((self.text(governing), Tri.TRUE),), "the text that governs it"
        return self.texts_for(rng), f"toolkit {rng.text}"

    def basis(self, text: EulaText) -> EulaText:
        """The text whose list stands for ``text``: itself when examined, else the newest examined text before
        it (a reading, said in the finding's evidence)."""
        if text.examined:
            return text
        earlier = [t for t in self.texts if t.examined and t.date < text.date]
        return max(earlier, key=lambda t: t.date) if earlier else text

    def status(self, basename: str, text: EulaText) -> str:
        text = self.basis(text)
        if not text.examined:
            return "unknown"
        name = canonical(basename)
        ids = self.listed.get(name)
        if not ids or text.id not in ids:
            return "unlisted"
        if name in self.driver and text.driver_condition:
            return "conditional"
        return "listed"

    def driver_toolkit(self, version: str | None) -> ToolkitRange:
        """The toolkit a driver release ships with (Table 5a), from a version like "580.159.04"."""
        match = re.match(r"^(\d{3})\.\d+", version or "")
        if not match:
            return ToolkitRange.unknown()
        major = int(match.group(1))
        for index, (branch, toolkit) in enumerate(self.driver_branches):
            if major >= branch:
                upper = self.driver_branches[index - 1][1] if index else None
                return ToolkitRange(toolkit, None if upper is None else toolkit, label=f"{toolkit} (driver {version})")
        return ToolkitRange.unknown()


def attachment_name(basename: object, linked_from: object, declared: object) -> str:
    """The file name Attachment A is read for: the static library a part linked into the file came from
    (``libcudart_static.a``), else the name a file shipped under another name declares (its SONAME, a DLL's export
    name: a renamed ``cudart64_12.dll`` is still the CUDA Runtime's file), else the name it is shipped under.
    Attachment A lists "portions of the SDK" by the names NVIDIA gives them (the component properties
    ``linked_from`` and ``declared_name``)."""
    for name in (linked_from, declared):
        if isinstance(name, str) and name and "," not in name:
            return name
    return str(basename or "")


def canonical(basename: str) -> str:
    """The Attachment A name a file counts as under the variant rule (version and architecture parts removed)."""
    name = _GRAFT.sub("", basename)
    name = _SO.sub(".so", name)
    name = _DYLIB.sub(".dylib", name)
    match = _WINDOWS.match(name)
    if match:
        name = f"{match.group('stem')}.{match.group('ext')}"
    return name.lower()


@functools.lru_cache(maxsize=1)
def load() -> AttachmentA:
    data = load_table(DATA)  # its JSON snapshot while current (licscan.knowledge): no YAML parse in an audit
    texts = tuple(EulaText(str(t["id"]), t["title"], str(t["date"]), bool(t["examined"]),
                           None if t.get("first_toolkit") is None else str(t["first_toolkit"]), bool(t["variants"]),
                           bool(t["driver_condition"]))
                  for t in data["texts"])
    all_ids = frozenset(t.id for t in texts)
    listed: dict[str, set[str]] = {}
    driver: set[str] = set()
    for group in data["files"]:
        ids = all_ids if group["texts"] == "all" else frozenset(str(i) for i in group["texts"])
        unknown = ids - all_ids
        if unknown:
            raise ValueError(f"{DATA}: group {group['group']!r} names unknown texts {sorted(unknown)}")
        for name in group["names"]:
            listed.setdefault(name.lower(), set()).update(ids)
            if group.get("driver"):
                driver.add(name.lower())
    branches = tuple(sorted(((int(b["driver"]), str(b["toolkit"])) for b in data["driver_branches"]), reverse=True))
    return AttachmentA(texts, {k: frozenset(v) for k, v in listed.items()}, frozenset(driver),
                       frozenset(data["toolkit_versioned"]), branches)


def toolkit_version(version: str | None) -> str | None:
    """``version`` when it can be a CUDA toolkit release; None for CUPTI's year-based numbering (2025.1.1)."""
    match = re.match(r"^(\d+)", version or "")
    if not match or int(match.group(1)) >= 1000:
        return None
    return version
