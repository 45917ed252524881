"""GAN losses: pure functions of discriminator logits (and, for penalties, of D itself).

Every loss returns a float32 scalar averaged over the batch. Logits have shape `[N]`.
Conventions follow the papers: D minimises the `d_*` losses, G minimises the `g_*` losses.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def d_logistic(real_logits: Array, fake_logits: Array) -> Array:
    """Standard GAN discriminator loss (binary cross-entropy on logits).

    `-log sigmoid(real) - log(1 - sigmoid(fake))` = `softplus(-real) + softplus(fake)`.
    """
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def g_nonsaturating(fake_logits: Array) -> Array:
    """Non-saturating generator loss `-log sigmoid(fake)` (Goodfellow et al. 2014, sec. 3)."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def d_hinge(real_logits: Array, fake_logits: Array) -> Array:
    """Hinge discriminator loss `relu(1 - real) + relu(1 + fake)` (Lim & Ye 2017; SAGAN)."""
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def g_hinge(fake_logits: Array) -> Array:
    """Hinge generator loss `-fake`."""
    return -jnp.mean(fake_logits)


def d_wasserstein(real_logits: Array, fake_logits: Array) -> Array:
    """Wasserstein critic loss `fake - real` (add `gradient_penalty` for WGAN-GP)."""
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def g_wasserstein(fake_logits: Array) -> Array:
    """Wasserstein generator loss `-fake`."""
    return -jnp.mean(fake_logits)


def d_least_squares(real_logits: Array, fake_logits: Array) -> Array:
    """Least-squares discriminator loss with targets real=1, fake=0 (Mao et al. 2017, a=0 b=c=1)."""
    return 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_logits))


def g_least_squares(fake_logits: Array) -> Array:
    """Least-squares generator loss with target 1."""
    return 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


def _per_sample_sq_grad_norm(d_fn: Callable[[Array], Array], x: Array) -> Array:
    """`||d D(x_i) / d x_i||^2` for each sample: `[N, ...]` -> `[N]`.

    Gradient of the *sum* of logits: with no cross-sample coupling in D (no batch norm) the
    gradient of the sum w.r.t. `x_i` is the gradient of `D(x_i)` alone.
    """
    grads = jax.grad(lambda inputs: jnp.sum(d_fn(inputs)))(x)
    return jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=1)


def r1_penalty(d_fn: Callable[[Array], Array], real: Array) -> Array:
    """R1 penalty `E ||grad_x D(x)||^2` on real data (Mescheder et al. 2018).

    Multiply by `gamma / 2` in the D loss. `d_fn` maps inputs `[N, ...]` to logits `[N]`.
    """
    return jnp.mean(_per_sample_sq_grad_norm(d_fn, real))


def gradient_penalty(
    d_fn: Callable[[Array], Array], real: Array, fake: Array, alpha: Array
) -> Array:
    """WGAN-GP penalty `E (||grad D(x_hat)|| - 1)^2` at `x_hat = alpha real + (1 - alpha) fake`.

    Args:
        d_fn: inputs `[N, ...]` -> logits `[N]`.
        real, fake: `[N, ...]`.
        alpha: `[N]` mixing weights in [0, 1] (drawn by the caller so the step owns its RNG).
    """
    alpha = alpha.reshape((-1,) + (1,) * (real.ndim - 1))
    x_hat = alpha * real + (1.0 - alpha) * fake
    # Small epsilon inside the sqrt keeps the gradient finite where the norm is exactly zero.
    norms = jnp.sqrt(_per_sample_sq_grad_norm(d_fn, x_hat) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


def mse_reconstruction(target: Array, reconstruction: Array) -> Array:
    """Mean squared error between a clip and its reconstruction (the article's MSE term)."""
    if target.shape != reconstruction.shape:
        raise ValueError(
            f"mse_reconstruction: target shape {target.shape} != reconstruction shape "
            f"{reconstruction.shape}; pass arrays of the same shape."
        )
    return jnp.mean(jnp.square(target - reconstruction))


# name -> (D loss, G loss); the train step looks losses up here.
LOSSES: dict[str, tuple[Callable[[Array, Array], Array], Callable[[Array], Array]]] = {
    "nonsaturating": (d_logistic, g_nonsaturating),
    "hinge": (d_hinge, g_hinge),
    "wgan_gp": (d_wasserstein, g_wasserstein),
    "least_squares": (d_least_squares, g_least_squares),
}
