"""``licscan inspect --format json``: schema ``licscan-inspect/1`` (licscan/schemas/inspect.schema.json).

``device_code`` holds one entry per image, in file order, in the entry shape of the audit report (the JSON report
schema, licscan/schemas/report.schema.json) plus the details inspect knows (producer, cubin ABI, offsets, identifier, ptxas options).
"""

from __future__ import annotations

import enum
import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from licscan import __version__
from licscan.model import (
    ComponentMatch,
    Compression,
    Container,
    DeviceImage,
    Diagnostic,
    FileFacts,
    ImageKind,
    Producer,
    ToolInfo,
    ToolkitRange,
    to_json,
)

SCHEMA_ID = "licscan-inspect/1"


@functools.lru_cache(maxsize=1024)
def _tool_json(tool: ToolInfo | None) -> dict[str, Any] | None:
    out: dict[str, Any] | None = to_json(tool) if tool is not None else None
    return out


@functools.lru_cache(maxsize=1024)
def _toolkit_json(toolkit: ToolkitRange | None) -> dict[str, Any] | None:
    """Shared by the images of one toolkit range (thousands in a large library; the JSON encoder only reads it)."""
    return toolkit.to_json() if toolkit is not None else None


def device_code_entry(image: DeviceImage, shared: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """One ``device_code`` entry: the keys of the JSON report schema (licscan/schemas/report.schema.json) first, then
    inspect's details. ``shared``: the JSON of an enum member, toolkit range or tool (:func:`device_code_entries`)."""
    js = shared or _shared_json
    return {
        "path": image.path,
        "container": js(image.container),
        "kind": js(image.kind),
        "arch": image.arch,
        "ptx_isa": image.ptx_isa,
        "toolkit": js(image.toolkit) if image.toolkit is not None else None,
        "compression": js(image.compression),
        "size": image.size,
        "arch_full": image.arch_full,
        "uncompressed_size": image.uncompressed_size,
        "producer": js(image.producer) if image.producer else None,
        "tool": js(image.tool) if image.tool is not None else None,
        "linked_from": [js(t) for t in image.linked_from],
        "cubin_abi": image.cubin_abi,
        "virtual_arch": image.virtual_arch,
        "debug": image.debug,
        "host": image.host,
        "identifier": image.identifier,
        "ptxas_options": image.ptxas_options,
        "fatbin_offset": image.fatbin_offset,
        "entry_offset": image.entry_offset,
        "sha256": image.sha256,
    }


def device_code_entries(images: Sequence[DeviceImage]) -> list[dict[str, Any]]:
    """:func:`device_code_entry` of every image. The values images share (their enum members, toolkit range and
    tool) are turned into JSON once per distinct object, looked up by identity (every image is alive during the
    call, so an id is not reused): hashing a toolkit range or a tool for the caches took a third of the time."""
    json_of: dict[int, Any] = {}

    def shared(value: Any) -> Any:
        found = json_of.get(id(value), json_of)
        if found is json_of:
            found = json_of[id(value)] = _shared_json(value)
        return found

    return [device_code_entry(image, shared) for image in images]


def _shared_json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, ToolkitRange):
        return _toolkit_json(value)
    return _tool_json(value)


def diagnostic_entry(diag: Diagnostic) -> dict[str, Any]:
    return {"path": diag.path, "kind": diag.kind.value, "message": diag.message, "offset": diag.offset}


def producers(images: tuple[DeviceImage, ...]) -> list[dict[str, Any]]:
    """The set of producing tools of a file with image counts (one binary mixing toolkits is normal); the ptxas
    inputs recorded in device-linked cubins count too."""
    counts: Counter[tuple[str, str | None]] = Counter()
    for image in images:
        for tool in ((image.tool,) if image.tool else ()) + image.linked_from:
            counts[(tool.tool, tool.version)] += 1
    return [{"tool": tool, "version": version, "images": n}
            for (tool, version), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))]


