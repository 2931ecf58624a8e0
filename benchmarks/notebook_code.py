"""Run the definitions of a lesson notebook (models, losses) so a benchmark measures the notebook's own code."""

from __future__ import annotations

import ast
import json
from pathlib import Path


def definitions(notebook: str | Path, names: set[str], namespace: dict) -> dict:
    """Execute, in order, the code cells that define any of `names` at top level; return the namespace."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            tree = ast.parse(source)
        except SyntaxError:  # cells with IPython magics define nothing the benchmarks need
            continue
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
