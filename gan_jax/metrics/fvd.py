"""Fréchet Video Distance: Fréchet distance between I3D features of real and generated clips.

Example:
    variables = load_i3d_params("i3d_kinetics400.npz")
    fvd = FVDComputer(variables, batch_size=16)
    for batch in real_batches:            # [N, T, H, W, 3], uint8 or float in [-1, 1]
        fvd.add_real(batch)
    for batch in generated_batches:
        fvd.add_fake(batch)
    print(fvd.compute())

Real statistics can be cached: `fvd.real_stats.save("real.npz")`, later
`FVDComputer(variables, real_stats=GaussianStats.load("real.npz"))`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.metrics.frechet import GaussianStats, stats_frechet_distance
from gan_jax.metrics.i3d import FVD_NUM_FRAMES, FVD_SIZE, I3D, preprocess_for_i3d

# Float clips must lie in [-1, 1]; this slack tolerates round-off of generator outputs while
# still catching clips in [0, 255] floats.
_RANGE_SLACK = 1e-3


def fvd_from_features(real_features, fake_features) -> float:
    """FVD between two feature sets.

    Args:
        real_features: [N_real, D] I3D features of real clips (N_real >= 2).
        fake_features: [N_fake, D] I3D features of generated clips (N_fake >= 2).

    Returns:
        The Fréchet distance between Gaussians fitted to the two sets.
    """
    real, fake = GaussianStats(), GaussianStats()
    real.update(real_features)
    fake.update(fake_features)
    return stats_frechet_distance(real, fake)


class FVDComputer:
    """Streams clips through I3D in fixed-size jit-compiled batches and accumulates statistics.

    Only the running mean/covariance of the features is kept, never the clips or features. The
    last partial batch of each call is zero-padded to `batch_size` so every call reuses one
    compiled program (per input clip shape).
    """

    def __init__(
        self,
        i3d_variables,
        *,
        batch_size: int = 16,
        num_frames: int | None = FVD_NUM_FRAMES,
        size: int = FVD_SIZE,
        model: I3D | None = None,
        real_stats: GaussianStats | None = None,
    ):
        """Creates the computer.

        Args:
            i3d_variables: {"params", "batch_stats"} from `load_i3d_params`.
            batch_size: clips per I3D call; memory grows linearly with it.
            num_frames: frames fed to I3D (the first ones of each clip); FVD uses 16.
            size: frame height and width fed to I3D; FVD uses 224.
            model: the I3D module; the default is the Kinetics-400 network.
            real_stats: precomputed real statistics to start from (e.g. `GaussianStats.load`).
        """
        if batch_size < 1:
            raise ValueError(f"FVDComputer: batch_size must be >= 1, got {batch_size}")
        self._batch_size = batch_size
        self._model = model if model is not None else I3D()
        self._variables = jax.device_put(i3d_variables)
        self._real = real_stats if real_stats is not None else GaussianStats()
        self._fake = GaussianStats()

        def features(variables, clips):
            preprocessed = preprocess_for_i3d(clips, num_frames=num_frames, size=size)
            return self._model.apply(variables, preprocessed)

        self._features = jax.jit(features)

    @property
    def real_stats(self) -> GaussianStats:
        """Statistics of the real clips added so far."""
        return self._real

    @property
    def fake_stats(self) -> GaussianStats:
        """Statistics of the generated clips added so far."""
        return self._fake

    def features(self, clips) -> np.ndarray:
        """I3D features of clips.

        Args:
            clips: [N, T, H, W, 3], uint8 in [0, 255] or float in [-1, 1]; numpy or jax.

        Returns:
            float32 numpy [N, num_classes].
        """
        if not hasattr(clips, "shape"):
            clips = np.asarray(clips)
        if clips.ndim != 5:
            raise ValueError(f"FVDComputer expects clips [N, T, H, W, 3], got shape {clips.shape}")
        _check_range(clips)
        # Dispatch every batch before reading any result back, so host-to-device copies and
        # I3D runs overlap; only the small [batch, num_classes] outputs are kept.
        pending = []
        for start in range(0, clips.shape[0], self._batch_size):
            chunk = clips[start : start + self._batch_size]
            num_valid = chunk.shape[0]
            if num_valid < self._batch_size:
                pad = [(0, self._batch_size - num_valid)] + [(0, 0)] * 4
                chunk = np.pad(chunk, pad) if isinstance(chunk, np.ndarray) else jnp.pad(chunk, pad)
            pending.append((num_valid, self._features(self._variables, chunk)))
        if not pending:
            return np.zeros((0, self._model.num_classes), np.float32)
        return np.concatenate([np.asarray(feats)[:num_valid] for num_valid, feats in pending])

    def add_real(self, clips) -> None:
        """Adds real clips [N, T, H, W, 3] to the real statistics."""
        self._real.update(self.features(clips))

    def add_fake(self, clips) -> None:
        """Adds generated clips [N, T, H, W, 3] to the generated statistics."""
        self._fake.update(self.features(clips))

    def reset_fake(self) -> None:
        """Forgets the generated clips (e.g. before evaluating the next checkpoint)."""
        self._fake = GaussianStats()

    def compute(self) -> float:
        """FVD between the real and generated clips added so far (each needs >= 2 clips)."""
        for name, stats in (("real", self._real), ("generated", self._fake)):
            if stats.count < 2:
                raise ValueError(
                    f"FVDComputer.compute: {stats.count} {name} clips added, at least 2 are "
                    "needed (FVD is usually reported on 2048 or more)"
                )
        return stats_frechet_distance(self._real, self._fake)


def _check_range(clips) -> None:
    """Rejects float clips outside [-1, 1] (e.g. [0, 255] floats), which I3D would misread."""
    if clips.dtype == np.uint8 or clips.size == 0:
        return
    if not jnp.issubdtype(clips.dtype, jnp.floating):
        raise ValueError(
            f"FVDComputer expects uint8 [0, 255] or float [-1, 1] clips, got dtype {clips.dtype}"
        )
    xp = np if isinstance(clips, np.ndarray) else jnp
    low, high = float(xp.min(clips)), float(xp.max(clips))
    if not (low >= -1.0 - _RANGE_SLACK and high <= 1.0 + _RANGE_SLACK):
        raise ValueError(
            f"FVDComputer: float clips must lie in [-1, 1] but span [{low:.4g}, {high:.4g}]; "
            "pass uint8 clips in [0, 255], or map floats to [-1, 1] (e.g. x / 127.5 - 1) "
            "and clip generator outputs"
        )
