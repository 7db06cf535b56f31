"""A component: a named third-party part found in the input, with the facts the naming layer states about it.

The facts are typed fields (enums for closed value sets, tuples where a component named in several files keeps
every file's value). Reports, the SBOM and the rules' facts read them as ``properties``, a list of (key, value)
strings (the JSON report schema (licscan/schemas/report.schema.json) ``components[].properties``, the rules'
``properties.<key>`` fields (licscan/schemas/facts.schema.json), the SBOM's ``licscan:<key>`` properties):
:func:`component_properties` is the one place that turns the fields into those strings, and
:data:`PROPERTY_KEYS` says which field each key comes from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from licscan.model.packaging import Ecosystem


class ComponentKind(enum.Enum):
    SDK_LIBRARY = "sdk-library"
    DRIVER = "driver"
    KERNEL_MODULE = "kernel-module"
    DEVELOPER_TOOL = "developer-tool"
    # Layers that run CUDA output or CUDA's API on non-NVIDIA GPUs, and the runtimes they sit on (docs/layers.md;
    # the layer catalog under rules/catalog/ names them).
    OUTPUT_CONSUMER = "output-consumer"  # runs NVIDIA compiler output (PTX/SASS) elsewhere: ZLUDA, gpuocelot
    SOURCE_PORT = "source-port"  # CUDA source built for another platform: SCALE, chipStar, CuPy ROCm
    API_REIMPLEMENTATION = "api-reimplementation"  # CUDA's API implemented on another runtime
    RUNTIME_SHIPPED = "runtime-shipped"  # a non-NVIDIA GPU runtime library ships ("ships ROCm")
    TARGET_LINKED = "target-linked"  # a library linked against such a runtime ("targets ROCm")
    PYTHON_DISTRIBUTION = "python-distribution"
    LICENSE_TEXT = "license-text"


#: The kinds of the layer catalog (rules/catalog/); the first three translate CUDA (docs/layers.md).
GPU_LAYER_KINDS = frozenset({ComponentKind.OUTPUT_CONSUMER, ComponentKind.SOURCE_PORT,
                             ComponentKind.API_REIMPLEMENTATION, ComponentKind.RUNTIME_SHIPPED,
                             ComponentKind.TARGET_LINKED})


class Confidence(str, enum.Enum):
    """How sure the naming layer is that a file is the component it names (high: content and name agree)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    def __str__(self) -> str:
        return self.value


#: Lowest first: the confidence of a component named in several files is the highest of theirs (docs/layers.md).
CONFIDENCE_ORDER = (Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH)


class VersionSource(enum.Enum):
    """Where a component's version was read, most trusted first."""

    MARKER = "marker"  # a version string inside the file
    FILE_NAME = "file-name"  # libcublas.so.12.9.1.4, libcuda.so.580.159.04
    SONAME = "soname"  # DT_SONAME libcublas.so.12
    DISTRIBUTION = "distribution-metadata"  # wheel METADATA "Version:" of an nvidia-* distribution
    DEBIAN = "debian-metadata"
    CONDA = "conda-metadata"
    MODINFO = "modinfo"  # a kernel module's .modinfo "version=" field
    DEVICE_CODE = "device-code"  # a statically linked runtime: the toolkit of the device code linked beside it


class Modification(enum.Enum):
    """How a file differs from the one NVIDIA ships: what a rule on the CUDA EULA's "not modified in any way"
    tests (``properties.modified``)."""

    AUDITWHEEL_GRAFTED = "auditwheel-grafted"  # auditwheel inserted "-<hash>" before ".so"
    SONAME_REWRITTEN = "soname-rewritten"  # DT_SONAME is not the one NVIDIA's file has
    SONAME_MISSING = "soname-missing"  # no DT_SONAME where NVIDIA's file has one
    RUNPATH_ADDED = "runpath-added"  # DT_RUNPATH/DT_RPATH set where NVIDIA ships none
    STRIPPED = "stripped"  # no .symtab where NVIDIA ships one
    SHA256_DIFFERS = "sha256-differs-from-record"  # the bytes are not those its distribution's RECORD lists


@dataclass(frozen=True)
class ModInfo:
    """The ``.modinfo`` fields of a kernel module that licscan reports, as the module states them
    (``license=``, ``version=``, ``vermagic=``; None when absent)."""

    license: str | None = None
    version: str | None = None
    vermagic: str | None = None


@dataclass(frozen=True)
class LayerFacts:
    """How a layer or non-NVIDIA GPU runtime was named from the file's content (docs/layers.md)."""

    signals: tuple[str, ...]  # ids of the signals that fired (rules/catalog/translation-layers.yaml)
    replaces: bool = False  # a CUDA-named file proved to be a drop-in replacement ("replaces": "cuda-named")
    platform: str | None = None  # the platform the layer runs on ("AMD ROCm")
    project: str | None = None  # the project that makes it


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
    vendor: str = ""  # the document's `vendor` (rules/catalog/license-texts.yaml): "NVIDIA" or ""


