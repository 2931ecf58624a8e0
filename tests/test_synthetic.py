"""Tests for utils.synthetic: the synthetic PH2 and MADS stand-ins match the real on-disk layouts."""

from __future__ import annotations

import csv
import io
import re
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import utils.synthetic as synthetic
from utils.errors import CourseError
from utils.ph2 import CLASS_IDS
from utils.synthetic import MADS_INNER, MADS_STYLES, synthetic_mads, synthetic_ph2

HEADER = (
    "||   Name || Histological Diagnosis || Clinical Diagnosis || Asymmetry | Pigment Network | "
    "Dots/Globules | Streaks | Regression Areas | Blue-Whitish Veil ||           Colors ||"
)
MADS_NAME = re.compile(r"^[A-Za-z]+_[A-Za-z]+\d+_C\d_\d{5}\.png$")


# ---------------------------------------------------------------------------------------------- helpers


def _bmp_bits(path: Path) -> int:
    data = path.read_bytes()
    assert data[:2] == b"BM", f"{path} is not a BMP file"
    return struct.unpack_from("<H", data, 28)[0]


def _case_files(root: Path, case_id: str) -> tuple[Path, Path]:
    case = root / "PH2 Dataset images" / case_id
    return (
        case / f"{case_id}_Dermoscopic_Image" / f"{case_id}.bmp",
        case / f"{case_id}_lesion" / f"{case_id}_lesion.bmp",
    )


def _table(root: Path) -> tuple[list[str], list[list[str]], str]:
    """Return the header line, the rows split into fields, and the text after the rows."""
    lines = (root / "PH2_dataset.txt").read_text(encoding="utf-8").split("\n")
    rows = []
    k = 1
    while k < len(lines) and lines[k].startswith("|| IMD"):
        rows.append(lines[k].split("||"))
        k += 1
    return lines[0], rows, "\n".join(lines[k:])


def _inner(dest: Path) -> Path:
    return dest / MADS_INNER / MADS_INNER


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ph2_40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_ph2(tmp_path_factory.mktemp("ph2_40"), count=40, seed=0, progress=False)


@pytest.fixture(scope="module")
def ph2_table_200(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All 200 cases with the drawing stubbed out: only the table (the slow part is tested elsewhere)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            synthetic,
            "_write_ph2_case",
            lambda root, seed, case_id: synthetic._ph2_case_findings(seed, case_id),
        )
        return synthetic_ph2(tmp_path_factory.mktemp("ph2_200"), count=200, seed=0, progress=False)


@pytest.fixture(scope="module")
def mads_30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_mads(tmp_path_factory.mktemp("mads_30"), count=30, seed=0, progress=False)


# ---------------------------------------------------------------------------------------------- PH2


def test_ph2_layout(ph2_40: Path) -> None:
    assert ph2_40.name == "PH2Dataset"
    assert sorted(p.name for p in ph2_40.iterdir()) == ["PH2 Dataset images", "PH2_dataset.txt", "Readme.txt"]
    assert "SYNTHETIC" in (ph2_40 / "Readme.txt").read_text(encoding="utf-8")
    cases = sorted(p.name for p in (ph2_40 / "PH2 Dataset images").iterdir())
    assert len(cases) == 40 and set(cases) <= set(CLASS_IDS)
    for case_id in cases:
        image_path, mask_path = _case_files(ph2_40, case_id)
        assert _bmp_bits(image_path) == 24 and _bmp_bits(mask_path) == 8
        with Image.open(image_path) as image, Image.open(mask_path) as mask:
            assert image.mode == "RGB" and mask.mode == "L"
            assert 761 <= image.width <= 769 and 553 <= image.height <= 577
            assert mask.size == image.size
            lesion = np.asarray(mask)
        assert set(np.unique(lesion)) == {0, 255}


