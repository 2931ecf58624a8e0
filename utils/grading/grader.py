"""Grading a class: one row per entry of the submissions folder, whatever it holds, flushed as it finishes.

Masks are read in the parent (no student code runs); a model runs in its own isolated child
(utils.grading.runner) after its config passed the allow-list (utils.grading.model_check).
`jobs` students are graded at once. Ctrl-C or SIGTERM stops the children at once and still
writes the gradebook, marking the students not yet graded as `incomplete`.

A relative rubric (the default) is resolved with the reference score R (`reference`, else
`answers/calibration.json`) and the best trivial baseline B; `out/rubric.json` records R, B and
the bands used. Once every student is graded, duplicate submissions are looked for
(utils.grading.duplicates): flagged pairs go to `out/duplicates.csv` and both students' reasons.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from utils.errors import CourseError
from utils.grading.answers import Answers
from utils.grading.calibrate import CALIBRATION, load_reference
from utils.grading.duplicates import DUPLICATES, DuplicateFinder, Signature, notes, write_duplicates
from utils.grading.gradebook import Gradebook, GradeRow
from utils.grading.masks import MaskFolder, read_mask_folder
from utils.grading.model_check import MAX_INPUT_SIDE, ModelRefused, check_keras_file
from utils.grading.names import collision_key, display_name, file_stem
from utils.grading.reports import REPORT_KINDS, Result, write_feedback, write_instructor_report
from utils.grading.rubric import (
    DEFAULT_RUBRIC,
    check_rubric,
    is_relative,
    load_rubric,
    max_points,
    needs_reference,
    points_for,
    resolve_rubric,
    rubric_text,
    written_points,
)
from utils.grading.runner import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    Limits,
    RunFailed,
    probe_sandbox,
    run_model,
)
from utils.grading.scoring import baseline_scores, floor_of, score_images

_MAX_REASON = 300
MAX_MODEL_FILE = 1 << 30


@dataclass
class _Entry:
    raw: bytes  # the name as the file system gives it
    shown: str
    stem: str
    duplicate_of: str = ""
    key: int = -1  # position in the sorted list of entries


@dataclass
class _Context:
    answers: Answers
    rubric: dict
    floor: float | None
    size: int
    limits: Limits
    cancel: threading.Event
    submissions_fd: int
    dups: DuplicateFinder | None = None


def _short(text: str, limit: int = _MAX_REASON) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with_note(reason: str, note: str) -> str:
    """Return reason + note within the length limit, shortening the reason rather than losing the note."""
    note = _short(note, _MAX_REASON // 2)
    return f"{_short(reason, _MAX_REASON - len(note) - 2)}; {note}"


def _error(entry: _Entry, ctx: _Context, reason: str, source: str = "nothing") -> Result:
    return Result(GradeRow(entry.shown, 0.0, 0.0, float(ctx.rubric.get("otherwise", 0)), "error", _short(reason)), entry.stem, source)


def _open_dir(name: bytes | str, dir_fd: int) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)


def _lstat(name: bytes | str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None


def _private_model_copy(student_fd: int, dest: Path) -> None:
    """Copy model.keras, opened once without following links, into our own folder; raise ModelRefused."""
    try:
        fd = os.open("model.keras", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=student_fd)
    except OSError as exc:
        raise ModelRefused("model.keras is a link (refused)" if exc.errno == 40 else f"model.keras cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ModelRefused("model.keras is not a regular file (refused)")
        if st.st_size > MAX_MODEL_FILE:
            raise ModelRefused(f"model.keras is {st.st_size >> 20} MiB, more than {MAX_MODEL_FILE >> 20} MiB (refused)")
        with open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)


def _grade_model(student_fd: int, ctx: _Context) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="grading-model-") as tmp:
        original = Path(tmp) / "submitted.keras"
        _private_model_copy(student_fd, original)
        check_keras_file(original, Path(tmp) / "clean")
        original.unlink()
        images = ctx.answers.images()
        masks = run_model(Path(tmp) / "clean" / "model.keras", images, size=ctx.size, limits=ctx.limits, cancel=ctx.cancel)
    return dict(zip(ctx.answers.names, masks))


class _Cancelled(Exception):
    """The run was interrupted before this student's grading started."""


def _grade_entry(entry: _Entry, ctx: _Context) -> Result:
    if ctx.cancel.is_set():
        raise _Cancelled
    st = _lstat(entry.raw, ctx.submissions_fd)
    if st is None:
        return _error(entry, ctx, "vanished while grading")
    if stat.S_ISLNK(st.st_mode):
        return _error(entry, ctx, "is a link, not a folder (refused): copy the submission itself into submissions/")
    if not stat.S_ISDIR(st.st_mode):
        return _error(entry, ctx, "is a file, not a folder: put each submission in submissions/<student>/")
    try:
        student_fd = _open_dir(entry.raw, ctx.submissions_fd)
    except OSError as exc:
        return _error(entry, ctx, f"cannot be opened ({exc.strerror})")
    try:
        return _grade_folder(entry, student_fd, ctx)
    finally:
        os.close(student_fd)


