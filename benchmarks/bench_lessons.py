"""The lessons' SegNet and U-Net over several seeds: each lesson's own cells, run up to its test-split evaluation.

For every framework and seed, a copy of the lesson notebook is executed with nbclient from its first cell
to the cell that scores the test split (section 8), with `SEED = 42` replaced by the seed asked for; the
test Dice and IoU of each network and the validation Dice of every epoch are read back from the kernel.
The data, the split (seed 0), the profile and every other line are the notebook's own, so the figures are
what a learner running the lesson with that seed would see.

    flock /tmp/seg-heavy.lock python benchmarks/bench_lessons.py --seeds 42 0 1 --frameworks tf torch

Each run of one notebook takes 2-3 minutes in the cpu profile on a 2-core CPU. Prints one table; no
figure here is asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path
from unittest import mock

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    "tf": (ROOT / "notebooks" / "SemanticSegmentationTF.ipynb", "evaluate"),
    "torch": (ROOT / "notebooks" / "SemanticSegmentationPytorch.ipynb", "c34"),
}
READ_BACK = """
import json as _json
print("BENCH-RESULT " + _json.dumps({
    name: {"dice": float(r["dice"]), "iou": float(r["iou"]),
           "val_dice": [float(v) for v in histories[name]["val_dice"]]}
    for name, r in results.items()
}))
"""


def run_lesson(framework: str, seed: int, profile: str, timeout: int) -> dict:
    """Execute one lesson up to its evaluation cell with `seed`; return {network: scores} and the seconds."""
    path, last_id = NOTEBOOKS[framework]
    nb = nbformat.read(path, as_version=4)
    ids = [cell.get("id") for cell in nb.cells]
    nb.cells = nb.cells[: ids.index(last_id) + 1]
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and re.search(r"^SEED = \d+$", cell.source, flags=re.M):
            cell.source, replaced = re.subn(r"^SEED = \d+$", f"SEED = {seed}", cell.source, flags=re.M)
    if replaced != 1:
        raise RuntimeError(f"{path.name}: expected one line `SEED = <number>`, found {replaced}")
    nb.cells.append(nbformat.v4.new_code_cell(READ_BACK))
    with mock.patch.dict(os.environ, {"SEG_PROFILE": profile}):  # the kernel inherits it; restored afterwards
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - start
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if "BENCH-RESULT " in text:
            return {"seconds": seconds, "networks": json.loads(text.split("BENCH-RESULT ", 1)[1])}
    raise RuntimeError(f"{path.name} with seed {seed}: no result printed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1])
    parser.add_argument("--frameworks", nargs="+", choices=sorted(NOTEBOOKS), default=sorted(NOTEBOOKS))
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
          f" profile {args.profile}; load average {os.getloadavg()[0]:.2f}")
    rows, everything = [], {}
    for seed in args.seeds:
        for framework in args.frameworks:
            run = run_lesson(framework, seed, args.profile, args.timeout)
            everything[f"{framework} {seed}"] = run
            nets = run["networks"]
            segnet, unet = nets["SegNet"]["dice"], nets["U-Net"]["dice"]
            rows.append((framework, seed, segnet, unet, unet - segnet, run["seconds"]))
            print(f"{framework:5s} seed {seed:3d}: SegNet {segnet:.3f}, U-Net {unet:.3f}"
                  f" (val Dice per epoch {', '.join(f'{v:.2f}' for v in nets['U-Net']['val_dice'])}), {run['seconds']:.0f} s",
                  flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}\n")
    print("| framework | seed | SegNet test Dice | U-Net test Dice | U-Net - SegNet | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for framework, seed, segnet, unet, gap, seconds in rows:
        print(f"| {framework} | {seed} | {segnet:.3f} | {unet:.3f} | {gap:+.3f} | {seconds:.0f} |")
    for seed in args.seeds:
        if f"tf {seed}" in everything and f"torch {seed}" in everything:
            tf, pt = (everything[f"{f} {seed}"]["networks"]["U-Net"]["dice"] for f in ("tf", "torch"))
            print(f"seed {seed}: U-Net, TF - PyTorch = {tf - pt:+.3f}")
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
