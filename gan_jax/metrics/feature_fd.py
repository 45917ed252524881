"""Fréchet distance between features of real and generated clips, streamed through a network.

`StreamingFD` is what FVD (I3D features) and the Fréchet Shapes Distance (the bouncing-shapes
feature network) share: clips go through a jit-compiled feature function in fixed-size batches
(the last one zero-padded, so every call reuses one compiled program), and only the running
mean and covariance of the features are kept (`GaussianStats`, float64), never the clips.

Clips are `[N, T, H, W, C]`, uint8 in [0, 255] or float in [-1, 1]; a float clip outside
[-1, 1] (e.g. [0, 255] floats, or [0, 1]) is rejected rather than silently misread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.metrics.frechet import GaussianStats, stats_frechet_distance

# The slack tolerates round-off of generator outputs while still catching [0, 1] or [0, 255].
RANGE_SLACK = 1e-3


def check_clip_range(clips, who: str) -> None:
    """Rejects float clips outside [-1, 1] and non-numeric dtypes, naming `who` and the fix."""
    if clips.dtype == np.uint8 or clips.size == 0:
        return
    if not jnp.issubdtype(clips.dtype, jnp.floating):
        raise ValueError(
            f"{who} expects uint8 clips in [0, 255] or float in [-1, 1], got dtype {clips.dtype}"
        )
    xp = np if isinstance(clips, np.ndarray) else jnp
    low, high = float(xp.min(clips)), float(xp.max(clips))
    if not (low >= -1.0 - RANGE_SLACK and high <= 1.0 + RANGE_SLACK):
        raise ValueError(
            f"{who}: float clips must lie in [-1, 1] but span [{low:.4g}, {high:.4g}] (NaN: "
            f"{bool(np.isnan(low) or np.isnan(high))}); pass uint8 clips in [0, 255], or map "
            "floats to [-1, 1] (e.g. x / 127.5 - 1, or x * 2 - 1 for [0, 1]) and clip generator "
            "outputs"
        )


def iter_clip_batches(clips, who: str) -> Iterable:
    """Arrays from an array, a pipeline batch dict, or an iterable of either."""
    if hasattr(clips, "shape"):
        yield clips
        return
    if isinstance(clips, Mapping):
        yield _video_of(clips, who)
        return
    if isinstance(clips, str | bytes) or not isinstance(clips, Iterable):
        raise TypeError(
            f"{who}: clips must be an array [N, T, H, W, C] or an iterable of such batches, "
            f"got {type(clips).__name__}"
        )
    for batch in clips:
        yield _video_of(batch, who) if isinstance(batch, Mapping) else batch


def _video_of(batch: Mapping, who: str):
    if "video" not in batch:
        raise KeyError(
            f"{who}: a batch dict needs a 'video' key (as the data pipeline's batches have), "
            f"got keys {sorted(batch)}"
        )
    return batch["video"]


class StreamingFD:
    """Fréchet distance of network features, real vs generated, accumulated batch by batch.

    Subclasses supply the feature function and say which clips they accept
    (`_check_clips`); everything else is here.
    """

    #: Name used in error messages.
    who = "StreamingFD"
    #: What to tell a user who computes with too few clips.
    typical_count = "a few hundred or more"

    def __init__(
        self,
        feature_fn: Callable[[jax.Array], jax.Array],
        feature_dim: int,
        *,
        batch_size: int,
        real_stats: GaussianStats | None = None,
    ):
        """Creates the metric.

        Args:
            feature_fn: clips `[B, T, H, W, C]` -> features `[B, feature_dim]`, traceable (it
                is jit-compiled here); a clip's features must not depend on its batch
                neighbours.
            feature_dim: D.
            batch_size: B, clips per call; memory grows linearly with it.
            real_stats: precomputed real statistics to start from (e.g. `GaussianStats.load`).
        """
        if batch_size < 1:
            raise ValueError(f"{self.who}: batch_size must be >= 1, got {batch_size}")
        self._batch_size = int(batch_size)
        self._feature_dim = int(feature_dim)
        self._feature_fn = jax.jit(feature_fn)
        self._real = real_stats if real_stats is not None else GaussianStats()
        self._fake = GaussianStats()

    @property
    def real_stats(self) -> GaussianStats:
        """Statistics of the real clips added so far."""
        return self._real

    @property
    def fake_stats(self) -> GaussianStats:
        """Statistics of the generated clips added so far."""
        return self._fake

    def _check_clips(self, clips):
        """Returns `clips` as an array the feature function takes, or raises naming the problem."""
        if not hasattr(clips, "shape"):
            clips = np.asarray(clips)
        if clips.ndim != 5:
            raise ValueError(
                f"{self.who} expects clips [N, T, H, W, C], got shape {tuple(clips.shape)}"
            )
        check_clip_range(clips, self.who)
        return clips

    def features(self, clips) -> np.ndarray:
        """Features of clips `[N, T, H, W, C]` (uint8 or float in [-1, 1], numpy or jax).

        Returns:
            float32 numpy `[N, D]`.
        """
        clips = self._check_clips(clips)
        # Dispatch every batch before reading any result back, so host-to-device copies and
        # network runs overlap; only the small [B, D] outputs are kept.
        pending = []
        for start in range(0, clips.shape[0], self._batch_size):
            chunk = clips[start : start + self._batch_size]
            num_valid = chunk.shape[0]
            if num_valid < self._batch_size:
                pad = [(0, self._batch_size - num_valid)] + [(0, 0)] * 4
                chunk = np.pad(chunk, pad) if isinstance(chunk, np.ndarray) else jnp.pad(chunk, pad)
            pending.append((num_valid, self._feature_fn(chunk)))
        if not pending:
            return np.zeros((0, self._feature_dim), np.float32)
        return np.concatenate([np.asarray(feats)[:num_valid] for num_valid, feats in pending])

    def add_real(self, clips) -> None:
        """Adds real clips: an array `[N, T, H, W, C]`, or an iterable of such batches (or of
        pipeline batches, dicts with a "video" key)."""
        for batch in iter_clip_batches(clips, self.who):
            self._real.update(self.features(batch))

    def add_fake(self, clips) -> None:
        """Adds generated clips (an array or an iterable of batches, as `add_real`)."""
        for batch in iter_clip_batches(clips, self.who):
            self._fake.update(self.features(batch))

    def reset_fake(self) -> None:
        """Forgets the generated clips (e.g. before evaluating the next checkpoint)."""
        self._fake = GaussianStats()

    def compute(self) -> float:
        """The distance between the real and generated clips added so far (>= 2 of each)."""
        for name, stats in (("real", self._real), ("generated", self._fake)):
            if stats.count < 2:
                raise ValueError(
                    f"{self.who}.compute: {stats.count} {name} clips added, at least 2 are "
                    f"needed ({self.typical_count} for a stable value; D = {self._feature_dim})"
                )
        return stats_frechet_distance(self._real, self._fake)

    def score(self, fake_clips) -> float:
        """The distance of `fake_clips` to the real clips added so far (replaces earlier fakes)."""
        self.reset_fake()
        self.add_fake(fake_clips)
        return self.compute()
