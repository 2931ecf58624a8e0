"""utils.set_language: the course helpers print and draw in the notebook's language."""

import pytest

import utils
from utils import course, mads, ph2
from utils.errors import CourseError
from utils.profiles import PROFILES


@pytest.fixture(autouse=True)
def english_afterwards():
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
