"""The second wall: each submitted model runs in its own child process, with limits, and only sees images.

The parent (`run_model`) makes a fresh, empty scratch folder, puts the validated private copy of
the model in it, and starts `python -m utils.grading.runner` there with a minimal environment.
The test images travel through the child's standard input (never a path to the answers); the
child writes its 0/1 masks (bit-packed) into the scratch folder and exits; the parent checks
them and alone computes scores.

Limits: wall clock (`timeout`, the parent kills the whole process group), CPU time (RLIMIT_CPU,
set by the child on itself before any student data is read), memory (the parent polls the
child's resident memory in /proc and kills it above `memory_mb`; RLIMIT_AS is set far above it
as a backstop, because TensorFlow reserves gigabytes of address space it never touches), file
size (RLIMIT_FSIZE), no core dumps.

Isolation, where Linux allows it: the child starts under `unshare` (util-linux) in new user,
network and mount namespaces (`--user --map-root-user --net --mount`, or `--net --mount` when run
as root where user namespaces are off). In the new network namespace only a loopback device that
is down exists: no network. In the new mount namespace the child hides the answers, the
submissions and the output folder under empty read-only mounts and remounts every other file
system read-only, except its scratch folder. Where `unshare` is missing or refused (macOS,
Windows, locked-down containers), the child runs without them and the grader prints a warning
once: grade inside a throw-away container or VM there (see SECURITY.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_TIMEOUT = 300.0  # seconds of wall clock per model, start-up included
DEFAULT_MEMORY_MB = 4096  # resident memory per model
_POLL = 0.05
_RESULT_JSON = "result.json"
_RESULT_BITS = "result.bits"
ROOT = Path(__file__).resolve().parents[2]


class RunFailed(Exception):
    """The model could not be run; the message is the gradebook's reason."""


@dataclass
class Limits:
    """What one model child may use."""

    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB
    threads: int = 1
    hidden: tuple[str, ...] = ()  # folders the child must not see (answers, submissions, output)


@dataclass
class Sandbox:
    """How children are isolated on this machine (found once by `probe_sandbox`)."""

    prefix: list[str] = field(default_factory=list)
    network: bool = False  # True: the child has no network
    mounts: bool = False  # True: the child can hide folders and remount read-only
    warning: str = ""


_SANDBOX: Sandbox | None = None
_LOCK = threading.Lock()


