"""Packaging metadata -> :class:`Distribution` (pure functions over bytes).

- Python core metadata (``*.dist-info/METADATA``, ``PKG-INFO``): RFC 822 headers, read with ``email.parser``;
  ``License-Expression`` (metadata 2.4) wins over ``License``; ``License-File`` names files under
  ``<dist-info>/licenses/`` (2.4) or, in older wheels, in the dist-info folder itself.
- Wheel ``RECORD`` (PEP 376 / 627): CSV rows ``path,sha256=<urlsafe base64, no padding>,size``.
- Debian ``control`` (deb-control(5)): ``Field: value`` paragraphs with indented continuation lines.
- conda ``info/index.json`` (name, version, license), ``info/about.json`` (license, home, summary),
  ``info/paths.json`` (``paths[]._path`` / ``sha256``) or ``info/files`` (one path a line).

Metadata comes from the scanned input and is hostile: a value of the wrong JSON type, a RECORD field longer than
the csv module's field limit (131,072 characters), JSON nested deeper than the parser's recursion limit are each a
``malformed`` :class:`~licscan.model.Diagnostic` on the metadata file (the walker yields it), never an exception.
"""

from __future__ import annotations

import binascii
import csv
import email.parser
import email.policy
import io
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from licscan.inventory import names
from licscan.inventory.items import Distribution, Ecosystem
from licscan.model import Diagnostic, DiagnosticKind
from licscan.vpath import join

LICENSE_STEMS = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS")
_KEPT_FIELDS = ("Metadata-Version", "Summary", "Home-page", "Author", "Author-email", "Maintainer",
                "Maintainer-email", "Requires-Python", "Requires-Dist", "Project-URL")


@dataclass(frozen=True)
class Parsed:
    """A distribution, and what in its metadata files was not used (``malformed`` diagnostics on those files)."""

    distribution: Distribution | None
    problems: tuple[Diagnostic, ...] = ()


def _malformed(path: str, message: str) -> Diagnostic:
    return Diagnostic(path, DiagnosticKind.MALFORMED, message)


