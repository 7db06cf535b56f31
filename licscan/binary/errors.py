"""The one error type binary parsers raise: a format error carrying the offset, and the diagnostic kind it is."""

from __future__ import annotations

from licscan.model import DiagnosticKind


class FormatError(ValueError):
    """Input bytes that do not follow their format.

    ``offset`` is relative to the buffer the parser was given; callers that know the buffer's place in a file
    add their base before reporting. ``truncated`` marks a structure cut off by the end of its container and
    ``limit`` one that a configured resource limit refused to read.
    """

    def __init__(self, offset: int | None, message: str, *, truncated: bool = False, limit: bool = False,
                 decompression: bool = False):
        super().__init__(message if offset is None else f"{message} (at offset {offset:#x})")
        self.offset = offset
        self.reason = message
        self.truncated = truncated
        self.limit = limit
        self.decompression = decompression  # a compressed stream that does not decode as declared

    def detached(self) -> FormatError:
        """This error without its traceback: kept in results, it must not keep parser frames (and the memoryviews
        they hold on a file mapping) alive."""
        self.__traceback__ = None
        self.__context__ = None
        return self

    @property
    def kind(self) -> DiagnosticKind:
        """The diagnostic this error becomes: a refused limit, a stream that does not decode, a structure cut off
        by the end of its container, or any other violation of the format."""
        if self.limit:
            return DiagnosticKind.LIMIT
        if self.decompression:
            return DiagnosticKind.DECOMPRESSION
        return DiagnosticKind.TRUNCATED if self.truncated else DiagnosticKind.MALFORMED
