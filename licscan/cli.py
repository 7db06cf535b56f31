"""The command line: parse arguments, call the library, render, map to an exit code; nothing else.

Exit codes (README.md, "Exit codes"): 0 clean; 1 findings at or above --fail-on; 2 usage, configuration, rule-pack
or output error; 3 scan incomplete; 4 internal error (a licscan bug); 130 interrupted (SIGINT). Every error ends
in one line on standard error, never a traceback (LICSCAN_DEBUG=1 adds the traceback of an internal error).
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import secrets
import signal
import stat
import sys

from licscan import __version__
from licscan.findings import ExitCode

# One exit-code table (licscan.findings.ExitCode); the short names read better below.
EXIT_OK = ExitCode.CLEAN
EXIT_FINDINGS = ExitCode.FINDINGS
EXIT_USAGE = ExitCode.USAGE
EXIT_INCOMPLETE = ExitCode.INCOMPLETE
EXIT_INTERNAL = ExitCode.INTERNAL
EXIT_INTERRUPTED = ExitCode.INTERRUPTED


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="licscan", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"licscan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    audit = commands.add_parser("audit", help="inventory build outputs and judge them (the CI gate)",
                                description="Walk files, folders, archives and container images; name every NVIDIA "
                                            "part and its device code.")
    from licscan.report.outputs import AUDIT_FORMATS, AuditOutput

    audit.add_argument("paths", nargs="+", metavar="PATH")
    audit.add_argument("--format", action=AuditOutput, choices=AUDIT_FORMATS, dest="outputs", metavar="FORMAT",
                       help="text (default), json, sarif, markdown or html; repeat as `--format F -o FILE` pairs to "
                            "write several reports from one scan (at most one goes to standard output)")
    audit.add_argument("-o", "--output", action=AuditOutput, dest="outputs", metavar="FILE",
                       help="write the report of the preceding --format here ('-' = standard output); alone, the "
                            "format follows the extension (.sarif .json .md .html .txt)")
    audit.add_argument("--sarif-category", metavar="ID",
                       help="SARIF automationDetails.id (default licscan/<inputs>/): keeps uploads apart")
    audit.add_argument("--fail-on", choices=("error", "warning", "note", "never"), default=None,
                       help="exit 1 when a finding at or above this severity remains (default: the config's, "
                            "else error)")
    audit.add_argument("--config", help="the .licscan.yaml to use (default: found from the working directory up to "
                       "its repository root, never inside a PATH; docs/security.md)")
    audit.add_argument("--rules", action="append", default=[], metavar="PACK",
                       help="an extra rule pack (repeatable)")
    audit.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1,
                       help="worker processes for plain files (default: all cores)")
    audit.add_argument("--cache-dir", help="content cache folder (default: $XDG_CACHE_HOME/licscan)")
    audit.add_argument("--no-cache", action="store_true", help="do not read or write the content cache")
    audit.add_argument("--cache-max-size", type=_size, default=None, metavar="SIZE",
                       help="size bound of the cache folder; least recently used entries go first (default 1G)")
    audit.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="skip virtual paths matching GLOB (repeatable)")
    audit.add_argument("--notes", choices=("auto", "always", "never"), default="auto",
                       help="decode compressed cubins as far as their toolkit notes (see `licscan inspect`)")
    _limit_options(audit)

    sbom = commands.add_parser("sbom", help="write an SBOM (SPDX 2.3 or CycloneDX 1.6) of build outputs",
                               description="The same inventory as `audit`, as a bill of materials for legal review.")
    sbom.add_argument("paths", nargs="+", metavar="PATH")
    sbom.add_argument("--format", choices=("spdx-json", "spdx-tv", "cyclonedx-json"), default="spdx-json")
    sbom.add_argument("-o", "--output", required=True, help="the SBOM file to write")
    sbom.add_argument("--organization", help="the creating organization recorded in the SBOM")
    sbom.add_argument("--name", help="name of the root package (default: the first PATH)")
    sbom.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1)
    sbom.add_argument("--cache-dir", help="content cache folder (default: $XDG_CACHE_HOME/licscan)")
    sbom.add_argument("--no-cache", action="store_true")
    sbom.add_argument("--cache-max-size", type=_size, default=None, metavar="SIZE")
    sbom.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    sbom.add_argument("--notes", choices=("auto", "always", "never"), default="auto")
    _limit_options(sbom)

    from licscan.rules import commands as rule_commands

    rule_commands.add_rules_parser(commands)
    rule_commands.add_waive_parser(commands)

    inspect = commands.add_parser("inspect", help="list the device code and ELF facts of one file",
                                  description="Everything licscan finds in one file: a richer "
                                              "`cuobjdump -all -lelf -lptx`.")
    inspect.add_argument("file")
    inspect.add_argument("--format", choices=("text", "json"), default="text")
    inspect.add_argument("-o", "--output", help="write the report here instead of standard output")
    inspect.add_argument("--hash", action="store_true", help="add the sha256 of every decompressed image")
    inspect.add_argument("--extract", metavar="DIR",
                         help="write every decompressed image to DIR, named like cuobjdump -xelf/-xptx")
    inspect.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1,
                         help="worker processes for decoding compressed cubins (default: all cores)")
    inspect.add_argument("--notes", choices=("auto", "always", "never"), default="auto",
                         help="decode compressed cubins as far as their toolkit notes for exact versions: always, "
                              "never, or auto (unless the file's compressed cubins declare more than 1 GB)")
    _limit_options(inspect, archives=False)
    return parser


def _size(text: str) -> int:
    from licscan.inventory.limits import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _limit_options(command, *, archives: bool = True) -> None:
    """The resource limits (issue: hostile input), one option per entry of licscan/inventory/limits.py (each also a
    `limits:` key of .licscan.yaml); each refusal is a `limit` diagnostic. `inspect` reads one file: the walker's
    archive limits do not apply to it."""
    from licscan.inventory import limits

    group = command.add_argument_group("resource limits (exceeding one gives a `limit` diagnostic, exit 3; "
                                       "also keys of `limits:` in .licscan.yaml)")
    for option in limits.OPTIONS:
        if option.archives and not archives:
            continue

        def parse(text: str, option=option):
            try:
                return limits.parse_value(option, text)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        group.add_argument(f"--{option.key}", type=parse, default=None, metavar=option.metavar, help=option.help)


def _limits(args, configured=()) -> dict:
    """Every limit's value by option dest: the command line's, else the configuration's, else the default."""
    from licscan.inventory import limits

    return limits.resolve({o.dest: getattr(args, o.dest, None) for o in limits.OPTIONS}, dict(configured))


