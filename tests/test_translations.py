import os
import shutil
import subprocess

import nbformat
import pytest

from utils import course, translations
from utils.errors import CourseError

NOTEBOOKS = translations.twins()
READMES = translations.readme_twins()


def _name(pair):
    return pair[0].relative_to(course.ROOT).as_posix()


# --- the repository's own twins -------------------------------------------------------------------


@pytest.mark.parametrize("pair", NOTEBOOKS, ids=_name)
def test_every_notebook_has_a_spanish_twin(pair):
    en, es = pair
    assert es.is_file(), f"{_name(pair)} has no Spanish edition {es.name}"


@pytest.mark.parametrize("pair", [p for p in NOTEBOOKS if p[1].is_file()], ids=_name)
def test_spanish_code_cells_run_the_same_program(pair):
    differences = translations.code_differences(*pair)
    assert not differences, f"{pair[1].name}:\n" + "\n".join(differences)


@pytest.mark.parametrize("pair", [p for p in NOTEBOOKS if p[1].is_file()], ids=_name)
def test_spanish_prose_is_not_stale(pair):
    stale = translations.stale_cells(*pair)
    assert not stale, f"{pair[1].name}: re-translate, then run `python -m utils translations refresh`:\n" + "\n".join(stale)


@pytest.mark.parametrize("pair", [p for p in NOTEBOOKS if p[1].is_file()], ids=_name)
def test_spanish_notebook_is_clean_utf8(pair):
    bad = translations.mojibake(pair[1])
    assert not bad, f"{pair[1].name}:\n" + "\n".join(bad)


@pytest.mark.parametrize("pair", [p for p in NOTEBOOKS if p[1].is_file()], ids=_name)
def test_spanish_notebook_records_its_source(pair):
    record = nbformat.read(str(pair[1]), as_version=4).metadata.get("translation", {})
    assert record.get("source") == pair[0].name and record.get("language") == "es", record


@pytest.mark.parametrize("pair", READMES, ids=_name)
def test_every_readme_has_a_spanish_twin(pair):
    en, es = pair
    assert es.is_file(), f"{_name(pair)} has no Spanish edition {es.name}"


@pytest.mark.parametrize("pair", [p for p in READMES if p[1].is_file()], ids=_name)
def test_spanish_readme_is_current_and_clean(pair):
    problems = translations.problems(pair[1])
    assert not problems, f"{pair[1].relative_to(course.ROOT)}:\n" + "\n".join(problems)


# --- unit tests on small notebooks -----------------------------------------------------------------


def _notebook(markdown_title="## 1. Masks", code="x = 1\nprint(x)"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lesson\n\nSome prose.", id="c00"),
        nbformat.v4.new_code_cell(code, id="c01"),
        nbformat.v4.new_markdown_cell(f"{markdown_title}\n\nA mask has one label per pixel.", id="c02"),
    ]
    return nb


def _translate(nb):
    es = nbformat.from_dict(nb)
    spanish = {"c00": "# Lección\n\nAlgo de texto.", "c02": "## 1. Máscaras\n\nUna máscara tiene una etiqueta por píxel."}
    for cell in es.cells:
        if cell.cell_type == "markdown":
            cell.source = spanish[cell.id]
    return es


