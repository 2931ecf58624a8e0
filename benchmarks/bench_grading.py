"""Benchmark: grading a class of 40 synthetic students, masks and models mixed, on this machine.

    python benchmarks/bench_grading.py                  # 40 students, half of them model.keras, --jobs default
    python benchmarks/bench_grading.py --students 40 --models 20 --jobs 2

A synthetic MADS stand-in (the course's generator, 240 frames at 512 x 384) is prepared with
`lab prepare` (not timed), then a class is written: mask students with the true masks degraded in
different ways (eroded, shifted, partly missing), and model students with a small U-Net-like
model of the allowed layers (untrained, random weights: the cost of loading and predicting is what
is measured, not its score). Then `grade_submissions` runs once, with the progress bar, and the
wall-clock time, the CPU seconds of this process and of its children, the counts per status, the
pairs flagged as possible copies and this process's peak resident memory are printed as one JSON
line. Run it under the shared lock: `flock /tmp/seg-heavy.lock python ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import utils  # noqa: E402,F401 - quiets TensorFlow before keras is imported


def build_class(answers: Path, subs: Path, students: int, models: int, seed: int = 0) -> None:
    """Write `students` submission folders under subs: `models` of them model.keras, the rest masks/."""
    import keras
    from skimage.morphology import binary_erosion, disk

    rng = np.random.default_rng(seed)
    names = sorted(p.name for p in (answers / "masks").iterdir())
    for s in range(students):
        folder = subs / f"student_{s:02d}"
        folder.mkdir(parents=True)
        if s < models:
            inputs = keras.Input((None, None, 3))
            x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
            skip = x
            x = keras.layers.MaxPooling2D()(x)
            x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
            x = keras.layers.UpSampling2D()(x)
            x = keras.layers.Concatenate()([x, skip])
            outputs = keras.layers.Conv2D(1, 1)(x)
            keras.Model(inputs, outputs).save(folder / "model.keras")
            continue
        (folder / "masks").mkdir()
        keep = names if s % 5 else names[: len(names) * 3 // 4]  # every fifth student misses a quarter
        for n in keep:
            with Image.open(answers / "masks" / n) as m:
                mask = np.asarray(m) > 0
            mask = binary_erosion(mask, disk(int(rng.integers(1, 4)))) if s % 2 else np.roll(mask, int(rng.integers(1, 8)), axis=1)
            Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / n)


def main() -> None:
    """Prepare, build the class, grade it once; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--frames", type=int, default=240, help="synthetic frames (the test split is about a fifth)")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--reports", default="instructor,feedback")
    parser.add_argument("--reference", type=float, default=0.9, help="reference IoU for the relative rubric (points only)")
    args = parser.parse_args()

    from utils import grading, synthetic

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        data = synthetic.synthetic_mads(tmp / "data", count=args.frames, seed=0)
        grading.prepare_lab(data, tmp / "lab")
        answers = tmp / "lab" / "answers"
        build_class(answers, tmp / "subs", args.students, args.models)
        kinds = tuple(k for k in args.reports.split(",") if k)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0, start = time.process_time(), time.perf_counter()
        rows = grading.grade_submissions(answers, tmp / "subs", tmp / "grades", jobs=args.jobs, reports=kinds,
                                         reference=args.reference)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        statuses = {s: sum(r.status == s for r in rows) for s in ("ok", "partial", "error")}
        print(json.dumps({
            "students": len(rows), "models": args.models, "test_images": len(list((answers / "images").iterdir())),
            "jobs": args.jobs or min(4, os.cpu_count() or 1), "reports": list(kinds), "wall_s": round(wall, 1),
            "cpu_s_parent": round(time.process_time() - cpu0, 1), "cpu_s_children": round(children, 1),
            "statuses": statuses, "sandbox": grading.probe_sandbox().prefix[1:],
            "flagged_pairs": len((tmp / "grades" / "duplicates.csv").read_text(encoding="utf-8").splitlines()) - 1,
            "max_rss_mb_parent": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
        }))


if __name__ == "__main__":
    main()
