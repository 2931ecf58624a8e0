"""The Segmentation Full Body MADS dataset (the lab's): find it, fetch it, list its frames, load them.

The Kaggle archive holds `df.csv` and a doubled folder
`segmentation_full_body_mads_dataset_1192_img/segmentation_full_body_mads_dataset_1192_img/` with
`images/`, `masks/` and `collages/`. `find_mads` accepts the zip, any level of its extraction or the
kagglehub cache and returns the inner folder (the one holding `images/` and `masks/`).

Frames are named `Style_Sequence_Camera_Frame.png`. Frames of one sequence are near-duplicates, so
`split_by_sequence` keeps every sequence (all its cameras) on one side of the split.

Images are 512 × 384 (width × height). `load_mads` resizes them to `size × size`, which squeezes
them horizontally by 4/3: the network sees slightly thinner people, and a predicted mask resized
back to 512 × 384 lines up with the frame again. Squeezing keeps every pixel of the frame (padding
would waste a quarter of the input on black bars) and is what the grader does for `model.keras`.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from utils.cache import cache_file, decode_parallel, read_cache, write_cache
from utils.course import data_dir, in_colab, is_offline, kind_label, say
from utils.errors import CourseError

HANDLE = "tapakah68/segmentation-full-body-mads-dataset"
PAGE = f"https://www.kaggle.com/datasets/{HANDLE}"
INNER = "segmentation_full_body_mads_dataset_1192_img"
ZIP_NAMES = ("segmentation-full-body-mads-dataset.zip", "archive.zip")
LICENCE = "CC BY-ND 4.0 (attribution, no derivatives): do not redistribute the frames or masks."
LICENCE_ES = "CC BY-ND 4.0 (atribución, sin obras derivadas): no redistribuyas los fotogramas ni las máscaras."
CITATION = (
    "W. Zhang, Z. Liu, L. Zhou, H. Leung, A. B. Chan, "
    '"Martial Arts, Dancing and Sports dataset: a challenging stereo and multi-view dataset for 3D human '
    'pose estimation", Image and Vision Computing 61:22-39, 2017.'
)
DOWNLOAD_HELP = f"""\
How to get Segmentation Full Body MADS ({PAGE}, about 475 MB):
  * On your computer: create a Kaggle API token (kaggle.com > Settings > API > Create New Token) and
    save it as ~/.kaggle/kaggle.json, or set the variables KAGGLE_USERNAME and KAGGLE_KEY; then run
    `python -m utils fetch mads` or call utils.mads.fetch_mads().
  * In Google Colab: add KAGGLE_USERNAME and KAGGLE_KEY as Colab Secrets (the key icon on the left,
    with notebook access on), or upload kaggle.json to ~/.kaggle/; then run the notebook again.
  * Inside a Kaggle notebook: nothing to set up; add the dataset with "Add Input" or let kagglehub
    download it.
  * By hand: download the zip from the dataset page ("Download") and pass its path, or the path of
    any folder of its extraction, to load_mads(...) / resolve_mads(...) or set MADS_DIR to it."""
DOWNLOAD_HELP_ES = f"""\
Cómo conseguir Segmentation Full Body MADS ({PAGE}, unos 475 MB):
  * En tu equipo: crea un token de la API de Kaggle (kaggle.com > Settings > API > Create New Token) y
    guárdalo como ~/.kaggle/kaggle.json, o define las variables KAGGLE_USERNAME y KAGGLE_KEY; después
    ejecuta `python -m utils fetch mads` o llama a utils.mads.fetch_mads().
  * En Google Colab: añade KAGGLE_USERNAME y KAGGLE_KEY como secretos de Colab (el icono de la llave, a la
    izquierda, con acceso del cuaderno activado), o sube kaggle.json a ~/.kaggle/; después vuelve a
    ejecutar el cuaderno.
  * En un cuaderno de Kaggle: no hace falta configurar nada; añade el conjunto de datos con "Add Input"
    o deja que kagglehub lo descargue.
  * A mano: descarga el zip desde la página del conjunto de datos ("Download") y pasa su ruta, o la de
    cualquier carpeta de su extracción, a load_mads(...) / resolve_mads(...), o haz que MADS_DIR apunte a ella."""


_NAME_RE = re.compile(r"^(?P<style>[^_]+)_(?P<sequence>.+)_(?P<camera>[Cc]\d+)_(?P<frame>\d+)$")
_CACHE_VERSION = "mads-cache-1 PIL-LANCZOS/BILINEAR"
_MAX_REASON = 200


class Source(NamedTuple):
    """Where the frames come from: `kind` is "mads" for the real dataset, "synthetic" for the stand-in."""

    root: Path
    kind: str

    @property
    def is_synthetic(self) -> bool:
        """Return True for the synthetic stand-in."""
        return self.kind == "synthetic"

    @property
    def label(self) -> str:
        """Return the kind to show next to "data" / "datos" ("real" / "reales", "synthetic" / "sintéticos")."""
        return kind_label(self.kind)


class NameParts(NamedTuple):
    """The fields of a frame's file name `Style_Sequence_Camera_Frame.png`."""

    style: str
    sequence: str
    camera: str
    frame: int


