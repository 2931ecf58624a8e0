"""Benchmark: loading PH2 the original lesson's way versus `utils.ph2.load_ph2`, cold and cached.

    python benchmarks/bench_loading.py                 # 200 synthetic cases in a temporary folder
    python benchmarks/bench_loading.py --data PATH     # any PH2 folder or archive

Contenders, each run in a fresh Python process (so no contender inherits another's memory or warm
caches inside the interpreter):

- plain loop: `os.walk` over the folders, `skimage.io.imread` for every image and mask, then
  `skimage.transform.resize` to size x size into float64 arrays (how the original lesson loads PH2);
- load_ph2 cold: `load_ph2(size=..., cache=False)`;
- load_ph2 cached: `load_ph2(size=...)` when a previous run (not timed) has written the cache.

Time is wall-clock for the whole call, the median over `--repeat` rounds (each round runs every
contender once, so a spell of load from other programs hits them all); CPU seconds (user + system, all
threads and worker processes) are shown beside it because they vary less on a shared machine.

Memory is the peak resident set size of the call above the process's resident size just before it: on
Linux the peak is reset to the current size (`/proc/self/clear_refs`) and read back as VmHWM, elsewhere
`ru_maxrss` is used. It counts every allocation, Pillow's and numpy's alike; the ratios use it. The
`traced MB` column is tracemalloc's peak from a second, separate call in the same process: it sees
numpy's buffers but not Pillow's, and is shown only for reference.

Every file is read once before timing, so all contenders see the same warm operating-system file cache.
A second table times the decoding pool alone: threads against processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

CONTENDERS = ("plain loop", "load_ph2 cold", "load_ph2 cached")
POOLS = ("threads x1", "threads x2", "threads x4", "processes x2")


# ----------------------------------------------------------------------------------------------
# what is measured (runs in the child process)


def plain_loop(root: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The original lesson's loader: walk order, imread, skimage resize to float64."""
    from skimage.io import imread
    from skimage.transform import resize

    images, masks = [], []
    for folder, _dirs, files in os.walk(root):
        if folder.endswith("_Dermoscopic_Image"):
            images.append(imread(os.path.join(folder, files[0])))
        if folder.endswith("_lesion"):
            masks.append(imread(os.path.join(folder, files[0])))
    x = np.array([resize(image, (size, size)) for image in images])
    y = np.array([resize(mask, (size, size)) for mask in masks])
    return x, y


def _cpu_seconds() -> float:
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):  # every thread, and worker processes
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _proc_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    return None


