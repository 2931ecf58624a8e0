"""The body-segmentation lab: prepare the student package and the hidden answers, then grade a class.

Submissions are folders `SUBMISSIONS/<student>/` holding either

- `masks/`: one PNG per test image with the image's file name, 0 (background) and 255 (person);
  no student code runs at all; or
- `model.keras`: a Keras 3 model without custom code (no Lambda layer, no custom classes). It is
  loaded with `safe_mode=True` and `compile=False`, never unpickled. It gets each hidden image
  resized to its input size as float32 in [0, 1]; its output is upsampled back to the image's
  size and thresholded at 0 when it is a logit, or at 0.5 when the output layer's activation is
  a sigmoid (a two-channel softmax output is read as background / person).

Scores are the mean IoU and Dice over every test image: a missing mask counts as an empty
prediction, and a mask that cannot be used (wrong size, not a PNG) scores 0 on its image. The
rubric turns the mean IoU into points. A student's files are only ever read.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError
from skimage.transform import resize
from tqdm.auto import tqdm

from utils import mads
from utils.errors import CourseError
from utils.metrics import dice_per_image, iou_per_image

DEFAULT_RUBRIC: dict = {
    "metric": "iou",
    "bands": [
        {"at_least": 0.90, "points": 10},
        {"at_least": 0.85, "points": 9},
        {"at_least": 0.80, "points": 8},
        {"at_least": 0.70, "points": 6},
        {"at_least": 0.50, "points": 4},
        {"above": 0.0, "points": 2},
    ],
    "otherwise": 0,
}
GRADEBOOK_COLUMNS = ("student", "iou", "dice", "points", "status", "reason")
MAX_MODEL_BYTES = 1 << 30  # a model.keras may unpack to at most 1 GiB
MAX_CONFIG_BYTES = 16 << 20
_MAX_REASON = 160


@dataclass
class GradeRow:
    """One line of the gradebook."""

    student: str
    iou: float
    dice: float
    points: float
    status: str  # "ok", "partial" or "error"
    reason: str


class _Refused(Exception):
    """A submission that cannot be graded; the message is the gradebook's reason."""


def _short(text: str, limit: int = _MAX_REASON) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exc_line(exc: BaseException) -> str:
    return _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


# ------------------------------------------------------------------------------------------- rubric


def check_rubric(rubric: dict, where: str = "rubric") -> dict:
    """Return the rubric if it is well formed, else raise CourseError naming what is wrong."""
    fix = "see DEFAULT_RUBRIC in utils/grading.py or lab/README.md"
    if not isinstance(rubric, dict) or not isinstance(rubric.get("bands"), list) or not rubric["bands"]:
        raise CourseError(f"{where}: needs a non-empty list 'bands' of {{'at_least' or 'above', 'points'}}: {fix}")
    if rubric.get("metric", "iou") not in ("iou", "dice"):
        raise CourseError(f"{where}: 'metric' must be 'iou' or 'dice', not {rubric.get('metric')!r}: {fix}")
    for i, band in enumerate(rubric["bands"], start=1):
        keys = {"at_least", "above"} & set(band) if isinstance(band, dict) else set()
        if len(keys) != 1 or not isinstance(band.get("points"), (int, float)):
            raise CourseError(f"{where}: band {i} needs exactly one of 'at_least'/'above' and a number 'points': {fix}")
        value = band[keys.pop()]
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise CourseError(f"{where}: band {i} threshold {value!r} must be a number between 0 and 1: {fix}")
    if not isinstance(rubric.get("otherwise", 0), (int, float)):
        raise CourseError(f"{where}: 'otherwise' must be a number of points: {fix}")
    return rubric


def load_rubric(path: str | Path) -> dict:
    """Return the rubric read from a JSON file (same shape as DEFAULT_RUBRIC)."""
    path = Path(path)
    try:
        rubric = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CourseError(f"cannot read the rubric {path} ({exc.strerror}): give an existing JSON file") from None
    except json.JSONDecodeError as exc:
        raise CourseError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}): fix the rubric file") from None
    return check_rubric(rubric, str(path))


def _bands(rubric: dict) -> list[tuple[float, bool, float]]:
    out = [(float(b.get("at_least", b.get("above"))), "above" in b, float(b["points"])) for b in rubric["bands"]]
    return sorted(out, key=lambda t: (t[0], t[1]), reverse=True)


