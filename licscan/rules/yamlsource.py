"""YAML with positions: ruamel.yaml's round-trip loader, duplicate keys found on the node tree (every one, with
its position) instead of ruamel's single DuplicateKeyError, and helpers that give the span of a key or an item.

Limits (docs/security.md): a configuration or rule pack is read only when it is a regular file of at most
``MAX_FILE_BYTES`` (a FIFO would block, ``/dev/zero`` would never end), and its aliases may not expand it past
``MAX_NODES`` nodes (ten levels of nine aliases in 535 bytes are 3.5 billion nodes: a "billion laughs").
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from licscan.knowledge import pack_snapshot
from licscan.knowledge import plain as plain  # round-trip data as plain values (re-exported)
from licscan.rules.errors import Problem, Span

if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import Node

# ruamel.yaml is imported where YAML is read or located, not with this module: a command that reads no YAML (an
# audit replayed from the cache, docs/cache.md) reads files with read_text at most.

MAX_FILE_BYTES = 4 << 20
MAX_NODES = 100_000


class FileRefused(Exception):
    """A file that is not read: not a regular file, too large, unreadable or not UTF-8 (one line of text)."""


def read_text(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes; FileRefused otherwise. Opened
    without blocking (a FIFO is refused, not waited on) and checked with fstat on the open descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise FileRefused(f"cannot open: {error.strerror or error}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("not a regular file")
        if info.st_size > limit:
            raise FileRefused(f"larger than {limit} bytes ({info.st_size})")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileRefused(f"larger than {limit} bytes")
    except OSError as error:
        raise FileRefused(f"cannot read: {error.strerror or error}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileRefused(f"not UTF-8 text (byte {error.start})") from None


def _yaml() -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = True  # duplicates are reported by duplicate_keys(), all of them
    return yaml


def parse(text: str, source: str) -> tuple[Any, list[Problem]]:
    """The round-trip data of ``text`` and the problems found while reading it (syntax, duplicate keys).
    On a syntax error the data is None."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = _yaml()
    try:
        node = yaml.compose(text)
        if node is not None:
            expansion = expanded_size(node)
            if expansion is None or expansion > MAX_NODES:
                what = ("an alias refers to a node that contains it" if expansion is None else
                        f"aliases expand it to {expansion:,} nodes (at most {MAX_NODES:,} allowed)")
                return None, [Problem(Span(source), f"YAML not accepted: {what}")]
        # One parse: the round-trip data is constructed from the node tree that the duplicate-key check reads
        # (yaml.load would scan and parse the text a second time; that was half of a pack's loading time).
        data = yaml.constructor.construct_document(node) if node is not None else None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        span = Span(source, mark.line + 1, mark.column + 1) if mark else Span(source)
        return None, [Problem(span, f"YAML syntax: {error.problem or error.context}")]
    except YAMLError as error:
        return None, [Problem(Span(source), f"YAML syntax: {error}")]
    except (TypeError, ValueError, NotImplementedError, RecursionError, AttributeError, IndexError, KeyError) as error:
        # ruamel.yaml's own faults on text it does not support (found by fuzzing: a mapping used as a mapping key
        # -> "TypeError: unhashable type: 'CommentedMap'"; overlapping comments -> NotImplementedError). The pack
        # is unreadable, which is a load error of the pack, never a crash of licscan.
        return None, [Problem(Span(source), f"YAML not readable: ruamel.yaml failed with {type(error).__name__}: "
                                            f"{str(error)[:200]}")]
    problems = list(duplicate_keys(node, source)) if node is not None else []
    return data, problems


def _children(node: Node, mapping: type, sequence: type) -> list[Node]:
    if isinstance(node, mapping):
        return [n for pair in node.value for n in pair]
    if isinstance(node, sequence):
        return list(node.value)
    return []


