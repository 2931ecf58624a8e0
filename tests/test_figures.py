"""The lessons' figures: every figure drawn in both languages, with the same words available in each."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from skimage.io import imread  # noqa: E402

from utils import figures  # noqa: E402

WITH_WORDS = ["semantic_vs_instance", "encoder_decoder", "unet", "upsampling", "onehot_target", "dice_iou", "panoptic"]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    return figures.make_figures(tmp_path_factory.mktemp("images"))


def test_every_figure_with_words_is_drawn_in_english_and_spanish(drawn):
    names = [p.name for p in drawn]
    expected = [n for stem in WITH_WORDS for n in (f"{stem}.png", f"{stem}.es.png")] + ["synthetic_nevus.png"]
    assert names == expected
    for path in drawn:
        picture = imread(path)
        assert picture.shape[0] > 200 and picture.shape[1] > 400, path.name


@pytest.mark.parametrize("stem", WITH_WORDS)
def test_the_two_languages_differ_only_in_words(drawn, stem):
    by_name = {p.name: p for p in drawn}
    english, spanish = imread(by_name[f"{stem}.png"]), imread(by_name[f"{stem}.es.png"])
    if english.shape == spanish.shape:
        assert not np.array_equal(english, spanish)  # the words were translated


def test_every_language_has_every_word():
    keys = {lang: set(words) for lang, words in figures.TEXT.items()}
    assert keys["es"] == keys["en"]
    for lang, words in figures.TEXT.items():
        assert all(text.strip() for text in words.values()), lang


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no figure text in 'fr'"):
        figures.unet(tmp_path / "unet.fr.png", lang="fr")


def test_lessons_reference_only_figures_that_are_drawn(drawn):
    import json

    from utils.course import ROOT

    names = {p.name for p in drawn}
    for notebook in sorted((ROOT / "notebooks").glob("SemanticSegmentationTF*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        used = {part.split(")")[0] for part in text.split("](../images/")[1:]}
        assert used and used <= names, (notebook.name, used - names)
        spanish = notebook.name.endswith(".es.ipynb")
        for name in used:  # each edition shows the figures drawn in its own language
            if name.removesuffix(".es.png").removesuffix(".png") in WITH_WORDS:
                assert name.endswith(".es.png") == spanish, (notebook.name, name)
