"""``licscan inspect --extract DIR``: write every decompressed image, named as ``cuobjdump -xelf/-xptx`` names them
(``<stem>.<n>.<arch>.cubin`` / ``.ptx``, ``n`` counting cubins and PTX separately in file order).

The architecture comes from the file (a PTX ``.target`` line is free text), so a name keeps only letters, digits,
``_``, ``.`` and ``-`` and at most ``MAX_NAME_BYTES`` bytes (a longer one ends in a hash of the full name). Each
image is written to a new temporary file in DIR and renamed over its name: an entry already in DIR (a symbolic
link to a file elsewhere, say) is replaced, never followed or written through.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import secrets
from dataclasses import replace

from licscan.binary import fatbin, images
from licscan.binary.buffer import Buffer
from licscan.binary.errors import FormatError
from licscan.binary.images import Limits
from licscan.model import Container, Diagnostic, DiagnosticKind, FileFacts, ImageKind


def extract(path: str, facts: FileFacts, directory: str, limits: Limits) -> FileFacts:
    """Write the images of ``facts`` (inspected from ``path``) into ``directory``; failures become diagnostics."""
    os.makedirs(directory, exist_ok=True)
    stem = os.path.basename(path).split(".", 1)[0]
    counters = {ImageKind.CUBIN: 0, ImageKind.PTX: 0}
    problems: list[Diagnostic] = []
    others = 0
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        for image in facts.all_images():
            if image.kind not in counters:
                others += 1  # AMD code objects and SPIR-V: cuobjdump's -xelf/-xptx write NVIDIA images only
                continue
            counters[image.kind] += 1
            suffix = "cubin" if image.kind is ImageKind.CUBIN else "ptx"
            name = image_name(stem, counters[image.kind], image.arch, suffix)
            try:
                if image.container is Container.STANDALONE and image.fatbin_offset is None:
                    start = image.entry_offset or 0
                    data = bytes(buf[start : start + image.size])
                    if image.kind is ImageKind.PTX:
                        data = data.split(b"\0", 1)[0]
                elif image.fatbin_offset is None or image.entry_offset is None:
                    raise FormatError(None, "not inside a fatbin entry: no fatbin to extract it from")
                else:
                    end = image.fatbin_offset + 16 + _fat_size(buf, image.fatbin_offset)
                    entry = fatbin.parse_entry(buf, image.entry_offset, min(end, len(buf)))
                    data = images.payload(buf, entry, limits)
            except FormatError as error:
                problems.append(Diagnostic(image.path, DiagnosticKind.DECOMPRESSION,
                                           f"not extracted ({name}): {error.reason}", image.entry_offset))
                continue
            write_new(directory, name, data)
    if others:
        facts = replace(facts, remarks=facts.remarks + (
            f"{others} AMD code objects or SPIR-V modules were not extracted: --extract writes NVIDIA cubins and PTX",))
    return replace(facts, diagnostics=facts.diagnostics + tuple(problems)) if problems else facts


MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def image_name(stem: str, number: int, arch: str, suffix: str) -> str:
    """``<stem>.<number>.<arch>.<suffix>``, the architecture (read from the file) with only safe characters, at most
    MAX_NAME_BYTES bytes (``stem`` is the input's own name, given on the command line)."""
    stem = stem or "image"
    arch = _UNSAFE.sub("_", arch).strip(".") or "unknown"
    name = f"{stem}.{number}.{arch}.{suffix}"
    if len(name.encode("utf-8", "surrogateescape")) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    keep = MAX_NAME_BYTES - len(f".{number}..{digest}.{suffix}")
    return f"{stem[:keep // 2]}.{number}.{arch[:keep - keep // 2]}.{digest}.{suffix}"


def write_new(directory: str, name: str, data: bytes) -> None:
    """``directory/name`` = ``data``, through a new temporary file renamed over ``name`` (raises OSError)."""
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, os.path.join(directory, name))
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _fat_size(buf: Buffer, offset: int) -> int:
    return int.from_bytes(buf[offset + 8 : offset + 16], "little")
