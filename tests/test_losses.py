"""Losses and penalties against values worked out by hand, the registries that find them by name,
and the validation of the `loss` and `penalty` config groups."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import config_dict

from gan_jax import losses
from gan_jax.config import ConfigError
from gan_jax.losses import LOSSES, PENALTIES, Loss, Penalty
from gan_jax.losses import rpgan as rpgan_module

LOG2 = math.log(2.0)
REAL = jnp.array([0.5, 2.0])
FAKE = jnp.array([-2.0, 0.5])
BUILT_IN_LOSSES = ("nonsaturating", "hinge", "wasserstein", "least_squares", "rpgan")
BUILT_IN_PENALTIES = ("r1", "r2", "gp")


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_logistic_and_nonsaturating():
    real, fake = jnp.array([0.0, 2.0]), jnp.array([0.0, -1.0])
    # softplus(-0) = log 2, softplus(-2) = log(1 + e^-2), softplus(-1) = log(1 + e^-1)
    expected_d = (LOG2 + math.log1p(math.exp(-2))) / 2 + (LOG2 + math.log1p(math.exp(-1))) / 2
    np.testing.assert_allclose(losses.d_logistic(real, fake), expected_d, rtol=1e-6)
    np.testing.assert_allclose(losses.d_logistic(real, fake), 0.913242, rtol=1e-5)
    expected_g = (LOG2 + math.log1p(math.e)) / 2  # softplus(0), softplus(1)
    np.testing.assert_allclose(losses.g_nonsaturating(None, fake), expected_g, rtol=1e-6)


def test_hinge():
    # relu(1 - [0.5, 2]) = [0.5, 0] -> 0.25; relu(1 + [-2, 0.5]) = [0, 1.5] -> 0.75
    np.testing.assert_allclose(losses.d_hinge(REAL, FAKE), 1.0, rtol=1e-6)
    np.testing.assert_allclose(losses.g_hinge(None, FAKE), 0.75, rtol=1e-6)


def test_wasserstein():
    np.testing.assert_allclose(losses.d_wasserstein(REAL, FAKE), -0.75 - 1.25, rtol=1e-6)
    np.testing.assert_allclose(losses.g_wasserstein(None, FAKE), 0.75, rtol=1e-6)


def test_least_squares():
    # 0.5 * mean([0.25, 1]) + 0.5 * mean([4, 0.25]) = 0.3125 + 1.0625
    np.testing.assert_allclose(losses.d_least_squares(REAL, FAKE), 1.375, rtol=1e-6)
    # 0.5 * mean([9, 0.25])
    np.testing.assert_allclose(losses.g_least_squares(None, FAKE), 2.3125, rtol=1e-6)


@pytest.mark.parametrize("name", ["nonsaturating", "hinge", "wasserstein", "least_squares"])
def test_classic_g_losses_ignore_the_real_logits(name):
    g_loss = LOSSES.get(name).g_loss
    np.testing.assert_array_equal(g_loss(REAL, FAKE), g_loss(None, FAKE))
    np.testing.assert_array_equal(g_loss(-REAL, FAKE), g_loss(None, FAKE))


# ---------------------------------------------------------------------------------------------
# RpGAN


def test_rpgan_by_hand():
    # Rows pair up: real [2, 0] with fake [0, 1].
    real, fake = jnp.array([2.0, 0.0]), jnp.array([0.0, 1.0])
    # D: mean softplus(fake - real) = (softplus(-2) + softplus(1)) / 2
    expected_d = (math.log1p(math.exp(-2.0)) + math.log1p(math.e)) / 2
    np.testing.assert_allclose(expected_d, 0.720095, rtol=1e-5)
    np.testing.assert_allclose(losses.d_rpgan(real, fake), expected_d, rtol=1e-6)
    # G: mean softplus(real - fake) = (softplus(2) + softplus(-1)) / 2
    expected_g = (math.log1p(math.exp(2.0)) + math.log1p(math.exp(-1.0))) / 2
    np.testing.assert_allclose(expected_g, 1.220095, rtol=1e-5)
    np.testing.assert_allclose(losses.g_rpgan(real, fake), expected_g, rtol=1e-6)
    # Pairing is by row, not by batch means: softplus(mean fake - mean real) = softplus(-0.5).
    assert abs(float(losses.d_rpgan(real, fake)) - _softplus(-0.5)) > 0.1
    # Equal logits: no preference either way, log 2 for both nets.
    same = jnp.array([0.3, -1.2])
    np.testing.assert_allclose(losses.d_rpgan(same, same), LOG2, rtol=1e-6)
    np.testing.assert_allclose(losses.g_rpgan(same, same), LOG2, rtol=1e-6)


def _rpgan_d_formula(real, fake):
    """RpGAN's D loss written out: mean over rows of -log sigmoid(real_i - fake_i)."""
    return -jnp.mean(jnp.log(1.0 / (1.0 + jnp.exp(-(real - fake)))))