def test_ph2_roi_masks_are_the_listed_colours_inside_the_lesion(ph2_40: Path) -> None:
    with_roi = sorted((ph2_40 / "PH2 Dataset images").glob("IMD*/IMD*_roi"))
    assert 0.2 <= len(with_roi) / 40 <= 0.5
    colours = {r[1].strip(): r[5].split() for r in _table(ph2_40)[1]}
    for folder in with_roi:
        case_id = folder.name[:6]
        lesion = np.asarray(Image.open(_case_files(ph2_40, case_id)[1])) > 127
        files = sorted(folder.iterdir())
        assert sorted(p.stem[-1] for p in files) == colours[case_id]  # one region per listed colour
        for path in files:
            assert re.fullmatch(rf"{case_id}_R\d+_Label[1-6]\.bmp", path.name)
            region = np.asarray(Image.open(path))
            assert region.shape == lesion.shape and set(np.unique(region)) <= {0, 255}
            assert region.any() and not (region.astype(bool) & ~lesion).any()


def test_ph2_findings_without_drawing_match_the_drawing() -> None:
    for case_id in ("IMD003", "IMD002", "IMD058"):
        findings = synthetic._ph2_case(7, case_id)[3]
        assert (
            findings == synthetic._ph2_case_findings(7, case_id) == synthetic._ph2_case_scene(7, case_id)[0]
        )


def test_ph2_table_format(ph2_40: Path) -> None:
    header, rows, rest = _table(ph2_40)
    assert header == HEADER
    assert len(rows) == 40
    ids = [r[1].strip() for r in rows]
    assert ids == sorted(ids) == sorted(p.name for p in (ph2_40 / "PH2 Dataset images").iterdir())
    head = header.split("||")
    for r in rows:
        assert len(r) == len(head) == 7 and r[0] == r[-1] == ""
        assert [len(f) for f in r[1:4]] == [len(f) for f in head[1:4]]  # padded like the real file
        case_id, clinical, criteria, colours = r[1].strip(), r[3].strip(), r[4].split("|"), r[5].split()
        assert int(clinical) == CLASS_IDS[case_id]
        assert len(criteria) == 6 and criteria[0].strip() in {"0", "1", "2"}
        assert all(c.strip() in {"A", "AT", "P", "T"} for c in criteria[1:])
        assert colours and all(c in "123456" for c in colours) and colours == sorted(set(colours))
    assert rest.startswith("\n") and "Legend" in rest and "Blue-Gray" in rest


def test_ph2_row_is_padded_like_the_real_file() -> None:
    findings = {
        "histology": "",
        "label": 0,
        "asymmetry": 0,
        "criteria": ("T", "A", "A", "A", "A"),
        "colours": (3, 4),
    }
    assert synthetic._ph2_row("IMD003", findings) == (
        "|| IMD003 ||                        ||                  0 ||         0 |       T |       A |       A "
        "|       A |       A ||        3 4 ||"
    )


def test_ph2_all_cases_and_classes(ph2_table_200: Path) -> None:
    header, rows, rest = _table(ph2_table_200)
    assert header == HEADER and "Legend" in rest
    ids = [r[1].strip() for r in rows]
    assert ids == sorted(CLASS_IDS)
    assert Counter(int(r[3]) for r in rows) == {0: 80, 1: 80, 2: 40}
    blank = sum(r[2].strip() == "" for r in rows) / len(rows)
    assert 0.7 <= blank <= 0.9


def test_ph2_images_are_not_trivial(ph2_40: Path) -> None:
    gaps, areas = [], []
    for case_id in sorted(p.name for p in (ph2_40 / "PH2 Dataset images").iterdir()):
        image_path, mask_path = _case_files(ph2_40, case_id)
        image = np.asarray(Image.open(image_path), np.float32)
        lesion = np.asarray(Image.open(mask_path)) > 127
        skin = ~lesion & (image.sum(-1) > 200)  # outside the lesion, inside the dermoscope's circle
        gaps.append(np.abs(image[lesion].mean(0) - image[skin].mean(0)).max())
        areas.append(lesion.mean())
    assert min(areas) >= 0.07 and max(areas) <= 0.82
    assert sum(g < 25 for g in gaps) >= 4  # some lesions are close to the skin's colour ...
    assert np.median(gaps) > 30  # ... but most stand out


