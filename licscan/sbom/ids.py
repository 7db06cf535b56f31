"""Deterministic identity for SBOM documents and elements."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import datetime

from licscan import clock

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")  # SPDX ids allow letters, digits, "." and "-" only ("_" is rejected)
NAMESPACE = uuid.UUID("6f0b7d1e-3c55-5b8e-9a43-6c1c2a9e5d10")  # licscan's uuid5 namespace for SBOM documents


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


def element_id(kind: str, label: str, *identity: str) -> str:
    """``SPDXRef-<kind>-<label slug>-<10 hex of the identity>``: readable, unique, the same for the same content."""
    slug = _UNSAFE.sub("-", label).strip("-.")[:48].strip("-.") or "x"
    return f"SPDXRef-{kind}-{slug}-{digest(kind, *identity)[:10]}"


def document_uuid(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, digest(*parts))


def created_now(environ: Mapping[str, str] | None = None) -> datetime:
    """The SBOM's creation time: :func:`licscan.clock.now`."""
    return clock.now(environ)


def slug(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-.").lower() or "x"