def _rpgan_g_formula(real, fake):
    """RpGAN's G loss written out: mean over rows of -log sigmoid(fake_i - real_i)."""
    return -jnp.mean(jnp.log(1.0 / (1.0 + jnp.exp(-(fake - real)))))


@pytest.mark.parametrize(
    "loss_fn, formula, sign",
    [(losses.d_rpgan, _rpgan_d_formula, 1.0), (losses.g_rpgan, _rpgan_g_formula, -1.0)],
    ids=["d", "g"],
)
def test_rpgan_gradients(loss_fn, formula, sign):
    real, fake = jnp.array([2.0, 0.0, -0.5]), jnp.array([0.0, 1.0, 0.25])
    n = real.shape[0]
    np.testing.assert_allclose(loss_fn(real, fake), formula(real, fake), rtol=1e-6)
    grad_real, grad_fake = jax.grad(loss_fn, argnums=(0, 1))(real, fake)
    want_real, want_fake = jax.grad(formula, argnums=(0, 1))(real, fake)
    np.testing.assert_allclose(grad_real, want_real, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad_fake, want_fake, rtol=1e-6, atol=1e-7)
    # By hand: d/d fake_i softplus(sign * (fake_i - real_i)) / n = sign * sigmoid(...) / n, and
    # each row's real logit gets the opposite; no row leaks into another.
    by_hand = [sign * _sigmoid(sign * (f - r)) / n for r, f in zip(real.tolist(), fake.tolist())]
    np.testing.assert_allclose(grad_fake, by_hand, rtol=1e-6)
    np.testing.assert_allclose(grad_real, [-v for v in by_hand], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Penalties


def test_r1_penalty():
    x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    linear = lambda v: v @ jnp.array([1.0, 2.0])  # gradient [1, 2] everywhere: |g|^2 = 5
    np.testing.assert_allclose(losses.r1_penalty(linear, x), 5.0, rtol=1e-6)
    quadratic = lambda v: jnp.sum(v**2, axis=1)  # gradient 2x: |g|^2 = 4 and 16
    np.testing.assert_allclose(losses.r1_penalty(quadratic, x), 10.0, rtol=1e-6)


def test_r2_penalty_by_hand():
    fake = jnp.array([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    linear = lambda v: v @ jnp.array([2.0, -1.0])  # gradient [2, -1] everywhere: |g|^2 = 5
    np.testing.assert_allclose(losses.r2_penalty(linear, fake), 5.0, rtol=1e-6)
    quadratic = lambda v: jnp.sum(v**2, axis=1)  # gradient 2x: |g|^2 = 36, 4, 8 -> mean 16
    np.testing.assert_allclose(losses.r2_penalty(quadratic, fake), 16.0, rtol=1e-6)


def _per_sample_d(w, x_i):
    """A small nonlinear D of one sample `[2]` -> scalar."""
    return jnp.tanh(x_i @ w[0]) * (x_i @ w[1]) + 0.5 * jnp.sum(x_i**3)


def test_r2_penalty_matches_jax_grad():
    w = jnp.array([[0.7, -0.3], [0.2, 1.1]])
    fake = jnp.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 0.5], [0.0, 2.0]])
    d_fn = jax.vmap(lambda x_i: _per_sample_d(w, x_i))  # [N, 2] -> [N]
    # The formula written out: mean over samples of ||d D(x_i) / d x_i||^2, one sample at a time.
    norms = [float(jnp.sum(jax.grad(_per_sample_d, argnums=1)(w, x_i) ** 2)) for x_i in fake]
    np.testing.assert_allclose(losses.r2_penalty(d_fn, fake), np.mean(norms), rtol=1e-5)


class _FixedNoise:
    """`Noise` with given uniform draws (the GP's mixing weights)."""

    def __init__(self, alpha):
        self.alpha = alpha

    def uniform(self, shape=()):
        assert shape == ()
        return self.alpha

    def normal(self, shape=()):
        raise AssertionError("no penalty here draws normal noise")


