"""Synthetic stand-ins for PH2 and MADS, written in exactly the real datasets' on-disk layouts.

The real datasets may not be redistributed, so the course's loading code is tested and demonstrated
on these. The pictures are drawn to make segmentation non-trivial but learnable: dermoscopy-like
lesions with irregular, soft borders, hairs and a dark dermoscope vignette; articulated people over
cluttered rooms. Every PH2 case is drawn from its own random generator, derived from `seed` and the
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
from scipy import ndimage
from skimage import draw
from tqdm.auto import tqdm

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

_PH2_TAG = 2013  # separates the PH2 and MADS random streams drawn from one seed
_MADS_TAG = 2017

_BILINEAR = Image.Resampling.BILINEAR
_BICUBIC = Image.Resampling.BICUBIC
_NEAREST = Image.Resampling.NEAREST


# ----------------------------------------------------------------------------------------------
# shared helpers


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise CourseError(f"seed must be a non-negative integer, got {seed!r}: pass e.g. seed=0")
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
        raise CourseError(f"{dest} is a file, not a folder: pass a folder to write the synthetic data into")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(f"cannot create {dest} ({err.strerror}): pass a folder you can write to") from err
    return dest


def _refuse_existing(path: Path) -> None:
    if path.exists():
        raise CourseError(
            f"{path} already exists and is never overwritten: delete it or write the synthetic data "
            "into another folder"
        )


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
    3: (172, 112, 72),  # light brown
    4: (104, 62, 44),  # dark brown
    5: (104, 116, 142),  # blue-gray
    6: (44, 34, 36),  # black
}
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
        raise CourseError(
            f"count must be between 1 and {len(CLASS_IDS)} (PH2 has {len(CLASS_IDS)} cases), got {count!r}"
        )
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


def _ph2_case(seed: int, case_id: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]], dict]:
    """Draw one case: RGB image, 0/255 mask, per-colour region masks (if any) and the table findings."""
    label = CLASS_IDS[case_id]
    rng = _rng(seed, _PH2_TAG, int(case_id[3:]))
    findings = _ph2_findings(rng, label)

    def uni(low: float, high: float) -> float:  # Python floats keep the float32 arrays float32
        return float(rng.uniform(low, high))

    def nrm(scale: float) -> float:
        return float(rng.normal(0, scale))

    width, height = int(rng.integers(761, 770)), int(rng.integers(553, 578))
    h, w = (height + 1) // 2, (width + 1) // 2  # most of the drawing happens at half resolution
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    # --- lesion shape: an ellipse with radial harmonics, perturbed by smooth noise ---------------
    area = uni(*((0.10, 0.22), (0.15, 0.33), (0.24, 0.45))[label])
    aspect = uni(1.0, (1.3, 1.5, 1.6)[label])
    semi = math.sqrt(area * h * w / math.pi)
    a, b = semi * math.sqrt(aspect), semi / math.sqrt(aspect)
    cx = w / 2 + nrm(0.05 * w)
    cy = h / 2 + nrm(0.05 * h)
    angle = uni(0, np.pi)
    dx, dy = xx - cx, yy - cy
    u = (dx * math.cos(angle) + dy * math.sin(angle)) / a
    v = (-dx * math.sin(angle) + dy * math.cos(angle)) / b
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)
    irregular = (0.035, 0.075, 0.11)[label] * (0.7 + 0.3 * findings["asymmetry"])
    radius = np.ones_like(rho)
    for k in range(2, 8):
        radius += irregular * uni(0.3, 1.0) / k**0.7 * np.cos(k * theta + uni(0, 2 * np.pi))
    if findings["criteria"][2] == "P":  # streaks: a finely spiked border
        for k in rng.integers(11, 22, size=2):
            radius += 0.03 * np.cos(k * theta + uni(0, 2 * np.pi))
    field = rho / radius + (0.03, 0.06, 0.09)[label] * _smooth_noise(rng, (h, w), 7)
    field = field + (0.015, 0.03, 0.04)[label] * _smooth_noise(rng, (h, w), 18)
    # scale so that exactly `area` of the picture lies inside (field < 1)
    cut = np.partition(field.ravel(), int(area * field.size))[int(area * field.size)]
    field /= cut
    low_contrast = rng.random() < (0.25, 0.2, 0.1)[label]
    edge = uni(0.10, 0.18) if low_contrast else uni(0.04, 0.12)  # softness of the rim
    eight = np.ones((3, 3), bool)
    halo = field < 1 + 2 * edge  # one lesion: stray islands go, with the soft rim around them
    parts, n_parts = ndimage.label(halo, structure=eight)
    if n_parts > 1:
        sizes = np.bincount(parts.ravel(), weights=(field < 1).ravel())
        sizes[0] = -1
        field = np.where(halo & (parts != sizes.argmax()), 1 + 2 * edge, field)
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
            inside = main | holes
            break
        need = np.where(islands, 1 + 1.5 * edge - field, np.where(holes, 1 - 1.5 * edge - field, 0))
        lift = ndimage.gaussian_filter(ndimage.grey_dilation(np.maximum(need, 0), size=9), 3.0)
        sink = ndimage.gaussian_filter(ndimage.grey_dilation(np.maximum(-need, 0), size=9), 3.0)
        field = field + lift - sink
    alpha = _smoothstep((1 + edge - field) / (2 * edge))

    # --- skin -------------------------------------------------------------------------------
    skin = np.array(_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))], np.float32) * rng.uniform(
        0.93, 1.05, 3
    ).astype(np.float32)
    tone = 1 + 0.05 * _smooth_noise(rng, (h, w), 3)[..., None]
    redness = (
        0.06
        * np.maximum(_smooth_noise(rng, (h, w), 6), 0)[..., None]
        * np.array([0.2, -0.7, -0.5], np.float32)
    )
    fine = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), 0.9)
    pores = (rng.random((h, w)) < 0.004).astype(np.float32)
    pores = ndimage.gaussian_filter(pores, 0.8) * 3.0
    texture = 1 + 0.025 * fine[..., None] - 0.08 * pores[..., None]
    image = skin * (tone + redness) * texture
    if rng.random() < 0.35:  # freckles: small brown spots on the skin that are not the lesion
        freckles = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(1, 8))):
            r, c = int(rng.integers(h)), int(rng.integers(w))
            if field[r, c] > 1.4:
                rr, cc = draw.disk((r, c), uni(2.5, 9.0), shape=(h, w))
                freckles[rr, cc] = uni(0.25, 0.6)
        freckles = ndimage.gaussian_filter(freckles, 1.5) * (field > 1.3)
        image = (
            image * (1 - freckles[..., None]) + np.array(_PH2_COLOURS[3], np.float32) * freckles[..., None]
        )

    # --- lesion colours: brown rings plus spots of the other colours ----------------------------
    contrast = uni(0.3, 0.5) if low_contrast else uni(0.8, 1.0)
    codes = list(findings["colours"])
    fields = []
    for code in codes:
        noise = 0.35 * _smooth_noise(rng, (h, w), uni(5, 10))
        if code in (3, 4):
            ring = 0.85 if code == 3 or len(codes) == 1 else 0.2
            fields.append(-2.0 * np.abs(field - ring) + noise)
        else:
            r_home, t_home = uni(0.15, 0.7), uni(0, 2 * np.pi)
            hu, hv = r_home * math.cos(t_home), r_home * math.sin(t_home)
            size = uni(0.25, 0.45)
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
    palette = np.array([_PH2_COLOURS[c] for c in codes], np.float32) * rng.uniform(
        0.9, 1.1, (len(codes), 3)
    ).astype(np.float32)
    for i, code in enumerate(codes):  # veil, red and regression areas show the brown beneath
        if code in (1, 2, 5):
            palette[i] = 0.75 * palette[i] + 0.25 * np.array(_PH2_COLOURS[4], np.float32)
    lesion = np.tensordot(weights.transpose(1, 2, 0), palette, axes=1)
    lesion = Image.fromarray(np.clip(lesion, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(5))
    lesion = np.asarray(lesion, np.float32)  # colour regions blend into each other
    lesion *= 1 + 0.07 * _smooth_noise(rng, (h, w), 12)[..., None]
    # pigment network: a warped dark honeycomb, fading towards the rim; dots/globules: dark blobs
    network = findings["criteria"][0]
    if network != "A":
        period = uni(5.0, 8.0)
        warp = (1.2 if network == "T" else 3.0) * _smooth_noise(rng, (h, w), 16)
        phase = uni(0, np.pi)
        waves = sum(
            np.cos(
                2
                * np.pi
                * ((xx * math.cos(phase + k * math.pi / 3) + yy * math.sin(phase + k * math.pi / 3)) / period)
                + warp
            )
            for k in range(3)
        )
        mesh = _smoothstep((0.0 - waves) / 1.5)
        strength = (0.12 if network == "T" else 0.2) * (1 + 0.4 * _smooth_noise(rng, (h, w), 6))
        mesh *= _smoothstep((1.05 - field) / 0.5) * np.clip(strength, 0, 0.5)
        lesion *= 1 - mesh[..., None]
    dots = findings["criteria"][1]
    if dots != "A":
        spots = np.zeros((h, w), np.float32)
        rows, cols = np.nonzero(inside & (field < (0.6 if dots == "T" else 0.95)))
        for k in rng.choice(len(rows), size=min(len(rows), int(rng.integers(8, 40))), replace=False):
            rr, cc = draw.disk((rows[k], cols[k]), uni(0.8, 2.2 if dots == "T" else 3.5), shape=(h, w))
            spots[rr, cc] = 1.0
        spots = ndimage.gaussian_filter(spots, 0.6)
        lesion = lesion * (1 - 0.6 * spots[..., None]) + 0.6 * spots[..., None] * np.array(
            [50, 35, 30], np.float32
        )
    lesion = skin + (lesion - skin) * contrast
    image = image * (1 - alpha[..., None]) + lesion * texture * alpha[..., None]

    # --- hairs: dark thin curves, some across the lesion (never part of the mask) ---------------
    if rng.random() < 0.35:
        hairs = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(1, 16))):
            through = rng.random() < 0.5
            mid = (cy, cx) if through else (uni(0, h), uni(0, w))
            mid = (mid[0] + nrm(25), mid[1] + nrm(25))
            t = uni(0, np.pi)
            length = uni(40, 220)
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
        colour = np.array([52, 36, 30], np.float32) * uni(0.6, 1.3)
        image = image * (1 - 0.9 * hairs[..., None]) + colour * 0.9 * hairs[..., None]

    if rng.random() < 0.15:  # air bubbles in the immersion gel: a bright disc with a dark rim
        for _ in range(int(rng.integers(1, 5))):
            r, c, radius_b = uni(0, h), uni(0, w), uni(4.0, 18.0)
            rr, cc = draw.disk((r, c), radius_b, shape=(h, w))
            image[rr, cc] *= 1.08
            rr, cc, val = draw.circle_perimeter_aa(int(r), int(c), int(radius_b), shape=(h, w))
            image[rr, cc] *= (1 - 0.4 * val.astype(np.float32))[:, None]

    # --- the dermoscope: lens fall-off and a dark circle at the corners -------------------------
    ox, oy = w / 2 + nrm(0.03 * w), h / 2 + nrm(0.03 * h)
    r = np.hypot(xx - ox, yy - oy) / (w / 2)
    rim = uni(0.95, 1.12) if rng.random() < 0.85 else uni(1.2, 1.3)
    falloff = 1 - uni(0.1, 0.3) * (r / rim) ** 4
    light = falloff * _smoothstep((rim - r) / uni(0.03, 0.09))
    dark = uni(4, 22) * (1 + 0.3 * _smooth_noise(rng, (h, w), 5))
    image = image * light[..., None] + dark[..., None] * (1 - light[..., None])
    image *= uni(0.92, 1.05)

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
        for case_id in tqdm(ids, desc="synthetic PH2", unit="case", disable=not progress):
            rows.append(_ph2_row(case_id, _write_ph2_case(tmp, seed, case_id)))
        table = "\n".join([PH2_HEADER, *rows, "", _PH2_LEGEND])
        (tmp / "PH2_dataset.txt").write_text(table, encoding="utf-8")
        (tmp / "Readme.txt").write_text(_PH2_README.format(seed=seed), encoding="utf-8")
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
        raise CourseError(f"count must be between 1 and {MADS_MAX} (the real dataset's size), got {count!r}")
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
    for seq, cam, frame in tqdm(plan, desc="synthetic MADS", unit="frame", disable=not progress):
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