# File names that are not UTF-8 reach licscan as lone surrogates (os.fsdecode): reports show each such byte as a
# visible \xNN escape (in JSON as the escape \udcNN), so every report stays valid UTF-8.
_ENCODING_ERRORS = "backslashreplace"


class OutputError(Exception):
    """A report, SBOM or extracted image that cannot be written (exit 2): one line of text."""


def _error(message: str) -> None:
    """One line on standard error: ``licscan: message``, untrusted parts made harmless for a terminal or CI log."""
    from licscan.escape import terminal

    try:
        print(f"licscan: {terminal(message)}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # standard error is gone too: the exit code is all that is left


def _check_outputs(paths) -> None:
    """Before a scan: each output file must be writable where it is (its folder exists; it is not a folder)."""
    for path in paths:
        if path is None:
            continue
        if os.path.isdir(path):
            raise OutputError(f"{path}: is a folder; give a file name for the output")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise OutputError(f"{path}: cannot write the output: the folder {folder} does not exist")


def write_outputs(outputs: list[tuple[str, str | bytes]]) -> None:
    """Write every ``(path, text)`` atomically: each to a temporary file beside its target, flushed to disk, and
    renamed over the target only when all of them were written (a full disk leaves every earlier report as it was
    and no truncated file). A target that exists and is not a regular file (``/dev/null``, a FIFO, a terminal), or
    that may be written in a folder that may not, is written in place. A read-only target is refused. Raises
    OutputError."""
    staged: list[tuple[str, str]] = []  # (temporary file, target)
    direct: list[tuple[str, bytes]] = []
    try:
        for path, text in outputs:
            data = text if isinstance(text, bytes) else text.encode("utf-8", _ENCODING_ERRORS)
            target = os.path.realpath(path) if os.path.islink(path) else path
            try:
                info = os.stat(target)
            except FileNotFoundError:
                info = None
            except OSError as error:
                raise OutputError(f"{path}: cannot write the output: {error.strerror}") from None
            if info is not None and stat.S_ISDIR(info.st_mode):
                raise OutputError(f"{path}: is a folder; give a file name for the output")
            if info is not None and not stat.S_ISREG(info.st_mode):
                direct.append((path, data))
                continue
            if info is not None and not os.access(target, os.W_OK):  # a rename would replace a read-only file
                raise OutputError(f"{path}: cannot write the output: {os.strerror(errno.EACCES)}")
            folder, name = os.path.split(os.path.abspath(target))
            temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as error:
                if info is not None and error.errno in (errno.EACCES, errno.EPERM):
                    direct.append((path, data))  # the file may be written, its folder not: in place, not atomic
                    continue
                raise OutputError(f"{path}: cannot write the output: cannot create a file in {folder}: "
                                  f"{error.strerror}") from None
            staged.append((temporary, target))
            try:
                with os.fdopen(fd, "wb") as out:
                    if info is not None:
                        os.fchmod(out.fileno(), stat.S_IMODE(info.st_mode))
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as error:
                raise OutputError(f"{path}: cannot write the output: {error.strerror}") from None
        for path, data in direct:
            try:
                with open(path, "wb") as out:
                    out.write(data)
            except OSError as error:
                raise OutputError(f"{path}: cannot write the output: {error.strerror}") from None
        while staged:
            temporary, target = staged[0]
            try:
                os.replace(temporary, target)
            except OSError as error:
                raise OutputError(f"{target}: cannot write the output: {error.strerror}") from None
            staged.pop(0)
    finally:
        for temporary, _target in staged:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _check_inputs(paths) -> bool:
    """Every PATH exists and is a file or a folder (a FIFO, socket or device named on the command line would be
    waited on or read forever, and cannot be "read completely"); False after a one-line message."""
    for path in paths:
        if not os.path.lexists(path):
            _error(f"{path}: no such file or folder")
            return False
        try:
            mode = os.stat(path).st_mode
        except OSError as error:  # a dangling or looping symbolic link, or a folder that may not be entered
            _error(f"{path}: cannot be read: {error.strerror}")
            return False
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
                    "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                    else "not a regular file")
            _error(f"{path}: is {kind}, not a file or folder: nothing licscan can read completely")
            return False
    return True


def _interrupt_handler():
    """SIGINT for this process and the worker processes it forks (inspect's parallel decode, the scan's pool): the
    process that started the command raises KeyboardInterrupt (one line, exit 130, below) and its pool ends the
    workers; a forked worker, which inherits the handler and gets the same SIGINT from the terminal, ignores it.
    (A worker that died of it printed a traceback, and could die holding the pool's queue lock: the parent then
    waited forever in Pool.terminate.)"""
    started_by = os.getpid()

    def interrupted(signum, frame):
        if os.getpid() != started_by:
            return
        if _in_native_call(frame):
            # Inside a call into lief or its import: lief's bindings (nanobind) turn a Python exception raised there
            # into std::terminate (exit -6 and a C++ message). Ask again in 50 ms, once the call has returned.
            signal.signal(signal.SIGALRM, interrupted)
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        raise KeyboardInterrupt

    return interrupted


#: Modules whose calls into native code must not be interrupted by a Python exception (see _interrupt_handler).
_NATIVE_CALLERS = frozenset({"licscan.binary.pe", "lief"})


def _in_native_call(frame) -> bool:
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        if name in _NATIVE_CALLERS or name.startswith("lief."):
            return True
        frame = frame.f_back
    return False


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure ends in one line on standard error and an exit code (module docstring)."""
    previous = None
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when SIGINT is ignored
            previous = signal.signal(signal.SIGINT, _interrupt_handler())
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return _run(argv)
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGINT, previous)


def _run(argv: list[str] | None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except OutputError as error:
        _error(str(error))
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader of standard output went away (`licscan audit dist | head -1`): the report did not arrive.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        except (OSError, ValueError):
            pass
        _error("standard output was closed before the whole report was written")
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - the one place that turns a licscan bug into one line
        if os.environ.get("LICSCAN_DEBUG"):
            import traceback

            traceback.print_exc()
        _error(f"internal error: {type(error).__name__}: {str(error)[:300]} (a licscan bug; LICSCAN_DEBUG=1 shows "
               "the traceback)")
        return EXIT_INTERNAL


def _main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=_ENCODING_ERRORS)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code not in (0, None) else EXIT_OK
    if args.command == "inspect":
        return _inspect(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "sbom":
        return _sbom(args)
    if hasattr(args, "func"):
        return args.func(args)
    return EXIT_USAGE


def _given_limits(args) -> tuple:
    """The limits given on the command line, as (dest, value): they win over the configuration's `limits:`."""
    from licscan.inventory import limits

    return tuple((o.dest, getattr(args, o.dest)) for o in limits.OPTIONS if getattr(args, o.dest, None) is not None)


def _scan_config(args, *, digests: bool = False, exclude: tuple[str, ...] = ()):
    from licscan import cache
    from licscan.binary.images import Limits, NotesMode
    from licscan.inventory.limits import with_limits
    from licscan.scan import ScanConfig

    config = ScanConfig(limits=Limits(jobs=1, notes=NotesMode(args.notes)), jobs=args.jobs,
                        cache_dir=None if args.no_cache else (args.cache_dir or cache.default_dir()),
                        cache_max_bytes=args.cache_max_size or cache.DEFAULT_MAX_BYTES,
                        exclude=tuple(args.exclude) + tuple(exclude), digests=digests)
    return with_limits(config, _limits(args))


def _sbom(args) -> int:
    from licscan import sbom
    from licscan.scan import scan

    if not _check_inputs(args.paths):
        return EXIT_USAGE
    _check_outputs([args.output])
    inventory, records = scan(args.paths, _scan_config(args, digests=True))
    text = io.StringIO()
    sbom.render(inventory, records, args.format, text, creator_org=args.organization,
                name=args.name, digests=sbom.plan.filesystem_digests)
    write_outputs([(args.output, text.getvalue())])
    if inventory.diagnostics:
        _error(f"scan incomplete: {len(inventory.diagnostics)} inputs or parts could not be read; the SBOM lists "
               "what was read")
        return EXIT_INCOMPLETE
    return EXIT_OK


def _audit(args) -> int:
    from licscan.audit import AuditOptions, run_audit
    from licscan.findings import FailOn
    from licscan.report import RenderOptions, render
    from licscan.rules.config import planted_configs
    from licscan.report.outputs import audit_outputs
    from licscan.report.progress import progress_reporter
    from licscan.rules.errors import LoadError

    try:
        outputs = audit_outputs(args.outputs)
    except ValueError as error:
        _error(str(error))
        return EXIT_USAGE
    if not _check_inputs(args.paths):
        return EXIT_USAGE
    _check_outputs([path for _fmt, path in outputs])
    options = AuditOptions(scan=_scan_config(args), config_path=args.config, extra_packs=tuple(args.rules),
                           fail_on=FailOn(args.fail_on) if args.fail_on else None, limits=_given_limits(args))
    try:
        with progress_reporter() as progress:
            result = run_audit(args.paths, options, progress=progress)
    except LoadError as error:
        from licscan.escape import terminal_lines

        print(terminal_lines(error.render()), file=sys.stderr)
        return EXIT_USAGE
    inventory = result.inventory
    for planted in planted_configs(args.paths):
        _error(f"note: {planted} lies inside a scanned input and is not applied (configuration comes from --config "
               "or the working directory, never from the scanned tree)")
    files: list[tuple[str, str]] = []
    for fmt, path in outputs:
        from licscan.report.text_report import use_color

        text = render(fmt, result, RenderOptions(color=fmt == "text" and path is None and use_color(sys.stdout),
                                                 sarif_category=args.sarif_category))
        if path:
            files.append((path, text))
        else:
            _write_stdout(text)
    write_outputs(files)
    if inventory.diagnostics and any(path or fmt != "text" for fmt, path in outputs):
        _error(f"scan incomplete: {len(inventory.diagnostics)} inputs or parts could not be read (see diagnostics)")
    return int(result.exit_code)


def _inspect(args) -> int:
    from licscan.binary.images import Limits, NotesMode
    from licscan.binary.inspect import inspect_file
    from licscan.model import DiagnosticKind

    if not os.path.exists(args.file):
        _error(f"{args.file}: no such file")
        return EXIT_USAGE
    if os.path.isdir(args.file):
        _error(f"{args.file}: is a directory (inspect takes one file; use `licscan audit` for trees)")
        return EXIT_USAGE
    if not _check_inputs([args.file]):
        return EXIT_USAGE
    _check_outputs([args.output])
    if args.extract and os.path.exists(args.extract) and not os.path.isdir(args.extract):
        raise OutputError(f"{args.extract}: --extract needs a folder, and this is not one")
    values = _limits(args)
    limits = Limits(max_image_bytes=values["max_image_size"], jobs=args.jobs, notes=NotesMode(args.notes),
                    max_file_seconds=values["max_file_seconds"], max_entries_per_fatbin=values["max_fatbin_entries"],
                    max_ar_members=values["max_ar_members"])
    facts = inspect_file(args.file, limits=limits, want_hash=args.hash)
    if args.extract:
        from licscan.binary.extract import extract

        try:
            facts = extract(args.file, facts, args.extract, limits)
        except OSError as error:
            raise OutputError(f"{error.filename or args.extract}: cannot extract the images: {error.strerror}") \
                from None
    if args.format == "json":
        from licscan.report.inspect_json import render
    else:
        from licscan.report.inspect_text import render
    text = render(facts)
    if args.output:
        write_outputs([(args.output, text)])
    else:
        _write_stdout(text)
    diagnostics = facts.all_diagnostics()
    for diag in diagnostics:
        if not args.output and args.format == "json":
            _error(f"{diag.path}: {diag.kind.value}: {diag.message}")
    if any(d.kind is not DiagnosticKind.UNSUPPORTED for d in diagnostics) or diagnostics:
        return EXIT_INCOMPLETE
    return EXIT_OK