@dataclass(frozen=True)
class Frame:
    """One image/mask pair of MADS and the fields of its name."""

    name: str  # file name without ".png", e.g. "HipHop_HipHop1_C0_00180"
    image: Path
    mask: Path
    style: str  # "HipHop"
    sequence: str  # "HipHop1"
    camera: str  # "C0"
    frame: int  # 180

    @property
    def group(self) -> str:
        """Return the sequence's ID across cameras, e.g. "HipHop_HipHop1" (the unit of the split)."""
        return f"{self.style}_{self.sequence}"


@dataclass
class MADSData:
    """Frames loaded as arrays: images (N, S, S, 3) uint8, masks (N, S, S) uint8 0/1."""

    names: list[str]
    images: np.ndarray
    masks: np.ndarray
    sequences: list[str]  # one per frame, e.g. "HipHop_HipHop1"
    root: Path
    styles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.styles:
            self.styles = [s.split("_", 1)[0] for s in self.sequences]

    def __len__(self) -> int:
        return len(self.names)

    def take(self, indices: Sequence[int] | np.ndarray) -> MADSData:
        """Return the frames at these indices, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        pick = lambda items: [items[i] for i in idx]  # noqa: E731
        return MADSData(
            pick(self.names), self.images[idx], self.masks[idx], pick(self.sequences), self.root, pick(self.styles)
        )


# --------------------------------------------------------------------------------------------- names


def parse_name(name: str | Path) -> NameParts:
    """Return (style, sequence, camera, frame) from a name like `HipHop_HipHop1_C0_00180.png`."""
    stem = Path(name).stem if str(name).lower().endswith(".png") else Path(name).name
    m = _NAME_RE.match(stem)
    if not m:
        raise CourseError(say(
            f"{Path(name).name}: not a MADS frame name (expected Style_Sequence_Camera_Frame.png, "
            "e.g. HipHop_HipHop1_C0_00180.png): rename it or move it out of the dataset folder",
            f"{Path(name).name}: no es un nombre de fotograma de MADS (se esperaba Style_Sequence_Camera_Frame.png, "
            "por ejemplo HipHop_HipHop1_C0_00180.png): cámbiale el nombre o sácalo de la carpeta del conjunto de datos",
        ))
    return NameParts(m["style"], m["sequence"], m["camera"].upper(), int(m["frame"]))


# ---------------------------------------------------------------------------------------- finding


def _is_inner(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def _levels(folder: Path) -> list[Path]:
    """Return the folder and the inner levels of the doubled folder below it."""
    return [folder, folder / INNER, folder / INNER / INNER]


def _versions(folder: Path) -> list[Path]:
    """Return kagglehub's `versions/N` folders below `folder`, newest first."""
    found = []
    bases = (folder, folder / HANDLE.split("/")[1], folder / "datasets" / HANDLE)
    for versions in [folder] * (folder.name == "versions") + [base / "versions" for base in bases]:
        if versions.is_dir():
            found += sorted(
                (v for v in versions.iterdir() if v.is_dir() and v.name.isdigit()),
                key=lambda v: int(v.name),
                reverse=True,
            )
    return found


def _kagglehub_cache() -> Path:
    return Path(os.environ.get("KAGGLEHUB_CACHE", Path.home() / ".cache" / "kagglehub")).expanduser()


def _search(folder: Path, *, default: bool) -> Path | None:
    """Return the inner folder found at or below `folder` (no extraction), or None."""
    candidates = list(_levels(folder))
    if default:
        candidates += _levels(folder / "mads")
    for version in _versions(folder):
        candidates += _levels(version)
    return next((c for c in candidates if _is_inner(c)), None)


def _zips_in(folder: Path) -> list[Path]:
    places = [folder, folder / "mads"]
    return [p / name for p in places for name in ZIP_NAMES if (p / name).is_file()]


