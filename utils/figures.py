"""The lessons' figures in `images/` (English and Spanish), drawn from the course's own code (`python -m utils figures`)."""

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


#: The words drawn in the figures, in each language of the lessons (the Spanish files end in `.es.png`).
TEXT = {
    "en": {
        "image": "image",
        "semantic": "semantic: one label per class",
        "instance": "instance: one label per object",
        "panoptic": "panoptic: classes for stuff,\nan instance per thing",
        "merged": "The two touching round objects merge in the semantic mask (connected components find {merged}"
                  " round regions, not 3);\ninstance segmentation keeps them apart.",
        "panoptic_note": "Stuff (wall, floor) has only a class; each thing (round or square object) also gets its own number.",
        "segnet_title": "SegNet: the decoder gets the bottleneck's features and the positions of the pooling maxima",
        "unet_title": "U-Net: each encoder level is also copied across and concatenated in the decoder",
        "encoder": "encoder",
        "decoder": "decoder",
        "bottleneck": "bottleneck",
        "input": "image {s}²×3",
        "output": "logits {s}²×1",
        "head": "1×1 conv",
        "pool": "max-pool 2×2",
        "pool_idx": "max-pool 2×2,\nkeeps positions",
        "unpool": "1×1 conv,\nmax-unpool",
        "upconv": "transposed\nconv 2×2",
        "indices": "positions of the maxima",
        "copy": "copy and concatenate",
        "block": "each box: two 3×3 conv + batch norm + ReLU; labels give side² × channels",
        "onehot_title": "Each pixel's target is a one-hot vector over the classes",
        "mask": "mask (0 skin, 1 lesion)",
        "skin_channel": "channel 0: skin",
        "lesion_channel": "channel 1: lesion",
        "onehot_note": "With two classes, channel 0 = 1 − channel 1: the mask itself is the target of a one-channel network.",
        "truth": "truth A",
        "prediction": "prediction B",
        "overlap": "A ∩ B",
        "dice_title": "Dice = 2|A∩B| / (|A|+|B|) = {dice:.2f}     IoU = |A∩B| / |A∪B| = {iou:.2f}",
        "dice_note": "|A| = {a} px, |B| = {b} px, |A∩B| = {i} px, |A∪B| = {u} px;  for one image, Dice = 2·IoU / (1 + IoU)",
        "x": "input 4×4",
        "pooled": "max-pooled 2×2\n(positions remembered)",
        "unpooled": "max-unpooled 4×4\n(zeros elsewhere)",
        "tin": "input 2×2",
        "kernel": "learnt kernel 2×2",
        "tout": "transposed conv, stride 2:\neach value × kernel, side by side",
        "up_title_a": "SegNet: max-pooling remembers where, max-unpooling puts back there",
        "up_title_b": "U-Net: a transposed convolution learns how to up-sample",
    },
    "es": {
        "image": "imagen",
        "semantic": "semántica: una etiqueta por clase",
        "instance": "instancias: una etiqueta por objeto",
        "panoptic": "panóptica: clases para la materia,\nuna instancia por cosa",
        "merged": "Los dos objetos redondos que se tocan se funden en la máscara semántica (las componentes conexas"
                  " encuentran {merged} regiones redondas, no 3);\nla segmentación de instancias los mantiene separados.",
        "panoptic_note": "La materia (pared, suelo) solo tiene clase; cada cosa (objeto redondo o cuadrado) recibe además su propio número.",
        "segnet_title": "SegNet: el decodificador recibe las características del cuello de botella y las posiciones de los máximos",
        "unet_title": "U-Net: cada nivel del codificador también se copia y se concatena en el decodificador",
        "encoder": "codificador",
        "decoder": "decodificador",
        "bottleneck": "cuello de botella",
        "input": "imagen {s}²×3",
        "output": "logits {s}²×1",
        "head": "conv 1×1",
        "pool": "agrupamiento\nmáximo 2×2",
        "pool_idx": "agrupamiento máximo 2×2,\nguarda las posiciones",
        "unpool": "conv 1×1,\ndesagrupamiento",
        "upconv": "conv traspuesta\n2×2",
        "indices": "posiciones de los máximos",
        "copy": "copiar y concatenar",
        "block": "cada caja: dos conv 3×3 + normalización por lotes + ReLU; las etiquetas dan lado² × canales",
        "onehot_title": "El objetivo de cada píxel es un vector one-hot sobre las clases",
        "mask": "máscara (0 piel, 1 lesión)",
        "skin_channel": "canal 0: piel",
        "lesion_channel": "canal 1: lesión",
        "onehot_note": "Con dos clases, canal 0 = 1 − canal 1: la propia máscara es el objetivo de una red de un canal.",
        "truth": "real A",
        "prediction": "predicción B",
        "overlap": "A ∩ B",
        "dice_title": "Dice = 2|A∩B| / (|A|+|B|) = {dice:.2f}     IoU = |A∩B| / |A∪B| = {iou:.2f}",
        "dice_note": "|A| = {a} px, |B| = {b} px, |A∩B| = {i} px, |A∪B| = {u} px;  para una imagen, Dice = 2·IoU / (1 + IoU)",
        "x": "entrada 4×4",
        "pooled": "agrupamiento máximo 2×2\n(posiciones recordadas)",
        "unpooled": "desagrupamiento máximo 4×4\n(ceros en el resto)",
        "tin": "entrada 2×2",
        "kernel": "núcleo aprendido 2×2",
        "tout": "conv traspuesta, paso 2:\ncada valor × núcleo, uno junto a otro",
        "up_title_a": "SegNet: el agrupamiento máximo recuerda dónde; el desagrupamiento devuelve ahí",
        "up_title_b": "U-Net: una convolución traspuesta aprende a sobremuestrear",
    },
}
LANGUAGES = tuple(TEXT)


