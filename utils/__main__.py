"""The course's command line: `python -m utils COMMAND ...` (see `python -m utils --help`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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


def _grade(args: argparse.Namespace) -> None:
    from utils.grading import grade_submissions, load_rubric

    rubric = load_rubric(args.rubric) if args.rubric else None
    kwargs = {"rubric": rubric} if rubric is not None else {}
    kinds = tuple(k for k in args.reports.split(",") if k and k != "none")
    rows = grade_submissions(
        Path(args.answers), Path(args.submissions), Path(args.out), size=args.size, timeout=args.timeout,
        memory_mb=args.memory, jobs=args.jobs, reports=kinds, **kwargs,
    )
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "partial", "error")}
    print(f"graded {len(rows)} submission(s) ({counts['ok']} ok, {counts['partial']} partial, {counts['error']} error): "
          f"{Path(args.out) / 'gradebook.csv'}")


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

    p = sub.add_parser("grade", help="grade every submission folder; writes gradebook.csv and reports")
    p.add_argument("--answers", required=True)
    p.add_argument("--submissions", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--rubric", default=None, help="JSON file mapping IoU thresholds to points")
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
    """Import TensorFlow (when it is Keras's backend) with its C++ start-up lines kept off the terminal.

    TensorFlow 2.21 prints CUDA probes and oneDNN notes through absl before `TF_CPP_MIN_LOG_LEVEL` (set
    in `utils/__init__.py`) takes effect. They go to a temporary file instead; if the import fails,
    they are printed after all, since they may say why.
    """
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        return
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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
