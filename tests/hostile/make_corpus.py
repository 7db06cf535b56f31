"""Build the hostile-input corpus of issue 7 into a folder: ``python tests/hostile/make_corpus.py DIR``.

Nothing here is committed as data: the files are made at test time (a few seconds, ~10 MB on disk, sparse
where the OS allows). Each category is a sub-folder of DIR so that it can be audited on its own:

  zip_bomb/            one deflated member of 1 GiB of zeros (1 MB on disk)
  nested_zip_bomb/     zips of zips of 64 MiB members: 16 x 16 x 64 MiB = 16 GiB declared
  tar_bomb/            a .tar.gz with a 1 GiB member, plus members named ../x and /etc/x
  fatbin_sizes/        fatbins whose LZ4 / zstd entries declare huge sizes (2^40, 1.9 GiB real zstd bomb, LZ4 with
                       a lying size), standalone and inside an ELF's .nv_fatbin
  fatbin_entries/      one fatbin with 100,001 entries (the entries-per-fatbin limit)
  traversal_names/     zip, tar and ar members named ../x, /etc/x, ../../../../tmp/x
  links/               symlink loops (a->b->a, self), links out of the tree (/etc/passwd, ../..), dangling
  special/             a FIFO, a character and a block device (mknod; skipped when not permitted)
  unreadable/          a file and a folder with mode 000 (unreadable only for a non-root scanner)
  many_files/          10,000 tiny files
  non_utf8/            file, folder and member names that are not UTF-8
  control_names/       names with terminal escapes, workflow commands, U+202E, Markdown and SPDX tag lines
  planted_config/      .licscan.yaml files inside the input (fail-on: never, waive everything, an alias bomb)
  truncated_elf/       a host ELF with device code cut at every 64-byte boundary
  truncated_fatbin/    a fatbin cut at every 64-byte boundary
  lying_sections/      ELFs whose section headers overlap, point past the end, declare 2^63 bytes, 2^32
                       sections, a string-table index out of range, a .nv_fatbin overlapping the header table
  nested_tar_zst/      a .tar.zst nested 8 deep around 60 MiB of incompressible bytes (~60 MB on disk)
  million_members/     a .tar.gz of 1,000,000 one-byte members (~1 GB of tar, a few MB on disk)
  deep_folders/        folders nested 1,000 deep with a file at the bottom (recursion)
  image_escape/        an extracted docker-save and an OCI layout whose manifests name layers outside the input
                       (``../../outside/x.tar``, ``/etc/hostname``), next to a folder ``outside`` it must not read
  hostile_metadata/    a wheel whose RECORD has a 200 KiB field, conda packages whose paths.json has non-string
                       ``_path`` / ``sha256`` and a non-list ``paths``, JSON nested 100,000 deep
  huge_names/          a 300 MB pax path header in a 300 KB .tar.gz, a GNU sparse member with 400,000 extension
                       blocks, 20,000 members with 4,000-character names, a 60,000-character zip member name

``build(root)`` returns {category: description}; ``EXPECT`` says which categories must make the scan
incomplete (exit 3 with a diagnostic) and which are harmless (exit 0 allowed).
"""

from __future__ import annotations

import io
import os
import stat
import struct
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fuzz import seeds as w

FIXTURES = ROOT / "tests" / "fixtures"
GiB = 1 << 30
MiB = 1 << 20

# "diag": the category must give at least one diagnostic and exit 3. "clean": harmless; exit 0 or 3 allowed, but
# every file must still be accounted for.
EXPECT = {
    "zip_bomb": "diag",
    "nested_zip_bomb": "diag",
    "tar_bomb": "diag",
    "fatbin_sizes": "diag",
    "fatbin_entries": "diag",
    "traversal_names": "clean",
    "links": "clean",
    "special": "clean",
    "unreadable": "diag",
    "many_files": "clean",
    "non_utf8": "clean",
    "control_names": "clean",
    "planted_config": "clean",
    "truncated_elf": "diag",
    "truncated_fatbin": "diag",
    "lying_sections": "diag",
    "nested_tar_zst": "clean",
    "million_members": "diag",
    "deep_folders": "clean",
    "image_escape": "diag",
    "hostile_metadata": "diag",
    "huge_names": "diag",
}


