"""Renderers: facts and findings in, text out. They never judge or read input.

Every audit report format is one entry of :data:`RENDERERS` with one signature, ``(result, options) -> str``;
:func:`render` picks it. To add a format, write a module with such a function and register it here (and in
``licscan.report.outputs.AUDIT_FORMATS``, which the command line offers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from licscan.audit import AuditResult
    from licscan.streamed import Streamed


@dataclass(frozen=True)
class RenderOptions:
    color: bool = False  # text: ANSI colours (only for a terminal)
    sarif_category: str | None = None  # sarif: automationDetails.id


def _text(result: AuditResult, options: RenderOptions) -> str:
    from licscan.report import text_report

    return text_report.render(result.inventory, list(result.findings), color=options.color)


def _json(result: AuditResult, options: RenderOptions) -> str:
    from licscan.report import json_report

    return json_report.render(result.inventory, list(result.findings), result.governing)


def _sarif(result: AuditResult, options: RenderOptions) -> str:
    from licscan.report import sarif

    return sarif.render(result.inventory, list(result.findings), result.rules, options.sarif_category)


def _markdown(result: AuditResult, options: RenderOptions) -> str:
    from licscan.report import markdown

    return markdown.render(result.inventory, list(result.findings))


def _html(result: AuditResult, options: RenderOptions) -> str:
    from licscan.report import html

    return html.render(result.inventory, list(result.findings))


RENDERERS: dict[str, Callable[[AuditResult, RenderOptions], str]] = {
    "text": _text, "json": _json, "sarif": _sarif, "markdown": _markdown, "html": _html,
}


def render(fmt: str, result: AuditResult, options: RenderOptions = RenderOptions()) -> str:
    return RENDERERS[fmt](result, options)


def _json_streamed(result: AuditResult, options: RenderOptions) -> Streamed:
    from licscan.report import json_report

    return json_report.streamed(result.inventory, list(result.findings), result.governing)


#: Formats that can also be written piece by piece (the same text as their :data:`RENDERERS` entry, never held
#: whole): a report written to its file as it is made.
STREAMED: dict[str, Callable[[AuditResult, RenderOptions], Streamed]] = {"json": _json_streamed}