def find_mads(path: str | Path | None = None) -> Path:
    """Return the inner MADS folder (holding images/ and masks/) from a zip, any folder level or the cache.

    With no path, looks in `MADS_DIR` if set, else in `data_dir()` (also `data_dir()/mads`) and the
    kagglehub cache. A zip is extracted once, beside itself, into a folder named after it.
    """
    default = path is None and not os.environ.get("MADS_DIR")
    if path is None:
        path = os.environ.get("MADS_DIR") or data_dir()
    path = Path(path).expanduser()
    if path.is_file():
        if path.name == "df.csv":
            path = path.parent
        elif zipfile.is_zipfile(path):
            return _extract(path)
        else:
            raise CourseError(say(
                f"{path} is neither a zip archive nor a folder: give the downloaded MADS zip or its extracted folder",
                f"{path} no es un archivo zip ni una carpeta: pasa el zip de MADS descargado o su carpeta extraída",
            ))
    if path.is_dir():
        found = _search(path, default=default)
        if found is not None:
            return found
        for archive in _zips_in(path):
            if _zip_holds_mads(archive):
                return _extract(archive)
    if default:
        kaggle_input = Path("/kaggle/input") / HANDLE.split("/")[1]  # attached in a Kaggle notebook
        places = [kaggle_input, *_versions(_kagglehub_cache())]
        for place in places:
            found = _search(place, default=False) if place.is_dir() else None
            if found is not None:
                return found
    where = say(f"{path} (nor in the kagglehub cache {_kagglehub_cache()})",
                f"{path} (ni en la caché de kagglehub {_kagglehub_cache()})") if default else str(path)
    raise CourseError(say(
        f"MADS not found in {where}: download it (lab/README.md: kagglehub, the Kaggle CLI or the zip by hand) "
        "and pass the zip or any folder of it, or set MADS_DIR",
        f"no se encuentra MADS en {where}: descárgalo (lab/README.es.md: kagglehub, la CLI de Kaggle o el zip a mano) "
        "y pasa el zip o cualquier carpeta de su extracción, o define MADS_DIR",
    ))


# --------------------------------------------------------------------------------------- extracting


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return say("has an absolute path", "tiene una ruta absoluta")
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return say("climbs out of the folder with '..'", "sale de la carpeta con '..'")
    if stat.S_ISLNK(info.external_attr >> 16):
        return say("is a symbolic link", "es un enlace simbólico")
    return None


def _zip_holds_mads(archive: Path) -> bool:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n.replace("\\", "/") for n in zf.namelist()]
    except (zipfile.BadZipFile, OSError):
        return False
    dirs = {str(PurePosixPath(n).parent) for n in names}
    return any(d == "images" or d.endswith("/images") for d in dirs) and any(
        d == "masks" or d.endswith("/masks") for d in dirs
    )


def _extract(archive: Path) -> Path:
    """Return the inner folder of the zip's extraction beside it (extracting it on first use)."""
    target = archive.parent / archive.stem
    if target.exists():
        found = _search(target, default=False) if target.is_dir() else None
        if found is None:
            raise CourseError(say(
                f"{target} exists but holds no MADS images/ and masks/: move it away so that {archive.name} "
                "can be extracted there, or extract the zip by hand and pass the folder",
                f"{target} existe pero no contiene las carpetas images/ y masks/ de MADS: muévela a otro sitio para "
                f"poder extraer ahí {archive.name}, o extrae el zip a mano y pasa la carpeta",
            ))
        return found
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CourseError(say(f"{archive} is not a readable zip ({exc}): download it again",
                              f"{archive} no es un zip legible ({exc}): vuelve a descargarlo")) from None
    with zf:
        members = zf.infolist()
        for info in members:  # check every member before writing anything
            problem = _member_problem(info)
            if problem:
                raise CourseError(say(
                    f"{archive}: member {info.filename!r} {problem}: refusing to extract; download the zip again from {PAGE}",
                    f"{archive}: la entrada {info.filename!r} {problem}: no se extrae nada; vuelve a descargar el zip desde {PAGE}",
                ))
        if not _zip_holds_mads(archive):
            raise CourseError(say(f"{archive} holds no images/ and masks/ folders: is it the MADS zip from {PAGE}?",
                                  f"{archive} no contiene las carpetas images/ y masks/: ¿es el zip de MADS de {PAGE}?"))
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".mads.partial-", dir=archive.parent))
        except OSError as exc:
            raise CourseError(say(
                f"cannot write beside {archive} ({exc.strerror}): copy the zip to a writable folder, or extract it there",
                f"no se puede escribir junto a {archive} ({exc.strerror}): copia el zip a una carpeta en la que "
                "puedas escribir, o extráelo allí",
            )) from None
        try:
            total = sum(i.file_size for i in members)
            with tqdm(total=total, unit="B", unit_scale=True, desc=say(f"extracting {archive.name}", f"extrayendo {archive.name}")) as bar:
                for info in members:
                    zf.extract(info, tmp)
                    bar.update(info.file_size)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # our own partial folder, never the user's
            if target.is_dir() and _search(target, default=False):  # extracted meanwhile by someone else
                return _search(target, default=False)
            raise
    found = _search(target, default=False)
    if found is None:  # pragma: no cover - _zip_holds_mads checked the layout
        raise CourseError(say(f"{archive} extracted to {target}, but no images/ and masks/ were found there",
                              f"{archive} se ha extraído en {target}, pero ahí no hay images/ ni masks/"))
    return found