def points_for(score: float, rubric: dict = DEFAULT_RUBRIC) -> float:
    """Return the points the rubric gives to a mean score (the highest band reached)."""
    for threshold, strict, points in _bands(rubric):
        if score > threshold or (not strict and score >= threshold):
            return points
    return float(rubric.get("otherwise", 0))


def max_points(rubric: dict = DEFAULT_RUBRIC) -> float:
    """Return the most points the rubric can give."""
    return max([p for _, _, p in _bands(rubric)] + [float(rubric.get("otherwise", 0))])


def rubric_text(rubric: dict = DEFAULT_RUBRIC) -> str:
    """Return the rubric as one readable line, e.g. "IoU ≥ 0.90 → 10, …, otherwise 0"."""
    metric = "IoU" if rubric.get("metric", "iou") == "iou" else "Dice"
    parts = [f"{metric} {'>' if strict else '≥'} {t:.2f} → {_num(p)}" for t, strict, p in _bands(rubric)]
    return ", ".join(parts + [f"otherwise {_num(rubric.get('otherwise', 0))}"])


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# ------------------------------------------------------------------------------------------ preparing


def _write_mask_png(mask01: np.ndarray, path: Path) -> None:
    Image.fromarray((np.asarray(mask01) > 0).astype(np.uint8) * 255, mode="L").save(path, format="PNG")


