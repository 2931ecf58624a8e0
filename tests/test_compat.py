"""Every library name and keyword the course uses exists in the installed versions.

Colab pins older releases than a fresh `pip install` gives (TensorFlow 2.20, Keras 3.13, see
requirements-colab.txt), and an attribute that only a newer Keras has once broke every Colab training
run. CI runs the whole suite once per stack; this test reads the course's code (the package, the
benchmarks and the code cells of every notebook) and resolves, in the running environment, every
dotted name rooted at an imported library (`keras.layers.BatchNormalization`, `tf.nn.max_pool_with_argmax`,
`torch.amp.GradScaler`, `np.random.default_rng`, ...) and every keyword argument passed to one, so a name
that one stack lacks fails here with its file and line even when no test happens to execute that line.

Attributes read from objects (`layer.momentum`) cannot be resolved statically; the suite's training
tests, run on both stacks, cover those.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("keras", "tensorflow", "torch", "numpy", "skimage", "matplotlib", "PIL", "scipy")
# Keyword arguments that keras.layers.Layer accepts through **kwargs on every layer.
LAYER_KWARGS = {"input_shape", "input_dim", "batch_input_shape", "batch_size", "weights", "dtype", "name", "trainable"}


def _sources() -> list[tuple[str, str]]:
    """(where, code) for every Python file of the course and every notebook code cell."""
    found = []
    for folder in ("utils", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found.append((path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")))
    for path in sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("lab/**/*.ipynb")]):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                # IPython turns magics and shell lines into plain Python calls.
                code = TransformerManager().transform_cell("".join(cell["source"]))
                found.append((f"{path.relative_to(ROOT).as_posix()} cell {i}", code))
    return found


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted library path, from the imports of one file or cell."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LIBRARIES:
                    if alias.asname:
                        names[alias.asname] = alias.name
                    else:
                        names[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in LIBRARIES:
                for alias in node.names:
                    if alias.name != "*":
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


_MISSING = object()


def _resolve(path: str):
    """The object at a dotted path, importing modules along the way; _MISSING if it does not exist."""
    parts = path.split(".")
    try:
        obj = importlib.import_module(parts[0])
    except ImportError:
        return None  # the library is not installed here (e.g. torch on a TensorFlow-only machine)
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
            except ImportError:
                return _MISSING
    return obj


def _accepts(func, keyword: str) -> bool:
    target = func.__init__ if inspect.isclass(func) else func
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return True  # a builtin without a signature: nothing to check
    if keyword in params:
        return True
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        keras = importlib.import_module("keras") if _resolve("keras") not in (None, _MISSING) else None
        if keras is not None and inspect.isclass(func) and issubclass(func, keras.layers.Layer):
            return keyword in LAYER_KWARGS or keyword in inspect.signature(keras.layers.Layer.__init__).parameters
        return True
    return False


def _problems(where: str, code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"{where}: does not parse ({exc.msg})"]
    aliases = _aliases(tree)
    problems, seen = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] in LIBRARIES:
            for alias in node.names:
                if alias.name != "*" and _resolve(f"{node.module}.{alias.name}") is _MISSING:
                    problems.append(f"{where}:{node.lineno}: {node.module}.{alias.name} does not exist here")
        dotted = _dotted(node) if isinstance(node, ast.Attribute) else None
        if dotted and dotted[0] in aliases:
            path = ".".join([aliases[dotted[0]], *dotted[1:]])
            if path not in seen:
                seen.add(path)
                if _resolve(path) is _MISSING:
                    problems.append(f"{where}:{node.lineno}: {path} does not exist here")
        if isinstance(node, ast.Call) and node.keywords:
            dotted = _dotted(node.func)
            if dotted and dotted[0] in aliases:
                func = _resolve(".".join([aliases[dotted[0]], *dotted[1:]]))
                if func in (None, _MISSING) or not callable(func):
                    continue
                for kw in node.keywords:
                    if kw.arg and not _accepts(func, kw.arg):
                        problems.append(f"{where}:{node.lineno}: {'.'.join(dotted)}() takes no argument {kw.arg!r} here")
    return problems


SOURCES = _sources()
FILES = sorted({where.split(" cell ")[0] for where, _ in SOURCES})


@pytest.mark.parametrize("name", FILES)
def test_library_names_exist_in_this_stack(name):
    problems = [p for where, code in SOURCES if where.split(" cell ")[0] == name for p in _problems(where, code)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_name_this_stack_lacks():
    code = "import keras\nfrom keras import layers\nkeras.layers.BatchNormalization(renorm_clipping_x=1)\nlayers.NoSuchLayer()\n"
    problems = _problems("example", code)
    assert any("NoSuchLayer" in p for p in problems), problems
    assert any("renorm_clipping_x" in p for p in problems), problems
    assert not _problems("example", "import numpy as np\nnp.random.default_rng(seed=0)\n")