def _words(lang: str) -> dict[str, str]:
    if lang not in TEXT:
        raise ValueError(f"no figure text in {lang!r}: choose one of {', '.join(TEXT)}")
    return TEXT[lang]


def semantic_vs_instance(path: Path, lang: str = "en") -> Path:
    """Draw a scene, its semantic mask and its instance mask side by side."""
    t = _words(lang)
    img, classes, instances = scene()
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 4.2))
    axes[0].imshow(img)
    axes[1].imshow(CLASS_COLOURS[classes])
    axes[2].imshow(_instance_colours(instances))
    for ax, title in zip(axes, (t["image"], t["semantic"], t["instance"])):
        ax.set_title(title, fontsize=10.5)
        ax.set_axis_off()
    merged = measure.label(classes == 1).max()
    fig.text(0.5, 0.1, t["merged"].format(merged=merged), ha="center", va="top", fontsize=9.5)
    return _save(fig, path)


def _instance_colours(instances: np.ndarray, background=(0.93, 0.93, 0.93)) -> np.ndarray:
    palette = plt.get_cmap("tab10")(np.arange(10))[:, :3]
    return np.where(instances[..., None] > 0, palette[instances % 10], np.asarray(background))


def panoptic(path: Path, lang: str = "en") -> Path:
    """Draw one scene segmented three ways: semantic, instance and panoptic (stuff by class, things by instance)."""
    t = _words(lang)
    img, classes, instances = scene()
    size = classes.shape[0]
    floor = np.zeros_like(classes, dtype=bool)
    floor[int(size * 0.62):] = True  # two kinds of stuff behind the things: wall above, floor below
    img = img.copy()
    img[floor & (classes == 0)] = img[floor & (classes == 0)] * 0.8 + np.array([0.1, 0.08, 0.0])
    stuff_colours = np.array([[0.80, 0.85, 0.93], [0.85, 0.80, 0.70]])  # wall, floor
    stuff = stuff_colours[floor.astype(int)]
    semantic = np.where(classes[..., None] > 0, CLASS_COLOURS[classes], stuff)
    panoptic_rgb = np.where(instances[..., None] > 0, _instance_colours(instances), stuff)
    fig, axes = plt.subplots(1, 4, figsize=(12.5, 3.9))
    panels = (img, semantic, _instance_colours(instances), panoptic_rgb)
    for ax, panel, title in zip(axes, panels, (t["image"], t["semantic"], t["instance"], t["panoptic"])):
        ax.imshow(np.clip(panel, 0, 1))
        ax.set_title(title, fontsize=10.5)
        ax.set_axis_off()
    fig.text(0.5, 0.12, t["panoptic_note"], ha="center", va="top", fontsize=9.5)
    return _save(fig, path)