def prepare_lab(
    data: str | Path | None, out: Path, *, seed: int = 0, fractions: Sequence[float] = (0.8, 0.2)
) -> dict:
    """Write the student package and the hidden answers into `out` (which must be new or empty); return a summary.

    `out/student/train/{images,masks}` and `out/student/test/images` go to the students;
    `out/answers/{images,masks}` stay with the instructor. The split is by sequence. Images are
    copied byte for byte; masks are rewritten as single-channel PNG, 0 and 255.
    """
    out = Path(out).expanduser()
    if len(fractions) != 2:
        raise CourseError(f"fractions {tuple(fractions)} must be two numbers (train, test), e.g. (0.8, 0.2)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CourseError(f"{out} is not empty: prepare the lab into a new folder (nothing is ever overwritten)")
    source = mads.resolve_mads(data)
    frames = mads.list_frames(source.root)
    split = mads.split_by_sequence([f.group for f in frames], fractions, seed)
    train = [frames[i] for i in split["train"]]
    test = [frames[i] for i in split["test"]]
    created = not out.exists()
    dirs = {
        "train_images": out / "student" / "train" / "images",
        "train_masks": out / "student" / "train" / "masks",
        "test_images": out / "student" / "test" / "images",
        "answer_images": out / "answers" / "images",
        "answer_masks": out / "answers" / "masks",
    }
    jobs: list[tuple[Path, Path, bool]] = []  # (source, destination, is_mask)
    for f in train:
        jobs += [(f.image, dirs["train_images"] / f.image.name, False), (f.mask, dirs["train_masks"] / f"{f.name}.png", True)]
    for f in test:
        jobs += [(f.image, dirs["test_images"] / f.image.name, False), (f.image, dirs["answer_images"] / f.image.name, False)]
        jobs.append((f.mask, dirs["answer_masks"] / f"{f.name}.png", True))

    def copy(job: tuple[Path, Path, bool]) -> None:
        src, dst, is_mask = job
        if dst.exists():  # never overwrite, even a file that appeared meanwhile
            raise CourseError(f"{dst} already exists: prepare the lab into a new, empty folder")
        if is_mask:
            _write_mask_png(mads.read_mask(src), dst)
        else:
            shutil.copyfile(src, dst)

    try:
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=False)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(tqdm(pool.map(copy, jobs), total=len(jobs), desc="preparing the lab", unit="file"))
    except BaseException:
        for top in ("student", "answers"):  # only what this call created
            shutil.rmtree(out / top, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    sequences = {side: sorted({frames[i].group for i in idx}) for side, idx in split.items()}
    summary = {
        "source": source.kind,
        "data": str(source.root),
        "out": str(out),
        "student": str(out / "student"),
        "answers": str(out / "answers"),
        "train_frames": len(train),
        "test_frames": len(test),
        "train_sequences": sequences["train"],
        "test_sequences": sequences["test"],
        "seed": seed,
        "fractions": list(fractions),
    }
    (out / "answers" / "split.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out / "student" / "README.txt").write_text(
        "Body segmentation lab\n\n"
        f"train/: {len(train)} frames with their masks (0 background, 255 person).\n"
        f"test/: {len(test)} frames without masks.\n\n"
        "Hand in a folder holding masks/ with one PNG per test image, same file name and size,\n"
        "0 for background and 255 for the person; or model.keras (Keras 3, no custom code).\n"
        + (
            "\nSYNTHETIC: these frames are the course's generated stand-in, not MADS.\n"
            if source.kind == "synthetic"
            else f"\nData: Segmentation Full Body MADS ({mads.PAGE}), licence {mads.LICENCE}\nCite: {mads.CITATION}\n"
        ),
        encoding="utf-8",
    )
    return summary


# ------------------------------------------------------------------------------------------ answers


class _Answers:
    """The hidden test set: names, full-size 0/1 masks and (on demand) images."""

    def __init__(self, folder: Path):
        folder = Path(folder).expanduser()
        if not (folder / "masks").is_dir() and (folder / "answers" / "masks").is_dir():
            folder = folder / "answers"  # the folder `prepare_lab` wrote into
        if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
            raise CourseError(f"{folder} holds no images/ and masks/: pass the answers/ folder written by `lab prepare`")
        self.folder = folder
        self.image_paths = mads._pngs(folder / "images")
        mask_paths = mads._pngs(folder / "masks")
        missing = sorted(set(self.image_paths) - set(mask_paths))
        if missing:
            raise CourseError(f"{folder / 'masks'} lacks {missing[0]}.png: prepare the answers again")
        if not self.image_paths:
            raise CourseError(f"{folder / 'images'} holds no PNG: prepare the answers again")
        self.names = sorted(self.image_paths)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            self.masks = dict(zip(self.names, pool.map(lambda n: mads.read_mask(mask_paths[n]), self.names)))
        self._images: dict[str, np.ndarray] = {}

    def image(self, name: str) -> np.ndarray:
        if name not in self._images:
            self._images[name] = mads.read_image(self.image_paths[name])
        return self._images[name]


# ------------------------------------------------------------------------------------------ masks


def _student_mask(path: Path) -> np.ndarray:
    """Return a submitted PNG as (H, W) 0/1; a mask holding only 0 and 1 counts 1 as the person."""
    try:
        with Image.open(path, formats=["PNG"]) as img:
            img.load()
            if img.mode == "1":
                img = img.convert("L")
            elif img.mode == "P":
                img = img.convert("RGBA")
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _Refused("not a PNG" if isinstance(exc, UnidentifiedImageError) else f"unreadable PNG ({_exc_line(exc)})") from None
    colour = arr if arr.ndim == 2 else arr[..., : (3 if arr.shape[2] >= 3 else 1)]
    if arr.dtype != bool and colour.size and int(colour.max()) == 1:  # saved as 0/1 instead of 0/255
        return (colour.max(axis=-1) if colour.ndim == 3 else colour).astype(np.uint8)
    return mads.binarize_mask(arr)


def _from_masks(folder: Path, answers: _Answers) -> tuple[dict[str, np.ndarray | None], dict[str, float], list[str]]:
    """Return predictions (None when missing), forced scores (0 for unusable masks) and problems."""
    files = {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.suffix.lower() == ".png" and not p.name.startswith(".")
    }
    preds: dict[str, np.ndarray | None] = {}
    forced: dict[str, float] = {}
    missing, wrong_size, unreadable = [], [], []
    for name in answers.names:
        path = files.get(name)
        if path is None or not path.is_file():
            missing.append(name)
            preds[name] = None
            continue
        if path.is_symlink():
            unreadable.append(f"{path.name} is a link")
            forced[name] = 0.0
            continue
        try:
            mask = _student_mask(path)
        except _Refused as why:
            unreadable.append(f"{path.name} is {why}" if str(why) == "not a PNG" else f"{path.name}: {why}")
            forced[name] = 0.0
            continue
        h, w = answers.masks[name].shape
        if mask.shape != (h, w):
            wrong_size.append(f"mask {name} is {mask.shape[1]}x{mask.shape[0]}, expected {w}x{h}")
            forced[name] = 0.0
            continue
        preds[name] = mask
    problems = []
    n = len(answers.names)
    if missing:
        problems.append(f"{len(missing)} of {n} masks missing (first: {missing[0]}.png)")
    for label, items in (("wrong size", wrong_size), ("unusable", unreadable)):
        if len(items) == 1:
            problems.append(items[0])
        elif items:
            problems.append(f"{len(items)} masks {label} (first: {items[0]})")
    extra = sorted(set(files) - set(answers.names))
    if extra and len(extra) == len(files):
        problems.append(f"none of the {len(files)} PNG names matches a test image (e.g. {files[extra[0]].name})")
    return preds, forced, problems


# ------------------------------------------------------------------------------------------ models


def _walk(obj, found: list[dict]) -> None:
    if isinstance(obj, dict):
        found.append(obj)
        for value in obj.values():
            _walk(value, found)
    elif isinstance(obj, list):
        for value in obj:
            _walk(value, found)


def _code_problem(config: dict) -> str | None:
    """Return why a model config needs code beyond Keras's own layers, or None."""
    nodes: list[dict] = []
    _walk({k: v for k, v in config.items() if k != "compile_config"}, nodes)
    for node in nodes:
        cls = node.get("class_name")
        if cls in ("Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda"):
            return "model needs arbitrary code (Lambda layer) — refused"
        module = node.get("module")
        if isinstance(cls, str) and isinstance(module, str) and module != "keras" and not module.startswith("keras."):
            return f"model needs custom code ({cls} from {module}) — refused"
        registered = node.get("registered_name")
        if isinstance(cls, str) and isinstance(registered, str) and ">" in registered:
            return f"model needs custom code ({registered}) — refused"
    return None


def check_keras_file(path: Path) -> dict:
    """Return the model's config after checking the file is a safe Keras 3 archive; raise _Refused if not."""
    if not zipfile.is_zipfile(path):
        raise _Refused("model.keras is not a Keras 3 file (not a zip archive): save it with model.save('model.keras')")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            packed = sum(i.compress_size for i in infos)
            if total > MAX_MODEL_BYTES or (total > 64 << 20 and total > 100 * max(packed, 1)):
                raise _Refused(
                    f"model.keras would unpack to {total / 2**20:.0f} MiB from {packed / 2**20:.1f} MiB "
                    "(zip bomb?) — refused"
                )
            for info in infos:
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                if info.filename.startswith(("/", "\\")) or ".." in parts:
                    raise _Refused(f"model.keras member {info.filename!r} escapes its folder — refused")
            names = {i.filename: i for i in infos}
            if "config.json" not in names:
                raise _Refused("model.keras holds no config.json: save it with model.save('model.keras') (Keras 3)")
            if names["config.json"].file_size > MAX_CONFIG_BYTES:
                raise _Refused("model.keras config.json is too large — refused")
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, UnicodeDecodeError, RuntimeError) as exc:
        raise _Refused(f"model.keras is damaged ({_exc_line(exc)})") from None
    if not isinstance(config, dict):
        raise _Refused("model.keras config.json is not a model description")
    problem = _code_problem(config)
    if problem:
        raise _Refused(problem)
    return config


