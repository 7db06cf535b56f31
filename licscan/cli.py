"""The command line: parse arguments, call the library, render, map to an exit code; nothing else (DESIGN B1).

Exit codes: 0 clean; 1 findings at or above --fail-on; 2 usage, config or rule-pack error; 3 scan incomplete.
"""

from __future__ import annotations

import argparse
import os
import sys

from licscan import __version__
from licscan.findings import ExitCode

# One exit-code table (licscan.findings.ExitCode); the short names read better below.
EXIT_OK = ExitCode.CLEAN
EXIT_FINDINGS = ExitCode.FINDINGS
EXIT_USAGE = ExitCode.USAGE
EXIT_INCOMPLETE = ExitCode.INCOMPLETE


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = text.strip().lower().rstrip("ib")
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be positive")
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
    audit.add_argument("--config", help="the .licscan.yaml to use (default: found upward from the first PATH)")
    audit.add_argument("--rules", action="append", default=[], metavar="PACK",
                       help="an extra rule pack (repeatable)")
    audit.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1,
                       help="worker processes for plain files (default: all cores)")
    audit.add_argument("--cache-dir", help="content cache folder (default: $XDG_CACHE_HOME/licscan)")
    audit.add_argument("--no-cache", action="store_true", help="do not read or write the content cache")
    audit.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="skip virtual paths matching GLOB (repeatable)")
    audit.add_argument("--max-depth", type=_positive, default=8, help="archive nesting depth (default 8)")
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
    sbom.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    sbom.add_argument("--max-depth", type=_positive, default=8)
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


def _limit_options(command, *, archives: bool = True) -> None:
    """The resource limits (issue: hostile input); each refusal is a `limit` diagnostic. `inspect` reads one file:
    the walker's archive limits do not apply to it."""
    group = command.add_argument_group("resource limits (exceeding one gives a `limit` diagnostic, exit 3)")
    group.add_argument("--max-file-seconds", type=float, default=600.0, metavar="S",
                       help="time budget of each file or archive member (default 600; 0 = none): past it, the "
                            "section scans, archive members, toolkit notes and hashes not yet read are left out "
                            "and named in a limit diagnostic")
    if archives:
        group.add_argument("--max-member-size", type=_size, default=8 << 30, metavar="SIZE",
                           help="uncompressed size of one archive member (default 8G)")
        group.add_argument("--max-total-size", type=_size, default=64 << 30, metavar="SIZE",
                           help="uncompressed bytes read out of archives in the whole scan (default 64G)")
        group.add_argument("--max-members", type=_positive, default=1_000_000, metavar="N",
                           help="archive members in the whole scan (default 1000000)")
    group.add_argument("--max-image-size", type=_size, default=2 << 30, metavar="SIZE",
                       help="refuse to decompress a device image larger than SIZE (default 2G)")
    group.add_argument("--max-fatbin-entries", type=_positive, default=4096, metavar="N",
                       help="entries read per fatbin (default 4096)")


# File names that are not UTF-8 reach licscan as lone surrogates (os.fsdecode): reports show each such byte as a
# visible \xNN escape (in JSON as the escape \udcNN), so every report stays valid UTF-8.
_ENCODING_ERRORS = "backslashreplace"


def main(argv: list[str] | None = None) -> int:
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


def _scan_config(args, *, digests: bool = False, exclude: tuple[str, ...] = ()):
    from licscan import cache
    from licscan.binary.images import Limits, NotesMode
    from licscan.inventory.walk import WalkLimits
    from licscan.scan import ScanConfig

    limits = Limits(jobs=1, notes=NotesMode(args.notes), max_file_seconds=args.max_file_seconds,
                    max_image_bytes=args.max_image_size, max_entries_per_fatbin=args.max_fatbin_entries)
    walk_limits = WalkLimits(max_depth=args.max_depth, max_member_bytes=args.max_member_size,
                             max_total_bytes=args.max_total_size, max_members=args.max_members)
    return ScanConfig(limits=limits, walk_limits=walk_limits, jobs=args.jobs,
                      cache_dir=None if args.no_cache else (args.cache_dir or cache.default_dir()),
                      exclude=tuple(args.exclude) + tuple(exclude), digests=digests)