def _rim_gap(image: np.ndarray, lesion: np.ndarray) -> float:
    """Largest colour difference between a band just inside the lesion's border and one just outside."""
    inner = lesion & ~ndimage.binary_erosion(lesion, iterations=12)
    outer = ndimage.binary_dilation(lesion, iterations=12) & ~lesion & (image.sum(-1) > 200)
    return float(np.abs(image[inner].mean(0) - image[outer].mean(0)).max())


def test_ph2_difficulties_are_spread_over_the_cases() -> None:
    scenes = [synthetic._ph2_case_scene(0, case_id) for case_id in sorted(CLASS_IDS)]
    count = Counter()
    for findings, scene in scenes:
        label = findings["label"]
        count.update(f"{key}{label}" for key, value in scene.items() if value is True)
        count.update({f"hair={scene['hair']}", f"vignette={scene['vignette']}"})
    assert count["faint1"] > count["faint0"] > count["faint2"] >= 1  # atypical nevi fade into the skin most
    assert count["large2"] > count["large0"] >= 1  # melanomas fill the frame most often
    assert sum(count[f"large{k}"] for k in range(3)) <= 30  # ... but only a few lesions do
    for key in ("ruler", "bubbles", "glare", "blur", "satellite", "off_centre"):
        assert 8 <= sum(count[f"{key}{k}"] for k in range(3)) <= 80, key
    assert count["hair=dense"] >= 8 and count["hair=few"] >= 40 and count["hair=none"] >= 60
    assert count["vignette=strong"] >= 10 and count["vignette=none"] >= 5


def test_ph2_difficulties_show_in_the_pictures() -> None:
    scenes = {case_id: synthetic._ph2_case_scene(0, case_id)[1] for case_id in synthetic._stratified_ids(200)}

    def first(**wanted: object) -> str:
        return next(c for c, scene in scenes.items() if all(scene[k] == v for k, v in wanted.items()))

    def draw(case_id: str) -> tuple[np.ndarray, np.ndarray]:
        image, mask, _, _ = synthetic._ph2_case(0, case_id)
        return image.astype(np.float32), mask > 127

    faint = [_rim_gap(*draw(first(faint=True, large=False, hair=h))) for h in ("none", "few")]
    plain = [
        _rim_gap(*draw(first(faint=False, large=False, off_centre=False, hair=h))) for h in ("none", "few")
    ]
    assert max(faint) < 12 < min(plain)  # a faint lesion's border is barely visible
    image, lesion = draw(first(large=True))
    assert lesion.mean() > 0.5  # fills most of the frame ...
    edge = np.concatenate([lesion[0], lesion[-1], lesion[:, 0], lesion[:, -1]])
    assert (
        edge.any() or (lesion & (image.sum(-1) < 150)).any()
    )  # ... and reaches the dark corners or the edge
    image, lesion = draw(first(hair="dense", faint=False))
    border = lesion & ~ndimage.binary_erosion(lesion, iterations=2)
    darker = image.sum(-1) < ndimage.median_filter(image.sum(-1), size=9) - 60  # thin dark lines
    assert (border & darker).sum() >= 20  # hairs cross the border