def _load_model(path: Path):
    """Load a checked model.keras from a private copy, safely and without compiling it."""
    check_keras_file(path)
    import keras

    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        copy = Path(tmp) / "model.keras"
        shutil.copyfile(path, copy)  # Keras only ever sees our copy: the student's file stays untouched
        try:
            return keras.saving.load_model(copy, safe_mode=True, compile=False)
        except Exception as exc:  # noqa: BLE001 - every loading failure becomes the student's reason
            text = str(exc)
            if "Lambda" in text or "arbitrary code" in text or "safe_mode" in text:
                raise _Refused(f"model needs arbitrary code ({_short(text, 80)}) — refused") from None
            raise _Refused(f"model.keras could not be loaded ({_exc_line(exc)})") from None


def _output_rule(model) -> str:
    """Return "sigmoid", "softmax" or "logits": how the model's output is turned into a mask."""
    layer = model.layers[-1] if model.layers else None
    activation = None
    if layer is not None:
        config = layer.get_config()
        activation = config.get("activation")
        if isinstance(activation, dict):
            activation = activation.get("config", {}).get("name") or activation.get("class_name")
    activation = str(activation).lower() if activation else ""
    if "sigmoid" in activation:
        return "sigmoid"
    if "softmax" in activation:
        return "softmax"
    return "logits"


def _input_size(model, default: int) -> tuple[int, int, int]:
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise _Refused(f"model input shape {shape} is not (batch, height, width, channels)")
    h, w, c = shape[1] or default, shape[2] or default, shape[3]
    if c != 3:
        raise _Refused(f"model expects {c} channels, expected 3 (RGB)")
    return int(h), int(w), int(c)


