"""Run profiles: how big and how long the lessons train, chosen from the environment.

- `smoke`: tiny settings for tests (`SEG_SMOKE=1`): seconds, not quality.
- `cpu`:   reduced settings that still reach a meaningful Dice within about 15 minutes on 2 cores.
- `gpu`:   full settings (256×256, enough epochs to converge).

Which one: an explicit name, else the environment variable `SEG_PROFILE` (smoke, cpu or gpu; what
`python -m utils lab calibrate --profile` sets), else smoke under `SEG_SMOKE=1`, else by the hardware.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from utils.course import is_smoke, say


@dataclass(frozen=True)
class Profile:
    """Training settings for one kind of machine."""

    name: str
    size: int  # images are resized to size × size
    epochs: int
    batch_size: int
    base_filters: int  # channels of the first U-Net level; doubled at each level down
    depth: int  # number of down-sampling steps
    limit: int | None  # at most this many cases (stratified), None for all
    learning_rate: float = 1e-3

    def describe(self) -> str:
        """Return the profile as one printable line (in the language of `utils.set_language`)."""
        cases = say("all cases", "todos los casos") if self.limit is None else say(f"{self.limit} cases", f"{self.limit} casos")
        return say(
            f"profile {self.name}: {self.size}x{self.size}, {self.epochs} epochs, batch {self.batch_size}, "
            f"base filters {self.base_filters}, depth {self.depth}, {cases}",
            f"perfil {self.name}: {self.size}x{self.size}, {self.epochs} épocas, lotes de {self.batch_size}, "
            f"filtros de base {self.base_filters}, profundidad {self.depth}, {cases}",
        )

    def as_dict(self) -> dict:
        """Return the settings as a plain dict (for JSON reports)."""
        return asdict(self)


PROFILES = {
    "smoke": Profile("smoke", size=64, epochs=1, batch_size=8, base_filters=8, depth=3, limit=24),
    "cpu": Profile("cpu", size=128, epochs=12, batch_size=8, base_filters=16, depth=4, limit=None),
    "gpu": Profile("gpu", size=256, epochs=40, batch_size=16, base_filters=32, depth=4, limit=None),
}


def choose_profile(has_gpu: bool, name: str | None = None) -> Profile:
    """Return the named profile, else SEG_PROFILE's, else smoke under SEG_SMOKE, else gpu or cpu by the hardware."""
    from utils.errors import CourseError

    if name is not None:
        if name not in PROFILES:
            choices = ", ".join(PROFILES)
            raise CourseError(say(f"unknown profile {name!r}: choose one of {choices}",
                                  f"perfil desconocido {name!r}: elige uno de {choices}"))
        return PROFILES[name]
    chosen = os.environ.get("SEG_PROFILE", "").strip()
    if chosen:
        if chosen not in PROFILES:
            choices = ", ".join(PROFILES)
            raise CourseError(say(f"SEG_PROFILE={chosen!r} is not a profile: set it to one of {choices}, or unset it",
                                  f"SEG_PROFILE={chosen!r} no es un perfil: dale uno de estos valores, {choices}, o quita la variable"))
        return PROFILES[chosen]
    if is_smoke():
        return PROFILES["smoke"]
    return PROFILES["gpu" if has_gpu else "cpu"]
