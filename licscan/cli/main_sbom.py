"""``licscan sbom``: the inventory as an SPDX 2.3 or CycloneDX 1.6 document."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from licscan.cli.common import (
    check_inputs,
    check_outputs,
    say,
    scan_config,
    scan_options,
    write_outputs,
)
from licscan.findings import ExitCode

if TYPE_CHECKING:
    from licscan.cli.common import Subcommands


def configure(commands: Subcommands) -> None:
    sbom = commands.add_parser("sbom", help="write an SBOM (SPDX 2.3 or CycloneDX 1.6) of build outputs",
                               description="The same inventory as `audit`, as a bill of materials for legal review.")
    sbom.add_argument("paths", nargs="+", metavar="PATH")
    sbom.add_argument("--format", choices=("spdx-json", "spdx-tv", "cyclonedx-json"), default="spdx-json")
    sbom.add_argument("-o", "--output", required=True, help="the SBOM file to write")
    sbom.add_argument("--organization", help="the creating organization recorded in the SBOM")
    sbom.add_argument("--name", help="name of the root package (default: the first PATH)")
    scan_options(sbom)


def execute(args: argparse.Namespace) -> int:
    from licscan import sbom
    from licscan.audit import scan_tree

    if not check_inputs(args.paths):
        return ExitCode.USAGE
    check_outputs([args.output])
    inventory, records = scan_tree(args.paths, scan_config(args, digests=True))
    # built, validated and written piece by piece into the output's temporary file (never held whole)
    write_outputs([(args.output, sbom.api.streamed(inventory, records, args.format, creator_org=args.organization,
                                                   name=args.name, digests=sbom.plan.filesystem_digests))])
    for notice in sbom.api.notices(inventory, args.organization):
        say(notice)
    if inventory.diagnostics:
        say(f"scan incomplete: {len(inventory.diagnostics)} inputs or parts could not be read; the SBOM lists "
               "what was read")
        return ExitCode.INCOMPLETE
    return ExitCode.CLEAN
