"""``.licscan.yaml``: given with ``--config``, or found from the working directory (never from inside the scanned
inputs: a scanned tree cannot change its own verdict; docs/security.md).

Discovery: ``.licscan.yaml`` in the working directory, else in the folders above it up to the root of the git
repository it lies in (the nearest folder holding ``.git``); outside a repository, the working directory only.
A configuration found this way is refused (exit 2) when it lies inside one of the scanned inputs, or when it or its
folder is writable by every user (a shared temporary folder). ``rules:`` paths must stay inside the
configuration's repository (its folder outside a repository), and every file is read only when it is a regular
file of at most 4 MiB whose YAML aliases expand to at most 100,000 nodes (licscan/rules/yamlsource.py).

Keys (all optional)::

    version: 1
    fail-on: error                        # error|warning|note|never (the CLI's --fail-on wins)
    eula:
      governing-text: published-with-toolkit   # which licence text governs a part: published-with-toolkit
                                          # (default), shipped-beside or newest (docs/licenses.md)
      translation-clause-since: "11.6"    # optional reading: take 1.2(8) to govern output of this toolkit release
                                          # and later, or of the first release mapped to an EULA text date
      text: "2024-01-12"                  # pin the EULA text Attachment A is read from (default: by toolkit)
    rules: [extra-pack.yaml]              # extra rule packs, relative to this file
    exclude: ["build/tmp/*"]              # virtual-path globs whose facts are not judged
    limits: {ratio-floor: 16M, max-file-seconds: 600}   # any resource limit option (licscan/inventory/limits.py)
    waivers:
      - rule: CUDA-EULA-DEV-TOOL          # rule id (or glob); with `path`, or use `fingerprint`
        path: "dist/*.whl!/triton/backends/nvidia/bin/ptxas"
        fingerprint: 0123456789abcdef     # a finding's fingerprint (licscan waive)
        reason: "Redistribution approved by NVIDIA, ticket LEGAL-123"
        expires: 2027-06-30               # waives up to and including this day
        approver: legal@example.com

Every problem is reported at once with file:line:column as one ConfigError (exit code 2). An expired waiver stops
waiving and is reported (LICSCAN-WAIVER-EXPIRED, warning); a waiver that matched nothing is reported
(LICSCAN-WAIVER-UNUSED, note). ``waive()`` edits the file with ruamel's round-trip dumper, so comments and key
order survive.
"""

from __future__ import annotations

import datetime
import fnmatch
import io
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from licscan.findings import FailOn, Finding
from licscan.rules import waivers as waivers_mod
from licscan.rules.errors import ConfigError, Problem, Span
from licscan.rules.waivers import FINGERPRINT, Report, Waiver, current_date, parse_date, parse_waiver
from licscan.rules.yamlsource import FileRefused, item_span, key_span, parse, read_text, value_span

if TYPE_CHECKING:  # imported where a configuration's `eula:` is read: an audit replayed from the cache reads none
    from licscan.rules.attachment import AttachmentA

FILE_NAME = ".licscan.yaml"
FAIL_ON = tuple(f.value for f in FailOn)
TOP_KEYS = ("version", "fail-on", "eula", "rules", "exclude", "waivers", "limits")
EULA_KEYS = ("translation-clause-since", "text", "governing-text")
_RELEASE = re.compile(r"^\d+(?:\.\d+){1,2}$")
__all__ = ["FILE_NAME", "Config", "ConfigError", "Waiver", "config_from_yaml", "current_date", "find_config",
           "load_config", "planted_configs", "resolve_config", "waive"]


@dataclass(frozen=True)
class Config:
    path: str | None = None
    fail_on: FailOn = FailOn.ERROR
    translation_clause_since: str = "11.6"
    translation_clause_set: bool = False  # translation-clause-since given in the file (a reading the user chose)
    eula_text: str | None = None
    governing_text: str = "published-with-toolkit"
    rules: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    waivers: tuple[Waiver, ...] = field(default_factory=tuple)
    limits: tuple[tuple[str, int | float], ...] = ()  # (option key, value): `limits:`; the command line wins

    def settings(self) -> dict[str, str]:
        return {"eula.translation-clause-since": self.translation_clause_since,
                "eula.translation-clause-set": "yes" if self.translation_clause_set else ""}

    def excluded(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.exclude)

    def apply_waivers(self, findings: Iterable[Finding], today: datetime.date | None = None) -> list[Finding]:
        """Findings with ``waived`` set by the first active waiver that matches, plus one finding per expired
        waiver and per active waiver that matched nothing (licscan/rules/waivers.py)."""
        return waivers_mod.apply(self.waivers, findings, self.path or FILE_NAME, today)