_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _field(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return "\n".join(line.strip() for line in text.splitlines()) or None


def python_distribution(vpath: str, scope: str, info_dir: str, metadata: bytes, record: bytes | None,
                        present: set[str], *, record_base: str) -> Parsed:
    """A wheel / installed distribution / egg. ``info_dir`` is the virtual path of the ``*.dist-info`` (or
    ``*.egg-info`` / ``EGG-INFO``) folder, ``present`` the virtual paths seen under it, ``record_base`` what RECORD
    paths are relative to (a virtual folder, or ``archive!/`` for the root of an archive)."""
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(metadata)
    name = _field(message.get("Name")) or posixpath.basename(info_dir).split("-", 1)[0]
    version = _field(message.get("Version"))
    declared = _field(message.get("License-Expression")) or _field(message.get("License"))
    if declared in ("UNKNOWN", ""):
        declared = None
    classifiers = tuple(c for c in (_field(v) for v in message.get_all("Classifier", []))
                        if c and c.startswith("License ::"))
    licenses: list[str] = []
    for entry in message.get_all("License-File", []):
        entry = _field(entry) or ""
        for candidate in (f"{info_dir}/licenses/{entry}", f"{info_dir}/{entry}"):
            if candidate in present and candidate not in licenses:
                licenses.append(candidate)
                break
    for path in sorted(present):
        rel = path[len(info_dir) + 1:]
        if (rel.startswith("licenses/") or ("/" not in rel and rel.upper().startswith(LICENSE_STEMS))) \
                and path not in licenses:
            licenses.append(path)
    files: tuple[tuple[str, str | None], ...] = ()
    problems: tuple[Diagnostic, ...] = ()
    if record:
        rows, unread = record_rows(record, record_base)
        files = tuple(rows)
        if unread:
            problems = (_malformed(f"{info_dir}/RECORD", f"RECORD rows not used: {'; '.join(unread)}"),)
    kept = tuple((key, v) for key in _KEPT_FIELDS for v in (_field(x) for x in message.get_all(key, [])) if v)
    return Parsed(Distribution(vpath, Ecosystem.PYPI, name, version, scope, declared, classifiers, tuple(licenses),
                               files, kept), problems)


def record_rows(record: bytes, base: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """``(vpath, sha256 hex or None)`` per RECORD row, and what could not be read (a row the csv module refuses,
    e.g. a field over ``csv.field_size_limit()``: the row is skipped, the reader goes on with the next line)."""
    rows: list[tuple[str, str | None]] = []
    unread: list[str] = []
    reader = csv.reader(io.StringIO(_text(record)))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if len(unread) < 10:
                unread.append(f"line {reader.line_num}: {error}")
            continue
        if not row or not row[0]:
            continue
        digest = None
        if len(row) > 1 and row[1].startswith("sha256="):
            encoded = row[1][len("sha256="):]
            try:  # base64.urlsafe_b64decode without its per-call set-up: half the time (torch has 10,000 rows)
                digest = binascii.a2b_base64(encoded.encode("ascii").translate(_URLSAFE)
                                             + b"=" * (-len(encoded) % 4)).hex()
            except ValueError:  # (UnicodeEncodeError and binascii.Error are ValueErrors)
                digest = None
        rows.append((names.join_relative(base, row[0]), digest))
    return rows, unread


_URLSAFE = bytes.maketrans(b"-_", b"+/")  # RFC 4648 section 5: the URL-safe alphabet (PEP 376 RECORD hashes)


def control_fields(data: bytes) -> dict[str, str]:
    """The first paragraph of a Debian control file."""
    fields: dict[str, str] = {}
    key = None
    for line in _text(data).splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip()
            fields[key] = value.strip()
    return fields


def debian_distribution(vpath: str, control: bytes, present: set[str]) -> Distribution | None:
    fields = control_fields(control)
    package = fields.get("Package")
    if not package:
        return None
    copyright_path = join(vpath, f"usr/share/doc/{package}/copyright")
    licenses = (copyright_path,) if copyright_path in present else ()
    kept = tuple((k, fields[k].split("\n", 1)[0] if k == "Description" else fields[k])
                 for k in ("Architecture", "Maintainer", "Source", "Section", "Homepage", "Depends", "Description")
                 if k in fields)
    return Distribution(vpath, Ecosystem.DEBIAN, package, fields.get("Version"), vpath, None, (), licenses, (), kept)


def _json(data: bytes | None, path: str, problems: list[Diagnostic]) -> Any:
    """The parsed JSON of a metadata file, or None (a problem noted) when it does not parse."""
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:  # RecursionError: arrays nested deeper than the parser allows
        reason = "nested too deep" if isinstance(error, RecursionError) else str(error)
        problems.append(_malformed(path, f"not read: not valid JSON ({reason})"))
        return None


def _scalar(value: Any) -> str | None:
    """A JSON string or number as text; None for anything else (null, bool, list, object)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def conda_distribution(vpath: str, index: bytes, about: bytes | None, paths: bytes | None, files: bytes | None,
                       present: set[str]) -> Parsed:
    root = join(vpath, "")  # the root of the package: paths.json and files list paths relative to it
    index_v, paths_v = join(vpath, "info/index.json"), join(vpath, "info/paths.json")
    problems: list[Diagnostic] = []
    info = _json(index, index_v, problems)
    extra = _json(about, join(vpath, "info/about.json"), problems)
    if not isinstance(info, dict):
        if info is not None:
            problems.append(_malformed(index_v, "not read: not a JSON object"))
        return Parsed(None, tuple(problems))
    name = _scalar(info.get("name"))
    if name is None:
        if info.get("name") is not None:
            problems.append(_malformed(index_v, f"name is not a string ({type(info['name']).__name__}): no "
                                                f"distribution"))
        return Parsed(None, tuple(problems))
    extra = extra if isinstance(extra, dict) else {}
    wrong = sorted(k for k in ("version", "build", "subdir", "license", "license_family")
                   if info.get(k) is not None and _scalar(info.get(k)) is None)
    if wrong:
        problems.append(_malformed(index_v, f"not strings, ignored: {', '.join(wrong)}"))
    rows: list[tuple[str, str | None]] = []
    listed = _json(paths, paths_v, problems)
    if isinstance(listed, dict) and isinstance(listed.get("paths"), list):
        skipped = bad_digest = 0
        total = len(listed["paths"])
        for entry in listed["paths"]:
            path = entry.get("_path") if isinstance(entry, dict) else None
            if not isinstance(path, str) or not path:
                skipped += 1
                continue
            digest = entry.get("sha256")
            if digest is not None and not (isinstance(digest, str) and _SHA256_HEX.fullmatch(digest)):
                bad_digest += 1
                digest = None
            rows.append((names.join_relative(root, path), digest.lower() if digest else None))
        if skipped:
            problems.append(_malformed(paths_v, f"_path not a string, entry ignored: {skipped} of {total} entries"))
        if bad_digest:
            problems.append(_malformed(paths_v, f"sha256 not 64 hex digits, ignored: {bad_digest} of {total} "
                                                f"entries"))
    elif listed is not None:
        problems.append(_malformed(paths_v, "not read: no paths list"))
    if not rows and files:
        rows = [(names.join_relative(root, line.strip()), None) for line in _text(files).splitlines() if line.strip()]
    licenses = tuple(sorted(p for p in present if p.startswith(join(vpath, "info/licenses/"))))
    kept = tuple((k, v) for k, v in (("build", _scalar(info.get("build"))), ("subdir", _scalar(info.get("subdir"))),
                                     ("license_family", _scalar(extra.get("license_family"))
                                      or _scalar(info.get("license_family"))),
                                     ("home", _scalar(extra.get("home"))), ("summary", _scalar(extra.get("summary"))))
                 if v)
    declared = _scalar(info.get("license")) or _scalar(extra.get("license"))
    return Parsed(Distribution(vpath, Ecosystem.CONDA, name, _scalar(info.get("version")), vpath, declared, (),
                               licenses, tuple(rows), kept), tuple(problems))