def _score_maps(model, images: np.ndarray, rule: str) -> np.ndarray:
    """Return (N, h, w) float32 maps where > 0 means person, from the model's raw output."""
    out = np.asarray(model.predict_on_batch(images.astype(np.float32) / 255.0), dtype=np.float32)
    if out.ndim == 3:
        out = out[..., None]
    if out.ndim != 4:
        raise _Refused(f"model output shape {out.shape} is not (batch, height, width, channels)")
    if out.shape[-1] == 2:
        return out[..., 1] - out[..., 0]
    if out.shape[-1] != 1:
        raise _Refused(f"model output has {out.shape[-1]} channels, expected 1 (or 2 for a softmax)")
    return out[..., 0] - 0.5 if rule == "sigmoid" else out[..., 0]


def predict_full_size(
    model, images: Sequence[np.ndarray], *, size: int = 128, batch_size: int = 8
) -> list[np.ndarray]:
    """Return 0/1 masks, each of its image's own size, from a Keras model (resize in, upsample out).

    Logits are thresholded at 0, or 0.5 after a sigmoid output layer; the score map is upsampled
    before thresholding so that the outline stays smooth at full size.
    """
    h, w, _ = _input_size(model, size)
    rule = _output_rule(model)
    masks = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch = np.stack([mads.resize_image(img, (h, w)) for img in chunk])
        maps = _score_maps(model, batch, rule)
        for img, score in zip(chunk, maps):
            big = resize(score, img.shape[:2], order=1, preserve_range=True, anti_aliasing=False)
            masks.append((big > 0).astype(np.uint8))
    return masks


def _from_model(path: Path, answers: _Answers, size: int) -> dict[str, np.ndarray | None]:
    model = _load_model(path)
    try:
        images = [answers.image(n) for n in answers.names]
        masks = predict_full_size(model, images, size=size)
    finally:
        del model
    return dict(zip(answers.names, masks))


# ------------------------------------------------------------------------------------------ grading


@dataclass
class _Result:
    row: GradeRow
    preds: dict[str, np.ndarray | None]
    iou: dict[str, float]
    dice: dict[str, float]
    source: str


def _score(preds: dict[str, np.ndarray | None], forced: dict[str, float], answers: _Answers):
    ious, dices = {}, {}
    for name in answers.names:
        truth = answers.masks[name]
        if name in forced:
            ious[name] = dices[name] = forced[name]
            continue
        pred = preds.get(name)
        pred = np.zeros_like(truth) if pred is None else pred  # missing: an empty prediction
        ious[name] = float(iou_per_image(truth, pred)[0])
        dices[name] = float(dice_per_image(truth, pred)[0])
    return ious, dices


def _grade_one(folder: Path, answers: _Answers, rubric: dict, size: int) -> _Result:
    student = folder.name
    masks_dir, model_path = folder / "masks", folder / "model.keras"
    metric = rubric.get("metric", "iou")
    n = len(answers.names)
    if masks_dir.is_dir() and not masks_dir.is_symlink():
        preds, forced, problems = _from_masks(masks_dir, answers)
        usable = sum(p is not None for p in preds.values())
        source = f"masks/ ({usable} of {n} usable)"
        if not usable:
            reason = "empty submission: " + ("; ".join(problems) if problems else "masks/ holds no PNG")
            return _Result(GradeRow(student, 0.0, 0.0, float(rubric.get("otherwise", 0)), "error", _short(reason)), {}, {}, {}, source)
        if model_path.is_file():
            problems.append("model.keras ignored (masks/ is graded when both are present)")
    elif model_path.is_file() and not model_path.is_symlink():
        try:
            preds, forced, problems = _from_model(model_path, answers, size), {}, []
        except _Refused as why:
            return _Result(GradeRow(student, 0.0, 0.0, float(rubric.get("otherwise", 0)), "error", _short(str(why))), {}, {}, {}, "model.keras")
        source = "model.keras"
    else:
        stray = [p.name for p in folder.iterdir() if p.suffix.lower() == ".png"]
        hint = f" ({len(stray)} PNG files found outside masks/: move them into masks/)" if stray else ""
        reason = f"empty submission: no masks/ folder and no model.keras{hint}"
        return _Result(GradeRow(student, 0.0, 0.0, float(rubric.get("otherwise", 0)), "error", _short(reason)), {}, {}, {}, "nothing")
    ious, dices = _score(preds, forced, answers)
    mean_iou, mean_dice = float(np.mean(list(ious.values()))), float(np.mean(list(dices.values())))
    points = points_for(mean_iou if metric == "iou" else mean_dice, rubric)
    only_notes = all(p.startswith("model.keras ignored") for p in problems)
    status = "ok" if only_notes else "partial"
    reason = "; ".join(problems) if problems else f"all {n} test images graded"
    if only_notes and problems:
        reason = f"all {n} test images graded; {reason}"
    row = GradeRow(student, mean_iou, mean_dice, points, status, _short(reason, 240))
    return _Result(row, preds, ious, dices, source)


