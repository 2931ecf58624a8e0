"""Tests for utils.mads: finding every layout, pairing, reading masks, caching, splitting, fetching."""

from __future__ import annotations

import csv
import os
import shutil
import stat
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils import mads
from utils.errors import CourseError

INNER = mads.INNER
STYLES = ("HipHop", "Jazz", "Kata")
W, H = 48, 32  # real frames are 512 x 384; the tests only need a non-square size


def make_frames(root: Path, *, csv_file: bool = True, mask_mode: str = "RGBA", seed: int = 0) -> list[str]:
    """Write a tiny MADS in the Kaggle layout under `root` (df.csv + doubled folder); return the names."""
    rng = np.random.default_rng(seed)
    inner = root / INNER / INNER
    for sub in ("images", "masks", "collages"):
        (inner / sub).mkdir(parents=True, exist_ok=True)
    names = []
    for style in STYLES:
        for seq in (1, 2):
            for cam in ("C0", "C1"):
                for frame in (30, 60):
                    name = f"{style}_{style}{seq}_{cam}_{frame:05d}"
                    image = rng.integers(0, 90, (H, W, 3), dtype=np.uint8)
                    mask = np.zeros((H, W), np.uint8)
                    top, left = int(rng.integers(2, 10)), int(rng.integers(2, 30))
                    mask[top : top + 18, left : left + 12] = 255
                    image[mask > 0] = (220, 180, 160)
                    Image.fromarray(image).save(inner / "images" / f"{name}.png")
                    if mask_mode == "RGBA":  # white person, alpha unused (always opaque)
                        rgba = np.dstack([mask, mask, mask, np.full_like(mask, 255)])
                        Image.fromarray(rgba, "RGBA").save(inner / "masks" / f"{name}.png")
                    elif mask_mode == "RGB":
                        Image.fromarray(np.dstack([mask, mask // 2, mask // 3])).save(inner / "masks" / f"{name}.png")
                    else:
                        Image.fromarray(mask, "L").save(inner / "masks" / f"{name}.png")
                    names.append(name)
    Image.fromarray(np.zeros((H, 2 * W, 3), np.uint8)).save(inner / "collages" / "preview.jpg")
    (inner / "images" / "notes.txt").write_text("stray file", encoding="utf-8")
    if csv_file:
        with open(root / "df.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["images", "masks"])
            for n in names:
                writer.writerow([f"images/{n}.png", f"masks/{n}.png"])
    return sorted(names)


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return archive


def snapshot(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Keep caches, data and the kagglehub cache inside the test's temporary folder."""
    monkeypatch.setenv("SEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.delenv("MADS_DIR", raising=False)
    monkeypatch.setenv("SEG_OFFLINE", "1")


@pytest.fixture
def dataset(tmp_path) -> Path:
    """The folder holding df.csv and the doubled folder, as in the zip."""
    make_frames(tmp_path / "ds")
    return tmp_path / "ds"


# ------------------------------------------------------------------------------------------- finding


@pytest.mark.parametrize("level", ["df_csv_folder", "outer", "inner", "df_csv_file"])
def test_find_mads_accepts_every_folder_level(dataset, level):
    path = {
        "df_csv_folder": dataset,
        "outer": dataset / INNER,
        "inner": dataset / INNER / INNER,
        "df_csv_file": dataset / "df.csv",
    }[level]
    root = mads.find_mads(path)
    assert root == dataset / INNER / INNER
    assert len(mads.list_frames(path)) == 24


def test_find_mads_extracts_zip_beside_it_once(tmp_path, dataset):
    archive = zip_folder(dataset, tmp_path / "segmentation-full-body-mads-dataset.zip")
    root = mads.find_mads(archive)
    target = tmp_path / "segmentation-full-body-mads-dataset"
    assert root == target / INNER / INNER
    assert len(mads.list_frames(root)) == 24
    assert not list(tmp_path.glob(".mads.partial-*"))
    marker = root / "images" / "HipHop_HipHop1_C0_00030.png"
    before = marker.stat().st_mtime_ns
    assert mads.find_mads(archive) == root  # second call reuses the extraction
    assert marker.stat().st_mtime_ns == before


def test_find_mads_never_overwrites_a_user_folder_in_the_way(tmp_path, dataset):
    archive = zip_folder(dataset, tmp_path / "archive.zip")
    mine = tmp_path / "archive"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(CourseError, match="move it away") as err:
        mads.find_mads(archive)
    assert "\n" not in str(err.value)
    assert snapshot(mine) == {"thesis.txt"}
    assert (mine / "thesis.txt").read_text(encoding="utf-8") == "precious"


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs/escape.txt", "link"])
def test_zip_slip_member_refused_before_anything_is_written(tmp_path, dataset, bad):
    place = tmp_path / "downloads"
    place.mkdir()
    archive = zip_folder(dataset, place / "mads.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        if bad == "link":
            info = zipfile.ZipInfo(f"{INNER}/{INNER}/images/evil.png")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
        else:
            zf.writestr(bad, "gotcha")
    before_tmp = snapshot(tmp_path)
    with pytest.raises(CourseError, match="refusing to extract") as err:
        mads.find_mads(archive)
    assert ("evil.png" if bad == "link" else bad) in str(err.value)
    assert snapshot(tmp_path) == before_tmp  # no extraction folder, no partial folder, no escapee
    assert not (tmp_path / "escape.txt").exists() and not Path("/abs/escape.txt").exists()


def test_kagglehub_cache_shapes(tmp_path, monkeypatch):
    base = tmp_path / "kagglehub" / "datasets" / "tapakah68" / "segmentation-full-body-mads-dataset"
    make_frames(base / "versions" / "1")
    inner = base / "versions" / "1" / INNER / INNER
    assert mads.find_mads(base / "versions" / "1") == inner
    assert mads.find_mads(base) == inner  # the folder holding versions/
    assert mads.find_mads(base / "versions") == inner
    assert mads.find_mads(tmp_path / "kagglehub") == inner  # the cache itself
    assert mads.find_mads() == inner  # default search: data_dir() is empty, then the kagglehub cache


def test_default_search_prefers_data_dir_and_honours_mads_dir(tmp_path, monkeypatch):
    make_frames(tmp_path / "data" / "mads")
    assert mads.find_mads() == tmp_path / "data" / "mads" / INNER / INNER
    make_frames(tmp_path / "elsewhere")
    monkeypatch.setenv("MADS_DIR", str(tmp_path / "elsewhere" / INNER))
    assert mads.find_mads() == tmp_path / "elsewhere" / INNER / INNER


def test_not_found_is_one_line_naming_the_path(tmp_path):
    empty = tmp_path / "nothing here"
    empty.mkdir()
    with pytest.raises(CourseError) as err:
        mads.find_mads(empty)
    message = str(err.value)
    assert str(empty) in message and "\n" not in message and "MADS_DIR" in message
    text = tmp_path / "notes.txt"
    text.write_text("hello", encoding="utf-8")
    with pytest.raises(CourseError, match="neither a zip"):
        mads.find_mads(text)


# ------------------------------------------------------------------------------------------- listing


def test_list_frames_without_df_csv_ignores_collages_and_stray_files(tmp_path):
    names = make_frames(tmp_path / "ds", csv_file=False)
    frames = mads.list_frames(tmp_path / "ds")
    assert [f.name for f in frames] == names
    f = frames[0]
    assert (f.style, f.sequence, f.camera, f.frame) == ("HipHop", "HipHop1", "C0", 30)
    assert f.group == "HipHop_HipHop1"
    assert all(f.image.parent.name == "images" and f.mask.name == f.image.name for f in frames)


def test_image_without_mask_is_named(tmp_path):
    make_frames(tmp_path / "ds", csv_file=False)
    inner = tmp_path / "ds" / INNER / INNER
    (inner / "masks" / "Jazz_Jazz2_C1_00060.png").unlink()
    with pytest.raises(CourseError, match="Jazz_Jazz2_C1_00060") as err:
        mads.list_frames(inner)
    assert "\n" not in str(err.value)


def test_df_csv_row_pointing_at_missing_file_is_named(dataset):
    (dataset / INNER / INNER / "images" / "Kata_Kata1_C0_00060.png").unlink()
    with pytest.raises(CourseError, match=r"df\.csv line \d+: images 'images/Kata_Kata1_C0_00060\.png'"):
        mads.list_frames(dataset)


def test_parse_name_and_bad_name_message(tmp_path):
    parts = mads.parse_name("Taichi_Taichi_S2_C1_00630.png")
    assert parts == mads.NameParts("Taichi", "Taichi_S2", "C1", 630)
    with pytest.raises(CourseError, match=r"holiday\.png: not a MADS frame name"):
        mads.parse_name("holiday.png")
    make_frames(tmp_path / "ds", csv_file=False)
    inner = tmp_path / "ds" / INNER / INNER
    for sub in ("images", "masks"):
        shutil.copy(inner / sub / "Jazz_Jazz1_C0_00030.png", inner / sub / "IMG_0001.png")
    with pytest.raises(CourseError, match="IMG_0001.png"):
        mads.list_frames(inner)


# ------------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_masks_are_binarised_whatever_their_channels(tmp_path, mode):
    make_frames(tmp_path / "ds", mask_mode=mode)
    data = mads.load_mads(tmp_path / "ds", size=16, progress=False, cache=False)
    assert data.masks.dtype == np.uint8 and set(np.unique(data.masks)) == {0, 1}
    full = mads.read_mask(data.root / "masks" / f"{data.names[0]}.png")
    assert full.shape == (H, W) and 0.05 < full.mean() < 0.5


def test_binarize_threshold_and_alpha_only_masks():
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    assert mads.binarize_mask(grey).tolist() == [[0, 0, 1, 1]]
    rgba = np.zeros((1, 4, 4), np.uint8)
    rgba[..., 3] = 255  # opaque everywhere: the alpha carries nothing
    rgba[0, 1, 0] = 200  # a red person still counts
    assert mads.binarize_mask(rgba).tolist() == [[0, 1, 0, 0]]
    alpha_only = np.zeros((1, 3, 4), np.uint8)
    alpha_only[0, 2, 3] = 255
    assert mads.binarize_mask(alpha_only).tolist() == [[0, 0, 1]]
    sixteen = np.array([[0, 40000]], np.uint16)
    assert mads.binarize_mask(sixteen).tolist() == [[0, 1]]


def test_load_mads_shapes_names_and_sequences(dataset):
    data = mads.load_mads(dataset, size=24, progress=False)
    assert data.images.shape == (24, 24, 24, 3) and data.images.dtype == np.uint8
    assert data.masks.shape == (24, 24, 24) and data.masks.dtype == np.uint8
    assert data.names == sorted(data.names) and data.names[0] == "HipHop_HipHop1_C0_00030"
    assert data.sequences[0] == "HipHop_HipHop1" and len(set(data.sequences)) == 6
    assert data.styles[0] == "HipHop"
    # the person is bright in the image: the resized mask must still sit on it
    person = data.images[data.masks == 1].mean()
    background = data.images[data.masks == 0].mean()
    assert person > background + 60
    sub = data.take([3, 1])
    assert sub.names == [data.names[3], data.names[1]] and sub.images.shape[0] == 2


def test_limit_keeps_every_sequence(dataset):
    data = mads.load_mads(dataset, size=16, limit=7, progress=False, cache=False)
    assert len(data) == 7 and len(set(data.sequences)) == 6
    again = mads.load_mads(dataset, size=16, limit=7, progress=False, cache=False)
    assert again.names == data.names


def test_cache_is_used_and_invalidated_by_a_changed_file(dataset, tmp_path, monkeypatch):
    first = mads.load_mads(dataset, size=16, progress=False)
    cached = list((tmp_path / "data" / ".cache").glob("mads-*-16px-all-*.npz"))
    assert len(cached) == 1

    def boom(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(mads, "load_frames", boom)
    second = mads.load_mads(dataset, size=16, progress=False)
    assert np.array_equal(first.images, second.images) and np.array_equal(first.masks, second.masks)
    path = dataset / INNER / INNER / "masks" / "Jazz_Jazz1_C0_00030.png"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        mads.load_mads(dataset, size=16, progress=False)


def test_corrupt_png_is_named(dataset):
    bad = dataset / INNER / INNER / "images" / "Kata_Kata2_C1_00030.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(CourseError, match="Kata_Kata2_C1_00030.png: cannot read this image") as err:
        mads.load_mads(dataset, size=16, progress=False, cache=False)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------- splitting


def test_split_by_sequence_has_no_leakage_and_is_deterministic():
    seqs = [f"S{s}_S{s}x" for s in range(12) for _ in range(5 + s % 3)]
    split = mads.split_by_sequence(seqs, seed=3)
    assert set(split) == {"train", "val", "test"}
    joined = np.concatenate(list(split.values()))
    assert sorted(joined.tolist()) == list(range(len(seqs)))  # every frame exactly once
    sides = [{seqs[i] for i in idx} for idx in split.values()]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert all(len(s) > 0 for s in sides)
    assert 0.55 < len(split["train"]) / len(seqs) < 0.85
    again = mads.split_by_sequence(list(seqs), seed=3)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    shuffled_order = mads.split_by_sequence(list(reversed(seqs)), seed=3)
    assert {seqs[::-1][i] for i in shuffled_order["test"]} == {seqs[i] for i in split["test"]}
    others = [mads.split_by_sequence(seqs, seed=s)["test"] for s in range(6)]
    assert any(not np.array_equal(others[0], o) for o in others[1:])


def test_split_two_way_and_errors(dataset):
    data = mads.load_mads(dataset, size=16, progress=False, cache=False)
    split = mads.split_by_sequence(data, (0.8, 0.2))
    assert set(split) == {"train", "test"}
    train_seq = {data.sequences[i] for i in split["train"]}
    test_seq = {data.sequences[i] for i in split["test"]}
    assert train_seq and test_seq and not train_seq & test_seq
    with pytest.raises(CourseError, match="only 1 sequence"):
        mads.split_by_sequence(["A_A1"] * 5)
    with pytest.raises(CourseError, match="summing to 1"):
        mads.split_by_sequence(data, (0.5, 0.2))


# ------------------------------------------------------------------------------ fetching and resolving


def test_fetch_is_never_attempted_offline(monkeypatch):
    calls = []
    stub = types.SimpleNamespace(dataset_download=lambda *a, **k: calls.append(a))
    monkeypatch.setitem(sys.modules, "kagglehub", stub)
    with pytest.raises(CourseError, match="offline"):
        mads.fetch_mads()
    assert calls == []


def test_fetch_without_credentials_says_what_to_do(monkeypatch, capsys):
    monkeypatch.delenv("SEG_OFFLINE")
    monkeypatch.delenv("CI", raising=False)

    class UnauthenticatedError(Exception):
        pass

    def download(handle, **kwargs):
        raise UnauthenticatedError("User is not authenticated")

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=download))
    with pytest.raises(CourseError) as err:
        mads.fetch_mads()
    message = str(err.value)
    assert "\n" not in message and "kaggle.json" in message and "KAGGLE_USERNAME" in message
    printed = capsys.readouterr().out
    assert "CC BY-ND 4.0" in printed and "Image and Vision Computing 61:22" in printed
    assert "Colab Secrets" in printed and "Kaggle notebook" in printed and "By hand" in printed


def test_fetch_returns_the_inner_folder_of_the_download(tmp_path, monkeypatch):
    monkeypatch.delenv("SEG_OFFLINE")
    monkeypatch.delenv("CI", raising=False)
    make_frames(tmp_path / "dl" / "versions" / "2")
    seen = {}

    def download(handle, **kwargs):
        seen["handle"] = handle
        return str(tmp_path / "dl" / "versions" / "2")

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=download))
    assert mads.fetch_mads() == tmp_path / "dl" / "versions" / "2" / INNER / INNER
    assert seen["handle"] == "tapakah68/segmentation-full-body-mads-dataset"


def test_resolve_prefers_real_data(dataset, capsys):
    source = mads.resolve_mads(dataset)
    assert source.kind == "mads" and not source.is_synthetic
    assert "CC BY-ND" in capsys.readouterr().out
    with pytest.raises(CourseError):  # an explicit wrong path is never swapped for the stand-in
        mads.resolve_mads(dataset / "nope")


def test_resolve_falls_back_to_a_synthetic_stand_in(tmp_path, capsys):
    pytest.importorskip("utils.synthetic").synthetic_mads  # noqa: B018 - needs the generator
    source = mads.resolve_mads(synthetic_count=12)
    assert source.kind == "synthetic" and source.root.is_relative_to(tmp_path / "data" / "synthetic" / "mads-12")
    assert "NOT a result on MADS" in capsys.readouterr().out
    assert len(mads.list_frames(source.root)) == 12
    again = mads.resolve_mads(synthetic_count=12)  # reused, not regenerated
    assert again.root == source.root
    assert mads.describe(source.root)["kind"] == "synthetic"


def test_describe_counts_and_problems(dataset):
    info = mads.describe(dataset)
    assert info["kind"] == "mads" and info["frames"] == 24 and info["sequences"] == 6
    assert info["styles"] == {"HipHop": 8, "Jazz": 8, "Kata": 8}
    assert info["image_sizes"] == {f"{W}x{H}": 24} and info["problems"] == []
    inner = dataset / INNER / INNER
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(inner / "masks" / "Jazz_Jazz1_C0_00030.png")
    info = mads.describe(inner)
    assert any("Jazz_Jazz1_C0_00030" in p and "10x10" in p for p in info["problems"])
    (dataset / "README.txt").write_text("SYNTHETIC: generated by the course", encoding="utf-8")
    assert mads.describe(dataset)["kind"] == "synthetic"
    assert mads.resolve_mads(dataset).kind == "synthetic"