# ------------------------------------------------------------------------------------------ listing


def _pngs(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() == ".png" and not p.name.startswith(".")
    }


def _find_csv(root: Path) -> Path | None:
    for folder in (root, root.parent, root.parent.parent):
        if (folder / "df.csv").is_file():
            return folder / "df.csv"
    return None


def _csv_pairs(csv_path: Path, root: Path) -> list[tuple[Path, Path]]:
    """Return the (image, mask) paths of df.csv's rows, resolved against the inner folder."""
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        if "images" not in columns or "masks" not in columns:
            raise CourseError(say(
                f"{csv_path} has no 'images' and 'masks' columns (found {sorted(columns)}): "
                "download the dataset again or delete df.csv to pair frames by file name",
                f"{csv_path} no tiene las columnas 'images' y 'masks' (tiene {sorted(columns)}): "
                "vuelve a descargar el conjunto de datos o borra df.csv para emparejar los fotogramas por nombre de archivo",
            ))
        rows = list(reader)
    pairs = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        resolved = []
        for column, sub in (("images", "images"), ("masks", "masks")):
            value = (row[columns[column]] or "").strip().replace("\\", "/")
            candidates = [root / value, root / sub / PurePosixPath(value).name] if value else []
            hit = next((c for c in candidates if c.is_file()), None)
            if hit is None:
                raise CourseError(say(
                    f"{csv_path} line {number}: {column} {value!r} is not in {root}: download the dataset again "
                    "or delete df.csv to pair frames by file name",
                    f"{csv_path}, línea {number}: {column} {value!r} no está en {root}: vuelve a descargar el "
                    "conjunto de datos o borra df.csv para emparejar los fotogramas por nombre de archivo",
                ))
            resolved.append(hit)
        if resolved[0].stem != resolved[1].stem:
            raise CourseError(say(
                f"{csv_path} line {number} pairs {resolved[0].name} with {resolved[1].name}: a mask must have "
                "its image's file name; fix or delete df.csv",
                f"{csv_path}, línea {number}: empareja {resolved[0].name} con {resolved[1].name}; una máscara debe "
                "tener el nombre de archivo de su imagen: corrige o borra df.csv",
            ))
        pairs.append((resolved[0], resolved[1]))
    return pairs


def _inner(root: str | Path) -> Path:
    root = Path(root)
    return root if _is_inner(root) else find_mads(root)


def list_frames(root: str | Path) -> list[Frame]:
    """Return the frames sorted by name, images paired with masks by file name (df.csv checked if present).

    `collages/` and files that are not PNG are ignored. An image without a mask, a df.csv row
    naming a missing file and a name that does not parse raise CourseError.
    """
    root = _inner(root)
    csv_path = _find_csv(root)
    if csv_path is not None:
        pairs = dict((img.stem, (img, msk)) for img, msk in _csv_pairs(csv_path, root))
    else:
        images, masks = _pngs(root / "images"), _pngs(root / "masks")
        missing = sorted(set(images) - set(masks))
        if missing:
            more = say(f" (and {len(missing) - 1} more)", f" (y {len(missing) - 1} más)") if len(missing) > 1 else ""
            raise CourseError(say(
                f"{images[missing[0]]} has no mask {missing[0]}.png in {root / 'masks'}{more}: "
                "restore the mask or remove the image",
                f"{images[missing[0]]} no tiene máscara {missing[0]}.png en {root / 'masks'}{more}: "
                "recupera la máscara o quita la imagen",
            ))
        pairs = {name: (images[name], masks[name]) for name in images}
    frames = []
    for name in sorted(pairs):
        image, mask = pairs[name]
        parts = parse_name(image.name)
        frames.append(Frame(name, image, mask, parts.style, parts.sequence, parts.camera, parts.frame))
    if not frames:
        raise CourseError(say(f"{root / 'images'} holds no PNG frames: download the dataset again",
                              f"{root / 'images'} no contiene fotogramas PNG: vuelve a descargar el conjunto de datos"))
    return frames


# ------------------------------------------------------------------------------------------ reading


