"""Benchmark: CPU training of the course's U-Nets against the original lesson's design, side by side.

    python benchmarks/bench_training.py                # 200 synthetic PH2 cases in a temporary folder
    python benchmarks/bench_training.py --quick        # 2 rounds, 1 seed, at most 8 epochs
    python benchmarks/bench_training.py --data PATH    # any PH2 folder or archive

On 2 cores the full run took about 9 minutes (13 on a busy machine), --quick about 3.

Everything runs in one process, at 128x128, batch 8 (the cpu profile of `utils.profiles`), on the
training split of `utils.ph2.split_indices`. Four models, all with the channels 16, 32, 64, 128 and a
256-channel bottleneck:

- Keras U-Net: `utils.models.build_unet(128, 16, 4)` compiled by `utils.models.compile_segmenter`;
- PyTorch U-Net: the `UNet` class of notebooks/SemanticSegmentationPytorch.ipynb, run from the notebook;
- lesson design, Keras and PyTorch: the same networks, except that every encoder block is run a SECOND
  time to make its skip tensor. This reproduces, for measurement only, a defect of the original lesson
  (see shared/datasets.md); the course's own models do not have it.

Tables printed (ratios, never asserted by tests: they depend on the machine and on what else runs):

1. training throughput (images/s) in steady state: every contender trains `--steps` steps per round,
   the contenders take turns over `--rounds` rounds (so a busy spell on a shared machine hits them
   all), warm-up steps are not timed, and the median round is reported. The same pre-made batches
   (from `utils.data.make_dataset`, augmented) feed every contender. Also: the Keras U-Net with
   XLA (`jit_compile=True`) against Keras's default, which on a CPU-only machine leaves XLA off.
2. time to quality: seconds of training (validation included) until the validation Dice first
   reaches `--target` (0.85), at most `--epochs` epochs. The four models take turns epoch by epoch;
   Keras trains with `model.fit` on `utils.data.make_dataset` batches (as `utils.training.fit_segmenter`
   does), PyTorch with a plain loop on the very same batches, AdamW (lr 1e-3, weight decay 1e-4)
   and BCEWithLogitsLoss in both. On the synthetic data the target falls within a few epochs, so
   this is coarse (one epoch is a large share of the total): read it with the per-seed columns.
3. utilisation: achieved training FLOP/s over the float32 matrix-multiply peak measured in the same
   run (2048x2048 with torch, NumPy and TensorFlow, the best of several tries). Training FLOPs are
   counted from the Keras model's Conv2D / Conv2DTranspose layers and their shapes (printed, so a
   reader can check them) and cross-checked with `torch.utils.flop_counter` on the PyTorch U-Net.

CPU seconds (all threads of the process) are shown beside wall time: on a shared machine they vary
less. OMP_WAIT_POLICY defaults to PASSIVE here (set it before running to override): PyTorch's OpenMP
threads otherwise spin at every barrier, which on an oversubscribed machine costs several times the
work itself.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch or TensorFlow start their thread pools
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # XLA on CPU is a TensorFlow-backend question
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "SemanticSegmentationPytorch.ipynb"
SIZE, BATCH, BASE, DEPTH = 128, 8, 16, 4  # utils.profiles' cpu profile
LR, WEIGHT_DECAY = 1e-3, 1e-4  # utils.models.compile_segmenter's defaults


def clocks() -> tuple[float, float]:
    """Return (wall seconds, CPU seconds of every thread of this process)."""
    return time.perf_counter(), time.process_time()


# ----------------------------------------------------------------------------------------------
# data


def load_data(args: argparse.Namespace, work: Path):
    """Return (train images, train masks, val images, val masks) as uint8 arrays at SIZE x SIZE."""
    from utils import ph2

    os.environ["SEG_DATA_DIR"] = str(work / "data")  # the loader's cache goes to the temporary folder
    if args.data is None:
        from utils.synthetic import synthetic_ph2

        print(f"generating {args.count} synthetic PH2 cases in {work} ...", flush=True)
        root = synthetic_ph2(work / "src", count=args.count, progress=False)
        kind = "synthetic PH2"
    else:
        root, kind = ph2.find_ph2(args.data), "PH2"
    data = ph2.load_ph2(root, size=SIZE, progress=False)
    split = ph2.split_indices(data)
    train, val = split["train"], split["val"]
    print(f"data: {kind}, {len(data)} cases: {len(train)} train, {len(val)} validation, {SIZE}x{SIZE}")
    return data.images[train], data.masks[train], data.images[val], data.masks[val]


# ----------------------------------------------------------------------------------------------
# the models


def keras_unet(jit_compile: bool | None = None, seed: int = 0):
    """The course's Keras U-Net as it ships; `jit_compile` overrides what compile chose ("auto")."""
    import keras

    from utils.models import build_unet, compile_segmenter

    keras.utils.set_random_seed(seed)
    model = compile_segmenter(build_unet(SIZE, BASE, DEPTH), LR)
    if jit_compile is not None:
        model.jit_compile = jit_compile  # read when the train function is first made
    return model