@pytest.fixture
def pair(tmp_path):
    """A translated, refreshed English/Spanish pair under tmp_path/notebooks."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    en, es = folder / "L.ipynb", folder / "L.es.ipynb"
    nb = _notebook()
    nbformat.write(nb, str(en))
    nbformat.write(_translate(nb), str(es))
    assert translations.refresh(es) == ["c00", "c02"]
    return en, es


def _edit(path, cell_id, source):
    nb = nbformat.read(str(path), as_version=4)
    next(c for c in nb.cells if c.id == cell_id).source = source
    nbformat.write(nb, str(path))


def test_fresh_translation_has_no_problems(pair):
    en, es = pair
    assert translations.problems(es) == []
    record = nbformat.read(str(es), as_version=4).metadata["translation"]
    assert record["source"] == "L.ipynb" and record["language"] == "es"
    assert set(record["prose"]) == {"c00", "c02"} and all(len(h) == 16 for h in record["prose"].values())


def test_changed_english_markdown_is_named(pair):
    en, es = pair
    _edit(en, "c02", "## 1. Masks and labels\n\nA mask has one label per pixel.")
    stale = translations.stale_cells(en, es)
    assert stale == ['c02 ("## 1. Masks and labels") changed since the translation']
    text = translations.show(es)
    assert "## 1. Masks and labels" in text and "## 1. Máscaras" in text


def test_new_and_removed_markdown_cells_are_named(pair):
    en, es = pair
    nb = nbformat.read(str(en), as_version=4)
    nb.cells = [nb.cells[0], nb.cells[1], nbformat.v4.new_markdown_cell("## Exercises", id="c09")]
    nbformat.write(nb, str(en))
    stale = translations.stale_cells(en, es)
    assert 'c09 ("## Exercises") is new since the translation' in stale
    assert "c02 was removed from L.ipynb since the translation" in stale
    assert any("c02" in d and "c09" in d for d in translations.code_differences(en, es))


def test_changed_english_code_is_named(pair):
    en, es = pair
    _edit(en, "c01", "x = 2\nprint(x)")
    differences = translations.code_differences(en, es)
    assert len(differences) == 1
    assert "c01" in differences[0] and "statement 1" in differences[0] and "x = 2" in differences[0]


def test_missing_twin_and_layout_are_reported(pair, tmp_path):
    en, es = pair
    es.unlink()
    assert "L.es.ipynb is missing" in translations.code_differences(en, es)[0]
    nb = _translate(_notebook())
    nb.cells[1] = nbformat.v4.new_markdown_cell("x = 1\nprint(x)", id="c01")
    nbformat.write(nb, str(es))
    differences = translations.code_differences(en, es)
    assert any("cell 2 is code c01" in d for d in differences), differences


def test_refresh_clears_staleness(pair):
    en, es = pair
    _edit(en, "c00", "# Lesson\n\nSome new prose.")
    assert translations.stale_cells(en, es)
    _edit(es, "c00", "# Lección\n\nAlgo de texto nuevo.")
    assert translations.refresh(es) == ["c00"]
    assert translations.stale_cells(en, es) == []
    assert translations.refresh(es) == []


def test_refresh_refuses_while_code_differs(pair):
    en, es = pair
    _edit(es, "c01", "x = 1\nprint(x + 1)")
    _edit(en, "c00", "# Lesson, revised")
    before = es.read_bytes()
    with pytest.raises(CourseError, match="c01.*statement 2"):
        translations.refresh(es)
    assert es.read_bytes() == before


def test_link_rewrites_do_not_make_prose_stale(pair):
    en, es = pair
    badge = f"https://colab.research.google.com/github/{course.REPO}/blob/{course.REF}/notebooks/L.ipynb"
    _edit(en, "c00", f"# Lesson\n\n[badge]({badge})")
    _edit(es, "c00", f"# Lección\n\n[badge]({badge.replace('L.ipynb', 'L.es.ipynb')})")
    translations.refresh(es)
    forked = badge.replace(f"{course.REPO}/blob/{course.REF}", "someone/fork/blob/v2")
    assert translations.cell_hash(f"# Lesson\n\n[badge]({badge})") != translations.cell_hash(f"# Lesson\n\n[badge]({forked})")
    _edit(en, "c00", "# Lesson\n\n[badge](https://example.org)")
    assert translations.stale_cells(en, es), "a real change must still be caught"


def test_mojibake_is_flagged(pair):
    en, es = pair
    _edit(es, "c02", "## 1. Segmentaci√≥n\n\nUna máscara.")
    bad = translations.mojibake(es)
    assert len(bad) == 1 and "c02" in bad[0]
    assert translations.mojibake(en) == []
    assert any("mis-decoded" in p for p in translations.problems(es))


def test_cli_status_fails_then_refresh_then_passes(pair, capsys):
    en, es = pair
    _edit(en, "c02", "## 1. Masks, again\n\nA mask has one label per pixel.")
    assert translations.main("status", [str(es)]) == 1
    out = capsys.readouterr().out
    assert "c02" in out and "Masks, again" in out and "STALE" in out
    assert translations.main("refresh", [str(en)]) == 0  # an English path means its twin
    assert "c02" in capsys.readouterr().out
    assert translations.main("status", [str(es)]) == 0
    assert "OK" in capsys.readouterr().out


def test_cli_refresh_reports_refusal(pair, capsys):
    en, es = pair
    _edit(en, "c01", "y = 1")
    assert translations.main("refresh", [str(es)]) == 2
    assert "error:" in capsys.readouterr().out
    with pytest.raises(CourseError, match="status or refresh"):
        translations.main("sync", [str(es)])


def test_twins_skip_spanish_checkpoints_and_data(tmp_path):
    for rel in ["notebooks/A.ipynb", "notebooks/A.es.ipynb", "notebooks/.ipynb_checkpoints/A-checkpoint.ipynb",
                "lab/solution/S.ipynb", "lab/data/D.ipynb", "lab/runs/R.ipynb", "other/O.ipynb"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}", encoding="utf-8")
    found = [(en.relative_to(tmp_path).as_posix(), es.name) for en, es in translations.twins(tmp_path)]
    assert found == [("lab/solution/S.ipynb", "S.es.ipynb"), ("notebooks/A.ipynb", "A.es.ipynb")]


def test_readme_twins(tmp_path):
    (tmp_path / "lab").mkdir()
    english = "# Course\n\nRun the tests.\n"
    (tmp_path / "README.md").write_text(english, encoding="utf-8")
    (tmp_path / "lab" / "README.md").write_text("# Lab\n", encoding="utf-8")
    (tmp_path / "README.es.md").write_text("# Curso\n\nEjecuta las pruebas.\n", encoding="utf-8")
    status = translations.readme_status(tmp_path)
    assert any(s.startswith("README.es.md:") and "does not start with" in s for s in status), status
    assert any(s.startswith("lab/README.es.md:") and "missing" in s for s in status), status

    assert translations.refresh(tmp_path / "README.es.md") == ["README.md"]
    first, rest = (tmp_path / "README.es.md").read_text(encoding="utf-8").split("\n", 1)
    assert first == f"<!-- translation of README.md sha256:{translations.cell_hash(english)} -->"
    assert rest == "# Curso\n\nEjecuta las pruebas.\n"
    assert not [s for s in translations.readme_status(tmp_path) if s.startswith("README.es.md")]

    (tmp_path / "README.md").write_text("# Course\n\nRun the tests with pytest.\n", encoding="utf-8")
    assert "README.es.md: README.md changed since README.es.md was translated" in translations.readme_status(tmp_path)
    assert "Run the tests with pytest." in translations.show(tmp_path / "README.es.md")
    assert translations.refresh(tmp_path / "README.es.md") == ["README.md"]
    assert (tmp_path / "README.es.md").read_text(encoding="utf-8").count("<!-- translation of") == 1

    (tmp_path / "lab" / "README.es.md").write_text("Segmentaci\u221a\u2265n\n", encoding="utf-8")
    translations.refresh(tmp_path / "lab" / "README.es.md")
    assert any("lab/README.es.md" in s and "mis-decoded" in s for s in translations.readme_status(tmp_path))


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git program")
def test_show_diffs_the_english_from_git_history(pair):
    en, es = pair
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    folder = en.parent
    for args in (["init", "-q"], ["add", "L.ipynb"], ["commit", "-q", "-m", "lesson"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True, env=env, capture_output=True)
    _edit(en, "c02", "## 1. Masks\n\nA mask has one class label per pixel.")
    text = translations.show(es)
    assert "-A mask has one label per pixel." in text
    assert "+A mask has one class label per pixel." in text
    assert "Una máscara tiene una etiqueta por píxel." in text


# --- the parity rule: same program, Spanish words ------------------------------------------------------

ENGLISH_CELL = """\
# Load the split and report it
results = json.loads(Path("runs/metrics.json").read_text())
for name, row in results.items():
    print(f"{name}: Dice {row['dice']:.3f}", "(synthetic data)" if row["synthetic"] else "")
