"""Accelerator set-up for Keras: which GPUs, which precision policy, which distribution strategy.

The decision (`plan_devices`) is a pure function of a description of the devices, so it is tested
without hardware; `setup_keras` detects the devices, applies the plan and prints one line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from utils.course import say

#: Tensor cores that run float16 fast arrived with compute capability 7.0 (Volta).
MIN_MIXED_PRECISION_CC = (7, 0)


@dataclass(frozen=True)
class GPU:
    """One accelerator as the framework reports it."""

    name: str
    compute_capability: tuple[int, int] | None = None


@dataclass(frozen=True)
class DevicePlan:
    """What the course will use: devices, precision policy and distribution."""

    backend: str
    gpus: tuple[GPU, ...]
    policy: str  # "mixed_float16" or "float32"
    distribution: str  # "mirrored" or "default"
    replicas: int
    note: str = ""
    strategy: Any = field(default=None, compare=False, repr=False)

    @property
    def has_gpu(self) -> bool:
        """Return True when at least one GPU is used."""
        return bool(self.gpus)

    @property
    def mixed_precision(self) -> bool:
        """Return True when layers compute in float16 and keep float32 weights."""
        return self.policy == "mixed_float16"

    def global_batch(self, per_replica: int) -> int:
        """Return the global batch size for a per-replica batch size."""
        return per_replica * self.replicas

    def scope(self) -> contextlib.AbstractContextManager:
        """Return the context in which to build and compile models."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> str:
        """Return the plan as one printable line."""
        if not self.gpus:
            devices = say("CPU only", "solo CPU")
        else:
            names = ", ".join(
                f"{g.name} (cc {g.compute_capability[0]}.{g.compute_capability[1]})"
                if g.compute_capability
                else g.name
                for g in self.gpus
            )
            devices = f"{len(self.gpus)} GPU{'s' if len(self.gpus) > 1 else ''}: {names}"
        plural = "s" if self.replicas > 1 else ""
        line = say(
            f"Keras {self.backend} backend | {devices} | policy {self.policy} | "
            f"strategy {self.distribution} ({self.replicas} replica{plural})",
            f"Keras con backend {self.backend} | {devices} | política {self.policy} | "
            f"estrategia {self.distribution} ({self.replicas} réplica{plural})",
        )
        return f"{line} | {self.note}" if self.note else line


def plan_devices(gpus: Sequence[GPU], backend: str = "tensorflow", *, allow_mixed: bool = True) -> DevicePlan:
    """Return the plan for these GPUs: mixed precision only if all reach cc 7.0, mirrored if several."""
    gpus = tuple(gpus)
    if not gpus:
        return DevicePlan(backend, (), "float32", "default", 1)
    capable = all(g.compute_capability and g.compute_capability >= MIN_MIXED_PRECISION_CC for g in gpus)
    policy = "mixed_float16" if allow_mixed and capable else "float32"
    note = "" if capable or not allow_mixed else say("GPU older than compute capability 7.0: float32",
                                                     "GPU anterior a la capacidad de cómputo 7.0: float32")
    if len(gpus) > 1 and backend == "tensorflow":
        return DevicePlan(backend, gpus, policy, "mirrored", len(gpus), note)
    if len(gpus) > 1:
        note = (note + "; " if note else "") + say(f"several GPUs need the TensorFlow backend: using 1 of {len(gpus)}",
                                                   f"varias GPU necesitan el backend de TensorFlow: se usa 1 de {len(gpus)}")
        return DevicePlan(backend, gpus[:1], policy, "default", 1, note)
    return DevicePlan(backend, gpus, policy, "default", 1, note)


def _parse_cc(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        return int(major), int(minor or 0)
    return int(value[0]), int(value[1])


def detect_gpus(backend: str | None = None) -> list[GPU]:
    """Return the GPUs the Keras backend can see (an empty list on CPU)."""
    import keras

    backend = backend or keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        found = []
        for dev in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(dev)
            found.append(GPU(details.get("device_name", dev.name), _parse_cc(details.get("compute_capability"))))
        return found
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return []
        return [
            GPU(torch.cuda.get_device_name(i), tuple(torch.cuda.get_device_capability(i)))
            for i in range(torch.cuda.device_count())
        ]
    if backend == "jax":
        import jax

        return [GPU(str(d.device_kind)) for d in jax.devices() if d.platform == "gpu"]
    return []


def setup_keras(*, mixed_precision: bool | None = None, verbose: bool = True) -> DevicePlan:
    """Detect devices, apply memory growth, the precision policy and the strategy; print one line.

    `mixed_precision=False` forces float32; the environment variable `SEG_PRECISION=float32` does too.
    """
    import keras

    backend = keras.backend.backend()
    allow = mixed_precision if mixed_precision is not None else os.environ.get("SEG_PRECISION") != "float32"
    gpus = detect_gpus(backend)
    plan = plan_devices(gpus, backend, allow_mixed=allow)
    strategy = None
    if backend == "tensorflow":
        import tensorflow as tf

        for dev in tf.config.list_physical_devices("GPU"):
            with contextlib.suppress(RuntimeError):  # already initialised: growth cannot change any more
                tf.config.experimental.set_memory_growth(dev, True)
        strategy = tf.distribute.MirroredStrategy() if plan.distribution == "mirrored" else None
    keras.mixed_precision.set_global_policy(plan.policy)
    plan = DevicePlan(plan.backend, plan.gpus, plan.policy, plan.distribution, plan.replicas, plan.note, strategy)
    if verbose:
        print(plan.describe())
    return plan
