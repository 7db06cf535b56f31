"""Escaping of untrusted text, one function per output medium (docs/security.md); the renderers of licscan/report
and licscan/sbom and the command line use it, so it sits in the lowest layer (docs/architecture.md).

Every name, version, licence, message and path that licscan reports comes from the scanned input and is hostile
by assumption. Each renderer passes such text through the one function of its medium, here:

``terminal``   text report, ``inspect`` text, standard error, CI logs
``markdown``   Markdown prose and table cells (``$GITHUB_STEP_SUMMARY``); ``markdown_code`` for code spans
``html``       the HTML report
``sarif_text`` SARIF ``message.text`` (plain text in which ``[text](target)`` is an embedded link)
``sbom_text``  SPDX (JSON and tag-value) and CycloneDX strings
``cpe_value``  one component of a CPE 2.3 formatted string

JSON documents need no escaping beyond the encoder's; file names that are not UTF-8 stay lossless there (a JSON
``\\udcNN`` escape per byte). Everywhere else such a byte is shown as the visible text ``\\xNN``.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Collection
from typing import Any

# Characters that change what a terminal, a log viewer or a text renderer shows instead of showing themselves:
# C0 and C1 controls (ESC starts CSI/OSC sequences: screen clear, colours, window titles, hyperlinks; CR and LF
# start new log lines), DEL, format characters (bidirectional overrides such as U+202E, zero-width characters),
# line and paragraph separators, and lone surrogates (os.fsdecode's bytes that are not UTF-8).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (surrogateescape): the byte itself
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _needs_escape(ch: str) -> bool:
    return unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def visible(text: Any, keep: str = "") -> str:
    """``text`` with every control, format, separator and surrogate character as a visible escape (``\\x1b``,
    ``\\n``, ``\\u202e``; a byte that is not UTF-8 as ``\\xff``), except the characters in ``keep``."""
    text = "" if text is None else str(text)
    assert isinstance(text, str)
    if text.isprintable() and not keep:  # fast path: the common case has nothing to escape
        return text
    return "".join(_visible(ch) if ch not in keep and _needs_escape(ch) else ch for ch in text)


# GitHub Actions reads workflow commands from every log line: ``::command args::data`` at the start of a line
# after leading white space, and the older ``##[command]data`` anywhere in a line (actions/runner,
# src/Runner.Common/ActionCommand.cs: TryParseV2 trims the line and tests StartsWith("::"); TryParse searches
# IndexOf("##[")). Untrusted text can no longer start a line once its line breaks are escaped, but it can still
# be the first thing on a line (a path heading) or carry "##[".
_V1_COMMAND = re.compile(r"##\[")


def terminal(text: Any) -> str:
    """For a terminal, a CI log or standard error: one line, nothing a terminal or a log reader interprets."""
    out = visible(text)
    if "##[" in out:
        out = _V1_COMMAND.sub(r"##\\x5b", out)
    stripped = out.lstrip()
    if stripped.startswith("::"):
        cut = len(out) - len(stripped)
        out = out[:cut] + "\\x3a" + stripped[1:]
    return out


def terminal_lines(text: str) -> str:
    """Several lines of our own making with untrusted parts: each line escaped, the line breaks kept."""
    return "\n".join(terminal(line) for line in str(text).split("\n"))


# Markdown (CommonMark 0.31 §2.4: "Any ASCII punctuation character may be backslash-escaped"; the escaped
# character is shown literally). Always escaped: what opens inline syntax (links and images "[", "]", "!",
# emphasis "*", "~" and "_" unless inside a word, code "`", raw HTML and autolinks "<", ">", entities "&", table
# cells "|", the escape itself "\\"). Escaped where they would start something: the block markers a text could
# begin with ("#", "+", "-", "=", ">", "1." / "1)"), the ":" of a URL scheme and the "." of "www." (GFM extended
# autolinks). GitHub turns "@name" and "#123" in rendered text into mentions and issue links after the Markdown
# is rendered, so a backslash cannot stop them: a WORD JOINER (U+2060, invisible, not a word character) after
# "@" and "#" breaks the pattern.
_MARKDOWN_ALWAYS = frozenset("\\`*[]!<>&|~")
_JOINER = "\u2060"
_SCHEME_COLON = re.compile(r"(?i)\b(https?|ftp|mailto|xmpp):")
_WWW_DOT = re.compile(r"(?i)\bwww\.")
_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")


def markdown(text: Any) -> str:
    """For Markdown prose and table cells: one line, shown literally; no link, image, HTML, emphasis, mention or
    autolink."""
    line = " ".join(visible(text, keep="\t\n\r").split())
    out = []
    last = len(line) - 1
    for i, ch in enumerate(line):
        if ch in _MARKDOWN_ALWAYS:
            out.append("\\" + ch)
        elif ch == "_" and not (0 < i < last and line[i - 1].isalnum() and line[i + 1].isalnum()):
            out.append("\\_")
        elif ch in "@#":
            out.append("\\" + ch + _JOINER)
        else:
            out.append(ch)
    escaped = "".join(out)
    escaped = _SCHEME_COLON.sub(r"\1\\:", escaped)
    escaped = _WWW_DOT.sub(lambda m: m.group(0)[:-1] + "\\.", escaped)
    if escaped[:1] in ("+", "-", "="):
        escaped = "\\" + escaped
    else:
        escaped = _ORDERED.sub(r"\1\\\2", escaped)
    return escaped


def markdown_code(text: Any, table: bool = False) -> str:
    """A Markdown code span (nothing inside is interpreted; GitHub does not link mentions in code): one line, the
    fence longer than any run of backticks inside; in a table, "|" escaped (GFM: the one escape that works
    inside a code span in a table cell)."""
    line = " ".join(visible(text, keep="\t\n\r").split())
    if table:
        line = line.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest or line.startswith(" ") or line.endswith(" ") else ""
    return f"{fence}{pad}{line}{pad}{fence}" if line else "` `"


def html(text: Any) -> str:
    """For HTML text and attribute values: visible escapes for controls and bidirectional overrides, then
    ``html.escape`` (``& < > " '``)."""
    from html import escape

    return escape(visible(text), quote=True)


def sarif_text(text: Any) -> str:
    """SARIF 2.1.0 ``message.text`` (§3.11.6, messages with embedded links: ``[text](target)`` is a link; a
    literal "[" or "]" is written "\\[" / "\\]", and "\\" as "\\\\"): one line, no embedded link."""
    line = " ".join(visible(text, keep="\t\n\r").split())
    return line.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


# SPDX 2.3 tag-value (spec clause 5 and annex: one "Tag: value" per line, a multi-line value wrapped in
# <text>...</text>): a line break in a value would start a tag of its own, and "</text>" would end a text early.
_TEXT_TAG = re.compile(r"</?text>", re.IGNORECASE)


def sbom_text(text: Any, multiline: bool = False) -> str:
    """For SPDX (tag-value and JSON) and CycloneDX strings: visible escapes for controls and bytes that are not
    UTF-8; line breaks only where ``multiline``; never a ``<text>`` tag."""
    out = visible(text, keep="\n" if multiline else "")
    if "<" in out:
        out = _TEXT_TAG.sub(lambda m: m.group(0).replace("<", "\\x3c"), out)
    return out


# CPE 2.3 formatted string binding (NISTIR 7695 §6.2.2.2): "\" quotes every printable non-alphanumeric
# character other than "_", "-" and "."; a WFN value may not contain white space or non-ASCII (§5.3.2).
_CPE_PLAIN = re.compile(r"[A-Za-z0-9._-]")


def cpe_value(text: str | None) -> str | None:
    """One component of a CPE 2.3 formatted string, or None when ``text`` cannot be one (empty, white space,
    controls, non-ASCII)."""
    if not text or any(not (0x21 <= ord(ch) <= 0x7E) for ch in text):
        return None
    return "".join(ch if _CPE_PLAIN.match(ch) else "\\" + ch for ch in text)


def map_strings(value: Any, function: Callable[[str, str], str], field_name: str = "",
                skip: Collection[str] = ()) -> Any:
    """``value`` (frozen dataclasses, tuples, lists, dicts of them) with every string passed through
    ``function(string, field_name)``; fields named in ``skip`` are left as they are."""
    if isinstance(value, str):
        return function(value, field_name)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for item in dataclasses.fields(value):
            if item.name in skip or not item.init:
                continue
            old = getattr(value, item.name)
            new = map_strings(old, function, item.name, skip)
            if new is not old:
                changes[item.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, (tuple, list)):
        items = [map_strings(v, function, field_name, skip) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    if isinstance(value, dict):
        return {map_strings(k, function, field_name, skip): map_strings(v, function, field_name, skip)
                for k, v in value.items()}
    return value
