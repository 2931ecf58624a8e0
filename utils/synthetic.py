"""Synthetic stand-ins for PH2 and MADS, written in exactly the real datasets' on-disk layouts.

The real datasets may not be redistributed, so the course's loading code is tested and demonstrated
on these. The PH2 pictures are drawn to be about as hard to segment as real dermoscopy (calibrated by
measurement, see benchmarks/results.md): atypical nevi that fade into the skin, hairs across the border,
lesions reaching into the dark vignette or filling the frame, variegated melanomas with whitish
regression areas, an irregular pigment network, glare, air bubbles and rulers. MADS: articulated
people over cluttered rooms. Every PH2 case is drawn from its own random generator, derived from `seed` and the
case ID, so a case comes out identical whatever `count` is; likewise every MADS frame.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage, spatial
from skimage import draw
from tqdm.auto import tqdm

from utils.course import say
from utils.errors import CourseError
from utils.ph2 import CLASS_IDS

PH2_FOLDER = "PH2Dataset"
PH2_IMAGES = "PH2 Dataset images"
PH2_HEADER = (
    "||   Name || Histological Diagnosis || Clinical Diagnosis || Asymmetry | Pigment Network "
    "| Dots/Globules | Streaks | Regression Areas | Blue-Whitish Veil ||           Colors ||"
)

MADS_INNER = "segmentation_full_body_mads_dataset_1192_img"
MADS_ZIP = "segmentation-full-body-mads-dataset.zip"
MADS_STYLES = ("HipHop", "Jazz", "Kata", "Taichi", "Sports")
MADS_SIZE = (512, 384)  # width, height
MADS_MAX = 1192

#: Version of the PH2 stand-in's drawing. It is written into the stand-in's Readme.txt, and the loader puts
#: it into its cache key and every metrics report, so results on different stand-ins are never mixed up.
#: Raise it whenever a change to the drawing changes the pictures.
PH2_GENERATOR_VERSION = 2

_PH2_TAG = 2013  # separates the PH2 and MADS random streams drawn from one seed
_MADS_TAG = 2017

_BILINEAR = Image.Resampling.BILINEAR
_BICUBIC = Image.Resampling.BICUBIC
_NEAREST = Image.Resampling.NEAREST


# ----------------------------------------------------------------------------------------------
# shared helpers


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise CourseError(say(f"seed must be a non-negative integer, got {seed!r}: pass e.g. seed=0",
                              f"seed debe ser un entero no negativo, no {seed!r}: pasa, por ejemplo, seed=0"))
    return int(seed)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def _resize(arr: np.ndarray, width: int, height: int, resample: Image.Resampling = _BILINEAR) -> np.ndarray:
    """Resize a float32 (H, W) field or a uint8 image with Pillow (fast, no dtype surprises)."""
    if arr.dtype != np.uint8:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    return np.asarray(Image.fromarray(arr).resize((width, height), resample))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> np.ndarray:
    """Return smooth noise of unit standard deviation with about `cells` blobs along the long side."""
    h, w = shape
    side = max(h, w)
    gh = max(2, round(cells * h / side)) + 3
    gw = max(2, round(cells * w / side)) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    out = _resize(grid, w, h, _BICUBIC)
    return (out - out.mean()) / (out.std() + 1e-6)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _prepare_dest(dest: str | Path) -> Path:
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise CourseError(say(f"{dest} is a file, not a folder: pass a folder to write the synthetic data into",
                              f"{dest} es un archivo, no una carpeta: pasa una carpeta donde escribir los datos sintéticos"))
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(say(f"cannot create {dest} ({err.strerror}): pass a folder you can write to",
                              f"no se puede crear {dest} ({err.strerror}): pasa una carpeta en la que puedas escribir")) from err
    return dest


def _refuse_existing(path: Path) -> None:
    if path.exists():
        raise CourseError(say(
            f"{path} already exists and is never overwritten: delete it or write the synthetic data "
            "into another folder",
            f"{path} ya existe y nunca se sobrescribe: bórralo o escribe los datos sintéticos en otra carpeta",
        ))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def _partial_dir(dest: Path, name: str) -> Iterator[Path]:
    """Yield a fresh hidden temporary folder inside `dest`; remove it if anything goes wrong."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=dest))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the dataset should not be
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # empty once its contents were moved into place


def _move_into_place(src: Path, target: Path) -> None:
    _refuse_existing(target)  # someone may have created it while we were drawing
    os.replace(src, target)


# ----------------------------------------------------------------------------------------------
# PH2

# Colour codes of PH2_dataset.txt and the RGB each is drawn with (before per-case jitter).
_PH2_COLOURS = {
    1: (222, 212, 214),  # white (regression)
    2: (186, 72, 78),  # red
    3: (178, 112, 76),  # light brown
    4: (104, 62, 44),  # dark brown
    5: (104, 116, 142),  # blue-gray
    6: (44, 34, 36),  # black
}
# How hard the stand-in is, set by measurement (benchmarks/results.md, "Synthetic PH2 stand-in: calibration"):
# the share of lesions, per class (common nevus, atypical nevus, melanoma), that fill most of the frame
# and that fade into the skin; the contrast of those faint lesions; how far, in units of the lesion's
# radius, an annotator's border strays from the visible rim (a standard deviation); and the least
# difference between a lesion and the skin, so that a faint lesion is hard to outline, not unseen.
_LARGE_SHARE = (0.04, 0.08, 0.15)
_FAINT_SHARE = (0.1, 0.25, 0.05)
_FAINT_CONTRAST = (0.45, 0.65)
_ANNOTATOR_SPREAD = 0.035
_MIN_CONTRAST = 20.0  # grey levels (largest channel) between a lesion and the skin, on average, at the least

_SKIN_TONES = (
    (226, 176, 156),
    (232, 188, 170),
    (214, 156, 134),
    (236, 198, 184),
    (204, 146, 122),
    (220, 168, 140),
    (198, 136, 118),
)

_PH2_LEGEND = """\
Legend:

Clinical Diagnosis:
   0 - Common Nevus;
   1 - Atypical Nevus;
   2 - Melanoma.

Asymmetry:
   0 - Fully Symmetric;
   1 - Symmetric in 1 axis;
   2 - Fully Asymmetric.

Pigment Network, Dots/Globules, Streaks, Regression Areas and Blue-Whitish Veil:
   A - Absent;
   AT - Atypical;
   P - Present;
   T - Typical.

Colors:
   1 - White;
   2 - Red;
   3 - Light-Brown;
   4 - Dark-Brown;
   5 - Blue-Gray;
   6 - Black.

SYNTHETIC: this table was generated by the course's utils.synthetic module, not taken from PH2.
"""

_PH2_README = """\
SYNTHETIC PH2-LIKE DATA - NOT THE PH2 DATASET
Generator version: {version}

This folder was generated by the semantic segmentation course (utils/synthetic.py,
function synthetic_ph2) with seed {seed}. It imitates the on-disk layout of the PH2
dermoscopic image database so that the course's loading code can be tested and
demonstrated without the real data. The images are drawn by a program: they are not
photographs of skin and carry no medical meaning. The case IDs and their clinical
classes are those of the real database; everything else is invented.

The real database: T. Mendonca, P. M. Ferreira, J. Marques, A. R. S. Marcal,
J. Rozeira, "PH2 - A dermoscopic image database for research and benchmarking",
EMBC 2013. https://www.fc.up.pt/addi/ph2%20database.html
"""


