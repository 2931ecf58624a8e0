"""Training and evaluation of the course's Keras segmenters, shared by the lesson, the lab and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np

from utils.data import make_dataset, to_model_input
from utils.metrics import logits_to_mask, scores
from utils.ph2 import standin_version


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


def _batch_norms(layer, seen: set[int] | None = None):
    """Yield every BatchNormalization layer inside `layer` (nested models included), each once."""
    seen = set() if seen is None else seen
    for sub in getattr(layer, "layers", []):
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        if isinstance(sub, keras.layers.BatchNormalization):
            yield sub
        else:
            yield from _batch_norms(sub, seen)


class WarmStartStatistics(keras.callbacks.Callback):
    """Make batch normalisation's moving statistics the plain average of the batches seen, at first.

    A BatchNormalization layer starts its moving mean at 0 and its moving variance at 1, and blends
    in each training batch's statistics with weight 1 - momentum (0.1 in the course's U-Net). Those
    starting values fade slowly: after 18 batches (one epoch of PH2's training split at batch 8) they
    still weigh 0.9**18 = 15%, so validation and prediction, which use the moving statistics, score a
    young network well below what it has learnt. After each of the first 1 / (1 - momentum) training
    steps this callback rewrites the statistics as the plain average of the batch statistics seen so
    far (what PyTorch keeps with `momentum=None`); from then on the layer's own moving average takes
    over. The model stays plain Keras. It assumes each layer is called once per step and
    `steps_per_execution=1`, and leaves the model alone otherwise, and on the JAX backend (whose
    trainer holds the variables' values outside the model during an epoch).
    """

    def on_train_begin(self, logs=None):
        self.tracked = []
        if getattr(self.model, "steps_per_execution", 1) != 1 or keras.backend.backend() == "jax":
            return
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        for layer in _batch_norms(self.model):
            if layer.trainable and not getattr(layer, "renorm", False) and self.step < 1.0 / (1.0 - layer.momentum):
                state = [np.array(keras.ops.convert_to_numpy(v), np.float64) for v in (layer.moving_mean, layer.moving_variance)]
                self.tracked.append((layer, state))

    def on_train_batch_end(self, batch, logs=None):
        if not self.tracked:
            return
        self.step += 1
        kept = []
        for layer, state in self.tracked:
            m = layer.momentum
            keep = (self.step - 1) / self.step  # the weight of the earlier batches in a plain average
            for i, variable in enumerate((layer.moving_mean, layer.moving_variance)):
                blended = keras.ops.convert_to_numpy(variable).astype(np.float64)
                this_batch = (blended - m * state[i]) / (1.0 - m)  # undo the layer's own update
                state[i] = keep * state[i] + (1.0 - keep) * this_batch
                variable.assign(state[i].astype(np.float32))
            if self.step + 1 < 1.0 / (1.0 - m):
                kept.append((layer, state))
        self.tracked = kept


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

    Batch normalisation's statistics are warm-started (`WarmStartStatistics`). The returned History
    has `best_epoch`, `best_val_dice` and `seconds` attributes.
    """
    keep = KeepBest("val_dice", "max")
    train_ds = make_dataset(*train, batch_size, shuffle=True, augment=augment, seed=seed)
    val_ds = make_dataset(*val, batch_size)
    start = time.perf_counter()
    # shuffle=False: make_dataset already shuffles each epoch from `seed`; Keras's own shuffling of a PyDataset
    # would reorder those batches with Python's global `random`, so the same seed would not give the same run
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=[WarmStartStatistics(), keep],
                        shuffle=False, verbose=verbose)
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
    from utils.course import runs_dir, say
    from utils.device import setup_keras
    from utils.models import build_unet, compile_segmenter
    from utils.profiles import choose_profile

    plan = setup_keras()
    prof = choose_profile(plan.has_gpu, profile)
    size, epochs = size or prof.size, epochs or prof.epochs
    changed = say(f" (size {size}, epochs {epochs} from the command line)",
                  f" (tamaño {size}, {epochs} épocas, desde la línea de comandos)")
    print(prof.describe() + (changed if (size, epochs) != (prof.size, prof.epochs) else ""))
    keras.utils.set_random_seed(seed)
    source, ph2_data, split = _ph2_splits(data, size, prof.limit, seed)
    counts = {k: int(len(v)) for k, v in split.items()}
    print(say(f"data: {source.kind} from {source.root} | cases train {counts['train']}, val {counts['val']}, test {counts['test']}",
              f"datos {source.label} de {source.root} | casos de entrenamiento {counts['train']}, validación "
              f"{counts['val']}, prueba {counts['test']}"))
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
        "standin_version": standin_version(source.root),  # None on the real PH2
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
    from utils.course import say
    from utils.errors import CourseError

    model_path = Path(model_path)
    if not model_path.is_file():
        raise CourseError(say(f"no model at {model_path}: train one first with `python -m utils train --out {model_path}`",
                              f"no hay ningún modelo en {model_path}: entrena uno antes con "
                              f"`python -m utils train --out {model_path}`"))
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - any loading failure is reported as one line
        raise CourseError(say(f"cannot load {model_path} as a Keras model ({type(exc).__name__}: {exc})",
                              f"no se puede cargar {model_path} como modelo de Keras ({type(exc).__name__}: {exc})")) from None
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
        "standin_version": standin_version(source.root),  # None on the real PH2
        "size": size,
        "test_cases": int(len(test)),
        "model": str(model_path),
    }
    return report