def probe_sandbox() -> Sandbox:
    """Return the strongest isolation that works here (cached), with a warning when it is partial."""
    global _SANDBOX
    with _LOCK:
        if _SANDBOX is not None:
            return _SANDBOX
        tool = shutil.which("unshare") if sys.platform.startswith("linux") else None
        candidates = [["--user", "--map-root-user", "--net", "--mount"], ["--net", "--mount"], ["--user", "--map-root-user", "--net"], ["--net"]]
        found = None
        if tool and os.environ.get("SEG_GRADING_NO_SANDBOX") != "1":
            for flags in candidates:
                try:
                    ok = subprocess.run([tool, *flags, "true"], capture_output=True, timeout=20).returncode == 0
                except (OSError, subprocess.SubprocessError):
                    ok = False
                if ok:
                    found = flags
                    break
        if found is None:
            why = "the `unshare` program is missing" if not tool else "namespaces are not permitted here"
            _SANDBOX = Sandbox(
                warning=f"warning: model submissions run WITHOUT network or file-system isolation ({why}); "
                "only time and memory limits apply: grade them inside a throw-away container or VM (see SECURITY.md)"
            )
        else:
            mounts = "--mount" in found
            _SANDBOX = Sandbox(
                [tool, *found], network=True, mounts=mounts,
                warning="" if mounts else "warning: model children have no network but can read and write the file system "
                "(mount namespaces are not permitted here): grade inside a throw-away container or VM (see SECURITY.md)",
            )
        return _SANDBOX


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _read_private(path: Path, limit: int) -> bytes:
    """Return a file the child wrote, opened without following links, refusing anything odd."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            raise RunFailed("model child left an invalid result file")
        return os.read(fd, limit + 1) if st.st_size else b""
    finally:
        os.close(fd)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except OSError:
        pass


def run_model(model_file: Path, images: Sequence[np.ndarray], *, size: int, limits: Limits, cancel: threading.Event | None = None) -> list[np.ndarray]:
    """Return the model's 0/1 masks, one per image at the image's size, computed in an isolated child.

    Raises RunFailed with a one-line reason when the child is killed, crashes or returns nonsense.
    """
    sandbox = probe_sandbox()
    scratch = Path(tempfile.mkdtemp(prefix="grading-child-"))
    try:
        os.chmod(scratch, 0o700)
        shutil.copyfile(model_file, scratch / "model.keras")
        header = {
            "size": int(size),
            "shapes": [list(map(int, img.shape)) for img in images],
            "threads": int(limits.threads),
            "cpu_seconds": int(limits.timeout * max(1, limits.threads)) + 5,
            "address_space_mb": int(limits.memory_mb) + 16384,
            "file_mb": 64 + sum(int(np.prod(img.shape[:2])) for img in images) // (8 << 20),
            "hide": list(limits.hidden) if sandbox.mounts else [],
            "sandbox": {"network": sandbox.network, "mounts": sandbox.mounts},
            "root": str(ROOT),
        }
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(scratch),
            "TMPDIR": str(scratch),
            "KERAS_HOME": str(scratch / ".keras"),
            "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "CUDA_VISIBLE_DEVICES": "",
            "OMP_NUM_THREADS": str(limits.threads),
            "TF_NUM_INTRAOP_THREADS": str(limits.threads),
            "TF_NUM_INTEROP_THREADS": "1",
            "MALLOC_ARENA_MAX": "2",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "LANG": "C.UTF-8",
        }
        bootstrap = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from utils.grading.runner import child_main; child_main()"
        command = [*sandbox.prefix, sys.executable, "-I", "-c", bootstrap]
        log = open(scratch / "child.log", "wb")  # noqa: SIM115 - closed below
        try:
            proc = subprocess.Popen(command, cwd=scratch, env=env, stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        writer = threading.Thread(target=_feed, args=(proc, header, images), daemon=True)
        writer.start()
        start, peak, killed = time.monotonic(), 0.0, ""
        while proc.poll() is None:
            elapsed = time.monotonic() - start
            rss = _rss_mb(proc.pid)
            peak = max(peak, rss)
            if rss > limits.memory_mb:
                killed = f"memory limit: killed at {rss:.0f} MiB resident (--memory {limits.memory_mb})"
            elif elapsed > limits.timeout:
                killed = f"time limit: killed after {limits.timeout:g} s (--timeout)"
            elif cancel is not None and cancel.is_set():
                killed = "grading was interrupted"
            if killed:
                _kill(proc)
                proc.wait()
                break
            time.sleep(_POLL)
        writer.join(timeout=5)
        if killed:
            raise RunFailed(killed)
        return _collect(scratch, proc.returncode, images)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _feed(proc: subprocess.Popen, header: dict, images: Sequence[np.ndarray]) -> None:
    try:
        proc.stdin.write(json.dumps(header).encode() + b"\n")
        for img in images:
            proc.stdin.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
        proc.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _last_line(scratch: Path) -> str:
    try:
        with open(scratch / "child.log", "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 4096))
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:120] if lines else ""


def _collect(scratch: Path, returncode: int, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    try:
        result = json.loads(_read_private(scratch / _RESULT_JSON, 1 << 16).decode("utf-8"))
    except (OSError, ValueError, RunFailed):
        result = None
    if returncode != 0 or not isinstance(result, dict) or not result.get("ok"):
        reason = result.get("reason") if isinstance(result, dict) else None
        if not isinstance(reason, str) or not reason:
            if returncode and returncode < 0:
                name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else str(-returncode)
                hint = " (CPU time limit)" if name == "SIGXCPU" else " (out of memory?)" if name in ("SIGKILL", "SIGABRT", "SIGSEGV") else ""
                reason = f"model crashed: killed by {name}{hint}"
            else:
                reason = f"model crashed (exit {returncode}): {_last_line(scratch) or 'no message'}"
        raise RunFailed(str(reason)[:200])
    sizes = [int(img.shape[0]) * int(img.shape[1]) for img in images]
    expected = sum((n + 7) // 8 for n in sizes)
    data = _read_private(scratch / _RESULT_BITS, expected)
    if len(data) != expected:
        raise RunFailed(f"model child returned {len(data)} bytes of masks, expected {expected}")
    masks, offset = [], 0
    for img, n in zip(images, sizes):
        nbytes = (n + 7) // 8
        bits = np.unpackbits(np.frombuffer(data, np.uint8, nbytes, offset))[:n]
        masks.append(bits.reshape(img.shape[:2]).astype(np.uint8))
        offset += nbytes
    return masks


# ----------------------------------------------------------------------------------- inside the child


def _limit_self(header: dict) -> None:
    import resource

    for name, value in (
        ("RLIMIT_CPU", header["cpu_seconds"]),
        ("RLIMIT_AS", header["address_space_mb"] << 20),
        ("RLIMIT_FSIZE", header["file_mb"] << 20),
        ("RLIMIT_CORE", 0),
    ):
        kind = getattr(resource, name, None)
        if kind is not None:
            try:
                resource.setrlimit(kind, (value, value))
            except (ValueError, OSError):
                pass


def _confine(header: dict) -> bool:
    """Hide the given folders and make everything but the scratch folder read-only; return True if done."""
    if not header["sandbox"].get("mounts"):
        return False
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    ms_rdonly, ms_remount, ms_bind, ms_rec, ms_private = 1, 32, 4096, 16384, 1 << 18

    def mount(source, target, fstype, flags, data=None) -> bool:
        enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
        return libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) == 0

    mount(None, "/", None, ms_rec | ms_private)
    scratch = os.getcwd()
    ok = mount(scratch, scratch, None, ms_bind | ms_rec)
    os.chdir(scratch)  # the working directory must be the new mount, not the folder under it
    for folder in header["hide"]:
        if os.path.isdir(folder):
            ok &= mount("tmpfs", folder, "tmpfs", ms_rdonly, "size=4k,mode=000")
    # a remount must keep the flags the mount already has (the kernel refuses to drop locked ones)
    keep = {"nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            flags = sum(keep.get(opt, 0) for opt in fields[5].split(","))
            mounts.append((point, flags))
    for point, flags in mounts:
        if point == scratch or point in header["hide"] or point.startswith(("/proc", "/sys")):
            continue
        if not mount(None, point, None, ms_remount | ms_bind | ms_rdonly | flags) and point == "/":
            ok = False
    return bool(ok)


def child_main() -> None:
    """Entry point of the model child: read the request from stdin, predict, write the result, exit."""
    header = json.loads(sys.stdin.buffer.readline())
    _limit_self(header)
    confined = _confine(header)
    for key in ("hide", "root"):
        header.pop(key, None)
    result = {"ok": False, "confined": confined}
    try:
        images = []
        for shape in header["shapes"]:
            n = int(np.prod(shape))
            buf = sys.stdin.buffer.read(n)
            if len(buf) != n:
                raise RunFailed("the grader sent fewer image bytes than announced")
            images.append(np.frombuffer(buf, np.uint8).reshape(shape))
        import keras

        try:
            model = keras.saving.load_model("model.keras", safe_mode=True, compile=False)
        except Exception as exc:  # noqa: BLE001 - every loading failure is the student's reason
            raise RunFailed(f"model.keras could not be loaded ({type(exc).__name__}: {' '.join(str(exc).split())[:100]})") from None
        masks = predict_full_size(model, images, size=header["size"])
        with open(_RESULT_BITS, "wb") as fh:
            for mask in masks:
                fh.write(np.packbits(np.asarray(mask, np.uint8).ravel() > 0).tobytes())
        result["ok"] = True
    except RunFailed as exc:
        result["reason"] = str(exc)
    except MemoryError:
        result["reason"] = "model ran out of memory (--memory)"
    except Exception as exc:  # noqa: BLE001
        result["reason"] = f"model failed while predicting ({type(exc).__name__}: {' '.join(str(exc).split())[:100]})"
    with open(_RESULT_JSON, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    sys.stdout.flush()
    os._exit(0)


# ------------------------------------------------------------------------------ prediction (any process)


def output_rule(model) -> str:
    """Return "sigmoid", "softmax" or "logits": how the model's output is turned into a mask."""
    layer = model.layers[-1] if model.layers else None
    activation = None
    if layer is not None:
        config = layer.get_config()
        activation = config.get("activation")
        if layer.__class__.__name__ == "Softmax":
            activation = "softmax"
    activation = str(activation).lower() if isinstance(activation, str) else ""
    if "sigmoid" in activation:
        return "sigmoid"
    if "softmax" in activation:
        return "softmax"
    return "logits"


