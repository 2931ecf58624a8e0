"""utils.set_language: the course helpers print, draw and complain in the notebook's language."""

import ast
from pathlib import Path

import numpy as np
import pytest

import utils
from utils import course, lab, mads, ph2
from utils.errors import CourseError
from utils.profiles import PROFILES, choose_profile

UTILS = Path(utils.__file__).resolve().parent

#: The modules whose messages a learner reads in a notebook (utils/grading is for instructors: English).
LEARNER_FACING = ("ph2", "mads", "synthetic", "profiles", "lab", "training", "models", "course", "links", "data", "cache")
#: Functions whose messages stay English, and why.
KEPT_ENGLISH = {
    ("models", "build_unet"): "a copy of the TF lesson's own cell (tests/test_models.py compares them); "
    "the Spanish lesson defines its own, with its message in Spanish",
}


@pytest.fixture(autouse=True)
def english_afterwards(monkeypatch, tmp_path):
    """Keep data, caches and the environment inside the test's folder; back to English afterwards."""
    monkeypatch.setenv("SEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("SEG_OFFLINE", "1")
    for name in ("PH2_DIR", "MADS_DIR", "SEG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    yield
    utils.set_language("en")


def test_english_is_the_default_and_say_picks_the_chosen_language():
    assert course.language() == "en" and course.say("epoch", "época") == "epoch"
    utils.set_language(lang="es")
    assert course.language() == "es" and course.say("epoch", "época") == "época"


def test_an_unknown_language_is_refused_with_the_choices():
    with pytest.raises(CourseError, match="unknown language 'fr': use one of en, es"):
        utils.set_language("fr")
    assert course.language() == "en"
    utils.set_language("es")
    with pytest.raises(CourseError, match="idioma desconocido 'fr': usa uno de en, es"):
        utils.set_language("fr")
    assert course.language() == "es"


def test_profile_line_in_both_languages():
    assert PROFILES["cpu"].describe().startswith("profile cpu: 128x128, 12 epochs")
    utils.set_language("es")
    line = PROFILES["smoke"].describe()
    assert line.startswith("perfil smoke: 64x64, 1 épocas") and "24 casos" in line and "epochs" not in line


def test_stand_in_banners_in_spanish(tmp_path, capsys):
    utils.set_language("es")
    banner = ph2._banner(tmp_path)
    assert "SUSTITUTO SINTÉTICO" in banner and "NO son resultados sobre PH2" in banner and "NOT FOUND" not in banner
    mads._announce(mads.Source(tmp_path, "synthetic"))
    out = capsys.readouterr().out
    assert "SUSTITUTO SINTÉTICO" in out and "sustituto sintético:" in out and "SYNTHETIC STAND-IN" not in out


def test_stand_in_banners_in_english(tmp_path, capsys):
    assert "USING THE SYNTHETIC STAND-IN" in ph2._banner(tmp_path)
    mads._announce(mads.Source(tmp_path, "synthetic"))
    assert "SYNTHETIC STAND-IN" in capsys.readouterr().out


def test_plot_labels_follow_the_language():
    import matplotlib

    matplotlib.use("Agg")
    from utils.plots import plot_history

    utils.set_language("es")
    fig = plot_history({"U-Net": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6]}}, metrics=("loss",))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "época"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["U-Net entrenamiento", "U-Net validación"]


# ---------------------------------------------------------------------------------------------
# what a notebook shows from a key: class names and the kind of data


def test_class_names_follow_the_language_and_the_keys_do_not():
    assert ph2.class_names() == ph2.CLASSES == ("common nevus", "atypical nevus", "melanoma")
    utils.set_language("es")
    assert ph2.class_names() == ("nevo común", "nevo atípico", "melanoma")
    assert ph2.CLASSES == ("common nevus", "atypical nevus", "melanoma")  # keys: compared and written as they are


def test_kind_labels_read_as_data_in_both_languages(tmp_path):
    shown = [ph2.Source(tmp_path, "ph2").label, ph2.Source(tmp_path, "synthetic").label,
             mads.Source(tmp_path, "mads").label, mads.Source(tmp_path, "synthetic").label]
    assert [f"{label} data" for label in shown] == ["real data", "synthetic data", "real data", "synthetic data"]
    utils.set_language("es")
    source = mads.Source(tmp_path, "synthetic")
    assert source.kind == "synthetic" and f"datos {source.label}" == "datos sintéticos"
    assert ph2.Source(tmp_path, "ph2").label == mads.kind_label("mads") == "reales"
    assert ph2.kind_label("somewhere else") == "somewhere else"  # an unknown kind is shown as it is


# ---------------------------------------------------------------------------------------------
# real failures, in both languages


def _broken_ph2(tmp_path: Path) -> tuple[Path, Path]:
    """Return a PH2Dataset folder whose one case folder is empty, and that case folder."""
    case = tmp_path / "PH2Dataset" / "PH2 Dataset images" / "IMD003"
    case.mkdir(parents=True)
    return tmp_path / "PH2Dataset", case


