"""What the commands share: argument types, the resource-limit options, the scan settings, one-line errors, checked
inputs and atomically written outputs."""

from __future__ import annotations

import argparse
import errno
import io
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, BinaryIO, TypeAlias

from licscan.streamed import Streamed

if TYPE_CHECKING:
    from licscan.scan import ScanConfig

    #: What ``add_subparsers()`` returns: each command module's ``configure`` adds its parser to it.
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

#: What an output file is written from: text, bytes, or a text made as it is written.
Output: TypeAlias = str | bytes | Streamed


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def size(text: str) -> int:
    from licscan.inventory.limits import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def limit_options(command: argparse.ArgumentParser, *, archives: bool = True, configured: bool = False) -> None:
    """The resource limits (docs/security.md: every input is hostile), one option per entry of licscan/inventory/limits.py
    (for ``audit``, the one command that reads .licscan.yaml: ``configured``, each also a `limits:` key of it); each
    refusal is a `limit` diagnostic. `inspect` reads one file: the walker's archive limits do not apply to it."""
    from licscan.inventory import limits

    also = "; also keys of `limits:` in .licscan.yaml" if configured else ""
    group = command.add_argument_group(f"resource limits (exceeding one gives a `limit` diagnostic, exit 3{also})")
    for option in limits.OPTIONS:
        if option.archives and not archives:
            continue

        def parse(text: str, option: limits.LimitOption = option) -> int | float:
            try:
                return limits.parse_value(option, text)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        group.add_argument(f"--{option.key}", type=parse, default=None, metavar=option.metavar, help=option.help)


def limits_of(args: argparse.Namespace) -> dict[str, int | float]:
    """Every limit's value by option dest: the command line's, else the default (run_audit applies the
    configuration's `limits:` between the two)."""
    from licscan.inventory import limits

    return limits.resolve({o.dest: getattr(args, o.dest, None) for o in limits.OPTIONS}, {})


# File names that are not UTF-8 reach licscan as lone surrogates (os.fsdecode): reports show each such byte as a
# visible \xNN escape (in JSON as the escape \udcNN), so every report stays valid UTF-8.
ENCODING_ERRORS = "backslashreplace"


class OutputError(Exception):
    """A report, SBOM or extracted image that cannot be written (exit 2): one line of text."""