def _peakiness(image: np.ndarray, lesion: np.ndarray) -> float:
    """Return how far the strongest frequency of the lesion's texture stands above others of its wavelength."""
    grey = image.astype(np.float32).mean(-1)
    rows, cols = np.nonzero(lesion)
    r, c = int(rows.mean()), int(cols.mean())
    patch = grey[max(r - 64, 0) : r + 64, max(c - 64, 0) : c + 64]
    patch = (patch - patch.mean()) * np.outer(np.hanning(patch.shape[0]), np.hanning(patch.shape[1]))
    power = np.abs(np.fft.fft2(patch)) ** 2
    freq = np.hypot(np.fft.fftfreq(patch.shape[0])[:, None], np.fft.fftfreq(patch.shape[1])[None, :])
    rings = np.digitize(freq, np.linspace(0.04, 0.3, 14))  # wavelengths from 3 to 25 pixels
    return max(power[rings == k].max() / np.median(power[rings == k]) for k in range(1, 14))


def test_ph2_lesion_texture_has_no_period() -> None:
    """A pigment network is an irregular mesh: no wavelength stands out (a lattice's would, 30-200x)."""
    chosen = []
    for case_id in synthetic._stratified_ids(200):
        findings, scene = synthetic._ph2_case_scene(0, case_id)
        plain = scene["hair"] == "none" and not (scene["ruler"] or scene["bubbles"] or scene["glare"])
        if findings["criteria"][0] != "A" and plain:  # a network, and no lines or circles over it
            chosen.append(case_id)
    assert len(chosen) >= 8
    for case_id in chosen[:8]:
        image, mask, _, _ = synthetic._ph2_case(0, case_id)
        assert _peakiness(image, mask > 127) < 25, case_id


def test_ph2_generator_version_is_written(ph2_40: Path) -> None:
    readme = (ph2_40 / "Readme.txt").read_text(encoding="utf-8")
    assert f"Generator version: {synthetic.PH2_GENERATOR_VERSION}\n" in readme
    assert isinstance(synthetic.PH2_GENERATOR_VERSION, int) and synthetic.PH2_GENERATOR_VERSION >= 2


def test_ph2_stratified_subsets() -> None:
    previous: list[str] = []
    for count in range(1, 201):
        ids = synthetic._stratified_ids(count)
        assert len(ids) == count and ids == sorted(ids) and set(previous) <= set(ids)
        per_class = Counter(CLASS_IDS[i] for i in ids)
        for label, share in ((0, 0.4), (1, 0.4), (2, 0.2)):
            assert abs(per_class[label] - share * count) <= 1
        if count >= 3:
            assert set(per_class) == {0, 1, 2}
        previous = ids


@pytest.mark.parametrize("count", [0, -1, 201])
def test_ph2_bad_count(tmp_path: Path, count: int) -> None:
    with pytest.raises(CourseError, match="count"):
        synthetic_ph2(tmp_path, count=count, progress=False)
    assert not any(tmp_path.iterdir())


def test_ph2_same_case_whatever_the_count(tmp_path: Path, ph2_40: Path) -> None:
    small = synthetic_ph2(tmp_path, count=6, seed=0, progress=False)
    small_ids = sorted(p.name for p in (small / "PH2 Dataset images").iterdir())
    assert len(small_ids) == 6
    for case_id in small_ids:
        for a, b in zip(_case_files(small, case_id), _case_files(ph2_40, case_id)):
            assert a.read_bytes() == b.read_bytes()
    rows_small = {r[1]: r for r in _table(small)[1]}
    rows_big = {r[1]: r for r in _table(ph2_40)[1]}
    assert all(rows_small[k] == rows_big[k] for k in rows_small)


def test_ph2_seed_changes_the_pictures(tmp_path: Path, ph2_40: Path) -> None:
    other = synthetic_ph2(tmp_path, count=3, seed=1, progress=False)
    case_ids = sorted(p.name for p in (other / "PH2 Dataset images").iterdir())
    assert Counter(CLASS_IDS[c] for c in case_ids) == {0: 1, 1: 1, 2: 1}
    for case_id in case_ids:
        a = np.asarray(Image.open(_case_files(other, case_id)[0]))
        b = np.asarray(Image.open(_case_files(ph2_40, case_id)[0]))
        assert a.shape != b.shape or not np.array_equal(a, b)


