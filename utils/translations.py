"""Keep the Spanish editions in step with the English ones: same code, prose translated from the current text.

A Spanish notebook `X.es.ipynb` has the cells of `X.ipynb`, same ids, same order, same types, and code
cells that run the same program: they may differ only in comments and in the words of free text, the
strings a person reads (see `program`), so the Spanish edition comments, prints and labels its plots in
Spanish while every name, number, call and key stays the English one's. Markdown is translated. Its
notebook metadata records which English text each markdown cell translates:

    "translation": {"source": "X.ipynb", "language": "es",
                    "prose": {"c00": "<first 16 hex of sha256 of the English cell>", ...}}

A Spanish README (`README.es.md`) says the same on its first line:

    <!-- translation of README.md sha256:<first 16 hex of sha256 of the English file> -->

Hashes are taken after the course's repository and ref in links are reduced to placeholders, so that
`python -m utils links --repo ...` (which rewrites both editions) does not make translations stale.
After translating, `python -m utils translations refresh X.es.ipynb` rewrites the record.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import re
import subprocess
from pathlib import Path

import nbformat

from utils import course
from utils.errors import CourseError

# Sequences that UTF-8 text shows after being decoded as Latin-1, cp1252 or Mac Roman, e.g. "Segmentaci\u221a\u2265n".
MOJIBAKE = ("\u221a", "\u00c3\u00a9", "\u00c3\u00b1", "\u00c3\u00b3", "\u00e2\u20ac", "\u201a\u00c4\u00f4",
            "\u00d4\u220f", "\u00c3\u00a1")
LANGUAGE = "es"
_FOLDERS = ("notebooks", "lab")
_SKIP = {".ipynb_checkpoints", "data", "runs"}
_README_FOLDERS = (".", "lab")
_README_MARK = re.compile(r"^<!-- translation of (?P<source>\S+) sha256:(?P<hash>[0-9a-f]{16}) -->[ \t]*$")


def cell_hash(text: str) -> str:
    """Return the first 16 hex digits of the sha256 of `text` with the course's repository links normalised."""
    for old, new in (
        (f"/blob/{course.REF}/", "/blob/{REF}/"),
        (f"/tree/{course.REF}/", "/tree/{REF}/"),
        (f"--branch {course.REF} ", "--branch {REF} "),
        (course.REPO, "{REPO}"),
    ):
        text = text.replace(old, new)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def is_spanish(path: Path) -> bool:
    """Return True for a Spanish edition (`.es.ipynb` or `.es.md`)."""
    return path.name.endswith((".es.ipynb", ".es.md"))


def spanish_path(english: Path) -> Path:
    """Return the Spanish twin's path of an English notebook or Markdown file."""
    english = Path(english)
    return english.with_name(f"{english.stem}.{LANGUAGE}{english.suffix}")


def english_path(spanish: Path) -> Path:
    """Return the English source's path of a Spanish notebook or Markdown file."""
    spanish = Path(spanish)
    if not is_spanish(spanish):
        raise CourseError(f"{spanish} is not a Spanish edition: its name should end in .es.ipynb or .es.md")
    return spanish.with_name(spanish.name.replace(f".{LANGUAGE}.", ".", 1))


def twins(root: Path = course.ROOT) -> list[tuple[Path, Path]]:
    """Return (English notebook, Spanish twin path) for every lesson and lab notebook, sorted."""
    root = Path(root)
    pairs = []
    for folder in _FOLDERS:
        for path in (root / folder).rglob("*.ipynb"):
            if path.name.endswith(f".{LANGUAGE}.ipynb") or _SKIP.intersection(path.relative_to(root).parts):
                continue
            pairs.append((path, spanish_path(path)))
    return sorted(pairs)


def readme_twins(root: Path = course.ROOT) -> list[tuple[Path, Path]]:
    """Return (English README, Spanish twin path) for the READMEs of the repository root and lab/."""
    root = Path(root)
    return [(p, spanish_path(p)) for folder in _README_FOLDERS if (p := root / folder / "README.md").is_file()]


