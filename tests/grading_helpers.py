"""Builders shared by the grading tests: a tiny MADS, tiny Keras models, and hand-edited model files."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils import mads

INNER = mads.INNER
W, H = 48, 32


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Keep a grading test away from real data, caches, the network and a profile set outside."""
    monkeypatch.setenv("SEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("SEG_OFFLINE", "1")
    monkeypatch.delenv("MADS_DIR", raising=False)
    monkeypatch.delenv("SEG_PROFILE", raising=False)


def make_dataset(root: Path) -> Path:
    """Write a tiny MADS in the Kaggle layout (8 sequences, RGBA masks) under root; return root."""
    rng = np.random.default_rng(1)
    inner = root / INNER / INNER
    (inner / "images").mkdir(parents=True)
    (inner / "masks").mkdir()
    rows = []
    for style in ("HipHop", "Jazz", "Kata", "Sports"):
        for seq in (1, 2):
            for cam in ("C0", "C1"):
                for frame in (30, 60, 90):
                    name = f"{style}_{style}{seq}_{cam}_{frame:05d}.png"
                    image = rng.integers(0, 90, (H, W, 3), dtype=np.uint8)
                    mask = np.zeros((H, W), np.uint8)
                    top, left = int(rng.integers(2, 10)), int(rng.integers(2, 30))
                    mask[top : top + 16 + frame // 30, left : left + 10] = 255
                    image[mask > 0] = (230, 190, 170)
                    Image.fromarray(image).save(inner / "images" / name)
                    rgba = np.dstack([mask, mask, mask, np.full_like(mask, 255)])
                    Image.fromarray(rgba, "RGBA").save(inner / "masks" / name)
                    rows.append(f"images/{name},masks/{name}")
    (root / "df.csv").write_text("images,masks\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


def tree_digest(folder: Path, skip: Path | None = None) -> dict[str, str]:
    """Return {relative path: SHA-256 or link target} of everything under folder except `skip`."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + str(p.readlink())
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def keras_model(path: Path, kind: str = "good", side: int | None = 16) -> Path:
    """Save a tiny Keras model: "good" (bright pixels are the person), "sigmoid_all"/"sigmoid_none", "lambda"."""
    import keras

    inputs = keras.Input((side, side, 3))
    if kind == "lambda":
        x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
        outputs = keras.layers.Conv2D(1, 1)(x)
    elif kind == "good":  # logit = 10 * (mean colour - 0.6)
        outputs = keras.layers.Conv2D(
            1, 1, kernel_initializer=keras.initializers.Constant(10 / 3), bias_initializer=keras.initializers.Constant(-6.0)
        )(inputs)
    elif kind == "hang":  # honest layers, but far too much work: stopped by the time limit
        x = inputs
        for _ in range(12):  # about 3 million million multiply-adds for 8 images at 384 x 384
            x = keras.layers.Conv2D(32, 15, padding="same")(x)
        outputs = keras.layers.Conv2D(1, 1)(x)
    elif kind == "hog":  # honest layers, but gigabytes of activations: stopped by the memory limit
        x = keras.layers.Conv2D(512, 3, padding="same")(inputs)
        x = keras.layers.Conv2D(512, 3, padding="same")(x)
        outputs = keras.layers.Conv2D(1, 1)(x)
    else:  # a constant sigmoid output: "all" gives 0.62 everywhere, "none" 0.38 everywhere
        bias = 0.5 if kind == "sigmoid_all" else -0.5
        outputs = keras.layers.Conv2D(
            1, 1, activation="sigmoid", kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias)
        )(inputs)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    keras.Model(inputs, outputs).save(path)
    return path


def read_keras(path: Path) -> tuple[dict, dict[str, bytes]]:
    """Return (config, other members) of a .keras zip."""
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json")), {n: zf.read(n) for n in zf.namelist() if n != "config.json"}


def write_keras(path: Path, config: dict | str, members: dict[str, bytes]) -> Path:
    """Write a .keras zip from a config (dict, or raw JSON text) and other members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", config if isinstance(config, str) else json.dumps(config))
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def huge_weights_h5() -> bytes:
    """Return a small .weights.h5 that declares a 20000 x 20000 float32 array (nothing stored)."""
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers/conv2d/vars").create_dataset("0", shape=(20000, 20000), dtype="float32")
    return buf.getvalue()


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    """Return a PNG of an array (mode as Pillow names it)."""
    buf = io.BytesIO()
    image = Image.fromarray(array)  # the mode follows the array: uint16 2-D is 16-bit grey
    assert mode is None or image.mode == mode, (image.mode, mode)
    image.save(buf, format="PNG")
    return buf.getvalue()
