"""The content cache of ``licscan audit`` and ``licscan sbom`` (``--cache-dir``, ``--no-cache``); docs/cache.md.

Trust: the cache folder is an input licscan trusts only as far as it can check it.

- The folder must belong to the user running licscan and must not be writable by group or others (else the cache
  is refused with a one-line message and the scan runs without it).
- An entry is JSON of licscan's own frozen dataclasses and enums (:func:`encode`/:func:`decode`, a closed codec:
  only classes defined in ``licscan`` modules, never code), zlib-compressed, behind a header line that carries an
  HMAC-SHA256 over the entry's name, kind and payload. The HMAC key is ``LICSCAN_CACHE_SECRET`` when set, else 32
  random bytes kept in ``<cache>/v2/secret`` (mode 0600, created on first use). An entry whose HMAC does not
  verify (corrupt, truncated, forged without the key, copied under another name), that is not a regular file of
  ours, or that does not decode to the expected type, is a miss: the file is examined again. Never an error.
- Keys are content digests (BLAKE3 of the bytes, :func:`file_digest`), bound to the licscan version, the code and knowledge-table
  digests (:func:`code_digest`) and the scan settings; a same-boot memo maps a file's identity (device, inode,
  size, mtime, ctime) to its digest so an unchanged file is not hashed again on the machine that hashed it.
- Size bound: ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`); :meth:`Cache.trim` removes the least recently
  used entries (hits refresh an entry's mtime) until the folder holds at most 80 % of it.
"""

from licscan.cache.codec import CodecError, decode, dumps, encode, loads
from licscan.cache.keys import FORMAT, boot_id, code_digest, file_digest
from licscan.cache.store import DEFAULT_MAX_BYTES, Cache, CacheRefused, default_dir
from licscan.cache.tree import KnownDigests, Listing, content_digests, content_key, list_tree, tree_identity

__all__ = ["DEFAULT_MAX_BYTES", "FORMAT", "Cache", "CacheRefused", "CodecError", "KnownDigests", "Listing",
           "boot_id", "code_digest", "content_digests", "content_key", "decode", "default_dir", "dumps", "encode",
           "file_digest", "list_tree", "loads", "tree_identity"]