def _missing(paths) -> bool:
    missing = [p for p in paths if not os.path.lexists(p)]
    if missing:
        print(f"licscan: {missing[0]}: no such file or folder", file=sys.stderr)
    return bool(missing)


def _sbom(args) -> int:
    from licscan import sbom
    from licscan.scan import scan

    if _missing(args.paths):
        return EXIT_USAGE
    inventory, records = scan(args.paths, _scan_config(args, digests=True))
    sbom.render(inventory, records, args.format, args.output, creator_org=args.organization,
                name=args.name, digests=sbom.plan.filesystem_digests)
    if inventory.diagnostics:
        print(f"licscan: scan incomplete: {len(inventory.diagnostics)} inputs or parts could not be read; the SBOM "
              "lists what was read", file=sys.stderr)
        return EXIT_INCOMPLETE
    return EXIT_OK


def _audit(args) -> int:
    from licscan.audit import AuditOptions, run_audit
    from licscan.findings import FailOn
    from licscan.report import RenderOptions, render
    from licscan.report.outputs import audit_outputs
    from licscan.report.progress import progress_reporter
    from licscan.rules.errors import LoadError

    try:
        outputs = audit_outputs(args.outputs)
    except ValueError as error:
        print(f"licscan: {error}", file=sys.stderr)
        return EXIT_USAGE
    if _missing(args.paths):
        return EXIT_USAGE
    options = AuditOptions(scan=_scan_config(args), config_path=args.config, extra_packs=tuple(args.rules),
                           fail_on=FailOn(args.fail_on) if args.fail_on else None)
    try:
        with progress_reporter() as progress:
            result = run_audit(args.paths, options, progress=progress)
    except LoadError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_USAGE
    inventory = result.inventory
    for fmt, path in outputs:
        from licscan.report.text_report import use_color

        text = render(fmt, result, RenderOptions(color=fmt == "text" and path is None and use_color(sys.stdout),
                                                 sarif_category=args.sarif_category))
        if path:
            with open(path, "w", encoding="utf-8", errors=_ENCODING_ERRORS) as out:
                out.write(text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    if inventory.diagnostics and any(path or fmt != "text" for fmt, path in outputs):
        print(f"licscan: scan incomplete: {len(inventory.diagnostics)} inputs or parts could not be read "
              "(see diagnostics)", file=sys.stderr)
    return int(result.exit_code)


def _inspect(args) -> int:
    from licscan.binary.images import Limits, NotesMode
    from licscan.binary.inspect import inspect_file
    from licscan.model import DiagnosticKind

    if not os.path.exists(args.file):
        print(f"licscan: {args.file}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if os.path.isdir(args.file):
        print(f"licscan: {args.file}: is a directory (inspect takes one file; use `licscan audit` for trees)",
              file=sys.stderr)
        return EXIT_USAGE
    limits = Limits(max_image_bytes=args.max_image_size, jobs=args.jobs, notes=NotesMode(args.notes),
                    max_file_seconds=args.max_file_seconds, max_entries_per_fatbin=args.max_fatbin_entries)
    facts = inspect_file(args.file, limits=limits, want_hash=args.hash)
    if args.extract:
        from licscan.binary.extract import extract

        facts = extract(args.file, facts, args.extract, limits)
    if args.format == "json":
        from licscan.report.inspect_json import render
    else:
        from licscan.report.inspect_text import render
    text = render(facts)
    if args.output:
        with open(args.output, "w", encoding="utf-8", errors=_ENCODING_ERRORS) as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    diagnostics = facts.all_diagnostics()
    for diag in diagnostics:
        if not args.output and args.format == "json":
            print(f"licscan: {diag.path}: {diag.kind.value}: {diag.message}", file=sys.stderr)
    if any(d.kind is not DiagnosticKind.UNSUPPORTED for d in diagnostics) or diagnostics:
        return EXIT_INCOMPLETE
    return EXIT_OK
