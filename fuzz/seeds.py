"""Seed inputs of the fuzz targets: our fixtures (tests/fixtures/cuda13, cuda112, oldtk) and small files built from
them with the minimal writers below (a host ELF with a ``.nv_fatbin``, a PE with ``.nv_fatb``, ar archives), so
that every seed fits the target's ``MAX_LEN`` and the fuzzer spends its time on structure, not on bulk bytes.

The writers are also used by tests/hostile/make_corpus.py.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CORPORA = ("cuda13", "cuda112", "oldtk")


def fixture_files(*suffixes: str, max_size: int | None = None) -> list[Path]:
    out = []
    for corpus in CORPORA:
        for path in sorted((FIXTURES / corpus).iterdir()):
            if (path.is_file() and (not suffixes or path.name.endswith(suffixes))
                    and (max_size is None or path.stat().st_size <= max_size)):
                out.append(path)
    return out


def real_fatbins() -> list[bytes]:
    """Every fatbin of the fixtures: the standalone files, and those found in the ELF files and archives."""
    from licscan.binary import fatbin

    out: list[bytes] = []
    seen: set[bytes] = set()
    for path in fixture_files():
        data = path.read_bytes()
        for found in fatbin.scan(data, partial=True):
            if isinstance(found, fatbin.ScanError):
                continue
            blob = data[found.offset : min(found.end, len(data))]
            if blob not in seen:
                seen.add(blob)
                out.append(blob)
    return out


def small_fatbins(limit: int = 16384) -> list[bytes]:
    """Real fatbins cut down to whole entries that fit ``limit``: one fatbin per (source fatbin, entry)."""
    from licscan.binary import fatbin

    out = []
    for blob in real_fatbins():
        try:
            parsed = fatbin.parse_fatbin(blob, 0, len(blob))
        except Exception:
            continue
        for entry in parsed.entries:
            raw = blob[entry.offset : entry.payload_offset + entry.payload_size]
            if len(raw) + 16 <= limit:
                out.append(make_fatbin([raw]))
        if len(blob) <= limit:
            out.append(blob)
    return out


def make_fatbin(entries: list[bytes]) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def fatbin_entry(payload: bytes, *, kind: int = 2, arch: int = 80, flags: int = 0x11, compressed_size: int = 0,
                 uncompressed_size: int = 0, minor: int = 8, major: int = 1, header_size: int = 64,
                 payload_size: int | None = None) -> bytes:
    """One entry header (64 bytes, or ``header_size`` with a zero tail) followed by ``payload`` padded to 8."""
    padded = payload + b"\0" * (-len(payload) % 8)
    size = len(padded) if payload_size is None else payload_size
    head = struct.pack("<HHIQIIHHIIIQQQ", kind, 0x0101, header_size, size, compressed_size, 0, minor, major, arch,
                       0, 0, flags, 0, uncompressed_size)
    return head + b"\0" * (header_size - 64) + padded


def decoded_cubins(limit: int = 16384) -> list[bytes]:
    """Cubins decoded out of the fixture fatbins (LZ4 and zstd entries included)."""
    from licscan.binary import fatbin, images

    out = []
    for blob in real_fatbins():
        for found in fatbin.scan(blob, partial=True):
            if isinstance(found, fatbin.ScanError):
                continue
            for entry in found.entries:
                if entry.is_ptx or entry.uncompressed_size > limit or entry.payload_size > 4 * limit:
                    continue
                try:
                    data = images.payload(blob, entry, images.Limits(jobs=1))
                except Exception:
                    continue
                if len(data) <= limit:
                    out.append(data)
    return out


# ----------------------------------------------------------------------------------------- minimal ELF writer


def make_elf(sections: list[tuple[str, int, int, bytes]], *, e_type: int = 3, machine: int = 62,
             e_version: int = 1, e_flags: int = 0, abi: int = 0, osabi: int = 0) -> bytes:
    """A little-endian ELF64 file: header, the sections' bytes, ``.shstrtab``, then the section header table.

    ``sections`` holds (name, sh_type, sh_flags, data); SHF_ALLOC sections get an address equal to their offset.
    """
    names = b"\0"
    name_offsets = []
    for name, *_ in sections:
        name_offsets.append(len(names))
        names += name.encode() + b"\0"
    shstr_name = len(names)
    names += b".shstrtab\0"
    body = bytearray()
    placed = []
    pos = 64
    for (_name, sh_type, flags, data), name_off in zip(sections, name_offsets):
        pad = -pos % 8
        body += b"\0" * pad
        pos += pad
        placed.append((name_off, sh_type, flags, pos, len(data)))
        body += data
        pos += len(data)
    shstr_off = pos
    body += names
    pos += len(names)
    pad = -pos % 8
    body += b"\0" * pad
    pos += pad
    shoff = pos
    shdrs = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    for name_off, sh_type, flags, offset, size in placed:
        addr = offset if flags & 2 else 0
        entsize = 16 if sh_type == 6 else 0
        shdrs.append(struct.pack("<IIQQQQIIQQ", name_off, sh_type, flags, addr, offset, size, 0, 0, 8, entsize))
    shdrs.append(struct.pack("<IIQQQQIIQQ", shstr_name, 3, 0, 0, shstr_off, len(names), 0, 0, 1, 0))
    ident = b"\x7fELF" + bytes([2, 1, 1, osabi, abi]) + b"\0" * 7
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, e_type, machine, e_version, 0, 0, shoff, e_flags, 64, 0, 0,
                         64, len(shdrs), len(shdrs) - 1)
    return header + bytes(body) + b"".join(shdrs)


def note(owner: bytes, n_type: int, desc: bytes) -> bytes:
    owner0 = owner + b"\0"
    return (struct.pack("<III", len(owner0), len(desc), n_type) + owner0 + b"\0" * (-len(owner0) % 4) + desc
            + b"\0" * (-len(desc) % 4))


def host_elf_with(fatbins: list[bytes], *, rodata: bytes = b"", wrapper: bool = True) -> bytes:
    """A host shared object with a ``.nv_fatbin``, a ``.nvFatBinSegment`` wrapper, ``.rodata``, ``.dynamic``
    (empty), a GNU build-id note."""
    blob = b"".join(f + b"\0" * (-len(f) % 8) for f in fatbins)
    sections = [
        (".note.gnu.build-id", 7, 2, note(b"GNU", 3, bytes(range(20)))),
        (".rodata", 1, 2, rodata or b"hello\0" * 8),
        (".nv_fatbin", 1, 2, blob),
    ]
    if wrapper:
        sections.append((".nvFatBinSegment", 1, 2, struct.pack("<IIQQ", 0x466243B1, 1, 0, 0)))
    return make_elf(sections)


# ------------------------------------------------------------------------------------------ minimal PE writer


def make_pe(sections: list[tuple[str, bytes, int]]) -> bytes:
    """A PE32+ image: DOS header, "PE\\0\\0", COFF header, optional header (16 data directories, all empty), the
    section table, then each section's raw data (file alignment 0x200). ``sections``: (name, data,
    characteristics)."""
    file_align, sect_align = 0x200, 0x1000
    n = len(sections)
    headers_size = 0x80 + 4 + 20 + 240 + 40 * n
    raw_pos = (headers_size + file_align - 1) // file_align * file_align
    table = b""
    bodies = b""
    va = sect_align
    for name, data, chars in sections:
        raw_size = (len(data) + file_align - 1) // file_align * file_align
        table += struct.pack("<8sIIIIIIHHI", name.encode()[:8], len(data), va, raw_size, raw_pos + len(bodies), 0,
                             0, 0, 0, chars)
        bodies += data + b"\0" * (raw_size - len(data))
        va += (max(len(data), 1) + sect_align - 1) // sect_align * sect_align
    dos = b"MZ" + b"\0" * 0x3A + struct.pack("<I", 0x80) + b"\0" * (0x80 - 0x40)
    coff = struct.pack("<HHIIIHH", 0x8664, n, 0, 0, 0, 240, 0x22)
    opt = struct.pack("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", 0x20B, 14, 0, 0, 0, 0, sect_align, sect_align, 0x140000000,
                      sect_align, file_align, 6, 0, 0, 0, 6, 0, 0, va, raw_pos, 0, 3, 0x8160, 0x100000, 0x1000,
                      0x100000, 0x1000, 0, 16)
    opt += b"\0" * (16 * 8)
    head = dos + b"PE\0\0" + coff + opt + table
    head += b"\0" * (raw_pos - len(head))
    return head + bodies


def pe_with(fatbins: list[bytes]) -> bytes:
    blob = b"".join(f + b"\0" * (-len(f) % 8) for f in fatbins)
    return make_pe([(".text", b"\xc3" * 16, 0x60000020), (".rdata", b"const\0" * 8, 0x40000040),
                    (".nv_fatb", blob, 0x40000040),
                    (".nvFatBi", struct.pack("<IIQQ", 0x466243B1, 1, 0x140000000 + 0x3000, 0), 0x40000040)])


# ----------------------------------------------------------------------------------------- ar / zip / tar


def make_ar(members: list[tuple[str, bytes]], *, gnu_long: bool = True) -> bytes:
    out = bytearray(b"!<arch>\n")
    table = b""
    headers = []
    for name, data in members:
        if len(name) >= 16 and gnu_long:
            field = f"/{len(table)}".encode()
            table += name.encode("utf-8", "surrogateescape") + b"/\n"
        elif len(name) >= 16:
            field = f"#1/{len(name)}".encode()
            data = name.encode() + data
        else:
            field = name.encode("utf-8", "surrogateescape") + b"/"
        headers.append((field, data))

    def member(field: bytes, data: bytes) -> bytes:
        head = field.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"644".ljust(8)
        head += str(len(data)).encode().ljust(10) + b"`\n"
        return head + data + (b"\n" if len(data) % 2 else b"")

    if table:
        out += member(b"//", table)
    for field, data in headers:
        out += member(field, data)
    return bytes(out)


def make_zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def make_tar(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ per target


def _cubins() -> list[bytes]:
    files = [p.read_bytes() for p in fixture_files(".cubin", max_size=16384)]
    return files + decoded_cubins()[:24]


def _ptx() -> list[bytes]:
    texts = [p.read_bytes() for p in fixture_files(".ptx")]
    texts.append(b"//\n// Generated by NVIDIA NVVM Compiler\n//\n// Compiler Build ID: CL-36424714\n"
                 b"// Cuda compilation tools, release 13.0, V13.0.88\n// Based on NVVM 7.0.1\n//\n\n"
                 b".version 9.0\n.target sm_90a, debug\n.address_size 64\n")
    return texts


def _elf() -> list[bytes]:
    fats = small_fatbins(6000)[:6]
    out = [host_elf_with([f]) for f in fats]
    out.append(host_elf_with(fats[:2], rodata=fats[-1]))
    out += [p.read_bytes() for p in fixture_files(max_size=16384) if p.read_bytes()[:4] == b"\x7fELF"][:6]
    return out


def _ar() -> list[bytes]:
    fats = small_fatbins(4000)[:3]
    cubins = [p.read_bytes() for p in fixture_files(".cubin", max_size=6000)][:2]
    ptxs = [p.read_bytes() for p in fixture_files(".ptx", max_size=3000)][:1]
    members = [("a.o", host_elf_with(fats[:1]))] + [(f"k{i}.cubin", c) for i, c in enumerate(cubins)]
    members += [("a_very_long_member_name_for_gnu.ptx", p) for p in ptxs]
    out = [make_ar(members), make_ar(members, gnu_long=False), make_ar([("nested.a", make_ar(members[:1]))])]
    out += [p.read_bytes() for p in fixture_files(".a", max_size=16384)]
    return out


def _pe() -> list[bytes]:
    fats = small_fatbins(6000)[:4]
    return [pe_with([f]) for f in fats] + [pe_with(fats[:2])]


def _lz4() -> list[bytes]:
    import lz4.block

    out = []
    for data in decoded_cubins()[:6] + [p.read_bytes() for p in fixture_files(".ptx")][:3]:
        block = lz4.block.compress(data[:4000], store_size=False)
        out.append(struct.pack("<H", 64) + block)
        out.append(struct.pack("<H", 4095) + block)
    return out


def _walk() -> list[bytes]:
    fats = small_fatbins(4000)[:2]
    cub = [p.read_bytes() for p in fixture_files(".cubin", max_size=6000)][:1]
    members = [("lib/libk.so", host_elf_with(fats[:1])), ("k.cubin", cub[0]), ("k.fatbin", fats[-1])]
    return [make_zip(members), make_zip(members, zipfile.ZIP_STORED), make_tar(members), make_tar(members, "w:gz"),
            make_zip([("pkg.whl", make_zip(members))]), make_ar(members), *_packages(members),
            *hostile_walk_seeds().values()]


def hostile_walk_seeds() -> dict[str, bytes]:
    """The hostile shapes of issue 13 for the walker, by name (also tests/fuzz_corpus/walk/, and the regression
    tests): image manifests pointing outside the image, a RECORD field over the csv module's 131,072-character
    limit, conda metadata of the wrong JSON types or nested beyond the parser's recursion limit, names that cost
    memory (a 2 MiB pax path header, a 5,000-character zip name), and -- the one-file form of a deep folder tree --
    a member path 1,000 folders deep and zips nested past the depth limit."""
    import bz2
    import hashlib
    import json

    layer = make_tar([("etc/os-release", b"ID=x\n")])
    out = {
        "docker-layers-outside.tar": make_tar([
            ("own/layer.tar", layer), ("c.json", b"{}"),
            ("manifest.json", json.dumps([{"Config": "c.json", "Layers": [
                "own/layer.tar", "../../outside/x.tar", "../../../../etc/hostname", "/etc/hostname"]}]).encode())]),
        "docker-layers-wrong-types.tar": make_tar([
            ("own/layer.tar", layer),
            ("manifest.json", json.dumps([{"Layers": [5, None, {"a": 1}, ["own/layer.tar"]]}]).encode())]),
    }
    manifest = json.dumps({"schemaVersion": 2, "layers": [{"digest": "sha256:../../../etc/hostname"},
                                                          {"digest": {"sha256": 1}}, "x"]}).encode()
    digest = hashlib.sha256(manifest).hexdigest()
    out["oci-digest-traversal.tar"] = make_tar([
        ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), (f"blobs/sha256/{digest}", manifest),
        ("index.json", json.dumps({"manifests": [{"digest": "sha256:" + digest}, {"digest": "../x"}, 7]}).encode())])
    meta = b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n"
    out["wheel-record-field-over-csv-limit.whl"] = make_zip([
        ("big/__init__.py", b""), ("big-1.0.dist-info/METADATA", meta),
        ("big-1.0.dist-info/RECORD", b"big/__init__.py,,\n" + b"a" * (200 * 1024) + b",,\nx,sha256=,1\n")])

    def conda(paths: bytes, index: bytes | None = None) -> bytes:
        index = index or json.dumps({"name": "c", "version": "1.0", "license": "MIT"}).encode()
        return bz2.compress(make_tar([("info/index.json", index), ("info/paths.json", paths),
                                      ("lib/libx.so", b"x")]))

    out["conda-paths-wrong-types.tar.bz2"] = conda(json.dumps({"paths": [
        {"_path": 5, "sha256": "00"}, {"_path": ["lib"], "sha256": 7}, {"_path": "lib/libx.so", "sha256": {"a": 1}},
        "x", None]}).encode())
    out["conda-paths-not-a-list.tar.bz2"] = conda(b'{"paths": 12}')
    out["conda-paths-deep-json.tar.bz2"] = conda(b"[" * 100_000 + b"]" * 100_000)
    out["conda-index-wrong-types.tar.bz2"] = conda(b'{"paths": []}', json.dumps(
        {"name": {"n": 1}, "version": ["1"], "license": 3, "build": None}).encode())
    out["member-path-1000-deep.tar"] = make_tar([("d/" * 1000 + "libk.so", b"\x7fELF")])
    out["tar-pax-path-2mib.tar.gz"] = make_tar([("a" * (2 << 20), b"x"), ("ok", b"x")], "w:gz")
    out["zip-name-5000.zip"] = make_zip([("n" * 5000, b"x"), ("ok", b"x")])
    nested = make_zip([("k.so", b"\x7fELF")])
    for level in range(10):
        nested = make_zip([(f"l{level}.zip", nested)])
    out["zip-nested-10-deep.zip"] = nested
    return out


def _packages(members: list[tuple[str, bytes]]) -> list[bytes]:
    """Every other archive reader of the walker, small: tar.bz2 / .xz / .zst, a wheel with its dist-info, a .deb,
    conda v1 and v2 packages, an OCI image layout and a docker-save tarball (two layers, one whiteout)."""
    import bz2
    import hashlib
    import json
    import lzma

    import zstandard

    tar = make_tar(members)
    meta = "Metadata-Version: 2.1\nName: kern\nVersion: 1.0\nLicense: LicenseRef-NVIDIA-Proprietary\n"
    wheel = make_zip(members + [("kern-1.0.dist-info/METADATA", meta.encode()),
                                ("kern-1.0.dist-info/RECORD", b"lib/libk.so,,\n")])
    deb = make_ar([("debian-binary", b"2.0\n"),
                   ("control.tar.gz", make_tar([("./control", b"Package: kern\nVersion: 1.0-1\n")], "w:gz")),
                   ("data.tar.xz", lzma.compress(make_tar([("./usr/lib/" + n, d) for n, d in members])))],
                  gnu_long=False)
    info = [("info/index.json", json.dumps({"name": "kern", "version": "1.0", "license": "NVIDIA"}).encode())]
    zstd = zstandard.ZstdCompressor().compress
    conda_v2 = make_zip([("metadata.json", b'{"conda_pkg_format_version": 2}'),
                         ("info-kern-1.0-0.tar.zst", zstd(make_tar(info))),
                         ("pkg-kern-1.0-0.tar.zst", zstd(tar))], zipfile.ZIP_STORED)
    conda_v1 = bz2.compress(make_tar(info + members))

    def blob(data: bytes) -> tuple[str, bytes]:
        return hashlib.sha256(data).hexdigest(), data

    lower = blob(make_tar(members, "w:gz"))
    upper = blob(make_tar([("lib/.wh.libk.so", b"")]))
    config = blob(b'{"architecture": "amd64", "os": "linux"}')
    manifest = blob(json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + config[0]},
                                "layers": [{"digest": "sha256:" + d} for d, _ in (lower, upper)]}).encode())
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": "sha256:" + manifest[0]}]}).encode()
    oci = make_tar([("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index)]
                   + [(f"blobs/sha256/{d}", b) for d, b in (config, manifest, lower, upper)])
    docker = make_tar([("a/layer.tar", make_tar(members)), ("b/layer.tar", upper[1]), ("config.json", b"{}"),
                       ("manifest.json", json.dumps([{"Config": "config.json",
                                                      "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode())])
    return [bz2.compress(tar), lzma.compress(tar), zstd(tar), wheel, deb, conda_v2, conda_v1, oci, docker]


def _rules() -> list[bytes]:
    """Small rule packs: the invalid-pack corpus of the tests, and every built-in rule as a one-rule pack (the
    loader parses with ruamel's pure-Python round-trip parser, so small inputs are what keep the rate up)."""
    seeds = [p.read_bytes() for p in sorted((ROOT / "tests" / "rules" / "invalid").glob("*.yaml"))]
    for pack in sorted((ROOT / "rules" / "packs").glob("*.yaml")):
        text = pack.read_text(encoding="utf-8")
        head, _, body = text.partition("\nrules:\n")
        for rule in body.split("\n  - id: ")[1:]:
            seeds.append(f"{head}\nrules:\n  - id: {rule.rstrip()}\n".encode())
    # YAML aliases (issue 13 item 6): a "billion laughs" of ten levels, an alias inside its own anchor, a small use.
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    seeds += ["\n".join(bomb).encode() + b"\nversion: 1\n", b"a: &a [1, *a]\nversion: 1\n",
              b"version: 1\npack: p\nrules: &r []\ndescription: *r\n"]
    return seeds


SEEDS = {
    "fatbin": lambda: small_fatbins(),
    "cubin": _cubins,
    "ptx": _ptx,
    "elf": _elf,
    "ar": _ar,
    "pe": _pe,
    "lz4": _lz4,
    "walk": _walk,
    "rules": _rules,
}
