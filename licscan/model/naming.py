"""What the naming layer (``licscan.identify``) says about a file: the components it holds, the version claims
behind each, the licence texts it is."""

from __future__ import annotations

from dataclasses import dataclass

from licscan.model.component import (
    Component,
    ComponentKind,
    Confidence,
    LayerFacts,
    LicenseTextMatch,
    Modification,
    ModInfo,
    VersionSource,
)


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
    modifications: tuple[Modification, ...] = ()
    versions: tuple[VersionClaim, ...] = ()  # every claim seen, most trusted first
    distribution: str | None = None  # name of the enclosing distribution
    grafted_hash: str | None = None  # the "-<hash>" auditwheel inserted before ".so"
    module: str | None = None  # a kernel module's name, from its file name
    runpath: str | None = None  # DT_RUNPATH (else DT_RPATH), ":"-separated
    modinfo: ModInfo | None = None  # a kernel module's .modinfo fields
    flavour: str | None = None  # a kernel module's flavour (rules/catalog/nvidia.yaml kernel_licenses)
    layer: LayerFacts | None = None  # how a layer was named from the file's content (docs/layers.md)
    declared_name: str | None = None  # a file shipped under another name: the SONAME or DLL name it declares
    linked_from: str | None = None  # a part linked into the file: the static library it came from

    def to_component(self, component_id: str, paths: tuple[str, ...]) -> Component:
        """The report's :class:`Component` for this one file (:func:`licscan.identify.components.components`
        merges the components of several files)."""
        return Component(
            component_id, self.name, self.vendor, self.kind, self.version, self.license, paths, self.evidence,
            confidence=Confidence(self.confidence),
            version_sources=(self.version_source,) if self.version_source is not None else (),
            version_ranges=(self.version_range,) if self.version_range else (),
            licenses_declared=(self.license_declared,) if self.license_declared else (),
            modifications=self.modifications,
            distributions=(self.distribution,) if self.distribution is not None else (),
            grafted_hashes=(self.grafted_hash,) if self.grafted_hash is not None else (),
            modules=(self.module,) if self.module is not None else (),
            runpaths=(self.runpath,) if self.runpath is not None else (),
            modinfo=(self.modinfo,) if self.modinfo is not None else (),
            flavours=(self.flavour,) if self.flavour is not None else (),
            declared_names=(self.declared_name,) if self.declared_name is not None else (),
            linked_from=(self.linked_from,) if self.linked_from is not None else (),
            layer=self.layer)


__all__ = ["ComponentMatch", "Confidence", "LicenseTextMatch", "VersionClaim", "VersionSource"]
