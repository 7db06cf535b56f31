"""Container images as the walker meets them (walk.py "Images"): an OCI layout or an extracted docker-save in a
folder, or either stored as a tar. The image's manifests (images.py) name its layers; the walker yields the image's
other files first, then the layers of each manifest from the top layer down, each layer once, tracking what upper
layers hide (:class:`images.Visibility`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from licscan.binary.stream import WindowStream
from licscan.inventory import images, names
from licscan.inventory.entries import ArchiveError, Buffer, Entry, EntryType, tar_entries
from licscan.inventory.fsread import is_real_dir, read_small
from licscan.inventory.items import Item
from licscan.inventory.limits import WalkLimits
from licscan.inventory.spool import LimitExceeded
from licscan.model import Diagnostic, DiagnosticKind
from licscan.vpath import join

if TYPE_CHECKING:
    from licscan.inventory.archives import Level, Walker

_IMAGE_FILES = {"manifest.json", "oci-layout", "index.json"}

Plan = list[list[images.Layer]]  # the layers of each image, base layer first (images.manifests)


def plan(vpath: str, present: set[str], read_json: Callable[[str], Any]) -> tuple[Plan | None, Diagnostic | None]:
    """The image plan of the files ``present`` (paths relative to the image root), or the diagnostic saying why the
    layout is not followed."""
    try:
        return images.manifests(present, read_json), None
    except (images.ImageError, ValueError, OSError, KeyError, TypeError, AttributeError, RecursionError) as error:
        return None, Diagnostic(vpath, DiagnosticKind.MALFORMED, f"image layout not followed ({error}): "
                                                                 f"walked as plain files")


def folder_plan(path: str, vpath: str, files: set[str],
                limits: WalkLimits) -> tuple[Plan | None, set[str], Diagnostic | None]:
    """The image plan of a folder holding an OCI layout or an extracted docker-save, the real paths of its layer
    files, and the diagnostic of a layout not followed; ``(None, set(), None)`` for any other folder."""
    if not images.is_image(files):
        return None, set(), None
    present = set(files)
    blobs = os.path.join(path, "blobs")
    if is_real_dir(blobs):
        for algorithm in sorted(os.listdir(blobs)):
            folder = os.path.join(blobs, algorithm)
            if is_real_dir(folder):
                present.update(f"blobs/{algorithm}/{n}" for n in os.listdir(folder))
    for layer_dir in os.listdir(path):  # docker-save: <id>/layer.tar
        candidate = os.path.join(path, layer_dir, "layer.tar")
        if is_real_dir(os.path.join(path, layer_dir)) and os.path.isfile(candidate) \
                and not os.path.islink(candidate):
            present.add(f"{layer_dir}/layer.tar")

    def read_json(rel: str) -> Any:
        return json.loads(read_small(path, rel, limits.max_metadata_bytes))

    found, problem = plan(vpath, present, read_json)
    if not found:
        return None, set(), problem
    return found, {os.path.join(path, *layer.path.split("/")) for layers in found for layer in layers}, problem


def tar_has_image_files(buf: Buffer) -> bool:
    """Whether the tar has the top-level files of an image (images.is_image), by name only."""
    top: set[str] = set()
    try:
        for entry in tar_entries(WindowStream(buf), streamed=False, buf=buf):
            clean, _ = names.sanitize(entry.name)
            if clean in _IMAGE_FILES:
                top.add(clean)
                if images.is_image(top):
                    return True
    except (ArchiveError, LimitExceeded):
        return False
    return False


def tar_plan(limits: WalkLimits, level: Level, listed: dict[str, Entry]) -> Plan | None:
    """The image plan of a tar whose members are ``listed`` by clean name; a layout not followed is noted in
    ``level.extra``."""
    def read_json(rel: str) -> Any:
        entry = listed.get(rel)
        if entry is None or entry.window is None:
            raise images.ImageError(f"{rel} is missing or not a plain member")
        buf, offset, size = entry.window
        if size > limits.max_metadata_bytes:
            raise images.ImageError(f"{rel} is larger than {limits.max_metadata_bytes} bytes")
        return json.loads(bytes(buf[offset : offset + size]))

    found, problem = plan(level.vpath, set(listed), read_json)
    if problem is not None:
        level.extra.append(problem)
    return found


def tar_layer(walker: Walker, level: Level, listed: dict[str, Entry], layer: images.Layer,
              visibility: images.Visibility) -> Iterator[Item]:
    """One layer of an image stored as a tar: a member of it, walked as an archive of its own."""
    vpath = join(level.vpath, layer.path)
    entry = listed.get(layer.path)
    if entry is None or entry.type is not EntryType.FILE:
        yield Diagnostic(vpath, DiagnosticKind.MALFORMED, f"image layer {layer.id} is missing from the image")
        return
    refused = walker.count_member(vpath)
    if refused is not None:
        yield refused
        return
    walker.memory.seen.add(vpath)
    yield from walker.member_file(level, vpath, entry, level.deleted, visibility=visibility, layer=layer.id)


def layers(found: Plan, walk_layer: Callable[[images.Layer, images.Visibility], Iterator[Item]]) -> Iterator[Item]:
    """Each image's layers from the top down, each layer once (``walk_layer(layer, visibility)``)."""
    done: set[str] = set()
    for image in found:
        visibility = images.Visibility()
        for layer in reversed(image):
            if layer.path in done:
                continue
            done.add(layer.path)
            yield from walk_layer(layer, visibility)
            visibility.end_layer()
