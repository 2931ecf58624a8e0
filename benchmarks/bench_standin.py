"""Calibrate the synthetic PH2 stand-in: how hard is it for the course's U-Net and for the lesson's SegNet?

For each seed: draw a fresh stand-in with that seed (timed), train the U-Net exactly as
`python -m utils train --profile <profile> --seed <seed>` does (`utils.training.run_training`), and the
SegNet defined in notebooks/SemanticSegmentationTF.ipynb (its own cell, run by `notebook_code.definitions`)
under the same settings: same cases, split, profile, seed, batch, epochs and training loop
(`fit_segmenter`). Prints test Dice / IoU per seed and model, and the worst test cases of the U-Net with
the difficulties the generator drew for them (`_ph2_case_scene`), one JSON line per seed at the end.

    python benchmarks/bench_standin.py --seeds 0 1 2              # the calibration in results.md
    python benchmarks/bench_standin.py --seeds 0 --epochs 4       # a cheaper proxy while tuning
    python benchmarks/bench_standin.py --seeds 0 --models unet    # the U-Net alone
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402


def _generate(dest: Path, seed: int) -> tuple[Path, float]:
    from utils.synthetic import synthetic_ph2

    start = time.perf_counter()
    root = synthetic_ph2(dest, count=200, seed=seed, progress=False)
    return root, time.perf_counter() - start


def _segnet(root: Path, profile: str, seed: int, epochs: int | None) -> dict:
    """Train and test the TF lesson's SegNet with the settings `run_training` gives the U-Net."""
    import keras
    from notebook_code import definitions

    from utils import metrics, ph2
    from utils.device import setup_keras
    from utils.models import compile_segmenter
    from utils.profiles import choose_profile
    from utils.training import fit_segmenter, predict_masks

    notebook = ROOT / "notebooks" / "SemanticSegmentationTF.ipynb"
    namespace = definitions(notebook, {"build_segnet"}, {"keras": keras, "layers": keras.layers})
    plan = setup_keras(verbose=False)
    prof = choose_profile(plan.has_gpu, profile)
    keras.utils.set_random_seed(seed)
    data = ph2.load_ph2(root, size=prof.size, limit=prof.limit, progress=False)
    split = ph2.split_indices(data, seed=seed)
    pick = lambda name: (data.images[split[name]], data.masks[split[name]])  # noqa: E731
    with plan.scope():
        model = compile_segmenter(
            namespace["build_segnet"](prof.size, prof.base_filters, prof.depth), prof.learning_rate
        )
    history = fit_segmenter(
        model,
        pick("train"),
        pick("val"),
        epochs=epochs or prof.epochs,
        batch_size=plan.global_batch(prof.batch_size),
        seed=seed,
        verbose=0,
    )
    test = pick("test")
    report = metrics.scores(test[1], predict_masks(model, test[0]))
    return {**report, "best_epoch": history.best_epoch, "seconds": round(history.seconds, 1)}


def _worst(root: Path, model_path: Path, seed: int, size: int, k: int) -> list[dict]:
    """Return the U-Net's k worst test cases: ID, class, Dice and the difficulties drawn for each."""
    import keras

    import utils.models  # noqa: F401 - registers the course's loss and metrics for loading
    from utils import metrics, ph2, synthetic
    from utils.training import predict_masks

    model = keras.saving.load_model(model_path, safe_mode=True)
    data = ph2.load_ph2(root, size=size, progress=False)
    test = ph2.split_indices(data, seed=seed)["test"]
    per_image = metrics.dice_per_image(data.masks[test], predict_masks(model, data.images[test]))
    rows = []
    for j in np.argsort(per_image)[:k]:
        case = data.ids[test[j]]
        findings, scene = synthetic._ph2_case_scene(seed, case)
        drawn = [key for key, value in scene.items() if value is True]
        drawn += [
            f"{key}={value}"
            for key, value in scene.items()
            if isinstance(value, str) and value not in ("none", "normal")
        ]
        if 1 in findings["colours"]:
            drawn.append("regression")
        rows.append(
            {
                "case": case,
                "class": ph2.CLASSES[findings["label"]],
                "dice": round(float(per_image[j]), 3),
                "drawn": drawn,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's")
    parser.add_argument("--models", nargs="+", choices=["unet", "segnet"], default=["unet", "segnet"])
    parser.add_argument(
        "--worst", type=int, default=6, help="how many of the U-Net's worst test cases to list"
    )
    parser.add_argument(
        "--workdir", default=None, help="where the stand-ins go (default: a temporary folder)"
    )
    args = parser.parse_args()

    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        os.environ["SEG_DATA_DIR"] = str(work / "data")  # the loader's cache goes here, not into data/
        from utils.profiles import PROFILES
        from utils.synthetic import PH2_GENERATOR_VERSION
        from utils.training import run_training

        lines = []
        for seed in args.seeds:
            root, gen_seconds = _generate(work / f"seed{seed}", seed)
            line = {
                "seed": seed,
                "standin_version": PH2_GENERATOR_VERSION,
                "generation_s": round(gen_seconds, 1),
            }
            print(f"seed {seed}: 200 cases drawn in {gen_seconds:.1f} s", flush=True)
            if "unet" in args.models:
                out = work / f"unet-{seed}.keras"
                report = run_training(
                    root, epochs=args.epochs, out=out, profile=args.profile, seed=seed, verbose=0
                )
                line["unet"] = {
                    key: report[key] for key in ("dice", "iou", "pixel_accuracy", "best_epoch", "seconds")
                }
                print(
                    f"seed {seed}: U-Net  test Dice {report['dice']:.3f} IoU {report['iou']:.3f} ({report['seconds']:.0f} s)",
                    flush=True,
                )
                line["worst"] = _worst(root, out, seed, PROFILES[args.profile].size, args.worst)
                for row in line["worst"]:
                    print(
                        f"    {row['case']} {row['class']:15s} Dice {row['dice']:.3f}  {' '.join(row['drawn'])}",
                        flush=True,
                    )
            if "segnet" in args.models:
                report = _segnet(root, args.profile, seed, args.epochs)
                line["segnet"] = report
                print(
                    f"seed {seed}: SegNet test Dice {report['dice']:.3f} IoU {report['iou']:.3f} ({report['seconds']:.0f} s)",
                    flush=True,
                )
            lines.append(line)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        for line in lines:
            print(json.dumps(line))


if __name__ == "__main__":
    main()
