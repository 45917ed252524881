"""The GAN state: one pytree of arrays holding everything a train step changes.

Optimisers, `apply` functions and configs stay out of it (the step closes over them), so every
leaf is an array and Orbax saves the state as it is.
"""

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

Params = Any
Collections = dict[str, Any]  # non-parameter variables, e.g. {"batch_stats": ...}; may be {}


class GANState(flax.struct.PyTreeNode):
    """Everything a GAN train step reads and writes.

    Attributes:
        step: int32 scalar, number of completed steps.
        g_params, d_params: parameters of G and D.
        g_opt, d_opt: the states of two separate optax optimisers.
        g_ema: exponential moving average of `g_params`, used for samples and evaluation.
        g_stats, d_stats: non-parameter variables (batch-norm running statistics, spectral-norm
            power-iteration vectors); `{}` when the model has none.
    """

    step: jax.Array
    g_params: Params
    d_params: Params
    g_opt: optax.OptState
    d_opt: optax.OptState
    g_ema: Params
    g_stats: Collections
    d_stats: Collections


def _split_variables(variables: Collections) -> tuple[Params, Collections]:
    variables = dict(variables)
    params = variables.pop("params")
    return params, variables


def create_state(
    key: jax.Array,
    g: nn.Module,
    d: nn.Module,
    g_tx: optax.GradientTransformation,
    d_tx: optax.GradientTransformation,
) -> GANState:
    """Initialises G, D and both optimisers.

    Args:
        key: PRNG key (`jax.random.key`).
        g: generator module with a `z_dim` attribute, `z [N, z_dim]` -> samples `[N, ...]`.
        d: discriminator module, samples `[N, ...]` -> logits `[N]`.
        g_tx, d_tx: the optimisers of G and D.

    Returns:
        A `GANState` at step 0 with `g_ema == g_params`.
    """
    g_key, d_key = jax.random.split(key)
    # Batch of 2 so that batch norm sees a non-degenerate batch at init.
    z = jnp.zeros((2, g.z_dim), jnp.float32)
    # The classic threefry layout for the initial weights: XLA:CPU compiles the partitionable
    # one for seconds per 5-D kernel (measured: 9.6 s vs 1.4 s for a tiny video GAN). The
    # state is replicated, so nothing is lost; the stream is as deterministic as the other.
    with jax.threefry_partitionable(False):
        g_params, g_stats = _split_variables(g.init(g_key, z, train=False))
        sample = jax.eval_shape(lambda: g.apply({"params": g_params, **g_stats}, z, train=False))
        d_params, d_stats = _split_variables(
            d.init(d_key, jnp.zeros(sample.shape, sample.dtype), train=False)
        )
    return GANState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_params,
        d_params=d_params,
        g_opt=g_tx.init(g_params),
        d_opt=d_tx.init(d_params),
        g_ema=jax.tree.map(jnp.copy, g_params),
        g_stats=g_stats,
        d_stats=d_stats,
    )


def sample(g: nn.Module, state: GANState, z: jax.Array, *, ema: bool = True) -> jax.Array:
    """Samples from G in inference mode (running statistics), from the EMA weights by default.

    Args:
        g: the generator module.
        state: a `GANState`.
        z: noise `[N, z_dim]`.
        ema: use `g_ema` (default) or the raw `g_params`.

    Returns:
        G's output, e.g. clips `[N, T, H, W, C]` in [-1, 1].
    """
    params = state.g_ema if ema else state.g_params
    return g.apply({"params": params, **state.g_stats}, z, train=False)
