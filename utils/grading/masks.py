"""Reading the masks a student hands in, defensively: no links, no bombs, one bad file costs one image.

Each file is opened once, relative to the already opened `masks/` folder, without following a
link; it must be a regular file with a single hard link (a hard link to the answers would
otherwise score 1.0), at most MAX_MASK_BYTES long, a PNG whose header declares the test image's
own size. Only then are its pixels decoded, from the bytes already read. 1-, 2-, 4-, 8- and 16-bit
grey, palette, grey+alpha and RGB(A) are read; a mask holding two values counts the larger as the
person (0/255, 0/1 and 16-bit 0/255 all work); otherwise a pixel is the person above half the
range. 16-bit colour PNGs are refused with a reason (Pillow would silently drop their low byte).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from utils.grading.names import display_name

MAX_MASK_BYTES = 8 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


class MaskRefused(Exception):
    """A submitted mask file that cannot be used; the message is the reason shown to the instructor."""


@dataclass
class MaskFolder:
    """What a `masks/` folder holds: usable masks by test-image name, and what went wrong per image."""

    masks: dict[str, np.ndarray] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # test-image name -> reason (image scores 0)
    unmatched: list[str] = field(default_factory=list)  # displayed names of PNGs that match no test image
    other: list[str] = field(default_factory=list)  # entries that are not PNG files
    hashes: dict[str, str] = field(default_factory=dict)  # test-image name -> SHA-256 of the file's bytes (usable masks)


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """Return (width, height, bit depth, colour type) from a PNG's bytes, or raise MaskRefused."""
    if not data.startswith(PNG_SIGNATURE):
        raise MaskRefused("not a PNG")
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise MaskRefused("damaged PNG (no IHDR header)")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in _COLOUR_TYPES or depth not in (1, 2, 4, 8, 16):
        raise MaskRefused(f"PNG colour type {colour} / bit depth {depth} is not valid")
    return width, height, depth, colour


def decode_mask(data: bytes, expected: tuple[int, int]) -> np.ndarray:
    """Return (H, W) uint8 0/1 from PNG bytes after checking the declared size; raise MaskRefused."""
    width, height, depth, colour = png_header(data)
    h, w = expected
    if (width, height) != (w, h):
        raise MaskRefused(f"is {width}x{height}, expected {w}x{h}")
    if depth == 16 and colour != 0:
        raise MaskRefused(f"16-bit {_COLOUR_TYPES[colour]} PNG is not supported: save the mask as 8-bit grey")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
                if img.size != (w, h):
                    raise MaskRefused(f"is {img.size[0]}x{img.size[1]}, expected {w}x{h}")
                img.load()
                if img.mode in ("1", "P", "PA"):
                    img = img.convert("RGBA" if img.mode != "1" else "L")
                arr = np.asarray(img)
    except MaskRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure costs this image only
        raise MaskRefused(f"unreadable PNG ({type(exc).__name__}: {str(exc)[:80]})") from None
    return binarize(arr, 16 if depth == 16 else 8)


def binarize(arr: np.ndarray, bits: int = 8) -> np.ndarray:
    """Return (H, W) uint8 0/1 from a grey, grey+alpha, RGB or RGBA array.

    Colour channels are combined by their maximum; an alpha channel counts only when the colour is
    constant and the alpha varies (a mask drawn in the alpha channel). Two distinct values: the
    larger is the person. More: a pixel is the person above half the range of `bits`.
    """
    a = np.asarray(arr)
    if a.ndim == 3:
        channels = a.shape[2]
        colour = a[..., :3] if channels >= 3 else a[..., :1]
        grey = colour.max(axis=2)
        if channels in (2, 4) and grey.min() == grey.max():
            alpha = a[..., -1]
            if alpha.min() != alpha.max():
                grey = alpha
        a = grey
    if a.ndim != 2:
        raise MaskRefused(f"has shape {a.shape}, expected a 2-D mask")
    a = a.astype(np.int64)
    low, high = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if high == low:
        return np.full(a.shape, 1 if low > 0 else 0, np.uint8)
    values = np.unique(a) if a.size <= 4_000_000 else None
    if values is not None and len(values) == 2:
        return (a == high).astype(np.uint8)
    return (a > ((1 << bits) - 1) // 2).astype(np.uint8)


def _read_entry(dir_fd: int, name: str) -> bytes:
    """Return a file's bytes, opened once without following links; raise MaskRefused if unsafe."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0), dir_fd=dir_fd)
    except OSError as exc:
        raise MaskRefused("is a link (refused)" if exc.errno in (40, 31) else f"cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MaskRefused("is not a regular file (refused)")
        if st.st_nlink != 1:
            raise MaskRefused(f"has {st.st_nlink} hard links (refused: hand in a plain copy)")
        if st.st_size > MAX_MASK_BYTES:
            raise MaskRefused(f"is {st.st_size / 2**20:.0f} MiB, more than {MAX_MASK_BYTES >> 20} MiB (refused)")
        chunks, left = [], MAX_MASK_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > MAX_MASK_BYTES:
            raise MaskRefused(f"grew past {MAX_MASK_BYTES >> 20} MiB while read (refused)")
        return data
    finally:
        os.close(fd)


def read_mask_folder(dir_fd: int, expected: dict[str, tuple[int, int]]) -> MaskFolder:
    """Return the masks of an opened `masks/` folder for the test images `expected` (name -> (H, W)).

    A file name matches a test image when its stem equals the name and it ends in `.png` in any
    case; names that collide when case is ignored (`X.png` and `X.PNG`) are all refused, with a
    reason, rather than one of them graded silently.
    """
    result = MaskFolder()
    by_key: dict[str, list[str]] = {}
    with os.scandir(dir_fd) as entries:
        names = sorted(e.name for e in entries)
    lower = {n.casefold(): n for n in expected}
    for name in names:
        stem, dot, suffix = name.rpartition(".")
        if not dot or suffix.lower() != "png" or name.startswith("."):
            result.other.append(display_name(name))
            continue
        target = lower.get(stem.casefold())
        if target is None:
            result.unmatched.append(display_name(name))
            continue
        by_key.setdefault(target, []).append(name)
    for target, files in sorted(by_key.items()):
        if len(files) > 1:
            shown = " and ".join(display_name(f) for f in files[:3])
            result.refused[target] = f"{shown} collide when case is ignored (refused: keep one)"
            continue
        file = files[0]
        shown = display_name(file)
        try:
            if file != f"{target}.png" and file.rpartition(".")[0] != target:
                raise MaskRefused(f"differs from the test image {target}.png only by case: rename it")
            data = _read_entry(dir_fd, file)
            result.masks[target] = decode_mask(data, expected[target])
            result.hashes[target] = hashlib.sha256(data).hexdigest()
        except MaskRefused as why:
            result.refused[target] = f"{shown} {why}"
    return result
