"""GPU training throughput at 256×256: the PyTorch lesson's U-Net against the Keras U-Net on the torch backend.

Every contender trains in a fresh child process (so precision policies, compiled graphs and cuDNN's
choices do not leak between them) on the same 140 synthetic PH2 training images, batch 16: one
untimed warm-up epoch, then `--epochs` timed epochs; the median epoch gives images per second.

- **PyTorch lesson**: the U-Net of notebooks/SemanticSegmentationPytorch.ipynb (its own cells, run at
  start), trained by a plain loop on batches already on the GPU (channels-last weights, as the notebook
  moves them to a GPU), float32, autocast bfloat16, and autocast float16 with a gradient scaler.
- **Keras U-Net as shipped**: `utils.models.build_unet` + `compile_segmenter`, fed by
  `utils.data.make_dataset` (uint8 arrays on the host, augmented and batched by the course's pipeline),
  float32, mixed_float16 (what `utils.device.setup_keras` picks on a GPU) and mixed_bfloat16.
- **Keras fixes**, one at a time on top of each other: batches already on the GPU; the same network
  built channels-first (Keras's torch backend otherwise transposes every convolution's input and output
  between (N, H, W, C) and PyTorch's (N, C, H, W), with a copy each way); `jit_compile=True`
  (`torch.compile` of Keras's train step, which fuses the element-wise batch-norm and optimizer work
  that Keras writes as separate operations); instead of the jit, batch normalisation by PyTorch's own
  fused kernel (`torch.nn.functional.batch_norm`, cuDNN's on a GPU) in a `BatchNormalization` subclass,
  where Keras's torch backend writes it as about a dozen element-wise and reduction operations.
- A profile (`torch.profiler`, 3 steps) of the Keras U-Net as shipped and of the PyTorch lesson's: kernel
  launches per step and the operations that take the most GPU time.

    KERAS_BACKEND=torch python benchmarks/bench_gpu.py [--epochs 5] [--out results.json]
    KERAS_BACKEND=torch python benchmarks/bench_gpu.py --cpu    # a check that the script runs; no GPU figures

With --cpu: 32×32 and 1 timed epoch unless --size is given, bfloat16 as the only mixed precision and no torch.compile row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

BATCH = 16

# name -> (framework, precision, options); options: host (course pipeline) | device (batches on GPU),
# cf (channels-first Keras U-Net), fbn (its batch norm by torch's fused kernel), jit (Keras jit_compile=True), nchw (PyTorch default layout), profile
CONTENDERS = {  # in the order they run: the slow-to-compile ones last
    "torch f32": ("torch", "float32", {"profile"}),
    "torch bf16": ("torch", "bfloat16", set()),
    "torch f16": ("torch", "float16", set()),
    "keras f32": ("keras", "float32", {"host", "profile"}),
    "keras mixed_float16": ("keras", "mixed_float16", {"host"}),
    "keras mixed_bfloat16": ("keras", "mixed_bfloat16", {"host"}),
    "keras f32 +device": ("keras", "float32", {"device"}),
    "keras f32 +device +cf": ("keras", "float32", {"device", "cf", "profile"}),
    "keras mixed_bfloat16 +device +cf": ("keras", "mixed_bfloat16", {"device", "cf"}),
    "keras mixed_float16 +device +cf": ("keras", "mixed_float16", {"device", "cf"}),
    "keras f32 +device +cf +fbn": ("keras", "float32", {"device", "cf", "fbn", "profile"}),
    "keras mixed_bfloat16 +device +cf +fbn": ("keras", "mixed_bfloat16", {"device", "cf", "fbn"}),
    "keras f32 +device +cf +jit": ("keras", "float32", {"device", "cf", "jit"}),
    "keras mixed_bfloat16 +device +cf +jit": ("keras", "mixed_bfloat16", {"device", "cf", "jit"}),
    "torch f32 default layout": ("torch", "float32", {"nchw"}),
}


def make_data(size: int, workdir: Path) -> Path:
    """Write the training split of 200 synthetic PH2 cases at `size` to an .npz; return its path."""
    from utils import ph2
    from utils.synthetic import synthetic_ph2

    os.environ["SEG_DATA_DIR"] = str(workdir / "data")
    root = synthetic_ph2(workdir, count=200, progress=False)
    loaded = ph2.load_ph2(root, size=size, progress=False)
    split = ph2.split_indices(loaded)
    path = workdir / "train.npz"
    np.savez(path, images=loaded.images[split["train"]], masks=loaded.masks[split["train"]])
    return path


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _profile(step, steps: int = 3) -> dict:
    """Run `step` a few times under torch.profiler; return kernel launches per step and the top operations."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        _sync()
    events = prof.key_averages()
    gpu = torch.cuda.is_available()
    key = "device_time_total" if gpu else "self_cpu_time_total"
    kernels = sum(e.count for e in prof.events() if gpu and e.device_type.name == "CUDA") / steps
    top = sorted(events, key=lambda e: getattr(e, key, 0), reverse=True)
    rows = [(e.key[:60], round(getattr(e, key, 0) / 1000 / steps, 3), e.count // steps) for e in top if not e.key.startswith("ProfilerStep")][:12]
    cpu_ops = sum(e.count for e in events if e.key.startswith("aten::")) / steps
    return {"kernels_per_step": kernels, "aten_ops_per_step": cpu_ops, "top_ms_per_step": rows}


def run_torch(images, masks, precision: str, options: set, epochs: int) -> dict:
    """Train the notebook's U-Net with a plain loop on batches already on the device; return timings."""
    import contextlib

    import torch
    from notebook_code import definitions
    from torch import nn

    ns = definitions(ROOT / "notebooks" / "SemanticSegmentationPytorch.ipynb", {"UNet", "conv_block"}, {"torch": torch, "nn": nn})
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    layout = torch.contiguous_format if "nchw" in options else torch.channels_last
    model = ns["UNet"](32, 4).to(device, memory_format=layout)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    amp = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    x_all = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255)
    y_all = torch.from_numpy(masks).to(device)[:, None].float()

    def step(x, y):
        ctx = torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()
        with ctx:
            loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    times = []
    for _ in range(epochs + 1):
        _sync()
        start = time.perf_counter()
        for idx in torch.randperm(len(x_all), device=device).split(BATCH):
            x, y = x_all[idx], y_all[idx]
            if torch.rand(()) < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            step(x, y)
        _sync()
        times.append(time.perf_counter() - start)
    out = {"epoch_s": times}
    if "profile" in options:
        out["profile"] = _profile(lambda: step(x_all[:BATCH], y_all[:BATCH]))
    return out


def fused_batch_norm_class():
    """A channels-first `keras.layers.BatchNormalization` that runs PyTorch's fused batch norm (torch backend only).

    Same outputs in training; the moving variance is updated with the unbiased batch variance (PyTorch's
    rule: n / (n - 1) times Keras's, n = N·H·W values per channel), so inference differs by about 1e-3.
    """
    import keras
    import torch

    class FusedBatchNorm(keras.layers.BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            x = inputs
            if x.dtype != torch.float32 and x.device.type == "cpu":
                x = x.float()  # the CPU kernel wants one dtype for input and parameters
            y = torch.nn.functional.batch_norm(
                x, self.moving_mean.value, self.moving_variance.value, self.gamma.value, self.beta.value,
                training=bool(training), momentum=1.0 - self.momentum, eps=self.epsilon)  # updates the moving statistics in place
            return y.to(inputs.dtype)

    return FusedBatchNorm


def channels_first_unet(size: int, base_filters: int, depth: int, fused_bn: bool = False):
    """`utils.models.build_unet`'s network with data_format="channels_first": (N, 3, H, W) in, (N, 1, H, W) out."""
    import keras
    from keras import layers

    cf = {"data_format": "channels_first"}
    norm = fused_batch_norm_class() if fused_bn else layers.BatchNormalization

    def block(x, filters, name):
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}", **cf)(x)
            x = norm(axis=1, momentum=0.9, name=f"{name}_bn{i}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        return x

    inputs = keras.Input((3, size, size), name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = block(x, base_filters * 2**level, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}", **cf)(x)
    x = block(x, base_filters * 2**depth, "bottleneck")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}", **cf)(x)
        x = layers.Concatenate(axis=1, name=f"skip{level}")([x, skips[level]])
        x = block(x, filters, f"dec{level}")
    logits = layers.Conv2D(1, 1, dtype="float32", name="logits", **cf)(x)
    return keras.Model(inputs, logits, name="unet_cf")


def run_keras(images, masks, precision: str, options: set, epochs: int) -> dict:
    """Train the Keras U-Net with `model.fit` under the given policy and fixes; return timings."""
    import keras
    import torch

    from utils.data import make_dataset
    from utils.models import build_unet, compile_segmenter

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    size = images.shape[1]
    model = channels_first_unet(size, 32, 4, "fbn" in options) if "cf" in options else build_unet(size, 32, 4)
    compile_segmenter(model)
    if "jit" in options:
        model.jit_compile = True  # Keras's torch trainer wraps its train step in torch.compile
    if "host" in options:
        data = make_dataset(images, masks, BATCH, shuffle=True, augment=True)
    else:
        data = DeviceBatches(images, masks, channels_first="cf" in options)
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            _sync()
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            _sync()
            times.append(time.perf_counter() - self.start)

    model.fit(data, epochs=epochs + 1, verbose=0, callbacks=[Clock()])
    out = {"epoch_s": times, "jit_compile": bool(model.jit_compile), "images_per_epoch": len(images) if "host" in options else len(data) * BATCH}
    if "profile" in options:
        x, y = data[0]
        x, y = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x), torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        x, y = x.to(device), y.to(device)
        out["profile"] = _profile(lambda: model.train_on_batch(x, y))
    return out


class DeviceBatches:
    """Placeholder replaced at import time by a keras.utils.PyDataset subclass (see _device_batches)."""


def _device_batches():
    import keras
    import torch

    class _DeviceBatches(keras.utils.PyDataset):
        """Shuffled, flipped batches cut from float tensors that live on the GPU: no host work per step."""

        def __init__(self, images, masks, channels_first: bool):
            super().__init__(workers=1, use_multiprocessing=False)
            device = "cuda" if torch.cuda.is_available() else "cpu"
            x = torch.from_numpy(images).to(device).float().div_(255)
            y = torch.from_numpy(masks).to(device)[..., None].float()
            if channels_first:
                x, y = x.permute(0, 3, 1, 2).contiguous(), y.permute(0, 3, 1, 2).contiguous()
            self.x, self.y, self.width_axis = x, y, (3 if channels_first else 2)
            self.order = torch.randperm(len(x), device=device)

        def __len__(self):  # full batches only: one shape, so torch.compile compiles once
            return len(self.x) // BATCH

        def __getitem__(self, i):
            idx = self.order[i * BATCH : (i + 1) * BATCH]
            x, y = self.x[idx], self.y[idx]
            if i % 2:  # every other batch flipped left-right
                x, y = x.flip(self.width_axis), y.flip(self.width_axis)
            return x, y

        def on_epoch_end(self):
            self.order = torch.randperm(len(self.x), device=self.x.device)

    return _DeviceBatches


def child(name: str, data_path: str, epochs: int) -> None:
    """Run one contender and print its result as one JSON line."""
    global DeviceBatches
    framework, precision, options = CONTENDERS[name]
    loaded = np.load(data_path)
    images, masks = loaded["images"], loaded["masks"]
    start = time.perf_counter()
    if framework == "torch":
        out = run_torch(images, masks, precision, options, epochs)
    else:
        DeviceBatches = _device_batches()
        out = run_keras(images, masks, precision, options, epochs)
    steady = out["epoch_s"][1:]
    per_epoch = out.get("images_per_epoch", len(images))
    out.update(name=name, images=per_epoch, batch=BATCH, img_s=per_epoch / float(np.median(steady)), first_epoch_s=out["epoch_s"][0],
               process_s=time.perf_counter() - start)
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    global BATCH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs after one untimed")
    parser.add_argument("--size", type=int, help="image side (default 256; 32 with --cpu)")
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU to check the script (its figures say nothing of a GPU)")
    parser.add_argument("--only", nargs="*", help="run only these contenders")
    parser.add_argument("--timeout", type=float, default=150, help="seconds a contender may take (torch.compile included)")
    parser.add_argument("--budget", type=float, default=1e9, help="seconds for the whole run: no contender starts after it")
    parser.add_argument("--out", help="also write every result as JSON here (after each contender)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    BATCH = args.batch
    if args.child:
        child(args.child, args.data, args.epochs)
        return
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import torch

    gpu = torch.cuda.is_available()
    if not gpu and not args.cpu:
        sys.exit("no CUDA GPU: this benchmark is for a GPU machine (--cpu only checks that it runs)")
    if args.cpu and args.size is None:
        args.size, args.epochs = 32, 1
    args.size = args.size or 256
    names = args.only or list(CONTENDERS)
    if not gpu:
        names = [n for n in names if "mixed_float16" not in n and n != "torch f16" and "jit" not in n]
    import keras

    name = torch.cuda.get_device_name() if gpu else "CPU (--cpu: a check of the script, not a GPU figure)"
    header = (f"{name} | torch {torch.__version__} | keras {keras.__version__} ({keras.backend.backend()}) | python "
              f"{platform.python_version()} | {args.size}x{args.size}, batch {BATCH}, {args.epochs} timed epochs after 1 untimed")
    print(header, flush=True)
    results = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data_path = make_data(args.size, Path(tmp))
        for contender in names:
            left = args.budget - (time.perf_counter() - began)
            if left < 20:
                print(f"{contender}: not run (the --budget of {args.budget:.0f} s is spent)", flush=True)
                continue
            cmd = [sys.executable, __file__, "--child", contender, "--data", str(data_path), "--epochs", str(args.epochs), "--batch", str(BATCH)]
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=min(args.timeout, left), env={**os.environ, "KERAS_BACKEND": "torch"})
            except subprocess.TimeoutExpired:
                print(f"{contender}: no result within {min(args.timeout, left):.0f} s", flush=True)
                results.append({"name": contender, "error": f"timeout {min(args.timeout, left):.0f} s"})
                continue
            lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
            if not lines:
                tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
                print(f"{contender}: failed ({' | '.join(tail)})", flush=True)
                results.append({"name": contender, "error": " | ".join(tail)})
                continue
            result = json.loads(lines[-1][7:])
            results.append(result)
            print(f"{contender:40s} {result['img_s']:8.1f} img/s  first epoch {result['first_epoch_s']:6.2f} s  process {result['process_s']:5.1f} s", flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps({"header": header, "results": results}, indent=1), encoding="utf-8")
    report(results)


def report(results: list[dict]) -> None:
    """Print the throughput table against the PyTorch lesson's float32, and the profiles."""
    ok = {r["name"]: r for r in results if "img_s" in r}
    base = ok.get("torch f32", {}).get("img_s")
    print("\n| contender | img/s | vs PyTorch lesson float32 | vs its own float32 |\n| --- | ---: | ---: | ---: |")
    for name, r in ok.items():
        fw, precision, options = CONTENDERS[name]
        own = [n for n in ok if CONTENDERS[n][0] == fw and CONTENDERS[n][1] == "float32" and CONTENDERS[n][2] - {"profile"} == options - {"profile"}]
        own_ratio = f"{r['img_s'] / ok[own[0]]['img_s']:.2f}x" if own else ""
        vs = f"{r['img_s'] / base:.2f}x" if base else ""
        print(f"| {name} | {r['img_s']:.1f} | {vs} | {own_ratio} |")
    for name, r in ok.items():
        if "profile" in r:
            p = r["profile"]
            print(f"\nprofile of one step, {name}: {p['kernels_per_step']:.0f} GPU kernels, {p['aten_ops_per_step']:.0f} aten operator calls")
            for key, ms, count in p["top_ms_per_step"]:
                print(f"  {ms:8.3f} ms  x{count:<4d} {key}")


if __name__ == "__main__":
    main()