def input_size(model, default: int) -> tuple[int, int, int]:
    """Return (height, width, channels) the model takes, `default` for a side that is not fixed."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise RunFailed(f"model input shape {shape} is not (batch, height, width, channels)")
    h, w, c = shape[1] or default, shape[2] or default, shape[3]
    if c != 3:
        raise RunFailed(f"model expects {c} channels, expected 3 (RGB)")
    return int(h), int(w), int(c)


def _score_maps(model, images: np.ndarray, rule: str) -> np.ndarray:
    out = np.asarray(model.predict_on_batch(images.astype(np.float32) / 255.0), dtype=np.float32)
    if out.ndim == 3:
        out = out[..., None]
    if out.ndim != 4 or out.shape[0] != len(images):
        raise RunFailed(f"model output shape {out.shape} is not (batch, height, width, channels)")
    if out.shape[-1] == 2:
        return out[..., 1] - out[..., 0]
    if out.shape[-1] != 1:
        raise RunFailed(f"model output has {out.shape[-1]} channels, expected 1 (or 2 for a softmax)")
    return out[..., 0] - 0.5 if rule == "sigmoid" else out[..., 0]


def predict_full_size(model, images: Sequence[np.ndarray], *, size: int = 128, batch_size: int = 8) -> list[np.ndarray]:
    """Return 0/1 masks, each of its image's own size, from a Keras model (resize in, upsample out).

    Logits are thresholded at 0, or 0.5 after a sigmoid output layer; the score map is upsampled
    before thresholding so that the outline stays smooth at full size. NaN counts as background.
    """
    from skimage.transform import resize

    from utils import mads

    h, w, _ = input_size(model, size)
    rule = output_rule(model)
    masks = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch = np.stack([mads.resize_image(img, (h, w)) for img in chunk])
        maps = _score_maps(model, batch, rule)
        for img, score in zip(chunk, maps):
            if score.shape[:2] != (h, w) and score.shape[0] * score.shape[1] > 4 * h * w:
                raise RunFailed(f"model output {score.shape} is much larger than its input {h}x{w}")
            big = resize(np.nan_to_num(score, nan=-1.0), img.shape[:2], order=1, preserve_range=True, anti_aliasing=False)
            masks.append((big > 0).astype(np.uint8))
    return masks


if __name__ == "__main__":  # pragma: no cover - the parent starts the child through child_main
    child_main()
