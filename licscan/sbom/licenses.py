"""Licence expressions for the SBOM: normalise what the input declares, and find the LicenseRefs an SBOM uses so
each one gets its extracted text."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# license-expression ships no type information (no py.typed): its names are Any to mypy.
from license_expression import ExpressionError, Licensing, get_spdx_licensing  # type: ignore[import-untyped]

from licscan.sbom.data import LicenseInfo, license_tables

_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+")


@functools.cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


@functools.cache
def normalise(text: str | None) -> str | None:
    """A valid SPDX expression for ``text``, or None when it is not one (e.g. "NVIDIA Proprietary Software").

    Known non-SPDX spellings (``declared_names`` in rules/licenses/licenses.yaml) are mapped first
    ("Apache 2.0" -> "Apache-2.0", "BSD-3" -> "BSD-3-Clause").
    """
    if text is None or not text.strip():
        return None
    text = " ".join(text.split())
    names = license_tables().declared_names
    if text in names:
        return names[text]
    try:
        info = _licensing().validate(text)
        if any(not _REF.fullmatch(s) for s in info.invalid_symbols):
            return None
        if info.errors and not info.invalid_symbols:
            return None
        return str(_licensing().parse(text, simple=False))
    except (ExpressionError, ValueError, TypeError, AttributeError):  # validate() itself fails on some input
        return None


def refs(expression: str | None) -> set[str]:
    """The LicenseRef ids in an SPDX expression."""
    if not expression:
        return set()
    return set(_REF.findall(expression))


def extracted(ids: Iterable[str]) -> list[LicenseInfo]:
    """One :class:`LicenseInfo` per LicenseRef, sorted by id: the rule-pack text when licscan knows the licence,
    else a statement that the identifier was found in the input without a text."""
    tables = license_tables()
    out = []
    for license_id in sorted(set(ids)):
        info = tables.info(license_id)
        if info is None:
            info = LicenseInfo(
                id=license_id, name=license_id,
                text=(f"Licence identifier {license_id} as stated in the scanned input. licscan holds no text or "
                      f"description for it; full text not reproduced."),
                urls=(), comment="Identifier not known to licscan's licence table (rules/licenses/licenses.yaml).")
        out.append(info)
    return out
