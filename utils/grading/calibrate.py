"""Calibration: run the reference solution on the class's package and record its score, for relative rubrics.

`calibrate` executes a solution notebook (the course's Keras or PyTorch reference, or the
instructor's own) with nbclient, in a child process, from a temporary copy, with

    LAB_DIR      the student package (the folder holding train/ and test/), only ever read
    LAB_REPORT   a temporary JSON file the notebook writes its report to (utils.lab.write_report)
    SEG_PROFILE  the run profile (smoke, cpu, gpu), when one is chosen
    SEG_RUNS_DIR a temporary folder for whatever the notebook saves

and reads the report (keys in REPORT_KEYS). The held-out ("test") score is the reference R of the
class's rubric: `calibration_record` turns the report into the calibration JSON that
`grade --reference FILE` (or `answers/calibration.json`) reads back with `load_reference`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from utils.course import ROOT
from utils.errors import CourseError

CALIBRATION = "calibration.json"
FRAMEWORKS = {
    "keras": Path("lab") / "solution" / "BodySegmentation.ipynb",
    "pytorch": Path("lab") / "solution" / "BodySegmentationPytorch.ipynb",
}
REPORT_KEYS = ("framework", "data", "profile", "frames", "validation", "test", "train_seconds", "best_epoch", "device")
DEFAULT_TIMEOUT = 3600.0
_CHILD = (  # what the child process that `calibrate` starts runs
    "import sys\nfrom pathlib import Path\nfrom utils.grading.calibrate import execute_notebook\n"
    "execute_notebook(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5]))\n"
)


def find_package(package: str | Path) -> Path:
    """Return the student package folder (holding train/images, train/masks, test/images), or raise CourseError."""
    package = Path(package).expanduser()
    if not package.is_dir():
        raise CourseError(f"--package {package} is not a folder: give the student package written by `lab prepare` (OUT/student)")
    if not (package / "train").is_dir() and (package / "student" / "train").is_dir():
        package = package / "student"  # the folder `lab prepare` wrote into
    missing = [sub for sub in ("train/images", "train/masks", "test/images") if not (package / sub).is_dir()]
    if missing:
        raise CourseError(f"--package {package} is not a lab package (no {missing[0]}/): give the student/ folder written by `lab prepare`")
    return package.resolve()


def _first_line(source: str) -> str:
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    return (lines[0][:70] + ("…" if len(lines[0]) > 70 else "")) if lines else "(empty)"


def execute_notebook(notebook: Path, executed: Path, status: Path, timeout: float, workdir: Path) -> None:
    """Execute a notebook with nbclient in this process; write the executed copy and a status JSON (run in a child)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(notebook, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    started = time.perf_counter()

    def done(cell, cell_index, execute_reply):  # noqa: ARG001 - nbclient's hook signature
        print(f"cell {cell_index} done ({code.index(cell_index) + 1}/{len(code)} code cells, "
              f"{time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    client = NotebookClient(nb, timeout=int(timeout), kernel_name="python3", resources={"metadata": {"path": str(workdir)}},
                            on_cell_executed=done)
    result: dict = {"ok": True}
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        result = {"ok": False, "error": str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__}
        for i, cell in enumerate(nb.cells):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                result.update(cell=i, first_line=_first_line(cell.source), ename=errors[0]["ename"],
                              evalue=str(errors[0]["evalue"])[:300])
                break
        else:
            if isinstance(exc, CellTimeoutError):
                result.update(ename="timeout", evalue=f"a cell ran past {timeout:.0f} s")
    result["seconds"] = time.perf_counter() - started
    nbformat.write(nb, executed)
    status.write_text(json.dumps(result), encoding="utf-8")


def _read_report(path: Path, notebook: Path) -> dict:
    if not path.is_file():
        raise CourseError(f"{notebook} ran to the end but wrote no report to $LAB_REPORT: "
                          "end it with utils.lab.write_report(report, NAME) (see lab/README.md, calibrate)")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CourseError(f"{notebook} wrote a report that is not JSON ({exc}): fix its write_report call") from None
    missing = [k for k in REPORT_KEYS if k not in report] if isinstance(report, dict) else list(REPORT_KEYS)
    if missing:
        raise CourseError(f"{notebook}'s report lacks {', '.join(missing)}: the report needs {', '.join(REPORT_KEYS)}")
    for part in ("test", "validation"):
        value = report[part].get("iou") if isinstance(report[part], dict) else None
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise CourseError(f"{notebook}'s report has no {part} IoU between 0 and 1 ({report[part]!r}): fix the report")
    return report


def calibrate(
    package: str | Path,
    *,
    framework: str = "keras",
    profile: str | None = None,
    notebook: str | Path | None = None,
    out: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    keep: str | Path | None = None,
) -> dict:
    """Run the reference solution on `package`; return (and write to `out`) the calibration record.

    `keep`, a path, receives the executed notebook (with its outputs) for a look afterwards.
    """
    if framework not in FRAMEWORKS:
        raise CourseError(f"--framework {framework!r}: choose one of {', '.join(FRAMEWORKS)}")
    if profile is not None:
        from utils.profiles import PROFILES

        if profile not in PROFILES:
            raise CourseError(f"--profile {profile!r}: choose one of {', '.join(PROFILES)}")
    package = find_package(package)
    source = Path(notebook).expanduser() if notebook is not None else ROOT / FRAMEWORKS[framework]
    if not source.is_file():
        raise CourseError(f"{source} does not exist: give the solution notebook with --notebook PATH")
    out = Path(out).expanduser() if out is not None else None
    if out is not None and (out.resolve() == package or package in out.resolve().parents):
        raise CourseError(f"--out {out} is inside the package {package}: write the calibration elsewhere (e.g. answers/)")
    with tempfile.TemporaryDirectory(prefix="lab-calibrate-") as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        work.mkdir()
        copy = work / source.name
        shutil.copyfile(source, copy)
        # The solutions find the course by walking up from their folder to one holding utils/.
        (work / "utils").symlink_to(ROOT / "utils", target_is_directory=True)
        env = {**os.environ, "LAB_DIR": str(package), "LAB_REPORT": str(tmp / "report.json"), "SEG_RUNS_DIR": str(tmp / "runs"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        if profile is not None:
            env["SEG_PROFILE"] = profile
        executed, status = tmp / "executed.ipynb", tmp / "status.json"
        command = [sys.executable, "-c", _CHILD, str(copy), str(executed), str(status), str(timeout), str(work)]
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=work, env=env, start_new_session=True)  # noqa: S603 - our own interpreter and module
        try:
            child.wait(timeout=timeout + 120)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise CourseError(f"{source} ran past {timeout:.0f} s: give a larger --timeout or a smaller --profile") from None
        except KeyboardInterrupt:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        seconds = time.perf_counter() - started
        if keep is not None and executed.is_file():
            shutil.copyfile(executed, Path(keep).expanduser())
        if not status.is_file():
            raise CourseError(f"{source} could not be run (the notebook runner exited with status {child.returncode}): "
                              "check that nbclient and ipykernel are installed")
        result = json.loads(status.read_text(encoding="utf-8"))
        if not result["ok"]:
            where = f"cell {result['cell']} ({result['first_line']})" if "cell" in result else "a cell"
            raise CourseError(f"{source} failed in {where}: {result.get('ename', 'error')}: {result.get('evalue', result.get('error', ''))}")
        report = _read_report(tmp / "report.json", source)
    record = calibration_record(report, package=package, notebook=source, run_seconds=seconds)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def calibration_record(report: dict, *, package: Path, notebook: Path, run_seconds: float) -> dict:
    """Return the calibration JSON's content from a solution's report."""
    profile = report["profile"]
    return {
        "kind": "lab calibration",
        "reference": {"iou": float(report["test"]["iou"]), "dice": float(report["test"].get("dice", float("nan")))},
        "validation": {"iou": float(report["validation"]["iou"]), "dice": float(report["validation"].get("dice", float("nan")))},
        "profile": profile.get("name") if isinstance(profile, dict) else str(profile),
        "framework": report["framework"],
        "data": report["data"],
        "device": report["device"],
        "frames": report["frames"],
        "best_epoch": report["best_epoch"],
        "train_seconds": float(report["train_seconds"]),
        "run_seconds": round(float(run_seconds), 1),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "package": str(package),
        "notebook": str(notebook),
    }


def describe(record: dict) -> str:
    """Return the calibration as a few printable lines."""
    return "\n".join([
        f"reference solution: {record['framework']}, profile {record['profile']}, device {record['device']}, data {record['data']}",
        f"  held-out (\"test\") IoU {record['reference']['iou']:.4f} (Dice {record['reference']['dice']:.4f}), "
        f"validation IoU {record['validation']['iou']:.4f}",
        f"  training {record['train_seconds']:.0f} s, whole notebook {record['run_seconds']:.0f} s "
        f"(frames: {', '.join(f'{k} {v}' for k, v in record['frames'].items())})",
    ])


def load_reference(value: str | float | Path | None, metric: str = "iou", answers: Path | None = None) -> tuple[float, str] | None:
    """Return (R, where it came from) from a number, a calibration JSON, or `answers/calibration.json`; None if none exists."""
    if value is None:
        if answers is None or not (Path(answers) / CALIBRATION).is_file():
            return None
        value = Path(answers) / CALIBRATION
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        where = "--reference"
    else:
        text = str(value)
        try:
            number, where = float(text), "--reference"
        except ValueError:
            path = Path(text).expanduser()
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                number = float(record["reference"][metric])
            except OSError as exc:
                raise CourseError(f"--reference {path}: cannot read it ({exc.strerror}); give a calibration JSON or a number such as 0.91") from None
            except (ValueError, KeyError, TypeError):
                raise CourseError(f"--reference {path} is not a calibration JSON with reference.{metric}: "
                                  "write one with `python -m utils lab calibrate --out FILE`, or give a number") from None
            where = f"{path} ({record.get('framework', '?')}, {record.get('profile', '?')} profile, {str(record.get('date', '?'))[:10]})"
    if not 0.0 < number <= 1.0:
        raise CourseError(f"--reference {value}: the reference {metric} must be a number in (0, 1]")
    return number, where


