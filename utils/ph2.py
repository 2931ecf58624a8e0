"""The PH2 dermoscopy dataset: find it, fetch it, read its metadata and load it paired by case ID.

Typical use::

    source = resolve_ph2()              # PH2 if it is here (or can be fetched), else the synthetic stand-in
    data = load_ph2(source, size=128)   # uint8 images (N, 128, 128, 3) and 0/1 masks (N, 128, 128)
    split = split_indices(data)         # stratified train / val / test indices, the same on every machine

The real PH2 may not be redistributed: it is downloaded on the user's machine (`fetch_ph2`) or found where
the user put it (`find_ph2`), and its terms and citation are printed when it is used.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from utils.cache import cache_file, decode_parallel, read_cache, write_cache
from utils.course import data_dir, is_offline, kind_label, language, say
from utils.errors import CourseError

CLASSES = ("common nevus", "atypical nevus", "melanoma")  # keys: the names the code compares and writes
CLASS_NAMES_ES = ("nevo común", "nevo atípico", "melanoma")  # what a Spanish reader sees, see class_names()

_IDS_BY_CLASS = {
    0: """003 009 016 022 024 025 035 038 042 044 045 050 092 101 103 112 118 125 132 134 135 144 146
          147 150 152 156 159 161 162 175 177 182 198 200 010 017 020 039 041 105 107 108 133 142 143
          160 173 176 196 197 199 203 204 206 207 208 364 365 367 371 372 374 375 378 379 380 381 383
          384 385 389 390 392 394 395 397 399 400 402""",
    1: """002 004 013 015 019 021 027 030 032 033 037 040 043 047 048 049 057 075 076 078 120 126 137
          138 139 140 149 153 157 164 166 169 171 210 347 155 376 006 008 014 018 023 031 036 154 170
          226 243 251 254 256 278 279 280 304 305 306 312 328 331 339 356 360 368 369 370 382 386 388
          393 396 398 427 430 431 432 433 434 436 437""",
    2: """058 061 063 064 065 080 085 088 090 091 168 211 219 240 242 284 285 348 349 403 404 405 407
          408 409 410 413 417 418 419 406 411 420 421 423 424 425 426 429 435""",
}

#: Clinical diagnosis (index into CLASSES) of each of the 200 real PH2 cases, sorted by ID.
CLASS_IDS: dict[str, int] = dict(
    sorted((f"IMD{n}", label) for label, ids in _IDS_BY_CLASS.items() for n in ids.split())
)

CITATION = (
    "T. Mendonça, P. M. Ferreira, J. Marques, A. R. S. Marcal, J. Rozeira, "
    '"PH² - A dermoscopic image database for research and benchmarking", '
    "35th Annual International Conference of the IEEE EMBS (EMBC), 2013."
)
TERMS = (
    "PH2 is for research and educational use only: do not redistribute it, and cite the paper. "
    "Page: https://www.fc.up.pt/addi/ph2%20database.html"
)
TERMS_ES = (
    "PH2 solo puede usarse para investigación y docencia: no lo redistribuyas y cita el artículo. "
    "Página: https://www.fc.up.pt/addi/ph2%20database.html"
)

PAGE = "https://www.fc.up.pt/addi/ph2%20database.html"
#: Public mirrors of PH2Dataset.rar; `?dl=1` asks Dropbox for the file rather than its preview page.
MIRRORS = (
    "https://www.dropbox.com/s/k88qukc20ljnbuo/PH2Dataset.rar?dl=1",
    "https://www.dropbox.com/s/8lqrloi0mxj2acu/PH2Dataset.rar?dl=1",
)
ROOT_NAME = "PH2Dataset"
IMAGES_NAME = "PH2 Dataset images"  # some copies spell it "PH2 Dataset Images": looked up ignoring case
METADATA_NAME = "PH2_dataset.txt"
CRITERIA = ("pigment_network", "dots_globules", "streaks", "regression_areas", "blue_whitish_veil")
COLORS = {1: "white", 2: "red", 3: "light brown", 4: "dark brown", 5: "blue-gray", 6: "black"}

_PARTIAL_PREFIX = f".{ROOT_NAME}.partial-"
_CASE_RE = re.compile(r"^IMD\d+$", re.IGNORECASE)
_ARCHIVE_SUFFIXES = (".rar", ".zip")

# Resampling with Pillow, whose filters widen with the scale factor, so shrinking is anti-aliased (unlike
# a plain bilinear lookup). Images use the Hamming-windowed filter: within one grey level on average
# of scikit-image's `resize(..., anti_aliasing=True)` rounded to uint8, and over ten times faster
# (Pillow computes in fixed point and rounds back to uint8 itself). Masks are made 0/255 first, resized
# with an area average (BOX) and thresholded at half: a pixel is lesion when most of its area is lesion.
_IMAGE_FILTER = Image.Resampling.HAMMING
_MASK_FILTER = Image.Resampling.BOX
_THRESHOLD_LUT = [0] * 128 + [255] * 128  # > 127 -> 255
_CACHE_VERSION = "ph2-cache-1 PIL-HAMMING/BOX"

_terms_shown = False


def class_names() -> tuple[str, ...]:
    """Return the class names to show (titles, tables) in the language of `utils.set_language`; CLASSES stay the keys."""
    return CLASS_NAMES_ES if language() == "es" else CLASSES




def _how_to_get(it: bool = False) -> str:
    """Return how to get PH2, in the chosen language; `it`: "fetch it ..." after an instruction naming PH2."""
    return say(
        f"{'fetch it' if it else 'get PH2'} with `python -m utils fetch ph2` or download PH2Dataset.rar from {PAGE}",
        f"descárgalo con `python -m utils fetch ph2` o a mano (PH2Dataset.rar) desde {PAGE}" if it
        else f"consigue PH2 con `python -m utils fetch ph2` o descarga PH2Dataset.rar desde {PAGE}",
    )


# ----------------------------------------------------------------------------------------------
# data classes


@dataclass(frozen=True)
class CaseInfo:
    """One row of PH2_dataset.txt (codes as in the file's legend)."""

    id: str
    diagnosis: int  # 0 common nevus, 1 atypical nevus, 2 melanoma (index into CLASSES)
    histological: str  # often blank
    asymmetry: int | None  # 0 fully symmetric, 1 symmetric in one axis, 2 fully asymmetric
    criteria: dict[str, str]  # CRITERIA -> "A" absent, "AT" atypical, "P" present, "T" typical
    colors: tuple[int, ...]  # codes of COLORS


@dataclass(frozen=True)
class Case:
    """The files of one case, found by its ID."""

    id: str
    image: Path
    mask: Path
    roi: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Source:
    """Where the data comes from: `kind` is "ph2" (the real dataset) or "synthetic" (the stand-in)."""

    root: Path
    kind: str

    @property
    def label(self) -> str:
        """Return the kind to show next to "data" / "datos" ("real" / "reales", "synthetic" / "sintéticos")."""
        return kind_label(self.kind)


@dataclass
class PH2Data:
    """Loaded cases, sorted by ID: uint8 images (N, S, S, 3), 0/1 uint8 masks (N, S, S), int8 diagnosis."""

    ids: list[str]
    images: np.ndarray
    masks: np.ndarray
    diagnosis: np.ndarray  # index into CLASSES, -1 when unknown
    root: Path

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"PH2Data({len(self)} cases, images {self.images.shape} {self.images.dtype}, "
            f"masks {self.masks.shape} {self.masks.dtype}, root={str(self.root)!r})"
        )

    def counts(self, *, shown: bool = False) -> dict[str, int]:
        """Return the number of cases per class name, plus "unknown"; `shown=True` names them in the chosen language."""
        d = np.asarray(self.diagnosis)
        names = class_names() if shown else CLASSES
        out = {name: int(np.count_nonzero(d == k)) for k, name in enumerate(names)}
        out[say("unknown", "desconocido") if shown else "unknown"] = int(np.count_nonzero((d < 0) | (d >= len(CLASSES))))
        return out

    def subset(self, indices) -> PH2Data:
        """Return the cases at `indices` (integers or a boolean mask), in that order."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.intp, copy=False).reshape(-1)
        return PH2Data(
            ids=[self.ids[i] for i in idx],
            images=self.images[idx],
            masks=self.masks[idx],
            diagnosis=np.asarray(self.diagnosis)[idx],
            root=self.root,
        )


# ----------------------------------------------------------------------------------------------
# small helpers


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _id_key(case_id: str) -> tuple[int, str]:
    digits = case_id[3:]
    return (int(digits) if digits.isdigit() else 10**9, case_id)


def _visible(folder: Path) -> list[Path]:
    """Return the entries of `folder` a person would see (no hidden files, no Windows thumbnails)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    junk = {"thumbs.db", "desktop.ini", "__macosx"}
    return [folder / n for n in sorted(names) if not n.startswith(".") and n.lower() not in junk]


