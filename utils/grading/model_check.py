"""The first wall around a submitted `model.keras`: an allow-list schema, checked before Keras sees it.

A Keras 3 file is a zip of `config.json` (the architecture), `metadata.json` and
`model.weights.h5`. Keras rebuilds whatever the config names, and a config can name operations,
functions and classes, not only layers: `safe_mode` blocks only Lambda deserialisation. So the
config is validated against an explicit schema:

- the model is a `Functional` or `Sequential` model of the layer classes in ALLOWED_LAYERS, each
  from module `keras.layers`, with no `registered_name` of its own;
- a layer's settings are numbers, strings, booleans, null and lists of them; the only nested
  objects allowed are Keras dtype policies, initialisers, regularisers and constraints named in
  ALLOWED_OBJECTS; activations are given by name (ALLOWED_ACTIVATIONS); there is no `"function"`
  or `"class"` entry, no operation node and no module outside those listed;
- layer calls refer only to earlier layers' tensors (`__keras_tensor__`);
- sizes are bounded before anything is allocated: input side, channels, filters, kernel sizes,
  the parameter count computed from the config, and every array declared in the weights file
  (read from the HDF5 metadata with h5py, without reading the arrays).

What passes is written again from the validated values into a fresh `.keras` file (the private
copy that the isolated child loads); nothing else in the student's zip reaches Keras.
"""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from pathlib import Path, PurePosixPath

MAX_MODEL_BYTES = 1 << 30  # a model.keras may unpack to at most 1 GiB
MAX_CONFIG_BYTES = 4 << 20
MAX_LAYERS = 600
MAX_PARAMS = 40_000_000  # the course's gpu-profile U-Net has about 7.8 million
MAX_INPUT_SIDE = 1024
MAX_CHANNELS = 2048  # filters / units of one layer
MAX_KERNEL = 15
MAX_DEPTH = 40  # nesting of lists and objects in the config

ALLOWED_LAYERS = frozenset(
    {
        # input and shape
        "InputLayer", "Reshape", "Permute", "Flatten", "ZeroPadding2D", "Cropping2D", "Identity",
        # convolution and dense
        "Conv2D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D", "Dense",
        # normalisation
        "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
        # activations (by layer)
        "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
        # pooling and resampling
        "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
        "UpSampling2D", "Resizing", "Rescaling",
        # merging
        "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
        # regularisation (inactive at inference)
        "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    }
)
ALLOWED_ACTIVATIONS = frozenset(
    {
        "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish",
        "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "softmax", "log_softmax", "softplus",
        "softsign", "tanh", "exponential", None,
    }
)
ALLOWED_OBJECTS = {
    "keras": frozenset({"DTypePolicy", "FloatDTypePolicy"}),
    "keras.initializers": frozenset(
        {
            "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "GlorotUniform",
            "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal", "Orthogonal",
            "VarianceScaling", "Identity", "IdentityInitializer",
        }
    ),
    "keras.regularizers": frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"}),
    "keras.constraints": frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"}),
}
_TOP_CLASSES = {"Functional": ("keras.src.models.functional", "keras", "keras.models"), "Sequential": ("keras", "keras.models", "keras.src.models.sequential")}
_LAYER_KEYS = {"module", "class_name", "config", "registered_name", "build_config", "name", "inbound_nodes"}
_OBJECT_KEYS = {"module", "class_name", "config", "registered_name", "shared_object_id"}
_SIZE_KEYS = ("filters", "units")
_KERNEL_KEYS = ("kernel_size", "pool_size", "strides", "dilation_rate", "size")


class ModelRefused(Exception):
    """A model file refused before loading; the message is the gradebook's reason."""


def _fail(where: str, what: str) -> ModelRefused:
    return ModelRefused(f"model.keras refused: {where}: {what}")


def _plain(value, where: str, depth: int = 0) -> None:
    """Accept numbers, strings, booleans, null and (nested) lists of them."""
    if depth > MAX_DEPTH:
        raise _fail(where, "nested too deeply")
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(where, "a number is not finite")
        return
    if isinstance(value, list):
        for item in value:
            _plain(item, where, depth + 1)
        return
    if isinstance(value, dict):
        raise _fail(where, f"nested object {_describe(value)} is not allowed here")
    raise _fail(where, f"value of type {type(value).__name__} is not allowed")


def _describe(obj: dict) -> str:
    return f"{obj.get('class_name')!r} from {obj.get('module')!r}" if "class_name" in obj else "without a class"


def _keras_object(obj: dict, where: str) -> None:
    """Accept an allow-listed dtype policy, initialiser, regulariser or constraint."""
    if set(obj) - _OBJECT_KEYS:
        raise _fail(where, f"unexpected keys {sorted(set(obj) - _OBJECT_KEYS)[:3]} in {_describe(obj)}")
    module, cls = obj.get("module"), obj.get("class_name")
    if module not in ALLOWED_OBJECTS or cls not in ALLOWED_OBJECTS[module]:
        raise _fail(where, f"{_describe(obj)} is not on the allow-list")
    if obj.get("registered_name") not in (None, cls):
        raise _fail(where, f"registered name {obj.get('registered_name')!r} is not allowed")
    if not isinstance(obj.get("shared_object_id", 0), int):
        raise _fail(where, "shared_object_id must be a number")
    config = obj.get("config", {})
    if not isinstance(config, dict):
        raise _fail(where, f"{cls} config must be an object")
    for key, value in config.items():
        _plain(value, f"{where}.{key}")


def _check_dims(value, where: str, limit: int) -> None:
    items = value if isinstance(value, list) else [value]
    for v in items:
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit):
            raise _fail(where, f"{v!r} is outside 0..{limit}")


