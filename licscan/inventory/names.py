"""Member names and virtual paths (licscan/vpath.py: ``OUTER!/member/path``, ``/`` separators).

A member name is never used to write anything; it only names the member. Names with ``..`` components or an
absolute path are reported and shown under a sanitized name: leading ``/`` removed, ``.``, ``..`` and empty
components dropped (``../evil`` -> ``evil``, ``/etc/x`` -> ``etc/x``).
"""

from __future__ import annotations

import os
import posixpath

from licscan.vpath import SEP

# Longest member name read (PATH_MAX on Linux): no file system can hold a longer path, and every name is kept in
# the inventory and the report. A longer one is a diagnostic that quotes its first characters only.
MAX_NAME = 4096


def sanitize(name: str) -> tuple[str, str | None]:
    """``(clean name, problem)``; ``problem`` says why the stored name is unsafe (None when it is fine)."""
    problem = None
    parts = name.split("/")
    if name.startswith("/"):
        problem = "absolute member path"
    elif any(part == ".." for part in parts):
        problem = "member path with '..' components"
    clean = [p for p in parts if p not in ("", ".", "..")]
    return "/".join(clean), problem


def display(path: str) -> str:
    """An input path as the user passed it, with ``/`` separators and no trailing separator."""
    text = path.replace(os.sep, "/")
    while len(text) > 1 and text.endswith("/"):
        text = text[:-1]
    return text


def join_relative(base: str, rel: str) -> str:
    """``rel`` (a manifest path such as a RECORD entry) relative to the virtual folder ``base``, normalized."""
    norm = posixpath.normpath(rel) if rel else "."
    if norm == ".":
        return base
    if base.endswith(SEP):  # the root of an archive
        return base + norm.lstrip("/")
    if not norm.startswith("../") and norm != ".." and not norm.startswith("/"):
        return f"{base}/{norm}"
    return posixpath.normpath(f"{base}/{rel}")
