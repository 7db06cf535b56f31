"""The one type of the bytes a binary reader is given: a file mapping (``mmap``, :class:`~licscan.binary.paged.PagedMap`),
an archive member's window of one (``memoryview``) or bytes already in memory. Readers slice it and never write."""

from __future__ import annotations

import mmap
from typing import TypeAlias

Buffer: TypeAlias = bytes | bytearray | memoryview | mmap.mmap