def _layer_config(cls: str, config: dict, where: str) -> None:
    for key, value in config.items():
        here = f"{where}.{key}"
        if key == "activation":
            if not (value is None or isinstance(value, str)) or value not in ALLOWED_ACTIVATIONS:
                shown = _describe(value) if isinstance(value, dict) else repr(value)[:40]
                raise _fail(here, f"activation {shown} is not allowed (give one of Keras's activations by name)")
        elif isinstance(value, dict):
            _keras_object(value, here)
        else:
            _plain(value, here)
        if key in _SIZE_KEYS:
            _check_dims(value, here, MAX_CHANNELS)
        elif key in _KERNEL_KEYS:
            _check_dims(value, here, MAX_KERNEL)
        elif key in ("batch_shape", "batch_input_shape", "target_shape", "input_shape"):
            _check_shape(value, here)
        elif key == "depth_multiplier":
            _check_dims(value, here, 64)


def _check_shape(shape, where: str) -> None:
    if shape is None:
        return
    if not isinstance(shape, list) or len(shape) > 5:
        raise _fail(where, "a shape must be a short list")
    for v in shape:
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_INPUT_SIDE * 4):
            raise _fail(where, f"dimension {v!r} is outside 0..{MAX_INPUT_SIDE * 4}")


def _tensor_refs(args, where: str, known: set[str], depth: int = 0) -> list[str]:
    """Return the layer names a call's arguments refer to; refuse anything but Keras tensors and plain values."""
    if depth > MAX_DEPTH:
        raise _fail(where, "nested too deeply")
    if isinstance(args, list):
        return [n for a in args for n in _tensor_refs(a, where, known, depth + 1)]
    if isinstance(args, dict):
        if args.get("class_name") != "__keras_tensor__" or set(args) != {"class_name", "config"}:
            raise _fail(where, f"call argument {_describe(args)} is not a layer's tensor (operation or object refused)")
        cfg = args["config"]
        if not isinstance(cfg, dict) or set(cfg) - {"shape", "dtype", "keras_history"}:
            raise _fail(where, "malformed tensor reference")
        history = cfg.get("keras_history")
        if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)
                and all(isinstance(i, int) and not isinstance(i, bool) for i in history[1:])):
            raise _fail(where, "malformed tensor reference")
        if history[0] not in known:
            raise _fail(where, f"refers to {history[0]!r}, which is not an earlier layer")
        _plain(cfg.get("shape"), where)
        if cfg.get("dtype") not in (None, "float32", "float16", "bfloat16"):
            raise _fail(where, f"tensor dtype {cfg.get('dtype')!r} is not allowed")
        return [history[0]]
    _plain(args, where)
    return []


