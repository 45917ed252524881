"""The relativistic pairing loss, RpGAN (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024).

Each fake sample is paired with the real sample of the same row of the batch, and D is trained
to rank the real one above it: `softplus(-(D(real) - D(fake)))` for D, the mirror
`softplus(-(D(fake) - D(real)))` for G. Unlike the standard loss, its minimax problem has no
mode-dropping local optima (R3GAN, sec. 2.1); with the R1 and R2 penalties
(`penalty.r1 = penalty.r2 = gamma`) it is R3GAN's objective. G's loss reads the real logits.
"""

import jax
import jax.numpy as jnp

from gan_jax.losses.base import Loss

Array = jax.Array


def d_rpgan(real_logits: Array, fake_logits: Array) -> Array:
    """`mean softplus(fake - real)`, each fake paired with the real of its row."""
    return jnp.mean(jax.nn.softplus(fake_logits - real_logits))


def g_rpgan(real_logits: Array, fake_logits: Array) -> Array:
    """`mean softplus(real - fake)`: G raises each fake above the real of its row."""
    return jnp.mean(jax.nn.softplus(real_logits - fake_logits))


LOSS = Loss(d_rpgan, g_rpgan, g_needs_real=True)
