"""Preparing the lab: the student package, the hidden answers, their hashes and the trivial baselines."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from utils import mads
from utils.errors import CourseError
from utils.lab import prior_mask
from utils.profiles import PROFILES

MANIFEST = "manifest.json"
BASELINES = "baselines"
CALIBRATION = "calibration.json"  # written later by `lab calibrate --out`, so not part of the manifest


def write_mask_png(mask01: np.ndarray, path: Path) -> None:
    """Write a 0/1 mask as a single-channel 0/255 PNG."""
    Image.fromarray((np.asarray(mask01) > 0).astype(np.uint8) * 255, mode="L").save(path, format="PNG")


def sha256_file(path: Path) -> str:
    """Return the SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def answer_hashes(answers: Path) -> dict[str, str]:
    """Return {relative path: SHA-256} of every file under the answers folder but the manifest and the calibration."""
    return {
        p.relative_to(answers).as_posix(): sha256_file(p)
        for p in sorted(answers.rglob("*"))
        if (p.is_file() or p.is_symlink()) and p.relative_to(answers).as_posix() not in (MANIFEST, CALIBRATION)
    }


def starter_masks(train: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Return, per run profile, the mask the unmodified starter notebook submits for every frame.

    The starter (lab/BodySegmentation.ipynb) splits the package's training frames by sequence
    (0.7, 0.1, 0.2, SEED = 0), averages the training masks at the profile's size and marks the
    pixels most often "person", as many as the average person covers; its submission is that one
    mask, upsampled to each test image.
    """
    frames = mads.list_frames(train)
    full = {}
    out = {}
    for name, profile in PROFILES.items():
        chosen = mads.select_frames(frames, profile.limit)
        try:
            split = mads.split_by_sequence([f.group for f in chosen], (0.7, 0.1, 0.2), seed)
        except CourseError:
            continue  # too few sequences for this profile: the starter would stop too
        masks = []
        for i in split["train"]:
            frame = chosen[i]
            if frame.name not in full:
                full[frame.name] = mads.read_mask(frame.mask)
            masks.append(mads.resize_mask(full[frame.name], profile.size))
        if not masks:
            continue
        out[name] = prior_mask(np.stack(masks))  # the very function the starter notebooks call
    return out


def prepare_lab(
    data: str | Path | None, out: Path, *, seed: int = 0, fractions: Sequence[float] = (0.8, 0.2)
) -> dict:
    """Write the student package and the hidden answers into `out` (which must be new or empty); return a summary.

    `out/student/train/{images,masks}` and `out/student/test/images` go to the students;
    `out/answers/{images,masks}` stay with the instructor, with `answers/baselines/` (the
    unmodified starter's mask per run profile) and `answers/manifest.json` (the SHA-256 of every
    answer file, checked by the grader). The split is by sequence. Images are copied byte for
    byte; masks are rewritten as single-channel PNG, 0 and 255.
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
        "baselines": out / "answers" / BASELINES,
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
            write_mask_png(mads.read_mask(src), dst)
        else:
            shutil.copyfile(src, dst)

    try:
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=False)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(tqdm(pool.map(copy, jobs), total=len(jobs), desc="preparing the lab", unit="file"))
        for name, mask in starter_masks(out / "student" / "train").items():
            write_mask_png(mask, dirs["baselines"] / f"starter_{name}.png")
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
        "0 for background and 255 for the person; or model.keras (Keras 3, standard layers only).\n"
        + (
            "\nSYNTHETIC: these frames are the course's generated stand-in, not MADS.\n"
            if source.kind == "synthetic"
            else f"\nData: Segmentation Full Body MADS ({mads.PAGE}), licence {mads.LICENCE}\nCite: {mads.CITATION}\n"
        ),
        encoding="utf-8",
    )
    manifest = {"note": "SHA-256 of every answer file, written by `lab prepare`; the grader refuses changed answers",
                "files": answer_hashes(out / "answers")}
    (out / "answers" / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return summary