def repository_root(folder: str | os.PathLike[str]) -> Path | None:
    """The nearest folder at or above ``folder`` that holds ``.git`` (a git work tree), or None."""
    folder = Path(folder).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """``.licscan.yaml`` in ``start`` (default: the working directory), else in the folders above it up to the
    root of its git repository; outside a repository, ``start`` only. Never searched from the scanned inputs."""
    try:
        folder = Path(start if start is not None else os.getcwd()).resolve()
    except OSError:  # the working directory was removed: there is nothing to find
        return None
    root = repository_root(folder)
    candidates = [folder] if root is None else [folder, *folder.parents[:len(folder.parents) - len(root.parents)]]
    for candidate in candidates:
        path = candidate / FILE_NAME
        if path.is_file():
            return path
    return None


def containing_input(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]) -> str | None:
    """The scanned input (a folder given as PATH) that ``path`` lies in, or None."""
    target = Path(path).resolve()
    for item in inputs:
        try:
            folder = Path(item).resolve()
        except (OSError, RuntimeError, RecursionError):  # a link loop given as PATH: the walker reports it
            continue
        if folder.is_dir() and (target == folder or target.is_relative_to(folder)):
            return str(item)
    return None


def planted_configs(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """``.licscan.yaml`` files at the top of scanned folders: never applied, reported so nobody believes they are."""
    found = []
    for item in inputs:
        candidate = Path(item) / FILE_NAME
        if Path(item).is_dir() and candidate.is_file():
            found.append(str(candidate))
    return found


def resolve_config(paths: Iterable[str | os.PathLike[str]], explicit: str | os.PathLike[str] | None = None) -> Config:
    """The configuration for a scan: ``explicit`` (``--config``, trusted as given), else the one found from the
    working directory (refused inside a scanned input or in a folder everyone may write), else defaults.
    Raises ConfigError (exit 2)."""
    if explicit is not None:
        return load_config(explicit)
    found = find_config()
    if found is None:
        return Config()
    source = str(found)
    inside = containing_input(found, paths)
    if inside is not None:
        raise ConfigError([Problem(Span(source), f"not applied: this configuration lies inside the scanned input "
                                                 f"{inside!r}, and a scanned tree may not configure its own gate "
                                                 "(run licscan from another folder, or pass --config FILE)")])
    try:
        mine, folder = found.stat(), found.parent.stat()
    except OSError as error:
        raise ConfigError([Problem(Span(source), f"cannot read configuration: {error.strerror}")]) from None
    if mine.st_mode & stat.S_IWOTH:
        shared = "the file is writable by every user"
    elif folder.st_mode & stat.S_IWOTH and not (folder.st_mode & stat.S_ISVTX and mine.st_uid == os.geteuid()):
        shared = "it lies in a folder every user may write (another user could have put it there)"
    else:
        shared = None
    if shared:
        raise ConfigError([Problem(Span(source), f"not applied: {shared}; pass --config FILE to use it")])
    return load_config(found)


def load_config(path: str | os.PathLike[str]) -> Config:
    source = str(path)
    try:
        text = read_text(path)  # a regular file of at most MAX_FILE_BYTES (a FIFO or /dev/zero is refused)
    except FileRefused as error:
        raise ConfigError([Problem(Span(source), f"cannot read configuration: {error}")]) from None
    return config_from_yaml(text, source)


def config_from_yaml(text: str, source: str) -> Config:
    data, problems = parse(text, source)
    if data is None and not problems:
        return Config(path=source)
    if data is None:
        raise ConfigError(problems)
    return config_from_mapping(data, source, problems)


def config_from_mapping(data: Any, source: str, problems: list[Problem] | None = None) -> Config:
    """The configuration of a parsed ``.licscan.yaml``; every problem at once in one ConfigError."""
    problems = list(problems or ())

    def error(span: Span, message: str) -> None:
        problems.append(Problem(span, message))

    if not isinstance(data, dict):
        raise ConfigError(problems + [Problem(Span(source, 1, 1), "the configuration must be a mapping")])
    for key in data:
        if key not in TOP_KEYS:
            error(key_span(data, key, source), f"unknown key {key!r}; expected one of {', '.join(TOP_KEYS)}")
    config = Config(path=source)
    if "version" in data and data["version"] != 1:
        error(value_span(data, "version", source), f"unsupported configuration version {data['version']!r} (expected 1)")
    fail_on = _choice(data, "fail-on", FAIL_ON, source, error) if "fail-on" in data else None
    if fail_on is not None:
        config = replace(config, fail_on=FailOn(fail_on))
    if data.get("eula") is not None:
        config = _eula(data, config, source, error)
    config = _paths(data, config, source, error)
    if data.get("limits") is not None:
        config = replace(config, limits=_limits(data, source, error))
    waivers_data = data.get("waivers")
    if waivers_data is not None:
        if not isinstance(waivers_data, list):
            error(value_span(data, "waivers", source), "'waivers' must be a list")
        else:
            found = (parse_waiver(item, item_span(waivers_data, index, source), source, error)
                     for index, item in enumerate(waivers_data))
            config = replace(config, waivers=tuple(w for w in found if w is not None))
    if problems:
        raise ConfigError(problems)
    return config


def _choice(data: dict[Any, Any], key: str, choices: tuple[str, ...], source: str, error: Report) -> str | None:
    """``data[key]`` when it is one of ``choices``; otherwise the problem is reported and the answer is None."""
    value = data[key]
    if value in choices:
        return str(value)
    error(value_span(data, key, source), f"'{key}' must be one of {', '.join(choices)} (got {value!r})")
    return None


def _eula(data: dict[Any, Any], config: Config, source: str, error: Report) -> Config:
    """``eula:``: governing-text, translation-clause-since, text."""
    from licscan.rules import attachment
    from licscan.rules.governing import POLICIES

    eula = data["eula"]
    if not isinstance(eula, dict):
        error(value_span(data, "eula", source), "'eula' must be a mapping")
        return config
    texts = attachment.load()
    for key in eula:
        if key not in EULA_KEYS:
            error(key_span(eula, key, source), f"unknown key {key!r} in 'eula'; expected one of {', '.join(EULA_KEYS)}")
    if "translation-clause-since" in eula:
        since = _translation_since(eula, texts, source, error)
        if since is not None:
            config = replace(config, translation_clause_since=since, translation_clause_set=True)
    policy = _choice(eula, "governing-text", POLICIES, source, error) if "governing-text" in eula else None
    if policy is not None:
        config = replace(config, governing_text=policy)
    if "text" in eula:
        as_date = parse_date(eula["text"])
        value = as_date.isoformat() if as_date else str(eula["text"])
        if not any(t.id == value for t in texts.texts):
            error(value_span(eula, "text", source),
                  f"unknown EULA text {value!r}; known: {', '.join(t.id for t in texts.texts)}")
        else:
            config = replace(config, eula_text=value)
    return config


def _translation_since(eula: dict[Any, Any], texts: AttachmentA, source: str, error: Report) -> str | None:
    """``eula.translation-clause-since``: a toolkit release, or the date of an EULA text (its first toolkit)."""
    value = eula["translation-clause-since"]
    span = value_span(eula, "translation-clause-since", source)
    as_date = parse_date(value)
    if as_date is not None:
        text = texts.text_by_date(as_date.isoformat())
        if text is None:
            error(span, f"no EULA text dated {as_date.isoformat()} is known; known dates: "
                        + ", ".join(t.date for t in texts.texts))
        elif text.first_toolkit is None:
            error(span, f"no toolkit release is known to be published with the EULA text of {as_date.isoformat()} "
                        "(docs/licenses.md)")
        return text.first_toolkit if text is not None else None
    if isinstance(value, str) and _RELEASE.match(value):
        return value
    hint = " (quote it: YAML reads 11.6 as a number)" if isinstance(value, (int, float)) else ""
    error(span, f"'translation-clause-since' must be a toolkit release like \"11.6\" or an EULA text date like "
                f"2021-10-08 (got {value!r}){hint}")
    return None


def _paths(data: dict[Any, Any], config: Config, source: str, error: Report) -> Config:
    """``rules:`` (rule packs, confined to the configuration's repository or folder) and ``exclude:`` (globs)."""
    base = Path(source).parent
    for key in ("rules", "exclude"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            error(value_span(data, key, source), f"'{key}' must be a list of strings")
            continue
        if key == "exclude":
            config = replace(config, exclude=tuple(str(v) for v in value))
            continue
        boundary = repository_root(base) or base.resolve()
        outside = [i for i, v in enumerate(value) if not _within(base / v, boundary)]
        for index in outside:
            error(item_span(value, index, source),
                  f"rule pack {value[index]!r} lies outside {str(boundary)!r}, the configuration's "
                  f"{'repository' if repository_root(base) else 'folder'}: not read")
        if not outside:
            config = replace(config, rules=tuple(str(base / v) for v in value))
    return config


def _within(path: Path, boundary: Path) -> bool:
    """``path`` (symbolic links resolved) is ``boundary`` or lies below it."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, RecursionError):
        return False
    return resolved == boundary or resolved.is_relative_to(boundary)


def _limits(data: dict[Any, Any], source: str, error: Report) -> tuple[tuple[str, int | float], ...]:
    from licscan.inventory import limits

    value = data["limits"]
    if not isinstance(value, dict):
        error(value_span(data, "limits", source), "'limits' must be a mapping of limit options to values")
        return ()
    out = []
    for key in value:
        option = limits.BY_KEY.get(key) if isinstance(key, str) else None
        if option is None:
            error(key_span(value, key, source), f"unknown limit {key!r}; expected one of "
                                                f"{', '.join(o.key for o in limits.OPTIONS)}")
            continue
        try:
            out.append((key, limits.parse_value(option, value[key])))
        except ValueError as problem:
            error(value_span(value, key, source), str(problem))
    return tuple(sorted(out))


def waive(config_path: str | os.PathLike[str], fingerprint: str, reason: str, expires: str | datetime.date | None = None,
          approver: str | None = None, rule: str | None = None, path: str | None = None,
          write: Callable[[Path, str], None] | None = None) -> dict[str, Any]:
    """Append a waiver to ``config_path`` (created when missing), keeping comments and key order. Returns the
    waiver as written. ``write(path, text)`` writes the new file (``licscan waive``: atomically, the command line's
    writer); by default it is written in place. Raises ConfigError on a bad fingerprint or date, or an invalid
    existing file."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    source = str(config_path)
    problems = []
    if not FINGERPRINT.match(fingerprint or ""):
        problems.append(Problem(Span(source), f"fingerprint must be 16 lower-case hex digits (got {fingerprint!r})"))
    if not (reason or "").strip():
        problems.append(Problem(Span(source), "a waiver needs a reason"))
    when = parse_date(expires) if expires is not None else None
    if expires is not None and when is None:
        problems.append(Problem(Span(source), f"expires must be a date YYYY-MM-DD (got {expires!r})"))
    if problems:
        raise ConfigError(problems)
    target = Path(config_path)
    try:
        text = read_text(target) if target.exists() else ""
    except FileRefused as error:
        raise ConfigError([Problem(Span(source), f"cannot read configuration: {error}")]) from None
    if text.strip():
        config_from_yaml(text, source)  # refuse to edit an invalid file
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text) if text.strip() else None
    if data is None:
        data = CommentedMap()
    if data.get("waivers") is None:
        data["waivers"] = CommentedSeq()
    entry = CommentedMap()
    if rule:
        entry["rule"] = rule
    if path:
        entry["path"] = path
    entry["fingerprint"] = fingerprint
    entry["reason"] = reason
    if when is not None:
        entry["expires"] = when
    if approver:
        entry["approver"] = approver
    data["waivers"].append(entry)
    dumped = io.StringIO()
    yaml.dump(data, dumped)
    if write is not None:
        write(target, dumped.getvalue())
    else:
        target.write_text(dumped.getvalue(), encoding="utf-8")
    return {k: (v.isoformat() if isinstance(v, datetime.date) else v) for k, v in entry.items()}
