"""The model: frozen values that flow one way through licscan, bytes to verdict (docs/architecture.md).

- :mod:`licscan.model.facts`: what the readers state about bytes (file formats, device images, diagnostics) and
  the inventory a scan collects;
- :mod:`licscan.model.component`: a named part with its typed facts, and the one conversion of those facts to
  the ``properties`` strings reports, the SBOM and the rules read;
- :mod:`licscan.model.releases`: releases and the one release-range type (:class:`ToolkitRange`) every layer uses;
- :mod:`licscan.model.packaging`: what the walker learns from packaging metadata (distributions, special files);
- :mod:`licscan.model.naming`: what the naming layer says (component matches, version claims, licence texts);
- :mod:`licscan.findings`: what the rules say (findings, severities, verdicts, exit codes).

Everything is importable from ``licscan.model``.
"""

from licscan.model.component import (
    CONFIDENCE_ORDER,
    GPU_LAYER_KINDS,
    PROPERTY_KEYS,
    VALUE_SEPARATOR,
    Component,
    ComponentKind,
    Confidence,
    LayerFacts,
    LicenseTextMatch,
    Modification,
    ModInfo,
    VersionSource,
    component_properties,
    property_map,
)
from licscan.model.facts import (
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
    PeVersionInfo,
    Producer,
    PtxHeader,
    Summary,
    ToolInfo,
    WrapperCheck,
    to_json,
)
from licscan.model.naming import ComponentMatch, VersionClaim
from licscan.model.packaging import Distribution, Ecosystem, SpecialFile, SpecialKind
from licscan.model.releases import Release, ToolkitRange, release_bounds, release_of

__all__ = [
    "CONFIDENCE_ORDER",
    "GPU_LAYER_KINDS",
    "PROPERTY_KEYS",
    "VALUE_SEPARATOR",
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
    "LayerFacts",
    "LicenseTextMatch",
    "ModInfo",
    "Modification",
    "PeFacts",
    "PeVersionInfo",
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
    "component_properties",
    "property_map",
    "release_bounds",
    "release_of",
    "to_json",
]
