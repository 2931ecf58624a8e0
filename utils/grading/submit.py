"""The student's side: writing a submission folder from the lab notebook, and summarising it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from utils import mads
from utils.course import say
from utils.errors import CourseError
from utils.grading.prepare import write_mask_png


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
    for start in tqdm(range(0, len(paths), batch_size), desc=say("writing the submission", "escribiendo la entrega"), unit="batch"):
        chunk = paths[start : start + batch_size]
        full = [mads.read_image(p) for p in chunk]
        small = np.stack([mads.resize_image(img, size) for img in full])
        preds = np.asarray(predict(small))
        for path, img, pred in zip(chunk, full, preds):
            write_mask_png(mads.resize_mask(np.asarray(pred) > 0, img.shape[:2]), dest / "masks" / f"{path.stem}.png")
    if model is not None:
        model.save(dest / "model.keras")
    return dest


def submission_summary(dest: str | Path) -> dict:
    """Return what a submission folder holds: mask count and whether model.keras is there."""
    dest = Path(dest)
    masks = sorted((dest / "masks").glob("*.png")) if (dest / "masks").is_dir() else []
    return {"folder": str(dest), "masks": len(masks), "model": (dest / "model.keras").is_file()}
