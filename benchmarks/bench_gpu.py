"""GPU training throughput at 256×256: float32 against mixed precision, for the course's two U-Nets.

- the Keras U-Net from `utils.models` (run with KERAS_BACKEND=torch where TensorFlow is absent);
- the PyTorch U-Net taught in notebooks/SemanticSegmentationPytorch.ipynb.

Each configuration trains a few epochs on 200 synthetic PH2 cases; the first epoch (warm-up, cuDNN
tuning) is not timed. Prints images per second and the mixed/float32 ratio, measured in one run.

    KERAS_BACKEND=torch python benchmarks/bench_gpu.py [--epochs 5] [--batch 16] [--size 256]
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


def torch_unet(images, masks, amp_dtype, epochs: int, batch: int) -> tuple[float, float]:
    import contextlib

    import torch
    from notebook_code import definitions
    from torch import nn

    ns = definitions(ROOT / "notebooks" / "SemanticSegmentationPytorch.ipynb", {"UNet", "conv_block"}, {"torch": torch, "nn": nn})
    torch.manual_seed(0)
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    model = ns["UNet"](32, 4).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    x_all = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255)
    y_all = torch.from_numpy(masks).to(device)[:, None].float()
    times = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for idx in torch.randperm(len(x_all), device=device).split(batch):
            x, y = x_all[idx], y_all[idx]
            if torch.rand(()) < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            ctx = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
            with ctx:
                loss = loss_fn(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    epoch = float(np.median(times[1:]))
    return len(x_all) / epoch, epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    import keras
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU: this benchmark is for a GPU machine")
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | keras {keras.__version__} ({keras.backend.backend()})"
          f" | python {platform.python_version()} | {args.size}x{args.size}, batch {args.batch}, {args.epochs} epochs (first untimed)")
    with tempfile.TemporaryDirectory() as tmp:
        images, masks = data(args.size, Path(tmp))
    print(f"{len(images)} training images (synthetic PH2)")
    rows = []
    f32 = keras_unet(images, masks, "float32", args.epochs, args.batch, args.size)
    mixed = keras_unet(images, masks, "mixed_float16", args.epochs, args.batch, args.size)
    rows.append(("Keras U-Net (utils.models)", f32, mixed, "mixed_float16"))
    t32, e32 = torch_unet(images, masks, None, args.epochs, args.batch)
    amp = torch.bfloat16 if torch.cuda.get_device_capability()[0] >= 8 else torch.float16
    tamp, eamp = torch_unet(images, masks, amp, args.epochs, args.batch)
    rows.append(("PyTorch U-Net (notebook)", t32, tamp, f"autocast {str(amp).split('.')[-1]}"))
    t16, e16 = torch_unet(images, masks, torch.float16, args.epochs, args.batch)
    rows.append(("PyTorch U-Net (notebook)", t32, t16, "autocast float16 + scaler"))
    print(f"\n{'model':28s} {'float32 img/s':>14s} {'mixed img/s':>12s} {'ratio':>6s}  mixed precision")
    for name, a, b, how in rows:
        print(f"{name:28s} {a:14.1f} {b:12.1f} {b / a:6.2f}  {how}")
    print(f"PyTorch epoch time ({len(images)} images): float32 {e32:.3f} s, autocast {str(amp).split('.')[-1]} {eamp:.3f} s,"
          f" autocast float16 {e16:.3f} s")


if __name__ == "__main__":
    main()
