"""The hidden test set as the grader holds it: checked against the hashes `lab prepare` recorded."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from utils import mads
from utils.errors import CourseError
from utils.grading.prepare import BASELINES, MANIFEST, answer_hashes


class Answers:
    """The hidden test set: names, full-size 0/1 masks, images (read on demand) and starter baselines."""

    def __init__(self, folder: str | Path, *, verify: bool = True):
        folder = Path(folder).expanduser()
        if not (folder / "masks").is_dir() and (folder / "answers" / "masks").is_dir():
            folder = folder / "answers"  # the folder `prepare_lab` wrote into
        if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
            raise CourseError(f"{folder} holds no images/ and masks/: pass the answers/ folder written by `lab prepare`")
        self.folder = folder
        self.warnings: list[str] = []
        if verify:
            self._verify()
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
        self.shapes = {n: m.shape for n, m in self.masks.items()}
        self._images: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # several grading threads may ask for the images at once
        self.starters = {
            p.stem.removeprefix("starter_"): mads.read_mask(p) for p in sorted((folder / BASELINES).glob("starter_*.png"))
        }
        if not self.starters:
            self.warnings.append(
                f"{folder / BASELINES} is missing (answers prepared by an older version): the floor uses only "
                "the all-background and all-person baselines"
            )

    def _verify(self) -> None:
        manifest = self.folder / MANIFEST
        if not manifest.is_file():
            self.warnings.append(
                f"{manifest} is missing (answers prepared by an older version): they cannot be checked for changes"
            )
            return
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            raise CourseError(f"{manifest} is damaged: prepare the lab again (`python -m utils lab prepare`)") from None
        now = answer_hashes(self.folder)
        changed = sorted(k for k in recorded.keys() & now.keys() if recorded[k] != now[k])
        gone, added = sorted(recorded.keys() - now.keys()), sorted(now.keys() - recorded.keys())
        for label, items in (("changed", changed), ("missing", gone), ("new", added)):
            if items:
                more = f" and {len(items) - 1} more" if len(items) > 1 else ""
                raise CourseError(
                    f"answers changed since `lab prepare`: {self.folder / items[0]} is {label}{more}; "
                    "restore the answers from your copy or prepare the lab again"
                )

    def image(self, name: str) -> np.ndarray:
        """Return one test image as (H, W, 3) uint8."""
        if name not in self._images:
            self._images[name] = mads.read_image(self.image_paths[name])
        return self._images[name]

    def images(self) -> list[np.ndarray]:
        """Return every test image in name order (decoded once, then kept)."""
        with self._lock:
            missing = [n for n in self.names if n not in self._images]
            if missing:
                with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                    for name, img in zip(missing, pool.map(lambda n: mads.read_image(self.image_paths[n]), missing)):
                        self._images[name] = img
            return [self._images[n] for n in self.names]
