"""Static archives (``ar``): the members of a ``!<arch>`` file, with GNU and BSD long names (docs/binary-format.md §2.2).

Member layout (System V / GNU ``ar``): a 60-byte header -- name[16] date[12] uid[6] gid[6] mode[8] size[10]
fmag[2] = "`\\n" -- then ``size`` bytes of data padded to an even offset. Special members: ``/`` and ``/SYM64/``
(symbol tables), ``//`` (GNU long-name table; a member named ``/123`` takes its name from offset 123 of that
table, terminated by ``/\\n``, or by a NUL byte in Microsoft's ``.lib`` files); BSD names ``#1/<len>`` put the
name in the first ``len`` data bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from licscan.binary import magic
from licscan.binary.buffer import Buffer, ByteView
from licscan.binary.errors import FormatError

AR_MAGIC = magic.AR
THIN_MAGIC = magic.AR_THIN
_HEADER = 60
_FMAG = b"`\n"


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # of the member's data in the archive buffer
    size: int


def members(buf: Buffer | ByteView, start: int = 0, end: int | None = None) -> Iterator[Member]:
    """The ordinary members of the archive in ``buf[start:end]``, in order (symbol and name tables skipped).

    Raises :class:`FormatError` at the first header that does not parse; members before it have been yielded.
    """
    end = len(buf) if end is None else end
    if bytes(buf[start : start + 8]) == THIN_MAGIC:
        raise FormatError(start, "thin archive: members are stored outside the archive and were not read")
    if bytes(buf[start : start + 8]) != AR_MAGIC:
        raise FormatError(start, "not an ar archive")
    pos = start + 8
    long_names = b""
    while pos < end:
        if end - pos == 1 and bytes(buf[pos : pos + 1]) == b"\n":
            return  # trailing pad byte
        if pos + _HEADER > end:
            raise FormatError(pos, f"member header needs {_HEADER} bytes, {end - pos} left", truncated=True)
        header = bytes(buf[pos : pos + _HEADER])
        if header[58:60] != _FMAG:
            raise FormatError(pos + 58, "member header does not end with the ar magic '`\\n'")
        raw_name = header[0:16].rstrip(b" ")
        try:
            size = int(header[48:58].strip() or b"0")
        except ValueError:
            raise FormatError(pos + 48, f"member size field {header[48:58]!r} is not a number") from None
        data = pos + _HEADER
        if size < 0 or data + size > end:
            raise FormatError(pos, f"member declares {size} bytes, {end - data} remain", truncated=True)
        name: str | None
        skip = 0
        if raw_name in (b"/", b"/SYM64/", b"__.SYMDEF", b"__.SYMDEF SORTED"):
            name = None
        elif raw_name == b"//":
            long_names = bytes(buf[data : data + size])
            name = None
        elif raw_name.startswith(b"#1/"):
            try:
                skip = int(raw_name[3:])
            except ValueError:
                raise FormatError(pos, f"BSD long name {raw_name!r} has no length") from None
            if skip > size:
                raise FormatError(pos, "BSD long name is longer than its member", truncated=True)
            name = bytes(buf[data : data + skip]).rstrip(b"\0").decode("utf-8", "surrogateescape")
            if name.startswith("__.SYMDEF"):
                name = None
        elif raw_name.startswith(b"/") and raw_name[1:].isdigit():
            index = int(raw_name[1:])
            if index >= len(long_names):
                raise FormatError(pos, f"long name offset {index} is outside the '//' table")
            # GNU ends each name with "/\n"; Microsoft's linker ("Longnames Member") with a NUL byte.
            ends = [at for at in (long_names.find(b"/\n", index), long_names.find(b"\0", index)) if at >= 0]
            stop = min(ends) if ends else len(long_names)
            name = long_names[index:stop].decode("utf-8", "surrogateescape")
        else:
            short = raw_name[:-1] if raw_name.endswith(b"/") else raw_name  # GNU terminates short names with "/"
            name = short.decode("utf-8", "surrogateescape")
        if name is not None:
            yield Member(name, data + skip, size - skip)
        pos = data + size + (size & 1)
