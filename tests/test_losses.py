"""Losses against values worked out by hand."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

LOG2 = math.log(2.0)
REAL = jnp.array([0.5, 2.0])
FAKE = jnp.array([-2.0, 0.5])


def test_logistic_and_nonsaturating():
    real, fake = jnp.array([0.0, 2.0]), jnp.array([0.0, -1.0])
    # softplus(-0) = log 2, softplus(-2) = log(1 + e^-2), softplus(-1) = log(1 + e^-1)
    expected_d = (LOG2 + math.log1p(math.exp(-2))) / 2 + (LOG2 + math.log1p(math.exp(-1))) / 2
    np.testing.assert_allclose(losses.d_logistic(real, fake), expected_d, rtol=1e-6)
    np.testing.assert_allclose(losses.d_logistic(real, fake), 0.913242, rtol=1e-5)
    expected_g = (LOG2 + math.log1p(math.e)) / 2  # softplus(0), softplus(1)
    np.testing.assert_allclose(losses.g_nonsaturating(fake), expected_g, rtol=1e-6)


def test_hinge():
    # relu(1 - [0.5, 2]) = [0.5, 0] -> 0.25; relu(1 + [-2, 0.5]) = [0, 1.5] -> 0.75
    np.testing.assert_allclose(losses.d_hinge(REAL, FAKE), 1.0, rtol=1e-6)
    np.testing.assert_allclose(losses.g_hinge(FAKE), 0.75, rtol=1e-6)


def test_wasserstein():
    np.testing.assert_allclose(losses.d_wasserstein(REAL, FAKE), -0.75 - 1.25, rtol=1e-6)
    np.testing.assert_allclose(losses.g_wasserstein(FAKE), 0.75, rtol=1e-6)


def test_least_squares():
    # 0.5 * mean([0.25, 1]) + 0.5 * mean([4, 0.25]) = 0.3125 + 1.0625
    np.testing.assert_allclose(losses.d_least_squares(REAL, FAKE), 1.375, rtol=1e-6)
    # 0.5 * mean([9, 0.25])
    np.testing.assert_allclose(losses.g_least_squares(FAKE), 2.3125, rtol=1e-6)


def test_r1_penalty():
    x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    linear = lambda v: v @ jnp.array([1.0, 2.0])  # gradient [1, 2] everywhere: |g|^2 = 5
    np.testing.assert_allclose(losses.r1_penalty(linear, x), 5.0, rtol=1e-6)
    quadratic = lambda v: jnp.sum(v**2, axis=1)  # gradient 2x: |g|^2 = 4 and 16
    np.testing.assert_allclose(losses.r1_penalty(quadratic, x), 10.0, rtol=1e-6)


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


def test_loss_table_pairs_d_and_g():
    assert set(losses.LOSSES) == {"nonsaturating", "hinge", "wgan_gp", "least_squares"}
    for d_loss, g_loss in losses.LOSSES.values():
        assert jnp.isfinite(d_loss(REAL, FAKE)) and jnp.isfinite(g_loss(FAKE))