def expanded_size(root: Node) -> int | None:
    """How many nodes the document has once every alias is expanded (each alias is the same node object reached
    again), computed once per distinct node; None when an alias refers to a node that contains it."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in _children(node, MappingNode, SequenceNode))
            continue
        if key in size:
            continue
        if key in on_path:
            return None
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node, MappingNode, SequenceNode):
            if id(child) in on_path:
                return None
            if id(child) not in size:
                stack.append((child, False))
    return size[id(root)]


def duplicate_keys(node: Node, source: str) -> Iterator[Problem]:
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    stack = [node]
    visited: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in visited:  # an alias: the node was checked where it was defined
            continue
        visited.add(id(current))
        if isinstance(current, MappingNode):
            seen: dict[Any, Node] = {}
            for key, value in current.value:
                if isinstance(key, ScalarNode):
                    if key.value in seen:
                        first = seen[key.value].start_mark
                        yield Problem(Span(source, key.start_mark.line + 1, key.start_mark.column + 1),
                                      f"duplicate key {key.value!r} (first at line {first.line + 1})")
                    else:
                        seen[key.value] = key
                stack.append(value)
        elif isinstance(current, SequenceNode):
            stack.extend(current.value)


def _located(data: Any, kind: str, locate: Callable[[Any], tuple[int, int]], source: str,
             fallback: Callable[[], Span]) -> Span:
    """The span ruamel's line/column record ``lc`` of ``data`` gives by ``locate``; ``fallback()`` when it has none
    for that key or item; the file alone for data that is not round-trip ``kind`` (a class of
    ``ruamel.yaml.comments``: when that module was never imported, no data is one)."""
    comments = sys.modules.get("ruamel.yaml.comments")
    lc = getattr(data, "lc", None) if comments is not None and isinstance(data, getattr(comments, kind)) else None
    if lc is None:
        return Span(source)
    try:
        line, column = locate(lc)
    except (KeyError, TypeError, IndexError):
        return fallback()
    return Span(source, line + 1, column + 1)


def key_span(mapping: Any, key: Any, source: str) -> Span:
    """The span of ``key`` in ``mapping`` (or of the mapping itself when the key is absent)."""
    return _located(mapping, "CommentedMap", lambda lc: lc.key(key), source, lambda: node_span(mapping, source))


def value_span(mapping: Any, key: Any, source: str) -> Span:
    """The span of the value of ``key`` in ``mapping`` (or of the key)."""
    return _located(mapping, "CommentedMap", lambda lc: lc.value(key), source, lambda: key_span(mapping, key, source))


def item_span(sequence: Any, index: int, source: str) -> Span:
    """The span of item ``index`` of ``sequence`` (or of the sequence itself)."""
    return _located(sequence, "CommentedSeq", lambda lc: lc.item(index), source, lambda: node_span(sequence, source))


def node_span(data: Any, source: str) -> Span:
    lc = getattr(data, "lc", None)
    if lc is not None and lc.line is not None:
        return Span(source, lc.line + 1, lc.col + 1)
    return Span(source)


class _At:
    """A position as ruamel.yaml's ``lc`` record gives it (0-based line and column), for :func:`node_span`."""

    def __init__(self, line: int, col: int) -> None:
        self.line, self.col = line, col


class Placed(dict[Any, Any]):
    """A mapping read from a snapshot, at the position its YAML had (``lc``, as a round-trip mapping has)."""

    lc: _At


def builtin_data(source: str) -> Any:
    """The data of licscan's own rule pack at ``source`` from its JSON snapshot while that is current
    (:func:`licscan.knowledge.pack_snapshot`: the same data, without ruamel.yaml's pure-Python parse), each rule
    at its position in the YAML; None when there is none (the YAML is read, and says what is wrong where)."""
    snapshot = pack_snapshot(source)
    data = snapshot.data if snapshot is not None else None
    if snapshot is None or not isinstance(data, dict):
        return None
    rules = data.get("rules")
    if not isinstance(rules, list) or len(rules) != len(snapshot.rules_at) \
            or not all(isinstance(rule, dict) for rule in rules):
        return None
    placed = []
    for rule, (line, column) in zip(rules, snapshot.rules_at, strict=True):
        item = Placed(rule)
        item.lc = _At(line - 1, column - 1)
        placed.append(item)
    return {**data, "rules": placed}