def test_ph2_never_overwrites(tmp_path: Path) -> None:
    root = synthetic_ph2(tmp_path, count=1, progress=False)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with pytest.raises(CourseError, match="another folder") as info:
        synthetic_ph2(tmp_path, count=2, progress=False)
    assert str(root) in str(info.value)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["PH2Dataset"]  # no partial folder left behind


def test_ph2_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = synthetic._write_ph2_case

    def flaky(root: Path, seed: int, case_id: str) -> dict:
        calls.append(case_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(root, seed, case_id)

    monkeypatch.setattr(synthetic, "_write_ph2_case", flaky)
    with pytest.raises(KeyboardInterrupt):
        synthetic_ph2(tmp_path, count=5, progress=False)
    assert len(calls) == 3 and list(tmp_path.iterdir()) == []


def test_bad_seed(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="seed"):
        synthetic_ph2(tmp_path, count=1, seed=-1, progress=False)
    with pytest.raises(CourseError, match="seed"):
        synthetic_mads(tmp_path, count=1, seed=-1, progress=False)


# ---------------------------------------------------------------------------------------------- MADS


def test_mads_layout(mads_30: Path) -> None:
    inner = _inner(mads_30)
    assert sorted(p.name for p in mads_30.iterdir()) == ["SYNTHETIC.md", "df.csv", MADS_INNER]
    assert "SYNTHETIC" in (mads_30 / "SYNTHETIC.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in inner.iterdir()) == ["collages", "images", "masks"]
    images = sorted(p.name for p in (inner / "images").iterdir())
    assert len(images) == 30 and images == sorted(p.name for p in (inner / "masks").iterdir())
    assert all(MADS_NAME.match(n) for n in images)
    collages = sorted((inner / "collages").iterdir())
    assert collages and all(p.suffix == ".jpg" for p in collages)
    with Image.open(collages[0]) as preview:
        assert preview.size == (1024, 384)


def test_mads_images_and_masks(mads_30: Path) -> None:
    inner = _inner(mads_30)
    for path in sorted((inner / "images").iterdir()):
        with Image.open(path) as image, Image.open(inner / "masks" / path.name) as mask:
            assert image.format == "PNG" and image.mode == "RGB" and image.size == (512, 384)
            assert mask.format == "PNG" and mask.mode == "RGBA" and mask.size == (512, 384)
            rgba = np.asarray(mask)
        assert (rgba[..., 3] == 255).all()
        assert set(np.unique(rgba[..., :3])) == {0, 255}
        assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 1] == rgba[..., 2]).all()
        assert 0.05 <= (rgba[..., 0] > 127).mean() <= 0.25


def test_mads_csv_matches_files(mads_30: Path) -> None:
    inner = _inner(mads_30)
    with open(mads_30 / "df.csv", newline="") as f:
        assert f.readline().strip() == "images,masks"
        f.seek(0)
        rows = list(csv.DictReader(f))
    assert len(rows) == 30
    for row in rows:
        assert row["images"].startswith("images/") and row["masks"] == "masks/" + row["images"][7:]
        assert (inner / row["images"]).is_file() and (inner / row["masks"]).is_file()
    assert {r["images"][7:] for r in rows} == {p.name for p in (inner / "images").iterdir()}


def test_mads_styles_sequences_and_frames(mads_30: Path) -> None:
    names = [p.name for p in (_inner(mads_30) / "images").iterdir()]
    parts = [n[:-4].split("_") for n in names]
    styles = {p[0] for p in parts}
    assert len(styles) >= 2 and styles <= set(MADS_STYLES)
    assert all(p[1].startswith(p[0]) for p in parts)
    assert len({(p[0], p[1]) for p in parts}) >= 6
    assert {p[2] for p in parts} == {"C0", "C1"}
    assert all(int(p[3]) % 30 == 0 for p in parts)