def _check_layer(layer, index: int, known: set[str], functional: bool) -> tuple[str, str, dict, list[str]]:
    where = f"layer {index}"
    if not isinstance(layer, dict):
        raise _fail(where, "is not an object")
    if set(layer) - _LAYER_KEYS:
        raise _fail(where, f"unexpected keys {sorted(set(layer) - _LAYER_KEYS)[:3]}")
    cls, module = layer.get("class_name"), layer.get("module")
    if not isinstance(cls, str) or cls not in ALLOWED_LAYERS or module != "keras.layers":
        raise _fail(where, f"{_describe(layer)} is not an allowed layer (see the allow-list in lab/README.md)")
    if layer.get("registered_name") not in (None, cls):
        raise _fail(where, f"registered name {layer.get('registered_name')!r} means custom code")
    config = layer.get("config")
    if not isinstance(config, dict):
        raise _fail(where, "config must be an object")
    name = layer.get("name", config.get("name"))
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise _fail(where, "needs a short name")
    where = f"layer {index} ({cls} {name[:40]!r})"
    _layer_config(cls, config, where)
    build = layer.get("build_config")
    if build is not None:
        if not isinstance(build, dict) or set(build) - {"input_shape", "shapes_dict"}:
            raise _fail(where, "malformed build_config")
        _plain(build.get("input_shape"), where)
        if build.get("shapes_dict") is not None:
            raise _fail(where, "shapes_dict in build_config is not allowed")
    refs: list[str] = []
    if functional:
        nodes = layer.get("inbound_nodes", [])
        if not isinstance(nodes, list) or len(nodes) > 4:
            raise _fail(where, "malformed inbound_nodes")
        for node in nodes:
            if not isinstance(node, dict) or set(node) - {"args", "kwargs"}:
                raise _fail(where, "malformed call node")
            refs += _tensor_refs(node.get("args", []), where, known)
            kwargs = node.get("kwargs", {})
            if not isinstance(kwargs, dict):
                raise _fail(where, "malformed call keywords")
            for key, value in kwargs.items():
                if key not in ("training", "mask"):
                    raise _fail(where, f"call keyword {key!r} is not allowed")
                refs += _tensor_refs(value, where, known)
    elif "inbound_nodes" in layer:
        raise _fail(where, "a Sequential model's layer has no inbound_nodes")
    return name, cls, config, refs