# ------------------------------------------------------------------------------ network diagrams

_DX, _DY, _W, _H = 2.2, 1.5, 2.0, 0.62  # spacing of levels and the size of a box


def _u_diagram(ax, t: dict, depth: int, size: int, base: int, kind: str) -> None:
    """Draw encoder levels down the left, decoder levels up the right, the bottleneck at the bottom."""
    enc = {lvl: (lvl * _DX, -_DY * lvl) for lvl in range(depth)}
    dec = {lvl: ((2 * depth - lvl) * _DX, -_DY * lvl) for lvl in range(depth)}
    bottom = (depth * _DX, -_DY * depth)
    for lvl in range(depth):
        s, c = size // 2**lvl, base * 2**lvl
        _box(ax, enc[lvl], f"{s}²×{c}", "#f4a582")
        label = f"{s}²×({c}+{c})\n→ {c}" if kind == "unet" else f"{s}²×{c}"
        _box(ax, dec[lvl], label, "#92c5de", tall=kind == "unet")
    _box(ax, bottom, f"{size // 2**depth}²×{base * 2**depth}", "#fddbc7")
    ax.text(bottom[0], bottom[1] - 0.55, t["bottleneck"], ha="center", va="top", fontsize=10)
    for lvl in range(depth):
        below_enc = enc.get(lvl + 1, bottom)
        below_dec = dec.get(lvl + 1, bottom)
        _arrow(ax, enc[lvl], below_enc, t["pool_idx"] if kind == "segnet" else t["pool"], "black", side="left")
        _arrow(ax, below_dec, dec[lvl], t["unpool"] if kind == "segnet" else t["upconv"], "black", side="right")
        (x0, y0), (x1, _) = enc[lvl], dec[lvl]
        colour = "tab:purple" if kind == "segnet" else "tab:green"
        style = "--" if kind == "segnet" else "-"
        ax.add_patch(FancyArrowPatch((x0 + _W / 2, y0), (x1 - _W / 2, y0), arrowstyle="-|>", mutation_scale=12,
                                     color=colour, lw=1.4, linestyle=style))
        if lvl == 0:  # one label says what every arrow of this colour carries
            words = t["indices"] if kind == "segnet" else t["copy"]
            ax.text((x0 + x1) / 2, y0 + 0.08, words, ha="center", va="bottom", fontsize=10, color=colour)
    # input above the first encoder level, the 1×1 head above the last decoder level
    top = 1.25
    _box(ax, (enc[0][0], top), t["input"].format(s=size), "white", wide=True)
    _box(ax, (dec[0][0], top), t["output"].format(s=size), "#d9f0d3", wide=True)
    ax.add_patch(FancyArrowPatch((enc[0][0], top - _H / 2), (enc[0][0], _H / 2), arrowstyle="-|>", mutation_scale=12, lw=1.2))
    head_from = dec[0][1] + (0.42 if kind == "unet" else _H / 2)
    ax.add_patch(FancyArrowPatch((dec[0][0], head_from), (dec[0][0], top - _H / 2), arrowstyle="-|>", mutation_scale=12, lw=1.2))
    ax.text(dec[0][0] + 0.2, (head_from + top - _H / 2) / 2, t["head"], ha="left", va="center", fontsize=9)
    ax.text(enc[0][0], -_DY * depth, t["encoder"], ha="center", fontsize=12, color="#b2182b")
    ax.text(dec[0][0], -_DY * depth, t["decoder"], ha="center", fontsize=12, color="#2166ac")
    ax.text(depth * _DX, -_DY * depth - 1.05, t["block"], ha="center", va="top", fontsize=9, color="0.3")
    ax.set_xlim(-1.9, 2 * depth * _DX + 1.9)
    ax.set_ylim(-_DY * depth - 1.5, top + 0.5)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _box(ax, centre: tuple, label: str, colour: str, tall: bool = False, wide: bool = False) -> None:
    x, y = centre
    h, w = _H * (1.35 if tall else 1.0), _W * (1.3 if wide else 1.0)
    ax.add_patch(Rectangle((x - w / 2, y - h / 2), w, h, facecolor=colour, edgecolor="black", lw=0.8))
    ax.text(x, y, label, ha="center", va="center", fontsize=9.5 if not tall else 8.5, linespacing=1.1)


