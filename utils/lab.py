"""What the lab notebooks share that is not the lesson: the baseline, open-TODO messages, the self-check, the report.

The model, the loss, the training loop and the evaluation are the student's work and stay in the
notebooks. Both tracks (Keras and PyTorch) call these helpers, so the grader's "unmodified starter"
baseline (`utils.grading.prepare.starter_masks`) is computed by the very function the starters use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from utils.course import language, runs_dir, say
from utils.errors import CourseError
from utils.metrics import scores

REPORT_ENV = "LAB_REPORT"


def prior_mask(y_train: np.ndarray) -> np.ndarray:
    """Return the trivial baseline: the pixels most often "person" in the training masks, as many as the average person covers.

    `y_train` holds 0/1 masks of shape (N, size, size); the result is a (size, size) uint8 0/1 mask.
    """
    y = np.asarray(y_train)
    if y.ndim != 3 or len(y) == 0:
        raise CourseError(say(f"prior_mask needs training masks of shape (N, size, size) with N > 0, got {y.shape}",
                              f"prior_mask necesita máscaras de entrenamiento de forma (N, size, size) con N > 0, no {y.shape}"))
    prior = y.mean(axis=0)
    return (prior > np.quantile(prior, 1 - y.mean())).astype(np.uint8)


def todo_open(number: int, what: str) -> None:
    """Print one line saying that TODO `number` is still open and what to do; never raises."""
    try:
        print(f"[TODO {number}] {what}", flush=True)
    except Exception:  # noqa: BLE001 - a message must never stop the notebook
        pass


# The self-check's lines in each language of the course (the Spanish notebooks pass lang="es").
MESSAGES = {
    "en": {
        "ok": "ok  ", "fix": "FIX ", "note": "note",
        "header": "self-check on {n} validation frames:",
        "raised": "predict(images) raised {kind}: {text}",
        "traceback": "run predict on a few frames in a cell of its own to see the full traceback",
        "array_ok": "predict returns a NumPy array",
        "array_fix": "predict returns {kind}, not a NumPy array: convert it "
                     "(keras.ops.convert_to_numpy, or tensor.cpu().numpy() in PyTorch)",
        "shape_ok": "shape {shape}: one (size, size) mask per frame",
        "shape_fix": "shape {shape}, expected {expected}: drop the channel axis (pred[..., 0]) "
                     "and keep one mask per input frame",
        "dtype_ok": "dtype uint8",
        "dtype_fix": "dtype {dtype}, expected uint8: threshold, then .astype(np.uint8)",
        "values_ok": "values only 0 and 1",
        "values_fix": "values {shown}: masks must hold only 0 and 1 (logits > 0, or probabilities > 0.5)",
        "failed": "self-check failed: the grader would refuse these masks; fix the lines marked FIX",
        "fraction": "{fraction:.1%} of the pixels are predicted person, {truth:.1%} really are: "
                    "a threshold at the wrong place (0.5 on logits?) or a loss that does not match the "
                    "model's output (from_logits?) gives masks that are almost empty or almost full",
        "scores": "validation IoU {iou:.3f}, Dice {dice:.3f}",
        "baseline": " (baseline IoU {baseline:.3f}: {verdict})",
        "beaten": "beaten",
        "not_beaten": "NOT beaten, so it would earn no points",
    },
    "es": {
        "ok": "bien", "fix": "ARREGLA", "note": "nota",
        "header": "autocomprobación con {n} fotogramas de validación:",
        "raised": "predict(images) lanzó {kind}: {text}",
        "traceback": "ejecuta predict con unos pocos fotogramas en una celda aparte para ver la traza completa",
        "array_ok": "predict devuelve un array de NumPy",
        "array_fix": "predict devuelve {kind}, no un array de NumPy: conviértelo "
                     "(keras.ops.convert_to_numpy, o tensor.cpu().numpy() en PyTorch)",
        "shape_ok": "forma {shape}: una máscara (tamaño, tamaño) por fotograma",
        "shape_fix": "forma {shape}, se esperaba {expected}: quita el eje de canales (pred[..., 0]) "
                     "y deja una máscara por fotograma de entrada",
        "dtype_ok": "tipo uint8",
        "dtype_fix": "tipo {dtype}, se esperaba uint8: aplica el umbral y después .astype(np.uint8)",
        "values_ok": "solo valores 0 y 1",
        "values_fix": "valores {shown}: las máscaras solo pueden contener 0 y 1 (logits > 0, o probabilidades > 0.5)",
        "failed": "la autocomprobación ha fallado: el calificador rechazaría estas máscaras; "
                  "corrige las líneas marcadas con ARREGLA",
        "fraction": "el {fraction:.1%} de los píxeles se predice como persona, y lo es el {truth:.1%}: "
                    "un umbral mal puesto (¿0.5 sobre logits?) o una pérdida que no corresponde a la "
                    "salida del modelo (¿from_logits?) da máscaras casi vacías o casi llenas",
        "scores": "IoU de validación {iou:.3f}, Dice {dice:.3f}",
        "baseline": " (IoU de la referencia trivial {baseline:.3f}: {verdict})",
        "beaten": "superada",
        "not_beaten": "NO superada, así que no obtendría puntos",
    },
}


def _check(ok: bool, passed: str, failed: str, text: dict) -> bool:
    print(f"  {text['ok'] if ok else text['fix']} {passed if ok else failed}")
    return ok


def self_check(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, masks: np.ndarray,
               *, baseline_iou: float | None = None, lang: str | None = None) -> dict | None:
    """Check `predict` on validation frames as the grader would; print one line per check and the scores.

    The grader needs, for N frames of shape (N, size, size, 3), an array of N masks of shape
    (size, size), dtype uint8, holding only 0 and 1. Returns {'dice', 'iou', 'pixel_accuracy'}
    on the frames, or None when a check failed. With `baseline_iou`, also says whether the model
    beats the trivial baseline. Never raises on a mistake in `predict`: it is reported instead.
    `lang` ("en" or "es") is the language of the printed lines; by default, `utils.set_language`'s.
    """
    if lang is None:
        lang = language()
    if lang not in MESSAGES:
        choices = ", ".join(MESSAGES)
        raise CourseError(say(f"self_check: unknown language {lang!r}; use one of {choices}",
                              f"self_check: idioma desconocido {lang!r}; usa uno de {choices}"))
    text = MESSAGES[lang]
    images, masks = np.asarray(images), np.asarray(masks)
    expected = (len(images), *images.shape[1:3])
    print(text["header"].format(n=len(images)))
    try:
        pred = predict(images)
    except Exception as exc:  # noqa: BLE001 - the student's code: report, do not stop
        reason = " ".join(str(exc).split())[:300]
        print(f"  {text['fix']} " + text["raised"].format(kind=type(exc).__name__, text=reason))
        print("       " + text["traceback"])
        return None
    if not _check(isinstance(pred, np.ndarray), text["array_ok"], text["array_fix"].format(kind=type(pred).__name__), text):
        return None
    good = _check(pred.shape == expected, text["shape_ok"].format(shape=pred.shape),
                  text["shape_fix"].format(shape=pred.shape, expected=expected), text)
    good &= _check(pred.dtype == np.uint8, text["dtype_ok"], text["dtype_fix"].format(dtype=pred.dtype), text)
    values = np.unique(pred) if pred.size else np.array([])
    shown = ", ".join(str(v) for v in values[:5].tolist()) + (", ..." if len(values) > 5 else "")
    good &= _check(set(values.tolist()) <= {0, 1}, text["values_ok"], text["values_fix"].format(shown=shown), text)
    if not good:
        print(text["failed"])
        return None
    fraction = float(pred.mean()) if pred.size else 0.0
    truth = float(masks.mean()) if masks.size else 0.0
    if fraction < 0.2 * truth or fraction > min(1.0, 3 * truth + 0.05):
        print(f"  {text['note']} " + text["fraction"].format(fraction=fraction, truth=truth))
    result = scores(masks, pred)
    line = text["scores"].format(iou=result["iou"], dice=result["dice"])
    if baseline_iou is not None:
        beats = result["iou"] > baseline_iou
        line += text["baseline"].format(baseline=baseline_iou, verdict=text["beaten"] if beats else text["not_beaten"])
    print(line)
    return result


def report_path(name: str) -> Path:
    """Return where `write_report` writes: $LAB_REPORT if set, else runs_dir()/lab/<name>.json."""
    env = os.environ.get(REPORT_ENV, "").strip()
    return Path(env).expanduser() if env else runs_dir() / "lab" / f"{name}.json"


def write_report(report: dict, name: str) -> Path:
    """Write the solution's JSON report to $LAB_REPORT if set, else runs_dir()/lab/<name>.json; return the path."""
    path = report_path(name)
    try:
        text = json.dumps(report, indent=2, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise CourseError(say(f"report {name!r} is not plain JSON ({exc}): convert NumPy numbers with float()/int()",
                              f"el informe {name!r} no es JSON simple ({exc}): convierte los números de NumPy con "
                              "float()/int()")) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path