def _students(submissions: Path) -> list[Path]:
    return sorted(
        (p for p in submissions.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith((".", "__"))),
        key=lambda p: p.name,
    )


def _write_gradebook(rows: Sequence[GradeRow], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(GRADEBOOK_COLUMNS)
        for r in rows:
            writer.writerow([r.student, f"{r.iou:.4f}", f"{r.dice:.4f}", _num(r.points), r.status, r.reason])


def _report_figure(result: _Result, answers: _Answers, path: Path, k: int = 2) -> bool:
    """Save the best and worst cases as rows of image / truth / prediction; return False if none."""
    from matplotlib.figure import Figure

    from utils.plots import PRED_COLOUR, TRUTH_COLOUR, overlay

    graded = [n for n in answers.names if result.preds.get(n) is not None]
    if not graded:
        return False
    order = sorted(graded, key=lambda n: (result.iou[n], n))
    best = order[::-1][:k]
    picks = [(n, "best") for n in best] + [(n, "worst") for n in order[:k] if n not in best]
    fig = Figure(figsize=(9, 2.6 * len(picks)))
    axes = fig.subplots(len(picks), 3, squeeze=False)
    for row, (name, label) in enumerate(picks):
        image, truth, pred = answers.image(name), answers.masks[name], result.preds[name]
        panels = (
            (image, f"{label}: {name}"),
            (overlay(image, truth, TRUTH_COLOUR), "truth"),
            (overlay(image, pred, PRED_COLOUR), f"prediction, IoU {result.iou[name]:.3f}"),
        )
        for col, (panel, title) in enumerate(panels):
            axes[row, col].imshow(panel)
            axes[row, col].set_title(title, fontsize=8)
            axes[row, col].set_axis_off()
    fig.suptitle(f"{result.row.student}: mean IoU {result.row.iou:.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return True


def _write_report(result: _Result, answers: _Answers, rubric: dict, reports: Path) -> None:
    r = result.row
    has_figure = _report_figure(result, answers, reports / f"{r.student}.png")
    if not has_figure:
        (reports / f"{r.student}.png").unlink(missing_ok=True)  # a figure left by an earlier run
    lines = [
        f"# Lab report: {r.student}",
        "",
        f"- status: **{r.status}**",
        f"- graded from: {result.source}",
        f"- mean IoU over the {len(answers.names)} test images: **{r.iou:.4f}**",
        f"- mean Dice: {r.dice:.4f}",
        f"- points: **{_num(r.points)} / {_num(max_points(rubric))}** (rubric: {rubric_text(rubric)})",
        f"- notes: {r.reason}",
    ]
    if result.iou:
        worst = sorted(result.iou, key=lambda n: (result.iou[n], n))[:5]
        lines += ["", "## Lowest-scoring images", "", "| image | IoU | Dice |", "| --- | --- | --- |"]
        lines += [f"| {n} | {result.iou[n]:.3f} | {result.dice[n]:.3f} |" for n in worst]
    if has_figure:
        lines += ["", "Best and worst cases (image, truth in green, prediction in magenta):", "", f"![cases]({r.student}.png)"]
    (reports / f"{r.student}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def grade_submissions(
    answers: Path,
    submissions: Path,
    out: Path,
    *,
    rubric: dict | str | Path = DEFAULT_RUBRIC,
    size: int = 128,
) -> list[GradeRow]:
    """Grade every `submissions/<student>/`; write `out/gradebook.csv` and `out/reports/`; return the rows.

    `size` is the input size given to a model.keras whose input size is not fixed. One student's
    failure (any exception) becomes that student's error row; the batch always completes.
    """
    rubric = load_rubric(rubric) if isinstance(rubric, (str, Path)) else check_rubric(rubric)
    answers_dir, submissions, out = Path(answers).expanduser(), Path(submissions).expanduser(), Path(out).expanduser()
    if not submissions.is_dir():
        raise CourseError(f"{submissions} is not a folder: pass the folder holding one sub-folder per student")
    sub_resolved, out_resolved = submissions.resolve(), out.resolve()
    if out_resolved == sub_resolved or sub_resolved in out_resolved.parents:
        raise CourseError(f"{out} is inside {submissions}: write the grades somewhere else")
    key = _Answers(answers_dir)
    students = _students(submissions)
    if not students:
        raise CourseError(f"{submissions} holds no student folders: put each submission in submissions/<student>/")
    reports = out / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    rows = []
    for folder in tqdm(students, desc="grading", unit="student"):
        try:
            result = _grade_one(folder, key, rubric, size)
        except Exception as exc:  # noqa: BLE001 - one student's failure never stops the batch
            row = GradeRow(folder.name, 0.0, 0.0, float(rubric.get("otherwise", 0)), "error", _exc_line(exc))
            result = _Result(row, {}, {}, {}, "error")
        if not (math.isfinite(result.row.iou) and math.isfinite(result.row.dice)):
            result.row.status, result.row.reason = "error", "scores are not finite numbers"
            result.row.iou = result.row.dice = 0.0
        try:
            _write_report(result, key, rubric, reports)
        except Exception as exc:  # noqa: BLE001 - a failed figure must not lose the grade
            result.row.reason = _short(f"{result.row.reason}; report not written ({_exc_line(exc)})", 240)
        rows.append(result.row)
    rows.sort(key=lambda r: r.student)
    _write_gradebook(rows, out / "gradebook.csv")
    return rows


def read_gradebook(path: Path) -> list[dict]:
    """Return gradebook.csv's rows as dicts (scores as floats)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["iou"], r["dice"], r["points"] = float(r["iou"]), float(r["dice"]), float(r["points"])
    return rows


# --------------------------------------------------------------------------------------- submitting


def write_submission(
    dest: str | Path,
    image_paths: Sequence[str | Path],
    predict: Callable[[np.ndarray], np.ndarray],
    size: int,
    *,
    model=None,
    overwrite: bool = False,
    batch_size: int = 16,
) -> Path:
    """Write `dest/masks/<name>.png` (0/255, each image's own size) for every image; return dest.

    `predict` maps uint8 images (N, size, size, 3) to 0/1 masks (N, size, size); each mask is
    upsampled back to its image's size. With `model`, also saves `dest/model.keras`. An earlier
    submission in `dest` (its masks/*.png and model.keras, nothing else) is replaced only with
    `overwrite=True`.
    """
    dest = Path(dest).expanduser()
    old = sorted((dest / "masks").glob("*.png")) + [p for p in [dest / "model.keras"] if p.is_file()]
    if old and not overwrite:
        raise CourseError(f"{dest} already holds a submission: pass overwrite=True to replace it, or choose another folder")
    for path in old:  # a stale mask or model would be graded as if it were new
        path.unlink()
    (dest / "masks").mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in image_paths]
    for start in tqdm(range(0, len(paths), batch_size), desc="writing the submission", unit="batch"):
        chunk = paths[start : start + batch_size]
        full = [mads.read_image(p) for p in chunk]
        small = np.stack([mads.resize_image(img, size) for img in full])
        preds = np.asarray(predict(small))
        for path, img, pred in zip(chunk, full, preds):
            _write_mask_png(mads.resize_mask(np.asarray(pred) > 0, img.shape[:2]), dest / "masks" / f"{path.stem}.png")
    if model is not None:
        model.save(dest / "model.keras")
    return dest


def submission_summary(dest: str | Path) -> dict:
    """Return what a submission folder holds: mask count and whether model.keras is there."""
    dest = Path(dest)
    masks = sorted((dest / "masks").glob("*.png")) if (dest / "masks").is_dir() else []
    return {"folder": str(dest), "masks": len(masks), "model": (dest / "model.keras").is_file()}


__all__ = [
    "DEFAULT_RUBRIC",
    "GradeRow",
    "check_keras_file",
    "grade_submissions",
    "load_rubric",
    "max_points",
    "points_for",
    "predict_full_size",
    "prepare_lab",
    "read_gradebook",
    "rubric_text",
    "write_submission",
]