def test_registered_penalties_read_the_right_batch():
    real = jnp.array([[1.0, 0.0], [0.0, 2.0]])  # |2x|^2: 4, 16 -> 10
    fake = jnp.array([[3.0, 0.0], [0.0, 1.0]])  # |2x|^2: 36, 4 -> 20
    quadratic = lambda v: jnp.sum(v**2, axis=1)
    noise = _FixedNoise(jnp.array([0.5, 0.5]))
    r1, r2, gp = (PENALTIES.get(name) for name in BUILT_IN_PENALTIES)
    np.testing.assert_allclose(r1.fn(quadratic, real, fake, noise), 10.0, rtol=1e-6)
    np.testing.assert_allclose(r2.fn(quadratic, real, fake, noise), 20.0, rtol=1e-6)
    # The config's weight is the papers' gamma: the D loss adds gamma / 2 * E ||grad||^2.
    assert r1.scale == r2.scale == 0.5 and gp.scale == 1.0
    # GP at x_hat = (real + fake) / 2 = [[2, 0], [0, 1.5]]: |2 x_hat| = 4, 3 -> (9 + 4) / 2
    np.testing.assert_allclose(gp.fn(quadratic, real, fake, noise), 6.5, rtol=1e-5)


def test_gradient_penalty():
    real, fake = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]])
    linear = lambda v: v @ jnp.array([3.0, 4.0])  # |g| = 5 -> (5 - 1)^2
    np.testing.assert_allclose(
        losses.gradient_penalty(linear, real, fake, jnp.array([0.3])), 16.0, rtol=1e-5
    )
    half_sq = lambda v: 0.5 * jnp.sum(v**2, axis=1)  # g = x_hat = [0.5, 0] -> (0.5 - 1)^2
    np.testing.assert_allclose(
        losses.gradient_penalty(half_sq, real, fake, jnp.array([0.5])), 0.25, rtol=1e-5
    )


def test_mse_reconstruction():
    a, b = jnp.zeros((2, 3)), jnp.full((2, 3), 2.0)
    np.testing.assert_allclose(losses.mse_reconstruction(a, b), 4.0)
    with pytest.raises(ValueError, match="same shape"):
        losses.mse_reconstruction(a, jnp.zeros((3, 2)))


# ---------------------------------------------------------------------------------------------
# Registries


def test_loss_registry_pairs_d_and_g():
    names = LOSSES.names()
    assert set(BUILT_IN_LOSSES) <= set(names)
    for name in names:
        loss = LOSSES.get(name)
        assert isinstance(loss, Loss)
        real = REAL if loss.g_needs_real else None
        assert jnp.isfinite(loss.d_loss(REAL, FAKE)) and jnp.isfinite(loss.g_loss(real, FAKE))


def test_only_rpgan_needs_real_logits_in_g():
    needs_real = {name: LOSSES.get(name).g_needs_real for name in BUILT_IN_LOSSES}
    assert needs_real == {name: name == "rpgan" for name in BUILT_IN_LOSSES}


def test_penalty_registry():
    assert set(BUILT_IN_PENALTIES) <= set(PENALTIES.names())
    for name in BUILT_IN_PENALTIES:
        assert isinstance(PENALTIES.get(name), Penalty)
    # The two registries share a package but not their parts.
    assert not set(BUILT_IN_PENALTIES) & set(LOSSES.names())
    assert not set(BUILT_IN_LOSSES) & set(PENALTIES.names())


@pytest.mark.parametrize(
    "registry, name, known",
    [
        (LOSSES, "wgan_gp", BUILT_IN_LOSSES),
        (LOSSES, "r1", BUILT_IN_LOSSES),  # a penalty is not a loss
        (LOSSES, "my_project.no_such_module", BUILT_IN_LOSSES),
        (LOSSES, "gan_jax.losses.adversarial:NO_SUCH_LOSS", BUILT_IN_LOSSES),
        (PENALTIES, "r3", BUILT_IN_PENALTIES),
        (PENALTIES, "rpgan", BUILT_IN_PENALTIES),  # a loss is not a penalty
    ],
)
def test_unknown_names_list_the_known_ones(registry, name, known):
    with pytest.raises(ValueError, match=re.escape(f"unknown {registry.kind} {name!r}")) as info:
        registry.get(name)
    message = str(info.value)
    for known_name in known:
        assert known_name in message.split("known:", 1)[1], (known_name, message)


def test_a_module_path_resolves_to_the_same_loss():
    loss = LOSSES.get("rpgan")
    assert loss is rpgan_module.LOSS
    assert LOSSES.get("gan_jax.losses.rpgan") is loss
    assert LOSSES.get("gan_jax.losses.rpgan:LOSS") is loss
    assert LOSSES.get("gan_jax.losses.adversarial:HINGE") is LOSSES.get("hinge")


