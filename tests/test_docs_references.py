"""README.md and docs/*.md name only what exists: repository paths (``licscan/...``, ``rules/...``, ``tests/...``),
``tests/x.py::test_name`` tests, dotted ``licscan.module.name`` references and ``licscan/x.py`` ``name`` pairs.
A renamed module, function or test fails here instead of leaving the docs describing code that is gone."""

from __future__ import annotations

import ast
import glob
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

#: (doc, reference) pairs that name a file of another repository, not of this one.
EXTERNAL = {
    ("licenses.md", "docs/licensing.md"),  # spectral-compute/scale-docs, the SCALE licence's source
}

_TOP = r"(?:licscan|rules|tests|docs|benchmarks|scripts|examples|fuzz|\.ci)"
#: A repository path (placeholders `<...>` and `*` allowed), optionally followed by ::test_name; or a `::test_name`
#: that continues the last tests/ path; or a dotted licscan.module.name; or a backticked path followed by `name`.
_REF = re.compile(
    rf"(?<![\w./<-])(?P<path>{_TOP}/[\w./*<>-]*[\w*>/])(?:::(?P<test>\w+))?(?:`,? *\(?`(?P<name>\w+(?:\.\w+)?)(?:\(\))?`)?"
    r"|(?<![\w:])::(?P<more>test_\w+)"
    r"|(?<![\w./-])(?P<dotted>licscan(?:\.\w+)+)"
    r"|`(?P<rel>(?:binary|inventory|identify|scan|cache|rules|report|sbom|model|cli)/\w+\.py)`")
#: Output files named after the program, not modules (`-o licscan.sarif`).
_OUTPUT_FILE = re.compile(r"licscan\.(?:sarif|md|html|json|txt|ya?ml)$")


def _defined(source: Path) -> dict[str, ast.AST]:
    """Top-level names of a module: functions, classes, assignments, imports."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
        elif isinstance(node, (ast.If, ast.Try)):  # `if TYPE_CHECKING:` / optional imports
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    for alias in inner.names:
                        names[(alias.asname or alias.name).split(".")[0]] = inner
    return names


def _class_members(node: ast.ClassDef) -> set[str]:
    members: set[str] = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            members.add(item.name)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            members.add(item.target.id)
        elif isinstance(item, ast.Assign):
            members.update(t.id for t in item.targets if isinstance(t, ast.Name))
    return members


def _defines(source: Path, name: str) -> bool:
    """``name`` (``function``, ``Class`` or ``Class.member``) is defined at the top of ``source``."""
    first, _, member = name.partition(".")
    node = _defined(source).get(first)
    if node is None:
        return False
    return not member or not isinstance(node, ast.ClassDef) or member in _class_members(node)


_NAMED_IN = re.compile(r"((?:`[\w.]+(?:\(\))?`(?:, | and |, and ))*`[\w.]+(?:\(\))?`) in \[?`([\w/.]+\.py)`")
#: A code name, not a word of prose (`cuobjdump` in `tests/test_oracle_diff.py` names the tool).
_CODE_NAME = re.compile(r"\w*(?:_|[A-Z]|\.)\w*")


def names_in_files(name: str, text: str, root: Path = ROOT) -> list[str]:
    """"`host_of` in `fatbin.py`", "`Flag`, `compression_of` and `host_of` in [`fatbin.py`](...)": each name is
    defined in that file (a bare file name: in some licscan/ file of that name)."""
    problems = []
    for match in _NAMED_IN.finditer(text):
        file = match.group(2)
        if file.split("/")[0] in ("licscan", "tests", "benchmarks", "fuzz", "scripts"):
            candidates = [root / file]
        else:
            candidates = sorted((root / "licscan").rglob(file))
        candidates = [c for c in candidates if c.is_file()]
        for wanted in re.findall(r"`([\w.]+)(?:\(\))?`", match.group(1)):
            if _CODE_NAME.fullmatch(wanted) and not any(_defines(c, wanted) for c in candidates):
                where = f"{name}:{text.count(chr(10), 0, match.start()) + 1}"
                problems.append(f"{where}: no {file} defines {wanted!r}")
    return problems


def _module_file(root: Path, parts: list[str]) -> Path | None:
    base = root.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _check_dotted(root: Path, dotted: str) -> str | None:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        source = _module_file(root, parts[:cut])
        if source is not None:
            break
    else:
        return "no such module"
    rest = parts[cut:]
    if not rest:
        return None
    names = _defined(source)
    node = names.get(rest[0])
    if node is None:
        return f"{'.'.join(parts[:cut])} defines no {rest[0]!r}"
    if len(rest) > 1 and isinstance(node, ast.ClassDef) and rest[1] not in _class_members(node):
        return f"{rest[0]} has no member {rest[1]!r}"
    return None


def _check_path(root: Path, path: str) -> bool:
    path = path.rstrip("/")
    if "<" in path or "*" in path:
        return bool(glob.glob(str(root / re.sub(r"<[^>]*>", "*", path))))
    return (root / path).exists()


def broken_references(name: str, text: str, root: Path = ROOT) -> list[str]:
    """Every reference in one document's ``text`` that names nothing in the tree at ``root``."""
    problems: list[str] = []
    last_tests: Path | None = None
    for match in _REF.finditer(text):
        where = f"{name}:{text.count(chr(10), 0, match.start()) + 1}"
        path, test, more, dotted, rel = (match.group(g) for g in ("path", "test", "more", "dotted", "rel"))
        if path is not None:
            if (name, path) in EXTERNAL:
                continue
            if not _check_path(root, path):
                problems.append(f"{where}: {path}: no such file or folder")
                continue
            if path.startswith("tests/") and path.endswith(".py"):
                last_tests = root / path
            target = root / path
            for wanted in (test, match.group("name")):
                if wanted and target.suffix == ".py" and not _defines(target, wanted):
                    problems.append(f"{where}: {path} defines no {wanted!r}")
        elif more is not None:
            if last_tests is not None and more not in _defined(last_tests):
                problems.append(f"{where}: {last_tests.relative_to(root)} has no test {more!r}")
        elif dotted is not None:
            if _OUTPUT_FILE.fullmatch(dotted):
                continue
            problem = _check_dotted(root, dotted)
            if problem:
                problems.append(f"{where}: {dotted}: {problem}")
        elif rel is not None and not (root / "licscan" / rel).is_file():
            problems.append(f"{where}: {rel}: no such file under licscan/")
    return problems


