"""Standing statistics: the EMA generator's batch-norm statistics, measured on itself (BigGAN).

A generator with batch norm is sampled in inference mode, where each norm uses its running
statistics. Those are the trained G's (an exponential average over its last training batches),
while the weights sampled are G's EMA: the longer the EMA, the more the two disagree, and the
samples wash out (dim, blurred, off-colour objects). BigGAN (Brock et al. 2019, appendix C)
measures "standing statistics" instead: the sampled G runs `num_batches` batches in training
mode, on noise and conditions drawn as the sampler draws them, and the mean of the batches'
statistics replaces the running ones. Set `ema.standing_stats` to that number of batches
(0: off, the running statistics as trained). The batches have the run's `batch_size` (the
statistics of a norm depend on it), rounded up to a multiple of the device count.

Only the sampled state changes (samples, evaluation, `gan-jax sample` and `eval`): training and
checkpoints keep the running statistics, so a run trains and resumes exactly as without it.
The statistics are drawn from a key fixed by the run's seed, so a checkpoint always gives the
same ones. Works for any statistic kept as an exponential average (`new = m * old + (1 - m) *
batch`, flax's `BatchNorm` with any momentum); a G without batch norm is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from gan_jax import parallel
from gan_jax.models import draw_latents
from gan_jax.state import GANState

# Salt of the key of the standing statistics' noise, distinct from the sampler's.
_STANDING_SALT = 0x57A7

StandingStats = Callable[[GANState], GANState]


def _updated(g, g_params, g_stats, latents, g_cond, start: float):
    """G's non-parameter collections after one training-mode pass from `start` everywhere."""
    stats = jax.tree.map(lambda x: jnp.full_like(x, start), g_stats)
    _, new = g.apply(
        {"params": g_params, **stats}, latents, g_cond, train=True, mutable=list(g_stats)
    )
    return new


def averaging_weights(g, g_params, g_stats, latents, g_cond):
    """`1 - m` of each entry of `g_stats` (its update is `new = m * old + (1 - m) * batch`), 0
    for entries that training mode leaves alone: the difference of one pass from unit and one
    from zero statistics, whatever the momentum. Any batch gives them (a small one will do)."""
    from_zero = _updated(g, g_params, g_stats, latents, g_cond, 0.0)
    return _weights(from_zero, _updated(g, g_params, g_stats, latents, g_cond, 1.0))


def _weights(from_zero, from_one):
    return jax.tree.map(lambda zero, one: 1.0 - (one - zero), from_zero, from_one)


def batch_statistics(g, g_params, g_stats, latents, g_cond, weights=None):
    """The statistics of one batch, for every exponentially averaged entry of `g_stats`.

    One training-mode pass from zero statistics gives `(1 - m) * batch` for each entry;
    dividing by `weights` (`averaging_weights`, computed on these latents when None) gives the
    batch's statistic. Entries that training mode leaves alone keep their value.

    Args:
        g: the generator module.
        g_params, g_stats: its parameters and non-parameter collections.
        latents: G's latents `[N, ...]`.
        g_cond: the objective's G input for those samples (None when unconditional).
        weights: `averaging_weights` of G, or None.

    Returns:
        A tree like `g_stats`.
    """
    from_zero = _updated(g, g_params, g_stats, latents, g_cond, 0.0)
    if weights is None:  # the pass from zero serves both
        weights = _weights(from_zero, _updated(g, g_params, g_stats, latents, g_cond, 1.0))

    def batch_value(old, zero, weight):
        averaged = weight > 1e-6
        return jnp.where(averaged, zero / jnp.where(averaged, weight, 1.0), old)

    return jax.tree.map(batch_value, g_stats, from_zero, weights)


def make_standing_stats(cfg, g, objective, mesh: Mesh) -> StandingStats:
    """`standing(state) -> state` with `g_stats` replaced by the standing statistics of G
    (`g`, the run's generator or one built for another clip length) with the EMA weights.

    The identity when `cfg.ema.standing_stats` is 0 (or absent: runs saved before the key) or
    when G keeps no statistics. `build.validate` refuses the setting for objectives that
    condition G on real data (video prediction), whose conditions it cannot draw.
    """
    num_batches = int(cfg.ema.get("standing_stats", 0))
    if not num_batches:
        return lambda state: state
    num_devices = mesh.devices.size
    batch_size = int(cfg.batch_size) + (-int(cfg.batch_size)) % num_devices
    data = parallel.batch_sharding(mesh)
    base_key = jax.random.fold_in(jax.random.key(int(cfg.seed)), _STANDING_SALT)

    def batch(key, size):
        """G's latents and input for `size` samples, sharded over the batch."""

        def normal(k, shape):
            x = jax.random.normal(k, (size, *shape))
            return jax.lax.with_sharding_constraint(x, data)

        latents = draw_latents(key, g.latent_shapes, normal)
        cond = objective.sample_cond(jax.random.fold_in(key, 1), size)
        cond = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, data), cond)
        return latents, objective.g_inputs(cond)

    @jax.jit
    def mean_statistics(g_ema, g_stats):
        # The momenta from one small batch, so that each batch below takes one pass of G.
        weights = averaging_weights(g, g_ema, g_stats, *batch(base_key, num_devices))

        def add(total, i):
            latents, g_cond = batch(jax.random.fold_in(base_key, i), batch_size)
            stats = batch_statistics(g, g_ema, g_stats, latents, g_cond, weights)
            return jax.tree.map(jnp.add, total, stats), None

        zeros = jax.tree.map(jnp.zeros_like, g_stats)
        total, _ = jax.lax.scan(add, zeros, jnp.arange(num_batches))
        # Entries training mode leaves alone come back as they were (each batch gives them).
        return jax.tree.map(lambda x, old: (x / num_batches).astype(old.dtype), total, g_stats)

    def standing(state: GANState) -> GANState:
        if not jax.tree.leaves(state.g_stats):
            return state
        return state.replace(g_stats=mean_statistics(state.g_ema, state.g_stats))

    return standing
