"""Byte probes over a file's contents held as bytes, a memoryview or an mmap (the readers' common buffer types).

:class:`LiteralSet` and :class:`Literals` answer "where does each of these literals first occur in this file" for a
fixed set of literals in one pass over the bytes (the naming layer used to ask ~23 whole-file ``find`` calls of
every binary). The pass is an Aho-Corasick search (``ahocorasick-rs``, https://pypi.org/project/ahocorasick-rs/) in
*leftmost-longest* mode, which the Rust crate runs with a SIMD prefilter (Teddy) at memory speed. That mode reports
non-overlapping matches only; an occurrence it does not report starts inside a match it reported (see
:func:`first_offsets`), so those are recovered from a table of how the literals can overlap each other: the offsets
found are exactly those of ``bytes.find``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import ahocorasick_rs

from licscan.binary.buffer import Buffer, release_pages
from licscan.binary.paged import PagedMap

Bytes: TypeAlias = Buffer | memoryview  # a reader's buffer, or a window of one

WINDOW = 16 << 20  # bytes searched per step; an mmap's pages are dropped behind each step (bounded resident memory)
# Bytes one magic search hands to the automaton at a time: its list of matches stays small (at most 64 Ki entries,
# for a 4-byte literal repeated without a gap) however many times a hostile file repeats the literal.
STEP = 256 << 10
LITERAL_STEP = 1 << 20  # bytes the naming layer's literal search hands to its automaton at a time


def find(data: Bytes | None, needle: bytes, start: int = 0, end: int | None = None) -> int:
    """``data.find`` for bytes / mmap (memchr speed); -1 when absent or ``data`` is None."""
    if data is None:
        return -1
    end = len(data) if end is None else min(end, len(data))
    if isinstance(data, memoryview):
        data = data.obj if isinstance(data.obj, (bytes, bytearray)) else bytes(data)
    found: int = data.find(needle, start, end)
    return found


@functools.cache
def _memmem(needle: bytes) -> ahocorasick_rs.BytesAhoCorasick:
    """A one-literal automaton: ``ahocorasick-rs`` searches a single literal with ``memchr::memmem`` (SIMD), about
    ten times the speed of ``bytes.find`` on a 4-byte literal."""
    return ahocorasick_rs.BytesAhoCorasick([needle])


def _steps(data: Bytes, start: int, end: int, overlap: int, step: int, window: int) -> Iterator[tuple[int, memoryview]]:
    """``(pos, data[pos : pos + step + overlap])`` for each ``step`` of ``data[start:end]`` (cut at ``end``; each
    piece is valid until the next one is asked for). A :class:`PagedMap` that knows its file descriptor is read with
    ``pread`` into one buffer: no page of the mapping is faulted in (a minor fault per page costs more than the
    copy); another mmap's pages are dropped behind each ``window``."""
    fd = data.fd if isinstance(data, PagedMap) else None
    if fd is not None:
        yield from _read_steps(fd, start, end, overlap, step)
        return
    with memoryview(data) as whole:
        for chunk in range(start, end, window):
            chunk_end = min(end, chunk + window)
            for pos in range(chunk, chunk_end, step):
                with whole[pos : min(end, pos + step + overlap)] as part:
                    yield pos, part
            release_pages(data, chunk, chunk_end + overlap)


def _read_steps(fd: int, start: int, end: int, overlap: int, step: int) -> Iterator[tuple[int, memoryview]]:
    buffer = bytearray(max(0, min(step + overlap, end - start)))
    with memoryview(buffer) as view:
        for pos in range(start, end, step):
            got = os.preadv(fd, [view[: min(end, pos + step + overlap) - pos]], pos)
            with view[:got] as part:  # short only when the file shrank since it was mapped
                yield pos, part