def toolkits(images: tuple[DeviceImage, ...]) -> list[dict[str, Any]]:
    """Distinct toolkit ranges of the file's images, with counts, sorted."""
    counts: Counter[tuple[str | None, str | None, str | None]] = Counter()
    for image in images:
        tk = image.toolkit
        counts[(tk.low, tk.high, tk.exact) if tk else (None, None, None)] += 1
    return [{"min": low, "max": high, "exact": exact, "images": n}
            for (low, high, exact), n in sorted(counts.items(), key=lambda kv: tuple(x or "" for x in kv[0]))]


def _member(facts: FileFacts) -> dict[str, Any]:
    out = {"path": facts.path, "format": facts.format.value, "size": facts.size, "elf": to_json(facts.elf),
           "images": len(facts.all_images())}
    if facts.pe is not None:
        out["pe"] = to_json(facts.pe)
    return out


def linked_entry(part: ComponentMatch) -> dict[str, Any]:
    """One NVIDIA library linked into the file (``linked``), with the fields of a report component."""
    return {"name": part.name, "display": part.display, "vendor": part.vendor, "version": part.version,
            "version_range": part.version_range,
            "version_source": part.version_source.value if part.version_source is not None else None,
            "linked_from": part.linked_from, "license": part.license, "evidence": list(part.evidence)}


def render(facts: FileFacts, linked: Sequence[ComponentMatch] = ()) -> str:
    images = facts.all_images()
    document = {
        "schema": SCHEMA_ID,
        "tool": {"name": "licscan", "version": __version__},
        "path": facts.path,
        "format": facts.format.value,
        "size": facts.size,
        "bytes_read": facts.bytes_read,
        "elf": to_json(facts.elf),
        "wrappers": to_json(facts.wrappers),
        "ptx_header": to_json(facts.ptx_header),
        "members": [_member(m) for m in facts.members],
        "device_code": Encoded(device_code_lines(images)),
        "producers": producers(images),
        "toolkits": toolkits(images),
        "remarks": list(facts.all_remarks()),
        "diagnostics": [diagnostic_entry(d) for d in facts.all_diagnostics()],
    }
    if facts.pe is not None:  # PE images and COFF objects only (ELF files keep the document they had)
        document["pe"] = to_json(facts.pe)
    if linked:  # only when a library is linked in (every other file keeps the document it had)
        document["linked"] = [linked_entry(part) for part in linked]
    return dumps(document)


class Encoded(list[str]):
    """List items that are JSON text already (:func:`dumps` writes them as they are)."""


class EncodedLater:
    """List items that are JSON text already, made one at a time as they are written (:func:`pieces`): ``count``
    items, from ``make()``. A report of tens of thousands of images never holds their lines all at once."""

    __slots__ = ("count", "make")

    def __init__(self, count: int, make: Callable[[], Iterable[str]]) -> None:
        self.count, self.make = count, make

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        return iter(self.make())


@functools.lru_cache(maxsize=4096, typed=True)
def _value(value: object) -> str:
    """JSON of a hashable field value; thousands of images share a few dozen distinct paths, archs, toolkits."""
    if isinstance(value, enum.Enum):
        value = value.value
    elif hasattr(value, "to_json"):
        value = value.to_json()
    elif isinstance(value, tuple):
        value = [_tool_json(t) for t in value]
    elif value is not None and not isinstance(value, (str, bool)):
        value = to_json(value)
    return _ENCODER.encode(value)