def _start_peak() -> float:
    """Reset the peak RSS to the current RSS where the OS allows it (Linux); return the baseline in MB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # "reset the peak resident set size to the current one" (Linux >= 4.0)
        return _proc_status_mb("VmRSS")
    except OSError:
        return _ru_maxrss_mb()


def _peak_mb() -> float:
    hwm = _proc_status_mb("VmHWM")
    return hwm if hwm is not None else _ru_maxrss_mb()


def _ru_maxrss_mb() -> float:
    # Fallback only: ru_maxrss may start at the parent's peak (it survives fork + exec), which hides
    # a child's own peak below it; /proc's VmHWM after a reset does not have that problem.
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def _decode_processes(cases, size: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    from utils import ph2

    images = np.empty((len(cases), size, size, 3), np.uint8)
    masks = np.empty((len(cases), size, size), np.uint8)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, (image, mask) in enumerate(pool.map(ph2._decode_case, cases, repeat(size), chunksize=8)):
            images[i], masks[i] = image, mask
    return images, masks


def child(name: str, data: str, size: int) -> None:
    """Run one contender once (timed, RSS) and once more under tracemalloc; print one JSON line."""
    import PIL.Image  # noqa: F401  (imports are paid before the baseline)
    import skimage.io  # noqa: F401
    import skimage.transform  # noqa: F401

    from utils import ph2

    root = ph2.find_ph2(data)
    cases = ph2.list_cases(root)

    def run():
        if name == "plain loop":
            return plain_loop(root / "PH2 Dataset images", size)
        if name == "load_ph2 cold":
            return ph2.load_ph2(root, size=size, cache=False, progress=False)
        if name in ("load_ph2 cached", "warm cache"):
            return ph2.load_ph2(root, size=size, cache=True, progress=False)
        kind, workers = name.split(" x")
        if kind == "threads":
            return ph2._decode_all(cases, size, int(workers), progress=False)
        return _decode_processes(cases, size, int(workers))

    base, cpu = _start_peak(), _cpu_seconds()
    start = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    peak = _peak_mb() - base
    del out
    traced = None
    if name in CONTENDERS:
        tracemalloc.start()
        out = run()
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        del out
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_mb": peak, "traced_mb": traced}))


# ----------------------------------------------------------------------------------------------
# the driver (parent process)


def measure(name: str, data: Path, size: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--data", str(data), "--size", str(size)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm_file_cache(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        if path.is_file():
            total += len(path.read_bytes())
    return total


def machine() -> str:
    import PIL
    import skimage

    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"os.cpu_count()={os.cpu_count()}, numpy {np.__version__}, scikit-image {skimage.__version__}, "
        f"Pillow {PIL.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="PH2 folder or archive (default: 200 synthetic cases)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--count", type=int, default=200, help="synthetic cases when --data is not given")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per contender (median time)")
    parser.add_argument("--no-pools", action="store_true", help="skip the threads-versus-processes table")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data and cache")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.size)
        return

    work = Path(tempfile.mkdtemp(prefix="bench-ph2-"))
    try:
        run_all(args, work)
    finally:
        if args.keep:
            print(f"\n(temporary data and cache kept in {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_all(args: argparse.Namespace, work: Path) -> None:
    from utils import ph2

    if args.data is None:
        from utils.synthetic import synthetic_ph2

        print(f"generating {args.count} synthetic cases in {work} ...", flush=True)
        data = synthetic_ph2(work / "src", count=args.count, progress=False)
    else:
        data = ph2.find_ph2(args.data)
    env = {**os.environ, "SEG_DATA_DIR": str(work / "data")}  # the cache goes to the temporary folder
    n = len(ph2.list_cases(data))
    megabytes = warm_file_cache(data) / 2**20
    print(f"machine: {machine()}")
    print(
        f"data: {n} cases, {megabytes:.0f} MB of files at {data}; output {args.size}x{args.size}; "
        f"median of {args.repeat} fresh process(es)\n"
    )

    runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
    for round_ in range(args.repeat):  # rounds interleave the contenders: a busy spell hits them all
        for name in CONTENDERS:
            if name == "load_ph2 cached":
                measure("warm cache", data, args.size, env)  # writes the cache if missing (not timed)
            runs[name].append(measure(name, data, args.size, env))
            print(f"  round {round_ + 1}: {name} {runs[name][-1]['seconds']:.3f} s", flush=True)
    results = {
        name: {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in rs),
            "peak_mb": max(r["peak_mb"] for r in rs),
            "traced_mb": max(r["traced_mb"] for r in rs),
        }
        for name, rs in runs.items()
    }

    plain = results["plain loop"]
    print()
    print("| contender | seconds | CPU seconds | peak MB (RSS) | traced MB | speed-up vs plain | peak vs plain |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.3f} | {r['cpu_seconds']:.2f} | {r['peak_mb']:.0f} | {r['traced_mb']:.0f} | "
            f"{plain['seconds'] / r['seconds']:.1f}x | {r['peak_mb'] / plain['peak_mb']:.3f} |"
        )
    cold, cached = results["load_ph2 cold"], results["load_ph2 cached"]
    goals = [
        ("cold >= 5x faster than the plain loop", plain["seconds"] / cold["seconds"] >= 5),
        ("cached >= 50x faster than the plain loop", plain["seconds"] / cached["seconds"] >= 50),
        ("cold peak <= 1/4 of the plain loop's", cold["peak_mb"] <= plain["peak_mb"] / 4),
    ]
    print()
    for goal, met in goals:
        print(f"goal {goal}: {'met' if met else 'NOT met'}")

    if not args.no_pools:
        print("\ndecoding pool alone (ph2._decode_case on every case, no listing, no cache):")
        pool_runs: dict[str, list[dict]] = {name: [] for name in POOLS}
        for _ in range(args.repeat):
            for name in POOLS:
                pool_runs[name].append(measure(name, data, args.size, env))
        print("| pool | seconds | CPU seconds |")
        print("| --- | ---: | ---: |")
        for name, rs in pool_runs.items():
            wall = statistics.median(r["seconds"] for r in rs)
            cpu = statistics.median(r["cpu_seconds"] for r in rs)
            print(f"| {name} | {wall:.3f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
