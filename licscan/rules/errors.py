"""Positioned problems of rule packs and configuration files.

A loader collects every :class:`Problem` it finds and raises one :class:`RulePackError` (or :class:`ConfigError`)
carrying them all; the CLI prints them and exits 2. Library code never prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Span:
    """A position in a source file; ``line`` and ``column`` are 1-based (0 = unknown)."""

    source: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.source
        return f"{self.source}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Problem:
    span: Span
    message: str

    def __str__(self) -> str:
        return f"{self.span}: {self.message}"


class LoadError(Exception):
    """Every problem found in one or more files; ``str()`` renders one line per problem, sorted by position."""

    kind = "file"

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    def render(self, with_source: bool = True) -> str:
        """One block per problem: ``file:line:col: message``, then the source line and a caret; every line made
        harmless for a terminal or CI log (licscan.escape.terminal: a pack's text may hold control sequences)."""
        lines: list[str] = []
        cache: dict[str, list[str]] = {}
        for problem in self.problems:
            lines.append(str(problem))
            span = problem.span
            if not with_source or not span.line:
                continue
            if span.source not in cache:
                try:
                    with open(span.source, encoding="utf-8") as handle:
                        cache[span.source] = handle.read().splitlines()
                except OSError:
                    cache[span.source] = []
            text = cache[span.source]
            if 0 < span.line <= len(text):
                lines.append("    " + text[span.line - 1])
                lines.append("    " + " " * max(span.column - 1, 0) + "^")
        from licscan.escape import terminal

        return "\n".join(terminal(line) for line in lines)


class RulePackError(LoadError):
    """An invalid rule pack (exit code 2)."""

    kind = "rule pack"


class ConfigError(LoadError):
    """An invalid ``.licscan.yaml`` (exit code 2)."""

    kind = "configuration"
