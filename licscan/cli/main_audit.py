"""``licscan audit``: the CI gate (scan, judge, report, exit code)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from licscan.cli.common import (
    check_inputs,
    check_outputs,
    given_limits,
    say,
    scan_config,
    scan_options,
    write_outputs,
    write_stdout,
)
from licscan.findings import ExitCode

if TYPE_CHECKING:
    from licscan.cli.common import Output, Subcommands


def configure(commands: Subcommands) -> None:
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
    scan_options(audit, configured=True)


def execute(args: argparse.Namespace) -> int:
    from licscan.audit import Audit, AuditOptions
    from licscan.findings import FailOn
    from licscan.report import RenderOptions
    from licscan.report.outputs import audit_outputs
    from licscan.report.progress import progress_reporter
    from licscan.rules.config import planted_configs
    from licscan.rules.errors import LoadError

    try:
        outputs = audit_outputs(args.outputs)
    except ValueError as error:
        say(str(error))
        return ExitCode.USAGE
    if not check_inputs(args.paths):
        return ExitCode.USAGE
    check_outputs([path for _fmt, path in outputs])
    options = AuditOptions(scan=scan_config(args), config_path=args.config, extra_packs=tuple(args.rules),
                           fail_on=FailOn(args.fail_on) if args.fail_on else None, limits=given_limits(args))
    requests = [(fmt, RenderOptions(color=fmt == "text" and path is None and _terminal_colors(),
                                    sarif_category=args.sarif_category)) for fmt, path in outputs]
    try:
        audit = Audit(args.paths, options)
        with progress_reporter() as progress:
            reports = audit.reports(requests, progress)
    except LoadError as error:
        from licscan.escape import terminal_lines

        print(terminal_lines(error.render()), file=sys.stderr)
        return ExitCode.USAGE
    for planted in planted_configs(args.paths):
        say(f"note: {planted} lies inside a scanned input and is not applied (configuration comes from --config "
               "or the working directory, never from the scanned tree)")
    files: list[tuple[str, Output]] = []
    for (_fmt, path), text in zip(outputs, reports.outputs):
        if path:
            files.append((path, text))
        else:
            write_stdout(text)
    write_outputs(files)
    if reports.diagnostics and any(path or fmt != "text" for fmt, path in outputs):
        say(f"scan incomplete: {reports.diagnostics} inputs or parts could not be read (see diagnostics)")
    return int(reports.exit_code)


def _terminal_colors() -> bool:
    from licscan.report.text_report import use_color

    return use_color(sys.stdout)