def keras_lesson_unet(seed: int = 0):
    """REPRODUCTION OF THE ORIGINAL LESSON'S DEFECT, for measurement only: the Keras U-Net of
    `utils.models` with each encoder block run a second time to make its skip tensor (double the
    encoder's compute; BatchNormalization statistics updated twice per step)."""
    import keras
    from keras import layers

    from utils.models import compile_segmenter

    def block(filters: int, name: str):  # utils.models.conv_block's layers, as one callable object
        stack = []
        for i in (1, 2):
            stack += [
                layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}"),
                layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}"),
                layers.Activation("relu", name=f"{name}_relu{i}"),
            ]
        return keras.Sequential(stack, name=name)

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x, skips = inputs, []
    for level in range(DEPTH):
        encoder = block(BASE * 2**level, f"enc{level}")
        skips.append(encoder(x))  # the defect: the block runs again, only to make the skip tensor
        x = layers.MaxPooling2D(name=f"pool{level}")(encoder(x))
    x = block(BASE * 2**DEPTH, "bottleneck")(x)
    for level in reversed(range(DEPTH)):
        filters = BASE * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = block(filters, f"dec{level}")(x)
    logits = layers.Conv2D(1, 1, dtype="float32", name="logits")(x)
    return compile_segmenter(keras.Model(inputs, logits, name="lesson_unet"), LR)


def torch_classes():
    """Return (UNet, LessonUNet): the notebook's U-Net, and the lesson-design variant of it."""
    import torch
    from notebook_code import definitions
    from torch import nn

    unet = definitions(NOTEBOOK, {"UNet", "conv_block"}, {"torch": torch, "nn": nn})["UNet"]

    class LessonUNet(unet):
        """REPRODUCTION OF THE ORIGINAL LESSON'S DEFECT, for measurement only: the notebook's UNet
        with each encoder block run a second time to make its skip tensor."""

        def forward(self, x):
            skips = []
            for encoder in self.encoders:
                skips.append(encoder(x))  # the defect: the block runs again, only to make the skip
                x = self.pool(encoder(x))
            x = self.bottleneck(x)
            for level in reversed(range(len(skips))):
                x = self.ups[level](x)
                x = torch.cat([x, skips[level]], dim=1)
                x = self.decoders[level](x)
            return self.head(x)

    return unet, LessonUNet


class TorchTrainer:
    """A plain PyTorch training loop: AdamW, BCEWithLogitsLoss, NHWC float batches in, NCHW inside."""

    def __init__(self, cls, seed: int = 0):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.torch = torch
        self.model = cls(BASE, DEPTH)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        self.loss = nn.BCEWithLogitsLoss()

    def tensors(self, x: np.ndarray, y: np.ndarray):
        nchw = lambda a: self.torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()  # noqa: E731
        return nchw(x), nchw(y)

    def step(self, x, y) -> float:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def val_dice(self, images: np.ndarray, masks: np.ndarray) -> float:
        from utils import metrics
        from utils.data import to_model_input

        self.model.eval()
        logits = []
        with self.torch.no_grad():
            for i in range(0, len(images), BATCH):
                x = (
                    self.torch.from_numpy(to_model_input(images[i : i + BATCH]))
                    .permute(0, 3, 1, 2)
                    .contiguous()
                )
                logits.append(self.model(x)[:, 0].numpy())
        return metrics.dice(masks, metrics.logits_to_mask(np.concatenate(logits)))


# ----------------------------------------------------------------------------------------------
# FLOPs