def _grade_folder(entry: _Entry, student_fd: int, ctx: _Context) -> Result:
    answers, n = ctx.answers, len(ctx.answers.names)
    masks_st, model_st = _lstat("masks", student_fd), _lstat("model.keras", student_fd)
    notes: list[str] = []
    folder: MaskFolder | None = None
    if masks_st is not None and stat.S_ISLNK(masks_st.st_mode):
        notes.append("masks/ is a link (refused)")
    elif masks_st is not None and stat.S_ISDIR(masks_st.st_mode):
        fd = _open_dir("masks", student_fd)
        try:
            folder = read_mask_folder(fd, answers.shapes)
        finally:
            os.close(fd)
    has_model = model_st is not None
    usable_masks = folder is not None and (folder.masks or folder.refused)
    if folder is not None and not usable_masks:
        what = f"{len(folder.unmatched)} PNG names match no test image (e.g. {folder.unmatched[0]})" if folder.unmatched else "masks/ holds no PNG"
        if not has_model:
            return _error(entry, ctx, f"empty submission: {what}", "masks/")
        notes.append(f"{what}: model.keras graded instead")
    if usable_masks:
        preds, refused = folder.masks, folder.refused
        source = f"masks/ ({len(preds)} of {n} usable)"
        if has_model:
            notes.append("model.keras ignored (masks/ is graded when both are present)")
    elif has_model:
        source = "model.keras"
        try:
            preds, refused = _grade_model(student_fd, ctx), {}
        except (ModelRefused, RunFailed) as why:
            return _error(entry, ctx, "; ".join([*notes, str(why)]), source)
    else:
        stray = []
        with os.scandir(student_fd) as it:
            stray = [e.name for e in it if e.name.lower().endswith(".png")]
        hint = f" ({len(stray)} PNG files found outside masks/: move them into masks/)" if stray else ""
        return _error(entry, ctx, "; ".join([*notes, f"empty submission: no masks/ folder and no model.keras{hint}"]))
    ious, dices = score_images(preds, refused, answers)
    mean_iou, mean_dice = float(np.mean(list(ious.values()))), float(np.mean(list(dices.values())))
    if not (math.isfinite(mean_iou) and math.isfinite(mean_dice)):
        return _error(entry, ctx, "scores are not finite numbers", source)
    metric = ctx.rubric.get("metric", "iou")
    points = points_for(mean_iou if metric == "iou" else mean_dice, ctx.rubric, ctx.floor)
    problems = []
    missing = [m for m in answers.names if m not in preds and m not in refused]
    if missing:
        problems.append(f"{len(missing)} of {n} masks missing (first: {missing[0]}.png)")
    if refused:
        first = sorted(refused)[0]
        problems.append(refused[first] if len(refused) == 1 else f"{len(refused)} masks refused (first: {refused[first]})")
    if folder is not None and folder.unmatched and usable_masks:
        problems.append(f"{len(folder.unmatched)} PNG names match no test image (e.g. {folder.unmatched[0]})")
    if ctx.floor is not None and points == float(ctx.rubric.get("otherwise", 0)) and (mean_iou if metric == "iou" else mean_dice) <= ctx.floor:
        notes.append(f"no better than a trivial baseline ({metric} ≤ {ctx.floor:.3f}): no points")
    status = "partial" if problems else "ok"
    reason = "; ".join(problems + notes) if problems else "; ".join([f"all {n} test images graded", *notes])
    result = Result(GradeRow(entry.shown, mean_iou, mean_dice, points, status, _short(reason)), entry.stem, source, preds, ious, dices)
    if ctx.dups is not None:
        result.signature = ctx.dups.signature(entry.key, entry.shown, preds, folder.hashes if usable_masks else None)
    return result


def _entries(submissions: Path) -> list[_Entry]:
    with os.scandir(os.fsencode(submissions)) as it:
        raws = sorted(e.name for e in it)
    entries = [_Entry(raw, display_name(raw), "") for raw in raws]
    seen: dict[str, _Entry] = {}
    stems: set[str] = set()
    for e in sorted(entries, key=lambda e: (e.shown, e.raw)):
        e.stem = file_stem(e.shown, e.raw)
        while e.stem.casefold() in stems:
            e.stem += "_"
        stems.add(e.stem.casefold())
        key = collision_key(e.shown)
        if key in seen:
            e.duplicate_of = seen[key].shown
            if not seen[key].duplicate_of:
                seen[key].duplicate_of = e.shown
        else:
            seen[key] = e
    entries = sorted(entries, key=lambda e: (e.shown, e.raw))
    for i, e in enumerate(entries):
        e.key = i
    return entries


