"""Training and evaluation of the course's Keras segmenters, shared by the lesson, the lab and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np

from utils.data import make_dataset, to_model_input
from utils.metrics import logits_to_mask, scores


class KeepBest(keras.callbacks.Callback):
    """Remember the weights of the epoch with the best `monitor` value and restore them at the end."""

    def __init__(self, monitor: str = "val_dice", mode: str = "max"):
        super().__init__()
        self.monitor, self.sign = monitor, (1.0 if mode == "max" else -1.0)
        self.best, self.best_epoch, self.weights = None, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if self.best is None or self.sign * value > self.sign * self.best:
            self.best, self.best_epoch = float(value), epoch + 1
            self.weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


def fit_segmenter(
    model,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    checkpoint: str | Path | None = None,
    augment: bool = True,
    seed: int = 0,
    verbose: int | str = "auto",
):
    """Train on uint8 arrays, keep the weights with the best validation Dice, save them; return History.

    The returned History has `best_epoch`, `best_val_dice` and `seconds` attributes.
    """
    keep = KeepBest("val_dice", "max")
    train_ds = make_dataset(*train, batch_size, shuffle=True, augment=augment, seed=seed)
    val_ds = make_dataset(*val, batch_size)
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=[keep], verbose=verbose)
    history.seconds = time.perf_counter() - start
    history.best_epoch, history.best_val_dice = keep.best_epoch, keep.best
    if checkpoint is not None:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        model.save(checkpoint)
    return history


def predict_logits(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Return the model's float32 logits (N, H, W) for uint8 images, batch by batch."""
    out = [
        np.asarray(model.predict_on_batch(to_model_input(images[i : i + batch_size])), dtype=np.float32)[..., 0]
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, *images.shape[1:3]), np.float32)


def predict_masks(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Return uint8 0/1 masks (N, H, W): the model's logits thresholded at 0 (probability 0.5)."""
    return logits_to_mask(predict_logits(model, images, batch_size))


def evaluate_segmenter(model, images: np.ndarray, masks: np.ndarray, batch_size: int = 16) -> dict[str, float]:
    """Return Dice, IoU and pixel accuracy of the model on uint8 images and 0/1 masks."""
    return scores(masks, predict_masks(model, images, batch_size))


def _ph2_splits(source_path, size: int, limit: int | None, seed: int):
    from utils import ph2

    source = ph2.resolve_ph2(source_path)
    data = ph2.load_ph2(source.root, size=size, limit=limit)
    return source, data, ph2.split_indices(data, seed=seed)


def run_training(
    data: str | Path | None = None,
    *,
    size: int | None = None,
    epochs: int | None = None,
    out: str | Path | None = None,
    profile: str | None = None,
    seed: int = 0,
    verbose: int | str = 2,
) -> dict:
    """Train the U-Net on PH2 (or the synthetic stand-in), save the best model; return the test report."""
    from utils.course import runs_dir
    from utils.device import setup_keras
    from utils.models import build_unet, compile_segmenter
    from utils.profiles import choose_profile

    plan = setup_keras()
    prof = choose_profile(plan.has_gpu, profile)
    size, epochs = size or prof.size, epochs or prof.epochs
    print(prof.describe() + (f" (size {size}, epochs {epochs} from the command line)" if (size, epochs) != (prof.size, prof.epochs) else ""))
    keras.utils.set_random_seed(seed)
    source, ph2_data, split = _ph2_splits(data, size, prof.limit, seed)
    counts = {k: int(len(v)) for k, v in split.items()}
    print(f"data: {source.kind} from {source.root} | cases train {counts['train']}, val {counts['val']}, test {counts['test']}")
    out = Path(out) if out else runs_dir() / "unet.keras"
    with plan.scope():
        model = compile_segmenter(build_unet(size, prof.base_filters, prof.depth), prof.learning_rate)
    pick = lambda name: (ph2_data.images[split[name]], ph2_data.masks[split[name]])  # noqa: E731
    history = fit_segmenter(
        model, pick("train"), pick("val"), epochs=epochs, batch_size=plan.global_batch(prof.batch_size),
        checkpoint=out, seed=seed, verbose=verbose,
    )
    report = {
        **evaluate_segmenter(model, *pick("test")),
        "epochs": epochs,
        "best_epoch": history.best_epoch,
        "val_dice": history.best_val_dice,
        "seconds": round(history.seconds, 1),
        "data": source.kind,
        "profile": prof.name,
        "size": size,
        "test_cases": counts["test"],
        "limit": prof.limit,
        "model": str(out),
        "device": plan.describe(),
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def run_evaluation(model_path: str | Path, data: str | Path | None = None, *, seed: int = 0) -> dict:
    """Evaluate a saved model on the test split of PH2 (or the stand-in); return the same report as training."""
    import utils.models  # noqa: F401 - registers the course's loss and metrics for loading
    from utils.errors import CourseError

    model_path = Path(model_path)
    if not model_path.is_file():
        raise CourseError(f"no model at {model_path}: train one first with `python -m utils train --out {model_path}`")
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - any loading failure is reported as one line
        raise CourseError(f"cannot load {model_path} as a Keras model ({type(exc).__name__}: {exc})") from None
    size = int(model.input_shape[1])
    trained = {}
    sidecar = model_path.with_suffix(".json")
    if sidecar.is_file():
        trained = json.loads(sidecar.read_text(encoding="utf-8"))
    limit = trained.get("limit")  # the same cases, hence the same split, as in training
    source, ph2_data, split = _ph2_splits(data, size, limit, seed)
    start = time.perf_counter()
    test = split["test"]
    report = {
        **evaluate_segmenter(model, ph2_data.images[test], ph2_data.masks[test]),
        "epochs": trained.get("epochs"),
        "seconds": round(time.perf_counter() - start, 1),
        "data": source.kind,
        "size": size,
        "test_cases": int(len(test)),
        "model": str(model_path),
    }
    return report
