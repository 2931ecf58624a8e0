"""The course's command line: `python -m utils COMMAND ...` (see `python -m utils --help`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from utils.errors import CourseError


def _synth(args: argparse.Namespace) -> None:
    from utils import synthetic

    if args.dataset == "ph2":
        path = synthetic.synthetic_ph2(args.dest, count=args.count or 200, seed=args.seed)
    else:
        path = synthetic.synthetic_mads(args.dest, count=args.count or 240, seed=args.seed, as_zip=args.zip)
    print(f"wrote synthetic {args.dataset.upper()} to {path}")


def _info(args: argparse.Namespace) -> None:
    from utils import mads, ph2

    path = Path(args.path)
    if not path.exists():
        raise CourseError(f"{path} does not exist: give the folder or archive of a PH2 or MADS dataset")
    problems = []
    for module, finder in ((ph2, ph2.find_ph2), (mads, mads.find_mads)):
        try:
            root = finder(path)
        except CourseError as exc:
            problems.append(str(exc))
            continue
        info = module.describe(root)
        print(json.dumps({"path": str(root), **info}, indent=2, default=str))
        if info.get("problems"):
            raise CourseError(f"{root}: {len(info['problems'])} problem(s), first: {info['problems'][0]}")
        return
    raise CourseError(f"{path} holds neither PH2 nor MADS. PH2: {problems[0]} MADS: {problems[1]}")


def _fetch(args: argparse.Namespace) -> None:
    from utils import mads, ph2

    fetch = ph2.fetch_ph2 if args.dataset == "ph2" else mads.fetch_mads
    print(f"{args.dataset.upper()} is ready at {fetch(args.dest)}")


def _train(args: argparse.Namespace) -> None:
    from utils.training import run_training

    report = run_training(args.data, size=args.size, epochs=args.epochs, out=args.out, profile=args.profile, seed=args.seed)
    print(json.dumps(report))


def _evaluate(args: argparse.Namespace) -> None:
    from utils.training import run_evaluation

    print(json.dumps(run_evaluation(args.model, args.data, seed=args.seed)))


def _links(args: argparse.Namespace) -> None:
    from utils.course import ROOT
    from utils.links import rewrite_links

    changed = rewrite_links(args.repo, args.ref)
    for path in changed:
        print(f"rewrote {path.relative_to(ROOT)}")
    print(f"{len(changed)} file(s) now point at {args.repo}" + (f" ({args.ref})" if args.ref else ""))


def _figures(args: argparse.Namespace) -> None:
    from utils.figures import make_figures

    for path in make_figures(args.out):
        print(f"wrote {path}")


def _lab_prepare(args: argparse.Namespace) -> None:
    from utils.grading import prepare_lab

    summary = prepare_lab(args.data, Path(args.out), seed=args.seed)
    print(json.dumps(summary, default=str))


def _lab_calibrate(args: argparse.Namespace) -> None:
    from utils.grading.calibrate import calibrate, describe

    record = calibrate(args.package, framework=args.framework, profile=args.profile, notebook=args.notebook, out=args.out,
                       timeout=args.timeout, keep=args.keep)
    print(describe(record))
    if args.out:
        print(f"wrote {args.out}: `grade` reads it as the reference (--reference {args.out}, or from the answers folder)")
    else:
        print("nothing written: pass --out ANSWERS/calibration.json to keep it for `grade`")


def _grade(args: argparse.Namespace) -> None:
    from utils.grading import DEFAULT_RUBRIC, grade_submissions, load_rubric, max_points, written_points
    from utils.grading.export import export_grades
    from utils.grading.manual import merge_manual

    rubric = load_rubric(args.rubric) if args.rubric else DEFAULT_RUBRIC
    out = Path(args.out)
    if args.export and not args.roster:
        raise CourseError(f"--export {args.export} needs --roster ROSTER.csv (the gradebook CSV that {args.export.title()} exports)")
    if args.roster and not args.export:
        raise CourseError("--roster is only used with --export canvas|moodle: add one")
    if args.gradebook_only:
        if not (out / "gradebook.csv").is_file():
            raise CourseError(f"--gradebook-only: {out / 'gradebook.csv'} does not exist: grade the class first (without --gradebook-only)")
        if not (args.manual or args.export):
            raise CourseError("--gradebook-only does nothing alone: add --manual FILE and/or --export canvas|moodle --roster FILE")
    else:
        missing = [flag for flag, value in (("--answers", args.answers), ("--submissions", args.submissions)) if not value]
        if missing:
            raise CourseError(f"{' and '.join(missing)} required to grade (or pass --gradebook-only to reuse {out / 'gradebook.csv'})")
        kinds = tuple(k for k in args.reports.split(",") if k and k != "none")
        rows = grade_submissions(
            Path(args.answers), Path(args.submissions), out, size=args.size, timeout=args.timeout,
            memory_mb=args.memory, jobs=args.jobs, reports=kinds, rubric=rubric, reference=args.reference,
        )
        counts = {s: sum(r.status == s for r in rows) for s in ("ok", "partial", "error")}
        print(f"graded {len(rows)} submission(s) ({counts['ok']} ok, {counts['partial']} partial, {counts['error']} error): "
              f"{out / 'gradebook.csv'}")
    mask_max, written_max = max_points(rubric), written_points(rubric)
    used = out / "rubric.json"  # the rubric the gradebook was graded with, unless --rubric says otherwise
    if not args.rubric and used.is_file():
        try:
            record = json.loads(used.read_text(encoding="utf-8"))
            mask_max, written_max = float(record["mask_points"]), float(record["written_points"])
        except (OSError, ValueError, KeyError, TypeError):
            raise CourseError(f"{used} is damaged: grade the class again, or pass the rubric with --rubric") from None
    if args.manual:
        for line in merge_manual(out, args.manual, written_max).lines():
            print(line)
    if args.export:
        done = export_grades(out, args.roster, args.export, assignment=args.assignment, match=args.match,
                             mask_max=mask_max, written_max=written_max)
        for line in done.lines():
            print(line)


def _translations(args: argparse.Namespace) -> None:
    from utils import translations

    sys.exit(translations.main(args.action, args.notebooks))


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `python -m utils`."""
    parser = argparse.ArgumentParser(prog="python -m utils", description="Semantic segmentation course tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a synthetic stand-in in the real dataset's on-disk layout")
    p.add_argument("dataset", choices=["ph2", "mads"])
    p.add_argument("dest", help="folder to write into (the dataset folder is created inside)")
    p.add_argument("--count", type=int, default=None, help="cases (PH2, default 200) or frames (MADS, default 240)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--zip", action="store_true", help="MADS only: write the Kaggle zip instead of folders")
    p.set_defaults(func=_synth)

    p = sub.add_parser("info", help="check a dataset folder or archive and describe it")
    p.add_argument("path")
    p.set_defaults(func=_info)

    p = sub.add_parser("fetch", help="download a dataset (PH2 from its mirrors, MADS through kagglehub)")
    p.add_argument("dataset", choices=["ph2", "mads"])
    p.add_argument("--dest", default=None, help="where to put it (default: data/)")
    p.set_defaults(func=_fetch)

    p = sub.add_parser("train", help="train the U-Net on PH2 (or the synthetic stand-in); last line is JSON")
    p.add_argument("--data", default=None, help="PH2 folder or archive (default: PH2_DIR, data/, else synthetic)")
    p.add_argument("--size", type=int, default=None, help="image side in pixels (default: the profile's)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the profile's)")
    p.add_argument("--out", default=None, help="where to save the best model (default: runs/unet.keras)")
    p.add_argument("--profile", choices=["smoke", "cpu", "gpu"], default=None, help="default: from the machine")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="evaluate a saved model on the test split; prints one JSON line")
    p.add_argument("--model", required=True)
    p.add_argument("--data", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("links", help="point every badge and link at a fork: --repo OWNER/NAME [--ref REF]")
    p.add_argument("--repo", required=True)
    p.add_argument("--ref", default=None)
    p.set_defaults(func=_links)

    p = sub.add_parser("figures", help="redraw the lesson's figures in images/")
    p.add_argument("--out", default=None, help="folder (default: images/)")
    p.set_defaults(func=_figures)

    p = sub.add_parser("lab", help="instructor tools for the body-segmentation lab")
    lab = p.add_subparsers(dest="lab_command", required=True)
    q = lab.add_parser("prepare", help="write the student package and the hidden answers, split by sequence")
    q.add_argument("--data", default=None, help="MADS zip or folder (default: MADS_DIR, data/, else synthetic)")
    q.add_argument("--out", required=True)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_lab_prepare)
    q = lab.add_parser("calibrate", help="run the reference solution on a lab package; print and record its held-out IoU and time")
    q.add_argument("--package", required=True, help="the student package (folder holding train/ and test/; OUT/student)")
    q.add_argument("--framework", choices=["keras", "pytorch"], default="keras", help="which reference solution (default keras)")
    q.add_argument("--profile", choices=["smoke", "cpu", "gpu"], default=None, help="run profile (default: from the machine)")
    q.add_argument("--notebook", default=None, help="your own solution notebook instead of the course's")
    q.add_argument("--out", default=None, help="calibration JSON to write, e.g. lab-2026/answers/calibration.json")
    q.add_argument("--timeout", type=float, default=3600.0, help="seconds for the whole notebook (default 3600)")
    q.add_argument("--keep", default=None, help="also save the executed notebook (with its outputs) here")
    q.set_defaults(func=_lab_calibrate)

    p = sub.add_parser("grade", help="grade every submission folder; writes gradebook.csv and reports")
    p.add_argument("--answers", default=None, help="the answers/ folder written by `lab prepare`")
    p.add_argument("--submissions", default=None, help="the folder holding one sub-folder per student")
    p.add_argument("--out", required=True, help="where the gradebook and reports go (e.g. grades)")
    p.add_argument("--rubric", default=None, help="JSON file mapping IoU thresholds to points (default: relative bands, 7 + 3 written)")
    p.add_argument("--reference", default=None,
                   help="reference IoU for a relative rubric: a calibration JSON or a number (default: ANSWERS/calibration.json)")
    p.add_argument("--manual", default=None, help="CSV student,points,comment: the written part's points, merged into the gradebook")
    p.add_argument("--export", choices=["canvas", "moodle"], default=None, help="also write OUT/canvas.csv or OUT/moodle.csv")
    p.add_argument("--roster", default=None, help="the platform's own gradebook export (for --export)")
    p.add_argument("--assignment", default="Body segmentation lab", help="assignment (grade column) name for --export")
    p.add_argument("--match", default=None, help="roster column the folder names match (default: Canvas 'SIS Login ID', Moodle 'Email address')")
    p.add_argument("--gradebook-only", action="store_true", help="do not grade: apply --manual / --export to OUT/gradebook.csv")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds of wall clock per model.keras, start-up included (default 300)")
    p.add_argument("--memory", type=int, default=4096, help="MiB of resident memory per model.keras (default 4096)")
    p.add_argument("--jobs", type=int, default=None, help="students graded at once (default: CPU count, at most 4)")
    p.add_argument("--size", type=int, default=128, help="input side for a model whose input size is not fixed (default 128)")
    p.add_argument("--reports", default="instructor,feedback",
                   help="comma-separated: instructor (reports/, with the truth), feedback (feedback/, to send back), or none")
    p.set_defaults(func=_grade)

    p = sub.add_parser("translations", help="status: which Spanish notebooks and READMEs are out of step; refresh: record a finished translation")
    p.add_argument("action", choices=["status", "refresh"])
    p.add_argument("notebooks", nargs="*", help="Spanish notebooks (default: all)")
    p.set_defaults(func=_translations)
    return parser


def quiet_tensorflow_import() -> None:
    """Import TensorFlow (when it is Keras's backend) now, with its C++ start-up lines held (utils/quiet.py)."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        return
    import tensorflow  # noqa: F401  (utils.quiet's hook holds standard error during this import)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (bad input: one line on stderr, status 2)."""
    args = build_parser().parse_args(argv)
    if args.command in ("train", "evaluate"):
        quiet_tensorflow_import()
    try:
        args.func(args)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
