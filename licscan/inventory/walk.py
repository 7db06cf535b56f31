"""The walker: inputs (files, folders) -> FileBlob / SpecialFile / Distribution / Diagnostic, in a deterministic
order (docs/architecture.md "walk").

Folders are listed sorted by name and never left through a symlink: links are reported (SpecialFile SYMLINK with
their target, noted when dangling, looping or pointing out of the tree), FIFOs, sockets and devices are reported
and never opened. Regular files are opened only to read their first 512 bytes: an archive (by magic, sniff.py) is
mapped read-only and its members are walked, any other file is yielded with ``source`` set for the scan to map.
A top-level input that is itself a symlink is followed (the user named it).

Virtual paths (licscan/vpath.py): ``input!/member``, nested ``a.tar!/pkg.whl!/lib/x.so``. Containers that only package
a file tree are transparent and add no level: a compression around a tar (``x.tar.gz!/member``), the
``data.tar.*`` of a .deb (``pkg.deb!/usr/lib/x.so``; ``control.tar.*`` stays a level:
``pkg.deb!/control.tar.xz!/control``), the ``pkg-*.tar.zst`` and ``info-*.tar.zst`` of a .conda
(``pkg.conda!/lib/x.so``, ``pkg.conda!/info/index.json``, as in a v1 ``.tar.bz2``). A lone compressed file
(not a tar) is one member named from its gzip header or its name without the suffix: ``x.so.gz!/x.so``.

Images (images.py): a layer is the archive it is stored as, ``image.tar!/blobs/sha256/<hex>!/usr/lib/x.so``
(OCI), ``image.tar!/<id>/layer.tar!/usr/lib/x.so`` (docker save), ``layout/blobs/sha256/<hex>!/usr/lib/x.so``
(an OCI layout folder); FileBlob.layer is the layer digest (``sha256:<hex>``) or, for a docker-save layer path,
that path. The image's other files (index, manifests, config) are yielded first, as plain members, then the
layers of each manifest from the top layer down.

Static libraries (``ar`` archives other than .deb) are yielded as files: licscan.binary reads their members.

Where each part is: folders.py (folders and plain files; fsread.py reads the file system without following links),
archives.py (one archive's members, nesting, limits), containers.py (zip and conda, tar, compressed streams, .deb),
imagewalk.py (image layouts and layers), distributions.py (installed and archived packaging metadata).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator

from licscan.inventory import folders, names
from licscan.inventory.archives import Walker
from licscan.inventory.fsread import link_note, readlink, special_kind
from licscan.inventory.items import Item
from licscan.inventory.limits import WalkLimits
from licscan.model import Diagnostic, DiagnosticKind, SpecialFile, SpecialKind

__all__ = ["Item", "WalkLimits", "walk"]


def walk(paths: Iterable[str], limits: WalkLimits = WalkLimits(), *,
         exclude: Callable[[str], bool] | None = None,
         skip_archive: Callable[[str, str, os.stat_result], bool] | None = None,
         digests: Callable[[str], bool] | None = None,
         distributions_ahead: folders.Ahead | None = None, whole: int = 0) -> Iterator[Item]:
    """Everything in ``paths`` (files or folders, as the user passed them). ``exclude(vpath)`` True skips a file,
    folder or member (and what is inside it). A yielded FileBlob's ``data`` is valid until the walk is advanced.
    ``skip_archive(vpath, real_path, stat)`` True for an archive *file* yields :class:`ArchiveSkipped` instead of
    its contents (the content cache has them). ``digests(file_name)`` True for an archive member that is spooled:
    its ``FileBlob.sha256`` is computed while it is read (inventory/spool.py). ``distributions_ahead(distribution)``
    is told of every installed distribution (a ``*.dist-info`` / ``*.egg-info`` folder) when the folder holding it
    is opened, before the files of that folder are yielded (the distribution itself is yielded after them).
    ``whole``: a plain file of at most this many bytes is read whole where its first bytes are read (is it an
    archive?), in the same read, and yielded with them (``FileBlob.whole``): the scan need not open it again."""
    walker = Walker(limits, exclude)
    walker.skip_archive = skip_archive
    walker.ahead.digests = digests
    try:
        for path in paths:
            yield from _input(walker, path, distributions_ahead, whole)
            walker.forget()
    finally:
        walker.close()


def _input(walker: Walker, path: str, ahead: folders.Ahead | None, whole: int) -> Iterator[Item]:
    """One input as the user named it (a link is followed: the user named it)."""
    vpath = names.display(path)
    if walker.excluded(vpath):
        return
    try:
        st = os.stat(path)
    except OSError as error:
        if os.path.islink(path):
            yield SpecialFile(vpath, SpecialKind.SYMLINK, readlink(path), link_note(path, None))
        else:
            yield Diagnostic(vpath, DiagnosticKind.UNREADABLE, f"cannot read: {error.strerror or error}")
        return
    if stat.S_ISDIR(st.st_mode):
        yield from folders.folder(walker, path, vpath, os.path.realpath(path), ahead, whole)
    elif stat.S_ISREG(st.st_mode):
        yield from folders.plain_file(walker, path, vpath, whole=whole)
    else:
        yield SpecialFile(vpath, special_kind(st.st_mode), note="not a regular file: never opened")
