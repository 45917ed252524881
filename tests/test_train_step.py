"""The pure train step: one step's effects, the trainer logic with a fixed D, no retracing."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import TINY_CLIP, tiny_video_models

from gan_jax.augment import AugmentConfig
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
    latents = {"z": jax.random.normal(jax.random.key(2), (3, g.z_dim))}
    clips = jax.jit(lambda state: sample(g, state, latents))(new)  # op by op: 2.5 s more
    assert clips.shape == (3, *TINY_CLIP)


class ConstantD(nn.Module):
    """A fake D whose logits ignore the input: G gets no gradient through it."""

    logit: float = 0.0

    @nn.compact
    def __call__(self, x, cond=None, train=True):
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
        # Its loss is unit-tested in test_losses.py; trained in the slow run only (suite time).
        pytest.param(StepConfig(loss="least_squares"), marks=pytest.mark.slow),
        StepConfig(loss="wasserstein", n_critic=2, penalties={"gp": 10.0}),
        StepConfig(loss="nonsaturating", penalties={"r1": 1.0}),
        StepConfig(loss="rpgan", penalties={"r1": 1.0, "r2": 1.0}),
    ],
    ids=lambda c: c.loss + "".join(f"_{name}" for name, _ in c.penalties),
)
def test_every_loss_trains(cfg):
    g, d = tiny_video_models(norm="none", spectral_norm=cfg.loss == "hinge")
    g_tx, d_tx = optax.adam(1e-3), optax.adam(1e-3)
    state = _init(g, d, g_tx, d_tx)
    new, metrics = jax.jit(make_train_step(g, d, g_tx, d_tx, cfg))(
        state, _batch(), jax.random.key(1)
    )
    assert all(np.isfinite(v) for v in metrics.values())
    penalties = dict(cfg.penalties)
    if "gp" in penalties:
        assert float(metrics["d/gp"]) > 0
    if "r1" in penalties:
        assert float(metrics["d/r1"]) > 0
        # R1 and R2 enter as gamma / 2 times the squared gradient norm; GP as lambda times it.
        expected = metrics["d/loss"] + sum(
            0.5 * penalties[name] * metrics[f"d/{name}"]
            for name in ("r1", "r2")
            if name in penalties
        )
        np.testing.assert_allclose(metrics["d/total_loss"], expected, rtol=1e-5)
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
    with pytest.raises(ValueError, match="unknown loss 'wgan'; known: hinge"):
        StepConfig(loss="wgan")
    with pytest.raises(ValueError, match="unknown penalty 'r3'"):
        StepConfig(penalties={"r3": 1.0})
    with pytest.raises(ValueError, match="n_critic"):
        StepConfig(n_critic=0)
    g, d, g_tx, d_tx = tiny_gan
    state = _init(g, d, g_tx, d_tx)
    with pytest.raises(KeyError, match="'video'"):
        make_train_step(g, d, g_tx, d_tx)(state, {"clips": _batch()["video"]}, jax.random.key(0))


class ConstantClipG(nn.Module):
    """A fake G that ignores its noise: every sample is one learned clip `c` `[T, H, W, C]`.

    It has the interface of `VideoGenerator` (`latent_shapes`; `(latents, cond, train) ->
    [N, T, H, W, C]`) but no randomness reaches its output, so the step's noise draws cannot
    change a number.
    """

    clip_shape: tuple[int, int, int, int] = TINY_CLIP
    z_dim: int = 8
    level: float = 0.5  # initial value of every clip entry

    @property
    def latent_shapes(self):
        return {"z": (self.z_dim,)}

    @nn.compact
    def __call__(self, latents, cond=None, train=True):
        c = self.param("clip", nn.initializers.constant(self.level), self.clip_shape)
        return jnp.broadcast_to(c, (latents["z"].shape[0], *self.clip_shape))


class LinearMeanD(nn.Module):
    """A fake D with two scalar params: logit = w * mean(clip) + b, `[N, ...]` -> `[N]`."""

    w_init: float = 1.0
    b_init: float = 0.0

    @nn.compact
    def __call__(self, x, cond=None, train=True):
        w = self.param("w", nn.initializers.constant(self.w_init), ())
        b = self.param("b", nn.initializers.constant(self.b_init), ())
        return w * jnp.mean(x, axis=tuple(range(1, x.ndim))) + b


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _linear_d_sgd_step(w, b, real_means, fake_mean, lr):
    """One SGD step of `LinearMeanD` on the logistic D loss, written out by hand.

    L(w, b) = mean_i softplus(-(w r_i + b)) + softplus(w f + b), with r_i the means of the real
    clips `[N]` and f the mean of the (identical) fake clips.
    """
    s_real = _sigmoid(-(w * real_means + b))  # d/du softplus(-u) = -sigmoid(-u)
    s_fake = _sigmoid(w * fake_mean + b)  # d/du softplus(u) = sigmoid(u)
    dw = np.mean(-s_real * real_means) + s_fake * fake_mean
    db = np.mean(-s_real) + s_fake
    return w - lr * dw, b - lr * db


@pytest.mark.parametrize("n_critic", [1, 2])
def test_generator_trains_against_the_discriminator_just_updated(n_critic):
    """G's loss and update use D after its `n_critic` updates of this step, not the D the step
    started with (README: "n_critic D updates, then G against the new D").

    Everything is computed by hand: G outputs a constant clip (mean f), D is linear in the clip
    mean, both nets use SGD, and the non-saturating losses are written out in numpy.
    """
    lr_d, lr_g, f0, w0, b0 = 1.0, 0.5, 0.5, 1.0, 0.0
    g, d = ConstantClipG(level=f0), LinearMeanD(w_init=w0, b_init=b0)
    state = _init(g, d, optax.sgd(lr_g), optax.sgd(lr_d))
    rng = np.random.default_rng(0)
    levels = np.array([-0.7, -0.3, 0.1, 0.6])  # real clips `[4, T, H, W, C]` of distinct means
    real = (levels[:, None, None, None, None] + rng.uniform(-0.2, 0.2, (4, *TINY_CLIP))).astype(
        np.float32
    )
    real_means = real.astype(np.float64).mean(axis=(1, 2, 3, 4))
    step = jax.jit(
        make_train_step(g, d, optax.sgd(lr_g), optax.sgd(lr_d), StepConfig(n_critic=n_critic))
    )
    new, metrics = step(state, {"video": jnp.asarray(real)}, jax.random.key(1))

    # D's n_critic updates against the same real batch and the same (constant) fake clip.
    history = [(w0, b0)]
    for _ in range(n_critic):
        history.append(_linear_d_sgd_step(*history[-1], real_means, f0, lr_d))
    (w_new, b_new), (w_old, b_old) = history[-1], history[-2]
    np.testing.assert_allclose(new.d_params["w"], w_new, rtol=1e-5)
    np.testing.assert_allclose(new.d_params["b"], b_new, rtol=1e-5, atol=1e-6)

    expected_g_loss = _softplus(-(w_new * f0 + b_new))
    # The test only means something if a D one update behind gives G a clearly different loss.
    for w, b in history[:-1]:
        assert abs(_softplus(-(w * f0 + b)) - expected_g_loss) > 0.03
    np.testing.assert_allclose(metrics["g/loss"], expected_g_loss, rtol=1e-5)

    # G's SGD step: dL_G/dc = -sigmoid(-(w f + b)) * w / P for each of the P clip entries.
    grad = -_sigmoid(-(w_new * f0 + b_new)) * w_new / math.prod(TINY_CLIP)
    np.testing.assert_allclose(new.g_params["clip"], f0 - lr_g * grad, rtol=1e-5)
    if n_critic == 1:  # D's loss is logged at the params its (only) update started from
        expected_d_loss = np.mean(_softplus(-(w_old * real_means + b_old))) + _softplus(
            w_old * f0 + b_old
        )
        np.testing.assert_allclose(metrics["d/loss"], expected_d_loss, rtol=1e-5)


@pytest.mark.parametrize(
    "cfg",
    [
        StepConfig(),
        StepConfig(loss="hinge", penalties={"r1": 1.0, "r2": 0.5}, penalty_every=2),
        StepConfig(
            loss="least_squares",
            n_critic=2,
            augment=AugmentConfig(policy="translation,cutout", p=0.5),
        ),
    ],
    ids=["nonsaturating", "hinge+lazy_r1_r2", "least_squares+augment+n_critic"],
)
def test_d_passes_apart_take_the_same_step(tiny_gan, monkeypatch, cfg):
    """Past `_D_PASSES_APART_BYTES` of real clips, D's update takes the gradients of its real
    pass before G and its fake pass run (a separable loss, so the two are independent): the
    same step to rounding, the same metrics, the same random numbers."""
    from gan_jax import train_step as train_step_module

    g, d, _, _ = tiny_gan
    # SGD: Adam would turn round-off in near-zero gradients into +-lr updates.
    g_tx = d_tx = optax.sgd(1e-2, momentum=0.9)
    state = _init(g, d, g_tx, d_tx)
    results, jaxprs = {}, {}
    for name, limit in (("joint", 2**40), ("apart", 0)):
        monkeypatch.setattr(train_step_module, "_D_PASSES_APART_BYTES", limit)
        monkeypatch.setattr(train_step_module, "_D_PASSES_APART_PENALISED_BYTES", limit)
        step_fn = make_train_step(g, d, g_tx, d_tx, cfg)
        jaxprs[name] = str(jax.make_jaxpr(step_fn)(state, _batch(), jax.random.key(1)))
        new = state
        for i in range(2):
            new, metrics = jax.jit(step_fn)(new, _batch(seed=i), jax.random.key(i))
        results[name] = (new, metrics)
    assert jaxprs["joint"] != jaxprs["apart"]  # the other route was taken
    (joint, joint_metrics), (apart, apart_metrics) = results["joint"], results["apart"]
    assert sorted(apart_metrics) == sorted(joint_metrics)
    assert _trees_differ(apart.d_params, state.d_params)
    for key, value in joint_metrics.items():
        np.testing.assert_allclose(apart_metrics[key], value, rtol=1e-4, atol=1e-6, err_msg=key)
    for got, want in zip(jax.tree.leaves(apart), jax.tree.leaves(joint)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_which_d_updates_take_their_passes_apart(monkeypatch):
    """Only a separable loss, without D's own classifier, on inputs past the size (a larger one
    with penalties), on CPU."""
    from gan_jax import train_step as train_step_module
    from gan_jax.losses import LOSSES

    passes_apart = train_step_module._passes_apart
    small_bytes = train_step_module._D_PASSES_APART_BYTES
    big_bytes = train_step_module._D_PASSES_APART_PENALISED_BYTES
    assert small_bytes < big_bytes
    big = jnp.zeros((big_bytes // 4,), jnp.float32)
    middle = jnp.zeros((small_bytes // 4,), jnp.float32)
    small = jnp.zeros((16,), jnp.float32)
    for name in ("nonsaturating", "hinge", "wasserstein", "least_squares"):
        loss = LOSSES.get(name)
        assert passes_apart(loss, 0.0, False, big) and passes_apart(loss, 0.0, True, big), name
        assert passes_apart(loss, 0.0, False, middle), name
        assert not passes_apart(loss, 0.0, True, middle), name  # penalised: the larger size
        assert not passes_apart(loss, 0.0, False, small), name
        assert not passes_apart(loss, 1.0, False, big), name  # D's classifier
    assert not passes_apart(LOSSES.get("rpgan"), 0.0, False, big)  # not separable
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not passes_apart(LOSSES.get("nonsaturating"), 0.0, False, big)


def test_a_large_discriminator_updates_as_one_unit(tiny_gan, monkeypatch):
    """Past `_D_UPDATE_UNIT_BYTES` of D parameters, D's update runs inside an always-taken
    conditional (so XLA finishes it before the G step): the same step, to rounding."""
    from gan_jax import train_step as train_step_module

    g, d, _, _ = tiny_gan
    # SGD: Adam would turn round-off in near-zero gradients into +-lr updates.
    g_tx = d_tx = optax.sgd(1e-2, momentum=0.9)
    state = _init(g, d, g_tx, d_tx)
    results = {}
    for name, limit in (("plain", 2**40), ("unit", 0)):
        monkeypatch.setattr(train_step_module, "_D_UPDATE_UNIT_BYTES", limit)
        step_fn = make_train_step(g, d, g_tx, d_tx, StepConfig())
        jaxpr = str(jax.make_jaxpr(step_fn)(state, _batch(), jax.random.key(1)))
        assert ("cond[" in jaxpr) == (name == "unit"), name
        new = state
        for i in range(2):
            new, metrics = jax.jit(step_fn)(new, _batch(seed=i), jax.random.key(i))
        results[name] = (new, metrics)
    (plain, plain_metrics), (unit, unit_metrics) = results["plain"], results["unit"]
    assert _trees_differ(unit.d_params, state.d_params)
    for key in ("d/loss", "g/loss", "grad_norm/d"):
        np.testing.assert_allclose(unit_metrics[key], plain_metrics[key], rtol=1e-4, err_msg=key)
    for got, want in zip(jax.tree.leaves(unit), jax.tree.leaves(plain)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
