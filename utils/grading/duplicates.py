"""Duplicate submissions: identical mask files, or near-identical prediction sets, between two students.

Two checks, for the instructor to look at (never a verdict, never a change of points):

- **identical files**: at least `min_shared(n)` of the n test images (5 %, at least 3) have
  byte-identical mask files in both submissions. Masks that are all background, all person or
  the unmodified starter's output are left out: everyone may hand those in.
- **near-identical predictions**: the mean IoU between the two students' masks, image by image,
  is at least NEAR_IDENTICAL (0.98), **and** they share at least SHARED_ERRORS (75 %) of their
  mistakes (pixels where either differs from the truth, pooled over the test images). Two good
  models agree with each other because both agree with the truth; what a copy shares is the same
  mistakes. A set that is itself near-identical to a trivial baseline (all background, all
  person, the starter) is left out. Both thresholds are chosen, not measured on real classes.

Memory: a student is kept as the SHA-256 of each mask file and their masks sampled on a
SAMPLE_GRID grid (nearest pixel, so the IoU of the samples estimates the full-size IoU), packed
8 pixels a byte: 1.5 kB an image, about 0.4 MB for 240 images, 15 MB for a class of 40.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from utils import mads
from utils.grading.names import csv_cell

NEAR_IDENTICAL = 0.98
SHARED_ERRORS = 0.75
SAMPLE_GRID = (96, 128)
DUPLICATES = "duplicates.csv"
FLAG = "POSSIBLE COPY"
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint16)


def min_shared(n: int) -> int:
    """Return how many identical non-trivial mask files two students must share to be flagged (5 % of n, at least 3)."""
    return max(3, math.ceil(0.05 * n))


def sample(mask: np.ndarray, grid: tuple[int, int] = SAMPLE_GRID) -> np.ndarray:
    """Return a (H, W) mask sampled at the nearest pixel of a fixed grid, as bool."""
    h, w = mask.shape[:2]
    rows = ((np.arange(grid[0]) + 0.5) * h / grid[0]).astype(np.intp)
    cols = ((np.arange(grid[1]) + 0.5) * w / grid[1]).astype(np.intp)
    return np.asarray(mask)[np.ix_(rows, cols)] > 0


def pack(preds: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """Return (N, bytes) uint8: each image's sampled mask packed 8 pixels a byte (a missing mask is empty)."""
    empty = np.zeros(SAMPLE_GRID, bool)
    return np.stack([np.packbits(sample(preds[n]) if n in preds else empty) for n in names])


def _count(bits: np.ndarray) -> np.ndarray:
    counter = getattr(np, "bitwise_count", None)  # NumPy 2; a table otherwise
    return (counter(bits) if counter is not None else _POPCOUNT[bits]).sum(axis=-1, dtype=np.int64)


def mean_iou_packed(a: np.ndarray, b: np.ndarray) -> float:
    """Return the mean over images of the IoU between two packed mask sets (two empty masks agree fully)."""
    inter, union = _count(a & b), _count(a | b)
    return float(np.mean(np.where(union == 0, 1.0, inter / np.maximum(union, 1))))


@dataclass
class Signature:
    """What is kept of one student's masks for the duplicate checks."""

    key: int  # the entry's position (two entries may show the same name)
    student: str
    hashes: dict[str, str] = field(default_factory=dict)  # non-trivial mask files: image name -> SHA-256
    packed: np.ndarray | None = None
    baseline_like: str = ""  # the trivial baseline this set is near-identical to, if any


def shared_errors(a: np.ndarray, b: np.ndarray, truth: np.ndarray) -> float:
    """Return the share of two packed mask sets' mistakes that they have in common (1.0 when neither makes any)."""
    ea, eb = a ^ truth, b ^ truth
    union = int(_count(ea | eb).sum())
    return 1.0 if union == 0 else int(_count(ea & eb).sum()) / union


@dataclass
class Pair:
    """Two students flagged, with the evidence."""

    a: Signature
    b: Signature
    identical_files: int
    mean_iou: float
    shared_errors: float = 0.0

    def kinds(self, n: int) -> list[str]:
        """Return which checks flagged the pair."""
        out = []
        if self.identical_files >= min_shared(n):
            out.append("identical files")
        if self.mean_iou >= NEAR_IDENTICAL and self.shared_errors >= SHARED_ERRORS and not (self.a.baseline_like or self.b.baseline_like):
            out.append("near-identical masks")
        return out