def _child(folder: Path | None, name: str) -> Path | None:
    """Return `folder/name`, matching the name without regard to case, or None."""
    if folder is None:
        return None
    exact = folder / name
    if exact.exists():
        return exact
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    for n in sorted(names):
        if n.lower() == name.lower():
            return folder / n
    return None


def _images_dir(root: Path) -> Path | None:
    found = _child(root, IMAGES_NAME)
    return found if found is not None and found.is_dir() else None


def _is_root(path: Path | None) -> bool:
    return path is not None and path.is_dir() and _images_dir(path) is not None


def _is_synthetic(root: Path) -> bool:
    readme = _child(root, "Readme.txt")
    if readme is None or not readme.is_file():
        return False
    with contextlib.suppress(OSError):
        return "SYNTHETIC" in readme.read_text(encoding="utf-8", errors="replace")[:4096]
    return False


def standin_version(root: str | Path) -> int | None:
    """Return the generator version of the synthetic stand-in at `root` (1 if it names none), None for real PH2."""
    root = Path(root)
    if not _is_synthetic(root):
        return None
    readme = _child(root, "Readme.txt")
    with contextlib.suppress(OSError):
        found = re.search(r"^Generator version:\s*(\d+)\s*$", readme.read_text(encoding="utf-8", errors="replace")[:4096], re.M)
        if found:
            return int(found.group(1))
    return 1  # stand-ins drawn before the version was written down


def _announce_terms() -> None:
    global _terms_shown
    if not _terms_shown:
        print(f"{say(TERMS, TERMS_ES)}\n{say('Cite', 'Cita')}: {CITATION}")
        _terms_shown = True


def _banner(root: Path) -> str:
    lines = [
        "PH2 NOT FOUND - USING THE SYNTHETIC STAND-IN:",
        "numbers below are NOT results on PH2 (the pictures are drawn by utils/synthetic.py).",
        f"stand-in: {root}",
        "To use the real data: run `python -m utils fetch ph2`, or download PH2Dataset.rar",
        f"from {PAGE}",
        "and set PH2_DIR to it (or pass its path).",
    ] if language() != "es" else [
        "NO SE ENCUENTRA PH2: SE USA EL SUSTITUTO SINTÉTICO.",
        "Las cifras de abajo NO son resultados sobre PH2 (las imágenes las dibuja utils/synthetic.py).",
        f"sustituto: {root}",
        "Para usar los datos reales: ejecuta `python -m utils fetch ph2`, o descarga PH2Dataset.rar",
        f"desde {PAGE}",
        "y haz que PH2_DIR apunte a él (o pasa su ruta).",
    ]
    width = max(len(line) for line in lines) + 6
    edge = "!" * width
    body = [f"!! {line.ljust(width - 6)} !!" for line in lines]
    return "\n".join([edge, *body, edge])


# ----------------------------------------------------------------------------------------------
# finding the data


