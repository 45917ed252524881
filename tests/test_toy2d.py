"""2-D mixtures, PacGAN's mode-coverage metric, and (slow) a trained ring."""

import dataclasses
import math

import jax
import numpy as np
import pytest

from gan_jax.data.points import mixture, sample_points
from gan_jax.metrics.mode_coverage import mode_coverage
from gan_jax.toy2d import ToyConfig, train_toy


def test_mixtures_match_the_papers():
    ring, ring_std = mixture("ring")
    assert ring.shape == (8, 2) and ring_std == 0.01
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ring[2], [0.0, 1.0], atol=1e-6)  # angle 2*pi*2/8
    grid, grid_std = mixture("grid")
    assert grid.shape == (25, 2) and grid_std == 0.05
    assert set(np.unique(grid)) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    with pytest.raises(ValueError, match="'moons'"):
        mixture("moons")


def test_samples_come_from_the_modes():
    points = np.asarray(sample_points(jax.random.key(0), 4000, "grid"))
    result = mode_coverage(points, "grid")
    # 2-D Gaussian: P(r <= 3 std) = 1 - exp(-4.5) = 98.9 %
    assert result["modes"] == 25 and 98.0 < result["hq_percent"] < 99.7
    assert result["reverse_kl"] < 0.02  # near-uniform histogram over 25 modes


def test_mode_coverage_by_hand():
    centres, std = mixture("ring")
    # 3 samples on mode 0, 1 on mode 1, 1 far from everything, 1 just outside 3 std of mode 2.
    samples = np.concatenate(
        [
            np.repeat(centres[:1], 3, axis=0),
            centres[1:2] + [0.0, 2.5 * std],
            [[0.0, 0.0]],
            centres[2:3] + [3.5 * std, 0.0],
        ]
    )
    result = mode_coverage(samples, "ring")
    assert result["modes"] == 2
    np.testing.assert_allclose(result["hq_percent"], 100 * 4 / 6)
    # p = (3/4, 1/4, 0, ...): sum p log(p K)
    expected = 0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8)
    np.testing.assert_allclose(result["reverse_kl"], expected, rtol=1e-12)
    collapsed = mode_coverage(np.repeat(centres[:1], 10, axis=0), "ring")
    np.testing.assert_allclose(collapsed["reverse_kl"], math.log(8), rtol=1e-12)
    with pytest.raises(ValueError, match="NaN"):
        mode_coverage(np.full((4, 2), np.nan), "ring")


def test_short_toy_run_is_finite():
    _, result = train_toy(dataclasses.replace(ToyConfig(), steps=20, batch_size=64), seed=0)
    assert np.isfinite(result["d/loss"]) and np.isfinite(result["g/loss"])
    assert 0 <= result["modes"] <= 8


@pytest.mark.slow
def test_trained_ring_covers_the_modes():
    _, result = train_toy(ToyConfig(dataset="ring"), seed=0)
    assert result["modes"] >= 7, result
    assert result["hq_percent"] >= 80.0, result