def test_registering_a_loss_and_a_penalty():
    mine = Loss(losses.d_hinge, losses.g_hinge)
    free = Penalty(lambda d_fn, real, fake, noise: jnp.zeros(()))
    LOSSES.register("test_mine", mine)
    PENALTIES.register("test_free", free)
    try:
        assert LOSSES.get("test_mine") is mine and "test_mine" in LOSSES.names()
        assert PENALTIES.get("test_free") is free
        with pytest.raises(ValueError, match="already registered"):
            LOSSES.register("test_mine", Loss(losses.d_hinge, losses.g_hinge))
        with pytest.raises(TypeError, match="lacks"):
            LOSSES.register("test_broken", object())
        # Registered penalties are valid config keys.
        penalty_cfg = losses.default_penalty_config()
        with penalty_cfg.unlocked():
            penalty_cfg.test_free = 2.0
        loss_cfg = losses.default_config()
        loss_cfg.name = "test_mine"
        losses.validate_config(loss_cfg, penalty_cfg)
    finally:
        LOSSES.unregister("test_mine")
        LOSSES.unregister("test_broken")
        PENALTIES.unregister("test_free")
    assert "test_mine" not in LOSSES.names()


# ---------------------------------------------------------------------------------------------
# The `loss` and `penalty` config groups


def test_default_groups_validate():
    loss_cfg, penalty_cfg = losses.default_config(), losses.default_penalty_config()
    assert loss_cfg.name == "nonsaturating" and dict(loss_cfg.head_weights) == {}
    assert penalty_cfg.to_dict() == {"r1": 0.0, "r2": 0.0, "gp": 0.0, "every": 1}
    losses.validate_config(loss_cfg, penalty_cfg)
    for name in BUILT_IN_LOSSES:
        loss_cfg.name = name
        losses.validate_config(loss_cfg, penalty_cfg)
    loss_cfg.name = "gan_jax.losses.rpgan"
    losses.validate_config(loss_cfg, penalty_cfg)


def _groups(which: str = "", key: str = "", value=None):
    """The default `loss` and `penalty` groups with `which[key] = value` (any type, as from a
    hand-edited config.json)."""
    loss, penalty = losses.default_config().to_dict(), losses.default_penalty_config().to_dict()
    group = {"loss": loss, "head_weights": loss["head_weights"], "penalty": penalty}
    if which:
        group[which][key] = value
    return config_dict.ConfigDict(loss), config_dict.ConfigDict(penalty)


@pytest.mark.parametrize(
    "which, key, value, message",
    [
        ("loss", "name", "wgan", r"loss\.name='wgan': unknown loss 'wgan'; known: hinge, "),
        ("loss", "weights", 1.0, r"unknown key loss\.weights; did you mean loss\.head_weights\?"),
        ("loss", "name", 3, r"loss\.name must be str, got 3"),
        ("head_weights", "video", -0.5, r"loss\.head_weights\.video must be >= 0\.0, got -0\.5"),
        ("head_weights", "image", "x", r"loss\.head_weights\.image must be int or float"),
        ("penalty", "every", 0, r"penalty\.every must be >= 1, got 0"),
        ("penalty", "every", 2.0, r"penalty\.every must be int, got 2\.0"),
        ("penalty", "every", True, r"penalty\.every must be int, got True"),
        ("penalty", "r1", -1.0, r"penalty\.r1 must be >= 0\.0, got -1\.0"),
        ("penalty", "r2", "x", r"penalty\.r2 must be int or float, got 'x'"),
        ("penalty", "my", 0.5, r"penalty\.my: unknown penalty 'my'; known: gp, r1, r2"),
        ("penalty", "rpgan", 0.5, r"penalty\.rpgan: unknown penalty 'rpgan'"),
    ],
)
def test_group_validation_names_the_key(which, key, value, message):
    loss_cfg, penalty_cfg = _groups(which, key, value)
    with pytest.raises(ConfigError, match=message):
        losses.validate_config(loss_cfg, penalty_cfg)


def test_penalty_every_and_weights_accept_valid_values():
    loss_cfg, penalty_cfg = _groups("head_weights", "video", 0.5)
    with loss_cfg.head_weights.unlocked():
        loss_cfg.head_weights.image = 0  # an int weight is a number too; 0 turns a head off
    penalty_cfg.every = 16
    penalty_cfg.r1 = 10.0
    penalty_cfg.r2 = 10.0
    penalty_cfg.gp = 0.0
    loss_cfg.name = "rpgan"
    losses.validate_config(loss_cfg, penalty_cfg)