def _open(path: Path, what: str) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        this = {"image": "esta imagen", "mask": "esta máscara"}.get(what, what)
        raise CourseError(say(
            f"{path}: cannot read this {what} ({reason[:_MAX_REASON]}): the file is damaged; download the dataset again",
            f"{path}: no se puede leer {this} ({reason[:_MAX_REASON]}): el archivo está dañado; vuelve a descargar "
            "el conjunto de datos",
        )) from None


def read_image(path: str | Path) -> np.ndarray:
    """Return an image file as (H, W, 3) uint8 RGB."""
    img = _open(Path(path), "image")
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB") if img.mode in ("P", "LA", "PA") else img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def binarize_mask(array: np.ndarray) -> np.ndarray:
    """Return an (H, W) uint8 0/1 mask from a grey, grey+alpha, RGB or RGBA array (foreground > 127).

    Colour channels are combined by their maximum (so white, red or green foreground all count).
    An alpha channel is ignored unless the colour channels are constant and the alpha varies, as in
    a mask stored only in its alpha channel. 16-bit masks are scaled to 8 bits first.
    """
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.dtype == np.uint16 or (a.dtype.kind in "iu" and a.max(initial=0) > 255):
        a = (a.astype(np.uint32) >> 8).astype(np.uint8)
    if a.ndim == 2:
        return (a > 127).astype(np.uint8)
    if a.ndim != 3:
        raise ValueError(f"a mask must be 2-D or 3-D, got shape {a.shape}")
    channels = a.shape[2]
    colour = a[..., :3] if channels >= 3 else a[..., :1]
    if channels in (2, 4):
        alpha = a[..., -1]
        if colour.min() == colour.max() and alpha.min() != alpha.max():
            return (alpha > 127).astype(np.uint8)
    return (colour.max(axis=2) > 127).astype(np.uint8)


def read_mask(path: str | Path) -> np.ndarray:
    """Return a mask file as (H, W) uint8 0/1, whatever its channels (grey, RGB, RGBA, palette, 1-bit)."""
    img = _open(Path(path), "mask")
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode == "P":
        img = img.convert("RGBA")
    return binarize_mask(np.asarray(img))


def _shape(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))


def resize_image(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Return a uint8 RGB image resized to size × size (or (H, W)) with Lanczos filtering (anti-aliased)."""
    h, w = _shape(size)
    if image.shape[:2] == (h, w):
        return np.asarray(image, dtype=np.uint8)
    return np.asarray(Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((w, h), Image.Resampling.LANCZOS))


def resize_mask(mask: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Return a 0/1 mask resized to size × size (or (H, W)): interpolated, then thresholded at one half.

    Pillow's bilinear filter averages over the covered area when shrinking and interpolates when
    enlarging, so outlines stay smooth both ways.
    """
    h, w = _shape(size)
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    if binary.shape[:2] == (h, w):
        return binary
    coverage = np.asarray(Image.fromarray(binary * 255).resize((w, h), Image.Resampling.BILINEAR))
    return (coverage > 127).astype(np.uint8)


def _load_pair(frame: Frame, size: int) -> tuple[np.ndarray, np.ndarray]:
    image = read_image(frame.image)
    mask = read_mask(frame.mask)
    if mask.shape != image.shape[:2]:
        raise CourseError(say(
            f"{frame.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
            f"{image.shape[1]}x{image.shape[0]}: download the dataset again",
            f"{frame.mask}: la máscara mide {mask.shape[1]}x{mask.shape[0]} pero su imagen "
            f"{image.shape[1]}x{image.shape[0]}: vuelve a descargar el conjunto de datos",
        ))
    return resize_image(image, size), resize_mask(mask, size)


# ---------------------------------------------------------------------------------------- selecting


def _spread(n: int, k: int) -> list[int]:
    """Return k indices spread evenly over range(n)."""
    if k >= n:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})


def select_frames(frames: Sequence[Frame], limit: int | None) -> list[Frame]:
    """Return at most `limit` frames, spread over every sequence (evenly within each), sorted by name."""
    if limit is None or limit >= len(frames):
        return list(frames)
    if limit < 1:
        raise CourseError(say(f"limit must be at least 1, got {limit}", f"limit debe ser al menos 1, no {limit}"))
    groups: dict[str, list[Frame]] = {}
    for f in sorted(frames, key=lambda f: f.name):
        groups.setdefault(f.group, []).append(f)
    quota = dict.fromkeys(groups, 0)
    left = limit
    while left > 0:  # deal frames round-robin to the sequences that still have some
        open_groups = [g for g in sorted(groups) if quota[g] < len(groups[g])]
        for g in open_groups[:left]:
            quota[g] += 1
        left -= min(left, len(open_groups))
    chosen = [groups[g][i] for g in sorted(groups) for i in _spread(len(groups[g]), quota[g])]
    return sorted(chosen, key=lambda f: f.name)


