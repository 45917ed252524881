"""Gaussian feature statistics and the Fréchet distance between two Gaussians.

FVD and FID both fit a Gaussian to network features of real and of generated samples and report
the Fréchet (2-Wasserstein) distance between the two fits. `GaussianStats` accumulates the fit
batch by batch in float64, so the features of thousands of clips never sit in memory at once, and
it merges across hosts. `frechet_distance` evaluates the distance through symmetric
eigendecompositions, which stay accurate for rank-deficient covariances (fewer samples than
feature dimensions), where a general matrix square root of C1 @ C2 is ill-conditioned.
"""

from __future__ import annotations

import os

import numpy as np

# Keys of the .npz file written by GaussianStats.save.
_NPZ_KEYS = ("count", "mean", "m2")


class GaussianStats:
    """Running mean and covariance of feature vectors, accumulated in float64.

    Uses Chan et al.'s pairwise update (merge of per-batch mean and centred scatter), which avoids
    the cancellation of the naive sum-of-squares formula when features have a large mean.

    Example:
        stats = GaussianStats()
        for batch in batches:           # each [N, D]
            stats.update(batch)
        mu, sigma = stats.mean, stats.cov
    """

    def __init__(self, dim: int | None = None):
        """Creates empty statistics.

        Args:
            dim: feature dimension D; None fixes it at the first `update`.
        """
        self._dim = dim
        self._count = 0
        self._mean: np.ndarray | None = None
        # Centred scatter matrix: sum over samples of (x - mean)(x - mean)^T, [D, D].
        self._m2: np.ndarray | None = None

    @property
    def dim(self) -> int | None:
        """Feature dimension D, or None before the first update of an undimensioned instance."""
        return self._dim

    @property
    def count(self) -> int:
        """Number of feature vectors accumulated so far."""
        return self._count

    @property
    def mean(self) -> np.ndarray:
        """Mean feature vector, float64 [D]."""
        if self._count == 0:
            raise ValueError("GaussianStats.mean: no features accumulated yet; call update() first")
        return self._mean.copy()

    @property
    def cov(self) -> np.ndarray:
        """Unbiased (ddof=1) covariance, float64 [D, D]."""
        if self._count < 2:
            raise ValueError(
                f"GaussianStats.cov needs at least 2 feature vectors, got {self._count}; "
                "accumulate more samples"
            )
        return self._m2 / (self._count - 1)

    def update(self, features) -> None:
        """Adds a batch of feature vectors.

        Args:
            features: [N, D] numpy or jax array (any float dtype; converted to float64 on host).
        """
        batch = np.asarray(features, dtype=np.float64)
        if batch.ndim != 2:
            raise ValueError(
                f"GaussianStats.update expects features [N, D], got shape {batch.shape}; "
                "flatten per-sample features to vectors first"
            )
        self._check_dim(batch.shape[1], "features")
        if batch.shape[0] == 0:
            return
        if not np.all(np.isfinite(batch)):
            raise ValueError(
                "GaussianStats.update got non-finite features (NaN or inf); check the network "
                "inputs (e.g. clips outside [-1, 1] or NaN generator outputs)"
            )
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        self._combine(batch.shape[0], batch_mean, centred.T @ centred)

    def merge(self, other: GaussianStats) -> None:
        """Adds the samples summarised by `other` (e.g. another host's statistics) in place."""
        if not isinstance(other, GaussianStats):
            raise TypeError(f"GaussianStats.merge expects GaussianStats, got {type(other)}")
        if other.count == 0:
            return
        self._check_dim(other.dim, "other GaussianStats")
        self._combine(other._count, other._mean, other._m2)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the statistics to an .npz file (keys count, mean, m2)."""
        if self._count == 0:
            raise ValueError(f"GaussianStats.save({os.fspath(path)!r}): nothing accumulated yet")
        # An open file stops np.savez from appending '.npz' to paths that lack it.
        with open(path, "wb") as file:
            np.savez(file, count=np.int64(self._count), mean=self._mean, m2=self._m2)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GaussianStats:
        """Reads statistics written by `save`."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"GaussianStats file {path!r} does not exist")
        with np.load(path) as data:
            missing = [key for key in _NPZ_KEYS if key not in data.files]
            if missing:
                raise ValueError(
                    f"{path!r} is not a GaussianStats file: missing keys {missing} "
                    f"(has {sorted(data.files)}); write it with GaussianStats.save"
                )
            count, mean, m2 = (data[key] for key in _NPZ_KEYS)
        if mean.ndim != 1 or m2.shape != (mean.shape[0], mean.shape[0]) or int(count) < 1:
            raise ValueError(
                f"{path!r}: inconsistent GaussianStats (count {count}, mean {mean.shape}, "
                f"m2 {m2.shape}); the file is corrupt, recompute the statistics"
            )
        stats = cls(dim=mean.shape[0])
        stats._combine(int(count), mean.astype(np.float64), m2.astype(np.float64))
        return stats

    def _check_dim(self, dim: int, what: str) -> None:
        if self._dim is None:
            self._dim = int(dim)
        elif dim != self._dim:
            raise ValueError(
                f"GaussianStats has feature dimension {self._dim} but {what} has dimension {dim}"
            )

    def _combine(self, count: int, mean: np.ndarray, m2: np.ndarray) -> None:
        """Chan et al. merge of (count, mean, m2) into self."""
        if self._count == 0:
            self._count, self._mean, self._m2 = count, mean.copy(), m2.copy()
            return
        total = self._count + count
        delta = mean - self._mean
        self._mean = self._mean + delta * (count / total)
        self._m2 = self._m2 + m2 + np.outer(delta, delta) * (self._count * count / total)
        self._count = total