def find_ph2(path: str | Path | None = None) -> Path:
    """Return the PH2Dataset folder (the one holding `PH2 Dataset images`) at, in or beside `path`.

    `path` may be the folder holding PH2Dataset, PH2Dataset itself, its images folder, or the
    downloaded .rar/.zip (extracted beside itself once, then reused). None means `PH2_DIR`, else data/.
    """
    if path is None:
        env = os.environ.get("PH2_DIR", "").strip()
        path = env if env else data_dir()
    p = Path(path).expanduser()
    if not p.exists():
        raise CourseError(say(
            f"{p} does not exist: pass the folder that holds PH2Dataset, PH2Dataset itself or "
            f"PH2Dataset.rar; {_how_to_get()}",
            f"{p} no existe: pasa la carpeta que contiene PH2Dataset, la propia PH2Dataset o "
            f"PH2Dataset.rar; {_how_to_get()}",
        ))
    if p.is_file():
        return _from_archive(p)
    if p.name.lower() == IMAGES_NAME.lower():
        return p.parent
    if _is_root(p):
        return p
    entries = _visible(p)
    if not entries:
        raise CourseError(say(f"{p} is empty: put PH2Dataset (or PH2Dataset.rar) there; {_how_to_get()}",
                              f"la carpeta {p} está vacía: pon ahí PH2Dataset (o PH2Dataset.rar); {_how_to_get()}"))
    named = _child(p, ROOT_NAME)
    if named is not None and named.is_dir():
        if _is_root(named):
            return named
        inner = _child(named, ROOT_NAME)  # an archive extracted into a folder of its own name
        if _is_root(inner):
            return inner
    roots = [e for e in entries if e.is_dir() and _is_root(e)]
    if len(roots) > 1:
        names = ", ".join(r.name for r in roots)
        raise CourseError(say(f"{p} holds several PH2 copies ({names}): pass the one to use",
                              f"{p} contiene varias copias de PH2 ({names}): pasa la que quieras usar"))
    if roots:
        return roots[0]
    archives = [e for e in entries if e.is_file() and e.suffix.lower() in _ARCHIVE_SUFFIXES]
    archives = [a for a in archives if a.name.lower().startswith("ph2")]
    if archives:
        return _from_archive(archives[0])
    if named is not None and named.is_dir():
        raise CourseError(say(
            f"{named} has no '{IMAGES_NAME}' folder: the extraction looks incomplete; "
            f"move it away and extract PH2Dataset.rar again, or {_how_to_get(it=True)}",
            f"{named} no tiene la carpeta '{IMAGES_NAME}': la extracción parece incompleta; "
            f"muévela a otro sitio y vuelve a extraer PH2Dataset.rar, o {_how_to_get(it=True)}",
        ))
    raise CourseError(say(
        f"{p} holds no PH2 dataset: expected PH2Dataset/{IMAGES_NAME}/IMDxxx/... (or PH2Dataset.rar); "
        f"{_how_to_get()}",
        f"{p} no contiene el conjunto de datos PH2: se esperaba PH2Dataset/{IMAGES_NAME}/IMDxxx/... "
        f"(o PH2Dataset.rar); {_how_to_get()}",
    ))


def _from_archive(archive: Path) -> Path:
    """Return the PH2Dataset extracted beside `archive`, extracting it first if it is not there yet."""
    _archive_kind(archive)  # a web page or any other file is named as such, before anything else
    beside = _child(archive.parent, ROOT_NAME)
    if beside is not None:
        if _is_root(beside):
            return beside
        raise CourseError(say(
            f"{beside} exists but has no '{IMAGES_NAME}' folder: move it away so that {archive.name} "
            "can be extracted there",
            f"{beside} existe pero no tiene la carpeta '{IMAGES_NAME}': muévela a otro sitio para poder "
            f"extraer ahí {archive.name}",
        ))
    return extract_archive(archive, archive.parent, expected_cases=None)


# ----------------------------------------------------------------------------------------------
# metadata and case listing


def read_metadata(root: Path) -> dict[str, CaseInfo]:
    """Return the rows of PH2_dataset.txt by case ID ({} and a warning when the file is missing)."""
    root = Path(root)
    path = _child(root, METADATA_NAME)
    if path is None or not path.is_file():
        warnings.warn(say(
            f"{root / METADATA_NAME} is missing: the diagnosis of every case will be unknown (-1); "
            "restore the file from the PH2 archive to get it",
            f"falta {root / METADATA_NAME}: el diagnóstico de todos los casos será desconocido (-1); "
            "vuelve a extraer ese archivo de PH2Dataset.rar para tenerlo",
        ), stacklevel=2)
        return {}
    rows: dict[str, CaseInfo] = {}
    text = path.read_text(encoding="utf-8", errors="replace")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith("||"):
            if rows and line:
                break  # the legend block follows the table
            continue
        parts = line.split("||")  # keeps empty fields: a blank column never shifts the others
        name = parts[1].strip() if len(parts) > 1 else ""
        if name.lower() == "name":
            continue  # the header
        if not name.upper().startswith("IMD"):
            if rows:
                break
            continue
        rows_info = _parse_row(path, lineno, parts)
        if rows_info.id in rows:
            raise CourseError(say(
                f"{path}, line {lineno}: {rows_info.id} appears twice; restore the file from the PH2 archive",
                f"{path}, línea {lineno}: {rows_info.id} aparece dos veces; vuelve a extraer el archivo de PH2Dataset.rar",
            ))
        rows[rows_info.id] = rows_info
    return rows


def _parse_row(path: Path, lineno: int, parts: list[str]) -> CaseInfo:
    where = say(f"{path}, line {lineno}", f"{path}, línea {lineno}")
    fix = say("fix the line or restore the file from the PH2 archive",
              "corrige la línea o vuelve a extraer el archivo de PH2Dataset.rar")
    if len(parts) != 7 or parts[0].strip() or parts[-1].strip():
        raise CourseError(say(
            f"{where}: expected 5 fields between '||' separators (name, histology, diagnosis, "
            f"criteria, colors), found {len(parts) - 2}; {fix}",
            f"{where}: se esperaban 5 campos entre separadores '||' (nombre, histología, diagnóstico, "
            f"criterios, colores) y hay {len(parts) - 2}; {fix}",
        ))
    name, histological, diagnosis, criteria, colors = (f.strip() for f in parts[1:6])
    if not _CASE_RE.match(name):
        raise CourseError(say(f"{where}: {name!r} is not a case ID like IMD003; {fix}",
                              f"{where}: {name!r} no es un ID de caso como IMD003; {fix}"))
    if diagnosis not in ("0", "1", "2"):
        raise CourseError(say(f"{where}: clinical diagnosis of {name} is {diagnosis!r}, not 0, 1 or 2; {fix}",
                              f"{where}: el diagnóstico clínico de {name} es {diagnosis!r}, no 0, 1 ni 2; {fix}"))
    marks = [c.strip() for c in criteria.split("|")]
    if len(marks) != 1 + len(CRITERIA):
        raise CourseError(say(
            f"{where}: expected 6 '|'-separated values (asymmetry and 5 criteria), found {len(marks)}; {fix}",
            f"{where}: se esperaban 6 valores separados por '|' (asimetría y 5 criterios) y hay {len(marks)}; {fix}",
        ))
    if marks[0] and not marks[0].isdigit():
        raise CourseError(say(f"{where}: asymmetry of {name} is {marks[0]!r}, not a number; {fix}",
                              f"{where}: la asimetría de {name} es {marks[0]!r}, no un número; {fix}"))
    codes = colors.split()
    if not all(c.isdigit() for c in codes):
        raise CourseError(say(f"{where}: colors of {name} are {colors!r}, not numbers; {fix}",
                              f"{where}: los colores de {name} son {colors!r}, no números; {fix}"))
    return CaseInfo(
        id=name.upper(),
        diagnosis=int(diagnosis),
        histological=histological,
        asymmetry=int(marks[0]) if marks[0] else None,
        criteria=dict(zip(CRITERIA, marks[1:])),
        colors=tuple(int(c) for c in codes),
    )


