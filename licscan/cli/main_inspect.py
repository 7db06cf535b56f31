"""``licscan inspect FILE``: everything in one binary, a richer ``cuobjdump -all -lelf -lptx``."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from licscan.cli.common import (
    OutputError,
    check_inputs,
    check_outputs,
    limit_options,
    limits_of,
    positive,
    say,
    write_outputs,
    write_stdout,
)
from licscan.findings import ExitCode

if TYPE_CHECKING:
    from licscan.cli.common import Subcommands
    from licscan.model import ComponentMatch, FileFacts


def configure(commands: Subcommands) -> None:
    inspect = commands.add_parser("inspect", help="list the device code and ELF facts of one file",
                                  description="Everything licscan finds in one file: a richer "
                                              "`cuobjdump -all -lelf -lptx`.")
    inspect.add_argument("file")
    inspect.add_argument("--format", choices=("text", "json"), default="text")
    inspect.add_argument("-o", "--output", help="write the report here instead of standard output")
    inspect.add_argument("--hash", action="store_true", help="add the sha256 of every decompressed image")
    inspect.add_argument("--extract", metavar="DIR",
                         help="write every decompressed image to DIR, named like cuobjdump -xelf/-xptx")
    inspect.add_argument("--jobs", type=positive, default=os.cpu_count() or 1,
                         help="worker processes for decoding compressed cubins (default: all cores)")
    inspect.add_argument("--notes", choices=("auto", "always", "never"), default="auto",
                         help="decode compressed cubins as far as their toolkit notes for exact versions: always, "
                              "never, or auto (unless the file's compressed cubins declare more than 1 GB)")
    limit_options(inspect, archives=False)


def execute(args: argparse.Namespace) -> int:
    from licscan.binary.images import Limits, NotesMode
    from licscan.binary.inspect import inspect_file
    from licscan.model import DiagnosticKind

    if not os.path.exists(args.file):
        say(f"{args.file}: no such file")
        return ExitCode.USAGE
    if os.path.isdir(args.file):
        say(f"{args.file}: is a directory (inspect takes one file; use `licscan audit` for trees)")
        return ExitCode.USAGE
    if not check_inputs([args.file]):
        return ExitCode.USAGE
    check_outputs([args.output])
    if args.extract and os.path.exists(args.extract) and not os.path.isdir(args.extract):
        raise OutputError(f"{args.extract}: --extract needs a folder, and this is not one")
    values = limits_of(args)
    limits = Limits(max_image_bytes=int(values["max_image_size"]), jobs=args.jobs, notes=NotesMode(args.notes),
                    max_file_seconds=values["max_file_seconds"],
                    max_entries_per_fatbin=int(values["max_fatbin_entries"]),
                    max_ar_members=int(values["max_ar_members"]))
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
    text = render(facts, _linked(args.file, facts))
    if args.output:
        write_outputs([(args.output, text)])
    else:
        write_stdout(text)
    diagnostics = facts.all_diagnostics()
    for diag in diagnostics:
        if not args.output and args.format == "json":
            say(f"{diag.path}: {diag.kind.value}: {diag.message}")
    if any(d.kind is not DiagnosticKind.UNSUPPORTED for d in diagnostics) or diagnostics:
        return ExitCode.INCOMPLETE
    return ExitCode.CLEAN


def _linked(path: str, facts: FileFacts) -> tuple[ComponentMatch, ...]:
    """The NVIDIA libraries linked into the file, named as the audit names them (a second read of the file: the
    evidence is searched in all of it). A file that cannot be read again has its diagnostic from the inspection.
    Only a binary another is linked into holds one (:func:`licscan.binary.regions.host_format`): for an object, an
    archive or a fatbin the naming layer is not loaded (its modules and catalog cost ~13 ms of CPU)."""
    from licscan.binary.regions import host_format

    if host_format(facts) is None:
        return ()
    from licscan.binary.paged import file_bytes
    from licscan.identify.catalog import linked_into

    try:
        with file_bytes(path) as data:
            return linked_into(path, facts, data)
    except OSError:
        return ()