def occurrences(data: Bytes, needle: bytes, start: int = 0, end: int | None = None, *, step: int = STEP,
                window: int = WINDOW) -> Iterator[int]:
    """Every offset ``at`` in ``[start, end)`` where ``data[at:at+len(needle)] == needle`` and the occurrence ends by
    ``end`` -- the offsets ``data.find(needle, at, end)`` returns one at a time, overlapping occurrences included --
    in ascending order, in one pass: ``step`` bytes per search (each reaching ``len(needle) - 1`` bytes into the
    next, so an occurrence lies whole in the step where it starts), an mmap's pages dropped behind each
    ``window``."""
    end = len(data) if end is None else min(end, len(data))
    automaton = _memmem(needle)
    for pos, part in _steps(data, start, end, len(needle) - 1, step, window):
        for _index, at, _end in automaton.find_matches_as_indexes(part, overlapping=True):
            yield pos + at


def occurrence_table(data: Bytes, needles: Sequence[bytes], start: int = 0, end: int | None = None, *,
                     limit: int = 4096, step: int = STEP, window: int = WINDOW) -> tuple[tuple[int, ...] | None, ...]:
    """The :func:`occurrences` of each of ``needles`` in ``data[start:end]``, found together: each step is searched
    for every literal while its pages are mapped, so the region is read (and its pages faulted in) once. A literal
    with more than ``limit`` occurrences gets None: its offsets are not kept (a hostile file may repeat a magic
    millions of times), a caller searches for it again (:class:`Finder`)."""
    end = len(data) if end is None else min(end, len(data))
    automata = [_memmem(n) for n in needles]
    if end - start <= step:  # one step (most sections are small): searched at once, with no window to drop
        with memoryview(data) as whole, whole[start:max(start, end)] as part:
            hits = [automaton.find_matches_as_indexes(part, overlapping=True) for automaton in automata]
        return tuple(tuple(start + at for _i, at, _e in h) if len(h) <= limit else None for h in hits)
    found: list[list[int] | None] = [[] for _ in needles]
    for pos, part in _steps(data, start, end, max((len(n) for n in needles), default=1) - 1, step, window):
        for index, automaton in enumerate(automata):
            kept = found[index]
            if kept is None:
                continue
            # The step reaches as far as the longest literal needs: a shorter one found past the step's own bytes
            # belongs to the next step.
            kept.extend(pos + at for _i, at, _e in automaton.find_matches_as_indexes(part, overlapping=True)
                        if at < step)
            if len(kept) > limit:
                found[index] = None
    return tuple(None if kept is None else tuple(kept) for kept in found)


@functools.cache
def _any_of(needles: tuple[bytes, ...]) -> ahocorasick_rs.BytesAhoCorasick:
    return ahocorasick_rs.BytesAhoCorasick(needles)


def contains_any(data: Bytes, needles: tuple[bytes, ...], start: int = 0, end: int | None = None) -> bool:
    """Whether one of ``needles`` occurs whole in ``data[start:end]``, in one search for all of them over the whole
    region at once (meant for small regions: a mapping's pages are touched, not read in steps). Most data sections
    of a static archive's objects hold no magic: this answers for them without listing offsets."""
    end = len(data) if end is None else min(end, len(data))
    with memoryview(data) as whole, whole[start:max(start, end)] as part:
        return bool(_any_of(needles).find_matches_as_indexes(part))


class Finder:
    """``data.find(needle, pos, end)`` for a ``pos`` that only grows, over one region the caller reads whole anyway
    (a lenient magic scan, docs/binary-format.md section "1.6 Finding fatbins"): the occurrences come from one
    pass (:func:`occurrences`, or ``known``: the offsets an :func:`occurrence_table` of the same region kept), not
    from a ``find`` started again after each candidate."""

    def __init__(self, data: Bytes, needle: bytes, start: int, end: int, known: Sequence[int] | None = None) -> None:
        self._data, self._needle, self._end = data, needle, end
        self._pos = start
        self._found = iter(known) if known is not None else occurrences(data, needle, start, end)
        self._next = next(self._found, -1)

    def find(self, pos: int) -> int:
        """The first occurrence at or after ``pos``, -1 when none is left."""
        if pos < self._pos:  # not expected of a scan; answered by a plain search, still exact
            return find(self._data, self._needle, pos, self._end)
        self._pos = pos
        while 0 <= self._next < pos:
            self._next = next(self._found, -1)
        return self._next