def list_cases(root: Path) -> list[Case]:
    """Return every case under `root`, image and mask paired by case ID, sorted by ID."""
    return _scan_cases(Path(root), strict=True)[0]


def _scan_cases(root: Path, strict: bool) -> tuple[list[Case], list[str]]:
    """Return the complete cases and, unless `strict` (raise at the first), the problems found."""
    images_dir = _images_dir(root)
    if images_dir is None:
        raise CourseError(say(f"{root} has no '{IMAGES_NAME}' folder: it is not a PH2Dataset folder; {_how_to_get()}",
                              f"{root} no tiene la carpeta '{IMAGES_NAME}': no es una carpeta PH2Dataset; {_how_to_get()}"))
    folders: dict[str, str] = {}
    with os.scandir(images_dir) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not _CASE_RE.match(entry.name) or not entry.is_dir():
                continue  # .DS_Store, Thumbs.db, notes, __MACOSX ... are not cases
            folders[entry.name.upper()] = entry.path
    cases, problems = [], []
    for case_id in sorted(folders, key=_id_key):  # by ID, never by the order the file system lists
        folder = Path(folders[case_id])
        name = folder.name
        image = _child(_child(folder, f"{name}_Dermoscopic_Image"), f"{name}.bmp")
        mask = _child(_child(folder, f"{name}_lesion"), f"{name}_lesion.bmp")
        problem = None
        if image is None or not image.is_file():
            expected = folder / f"{name}_Dermoscopic_Image" / f"{name}.bmp"
            problem = say(f"case {case_id}: no dermoscopic image, expected {expected}; re-extract the archive or remove {folder}",
                          f"caso {case_id}: falta la imagen dermatoscópica, se esperaba {expected}; vuelve a extraer "
                          f"el archivo comprimido o elimina {folder}")
        elif mask is None or not mask.is_file():
            expected = folder / f"{name}_lesion" / f"{name}_lesion.bmp"
            problem = say(f"case {case_id}: lesion mask missing, expected {expected}; re-extract the archive or remove {folder}",
                          f"caso {case_id}: falta la máscara de la lesión, se esperaba {expected}; vuelve a extraer "
                          f"el archivo comprimido o elimina {folder}")
        if problem:
            if strict:
                raise CourseError(problem)
            problems.append(problem)
            continue
        roi_dir = _child(folder, f"{name}_roi")
        roi = ()
        if roi_dir is not None and roi_dir.is_dir():
            roi = tuple(p for p in _visible(roi_dir) if p.is_file())
        cases.append(Case(case_id, image, mask, roi))
    if strict and not cases:
        raise CourseError(say(
            f"{images_dir} holds no IMDxxx case folders: the extraction looks incomplete; {_how_to_get()}",
            f"{images_dir} no contiene carpetas de casos IMDxxx: la extracción parece incompleta; {_how_to_get()}",
        ))
    return cases, problems


# ----------------------------------------------------------------------------------------------
# decoding and loading


def _open(path: Path, mode: str) -> Image.Image:
    """Return the fully decoded image at `path` in `mode`, or raise CourseError naming the file."""
    try:
        with Image.open(path) as im:  # leaving the block closes the file; the decoded pixels stay
            im.load()
            return im.convert(mode) if im.mode != mode else im
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise CourseError(say(
            f"cannot read {path} ({_one_line(err)}): the file is corrupt or truncated; "
            "re-extract or re-download the dataset",
            f"no se puede leer {path} ({_one_line(err)}): el archivo está dañado o truncado; "
            "vuelve a extraer o a descargar el conjunto de datos",
        )) from err


