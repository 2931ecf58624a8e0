"""Where the course lives: the repository, the data folder and the environment switches.

`REPO` and `REF` are the single source of truth for every badge and link; after forking, run
`python -m utils links --repo OWNER/NAME [--ref REF]` to rewrite them everywhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = "segmentation-course/semantic-segmentation"
REF = "main"

ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Return the folder that holds downloaded and generated datasets (git-ignored `data/`)."""
    return Path(os.environ.get("SEG_DATA_DIR", ROOT / "data")).expanduser()


def runs_dir() -> Path:
    """Return the folder where notebooks and the command line write metrics and models."""
    return Path(os.environ.get("SEG_RUNS_DIR", ROOT / "runs")).expanduser()


LANGUAGES = ("en", "es")
_language = "en"


def set_language(lang: str) -> None:
    """Choose the language of what the course's helpers print and draw ("en" or "es"); the Spanish notebooks pass "es"."""
    global _language
    if lang not in LANGUAGES:
        from utils.errors import CourseError

        choices = ", ".join(LANGUAGES)
        raise CourseError(say(f"unknown language {lang!r}: use one of {choices}",
                              f"idioma desconocido {lang!r}: usa uno de {choices}"))
    _language = lang


def language() -> str:
    """Return the language chosen with `set_language` ("en" by default)."""
    return _language


def say(en: str, es: str) -> str:
    """Return the text in the chosen language: `say("epoch", "época")`."""
    return es if _language == "es" else en


#: How a data source's kind reads next to "data" / "datos": "real data", "datos sintéticos".
KIND_LABELS = {"ph2": ("real", "reales"), "mads": ("real", "reales"), "synthetic": ("synthetic", "sintéticos")}


def kind_label(kind: str) -> str:
    """Return a data kind ("ph2", "mads", "synthetic") as an adjective for "{label} data" / "datos {label}", in the chosen language."""
    en, es = KIND_LABELS.get(kind, (kind, kind))
    return say(en, es)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def is_smoke() -> bool:
    """Return True when `SEG_SMOKE` asks for the tiny settings used by tests."""
    return _truthy("SEG_SMOKE")


def is_offline() -> bool:
    """Return True when no network access may be attempted (`SEG_OFFLINE` or `CI` set)."""
    return _truthy("SEG_OFFLINE") or _truthy("CI")


def in_colab() -> bool:
    """Return True inside Google Colab."""
    return "google.colab" in sys.modules
