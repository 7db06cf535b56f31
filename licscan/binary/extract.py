"""``licscan inspect --extract DIR``: write every decompressed image, named as ``cuobjdump -xelf/-xptx`` names them
(``<stem>.<n>.<arch>.cubin`` / ``.ptx``, ``n`` counting cubins and PTX separately in file order)."""

from __future__ import annotations

import mmap
import os
from dataclasses import replace

from licscan.binary import fatbin, images
from licscan.binary.errors import FormatError
from licscan.binary.images import Limits
from licscan.model import Container, Diagnostic, DiagnosticKind, FileFacts, ImageKind


def extract(path: str, facts: FileFacts, directory: str, limits: Limits) -> FileFacts:
    """Write the images of ``facts`` (inspected from ``path``) into ``directory``; failures become diagnostics."""
    os.makedirs(directory, exist_ok=True)
    stem = os.path.basename(path).split(".", 1)[0] or "image"
    counters = {ImageKind.CUBIN: 0, ImageKind.PTX: 0}
    problems: list[Diagnostic] = []
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        for image in facts.all_images():
            counters[image.kind] += 1
            suffix = "cubin" if image.kind is ImageKind.CUBIN else "ptx"
            name = f"{stem}.{counters[image.kind]}.{image.arch}.{suffix}"
            try:
                if image.container is Container.STANDALONE and image.fatbin_offset is None:
                    start = image.entry_offset or 0
                    data = bytes(buf[start : start + image.size])
                    if image.kind is ImageKind.PTX:
                        data = data.split(b"\0", 1)[0]
                else:
                    end = image.fatbin_offset + 16 + _fat_size(buf, image.fatbin_offset)
                    entry = fatbin.parse_entry(buf, image.entry_offset, min(end, len(buf)))
                    data = images.payload(buf, entry, limits)
            except FormatError as error:
                problems.append(Diagnostic(image.path, DiagnosticKind.DECOMPRESSION,
                                           f"not extracted ({name}): {error.reason}", image.entry_offset))
                continue
            target = os.path.join(directory, name)
            with open(target, "wb") as out:
                out.write(data)
    return replace(facts, diagnostics=facts.diagnostics + tuple(problems)) if problems else facts


def _fat_size(buf, offset: int) -> int:
    return int.from_bytes(buf[offset + 8 : offset + 16], "little")
