"""The pure GAN train step: `(state, batch, key) -> (state, metrics)`.

One step = `n_critic` D updates, then one G update against the new D, then the EMA of G.
The step does no I/O and closes over the models, the optimisers and a `StepConfig`.

Randomness: `key = fold_in(key, state.step)`, then named subkeys, so a resumed run draws the
same numbers as an uninterrupted one and no RNG state needs checkpointing.

Parallelism: under `jit` over a mesh the compiler inserts the all-reduces; noise is constrained
to the batch sharding (otherwise XLA replicates it and every device runs G on the whole batch).
With `axis_name` set, the step is the per-device body of a `pmap`: gradients, metrics and the
batch-norm statistics are averaged over that axis, and each device takes its slice of the same
global noise, so `pmap`, 1 device and N devices draw identical numbers.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax import lax

from gan_jax import losses
from gan_jax.state import GANState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Settings of the train step (hashable, so it can be closed over by `jit`).

    Attributes:
        loss: one of `losses.LOSSES`: "nonsaturating", "hinge", "wgan_gp", "least_squares".
        n_critic: D updates per G update; each sees the same real batch and fresh noise.
        r1_gamma: weight of the R1 penalty, added to the D loss as `r1_gamma / 2 * R1`; 0 = off.
        gp_weight: weight of the WGAN-GP gradient penalty (used by loss "wgan_gp" only).
        ema_decay: decay of the EMA of G's params; 0 makes `g_ema` equal `g_params`.
        data_key: the batch entry holding real samples (`"video"` for clips `[N, T, H, W, C]`).
    """

    loss: str = "nonsaturating"
    n_critic: int = 1
    r1_gamma: float = 0.0
    gp_weight: float = 10.0
    ema_decay: float = 0.999
    data_key: str = "video"

    def __post_init__(self):
        if self.loss not in losses.LOSSES:
            raise ValueError(f"loss={self.loss!r} is not one of {sorted(losses.LOSSES)}.")
        if self.n_critic < 1:
            raise ValueError(f"n_critic={self.n_critic} must be >= 1.")
        if self.r1_gamma < 0 or self.gp_weight < 0:
            raise ValueError("r1_gamma and gp_weight must be >= 0.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay={self.ema_decay} must be in [0, 1).")


def _with_axis_name(module: nn.Module, axis_name: str | None) -> nn.Module:
    """Binds batch-norm statistics to the pmap axis, for modules that have the setting."""
    if axis_name is not None and hasattr(module, "bn_axis_name"):
        return module.clone(bn_axis_name=axis_name)
    return module


