"""What the naming layer (``licscan.identify``) says about a file: the components it holds, the version claims
behind each, the licence texts it is."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from licscan.model.facts import Component, ComponentKind


class Confidence(str, enum.Enum):
    """How sure the naming layer is that a file is the component it names (high: content and name agree)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    def __str__(self) -> str:
        return self.value


class VersionSource(enum.Enum):
    """Where a component's version was read, most trusted first (issue 3)."""

    MARKER = "marker"  # a version string inside the file
    FILE_NAME = "file-name"  # libcublas.so.12.9.1.4, libcuda.so.580.159.04
    SONAME = "soname"  # DT_SONAME libcublas.so.12
    DISTRIBUTION = "distribution-metadata"  # wheel METADATA "Version:" of an nvidia-* distribution
    DEBIAN = "debian-metadata"
    CONDA = "conda-metadata"
    MODINFO = "modinfo"  # a kernel module's .modinfo "version=" field



@dataclass(frozen=True)
class VersionClaim:
    source: VersionSource
    value: str  # "12.4.127", or a prefix "12" / "12.4" when ``exact`` is False
    exact: bool
    evidence: str


@dataclass(frozen=True)
class ComponentMatch:
    """One component found in one file: who made it, what it is, its version and licence, and how we know.

    ``version`` is set only when a source states a full release; otherwise ``version_range`` says what is known
    ("12.x", "12.4.x"). ``modifications`` are facts a rule on EULA §2.3 ("not modified in any way") can test:
    ``auditwheel-grafted``, ``soname-rewritten``, ``soname-missing``, ``runpath-added``, ``stripped``,
    ``sha256-differs-from-record``.
    """

    name: str  # catalog key: "cublas", "cuda-driver", "zluda", ...
    display: str  # "cuBLAS"
    kind: ComponentKind
    vendor: str
    version: str | None
    version_source: VersionSource | None
    license: str | None  # concluded: SPDX id or LicenseRef-
    evidence: tuple[str, ...]
    version_range: str | None = None
    license_declared: str | None = None  # what the enclosing distribution declares, as found
    confidence: Confidence = Confidence.HIGH
    modifications: tuple[str, ...] = ()
    versions: tuple[VersionClaim, ...] = ()  # every claim seen, most trusted first
    properties: tuple[tuple[str, str], ...] = field(default=())

    def to_component(self, component_id: str, paths: tuple[str, ...]) -> Component:
        """The report's :class:`Component` (the JSON report schema (licscan/schemas/report.schema.json)); further facts go to ``properties``."""
        props = list(self.properties)
        props.append(("confidence", Confidence(self.confidence).value))
        if self.version_source is not None:
            props.append(("version_source", self.version_source.value))
        if self.version_range:
            props.append(("version_range", self.version_range))
        if self.license_declared:
            props.append(("license_declared", self.license_declared))
        props.extend(("modified", m) for m in self.modifications)
        return Component(component_id, self.name, self.vendor, self.kind, self.version, self.license, paths,
                         self.evidence, tuple(props))


@dataclass(frozen=True)
class LicenseTextMatch:
    document: str  # catalog id: "nvidia-sdk-eula-2018", "cuda-eula-2021-10-08", ...
    title: str
    date: str | None  # the text's own "Last updated" / "Release Date", ISO
    license: str | None  # concluded SPDX id / LicenseRef
    sha256: str  # of the file's bytes (decompressed for .gz)
    normalized_sha256: str
    method: str  # "sha256" | "normalized-sha256" | "phrases"
    translation_clause: bool | None  # EULA §1.2 item 8 present (None: not applicable)
    variant: str | None = None
    seen_in: str | None = None  # where the known copy with this hash was found
    evidence: tuple[str, ...] = ()