def test_a_malformed_ph2_folder_is_named_in_spanish(tmp_path):
    root, case = _broken_ph2(tmp_path)
    utils.set_language("es")
    with pytest.raises(CourseError) as err:
        ph2.load_ph2(root, size=32, cache=False)
    message = str(err.value)
    assert message.startswith("caso IMD003: falta la imagen dermatoscópica, se esperaba ")
    assert str(case) in message and "vuelve a extraer el archivo comprimido" in message and "expected" not in message


def test_a_malformed_ph2_folder_is_named_in_english(tmp_path):
    root, case = _broken_ph2(tmp_path)
    with pytest.raises(CourseError, match="^case IMD003: no dermoscopic image, expected ") as err:
        ph2.load_ph2(root, size=32, cache=False)
    assert str(case) in str(err.value) and "re-extract the archive" in str(err.value)


def test_a_bad_row_of_the_ph2_table_in_both_languages(tmp_path):
    root, _ = _broken_ph2(tmp_path)
    table = root / "PH2_dataset.txt"
    table.write_text("|| IMD003 ||  || 7 || 0 | T | A | A | A | A || 3 4 ||\n", encoding="utf-8")
    with pytest.raises(CourseError, match="clinical diagnosis of IMD003 is '7', not 0, 1 or 2; fix the line") as err:
        ph2.read_metadata(root)
    assert str(err.value).startswith(f"{table}, line 1: ")
    utils.set_language("es")
    with pytest.raises(CourseError) as err:
        ph2.read_metadata(root)
    assert str(err.value) == (
        f"{table}, línea 1: el diagnóstico clínico de IMD003 es '7', no 0, 1 ni 2; "
        "corrige la línea o vuelve a extraer el archivo de PH2Dataset.rar"
    )


def test_a_missing_ph2_table_warns_in_spanish_and_describe_keeps_its_keys(tmp_path):
    root, _ = _broken_ph2(tmp_path)
    utils.set_language("es")
    with pytest.warns(UserWarning, match="^falta .*PH2_dataset.txt: el diagnóstico de todos los casos será desconocido"):
        assert ph2.read_metadata(root) == {}
    info = ph2.describe(root)
    assert list(info["per_class"]) == [*ph2.CLASSES, "unknown"]  # keys stay keys
    assert any(p.startswith("caso IMD003: falta la imagen dermatoscópica") for p in info["problems"])
    assert any(p.startswith("falta ") and "PH2_dataset.txt" in p for p in info["problems"])


def test_a_missing_ph2_path_in_spanish(tmp_path):
    utils.set_language("es")
    missing = tmp_path / "nowhere"
    with pytest.raises(CourseError) as err:
        ph2.find_ph2(missing)
    assert str(err.value).startswith(f"{missing} no existe: pasa la carpeta que contiene PH2Dataset")
    assert "consigue PH2 con `python -m utils fetch ph2`" in str(err.value)


def test_a_missing_mads_folder_in_both_languages(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(CourseError, match="^MADS not found in ") as err:
        mads.find_mads(missing)
    assert str(missing) in str(err.value)
    utils.set_language("es")
    with pytest.raises(CourseError) as err:
        mads.find_mads(missing)
    assert str(err.value).startswith(f"no se encuentra MADS en {missing}: descárgalo (lab/README.es.md")
    assert "not found" not in str(err.value)


def test_the_mads_fallback_says_why_in_spanish(tmp_path, capsys):
    pytest.importorskip("utils.synthetic").synthetic_mads  # noqa: B018 - needs the generator
    utils.set_language("es")
    source = mads.resolve_mads(synthetic_count=12)  # downloads are off (SEG_OFFLINE): the stand-in
    out = capsys.readouterr().out
    assert f"(MADS real no disponible: no se encuentra MADS en {tmp_path / 'data'} (ni en la caché de kagglehub" in out
    assert "not found" not in out and source.label == "sintéticos"


def test_a_bad_profile_name_in_both_languages(monkeypatch):
    with pytest.raises(CourseError, match="^unknown profile 'huge': choose one of smoke, cpu, gpu$"):
        choose_profile(False, "huge")
    utils.set_language("es")
    with pytest.raises(CourseError, match="^perfil desconocido 'huge': elige uno de smoke, cpu, gpu$"):
        choose_profile(False, "huge")
    monkeypatch.setenv("SEG_PROFILE", "fast")
    with pytest.raises(CourseError, match="^SEG_PROFILE='fast' no es un perfil: .*smoke, cpu, gpu"):
        choose_profile(False)


def test_the_lab_self_check_refuses_a_language_in_the_chosen_one():
    images, masks = np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8), np.uint8)
    utils.set_language("es")
    with pytest.raises(CourseError, match="^self_check: idioma desconocido 'fr'; usa uno de en, es$"):
        lab.self_check(lambda x: x[..., 0], images, masks, lang="fr")


# ---------------------------------------------------------------------------------------------
# every message of the learner-facing modules has its Spanish


