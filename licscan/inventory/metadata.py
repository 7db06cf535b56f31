"""Packaging metadata -> :class:`Distribution` (pure functions over bytes).

- Python core metadata (``*.dist-info/METADATA``, ``PKG-INFO``): RFC 822 headers, read with ``email.parser``;
  ``License-Expression`` (metadata 2.4) wins over ``License``; ``License-File`` names files under
  ``<dist-info>/licenses/`` (2.4) or, in older wheels, in the dist-info folder itself.
- Wheel ``RECORD`` (PEP 376 / 627): CSV rows ``path,sha256=<urlsafe base64, no padding>,size``.
- Debian ``control`` (deb-control(5)): ``Field: value`` paragraphs with indented continuation lines.
- conda ``info/index.json`` (name, version, license), ``info/about.json`` (license, home, summary),
  ``info/paths.json`` (``paths[]._path`` / ``sha256``) or ``info/files`` (one path a line).
"""

from __future__ import annotations

import base64
import csv
import email.parser
import email.policy
import io
import json
import posixpath

from licscan.inventory import names
from licscan.inventory.items import Distribution, Ecosystem

LICENSE_STEMS = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS")
_KEPT_FIELDS = ("Metadata-Version", "Summary", "Home-page", "Author", "Author-email", "Maintainer",
                "Maintainer-email", "Requires-Python", "Requires-Dist", "Project-URL")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _field(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return "\n".join(line.strip() for line in text.splitlines()) or None


def python_distribution(vpath: str, scope: str, info_dir: str, metadata: bytes, record: bytes | None,
                        present: set[str], *, record_base: str) -> Distribution:
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
    files = tuple(record_rows(record, record_base)) if record else ()
    kept = tuple((key, v) for key in _KEPT_FIELDS for v in (_field(x) for x in message.get_all(key, [])) if v)
    return Distribution(vpath, Ecosystem.PYPI, name, version, scope, declared, classifiers, tuple(licenses), files,
                        kept)


def record_rows(record: bytes, base: str):
    """``(vpath, sha256 hex or None)`` per RECORD row."""
    for row in csv.reader(io.StringIO(_text(record))):
        if not row or not row[0]:
            continue
        digest = None
        if len(row) > 1 and row[1].startswith("sha256="):
            encoded = row[1][len("sha256="):]
            try:
                digest = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).hex()
            except ValueError:
                digest = None
        yield names.join_relative(base, row[0]), digest


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
    copyright_path = names.member(vpath, f"usr/share/doc/{package}/copyright")
    licenses = (copyright_path,) if copyright_path in present else ()
    kept = tuple((k, fields[k].split("\n", 1)[0] if k == "Description" else fields[k])
                 for k in ("Architecture", "Maintainer", "Source", "Section", "Homepage", "Depends", "Description")
                 if k in fields)
    return Distribution(vpath, Ecosystem.DEBIAN, package, fields.get("Version"), vpath, None, (), licenses, (), kept)


def conda_distribution(vpath: str, index: bytes, about: bytes | None, paths: bytes | None, files: bytes | None,
                       present: set[str]) -> Distribution | None:
    try:
        info = json.loads(index)
        extra = json.loads(about) if about else {}
    except ValueError:
        return None
    if not isinstance(info, dict) or not info.get("name"):
        return None
    extra = extra if isinstance(extra, dict) else {}
    root = vpath + names.SEP
    rows: list[tuple[str, str | None]] = []
    try:
        listed = json.loads(paths).get("paths", []) if paths else None
    except (ValueError, AttributeError):
        listed = None
    if listed:
        rows = [(names.join_relative(root, p["_path"]), p.get("sha256")) for p in listed
                if isinstance(p, dict) and p.get("_path")]
    elif files:
        rows = [(names.join_relative(root, line.strip()), None) for line in _text(files).splitlines() if line.strip()]
    licenses = tuple(sorted(p for p in present if p.startswith(root + "info/licenses/")))
    kept = tuple((k, str(v)) for k, v in (("build", info.get("build")), ("subdir", info.get("subdir")),
                                          ("license_family", extra.get("license_family") or info.get("license_family")),
                                          ("home", extra.get("home")), ("summary", extra.get("summary")))
                 if v)
    declared = info.get("license") or extra.get("license")
    return Distribution(vpath, Ecosystem.CONDA, str(info["name"]), str(info["version"]) if info.get("version") else
                        None, vpath, str(declared) if declared else None, (), licenses, tuple(rows), kept)
