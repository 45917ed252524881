"""The classic adversarial losses, pure functions of D's logits.

Every loss returns a float32 scalar averaged over the batch; logits are `[M]`. D minimises the
`d_*` losses and G the `g_*` losses; G losses take `(real_logits, fake_logits)` like D's, and
these ignore `real_logits`.
"""

import jax
import jax.numpy as jnp

from gan_jax.losses.base import LOSSES, Loss

Array = jax.Array


def d_logistic(real_logits: Array, fake_logits: Array) -> Array:
    """Standard GAN discriminator loss (binary cross-entropy on logits).

    `-log sigmoid(real) - log(1 - sigmoid(fake))` = `softplus(-real) + softplus(fake)`.
    """
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def g_nonsaturating(real_logits: Array | None, fake_logits: Array) -> Array:
    """Non-saturating generator loss `-log sigmoid(fake)` (Goodfellow et al. 2014, sec. 3)."""
    del real_logits
    return jnp.mean(jax.nn.softplus(-fake_logits))


def d_hinge(real_logits: Array, fake_logits: Array) -> Array:
    """Hinge discriminator loss `relu(1 - real) + relu(1 + fake)` (Lim & Ye 2017; SAGAN)."""
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def g_hinge(real_logits: Array | None, fake_logits: Array) -> Array:
    """Hinge generator loss `-fake`."""
    del real_logits
    return -jnp.mean(fake_logits)


def d_wasserstein(real_logits: Array, fake_logits: Array) -> Array:
    """Wasserstein critic loss `fake - real` (add the `gp` penalty for WGAN-GP)."""
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def g_wasserstein(real_logits: Array | None, fake_logits: Array) -> Array:
    """Wasserstein generator loss `-fake`."""
    del real_logits
    return -jnp.mean(fake_logits)


def d_least_squares(real_logits: Array, fake_logits: Array) -> Array:
    """Least-squares discriminator loss with targets real=1, fake=0 (Mao et al. 2017, a=0 b=c=1)."""
    return 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_logits))


def g_least_squares(real_logits: Array | None, fake_logits: Array) -> Array:
    """Least-squares generator loss with target 1."""
    del real_logits
    return 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


NONSATURATING = LOSSES.register(
    "nonsaturating", Loss(d_logistic, g_nonsaturating, d_separable=True)
)
HINGE = LOSSES.register("hinge", Loss(d_hinge, g_hinge, d_separable=True))
WASSERSTEIN = LOSSES.register("wasserstein", Loss(d_wasserstein, g_wasserstein, d_separable=True))
LEAST_SQUARES = LOSSES.register(
    "least_squares", Loss(d_least_squares, g_least_squares, d_separable=True)
)
