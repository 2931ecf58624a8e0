"""Why the TF lesson's warm-started batch-norm statistics can make its early validations score lower.

Trains the TF lesson's U-Net with the lesson's own cells (`build_unet`, `compile_model` with the cpu
profile's cosine over 12 epochs, `fit_model`) for a few epochs, twice from the same seed: plain, and with
`WarmStartStatistics` (section 10). Training is the same in both runs (a training step normalises with the
batch's own statistics); only the moving statistics differ. After every epoch it prints, for each
BatchNormalization layer in network order, how far the moving statistics are from the exact ones: those
of the layer's input over the 140 un-augmented training images in one batch, every layer on batch
statistics, under the current weights (the averages are put back afterwards). Then the validation Dice
(logits > 0, mean per image) as it is, and again with 0.9**step added to the first layer's moving
variance (0.9 being the layers' momentum): what remains, after `step` steps, of the made-up starting
variance 1 that the plain run carries and the warm-started one does not.

    SEG_DATA_DIR=data flock /tmp/seg-heavy.lock python benchmarks/diag_warm_start.py [--seed 0] [--epochs 3]

Reads a current stand-in from SEG_DATA_DIR as bench_endtoend.py does (same split, 128x128, batch 8).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import bench_endtoend as bench  # noqa: E402 - beside this file


def run(warm: bool, seed: int, epochs: int, train, val) -> None:
    import keras
    import numpy as np

    from utils import metrics
    from utils.profiles import PROFILES

    ns, model = bench.tf_lesson_model(seed, PROFILES["cpu"].epochs, train, val)  # the schedule of the lesson's own run
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    inputs_of = keras.Model(model.inputs, [layer.input for layer in norms])
    x_train = train[0].astype("float32") / 255.0
    x_val = val[0].astype("float32") / 255.0
    name = "warm-started" if warm else "plain"

    def val_dice() -> float:
        return metrics.dice(val[1], (model.predict(x_val, batch_size=20, verbose=0)[..., 0] > 0).astype(np.uint8))

    class Compare(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved = [[keras.ops.convert_to_numpy(v) for v in (n.moving_mean, n.moving_variance)] for n in norms]
            exact = [keras.ops.convert_to_numpy(a) for a in inputs_of({"image": x_train}, training=True)]
            for layer, (mean, var) in zip(norms, saved):  # a call in training mode moves the averages
                layer.moving_mean.assign(mean)
                layer.moving_variance.assign(var)
            var_off, mean_off, exact_var = [], [], []
            for (mean, var), a in zip(saved, exact):
                flat = a.reshape(-1, a.shape[-1]).astype(np.float64)
                exact_var.append(flat.var(0))
                var_off.append(np.median(np.log(var / exact_var[-1])))
                mean_off.append(np.median(np.abs(mean - flat.mean(0)) / np.sqrt(exact_var[-1])))
            step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            first, before = norms[0].moving_variance, saved[0][1]
            leftover = norms[0].momentum**step
            as_is = val_dice()
            first.assign(before + leftover)
            with_leftover = val_dice()
            first.assign(before)
            out = sys.__stdout__
            print(f"{name}, epoch {epoch + 1} (step {step}): val Dice {logs['val_dice']:.3f} as fit reports it,"
                  f" {as_is:.3f} recomputed, {with_leftover:.3f} with {norms[0].momentum}**{step} added to the first layer's moving variance", file=out)
            print("   log(moving / exact variance), median over channels: " + " ".join(f"{v:+.2f}" for v in var_off), file=out)
            print("   |moving - exact mean| / exact std, median over channels: " + " ".join(f"{v:.2f}" for v in mean_off), file=out)
            print(f"   first layer: exact variance {np.median(exact_var[0]):.4f} (median over"
                  f" channels), moving {np.median(before):.4f}", file=out, flush=True)

    callbacks = [Compare()]
    if warm:
        callbacks.insert(0, ns["WarmStartStatistics"]())
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the lesson's own printouts
        ns["fit_model"](model, epochs, callbacks=callbacks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="diag_warm_start_"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    os.environ["SEG_RUNS_DIR"] = str(work / "runs")
    _, data, split = bench.synthetic_ph2_split(work)
    os.chdir(bench.ROOT / "notebooks")  # where the lesson runs
    train = data.images[split["train"]], data.masks[split["train"]]
    val = data.images[split["val"]], data.masks[split["val"]]
    print(f"{bench.cpu_model()} | {os.cpu_count()} cores | python {platform.python_version()} | load {os.getloadavg()[0]:.1f}"
          f" | seed {args.seed}, {args.epochs} epochs; batch-norm layers in network order", flush=True)
    for warm in (False, True):
        run(warm, args.seed, args.epochs, train, val)


if __name__ == "__main__":
    main()