def _param_count(layers: list[tuple[str, str, dict, list[str]]], functional: bool) -> int:
    """Return the parameter count implied by the config (channels tracked through the graph)."""
    channels: dict[str, int] = {}
    total, previous = 0, None
    for name, cls, cfg, refs in layers:
        inputs = [channels.get(r, 0) for r in refs] if functional else ([channels.get(previous, 0)] if previous else [])
        c_in = inputs[0] if inputs else 0
        k = cfg.get("kernel_size", [1, 1])
        k = k if isinstance(k, list) else [k, k]
        area = math.prod(int(v or 1) for v in k)
        if cls == "InputLayer":
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape") or [None, None, None, 3]
            out = int(shape[-1] or 3)
            sides = [v for v in shape[1:-1] if v is not None]
            if any(v > MAX_INPUT_SIDE for v in sides):
                raise _fail(f"input {name[:40]!r}", f"fixed size {shape[1:-1]} is larger than {MAX_INPUT_SIDE} pixels")
        elif cls in ("Conv2D", "Conv2DTranspose", "Dense"):
            out = int(cfg.get("filters", cfg.get("units")) or 0)
            groups = max(1, int(cfg.get("groups", 1) or 1))
            total += area * (c_in // groups if cls == "Conv2D" else c_in) * out + out
        elif cls == "SeparableConv2D":
            out, dm = int(cfg.get("filters") or 0), int(cfg.get("depth_multiplier", 1) or 1)
            total += area * c_in * dm + c_in * dm * out + out
        elif cls == "DepthwiseConv2D":
            dm = int(cfg.get("depth_multiplier", 1) or 1)
            out = c_in * dm
            total += area * out + out
        elif cls == "Concatenate":
            out = sum(inputs)
        elif cls in ("Reshape",):
            target = cfg.get("target_shape") or [c_in]
            out = int(target[-1] or c_in)
        else:
            out = c_in
            if cls in ("BatchNormalization", "LayerNormalization", "GroupNormalization", "PReLU"):
                total += 4 * c_in
        if out > MAX_CHANNELS * 4:
            raise _fail(f"layer {name[:40]!r}", f"{out} channels is more than {MAX_CHANNELS * 4}")
        channels[name] = out
        previous = name
    return total


def check_config(config: dict) -> dict:
    """Return the validated config (without compile settings); raise ModelRefused on anything not allowed."""
    if not isinstance(config, dict):
        raise _fail("config.json", "is not an object")
    cls = config.get("class_name")
    if cls not in _TOP_CLASSES or config.get("module") not in _TOP_CLASSES[cls]:
        raise _fail("config.json", f"the model is {_describe(config)}; only a Functional or Sequential model is allowed")
    if config.get("registered_name") not in (None, cls):
        raise _fail("config.json", f"registered name {config.get('registered_name')!r} means custom code")
    extra = set(config) - {"module", "class_name", "config", "registered_name", "build_config", "compile_config"}
    if extra:
        raise _fail("config.json", f"unexpected keys {sorted(extra)[:3]}")
    body = config.get("config")
    if not isinstance(body, dict):
        raise _fail("config.json", "config must be an object")
    functional = cls == "Functional"
    allowed = {"name", "trainable", "layers", "input_layers", "output_layers"} if functional else {"name", "trainable", "layers", "dtype", "build_input_shape"}
    if set(body) - allowed:
        raise _fail("config.json", f"unexpected keys {sorted(set(body) - allowed)[:3]}")
    if isinstance(body.get("dtype"), dict):
        _keras_object(body["dtype"], "model dtype")
    layers = body.get("layers")
    if not isinstance(layers, list) or not layers or len(layers) > MAX_LAYERS:
        raise _fail("config.json", f"needs between 1 and {MAX_LAYERS} layers")
    checked, known = [], set()
    for i, layer in enumerate(layers):
        name, lcls, cfg, refs = _check_layer(layer, i, known, functional)
        if name in known:
            raise _fail(f"layer {i}", f"name {name[:40]!r} is used twice")
        known.add(name)
        checked.append((name, lcls, cfg, refs))
    if functional:
        for key in ("input_layers", "output_layers"):
            refs = _tensor_history(body.get(key), key)
            if not refs or any(r not in known for r in refs):
                raise _fail("config.json", f"{key} must name layers of the model")
        if len(_tensor_history(body.get("input_layers"), "input_layers")) != 1:
            raise _fail("config.json", "the model must have exactly one input")
    elif body.get("build_input_shape") is not None:
        _check_shape(body["build_input_shape"], "build_input_shape")
    if config.get("build_config") is not None:
        build = config["build_config"]
        if not isinstance(build, dict) or set(build) - {"input_shape"}:
            raise _fail("config.json", "malformed build_config")
        _plain(build.get("input_shape"), "build_config")
    params = _param_count(checked, functional)
    if params > MAX_PARAMS:
        raise _fail("config.json", f"the layers declare {params:,} parameters, more than {MAX_PARAMS:,}")
    return {k: v for k, v in config.items() if k != "compile_config"}


def _tensor_history(value, where: str) -> list[str]:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and all(isinstance(i, int) for i in value[1:]):
        return [value[0]]
    if isinstance(value, list) and value and len(value) <= 8:
        return [n for v in value for n in _tensor_history(v, where)]
    raise _fail("config.json", f"malformed {where}")


def check_weights(path: Path) -> int:
    """Return the number of weights declared in a `.weights.h5` file, reading only its metadata; raise ModelRefused."""
    import h5py
    import numpy as np

    total, count = 0, 0

    def visit(name: str, obj) -> None:
        nonlocal total, count
        count += 1
        if count > 20 * MAX_LAYERS:
            raise _fail("model.weights.h5", "holds too many objects")
        if isinstance(obj, h5py.Dataset):
            if obj.is_virtual or obj.external:
                raise _fail("model.weights.h5", f"dataset {name[:60]!r} reads other files (refused)")
            shape = obj.shape or ()
            if len(shape) > 5 or any(d > MAX_CHANNELS * MAX_KERNEL * MAX_KERNEL * 4 for d in shape):
                raise _fail("model.weights.h5", f"array {name[:60]!r} declares shape {shape}")
            if obj.dtype.kind not in "fiub" or obj.dtype.itemsize > 8:
                raise _fail("model.weights.h5", f"array {name[:60]!r} has type {obj.dtype}")
            total += int(np.prod(shape, dtype=np.int64))
            if total > MAX_PARAMS:
                raise _fail("model.weights.h5", f"declares more than {MAX_PARAMS:,} weights")

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except ModelRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged weights file is the student's problem
        raise ModelRefused(f"model.keras refused: model.weights.h5 is damaged ({type(exc).__name__})") from None
    return total


def _read_zip(path: Path) -> tuple[dict, dict, zipfile.ZipInfo | None, zipfile.ZipFile]:
    if not zipfile.is_zipfile(path):
        raise ModelRefused("model.keras is not a Keras 3 file (not a zip archive): save it with model.save('model.keras')")
    zf = zipfile.ZipFile(path)
    infos = zf.infolist()
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if len(infos) > 64 or total > MAX_MODEL_BYTES or (total > 64 << 20 and total > 100 * max(packed, 1)):
        raise ModelRefused(
            f"model.keras would unpack to {total / 2**20:.0f} MiB from {packed / 2**20:.1f} MiB in {len(infos)} files "
            "(zip bomb?) — refused"
        )
    for info in infos:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.filename.startswith(("/", "\\")) or ".." in parts:
            raise ModelRefused(f"model.keras member {info.filename[:60]!r} escapes its folder — refused")
    names = {i.filename: i for i in infos}
    if "config.json" not in names:
        raise ModelRefused("model.keras holds no config.json: save it with model.save('model.keras') (Keras 3)")
    if names["config.json"].file_size > MAX_CONFIG_BYTES:
        raise ModelRefused("model.keras config.json is too large — refused")
    config = json.loads(zf.read("config.json").decode("utf-8"))
    metadata = {}
    if "metadata.json" in names and names["metadata.json"].file_size < 4096:
        try:
            metadata = json.loads(zf.read("metadata.json").decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            metadata = {}
    return config, metadata if isinstance(metadata, dict) else {}, names.get("model.weights.h5"), zf


def check_keras_file(path: str | Path, dest: str | Path | None = None) -> dict:
    """Return the validated config of a `model.keras`; with `dest`, also write the clean copy there.

    Raises ModelRefused with a one-line reason for anything outside the allow-list.
    """
    path = Path(path)
    try:
        config, metadata, weights, zf = _read_zip(path)
    except ModelRefused:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError, RuntimeError, EOFError) as exc:
        raise ModelRefused(f"model.keras is damaged ({type(exc).__name__}: {str(exc)[:80]})") from None
    with zf:
        try:
            clean = check_config(config)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            raise ModelRefused(f"model.keras refused: malformed config ({type(exc).__name__})") from None
        if weights is None:
            raise ModelRefused("model.keras holds no model.weights.h5: save it with model.save('model.keras')")
        if dest is None:
            return clean
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        h5 = dest / "model.weights.h5"
        try:
            with zf.open(weights) as src, open(h5, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as exc:
            raise ModelRefused(f"model.keras is damaged ({type(exc).__name__}: {str(exc)[:80]})") from None
    check_weights(h5)
    version = metadata.get("keras_version")
    meta = {"keras_version": version if isinstance(version, str) and len(version) < 20 else "3.0.0", "date_saved": "graded copy"}
    with zipfile.ZipFile(dest / "model.keras", "w", zipfile.ZIP_STORED) as out:
        out.writestr("metadata.json", json.dumps(meta))
        out.writestr("config.json", json.dumps(clean))
        out.write(h5, "model.weights.h5")
    h5.unlink()
    return clean
