"""Adversarial losses and penalties of D, found by name (`LOSSES.get`, `PENALTIES.get`).

Built in: losses "nonsaturating", "hinge", "wasserstein", "least_squares", "rpgan"; penalties
"r1", "r2", "gp". A new one is one file here (`LOSS = Loss(...)` / `PENALTY = Penalty(...)`),
a `LOSSES.register(...)` call anywhere, or a module path in the config.
"""

from gan_jax.losses import adversarial, penalties
from gan_jax.losses.adversarial import (
    d_hinge,
    d_least_squares,
    d_logistic,
    d_wasserstein,
    g_hinge,
    g_least_squares,
    g_nonsaturating,
    g_wasserstein,
)
from gan_jax.losses.base import LOSSES, PENALTIES, Loss, Noise, Penalty
from gan_jax.losses.config import default_config, default_penalty_config, validate_config
from gan_jax.losses.penalties import gradient_penalty, r1_penalty, r2_penalty
from gan_jax.losses.reconstruction import mse_reconstruction
from gan_jax.losses.rpgan import d_rpgan, g_rpgan

__all__ = [
    "LOSSES",
    "PENALTIES",
    "Loss",
    "Noise",
    "Penalty",
    "adversarial",
    "d_hinge",
    "d_least_squares",
    "d_logistic",
    "d_rpgan",
    "d_wasserstein",
    "default_config",
    "default_penalty_config",
    "g_hinge",
    "g_least_squares",
    "g_nonsaturating",
    "g_rpgan",
    "g_wasserstein",
    "gradient_penalty",
    "mse_reconstruction",
    "penalties",
    "r1_penalty",
    "r2_penalty",
    "validate_config",
]
