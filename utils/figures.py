"""The lesson's figures in `images/`, drawn from the course's own code (`python -m utils figures`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402
from skimage import draw, measure  # noqa: E402

from utils.course import ROOT  # noqa: E402

CLASS_COLOURS = np.array([[0.93, 0.93, 0.93], [0.85, 0.33, 0.1], [0.1, 0.45, 0.8]])


def scene(size: int = 160, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an RGB scene with round and square objects (two touching), its class mask and instance mask."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 0.75) + rng.normal(0, 0.03, (size, size, 3))
    classes = np.zeros((size, size), np.uint8)
    instances = np.zeros((size, size), np.uint8)
    for r, c, rad in ((45, 45, 22), (52, 84, 20), (118, 50, 16)):  # the first two touch
        rr, cc = draw.disk((r, c), rad, shape=classes.shape)
        classes[rr, cc] = 1
        instances[rr, cc] = instances.max() + 1
        img[rr, cc] = (0.55, 0.3, 0.15)
    for r, c, half in ((110, 112, 20), (40, 128, 12)):
        classes[r - half : r + half, c - half : c + half] = 2
        instances[r - half : r + half, c - half : c + half] = instances.max() + 1
        img[r - half : r + half, c - half : c + half] = (0.2, 0.35, 0.6)
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1), classes, instances


def semantic_vs_instance(path: Path) -> Path:
    """Draw a scene, its semantic mask and its instance mask side by side."""
    img, classes, instances = scene()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    axes[0].imshow(img)
    axes[1].imshow(CLASS_COLOURS[classes])
    inst_rgb = plt.get_cmap("tab10")(np.arange(10))[:, :3]
    axes[2].imshow(np.where(instances[..., None] > 0, inst_rgb[instances % 10], 0.93))
    for ax, title in zip(axes, ("image", "semantic: one label per class", "instance: one label per object")):
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    merged = measure.label(classes == 1).max()
    fig.text(0.5, 0.02, f"The two touching round objects merge in the semantic mask (connected components find {merged}"
             " round regions, not 3); instance segmentation keeps them apart.", ha="center", fontsize=8)
    return _save(fig, path)


def _u_diagram(ax, depth: int, size: int, base: int, skips: bool) -> None:
    """Draw encoder levels down the left, decoder levels up the right, the bottleneck at the bottom."""
    boxes = {}
    for level in range(depth + 1):
        s, c = size // 2**level, base * 2**level
        y = -1.3 * level
        if level == depth:
            boxes["bottom"] = (depth * 1.2, y)
            _box(ax, depth * 1.2, y, f"{s}²×{c}", "#f4a582")
            continue
        boxes[("enc", level)] = (level * 1.2, y)
        boxes[("dec", level)] = ((2 * depth - level) * 1.2, y)
        _box(ax, level * 1.2, y, f"{s}²×{c}", "#f4a582")
        _box(ax, (2 * depth - level) * 1.2, y, f"{s}²×{c}", "#92c5de")
    for level in range(depth):
        below_enc = boxes[("enc", level + 1)] if level + 1 < depth else boxes["bottom"]
        below_dec = boxes[("dec", level + 1)] if level + 1 < depth else boxes["bottom"]
        _arrow(ax, boxes[("enc", level)], below_enc, "max-pool", "black")
        _arrow(ax, below_dec, boxes[("dec", level)], "up-sample", "black")
        if skips:
            _arrow(ax, boxes[("enc", level)], boxes[("dec", level)], "copy + concatenate", "tab:green")
    ax.text(0, 0.55, f"image {size}²×3", ha="center", fontsize=8)
    ax.text(2 * depth * 1.2, 0.55, f"logits {size}²×1", ha="center", fontsize=8)
    ax.text(0, -1.3 * depth - 0.2, "encoder", ha="center", fontsize=9, color="#b2182b")
    ax.text(2 * depth * 1.2, -1.3 * depth - 0.2, "decoder", ha="center", fontsize=9, color="#2166ac")
    ax.set_xlim(-0.8, 2 * depth * 1.2 + 0.8)
    ax.set_ylim(-1.3 * depth - 0.6, 0.9)
    ax.set_axis_off()


def _box(ax, x: float, y: float, label: str, colour: str) -> None:
    ax.add_patch(Rectangle((x - 0.5, y - 0.25), 1.0, 0.5, facecolor=colour, edgecolor="black", lw=0.8))
    ax.text(x, y, label, ha="center", va="center", fontsize=7)


def _arrow(ax, start: tuple, end: tuple, label: str, colour: str) -> None:
    (x0, y0), (x1, y1) = start, end
    if y0 == y1:  # a skip connection, left to right
        a, b = (x0 + 0.5, y0), (x1 - 0.5, y1)
        ax.text((x0 + x1) / 2, y0 + 0.06, label, ha="center", va="bottom", fontsize=6, color=colour)
    else:
        a, b = (x0 + (0.25 if x1 > x0 else -0.25), y0 - 0.25 if y1 < y0 else y0 + 0.25), (x1, y1 + 0.25 if y1 < y0 else y1 - 0.25)
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="->", mutation_scale=9, color=colour, lw=1.1))


def encoder_decoder(path: Path, depth: int = 4) -> Path:
    """Draw the encoder–decoder shape: resolution falls then rises, channels rise then fall."""
    fig, ax = plt.subplots(figsize=(9, 4))
    _u_diagram(ax, depth, 128, 16, skips=False)
    ax.set_title("Encoder–decoder (SegNet-like): only the bottleneck's features reach the decoder", fontsize=10)
    return _save(fig, path)


def unet(path: Path, depth: int = 4) -> Path:
    """Draw the U-Net: the encoder–decoder with a skip connection at every resolution."""
    fig, ax = plt.subplots(figsize=(9, 4))
    _u_diagram(ax, depth, 128, 16, skips=True)
    ax.set_title("U-Net: each encoder level is computed once and also sent across to the decoder", fontsize=10)
    return _save(fig, path)


def synthetic_nevus(path: Path) -> Path:
    """Draw one synthetic case of each class with its mask, each showing some of dermoscopy's difficulties."""
    import textwrap

    from utils.ph2 import CLASSES
    from utils.plots import overlay
    from utils.synthetic import PH2_GENERATOR_VERSION, _ph2_case, _ph2_case_scene, _stratified_ids

    wanted = (  # per class: the first case (seed 0) that shows these difficulties
        {"ruler": True, "hair": "few", "faint": False},
        {"faint": True, "large": False, "glare": True},
        {"large": True},
    )
    names = {"ruler": "a ruler", "faint": "fades into the skin", "large": "fills the frame", "glare": "glare",
             "bubbles": "air bubbles", "blur": "out of focus", "satellite": "a second spot", "off_centre": "off centre"}
    ids = _stratified_ids(200)
    fig, axes = plt.subplots(2, 3, figsize=(9.6, 5.0), gridspec_kw={"wspace": 0.04, "hspace": 0.16})
    for col, want in enumerate(wanted):
        case_id = next(
            c for c in ids
            if _ph2_case_scene(0, c)[0]["label"] == col and all(_ph2_case_scene(0, c)[1][k] == v for k, v in want.items())
        )
        image, mask, _, _ = _ph2_case(0, case_id)
        scene = _ph2_case_scene(0, case_id)[1]
        shown = [names[k] for k, v in scene.items() if v is True and k in names]
        shown += ["hairs"] if scene["hair"] != "none" else []
        shown += ["strong vignette"] if scene["vignette"] == "strong" else []
        box = (0, 768, 560, 0)  # sizes differ by a few pixels: every panel gets the same box
        axes[0, col].imshow(image, extent=box, aspect="auto")
        axes[0, col].set_title(f"{CLASSES[col]} ({case_id})\n" + textwrap.fill(", ".join(shown), 40), fontsize=8)
        axes[1, col].imshow(overlay(image, mask > 127), extent=box, aspect="auto")
        axes[1, col].set_title("lesion mask", fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(
        f"The synthetic stand-in (not PH2), generator version {PH2_GENERATOR_VERSION}: "
        "same files and layout, drawn by utils.synthetic",
        fontsize=9,
        y=1.03,
    )
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def make_figures(out: str | Path | None = None) -> list[Path]:
    """Draw every figure of the lesson into `out` (default: the repository's images/); return the paths."""
    out = Path(out) if out else ROOT / "images"
    out.mkdir(parents=True, exist_ok=True)
    return [
        semantic_vs_instance(out / "semantic_vs_instance.png"),
        encoder_decoder(out / "encoder_decoder.png"),
        unet(out / "unet.png"),
        synthetic_nevus(out / "synthetic_nevus.png"),
    ]