def test_mads_frames_of_a_sequence_are_near_duplicates(mads_30: Path) -> None:
    inner = _inner(mads_30)
    shots: dict[str, list[Path]] = {}
    for path in sorted((inner / "images").iterdir()):
        shots.setdefault(path.name.rsplit("_", 1)[0], []).append(path)
    pairs = [v[:2] for v in shots.values() if len(v) >= 2]
    assert pairs

    def load(p: Path) -> np.ndarray:
        return np.asarray(Image.open(p), np.float32)

    same = [np.abs(load(a) - load(b)).mean() for a, b in pairs]
    firsts = [v[0] for v in shots.values()]
    other = [np.abs(load(a) - load(b)).mean() for a, b in zip(firsts, firsts[1:])]
    assert max(same) < min(other)


def test_mads_not_trivial(mads_30: Path) -> None:
    inner = _inner(mads_30)
    for path in sorted((inner / "images").iterdir())[:8]:
        image = np.asarray(Image.open(path), np.float32)
        person = np.asarray(Image.open(inner / "masks" / path.name))[..., 0] > 127
        assert image[~person].std(0).mean() > 20  # a cluttered background, not a flat one
        rows, cols = np.nonzero(person)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert person.sum() / box < 0.6  # limbs, not a blob


def test_mads_deterministic_and_nested(tmp_path: Path, mads_30: Path) -> None:
    a = synthetic_mads(tmp_path / "a", count=6, seed=0, progress=False)
    b = synthetic_mads(tmp_path / "b", count=6, seed=1, progress=False)
    names = sorted(p.name for p in (_inner(a) / "images").iterdir())
    assert len(names) == 6 and names == sorted(p.name for p in (_inner(b) / "images").iterdir())
    for name in names:
        for kind in ("images", "masks"):
            assert (_inner(a) / kind / name).read_bytes() == (_inner(mads_30) / kind / name).read_bytes()
        assert (_inner(a) / "images" / name).read_bytes() != (_inner(b) / "images" / name).read_bytes()


def test_mads_zip(tmp_path: Path) -> None:
    path = synthetic_mads(tmp_path / "z", count=6, seed=0, progress=False, as_zip=True)
    folder = synthetic_mads(tmp_path / "f", count=6, seed=0, progress=False)
    assert path == tmp_path / "z" / "segmentation-full-body-mads-dataset.zip"
    assert [p.name for p in (tmp_path / "z").iterdir()] == [path.name]
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert "df.csv" in names and "SYNTHETIC.md" in names
        prefix = f"{MADS_INNER}/{MADS_INNER}/"
        assert all(n in ("df.csv", "SYNTHETIC.md") or n.startswith(prefix) for n in names)
        rows = list(csv.DictReader(io.TextIOWrapper(archive.open("df.csv"), encoding="utf-8")))
        assert len(rows) == 6
        for row in rows:
            for key in ("images", "masks"):
                assert archive.read(prefix + row[key]) == (_inner(folder) / row[key]).read_bytes()


def test_mads_never_overwrites(tmp_path: Path) -> None:
    synthetic_mads(tmp_path, count=1, progress=False)
    before = (tmp_path / "df.csv").read_bytes()
    with pytest.raises(CourseError, match="another folder") as info:
        synthetic_mads(tmp_path, count=2, progress=False)
    assert str(tmp_path) in str(info.value)
    assert (tmp_path / "df.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SYNTHETIC.md", "df.csv", MADS_INNER]
    synthetic_mads(tmp_path, count=1, progress=False, as_zip=True)
    with pytest.raises(CourseError, match="segmentation-full-body-mads-dataset.zip"):
        synthetic_mads(tmp_path, count=1, progress=False, as_zip=True)


@pytest.mark.parametrize("count", [0, 1193])
def test_mads_bad_count(tmp_path: Path, count: int) -> None:
    with pytest.raises(CourseError, match="count"):
        synthetic_mads(tmp_path, count=count, progress=False)
    assert not any(tmp_path.iterdir())
