"""One audit, as a library call: configuration, rule packs, scan, evaluation, waivers, the findings cache.

    result = run_audit(["dist/"], AuditOptions(scan=ScanConfig(...)))
    result.exit_code            # ExitCode.CLEAN / FINDINGS / INCOMPLETE
    report.render("sarif", result)

The command line (``licscan.cli``) only turns arguments into :class:`AuditOptions`, calls :func:`run_audit`,
hands the result to the renderers and returns its exit code. Configuration and rule-pack errors raise
:class:`licscan.rules.errors.LoadError` (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from licscan import clock
from licscan.findings import ExitCode, FailOn, Finding, exit_code
from licscan.model import Inventory
from licscan.rules.config import Config, resolve_config
from licscan.rules.loader import Rule, RulePack, all_rules, load_packs
from licscan.scan import FileRecord, ScanConfig, scan


@dataclass(frozen=True)
class AuditOptions:
    scan: ScanConfig = field(default_factory=ScanConfig)
    config_path: str | None = None  # --config; None: found as licscan.rules.config.resolve_config decides
    extra_packs: tuple[str, ...] = ()  # --rules
    fail_on: FailOn | None = None  # --fail-on; None: the configuration's
    limits: tuple[tuple[str, Any], ...] = ()  # limits given on the command line (dest, value): they win over `limits:`


@dataclass(frozen=True)
class AuditResult:
    inventory: Inventory
    findings: tuple[Finding, ...]
    rules: tuple[Rule, ...]
    config: Config
    fail_on: FailOn
    records: tuple[FileRecord, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        return exit_code(self.findings, self.fail_on, complete=self.inventory.complete)


def run_audit(paths: Sequence[str], options: AuditOptions = AuditOptions(),
              progress: Callable[..., Any] | None = None) -> AuditResult:
    """Scan ``paths`` and judge what was found. Raises LoadError for a bad configuration or rule pack."""
    config = resolve_config(paths, options.config_path)
    pack_sources = list(config.rules) + list(options.extra_packs)
    packs = load_packs(pack_sources)
    scan_config = options.scan
    if config.limits:
        from licscan.inventory import limits

        scan_config = limits.with_limits(scan_config, limits.resolve(dict(options.limits), dict(config.limits)))
    if config.exclude:
        scan_config = replace(scan_config, exclude=tuple(scan_config.exclude) + tuple(config.exclude))
    inventory, records = scan(paths, scan_config, progress=progress)
    findings = _judge(inventory, packs, config, pack_sources, scan_config)
    return AuditResult(inventory=inventory, findings=tuple(findings), rules=tuple(all_rules(packs)), config=config,
                       fail_on=options.fail_on or config.fail_on, records=tuple(records))


def _judge(inventory: Inventory, packs: list[RulePack], config: Config, pack_sources: list[str],
           scan_config: ScanConfig) -> list[Finding]:
    from licscan.report import json_report
    from licscan.rules.engine import evaluate

    document = json_report.document(inventory)
    if not scan_config.cache_dir:
        return evaluate(document, packs, config)
    return _cached_findings(scan_config, document, config, pack_sources, lambda: evaluate(document, packs, config))


def _cached_findings(scan_config: ScanConfig, document: dict[str, Any], config: Config, extra_packs: list[str],
                     evaluate_now: Callable[[], list[Finding]]) -> list[Finding]:
    """Findings are a pure function of the inventory, the rule packs and data, the configuration and today's date
    (waivers expire): an unchanged tree re-scanned from the content cache skips the evaluation too. The entry is
    keyed by a digest of all of these (the built-in packs and knowledge tables through the cache's code digest) and
    checked like every cache entry (HMAC, licscan's own types only): a forged or damaged entry -- an empty list
    written over a failing gate's findings -- is a miss and the rules are evaluated again (docs/cache.md)."""
    from licscan.scan import open_cache

    digest = hashlib.sha256()
    digest.update(json.dumps(document, sort_keys=True).encode("utf-8", "surrogateescape"))
    digest.update(repr((config, clock.today().isoformat())).encode("utf-8", "surrogateescape"))
    for path in [Path(p) for p in extra_packs] + ([Path(config.path)] if config.path else []):
        try:
            digest.update(os.fsencode(str(path)) + b"\0" + path.read_bytes())
        except OSError:
            return evaluate_now()
    cache = open_cache(scan_config, "findings", warn=lambda message: None)  # the scan already said why not
    if cache is None:
        return evaluate_now()
    key = cache.key("findings", digest.hexdigest())
    cached = cache.get(key, "findings", tuple)
    if cached is not None and all(isinstance(f, Finding) for f in cached):
        return list(cached)
    findings = evaluate_now()
    if cache.put(key, "findings", tuple(findings)):
        cache.trim()
    return findings
