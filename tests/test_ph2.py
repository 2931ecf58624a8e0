"""Tests for utils.ph2: finding, extracting, fetching, reading and splitting PH2 (on the synthetic stand-in)."""

from __future__ import annotations

import os
import random
import shutil
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.io import imread
from skimage.transform import resize

from utils import ph2
from utils.errors import CourseError
from utils.synthetic import PH2_GENERATOR_VERSION, synthetic_ph2

COUNT = 12  # stratified subset of the real IDs: 5 common nevi, 5 atypical nevi, 2 melanomas
SIZE = 32


# ----------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def master(tmp_path_factory) -> Path:
    """A synthetic PH2Dataset generated once; tests copy it before damaging it."""
    return synthetic_ph2(tmp_path_factory.mktemp("master"), count=COUNT, progress=False)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Keep data/, the cache, PH2_DIR and the network out of every test."""
    monkeypatch.setenv("SEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PH2_DIR", raising=False)
    monkeypatch.setenv("SEG_OFFLINE", "1")


@pytest.fixture
def root(master, tmp_path) -> Path:
    """A private copy of the synthetic PH2Dataset, safe to damage."""
    return Path(shutil.copytree(master, tmp_path / "src" / "PH2Dataset"))


def case_dir(root: Path, case_id: str) -> Path:
    return root / "PH2 Dataset images" / case_id


def image_path(root: Path, case_id: str) -> Path:
    return case_dir(root, case_id) / f"{case_id}_Dermoscopic_Image" / f"{case_id}.bmp"


def mask_path(root: Path, case_id: str) -> Path:
    return case_dir(root, case_id) / f"{case_id}_lesion" / f"{case_id}_lesion.bmp"


def zip_folder(folder: Path, archive: Path, prefix: str = "PH2Dataset") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return archive


def partial_folders(folder: Path) -> list[Path]:
    return sorted(folder.glob(".PH2Dataset.partial-*"))


def cache_files() -> list[Path]:
    return sorted((Path(os.environ["SEG_DATA_DIR"]) / ".cache").glob("*.npz"))


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------------
# find_ph2: every entry point, every bad folder


def test_find_missing_folder_names_path_and_fix(tmp_path):
    with pytest.raises(CourseError) as err:
        ph2.find_ph2(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in one_line(err)
    assert "python -m utils fetch ph2" in str(err.value)


def test_find_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"\0\0")  # hidden files do not count
    with pytest.raises(CourseError, match="is empty") as err:
        ph2.find_ph2(empty)
    assert str(empty) in one_line(err)


def test_find_folder_without_layout_says_what_was_expected(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "images").mkdir()
    with pytest.raises(CourseError) as err:
        ph2.find_ph2(tmp_path)
    message = one_line(err)
    assert "PH2 Dataset images" in message and "fetch ph2" in message


def test_find_from_parent_root_and_images_folder(root):
    assert ph2.find_ph2(root.parent) == root
    assert ph2.find_ph2(root) == root
    assert ph2.find_ph2(root / "PH2 Dataset images") == root


def test_find_tolerates_capitalised_images_folder(root):
    (root / "PH2 Dataset images").rename(root / "PH2 Dataset Images")
    assert ph2.find_ph2(root.parent) == root
    assert ph2.find_ph2(root / "PH2 Dataset Images") == root
    ids = [c.id for c in ph2.list_cases(root)]
    assert len(ids) == COUNT and ids == sorted(ids)


def test_find_uses_ph2_dir_when_no_path(root, monkeypatch):
    monkeypatch.setenv("PH2_DIR", str(root.parent))
    assert ph2.find_ph2() == root


def test_find_from_zip_extracts_beside_it_then_reuses(master, tmp_path, monkeypatch):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    archive = zip_folder(master, downloads / "PH2Dataset.zip")
    found = ph2.find_ph2(archive)
    assert found == downloads / "PH2Dataset"
    assert [c.id for c in ph2.list_cases(found)] == [c.id for c in ph2.list_cases(master)]
    assert partial_folders(downloads) == []

    def no_second_extraction(*args, **kwargs):
        raise AssertionError("extracted twice")

    monkeypatch.setattr(ph2, "extract_archive", no_second_extraction)
    assert ph2.find_ph2(archive) == found
    assert ph2.find_ph2(downloads) == found


def test_find_ignores_partial_extraction_folders(master, tmp_path):
    shutil.copytree(master, tmp_path / ".PH2Dataset.partial-abc123")
    with pytest.raises(CourseError, match="is empty"):
        ph2.find_ph2(tmp_path)


def _rar_block(head_type: int, flags: int, body: bytes, data: bytes = b"") -> bytes:
    head = struct.pack("<BHH", head_type, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head + data


def write_stored_rar(members: dict[str, bytes | None], archive: Path) -> Path:
    """Write a RAR 4 archive with stored (uncompressed) members; None marks a folder.

    Only the non-free `rar` program can create RAR archives, so the test writes this simplest form itself.
    """
    dos_time = (((2020 - 1980) << 9) | (1 << 5) | 1) << 16
    blocks = [b"Rar!\x1a\x07\x00", _rar_block(0x73, 0, bytes(6))]
    for name, data in members.items():
        raw, payload = name.encode(), data or b""
        flags = 0x8000 | (0xE0 if data is None else 0)
        attr = 0o40755 if data is None else 0o100644
        body = struct.pack("<IIBIIBBHI", len(payload), len(payload), 3, zlib.crc32(payload), dos_time, 20, 0x30, len(raw), attr)
        blocks.append(_rar_block(0x74, flags, body + raw, payload))
    blocks.append(bytes.fromhex("c43d7b00400700"))
    archive.write_bytes(b"".join(blocks))
    return archive


def rar_members(folder: Path, prefix: str = "PH2Dataset") -> dict[str, bytes | None]:
    return {
        f"{prefix}/{p.relative_to(folder).as_posix()}": (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def _missing(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, which installs everything these tests need."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must provide it (.ci/run)")
    pytest.skip(reason)


@pytest.fixture
def rar_backend():
    rarfile = pytest.importorskip("rarfile")
    try:
        rarfile.tool_setup()
    except rarfile.Error:
        _missing("no RAR backend (unrar, unar, bsdtar or 7z) on this machine; `apt-get install unar`")


# Real RAR archives, made by the `rar` program, which has no free equivalent: the course cannot make a
# PH2-shaped one, so these come from the test data of rarfile's source distribution on PyPI (.ci/run
# downloads it and names it in SEG_RAR_SAMPLES). They check what the hand-written stored archives above
# cannot: compressed and solid members in both RAR 3 and RAR 5 formats decoded by the installed backend,
# and real link members refused. The PH2 layout itself is covered by the stored archives above.
RAR_SAMPLES = "SEG_RAR_SAMPLES"


@pytest.fixture
def real_rar(tmp_path, rar_backend):
    """A function that copies one of rarfile's sample archives into tmp_path and returns its path."""
    sdist = os.environ.get(RAR_SAMPLES)
    if not sdist or not Path(sdist).is_file():
        _missing(f"no sample RAR archives: set {RAR_SAMPLES} to rarfile's sdist (`pip download --no-binary :all: --no-deps rarfile`)")

    def sample(name: str) -> Path:
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.isfile() and m.name.endswith(f"/test/files/{name}"))
            out = tmp_path / "samples" / name
            out.parent.mkdir(exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
        return out

    return sample


def _extract_real(archive: Path, dest: Path) -> dict[str, bytes]:
    """Open, check and extract a real archive the way extract_archive does; return {path: bytes}."""
    with ph2._open_rar(archive) as handle:
        members = handle.infolist()
        ph2._check_members(archive, members, "rar")
        for info in members:
            handle.extract(info, dest)
        sizes = {i.filename.rstrip("/"): i.file_size for i in members if not i.is_dir()}
    files = {p.relative_to(dest).as_posix(): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}
    assert {k: len(v) for k, v in files.items()} == sizes
    return files


# rarfile's test text: the numbers 000 to 511, one per line.
COUNTING = b"".join(b"%03d\n" % i for i in range(512))


@pytest.mark.parametrize("old,new", [("rar3-solid.rar", "rar5-solid-qo.rar"), ("rar3-subdirs.rar", "rar5-subdirs.rar")])
def test_real_rar3_and_rar5_archives_extract_to_the_same_files(real_rar, tmp_path, old, new):
    # Solid, compressed members in both formats: a backend that cannot decode them fails here. (unar 1.10
    # cannot parse rarfile's other RAR 5 solid sample, rar5-solid.rar, which claims two volumes.)
    a = _extract_real(real_rar(old), tmp_path / "rar3")
    b = _extract_real(real_rar(new), tmp_path / "rar5")
    assert a and all(b[name] == data for name, data in a.items())
    if "solid" in old:
        assert a == {"stest1.txt": COUNTING, "stest2.txt": COUNTING}


def test_real_rar_that_is_not_ph2_is_refused_and_leaves_nothing(real_rar, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(CourseError, match="not the PH2 archive"):
        ph2.extract_archive(real_rar("rar5-subdirs.rar"), dest, expected_cases=None, progress=False)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("name", ["rar3-symlink-unix.rar", "rar5-symlink-unix.rar", "rar5-hlink.rar"])
def test_real_rar_with_links_is_refused_before_extracting(real_rar, tmp_path, name):
    dest = tmp_path / "dest"
    with pytest.raises(CourseError, match="is a link; nothing was extracted"):
        ph2.extract_archive(real_rar(name), dest, expected_cases=None, progress=False)
    assert list(dest.iterdir()) == []


def test_find_from_rar_when_a_backend_exists(master, tmp_path, rar_backend):
    archive = write_stored_rar(rar_members(master), tmp_path / "PH2Dataset.rar")
    found = ph2.find_ph2(archive)
    assert found == tmp_path / "PH2Dataset"
    assert [c.id for c in ph2.list_cases(found)] == [c.id for c in ph2.list_cases(master)]
    assert image_path(found, "IMD064").read_bytes() == image_path(master, "IMD064").read_bytes()


def test_rar_member_leaving_the_target_is_refused(tmp_path, rar_backend):
    archive = write_stored_rar({"PH2Dataset/Readme.txt": b"fine", "../evil.txt": b"evil"}, tmp_path / "bad.rar")
    dest = tmp_path / "one" / "dest"
    with pytest.raises(CourseError, match="evil.txt"):
        ph2.extract_archive(archive, dest, expected_cases=None, progress=False)
    assert not (tmp_path / "one" / "evil.txt").exists() and list(dest.iterdir()) == []


def test_rar_without_backend_says_what_to_install(tmp_path, monkeypatch):
    rarfile = pytest.importorskip("rarfile")

    def no_tool(*args, **kwargs):
        raise rarfile.RarCannotExec("Cannot find working tool")

    monkeypatch.setattr(rarfile, "tool_setup", no_tool)
    archive = tmp_path / "PH2Dataset.rar"
    archive.write_bytes(b"Rar!\x1a\x07\x00" + b"\0" * 64)
    with pytest.raises(CourseError) as err:
        ph2.find_ph2(archive)
    assert "unar" in one_line(err) and str(archive) in str(err.value)
    assert not (tmp_path / "PH2Dataset").exists() and partial_folders(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# list_cases and damaged cases


def test_missing_mask_names_the_case_and_expected_path(root):
    mask_path(root, "IMD146").unlink()
    with pytest.raises(CourseError) as err:
        ph2.list_cases(root)
    assert "IMD146" in one_line(err) and "IMD146_lesion.bmp" in str(err.value)
    with pytest.raises(CourseError, match="IMD146"):
        ph2.load_ph2(root, size=SIZE, progress=False)


def test_case_folder_without_image_names_the_case(root):
    shutil.rmtree(image_path(root, "IMD278").parent)
    with pytest.raises(CourseError) as err:
        ph2.list_cases(root)
    assert "IMD278" in one_line(err) and "IMD278.bmp" in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_bmp_names_the_file(root, damage):
    target = image_path(root, "IMD160")
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a bitmap" * 50)
    with pytest.raises(CourseError) as err:
        ph2.load_ph2(root, size=SIZE, progress=False, cache=False)
    assert str(target) in one_line(err)
    assert "corrupt or truncated" in str(err.value)


def test_mask_of_another_size_names_case_and_both_sizes(root):
    with Image.open(image_path(root, "IMD367")) as im:
        width, height = im.size
    Image.new("L", (width - 5, height + 3), 255).save(mask_path(root, "IMD367"))
    with pytest.raises(CourseError) as err:
        ph2.load_ph2(root, size=SIZE, progress=False)
    message = one_line(err)
    assert "IMD367" in message
    assert f"{width}x{height}" in message and f"{width - 5}x{height + 3}" in message


def test_stray_files_are_ignored(root):
    images = root / "PH2 Dataset images"
    for junk in (".DS_Store", "Thumbs.db", "desktop.ini", "notes.txt"):
        (images / junk).write_bytes(b"junk")
        (case_dir(root, "IMD064") / junk).write_bytes(b"junk")
        (image_path(root, "IMD064").parent / junk).write_bytes(b"junk")
    (images / "__MACOSX").mkdir()
    (images / ".hidden_case").mkdir()
    data = ph2.load_ph2(root, size=SIZE, progress=False)
    assert len(data) == COUNT
    assert data.ids == sorted(data.ids) and "IMD064" in data.ids


def test_pairing_is_by_id_whatever_the_listing_order(root, monkeypatch):
    real_scandir, real_listdir = os.scandir, os.listdir
    calls = []

    class Shuffled:
        def __init__(self, path):
            with real_scandir(path) as it:
                self.entries = list(it)
            random.Random(len(calls)).shuffle(self.entries)
            calls.append(path)

        def __iter__(self):
            return iter(self.entries)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def shuffled_listdir(path="."):
        names = real_listdir(path)
        random.Random(7).shuffle(names)
        return names

    with monkeypatch.context() as m:
        m.setattr(os, "scandir", Shuffled)
        m.setattr(os, "listdir", shuffled_listdir)
        data = ph2.load_ph2(root, size=SIZE, progress=False, cache=False)
    assert calls, "the shuffled listing was not used"
    assert data.ids == sorted(data.ids)
    # each loaded pair matches its own files, read independently with scikit-image by ID, better than
    # it matches any other case's files
    expected_masks, expected_means = [], []
    for case_id in data.ids:
        mask = imread(mask_path(root, case_id)) > 127
        expected_masks.append(resize(mask.astype(float), (SIZE, SIZE), order=0, anti_aliasing=False) > 0.5)
        expected_means.append(imread(image_path(root, case_id)).reshape(-1, 3).mean(axis=0))
    agreement = np.array([[np.mean(got == want) for want in expected_masks] for got in data.masks])
    assert np.all(np.diag(agreement) > 0.98)
    assert np.array_equal(agreement.argmax(axis=1), np.arange(len(data)))
    colour_gap = np.array(
        [[np.abs(got.reshape(-1, 3).mean(axis=0) - want).max() for want in expected_means] for got in data.images]
    )
    assert np.all(np.diag(colour_gap) < 1.0)
    assert np.array_equal(colour_gap.argmin(axis=1), np.arange(len(data)))


# ----------------------------------------------------------------------------------------------
# metadata


def test_metadata_parses_blank_fields_colors_and_stops_at_legend(tmp_path):
    (tmp_path / "PH2_dataset.txt").write_text(
        "||   Name || Histological Diagnosis || Clinical Diagnosis || Asymmetry | Pigment Network | "
        "Dots/Globules | Streaks | Regression Areas | Blue-Whitish Veil ||           Colors ||\n"
        "|| IMD003 ||                        ||                  0 ||         0         |        T        "
        "|       A       |    A    |        A         |         A         ||        4  5       ||\n"
        "|| IMD058 ||              Melanoma ||                  2 ||         2 |      AT |       P |"
        "       P |       P |       P ||      1 3 4 6 ||\n"
        "|| IMD002 ||                        ||                  1 ||           |         |         |"
        "         |         |         ||               ||\n"
        "\nLegend:\n\nClinical Diagnosis:\n   0 - Common Nevus;\n|| IMD999 || x || 9 || a | b ||\n",
        encoding="utf-8",
    )
    rows = ph2.read_metadata(tmp_path)
    assert list(rows) == ["IMD003", "IMD058", "IMD002"]
    first = rows["IMD003"]
    assert (first.diagnosis, first.histological, first.asymmetry, first.colors) == (0, "", 0, (4, 5))
    assert first.criteria == {
        "pigment_network": "T",
        "dots_globules": "A",
        "streaks": "A",
        "regression_areas": "A",
        "blue_whitish_veil": "A",
    }
    melanoma = rows["IMD058"]
    assert (melanoma.diagnosis, melanoma.histological, melanoma.asymmetry) == (2, "Melanoma", 2)
    assert melanoma.criteria["pigment_network"] == "AT" and melanoma.colors == (1, 3, 4, 6)
    blank = rows["IMD002"]
    assert (blank.diagnosis, blank.asymmetry, blank.colors) == (1, None, ())
    assert set(blank.criteria.values()) == {""}


def test_metadata_of_the_stand_in_agrees_with_the_class_list(root):
    rows = ph2.read_metadata(root)
    assert len(rows) == COUNT
    assert all(ph2.CLASS_IDS[i] == info.diagnosis for i, info in rows.items())


def test_missing_metadata_loads_with_unknown_diagnosis_and_one_warning(root):
    (root / "PH2_dataset.txt").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = ph2.load_ph2(root, size=SIZE, progress=False)
    assert len(caught) == 1 and "unknown" in str(caught[0].message)
    assert len(data) == COUNT
    assert data.diagnosis.dtype == np.int8 and set(data.diagnosis.tolist()) == {-1}
    assert data.counts()["unknown"] == COUNT


def _corrupt_row(root: Path, edit) -> int:
    """Apply `edit` to the '||'-separated fields of IMD146's row; return that row's line number."""
    path = root / "PH2_dataset.txt"
    lines = path.read_text(encoding="utf-8").split("\n")
    lineno = next(k for k, line in enumerate(lines, start=1) if "IMD146" in line)
    parts = lines[lineno - 1].split("||")
    edit(parts)
    lines[lineno - 1] = "||".join(parts)
    path.write_text("\n".join(lines), encoding="utf-8")
    return lineno


def _set(parts: list[str], k: int, value: str) -> None:
    parts[k] = value


@pytest.mark.parametrize(
    "edit",
    [
        lambda parts: _set(parts, 3, "  X  "),  # the diagnosis is not a number
        lambda parts: parts.pop(2),  # a blank field lost: every later column would shift
        lambda parts: _set(parts, 4, parts[4].rsplit("|", 1)[0]),  # a criterion lost
    ],
    ids=["diagnosis", "fields", "criteria"],
)
def test_malformed_metadata_names_the_line(root, edit):
    lineno = _corrupt_row(root, edit)
    with pytest.raises(CourseError) as err:
        ph2.read_metadata(root)
    assert f"line {lineno}" in one_line(err) and "PH2_dataset.txt" in str(err.value)
    with pytest.raises(CourseError, match=f"line {lineno}"):
        ph2.load_ph2(root, size=SIZE, progress=False)


# ----------------------------------------------------------------------------------------------
# load_ph2: arrays, masks, cache, limit


def test_load_gives_uint8_images_and_strictly_binary_masks(root):
    data = ph2.load_ph2(root, size=37, progress=False, workers=2)
    assert data.images.shape == (COUNT, 37, 37, 3) and data.images.dtype == np.uint8
    assert data.masks.shape == (COUNT, 37, 37) and data.masks.dtype == np.uint8
    assert set(np.unique(data.masks).tolist()) == {0, 1}
    assert data.diagnosis.tolist() == [ph2.CLASS_IDS[i] for i in data.ids]
    assert data.counts() == {"common nevus": 5, "atypical nevus": 5, "melanoma": 2, "unknown": 0}
    assert data.root == root.resolve()
    serial = ph2.load_ph2(root, size=37, progress=False, workers=1, cache=False)
    assert np.array_equal(serial.images, data.images) and np.array_equal(serial.masks, data.masks)


def test_mask_storage_does_not_matter(root):
    before = ph2.load_ph2(root, size=SIZE, progress=False, cache=False)
    masks = {case_id: Image.open(mask_path(root, case_id)).convert("L") for case_id in ("IMD120", "IMD140", "IMD146")}
    masks["IMD120"].convert("1").save(mask_path(root, "IMD120"))  # 1-bit
    masks["IMD140"].convert("RGB").save(mask_path(root, "IMD140"))  # 3-channel
    masks["IMD146"].convert("P").save(mask_path(root, "IMD146"))  # 8-bit palette
    assert Image.open(mask_path(root, "IMD120")).mode == "1"
    after = ph2.load_ph2(root, size=SIZE, progress=False, cache=False)
    assert np.array_equal(before.masks, after.masks)
    assert set(np.unique(after.masks).tolist()) == {0, 1}


def test_second_load_comes_from_the_cache(root, monkeypatch):
    first = ph2.load_ph2(root, size=SIZE, progress=False)
    assert len(cache_files()) == 1

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(ph2, "_decode_case", must_not_decode)
    second = ph2.load_ph2(root, size=SIZE, progress=False)
    assert second.ids == first.ids
    assert np.array_equal(second.images, first.images) and np.array_equal(second.masks, first.masks)
    with pytest.raises(AssertionError, match="decoded"):  # another size is another cache entry
        ph2.load_ph2(root, size=SIZE + 1, progress=False)


def test_a_changed_file_invalidates_the_cache(root, monkeypatch):
    first = ph2.load_ph2(root, size=SIZE, progress=False)
    index = first.ids.index("IMD182")
    target = mask_path(root, "IMD182")
    Image.new("L", Image.open(target).size, 0).save(target)  # the lesion is erased
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    decoded = []
    real = ph2._decode_case
    monkeypatch.setattr(ph2, "_decode_case", lambda case, size: decoded.append(case.id) or real(case, size))
    second = ph2.load_ph2(root, size=SIZE, progress=False)
    assert len(decoded) == COUNT
    assert first.masks[index].any() and not second.masks[index].any()
    assert len(cache_files()) == 1  # the stale entry was replaced


def test_the_stand_in_version_is_part_of_the_cache_key(root, monkeypatch):
    first = ph2.load_ph2(root, size=SIZE, progress=False)
    (before,) = cache_files()
    readme = root / "Readme.txt"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace(f"Generator version: {PH2_GENERATOR_VERSION}", "Generator version: 999"), encoding="utf-8")
    assert ph2.standin_version(root) == 999  # the images, masks and table are untouched
    decoded = []
    real = ph2._decode_case
    monkeypatch.setattr(ph2, "_decode_case", lambda case, size: decoded.append(case.id) or real(case, size))
    second = ph2.load_ph2(root, size=SIZE, progress=False)
    assert len(decoded) == COUNT and np.array_equal(first.images, second.images)
    (after,) = cache_files()  # a new entry, and the one of the other version is gone
    assert after != before


def test_standin_version_is_read_from_the_readme(root):
    assert "Generator version: " in (root / "Readme.txt").read_text(encoding="utf-8")
    assert ph2.standin_version(root) == PH2_GENERATOR_VERSION
    lines = (root / "Readme.txt").read_text(encoding="utf-8").splitlines()
    (root / "Readme.txt").write_text("\n".join(line for line in lines if "version" not in line), encoding="utf-8")
    assert ph2.standin_version(root) == 1  # drawn before versions were written down
    (root / "Readme.txt").write_text("PH2 database readme", encoding="utf-8")
    assert ph2.standin_version(root) is None  # the real PH2 has no generator


def test_a_corrupt_cache_is_ignored_and_rewritten(root):
    first = ph2.load_ph2(root, size=SIZE, progress=False)
    (cache,) = cache_files()
    cache.write_bytes(b"PK\x03\x04 this is not a valid npz")
    second = ph2.load_ph2(root, size=SIZE, progress=False)
    assert np.array_equal(second.masks, first.masks)
    with np.load(cache) as z:
        assert z["images"].shape == (COUNT, SIZE, SIZE, 3)


def test_limit_gives_a_deterministic_stratified_subset(root):
    full = ph2.load_ph2(root, size=SIZE, progress=False)
    small = ph2.load_ph2(root, size=SIZE, limit=6, progress=False)
    again = ph2.load_ph2(root, size=SIZE, limit=6, progress=False, cache=False)
    assert small.ids == again.ids and small.ids == sorted(small.ids) and set(small.ids) <= set(full.ids)
    assert len(small) == 6
    counts = small.counts()
    assert counts["common nevus"] >= 2 and counts["atypical nevus"] >= 2 and counts["melanoma"] >= 1
    for i, case_id in enumerate(small.ids):
        assert np.array_equal(small.masks[i], full.masks[full.ids.index(case_id)])
    assert len(ph2.load_ph2(root, size=SIZE, limit=100, progress=False)) == COUNT
    with pytest.raises(CourseError, match="limit"):
        ph2.load_ph2(root, size=SIZE, limit=0, progress=False)


def test_subset_and_source_argument(root):
    data = ph2.load_ph2(ph2.Source(root, "synthetic"), size=SIZE, progress=False)
    part = data.subset([3, 0])
    assert part.ids == [data.ids[3], data.ids[0]] and len(part) == 2
    assert np.array_equal(part.images[1], data.images[0])
    assert sum(part.counts().values()) == 2
    assert len(data.subset(data.diagnosis == 2)) == 2
    with pytest.raises(CourseError, match="size"):
        ph2.load_ph2(root, size=0, progress=False)


# ----------------------------------------------------------------------------------------------
# split_indices


def fake_data(ids: list[str], diagnosis: list[int]) -> ph2.PH2Data:
    n = len(ids)
    return ph2.PH2Data(
        ids=list(ids),
        images=np.zeros((n, 1, 1, 3), np.uint8),
        masks=np.zeros((n, 1, 1), np.uint8),
        diagnosis=np.array(diagnosis, np.int8),
        root=Path("."),
    )


def test_split_of_the_real_200_is_140_20_40_and_stratified():
    data = fake_data(list(ph2.CLASS_IDS), list(ph2.CLASS_IDS.values()))
    split = ph2.split_indices(data)
    assert {k: len(v) for k, v in split.items()} == {"train": 140, "val": 20, "test": 40}
    expected = {"train": [56, 56, 28], "val": [8, 8, 4], "test": [16, 16, 8]}
    for name, idx in split.items():
        assert np.all(np.diff(idx) > 0), "indices are sorted"
        assert np.bincount(data.diagnosis[idx], minlength=3).tolist() == expected[name]
    everything = np.concatenate(list(split.values()))
    assert sorted(everything.tolist()) == list(range(200))  # disjoint and covering
    again = ph2.split_indices(data)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    other = ph2.split_indices(data, seed=1)
    assert not np.array_equal(split["test"], other["test"])


def test_split_does_not_depend_on_the_order_of_the_cases():
    data = fake_data(list(ph2.CLASS_IDS), list(ph2.CLASS_IDS.values()))
    perm = np.random.default_rng(5).permutation(len(data))
    shuffled = data.subset(perm)
    a = ph2.split_indices(data, seed=3)
    b = ph2.split_indices(shuffled, seed=3)
    for name in ("train", "val", "test"):
        assert {data.ids[i] for i in a[name]} == {shuffled.ids[i] for i in b[name]}


def test_split_small_and_unknown_cases():
    tiny = fake_data(["IMD002", "IMD003", "IMD004"], [1, 0, 1])
    split = ph2.split_indices(tiny)
    assert all(len(v) == 1 for v in split.values())
    mixed = fake_data([f"IMD{n:03d}" for n in range(2, 22)], [0] * 10 + [-1] * 10)
    split = ph2.split_indices(mixed, fractions=(0.6, 0.2, 0.2))
    for name, size in (("train", 12), ("val", 4), ("test", 4)):
        assert len(split[name]) == size
        assert np.count_nonzero(mixed.diagnosis[split[name]] == -1) == size // 2  # unknown is a stratum
    with pytest.raises(CourseError, match="fractions"):
        ph2.split_indices(mixed, fractions=(0.5, 0.1, 0.1))


# ----------------------------------------------------------------------------------------------
# extract_archive and fetch_ph2


@pytest.mark.parametrize(
    "member",
    ["../evil.txt", "PH2Dataset/../../evil.txt", "/tmp/evil-absolute.txt", "C:/evil.txt", "link"],
)
def test_archive_members_leaving_the_target_are_refused(tmp_path, member):
    archive = tmp_path / "in" / "PH2Dataset.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("PH2Dataset/Readme.txt", "fine")
        if member == "link":
            info = zipfile.ZipInfo("PH2Dataset/link")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "../../outside")
        else:
            zf.writestr(member, "evil")
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(CourseError) as err:
        ph2.extract_archive(archive, dest, expected_cases=None, progress=False)
    assert repr("PH2Dataset/link" if member == "link" else member) in one_line(err)
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/evil-absolute.txt").exists()
    assert not (dest / "PH2Dataset").exists() and partial_folders(dest) == []


def test_interrupted_extraction_leaves_nothing_behind(master, tmp_path, monkeypatch):
    archive = zip_folder(master, tmp_path / "PH2Dataset.zip")
    dest = tmp_path / "dest"
    real_extract = zipfile.ZipFile.extract
    done = []

    def extract_then_interrupt(self, member, path=None, pwd=None):
        if len(done) == 10:
            raise KeyboardInterrupt
        done.append(member)
        return real_extract(self, member, path, pwd)

    with monkeypatch.context() as m:
        m.setattr(zipfile.ZipFile, "extract", extract_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            ph2.extract_archive(archive, dest, expected_cases=COUNT, progress=False)
    assert len(done) == 10
    assert not (dest / "PH2Dataset").exists()
    assert partial_folders(dest) == [] and list(dest.iterdir()) == []
    root = ph2.extract_archive(archive, dest, expected_cases=COUNT, progress=False)  # a retry works
    assert len(ph2.list_cases(root)) == COUNT


def test_extraction_validates_the_case_count_and_never_overwrites(master, tmp_path):
    archive = zip_folder(master, tmp_path / "PH2Dataset.zip")
    dest = tmp_path / "dest"
    with pytest.raises(CourseError, match=f"holds {COUNT} cases, expected 200"):
        ph2.extract_archive(archive, dest, progress=False)
    assert not (dest / "PH2Dataset").exists() and partial_folders(dest) == []
    (dest / "PH2Dataset").mkdir()
    (dest / "PH2Dataset" / "mine.txt").write_text("a user's file")
    with pytest.raises(CourseError, match="never overwritten"):
        ph2.extract_archive(archive, dest, expected_cases=COUNT, progress=False)
    assert (dest / "PH2Dataset" / "mine.txt").read_text() == "a user's file"


def _fake_retrieve(payload: bytes | Path, calls: list):
    def retrieve(url, known_hash=None, fname=None, path=None, progressbar=False):
        calls.append(url)
        target = Path(path) / fname
        if isinstance(payload, Path):
            shutil.copyfile(payload, target)
        else:
            target.write_bytes(payload)
        return str(target)

    return retrieve


def test_fetch_detects_a_web_page_instead_of_the_archive(tmp_path, monkeypatch):
    import pooch

    calls = []
    page = b"\n  <!DOCTYPE html><html><body>Dropbox - sign in</body></html>"
    monkeypatch.setattr(pooch, "retrieve", _fake_retrieve(page, calls))
    urls = ["https://mirror-one.invalid/PH2Dataset.rar?dl=1", "https://mirror-two.invalid/PH2Dataset.rar"]
    with pytest.raises(CourseError) as err:
        ph2.fetch_ph2(tmp_path / "data", urls=urls, progress=False)
    message = one_line(err)
    assert calls == urls
    assert "web page" in message and urls[0] in message and urls[1] in message
    assert "by hand" in message
    assert not (tmp_path / "data" / "PH2Dataset").exists()
    assert not (tmp_path / "data" / "PH2Dataset.rar").exists()  # our own bad download is not kept
    (tmp_path / "page.rar").write_bytes(page)
    with pytest.raises(CourseError, match="web page"):
        ph2.find_ph2(tmp_path / "page.rar")


def test_fetch_extracts_a_good_download_and_prints_the_terms(master, tmp_path, monkeypatch, capsys):
    import pooch

    archive = zip_folder(master, tmp_path / "mirror.zip")
    calls = []
    monkeypatch.setattr(pooch, "retrieve", _fake_retrieve(archive, calls))
    root = ph2.fetch_ph2(tmp_path / "data", urls=["https://mirror.invalid/PH2Dataset.zip"], expected_cases=COUNT)
    assert root == tmp_path / "data" / "PH2Dataset" and len(ph2.list_cases(root)) == COUNT
    out = capsys.readouterr().out
    assert "Mendonça" in out and "research and educational use only" in out
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: pytest.fail("downloaded over an existing copy"))
    assert ph2.fetch_ph2(tmp_path / "data", expected_cases=COUNT) == root
    assert len(calls) == 1


# ----------------------------------------------------------------------------------------------
# resolve_ph2 and describe


def test_resolve_falls_back_to_the_synthetic_stand_in(master, monkeypatch, capsys):
    home = Path(os.environ["SEG_DATA_DIR"])
    shutil.copytree(master, home / "synthetic" / "PH2Dataset")  # as if generated by an earlier run
    import utils.synthetic

    monkeypatch.setattr(utils.synthetic, "synthetic_ph2", lambda *a, **k: pytest.fail("regenerated"))
    source = ph2.resolve_ph2()
    assert source == ph2.Source(home / "synthetic" / "PH2Dataset", "synthetic")
    out = capsys.readouterr().out
    assert "PH2 NOT FOUND" in out and "NOT results on PH2" in out and "fetch ph2" in out


def test_resolve_generates_the_stand_in_on_first_use(monkeypatch):
    import utils.synthetic

    made = []
    real = utils.synthetic.synthetic_ph2
    monkeypatch.setattr(
        utils.synthetic, "synthetic_ph2", lambda dest, count, **k: made.append(count) or real(dest, count, progress=False)
    )
    source = ph2.resolve_ph2(synthetic_count=3)
    assert source.kind == "synthetic" and made == [3]
    assert len(ph2.list_cases(source.root)) == 3
    assert ph2.resolve_ph2(synthetic_count=3).root == source.root and made == [3]


def test_resolve_redraws_a_stand_in_of_an_older_generator(master, monkeypatch, capsys):
    import utils.synthetic

    target = Path(os.environ["SEG_DATA_DIR"]) / "synthetic" / "PH2Dataset"
    shutil.copytree(master, target)
    readme = target / "Readme.txt"
    readme.write_text(readme.read_text(encoding="utf-8").replace("Generator version:", "(was) version:"), encoding="utf-8")
    assert ph2.standin_version(target) == 1
    made = []
    real = utils.synthetic.synthetic_ph2
    monkeypatch.setattr(
        utils.synthetic, "synthetic_ph2", lambda dest, count, **k: made.append(count) or real(dest, count, progress=False)
    )
    source = ph2.resolve_ph2(synthetic_count=3)
    assert source == ph2.Source(target, "synthetic") and made == [3]
    assert ph2.standin_version(target) == PH2_GENERATOR_VERSION and len(ph2.list_cases(target)) == 3
    assert [p.name for p in target.parent.iterdir()] == ["PH2Dataset"]  # the old one is gone, nothing left over
    assert f"version 1 of the stand-in's generator: drawing version {PH2_GENERATOR_VERSION}" in capsys.readouterr().out


def test_resolve_uses_the_stand_in_of_a_process_that_won_the_race(master, monkeypatch):
    import utils.synthetic

    target = Path(os.environ["SEG_DATA_DIR"]) / "synthetic" / "PH2Dataset"

    def lose_the_race(dest, count, **kwargs):
        shutil.copytree(master, target)  # the other process finished first
        raise CourseError(f"{target} already exists and is never overwritten")

    monkeypatch.setattr(utils.synthetic, "synthetic_ph2", lose_the_race)
    assert ph2.resolve_ph2(synthetic_count=COUNT) == ph2.Source(target, "synthetic")


def test_resolve_prefers_the_real_data_and_reports_download_failures(root, monkeypatch, capsys):
    (root / "Readme.txt").write_text("PH2 database readme")  # no longer marked SYNTHETIC
    monkeypatch.setattr(ph2, "_terms_shown", False)
    assert ph2.resolve_ph2(root.parent) == ph2.Source(root, "ph2")
    assert "Mendonça" in capsys.readouterr().out
    monkeypatch.setenv("PH2_DIR", str(root))
    assert ph2.resolve_ph2().kind == "ph2"
    with pytest.raises(CourseError, match="does not exist"):
        ph2.resolve_ph2(root.parent / "typo")  # an explicit path never falls back silently
    monkeypatch.delenv("PH2_DIR")

    def failing_fetch(*args, **kwargs):
        raise CourseError("mirror down")

    monkeypatch.setattr(ph2, "fetch_ph2", failing_fetch)
    monkeypatch.setattr(ph2, "_synthetic_root", lambda count: root)
    with pytest.warns(UserWarning, match="mirror down"):
        assert ph2.resolve_ph2(allow_download=True).root == root


def test_describe_reports_counts_sizes_and_problems(root):
    info = ph2.describe(root)
    assert info["kind"] == "synthetic" and info["cases"] == COUNT and info["problems"] == []
    assert info["per_class"] == {"common nevus": 5, "atypical nevus": 5, "melanoma": 2, "unknown": 0}
    min_w, max_w, min_h, max_h = info["image_sizes"]
    assert 761 <= min_w <= max_w <= 769 and 553 <= min_h <= max_h <= 577
    mask_path(root, "IMD146").unlink()
    target = image_path(root, "IMD160")
    target.write_bytes(target.read_bytes()[:5000])
    problems = " ".join(ph2.describe(root)["problems"])
    assert "IMD146" in problems and str(target) in problems