plt.title("Test Dice per model")
plt.plot(row["curve"], label="validation")
show(images, titles=[f"{'best' if i < 3 else 'worst'}: {names[i]}" for i in range(6)])
if not results:
    raise CourseError("no results: train first")
assert len(names) == 6, f"six names expected, got {len(names)}"
%matplotlib inline
!ls runs
"""

SPANISH_CELL = """\
# Carga la partición y muéstrala
results = json.loads(Path("runs/metrics.json").read_text())
for name, row in results.items():
    print(f"{name}: Dice {row['dice']:.3f}", "(datos sintéticos)" if row["synthetic"] else "")
plt.title("Dice de prueba por modelo")
plt.plot(row["curve"], label="validación")
show(images, titles=[f"{'mejor' if i < 3 else 'peor'}: {names[i]}" for i in range(6)])
if not results:
    raise CourseError("sin resultados: entrena primero")
assert len(names) == 6, f"se esperaban seis nombres, hay {len(names)}"
%matplotlib inline
!ls runs
"""


def test_spanish_comments_messages_and_labels_are_allowed():
    assert translations.program_difference(ENGLISH_CELL, SPANISH_CELL) is None


@pytest.mark.parametrize("old,new,what", [
    ('read_text())', 'read_text(encoding="latin-1"))', "an argument"),
    ('"runs/metrics.json"', '"runs/métricas.json"', "a file name"),
    ("row['dice']:.3f", "row['dados']:.3f", "a key inside an f-string"),
    ("row['dice']:.3f", "row['dice']:.2f", "a format"),
    ('row["synthetic"]', 'row["sintético"]', "a key in a condition"),
    ('row["curve"]', 'row["curva"]', "a key in a call"),
    ("if not results:", "if results:", "the logic"),
    ("!ls runs", "!ls corridas", "a shell line"),
    ("if i < 3", "if i <= 3", "a condition inside a label"),
    ("names[i]", "names[i + 1]", "an expression inside a label"),
    ("%matplotlib inline", "%matplotlib widget", "a magic"),
    ("len(names) == 6", "len(names) >= 6", "an assertion's test"),
    ("hay {len(names)}", "hay {len(names) - 1}", "an expression in an assertion's message"),
])
def test_any_change_of_the_program_is_caught(old, new, what):
    assert old in SPANISH_CELL, what
    difference = translations.program_difference(ENGLISH_CELL, SPANISH_CELL.replace(old, new, 1))
    assert difference is not None, f"{what} was translated without the test noticing"


def test_a_translated_key_in_a_notebook_names_its_cell(pair):
    en, es = pair
    _edit(en, "c01", 'scores = {"dice": 0.9}\nprint("Dice:", scores["dice"])  # the test score')
    _edit(es, "c01", 'scores = {"dice": 0.9}\nprint("Dice:", scores["dados"])  # la puntuación de prueba')
    differences = translations.code_differences(en, es)
    assert len(differences) == 1 and "c01" in differences[0] and "statement 2" in differences[0], differences
    _edit(es, "c01", 'scores = {"dice": 0.9}\nprint("Dice en prueba:", scores["dice"])  # la puntuación de prueba')
    assert translations.code_differences(en, es) == []
