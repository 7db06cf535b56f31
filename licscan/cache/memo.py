"""The tree memo (docs/cache.md, "The tree memo"): one entry holding the whole result of a command over a tree --
an audit (``tree`` entries, :mod:`licscan.audit`) or the scan of ``licscan sbom`` (``scan`` entries) -- keyed by
the tree's content (:mod:`licscan.cache.tree`: its shape and the content digest of every file), the inputs as given
and what else the result depends on: a copy of the tree (a fresh checkout, a restored CI cache) finds it too.

On the boot that read a tree, a ``treeid`` entry maps the tree's identity to its content key, so an unchanged tree
is not read again. A result is not stored when it was cut short (a time budget, an unreadable part) or the tree
changed while it was scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from licscan.cache.keys import boot_id
from licscan.cache.store import Cache, CacheRefused
from licscan.cache.tree import KnownDigests, Listing, content_digests, content_key, list_tree

if TYPE_CHECKING:
    from licscan.model import Diagnostic


@dataclass(frozen=True)
class TreeMemo:
    """The tree memo of one command over ``paths``: :meth:`get` the result kept for the same content, or
    :meth:`put` the one computed. ``known``: the content digests read for the key (None: the key was found by the
    tree's identity), which the scan keys its batches and archives by instead of reading the files again."""

    cache: Cache
    paths: tuple[str, ...]
    listing: Listing
    content: str
    key: str
    kind: str
    known: KnownDigests | None
    jobs: int  # threads that read the tree for its content key

    @classmethod
    def open(cls, paths: Sequence[str], directory: str, kind: str, parts: Sequence[str], *, max_bytes: int,
             jobs: int) -> TreeMemo | None:
        """The memo of entry ``kind`` for ``paths`` in the cache folder ``directory``, keyed by the tree's content,
        the inputs as given and ``parts`` (the settings and whatever else the result depends on); None when the tree
        cannot be listed or read, or the folder is refused (the scan then says why)."""
        listing = list_tree(paths)
        if listing is None:
            return None
        try:
            cache = Cache.open(directory, "tree", max_bytes=max_bytes)
        except CacheRefused:
            return None
        found = _content(cache, listing, jobs)
        if found is None:
            return None
        content, known = found
        return cls(cache, tuple(paths), listing, content, cache.key(kind, *parts, content, *paths), kind, known, jobs)

    def get(self, expect: type) -> Any | None:
        """The result kept for this tree (an ``expect`` value, checked like every entry), or None."""
        return self.cache.get(self.key, self.kind, expect)

    def put(self, value: Any, diagnostics: Sequence[Diagnostic]) -> bool:
        """Store ``value`` (True when stored) when the tree scanned is the tree read: its identity is the same after
        the scan as before it, and, when something in it had changed just before it was listed (a racy listing:
        identities could hide a rewrite), its content key too; never a result with ``diagnostics`` of a time budget
        or an unreadable part."""
        from licscan.binary import budget
        from licscan.model import DiagnosticKind

        if budget.reached(diagnostics) or any(d.kind is DiagnosticKind.UNREADABLE for d in diagnostics):
            return False
        after = list_tree(self.paths)
        if after is None or after.identity != self.listing.identity:
            return False
        if self.listing.racy and not self._unchanged(after):
            return False
        stored = self.cache.put(self.key, self.kind, value)
        if stored:
            self.cache.trim()
        return stored

    def _unchanged(self, after: Listing) -> bool:
        """Whether the files of a racy listing that changed just before it (:attr:`Listing.racy_files`) hold the
        bytes read for the key: read again (with the same identity as in the listing, which ``after`` has). Only
        those: a file whose last change is older than :data:`licscan.cache.keys.RACY_NS` cannot have been
        rewritten without a new ctime, so its unchanged identity vouches for its bytes."""
        if self.known is None:  # the key came from the tree's identity: never for a racy listing
            return False
        files = [after.files[i] for i in self.listing.racy_files]
        digests = content_digests(files, self.jobs)
        return digests is not None and all(
            self.known.get(after.reals[i], ident) == digest
            for i, ident, digest in zip(self.listing.racy_files, (f[1] for f in files), digests))


def _content(cache: Cache, listing: Listing, jobs: int) -> tuple[str, KnownDigests | None] | None:
    """The content key of the listed tree: from the ``treeid`` entry of its identity when the tree was read on this
    boot and nothing in it changed since (and not just before the listing), else by reading every file (on ``jobs``
    threads); with the digests read (the scan keys its cache entries by them: no second read)."""
    boot = boot_id()
    alias = cache.key("treeid", boot, listing.identity) if boot is not None and not listing.racy else None
    known = cache.get(alias, "treeid", str) if alias is not None else None
    if isinstance(known, str) and len(known) == 64:
        return known, None
    digests = content_digests(listing.files, jobs)
    if digests is None:
        return None
    content = content_key(listing, digests)
    if alias is not None:
        cache.put(alias, "treeid", content)
    return content, KnownDigests.of(listing, digests)