def _read(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(str(path), as_version=4)
    except (OSError, ValueError, nbformat.ValidationError) as exc:
        raise CourseError(f"{path} is not a readable notebook ({exc}); restore it from git") from exc


def _first_line(text: str, width: int = 60) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def _label(cell: nbformat.NotebookNode) -> str:
    return f'{cell.get("id")} ("{_first_line(cell.source)}")'


# Free text: what a person reads and a translator may put into Spanish. A string literal is free text
# only where it stands directly as an argument of one of these calls (or of an exception), or as the
# value of one of these keywords, or as a docstring or an assertion's message; an f-string there keeps its {expressions} as code.
# Every other string (a key, a file name, a column, an option, a format spec) is code and must stay
# the same, so a translator cannot change what the program compares or reads.
FREE_TEXT_CALLS = frozenset({
    "print", "display", "Markdown", "HTML", "warn", "title", "suptitle", "xlabel", "ylabel", "set_title",
    "set_xlabel", "set_ylabel", "set_suptitle", "text", "annotate", "legend", "set_description", "todo_open",
})
FREE_TEXT_KEYWORDS = frozenset({
    "label", "labels", "title", "titles", "xlabel", "ylabel", "suptitle", "desc", "description", "help",
    "caption", "message", "lang",
})
_FREE = "<free text>"


def _is_free_call(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in FREE_TEXT_CALLS or name.endswith(("Error", "Exception", "Warning"))


class _Program(ast.NodeTransformer):
    """Replace free-text strings by a placeholder; leave every other node as it is."""

    def _free(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return ast.Constant(_FREE)
        if isinstance(node, ast.JoinedStr):  # {expressions} stay code, but a choice of words in one is free
            return ast.JoinedStr([
                ast.FormattedValue(self._free(v.value) if isinstance(v.value, ast.IfExp) else self.visit(v.value),
                                   v.conversion, v.format_spec and self.visit(v.format_spec))
                if isinstance(v, ast.FormattedValue) else ast.Constant(_FREE)
                for v in node.values
            ])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            return ast.BinOp(self._free(node.left), node.op, self._free(node.right))
        if isinstance(node, ast.List | ast.Tuple):
            return type(node)([self._free(e) for e in node.elts], node.ctx)
        if isinstance(node, ast.IfExp):
            return ast.IfExp(self.visit(node.test), self._free(node.body), self._free(node.orelse))
        if isinstance(node, ast.ListComp | ast.GeneratorExp):  # one label per item: the item is free text
            return type(node)(self._free(node.elt), [self.visit(g) for g in node.generators])
        return self.visit(node)

    def visit_Call(self, node: ast.Call) -> ast.Call:
        free = _is_free_call(node.func)
        func = self.visit(node.func)
        args = [self._free(a) if free else self.visit(a) for a in node.args]
        keywords = [ast.keyword(k.arg, self._free(k.value) if k.arg in FREE_TEXT_KEYWORDS else self.visit(k.value))
                    for k in node.keywords]
        return ast.Call(func, args, keywords)

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        """An assertion's message is read by a person: free text; its test is code."""
        return ast.copy_location(ast.Assert(self.visit(node.test), node.msg and self._free(node.msg)), node)

    def _docstring(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body[0] = ast.Expr(ast.Constant(_FREE))
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Module = _docstring


def _parse(code: str) -> tuple[str, list[ast.stmt]]:
    """A cell as Python text (magics and shell lines as IPython runs them) and its normalised statements."""
    from IPython.core.inputtransformer2 import TransformerManager

    text = TransformerManager().transform_cell(code)
    return text, _Program().visit(ast.parse(text)).body


def program(code: str) -> list[str]:
    """Return a cell's program, one entry per top-level statement, without comments or free text.

    IPython magics and shell lines (`%pip`, `!ls`) are turned into the calls IPython makes of them, so
    their text is compared as code. Raises SyntaxError when the cell is not Python.
    """
    return [ast.dump(statement, annotate_fields=False) for statement in _parse(code)[1]]


def _dump(node: ast.AST) -> str:
    return ast.dump(node, annotate_fields=False)


def _innermost(a: ast.stmt, b: ast.stmt) -> tuple[ast.stmt, ast.stmt]:
    """The smallest pair of nested statements where two differing statements part ways."""
    if type(a) is type(b):
        for field in ("body", "orelse", "finalbody", "handlers"):
            xs, ys = getattr(a, field, None), getattr(b, field, None)
            if isinstance(xs, list) and isinstance(ys, list):
                for x, y in zip(xs, ys):
                    if _dump(x) != _dump(y):
                        return _innermost(x, y) if isinstance(x, ast.stmt) and isinstance(y, ast.stmt) else (a, b)
    return a, b


def program_difference(english: str, spanish: str) -> str | None:
    """Return where two code cells stop running the same program (None when they do)."""
    try:
        en_text, a = _parse(english)
    except SyntaxError as exc:
        return f"the English cell is not Python ({exc.msg}, line {exc.lineno})"
    try:
        es_text, b = _parse(spanish)
    except SyntaxError as exc:
        return f"the Spanish cell is not Python ({exc.msg}, line {exc.lineno})"
    if [_dump(x) for x in a] == [_dump(y) for y in b]:
        return None
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if _dump(x) != _dump(y)), min(len(a), len(b)))
    if n >= len(a) or n >= len(b):
        return f"the English cell has {len(a)} statements, the Spanish one {len(b)}"
    x, y = _innermost(a[n], b[n])
    en_line, es_line = en_text.splitlines()[x.lineno - 1].strip(), es_text.splitlines()[y.lineno - 1].strip()
    return (f"statement {n + 1} differs beyond comments and free text: English line {x.lineno} {en_line!r}, "
            f"Spanish line {y.lineno} {es_line!r}")


def code_differences(en: Path, es: Path) -> list[str]:
    """Return what keeps the two notebooks from being twins: missing file, cell layout, differing code."""
    en, es = Path(en), Path(es)
    for path in (en, es):
        if not path.is_file():
            other = es if path == en else en
            return [f"{path.name} is missing (twin of {other.name}): copy {other.name}, then translate its markdown"]
    a, b = _read(en).cells, _read(es).cells
    found = []
    if len(a) != len(b):
        found.append(f"{en.name} has {len(a)} cells, {es.name} has {len(b)}")
    for i, (x, y) in enumerate(zip(a, b)):
        if (x.get("id"), x.cell_type) != (y.get("id"), y.cell_type):
            found.append(
                f"cell {i + 1} is {x.cell_type} {x.get('id')} in {en.name} but {y.cell_type} {y.get('id')} in {es.name}"
            )
            break
    spanish = {c.get("id"): c for c in b}
    english_ids = {c.get("id") for c in a}
    for cell in a:
        if cell.cell_type != "code":
            continue
        twin = spanish.get(cell.get("id"))
        if twin is None or twin.cell_type != "code":
            found.append(f"code cell {cell.get('id')} has no code twin in {es.name}")
        elif twin.source != cell.source and (difference := program_difference(cell.source, twin.source)):
            found.append(f"code cell {cell.get('id')} ({_first_line(cell.source)}): {difference}")
    for cell in b:
        if cell.cell_type == "code" and cell.get("id") not in english_ids:
            found.append(f"code cell {cell.get('id')} of {es.name} is not in {en.name}")
    return found


def _record(nb: nbformat.NotebookNode) -> dict:
    record = nb.metadata.get("translation")
    return record if isinstance(record, dict) else {}


def _prose_hashes(nb: nbformat.NotebookNode) -> dict[str, str]:
    return {c.get("id"): cell_hash(c.source) for c in nb.cells if c.cell_type == "markdown"}


def stale_cells(en: Path, es: Path) -> list[str]:
    """Return the English markdown cells changed, added or removed since the Spanish was translated."""
    english, spanish = _read(en), _read(es)
    recorded = _record(spanish).get("prose")
    if not isinstance(recorded, dict):
        return [f"{_label(c)} has no recorded translation" for c in english.cells if c.cell_type == "markdown"]
    found = []
    for cell in english.cells:
        if cell.cell_type != "markdown":
            continue
        old = recorded.get(cell.get("id"))
        if old is None:
            found.append(f"{_label(cell)} is new since the translation")
        elif old != cell_hash(cell.source):
            found.append(f"{_label(cell)} changed since the translation")
    current = set(_prose_hashes(english))
    found += [f"{key} was removed from {Path(en).name} since the translation" for key in recorded if key not in current]
    return found


def mojibake(path: Path) -> list[str]:
    """Return where a notebook's cells or a text file hold mis-decoded text such as "Segmentaci\u221a\u2265n"."""
    path = Path(path)
    if path.suffix == ".ipynb":
        parts = [(f"cell {c.get('id')}", c.source) for c in _read(path).cells]
    else:
        parts = [(f"line {i}", line) for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]
    found = []
    for where, text in parts:
        bad = [m for m in MOJIBAKE if m in text]
        if bad:
            at = text.index(bad[0])
            found.append(f"{where} looks mis-decoded: {text[max(0, at - 20): at + 20]!r} (contains {bad[0]!r})")
    return found


def _readme_mark(path: Path) -> re.Match[str] | None:
    lines = path.read_text(encoding="utf-8").splitlines()
    return _README_MARK.match(lines[0]) if lines else None


def _file_hash(path: Path) -> str:
    return cell_hash(path.read_bytes().decode("utf-8"))


def _readme_problems(en: Path, es: Path) -> list[str]:
    if not es.is_file():
        return [f"{es.name} is missing (twin of {en.name}): translate it and start it with the line "
                f"<!-- translation of {en.name} sha256:{_file_hash(en)} -->"]
    mark = _readme_mark(es)
    if mark is None:
        return [f"{es.name} does not start with '<!-- translation of {en.name} sha256:... -->': run refresh after translating"]
    if mark["source"] != en.name:
        return [f"{es.name} says it translates {mark['source']}, not {en.name}"]
    if mark["hash"] != _file_hash(en):
        return [f"{en.name} changed since {es.name} was translated"]
    return []


def readme_status(root: Path = course.ROOT) -> list[str]:
    """Return the README twins that are missing, unmarked, stale or mis-decoded, each naming its file."""
    root = Path(root)
    found = []
    for en, es in readme_twins(root):
        where = es.relative_to(root).as_posix()
        found += [f"{where}: {p}" for p in _readme_problems(en, es)]
        if es.is_file():
            found += [f"{where}: {p}" for p in mojibake(es)]
    return found


def problems(es: Path) -> list[str]:
    """Return everything wrong with one Spanish notebook or README: layout, code, record, staleness, encoding."""
    es = Path(es)
    en = english_path(es)
    if es.suffix == ".md":
        if not en.is_file():
            return [f"{en.name} (its English source) is missing"]
        return _readme_problems(en, es) + (mojibake(es) if es.is_file() else [])
    found = code_differences(en, es)
    if found and not (en.is_file() and es.is_file()):
        return found
    source = _record(_read(es)).get("source")
    if source is not None and source != en.name:
        found.append(f"the translation record names {source} as its source, not {en.name}")
    return found + stale_cells(en, es) + mojibake(es)


def refresh(es: Path) -> list[str]:
    """Record the current English text as translated in a Spanish notebook or README; return what changed.

    For a notebook, returns the ids of the markdown cells whose record changed (added, changed or
    removed); for a README, `["README.md"]` when its first-line comment changed. Refuses with a
    CourseError while code cells or cell layout differ, since those must be fixed by hand first.
    """
    es = Path(es)
    en = english_path(es)
    if not en.is_file():
        raise CourseError(f"{en} does not exist: {es.name} must sit beside the English file it translates")
    if not es.is_file():
        raise CourseError(f"{es} does not exist: copy {en.name} to it, translate its prose, then run refresh")
    if es.suffix == ".md":
        return _refresh_readme(en, es)
    differences = code_differences(en, es)
    if differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        raise CourseError(f"{es.name} cannot be refreshed until it matches {en.name}: {differences[0]}{more}")
    nb = _read(es)
    old = _record(nb).get("prose")
    old = old if isinstance(old, dict) else {}
    new = _prose_hashes(_read(en))
    changed = [key for key in new if old.get(key) != new[key]] + [key for key in old if key not in new]
    record = {"source": en.name, "language": LANGUAGE, "prose": new}
    if changed or nb.metadata.get("translation") != record:
        nb.metadata["translation"] = record
        nbformat.write(nb, str(es))
    return changed


def _refresh_readme(en: Path, es: Path) -> list[str]:
    text = es.read_bytes().decode("utf-8")
    mark = f"<!-- translation of {en.name} sha256:{_file_hash(en)} -->"
    first, newline, rest = text.partition("\n")
    if _README_MARK.match(first.rstrip("\r")):
        if first.rstrip("\r") == mark:
            return []
        text = mark + newline + rest
    else:
        text = mark + "\n" + text
    es.write_bytes(text.encode("utf-8"))
    return [en.name]


def _history(path: Path, limit: int = 30) -> list[str]:
    """Return the texts `path` had in its last `limit` commits, newest first; [] outside git."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(path.parent), *args], capture_output=True, timeout=30, check=False)

    try:
        log = git("log", f"-{limit}", "--format=%H", "--", path.name)
        commits = log.stdout.decode().split() if log.returncode == 0 else []
        shown = [git("show", f"{c}:./{path.name}") for c in commits]
    except (OSError, subprocess.SubprocessError):
        return []
    return [s.stdout.decode("utf-8", "replace") for s in shown if s.returncode == 0]


def _old_prose(en: Path) -> dict[str, str]:
    """Return the English markdown texts found in git history, keyed by their hash."""
    old = {}
    for text in _history(en):
        try:
            nb = nbformat.reads(text, as_version=4)
        except (ValueError, nbformat.ValidationError):
            continue
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                old.setdefault(cell_hash(cell.source), cell.source)
    return old


def _block(title: str, text: str) -> str:
    return f"  {title}:\n" + "".join(f"    | {line}\n" for line in text.splitlines())


def _diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), f"{name} (translated)", f"{name} (now)", lineterm="")
    return "  what changed in the English:\n" + "".join(f"    {line}\n" for line in lines)


def show(es: Path) -> str:
    """Return, for each stale cell (or README), the English text to re-translate and the current Spanish.

    When git history still holds the English text that was translated, a unified diff of the English
    change is shown too.
    """
    es = Path(es)
    en = english_path(es)
    if not (en.is_file() and es.is_file()):
        return ""
    if es.suffix == ".md":
        mark = _readme_mark(es)
        if mark is None or mark["hash"] == _file_hash(en):
            return ""
        old = next((t for t in _history(en) if cell_hash(t) == mark["hash"]), None)
        english = en.read_bytes().decode("utf-8")
        return f"{en.name} changed since the translation\n" + (
            _diff(old, english, en.name) if old is not None else _block(f"{en.name} now (compare with {es.name})", english)
        )
    english, spanish = _read(en), _read(es)
    recorded = _record(spanish).get("prose")
    recorded = recorded if isinstance(recorded, dict) else {}
    spanish_cells = {c.get("id"): c for c in spanish.cells}
    stale = [
        c for c in english.cells
        if c.cell_type == "markdown" and recorded.get(c.get("id")) != cell_hash(c.source)
    ]
    old_texts = _old_prose(en) if stale else {}
    parts = []
    for cell in stale:
        key = cell.get("id")
        text = f"{_label(cell)}\n"
        old = old_texts.get(recorded.get(key, ""))
        text += _diff(old, cell.source, f"{en.name} {key}") if old is not None else _block("English now", cell.source)
        twin = spanish_cells.get(key)
        text += _block("Spanish now", twin.source) if twin is not None else "  Spanish: no cell with this id\n"
        parts.append(text)
    return "\n".join(parts)


def _targets(paths: list[str]) -> list[Path]:
    if not paths:
        return [es for _, es in twins()] + [es for _, es in readme_twins()]
    return [Path(p) if is_spanish(Path(p)) else spanish_path(Path(p)) for p in paths]


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(course.ROOT).as_posix()
    except ValueError:
        return str(path)


def main(action: str, paths: list[str]) -> int:
    """Run `status` (exit 1 if anything differs or is stale) or `refresh` on Spanish files (all if none given)."""
    targets = _targets(paths)
    if action == "status":
        bad = 0
        for es in targets:
            found = problems(es)
            if not found:
                print(f"OK     {_shown(es)}")
                continue
            bad += 1
            print(f"STALE  {_shown(es)}")
            print("".join(f"  - {p}\n" for p in found), end="")
            detail = show(es) if es.is_file() and english_path(es).is_file() else ""
            if detail:
                print(detail)
        print(f"{len(targets) - bad} of {len(targets)} Spanish file(s) up to date")
        return 1 if bad else 0
    if action == "refresh":
        failed = 0
        for es in targets:
            try:
                changed = refresh(es)
            except CourseError as exc:
                failed += 1
                print(f"error: {exc}")
                continue
            what = f"recorded {len(changed)} changed part(s): {', '.join(changed)}" if changed else "already up to date"
            print(f"{_shown(es)}: {what}")
        return 2 if failed else 0
    raise CourseError(f"unknown translations action {action!r}: use status or refresh")