# ------------------------------------------------------------------------------------------ loading


def load_frames(
    frames: Sequence[Frame], size: int = 128, *, workers: int | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images (N, S, S, 3) uint8, masks (N, S, S) uint8 0/1) of these frames, decoded in parallel."""
    return decode_parallel(
        len(frames), size, lambda i: _load_pair(frames[i], size), workers=workers, progress=progress,
        desc=say(f"loading MADS at {size}x{size}", f"cargando MADS a {size}x{size}"), unit=say("frame", "fotograma"),
    )


def load_mads(
    path: str | Path | None = None,
    size: int = 128,
    *,
    limit: int | None = None,
    workers: int | None = None,
    cache: bool = True,
    progress: bool = True,
) -> MADSData:
    """Return the frames as MADSData: images (N, size, size, 3) uint8 and masks (N, size, size) uint8 0/1.

    Each 512 × 384 frame is resized to size × size (aspect not kept, see the module docstring).
    `limit` keeps at most that many frames, spread over every sequence. Decoded arrays are cached
    in `data_dir()/.cache`, keyed by the files' sizes and modification times.
    """
    if size < 8:
        raise CourseError(say(f"size {size} is too small: use at least 8 pixels (the lessons use 64 to 256)",
                              f"size {size} es demasiado pequeño: usa al menos 8 píxeles (las lecciones usan de 64 a 256)"))
    root = _inner(path) if path is not None else find_mads()
    frames = select_frames(list_frames(root), limit)
    names = [f.name for f in frames]
    files = [p for f in frames for p in (f.image, f.mask)]
    cache_path = cache_file("mads", _CACHE_VERSION, root, size, limit, files) if cache else None
    hit = read_cache(cache_path, names, size) if cache_path is not None else None
    if hit is not None:
        images, masks = hit["images"], hit["masks"]
    else:
        images, masks = load_frames(frames, size, workers=workers, progress=progress)
        if cache_path is not None:
            write_cache(cache_path, names, images=images, masks=masks)
    return MADSData(names, images, masks, [f.group for f in frames], root, [f.style for f in frames])


# ---------------------------------------------------------------------------------------- splitting


def split_by_sequence(
    data: MADSData | Sequence[str], fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0
) -> dict[str, np.ndarray]:
    """Return sorted frame indices per side ("train", "val", "test"; or "train", "test" for two fractions).

    Whole sequences (style + sequence, every camera) go to one side, so near-duplicate frames never
    straddle the split. Sequences are shuffled with `seed`, then each goes to the side furthest
    below its share of frames. The result depends only on the sequence IDs, the fractions and the seed.
    """
    sequences = list(data.sequences if hasattr(data, "sequences") else data)
    fractions = [float(f) for f in fractions]
    if len(fractions) not in (2, 3) or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise CourseError(say(f"fractions {tuple(fractions)} must be 2 or 3 non-negative numbers summing to 1",
                              f"fractions {tuple(fractions)} debe contener 2 o 3 números no negativos que sumen 1"))
    sides = ["train", "test"] if len(fractions) == 2 else ["train", "val", "test"]
    counts = Counter(sequences)
    wanted = [s for s, f in zip(sides, fractions) if f > 0]
    if len(counts) < len(wanted):
        found, parts = ", ".join(sorted(counts)), ", ".join(wanted)
        raise CourseError(say(
            f"only {len(counts)} sequence(s) ({found}): cannot split by sequence into "
            f"{parts}; use more frames (raise limit) or fewer parts",
            f"solo hay {len(counts)} secuencia(s) ({found}): no se puede dividir por secuencias en "
            f"{parts}; usa más fotogramas (sube limit) o menos partes",
        ))
    order = sorted(counts)
    perm = np.random.default_rng(seed).permutation(len(order))
    total = len(sequences)
    targets = {s: f * total for s, f in zip(sides, fractions)}
    assigned: dict[str, list[str]] = {s: [] for s in sides}
    filled = dict.fromkeys(sides, 0)
    for i in perm:
        seq = order[i]
        side = max(wanted, key=lambda s: (targets[s] - filled[s], -sides.index(s)))
        assigned[side].append(seq)
        filled[side] += counts[seq]
    for side in wanted:  # every wanted side gets at least one sequence
        if not assigned[side]:
            donor = max(wanted, key=lambda s: (len(assigned[s]), filled[s]))
            seq = min(assigned[donor], key=lambda q: (counts[q], q))
            assigned[donor].remove(seq)
            assigned[side].append(seq)
            filled[donor] -= counts[seq]
            filled[side] += counts[seq]
    where = {seq: side for side, seqs in assigned.items() for seq in seqs}
    labels = np.array([where[s] for s in sequences]) if sequences else np.array([], dtype=str)
    return {side: np.flatnonzero(labels == side) for side in sides}


# -------------------------------------------------------------------------------------- downloading


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:_MAX_REASON]}"


def print_terms() -> None:
    """Print the dataset's licence and the paper to cite."""
    print(f"Segmentation Full Body MADS ({PAGE}) - {say('licence', 'licencia')} {say(LICENCE, LICENCE_ES)}")
    print(f"{say('Cite', 'Cita')}: {CITATION}")


