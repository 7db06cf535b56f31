"""A progress line on standard error for long scans (rich), and the rules for when a terminal gets colour.

Shown only when standard error is a terminal, CI is not set (``CI=true`` on every CI service), ``TERM`` is not
``dumb``, and the scan has run for more than ``delay`` seconds: short scans and pipelines stay silent.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TextIO

DELAY = 1.0


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    value = (environ if environ is not None else os.environ).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no")


def is_terminal(stream: object) -> bool:
    try:
        isatty = getattr(stream, "isatty", None)
        return callable(isatty) and bool(isatty())
    except (AttributeError, ValueError, OSError):
        return False


def wants_progress(stream: TextIO | None = None, environ: Mapping[str, str] | None = None) -> bool:
    environ = environ if environ is not None else os.environ
    stream = stream if stream is not None else sys.stderr
    return is_terminal(stream) and not in_ci(environ) and environ.get("TERM", "") != "dumb"


@contextlib.contextmanager
def progress_reporter(stream: TextIO | None = None, environ: Mapping[str, str] | None = None, delay: float = DELAY) -> Iterator[Callable[[str], None] | None]:
    """Yields the callback for ``scan(progress=...)``, or None when no progress is to be shown."""
    stream = stream if stream is not None else sys.stderr
    if not wants_progress(stream, environ):
        yield None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    environ = environ if environ is not None else os.environ
    console = Console(file=stream, no_color="NO_COLOR" in environ, highlight=False)
    progress = Progress(SpinnerColumn(), TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("[dim]{task.description}"), console=console,
                        transient=True, refresh_per_second=8)
    start = time.monotonic()
    count = 0
    task: TaskID | None = None

    def advance(vpath: str) -> None:
        nonlocal count, task
        count += 1
        if task is None:
            if time.monotonic() - start < delay:
                return
            progress.start()
            task = progress.add_task(escape(_short(vpath)), total=None, completed=count)
            return
        progress.update(task, advance=1, description=escape(_short(vpath)))

    try:
        yield advance
    finally:
        if task is not None:
            progress.stop()


def _short(vpath: str, width: int = 60) -> str:
    from licscan.escape import terminal

    vpath = terminal(vpath)  # a name from the scanned input: no control sequence reaches the terminal
    return vpath if len(vpath) <= width else "…" + vpath[-(width - 1):]