@dataclass(frozen=True)
class Component:
    """A named third-party part found in the input (the JSON report schema (licscan/schemas/report.schema.json)
    ``components``).

    A component named in several files keeps every file's value of a fact in a tuple (distinct values, in the
    order of their serialized strings), except ``confidence`` (the highest) and the layer's signals (their union).
    """

    id: str
    name: str
    vendor: str
    kind: ComponentKind
    version: str | None
    license: str | None
    paths: tuple[str, ...]
    evidence: tuple[str, ...]
    confidence: Confidence | None = None  # of the naming layer's matches
    version_sources: tuple[VersionSource, ...] = ()
    version_ranges: tuple[str, ...] = ()  # "12.x", "12.4.x": what is known when no source states a full release
    licenses_declared: tuple[str, ...] = ()  # what the enclosing distribution declares, as found
    modifications: tuple[Modification, ...] = ()
    distributions: tuple[str, ...] = ()  # names of the enclosing distributions
    distribution_version: str | None = None  # that distribution's version, when it is not in the inventory
    grafted_hashes: tuple[str, ...] = ()  # the "-<hash>" auditwheel inserted into the file name
    modules: tuple[str, ...] = ()  # a kernel module's name, from its file name
    runpaths: tuple[str, ...] = ()  # DT_RUNPATH (else DT_RPATH) as the ELF file states it, ":"-separated
    modinfo: tuple[ModInfo, ...] = ()
    flavours: tuple[str, ...] = ()  # a kernel module's flavour (rules/catalog/nvidia.yaml kernel_licenses)
    layer: LayerFacts | None = None
    license_text: LicenseTextMatch | None = None  # kind license-text
    ecosystem: Ecosystem | None = None  # kind python-distribution
    declared_names: tuple[str, ...] = ()  # the name a renamed file gives itself (SONAME, PE export name)
    linked_from: tuple[str, ...] = ()  # the static library a part linked into another binary came from


_RELATION = {ComponentKind.TARGET_LINKED: "targets", ComponentKind.RUNTIME_SHIPPED: "ships"}

#: Joins the values of one key into one string: the layer's ``signals``, and in :func:`property_map` every value of
#: a key a component has several of (sorted). A value may itself hold the separator (a declared licence such as
#: "MIT, BSD-3-Clause"): the joined string is for reading and for ``matches``/``regex`` tests, not for splitting.
VALUE_SEPARATOR = ","

#: Every key of ``properties`` -> (the typed field it is read from, what it means); the rules' fact schema
#: (licscan/rules/factschema.py) documents ``properties.<key>`` from this table.
PROPERTY_KEYS: dict[str, tuple[str, str]] = {
    "confidence": ("Component.confidence", "how sure the naming layer is: high, medium or low"),
    "version_source": ("Component.version_sources", "where the version was read (marker, file-name, soname, "
                                                    "distribution-metadata, debian-metadata, conda-metadata, modinfo, "
                                                    "device-code)"),
    "version_range": ("Component.version_ranges", "what is known of the version when no source states a full "
                                                  "release (12.x, 12.4.x)"),
    "license_declared": ("Component.licenses_declared", "licence the enclosing distribution declares, as found"),
    "modified": ("Component.modifications", "how the file differs from NVIDIA's (auditwheel-grafted, "
                                            "soname-rewritten, soname-missing, runpath-added, stripped, "
                                            "sha256-differs-from-record)"),
    "distribution": ("Component.distributions", "name of the enclosing distribution"),
    "distribution_version": ("Component.distribution_version", "version of that distribution"),
    "grafted_hash": ("Component.grafted_hashes", "the hash auditwheel inserted into the file name"),
    "module": ("Component.modules", "kernel module name, from the file name"),
    "runpath": ("Component.runpaths", "DT_RUNPATH (else DT_RPATH), entries separated by ':'"),
    "modinfo_license": ("ModInfo.license", "a kernel module's .modinfo license="),
    "modinfo_version": ("ModInfo.version", "a kernel module's .modinfo version="),
    "modinfo_vermagic": ("ModInfo.vermagic", "a kernel module's .modinfo vermagic="),
    "flavour": ("Component.flavours", "kernel module flavour: open, proprietary or unknown"),
    "declared_name": ("Component.declared_names", "the name a file shipped under another name gives itself: its "
                                                  "SONAME, a DLL's export name or version-resource "
                                                  "OriginalFilename (the name Attachment A is read for)"),
    "linked_from": ("Component.linked_from", "the NVIDIA static library a part linked into another binary came "
                                             "from (libcudart_static.a, cudart_static.lib: the name Attachment A "
                                             "is read for)"),
    "signals": ("LayerFacts.signals", "ids of the layer signals that fired, ','-separated (sorted when the "
                                      "component was named in several files)"),
    "replaces": ("LayerFacts.replaces", "cuda-named: a CUDA-named file that is a drop-in replacement"),
    "platform": ("LayerFacts.platform", "the platform a layer runs on"),
    "project": ("LayerFacts.project", "the project that makes a layer"),
    "relation": ("Component.kind", "targets (kind target-linked) or ships (kind runtime-shipped)"),
    "document": ("LicenseTextMatch.document", "licence text catalog id"),
    "match_method": ("LicenseTextMatch.method", "how the text was matched: sha256, normalized-sha256, phrases"),
    "sha256": ("LicenseTextMatch.sha256", "SHA-256 of the licence text file"),
    "eula_text_date": ("LicenseTextMatch.date", "the text's own date, ISO"),
    "translation_clause": ("LicenseTextMatch.translation_clause", "yes or no: the text has the translation clause"),
    "variant": ("LicenseTextMatch.variant", "variant of the licence text"),
    "ecosystem": ("Component.ecosystem", "ecosystem of a python-distribution component (pypi)"),
}


