"""Benchmark: CPU training of the course's U-Nets against the original lesson's design, side by side.

    python benchmarks/bench_training.py                # 200 synthetic PH2 cases in a temporary folder
    python benchmarks/bench_training.py --quick        # 2 rounds, 1 seed, at most 8 epochs
    python benchmarks/bench_training.py --data PATH    # any PH2 folder or archive

On 2 cores the full run takes about 12 minutes, --quick about 4.

Everything runs in one process, at 128x128, batch 8 (the cpu profile of `utils.profiles`), on the
training split of `utils.ph2.split_indices`. The networks all have the channels 16, 32, 64, 128 and a
256-channel bottleneck:

- Keras U-Net: `utils.models.build_unet(128, 16, 4)` compiled by `utils.models.compile_segmenter` and
  trained as `utils.training.fit_segmenter` trains it (with `WarmStartStatistics`);
- PyTorch U-Net: the `UNet` class of notebooks/SemanticSegmentationPytorch.ipynb, run from the notebook,
  with its `WarmBatchNorm2d` and the channels-last weights the notebook uses on a CPU;
- "before": the same two U-Nets as the course had them before its speed-ups (Keras: the optimizer's
  slots made during the first traced step, plain moving statistics; PyTorch: plain moving statistics,
  PyTorch's default memory layout). Their rows measure what the speed-ups changed;
- lesson design, Keras and PyTorch: the "before" networks, except that every encoder block is run a
  SECOND time to make its skip tensor. This reproduces, for measurement only, a defect of the original
  lesson (see shared/datasets.md); the course's own models do not have it.

Tables printed (ratios, never asserted by tests: they depend on the machine and on what else runs):

1. training throughput (images/s) in steady state: every contender trains `--steps` steps per round,
   the contenders take turns over `--rounds` rounds (so a busy spell on a shared machine hits them
   all), warm-up steps are not timed, and the median round is reported. The same pre-made batches
   (from `utils.data.make_dataset`, augmented) feed every contender. Also: the Keras U-Net with
   XLA (`jit_compile=True`) against Keras's default, which on a CPU-only machine leaves XLA off.
   The untimed first step of each contender is printed too (for Keras: tracing the train step).
2. time to quality: seconds of training (validation included) from the first step until the
   validation Dice first reaches `--target` (0.85), validating every `--val-every` steps (default:
   half an epoch) and at each epoch's end, at most `--epochs` epochs. The six models take turns epoch
   by epoch; Keras trains with `model.fit` on `utils.data.make_dataset` batches (as
   `utils.training.fit_segmenter` does), PyTorch with a plain loop on the very same batches, AdamW
   (lr 1e-3, weight decay 1e-4) and BCEWithLogitsLoss in both. On the synthetic data the target falls
   within a few epochs, so read it with the per-seed columns.
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
# the contenders' names, as the tables print them
KERAS = "Keras U-Net (utils)"
KERAS_BEFORE = "Keras U-Net (utils), before"
KERAS_XLA = "Keras U-Net (utils), jit_compile=True"
KERAS_LESSON = "Keras lesson design"
TORCH = "PyTorch U-Net (notebook)"
TORCH_BEFORE = "PyTorch U-Net (notebook), before"
TORCH_LESSON = "PyTorch lesson design"
LESSON = {KERAS: KERAS_LESSON, KERAS_BEFORE: KERAS_LESSON, KERAS_XLA: KERAS_LESSON, TORCH: TORCH_LESSON, TORCH_BEFORE: TORCH_LESSON}
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


def compile_as_before(model):
    """Compile like `utils.models.compile_segmenter` did before it created the optimizer's slots itself
    (they are then made while the first step is traced, which TensorFlow then traces again)."""
    import keras

    from utils.models import OverlapMetric, SegmentationLoss

    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=LR, weight_decay=WEIGHT_DECAY),
        loss=SegmentationLoss(0.0),
        metrics=[OverlapMetric("dice"), OverlapMetric("iou")],
    )
    return model


def keras_unet(jit_compile: bool | None = None, seed: int = 0, before: bool = False):
    """The course's Keras U-Net as it ships (or, `before`, compiled as before); `jit_compile` overrides
    what compile chose ("auto")."""
    import keras

    from utils.models import build_unet, compile_segmenter

    keras.utils.set_random_seed(seed)
    net = build_unet(SIZE, BASE, DEPTH)
    model = compile_as_before(net) if before else compile_segmenter(net, LR)
    if jit_compile is not None:
        model.jit_compile = jit_compile  # read when the train function is first made
    return model


def keras_lesson_unet(seed: int = 0):
    """REPRODUCTION OF THE ORIGINAL LESSON'S DEFECT, for measurement only: the Keras U-Net of
    `utils.models` with each encoder block run a second time to make its skip tensor (double the
    encoder's compute; BatchNormalization statistics updated twice per step). Compiled and trained
    as the course did before its own speed-ups (`compile_as_before`, no warm-started statistics)."""
    import keras
    from keras import layers

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
    return compile_as_before(keras.Model(inputs, logits, name="lesson_unet"))


def torch_classes():
    """Return (UNet, LessonUNet): the notebook's U-Net, and the lesson-design variant of it."""
    import torch
    from notebook_code import definitions
    from torch import nn

    ns = definitions(NOTEBOOK, {"UNet", "conv_block", "WarmBatchNorm2d"}, {"torch": torch, "nn": nn})
    plain, warm = ns["UNet"], ns["WarmBatchNorm2d"]

    class unet(plain):  # noqa: N801 - as the notebook's "Making it faster" section builds it
        def __init__(self, base_filters=16, depth=4, in_channels=3, norm=warm):
            super().__init__(base_filters, depth, in_channels, norm)

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
    """A plain PyTorch training loop: AdamW, BCEWithLogitsLoss, NHWC float batches in, NCHW inside.

    `before=True` trains the model as the notebook did before its speed-ups: batch normalisation's
    running statistics a moving average from the first batch (momentum 0.1, PyTorch's default) and
    the weights in PyTorch's default memory layout. Otherwise as the notebook ships: the warm-started
    statistics of its `WarmBatchNorm2d` and, where `memory_format` says so, channels-last weights.
    """

    def __init__(self, cls, seed: int = 0, before: bool = False, memory_format=None):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.torch = torch
        self.model = cls(BASE, DEPTH)
        if before:
            for module in self.model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.momentum = 0.1  # a plain moving average from the first batch
        elif memory_format is not None:
            self.model = self.model.to(memory_format=memory_format)
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


def torch_breakdown(cls, steps: int = 5) -> dict[str, float]:
    """Profile `steps` training steps of the PyTorch model as the notebook ships it; return the seconds
    per step spent in each kind of operation (the self time of its ATen operators, which run one after
    the other from the Python thread, each using every intra-op thread: so it adds up to wall time)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    trainer = TorchTrainer(cls, memory_format=torch.channels_last)
    x, y = torch.rand(BATCH, 3, SIZE, SIZE), torch.rand(BATCH, 1, SIZE, SIZE).round()
    for _ in range(3):
        trainer.step(x, y)
    kinds = {  # operator names (without "aten::") by what they do; the optimizer's are found by their caller
        "convolutions, forward": ("convolution", "_convolution", "mkldnn_convolution"),
        "convolutions, backward": ("convolution_backward",),
        "batch normalisation": ("native_batch_norm", "native_batch_norm_backward", "batch_norm"),
        "ReLU": ("relu", "relu_", "threshold_backward", "clamp_min", "clamp_min_"),
    }
    w0, _ = clocks()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.step(x, y)
    wall = (clocks()[0] - w0) / steps
    out = dict.fromkeys([*kinds, "optimizer (AdamW)", "everything else"], 0.0)
    for event in prof.events():
        caller, in_optimizer = event, False
        while caller is not None:
            in_optimizer = in_optimizer or caller.name.startswith("Optimizer.step")
            caller = caller.cpu_parent
        if event.name.startswith("Optimizer.step") or (in_optimizer and event.name.startswith("aten::")):
            out["optimizer (AdamW)"] += event.self_cpu_time_total / 1e6 / steps
        elif event.name.startswith("aten::"):
            name = event.name.removeprefix("aten::")
            kind = next((k for k, names in kinds.items() if name in names), "everything else")
            out[kind] += event.self_cpu_time_total / 1e6 / steps
    out["wall seconds per step (profiled)"] = wall
    return out


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

    import torch

    default = keras_unet()
    facts["jit_compile after compile_segmenter (auto)"] = default.jit_compile
    contenders[KERAS] = keras_contender(default)
    contenders[KERAS_BEFORE] = keras_contender(keras_unet(before=True))
    contenders[KERAS_XLA] = keras_contender(keras_unet(jit_compile=True))
    contenders[KERAS_LESSON] = keras_contender(keras_lesson_unet())
    unet, lesson = torch_classes()
    for name, cls, before in ((TORCH, unet, False), (TORCH_BEFORE, unet, True), (TORCH_LESSON, lesson, True)):
        trainer = TorchTrainer(cls, before=before, memory_format=torch.channels_last)
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
    """One Keras model trained one epoch per call, as `utils.training.fit_segmenter` trains it (or, with
    `warm=False`, as it did before: without `WarmStartStatistics`), validated every `every` steps."""

    def __init__(self, model, train, val, seed: int, every: int, warm: bool = True):
        import keras

        from utils.data import make_dataset
        from utils.training import WarmStartStatistics

        self.model = model
        self.train = make_dataset(*train, BATCH, shuffle=True, augment=True, seed=seed)
        self.val = make_dataset(*val, BATCH)
        self.epoch = 0
        run = self

        class Validate(keras.callbacks.Callback):
            """Validate every `every` steps and after the epoch's last; note wall and CPU time since the
            epoch began (validation included) and the validation Dice."""

            def on_epoch_begin(self, epoch, logs=None):
                self.start, run.points = clocks(), []

            def on_train_batch_end(self, batch, logs=None):
                if (batch + 1) % every and batch + 1 != len(run.train):
                    return
                dice = self.model.evaluate(run.val, verbose=0, return_dict=True)["dice"]
                wall, cpu = clocks()
                run.points.append((wall - self.start[0], cpu - self.start[1], float(dice)))

        self.callbacks = ([WarmStartStatistics()] if warm else []) + [Validate()]

    def one_epoch(self) -> list[tuple[float, float, float]]:
        self.model.fit(
            self.train, initial_epoch=self.epoch, epochs=self.epoch + 1, callbacks=self.callbacks, verbose=0
        )
        self.epoch += 1
        return self.points


class TorchRun:
    """One PyTorch model trained one epoch per call, on the same batches as the Keras models, validated
    every `every` steps and after the epoch's last."""

    def __init__(self, cls, train, val, seed: int, every: int, before: bool = False):
        import torch

        from utils.data import make_dataset

        self.trainer = TorchTrainer(cls, seed, before=before, memory_format=torch.channels_last)
        # the very batches (order, augmentation) that the Keras models get with the same seed
        self.train = make_dataset(*train, BATCH, shuffle=True, augment=True, seed=seed)
        self.val, self.every = val, every

    def one_epoch(self) -> list[tuple[float, float, float]]:
        w0, c0 = clocks()
        points = []
        for i in range(len(self.train)):
            self.trainer.step(*self.trainer.tensors(*self.train[i]))
            if (i + 1) % self.every == 0 or i + 1 == len(self.train):
                dice = self.trainer.val_dice(*self.val)
                w1, c1 = clocks()
                points.append((w1 - w0, c1 - c0, dice))
        self.train.on_epoch_end()  # next epoch: new order, new augmentations
        return points


def time_to_quality(args, train, val, seed: int) -> dict:
    """Train the six models in turns, one epoch each per round; return each one's validations and times."""
    unet, lesson = torch_classes()
    every = args.val_every
    runs = {
        KERAS: KerasRun(keras_unet(seed=seed), train, val, seed, every),
        KERAS_BEFORE: KerasRun(keras_unet(seed=seed, before=True), train, val, seed, every, warm=False),
        KERAS_LESSON: KerasRun(keras_lesson_unet(seed), train, val, seed, every, warm=False),
        TORCH: TorchRun(unet, train, val, seed, every),
        TORCH_BEFORE: TorchRun(unet, train, val, seed, every, before=True),
        TORCH_LESSON: TorchRun(lesson, train, val, seed, every, before=True),
    }
    state = {name: {"wall": 0.0, "cpu": 0.0, "epochs": 0, "dice": [], "reached": None} for name in runs}
    for epoch in range(1, args.epochs + 1):
        pending = [n for n in runs if state[n]["reached"] is None]
        if not pending:
            break
        pending = pending[epoch % len(pending) :] + pending[: epoch % len(pending)]
        for name in pending:
            s = state[name]
            points = runs[name].one_epoch()
            for k, (wall, cpu, dice) in enumerate(points):
                s["dice"].append(dice)
                if dice >= args.target and s["reached"] is None:
                    # epochs as a fraction: the share of the epoch's validations done so far
                    s["reached"] = (epoch - 1 + (k + 1) / len(points), s["wall"] + wall, s["cpu"] + cpu)
            s["wall"] += points[-1][0]
            s["cpu"] += points[-1][1]
            s["epochs"] = epoch
        print(
            f"  seed {seed}, epoch {epoch}: "
            + ", ".join(f"{n} {' '.join(f'{d:.3f}' for d in state[n]['dice'][-2:])}" for n in pending),
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
    base_k, base_t = results[KERAS], results[TORCH]
    lesson = {"Keras": results[KERAS_LESSON], "PyTorch": results[TORCH_LESSON]}
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
    xla = results[KERAS_XLA]
    print(
        f"\nKeras default on this machine: model.jit_compile = {facts['jit_compile after compile_segmenter (auto)']} "
        f"after compile_segmenter (jit_compile='auto'); XLA (jit_compile=True) / default: "
        f"{xla['img/s'] / base_k['img/s']:.2f}x img/s, {xla['img/CPU-s'] / base_k['img/CPU-s']:.2f}x img per CPU-s"
    )
    print(
        "first step (untimed: tracing, XLA compiling): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in facts["first step"].items())
    )
    before = results[TORCH_BEFORE]
    print(
        f"PyTorch U-Net as the notebook ships (channels-last weights) / before (default layout): "
        f"{base_t['img/s'] / before['img/s']:.2f}x img/s, {base_t['img/CPU-s'] / before['img/CPU-s']:.2f}x img per CPU-s"
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
        "best val Dice per seed | median vs lesson design | median vs before |"
    )
    print("| --- | --- | ---: | ---: | --- | ---: | ---: |")
    pairs = {KERAS: KERAS_LESSON, TORCH: TORCH_LESSON}
    befores = {KERAS: KERAS_BEFORE, TORCH: TORCH_BEFORE}
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
            f"{r['reached'][1]:.1f} ({r['reached'][0]:.2g})" if r["reached"] else f"not reached in {max_epochs}"
            for r in runs
        ]
        wall, cpu = (f"{v:.1f}" for v in medians[name]) if name in medians else ("-", "-")

        def ratio(other, name=name):
            return f"{medians[name][0] / medians[other][0]:.2f}" if name in medians and other in medians else ""

        best = ", ".join(f"{max(r['dice']):.3f}" for r in runs)
        lesson, before = LESSON.get(name), befores.get(name)
        print(f"| {name} | {', '.join(cells)} | {wall} | {cpu} | {best} | {ratio(lesson)} | {ratio(before)} |")
    for name, lesson in pairs.items():
        goal = f"goal {name} reaches val Dice {target} in <= half the lesson design's time (median of seeds)"
        if name in medians and lesson in medians:
            a, b = medians[name][0], medians[lesson][0]
            print(f"{goal}: {'met' if a <= b / 2 else 'NOT met'} ({a:.1f} s vs {b:.1f} s, {a / b:.2f})")
        else:
            print(f"{goal}: cannot tell (not reached by every seed)")


def report_utilisation(results: dict, facts: dict, keras_flops: dict, torch_flops: dict) -> None:
    fwd = sum(keras_flops.values())
    encoder = sum(v for k, v in keras_flops.items() if k.startswith("enc"))
    per_image = {name: 3 * (fwd + encoder) if "lesson" in name else 3 * fwd for name in results}
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


def report_breakdown(parts: dict[str, float], keras_flops: dict, facts: dict) -> None:
    """Print where a PyTorch training step's time goes, and the convolutions' own rate."""
    wall = parts.pop("wall seconds per step (profiled)")
    total = sum(parts.values())
    fwd = sum(keras_flops.values()) * BATCH
    peak = max(facts["peaks"][k] for k in ("torch", "numpy", "tensorflow"))
    print(
        f"\n   where a training step of the PyTorch U-Net (notebook, channels-last) goes: {wall * 1e3:.0f} ms per "
        f"step of {BATCH} under the profiler, of which the operators' self time {total * 1e3:.0f} ms"
    )
    print("\n| operations | ms per step | share |")
    print("| --- | ---: | ---: |")
    for kind, sec in parts.items():
        print(f"| {kind} | {sec * 1e3:.0f} | {sec / total:.0%} |")
    conv_fwd, conv_bwd = parts["convolutions, forward"], parts["convolutions, backward"]
    print(
        f"   the convolutions alone, in their own time: forward {fwd / conv_fwd / 1e9:.0f} GFLOP/s "
        f"({fwd / conv_fwd / peak:.0%} of the matmul peak), backward {2 * fwd / conv_bwd / 1e9:.0f} GFLOP/s "
        f"({2 * fwd / conv_bwd / peak:.0%})"
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
    parser.add_argument(
        "--val-every", type=int, default=None, help="validate every N training steps (default: half an epoch)"
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
    report_breakdown(torch_breakdown(unet), keras_flops, facts)
    if not args.skip_quality:
        args.val_every = args.val_every or max(1, -(-len(train_x) // BATCH) // 2)
        print(
            f"\n2. time to validation Dice {args.target}: seeds {', '.join(map(str, range(args.seeds)))}, at most "
            f"{args.epochs} epochs of {len(train_x)} images, validation every {args.val_every} steps and at each "
            "epoch's end, the six models in turns",
            flush=True,
        )
        states = [
            time_to_quality(args, (train_x, train_y), (val_x, val_y), seed) for seed in range(args.seeds)
        ]
        report_time_to_quality(states, args.target, args.epochs)
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
