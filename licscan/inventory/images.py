"""Container images: which blobs are the layers, in which order, and what each layer hides below it.

OCI image layout (image-spec ``image-layout.md``): an ``oci-layout`` file, ``index.json`` (an image index:
``manifests[].digest``), blobs at ``blobs/<alg>/<hex>``. A manifest (``application/vnd.oci.image.manifest.v1+json``
or the Docker v2 schema 2 equivalent) lists ``layers[].digest`` from the base layer up; an index may point at
further indexes (multi-platform images). ``docker save``: ``manifest.json`` is a list of
``{"Config": ..., "RepoTags": [...], "Layers": ["<id>/layer.tar" | "blobs/sha256/<hex>", ...]}``, base layer first.

Every reference is confined to the image (docs/security.md): a docker-save ``Layers`` entry must be a relative path
without ``..`` components (``../../outside/x.tar`` and ``/etc/hostname`` make the whole layout refused with an
:class:`ImageError`, and its files are walked as plain files), and an OCI digest must match the image-spec grammar
(``descriptor.md``), so that ``blobs/<algorithm>/<encoded>`` can only name a file under ``blobs/``. The walker then
opens a layer of a layout folder without following any link on the way (fsread.py ``open_beneath``).

Whiteouts (image-spec ``layer.md``): in a layer, ``<dir>/.wh.<name>`` deletes ``<dir>/<name>`` of the layers below;
``<dir>/.wh..wh..opq`` hides everything the layers below have under ``<dir>``. An entry of an upper layer also
replaces the lower layers' entry at the same path (and, when it is not a folder, everything below that path).
Files hidden in any of these ways still ship in the image's lower layer blobs, so the walker reports them, with
``deleted_in_upper_layer``; to know that when a file is read, layers are walked from the top layer down.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
# image-spec descriptor.md, "Digests":
#   digest                ::= algorithm ":" encoded
#   algorithm             ::= algorithm-component (algorithm-separator algorithm-component)*
#   algorithm-component   ::= [a-z0-9]+
#   algorithm-separator   ::= [+._-]
#   encoded               ::= [a-zA-Z0-9=_-]+
_DIGEST = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


@dataclass(frozen=True)
class Layer:
    path: str  # where the layer blob is, relative to the image root ("blobs/sha256/<hex>", "<id>/layer.tar")
    id: str  # "sha256:<hex>" for OCI layouts (the manifest's digest), the Layers entry for docker-save


class ImageError(ValueError):
    pass


def is_image(names: set[str]) -> bool:
    return ("oci-layout" in names and "index.json" in names) or "manifest.json" in names


def manifests(names: set[str], read_json: Callable[[str], Any]) -> list[list[Layer]] | None:
    """The layers of each image in the layout, base layer first; None when ``names`` is not an image.

    ``read_json(path)`` returns the parsed JSON of the file at ``path`` (relative to the image root) or raises."""
    if "oci-layout" in names and "index.json" in names:
        out: list[list[Layer]] = []
        _from_index(read_json("index.json"), names, read_json, out, depth=0)
        return out
    if "manifest.json" in names:
        document = read_json("manifest.json")
        if not isinstance(document, list) or not all(isinstance(m, dict) and "Layers" in m for m in document):
            return None  # some other manifest.json
        out = []
        for entry in document:
            layers = entry.get("Layers") or []
            if not isinstance(layers, list):
                raise ImageError("manifest.json Layers is not a list")
            out.append([Layer(docker_layer_path(p), _docker_id(str(p))) for p in layers])
        return out
    return None


def docker_layer_path(entry: Any) -> str:
    """A docker-save ``Layers`` entry as a path relative to the image root; ImageError when it is not a string or
    leaves the image (absolute, ``..`` components, empty)."""
    if not isinstance(entry, str) or not entry or "\0" in entry:
        raise ImageError(f"manifest.json Layers entry {entry!r} is not a path")
    path = posixpath.normpath(entry)
    if entry.startswith("/") or path == ".." or path.startswith("../") or path == ".":
        raise ImageError(f"manifest.json Layers entry {entry!r} points outside the image (never followed)")
    return path


def _docker_id(path: str) -> str:
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        return f"{parts[1]}:{parts[2]}"
    return path


def blob_path(digest: Any) -> str:
    """``blobs/<algorithm>/<encoded>`` of a descriptor's digest; ImageError unless it matches the digest grammar
    (which has no ``/`` and no ``..``: the path stays under ``blobs/``)."""
    match = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise ImageError(f"bad digest {digest!r}")
    return f"blobs/{match.group(1)}/{match.group(2)}"


def _from_index(index: Any, names: set[str], read_json: Callable[[str], Any], out: list[list[Layer]],
                depth: int) -> None:
    if depth > 4:
        raise ImageError("image indexes nested more than 4 deep")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ImageError("index without a manifests list")
    for descriptor in index["manifests"]:
        if not isinstance(descriptor, dict):
            raise ImageError("index entry is not a descriptor")
        path = blob_path(descriptor.get("digest", ""))
        if path not in names:
            raise ImageError(f"manifest blob {path} is missing")
        document = read_json(path)
        media = descriptor.get("mediaType") or (document.get("mediaType") if isinstance(document, dict) else None)
        if media in _INDEX_TYPES or (isinstance(document, dict) and "manifests" in document):
            _from_index(document, names, read_json, out, depth + 1)
            continue
        if not isinstance(document, dict) or not isinstance(document.get("layers"), list):
            raise ImageError(f"manifest {path} has no layers list")
        if not all(isinstance(layer, dict) for layer in document["layers"]):
            raise ImageError(f"manifest {path} has a layer that is not a descriptor")
        out.append([Layer(blob_path(layer.get("digest", "")), str(layer.get("digest")))
                    for layer in document["layers"]])


class Visibility:
    """What the layers walked so far (the upper ones) hide of the layers below."""

    def __init__(self) -> None:
        self._gone: set[str] = set()  # deleted or replaced by a non-folder: the path and everything below
        self._opaque: set[str] = set()  # folders whose lower content is hidden
        self._replaced: set[str] = set()  # folders of upper layers: hide a lower non-folder at that exact path
        self._pending: list[tuple[str, str]] = []

    def hidden(self, path: str, is_dir: bool = False) -> bool:
        if path in self._gone or (not is_dir and path in self._replaced):
            return True
        if not self._gone and not self._opaque:  # (the top layer: nothing above it hides a folder)
            return False
        parent = posixpath.dirname(path)
        while parent:
            if parent in self._gone or parent in self._opaque:
                return True
            parent = posixpath.dirname(parent)
        return "" in self._opaque

    @staticmethod
    def whiteout(path: str) -> tuple[str, bool] | None:
        """``(target, opaque)`` when ``path`` is a whiteout entry, else None."""
        folder, base = posixpath.split(path)
        if base == OPAQUE:
            return folder, True
        if base.startswith(WHITEOUT_PREFIX):
            return posixpath.join(folder, base[len(WHITEOUT_PREFIX):]), False
        return None

    def record(self, path: str, kind: str) -> None:
        """An entry of the current layer; takes effect for the layers below once :meth:`end_layer` is called.
        ``kind``: "whiteout", "opaque", "dir" or "file"."""
        self._pending.append((path, kind))

    def end_layer(self) -> None:
        for path, kind in self._pending:
            if kind in ("whiteout", "file"):
                self._gone.add(path)
            elif kind == "opaque":
                self._opaque.add(path)
            else:
                self._replaced.add(path)
        self._pending = []