def _zeros_zip(path: Path, name: str, size: int, level: int = 9) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        with z.open(name, "w", force_zip64=True) as out:
            chunk = b"\0" * MiB
            for _ in range(size // MiB):
                out.write(chunk)


def zip_bomb(d: Path) -> str:
    _zeros_zip(d / "bomb.zip", "zeros.bin", GiB)
    return "1 GiB of zeros deflated to ~1 MB in one zip member"


def nested_zip_bomb(d: Path) -> str:
    leaf = io.BytesIO()
    with zipfile.ZipFile(leaf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("zeros.bin", "w", force_zip64=True) as out:
            for _ in range(64):
                out.write(b"\0" * MiB)
    middle = w.make_zip([(f"leaf{i:02d}.zip", leaf.getvalue()) for i in range(16)])
    top = w.make_zip([(f"middle{i:02d}.zip", middle) for i in range(16)])
    (d / "nested.zip").write_bytes(top)
    return "zip of 16 zips of 16 zips of one 64 MiB member (16 GiB)"


def tar_bomb(d: Path) -> str:
    with tarfile.open(d / "bomb.tar.gz", "w:gz", compresslevel=6) as t:
        info = tarfile.TarInfo("zeros.bin")
        info.size = GiB
        t.addfile(info, _ZeroReader(GiB))
        for name in ("../x", "/etc/x"):
            data = b"escaped\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return "tar.gz with a 1 GiB member and members named ../x and /etc/x"


class _ZeroReader(io.RawIOBase):
    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def _zstd_zero_frame(size: int) -> bytes:
    import zstandard

    cobj = zstandard.ZstdCompressor(level=3).compressobj(size=size)
    out = bytearray()
    chunk = b"\0" * (8 * MiB)
    left = size
    while left:
        n = min(left, len(chunk))
        out += cobj.compress(chunk[:n])
        left -= n
    out += cobj.flush()
    return bytes(out)


def fatbin_sizes(d: Path) -> str:
    import lz4.block

    cubin = (FIXTURES / "cuda13" / "kern_sm80.cubin").read_bytes()
    lz4_block = lz4.block.compress(cubin, store_size=False)
    zstd_bomb = _zstd_zero_frame(int(1.9 * GiB))
    zstd_ok = _zstd_zero_frame(1024)
    entries = {
        # LZ4 entry declaring 1 TiB: refused by the image limit.
        "lz4_1tib.fatbin": [w.fatbin_entry(lz4_block, flags=0x2011, compressed_size=len(lz4_block),
                                           uncompressed_size=1 << 40, minor=7)],
        # LZ4 entry declaring 1.9 GiB (under the default 2 GiB limit) for a block that decodes to 6 KB.
        "lz4_lying.fatbin": [w.fatbin_entry(lz4_block, flags=0x2011, compressed_size=len(lz4_block),
                                            uncompressed_size=int(1.9 * GiB))],
        # A real zstd bomb: 1.9 GiB of zeros, declared as such, in ~60 KB.
        "zstd_bomb.fatbin": [w.fatbin_entry(zstd_bomb, flags=0x8011, compressed_size=len(zstd_bomb),
                                            uncompressed_size=int(1.9 * GiB))],
        # zstd frame of 1 KB declared as 2^62 bytes.
        "zstd_2e62.fatbin": [w.fatbin_entry(zstd_ok, flags=0x8011, compressed_size=len(zstd_ok),
                                            uncompressed_size=1 << 62, minor=7)],
        # PTX entry, zstd, declaring 1.9 GiB.
        "zstd_ptx_bomb.fatbin": [w.fatbin_entry(zstd_bomb, kind=1, flags=0x8011, compressed_size=len(zstd_bomb),
                                                uncompressed_size=int(1.9 * GiB))],
    }
    for name, ents in entries.items():
        (d / name).write_bytes(w.make_fatbin(ents))
    # The zstd bomb and the 1 TiB LZ4 entry inside a host ELF's .nv_fatbin.
    (d / "libbomb.so").write_bytes(w.host_elf_with([w.make_fatbin(entries["zstd_bomb.fatbin"]),
                                                     w.make_fatbin(entries["lz4_1tib.fatbin"])]))
    # A zstd bomb that the note search does decode: a real ABI v8 cubin header, then 0.9 GiB of zeros (under the
    # 1 GiB "notes auto" threshold), so from_prefix reads on looking for .note.nv.tkinfo.
    header = cubin[:64]
    import zstandard

    cobj = zstandard.ZstdCompressor(level=3).compressobj(size=int(0.9 * GiB))
    frame = bytearray(cobj.compress(header))
    left = int(0.9 * GiB) - 64
    while left:
        n = min(left, 8 * MiB)
        frame += cobj.compress(bytes(n))
        left -= n
    frame += cobj.flush()
    (d / "zstd_notes_bomb.fatbin").write_bytes(w.make_fatbin([w.fatbin_entry(
        bytes(frame), flags=0x8011, compressed_size=len(frame), uncompressed_size=int(0.9 * GiB))]))
    return ("LZ4/zstd entries declaring 1 TiB, 2^62, 1.9 GiB (real zstd bombs, one behind a real cubin header); "
            "also in an ELF")


def fatbin_entries(d: Path) -> str:
    # 100,001 entries in one 6.4 MB fatbin (the entries-per-fatbin limit is 100,000).
    many = w.fatbin_entry(b"", kind=1, flags=0x11, minor=0, major=8) * 100_001
    (d / "many_entries.fatbin").write_bytes(w.make_fatbin([many]))
    return "one fatbin of 100,001 empty PTX entries (6.4 MB)"


def traversal_names(d: Path) -> str:
    members = [("../x", b"up\n"), ("/etc/x", b"abs\n"), ("../../../../tmp/x", b"far\n"), ("ok/y", b"y\n")]
    (d / "traversal.zip").write_bytes(w.make_zip(members))
    (d / "traversal.tar").write_bytes(w.make_tar(members))
    (d / "traversal.a").write_bytes(w.make_ar([("../x", b"up\n"), ("/etc/x", b"abs\n")], gnu_long=True))
    return "zip, tar and ar members named ../x, /etc/x, ../../../../tmp/x"


def links(d: Path) -> str:
    (d / "real.txt").write_bytes(b"real\n")
    os.symlink("b", d / "a")
    os.symlink("a", d / "b")
    os.symlink("self", d / "self")
    os.symlink("/etc/passwd", d / "out_abs")
    os.symlink("../../../../../etc", d / "out_rel")
    os.symlink("missing", d / "dangling")
    os.symlink(".", d / "dot_loop")
    (d / "sub").mkdir()
    os.symlink("..", d / "sub" / "parent_loop")
    return "symlink loops (a->b->a, self, ., ..), links to /etc/passwd and ../../../../../etc, a dangling link"


def special(d: Path) -> str:
    os.mkfifo(d / "fifo")
    made = ["fifo"]
    try:
        os.mknod(d / "chardev", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
        os.mknod(d / "blockdev", 0o600 | stat.S_IFBLK, os.makedev(7, 0))  # like /dev/loop0
        made += ["chardev", "blockdev"]
    except (PermissionError, OSError):
        pass
    import socket

    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(d / "socket"))
        made.append("socket")
    except OSError:
        pass
    finally:
        sock.close()
    return "special files: " + ", ".join(made)


def unreadable(d: Path) -> str:
    (d / "secret.so").write_bytes((FIXTURES / "cuda13" / "kern_sm80.cubin").read_bytes())
    os.chmod(d / "secret.so", 0)
    (d / "locked").mkdir()
    (d / "locked" / "inside.txt").write_bytes(b"x\n")
    os.chmod(d / "locked", 0)
    (d / "readable.txt").write_bytes(b"fine\n")
    return "a file and a folder with mode 000"


def many_files(d: Path) -> str:
    for i in range(100):
        sub = d / f"d{i:02d}"
        sub.mkdir()
        for j in range(100):
            (sub / f"f{j:02d}").write_bytes(b"%d\n" % j)
    return "10,000 tiny files in 100 folders"


def non_utf8(d: Path) -> str:
    base = os.fsencode(str(d))
    os.mkdir(base + b"/dir\xff\xfe")
    with open(base + b"/dir\xff\xfe/lib\xe9.so", "wb") as out:
        out.write((FIXTURES / "cuda13" / "kern_sm80.cubin").read_bytes())
    with open(base + b"/\x80\x81.txt", "wb") as out:
        out.write(b"x\n")
    # Members with non-UTF-8 names: tar (raw bytes), zip (cp437 flagless name bytes), ar.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as t:
        data = b"x\n"
        info = tarfile.TarInfo(os.fsdecode(b"m\xff\xfe.txt"))
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    (d / "names.tar").write_bytes(buf.getvalue())
    (d / "names.a").write_bytes(w.make_ar([(os.fsdecode(b"o\xff.o"), b"x\n")], gnu_long=True))
    return "file, folder and member names with bytes that are not UTF-8"


# Names that try to act on the medium they are shown in (issue 13 items 3, 4, 7): terminal escapes (screen clear,
# window title, colours), GitHub workflow commands after a line break, a right-to-left override, Markdown that
# would render a link, an image and a mention, an SPDX tag-value line.
CONTROL_NAMES = ["\x1b]0;pwned\x07\x1b[2J\x1b[31mred", "x\n::notice title=licscan::License review passed\n::stop-commands::x",
                 "evil\u202egpj", "a##[error]b", "[Approved](http:evil.example) ![x](https:evil.example) @octocat",
                 "lib\nFileComment: reviewed and approved by legal"]


def control_names(d: Path) -> str:
    library = (FIXTURES / "cuda13" / "libkern.so").read_bytes()
    for _number, name in enumerate(CONTROL_NAMES):
        (d / name).mkdir()
        (d / name / f"{name}.so").write_bytes(library)
    members = [(f"{name}/{number}.cubin", (FIXTURES / "cuda13" / "kern_sm80.cubin").read_bytes())
               for number, name in enumerate(CONTROL_NAMES)]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    (d / "names.tar").write_bytes(buf.getvalue())
    return "file, folder and member names with terminal escapes, workflow commands, U+202E, Markdown, SPDX tags"


def _alias_bomb(levels: int = 10) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\nversion: 1\n"


def planted_config(d: Path) -> str:
    """Configurations inside the input: never applied, never parsed (a scanned tree cannot configure its gate)."""
    (d / ".licscan.yaml").write_text('fail-on: never\nexclude: ["*"]\nrules: [/etc/passwd]\n'
                                     'waivers:\n  - rule: "*"\n    reason: approved\n')
    (d / "sub").mkdir()
    (d / "sub" / ".licscan.yaml").write_text(_alias_bomb())
    (d / "sub" / "rules.yaml").write_text(_alias_bomb())
    (d / "sub" / "libkern.so").write_bytes((FIXTURES / "cuda13" / "libkern.so").read_bytes())
    return "a .licscan.yaml with fail-on: never and a waiver for every rule; a YAML alias bomb as config and pack"


def _truncations(d: Path, data: bytes, stem: str) -> int:
    count = 0
    for cut in range(0, len(data), 64):
        (d / f"{stem}.{cut:06d}").write_bytes(data[:cut])
        count += 1
    return count


def truncated_elf(d: Path) -> str:
    data = (FIXTURES / "cuda13" / "kern_multi.o").read_bytes()
    n = _truncations(d, data, "kern_multi.o")
    return f"{n} prefixes of cuda13/kern_multi.o ({len(data)} bytes), cut at every 64-byte boundary"


def truncated_fatbin(d: Path) -> str:
    data = (FIXTURES / "cuda13" / "kern_multi_compressall.fatbin").read_bytes()
    n = _truncations(d, data, "kern_multi_compressall.fatbin")
    return f"{n} prefixes of cuda13/kern_multi_compressall.fatbin ({len(data)} bytes), every 64 bytes"


_SHDR = struct.Struct("<IIQQQQIIQQ")


def _patch_section(elf: bytes, index: int, **fields) -> bytes:
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    names = ("name", "type", "flags", "addr", "offset", "size", "link", "info", "align", "entsize")
    pos = shoff + index * _SHDR.size
    values = dict(zip(names, _SHDR.unpack_from(elf, pos)))
    values.update(fields)
    out = bytearray(elf)
    _SHDR.pack_into(out, pos, *(values[n] for n in names))
    return bytes(out)


def lying_sections(d: Path) -> str:
    fat = (FIXTURES / "cuda13" / "kern_multi.fatbin").read_bytes()
    good = w.host_elf_with([fat])
    # Section 3 is .nv_fatbin (0 null, 1 build-id note, 2 .rodata, 3 .nv_fatbin, 4 wrapper, 5 .shstrtab).
    shoff = struct.unpack_from("<Q", good, 0x28)[0]
    fat_off = struct.unpack_from("<Q", good, shoff + 3 * 64 + 24)[0]
    variants = {
        "past_end.so": _patch_section(good, 3, offset=len(good) + 4096),
        "huge_size.so": _patch_section(good, 3, size=1 << 63),
        "size_past_end.so": _patch_section(good, 3, size=len(good) * 4),
        "overlaps_shdrs.so": _patch_section(good, 3, offset=shoff - 16, size=len(good) - shoff + 16),
        "overlaps_rodata.so": _patch_section(good, 2, offset=fat_off, size=len(fat)),
        "twin_fatbins.so": _patch_section(good, 2, name=struct.unpack_from("<I", good, shoff + 3 * 64)[0],
                                          offset=fat_off, size=len(fat)),
        "note_huge.so": _patch_section(good, 1, size=1 << 40),
        "strtab_offset_lies.so": _patch_section(good, 5, offset=1 << 40),
        "name_out_of_range.so": _patch_section(good, 3, name=0xFFFFFFF0),
        "zero_offset_fatbin.so": _patch_section(good, 3, offset=0),
        "dynamic_lies.so": _patch_section(good, 2, type=6, size=1 << 30, entsize=16),
    }
    header = bytearray(good)
    struct.pack_into("<H", header, 0x3C, 0xFFFF)  # e_shnum 65535
    variants["shnum_65535.so"] = bytes(header)
    header = bytearray(good)
    struct.pack_into("<H", header, 0x3E, 0xFFF0)  # e_shstrndx out of range
    variants["shstrndx_out_of_range.so"] = bytes(header)
    header = bytearray(good)
    struct.pack_into("<Q", header, 0x28, 1 << 62)  # e_shoff far past the end
    variants["shoff_past_end.so"] = bytes(header)
    header = bytearray(good)
    struct.pack_into("<H", header, 0x3A, 32)  # e_shentsize lies
    variants["shentsize_32.so"] = bytes(header)
    # Extended numbering: e_shnum 0 and section 0's sh_size 2^32-1.
    header = bytearray(_patch_section(good, 0, size=0xFFFFFFFF))
    struct.pack_into("<H", header, 0x3C, 0)
    variants["extended_shnum.so"] = bytes(header)
    # A cubin whose section table lies the same ways.
    cubin = (FIXTURES / "cuda13" / "kern_sm90a.cubin").read_bytes()
    c_shoff = struct.unpack_from("<Q", cubin, 0x28)[0]
    c_shnum = struct.unpack_from("<H", cubin, 0x3C)[0]
    for i in range(1, c_shnum):
        if struct.unpack_from("<I", cubin, c_shoff + i * 64 + 4)[0] == 7:  # SHT_NOTE
            variants["cubin_note_past_end.cubin"] = _patch_section(cubin, i, offset=len(cubin) + 64)
            variants["cubin_note_huge.cubin"] = _patch_section(cubin, i, size=1 << 62)
            break
    for name, data in variants.items():
        (d / name).write_bytes(data)
    return f"{len(variants)} ELF files with overlapping or lying section headers"


def _ustar_header(name: bytes, size: int, typeflag: bytes = b"0") -> bytes:
    """A POSIX ustar header block (512 bytes): name, mode, uid, gid, size, mtime, chksum, typeflag, ..., "ustar\\000"."""
    header = bytearray(512)
    header[0 : len(name)] = name
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = b"%011o\0" % size
    header[136:148] = b"00000000000\0"
    header[148:156] = b" " * 8
    header[156:157] = typeflag
    header[257:265] = b"ustar\x0000"
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def nested_tar_zst(d: Path, size: int = 60 * MiB) -> str:
    """8 levels of .tar.zst: the outer file holds level7.tar.zst, ..., level1.tar.zst holds payload.bin, ``size``
    incompressible bytes, so every level is as big to decompress and hold (60 MiB: just under the walker's former
    64 MiB in-memory threshold, so that every level was held in memory at once)."""
    import zstandard

    current = d / "payload.bin"
    with open(current, "wb") as out:
        seed = os.urandom(MiB)
        for i in range(size // MiB):
            out.write(bytes(b ^ (i & 0xFF) for b in seed[:64]) + seed[64:])
    inner_name = "payload.bin"
    for level in range(1, 9):
        target = d / ("nested.tar.zst" if level == 8 else f"level{level}.tar.zst")
        member_size = current.stat().st_size
        with open(target, "wb") as raw, zstandard.ZstdCompressor(level=1).stream_writer(raw, closefd=False) as z:
            z.write(_ustar_header(inner_name.encode(), member_size))
            with open(current, "rb") as src:
                for chunk in iter(lambda: src.read(MiB), b""):
                    z.write(chunk)
            z.write(b"\0" * ((-member_size) % 512 + 1024))
        current.unlink()
        current, inner_name = target, target.name
    return f"a .tar.zst nested 8 deep around {size // MiB} MiB of incompressible bytes"


def million_members(d: Path) -> str:
    """1,000,000 one-byte members in one .tar.gz, written block by block (tarfile would take minutes)."""
    count = 1_000_000
    data = b"x" + bytes(511)
    with open(d / "million.tar.gz", "wb") as raw:
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        batch = []
        for i in range(count):
            batch.append(_ustar_header(b"m/%07d" % i, 1))
            batch.append(data)
            if len(batch) >= 8192:
                raw.write(compressor.compress(b"".join(batch)))
                batch = []
        batch.append(bytes(1024))
        raw.write(compressor.compress(b"".join(batch)))
        raw.write(compressor.flush())
    return f"a .tar.gz of {count:,} one-byte members"


def deep_folders(d: Path) -> str:
    depth = 1000
    path = str(d)
    for _ in range(depth):  # os.makedirs recurses once per level (RecursionError near 1,000 levels)
        path = os.path.join(path, "d")
        os.mkdir(path)
    with open(os.path.join(path, "libdeep.so"), "wb") as out:
        out.write((FIXTURES / "cuda13" / "kern_sm80.cubin").read_bytes())
    return f"folders nested {depth} deep, a cubin at the bottom"


def _pax_record(key: bytes, value: bytes) -> bytes:
    """One pax extended-header record, ``"%d %s=%s\n"`` where the decimal length counts itself (POSIX pax)."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def huge_names(d: Path) -> str:
    """Names that cost memory: a pax header of 300 MB (one path) in a 300 KB .tar.gz, 20,000 members with
    4,000-character names (80 MB of paths), a zip member name of 60,000 characters."""
    record = _pax_record(b"path", b"a" * (300 * MiB))
    with open(d / "pax-300mb.tar.gz", "wb") as raw:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        raw.write(compressor.compress(_ustar_header(b"PaxHeader/x", len(record), b"x")))
        for start in range(0, len(record), 8 * MiB):
            raw.write(compressor.compress(record[start : start + 8 * MiB]))
        raw.write(compressor.compress(bytes(-len(record) % 512) + _ustar_header(b"x", 1) + b"x" + bytes(511 + 1024)))
        raw.write(compressor.flush())
    del record
    with open(d / "zz-long-names.tar.gz", "wb") as raw:  # last: its path budget stops the archives after it
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        stem = (b"d" * 199 + b"/") * 20
        for i in range(20_000):
            pax = _pax_record(b"path", stem + b"%07d" % i)
            raw.write(compressor.compress(_ustar_header(b"PaxHeader/x", len(pax), b"x") + pax
                                          + bytes(-len(pax) % 512) + _ustar_header(b"x", 1) + b"x" + bytes(511)))
        raw.write(compressor.compress(bytes(1024)))
        raw.write(compressor.flush())
    (d / "long-name.zip").write_bytes(w.make_zip([("n" * 60_000, b"x"), ("ok.txt", b"ok\n")]))
    # An old GNU sparse member (typeflag S) whose header says "isextended" (byte 482), then 400,000 extension
    # blocks of 21 (offset, numbytes) pairs, each "isextended" (byte 504) but the last: 200 MB, 1.2 MB compressed.
    extension = bytearray(512)
    for i in range(21):
        extension[i * 24 : i * 24 + 24] = b"%011o\0%011o\0" % (i + 1, 1)
    extension[504] = 1
    head = bytearray(_ustar_header(b"sparse", 0, b"S"))
    head[257:265] = b"ustar  \0"  # GNU magic
    head[386:410] = b"%011o\0%011o\0" % (1, 1)
    head[482] = 1
    head[483:495] = b"%011o\0" % GiB
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    with open(d / "sparse-chain.tar.gz", "wb") as raw:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        raw.write(compressor.compress(bytes(head)))
        for _ in range(400):
            raw.write(compressor.compress(bytes(extension) * 1000))
        extension[504] = 0
        raw.write(compressor.compress(bytes(extension) + bytes(1024)))
        raw.write(compressor.flush())
    return ("a 300 MB pax path header, an old GNU sparse member with 400,000 extension blocks, 20,000 members with "
            "4,000-character names, a 60,000-character zip name")


OUTSIDE = "image_escape_outside"  # made next to the category folders: what image_escape must not read


def image_escape(d: Path) -> str:
    """Image manifests that name layers outside the scanned folder (item 5 of issue 13)."""
    import hashlib
    import json

    outside = d.parent / OUTSIDE
    (outside / "blobs").mkdir(parents=True, exist_ok=True)
    secret = w.make_tar([("usr/lib/libsecret.so", (FIXTURES / "cuda13" / "kern_sm80.cubin").read_bytes())])
    (outside / "layer.tar").write_bytes(secret)
    digest = hashlib.sha256(secret).hexdigest()
    (outside / "blobs" / digest).write_bytes(secret)
    own = w.make_tar([("etc/os-release", b"ID=hostile\n")])
    own_digest = hashlib.sha256(own).hexdigest()
    # An extracted docker-save whose Layers climb out of it (relative and absolute).
    docker = d / "docker"
    docker.mkdir()
    (docker / "own").mkdir()
    (docker / "own" / "layer.tar").write_bytes(own)
    (docker / "manifest.json").write_text(json.dumps([{"Config": "config.json", "RepoTags": ["x:1"], "Layers": [
        "own/layer.tar", f"../../{OUTSIDE}/layer.tar", "../../../../../../../../../../../../../../etc/hostname",
        "/etc/hostname"]}]))
    (docker / "config.json").write_text("{}")
    # An extracted docker-save whose layer folder is a link out of the input.
    linked = d / "docker_linked_layer"
    linked.mkdir()
    os.symlink(f"../../{OUTSIDE}", linked / "abc")
    (linked / "manifest.json").write_text(json.dumps([{"Config": "config.json", "Layers": ["abc/layer.tar"]}]))
    (linked / "config.json").write_text("{}")
    # An OCI layout whose layer digest sits in a blobs/<algorithm> folder that is a link out of the input.
    oci = d / "oci"
    (oci / "blobs" / "sha256").mkdir(parents=True)
    (oci / "blobs" / "sha256" / own_digest).write_bytes(own)
    os.symlink(f"../../../{OUTSIDE}/blobs", oci / "blobs" / "sha512")
    manifest = json.dumps({"schemaVersion": 2, "layers": [{"digest": "sha256:" + own_digest},
                                                          {"digest": "sha512:" + digest}]}).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    (oci / "blobs" / "sha256" / manifest_digest).write_bytes(manifest)
    (oci / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (oci / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                "manifests": [{"digest": "sha256:" + manifest_digest}]}))
    # The same docker-save manifest inside an image tarball.
    (d / "escape.tar").write_bytes(w.make_tar([
        ("own/layer.tar", own), ("config.json", b"{}"),
        ("manifest.json", json.dumps([{"Config": "config.json", "Layers": [
            "own/layer.tar", f"../../{OUTSIDE}/layer.tar", "/etc/hostname"]}]).encode())]))
    return "docker-save and OCI manifests naming layers outside the input (../, /etc/hostname, linked folders)"


def hostile_metadata(d: Path) -> str:
    """Packaging metadata that breaks naive parsers (item 9 of issue 13)."""
    import bz2
    import json

    meta = b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n"
    record = b"big/__init__.py,,\n" + b"a" * (200 * 1024) + b",sha256=x,1\nbig-1.0.dist-info/METADATA,,\n"
    (d / "big-1.0-py3-none-any.whl").write_bytes(w.make_zip([
        ("big/__init__.py", b""), ("big-1.0.dist-info/METADATA", meta), ("big-1.0.dist-info/RECORD", record)]))
    installed = d / "site-packages" / "big-1.0.dist-info"
    installed.mkdir(parents=True)
    (installed / "METADATA").write_bytes(meta)
    (installed / "RECORD").write_bytes(record)

    def conda(name: str, paths) -> None:
        index = json.dumps({"name": name, "version": "1.0", "license": "MIT"}).encode()
        text = paths if isinstance(paths, bytes) else json.dumps(paths).encode()
        (d / f"{name}-1.0-0.tar.bz2").write_bytes(bz2.compress(w.make_tar([
            ("info/index.json", index), ("info/paths.json", text), ("lib/libx.so", b"x")])))

    conda("int-path", {"paths": [{"_path": 5, "sha256": "00"}, {"_path": "lib/libx.so"}]})
    conda("list-path", {"paths": [{"_path": ["lib"], "sha256": 7}]})
    conda("dict-sha", {"paths": [{"_path": "lib/libx.so", "sha256": {"a": 1}}]})
    conda("paths-not-list", {"paths": 12})
    conda("deep-json", b"[" * 100_000 + b"]" * 100_000)
    index = json.dumps({"name": {"n": 1}, "version": ["1"], "license": 3}).encode()
    (d / "typed-index-1.0-0.tar.bz2").write_bytes(bz2.compress(w.make_tar([("info/index.json", index)])))
    return ("a wheel and an installed dist-info whose RECORD has a 200 KiB field; conda paths.json with non-string "
            "_path / sha256, a non-list paths, JSON nested 100,000 deep; an index.json with non-string fields")


BUILDERS = {
    "zip_bomb": zip_bomb,
    "nested_zip_bomb": nested_zip_bomb,
    "tar_bomb": tar_bomb,
    "fatbin_sizes": fatbin_sizes,
    "fatbin_entries": fatbin_entries,
    "traversal_names": traversal_names,
    "links": links,
    "special": special,
    "unreadable": unreadable,
    "many_files": many_files,
    "non_utf8": non_utf8,
    "control_names": control_names,
    "planted_config": planted_config,
    "truncated_elf": truncated_elf,
    "truncated_fatbin": truncated_fatbin,
    "lying_sections": lying_sections,
    "nested_tar_zst": nested_tar_zst,
    "million_members": million_members,
    "deep_folders": deep_folders,
    "image_escape": image_escape,
    "hostile_metadata": hostile_metadata,
    "huge_names": huge_names,
}


def remove_deep(root: Path) -> None:
    """Remove ``root/deep_folders`` without recursion (shutil.rmtree recurses once per level)."""
    top = os.path.join(str(root), "deep_folders")
    if not os.path.isdir(top):
        return
    folders = [top]
    while True:
        entries = [os.path.join(folders[-1], n) for n in os.listdir(folders[-1])]
        subs = [e for e in entries if os.path.isdir(e) and not os.path.islink(e)]
        for entry in entries:
            if entry not in subs:
                os.unlink(entry)
        if not subs:
            break
        folders.extend(subs[:1])
    for folder in reversed(folders):
        os.rmdir(folder)


def build(root: Path, only: list[str] | None = None) -> dict[str, str]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, builder in BUILDERS.items():
        if only and name not in only:
            continue
        folder = root / name
        folder.mkdir()
        made[name] = builder(folder)
    return made


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: make_corpus.py DIR [CATEGORY...]")
    for category, what in build(Path(sys.argv[1]), sys.argv[2:] or None).items():
        print(f"{category:18s} {what}")