class DuplicateFinder:
    """Builds each student's signature as they are graded, then finds the flagged pairs."""

    def __init__(self, names: list[str], shapes: dict[str, tuple[int, int]], starters: dict[str, np.ndarray],
                 truth: dict[str, np.ndarray] | None = None):
        self.names = list(names)
        self.truth = pack(truth or {}, self.names)
        self.shapes = shapes
        self.starters = starters
        self._full: dict[tuple[int, int], list[np.ndarray]] = {}
        trivial = {
            "all background": pack({}, self.names),
            "all person": pack({n: np.ones(SAMPLE_GRID, bool) for n in self.names}, self.names),
        }
        for profile, mask in starters.items():
            trivial[f"unmodified starter ({profile} profile)"] = pack({n: mads.resize_mask(mask, shapes[n]) for n in self.names}, self.names)
        self.trivial = trivial

    def _starters_at(self, shape: tuple[int, int]) -> list[np.ndarray]:
        if shape not in self._full:  # a race between threads only computes the same list twice
            self._full[shape] = [mads.resize_mask(m, shape) for m in self.starters.values()]
        return self._full[shape]

    def _trivial(self, mask: np.ndarray) -> bool:
        if not mask.any() or mask.all():
            return True
        return any(np.array_equal(mask, s) for s in self._starters_at(mask.shape))

    def signature(self, key: int, student: str, preds: dict[str, np.ndarray], hashes: dict[str, str] | None = None) -> Signature:
        """Return one student's signature (file hashes of non-trivial masks, packed samples, baseline likeness)."""
        kept = {n: h for n, h in (hashes or {}).items() if n in preds and not self._trivial(preds[n])}
        packed = pack(preds, self.names)
        like = next((label for label, t in self.trivial.items() if mean_iou_packed(packed, t) >= NEAR_IDENTICAL), "")
        return Signature(key, student, kept, packed, like)

    def pairs(self, signatures: list[Signature]) -> list[Pair]:
        """Return every flagged pair, most alike first."""
        n = len(self.names)
        shared: dict[tuple[int, int], int] = {}
        by_file: dict[tuple[str, str], list[int]] = {}
        for s in signatures:
            for name, digest in s.hashes.items():
                by_file.setdefault((name, digest), []).append(s.key)
        for keys in by_file.values():
            for a, b in combinations(sorted(keys), 2):
                shared[a, b] = shared.get((a, b), 0) + 1
        out = []
        for a, b in combinations(sorted(signatures, key=lambda s: s.key), 2):
            both = a.packed is not None and b.packed is not None
            iou = mean_iou_packed(a.packed, b.packed) if both else 0.0
            errors = shared_errors(a.packed, b.packed, self.truth) if both and iou >= NEAR_IDENTICAL else 0.0
            pair = Pair(a, b, shared.get((a.key, b.key), 0), iou, errors)
            if pair.kinds(n):
                out.append(pair)
        return sorted(out, key=lambda p: (-p.identical_files, -p.mean_iou, p.a.student, p.b.student))


def notes(pairs: list[Pair], n: int) -> dict[int, str]:
    """Return, per entry key, the note for its gradebook reason naming the students it matches."""
    partners: dict[int, list[str]] = {}
    for p in pairs:
        files = f"{p.identical_files} identical files, " if p.identical_files >= min_shared(n) else ""
        for me, other in ((p.a, p.b), (p.b, p.a)):
            partners.setdefault(me.key, []).append(f"{other.student} ({files}IoU {p.mean_iou:.3f} between the two)")
    out = {}
    for key, items in partners.items():
        more = f" and {len(items) - 2} more" if len(items) > 2 else ""
        out[key] = f"{FLAG} with {', '.join(items[:2])}{more} (see {DUPLICATES})"
    return out


def write_duplicates(pairs: list[Pair], n: int, path: Path) -> Path:
    """Write the flagged pairs as a CSV for the instructor (a header only when none was flagged)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student_a", "student_b", "checks", "identical_files", "test_images", "mean_iou_between", "shared_errors"])
        for p in pairs:
            writer.writerow([csv_cell(p.a.student), csv_cell(p.b.student), "; ".join(p.kinds(n)), p.identical_files, n, f"{p.mean_iou:.4f}",
                             f"{p.shared_errors:.3f}" if p.mean_iou >= NEAR_IDENTICAL else ""])
    os.replace(tmp, path)
    return path