def component_properties(component: Component) -> tuple[tuple[str, str], ...]:
    """The component's facts as (key, value) strings, distinct, sorted: every value of a multi-valued fact. The
    SBOM's ``licscan:<key>`` properties list them all."""
    c = component
    pairs: list[tuple[str, str]] = []
    if c.confidence is not None:
        pairs.append(("confidence", c.confidence.value))
    pairs += [("version_source", s.value) for s in c.version_sources]
    pairs += [("version_range", v) for v in c.version_ranges]
    pairs += [("license_declared", v) for v in c.licenses_declared]
    pairs += [("modified", m.value) for m in c.modifications]
    pairs += [("distribution", v) for v in c.distributions]
    if c.distribution_version is not None:
        pairs.append(("distribution_version", c.distribution_version))
    pairs += [("grafted_hash", v) for v in c.grafted_hashes]
    pairs += [("module", v) for v in c.modules]
    pairs += [("runpath", v) for v in c.runpaths]
    for info in c.modinfo:
        pairs += [(f"modinfo_{key}", value) for key, value in
                  (("license", info.license), ("version", info.version), ("vermagic", info.vermagic))
                  if value is not None]
    pairs += [("flavour", v) for v in c.flavours]
    pairs += [("declared_name", v) for v in c.declared_names]
    pairs += [("linked_from", v) for v in c.linked_from]
    if c.layer is not None:
        pairs += _layer_pairs(c.layer, c.kind)
    if c.license_text is not None:
        pairs += _text_pairs(c.license_text)
    if c.ecosystem is not None:
        pairs.append(("ecosystem", c.ecosystem.value))
    return tuple(sorted(set(pairs)))


def _layer_pairs(layer: LayerFacts, kind: ComponentKind) -> list[tuple[str, str]]:
    pairs = [("signals", VALUE_SEPARATOR.join(layer.signals))] if layer.signals else []
    if layer.replaces:
        pairs.append(("replaces", "cuda-named"))
    if layer.platform is not None:
        pairs.append(("platform", layer.platform))
    if layer.project:
        pairs.append(("project", layer.project))
    if kind in _RELATION:
        pairs.append(("relation", _RELATION[kind]))
    return pairs


def _text_pairs(text: LicenseTextMatch) -> list[tuple[str, str]]:
    pairs = [("document", text.document), ("match_method", text.method), ("sha256", text.sha256)]
    if text.date:
        pairs.append(("eula_text_date", text.date))
    if text.translation_clause is not None:
        pairs.append(("translation_clause", "yes" if text.translation_clause else "no"))
    if text.variant:
        pairs.append(("variant", text.variant))
    return pairs


def property_map(component: Component) -> dict[str, str]:
    """The component's ``properties`` object of the JSON report and of the rules' facts: one string per key, every
    value of a key a component named in several files has several of, sorted and joined with
    :data:`VALUE_SEPARATOR` (a grafted cudart: ``"modified": "auditwheel-grafted,sha256-differs-from-record,
    soname-missing"``)."""
    values: dict[str, list[str]] = {}
    for key, value in component_properties(component):  # sorted by key, then value
        values.setdefault(key, []).append(value)
    return {key: VALUE_SEPARATOR.join(same) for key, same in values.items()}


__all__ = [
    "CONFIDENCE_ORDER",
    "GPU_LAYER_KINDS",
    "PROPERTY_KEYS",
    "VALUE_SEPARATOR",
    "Component",
    "ComponentKind",
    "Confidence",
    "LayerFacts",
    "LicenseTextMatch",
    "ModInfo",
    "Modification",
    "VersionSource",
    "component_properties",
    "property_map",
]
