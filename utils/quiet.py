"""Keep TensorFlow's C++ start-up lines out of notebooks and terminals.

TensorFlow 2.21 prints CUDA probes and oneDNN notes through absl before `TF_CPP_MIN_LOG_LEVEL` takes
effect (2.20 honours the variable). `import utils` installs a one-shot import hook: whenever TensorFlow
is first imported afterwards (by `import keras`, `import tensorflow` or a library), the process's
standard-error descriptor points at a temporary file for the length of that import. If the import
fails, what it printed is written out after all, since it may say why. Nothing is imported early:
a PyTorch notebook that never touches TensorFlow never loads it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from contextlib import contextmanager


@contextmanager
def held_stderr():
    """Send file descriptor 2 to a temporary file inside the block; replay it if the block raises."""
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Wrap TensorFlow's own loader: execute the package with standard error held."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        uninstall()
        module.__loader__ = self._loader  # TensorFlow and its tools see their usual loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with held_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Find `tensorflow` as usual, with a loader that holds standard error while it runs."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or "tensorflow" in sys.modules:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and not isinstance(spec.loader, _QuietLoader):
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietTensorFlow()


def install() -> None:
    """Hold standard error during the first import of TensorFlow from now on (no-op once it is imported)."""
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Remove the hook (done by itself once TensorFlow has been imported)."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