def conv_flops(model) -> dict[str, float]:
    """Return the forward FLOPs per image of every Conv2D / Conv2DTranspose layer of a Keras model.

    A convolution makes H*W*Cout outputs (H, W: its output size), each from Cin*k*k multiply-adds:
    2*H*W*Cin*Cout*k*k FLOPs. A transposed convolution scatters a k*k patch from each of its H*W
    *input* pixels: 2*H_in*W_in*Cin*Cout*k*k. Batch normalisation, ReLU, pooling and concatenation
    are left out (a few per cent of the FLOPs, and memory-bound).
    """
    from keras import layers

    flops = {}
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            _, h, w, cin = layer.input.shape
        elif isinstance(layer, layers.Conv2D):
            _, h, w, _ = layer.output.shape
            cin = layer.input.shape[-1]
        else:
            continue
        kh, kw = layer.kernel_size
        flops[layer.name] = 2.0 * h * w * cin * layer.filters * kh * kw
    return flops


def torch_train_flops(cls) -> float:
    """Return the FLOPs of one training step per image of a PyTorch model, counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    trainer = TorchTrainer(cls)
    x, y = torch.rand(BATCH, 3, SIZE, SIZE), torch.rand(BATCH, 1, SIZE, SIZE).round()
    with FlopCounterMode(display=False) as counter:
        trainer.loss(trainer.model(x), y).backward()
    return counter.get_total_flops() / BATCH


def matmul_peaks(n: int = 2048, tries: int = 3) -> dict[str, float]:
    """Return the best float32 n x n matmul rate (FLOP/s) of torch, NumPy and TensorFlow, and CPU-s rates."""
    import tensorflow as tf
    import torch

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    ta, fa = torch.from_numpy(a), tf.constant(a)
    runs = {
        "torch": lambda: torch.mm(ta, ta),
        "numpy": lambda: a @ a,
        "tensorflow": lambda: tf.linalg.matmul(fa, fa).numpy(),
    }
    out = {}
    for name, fn in runs.items():
        fn()  # warm-up
        best_wall = best_cpu = float("inf")
        for _ in range(tries):
            w0, c0 = clocks()
            fn()
            w1, c1 = clocks()
            best_wall, best_cpu = min(best_wall, w1 - w0), min(best_cpu, max(c1 - c0, 1e-9))
        out[name] = 2.0 * n**3 / best_wall
        out[name + " per CPU-s"] = 2.0 * n**3 / best_cpu
    return out


# ----------------------------------------------------------------------------------------------
# 1. throughput


def throughput(args, train_x, train_y) -> tuple[dict, dict]:
    """Train every contender in turns; return (per-contender medians, extra facts)."""
    import keras

    from utils.data import make_dataset

    source = make_dataset(train_x, train_y, BATCH, shuffle=True, augment=True, seed=0)
    batches = [source[i] for i in range(len(source))]
    batches = [(x, y) for x, y in batches if len(x) == BATCH]  # full batches only

    facts = {}
    contenders = {}

    def keras_contender(model):
        data = [(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)) for x, y in batches]
        return lambda i: model.train_on_batch(*data[i % len(data)])

    default = keras_unet()
    facts["jit_compile after compile_segmenter (auto)"] = default.jit_compile
    contenders["Keras U-Net (utils)"] = keras_contender(default)
    contenders["Keras U-Net (utils), jit_compile=True"] = keras_contender(keras_unet(jit_compile=True))
    contenders["Keras lesson design"] = keras_contender(keras_lesson_unet())
    unet, lesson = torch_classes()
    for name, cls in (("PyTorch U-Net (notebook)", unet), ("PyTorch lesson design", lesson)):
        trainer = TorchTrainer(cls)
        data = [trainer.tensors(x, y) for x, y in batches]
        contenders[name] = lambda i, t=trainer, d=data: t.step(*d[i % len(d)])

    print(
        f"\n1. training throughput: {args.warmup} warm-up steps, then {args.rounds} rounds of {args.steps} steps "
        f"of batch {BATCH} per contender",
        flush=True,
    )
    for name, step in contenders.items():
        w0, _ = clocks()
        step(0)
        first = clocks()[0] - w0
        for i in range(1, args.warmup):
            step(i)
        facts.setdefault("first step", {})[name] = first
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    peaks: list[dict] = []
    names = list(contenders)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate: nobody always goes first
        for name in order:
            w0, c0 = clocks()
            for i in range(args.steps):
                contenders[name](args.warmup + r * args.steps + i)
            w1, c1 = clocks()
            runs[name].append((w1 - w0, c1 - c0))
        peaks.append(matmul_peaks())
        line = ", ".join(f"{n} {args.steps * BATCH / runs[n][-1][0]:.1f}" for n in names)
        print(f"  round {r + 1} img/s: {line}", flush=True)
    results = {
        name: {
            "img/s": statistics.median(args.steps * BATCH / w for w, _ in rs),
            "img/CPU-s": statistics.median(args.steps * BATCH / c for _, c in rs),
            "wall": sum(w for w, _ in rs),
            "cpu": sum(c for _, c in rs),
        }
        for name, rs in runs.items()
    }
    facts["peaks"] = {k: max(p[k] for p in peaks) for k in peaks[0]}
    del contenders, default
    return results, facts


# ----------------------------------------------------------------------------------------------
# 2. time to quality


class KerasRun:
    """One Keras model trained one epoch per call, as `utils.training.fit_segmenter` trains it."""

    def __init__(self, model, train, val, seed: int):
        import keras

        from utils.data import make_dataset

        self.model = model
        self.train = make_dataset(*train, BATCH, shuffle=True, augment=True, seed=seed)
        self.val = make_dataset(*val, BATCH)
        self.epoch = 0
        run = self

        class Clock(keras.callbacks.Callback):
            """Record the wall and CPU time of each epoch (training and validation) and its val_dice."""

            def on_epoch_begin(self, epoch, logs=None):
                self.start = clocks()

            def on_epoch_end(self, epoch, logs=None):
                wall, cpu = clocks()
                run.last = (wall - self.start[0], cpu - self.start[1], float(logs["val_dice"]))

        self.clock = Clock()

    def one_epoch(self) -> tuple[float, float, float]:
        self.model.fit(
            self.train,
            validation_data=self.val,
            initial_epoch=self.epoch,
            epochs=self.epoch + 1,
            callbacks=[self.clock],
            verbose=0,
        )
        self.epoch += 1
        return self.last


class TorchRun:
    """One PyTorch model trained one epoch per call, on the same batches as the Keras models."""

    def __init__(self, cls, train, val, seed: int):
        from utils.data import make_dataset

        self.trainer = TorchTrainer(cls, seed)
        # the very batches (order, augmentation) that the Keras models get with the same seed
        self.train = make_dataset(*train, BATCH, shuffle=True, augment=True, seed=seed)
        self.val = val

    def one_epoch(self) -> tuple[float, float, float]:
        w0, c0 = clocks()
        for i in range(len(self.train)):
            self.trainer.step(*self.trainer.tensors(*self.train[i]))
        self.train.on_epoch_end()  # next epoch: new order, new augmentations
        dice = self.trainer.val_dice(*self.val)
        w1, c1 = clocks()
        return w1 - w0, c1 - c0, dice


def time_to_quality(args, train, val, seed: int) -> dict:
    """Train the four models in turns, one epoch each per round; return each one's epochs, times, Dice."""
    unet, lesson = torch_classes()
    runs = {
        "Keras U-Net (utils)": KerasRun(keras_unet(seed=seed), train, val, seed),
        "Keras lesson design": KerasRun(keras_lesson_unet(seed), train, val, seed),
        "PyTorch U-Net (notebook)": TorchRun(unet, train, val, seed),
        "PyTorch lesson design": TorchRun(lesson, train, val, seed),
    }
    state = {name: {"wall": 0.0, "cpu": 0.0, "epochs": 0, "dice": [], "reached": None} for name in runs}
    for epoch in range(1, args.epochs + 1):
        pending = [n for n in runs if state[n]["reached"] is None]
        if not pending:
            break
        pending = pending[epoch % len(pending) :] + pending[: epoch % len(pending)]
        for name in pending:
            wall, cpu, dice = runs[name].one_epoch()
            s = state[name]
            s["wall"] += wall
            s["cpu"] += cpu
            s["epochs"] = epoch
            s["dice"].append(dice)
            if dice >= args.target:
                s["reached"] = (epoch, s["wall"], s["cpu"])
        print(
            f"  seed {seed}, epoch {epoch}: " + ", ".join(f"{n} {state[n]['dice'][-1]:.3f}" for n in pending),
            flush=True,
        )
    return state