def _is_say(node: ast.AST) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    return (isinstance(func, ast.Name) and func.id == "say") or (isinstance(func, ast.Attribute) and func.attr == "say")


def _assignments(scope: ast.AST) -> dict[str, list[ast.AST]]:
    found: dict[str, list[ast.AST]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
    return found


def untranslated_messages(source: str, filename: str = "<source>", kept: frozenset[str] = frozenset()) -> list[str]:
    """Return "file:line: why" for each CourseError (or subclass) and warnings.warn whose message is not say(en, es).

    A message may also be a variable, when every assignment to it in the same function (but `= None`) is a say(...) call.
    Functions named in `kept` are not looked into.
    """
    tree = ast.parse(source)
    errors = {"CourseError"}
    for _ in range(3):  # subclasses, and their subclasses
        errors |= {
            c.name for c in ast.walk(tree)
            if isinstance(c, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id in errors for b in c.bases)
        }
    problems: list[str] = []

    def check(call: ast.Call, what: str, scope: dict[str, list[ast.AST]]) -> None:
        where = f"{filename}:{call.lineno}: {what}"
        if not call.args:
            problems.append(f"{where} has no message")
            return
        message = call.args[0]
        if isinstance(message, ast.Name):
            values = [v for v in scope.get(message.id, []) if not (isinstance(v, ast.Constant) and v.value is None)]
            if values and all(_is_say(v) for v in values):
                message = values[0]
            else:
                problems.append(f"{where}: {message.id} is not always set by say(english, spanish)")
                return
        if not _is_say(message):
            problems.append(f"{where}: the message is not say(english, spanish)")
        elif len(message.args) != 2 or ast.dump(message.args[0]) == ast.dump(message.args[1]):
            problems.append(f"{where}: say(...) needs an English and a different Spanish text")

    class Sweep(ast.NodeVisitor):
        def __init__(self) -> None:
            self.scopes = [_assignments(tree)]

        def visit_FunctionDef(self, node: ast.AST) -> None:
            if node.name in kept:
                return
            self.scopes.append(_assignments(node))
            self.generic_visit(node)
            self.scopes.pop()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Call(self, node: ast.Call) -> None:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in errors:
                check(node, name, self.scopes[-1])
            elif name == "warn" and isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "warnings":
                check(node, "warnings.warn", self.scopes[-1])
            self.generic_visit(node)

    Sweep().visit(tree)
    return problems


def test_the_sweep_catches_an_english_only_message():
    source = '''
class _Special(CourseError):
    pass

def f(path, ok):
    raise CourseError(f"{path} is missing: put it back")

def g(path):
    problem = say(f"{path} is bad", f"{path} está mal")
    if path:
        problem = f"{path} is worse"
    raise CourseError(problem)

def h(path):
    warnings.warn(say("same", "same"))
    raise _Special("no rar tool")

def fine(path):
    problem = say(f"{path} is bad", f"{path} está mal")
    raise CourseError(problem)
    raise CourseError(say(f"{path} is bad", f"{path} está mal")) from None
'''
    found = untranslated_messages(source, "x.py")
    assert [p.split(":")[1] for p in found] == ["6", "12", "15", "16"], found
    assert "problem is not always set by say" in found[1] and "different Spanish" in found[2] and "_Special" in found[3]
    assert [p.split(":")[1] for p in untranslated_messages(source, "x.py", frozenset({"f", "h"}))] == ["12"]


@pytest.mark.parametrize("module", LEARNER_FACING)
def test_every_message_of_a_learner_facing_module_has_its_spanish(module):
    path = UTILS / f"{module}.py"
    kept = frozenset(function for (name, function) in KEPT_ENGLISH if name == module)
    assert untranslated_messages(path.read_text(encoding="utf-8"), path.name, kept) == []


def test_ph2_counts_shown_in_the_chosen_language():
    from utils import course, ph2

    data = ph2.PH2Data(
        images=np.zeros((3, 2, 2, 3), np.uint8), masks=np.zeros((3, 2, 2), np.uint8),
        ids=["IMD001", "IMD002", "IMD003"], diagnosis=np.array([0, 2, -1]), root=Path("."),
    )
    assert data.counts() == {"common nevus": 1, "atypical nevus": 0, "melanoma": 1, "unknown": 1}
    course.set_language("es")
    try:
        assert data.counts(shown=True) == {"nevo común": 1, "nevo atípico": 0, "melanoma": 1, "desconocido": 1}
        assert data.counts() == {"common nevus": 1, "atypical nevus": 0, "melanoma": 1, "unknown": 1}  # keys stay keys
    finally:
        course.set_language("en")


def test_device_line_in_the_chosen_language():
    from utils import course
    from utils.device import DevicePlan

    plan = DevicePlan("tensorflow", [], "float32", "default", 1, "")
    assert plan.describe() == "Keras tensorflow backend | CPU only | policy float32 | strategy default (1 replica)"
    course.set_language("es")
    try:
        assert plan.describe() == "Keras con backend tensorflow | solo CPU | política float32 | estrategia default (1 réplica)"
    finally:
        course.set_language("en")
