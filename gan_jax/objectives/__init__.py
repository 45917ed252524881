"""Objectives, found by name from `cfg.objective.name` (see `gan_jax.objectives.base`).

Built in: "unconditional", "video_prediction", "class_conditional" (one module each here).
A new one is one file here or a module path in the config.
"""

from gan_jax.objectives.base import OBJECTIVES, Cond, Objective
from gan_jax.objectives.unconditional import Unconditional

__all__ = ["OBJECTIVES", "Cond", "Objective", "Unconditional"]
