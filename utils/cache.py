"""What the PH2 and MADS loaders share: decoding on a pool of threads, and the on-disk array cache.

Decoding fills preallocated uint8 arrays in the caller's order (Pillow releases the GIL while it
decodes and resizes, so threads overlap). The cache is one uncompressed `.npz` per source, size and
limit under `data_dir()/.cache`; its name holds a hash of every file's path, size and modification
time, so a changed source gets a new name and the old file is removed when the new one is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from utils.course import data_dir, say


def default_workers() -> int:
    """Return the number of decoding threads: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def decode_parallel(
    n: int,
    size: int,
    decode: Callable[[int], tuple[np.ndarray, np.ndarray]],
    *,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "loading",
    unit: str = "case",
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images (n, size, size, 3), masks (n, size, size)) uint8, item i being `decode(i)`.

    Errors surface in item order, so the first broken item is the one reported.
    """
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)

    def fill(i: int) -> None:
        images[i], masks[i] = decode(i)

    workers = default_workers() if workers is None else int(workers)
    with tqdm(total=n, desc=desc, unit=unit, disable=not progress) as bar:
        if workers <= 1 or n <= 1:
            for i in range(n):
                fill(i)
                bar.update()
            return images, masks
        pool = ThreadPoolExecutor(max_workers=min(workers, n))
        try:
            for future in [pool.submit(fill, i) for i in range(n)]:
                future.result()
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return images, masks


def cache_file(kind: str, version: str, root: Path, size: int, limit: int | None, files: Sequence[Path]) -> Path:
    """Return the cache path for these files at this size and limit; it changes whenever a file changes."""
    skip = len(str(root)) + 1
    entries = []
    for path in files:
        st = os.stat(path)
        entries.append((str(path)[skip:].replace(os.sep, "/"), st.st_size, st.st_mtime_ns))
    payload = json.dumps([version, str(root), size, limit, entries])
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20]
    tag = hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:10]
    return data_dir() / ".cache" / f"{kind}-{tag}-{size}px-{'all' if limit is None else limit}-{digest}.npz"


def read_cache(path: Path, keys: list[str], size: int) -> dict[str, np.ndarray] | None:
    """Return the cached arrays when the file holds exactly these items at this size, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception:  # noqa: BLE001 - a damaged or half-written cache is ignored, then rewritten
        return None
    n = len(keys)
    images, masks = arrays.get("images"), arrays.get("masks")
    if (
        "keys" not in arrays
        or arrays["keys"].tolist() != keys
        or images is None
        or images.shape != (n, size, size, 3)
        or images.dtype != np.uint8
        or masks is None
        or masks.shape != (n, size, size)
        or masks.dtype != np.uint8
    ):
        return None
    return arrays


def write_cache(path: Path, keys: list[str], **arrays: np.ndarray) -> None:
    """Write the arrays atomically (temporary file, then rename) and drop older states of the same source."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, keys=np.array(keys, dtype=str), **arrays)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        stem = path.stem.rsplit("-", 1)[0]  # same source, size and limit; another state of its files
        for old in path.parent.glob(f"{stem}-*.npz"):
            if old != path:
                with contextlib.suppress(OSError):
                    old.unlink()
    except OSError as err:
        warnings.warn(say(f"could not write the cache {path} ({err}): the next load decodes again",
                          f"no se ha podido escribir la caché {path} ({err}): la próxima carga volverá a decodificar las imágenes"),
                      stacklevel=3)
