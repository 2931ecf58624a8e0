"""Run the definitions of a lesson notebook (models, losses) so a benchmark measures the notebook's own code."""

from __future__ import annotations

import ast
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path


def _code_cells(notebook: str | Path) -> Iterator[ast.Module]:
    """Yield the parsed code cells of a notebook, in order, IPython magics as the calls IPython makes of them.

    The lessons' only magics sit in the Colab set-up cell, behind `if "google.colab" in sys.modules`, so
    running that cell elsewhere imports `sys` and calls nothing of IPython's.
    """
    from IPython.core.inputtransformer2 import TransformerManager

    for cell in json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code":
            yield ast.parse(TransformerManager().transform_cell("".join(cell["source"])))


def definitions(notebook: str | Path, names: set[str], namespace: dict) -> dict:
    """Execute, in order, the code cells that define any of `names` at top level; return the namespace."""
    for tree in _code_cells(notebook):
        defined = {
            node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)
        }
        if defined & names:
            kept = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom)]
            exec(compile(ast.Module(kept, []), str(notebook), "exec"), namespace)  # noqa: S102 - our own notebook
    missing = names - namespace.keys()
    if missing:
        raise RuntimeError(f"{notebook} no longer defines {sorted(missing)}")
    return namespace


def run_cells(notebook: str | Path, names: set[str], namespace: dict) -> dict:
    """Execute, whole and in order, the code cells that assign or define any of `names` at top level."""
    found = set()
    for tree in _code_cells(notebook):
        defined = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
            else:  # names stored by top-level statements, also inside if / for / with blocks
                defined |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        if defined & names:
            found |= defined & names
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
                exec(compile(tree, str(notebook), "exec"), namespace)  # noqa: S102 - the course's own notebook
    if names - found:
        raise RuntimeError(f"{notebook} no longer defines {sorted(names - found)}")
    return namespace