def _ph2_order() -> list[str]:
    """Return all 200 real IDs in a fixed order that keeps every prefix stratified by class."""
    shuffler = np.random.default_rng(_PH2_TAG)
    keyed = []
    for label in (0, 1, 2):
        ids = sorted(i for i, c in CLASS_IDS.items() if c == label)
        ids = [ids[k] for k in shuffler.permutation(len(ids))]
        keyed += [((rank + 0.5) / len(ids), label, case) for rank, case in enumerate(ids)]
    return [case for _, _, case in sorted(keyed)]


def _stratified_ids(count: int) -> list[str]:
    """Return `count` real PH2 IDs, sorted, keeping the class proportions (nested as count grows)."""
    if (
        isinstance(count, bool)
        or not isinstance(count, (int, np.integer))
        or not 1 <= count <= len(CLASS_IDS)
    ):
        raise CourseError(say(
            f"count must be between 1 and {len(CLASS_IDS)} (PH2 has {len(CLASS_IDS)} cases), got {count!r}",
            f"count debe estar entre 1 y {len(CLASS_IDS)} (PH2 tiene {len(CLASS_IDS)} casos), no {count!r}",
        ))
    return sorted(_ph2_order()[: int(count)])


def _choice(rng: np.random.Generator, options: tuple[str, ...], probs: tuple[float, ...]) -> str:
    return options[int(rng.choice(len(options), p=np.asarray(probs) / sum(probs)))]


def _ph2_findings(rng: np.random.Generator, label: int) -> dict:
    """Draw the table's findings for one case; the picture is then drawn to agree with them."""
    asym = int(rng.choice(3, p=((0.8, 0.15, 0.05), (0.3, 0.45, 0.25), (0.05, 0.25, 0.7))[label]))
    network = _choice(rng, ("T", "AT", "A"), ((0.85, 0.05, 0.1), (0.5, 0.45, 0.05), (0.15, 0.75, 0.1))[label])
    dots = _choice(rng, ("A", "T", "AT"), ((0.6, 0.35, 0.05), (0.4, 0.25, 0.35), (0.3, 0.1, 0.6))[label])
    streaks = _choice(rng, ("A", "P"), ((0.97, 0.03), (0.9, 0.1), (0.55, 0.45))[label])
    regression = _choice(rng, ("A", "P"), ((0.97, 0.03), (0.85, 0.15), (0.4, 0.6))[label])
    veil = _choice(rng, ("A", "P"), ((0.99, 0.01), (0.9, 0.1), (0.3, 0.7))[label])
    if label == 0:
        colours = [(3,), (4,), (3, 4)][int(rng.choice(3, p=(0.35, 0.2, 0.45)))]
        colours = set(colours)
    elif label == 1:
        colours = {3, 4}
        if rng.random() < 0.1:
            colours.add(6)
        if rng.random() < 0.1:
            colours.add(2)
    else:
        colours = {4}
        if rng.random() < 0.8:
            colours.add(3)
        if rng.random() < 0.7:
            colours.add(6)
        if rng.random() < 0.4:
            colours.add(2)
    if veil == "P":
        colours.add(5)
    if regression == "P":
        colours.add(1)
    if label == 2:
        histology = "Melanoma" if rng.random() < 0.88 else ""
    elif label == 1:
        histology = "Dysplastic Nevus" if rng.random() < 0.08 else ""
    else:
        histology = "Intradermal Nevus" if rng.random() < 0.03 else ""
    return {
        "histology": histology,
        "label": label,
        "criteria": (network, dots, streaks, regression, veil),
        "asymmetry": asym,
        "colours": tuple(sorted(colours)),
    }


def _ph2_row(case_id: str, f: dict) -> str:
    criteria = " |".join(f"{c:>8}" for c in f["criteria"])
    colours = " ".join(str(c) for c in f["colours"])
    return (
        f"|| {case_id} || {f['histology']:<22} || {f['label']:>18} || {f['asymmetry']:>9} |"
        f"{criteria} || {colours:>10} ||"
    )


def _ph2_case_findings(seed: int, case_id: str) -> dict:
    """Return one case's table findings without drawing it (the same draw `_ph2_case` starts with)."""
    return _ph2_findings(_rng(seed, _PH2_TAG, int(case_id[3:])), CLASS_IDS[case_id])


def _ph2_scene(rng: np.random.Generator, label: int) -> dict:
    """Draw which of dermoscopy's difficulties one case shows (drawn right after its table findings)."""
    return {
        "large": bool(rng.random() < _LARGE_SHARE[label]),  # fills most of the frame
        "faint": bool(rng.random() < _FAINT_SHARE[label]),  # low contrast, fading into the skin
        "off_centre": bool(rng.random() < 0.15),  # reaches into the dark vignette or off the picture
        "hair": _choice(rng, ("none", "few", "dense"), (0.55, 0.33, 0.12)),
        "bubbles": bool(rng.random() < 0.2),  # air bubbles in the immersion gel
        "glare": bool(rng.random() < 0.3),  # specular highlights
        "ruler": bool(rng.random() < 0.12),  # a scale mark on the lens or the skin
        "blur": bool(rng.random() < 0.15),  # slightly out of focus
        "satellite": bool(rng.random() < 0.1),  # another pigmented spot beside the lesion, not in the mask
        "vignette": _choice(rng, ("normal", "strong", "none"), (0.7, 0.18, 0.12)),
    }


def _ph2_case_scene(seed: int, case_id: str) -> tuple[dict, dict]:
    """Return one case's table findings and scene without drawing it (the draws `_ph2_case` starts with)."""
    rng = _rng(seed, _PH2_TAG, int(case_id[3:]))
    findings = _ph2_findings(rng, CLASS_IDS[case_id])
    return findings, _ph2_scene(rng, CLASS_IDS[case_id])