def _arrow(ax, start: tuple, end: tuple, label: str, colour: str, side: str) -> None:
    """Draw a slanted arrow between two levels with its label beside it (left of encoder arrows, right of decoder ones)."""
    (x0, y0), (x1, y1) = start, end
    a = (x0, y0 - _H / 2) if y1 < y0 else (x0, y0 + _H / 2)
    b = (x1, y1 + _H / 2) if y1 < y0 else (x1, y1 - _H * 0.68)
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=11, color=colour, lw=1.1))
    mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    # below the arrow's middle, on the side away from it: the space between two levels is empty there
    if side == "left":
        ax.text(mx - 0.1, my - 0.05, label, ha="right", va="top", fontsize=9, color=colour, linespacing=1.05)
    else:
        ax.text(mx + 0.1, my - 0.05, label, ha="left", va="top", fontsize=9, color=colour, linespacing=1.05)


def _network_figure(path: Path, depth: int, lang: str, kind: str) -> Path:
    t = _words(lang)
    fig, ax = plt.subplots(figsize=(13, 6.6))
    _u_diagram(ax, t, depth, 128, 16, kind)
    ax.set_title(t[f"{kind}_title"], fontsize=11.5)
    return _save(fig, path)


def encoder_decoder(path: Path, depth: int = 4, lang: str = "en") -> Path:
    """Draw SegNet: the encoder–decoder whose decoder un-pools at the positions its encoder's pooling kept."""
    return _network_figure(path, depth, lang, "segnet")


def unet(path: Path, depth: int = 4, lang: str = "en") -> Path:
    """Draw the U-Net: skip connections whose concatenation doubles the channels before each decoder block."""
    return _network_figure(path, depth, lang, "unet")


# ------------------------------------------------------------------------------ small worked examples


def _grid(ax, values: np.ndarray, title: str, highlight: np.ndarray | None = None, cmap: str = "Blues",
          fmt: str = "{:g}") -> None:
    """Draw a small matrix as coloured cells with its numbers written in."""
    values = np.asarray(values, dtype=float)
    ax.imshow(values, cmap=cmap, vmin=min(0.0, values.min()), vmax=max(1.0, values.max() * 1.6))
    for (r, c), v in np.ndenumerate(values):
        bold = highlight is not None and highlight[r, c]
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=11, fontweight="bold" if bold else "normal",
                color="#b2182b" if bold else "black")
    ax.set_xticks(np.arange(-0.5, values.shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, values.shape[0], 1), minor=True)
    ax.grid(which="minor", color="0.4", lw=0.8)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=10)


def onehot_target(path: Path, lang: str = "en") -> Path:
    """Draw a tiny mask and its per-pixel one-hot target: one channel per class."""
    t = _words(lang)
    mask = np.zeros((6, 6), int)
    rr, cc = draw.disk((2.6, 2.8), 2.3, shape=mask.shape)
    mask[rr, cc] = 1
    onehot = np.eye(2, dtype=int)[mask]  # (6, 6, 2): pixel value k -> 1 in channel k
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.9))
    _grid(axes[0], mask, t["mask"], cmap="Oranges")
    _grid(axes[1], onehot[..., 0], t["skin_channel"], cmap="Blues")
    _grid(axes[2], onehot[..., 1], t["lesion_channel"], cmap="Oranges")
    fig.suptitle(t["onehot_title"], fontsize=11.5)
    fig.text(0.5, 0.1, t["onehot_note"], ha="center", va="top", fontsize=9.5)
    return _save(fig, path)