def say(message: str) -> None:
    """One line on standard error: ``licscan: message``, untrusted parts made harmless for a terminal or CI log."""
    from licscan.escape import terminal

    try:
        print(f"licscan: {terminal(message)}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # standard error is gone too: the exit code is all that is left


def check_outputs(paths: Iterable[str | None]) -> None:
    """Before a scan: each output file must be writable where it is (its folder exists; it is not a folder)."""
    for path in paths:
        if path is None:
            continue
        if os.path.isdir(path):
            raise OutputError(f"{path}: is a folder; give a file name for the output")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise OutputError(f"{path}: cannot write the output: the folder {folder} does not exist")


def _target(path: str) -> tuple[str, os.stat_result | None]:
    """The file a write to ``path`` lands in (a symbolic link's target) and its status (None: it does not exist)."""
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target, None
    except OSError as error:
        raise OutputError(f"{path}: cannot write the output: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{path}: is a folder; give a file name for the output")
    return target, info


def _temporary(path: str, target: str, info: os.stat_result | None) -> tuple[int, str] | None:
    """A new temporary file beside ``target`` (descriptor, name), or None when the target is to be written in place:
    a file that may be written in a folder that may not. A read-only target is refused."""
    import secrets  # not imported by an audit whose reports go to standard output or /dev/null

    if info is not None and not os.access(target, os.W_OK):  # a rename would replace a read-only file
        raise OutputError(f"{path}: cannot write the output: {os.strerror(errno.EACCES)}")
    folder, name = os.path.split(os.path.abspath(target))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as error:
        if info is not None and error.errno in (errno.EACCES, errno.EPERM):
            return None  # the file may be written, its folder not: in place, not atomic
        raise OutputError(f"{path}: cannot write the output: cannot create a file in {folder}: "
                          f"{error.strerror}") from None
    return fd, temporary


def _fill(path: str, fd: int, info: os.stat_result | None, data: Output) -> None:
    """Write ``data`` to the temporary file ``fd`` (with the mode of the file it replaces) and flush it to disk."""
    try:
        with os.fdopen(fd, "wb", buffering=_BUFFER) as out:
            if info is not None:
                os.fchmod(out.fileno(), stat.S_IMODE(info.st_mode))
            _put(out, data)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        raise OutputError(f"{path}: cannot write the output: {error.strerror}") from None


def _write_in_place(path: str, data: Output) -> None:
    try:
        with open(path, "wb", buffering=_BUFFER) as out:
            _put(out, data)
    except OSError as error:
        raise OutputError(f"{path}: cannot write the output: {error.strerror}") from None


_BUFFER = 1 << 20


def _put(out: BinaryIO, data: Output) -> None:
    """``data`` as UTF-8 (a :class:`~licscan.streamed.Streamed` text written piece by piece, each piece encoded as
    the whole text would have been: the same bytes)."""
    if isinstance(data, bytes):
        out.write(data)
    elif isinstance(data, str):
        out.write(data.encode("utf-8", ENCODING_ERRORS))
    else:
        text = io.TextIOWrapper(out, encoding="utf-8", errors=ENCODING_ERRORS, newline="")  # "\n" as written
        try:
            data.write_to(text)
            text.flush()
        finally:
            text.detach()  # ``out`` stays open for its owner to flush, sync and close


def write_outputs(outputs: Sequence[tuple[str, Output]]) -> None:
    """Write every ``(path, text)`` atomically: each to a temporary file beside its target, flushed to disk, and
    renamed over the target only when all of them were written (a full disk leaves every earlier report as it was
    and no truncated file). A target that exists and is not a regular file (``/dev/null``, a FIFO, a terminal), or
    that may be written in a folder that may not, is written in place. A text may be
    :class:`~licscan.streamed.Streamed`: made as it is written, never held whole. Raises OutputError."""
    staged: list[tuple[str, str]] = []  # (temporary file, target)
    direct: list[tuple[str, Output]] = []
    try:
        for path, data in outputs:
            target, info = _target(path)
            opened = _temporary(path, target, info) if info is None or stat.S_ISREG(info.st_mode) else None
            if opened is None:
                direct.append((path, data))
                continue
            fd, temporary = opened
            staged.append((temporary, target))
            _fill(path, fd, info, data)
        for path, data in direct:
            _write_in_place(path, data)
        while staged:
            temporary, target = staged[0]
            try:
                os.replace(temporary, target)
            except OSError as error:
                raise OutputError(f"{target}: cannot write the output: {error.strerror}") from None
            staged.pop(0)
    finally:
        for temporary, _target_path in staged:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def write_stdout(text: str | Streamed) -> None:
    if sys.stdout is None:  # started with standard output closed (`licscan audit dist >&-`)
        raise OutputError("standard output is closed: nowhere to write the report (give -o FILE)")
    if isinstance(text, str):
        sys.stdout.write(text)
    else:
        text.write_to(sys.stdout)
    sys.stdout.flush()


def check_inputs(paths: Iterable[str]) -> bool:
    """Every PATH exists and is a file or a folder (a FIFO, socket or device named on the command line would be
    waited on or read forever, and cannot be "read completely"); False after a one-line message."""
    for path in paths:
        if not os.path.lexists(path):
            say(f"{path}: no such file or folder")
            return False
        try:
            mode = os.stat(path).st_mode
        except OSError as error:  # a dangling or looping symbolic link, or a folder that may not be entered
            say(f"{path}: cannot be read: {error.strerror}")
            return False
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
                    "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                    else "not a regular file")
            say(f"{path}: is {kind}, not a file or folder: nothing licscan can read completely")
            return False
    return True


def given_limits(args: argparse.Namespace) -> tuple[tuple[str, int | float], ...]:
    """The limits given on the command line, as (dest, value): they win over the configuration's `limits:`."""
    from licscan.inventory import limits

    return tuple((o.dest, getattr(args, o.dest)) for o in limits.OPTIONS if getattr(args, o.dest, None) is not None)


def scan_config(args: argparse.Namespace, *, digests: bool = False, exclude: tuple[str, ...] = ()) -> ScanConfig:
    from licscan import cache
    from licscan.binary.limits import Limits, NotesMode
    from licscan.inventory.limits import with_limits
    from licscan.scan import ScanConfig

    config = ScanConfig(limits=Limits(jobs=1, notes=NotesMode(args.notes)), jobs=args.jobs,
                        cache_dir=None if args.no_cache else (args.cache_dir or cache.default_dir()),
                        cache_max_bytes=args.cache_max_size or cache.DEFAULT_MAX_BYTES,
                        exclude=tuple(args.exclude) + tuple(exclude), digests=digests)
    limited: ScanConfig = with_limits(config, limits_of(args))
    return limited


def scan_options(command: argparse.ArgumentParser, *, configured: bool = False) -> None:
    """The options of every command that scans a tree (audit, sbom): workers, cache, exclusions, notes, limits
    (``configured``: the command reads the limits of .licscan.yaml too)."""
    command.add_argument("--jobs", type=positive, default=os.cpu_count() or 1,
                       help="processes examining plain files: this one and N-1 workers (default: all cores)")
    command.add_argument("--cache-dir", help="content cache folder (default: $XDG_CACHE_HOME/licscan)")
    command.add_argument("--no-cache", action="store_true", help="do not read or write the content cache")
    command.add_argument("--cache-max-size", type=size, default=None, metavar="SIZE",
                       help="size bound of the cache folder; least recently used entries go first (default 1G)")
    command.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="skip virtual paths matching GLOB (repeatable)")
    command.add_argument("--notes", choices=("auto", "always", "never"), default="auto",
                       help="decode compressed cubins as far as their toolkit notes (see `licscan inspect`)")
    limit_options(command, configured=configured)
