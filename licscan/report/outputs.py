"""``licscan audit`` reports: which formats go where (several reports from one scan)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

AUDIT_FORMATS = ("text", "json", "sarif", "markdown", "html")
_EXTENSIONS = {".sarif": "sarif", ".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html",
               ".htm": "html", ".txt": "text"}


@dataclass(frozen=True)
class OutputRequest:
    """One ``--format F`` / ``-o FILE`` pair as given (either may be missing)."""

    format: str | None = None
    output: str | None = None


class AuditOutput(argparse.Action):
    """``--format F`` and ``-o FILE`` build :class:`OutputRequest` pairs in command-line order: ``-o`` belongs to
    the ``--format`` before it (or, given first, to the one after it)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        pairs: list[OutputRequest] = list(getattr(namespace, self.dest, None) or [])
        value = values if isinstance(values, str) else None
        key = "output" if option_string in ("-o", "--output") else "format"
        if pairs and getattr(pairs[-1], key) is None:
            pairs[-1] = replace(pairs[-1], **{key: value})
        else:
            pairs.append(OutputRequest(**{key: value}))
        setattr(namespace, self.dest, pairs)


def audit_outputs(pairs: Sequence[OutputRequest] | None) -> list[tuple[str, str | None]]:
    """(format, path or None for standard output) for every requested report; raises ValueError on a conflict."""
    out: list[tuple[str, str | None]] = []
    for pair in pairs or [OutputRequest()]:
        path = None if pair.output in (None, "-") else pair.output
        fmt = pair.format or (_EXTENSIONS.get(os.path.splitext(path)[1].lower(), "text") if path else "text")
        out.append((fmt, path))
    if sum(1 for _, path in out if path is None) > 1:
        raise ValueError("only one report can go to standard output: give the others -o FILE")
    files = [os.path.abspath(path) for _, path in out if path is not None]
    if len(files) != len(set(files)):
        raise ValueError("two reports would be written to the same file")
    return out
