"""``licscan rules list|show ID|validate FILE...`` and ``licscan waive``: argparse sub-command functions.

Each takes an argparse Namespace and returns an exit code;
output goes to ``out`` / ``err`` (default stdout / stderr). The CLI wires them with :func:`add_rules_parser` and
:func:`add_waive_parser`.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import TYPE_CHECKING, TextIO

from licscan.cli.common import write_outputs
from licscan.findings import ExitCode
from licscan.rules.errors import ConfigError, LoadError, RulePackError

if TYPE_CHECKING:
    from licscan.cli.common import Subcommands
    from licscan.rules.loader import Rule

EXIT_OK, EXIT_USAGE = ExitCode.CLEAN, ExitCode.USAGE


def _rules(args: argparse.Namespace) -> list[Rule]:
    """The rules of the built-in packs and of ``--rules``; raises RulePackError."""
    from licscan.rules.loader import all_rules, load_packs  # on use: `licscan inspect` builds this parser

    return all_rules(load_packs(getattr(args, "rules", None) or ()))


def cmd_list(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        rules = _rules(args)
    except RulePackError as error:
        print(error.render(), file=err)
        return EXIT_USAGE
    if getattr(args, "format", "text") == "json":
        json.dump([{"id": r.id, "title": r.title, "severity": r.severity.value, "pack": r.pack,
                    "clause": r.clause.to_json()} for r in rules], out, indent=2)
        out.write("\n")
        return EXIT_OK
    width = max((len(r.id) for r in rules), default=0)
    for rule in rules:
        print(f"{rule.id:<{width}}  {rule.severity.value:<7}  {rule.clause.section:<12}  {rule.title}", file=out)
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        rules = {r.id: r for r in _rules(args)}
    except RulePackError as error:
        print(error.render(), file=err)
        return EXIT_USAGE
    rule = rules.get(args.id)
    if rule is None:
        print(f"licscan: no rule {args.id!r}; `licscan rules list` shows the rules", file=err)
        return EXIT_USAGE

    def wrap(text: str) -> str:
        return textwrap.fill(" ".join(text.split()), 100, initial_indent="  ", subsequent_indent="  ")

    lines = [f"{rule.id}: {rule.title}",
             f"  severity: {rule.severity.value} (undetermined: {rule.undetermined_severity.value})",
             f"  pack: {rule.pack} ({rule.span})", "",
             f"Clause: {rule.clause.document}, section {rule.clause.section} (text dated {rule.clause.date})",
             wrap(f'"{rule.clause.text}"')]
    if rule.clause.url:
        lines.append(f"  {rule.clause.url}")
    if rule.rationale:
        lines += ["", "Rationale:", wrap(rule.rationale)]
    lines += ["", "Remediation:", wrap(rule.remediation)]
    if rule.examples:
        lines += ["", "Examples:"] + [f"  - {e}" for e in rule.examples]
    if rule.references:
        lines += ["", "References:"] + [f"  - {r}" for r in rule.references]
    print("\n".join(lines), file=out)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate each FILE (every problem of every file, with positions); exit 2 if any is invalid."""
    out, err = out or sys.stdout, err or sys.stderr
    status = EXIT_OK
    for path in args.files:
        try:
            from licscan.rules.loader import RulePack

            pack = RulePack.from_path(path)
        except RulePackError as error:
            print(error.render(), file=err)
            status = EXIT_USAGE
            continue
        print(f"{path}: ok ({len(pack.rules)} rules)", file=out)
    return status


def cmd_waive(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``licscan waive FINGERPRINT --reason R [--expires D] [--approver A] [--rule ID] [--path GLOB] [--config F]``."""
    from licscan.rules.config import FILE_NAME, find_config, waive

    out, err = out or sys.stdout, err or sys.stderr
    target = args.config or find_config() or FILE_NAME
    try:
        entry = waive(target, args.fingerprint, args.reason, args.expires, args.approver,
                      getattr(args, "rule", None), getattr(args, "path", None),
                      write=lambda path, text: write_outputs([(str(path), text)]))  # atomic: never half a file
    except ConfigError as error:
        print(error.render(), file=err)
        return EXIT_USAGE
    print(f"{target}: added waiver {json.dumps(entry, sort_keys=True)}", file=out)
    return EXIT_OK


def add_rules_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    """Adds ``rules list|show|validate``; each sub-parser sets ``func`` to its command function."""
    parser = subparsers.add_parser("rules", help="list, show or validate rule packs")
    sub = parser.add_subparsers(dest="rules_command", required=True)
    listing = sub.add_parser("list", help="the rules of the built-in and extra packs")
    listing.add_argument("--rules", action="append", metavar="PACK", help="an extra rule pack (repeatable)")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="clause text, rationale, remediation and examples of one rule")
    show.add_argument("id")
    show.add_argument("--rules", action="append", metavar="PACK")
    show.set_defaults(func=cmd_show)
    validate = sub.add_parser("validate", help="validate rule-pack files (exit 2 with file:line:column)")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(func=cmd_validate)
    return parser


def add_waive_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("waive", help="add a waiver for a finding's fingerprint to .licscan.yaml")
    parser.add_argument("fingerprint")
    parser.add_argument("--reason", required=True)
    parser.add_argument("--expires", metavar="YYYY-MM-DD")
    parser.add_argument("--approver")
    parser.add_argument("--rule", help="also restrict the waiver to this rule id")
    parser.add_argument("--path", help="also restrict the waiver to this virtual-path glob")
    parser.add_argument("--config", metavar="FILE", help="the .licscan.yaml to edit (default: found upward from .)")
    parser.set_defaults(func=cmd_waive)
    return parser


__all__ = ["LoadError", "add_rules_parser", "add_waive_parser", "cmd_list", "cmd_show", "cmd_validate", "cmd_waive"]


def configure(subparsers: Subcommands) -> None:
    """``licscan rules ...`` and ``licscan waive ...``."""
    add_rules_parser(subparsers)
    add_waive_parser(subparsers)