def _lesion_field(
    rng: np.random.Generator, findings: dict, scene: dict, h: int, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Return the lesion's shape field (lesion where < 1, one piece without holes), its polar u, v and area."""
    label = findings["label"]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if scene["large"]:
        area = float(rng.uniform(0.5, 0.8))
    else:
        area = float(rng.uniform(*((0.08, 0.22), (0.12, 0.32), (0.16, 0.42))[label]))
    aspect = float(rng.uniform(1.0, (1.3, 1.5, 1.7)[label]))
    semi = math.sqrt(area * h * w / math.pi)
    a, b = semi * math.sqrt(aspect), semi / math.sqrt(aspect)
    cx = w / 2 + float(rng.normal(0, 0.05 * w))
    cy = h / 2 + float(rng.normal(0, 0.05 * h))
    if scene["off_centre"]:
        away = float(rng.uniform(0, 2 * np.pi))
        cx += math.cos(away) * float(rng.uniform(0.15, 0.3)) * w
        cy += math.sin(away) * float(rng.uniform(0.15, 0.3)) * h
    angle = float(rng.uniform(0, np.pi))
    dx, dy = xx - cx, yy - cy
    u = (dx * math.cos(angle) + dy * math.sin(angle)) / a
    v = (-dx * math.sin(angle) + dy * math.cos(angle)) / b
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)
    irregular = (0.04, 0.08, 0.13)[label] * (0.7 + 0.3 * findings["asymmetry"])
    radius = np.ones_like(rho)
    for k in range(2, 8):
        radius += (
            irregular
            * float(rng.uniform(0.3, 1.0))
            / k**0.7
            * np.cos(k * theta + float(rng.uniform(0, 2 * np.pi)))
        )
    if findings["criteria"][2] == "P":  # streaks: a finely spiked border
        for k in rng.integers(11, 22, size=2):
            radius += 0.03 * np.cos(k * theta + float(rng.uniform(0, 2 * np.pi)))
    field = rho / radius + (0.03, 0.06, 0.1)[label] * _smooth_noise(rng, (h, w), 7)
    field = field + (0.015, 0.03, 0.05)[label] * _smooth_noise(rng, (h, w), 18)
    cut = np.partition(field.ravel(), int(area * field.size))[int(area * field.size)]
    field /= cut  # exactly `area` of the picture lies inside (field < 1)
    eight = np.ones((3, 3), bool)
    margin = 0.3
    halo = field < 1 + margin  # one lesion: stray islands go, with the soft rim around them
    parts, n_parts = ndimage.label(halo, structure=eight)
    if n_parts > 1:
        sizes = np.bincount(parts.ravel(), weights=(field < 1).ravel())
        sizes[0] = -1
        field = np.where(halo & (parts != sizes.argmax()), 1 + margin, field)
    for attempt in range(4):  # one lesion: lift stray islands and sink holes, smoothly
        inside = field < 1.0
        parts, n_parts = ndimage.label(inside, structure=eight)
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        main = parts == sizes.argmax()
        islands = inside & ~main
        holes = ndimage.binary_fill_holes(main) & ~main
        if not (islands.any() or holes.any()):
            break
        if attempt == 3:
            field = np.where(islands, 1.0 + 1e-3, np.where(holes, 1.0 - 1e-3, field))
            break
        need = np.where(islands, 1.15 - field, np.where(holes, 0.85 - field, 0))
        lift = ndimage.gaussian_filter(ndimage.grey_dilation(np.maximum(need, 0), size=9), 3.0)
        sink = ndimage.gaussian_filter(ndimage.grey_dilation(np.maximum(-need, 0), size=9), 3.0)
        field = field + lift - sink
    return field.astype(np.float32), u, v, rho, area


def _blob(
    rng: np.random.Generator, shape: tuple[int, int], centre: tuple[float, float], radius: float
) -> np.ndarray:
    """Return a soft, irregular blob in [0, 1] of about `radius` pixels around `centre` (row, col)."""
    h, w = shape
    r0, c0 = max(0, int(centre[0] - 2 * radius)), max(0, int(centre[1] - 2 * radius))
    r1, c1 = min(h, int(centre[0] + 2 * radius) + 1), min(w, int(centre[1] + 2 * radius) + 1)
    out = np.zeros(shape, np.float32)
    if r0 >= r1 or c0 >= c1:
        return out
    ys, xs = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    wobble = 1 + 0.25 * _smooth_noise(rng, (r1 - r0, c1 - c0), 4)
    dist = np.hypot(ys - centre[0], xs - centre[1]) / (radius * wobble)
    out[r0:r1, c0:c1] = _smoothstep((1.0 - dist) / 0.4)
    return out


def _network(rng: np.random.Generator, where: np.ndarray, kind: str) -> np.ndarray:
    """Return a pigment network in [0, 1] over `where`: the borders of Voronoi cells around random points.

    The points are scattered at random, so the mesh is irregular and has no period (unlike a lattice).
    """
    h, w = where.shape
    spacing = float(rng.uniform(4.5, 6.5) if kind == "T" else rng.uniform(5.0, 8.5))
    points = rng.uniform((0, 0), (h, w), (int(h * w / spacing**2), 2))
    rows, cols = np.nonzero(where)
    warp = (0.6 if kind == "T" else 1.8) * spacing / 4
    at = np.stack(
        [
            rows + warp * _smooth_noise(rng, (h, w), 12)[where],
            cols + warp * _smooth_noise(rng, (h, w), 12)[where],
        ],
        -1,
    )
    dist, _ = spatial.cKDTree(points).query(at, k=2, workers=-1)
    width = (1.0 if kind == "T" else 1.6) * (1 + 0.3 * _smooth_noise(rng, (h, w), 10)[where])
    lines = np.zeros((h, w), np.float32)
    lines[where] = np.exp(
        -(((dist[:, 1] - dist[:, 0]) / np.maximum(width, 0.3)) ** 2)
    )  # 0 gap: a cell border
    lines = ndimage.gaussian_filter(lines, 0.6)
    if kind == "AT":  # atypical: thick and dark in places, broken off in others
        lines *= _smoothstep(0.5 + 0.8 * _smooth_noise(rng, (h, w), 8))
    return lines