def _check_paths(answers: Path, submissions: Path, out: Path) -> None:
    if not submissions.is_dir():
        raise CourseError(f"{submissions} is not a folder: pass the folder holding one sub-folder per student")
    if out.exists() and not out.is_dir():
        raise CourseError(f"--out {out} is a file: give a folder for the gradebook and reports")
    out_r, sub_r, ans_r = out.resolve(), submissions.resolve(), answers.resolve()
    for label, other in (("submissions", sub_r), ("answers", ans_r)):
        if out_r == other or other in out_r.parents:
            raise CourseError(f"--out {out} is inside the {label} folder {other}: write the grades somewhere else")
    if ans_r == sub_r or ans_r in sub_r.parents or sub_r in ans_r.parents:
        raise CourseError(f"the answers {answers} and the submissions {submissions} overlap: keep them in separate folders")


def grade_submissions(
    answers: str | Path,
    submissions: str | Path,
    out: str | Path,
    *,
    rubric: dict | str | Path = DEFAULT_RUBRIC,
    size: int = 128,
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int = DEFAULT_MEMORY_MB,
    jobs: int | None = None,
    reports: tuple[str, ...] = REPORT_KINDS,
    reference: float | str | Path | None = None,
) -> list[GradeRow]:
    """Grade every entry of `submissions`; write `out/gradebook.csv`, `out/rubric.json`, `out/duplicates.csv`, `out/reports/`, `out/feedback/`; return the rows.

    `reference` (R of a relative rubric) is a number or a calibration JSON; without it,
    `answers/calibration.json` is read, and a relative rubric with neither is refused.

    `size` is the input side given to a model.keras whose input size is not fixed; `timeout`
    (seconds) and `memory_mb` limit each model's child process; `jobs` students are graded at
    once (default: the CPU count, at most 4). One student's failure becomes that student's error
    row; the batch always completes, or on Ctrl-C/SIGTERM writes what it has and re-raises.
    """
    rubric = load_rubric(rubric) if isinstance(rubric, (str, Path)) else check_rubric(rubric)
    answers_dir, submissions, out = Path(answers).expanduser(), Path(submissions).expanduser(), Path(out).expanduser()
    if not 8 <= int(size) <= MAX_INPUT_SIDE:
        raise CourseError(f"--size {size}: give an input side between 8 and {MAX_INPUT_SIDE} pixels")
    if timeout <= 0 or memory_mb < 256:
        raise CourseError(f"--timeout {timeout} / --memory {memory_mb}: give a positive timeout and at least 256 MiB")
    unknown = set(reports) - set(REPORT_KINDS)
    if unknown:
        raise CourseError(f"unknown report kind {sorted(unknown)[0]!r}: choose from {', '.join(REPORT_KINDS)}")
    _check_paths(answers_dir, submissions, out)
    key = Answers(answers_dir)
    for warning in key.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    entries = _entries(submissions)
    if not entries:
        raise CourseError(f"{submissions} is empty: put each submission in submissions/<student>/")
    baselines = baseline_scores(key)
    metric = rubric.get("metric", "iou")
    floor, floor_label = floor_of(baselines, metric)
    use_floor = floor if rubric.get("floor", "baselines") == "baselines" else None
    ref = load_reference(reference, metric, key.folder)
    if ref is None and is_relative(rubric) and needs_reference(rubric):
        raise CourseError(
            f"the rubric is relative to the reference solution's {metric} and none was given: pass --reference FILE|IOU, "
            f"or run `python -m utils lab calibrate --package STUDENT --out {key.folder / CALIBRATION}` first"
        )
    source_rubric = rubric
    rubric = resolve_rubric(rubric, ref[0] if ref else None, floor)
    jobs = max(1, int(jobs if jobs is not None else min(4, os.cpu_count() or 1)))
    out.mkdir(parents=True, exist_ok=True)
    hidden = tuple(dict.fromkeys(str(p.resolve()) for p in (answers_dir, key.folder, submissions, out)))
    limits = Limits(float(timeout), int(memory_mb), max(1, (os.cpu_count() or 1) // jobs), hidden)
    if any((submissions / os.fsdecode(e.raw) / "model.keras").exists() for e in entries):
        sandbox = probe_sandbox()
        if sandbox.warning:
            print(sandbox.warning, file=sys.stderr)
    _write_rubric(out / "rubric.json", source_rubric, rubric, ref, floor, floor_label, baselines)
    book = Gradebook(out)
    sub_fd = os.open(submissions, os.O_RDONLY | os.O_DIRECTORY)
    finder = DuplicateFinder(key.names, key.shapes, key.starters, key.masks)
    ctx = _Context(key, rubric, use_floor, size, limits, threading.Event(), sub_fd, finder)
    done: dict[int, GradeRow] = {}
    signatures: list[Signature] = []
    interrupted = ""
    old_term = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):  # noqa: ARG001
            raise KeyboardInterrupt("SIGTERM")
        old_term = signal.signal(signal.SIGTERM, on_term)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grading")
    bar = tqdm(total=len(entries), desc="grading", unit="student")
    futures: dict[Future, int] = {}
    try:
        futures.update({pool.submit(_grade_entry, e, ctx): i for i, e in enumerate(entries)})
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = futures[fut]
                entry = entries[i]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - one student's failure never stops the batch
                    result = _error(entry, ctx, f"grader failed on this submission ({type(exc).__name__}: {exc})")
                if entry.duplicate_of:
                    result.row.reason = _short(f"{result.row.reason}; DUPLICATE NAME: looks the same as {entry.duplicate_of!s} after normalisation")
                for kind, writer in (("instructor", write_instructor_report), ("feedback", write_feedback)):
                    if kind in reports:
                        try:
                            extra = {"baselines": baselines} if kind == "instructor" else {}
                            writer(result, key, rubric, out / ("reports" if kind == "instructor" else "feedback"), floor=use_floor, **extra)
                        except Exception as exc:  # noqa: BLE001 - a failed figure must not lose the grade
                            result.row.reason = _short(f"{result.row.reason}; {kind} report not written ({type(exc).__name__})")
                done[i] = result.row
                if result.signature is not None:
                    signatures.append(result.signature)
                result.preds = {}  # only the signature is kept: a class's full-size masks would not fit
                book.add(result.row)
                bar.update(1)
    except KeyboardInterrupt as exc:
        interrupted = str(exc) or "Ctrl-C"
        ctx.cancel.set()
        raise
    finally:
        ctx.cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for fut, i in futures.items():  # finished but not yet recorded when the run stopped: keep them
            if i not in done and fut.done() and not fut.cancelled() and fut.exception() is None:
                row = fut.result().row
                row.reason = _short(f"{row.reason}; reports not written (run interrupted)")
                done[i] = row
                book.add(row)
        bar.close()
        os.close(sub_fd)
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        rows = list(done.values())
        complete = len(done) == len(entries)
        if complete:
            try:
                pairs = finder.pairs(signatures)
                for i, note in notes(pairs, len(key.names)).items():
                    done[i].reason = _with_note(done[i].reason, note)
                write_duplicates(pairs, len(key.names), out / DUPLICATES)
                if pairs:
                    print(f"{len(pairs)} pair(s) of possible copies: {out / DUPLICATES}", file=sys.stderr)
            except Exception as exc:  # noqa: BLE001 - the gradebook must still be written
                print(f"warning: the duplicate check failed ({type(exc).__name__}: {exc}); grades are not affected", file=sys.stderr)
        if not complete:
            why = f"run interrupted ({interrupted or 'error'}) before this student was graded: run the grader again"
            rows += [GradeRow(e.shown, 0.0, 0.0, 0.0, "incomplete", why) for i, e in enumerate(entries) if i not in done]
        path = book.finish(rows, complete=complete)
        if not complete:
            print(f"INCOMPLETE: {len(done)} of {len(entries)} graded; {path} marks the rest `incomplete`", file=sys.stderr)
    shown = ", ".join(f"{k} {v['iou']:.3f}" for k, v in baselines.items())
    rule = f"; no points at or below {floor_label}" if use_floor is not None else ""
    print(f"trivial baselines (IoU): {shown}{rule}", file=sys.stderr)
    if ref is not None:
        print(f"reference ({metric}): {ref[0]:.3f} from {ref[1]}", file=sys.stderr)
    print(f"rubric: {rubric_text(rubric, use_floor)}", file=sys.stderr)
    return sorted(rows, key=lambda r: r.student)


def _write_rubric(path: Path, source: dict, resolved: dict, ref: tuple[float, str] | None, floor: float, floor_label: str,
                  baselines: dict) -> None:
    """Record the rubric as used: R, B, every band's threshold as a number, the baselines."""
    record = {
        "metric": resolved.get("metric", "iou"),
        "reference": None if ref is None else {"value": ref[0], "from": ref[1]},
        "baseline": {"value": floor, "name": floor_label},
        "bands": [{k: v for k, v in b.items()} for b in resolved["bands"]],
        "otherwise": resolved.get("otherwise", 0),
        "floor": resolved.get("floor", "baselines"),
        "mask_points": max_points(resolved),
        "written_points": written_points(resolved),
        "text": rubric_text(resolved, floor if resolved.get("floor", "baselines") == "baselines" else None),
        "rubric": source,
        "baselines": baselines,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
