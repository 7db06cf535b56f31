"""The model: frozen values that flow one way through licscan, bytes to verdict (docs/architecture.md).

- :mod:`licscan.model.facts`: what the readers state about bytes (file formats, device images, diagnostics) and
  the inventory a scan collects;
- :mod:`licscan.model.releases`: releases and the one release-range type (:class:`ToolkitRange`) every layer uses;
- :mod:`licscan.model.packaging`: what the walker learns from packaging metadata (distributions, special files);
- :mod:`licscan.model.naming`: what the naming layer says (component matches, version claims, licence texts);
- :mod:`licscan.findings`: what the rules say (findings, severities, verdicts, exit codes).

Everything is importable from ``licscan.model``.
"""

from licscan.model.facts import (
    GPU_LAYER_KINDS,
    Component,
    ComponentKind,
    Compression,
    Container,
    Dependency,
    DeviceImage,
    Diagnostic,
    DiagnosticKind,
    ElfFacts,
    FileFacts,
    FileFormat,
    ImageKind,
    Inventory,
    PeFacts,
    Producer,
    PtxHeader,
    Summary,
    ToolInfo,
    WrapperCheck,
    to_json,
)
from licscan.model.naming import ComponentMatch, Confidence, LicenseTextMatch, VersionClaim, VersionSource
from licscan.model.packaging import Distribution, Ecosystem, SpecialFile, SpecialKind
from licscan.model.releases import Release, ToolkitRange, release_bounds, release_of

__all__ = [
    "GPU_LAYER_KINDS",
    "Component",
    "ComponentKind",
    "ComponentMatch",
    "Compression",
    "Confidence",
    "Container",
    "Dependency",
    "DeviceImage",
    "Diagnostic",
    "DiagnosticKind",
    "Distribution",
    "Ecosystem",
    "ElfFacts",
    "FileFacts",
    "FileFormat",
    "ImageKind",
    "Inventory",
    "LicenseTextMatch",
    "PeFacts",
    "Producer",
    "PtxHeader",
    "Release",
    "SpecialFile",
    "SpecialKind",
    "Summary",
    "ToolInfo",
    "ToolkitRange",
    "VersionClaim",
    "VersionSource",
    "WrapperCheck",
    "release_bounds",
    "release_of",
    "to_json",
]