def _number(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def device_code_line(image: DeviceImage) -> str:
    """:func:`device_code_entry` as JSON text, byte for byte what the encoder writes for that dict (a test checks
    it)."""
    return device_code_lines((image,))[0]


def device_code_lines(images: Sequence[DeviceImage]) -> list[str]:
    """:func:`device_code_line` of every image."""
    return list(iter_device_code_lines(images))


def iter_device_code_lines(images: Sequence[DeviceImage]) -> Iterator[str]:
    """:func:`device_code_line` of every image, one at a time. The fields images share (path, arch, toolkit, tool
    ...) are encoded once per distinct combination, the per-image numbers and strings in between: the generic
    encoder took longer than the scan of a large library. Combinations are told apart by the identity of their
    enum members and shared values (every image is alive while ``images`` is, so an id is not reused), which
    hashes without calling their Python ``__hash__``."""
    n = _number
    encode = _ENCODER.encode
    templates: dict[tuple[object, ...], tuple[str, str, str, str]] = {}
    for image in images:
        key = (image.path, id(image.container), id(image.kind), image.arch, image.ptx_isa, id(image.toolkit),
               id(image.compression), image.arch_full, id(image.producer), id(image.tool), id(image.linked_from),
               image.cubin_abi, image.virtual_arch, image.debug, image.host, image.ptxas_options)
        parts = templates.get(key)
        if parts is None:
            parts = templates[key] = _template(
                image.path, image.container, image.kind, image.arch, image.ptx_isa, image.toolkit, image.compression,
                image.arch_full, image.producer, image.tool, image.linked_from, image.cubin_abi, image.virtual_arch,
                image.debug, image.host, image.ptxas_options)
        head, middle, tail, end = parts
        yield (f"{head}{n(image.size)}{middle}{n(image.uncompressed_size)}{tail}{_value(image.identifier)}{end}"
               f"{n(image.fatbin_offset)}, \"entry_offset\": {n(image.entry_offset)}, "
               f"\"sha256\": {encode(image.sha256)}}}")


@functools.lru_cache(maxsize=4096, typed=True)
def _template(path: str, container: Container, kind: ImageKind, arch: str, ptx_isa: str | None,
              toolkit: ToolkitRange | None, compression: Compression, arch_full: str, producer: Producer | None,
              tool: ToolInfo | None, linked_from: tuple[ToolInfo, ...], cubin_abi: int | None,
              virtual_arch: str | None, debug: bool, host: str | None,
              ptxas_options: str | None) -> tuple[str, str, str, str]:
    v = _value
    return (f'{{"path": {v(path)}, "container": {v(container)}, "kind": {v(kind)}, "arch": {v(arch)}, '
            f'"ptx_isa": {v(ptx_isa)}, "toolkit": {v(toolkit)}, "compression": {v(compression)}, "size": ',
            f', "arch_full": {v(arch_full)}, "uncompressed_size": ',
            f', "producer": {v(producer)}, "tool": {v(tool)}, "linked_from": {v(linked_from)}, '
            f'"cubin_abi": {_number(cubin_abi)}, "virtual_arch": {v(virtual_arch)}, "debug": {v(debug)}, '
            f'"host": {v(host)}, "identifier": ',
            f', "ptxas_options": {v(ptxas_options)}, "fatbin_offset": ')


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


def dumps(document: dict[str, Any]) -> str:
    """JSON with one top-level key per line and one list item per line: diff-friendly, and written by the C
    encoder (``indent=`` would switch to the pure-Python one, which is slower than the whole scan of a large
    library)."""
    return "".join(pieces(document))


def pieces(document: dict[str, Any]) -> Iterator[str]:
    """The text of :func:`dumps`, one line (with its line end) at a time: what a report written to its file holds
    at once is one list item, not the report (:class:`EncodedLater` items are made as they are written)."""
    compact = _ENCODER.encode  # one encoder: json.dumps with options builds a new one per call
    yield "{\n"
    keys = list(document)
    for n, key in enumerate(keys):
        value = document[key]
        comma = "," if n < len(keys) - 1 else ""
        if isinstance(value, (list, EncodedLater)) and len(value):
            yield f"  {compact(key)}: [\n"
            texts = value if isinstance(value, (Encoded, EncodedLater)) else (compact(item) for item in value)
            last = len(value) - 1
            for i, text in enumerate(texts):
                yield f"    {text}{',' if i < last else ''}\n"
            yield f"  ]{comma}\n"
        else:
            yield f"  {compact(key)}: {compact([] if isinstance(value, EncodedLater) else value)}{comma}\n"
    yield "}\n"