# ----------------------------------------------------------------------------------------------
# reporting


def machine(args) -> None:
    import keras
    import tensorflow as tf
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"os.cpu_count()={os.cpu_count()}, usable CPUs {affinity}, load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__} (backend {keras.backend.backend()})"
    )
    print(
        f"threads: torch intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}; "
        f"TensorFlow intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"inter-op {tf.config.threading.get_inter_op_parallelism_threads() or 'default'}; "
        + ", ".join(
            f"{k}={os.environ.get(k, 'unset')}"
            for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")
        )
    )
    print(
        f"settings: {SIZE}x{SIZE}, batch {BATCH}, base filters {BASE}, depth {DEPTH} (channels "
        f"{', '.join(str(BASE * 2**k) for k in range(DEPTH + 1))}), AdamW lr {LR} weight decay {WEIGHT_DECAY}; "
        f"throughput: {args.warmup} warm-up + {args.rounds} x {args.steps} steps; "
        f"time to quality: val Dice {args.target}, at most {args.epochs} epochs, {args.seeds} seed(s)"
        + (" (--quick)" if args.quick else "")
    )


def report_throughput(results: dict, facts: dict) -> None:
    base_k, base_t = results["Keras U-Net (utils)"], results["PyTorch U-Net (notebook)"]
    lesson = {"Keras": results["Keras lesson design"], "PyTorch": results["PyTorch lesson design"]}
    print(
        "\n| model | img/s (median round) | vs lesson design | img per CPU-second | vs lesson design | "
        "img/s vs Keras U-Net |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        same = lesson["Keras" if name.startswith("Keras") else "PyTorch"]
        print(
            f"| {name} | {r['img/s']:.1f} | {r['img/s'] / same['img/s']:.2f}x | {r['img/CPU-s']:.1f} | "
            f"{r['img/CPU-s'] / same['img/CPU-s']:.2f}x | {r['img/s'] / base_k['img/s']:.2f}x |"
        )
    xla = results["Keras U-Net (utils), jit_compile=True"]
    print(
        f"\nKeras default on this machine: model.jit_compile = {facts['jit_compile after compile_segmenter (auto)']} "
        f"after compile_segmenter (jit_compile='auto'); XLA (jit_compile=True) / default: "
        f"{xla['img/s'] / base_k['img/s']:.2f}x img/s, {xla['img/CPU-s'] / base_k['img/CPU-s']:.2f}x img per CPU-s"
    )
    print(
        "first step (untimed: tracing, XLA compiling): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in facts["first step"].items())
    )
    for unit in ("img/s", "img/CPU-s"):
        goal = min(base_k[unit] / lesson["Keras"][unit], base_t[unit] / lesson["PyTorch"][unit])
        print(
            f"goal course >= 1.2x the lesson design's {unit} (both frameworks): {'met' if goal >= 1.2 else 'NOT met'} "
            f"(worst {goal:.2f}x)"
        )


def report_time_to_quality(states: list[dict], target: float, max_epochs: int) -> None:
    """Print, per model, the seconds to the target Dice of every seed and their median."""
    print(
        f"\n| model | seconds to val Dice {target} (epochs), per seed | median seconds | median CPU seconds | "
        "best val Dice per seed | median vs lesson design |"
    )
    print("| --- | --- | ---: | ---: | --- | ---: |")
    pairs = {
        "Keras U-Net (utils)": "Keras lesson design",
        "PyTorch U-Net (notebook)": "PyTorch lesson design",
    }
    medians = {}  # model -> (median seconds, median CPU seconds), when every seed reached the target
    for name in states[0]:
        reached = [st[name]["reached"] for st in states]
        if all(reached):
            medians[name] = (
                statistics.median(r[1] for r in reached),
                statistics.median(r[2] for r in reached),
            )
    for name in states[0]:
        runs = [st[name] for st in states]
        cells = [
            f"{r['reached'][1]:.0f} ({r['reached'][0]})" if r["reached"] else f"not reached in {max_epochs}"
            for r in runs
        ]
        wall, cpu = (f"{v:.0f}" for v in medians[name]) if name in medians else ("-", "-")
        lesson = pairs.get(name)
        ratio = (
            f"{medians[name][0] / medians[lesson][0]:.2f}" if name in medians and lesson in medians else ""
        )
        best = ", ".join(f"{max(r['dice']):.3f}" for r in runs)
        print(f"| {name} | {', '.join(cells)} | {wall} | {cpu} | {best} | {ratio} |")
    for name, lesson in pairs.items():
        goal = f"goal {name} reaches val Dice {target} in <= half the lesson design's time (median of seeds)"
        if name in medians and lesson in medians:
            a, b = medians[name][0], medians[lesson][0]
            print(f"{goal}: {'met' if a <= b / 2 else 'NOT met'} ({a:.0f} s vs {b:.0f} s)")
        else:
            print(f"{goal}: cannot tell (not reached by every seed)")


def report_utilisation(results: dict, facts: dict, keras_flops: dict, torch_flops: dict) -> None:
    fwd = sum(keras_flops.values())
    encoder = sum(v for k, v in keras_flops.items() if k.startswith("enc"))
    per_image = {
        "Keras U-Net (utils)": 3 * fwd,
        "Keras U-Net (utils), jit_compile=True": 3 * fwd,
        "Keras lesson design": 3 * (fwd + encoder),
        "PyTorch U-Net (notebook)": 3 * fwd,
        "PyTorch lesson design": 3 * (fwd + encoder),
    }
    print(
        f"\n3. utilisation. Forward conv FLOPs per {SIZE}x{SIZE} image, counted from the Keras model's layers:"
    )
    print("   " + ", ".join(f"{k} {v / 1e6:.0f}M" for k, v in keras_flops.items()))
    print(
        f"   total forward {fwd / 1e9:.3f} GFLOP (encoder blocks {encoder / 1e9:.3f}); training ~3x: "
        f"{3 * fwd / 1e9:.3f} GFLOP per image, lesson design {3 * (fwd + encoder) / 1e9:.3f}"
    )
    print(
        "   torch.utils.flop_counter, one training step (forward + backward) per image: "
        + ", ".join(f"{k} {v / 1e9:.3f} GFLOP" for k, v in torch_flops.items())
    )
    peaks = facts["peaks"]
    peak = max(peaks[k] for k in ("torch", "numpy", "tensorflow"))
    peak_cpu = max(peaks[k + " per CPU-s"] for k in ("torch", "numpy", "tensorflow"))
    print(
        "   float32 2048x2048 matmul, best of the run: "
        + ", ".join(
            f"{k} {peaks[k] / 1e9:.0f} GFLOP/s ({peaks[k + ' per CPU-s'] / 1e9:.0f} per CPU-s)"
            for k in ("torch", "numpy", "tensorflow")
        )
    )
    print(
        "\n| model | training GFLOP/image | achieved GFLOP/s | of matmul peak | GFLOP per CPU-s | of matmul per CPU-s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        f = per_image[name]
        print(
            f"| {name} | {f / 1e9:.3f} | {r['img/s'] * f / 1e9:.1f} | {r['img/s'] * f / peak:.0%} | "
            f"{r['img/CPU-s'] * f / 1e9:.1f} | {r['img/CPU-s'] * f / peak_cpu:.0%} |"
        )
    best = max(r["img/s"] * per_image[n] / peak for n, r in results.items() if "lesson" not in n)
    print(
        f"goal CPU utilisation >= 50% of the matmul peak: {'met' if best >= 0.5 else 'NOT met'} (best course model {best:.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="PH2 folder or archive (default: synthetic cases)")
    parser.add_argument("--count", type=int, default=200, help="synthetic cases when --data is not given")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 4 steps, at most 8 epochs")
    parser.add_argument("--rounds", type=int, default=None, help="throughput rounds (default 5, quick 2)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round (default 8, quick 4)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per contender")
    parser.add_argument(
        "--epochs", type=int, default=None, help="most epochs for time to quality (default 30, quick 8)"
    )
    parser.add_argument("--target", type=float, default=0.85, help="validation Dice to reach")
    parser.add_argument(
        "--seeds", type=int, default=None, help="time-to-quality runs, seeds 0, 1, ... (default 3, quick 1)"
    )
    parser.add_argument("--skip-quality", action="store_true", help="throughput and utilisation only")
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.steps = args.steps or (4 if args.quick else 8)
    args.epochs = args.epochs or (8 if args.quick else 30)
    args.seeds = args.seeds or (1 if args.quick else 3)

    machine(args)
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    try:
        train_x, train_y, val_x, val_y = load_data(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    from utils.models import build_unet

    keras_flops = conv_flops(build_unet(SIZE, BASE, DEPTH))
    unet, lesson = torch_classes()
    torch_flops = {"PyTorch U-Net": torch_train_flops(unet), "lesson design": torch_train_flops(lesson)}

    results, facts = throughput(args, train_x, train_y)
    report_throughput(results, facts)
    report_utilisation(results, facts, keras_flops, torch_flops)
    if not args.skip_quality:
        print(
            f"\n2. time to validation Dice {args.target}: seeds {', '.join(map(str, range(args.seeds)))}, at most "
            f"{args.epochs} epochs of {len(train_x)} images, the four models in turns",
            flush=True,
        )
        states = [
            time_to_quality(args, (train_x, train_y), (val_x, val_y), seed) for seed in range(args.seeds)
        ]
        report_time_to_quality(states, args.target, args.epochs)
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
