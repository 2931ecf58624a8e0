"""The PH2 dermoscopy dataset: find it, fetch it, read its metadata and load it paired by case ID."""

from __future__ import annotations

CLASSES = ("common nevus", "atypical nevus", "melanoma")

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
