"""utils.quiet: TensorFlow's C-level start-up lines are held during its first import, and replayed if it fails."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake_tensorflow(where: Path, fails: bool) -> None:
    # a stand-in `tensorflow` that writes to file descriptor 2 from "C" (os.write) as TF 2.21 does
    package = where / "tensorflow"
    package.mkdir(parents=True)
    body = 'import os\nos.write(2, b"I0000 port.cc:153] oneDNN custom operations are on\\n")\n__version__ = "0.fake"\n'
    if fails:
        body += 'raise ImportError("fake tensorflow: libcudart missing")\n'
    (package / "__init__.py").write_text(body)


def _run(code: str, fake: Path | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(fake) if fake else "", str(ROOT)) if p)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_first_import_after_utils_is_silent(tmp_path):
    _fake_tensorflow(tmp_path, fails=False)
    done = _run("import utils\nimport tensorflow\nprint(tensorflow.__version__)", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.fake"
    assert done.stderr == ""


def test_without_utils_the_lines_would_show(tmp_path):
    # proves the fake prints, so the test above could fail
    _fake_tensorflow(tmp_path, fails=False)
    done = _run("import tensorflow", tmp_path)
    assert "oneDNN" in done.stderr


def test_a_failing_import_shows_what_it_printed(tmp_path):
    _fake_tensorflow(tmp_path, fails=True)
    done = _run("import utils\nimport tensorflow", tmp_path)
    assert done.returncode != 0
    assert "oneDNN custom operations" in done.stderr and "libcudart missing" in done.stderr


def test_standard_error_works_after_the_import(tmp_path):
    _fake_tensorflow(tmp_path, fails=False)
    done = _run("import sys, os, utils, tensorflow\nos.write(2, b'after\\n')\nprint('x', file=sys.stderr)", tmp_path)
    assert done.stderr == "after\nx\n"


def test_nothing_is_imported_early():
    done = _run("import sys, utils, utils.mads, utils.metrics\nprint('tensorflow' in sys.modules)", None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_real_tensorflow_starts_quietly():
    # on TensorFlow 2.21 this fails without the hook; 2.20 (Colab) is quiet by itself
    env_code = "import utils\nimport keras\nprint(keras.backend.backend())"
    done = subprocess.run([sys.executable, "-c", env_code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tensorflow"
    assert done.stderr == "", done.stderr
