"""Text written piece by piece: a report or SBOM that goes to its file (or standard output) without ever being one
string. The JSON report of flashinfer-cubin 0.6.13's 16,017 cubins (30 MB) was held four times over while it was
written: its lines, their join, the join with its last line end, and its UTF-8 bytes (docs/census.md)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import TextIO


class Streamed:
    """A text made when it is written: ``write_to(out)`` writes it to a text stream in order. ``str()`` builds it
    whole (what a caller that wants the text gets, byte for byte the same)."""

    __slots__ = ("_write",)

    def __init__(self, write: Callable[[TextIO], None]) -> None:
        self._write = write

    @classmethod
    def of_pieces(cls, pieces: Callable[[], Iterable[str]]) -> Streamed:
        """The text of the pieces ``pieces()`` yields, in order."""

        def write(out: TextIO) -> None:
            for piece in pieces():
                out.write(piece)

        return cls(write)

    def write_to(self, out: TextIO) -> None:
        self._write(out)

    def __str__(self) -> str:
        out = io.StringIO()  # newline="\n": written as given
        self._write(out)
        return out.getvalue()


def text_of(value: str | Streamed) -> str:
    return value if isinstance(value, str) else str(value)
