"""Reconstruction terms a G objective may add next to the adversarial loss."""

import jax
import jax.numpy as jnp

Array = jax.Array


def mse_reconstruction(target: Array, reconstruction: Array) -> Array:
    """Mean squared error between a clip and its reconstruction (the article's MSE term)."""
    if target.shape != reconstruction.shape:
        raise ValueError(
            f"mse_reconstruction: target shape {target.shape} != reconstruction shape "
            f"{reconstruction.shape}; pass arrays of the same shape."
        )
    return jnp.mean(jnp.square(target - reconstruction))