def fetch_mads(dest: str | Path | None = None) -> Path:
    """Download MADS with kagglehub (into its cache, or `dest`) and return the inner folder.

    Never attempted when offline (`SEG_OFFLINE` or `CI`). Without Kaggle credentials, prints
    DOWNLOAD_HELP and raises CourseError.
    """
    if is_offline():
        raise CourseError(say(
            "offline mode (SEG_OFFLINE or CI is set): not downloading MADS; unset it, or download the zip by hand "
            f"from {PAGE} and pass its path",
            "modo sin conexión (SEG_OFFLINE o CI está definida): no se descarga MADS; quita esa variable, o "
            f"descarga el zip a mano desde {PAGE} y pasa su ruta",
        ))
    try:
        import kagglehub
    except ImportError:
        raise CourseError(say("kagglehub is not installed: run `pip install kagglehub`, or download the zip by hand",
                              "kagglehub no está instalado: ejecuta `pip install kagglehub`, o descarga el zip a mano")) from None
    print_terms()
    kwargs = {"output_dir": str(Path(dest).expanduser())} if dest is not None else {}
    try:
        folder = kagglehub.dataset_download(HANDLE, **kwargs)
    except TypeError as exc:
        if kwargs:
            raise CourseError(say(
                f"this kagglehub cannot download into {dest} ({exc}): run `pip install -U kagglehub` or leave dest out",
                f"esta versión de kagglehub no puede descargar en {dest} ({exc}): ejecuta `pip install -U kagglehub` "
                "o no pases dest",
            )) from None
        raise
    except Exception as exc:  # noqa: BLE001 - kagglehub raises many types; all become one instruction
        print(say(DOWNLOAD_HELP, DOWNLOAD_HELP_ES))
        where = say("Colab: add KAGGLE_USERNAME/KAGGLE_KEY as Colab Secrets",
                    "Colab: añade KAGGLE_USERNAME/KAGGLE_KEY como secretos de Colab") if in_colab() else say(
            "put kaggle.json in ~/.kaggle/ or set KAGGLE_USERNAME and KAGGLE_KEY",
            "pon kaggle.json en ~/.kaggle/ o define KAGGLE_USERNAME y KAGGLE_KEY",
        )
        raise CourseError(say(
            f"could not download {HANDLE} from Kaggle ({_one_line(exc)}): {where}, or download the zip by hand "
            f"from {PAGE} and pass its path (see the instructions above)",
            f"no se ha podido descargar {HANDLE} de Kaggle ({_one_line(exc)}): {where}, o descarga el zip a mano "
            f"desde {PAGE} y pasa su ruta (mira las instrucciones de arriba)",
        )) from None
    return find_mads(folder)


# ------------------------------------------------------------------------------------------ resolving


SYNTHETIC_COUNT = 240  # frames of the default stand-in; the real dataset has 1,192


def synthetic_root(count: int = SYNTHETIC_COUNT) -> Path:
    """Return where the stand-in of `count` frames lives: `data_dir()/synthetic/mads` (or `mads-COUNT`)."""
    return data_dir() / "synthetic" / ("mads" if count == SYNTHETIC_COUNT else f"mads-{count}")


BANNER = """
################################################################################
#  SYNTHETIC STAND-IN: the real MADS frames were not found or could not be     #
#  downloaded. The frames below are generated figures on generated scenes in   #
#  MADS's layout. Every number computed on them is NOT a result on MADS.       #
################################################################################"""
BANNER_ES = """
################################################################################
#  SUSTITUTO SINTÉTICO: no se han encontrado los fotogramas reales de MADS, o  #
#  no se han podido descargar. Los de abajo son figuras generadas en escenas   #
#  generadas, con la estructura de MADS. Ninguna cifra calculada con ellos es  #
#  un resultado sobre MADS.                                                    #
################################################################################"""


def _make_synthetic(dest: Path, count: int) -> Path:
    from utils.synthetic import synthetic_mads

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mads.partial-", dir=dest.parent))
    try:
        synthetic_mads(tmp, count=count, seed=0, progress=True)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (dest.is_dir() and _search(dest, default=False)):
            raise
    return _search(dest, default=False)


