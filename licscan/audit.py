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
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from licscan import clock
from licscan.binary import budget
from licscan.cache import Cache, boot_id, tree_identity
from licscan.findings import ExitCode, FailOn, Finding, exit_code
from licscan.model import DiagnosticKind, Inventory
from licscan.rules.config import Config, resolve_config
from licscan.rules.loader import Rule, RulePack, all_rules, load_packs
from licscan.scan import ScanConfig, open_cache, scan


@dataclass(frozen=True)
class AuditOptions:
    scan: ScanConfig = field(default_factory=ScanConfig)
    config_path: str | None = None  # --config; None: found as licscan.rules.config.resolve_config decides
    extra_packs: tuple[str, ...] = ()  # --rules
    fail_on: FailOn | None = None  # --fail-on; None: the configuration's
    limits: tuple[tuple[str, Any], ...] = ()  # limits given on the command line (dest, value): they win over `limits:`


@dataclass(frozen=True)
class Judgement:
    """What the rules said of one inventory: the findings (waivers applied), and the governing licence of every
    named part (the JSON report's ``governing`` entries, as ``licscan.rules.facts.governing_entries`` gives them)."""

    findings: tuple[Finding, ...]
    governing: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class AuditResult:
    inventory: Inventory
    findings: tuple[Finding, ...]
    rules: tuple[Rule, ...]
    config: Config
    fail_on: FailOn
    governing: tuple[dict[str, Any], ...] | None = None  # the JSON report's `governing` entries (None: not computed)

    @property
    def exit_code(self) -> ExitCode:
        return exit_code(self.findings, self.fail_on, complete=self.inventory.complete)


@dataclass(frozen=True)
class Remembered:
    """A whole audit of an unchanged tree (the same-boot tree memo, docs/cache.md)."""

    inventory: Inventory
    judgement: Judgement


def run_audit(paths: Sequence[str], options: AuditOptions = AuditOptions(),
              progress: Callable[[str], None] | None = None) -> AuditResult:
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
    judged = _judged_inputs(config, pack_sources)
    memo = _TreeMemo.open(paths, scan_config, judged) if judged is not None else None
    remembered = memo.get() if memo is not None else None
    if memo is not None and remembered is not None:
        inventory, judgement = remembered.inventory, remembered.judgement
        memo.cache.trim()  # the size bound holds on every run (a scan trims at its end)
    else:
        inventory, _records = scan(paths, scan_config, progress=progress)
        judgement = _judge(inventory, packs, config, scan_config, judged)
        if memo is not None:
            memo.put(Remembered(inventory, judgement))
    return AuditResult(inventory=inventory, findings=judgement.findings, rules=tuple(all_rules(packs)),
                       config=config, fail_on=options.fail_on or config.fail_on, governing=judgement.governing)


def _judged_inputs(config: Config, pack_sources: list[str]) -> str | None:
    """A digest of what the findings depend on besides the inventory: the configuration, today's date (waivers
    expire), the extra rule packs and the `.licscan.yaml` read (the built-in packs and the knowledge tables are
    bound into every cache key through the cache's code digest); None when one of the files cannot be read."""
    digest = hashlib.sha256(repr((config, clock.today().isoformat())).encode("utf-8", "surrogateescape"))
    for path in [Path(p) for p in pack_sources] + ([Path(config.path)] if config.path else []):
        try:
            digest.update(os.fsencode(str(path)) + b"\0" + path.read_bytes())
        except OSError:
            return None
    return digest.hexdigest()


def _judge(inventory: Inventory, packs: list[RulePack], config: Config, scan_config: ScanConfig,
           judged: str | None) -> Judgement:
    """Findings are a pure function of the inventory, the rule packs and data, the configuration and today's date:
    an unchanged inventory (re-scanned from the content cache) skips the evaluation too. The entry is keyed by the
    report's fingerprint and ``judged``, and checked like every cache entry (HMAC, licscan's own types only): a
    forged or damaged entry -- an empty list written over a failing gate's findings -- is a miss and the rules are
    evaluated again (docs/cache.md)."""
    from licscan.report import json_report

    cache = open_cache(scan_config, "findings", warn=lambda message: None) \
        if scan_config.cache_dir and judged is not None else None  # the scan already said why not
    key = cache.key("findings", json_report.fingerprint(inventory), str(judged)) if cache is not None else ""
    cached = cache.get(key, "findings", Judgement) if cache is not None else None
    if isinstance(cached, Judgement) and all(isinstance(f, Finding) for f in cached.findings):
        return cached
    judgement = _evaluate(inventory, packs, config)
    if cache is not None and cache.put(key, "findings", judgement):
        cache.trim()
    return judgement


def _evaluate(inventory: Inventory, packs: list[RulePack], config: Config) -> Judgement:
    from licscan.report import json_report
    from licscan.rules.engine import evaluate
    from licscan.rules.facts import governing_entries

    document = json_report.document(inventory, governing=False)
    governing = governing_entries(document)
    document["governing"] = governing
    return Judgement(tuple(evaluate(document, packs, config)), tuple(governing))


@dataclass(frozen=True)
class _TreeMemo:
    """The whole audit of a tree that did not change since it was audited on this boot: found by the identity of
    every entry of the tree (:func:`licscan.cache.tree_identity`: no file is read), the scan settings and what the
    findings depend on. Not stored when the scan was cut short (a time budget, an unreadable part) or the tree
    changed while it was scanned. A copy of the tree elsewhere, or another boot, misses it and is audited from the
    content-keyed entries (docs/cache.md)."""

    cache: Cache
    paths: tuple[str, ...]
    tree: str
    key: str

    @classmethod
    def open(cls, paths: Sequence[str], scan_config: ScanConfig, judged: str) -> _TreeMemo | None:
        boot = boot_id()
        if not scan_config.cache_dir or boot is None:
            return None
        tree = tree_identity(paths)
        if tree is None:
            return None
        cache = open_cache(scan_config, "tree", warn=lambda message: None)  # the scan says why not
        if cache is None:
            return None
        settings = f"{scan_config.settings()}\0{scan_config.walk_limits!r}\0{scan_config.exclude!r}"
        return cls(cache, tuple(paths), tree, cache.key("tree", boot, settings, judged, tree, *paths))

    def get(self) -> Remembered | None:
        found = self.cache.get(self.key, "tree", Remembered)
        if isinstance(found, Remembered) and isinstance(found.inventory, Inventory) \
                and isinstance(found.judgement, Judgement):
            return found
        return None

    def put(self, remembered: Remembered) -> None:
        diagnostics = remembered.inventory.diagnostics
        if budget.reached(diagnostics) or any(d.kind is DiagnosticKind.UNREADABLE for d in diagnostics):
            return
        if tree_identity(self.paths) != self.tree:
            return
        if self.cache.put(self.key, "tree", remembered):
            self.cache.trim()