_LINK = re.compile(r"\]\((?!https?:|#|mailto:)(?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def broken_links(doc: Path, text: str) -> list[str]:
    """Markdown links to files of the repository, relative to the document (`[fatbin.py](../licscan/binary/fatbin.py)`)."""
    return [f"{doc.name}:{text.count(chr(10), 0, m.start()) + 1}: link {m.group('target')}: no such file"
            for m in _LINK.finditer(text) if not (doc.parent / m.group("target")).exists()]


def _layout_rows(text: str) -> list[str]:
    """README's layout table: a bare `x.py` in a row about `licscan/pkg/` names a file of one of the row's packages."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        packages = re.findall(r"`(licscan/\w+)/`", line.split("|")[1]) if line.startswith("| `licscan/") else []
        for bare in re.findall(r"`(\w+\.py)`", line) if packages else ():
            if not any((ROOT / package / bare).is_file() for package in packages):
                problems.append(f"README.md:{number}: {bare} is in none of {packages}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_reference_of_the_docs_exists(doc):
    text = doc.read_text(encoding="utf-8")
    problems = broken_references(doc.name, text) + broken_links(doc, text) + names_in_files(doc.name, text)
    if doc.name == "README.md":
        problems += _layout_rows(text)
    assert not problems, "\n".join(problems)


def test_a_broken_reference_is_found():
    text = "\n".join((
        "`licscan/scan/plain.py`, `licscan/binary/nosuch.py`, `rules/packs/<pack>.yaml`, `rules/nosuch/<x>.yaml`",
        "`tests/test_docs_references.py::test_a_broken_reference_is_found`, `tests/test_cli.py::test_gone_away`",
        "`tests/test_docs_references.py`: `::test_every_reference_of_the_docs_exists`, `::test_never_was`",
        "`licscan.audit.run_audit`, `licscan.audit.run_audits`, `licscan.findings.ExitCode.CLEAN`,",
        "`licscan.audit.AuditResult.exit_code`, `licscan.audit.AuditResult.no_member`, `licscan.nosuch.module`,",
        "`licscan/sbom/spdx.py` `validate`, `licscan/sbom/spdx.py` `invalidate`, `scan/feed.py`, `scan/fed.py`,",
        "written to `licscan.sarif` and `licscan.md`",
    ))
    problems = broken_references("example.md", text)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "licscan/binary/nosuch.py: no such file or folder",
        "rules/nosuch/<x>.yaml: no such file or folder",
        "tests/test_cli.py defines no 'test_gone_away'",
        "tests/test_docs_references.py has no test 'test_never_was'",
        "licscan.audit.run_audits: licscan.audit defines no 'run_audits'",
        "licscan.audit.AuditResult.no_member: AuditResult has no member 'no_member'",
        "licscan.nosuch.module: licscan defines no 'nosuch'",
        "licscan/sbom/spdx.py defines no 'invalidate'",
        "scan/fed.py: no such file under licscan/",
    ], problems
    assert names_in_files("x.md", "`Flag`, `compression_of` and `host_of` in [`fatbin.py`](x), `_cubin_traits` in "
                                  "`images.py`, `cuobjdump` in `tests/test_oracle_diff.py`, `DocumentReader.nothing` "
                                  "in `licscan/rules/facts.py`") == [
        "x.md:1: no images.py defines '_cubin_traits'", "x.md:1: no licscan/rules/facts.py defines 'DocumentReader.nothing'"]
    assert broken_links(ROOT / "docs" / "x.md", "[a](../licscan/vpath.py), [b](../licscan/nosuch.py#L1), "
                                                 "[c](https://example.com/x.py)") == [
        "x.md:1: link ../licscan/nosuch.py: no such file"]
    assert _layout_rows("| `licscan/binary/` | `elf.py`, `nosuch.py` |") == [
        "README.md:1: nosuch.py is in none of ['licscan/binary']"]
