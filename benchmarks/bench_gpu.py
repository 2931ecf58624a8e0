"""GPU training throughput at 256×256: float32 against mixed precision, for the course's two U-Nets.

- the Keras U-Net from `utils.models` (run with KERAS_BACKEND=torch where TensorFlow is absent);
- the PyTorch U-Net taught in notebooks/SemanticSegmentationPytorch.ipynb.

Each configuration trains a few epochs on 200 synthetic PH2 cases; the first epoch (warm-up, cuDNN
tuning) is not timed. Prints images per second and the mixed/float32 ratio, measured in one run. The
PyTorch U-Net runs with channels-last weights, as the notebook moves it to a GPU, and also in PyTorch's
default layout for comparison.

    KERAS_BACKEND=torch python benchmarks/bench_gpu.py [--epochs 5] [--batch 16] [--size 256]
    python benchmarks/bench_gpu.py --cpu --size 64 --epochs 2   # checks that the script runs; no GPU figures

With --cpu the mixed precision is bfloat16 throughout and the float16 rows are left out (float16 is
emulated on CPUs, and very slow).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402


def data(size: int, workdir: Path):
    from utils import ph2
    from utils.synthetic import synthetic_ph2

    os.environ["SEG_DATA_DIR"] = str(workdir / "data")
    root = synthetic_ph2(workdir, count=200, progress=False)
    loaded = ph2.load_ph2(root, size=size, progress=False)
    split = ph2.split_indices(loaded)
    return loaded.images[split["train"]], loaded.masks[split["train"]]


def keras_unet(images, masks, policy: str, epochs: int, batch: int, size: int) -> float:
    import keras

    from utils.data import make_dataset
    from utils.models import build_unet, compile_segmenter

    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = compile_segmenter(build_unet(size, 32, 4))
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            _sync()
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            _sync()
            times.append(time.perf_counter() - self.start)

    model.fit(make_dataset(images, masks, batch, shuffle=True, augment=True), epochs=epochs, verbose=0, callbacks=[Clock()])
    keras.mixed_precision.set_global_policy("float32")
    return len(images) / float(np.median(times[1:]))


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def torch_unet(images, masks, amp_dtype, epochs: int, batch: int, channels_last: bool = True) -> tuple[float, float]:
    import contextlib

    import torch
    from notebook_code import definitions
    from torch import nn

    ns = definitions(ROOT / "notebooks" / "SemanticSegmentationPytorch.ipynb", {"UNet", "conv_block"}, {"torch": torch, "nn": nn})
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = ns["UNet"](32, 4).to(device, memory_format=layout)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    x_all = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255)
    y_all = torch.from_numpy(masks).to(device)[:, None].float()
    times = []
    for _ in range(epochs):
        _sync()
        start = time.perf_counter()
        for idx in torch.randperm(len(x_all), device=device).split(batch):
            x, y = x_all[idx], y_all[idx]
            if torch.rand(()) < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
            with ctx:
                loss = loss_fn(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        _sync()
        times.append(time.perf_counter() - start)
    epoch = float(np.median(times[1:]))
    return len(x_all) / epoch, epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU to check the script (its figures say nothing of a GPU)")
    args = parser.parse_args()
    import keras
    import torch

    if not torch.cuda.is_available() and not args.cpu:
        sys.exit("no CUDA GPU: this benchmark is for a GPU machine (--cpu only checks that it runs)")
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (--cpu: a check of the script, not a GPU figure)"
    print(f"{name} | torch {torch.__version__} | keras {keras.__version__} ({keras.backend.backend()})"
          f" | python {platform.python_version()} | {args.size}x{args.size}, batch {args.batch}, {args.epochs} epochs (first untimed)")
    with tempfile.TemporaryDirectory() as tmp:
        images, masks = data(args.size, Path(tmp))
    print(f"{len(images)} training images (synthetic PH2)")
    rows = []
    gpu = torch.cuda.is_available()
    policy = "mixed_float16" if gpu else "mixed_bfloat16"  # float16 on a CPU is emulated, and very slow
    f32 = keras_unet(images, masks, "float32", args.epochs, args.batch, args.size)
    mixed = keras_unet(images, masks, policy, args.epochs, args.batch, args.size)
    rows.append(("Keras U-Net (utils.models)", f32, mixed, policy))
    amp = torch.bfloat16 if not gpu or torch.cuda.get_device_capability()[0] >= 8 else torch.float16
    epochs = {}
    for layout, channels_last in (("channels-last", True), ("default layout", False)):
        label = f"PyTorch U-Net ({layout})"
        t32, epochs[layout, "float32"] = torch_unet(images, masks, None, args.epochs, args.batch, channels_last)
        tamp, epochs[layout, "amp"] = torch_unet(images, masks, amp, args.epochs, args.batch, channels_last)
        rows.append((label, t32, tamp, f"autocast {str(amp).split('.')[-1]}"))
        if gpu:
            t16, epochs[layout, "float16"] = torch_unet(images, masks, torch.float16, args.epochs, args.batch, channels_last)
            rows.append((label, t32, t16, "autocast float16 + scaler"))
    print(f"\n{'model':34s} {'float32 img/s':>14s} {'mixed img/s':>12s} {'ratio':>6s}  mixed precision")
    for label, a, b, how in rows:
        print(f"{label:34s} {a:14.1f} {b:12.1f} {b / a:6.2f}  {how}")
    for layout in ("channels-last", "default layout"):
        print(f"PyTorch epoch time, {layout} ({len(images)} images): "
              + ", ".join(f"{kind} {sec:.3f} s" for (lay, kind), sec in epochs.items() if lay == layout))


if __name__ == "__main__":
    main()