def dice_iou(path: Path, lang: str = "en") -> Path:
    """Draw a true and a predicted mask that overlap, with their Dice and IoU computed from the pixels."""
    t = _words(lang)
    size = 120
    truth = np.zeros((size, size), bool)
    pred = np.zeros((size, size), bool)
    truth[draw.ellipse(60, 52, 34, 40, shape=truth.shape)] = True
    pred[draw.ellipse(64, 72, 30, 36, shape=pred.shape)] = True
    a, b = int(truth.sum()), int(pred.sum())
    i, u = int((truth & pred).sum()), int((truth | pred).sum())
    picture = np.ones((size, size, 3))
    picture[truth & ~pred] = (0.55, 0.85, 0.55)
    picture[pred & ~truth] = (0.95, 0.6, 0.85)
    picture[truth & pred] = (0.45, 0.45, 0.75)
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    ax.imshow(picture)
    ax.text(28, 60, t["truth"], ha="center", va="center", fontsize=10)
    ax.text(100, 64, t["prediction"], ha="center", va="center", fontsize=10)
    ax.text(62, 62, t["overlap"], ha="center", va="center", fontsize=10, color="white", fontweight="bold")
    ax.set_axis_off()
    ax.set_title(t["dice_title"].format(dice=2 * i / (a + b), iou=i / u), fontsize=10.5)
    fig.text(0.5, 0.03, t["dice_note"].format(a=a, b=b, i=i, u=u), ha="center", va="top", fontsize=8.5)
    return _save(fig, path)


def upsampling(path: Path, lang: str = "en") -> Path:
    """Draw max-pooling with remembered positions and max-unpooling, next to a stride-2 transposed convolution."""
    t = _words(lang)
    x = np.array([[1, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]])
    blocks = x.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)  # the four 2×2 windows
    pooled = blocks.max(axis=2)
    where = np.zeros_like(x, bool)
    for r in range(2):
        for c in range(2):
            k = int(blocks[r, c].argmax())
            where[2 * r + k // 2, 2 * c + k % 2] = True
    unpooled = np.where(where, x, 0)
    tin = np.array([[1, 2], [3, 0]])
    kernel = np.array([[0.5, 1], [1, 0.5]])
    tout = np.kron(tin, kernel)  # stride 2 with a 2×2 kernel: each value scales its own copy of the kernel
    fig = plt.figure(figsize=(10.5, 7.6))
    top, bottom = fig.subfigures(2, 1, hspace=0.08)
    for sub, title, panels in (
        (top, t["up_title_a"], ((x, t["x"], where, "Blues"), (pooled, t["pooled"], np.ones_like(pooled, bool), "Blues"),
                                (unpooled, t["unpooled"], where, "Blues"))),
        (bottom, t["up_title_b"], ((tin, t["tin"], None, "Greens"), (kernel, t["kernel"], None, "Purples"),
                                   (tout, t["tout"], None, "Greens"))),
    ):
        sub.suptitle(title, fontsize=11.5)
        for ax, (values, name, highlight, cmap) in zip(sub.subplots(1, 3), panels):
            _grid(ax, values, name, highlight=highlight, cmap=cmap)
    return _save(fig, path)


def synthetic_nevus(path: Path) -> Path:
    """Draw one synthetic case of each class with its mask, each showing some of dermoscopy's difficulties."""
    import textwrap

    from utils.ph2 import class_names
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
        axes[0, col].set_title(f"{class_names()[col]} ({case_id})\n" + textwrap.fill(", ".join(shown), 40), fontsize=8)
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
    """Draw every figure of the lessons into `out` (default: the repository's images/); return the paths.

    A figure with words is drawn once per language: `name.png` in English, `name.es.png` in Spanish.
    """
    out = Path(out) if out else ROOT / "images"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw_figure in (
        ("semantic_vs_instance", semantic_vs_instance),
        ("encoder_decoder", encoder_decoder),
        ("unet", unet),
        ("upsampling", upsampling),
        ("onehot_target", onehot_target),
        ("dice_iou", dice_iou),
        ("panoptic", panoptic),
    ):
        for lang in LANGUAGES:
            paths.append(draw_figure(out / (f"{name}.png" if lang == "en" else f"{name}.{lang}.png"), lang=lang))
    paths.append(synthetic_nevus(out / "synthetic_nevus.png"))
    return paths