def _decode_case(case: Case, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return one case as a (size, size, 3) uint8 image and a (size, size) 0/1 uint8 mask."""
    image = _open(case.image, "RGB")
    mask = _open(case.mask, "L")  # 1-bit, 8-bit grey, palette or 3-channel: all become one channel
    if image.size != mask.size:
        (iw, ih), (mw, mh) = image.size, mask.size
        raise CourseError(say(
            f"case {case.id}: mask is {mw}x{mh} but image is {iw}x{ih} ({case.mask}); a mask must have "
            "its image's size: re-extract the archive",
            f"caso {case.id}: la máscara mide {mw}x{mh} pero la imagen {iw}x{ih} ({case.mask}); una máscara "
            "debe tener el tamaño de su imagen: vuelve a extraer el archivo comprimido",
        ))
    small = np.asarray(image.resize((size, size), _IMAGE_FILTER))
    binary = mask.point(_THRESHOLD_LUT)  # 0 or 255 before resizing, whatever the storage
    coverage = np.asarray(binary.resize((size, size), _MASK_FILTER))
    return small, (coverage > 127).astype(np.uint8)


def _decode_all(cases: list[Case], size: int, workers: int | None, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decode every case into uint8 arrays, in the order of `cases`, on a pool of threads."""
    return decode_parallel(
        len(cases), size, lambda i: _decode_case(cases[i], size), workers=workers, progress=progress,
        desc=say("loading PH2", "cargando PH2"), unit=say("case", "caso"),
    )


def _stratified_pick(diagnosis: np.ndarray, k: int) -> np.ndarray:
    """Return sorted indices of `k` cases keeping the class proportions, spread evenly over the IDs."""
    labels = sorted(set(diagnosis.tolist()))
    groups = {lab: np.flatnonzero(diagnosis == lab) for lab in labels}
    n = len(diagnosis)
    share = {lab: k * len(g) / n for lab, g in groups.items()}
    take = {lab: int(np.floor(share[lab])) for lab in labels}
    for lab in sorted(labels, key=lambda lab: (take[lab] - share[lab], lab))[: k - sum(take.values())]:
        take[lab] += 1
    if k >= len(labels):  # every class present in the data shows up in the subset
        for lab in labels:
            if take[lab] == 0:
                donor = max(labels, key=lambda other: (take[other], -other))
                take[donor] -= 1
                take[lab] = 1
    picked = []
    for lab, members in groups.items():
        m = take[lab]
        if m:
            picked.append(members[np.floor((np.arange(m) + 0.5) * len(members) / m).astype(np.intp)])
    return np.sort(np.concatenate(picked))


def load_ph2(
    path: str | Path | Source | None = None,
    size: int = 128,
    *,
    limit: int | None = None,
    workers: int | None = None,
    cache: bool = True,
    progress: bool = True,
) -> PH2Data:
    """Return PH2 (or a stand-in in its layout) resized to size x size, paired and sorted by case ID.

    `limit` keeps at most that many cases, a stratified subset by diagnosis that is the same on every
    machine (for quick runs). The result is cached under data/.cache, keyed by the source's files
    (path, size, modification time), the size and the limit: a second load is near instant and a
    changed file is noticed. Decoding runs on `workers` threads (default: the CPU count, at most 8).
    """
    if isinstance(path, Source):
        path = path.root
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise CourseError(say(f"size must be a positive number of pixels, got {size!r}: e.g. size=128",
                              f"size debe ser un número positivo de píxeles, no {size!r}: por ejemplo, size=128"))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise CourseError(say(f"limit must be None or a positive number of cases, got {limit!r}",
                              f"limit debe ser None o un número positivo de casos, no {limit!r}"))
    size = int(size)
    root = find_ph2(path).resolve()
    all_cases = list_cases(root)
    meta = read_metadata(root)
    diagnosis = np.array([meta[c.id].diagnosis if c.id in meta else -1 for c in all_cases], np.int8)
    cases = all_cases
    if limit is not None and limit < len(all_cases):
        keep = _stratified_pick(diagnosis, int(limit))
        cases = [all_cases[i] for i in keep]
        diagnosis = diagnosis[keep]
    ids = [c.id for c in cases]
    if not _is_synthetic(root):
        _announce_terms()

    txt = _child(root, METADATA_NAME)
    files = [p for c in all_cases for p in (c.image, c.mask)] + ([txt] if txt is not None else [])
    version = f"{_CACHE_VERSION} stand-in {standin_version(root)}"
    cache_path = cache_file("ph2", version, root, size, limit, files) if cache else None
    hit = read_cache(cache_path, ids, size) if cache_path is not None else None
    if hit is not None:
        return PH2Data(ids, hit["images"], hit["masks"], diagnosis, root)
    images, masks = _decode_all(cases, size, workers, progress)
    if cache_path is not None:
        write_cache(cache_path, ids, images=images, masks=masks)
    return PH2Data(ids, images, masks, diagnosis, root)


# ----------------------------------------------------------------------------------------------
# splitting


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Return (train, val, test) sizes summing to n; a positive fraction gets at least one case when n >= 3."""
    sizes = [int(np.floor(f * n + 0.5)) for f in fractions]
    positive = [f > 0 for f in fractions]
    if n >= sum(positive):
        sizes = [max(1, s) if pos else s for s, pos in zip(sizes, positive)]
    while sum(sizes) > n:  # take from the split that is most over its share and can spare a case
        spare = [k for k in range(3) if sizes[k] > (1 if positive[k] and n >= sum(positive) else 0)]
        k = max(spare, key=lambda k: (sizes[k] - fractions[k] * n, -k))
        sizes[k] -= 1
    while sum(sizes) < n:
        k = max(range(3), key=lambda k: (fractions[k] * n - sizes[k], -k))
        sizes[k] += 1
    return sizes


def split_indices(
    data: PH2Data, fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0
) -> dict[str, np.ndarray]:
    """Return sorted train/val/test index arrays, stratified by diagnosis and the same on every machine.

    Cases are ordered by ID (never by file-system order), shuffled within each diagnosis (unknown is a
    stratum of its own) with `np.random.default_rng(seed)`, and dealt out so that every split keeps the
    class proportions to within one case. Split sizes are the rounded fractions; each split with a
    positive fraction gets at least one case when there are 3 or more. With the real 200 cases and the
    default (0.7, 0.1, 0.2): 140 train / 20 val / 40 test, i.e. 56/8/16 of each nevus class and 28/4/8
    melanomas.
    """
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or any(not np.isfinite(f) or f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise CourseError(say(
            f"fractions must be three non-negative numbers (train, val, test) summing to 1, got {tuple(fractions)}",
            f"fractions debe contener tres números no negativos (train, val, test) que sumen 1, no {tuple(fractions)}",
        ))
    n = len(data)
    if n == 0:
        raise CourseError(say("there are no cases to split: load some data first",
                              "no hay casos que dividir: carga antes algunos datos"))
    _, n_val, n_test = _split_sizes(n, fr)
    ids = list(data.ids)
    diagnosis = np.asarray(data.diagnosis).astype(int)
    strata = np.where((diagnosis < 0) | (diagnosis >= len(CLASSES)), -1, diagnosis)
    by_id = sorted(range(n), key=lambda i: _id_key(ids[i]))
    rng = np.random.default_rng(seed)
    keyed = []
    for label in sorted(set(strata.tolist())):
        members = [i for i in by_id if strata[i] == label]
        for rank, j in enumerate(rng.permutation(len(members))):
            keyed.append(((rank + 0.5) / len(members), label, members[j]))
    order = [i for _, _, i in sorted(keyed)]  # classes interleaved in proportion
    parts = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    return {name: np.array(sorted(parts[name]), dtype=np.intp) for name in ("train", "val", "test")}


# ----------------------------------------------------------------------------------------------
# archives and downloads


class _NoRarTool(CourseError):
    """No program to extract RAR archives: retrying another mirror would not help."""


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype", b"<html")) or b"<html" in head[:1024].lower()


def _archive_kind(path: Path) -> str:
    """Return "rar" or "zip" from the file's first bytes; a web page or anything else is a CourseError."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError as err:
        raise CourseError(say(f"cannot read {path} ({_one_line(err)}): pass a readable PH2Dataset.rar or .zip",
                              f"no se puede leer {path} ({_one_line(err)}): pasa un PH2Dataset.rar o .zip legible")) from err
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if _looks_like_html(head):
        raise CourseError(say(
            f"{path} is a web page, not the PH2 archive (the mirror served a web page instead of the "
            f"archive): open {PAGE} (or the mirror link) in a browser, download PH2Dataset.rar by hand "
            "and pass that file's path",
            f"{path} es una página web, no el archivo comprimido de PH2 (el espejo ha servido una página web "
            f"en lugar del archivo): abre {PAGE} (o el enlace del espejo) en un navegador, descarga "
            "PH2Dataset.rar a mano y pasa la ruta de ese archivo",
        ))
    raise CourseError(say(
        f"{path} is neither a RAR nor a ZIP archive (it starts with {head[:8]!r}): pass PH2Dataset.rar, "
        "a .zip of PH2Dataset, or the extracted folder",
        f"{path} no es un archivo RAR ni ZIP (empieza por {head[:8]!r}): pasa PH2Dataset.rar, "
        "un .zip de PH2Dataset o la carpeta extraída",
    ))


def _unsafe_name(name: str) -> str | None:
    """Return why an archive member name would write outside the target folder, or None."""
    n = name.replace("\\", "/")
    if n.startswith("/"):
        return say("has an absolute path", "tiene una ruta absoluta")
    if re.match(r"^[A-Za-z]:", n):
        return say("has a drive letter", "tiene una letra de unidad")
    depth = 0
    for part in n.split("/"):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return say("leaves the target folder", "sale de la carpeta de destino")
    return None


def _check_members(archive: Path, members: list, kind: str) -> None:
    """Refuse the whole archive if any member could write outside the target (before writing anything)."""
    for info in members:
        problem = _unsafe_name(info.filename)
        if problem is None:
            if kind == "zip":
                if stat.S_ISLNK(info.external_attr >> 16):
                    problem = say("is a symbolic link", "es un enlace simbólico")
            elif info.is_symlink() or getattr(info, "file_redir", None):
                problem = say("is a link", "es un enlace")
            elif not (info.is_dir() or info.is_file()):
                problem = say("is not a plain file or folder", "no es un archivo ni una carpeta normal")
        if problem:
            raise CourseError(say(
                f"{archive} refused: member {info.filename!r} {problem}; nothing was extracted. "
                f"Download the archive again from {PAGE}",
                f"{archive} rechazado: la entrada {info.filename!r} {problem}; no se ha extraído nada. "
                f"Vuelve a descargar el archivo comprimido desde {PAGE}",
            ))


def _rar_errors() -> tuple[type[BaseException], ...]:
    try:
        import rarfile
    except ImportError:
        return ()
    return (rarfile.Error,)


def _open_rar(archive: Path):
    try:
        import rarfile
    except ImportError as err:
        raise _NoRarTool(say(f"cannot extract {archive}: the Python package rarfile is missing; `pip install rarfile`",
                             f"no se puede extraer {archive}: falta el paquete de Python rarfile; `pip install rarfile`")) from err
    try:
        rarfile.tool_setup()
    except rarfile.Error as err:
        raise _NoRarTool(say(
            f"cannot extract {archive}: no program for RAR archives was found; install one "
            "(`apt-get install unar`, or unrar; on macOS `brew install unar`; "
            "Colab already has unrar), or extract it by hand and pass the folder",
            f"no se puede extraer {archive}: no se ha encontrado ningún programa para archivos RAR; instala uno "
            "(`apt-get install unar`, o unrar; en macOS, `brew install unar`; "
            "Colab ya trae unrar), o extráelo a mano y pasa la carpeta",
        )) from err
    try:
        return rarfile.RarFile(archive)
    except rarfile.Error as err:
        raise CourseError(say(f"cannot open {archive} as RAR ({_one_line(err)}): download it again",
                              f"no se puede abrir {archive} como RAR ({_one_line(err)}): vuelve a descargarlo")) from err


def _locate_root(folder: Path, depth: int = 4) -> Path | None:
    """Return the shallowest folder at or under `folder` that holds the images folder."""
    level = [folder]
    for _ in range(depth + 1):
        for candidate in level:
            if _is_root(candidate):
                return candidate
        level = [e for d in level for e in _visible(d) if e.is_dir() and e.name.lower() != IMAGES_NAME.lower()]
        if not level:
            return None
    return None


def extract_archive(archive: Path, dest: Path, *, expected_cases: int | None = 200, progress: bool = True) -> Path:
    """Extract a PH2 .rar or .zip into `dest/PH2Dataset` and return that folder.

    Every member name is checked first (absolute paths, drive letters, `..` leaving the target, links:
    the whole archive is refused). Extraction goes to a hidden `.PH2Dataset.partial-*` folder inside
    `dest`; the content is validated (`expected_cases` cases, each with image and mask; None: at least
    one), then renamed into place. On any failure or interruption only that temporary folder is removed,
    so a half dataset is never left where the loader would take it for whole. An existing
    `dest/PH2Dataset` is never overwritten.
    """
    archive, dest = Path(archive).expanduser(), Path(dest).expanduser()
    if not archive.is_file():
        raise CourseError(say(f"{archive} does not exist or is not a file: pass the downloaded PH2Dataset.rar or .zip",
                              f"{archive} no existe o no es un archivo: pasa el PH2Dataset.rar o .zip descargado"))
    kind = _archive_kind(archive)
    target = dest / ROOT_NAME
    if target.exists():
        raise CourseError(say(
            f"{target} already exists and is never overwritten: use it as it is, or move it away and extract again",
            f"la carpeta {target} ya existe y nunca se sobrescribe: úsala tal como está, o muévela a otro sitio "
            "y vuelve a extraer",
        ))
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(say(f"cannot create {dest} ({_one_line(err)}): pass a folder you can write to",
                              f"no se puede crear {dest} ({_one_line(err)}): pasa una carpeta en la que puedas escribir")) from err
    try:
        handle = zipfile.ZipFile(archive) if kind == "zip" else _open_rar(archive)
    except zipfile.BadZipFile as err:
        raise CourseError(say(f"{archive} is a damaged ZIP archive ({_one_line(err)}): download it again",
                              f"{archive} es un archivo ZIP dañado ({_one_line(err)}): vuelve a descargarlo")) from err
    with handle:
        members = handle.infolist()
        _check_members(archive, members, kind)
        tmp = Path(tempfile.mkdtemp(prefix=_PARTIAL_PREFIX, dir=dest))
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset should not be
            for info in tqdm(members, desc=say(f"extracting {archive.name}", f"extrayendo {archive.name}"), unit=say("file", "archivo"), disable=not progress):
                handle.extract(info, tmp)
            root = _locate_root(tmp)
            if root is None:
                raise CourseError(say(
                    f"{archive} holds no '{IMAGES_NAME}' folder: it is not the PH2 archive; {_how_to_get()}",
                    f"{archive} no contiene la carpeta '{IMAGES_NAME}': no es el archivo comprimido de PH2; {_how_to_get()}",
                ))
            try:
                n = len(list_cases(root))
            except CourseError as err:
                raise CourseError(say(f"{archive} is incomplete: {err}", f"{archive} está incompleto: {err}")) from err
            if expected_cases is not None and n != expected_cases:
                raise CourseError(say(
                    f"{archive} holds {n} cases, expected {expected_cases}: the download is incomplete or not "
                    "PH2; delete it and fetch again",
                    f"{archive} contiene {n} casos y se esperaban {expected_cases}: la descarga está incompleta "
                    "o no es PH2; bórrala y vuelve a descargarla",
                ))
            if target.exists():
                raise CourseError(say(
                    f"{target} appeared while extracting and is never overwritten: use it or move it away",
                    f"la carpeta {target} ha aparecido durante la extracción y nunca se sobrescribe: úsala o muévela "
                    "a otro sitio",
                ))
            os.rename(root, target)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, *_rar_errors()) as err:
            hint = say("download it again", "vuelve a descargarlo")
            if kind == "rar":  # unar and Debian's 7-Zip cannot decode every RAR 5 archive that unrar can
                hint += say(", or extract it with unrar (or WinRAR / The Unarchiver) and pass the folder",
                            ", o extráelo con unrar (o WinRAR / The Unarchiver) y pasa la carpeta")
            raise CourseError(say(f"cannot extract {archive} ({_one_line(err)}): the file may be damaged; {hint}",
                                  f"no se puede extraer {archive} ({_one_line(err)}): puede que el archivo esté dañado; {hint}")) from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # only our own temporary folder, whatever happened
    return target