def _ph2_case(seed: int, case_id: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]], dict]:
    """Draw one case: RGB image, 0/255 mask, per-colour region masks (if any) and the table findings."""
    label = CLASS_IDS[case_id]
    rng = _rng(seed, _PH2_TAG, int(case_id[3:]))
    findings = _ph2_findings(rng, label)
    scene = _ph2_scene(rng, label)

    def uni(low: float, high: float) -> float:  # Python floats keep the float32 arrays float32
        return float(rng.uniform(low, high))

    def nrm(scale: float) -> float:
        return float(rng.normal(0, scale))

    width, height = int(rng.integers(761, 770)), int(rng.integers(553, 578))
    h, w = (height + 1) // 2, (width + 1) // 2  # the picture is drawn at half resolution
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field, u, v, rho, area = _lesion_field(rng, findings, scene, h, w)
    inside = field < 1.0

    # --- how the lesion meets the skin: rim width, contrast, where the annotator drew the border --
    faint = scene["faint"]
    if faint:
        edge, contrast = uni(0.1, 0.2), uni(*_FAINT_CONTRAST)
    else:
        edge, contrast = uni(0.03, 0.12), uni(0.7, 1.0)
    shift = nrm(_ANNOTATOR_SPREAD)  # > 0: the visible rim lies outside the drawn border
    alpha = _smoothstep((1 + shift + edge - field) / (2 * edge))
    strength = contrast * (1 + 0.25 * _smooth_noise(rng, (h, w), 5))
    if faint:  # pigment thins out towards the rim, unevenly: parts of the border all but vanish
        strength = strength * (0.6 + 0.4 * _smoothstep((1.0 - field) / 0.7))
        strength = strength * np.clip(1 + 0.45 * _smooth_noise(rng, (h, w), 4), 0.4, 1.3)
    strength = np.clip(strength, 0.05, 1.0)

    # --- skin ---------------------------------------------------------------------------------
    skin = np.array(_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))], np.float32) * rng.uniform(
        0.93, 1.05, 3
    ).astype(np.float32)
    tone = 1 + 0.05 * _smooth_noise(rng, (h, w), 3)[..., None]
    redness = (
        uni(0.03, 0.09)
        * np.maximum(_smooth_noise(rng, (h, w), 6), 0)[..., None]
        * np.array([0.2, -0.7, -0.5], np.float32)
    )
    fine = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), 0.9)
    pores = (rng.random((h, w)) < 0.004).astype(np.float32)
    pores = ndimage.gaussian_filter(pores, 0.8) * 3.0
    texture = 1 + 0.025 * fine[..., None] - 0.08 * pores[..., None]
    image = skin * (tone + redness) * texture
    spots = np.zeros((h, w), np.float32)  # freckles and a satellite spot: pigment that is not the lesion
    if rng.random() < 0.35:
        for _ in range(int(rng.integers(1, 8))):
            r, c = int(rng.integers(h)), int(rng.integers(w))
            if field[r, c] > 1.4:
                spots = np.maximum(spots, uni(0.25, 0.6) * _blob(rng, (h, w), (r, c), uni(2.5, 8.0)))
    if scene["satellite"]:
        rows, cols = np.nonzero(field > 1.5)
        if len(rows):
            k = int(rng.integers(len(rows)))
            spots = np.maximum(spots, uni(0.4, 0.8) * _blob(rng, (h, w), (rows[k], cols[k]), uni(8.0, 20.0)))
    spots *= _smoothstep((field - 1.2) / 0.2)
    brown = np.array(_PH2_COLOURS[3 if rng.random() < 0.6 else 4], np.float32)
    image = image * (1 - spots[..., None]) + brown * spots[..., None]

    # --- lesion colours: brown zones, and the table's other colours as irregular patches ---------
    codes = list(findings["colours"])
    rough = (0.35, 0.45, 0.7)[label]
    fields = []
    for code in codes:
        noise = rough * _smooth_noise(rng, (h, w), uni(5, 10))
        if code in (3, 4):  # light brown towards the rim, dark brown towards the centre
            ring = 0.85 if code == 3 or len(codes) == 1 else 0.25
            fields.append(-2.0 * np.abs(field - ring) + noise)
        else:
            r_home = uni(0.55, 0.9) if code == 1 else uni(0.1, 0.7)  # regression often reaches the rim
            t_home = uni(0, 2 * np.pi)
            hu, hv = r_home * math.cos(t_home), r_home * math.sin(t_home)
            size = uni(0.25, 0.5)
            fields.append(0.2 - 2.0 * np.hypot(u - hu, v - hv) / size + 2.0 * noise)
    stack = np.stack(fields)
    labels = stack.argmax(0)
    for i in range(len(codes)):  # every colour listed in the table must show
        if np.count_nonzero((labels == i) & inside) < 0.02 * np.count_nonzero(inside):
            spot = (labels != i) & inside & (stack[i] >= np.quantile(stack[i][inside], 0.9))
            labels[spot] = i
            stack[i][spot] = stack.max(0)[spot] + 0.5
    weights = np.exp(4.0 * (stack - stack.max(0)))
    weights /= weights.sum(0)
    palette = np.array([_PH2_COLOURS[c] for c in codes], np.float32)
    palette *= (rng.uniform(0.88, 1.1, (len(codes), 1)) * rng.uniform(0.96, 1.04, (len(codes), 3))).astype(
        np.float32
    )
    for i, code in enumerate(codes):
        if code == 1:  # regression: a whitish scar close to the skin's own colour
            palette[i] = 0.55 * skin * 1.08 + 0.45 * palette[i]
        elif code in (2, 5):  # red and the blue-whitish veil show the brown beneath
            palette[i] = 0.75 * palette[i] + 0.25 * np.array(_PH2_COLOURS[4], np.float32)
    lesion = np.tensordot(weights.transpose(1, 2, 0), palette, axes=1)
    lesion = Image.fromarray(np.clip(lesion, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(4))
    lesion = np.asarray(lesion, np.float32)  # colour zones blend into each other
    lesion *= 1 + 0.08 * _smooth_noise(rng, (h, w), 12)[..., None]
    lesion *= 1 - uni(0.0, 0.2) * _smoothstep((0.7 - field) / 0.7)[..., None]  # darker towards the centre
    network = findings["criteria"][0]
    if network != "A":  # pigment network, fading towards the rim
        mesh = _network(rng, field < 1.05, network) * _smoothstep((1.05 - field) / 0.5)
        mesh *= (0.18 if network == "T" else 0.32) * np.clip(1 + 0.4 * _smooth_noise(rng, (h, w), 6), 0, 2)
        lesion *= 1 - mesh[..., None]
    dots = findings["criteria"][1]
    if dots != "A" or 1 in codes:  # dots and globules; grey peppering in regression areas
        specks = np.zeros((h, w), np.float32)
        rows, cols = np.nonzero(inside & (field < (0.6 if dots == "T" else 0.95)))
        n = int(rng.integers(8, 40)) if dots != "A" else 0
        for k in rng.choice(len(rows), size=min(len(rows), n), replace=False):
            rr, cc = draw.ellipse(
                rows[k],
                cols[k],
                uni(0.8, 2.2 if dots == "T" else 3.5),
                uni(0.8, 2.2 if dots == "T" else 3.5),
                shape=(h, w),
            )
            specks[rr, cc] = 1.0
        if 1 in codes:
            region = inside & (labels == codes.index(1))
            rows, cols = np.nonzero(region)
            for k in rng.choice(len(rows), size=min(len(rows), int(rng.integers(15, 60))), replace=False):
                specks[rows[k], cols[k]] = 0.6
        specks = ndimage.gaussian_filter(specks, 0.8)
        lesion = lesion * (1 - 0.6 * specks[..., None]) + 0.6 * specks[..., None] * np.array(
            [50, 35, 30], np.float32
        )
    # faint is not invisible: on average over the mask, the picture differs from the bare skin by at
    # least _MIN_CONTRAST grey levels in some channel (the strength is raised where it would not)
    weight = alpha[inside][:, None]
    drift = (weight * (skin * texture[inside] - image[inside])).mean(0)  # the skin's own variation
    pull = (weight * strength[inside][:, None] * (lesion[inside] - skin) * texture[inside]).mean(0)
    c = int(np.abs(pull).argmax())
    if abs(drift[c] + pull[c]) < _MIN_CONTRAST and abs(pull[c]) > 1e-3:
        need = (math.copysign(_MIN_CONTRAST, pull[c]) - drift[c]) / pull[c]
        strength = np.clip(strength * max(1.0, float(need)), 0.0, 1.0)
    lesion = skin + (lesion - skin) * strength[..., None]
    image = image * (1 - alpha[..., None]) + lesion * texture * alpha[..., None]

    # --- hairs: dark thin curves, many across the border (never part of the mask) ----------------
    n_hairs = {"none": 0, "few": int(rng.integers(1, 9)), "dense": int(rng.integers(15, 45))}[scene["hair"]]
    if n_hairs:
        hairs = np.zeros((h, w), np.float32)
        rows, cols = np.nonzero(np.abs(field - 1) < 0.1)  # the border, where a hair hurts most
        for _ in range(n_hairs):
            if len(rows) and rng.random() < 0.6:
                k = int(rng.integers(len(rows)))
                mid = (rows[k] + nrm(10), cols[k] + nrm(10))
            else:
                mid = (uni(0, h), uni(0, w))
            t = uni(0, np.pi)
            length = uni(40, 260)
            r0, c0 = mid[0] - length * math.sin(t), mid[1] - length * math.cos(t)
            r2, c2 = mid[0] + length * math.sin(t), mid[1] + length * math.cos(t)
            r1, c1 = mid[0] + nrm(0.4 * length), mid[1] + nrm(0.4 * length)
            rr, cc = draw.bezier_curve(
                int(r0), int(c0), int(r1), int(c1), int(r2), int(c2), 1.0, shape=(h, w)
            )
            strand = uni(0.6, 1.0)
            hairs[rr, cc] = np.maximum(hairs[rr, cc], strand)
            if rng.random() < 0.4:  # a thicker hair
                hairs[np.minimum(rr + 1, h - 1), cc] = strand
        hairs = np.minimum(ndimage.gaussian_filter(hairs, 0.5) * 1.6, 1.0)
        colour = np.array([52, 36, 30], np.float32) * uni(0.5, 1.3)
        image = image * (1 - 0.9 * hairs[..., None]) + colour * 0.9 * hairs[..., None]

    # --- on the lens: specular highlights, air bubbles in the gel, a ruler -----------------------
    if scene["glare"]:
        glare = np.zeros((h, w), np.float32)
        rows, cols = np.nonzero(field < 1.1)
        k = int(rng.integers(len(rows)))
        for _ in range(int(rng.integers(5, 40))):
            r, c = rows[k] + nrm(25), cols[k] + nrm(25)
            rr, cc = draw.ellipse(r, c, uni(0.6, 2.5), uni(0.6, 3.5), shape=(h, w), rotation=uni(0, np.pi))
            glare[rr, cc] = uni(0.7, 1.0)
        glare = ndimage.gaussian_filter(glare, 0.7)
        image = image * (1 - glare[..., None]) + 252.0 * glare[..., None]
    if scene["bubbles"]:
        for _ in range(int(rng.integers(1, 6))):
            rows, cols = np.nonzero(np.abs(field - 1) < 0.05)
            if len(rows) and rng.random() < 0.5:  # on the lesion's border
                k = int(rng.integers(len(rows)))
                r, c = rows[k] + nrm(8), cols[k] + nrm(8)
            else:
                r, c = uni(0, h), uni(0, w)
            radius_b = uni(5.0, 40.0)
            rr, cc = draw.disk((r, c), radius_b, shape=(h, w))
            grey = image[rr, cc].mean(-1, keepdims=True)
            image[rr, cc] = 0.85 * image[rr, cc] + 0.15 * grey + 14.0  # lighter and paler under the bubble
            rr, cc, val = draw.circle_perimeter_aa(int(r), int(c), int(radius_b), shape=(h, w))
            image[rr, cc] *= (1 - 0.5 * val.astype(np.float32))[:, None]
            rr, cc = draw.disk(
                (r - 0.45 * radius_b, c - 0.35 * radius_b), max(1.0, 0.12 * radius_b), shape=(h, w)
            )
            image[rr, cc] = 0.4 * image[rr, cc] + 0.6 * 245.0
    if scene["ruler"]:
        ink = np.array((30, 30, 34) if rng.random() < 0.6 else (235, 235, 228), np.float32)
        marks = np.zeros((h, w), np.float32)
        top = rng.random() < 0.5
        base = uni(0.05, 0.2) * h
        base = base if top else h - base
        x0 = uni(0.05, 0.45) * w
        x1 = x0 + uni(0.3, 0.5) * w
        step = uni(6.0, 10.0)
        tilt = uni(-0.08, 0.08)
        rr, cc, val = draw.line_aa(int(base), int(x0), int(base + tilt * (x1 - x0)), int(x1))
        keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        marks[rr[keep], cc[keep]] = val[keep]
        for j in range(int((x1 - x0) / step) + 1):
            x = x0 + j * step
            y = base + tilt * (x - x0)
            tick = (9 if j % 5 == 0 else 5) * (1 if top else -1)
            rr, cc, val = draw.line_aa(int(y), int(x), int(y + tick), int(x))
            keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            marks[rr[keep], cc[keep]] = np.maximum(marks[rr[keep], cc[keep]], val[keep])
        image = image * (1 - 0.85 * marks[..., None]) + ink * 0.85 * marks[..., None]

    # --- the dermoscope: lens fall-off, a dark circle at the corners, focus, illumination ---------
    ox, oy = w / 2 + nrm(0.03 * w), h / 2 + nrm(0.03 * h)
    r = np.hypot(xx - ox, yy - oy) / (w / 2)
    rim = {"normal": uni(0.95, 1.12), "strong": uni(0.8, 0.92), "none": uni(1.25, 1.35)}[scene["vignette"]]
    falloff = 1 - uni(0.1, 0.3) * (r / rim) ** 4
    light = falloff * _smoothstep((rim - r) / uni(0.03, 0.09))
    dark = uni(4, 22) * (1 + 0.3 * _smooth_noise(rng, (h, w), 5))
    image = image * light[..., None] + dark[..., None] * (1 - light[..., None])
    slope = uni(-0.15, 0.15)
    turn = uni(0, 2 * np.pi)
    image *= (1 + slope * ((xx - w / 2) * math.cos(turn) + (yy - h / 2) * math.sin(turn)) / w)[..., None]
    image *= uni(0.88, 1.05) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    if scene["blur"]:
        image = ndimage.gaussian_filter(image, (uni(1.0, 2.2),) * 2 + (0,))

    # --- full resolution: upsample, add sensor noise, threshold the shape into the mask ---------
    image = _resize(np.clip(image, 0, 255).astype(np.uint8), width, height)
    grain = rng.integers(-4, 5, (height, width, 1), dtype=np.int16) + rng.integers(
        -2, 3, (height, width, 3), dtype=np.int16
    )
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    mask = _resize(field, width, height) < 1.0
    rois = []
    if rng.random() < 1 / 3:
        big = _resize(labels.astype(np.uint8), width, height, _NEAREST)
        for i, code in enumerate(codes):
            region = mask & (big == i)
            if region.any():
                rois.append((code, region.astype(np.uint8) * 255))
    return image, mask.astype(np.uint8) * 255, rois, findings


def _write_ph2_case(root: Path, seed: int, case_id: str) -> dict:
    image, mask, rois, findings = _ph2_case(seed, case_id)
    case = root / PH2_IMAGES / case_id
    (case / f"{case_id}_Dermoscopic_Image").mkdir(parents=True)
    (case / f"{case_id}_lesion").mkdir()
    Image.fromarray(image).save(case / f"{case_id}_Dermoscopic_Image" / f"{case_id}.bmp")
    Image.fromarray(mask).save(case / f"{case_id}_lesion" / f"{case_id}_lesion.bmp")
    if rois:
        (case / f"{case_id}_roi").mkdir()
        for k, (code, region) in enumerate(rois, start=1):
            Image.fromarray(region).save(case / f"{case_id}_roi" / f"{case_id}_R{k}_Label{code}.bmp")
    return findings


def synthetic_ph2(dest: str | Path, count: int = 200, seed: int = 0, progress: bool = True) -> Path:
    """Write a synthetic PH2 stand-in to `dest/PH2Dataset` (real IDs, real layout) and return that path."""
    ids = _stratified_ids(count)
    seed = _check_seed(seed)
    dest = _prepare_dest(dest)
    target = dest / PH2_FOLDER
    _refuse_existing(target)
    with _partial_dir(dest, PH2_FOLDER) as tmp:
        rows = []
        for case_id in tqdm(ids, desc=say("synthetic PH2", "PH2 sintético"), unit=say("case", "caso"), disable=not progress):
            rows.append(_ph2_row(case_id, _write_ph2_case(tmp, seed, case_id)))
        table = "\n".join([PH2_HEADER, *rows, "", _PH2_LEGEND])
        (tmp / "PH2_dataset.txt").write_text(table, encoding="utf-8")
        (tmp / "Readme.txt").write_text(
            _PH2_README.format(seed=seed, version=PH2_GENERATOR_VERSION), encoding="utf-8"
        )
        _move_into_place(tmp, target)
    return target


# ----------------------------------------------------------------------------------------------
# MADS

# (style, sequence number) of every synthetic sequence; each is filmed by cameras C0 and C1.
_MADS_SEQUENCES = tuple((style, k) for style, n in zip(MADS_STYLES, (3, 3, 3, 2, 3)) for k in range(1, n + 1))
_MADS_MOTION = {  # frequency (rad/s), arm swing, leg swing and stance width (rad) of each style
    "HipHop": ((0.6, 1.2), (0.4, 1.2), (0.1, 0.4), (0.1, 0.35)),
    "Jazz": ((0.5, 1.0), (0.5, 1.5), (0.15, 0.6), (0.05, 0.3)),
    "Kata": ((0.4, 0.9), (0.3, 1.3), (0.05, 0.3), (0.3, 0.55)),
    "Taichi": ((0.15, 0.35), (0.3, 1.0), (0.05, 0.2), (0.2, 0.4)),
    "Sports": ((0.8, 1.5), (0.3, 1.0), (0.2, 0.7), (0.0, 0.2)),
}
_CLOTHES = (
    (200, 30, 40),
    (30, 60, 160),
    (240, 240, 235),
    (25, 25, 30),
    (60, 130, 70),
    (230, 190, 40),
    (120, 120, 125),
    (150, 90, 50),
    (90, 40, 120),
    (235, 120, 40),
    (40, 150, 170),
    (170, 160, 130),
)
_SKINS = ((235, 200, 175), (210, 165, 130), (175, 125, 90), (125, 85, 60), (90, 60, 45), (225, 180, 150))


_MADS_README = """\
# SYNTHETIC stand-in for Segmentation Full Body MADS - not the real dataset

Generated by the semantic segmentation course (utils/synthetic.py, function synthetic_mads) with
seed {seed}: {count} frames drawn by a program (articulated figures in a cluttered studio), laid out
like the Kaggle dataset tapakah68/segmentation-full-body-mads-dataset so that the course's loading code
can be tested and demonstrated without it. No number computed on these frames is a result on MADS.
"""


def _mads_shots() -> list[tuple[int, int]]:
    """Return (sequence index, camera) pairs in an order that spreads any prefix over styles."""
    by_round: dict[int, list[int]] = {}
    for i, (_, k) in enumerate(_MADS_SEQUENCES):
        by_round.setdefault(k, []).append(i)
    order = [i for k in sorted(by_round) for i in by_round[k]]
    return [(i, cam) for cam in (0, 1) for i in order]


def _mads_plan(count: int) -> list[tuple[int, int, int]]:
    """Return the (sequence index, camera, frame number) of `count` frames, spread over the shots."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= MADS_MAX:
        raise CourseError(say(f"count must be between 1 and {MADS_MAX} (the real dataset's size), got {count!r}",
                              f"count debe estar entre 1 y {MADS_MAX} (el tamaño del conjunto real), no {count!r}"))
    shots = _mads_shots()
    plan = []
    for rank, (seq, cam) in enumerate(shots):
        n = count // len(shots) + (rank < count % len(shots))
        start = 30 * (3 * seq + 7 * cam % 5)  # sequences start at different frame numbers
        plan += [(seq, cam, start + 30 * j) for j in range(n)]
    return plan


def _mads_name(seq: int, cam: int, frame: int) -> str:
    style, k = _MADS_SEQUENCES[seq]
    return f"{style}_{style}{k}_C{cam}_{frame:05d}.png"


def _mads_actor(seed: int, seq: int) -> dict:
    """Draw one sequence's performer: build, skin, clothes and motion."""
    rng = _rng(seed, _MADS_TAG, seq)
    style = _MADS_SEQUENCES[seq][0]
    freq, arm, leg, stance = _MADS_MOTION[style]
    top, bottom = rng.choice(len(_CLOTHES), size=2, replace=False)
    joints = {}
    for side in (-1, 1):
        joints[("shoulder", side)] = (rng.uniform(0.15, 1.3), rng.uniform(*arm))
        joints[("elbow", side)] = (rng.uniform(0.1, 1.3), rng.uniform(0.0, 0.9))
        joints[("hip", side)] = (rng.uniform(*stance), rng.uniform(*leg))
        joints[("knee", side)] = (rng.uniform(0.0, 0.5), rng.uniform(0.0, 0.5))
    return {
        "skin": np.array(_SKINS[int(rng.integers(len(_SKINS)))], np.float32) * rng.uniform(0.92, 1.08, 3),
        "hair": np.array((30, 22, 18), np.float32) * rng.uniform(0.6, 3.0),
        "top": np.array(_CLOTHES[top], np.float32) * rng.uniform(0.85, 1.1, 3),
        "bottom": np.array(_CLOTHES[bottom], np.float32) * rng.uniform(0.85, 1.1, 3),
        "shoes": np.array((30, 30, 32) if rng.random() < 0.6 else (225, 225, 220), np.float32),
        "long_sleeves": bool(rng.random() < 0.5),
        "shorts": bool(rng.random() < 0.25),
        "stripes": bool(rng.random() < 0.3),
        "build": rng.uniform(1.0, 1.3),  # limb and torso thickness
        "baggy": rng.uniform(1.0, 1.35),  # clothes wider than limbs
        "joints": joints,
        "freqs": {key: rng.uniform(*freq) for key in joints} | {"lean": rng.uniform(*freq)},
        "phases": {key: rng.uniform(0, 2 * np.pi) for key in joints} | {"lean": rng.uniform(0, 2 * np.pi)},
        "lean": (rng.normal(0, 0.06), rng.uniform(0.0, 0.15)),
        "sync": bool(style == "Sports" or rng.random() < 0.3),  # arms and legs in counter-phase (running)
    }


def _mads_clutter(
    rng: np.random.Generator, room: np.ndarray, horizon: float, count: int, clothes: list[np.ndarray]
) -> None:
    """Paint `count` pieces of furniture, posters, doors or windows into the room, in place."""
    height, width = room.shape[:2]
    for _ in range(count):
        w_, h_ = rng.uniform(20, 180), rng.uniform(20, 200)
        x0 = rng.uniform(-20, width)
        y0 = rng.uniform(-20, horizon + 30) if rng.random() < 0.7 else rng.uniform(horizon, height - 20)
        if clothes and rng.random() < 0.2:  # some things look like the performer's clothes
            colour = clothes[int(rng.integers(len(clothes)))] * rng.uniform(0.85, 1.15, 3)
        else:
            colour = _muted(rng, 20, 240, 0.8)
        rr, cc = draw.rectangle((y0, x0), (y0 + h_, x0 + w_), shape=(height, width))
        rr, cc = rr.ravel(), cc.ravel()
        if len(rr) == 0:
            continue
        shade = 1 + rng.uniform(-0.25, 0.25) * (cc - x0) / w_
        patch = colour[None, :] * shade[:, None]
        pattern = rng.random()
        if pattern < 0.2:  # stripes
            patch *= (1 + 0.2 * (np.sin(cc / rng.uniform(2, 8)) > 0))[:, None]
        elif pattern < 0.35:  # a window grid or shelves
            step = rng.uniform(12, 40)
            patch[((rr - y0) % step < 3) | ((cc - x0) % step < 3)] *= 0.55
        room[rr, cc] = patch


def _mads_studio(seed: int, cam: int) -> tuple[np.ndarray, float]:
    """Draw what camera `cam` sees of the studio (shared by all sequences): the room and its horizon."""
    rng = _rng(seed, _MADS_TAG, len(_MADS_SEQUENCES), cam)
    width, height = MADS_SIZE
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = rng.uniform(0.45, 0.72) * height
    wall = _muted(rng, 90, 225, 0.35)
    floor = _muted(rng, 50, 170, 0.4)
    grad = (1 + 0.25 * (yy / height - 0.5) * rng.choice((-1, 1)))[..., None]
    room = np.where(
        (yy < horizon)[..., None], wall * grad, floor * (0.8 + 0.4 * (yy - horizon)[..., None] / height)
    )
    room *= 1 + 0.08 * _smooth_noise(rng, (height, width), 4)[..., None]
    if rng.random() < 0.6:  # floor boards or tiles
        boards = np.cos(2 * np.pi * (xx - width / 2) / (yy - horizon + 40) * rng.uniform(3, 8)) > 0.9
        room[boards & (yy > horizon)] *= 0.8
    _mads_clutter(rng, room, horizon, int(rng.integers(6, 14)), [])
    for _ in range(int(rng.integers(2, 8))):  # cables, edges, lamps, clocks
        if rng.random() < 0.6:
            rr, cc, val = draw.line_aa(
                int(rng.integers(height)),
                int(rng.integers(width)),
                int(rng.integers(height)),
                int(rng.integers(width)),
            )
            keep = (rr < height) & (cc < width)
            colour = _muted(rng, 0, 255, 0.6)
            room[rr[keep], cc[keep]] = (
                room[rr[keep], cc[keep]] * (1 - val[keep, None]) + colour * val[keep, None]
            )
        else:
            rr, cc = draw.disk(
                (rng.uniform(0, horizon), rng.uniform(0, width)), rng.uniform(6, 30), shape=(height, width)
            )
            room[rr, cc] = _muted(rng, 20, 250, 0.7)
    return room.astype(np.float32), float(horizon)


def _mads_scene(seed: int, seq: int, cam: int, actor: dict, studio: tuple[np.ndarray, float]) -> dict:
    """Set up one sequence seen by one camera: the studio with props moved in, the performer's size and place."""
    rng = _rng(seed, _MADS_TAG, seq, cam + 1)
    width, height = MADS_SIZE
    room, horizon = studio[0].copy(), studio[1]
    _mads_clutter(rng, room, horizon, int(rng.integers(1, 5)), [actor["top"], actor["bottom"]])
    room *= rng.uniform(0.9, 1.1, 3).astype(np.float32)  # white balance differs between sessions
    room = ndimage.gaussian_filter(room, (0.8, 0.8, 0))
    return {
        "room": room,
        "height": rng.uniform(0.65, 0.85) * height,  # the performer's height in pixels
        "x": rng.uniform(0.3, 0.7) * width,
        "drift": rng.uniform(0, 0.12) * width,
        "ground": rng.uniform(0.93, 0.985) * height,
        "mirror": cam == 1,
        "light": rng.uniform(0.8, 1.15),
    }


def _muted(rng: np.random.Generator, low: float, high: float, saturation: float) -> np.ndarray:
    """Return a random RGB colour of brightness in [low, high], at most `saturation` away from grey."""
    grey = rng.uniform(low, high)
    return np.clip(grey + rng.uniform(-1, 1, 3) * saturation * min(grey, 255 - grey), 0, 255).astype(
        np.float32
    )


def _capsule(
    rgb: np.ndarray,
    alpha: np.ndarray,
    p0: np.ndarray,
    p1: np.ndarray,
    radius: float,
    colour: np.ndarray,
    stripes: float = 0.0,
) -> None:
    """Paint an anti-aliased, shaded capsule from p0 to p1 (x, y) over the person layer, in place."""
    height, width = alpha.shape
    lo = np.floor(np.minimum(p0, p1) - radius - 1).astype(int)
    hi = np.ceil(np.maximum(p0, p1) + radius + 2).astype(int)
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], width), min(hi[1], height)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d = p1 - p0
    t = np.clip(((xs - p0[0]) * d[0] + (ys - p0[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
    dist = np.hypot(xs - p0[0] - t * d[0], ys - p0[1] - t * d[1])
    a = np.clip(radius - dist + 0.5, 0, 1)
    shade = 1.05 - 0.4 * (dist / radius) ** 2
    if stripes:
        shade = shade * (1 - 0.25 * (np.sin(ys / stripes) > 0.3))
    paint = colour * np.clip(shade, 0.5, 1.1)[..., None]
    view_rgb, view_a = rgb[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    view_rgb[:] = paint * a[..., None] + view_rgb * (1 - a[..., None])
    view_a[:] = a + view_a * (1 - a)


def _direction(angle: float) -> np.ndarray:
    """Unit vector (x, y) for an angle measured from straight down, positive towards +x."""
    return np.array([np.sin(angle), np.cos(angle)], np.float32)


def _mads_person(actor: dict, scene: dict, t: float, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Draw the performer at time t (seconds): an RGB layer and its coverage (alpha) in [0, 1]."""
    width, height = MADS_SIZE
    body = scene["height"] * scale
    build = actor["build"]

    def angle(key: object) -> float:
        base, amp = actor["joints"][key] if key != "lean" else actor["lean"]
        phase = actor["phases"][key]
        if actor["sync"] and key in (("shoulder", 1), ("hip", -1)):
            phase = actor["phases"][("shoulder", -1)] + np.pi
        return base + amp * np.sin(actor["freqs"][key] * t + phase)

    lean = angle("lean")
    up = -_direction(lean)
    across = np.array([np.cos(lean), -np.sin(lean)], np.float32)
    pelvis = np.zeros(2, np.float32)
    neck = pelvis + up * 0.3 * body
    head = neck + up * 0.1 * body
    limbs = {}
    for side in (-1, 1):
        shoulder = neck + across * side * 0.1 * body * build + up * -0.02 * body
        a_upper = lean + side * np.clip(angle(("shoulder", side)), -0.4, 2.9)
        elbow = shoulder + _direction(a_upper) * 0.17 * body
        wrist = elbow + _direction(a_upper + side * np.clip(angle(("elbow", side)), 0, 2.3)) * 0.15 * body
        hip = pelvis + across * side * 0.07 * body * build
        a_thigh = side * np.clip(angle(("hip", side)), -0.3, 1.2)
        knee = hip + _direction(a_thigh) * 0.24 * body
        a_shin = a_thigh - side * np.clip(angle(("knee", side)), 0, 1.5)
        ankle = knee + _direction(a_shin) * 0.23 * body
        toe = ankle + np.array([side * 0.06 * body, 0.015 * body], np.float32)
        limbs[side] = (shoulder, elbow, wrist, hip, knee, ankle, toe)
    points = np.stack([head - up * 0.0] + [p for parts in limbs.values() for p in parts])
    lowest = points[:, 1].max() + 0.02 * body
    offset = np.array([scene["x"] + scene["drift"] * np.sin(0.3 * t), scene["ground"] - lowest], np.float32)
    if scene["mirror"]:
        flip = np.array([-1, 1], np.float32)
    else:
        flip = np.array([1, 1], np.float32)

    def at(p: np.ndarray) -> np.ndarray:
        return p * flip + offset

    rgb = np.zeros((height, width, 3), np.float32)
    alpha = np.zeros((height, width), np.float32)
    top, bottom, skin = actor["top"], actor["bottom"], actor["skin"]
    baggy = actor["baggy"]
    stripes = 0.012 * body if actor["stripes"] else 0.0
    for side in (-1, 1):  # legs
        _, _, _, hip, knee, ankle, toe = limbs[side]
        _capsule(rgb, alpha, at(hip), at(knee), 0.05 * body * build * baggy, bottom)
        _capsule(
            rgb,
            alpha,
            at(knee),
            at(ankle),
            0.04 * body * (build if actor["shorts"] else build * baggy),
            skin if actor["shorts"] else bottom,
        )
        _capsule(rgb, alpha, at(ankle), at(toe), 0.025 * body, actor["shoes"])
    _capsule(rgb, alpha, at(limbs[-1][3]), at(limbs[1][3]), 0.045 * body * build * baggy, bottom)  # hips
    torso = 0.07 * body * build * baggy
    _capsule(rgb, alpha, at(pelvis + up * 0.03 * body), at(neck - up * 0.02 * body), torso, top, stripes)
    for side in (-1, 1):  # flanks from hip to shoulder make the torso a trapezoid
        _capsule(
            rgb, alpha, at(limbs[side][3] + up * 0.04 * body), at(limbs[side][0]), 0.6 * torso, top, stripes
        )
    _capsule(rgb, alpha, at(neck), at(neck + up * 0.04 * body), 0.03 * body, skin)
    _capsule(rgb, alpha, at(head), at(head), 0.065 * body, skin)
    _capsule(
        rgb, alpha, at(head + up * 0.02 * body), at(head + up * 0.025 * body), 0.06 * body, actor["hair"]
    )
    for side in (-1, 1):  # arms in front
        shoulder, elbow, wrist = limbs[side][:3]
        _capsule(rgb, alpha, at(shoulder), at(elbow), 0.033 * body * build * baggy, top)
        sleeve = top if actor["long_sleeves"] else skin
        _capsule(rgb, alpha, at(elbow), at(wrist), 0.027 * body * build, sleeve)
        _capsule(rgb, alpha, at(wrist), at(wrist + (wrist - elbow) * 0.25), 0.025 * body, skin)
    return rgb, alpha


def _mads_frame(
    seed: int, seq: int, cam: int, frame: int, actor: dict, scene: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one frame: a 384x512 RGB image and its 0/1 person mask."""
    width, height = MADS_SIZE
    rng = _rng(seed, _MADS_TAG, seq, cam + 1, frame + 1)
    t = frame / 30.0
    rgb, alpha = _mads_person(actor, scene, t)
    fraction = np.count_nonzero(alpha > 0.5) / alpha.size
    if not 0.06 <= fraction <= 0.23:  # keep the person between 5% and 25% of the frame
        rgb, alpha = _mads_person(
            actor, scene, t, np.sqrt(np.clip(fraction, 0.06, 0.23) / max(fraction, 1e-6))
        )
    light = scene["light"] * rng.uniform(0.95, 1.05) * rng.uniform(0.97, 1.03, 3)
    image = scene["room"] * (1 - alpha[..., None]) + rgb * alpha[..., None]
    image = image * light + rng.normal(0, 3.0, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), (alpha > 0.5)


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _jpg(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="JPEG", quality=85)
    return out.getvalue()


def _mads_files(count: int, seed: int, progress: bool) -> Iterator[tuple[str, bytes]]:
    """Yield (path inside the dataset, file content) for every file of a synthetic MADS."""
    inner = f"{MADS_INNER}/{MADS_INNER}"
    plan = _mads_plan(count)
    yield "SYNTHETIC.md", _MADS_README.format(seed=seed, count=count).encode("utf-8")
    actors: dict[int, dict] = {}
    scenes: dict[tuple[int, int], dict] = {}
    studios: dict[int, tuple[np.ndarray, float]] = {}
    rows = []
    previewed = set()
    for seq, cam, frame in tqdm(plan, desc=say("synthetic MADS", "MADS sintético"), unit=say("frame", "fotograma"), disable=not progress):
        if seq not in actors:
            actors[seq] = _mads_actor(seed, seq)
        if cam not in studios:
            studios[cam] = _mads_studio(seed, cam)
        if (seq, cam) not in scenes:
            scenes[seq, cam] = _mads_scene(seed, seq, cam, actors[seq], studios[cam])
        image, person = _mads_frame(seed, seq, cam, frame, actors[seq], scenes[seq, cam])
        mask = np.full(person.shape + (4,), 255, np.uint8)  # RGBA, alpha unused
        mask[~person, :3] = 0
        name = _mads_name(seq, cam, frame)
        yield f"{inner}/images/{name}", _png(image)
        yield f"{inner}/masks/{name}", _png(mask)
        if seq not in previewed:  # a side-by-side preview for the first frame of each sequence
            previewed.add(seq)
            yield f"{inner}/collages/{name[:-4]}.jpg", _jpg(np.concatenate([image, mask[..., :3]], axis=1))
        rows.append((f"images/{name}", f"masks/{name}"))
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["images", "masks"])
    writer.writerows(sorted(rows))
    yield "df.csv", table.getvalue().encode("utf-8")


def synthetic_mads(
    dest: str | Path, count: int = 240, seed: int = 0, progress: bool = True, as_zip: bool = False
) -> Path:
    """Write a synthetic Segmentation Full Body MADS stand-in into `dest` and return `dest` (or the zip).

    The layout is the Kaggle dataset's: `df.csv` beside the doubled folder `MADS_INNER/MADS_INNER/` that
    holds `images/`, `masks/` and `collages/`, plus a `SYNTHETIC.md` marker. With `as_zip` the same
    tree goes into `dest/segmentation-full-body-mads-dataset.zip` instead.
    """
    _mads_plan(count)  # validates count before anything is written
    seed = _check_seed(seed)
    dest = _prepare_dest(dest)
    if as_zip:
        target = dest / MADS_ZIP
        _refuse_existing(target)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{MADS_ZIP}.partial-", dir=dest)
        os.close(handle)
        tmp = Path(tmp_name)
        try:
            with zipfile.ZipFile(tmp, "w") as archive:
                for name, data in _mads_files(count, seed, progress):
                    method = zipfile.ZIP_DEFLATED if name.endswith(".csv") else zipfile.ZIP_STORED
                    archive.writestr(name, data, compress_type=method)
            os.chmod(tmp, 0o666 & ~_umask())
            _move_into_place(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target
    for name in (MADS_INNER, "df.csv"):
        _refuse_existing(dest / name)
    with _partial_dir(dest, MADS_INNER) as tmp:
        for name, data in _mads_files(count, seed, progress):
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if not (dest / "SYNTHETIC.md").exists():  # the marker first, so a loader never mistakes it for MADS
            os.replace(tmp / "SYNTHETIC.md", dest / "SYNTHETIC.md")
        _move_into_place(tmp / MADS_INNER, dest / MADS_INNER)
        _move_into_place(tmp / "df.csv", dest / "df.csv")
    return dest
