"""The format-neutral SBOM: a :class:`Plan` of packages, files, relationships, licences and annotations, which
``spdx.py`` and ``cyclonedx.py`` both render. ``plan.py`` builds it from a scan's inventory.

Model (every relationship type here validates with spdx-tools 0.8):
  DOCUMENT DESCRIBES root (the scanned input, files analysed)
  root CONTAINS every listed file, every distribution package, every component not inside a distribution
  distribution CONTAINS the components it ships;  component CONTAINS its listed files
  file DEPENDS_ON file / component / driver          (DT_NEEDED, resolved against the scan)
  file GENERATED_FROM "CUDA Toolkit <release>"        (the toolkit its device code says built it; not shipped)
  root DEPENDS_ON driver requirement                  (runtime dependency, even when no driver file ships)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from licscan.sbom.data import LicenseInfo
from licscan.sbom.driver import DriverRequirement

NVIDIA = "NVIDIA Corporation"
ROOT = "@root"  # stands for the root package's id until the root is named
Digests = Callable[[str], "tuple[str, str] | None"]  # virtual path -> (SHA-1, SHA-256) hex, None when not known


@dataclass(frozen=True)
class Method:
    """How a component was identified (CycloneDX evidence.identity.methods)."""

    technique: str  # binary-analysis | filename | manifest-analysis | hash-comparison | other
    value: str
    confidence: str = "1.0"


@dataclass(frozen=True)
class PackageNode:
    id: str  # SPDX id; the CycloneDX bom-ref too
    role: str  # root | distribution | component | toolkit | driver-requirement
    name: str
    version: str
    supplier: str | None
    purpose: str  # spdx PackagePurpose name
    concluded: str | None  # SPDX expression, None = NOASSERTION
    declared: str | None
    license_comment: str | None = None
    purls: tuple[str, ...] = ()
    cpes: tuple[str, ...] = ()
    checksums: tuple[tuple[str, str], ...] = ()  # ("SHA1"|"SHA256", hex)
    comment: str | None = None
    summary: str | None = None
    files: tuple[str, ...] = ()  # ids of the files it contains (files analysed when non-empty)
    occurrences: tuple[str, ...] = ()  # virtual paths
    methods: tuple[Method, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()
    shipped: bool = True  # False for the toolkit and the driver requirement


@dataclass(frozen=True)
class FileNode:
    id: str
    path: str  # virtual path
    sha1: str
    sha256: str
    concluded: str | None
    comment: str | None = None
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Edge:
    source: str  # element id, or "SPDXRef-DOCUMENT"
    type: str  # spdx RelationshipType name
    target: str
    comment: str | None = None


@dataclass(frozen=True)
class Note:
    """A finding as an annotation on the element it concerns."""

    target: str
    text: str


@dataclass(frozen=True)
class Plan:
    name: str
    inputs: tuple[str, ...]
    created: datetime
    uuid: str
    tool: str  # "licscan-0.1.0"
    tool_version: str
    creator_org: str | None
    root: str
    packages: tuple[PackageNode, ...]
    files: tuple[FileNode, ...]
    edges: tuple[Edge, ...]
    notes: tuple[Note, ...]
    licenses: tuple[LicenseInfo, ...]
    driver: DriverRequirement
    comment: str
    omitted: tuple[str, ...] = field(default=())  # binaries not listed as files (no SHA-1/SHA-256 known)

    def package(self, element_id: str) -> PackageNode:
        return next(p for p in self.packages if p.id == element_id)