def _archive_name(url: str) -> str:
    name = Path(urlsplit(url).path).name
    return name if name.lower().endswith(_ARCHIVE_SUFFIXES) else "PH2Dataset.rar"


def fetch_ph2(
    dest: str | Path | None = None,
    urls: Sequence[str] = MIRRORS,
    *,
    expected_cases: int = 200,
    progress: bool = True,
) -> Path:
    """Download PH2Dataset.rar from the first mirror that works, extract it to `dest/PH2Dataset`, return that.

    An existing valid `dest/PH2Dataset` is returned as it is (nothing is downloaded or overwritten).
    """
    dest = Path(dest).expanduser() if dest is not None else data_dir()
    existing = _child(dest, ROOT_NAME) if dest.is_dir() else None
    if existing is not None:
        try:
            root = find_ph2(existing)
            list_cases(root)
        except CourseError as err:
            raise CourseError(say(
                f"{existing} exists but is not a usable PH2 folder ({err}); it is never overwritten: "
                "move it away and fetch again",
                f"{existing} existe pero no es una carpeta de PH2 utilizable ({err}); nunca se sobrescribe: "
                "muévela a otro sitio y vuelve a descargar",
            )) from err
        return root
    import pooch

    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(say(f"cannot create {dest} ({_one_line(err)}): pass a folder you can write to",
                              f"no se puede crear {dest} ({_one_line(err)}): pasa una carpeta en la que puedas escribir")) from err
    failures = []
    for url in urls:
        fname = _archive_name(url)
        file = dest / fname
        existed = file.exists()
        try:
            got = Path(pooch.retrieve(url, known_hash=None, fname=fname, path=dest, progressbar=progress))
            root = extract_archive(got, dest, expected_cases=expected_cases, progress=progress)
        except _NoRarTool as err:
            raise CourseError(say(f"{err} (the download is kept at {file})", f"{err} (la descarga se conserva en {file})")) from err
        except (CourseError, OSError, ValueError) as err:  # requests' errors are OSErrors
            failures.append(f"{url}: {_one_line(err)}")
            if not existed:  # our own bad download: remove it, or the next try would reuse it
                with contextlib.suppress(OSError):
                    file.unlink()
            continue
        print(say(f"PH2 is ready at {root}", f"PH2 está listo en {root}") + f"\n{say(TERMS, TERMS_ES)}\n{say('Cite', 'Cita')}: {CITATION}")
        return root
    tried = " | ".join(failures)
    raise CourseError(say(
        f"could not fetch PH2 from any mirror ({tried}); download PH2Dataset.rar by hand from "
        f"{PAGE} and pass its path (e.g. load_ph2('~/Downloads/PH2Dataset.rar')) or set PH2_DIR",
        f"no se ha podido descargar PH2 de ningún espejo ({tried}); descarga PH2Dataset.rar a mano desde "
        f"{PAGE} y pasa su ruta (por ejemplo, load_ph2('~/Downloads/PH2Dataset.rar')) o define PH2_DIR",
    ))


