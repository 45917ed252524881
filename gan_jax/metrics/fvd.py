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

from pathlib import Path

import jax
from ml_collections import config_dict

from gan_jax.data.spec import DataSpec
from gan_jax.metrics.feature_fd import StreamingFD
from gan_jax.metrics.frechet import GaussianStats, stats_frechet_distance
from gan_jax.metrics.i3d import (
    FVD_NUM_FRAMES,
    FVD_SIZE,
    I3D,
    load_i3d_params,
    preprocess_for_i3d,
)
from gan_jax.metrics.registry import VIDEO, Metric

# Clips per I3D call.
_FVD_BATCH = 16


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


class FVDComputer(StreamingFD):
    """Streams clips through I3D in fixed-size jit-compiled batches and accumulates statistics.

    Only the running mean/covariance of the features is kept, never the clips or features
    (see `gan_jax.metrics.feature_fd.StreamingFD`); one compiled program per input clip shape.
    """

    who = "FVDComputer"
    typical_count = "FVD is usually reported on 2048 or more"

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
        model = model if model is not None else I3D()
        variables = jax.device_put(i3d_variables)

        def features(clips):
            preprocessed = preprocess_for_i3d(clips, num_frames=num_frames, size=size)
            return model.apply(variables, preprocessed)

        super().__init__(features, model.num_classes, batch_size=batch_size, real_stats=real_stats)

    def _check_clips(self, clips):
        clips = super()._check_clips(clips)
        if clips.shape[-1] != 3:
            raise ValueError(
                f"FVDComputer expects RGB clips [N, T, H, W, 3], got shape {tuple(clips.shape)}; "
                "repeat a grey channel 3 times (np.repeat(clips, 3, axis=-1))"
            )
        return clips


# ---------------------------------------------------------------------------------------------
# The metric "fvd" (gan_jax.metrics.registry)


def _fvd_missing(cfg: config_dict.ConfigDict, spec: DataSpec) -> str | None:
    weights = cfg.eval.i3d_weights
    if not weights:
        return (
            "FVD needs I3D weights, which cannot be downloaded here: convert the PyTorch I3D "
            "checkpoint with `python -m gan_jax.metrics.i3d_convert i3d.pt i3d.npz`, then pass "
            "--i3d-weights i3d.npz (or set eval.i3d_weights)"
        )
    if not Path(weights).is_file():
        return f"eval.i3d_weights={weights!r} does not exist; pass the .npz of I3D weights"
    shape = spec.sample_shape
    if shape[0] < FVD_NUM_FRAMES or shape[-1] != 3:
        return (
            f"FVD is defined on RGB clips of at least {FVD_NUM_FRAMES} frames, but this run "
            f"makes clips of shape (T, H, W, C) = {shape}"
        )
    return None


def _fvd(ctx) -> dict[str, float]:
    """FVD of `eval.fvd_num_samples` generated vs real clips (`--num-samples` overrides)."""
    num = ctx.num_samples if ctx.num_samples_given else int(ctx.cfg.eval.fvd_num_samples)

    batch = min(num, _FVD_BATCH)  # no padding of a small count up to a full batch

    def real_metric():
        computer = FVDComputer(load_i3d_params(ctx.cfg.eval.i3d_weights), batch_size=batch)
        computer.add_real(ctx.real_batches(num, batch))
        return computer

    computer = ctx.cached(f"fvd/{num}", real_metric)
    return {"fvd": computer.score(ctx.fake_batches(num)), "num_clips": float(num)}


METRIC = Metric("fvd", (VIDEO,), _fvd, missing=_fvd_missing)