def window(data: Bytes, offset: int, size: int) -> bytes:
    return bytes(data[offset : offset + size])


@dataclass(frozen=True)
class _Inside:
    """Literal ``other`` can start ``shift`` bytes into a match of another literal; ``verify``: it runs past that
    match's end, so the bytes after the match decide."""

    other: int
    shift: int
    verify: bool


def _overlaps(needles: tuple[bytes, ...]) -> tuple[tuple[_Inside, ...], ...]:
    """For each literal Y, every (literal X, shift k) such that an occurrence of X at ``k`` bytes into an occurrence
    of Y is consistent with Y's bytes: X lies inside Y at ``k``, or Y's tail from ``k`` is a prefix of X. Only the
    shifts where Y holds X's first byte are tried (a ``find`` each): the naming layer's 59 literals took 17 ms of
    CPU when every shift of every pair was compared, in every process that searched a file."""
    table = []
    for y in needles:
        inside = []
        for index, x in enumerate(needles):
            head = x[:1]
            shift = y.find(head, 1 if x == y else 0)
            while shift >= 0:
                if y.startswith(x[: len(y) - shift], shift):  # the first min(len(x), len(y) - shift) bytes agree
                    inside.append(_Inside(index, shift, shift + len(x) > len(y)))
                shift = y.find(head, shift + 1)
        table.append(tuple(inside))
    return tuple(table)


