"""The one clock of licscan: ``SOURCE_DATE_EPOCH`` when set, else the real time.

Reproducible builds define ``SOURCE_DATE_EPOCH`` as "the number of seconds since 1970-01-01 00:00:00 UTC"
(https://reproducible-builds.org/specs/source-date-epoch/); with it set, every report, SBOM and waiver expiry check
uses that instant, so the same input gives byte-identical output. A value that is not a whole number is ignored
(the specification: "if the value is malformed, the build process SHOULD exit with a non-zero error code"; a
compliance gate must not fail on its environment, so licscan uses the real time and says nothing).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime, timezone

#: How many times :func:`now` answered with the real time (``SOURCE_DATE_EPOCH`` unset or malformed). What was made
#: while it grew says when it was made: ``licscan.audit`` does not replay such a report from the cache.
real_reads = 0


def now(environ: Mapping[str, str] | None = None) -> datetime:
    """``SOURCE_DATE_EPOCH`` when set, else the current time; UTC, whole seconds."""
    environ = os.environ if environ is None else environ
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        try:
            return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    global real_reads
    real_reads += 1
    return datetime.now(tz=timezone.utc).replace(microsecond=0)


def today(environ: Mapping[str, str] | None = None) -> date:
    """The day of :func:`now` (waivers expire by it)."""
    return now(environ).date()
