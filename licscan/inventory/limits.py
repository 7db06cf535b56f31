"""Resource limits: the walk's (bombs, deep nesting, huge members) and the binary readers', in one table.

Every limit is a command-line option (``--KEY``) and a key of the ``limits:`` mapping of ``.licscan.yaml``; the
command line wins over the file, the file over the default (:func:`resolve`). :data:`OPTIONS` is the one list of
them: the CLI builds its options from it, the configuration loader checks its keys against it.

A bomb guard bounds what is written out, not a ratio alone: a member may inflate to ``ratio_floor_bytes`` (16 MiB)
whatever its compression ratio -- NVIDIA's own stub libraries are mostly zero pages (cuDNN 9's
``libcudnn_engines_tensor_ir.so.9``: 2,099,128 bytes from 6,413 compressed, a ratio of 327) -- and past that floor
the ratio, the member size, the bytes of the whole walk and the time spent inflating one member
(``max_member_seconds``) each stop it: a zip of zips of 64 MiB zero members costs at most 16 MiB per member.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the scan layer is above this one
    from licscan.scan import ScanConfig

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class WalkLimits:
    """Limits against hostile archives; exceeding one gives a LIMIT diagnostic naming the member, which is skipped.

    ``max_depth`` counts archive levels (``!/`` separators) a member may sit under: a top-level archive's members are
    at depth 1; an archive whose members would be deeper is yielded as a plain file with a diagnostic.
    ``max_total_bytes`` bounds the uncompressed bytes the walker reads out of archives over the whole walk;
    ``max_ratio`` (uncompressed / compressed) is checked per member once it is past ``ratio_floor_bytes``;
    ``max_member_seconds`` bounds the wall time of inflating one member (None or 0: no bound).
    Members up to ``in_memory_bytes`` are handed out as ``bytes`` while the members held in memory at once (nested
    archives) stay within ``in_memory_total_bytes``; others as a read-only mmap of a spool file.
    """

    max_depth: int = 8
    max_total_bytes: int = 64 * GiB
    max_member_bytes: int = 8 * GiB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 16 * MiB
    # Every member walked is a record the scan keeps until the report (~650 bytes plus its path, measured): the
    # member and path limits keep a tar of 1,000,000 one-byte members, or of members with 4 KB names, under 256 MB.
    max_members: int = 100_000
    max_path_bytes: int = 32 * MiB
    max_member_seconds: float | None = 600.0
    in_memory_bytes: int = 16 * MiB
    in_memory_total_bytes: int = 48 * MiB  # members held in memory at once (one per nesting level); others spooled
    max_metadata_bytes: int = 16 * MiB  # METADATA, RECORD, control, index.json, manifests kept to build Distributions
    max_kept_metadata_bytes: int = 64 * MiB  # metadata files held at once (those of the archives being walked)


class LimitKind(enum.Enum):
    COUNT = "count"  # a whole number >= 1
    SIZE = "size"  # bytes: a number with an optional k/M/G/T suffix (binary units)
    SECONDS = "seconds"  # a number >= 0; 0 = no limit
    RATIO = "ratio"  # a number > 1


@dataclass(frozen=True)
class LimitOption:
    """One limit: ``--KEY`` on the command line and ``limits: {KEY: ...}`` in ``.licscan.yaml``."""

    key: str
    kind: LimitKind
    default: int | float
    help: str
    archives: bool  # applies to the walker only (audit, sbom), not to `inspect`

    @property
    def dest(self) -> str:
        return self.key.replace("-", "_")

    @property
    def metavar(self) -> str:
        return {LimitKind.COUNT: "N", LimitKind.SIZE: "SIZE", LimitKind.SECONDS: "S", LimitKind.RATIO: "R"}[self.kind]


OPTIONS: tuple[LimitOption, ...] = (
    LimitOption("max-file-seconds", LimitKind.SECONDS, 600.0,
                "time budget of each file or archive member (default 600; 0 = none): past it, the section scans, "
                "archive members, toolkit notes and hashes not yet read are left out and named in a limit "
                "diagnostic; also the time one archive member may take to inflate", False),
    LimitOption("max-depth", LimitKind.COUNT, 8, "archive nesting depth (default 8)", True),
    LimitOption("max-member-size", LimitKind.SIZE, 8 * GiB, "uncompressed size of one archive member (default 8G)",
                True),
    LimitOption("max-total-size", LimitKind.SIZE, 64 * GiB,
                "uncompressed bytes read out of archives in the whole scan (default 64G)", True),
    LimitOption("max-members", LimitKind.COUNT, 100_000, "archive members in the whole scan (default 100000)",
                True),
    LimitOption("max-compression-ratio", LimitKind.RATIO, 200.0,
                "uncompressed/compressed ratio of one archive member past --ratio-floor (default 200)", True),
    LimitOption("ratio-floor", LimitKind.SIZE, 16 * MiB,
                "bytes a member may inflate to before its compression ratio is checked (default 16M)", True),
    LimitOption("max-ar-members", LimitKind.COUNT, 100_000,
                "members read from one static library (ar archive, .a/.lib) (default 100000)", False),
    LimitOption("max-image-size", LimitKind.SIZE, 2 * GiB,
                "refuse to decompress a device image larger than SIZE (default 2G)", False),
    LimitOption("max-fatbin-entries", LimitKind.COUNT, 4096, "entries read per fatbin (default 4096)", False),
)
BY_KEY: dict[str, LimitOption] = {o.key: o for o in OPTIONS}
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_value(option: LimitOption, value: object) -> int | float:
    """``value`` (command-line text, or a YAML scalar) as the number ``option`` takes; ValueError says why not."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{option.key} must be a {option.kind.value}, not {type(value).__name__}")
    text = str(value).strip().lower()
    factor = 1
    if option.kind is LimitKind.SIZE:
        for suffix in ("ib", "b"):  # "64MiB", "64MB" and "64M" are all 64 MiB
            if text.endswith(suffix) and text[: -len(suffix)][-1:] in _UNITS:
                text = text[: -len(suffix)]
                break
        if text[-1:] in _UNITS:
            factor, text = _UNITS[text[-1:]], text[:-1]
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{option.key}: not a {option.kind.value}: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{option.key}: not a {option.kind.value}: {value!r}")
    if option.kind is LimitKind.SECONDS:
        if number < 0:
            raise ValueError(f"{option.key} must be 0 (no limit) or more seconds (got {value!r})")
        return number
    if option.kind is LimitKind.RATIO:
        if number <= 1:
            raise ValueError(f"{option.key} must be more than 1 (got {value!r})")
        return number
    if option.kind is LimitKind.COUNT and number != int(number):
        raise ValueError(f"{option.key} must be a whole number (got {value!r})")
    result = int(number * factor)
    if result < 1:
        raise ValueError(f"{option.key} must be at least 1 (got {value!r})")
    return result


