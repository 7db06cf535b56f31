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
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

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


class Platform(Enum):
    """The rows of an Attachment A component, as the texts head them. A name's platform follows from its ending
    (``platform_of``): the examined texts list .dll and .lib names in Windows rows only, .so and .a names in Linux
    (and Android) rows, .dylib names in Mac OSX rows (whose .a names a Linux row lists too), headers in "All"
    rows; libdevice.10.bc, in the Windows, Mac OSX and Linux rows alike, counts as All."""

    WINDOWS = "Windows"
    LINUX = "Linux"
    MACOS = "Mac OSX"
    ALL = "All"


def platform_of(name: str) -> Platform:
    lower = canonical(name)
    if lower.endswith((".dll", ".lib")):
        return Platform.WINDOWS
    if lower.endswith((".so", ".a")):
        return Platform.LINUX
    if lower.endswith(".dylib"):
        return Platform.MACOS
    return Platform.ALL


def is_static(name: str) -> bool:
    """A static library: ``libcudart_static.a``, ``cudart_static.lib``, ``libculibos.a``."""
    lower = name.lower()
    return "_static." in lower or lower.endswith(".a")


@dataclass(frozen=True)
class Listing:
    """One group of rules/attachment-a.yaml: names one Attachment A component lists, and the texts that list them."""

    component: str | None  # the heading, verbatim; None: read from a secondary copy only
    parts: frozenset[str]  # catalog components whose files the heading lists
    names: tuple[str, ...]  # as the texts print them (a misprint read as the intended name)
    texts: frozenset[str]


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
    listings: tuple[Listing, ...] = ()

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

    def lists(self, part: str | None, platform: Platform, text: EulaText, static: bool) -> str:
        """What Attachment A of ``text`` (examined) lists for the catalog component ``part`` on ``platform``, as
        the predicate of a sentence: 'lists under "NVIDIA Runtime Compilation Library and Header" for Windows
        only nvrtc.dll, nvrtc-builtins.dll (static libraries there: libnvrtc_static.a, ..., not Windows files)',
        'lists under "NVIDIA CUDA Driver Libraries" no file for Windows (...)', 'lists no file of nvJitLink under
        any component'.
        With ``static``, what it lists of static libraries under that heading for the other platforms."""
        headings = list(dict.fromkeys(item.component for item in self.listings
                                      if text.id in item.texts and part in item.parts and item.component))
        if not headings:
            return f"lists no file of {part or 'it'} under any component"
        said = []
        for heading in headings:
            names = [n for item in self.listings if item.component == heading and text.id in item.texts
                     for n in item.names]
            here = [n for n in names if platform_of(n) is platform]
            line = (f'lists under "{heading}" for {platform.value} only {", ".join(here)}' if here
                    else f'lists under "{heading}" no file for {platform.value}')
            if static:
                others = [n for n in names if is_static(n) and platform_of(n) is not platform]
                line += (f" (static libraries there: {', '.join(others)}, not {platform.value} files)" if others
                         else " (no static library there for any platform)")
            said.append(line)
        return " and ".join(said)

    def unlisted_because(self, name: str, part: str | None, texts: Sequence[EulaText]) -> str:
        """Why ``name`` (the Attachment A name of a file of catalog component ``part``) is unlisted in ``texts``
        (those of them whose status is ``unlisted``): per text, what its Attachment A lists instead for that part
        and platform. Texts that were not examined are said with the text they are read as. Empty when no text
        of ``texts`` leaves it unlisted."""
        platform = platform_of(name)
        unlisted = [t for t in texts if self.status(name, t) == "unlisted"]
        if not unlisted:
            return ""
        static = is_static(name)
        what = f"{name} ({'a static library' if static else 'a file'} for {platform.value})"
        if len(texts) == 1:
            text = unlisted[0]
            basis = self.basis(text)
            read = "" if basis is text else f" (not examined; read as the {basis.title})"
            return (f"{what} is not in Attachment A of the {text.title}{read}, which "
                    f"{self.lists(part, platform, basis, static)}.")
        said: dict[str, list[str]] = {}
        for text in unlisted:
            basis = self.basis(text)
            label = text.id if basis is text else f"{text.id} (not examined; read as {basis.id})"
            said.setdefault(self.lists(part, platform, basis, static), []).append(label)
        clauses = []
        for predicate, labels in said.items():
            who = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
            verb = predicate if len(labels) == 1 else "list" + predicate[len("lists"):]
            clauses.append((f"the text{'s' if len(labels) > 1 else ''} of {who}", verb))
        if len(clauses) == 1:
            return f"{what} is not in Attachment A of {clauses[0][0]}, which {clauses[0][1]}."
        ids = [t.id for t in unlisted]
        return (f"{what} is not in Attachment A of the texts of {', '.join(ids[:-1])} and {ids[-1]}: "
                f"{'; '.join(f'{who} {verb}' for who, verb in clauses)}.")

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
    listings: list[Listing] = []
    for group in data["files"]:
        ids = all_ids if group["texts"] == "all" else frozenset(str(i) for i in group["texts"])
        unknown = ids - all_ids
        if unknown:
            raise ValueError(f"{DATA}: group {group['group']!r} names unknown texts {sorted(unknown)}")
        for name in (*group["names"], *group.get("also", ())):
            listed.setdefault(name.lower(), set()).update(ids)
            if group.get("driver"):
                driver.add(name.lower())
        listings.append(Listing(group.get("component"), frozenset(str(p) for p in group.get("parts", ())),
                                tuple(str(n) for n in group["names"]), ids))
    branches = tuple(sorted(((int(b["driver"]), str(b["toolkit"])) for b in data["driver_branches"]), reverse=True))
    return AttachmentA(texts, {k: frozenset(v) for k, v in listed.items()}, frozenset(driver),
                       frozenset(data["toolkit_versioned"]), branches, tuple(listings))


def toolkit_version(version: str | None) -> str | None:
    """``version`` when it can be a CUDA toolkit release; None for CUPTI's year-based numbering (2025.1.1)."""
    match = re.match(r"^(\d+)", version or "")
    if not match or int(match.group(1)) >= 1000:
        return None
    return version
