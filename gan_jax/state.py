"""The GAN state: one pytree of arrays holding everything a train step changes.

Optimisers, `apply` functions and configs stay out of it (the step closes over them), so every
leaf is an array and Orbax saves the state as it is.
"""

from collections.abc import Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import augment as augmentation
from gan_jax.models import zero_latents
from gan_jax.objectives import Objective, Unconditional

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
            power-iteration vectors); `{}` when the model has none. With adaptive augmentation
            (ADA), `d_stats["augment"]` also holds its probability `p` and the running sum
            `rt_sum` (`gan_jax.augment.ada_init`); the train step keeps it away from D.
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
    *,
    objective: Objective | None = None,
    example_batch: Mapping[str, Any] | None = None,
    augment: augmentation.AugmentConfig | None = None,
) -> GANState:
    """Initialises G, D and both optimisers.

    Args:
        key: PRNG key (`jax.random.key`).
        g: generator module with `latent_shapes`, `(latents, cond, train=)` -> samples.
        d: discriminator module, `(x, cond, train=)` -> logits.
        g_tx, d_tx: the optimisers of G and D.
        objective: what G is conditioned on and what D judges (default: unconditional).
        example_batch: a batch shaped like the data's (`DataSpec.example_batch()`), from which
            the objective takes the conditioning; only needed by conditional objectives.
        augment: the step's augmentation; when adaptive (ADA), its state starts in
            `d_stats["augment"]` at p = `augment.p`. Without it the tree is as it always was,
            so checkpoints of runs without ADA keep their layout.

    Returns:
        A `GANState` at step 0 with `g_ema == g_params`.
    """
    objective = Unconditional() if objective is None else objective
    g_key, d_key = jax.random.split(key)
    cond = None
    if example_batch is not None:
        # Batch of 2 so that batch norm sees a non-degenerate batch at init.
        batch = {k: jnp.asarray(v)[:2] for k, v in example_batch.items()}
        cond, _ = objective.split(batch)
    latents = zero_latents(g.latent_shapes, 2)
    g_cond = objective.g_inputs(cond)
    # The classic threefry layout for the initial weights: XLA:CPU compiles the partitionable
    # one for seconds per 5-D kernel (measured: 9.6 s vs 1.4 s for a tiny video GAN). The
    # state is replicated, so nothing is lost; the stream is as deterministic as the other.
    with jax.threefry_partitionable(False):
        g_params, g_stats = _split_variables(g.init(g_key, latents, g_cond, train=False))
        sample = jax.eval_shape(
            lambda: g.apply({"params": g_params, **g_stats}, latents, g_cond, train=False)
        )
        x, d_cond = objective.d_inputs(jnp.zeros(sample.shape, sample.dtype), cond)
        d_params, d_stats = _split_variables(d.init(d_key, x, d_cond, train=False))
    if augment is not None and augment.adaptive:
        if augmentation.STATE_KEY in d_stats:
            raise ValueError(
                f"D has a variable collection named {augmentation.STATE_KEY!r}, the name ADA's "
                "state takes in d_stats; rename that collection"
            )
        d_stats = {**d_stats, augmentation.STATE_KEY: augmentation.ada_init(augment)}
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


def sample(
    g: nn.Module, state: GANState, latents: Any, cond: Any = None, *, ema: bool = True
) -> jax.Array:
    """Samples from G in inference mode (running statistics), from the EMA weights by default.

    Args:
        g: the generator module.
        state: a `GANState`.
        latents: G's latents, shaped like `g.latent_shapes` behind a batch axis `[N, ...]`.
        cond: what G is conditioned on (the objective's `g_inputs`), None if nothing.
        ema: use `g_ema` (default) or the raw `g_params`.

    Returns:
        G's output, e.g. clips `[N, T, H, W, C]` in [-1, 1].
    """
    params = state.g_ema if ema else state.g_params
    return g.apply({"params": params, **state.g_stats}, latents, cond, train=False)
