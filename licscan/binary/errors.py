"""The one error type binary parsers raise (DESIGN A3: "raise one format error carrying the offset")."""

from __future__ import annotations


class FormatError(ValueError):
    """Input bytes that do not follow their format.

    ``offset`` is relative to the buffer the parser was given; callers that know the buffer's place in a file
    add their base before reporting. ``truncated`` marks a structure cut off by the end of its container and
    ``limit`` one that a configured resource limit refused to read.
    """

    def __init__(self, offset: int | None, message: str, *, truncated: bool = False, limit: bool = False):
        super().__init__(message if offset is None else f"{message} (at offset {offset:#x})")
        self.offset = offset
        self.reason = message
        self.truncated = truncated
        self.limit = limit