def resolve_mads(
    path: str | Path | None = None, *, allow_download: bool | None = None, synthetic_count: int = SYNTHETIC_COUNT
) -> Source:
    """Return the real MADS if found (or downloadable), else the synthetic stand-in (generated on first use).

    A path given here (or in MADS_DIR) must hold MADS: it is never replaced by the stand-in.
    `allow_download=None` downloads unless offline. The stand-in of `synthetic_count` frames is
    kept in `synthetic_root(synthetic_count)` and announced with a banner.
    """
    if path is not None or os.environ.get("MADS_DIR"):
        root = find_mads(path)
        return _announce(Source(root, "synthetic" if _is_synthetic(root) else "mads"))
    try:
        return _announce(Source(find_mads(), "mads"))
    except CourseError as exc:
        why = str(exc)
    if allow_download is None:
        allow_download = not is_offline()
    if allow_download:
        try:
            return Source(fetch_mads(), "mads")  # fetch_mads printed the terms
        except CourseError as exc:
            why = str(exc)
    dest = synthetic_root(synthetic_count)
    root = _search(dest, default=False) if dest.is_dir() else None
    if root is None:
        root = _make_synthetic(dest, synthetic_count)
    print(say(f"(real MADS unavailable: {why})", f"(MADS real no disponible: {why})"))
    return _announce(Source(root, "synthetic"))


def _announce(source: Source) -> Source:
    """Print the terms of the real data, or the banner of the stand-in; return the source."""
    if source.is_synthetic:
        print(say(BANNER, BANNER_ES))
        print(say("synthetic stand-in", "sustituto sintético") + f": {source.root}")
    else:
        print_terms()
    return source


# ------------------------------------------------------------------------------------------ describing


def _is_synthetic(root: Path) -> bool:
    """Return True for the stand-in: under `data_dir()/synthetic`, or marked by a README saying SYNTHETIC."""
    base = (data_dir() / "synthetic").resolve()
    resolved = root.resolve()
    if resolved == base or base in resolved.parents:
        return True
    for folder in (root, root.parent, root.parent.parent):
        for name in ("SYNTHETIC", "SYNTHETIC.txt", "README.txt", "Readme.txt", "README.md"):
            with contextlib.suppress(OSError):
                if (folder / name).is_file() and "SYNTHETIC" in (folder / name).read_text(errors="replace")[:4096]:
                    return True
    return False


def _size_of(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def describe(root: str | Path) -> dict:
    """Return a summary for `python -m utils info`: kind, frames, sequences, styles, sizes and problems."""
    root = _inner(root)
    problems: list[str] = []
    try:
        frames = list_frames(root)
    except CourseError as exc:
        problems.append(str(exc))
        frames = []
        images, masks = _pngs(root / "images"), _pngs(root / "masks")
        for name in sorted(images):
            try:
                parts = parse_name(name)
            except CourseError as bad:
                problems.append(str(bad))
                continue
            if name in masks:
                frames.append(Frame(name, images[name], masks[name], parts.style, parts.sequence, parts.camera, parts.frame))
    image_sizes: Counter[str] = Counter()
    for f in frames:
        isize, msize = _size_of(f.image), _size_of(f.mask)
        if isize is None:
            problems.append(say(f"{f.image}: not a readable image", f"{f.image}: no es una imagen legible"))
        if msize is None:
            problems.append(say(f"{f.mask}: not a readable image", f"{f.mask}: no es una imagen legible"))
        if isize and msize and isize != msize:
            problems.append(say(f"{f.mask}: mask is {msize[0]}x{msize[1]}, its image {isize[0]}x{isize[1]}",
                                f"{f.mask}: la máscara mide {msize[0]}x{msize[1]}, su imagen {isize[0]}x{isize[1]}"))
        if isize:
            image_sizes[f"{isize[0]}x{isize[1]}"] += 1
    return {
        "kind": "synthetic" if _is_synthetic(root) else "mads",
        "root": str(root),
        "df_csv": str(_find_csv(root)) if _find_csv(root) else None,
        "frames": len(frames),
        "sequences": len({f.group for f in frames}),
        "styles": dict(sorted(Counter(f.style for f in frames).items())),
        "cameras": dict(sorted(Counter(f.camera for f in frames).items())),
        "image_sizes": dict(image_sizes.most_common()),
        "problems": problems,
    }


def counts(names: Iterable[str]) -> dict[str, int]:
    """Return how many frames each sequence ("Style_Sequence") has, sorted by sequence."""
    return dict(sorted(Counter(f"{p.style}_{p.sequence}" for p in map(parse_name, names)).items()))