@dataclass(frozen=True)
class LiteralSet:
    """A fixed set of literals searched together (build once per process: the automaton is compiled here)."""

    needles: tuple[bytes, ...]
    index: dict[bytes, int] = field(init=False, repr=False, compare=False)
    automaton: ahocorasick_rs.BytesAhoCorasick = field(init=False, repr=False, compare=False)
    inside: tuple[tuple[_Inside, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        needles = tuple(dict.fromkeys(n for n in self.needles if n))
        object.__setattr__(self, "needles", needles)
        object.__setattr__(self, "index", {n: i for i, n in enumerate(needles)})
        object.__setattr__(self, "automaton", ahocorasick_rs.BytesAhoCorasick(
            needles, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest))
        object.__setattr__(self, "inside", _overlaps(needles))


def first_offsets(data: Bytes, literals: LiteralSet, step: int = LITERAL_STEP,
                  digest: Callable[[memoryview], object] | None = None, start: int = 0,
                  end: int | None = None) -> dict[bytes, int]:
    """The offset of the first occurrence of each literal of ``literals`` in ``data[start:end]`` (absent ones left
    out; an occurrence must end by ``end``), in one pass, ``step`` bytes at a time (read as :func:`_steps` reads
    them); ``digest``: also given every byte of ``data[start:end]`` once, in order (the pass then reads to the end
    even when every literal is found early).

    Why the non-overlapping matches suffice: the leftmost-longest search reports, from its position ``p``, the match
    that starts first (the longest of those starting there) and goes on from its end. Take an occurrence of X at
    ``x`` that is not reported, with no reported match covering ``x``: the search passes ``x`` only by reporting a
    match starting at or before ``x`` -- at ``x`` it would be X or a longer literal covering ``x``, before ``x`` one
    ending at or before ``x`` (then the search goes on from there). So every unreported occurrence starts inside a
    reported match, at a shift that :func:`_overlaps` lists. Each window reaches ``len(longest) - 1`` bytes into the
    next one, so every occurrence lies whole in the window where it starts."""
    size = len(data) if end is None else min(end, len(data))
    first: dict[int, int] = {}
    overlap = max((len(n) for n in literals.needles), default=1) - 1
    needles = literals.needles
    with memoryview(data) as whole:
        for pos, part in _steps(data, start, size, overlap, step, max(step, WINDOW)):
            if digest is not None:
                with part[: size - pos if size - pos < step else step] as own:  # the step's own bytes
                    digest(own)
            if len(first) == len(needles) and max(first.values()) < pos:
                if digest is not None:
                    continue  # every literal found: the digest still wants the rest
                break  # every literal found, and nothing later can come first
            matches = literals.automaton.find_matches_as_indexes(part, overlapping=False)
            for index, begin, _end in matches:
                at = pos + begin
                if first.get(index, at + 1) > at:
                    first[index] = at
                for inside in literals.inside[index]:
                    other, where = inside.other, at + inside.shift
                    if first.get(other, where + 1) <= where:
                        continue
                    needle = needles[other]
                    if inside.verify and (where + len(needle) > size
                                          or bytes(whole[where : where + len(needle)]) != needle):
                        continue
                    first[other] = where
    return {needles[i]: at for i, at in first.items()}


def first_offsets_in(data: Bytes, literals: LiteralSet, regions: Iterable[tuple[int, int]]) -> dict[bytes, int]:
    """:func:`first_offsets` over each of ``regions`` (``(start, end)``, ascending, disjoint) and nothing else: the
    first occurrence of each literal that lies whole in one of them."""
    found: dict[bytes, int] = {}
    for start, end in regions:
        if len(found) == len(literals.needles):
            break
        for needle, at in first_offsets(data, literals, start=start, end=end).items():
            found.setdefault(needle, at)
    return found


class Literals:
    """Where the literals of one :class:`LiteralSet` first occur in one file's bytes: searched together, once, the
    first time one of them is asked for (a literal outside the set is a plain :func:`find`). The set may be given as
    the function that builds it: called the first time a literal is asked for (a file no literal is asked of never
    builds it)."""

    # A file held in memory answers its first few literals with one ``bytes.find`` each: the pass for all of them
    # costs about three (the naming layer asks one or two literals of most Python sources, then stops).
    SINGLE_FINDS = 2

    def __init__(self, data: Buffer | None, literals: LiteralSet | Callable[[], LiteralSet]) -> None:
        self.data = data
        self._literals = literals
        self._first: dict[bytes, int] | None = None
        self._single: dict[bytes, int] = {}
        self._digest: str | None = None

    def digest_too(self, name: str) -> None:
        """Compute the file's ``name`` digest (``sha256``) in the same pass, should a pass over a mapped file run,
        and leave it with the mapping (:meth:`PagedMap.remember`): a file the naming layer searches whole and then
        hashes for its RECORD comparison is read once, not twice (the copy of a 100 MB library from the page
        cache costs 15 ms)."""
        self._digest = name

    @property
    def _set(self) -> LiteralSet:
        if not isinstance(self._literals, LiteralSet):
            self._literals = self._literals()
        return self._literals

    def find(self, needle: bytes) -> int:
        """The offset of the first ``needle`` in the whole file, -1 when absent (``bytes.find``)."""
        if self.data is None:
            return -1
        if needle not in self._set.index:
            return find(self.data, needle)
        if self._first is None:
            single = self._single.get(needle)
            if single is not None:
                return single
            if isinstance(self.data, bytes) and len(self._single) < self.SINGLE_FINDS:
                single = self._single[needle] = self.data.find(needle)
                return single
            self._first = self._pass(self.data)
        return self._first.get(needle, -1)

    def _pass(self, data: Buffer) -> dict[bytes, int]:
        if self._digest is None or not isinstance(data, PagedMap) or data.fd is None or data.known(self._digest):
            return first_offsets(data, self._set)
        digest = hashlib.new(self._digest)
        found = first_offsets(data, self._set, digest=digest.update)
        data.remember(self._digest, digest.hexdigest())
        return found

    def all_found(self, needles: Iterable[bytes]) -> list[tuple[bytes, int]] | None:
        """``(literal, offset)`` for each of ``needles``, or None when one of them is absent."""
        out = []
        for needle in needles:
            at = self.find(needle)
            if at < 0:
                return None
            out.append((needle, at))
        return out