def _clip_round_off(eigvals: np.ndarray) -> np.ndarray:
    """Zeroes eigenvalues of a PSD matrix that are round-off: negative or below D * eps * max.

    A rank-deficient covariance has exact-zero eigenvalues that eigh returns as +-1e-16-ish
    noise; the square root would turn each into ~1e-8 and a few hundred of them into a visible
    bias, so they are set to 0 before it.
    """
    tolerance = eigvals.shape[0] * np.finfo(np.float64).eps * max(float(np.max(eigvals)), 0.0)
    return np.where(eigvals > tolerance, eigvals, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix via eigh."""
    eigvals, eigvecs = np.linalg.eigh(matrix)
    return (eigvecs * np.sqrt(_clip_round_off(eigvals))) @ eigvecs.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """tr(sqrtm(cov1 @ cov2)) for symmetric PSD cov1, cov2 [D, D].

    cov1 @ cov2 is not symmetric, but it is similar to S1 @ cov2 @ S1 with S1 = sqrtm(cov1), which
    is symmetric PSD; so its eigenvalues are real and non-negative and eigh applies.
    """
    cov1 = np.asarray(cov1, dtype=np.float64)
    cov2 = np.asarray(cov2, dtype=np.float64)
    sqrt1 = _psd_sqrt(cov1)
    middle = sqrt1 @ cov2 @ sqrt1
    # Symmetrise away the round-off asymmetry before the symmetric eigensolver.
    middle = 0.5 * (middle + middle.T)
    eigvals = np.linalg.eigvalsh(middle)
    return float(np.sum(np.sqrt(_clip_round_off(eigvals))))


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

    ||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr(sqrtm(cov1 @ cov2)), computed in float64.

    Args:
        mu1: mean [D].
        cov1: covariance [D, D] (symmetric PSD; rank-deficient is fine).
        mu2: mean [D].
        cov2: covariance [D, D].

    Returns:
        The distance as a Python float.
    """
    mu1, mu2 = (np.asarray(m, dtype=np.float64) for m in (mu1, mu2))
    cov1, cov2 = (np.asarray(c, dtype=np.float64) for c in (cov1, cov2))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(
            f"frechet_distance: means must be vectors of equal length, got mu1 {mu1.shape} "
            f"and mu2 {mu2.shape}"
        )
    dim = mu1.shape[0]
    if cov1.shape != (dim, dim) or cov2.shape != (dim, dim):
        raise ValueError(
            f"frechet_distance: covariances must be [{dim}, {dim}] to match the means, got "
            f"cov1 {cov1.shape} and cov2 {cov2.shape}"
        )
    diff = mu1 - mu2
    return float(
        diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2)
    )


def stats_frechet_distance(stats1: GaussianStats, stats2: GaussianStats) -> float:
    """Fréchet distance between the Gaussians fitted by two GaussianStats."""
    return frechet_distance(stats1.mean, stats1.cov, stats2.mean, stats2.cov)
