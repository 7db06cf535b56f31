"""One audit, as a library call: configuration, rule packs, scan, evaluation, waivers, the findings cache.

    result = run_audit(["dist/"], AuditOptions(scan=ScanConfig(...)))
    result.exit_code            # ExitCode.CLEAN / FINDINGS / INCOMPLETE
    report.render("sarif", result)

The command line (``licscan.cli``) only turns arguments into :class:`AuditOptions` and asks an :class:`Audit` for
its reports (:meth:`Audit.reports`: rendered, or replayed from the cache for a tree unchanged since it was audited
on this boot), writes them and returns the exit code. Configuration and rule-pack errors raise
:class:`licscan.rules.errors.LoadError` (exit 2).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from licscan import clock
from licscan.cache import KnownDigests
from licscan.cache.memo import TreeMemo
from licscan.findings import ExitCode, FailOn, Finding, exit_code
from licscan.rules.config import Config, resolve_config
from licscan.streamed import Streamed, text_of

if TYPE_CHECKING:
    from licscan.identify.examine import FileRecord
    from licscan.model import Inventory
    from licscan.report import RenderOptions
    from licscan.rules.loader import Rule, RulePack
    from licscan.scan import ScanConfig
    from licscan.scan.deferred import Deferred

Progress = Callable[[str], None]


def _default_scan() -> ScanConfig:
    from licscan.scan import ScanConfig

    return ScanConfig()


@dataclass(frozen=True)
class AuditOptions:
    scan: ScanConfig = field(default_factory=_default_scan)
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
    """A whole audit of a tree with the same content (the tree memo, docs/cache.md)."""

    inventory: Inventory
    judgement: Judgement


@dataclass(frozen=True)
class Reports:
    """The reports an audit was asked for, in the order asked, and what the command says after writing them."""

    outputs: tuple[str | Streamed, ...]  # a Streamed report is made as it is written (licscan/streamed.py)
    exit_code: ExitCode
    diagnostics: int  # how many inputs or parts could not be read (the inventory's diagnostics)

    @property
    def texts(self) -> tuple[str, ...]:
        """Every report as one string."""
        return tuple(text_of(output) for output in self.outputs)


@dataclass(frozen=True)
class Replay:
    """One rendered report kept beside the tree memo (docs/cache.md, "report" entries): its text, and what the exit
    code and the closing message need (the findings, whether the inventory is complete, its diagnostics)."""

    text: str
    findings: tuple[Finding, ...]
    complete: bool
    diagnostics: int


@dataclass(frozen=True)
class Prepared:
    """What an audit settles before it reads an input: the configuration, the rule packs to load (not parsed yet),
    the scan settings (the configuration's limits and exclusions applied), and ``judged``, a digest of what the
    findings depend on besides the inventory (None: not cacheable)."""

    config: Config
    pack_sources: tuple[str, ...]
    scan: ScanConfig
    judged: str | None


def prepare(paths: Sequence[str], options: AuditOptions) -> Prepared:
    """Raises LoadError for a bad configuration (the rule packs are parsed later, and only when needed)."""
    config = resolve_config(paths, options.config_path)
    scan_config = options.scan
    if config.limits:
        from licscan.inventory import limits

        scan_config = limits.with_limits(scan_config, limits.resolve(dict(options.limits), dict(config.limits)))
    if config.exclude:
        scan_config = replace(scan_config, exclude=tuple(scan_config.exclude) + tuple(config.exclude))
    sources = tuple(config.rules) + tuple(options.extra_packs)
    return Prepared(config, sources, scan_config, _judged_inputs(config, sources))


def scan(paths: Sequence[str], config: ScanConfig, progress: Progress | None = None,
         known: KnownDigests | None = None, meanwhile: Callable[[], None] | None = None,
         deferred: Deferred | None = None) -> tuple[Inventory, list[FileRecord]]:
    """:func:`licscan.scan.scan`, imported when first called: an audit replayed from the cache never imports the
    readers. ``known``: the content digests the tree memo read (the cache keys of those files need no read);
    ``meanwhile``: work for this process while the scan's workers examine files (licscan.scan.scan)."""
    from licscan.scan import scan as scan_inputs

    return scan_inputs(paths, config, progress=progress, known=known, meanwhile=meanwhile, deferred=deferred)


def run_audit(paths: Sequence[str], options: AuditOptions | None = None,
              progress: Progress | None = None) -> AuditResult:
    """Scan ``paths`` and judge what was found. Raises LoadError for a bad configuration or rule pack."""
    return Audit(paths, options).result(progress)


class Audit:
    """One audit of ``paths``. Made: the configuration is read and the tree memo looked for (the tree is listed,
    no file is read). :meth:`result` scans and judges, or takes the whole result from the tree memo;
    :meth:`reports` renders reports from it, or replays them when every report asked for was kept beside the tree
    memo (docs/cache.md). Raises LoadError for a bad configuration or rule pack."""

    def __init__(self, paths: Sequence[str], options: AuditOptions | None = None):
        self.paths = tuple(paths)
        self.options = options = options if options is not None else AuditOptions()
        self.prepared = prepare(paths, options)
        judged = self.prepared.judged
        self.memo = _tree_memo(paths, self.prepared.scan, "tree", judged) if judged is not None else None
        self._remembered = False  # the tree memo holds this audit (read or written): reports may be kept beside it
        self._packs: list[RulePack] | None = None

    @property
    def fail_on(self) -> FailOn:
        return self.options.fail_on or self.prepared.config.fail_on

    def packs(self) -> list[RulePack]:
        """The built-in rule packs and ``pack_sources``, parsed once (LoadError for a bad one)."""
        if self._packs is None:
            from licscan.rules.loader import load_packs

            self._packs = load_packs(list(self.prepared.pack_sources))
        return self._packs

    def _ready_to_judge(self) -> None:
        """What judging reads besides the inventory, made while the scan's worker processes examine files (0.1-0.2 s
        of CPU that ran alone before or after the scan): the built-in rule packs, Attachment A and the licence
        document tables, and the modules that judge and render."""
        self.packs()
        from licscan.report import json_report  # noqa: F401  (imported now: renders the report)
        from licscan.rules import attachment, documents, engine  # noqa: F401  (engine: imported now, judges)

        attachment.load()
        documents.load()

    def result(self, progress: Progress | None = None) -> AuditResult:
        return self._result(progress)[0]

    def _result(self, progress: Progress | None = None,
                deferred: Deferred | None = None) -> tuple[AuditResult, list[FileRecord]]:
        """The result and the scan's records (none when remembered); ``deferred``: see :func:`licscan.scan.scan`
        (the caller settles it)."""
        from licscan.model import Inventory

        records: list[FileRecord] = []
        remembered = self.memo.get(Remembered) if self.memo is not None else None
        if self.memo is not None and isinstance(remembered, Remembered) and isinstance(remembered.inventory, Inventory) \
                and isinstance(remembered.judgement, Judgement):
            self._remembered = True
            inventory, judgement = remembered.inventory, remembered.judgement
            packs = self.packs()
            self.memo.cache.trim()  # the size bound holds on every run (a scan trims at its end)
        else:
            from licscan.workers import steady_heap

            if self.prepared.pack_sources:
                self.packs()  # a bad pack of the user's is an error before the scan
            with steady_heap() as settle:
                inventory, records = scan(self.paths, self.prepared.scan, progress=progress,
                                          known=self.memo.known if self.memo is not None else None,
                                          meanwhile=self._ready_to_judge, deferred=deferred)
                settle()  # the inventory and records live until the reports are written: not walked again
                packs = self.packs()
                judgement = _judge(inventory, packs, self.prepared)
            if self.memo is not None:
                self._remembered = self.memo.put(Remembered(inventory, judgement), inventory.diagnostics)
        from licscan.rules.loader import all_rules  # (imported with the packs: during the scan, not before it)

        return AuditResult(inventory=inventory, findings=judgement.findings, rules=tuple(all_rules(packs)),
                           config=self.prepared.config, fail_on=self.fail_on, governing=judgement.governing), records

    def reports(self, requests: Sequence[tuple[str, RenderOptions]], progress: Progress | None = None) -> Reports:
        """The reports ``requests`` ((format, render options) each) asks for, and the exit code. A report that read
        the real time (``SOURCE_DATE_EPOCH`` unset: the HTML report says when it was made) is never replayed."""
        from licscan.report import render

        replayed = self._replayed(requests)
        if replayed is not None:
            return replayed
        from licscan.scan.deferred import Deferred

        # Without the cache, the largest libraries' digests are checked while this process judges and renders
        # (licscan/scan/deferred.py); a file whose digest is not its RECORD's makes all of it run again.
        deferred = Deferred() if self.memo is None and not self.prepared.scan.cache_dir else None
        try:
            result, records = self._result(progress, deferred)
            texts = [self._render(fmt, options, result, render) for fmt, options in requests]
            fixed = deferred.settle(records) if deferred is not None else None
            if fixed is not None:
                judgement = _judge(fixed[0], self.packs(), self.prepared)
                result = replace(result, inventory=fixed[0], findings=judgement.findings,
                                 governing=judgement.governing)
                texts = [self._render(fmt, options, result, render) for fmt, options in requests]
        finally:
            if deferred is not None:
                deferred.close()
        return Reports(tuple(texts), result.exit_code, len(result.inventory.diagnostics))

    def _render(self, fmt: str, options: RenderOptions, result: AuditResult,
                render: Callable[[str, AuditResult, RenderOptions], str]) -> str | Streamed:
        """The report ``fmt``: written piece by piece when it can be (:data:`licscan.report.STREAMED`) and will
        not be kept for replay (no tree memo); else rendered whole, and kept when it can be: a re-audit of an
        unchanged tree replays it (docs/cache.md: rendered again from the tree entry instead, the installed
        environment's report made that re-audit 0.09x the cold audit, not 0.03x)."""
        from licscan.report import STREAMED, _shared  # (not on the replay's path: it imports the model)

        if fmt in STREAMED and (self.memo is None or not self._remembered):
            return STREAMED[fmt](result, options)
        reads, folder_reads = clock.real_reads, _shared.cwd_reads
        text = render(fmt, result, options)
        if clock.real_reads == reads:
            self._keep(fmt, options, Replay(text, result.findings, result.inventory.complete,
                                            len(result.inventory.diagnostics)),
                       anywhere=_shared.cwd_reads == folder_reads)
        return text

    def _report_key(self, fmt: str, options: RenderOptions, anywhere: bool) -> str | None:
        """A rendered report is a function of the audit (the tree memo's key), the format, the render options, the
        working directory (paths under it are shown relative) and ``SOURCE_DATE_EPOCH`` (the clock). ``anywhere``:
        the key of a report whose rendering did not look at the working directory (every path it showed was
        relative already: ``licscan.report._shared.rel``), kept for every folder."""
        if self.memo is None:
            return None
        try:
            cwd = "" if anywhere else os.getcwd()
        except OSError:
            return None
        return self.memo.cache.key("report", self.memo.key, fmt, repr(options), cwd,
                                   os.environ.get("SOURCE_DATE_EPOCH", ""))

    def _replayed(self, requests: Sequence[tuple[str, RenderOptions]]) -> Reports | None:
        if self.memo is None or not requests:
            return None
        found = []
        for fmt, options in requests:
            replay = None
            for anywhere in (True, False):
                key = self._report_key(fmt, options, anywhere)
                replay = self.memo.cache.get(key, "report", Replay) if key is not None else None
                if replay is not None:
                    break
            if not (isinstance(replay, Replay) and isinstance(replay.text, str) and type(replay.complete) is bool
                    and type(replay.diagnostics) is int and isinstance(replay.findings, tuple)
                    and all(isinstance(f, Finding) for f in replay.findings)):
                return None
            found.append(replay)
        first = found[0]
        self.memo.cache.trim()
        return Reports(tuple(r.text for r in found), exit_code(first.findings, self.fail_on, complete=first.complete),
                       first.diagnostics)

    def _keep(self, fmt: str, options: RenderOptions, replay: Replay, anywhere: bool) -> None:
        key = self._report_key(fmt, options, anywhere)
        if self.memo is not None and self._remembered and key is not None \
                and self.memo.cache.put(key, "report", replay):
            self.memo.cache.trim()


def _judged_inputs(config: Config, pack_sources: Sequence[str]) -> str | None:
    """A digest of what the findings depend on besides the inventory: the configuration, which of its waivers have
    expired today (the one use of the date in judging: ``licscan.rules.waivers.apply`` compares each waiver's
    ``expires`` with today; so a tree audited yesterday is found again today unless a waiver expired in between),
    the extra rule packs and the `.licscan.yaml` read (the built-in packs and the knowledge tables are bound into
    every cache key through the cache's code digest); None when one of the files cannot be read as a regular file
    (the rule-pack loader then says why)."""
    from licscan.rules.yamlsource import FileRefused, read_text

    today = clock.today()
    expired = tuple(w.expires is not None and w.expires < today for w in config.waivers)
    digest = hashlib.sha256(repr((config, expired)).encode("utf-8", "surrogateescape"))
    for path in list(pack_sources) + ([config.path] if config.path else []):
        try:
            text = read_text(path)
        except FileRefused:
            return None
        digest.update(os.fsencode(str(path)) + b"\0" + text.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _judge(inventory: Inventory, packs: list[RulePack], prepared: Prepared) -> Judgement:
    """Findings are a pure function of the inventory, the rule packs and data, the configuration and today's date:
    an unchanged inventory (re-scanned from the content cache) skips the evaluation too. The entry is keyed by the
    report's fingerprint and ``judged``, and checked like every cache entry (HMAC, licscan's own types only): a
    forged or damaged entry -- an empty list written over a failing gate's findings -- is a miss and the rules are
    evaluated again (docs/cache.md)."""
    from licscan.report import json_report
    from licscan.scan import open_cache

    scan_config, judged = prepared.scan, prepared.judged
    cache = open_cache(scan_config, "findings", warn=lambda message: None) \
        if scan_config.cache_dir and judged is not None else None  # the scan already said why not
    key = cache.key("findings", json_report.fingerprint(inventory), str(judged)) if cache is not None else ""
    cached = cache.get(key, "findings", Judgement) if cache is not None else None
    if isinstance(cached, Judgement) and all(isinstance(f, Finding) for f in cached.findings):
        return cached
    judgement = _evaluate(inventory, packs, prepared.config)
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


def _tree_memo(paths: Sequence[str], config: ScanConfig, kind: str, *parts: str) -> TreeMemo | None:
    """The tree memo of entry ``kind`` (:class:`licscan.cache.memo.TreeMemo`: keyed by the tree's content, the inputs
    as given, the scan settings and ``parts``); None without a cache."""
    if not config.cache_dir:
        return None
    settings = f"{config.settings()}\0{config.walk_limits!r}\0{config.exclude!r}"
    return TreeMemo.open(paths, config.cache_dir, kind, (settings, *parts), max_bytes=config.cache_max_bytes,
                         jobs=config.jobs)


@dataclass(frozen=True)
class Scanned:
    """The scan of a tree with the same content, for ``licscan sbom`` (the tree memo's ``scan`` entry): the
    inventory and the per-file records an SBOM lists."""

    inventory: Inventory
    records: tuple[FileRecord, ...]


def scan_tree(paths: Sequence[str], config: ScanConfig,
              progress: Progress | None = None) -> tuple[Inventory, list[FileRecord]]:
    """:func:`licscan.scan.scan` of ``paths`` (``licscan sbom``), from the tree memo when a tree with the same content
    was scanned with the same settings (docs/cache.md)."""
    from licscan.identify.examine import FileRecord
    from licscan.model import Inventory

    memo = _tree_memo(paths, config, "scan")
    found = memo.get(Scanned) if memo is not None else None
    if memo is not None and isinstance(found, Scanned) and isinstance(found.inventory, Inventory) \
            and isinstance(found.records, tuple) and all(isinstance(r, FileRecord) for r in found.records):
        memo.cache.trim()  # the size bound holds on every run (a scan trims at its end)
        return found.inventory, list(found.records)
    inventory, records = scan(paths, config, progress=progress, known=memo.known if memo is not None else None)
    if memo is not None:
        memo.put(Scanned(inventory, tuple(records)), inventory.diagnostics)
    return inventory, records
