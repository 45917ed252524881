"""The pure train step: one step's effects, the trainer logic with a fixed D, no retracing."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import TINY_CLIP, tiny_video_models

from gan_jax.state import GANState, create_state, sample
from gan_jax.train_step import StepConfig, make_train_step


def _init(g, d, g_tx, d_tx):
    """create_state compiled once, rather than run op by op."""
    return jax.jit(lambda k: create_state(k, g, d, g_tx, d_tx))(jax.random.key(0))


def _batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return {"video": jnp.asarray(rng.uniform(-1, 1, (n, *TINY_CLIP)).astype(np.float32))}


def _trees_differ(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_one_step_updates_everything(tiny_gan):
    g, d, g_tx, d_tx = tiny_gan
    state = _init(g, d, g_tx, d_tx)
    step = jax.jit(make_train_step(g, d, g_tx, d_tx, StepConfig(ema_decay=0.5)))
    new, metrics = step(state, _batch(), jax.random.key(1))
    assert int(new.step) == 1
    for name in ("d/loss", "g/loss", "d/real_acc", "d/fake_acc", "grad_norm/d", "grad_norm/g"):
        assert np.isfinite(metrics[name]), name
    assert 0.0 <= metrics["d/real_acc"] <= 1.0
    assert _trees_differ(new.g_params, state.g_params)
    assert _trees_differ(new.d_params, state.d_params)
    assert _trees_differ(new.d_stats, state.d_stats)  # batch-norm running statistics moved
    # EMA with decay 0.5 lies half way between the old and the new params.
    for ema, old, cur in zip(
        jax.tree.leaves(new.g_ema), jax.tree.leaves(state.g_params), jax.tree.leaves(new.g_params)
    ):
        np.testing.assert_allclose(ema, 0.5 * old + 0.5 * cur, rtol=1e-6, atol=1e-7)
    clips = sample(g, new, jax.random.normal(jax.random.key(2), (3, g.z_dim)))
    assert clips.shape == (3, *TINY_CLIP)


class ConstantD(nn.Module):
    """A fake D whose logits ignore the input: G gets no gradient through it."""

    logit: float = 0.0

    @nn.compact
    def __call__(self, x, train=True):
        b = self.param("b", nn.initializers.constant(self.logit), ())
        return jnp.zeros((x.shape[0],)) + b


def test_trainer_logic_with_a_fixed_discriminator():
    g, _ = tiny_video_models()
    d = ConstantD(logit=0.0)
    g_tx, d_tx = optax.sgd(0.1), optax.sgd(0.1)
    state = _init(g, d, g_tx, d_tx)
    step = jax.jit(make_train_step(g, d, g_tx, d_tx, StepConfig(n_critic=3)))
    new, metrics = step(state, _batch(), jax.random.key(1))
    # Logit 0: each D term is log 2; no sample is judged correctly (0 is neither > 0 nor < 0).
    np.testing.assert_allclose(metrics["d/loss"], 2 * math.log(2), rtol=1e-6)
    assert float(metrics["d/real_acc"]) == 0.0 and float(metrics["d/fake_acc"]) == 0.0
    # dL/db = 0.5 - 0.5 at b = 0: D does not move, and G gets a zero gradient.
    assert float(metrics["grad_norm/g"]) == 0.0
    assert not _trees_differ(new.g_params, state.g_params)
    # G's loss is computed against the D after its 3 updates (here unchanged).
    np.testing.assert_allclose(metrics["g/loss"], math.log(2), rtol=1e-6)


def test_n_critic_counts_discriminator_updates(tiny_gan):
    g, d, _, _ = tiny_gan
    g_tx, d_tx = optax.adam(1e-3), optax.adam(1e-3)
    state = _init(g, d, g_tx, d_tx)
    step = jax.jit(make_train_step(g, d, g_tx, d_tx, StepConfig(n_critic=3)))
    new, _ = step(state, _batch(), jax.random.key(1))
    assert int(new.d_opt[0].count) == 3 and int(new.g_opt[0].count) == 1


@pytest.mark.parametrize(
    "cfg",
    [
        StepConfig(loss="hinge"),
        StepConfig(loss="least_squares"),
        StepConfig(loss="wgan_gp", n_critic=2),
        StepConfig(loss="nonsaturating", r1_gamma=1.0),
    ],
    ids=lambda c: c.loss + ("_r1" if c.r1_gamma else ""),
)
def test_every_loss_trains(cfg):
    g, d = tiny_video_models(norm="none", spectral_norm=cfg.loss == "hinge")
    g_tx, d_tx = optax.adam(1e-3), optax.adam(1e-3)
    state = _init(g, d, g_tx, d_tx)
    new, metrics = jax.jit(make_train_step(g, d, g_tx, d_tx, cfg))(
        state, _batch(), jax.random.key(1)
    )
    assert all(np.isfinite(v) for v in metrics.values())
    if cfg.loss == "wgan_gp":
        assert float(metrics["d/gp"]) > 0
    if cfg.r1_gamma:
        assert float(metrics["d/r1"]) > 0
        np.testing.assert_allclose(
            metrics["d/total_loss"], metrics["d/loss"] + 0.5 * metrics["d/r1"], rtol=1e-5
        )
    assert _trees_differ(new.g_params, state.g_params)


def test_traced_once_and_state_donated(tiny_gan):
    g, d, g_tx, d_tx = tiny_gan
    state = _init(g, d, g_tx, d_tx)
    step = jax.jit(make_train_step(g, d, g_tx, d_tx), donate_argnums=(0,))
    key = jax.random.key(1)
    for i in range(3):
        old_leaf = jax.tree.leaves(state.g_params)[0]
        state, _ = step(state, _batch(seed=i), key)
        assert old_leaf.is_deleted()  # donated: the old buffer was reused
    assert step._cache_size() == 1
    assert isinstance(state, GANState) and int(state.step) == 3


def test_bad_config_and_batch_are_named(tiny_gan):
    with pytest.raises(ValueError, match="loss='wgan'"):
        StepConfig(loss="wgan")
    with pytest.raises(ValueError, match="n_critic"):
        StepConfig(n_critic=0)
    g, d, g_tx, d_tx = tiny_gan
    state = _init(g, d, g_tx, d_tx)
    with pytest.raises(KeyError, match="'video'"):
        make_train_step(g, d, g_tx, d_tx)(state, {"clips": _batch()["video"]}, jax.random.key(0))
