"""``licscan audit`` reports: which formats go where (several reports from one scan)."""

from __future__ import annotations

import argparse
import os

AUDIT_FORMATS = ("text", "json", "sarif", "markdown", "html")
_EXTENSIONS = {".sarif": "sarif", ".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html",
               ".htm": "html", ".txt": "text"}


class AuditOutput(argparse.Action):
    """``--format F`` and ``-o FILE`` build (format, file) pairs in command-line order: ``-o`` belongs to the
    ``--format`` before it (or, given first, to the one after it)."""

    def __call__(self, parser, namespace, values, option_string=None):
        pairs = list(getattr(namespace, self.dest, None) or [])
        key = "output" if option_string in ("-o", "--output") else "format"
        if pairs and pairs[-1][key] is None:
            pairs[-1][key] = values
        else:
            pairs.append({"format": None, "output": None, key: values})
        setattr(namespace, self.dest, pairs)


def audit_outputs(pairs) -> list[tuple[str, str | None]]:
    """(format, path or None for standard output) for every requested report; raises ValueError on a conflict."""
    out: list[tuple[str, str | None]] = []
    for pair in pairs or [{"format": None, "output": None}]:
        path = None if pair["output"] in (None, "-") else pair["output"]
        fmt = pair["format"] or (_EXTENSIONS.get(os.path.splitext(path)[1].lower(), "text") if path else "text")
        out.append((fmt, path))
    if sum(1 for _, path in out if path is None) > 1:
        raise ValueError("only one report can go to standard output: give the others -o FILE")
    files = [os.path.abspath(path) for _, path in out if path is not None]
    if len(files) != len(set(files)):
        raise ValueError("two reports would be written to the same file")
    return out
