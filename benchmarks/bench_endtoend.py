"""Whole training runs on the CPU: the real entry points against the step-only figure of the same network.

Part `throughput` (before and after, side by side): each contender runs in a fresh child process, the
children alternating before / after for `--rounds` rounds, so the process-wide thread pools are each
code's own. "before" is the course's code at `--before` (a git ref, extracted to a temporary folder);
"after" is this checkout. Each child times, on the synthetic PH2 stand-in (cpu profile: 128×128,
batch 8, 140 training and 20 validation cases):

- `python -m utils train`'s code path (`utils.training.run_training` and its `fit_segmenter`; the
  lessons and the lab solutions now train with loops of their own), `--epochs` epochs, first one untimed;
- step-only: the same network, compiled with `compile_segmenter`, `fit` on pre-made float32 arrays at
  the same batch size (no augmentation, validation or callbacks), the same number of epochs;
- the PyTorch lesson's `fit` loop, run from notebooks/SemanticSegmentationPytorch.ipynb's own cells
  (found by the names they define), and a bare loop of the same steps on pre-made batches.

Where the difference goes is printed per epoch: time inside training batches (the step, plus any wait
for data), validation, callbacks / metrics, the rest of the epoch (idle, epoch start and end), and the
CPU time the pipeline's threads spent assembling and augmenting batches (overlapping the steps).

Part `quality`: time to validation Dice 0.85 and 0.90 (wall clock from the first step, validation
included, one seed) of the course's U-Nets and of the original lesson's networks
(benchmarks/original_lesson.py), one after the other, for each of `--seeds`. The course's: for Keras,
"keras course" is `fit_segmenter` (the command line's recipe), "keras lesson" the TF lesson's own
`compile_model` and `fit_model` cells with their cosine schedule over the epochs run, and "keras lesson §10"
the same with section 10's changes that act on a CPU (the optimiser's state built before the first step,
warm-started statistics); for PyTorch, the notebook's `fit`. `--torch-variant` changes the PyTorch
lesson's U-Net, optimiser or training step after its cells are loaded (see TORCH_TWEAKS), so a candidate
change is measured with the lesson's own `fit` loop.

The synthetic PH2 stand-in is drawn once per run in a temporary folder, unless `SEG_DATA_DIR` already
holds one of the current generator version (seed 0, 200 cases), which is then read, never written.

    flock /tmp/seg-heavy.lock python benchmarks/bench_endtoend.py [--part throughput|quality|all]
    flock /tmp/seg-heavy.lock python benchmarks/bench_endtoend.py --part quality --seeds 0 1 2 \
        --quality-contenders "torch course" --torch-variant warm-bn
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from notebook_code import definitions, run_cells  # beside this file, on the path when it runs as a script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIZE, BATCH = int(os.environ.get("BENCH_SIZE", 128)), 8  # BENCH_SIZE=32: a quick check that it runs
TORCH_NOTEBOOK = "notebooks/SemanticSegmentationPytorch.ipynb"
TF_NOTEBOOK = "notebooks/SemanticSegmentationTF.ipynb"




class NoBar:
    """tqdm's place in a benchmark: iterates, shows nothing."""

    def __init__(self, iterable, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __len__(self):
        return len(self.iterable)

    def set_postfix(self, *args, **kwargs):
        pass


# ---------------------------------------------------------------- timing helpers
class Timer:
    """Accumulates wall seconds and thread CPU seconds of wrapped calls (thread-safe enough for sums)."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self.calls = 0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - start
                self.cpu += time.thread_time() - cpu
                self.calls += 1

        return timed

    def take(self) -> tuple[float, float]:
        out = (self.wall, self.cpu)
        self.wall = self.cpu = 0.0
        return out


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system


def synthetic_ph2_split(workdir: Path):
    from utils import ph2
    from utils.synthetic import synthetic_ph2

    root = workdir / "ph2" / "PH2Dataset"
    if not root.exists():  # the parent makes it once (or links the one in SEG_DATA_DIR); the children share it
        from utils.synthetic import PH2_GENERATOR_VERSION

        shared = ph2.data_dir() / "synthetic" / "PH2Dataset"  # read only
        if shared.is_dir() and ph2.standin_version(shared) == PH2_GENERATOR_VERSION and "seed 0" in (shared / "Readme.txt").read_text():
            root.parent.mkdir(parents=True, exist_ok=True)
            root.symlink_to(shared, target_is_directory=True)
        else:
            synthetic_ph2(workdir / "ph2", count=200, progress=False)
    data = ph2.load_ph2(root, size=SIZE, progress=False)
    return root, data, ph2.split_indices(data, seed=0)


# ---------------------------------------------------------------- child: Keras
def keras_child(epochs: int, workdir: Path) -> dict:
    """Time run_training's code path and step-only fit of the same network, in this process."""
    import keras
    import numpy as np

    import utils.data as data_module
    from utils import training
    from utils.data import to_model_input
    from utils.models import build_unet, compile_segmenter

    root, data, split = synthetic_ph2_split(workdir)
    per_epoch, probe_state = [], {}
    getitem, augment, callbacks_timer = Timer(), Timer(), Timer()
    cls = data_module.SegmentationBatches
    cls.__getitem__ = getitem.wrap(cls.__getitem__)
    for name in ("augment_pair", "augment_batch"):
        if hasattr(data_module, name):
            setattr(data_module, name, augment.wrap(getattr(data_module, name)))

    class Probe(keras.callbacks.Callback):
        """First in the list: times epochs, training batches and validation."""

        def on_epoch_begin(self, epoch, logs=None):
            probe_state.update(start=time.perf_counter(), cpu=cpu_now(), steps=0.0, val=0.0)
            getitem.take(), augment.take(), callbacks_timer.take()

        def on_train_batch_begin(self, batch, logs=None):
            probe_state["b"] = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            probe_state["steps"] += time.perf_counter() - probe_state["b"]

        def on_test_begin(self, logs=None):
            probe_state["v"] = time.perf_counter()

        def on_test_end(self, logs=None):
            probe_state["val"] += time.perf_counter() - probe_state["v"]

        def on_epoch_end(self, epoch, logs=None):
            pass  # recorded by Closer, the last callback, so the others' epoch-end work is inside

    class Closer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            wall, cpu = time.perf_counter() - probe_state["start"], cpu_now() - probe_state["cpu"]
            per_epoch.append({"wall": wall, "cpu": cpu, "steps": probe_state["steps"], "val": probe_state["val"],
                              "callbacks": callbacks_timer.take()[0], "getitem": getitem.take(), "augment": augment.take()})

    original_fit = keras.Model.fit

    def fit(self, *args, callbacks=None, **kwargs):
        for cb in callbacks or []:  # time the entry point's own callbacks
            for hook in ("on_train_batch_begin", "on_train_batch_end", "on_epoch_begin", "on_epoch_end", "on_train_begin"):
                if type(cb).__dict__.get(hook) is not None:
                    setattr(cb, hook, callbacks_timer.wrap(getattr(cb, hook)))
        return original_fit(self, *args, callbacks=[Probe(), *(callbacks or []), Closer()], **kwargs)

    keras.Model.fit = fit
    start = time.perf_counter()
    report = training.run_training(root, size=SIZE, epochs=epochs, out=workdir / "unet.keras", profile="cpu", verbose=0)
    cli_wall = time.perf_counter() - start
    keras.Model.fit = original_fit
    cli = per_epoch[:]
    # step-only: the same network, compiled the same way, plain fit on pre-made arrays
    per_epoch.clear()
    keras.utils.set_random_seed(0)
    model = compile_segmenter(build_unet(SIZE, 16, 4), 1e-3)
    x = to_model_input(data.images[split["train"]])
    y = data.masks[split["train"]].astype(np.float32)[..., None]
    step = []
    for epoch in range(epochs):
        t, c = time.perf_counter(), cpu_now()
        model.fit(x, y, batch_size=BATCH, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
        step.append({"wall": time.perf_counter() - t, "cpu": cpu_now() - c})
    import tensorflow as tf

    threads = (tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())
    return {"cli": cli, "step": step, "images": int(len(split["train"])), "cli_wall": cli_wall, "val_dice": report.get("val_dice"),
            "test_dice": report.get("dice"), "tf_threads": threads}


# ---------------------------------------------------------------- child: PyTorch lesson
def torch_child(epochs: int, workdir: Path) -> dict:
    """Time the PyTorch lesson's own `fit` and a bare loop of the same steps on pre-made batches."""
    import torch

    from utils import metrics

    os.environ["SEG_RUNS_DIR"] = str(workdir / "runs")
    root, data, split = synthetic_ph2_split(workdir)
    ns: dict = {"__name__": "lesson", "sys": sys}
    notebook = ROOT / TORCH_NOTEBOOK
    run_cells(notebook, {"ROOT", "device"}, ns)  # imports, device, profile
    ns["memory_format"] = ns["torch"].contiguous_format  # the lesson's plain path (section 10 adds channels-last)
    from utils.profiles import PROFILES

    ns["profile"] = PROFILES["cpu"]
    ns.update(train=(data.images[split["train"]], data.masks[split["train"]]), val=(data.images[split["val"]], data.masks[split["val"]]),
              test=(data.images[split["test"]], data.masks[split["test"]]), SEED=42)
    run_cells(notebook, {"train_loader", "conv_block", "UNet", "SegmentationLoss", "fit", "evaluate"}, ns)
    torch.manual_seed(42)
    model = ns["UNet"](16, 4).to(ns["device"], memory_format=ns["memory_format"])
    # instrumentation: data (the loader), validation (evaluate), per-batch metrics (dice_per_image)
    data_t, val_t, met_t = Timer(), Timer(), Timer()
    loader = ns["train_loader"]

    class TimedLoader:
        def __init__(self, inner):
            self.inner = inner

        def __len__(self):
            return len(self.inner)

        def __getattr__(self, name):  # the lesson's fit re-seeds train_loader.generator
            return getattr(self.inner, name)

        def __iter__(self):
            it = iter(self.inner)
            nxt = data_t.wrap(lambda: next(it))
            while True:
                try:
                    yield nxt()
                except StopIteration:
                    return

    ns["train_loader"] = TimedLoader(loader)
    ns["evaluate"] = val_t.wrap(ns["evaluate"])
    metrics.dice_per_image = met_t.wrap(metrics.dice_per_image)
    ns["metrics"] = metrics
    per_epoch = []
    original_print = ns.get("print", print)
    state = {"t": time.perf_counter(), "c": cpu_now()}

    def epoch_print(*args, **kwargs):  # fit prints one line per epoch, at its end
        text = " ".join(map(str, args))
        if " epoch " in text and "val_dice" in text:
            now, cpu = time.perf_counter(), cpu_now()
            per_epoch.append({"wall": now - state["t"], "cpu": cpu - state["c"], "data": data_t.take()[0], "val": val_t.take()[0],
                              "callbacks": met_t.take()[0]})
            state.update(t=now, c=cpu)

    ns["print"] = epoch_print
    ns["tqdm"] = NoBar  # no progress bar in a benchmark's log
    state.update(t=time.perf_counter(), c=cpu_now())
    history = ns["fit"](model, "U-Net", epochs)
    ns["print"] = original_print
    # step-only: the same steps on pre-made batches
    torch.manual_seed(42)
    model = ns["UNet"](16, 4).to(ns["device"], memory_format=ns["memory_format"])
    batches = [(x, y) for x, y in loader]
    criterion = ns["SegmentationLoss"](0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    step = []
    for _ in range(epochs):
        t, c = time.perf_counter(), cpu_now()
        for x, y in batches:
            loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        step.append({"wall": time.perf_counter() - t, "cpu": cpu_now() - c})
    return {"cli": per_epoch, "step": step, "images": int(len(split["train"])), "val_dice": max(history["val_dice"]),
            "torch_threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)")}


# ---------------------------------------------------------------- PyTorch lesson variants
TORCH_TWEAKS = {  # name -> what it changes in the lesson's U-Net / fit (value after "=", where one is taken)
    "he": "He initialisation (kaiming_normal_, fan_out, relu) of every convolution followed by batch norm and ReLU",
    "wd": "AdamW's weight decay, =VALUE (the lesson: 1e-4)",
    "lr": "the cosine's peak learning rate, =VALUE (the lesson: the profile's 1e-3)",
    "bn-momentum": "batch norm's momentum, =VALUE (the lesson: PyTorch's 0.1)",
    "warm-bn": "the lesson's WarmBatchNorm2d (its 'faster' section) in place of nn.BatchNorm2d",
    "batch": "the training loader's batch size, =VALUE (the lesson: the profile's 8); validation keeps the profile's",
    "width": "the U-Net's base_filters, =VALUE (the lesson: the profile's 16)",
    "channels-last": "weights in torch.channels_last (the lesson's section 10 on CPUs and CUDA GPUs; its plain pass: the default layout)",
    "precise-bn": "before each validation, batch norm's statistics recomputed with the current weights over the training images"
                  " (un-augmented, torch.optim.swa_utils.update_bn), instead of the running averages of the epoch's steps",
    "bf16": "the training step under bfloat16 autocast on the CPU (the lesson's mixed_precision_step, which section 10 uses on"
            " CUDA GPUs only); validation stays float32. Fast only where the CPU has bfloat16 units (AMX, AVX512-BF16)",
}


def parse_variant(text: str) -> dict[str, float | None]:
    """Parse "plain" or comma-separated tweaks such as "he,lr=2e-3" into {name: value or None}."""
    tweaks: dict[str, float | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == "plain":
            continue
        name, _, value = part.partition("=")
        if name not in TORCH_TWEAKS:
            raise SystemExit(f"--torch-variant: unknown tweak {name!r}; known: {', '.join(TORCH_TWEAKS)}")
        if ("=VALUE" in TORCH_TWEAKS[name]) != bool(value):  # the tweaks that take a value say so in their description
            raise SystemExit(f"--torch-variant: {name} {'needs a value' if not value else 'takes no value'} ({TORCH_TWEAKS[name]})")
        tweaks[name] = float(value) if value else None
    return tweaks


def torch_lesson_model(ns: dict, tweaks: dict):
    """Build the lesson's UNet (cpu profile widths) with `tweaks` applied; patch the lesson's optimiser and profile."""
    import dataclasses
    import functools

    import torch
    from torch import nn

    if "lr" in tweaks:
        ns["profile"] = dataclasses.replace(ns["profile"], learning_rate=tweaks["lr"])
    if "wd" in tweaks:
        adamw = torch.optim.AdamW

        class AdamW(adamw):  # the lesson's fit looks torch.optim.AdamW up at call time
            def __init__(self, params, *args, **kwargs):
                kwargs["weight_decay"] = tweaks["wd"]
                super().__init__(params, *args, **kwargs)

        torch.optim.AdamW = AdamW
    norm = ns["WarmBatchNorm2d"] if "warm-bn" in tweaks else nn.BatchNorm2d
    if "bn-momentum" in tweaks:
        norm = functools.partial(norm, momentum=tweaks["bn-momentum"])
    if "precise-bn" in tweaks:
        evaluate = ns["evaluate"]
        bn_loader = ns["DataLoader"](ns["PH2Segmentation"](*ns["train"]), **ns["loader_options"])

        def precise_evaluate(model, loader, criterion):  # the lesson's fit looks evaluate up at call time
            if loader is ns["val_loader"]:
                torch.optim.swa_utils.update_bn(bn_loader, model, ns["device"])
            return evaluate(model, loader, criterion)

        ns["evaluate"] = precise_evaluate
    if "batch" in tweaks:  # the lesson's fit looks train_loader up at call time (its cosine counts its batches)
        options = {**ns["loader_options"], "batch_size": int(tweaks["batch"])}
        ns["train_loader"] = ns["DataLoader"](ns["train_set"], shuffle=True, generator=torch.Generator().manual_seed(ns["SEED"]), **options)
    width = int(tweaks["width"]) if "width" in tweaks else ns["profile"].base_filters
    model = ns["UNet"](width, ns["profile"].depth, norm=norm)
    if "he" in tweaks:
        for block in model.modules():
            if isinstance(block, nn.Sequential):  # conv_block: convolution, batch norm, ReLU
                for layer in block:
                    if isinstance(layer, nn.Conv2d):
                        nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    layout = torch.channels_last if "channels-last" in tweaks else ns["memory_format"]
    return model.to(ns["device"], memory_format=layout)


# ---------------------------------------------------------------- the TF lesson's model
def tf_lesson_model(seed: int, schedule_epochs: int, train, val) -> tuple[dict, object]:
    """The TF lesson's U-Net built and compiled by its own cells, its cosine over `schedule_epochs`.

    Returns the namespace that holds the lesson's definitions (`fit_model`, `WarmStartStatistics`, ...),
    set up for `train` and `val` as the lesson's split, and the model.
    """
    import dataclasses

    import keras

    from utils.profiles import PROFILES

    notebook = ROOT / TF_NOTEBOOK
    ns: dict = {"__name__": "lesson", "sys": sys}
    run_cells(notebook, {"ROOT"}, ns)  # imports
    plan = ns["setup_keras"](mixed_precision=False, verbose=False)
    profile = dataclasses.replace(PROFILES["cpu"], epochs=schedule_epochs)
    ns.update(plan=plan, profile=profile, SEED=seed, train=train, val=val, batch_size=plan.global_batch(profile.batch_size))
    definitions(notebook, {"conv_block", "build_unet", "dice_per_image", "iou_per_image", "compile_model", "fit_model"}, ns)
    keras.utils.set_random_seed(seed)
    return ns, ns["compile_model"](ns["build_unet"](SIZE, profile.base_filters, profile.depth))


# ---------------------------------------------------------------- child: time to quality
def quality_child(which: str, epochs: int, workdir: Path, seed: int = 0, variant: str = "plain") -> dict:
    """Train one contender up to `epochs` epochs, validating after each; return per-epoch (seconds, val Dice)."""
    import numpy as np

    root, data, split = synthetic_ph2_split(workdir)
    train = data.images[split["train"]], data.masks[split["train"]]
    val = data.images[split["val"]], data.masks[split["val"]]
    rows = []
    if which.startswith("keras"):
        import keras

        from utils.device import setup_keras
        from utils.training import fit_segmenter

        setup_keras(verbose=False)
        keras.utils.set_random_seed(seed)
        clock = {"t0": None}

        class Seconds(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                clock["t0"] = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                rows.append((time.perf_counter() - clock["t0"], float(logs["val_dice"])))

        if which in ("keras lesson", "keras lesson §10"):  # the TF lesson's own cells: its U-Net, compile_model (cosine), fit_model
            os.environ["SEG_RUNS_DIR"] = str(workdir / "runs")
            ns, model = tf_lesson_model(seed, epochs, train, val)  # the cosine reaches 0 at the last epoch run here
            callbacks = [Seconds()]
            if which == "keras lesson §10":  # section 10's changes on a CPU: the optimiser's state built, statistics warm-started
                model.optimizer.build(model.trainable_variables)
                callbacks.insert(0, ns["WarmStartStatistics"]())
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
                ns["fit_model"](model, epochs, callbacks=callbacks)
        elif which == "keras course":
            from utils.models import build_unet, compile_segmenter

            model = compile_segmenter(build_unet(SIZE, 16, 4), 1e-3)
            original_fit = keras.Model.fit
            keras.Model.fit = lambda self, *a, callbacks=None, **k: original_fit(self, *a, callbacks=[*(callbacks or []), Seconds()], **k)
            fit_segmenter(model, train, val, epochs=epochs, batch_size=BATCH, seed=seed, verbose=0)
        else:
            sys.path.insert(0, str(HERE))
            import original_lesson

            from utils.data import make_dataset

            model = original_lesson.compile_keras(original_lesson.keras_unet(SIZE, 16, 4))
            model.fit(make_dataset(*train, BATCH, shuffle=True, augment=True, seed=seed), validation_data=make_dataset(*val, BATCH),
                      epochs=epochs, verbose=0, callbacks=[Seconds()])
    else:
        import torch

        from utils import metrics

        os.environ["SEG_RUNS_DIR"] = str(workdir / "runs")
        ns: dict = {"__name__": "lesson", "sys": sys}
        notebook = ROOT / TORCH_NOTEBOOK
        run_cells(notebook, {"ROOT", "device"}, ns)
        ns["memory_format"] = ns["torch"].contiguous_format  # the lesson's plain path
        from utils.profiles import PROFILES

        ns["profile"] = PROFILES["cpu"]
        ns.update(train=train, val=val, test=(data.images[split["test"]], data.masks[split["test"]]), SEED=seed)
        run_cells(notebook, {"train_loader", "conv_block", "UNet", "WarmBatchNorm2d", "SegmentationLoss", "fit", "evaluate"}, ns)
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        if which == "torch course":
            tweaks = parse_variant(variant)
            model = torch_lesson_model(ns, tweaks)
            ns["tqdm"] = NoBar

            def epoch_print(*args, **kwargs):
                text = " ".join(map(str, args))
                if " epoch " in text and "val_dice" in text:
                    rows.append((time.perf_counter() - t0, float(text.split("val_dice ")[1].split(",")[0])))

            ns["print"] = epoch_print
            step = ns["train_step"]
            if "bf16" in tweaks:
                definitions(notebook, {"mixed_precision_step"}, ns)  # the function only: its cell also sets the layout
                ns.update(amp_dtype=torch.bfloat16, scaler=torch.amp.GradScaler("cpu", enabled=False))
                step = ns["mixed_precision_step"]
            ns["fit"](model, "U-Net", epochs, step=step)
        else:
            sys.path.insert(0, str(HERE))
            import original_lesson

            unet_cls, _, loss_for = original_lesson.torch_classes()
            model = unet_cls(16, 4)
            criterion = loss_for(model)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            for epoch in range(1, epochs + 1):
                model.train()
                ns["train_set"].epoch = epoch
                for x, y in ns["train_loader"]:
                    loss = criterion(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                model.eval()
                with torch.no_grad():
                    probs = np.concatenate([model(x)[:, 0].numpy() for x, _ in ns["val_loader"]])
                rows.append((time.perf_counter() - t0, metrics.dice(val[1], (probs > 0.5).astype(np.uint8))))
    return {"rows": rows}


# ---------------------------------------------------------------- parent
def extract(ref: str, dest: Path) -> Path:
    """Write the course's files at git `ref` into dest; return the folder."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "utils", "notebooks", "benchmarks"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


WORKDIR: Path | None = None  # shared by the children: the synthetic PH2 is written once


def spawn(code_root: Path, kind: str, epochs: int, extra_env: dict | None = None, extra_args: tuple = ()) -> dict:
    """Run one child on the code at code_root (this file's functions, that code's `utils`); return its result."""
    global WORKDIR
    if WORKDIR is None:
        WORKDIR = Path(tempfile.mkdtemp(prefix="bench_endtoend_"))
        atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)
        sys.path.insert(0, str(ROOT))
        synthetic_ph2_split(WORKDIR)  # reads SEG_DATA_DIR as the caller set it, if it holds a current stand-in
        print(f"data: {(WORKDIR / 'ph2' / 'PH2Dataset').resolve()}", flush=True)
        os.environ["SEG_DATA_DIR"] = str(WORKDIR / "cache")
    env = {**os.environ, "PYTHONPATH": str(code_root), "SEG_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", **(extra_env or {})}
    env.pop("SEG_SMOKE", None)
    env["SEG_DATA_DIR"] = str(WORKDIR / "cache")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--epochs", str(epochs), "--workdir", str(WORKDIR), *extra_args]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=code_root / "notebooks")  # where a lesson runs
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"child {kind} failed:\n{run.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def summarise(result: dict, images: int) -> dict:
    steady = result["cli"][1:] or result["cli"]
    step = result["step"][1:] or result["step"]
    mean = lambda rows, key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    return {
        "e2e_img_s": images / mean(steady, "wall"), "step_img_s": images / mean(step, "wall"),
        "e2e_img_cpu": images / mean(steady, "cpu"), "step_img_cpu": images / mean(step, "cpu"),
        "epoch": mean(steady, "wall"), "step_epoch": mean(step, "wall"), "first_epoch": result["cli"][0]["wall"],
        "val": mean(steady, "val"), "callbacks": mean(steady, "callbacks"),
        "in_batches": mean(steady, "steps") if "steps" in steady[0] else None,
        "data": mean(steady, "data") if "data" in steady[0] else None,
        "getitem_cpu": sum(r["getitem"][1] for r in steady) / len(steady) if "getitem" in steady[0] else None,
        "augment_cpu": sum(r["augment"][1] for r in steady) / len(steady) if "augment" in steady[0] else None,
    }


def throughput(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        before_root = extract(args.before, Path(tmp))
        runs: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.rounds):
            order = [("before", before_root), ("after", ROOT)] if r % 2 == 0 else [("after", ROOT), ("before", before_root)]
            for kind in args.frameworks:
                for label, code_root in order:
                    if kind == "torch" and label == "before" and not args.torch_before:
                        continue
                    result = spawn(code_root, kind, args.epochs, args.torch_env if kind == "torch" and label == "after" else None)
                    runs.setdefault((kind, label), []).append(result)
                    s = summarise(result, result["images"])
                    print(f"round {r + 1} {kind:5s} {label:6s} end-to-end {s['e2e_img_s']:5.1f} img/s, step-only {s['step_img_s']:5.1f} img/s "
                          f"(ratio {s['e2e_img_s'] / s['step_img_s']:.2f}); per CPU-s {s['e2e_img_cpu']:.1f} vs {s['step_img_cpu']:.1f} "
                          f"({s['e2e_img_cpu'] / s['step_img_cpu']:.2f}); load {os.getloadavg()[0]:.1f}", flush=True)
        table(runs, args)


def table(runs, args) -> None:
    import numpy as np

    print("\n| entry point | code | end-to-end img/s | step-only img/s | ratio | end-to-end img/CPU-s | step-only img/CPU-s | ratio | first epoch s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    summaries = {}
    for (kind, label), results in runs.items():
        s = [summarise(r, r["images"]) for r in results]
        med = {k: float(np.median([x[k] for x in s])) for k in s[0] if s[0][k] is not None}
        summaries[kind, label] = med
        name = "python -m utils train (fit_segmenter)" if kind == "keras" else "PyTorch lesson's fit"
        print(f"| {name} | {label} | {med['e2e_img_s']:.1f} | {med['step_img_s']:.1f} | {med['e2e_img_s'] / med['step_img_s']:.2f} | "
              f"{med['e2e_img_cpu']:.1f} | {med['step_img_cpu']:.1f} | {med['e2e_img_cpu'] / med['step_img_cpu']:.2f} | {med['first_epoch']:.1f} |")
    print("\nWhere an epoch goes (seconds per epoch after the first, median over rounds):")
    print("| entry point | code | epoch | step-only epoch | inside training batches | of which waiting for data | validation | callbacks / metrics | rest (idle, epoch edges) | pipeline CPU (threads) | of which augmentation |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (kind, label), m in summaries.items():
        name = "utils train" if kind == "keras" else "PyTorch lesson"
        if kind == "keras":
            inside = m["in_batches"]
            wait = inside - m["step_epoch"]
            rest = m["epoch"] - inside - m["val"] - m["callbacks"]
            print(f"| {name} | {label} | {m['epoch']:.2f} | {m['step_epoch']:.2f} | {inside:.2f} | {wait:+.2f} | {m['val']:.2f} | {m['callbacks']:.3f} | "
                  f"{rest:.2f} | {m['getitem_cpu']:.3f} | {m.get('augment_cpu', 0):.3f} |")
        else:
            rest = m["epoch"] - m["data"] - m["val"] - m["callbacks"]
            print(f"| {name} | {label} | {m['epoch']:.2f} | {m['step_epoch']:.2f} | {rest:.2f} (steps and bookkeeping) | {m['data']:.2f} (loader) | "
                  f"{m['val']:.2f} | {m['callbacks']:.3f} | | | |")
    extra = {k: v for k, v in runs.items()}
    for (kind, label), results in extra.items():
        r = results[0]
        print(f"{kind} {label}: " + ", ".join(f"{k} {r[k]}" for k in ("tf_threads", "torch_threads", "omp_wait_policy", "val_dice", "test_dice") if k in r))


def reach(rows: list, target: float) -> tuple[float, int] | None:
    """Return (seconds, epoch) of the first epoch whose validation Dice is at least target, None if none."""
    return next(((s, i + 1) for i, (s, d) in enumerate(rows) if d >= target), None)


def quality(args) -> None:
    import numpy as np

    variant = args.torch_variant
    label = lambda which: f"{which} [{variant}]" if which == "torch course" and variant != "plain" else which  # noqa: E731
    runs: dict[str, dict[int, list]] = {}
    for seed in args.seeds:
        for which in args.quality_contenders:
            extra = ("--torch-variant", variant) if which == "torch course" else ()
            rows = spawn(ROOT, f"quality:{which}:{seed}", args.quality_epochs, extra_args=extra)["rows"]
            runs.setdefault(which, {})[seed] = rows
            print(f"seed {seed} {label(which)}: " + ", ".join(f"{s:.1f}s {d:.3f}" for s, d in rows) + f"; load {os.getloadavg()[0]:.1f}",
                  flush=True)
    print("\n| network | seed | seconds to val Dice 0.85 (epoch) | to 0.90 (epoch) | last epoch's val Dice | best | vs original, 0.85 | vs original, 0.90 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for which, by_seed in runs.items():
        ratios: dict[float, list] = {0.85: [], 0.90: []}
        for seed, r in by_seed.items():
            ref = runs.get(which.split()[0] + " original", {}).get(seed)
            cells, out = [], []
            for target in (0.85, 0.90):
                got = reach(r, target)
                cells.append(f"{got[0]:.1f} ({got[1]})" if got else f"not in {len(r)} epochs")
                base = reach(ref, target) if ref else None
                if ref is None or which == which.split()[0] + " original":
                    out.append("")
                elif got and base:
                    ratios[target].append((got[0] / base[0],) * 2)
                    out.append(f"{got[0] / base[0]:.2f}")
                elif got:  # reached it; the original did not: only an upper bound
                    ratios[target].append((0.0, got[0] / ref[-1][0]))
                    out.append(f"< {got[0] / ref[-1][0]:.2f} (original never reached it)")
                elif base:  # the original reached it, this one did not
                    ratios[target].append((r[-1][0] / base[0], float("inf")))
                    out.append("not reached")
                else:  # neither: no ratio at all
                    ratios[target].append((0.0, float("inf")))
                    out.append("neither reached it")
            print(f"| {label(which)} | {seed} | {cells[0]} | {cells[1]} | {r[-1][1]:.3f} | {max(d for _, d in r):.3f} | {out[0]} | {out[1]} |")
        if len(by_seed) > 1:
            epochs = [reach(r, 0.85)[1] if reach(r, 0.85) else None for r in by_seed.values()]
            median = {t: median_of_intervals(v) for t, v in ratios.items()}
            print(f"| {label(which)} | median of {len(by_seed)} | epochs to 0.85: {epochs} | | "
                  f"{float(np.median([r[-1][1] for r in by_seed.values()])):.3f} | | {median[0.85]} | {median[0.90]} |")


def median_of_intervals(ratios: list[tuple[float, float]]) -> str:
    """The median of ratios known only as intervals (lo, hi): "< 0.56" is (0, 0.56), "not reached" (x, inf).

    The median is determined when the median of the lower ends equals that of the upper ends, e.g.
    (0, 0.56), (0.65, 0.65), (1.34, 1.34) -> 0.65 whatever the first ratio is; otherwise say so.
    """
    if not ratios:
        return ""
    low, high = (float(statistics.median(r[i] for r in ratios)) for i in (0, 1))
    if low != high:
        if high == float("inf") and low > 0:
            return f"> {low:.2f} (not reached on some seeds)"
        return f"undetermined (between {low:.2f} and {high:.2f}: bounds on some seeds)"
    return "not reached" if low == float("inf") else f"{low:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["throughput", "quality", "all"], default="all")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per throughput contender (the first is not counted)")
    parser.add_argument("--quality-epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the quality part (weights, shuffling, augmentation)")
    parser.add_argument("--torch-variant", default="plain",
                        help="the PyTorch lesson's U-Net changed after its cells are loaded: 'plain' or comma-separated tweaks, "
                             + "; ".join(f"{k}: {v}" for k, v in TORCH_TWEAKS.items()))
    parser.add_argument("--quality-contenders", nargs="*", default=["keras course", "keras lesson", "keras lesson §10", "keras original", "torch course", "torch original"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default="d63a1bf", help="git ref of the code to compare against")
    parser.add_argument("--frameworks", nargs="*", default=["keras", "torch"])
    parser.add_argument("--torch-before", action="store_true", help="also run the PyTorch lesson at --before")
    parser.add_argument("--torch-env", type=json.loads, default=None, help="extra environment (JSON) for the PyTorch 'after' child")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    parse_variant(args.torch_variant)  # refuse a misspelt variant before anything runs
    if args.child:
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(ROOT)).split(os.pathsep)[0])
        workdir = Path(args.workdir)
        if args.child == "keras":
            out = keras_child(args.epochs, workdir)
        elif args.child == "torch":
            out = torch_child(args.epochs, workdir)
        else:
            _, which, seed = args.child.split(":")
            out = quality_child(which, args.epochs, workdir, int(seed), args.torch_variant)
        print("RESULT " + json.dumps(out), flush=True)
        return
    print(f"{platform.processor() or platform.machine()} | {cpu_model()} | {os.cpu_count()} cores | python {platform.python_version()} | "
          f"load {os.getloadavg()[0]:.1f} | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    if args.part in ("throughput", "all"):
        throughput(args)
    if args.part in ("quality", "all"):
        quality(args)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
