"""rules/attachment-a.yaml against the primary copies of each examined CUDA EULA text (rules/licenses/documents.yaml):
per component heading and platform row ("Windows", "Mac OSX", "Linux", "Android", "All"), the names the text prints
are the names the data gives that text, and a name's ending tells its row as licscan/rules/attachment.py
``platform_of`` reads it. Nothing of the texts is committed: they are read from the registries into the test cache.

Runs with LICSCAN_REALWORLD=1 or when the packages are cached (tests/licence_copies.py).
"""
from __future__ import annotations

import re

import licence_copies
import pytest

from licscan.knowledge import load_table
from licscan.rules import attachment, documents
from licscan.rules.attachment import Platform, platform_of

pytestmark = pytest.mark.realworld
DATA = attachment.load()
ROWS = ("Windows", "Mac OSX", "Linux", "Android", "All")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+\.(?:dll|lib|so|a|dylib|h|hpp|bc)$")
#: one primary copy per distinct text body (sha256) of each examined text
COPIES = list({(t.id, c.sha256): (t, c) for t in documents.load().document("cuda-eula").texts.values()
               if t.examined for c in t.copies if c.kind == "primary"}.values())


def _lines(raw: bytes, fmt: str) -> list[str]:
    """The text's lines, stripped, blank ones left out (Debian copyright: the leading space and lone "." removed,
    as documents.normalise reads it)."""
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if fmt == "debian-copyright":
            line = line[1:] if line.startswith(" ") else line
            line = "" if line.strip() == "." else line
        if line.strip():
            out.append(line.strip())
    return out


def _rows(lines: list[str]) -> set[tuple[str, str, str]]:
    """(component heading, row, name as printed) of Attachment A: "2.6. Attachment A" to "2.7. Attachment B"."""
    section = lines[lines.index("2.6. Attachment A") + 1:lines.index("2.7. Attachment B")]
    found: set[tuple[str, str, str]] = set()
    heading = row = None
    index = 0
    while index < len(section):
        line = section[index]
        if line == "Component":
            words = []
            index += 1
            while section[index] not in ROWS and section[index] != "Component":
                words.append(section[index])
                index += 1
            heading, row = " ".join(words), None
            continue
        if line in ROWS and heading is not None:
            row = line
        elif row is not None:
            tokens = [t for t in re.split(r"[,\s]+", line) if t]
            if tokens and all(_NAME.match(t) for t in tokens):
                found.update((heading, row, t) for t in tokens)
            else:
                heading = row = None  # the prose after the last list (the driver condition, Jetson)
        index += 1
    return found


def _data(text_id: str) -> set[tuple[str, str]]:
    """(heading, name as the text prints it) the data gives ``text_id``."""
    printed: dict[str, str] = {}
    for group in load_table(attachment.DATA)["files"]:
        printed.update(group.get("printed", {}))
    return {(item.component or "", printed.get(name, name)) for item in DATA.listings if text_id in item.texts
            for name in item.names}


@pytest.mark.parametrize("pair", COPIES, ids=[f"{t.id}/{c.registry}:{c.package}={c.version}" for t, c in COPIES])
def test_attachment_a_rows_match_the_primary_copy(pair, request):
    text, copy = pair
    raw = licence_copies.copy_or_skip(copy, request.config)
    rows = _rows(_lines(raw, copy.format))
    assert {(heading, name) for heading, _, name in rows} == _data(text.id)
    for heading, row, name in rows:
        platform = platform_of(name)
        if platform is Platform.WINDOWS:
            assert row == "Windows", (heading, row, name)
        elif platform is Platform.LINUX:
            assert row in ("Linux", "Android") or (row == "Mac OSX" and (heading, "Linux", name) in rows), name
        elif platform is Platform.MACOS:
            assert row == "Mac OSX", name
        else:
            assert name == "libdevice.10.bc" or row == "All", (heading, row, name)
    windows = {name for _, row, name in rows if row == "Windows"}
    assert sorted(n for n in windows if attachment.is_static(n)) == ["cudart_static.lib"]
    assert {(h, n) for h, r, n in rows if r == "Windows" and h in (
        "CUDA Runtime", "NVIDIA Runtime Compilation Library and Header", "NVIDIA JIT Linking Library",
        "NVIDIA CUDA Driver Libraries")} == {
        ("CUDA Runtime", "cudart.dll"), ("CUDA Runtime", "cudart_static.lib"), ("CUDA Runtime", "cudadevrt.lib"),
        ("NVIDIA Runtime Compilation Library and Header", "nvrtc.dll"),
        ("NVIDIA Runtime Compilation Library and Header", "nvrtc-builtins.dll"),
        *((("NVIDIA JIT Linking Library", "libnvJitLink.dll"), ("NVIDIA JIT Linking Library", "libnvJitLink.lib"))
          if text.id == "2024-01-12" else ())}
