"""Tests for gan_jax.metrics.frechet: Fréchet distance and streaming Gaussian statistics."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gan_jax.metrics.frechet import GaussianStats, frechet_distance, stats_frechet_distance
from gan_jax.metrics.fvd import fvd_from_features


def _scipy_reference(mu1, cov1, mu2, cov2) -> float:
    """The textbook formula through scipy's general (Schur) matrix square root."""
    diff = mu1 - mu2
    sqrt_product = scipy.linalg.sqrtm(cov1 @ cov2)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(sqrt_product).real)


def _two_feature_sets(rng, num_samples, dim):
    real = rng.normal(size=(num_samples, dim)) @ rng.normal(size=(dim, dim)) / np.sqrt(dim)
    fake = rng.normal(size=(num_samples, dim)) * 1.3 + rng.normal(size=dim) * 0.5
    return real, fake


def _moments(features):
    return features.mean(axis=0), np.cov(features, rowvar=False)


@pytest.mark.parametrize("dim", [8, 64])
def test_matches_scipy_reference_full_rank(dim):
    real, fake = _two_feature_sets(np.random.default_rng(dim), 500, dim)
    args = (*_moments(real), *_moments(fake))
    want = _scipy_reference(*args)
    assert frechet_distance(*args) == pytest.approx(want, rel=1e-6)


def test_matches_high_precision_reference_rank_deficient():
    # N = 10 samples in D = 64: both covariances have rank 9. scipy's sqrtm of the singular,
    # non-symmetric C1 @ C2 is only accurate to ~1e-8 relative here, so the exact reference uses
    # an identity instead: with centred data A1, A2 ([N, D]), the eigenvalues of C1 C2 are the
    # squared singular values of A1 A2^T / sqrt((N1 - 1)(N2 - 1)), so tr sqrt(C1 C2) is the
    # nuclear norm of that 10x10 matrix, which a float64 SVD gets to ~1e-15.
    real, fake = _two_feature_sets(np.random.default_rng(1), 10, 64)
    (mu1, cov1), (mu2, cov2) = _moments(real), _moments(fake)
    assert np.linalg.matrix_rank(cov1) == 9
    centred_real, centred_fake = real - mu1, fake - mu2
    nuclear = np.linalg.svd(centred_real @ centred_fake.T, compute_uv=False).sum()
    trace_sqrt = nuclear / np.sqrt((len(real) - 1) * (len(fake) - 1))
    diff = mu1 - mu2
    exact = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt

    got = frechet_distance(mu1, cov1, mu2, cov2)
    assert got == pytest.approx(exact, rel=1e-12)
    assert got == pytest.approx(_scipy_reference(mu1, cov1, mu2, cov2), rel=1e-6)


@pytest.mark.parametrize("num_samples", [10, 300])
def test_identical_statistics_give_zero(num_samples):
    features = np.random.default_rng(2).normal(size=(num_samples, 64)) * 3.0 + 1.0
    mu, cov = _moments(features)
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-8 * np.trace(cov)


def test_translation_only_gives_squared_mean_distance():
    mu, cov = _moments(np.random.default_rng(3).normal(size=(50, 16)))
    shift = np.full(16, 0.25)
    assert frechet_distance(mu, cov, mu + shift, cov) == pytest.approx(shift @ shift, abs=1e-9)


def test_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(4,\).*\(5,\)"):
        frechet_distance(np.zeros(4), np.eye(4), np.zeros(5), np.eye(5))
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        frechet_distance(np.zeros(4), np.eye(4), np.zeros(4), np.zeros((4, 3)))


def test_accumulator_over_batches_equals_numpy():
    rng = np.random.default_rng(4)
    # float32 values (exact in jax and numpy) with a large common offset, where the naive
    # sum-of-squares formula would lose digits.
    features = (rng.normal(size=(257, 12)) + 1e3).astype(np.float32)
    stats = GaussianStats()
    for index, start in enumerate(range(0, 257, 50)):
        batch = features[start : start + 50]
        stats.update(jnp.asarray(batch) if index % 2 else batch)
    as_float64 = features.astype(np.float64)
    assert stats.count == 257
    np.testing.assert_allclose(stats.mean, as_float64.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(stats.cov, np.cov(as_float64, rowvar=False), rtol=1e-9, atol=1e-12)


def test_merge_equals_single_accumulation():
    rng = np.random.default_rng(5)
    features = rng.normal(size=(90, 7)) * rng.uniform(0.5, 2.0, size=7)
    whole = GaussianStats()
    whole.update(features)
    host_a, host_b, empty = GaussianStats(), GaussianStats(), GaussianStats()
    host_a.update(features[:31])
    host_b.update(features[31:60])
    host_b.update(features[60:])
    host_a.merge(empty)
    host_a.merge(host_b)
    assert host_a.count == 90
    np.testing.assert_allclose(host_a.mean, whole.mean, rtol=1e-13)
    np.testing.assert_allclose(host_a.cov, whole.cov, rtol=1e-12)
    empty.merge(whole)
    np.testing.assert_allclose(empty.cov, whole.cov, rtol=1e-15)


def test_save_load_round_trip(tmp_path):
    stats = GaussianStats()
    stats.update(np.random.default_rng(6).normal(size=(20, 5)))
    path = tmp_path / "real_stats"  # no .npz suffix: must still load from the same path
    stats.save(path)
    loaded = GaussianStats.load(path)
    assert loaded.count == 20 and loaded.dim == 5
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.cov, stats.cov)
    assert stats_frechet_distance(loaded, stats) == pytest.approx(0.0, abs=1e-9)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        GaussianStats.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"bad\.npz.*missing keys \['count', 'm2'\]"):
        GaussianStats.load(bad)


def test_accumulator_input_errors():
    stats = GaussianStats()
    with pytest.raises(ValueError, match=r"\[N, D\].*\(3, 4, 5\)"):
        stats.update(np.zeros((3, 4, 5)))
    stats.update(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        stats.cov  # noqa: B018
    with pytest.raises(ValueError, match="dimension 4 .* dimension 6"):
        stats.update(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="non-finite"):
        stats.update(np.array([[0.0, np.nan, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="no features"):
        GaussianStats().mean  # noqa: B018


def test_fvd_from_features_matches_frechet_distance():
    real, fake = _two_feature_sets(np.random.default_rng(7), 40, 16)
    want = frechet_distance(*_moments(real), *_moments(fake))
    assert fvd_from_features(real, fake) == pytest.approx(want, rel=1e-12)
    assert fvd_from_features(real, real) == pytest.approx(0.0, abs=1e-8)