# ----------------------------------------------------------------------------------------------
# choosing the source, describing a folder


def _source(root: Path) -> Source:
    if _is_synthetic(root):
        print(_banner(root))
        return Source(root, "synthetic")
    _announce_terms()
    return Source(root, "ph2")


def _synthetic_root(count: int) -> Path:
    """Return the synthetic stand-in under data/synthetic, generating it on first use."""
    from utils.synthetic import PH2_GENERATOR_VERSION, synthetic_ph2  # here: it imports this module

    parent = data_dir() / "synthetic"
    target = parent / ROOT_NAME
    old = None
    if _is_root(target):
        found = standin_version(target)
        if found == PH2_GENERATOR_VERSION:
            return target
        print(say(f"{target} was drawn by version {found} of the stand-in's generator: drawing version {PH2_GENERATOR_VERSION}",
                  f"{target} se dibujó con la versión {found} del generador del sustituto: se dibuja la versión {PH2_GENERATOR_VERSION}"))
        old = parent / f".{ROOT_NAME}.old-{os.getpid()}"
        with contextlib.suppress(OSError):  # another process may be replacing it too
            os.replace(target, old)
    try:
        return synthetic_ph2(parent, count)
    except (CourseError, OSError):
        if _is_root(target):  # another process generated it meanwhile: use theirs
            return target
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def resolve_ph2(
    path: str | Path | None = None, *, allow_download: bool | None = None, synthetic_count: int = 200
) -> Source:
    """Return where PH2 comes from: `path`, else PH2_DIR, else data/, else a download, else the stand-in.

    An explicit `path` or `PH2_DIR` must be valid (its error is raised). Downloading is tried when
    `allow_download` (default: not offline); its failure is a warning. The synthetic stand-in is
    announced by a banner, the real data by its terms and citation.
    """
    if path is not None:
        return _source(find_ph2(path))
    env = os.environ.get("PH2_DIR", "").strip()
    if env:
        return _source(find_ph2(env))
    home = data_dir()
    if home.is_dir():
        try:
            return _source(find_ph2(home))
        except CourseError:
            has_copy = _child(home, ROOT_NAME) is not None or any(
                e.suffix.lower() in _ARCHIVE_SUFFIXES and e.name.lower().startswith("ph2") for e in _visible(home)
            )
            if has_copy:  # the data is here but broken: say so rather than quietly use the stand-in
                raise
    if allow_download is None:
        allow_download = not is_offline()
    if allow_download:
        try:
            return _source(fetch_ph2(home))
        except (CourseError, OSError) as err:
            warnings.warn(say(f"could not download PH2, using the synthetic stand-in: {_one_line(err)}",
                              f"no se ha podido descargar PH2, se usa el sustituto sintético: {_one_line(err)}"), stacklevel=2)
    root = _synthetic_root(synthetic_count)
    print(_banner(root))
    return Source(root, "synthetic")


