"""Names from a submissions folder made safe to show: in the gradebook, a spreadsheet, a report, a file name.

A folder name is bytes chosen by a student (or by the zip tool that unpacked it). Undecodable
bytes are shown as `\\xNN`, the text is NFC-normalised, control, format and bidirectional
characters (such as U+202E, right-to-left override) are shown as `\\uNNNN`, and a backslash as
`\\\\`, so two different entries never look the same and nothing reorders the line around them.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import unicodedata

# OWASP, CSV injection: a cell starting with one of these is read as a formula by spreadsheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if ch == "\\":
        return "\\\\"
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or (category == "Zs" and ch != " "):
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


def display_name(raw: str | bytes) -> str:
    """Return a folder or file name as visible, unambiguous, NFC-normalised text."""
    text = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    text = unicodedata.normalize("NFC", text)  # lone surrogates (undecodable bytes) pass through unchanged
    shown = "".join(_escape_char(ch) for ch in text)
    return shown if shown.strip() else repr(shown)


def collision_key(display: str) -> str:
    """Return the key under which two names count as the same student (case and width folded)."""
    return unicodedata.normalize("NFKC", display).casefold()


def safe_text(text: object) -> str:
    """Return text with lone surrogates and control characters escaped (writable as UTF-8 anywhere)."""
    out = []
    for ch in str(text):
        if ch in "\n\t":
            out.append(" ")
        elif 0xD800 <= ord(ch) <= 0xDFFF or unicodedata.category(ch) in ("Cc", "Cf"):
            out.append(_escape_char(ch) if 0xDC80 <= ord(ch) <= 0xDCFF else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def csv_cell(text: object) -> str:
    """Return a gradebook cell that no spreadsheet runs as a formula (OWASP: prefix a quote)."""
    raw = str(text)
    text = safe_text(raw)
    risky = raw[:1] in ("\t", "\r", "\n") or text.lstrip(" \u00a0").startswith(_FORMULA_START)
    return "'" + text if risky else text


def markdown_text(text: object) -> str:
    """Return text safe inside Markdown and HTML: tags and Markdown syntax shown literally."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(safe_text(text), quote=True))


def file_stem(display: str, raw: str | bytes) -> str:
    """Return a file name stem for this entry's reports: readable, ASCII, no path, unique per raw name."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", display).strip("_")[:60] or "student"
    raw_bytes = raw if isinstance(raw, bytes) else os.fsencode(raw)
    if slug == display:
        return slug
    return f"{slug}-{hashlib.sha256(raw_bytes).hexdigest()[:8]}"
