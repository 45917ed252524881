"""2-D Gaussian mixtures from the mode-collapse literature (PacGAN, VEEGAN, Unrolled GAN).

* `ring`: 8 modes at angle 2*pi*k/8 on the unit circle, std 0.01.
* `grid`: 25 modes on {-4, -2, 0, 2, 4}^2, std 0.05.

Sampling is a pure JAX function so a toy run can draw its data inside the compiled loop.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np


def mixture(name: str) -> tuple[np.ndarray, float]:
    """Mode centres `[K, 2]` and the per-mode std of a built-in mixture."""
    if name == "ring":
        angles = 2.0 * math.pi * np.arange(8) / 8
        return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32), 0.01
    if name == "grid":
        ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0], np.float32)
        xs, ys = np.meshgrid(ticks, ticks, indexing="ij")
        return np.stack([xs.ravel(), ys.ravel()], axis=1), 0.05
    raise ValueError(f"unknown 2-D dataset {name!r}; choose 'ring' or 'grid'.")


def sample_points(key: jax.Array, n: int, name: str) -> jax.Array:
    """Draws `[n, 2]` float32 points from the mixture `name`, modes picked uniformly."""
    centres, std = mixture(name)
    mode_key, noise_key = jax.random.split(key)
    modes = jax.random.randint(mode_key, (n,), 0, centres.shape[0])
    return jnp.asarray(centres)[modes] + std * jax.random.normal(noise_key, (n, 2))