def make_train_step(
    g: nn.Module,
    d: nn.Module,
    g_tx: optax.GradientTransformation,
    d_tx: optax.GradientTransformation,
    cfg: StepConfig = StepConfig(),
    *,
    data_sharding: jax.sharding.Sharding | None = None,
    axis_name: str | None = None,
) -> Callable[[GANState, Batch, jax.Array], tuple[GANState, Metrics]]:
    """Builds the pure train step.

    Args:
        g: generator, `z [N, g.z_dim]` -> samples `[N, ...]`.
        d: discriminator, samples `[N, ...]` -> logits `[N]`.
        g_tx, d_tx: optimisers of G and D.
        cfg: `StepConfig`.
        data_sharding: sharding of batch-major arrays (`NamedSharding(mesh, P("data"))`); noise
            drawn in the step is constrained to it. None on one device or under `pmap`.
        axis_name: set to the `pmap` axis name to get the per-device body of a `pmap` step.

    Returns:
        `train_step(state, batch, key) -> (state, metrics)` where `batch[cfg.data_key]` holds
        real samples `[N, ...]` (the global batch under `jit`, the device's share under `pmap`),
        `key` is the run's base PRNG key, and metrics is a flat dict of float32 scalars.
    """
    g = _with_axis_name(g, axis_name)
    d = _with_axis_name(d, axis_name)
    d_loss_fn, g_loss_fn = losses.LOSSES[cfg.loss]

    def global_normal(key: jax.Array, n: int, shape: tuple[int, ...]) -> jax.Array:
        """Noise `[n, *shape]` for this device's (or the mesh's) batch of n."""
        if axis_name is None:
            x = jax.random.normal(key, (n, *shape))
            if data_sharding is not None:
                x = lax.with_sharding_constraint(x, data_sharding)
            return x
        # pmap: draw the global batch's noise (cheap: it is only z) and keep this device's rows.
        num = lax.psum(1, axis_name)
        x = jax.random.normal(key, (n * num, *shape))
        return lax.dynamic_slice_in_dim(x, lax.axis_index(axis_name) * n, n, axis=0)

    def global_uniform(key: jax.Array, n: int) -> jax.Array:
        if axis_name is None:
            x = jax.random.uniform(key, (n,))
            if data_sharding is not None:
                x = lax.with_sharding_constraint(x, data_sharding)
            return x
        num = lax.psum(1, axis_name)
        x = jax.random.uniform(key, (n * num,))
        return lax.dynamic_slice_in_dim(x, lax.axis_index(axis_name) * n, n, axis=0)

    def mean_over_devices(tree: Any) -> Any:
        return tree if axis_name is None else lax.pmean(tree, axis_name)

    def apply_g(g_params, g_stats, z):
        """G in train mode: `[N, Z]` -> (samples, updated stats)."""
        variables = {"params": g_params, **g_stats}
        if not g_stats:
            return g.apply(variables, z, train=True), g_stats
        return g.apply(variables, z, train=True, mutable=list(g_stats))

    def apply_d(d_params, d_stats, x):
        """D in train mode: `[N, ...]` -> (logits `[N]`, updated stats)."""
        variables = {"params": d_params, **d_stats}
        if not d_stats:
            return d.apply(variables, x, train=True), d_stats
        return d.apply(variables, x, train=True, mutable=list(d_stats))

    def d_objective(d_params, d_stats, g_params, g_stats, real, key):
        z_key, alpha_key = jax.random.split(key)
        n = real.shape[0]
        # G's statistics are updated by the G step only.
        fake, _ = apply_g(g_params, g_stats, global_normal(z_key, n, (g.z_dim,)))
        fake = lax.stop_gradient(fake)
        real_logits, d_stats = apply_d(d_params, d_stats, real)
        fake_logits, d_stats = apply_d(d_params, d_stats, fake)
        loss = d_loss_fn(real_logits, fake_logits)
        metrics = {
            "d/loss": loss,
            "d/real_logit": jnp.mean(real_logits),
            "d/fake_logit": jnp.mean(fake_logits),
            # The article's "discriminator accuracy": real judged real, fake judged fake.
            "d/real_acc": jnp.mean((real_logits > 0).astype(jnp.float32)),
            "d/fake_acc": jnp.mean((fake_logits < 0).astype(jnp.float32)),
        }

        def d_fn(x):  # penalties: D with the current statistics, not updating them
            return apply_d(d_params, d_stats, x)[0]

        if cfg.r1_gamma > 0:
            r1 = losses.r1_penalty(d_fn, real)
            loss = loss + 0.5 * cfg.r1_gamma * r1
            metrics["d/r1"] = r1
        if cfg.loss == "wgan_gp":
            gp = losses.gradient_penalty(d_fn, real, fake, global_uniform(alpha_key, n))
            loss = loss + cfg.gp_weight * gp
            metrics["d/gp"] = gp
        metrics["d/total_loss"] = loss
        return loss, (d_stats, metrics)

    def g_objective(g_params, g_stats, d_params, d_stats, n, key):
        fake, g_stats = apply_g(g_params, g_stats, global_normal(key, n, (g.z_dim,)))
        # D's statistics are updated by the D step only.
        fake_logits, _ = apply_d(d_params, d_stats, fake)
        loss = g_loss_fn(fake_logits)
        return loss, (g_stats, {"g/loss": loss})

    def train_step(state: GANState, batch: Batch, key: jax.Array) -> tuple[GANState, Metrics]:
        if cfg.data_key not in batch:
            raise KeyError(
                f"batch has no {cfg.data_key!r} entry (keys: {sorted(batch)}); set "
                f"StepConfig.data_key to the entry that holds real samples."
            )
        real = batch[cfg.data_key]
        key = jax.random.fold_in(key, state.step)
        d_key, g_key = jax.random.split(key)

        d_params, d_opt, d_stats = state.d_params, state.d_opt, state.d_stats
        for i in range(cfg.n_critic):  # unrolled: n_critic is small and static
            (_, (d_stats, d_metrics)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(
                d_params, d_stats, state.g_params, state.g_stats, real, jax.random.fold_in(d_key, i)
            )
            d_grads, d_stats = mean_over_devices((d_grads, d_stats))
            d_updates, d_opt = d_tx.update(d_grads, d_opt, d_params)
            d_params = optax.apply_updates(d_params, d_updates)

        # Alternating updates: G trains against the D just updated.
        (_, (g_stats, g_metrics)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(
            state.g_params, state.g_stats, d_params, d_stats, real.shape[0], g_key
        )
        g_grads, g_stats = mean_over_devices((g_grads, g_stats))
        g_updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, g_updates)
        g_ema = optax.incremental_update(g_params, state.g_ema, step_size=1.0 - cfg.ema_decay)

        metrics = {
            **d_metrics,
            **g_metrics,
            "grad_norm/d": optax.tree.norm(d_grads),
            "grad_norm/g": optax.tree.norm(g_grads),
        }
        metrics = mean_over_devices(metrics)
        new_state = state.replace(
            step=state.step + 1,
            g_params=g_params,
            d_params=d_params,
            g_opt=g_opt,
            d_opt=d_opt,
            g_ema=g_ema,
            g_stats=g_stats,
            d_stats=d_stats,
        )
        return new_state, metrics

    return train_step