def _bmp_truncated(path: Path) -> bool:
    """Return True when a BMP file is shorter than the size its header declares."""
    with open(path, "rb") as f:
        head = f.read(6)
    if len(head) < 6 or head[:2] != b"BM":
        return False
    declared = int.from_bytes(head[2:6], "little")
    return declared > path.stat().st_size


def describe(root: Path) -> dict:
    """Return kind, case count, cases per class, image size range and the problems found in a PH2 folder."""
    root = find_ph2(root)
    cases, problems = _scan_cases(root, strict=False)
    meta: dict[str, CaseInfo] = {}
    if _child(root, METADATA_NAME) is None:
        problems.append(say(f"{root / METADATA_NAME} is missing: the diagnosis of every case is unknown",
                            f"falta {root / METADATA_NAME}: el diagnóstico de todos los casos es desconocido"))
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                meta = read_metadata(root)
        except CourseError as err:
            problems.append(str(err))
    per_class = {name: 0 for name in CLASSES}
    per_class["unknown"] = 0
    for case in cases:
        info = meta.get(case.id)
        per_class[CLASSES[info.diagnosis] if info else "unknown"] += 1
    if meta:
        on_disk = {c.id for c in cases}
        no_row = sorted((c.id for c in cases if c.id not in meta), key=_id_key)
        no_folder = sorted((i for i in meta if i not in on_disk), key=_id_key)
        if no_row:
            shown = ", ".join(no_row[:10])
            problems.append(say(f"{len(no_row)} case(s) without a row in {METADATA_NAME}: {shown}",
                                f"{len(no_row)} caso(s) sin fila en {METADATA_NAME}: {shown}"))
        if no_folder:
            shown = ", ".join(no_folder[:10])
            problems.append(say(f"{len(no_folder)} row(s) of {METADATA_NAME} without a case folder: {shown}",
                                f"{len(no_folder)} fila(s) de {METADATA_NAME} sin carpeta de caso: {shown}"))
    widths, heights = [], []
    for case in cases:
        try:
            with Image.open(case.image) as im:
                isize = im.size
            with Image.open(case.mask) as mk:
                msize = mk.size
            for p in (case.image, case.mask):
                if _bmp_truncated(p):
                    problems.append(say(f"{p} is truncated: re-extract the archive",
                                        f"{p} está truncado: vuelve a extraer el archivo comprimido"))
        except (OSError, ValueError, SyntaxError) as err:
            problems.append(say(f"case {case.id}: cannot read ({_one_line(err)})",
                                f"caso {case.id}: no se puede leer ({_one_line(err)})"))
            continue
        widths.append(isize[0])
        heights.append(isize[1])
        if msize != isize:
            problems.append(say(f"case {case.id}: mask is {msize[0]}x{msize[1]} but image is {isize[0]}x{isize[1]}",
                                f"caso {case.id}: la máscara mide {msize[0]}x{msize[1]} pero la imagen {isize[0]}x{isize[1]}"))
    kind = "synthetic" if _is_synthetic(root) else "ph2"
    if kind == "ph2":
        if len(cases) != len(CLASS_IDS):
            problems.append(say(f"{len(cases)} complete cases, PH2 has {len(CLASS_IDS)}: the extraction may be incomplete",
                                f"{len(cases)} casos completos, PH2 tiene {len(CLASS_IDS)}: puede que la extracción "
                                "esté incompleta"))
        strangers = [c.id for c in cases if c.id not in CLASS_IDS]
        if strangers:
            shown = ", ".join(strangers[:10])
            problems.append(say(f"case IDs that PH2 does not have: {shown}", f"IDs de caso que PH2 no tiene: {shown}"))
    sizes = (min(widths), max(widths), min(heights), max(heights)) if widths else None
    return {"kind": kind, "cases": len(cases), "per_class": per_class, "image_sizes": sizes, "problems": problems}