def parse_size(text: object) -> int:
    """A size such as "1G", "64MiB" or "4096" in bytes; ValueError says why not."""
    return int(parse_value(LimitOption("size", LimitKind.SIZE, 0, "", False), text))


def resolve(given: Mapping[str, int | float | None], configured: Mapping[str, int | float]) -> dict[str, int | float]:
    """Every limit by ``dest``: the command line's (``given``, by dest; None = not given), else the configuration's
    (``configured``, by key), else the default."""
    out: dict[str, int | float] = {}
    for option in OPTIONS:
        value = given.get(option.dest)
        if value is None:
            value = configured.get(option.key, option.default)
        out[option.dest] = value
    return out


def walk_limits(values: Mapping[str, int | float]) -> WalkLimits:
    """The walker's limits from resolved values (:func:`resolve`)."""
    seconds = values["max_file_seconds"]
    return WalkLimits(max_depth=int(values["max_depth"]), max_member_bytes=int(values["max_member_size"]),
                      max_total_bytes=int(values["max_total_size"]), max_members=int(values["max_members"]),
                      max_ratio=float(values["max_compression_ratio"]), ratio_floor_bytes=int(values["ratio_floor"]),
                      max_member_seconds=float(seconds) if seconds else None)


def with_limits(scan_config: ScanConfig, values: Mapping[str, int | float]) -> ScanConfig:
    """``scan_config`` (licscan.scan.ScanConfig) with every limit set from resolved values (:func:`resolve`)."""
    from dataclasses import replace

    readers = replace(scan_config.limits, max_file_seconds=values["max_file_seconds"],
                      max_image_bytes=int(values["max_image_size"]),
                      max_entries_per_fatbin=int(values["max_fatbin_entries"]),
                      max_ar_members=int(values["max_ar_members"]))
    return replace(scan_config, limits=readers, walk_limits=walk_limits(values))
