"""Gradient penalties on D: R1 (real data), R2 (fake data), WGAN-GP (interpolates).

Each is registered under its config key (`penalty.r1`, `penalty.r2`, `penalty.gp`) with the
signature of `gan_jax.losses.base.Penalty`: `(d_fn, real, fake, noise) -> scalar`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from gan_jax.losses.base import PENALTIES, Noise, Penalty

Array = jax.Array


def per_sample_sq_grad_norm(d_fn: Callable[[Array], Array], x: Array) -> Array:
    """`||d D(x_i) / d x_i||^2` for each sample: `[N, ...]` -> `[N]`.

    Gradient of the *sum* of logits: with no cross-sample coupling in D (no batch norm) the
    gradient of the sum w.r.t. `x_i` is the gradient of `D(x_i)` alone. A head with several
    logits per sample (one per frame) sums them, as StyleGAN-V's per-frame R1 does.
    """
    grads = jax.grad(lambda inputs: jnp.sum(d_fn(inputs)))(x)
    return jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=1)


def r1_penalty(d_fn: Callable[[Array], Array], real: Array) -> Array:
    """R1 penalty `E ||grad_x D(x)||^2` on real data (Mescheder et al. 2018).

    The D loss adds `gamma / 2` times it. `d_fn` maps inputs `[N, ...]` to logits.
    """
    return jnp.mean(per_sample_sq_grad_norm(d_fn, real))


def r2_penalty(d_fn: Callable[[Array], Array], fake: Array) -> Array:
    """R2 penalty `E ||grad_x D(x)||^2` on generated data (Mescheder et al. 2018; R3GAN)."""
    return jnp.mean(per_sample_sq_grad_norm(d_fn, fake))


def gradient_penalty(
    d_fn: Callable[[Array], Array], real: Array, fake: Array, alpha: Array
) -> Array:
    """WGAN-GP penalty `E (||grad D(x_hat)|| - 1)^2` at `x_hat = alpha real + (1 - alpha) fake`.

    Args:
        d_fn: inputs `[N, ...]` -> logits.
        real, fake: `[N, ...]`.
        alpha: `[N]` mixing weights in [0, 1] (drawn by the caller so the step owns its RNG).
    """
    alpha = alpha.reshape((-1,) + (1,) * (real.ndim - 1))
    x_hat = alpha * real + (1.0 - alpha) * fake
    # Small epsilon inside the sqrt keeps the gradient finite where the norm is exactly zero.
    norms = jnp.sqrt(per_sample_sq_grad_norm(d_fn, x_hat) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


R1 = PENALTIES.register(
    "r1", Penalty(lambda d_fn, real, fake, noise: r1_penalty(d_fn, real), scale=0.5)
)
R2 = PENALTIES.register(
    "r2", Penalty(lambda d_fn, real, fake, noise: r2_penalty(d_fn, fake), scale=0.5)
)


def _gp(d_fn: Callable[[Array], Array], real: Array, fake: Array, noise: Noise) -> Array:
    return gradient_penalty(d_fn, real, fake, noise.uniform(()))


GP = PENALTIES.register("gp", Penalty(_gp, scale=1.0))
