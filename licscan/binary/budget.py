"""The time budget of one file (``Limits.max_file_seconds``, ``--max-file-seconds``).

A reader never stops in the middle of a structure: at the points where the remaining work can be left out with a
true, smaller result, it asks :func:`expired` and, when the budget is spent, skips that work and says so in a
``limit`` diagnostic:

* the sections of an ELF or PE file not yet scanned for device code,
* the members of a static archive not yet read,
* the toolkit notes (and ``--hash`` digests) of the cubins not yet decoded: those images are still listed from
  their entry headers, with the toolkit range the header proves.

Archive members share the budget of the file they are in. Outside a :func:`file_budget` block nothing expires.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

from licscan.model import Diagnostic

_DEADLINE: ContextVar[float | None] = ContextVar("licscan_file_deadline", default=None)
_SECONDS: ContextVar[float | None] = ContextVar("licscan_file_seconds", default=None)


@contextlib.contextmanager
def file_budget(seconds: float | None) -> Iterator[None]:
    """Give the file read inside this block ``seconds`` of wall time (None or <= 0: no limit). A block inside
    another one (an archive member) keeps the outer deadline."""
    if _DEADLINE.get() is not None or seconds is None or seconds <= 0:
        yield
        return
    deadline = _DEADLINE.set(time.monotonic() + seconds)
    limit = _SECONDS.set(seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(deadline)
        _SECONDS.reset(limit)


def expired() -> bool:
    deadline = _DEADLINE.get()
    return deadline is not None and time.monotonic() >= deadline


_MARK = "per file (--max-file-seconds) reached"


def describe() -> str:
    """"time limit of N s per file reached", for the diagnostics."""
    seconds = _SECONDS.get()
    return f"time limit of {seconds:g} s {_MARK}"


def reached(diagnostics: Iterable[Diagnostic]) -> bool:
    """Whether one of ``diagnostics`` says a time budget was spent (such results are not cached: a later run may
    have the time to read everything)."""
    return any(_MARK in d.message for d in diagnostics)
