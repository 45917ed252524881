"""Fréchet Shapes Distance (FSD): Fréchet distance of shapes-feature statistics, real vs generated.

Like FVD (``gan_jax.metrics.fvd``) with the I3D network replaced by the small network of
``gan_jax.metrics.shapes_features``, trained here on bouncing-shapes ground truth (object count,
colours, velocities, positions, sizes, kinds). Lower is better; two independent draws of real
clips score near 0 (the estimator's bias at N clips), and clips with the right colours but wrong
motion (frames shuffled), the wrong content, or noise score higher, in that order.

Example:
    features = get_feature_params(None, cfg.data)        # trains once, then loads from cache
    fsd = ShapesFD(features)
    fsd.add_real(real_clips)                             # [N, T, H, W, C] in [-1, 1]
    fsd.add_fake(generated_clips)
    print(fsd.compute())

One line, from a data config and two sets of clips (arrays, or iterables of batches):
    shapes_fd(get_feature_params(None, cfg.data), real_clips, fake_clips)
or with the real clips drawn from the data config itself, reused across evaluations:
    fsd = ShapesFD.for_data(cfg.data)        # once
    fsd.score(generated_clips)               # each evaluation
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from gan_jax.data.spec import DataSpec
from gan_jax.metrics.feature_fd import StreamingFD
from gan_jax.metrics.frechet import GaussianStats
from gan_jax.metrics.registry import VIDEO, Metric
from gan_jax.metrics.shapes_features import MIN_SIZE, ShapesFeatures, get_feature_params

# Reference clips of ``for_data`` are rendered in chunks of this many, to bound host memory.
_RENDER_CHUNK = 256


class ShapesFD(StreamingFD):
    """Streams clips through the shapes feature network in fixed-size batches.

    Only the running mean and covariance of the features are kept (``GaussianStats``, float64),
    never the clips (see ``gan_jax.metrics.feature_fd.StreamingFD``).
    """

    who = "ShapesFD"

    def __init__(
        self,
        features: ShapesFeatures,
        *,
        batch_size: int = 64,
        real_stats: GaussianStats | None = None,
    ):
        """Creates the metric.

        Args:
          features: the trained network, from ``get_feature_params``.
          batch_size: clips per network call.
          real_stats: precomputed real statistics to start from (e.g. ``GaussianStats.load``).
        """
        if not isinstance(features, ShapesFeatures):
            raise TypeError(
                f"ShapesFD expects ShapesFeatures (from get_feature_params), got "
                f"{type(features).__name__}"
            )
        self._shapes_features = features
        params = jax.device_put(features.params)
        model = features.model()

        super().__init__(
            lambda clips: model.apply({"params": params}, _to_unit_range(clips))[0],
            features.feature_dim,
            batch_size=batch_size,
            real_stats=real_stats,
        )

    @classmethod
    def for_data(
        cls,
        data_cfg,
        *,
        num_real: int = 512,
        cache_dir=None,
        batch_size: int = 64,
        first_index: int = 0,
        **settings,
    ) -> ShapesFD:
        """The metric for a bouncing_shapes data config, with its real statistics filled in.

        Args:
          data_cfg: the data config (e.g. the trainer's ``cfg.data``), name "bouncing_shapes".
          num_real: real clips, examples ``[first_index, first_index + num_real)`` of the
            config's own source (``make_source(data_cfg)``, i.e. its ``dataset_seed``).
          cache_dir: feature network cache (see ``get_feature_params``).
          batch_size: clips per network call.
          first_index: first example of the real clips.
          **settings: other ``FeatureNetSettings`` fields for ``get_feature_params``.

        Returns:
          A ``ShapesFD`` whose ``real_stats`` hold ``num_real`` clips; add generated clips
          with ``add_fake`` or ``score``.
        """
        from gan_jax.data.pipeline import make_source

        if num_real < 2:
            raise ValueError(f"ShapesFD.for_data: num_real must be >= 2, got {num_real}")
        metric = cls(get_feature_params(cache_dir, data_cfg, **settings), batch_size=batch_size)
        source = make_source(data_cfg)
        if first_index < 0 or first_index + num_real > len(source):
            raise ValueError(
                f"ShapesFD.for_data: examples [{first_index}, {first_index + num_real}) do not "
                f"fit the source's {len(source)} examples; lower num_real or first_index"
            )
        for start in range(first_index, first_index + num_real, _RENDER_CHUNK):
            stop = min(start + _RENDER_CHUNK, first_index + num_real)
            metric.add_real(np.stack([source[i]["video"] for i in range(start, stop)]))
        return metric

    @property
    def shapes_features(self) -> ShapesFeatures:
        """The feature network in use."""
        return self._shapes_features

    def _check_clips(self, clips):
        clips = super()._check_clips(clips)
        want = self._shapes_features.clip_shape
        if tuple(clips.shape[1:]) != tuple(want):
            raise ValueError(
                f"ShapesFD: clips must be [N, {', '.join(map(str, want))}] (N, T, H, W, C) to "
                f"match the feature network, got shape {tuple(clips.shape)}; for other clip "
                "shapes get a network with get_feature_params(cache_dir, (T, H, W, C))"
            )
        return clips


def _to_unit_range(clips: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [-1, 1]; floats (already in [-1, 1]) -> float32."""
    if clips.dtype == jnp.uint8:
        return clips.astype(jnp.float32) / 127.5 - 1.0
    return clips.astype(jnp.float32)


def shapes_fd(features: ShapesFeatures, real_clips, fake_clips, *, batch_size: int = 64) -> float:
    """FSD between two sets of clips in one call.

    Args:
      features: the trained network, ``get_feature_params(cache_dir, data)``.
      real_clips: ``[N, T, H, W, C]`` in [-1, 1] (or uint8), or an iterable of such batches or
        of pipeline batch dicts; N >= 2 in total (a few hundred for a stable value).
      fake_clips: the same for generated clips.
      batch_size: clips per network call.

    Returns:
      The Fréchet distance between Gaussians fitted to the two sets of features.
    """
    metric = ShapesFD(features, batch_size=batch_size)
    metric.add_real(real_clips)
    metric.add_fake(fake_clips)
    return metric.compute()


# Names of the calibration sets, from closest to farthest from real clips.
CALIBRATION_SETS = ("real", "shuffled_frames", "untrained_generator", "uniform_noise")


def calibration_distances(
    features: ShapesFeatures,
    *,
    num_clips: int = 512,
    dataset_seed: int = 0,
    seed: int = 0,
    batch_size: int = 64,
) -> dict[str, float]:
    """FSD of four reference sets against real clips, which should come out in increasing order.

    The real reference is examples ``[0, num_clips)`` of a ``BouncingShapes`` with the scene
    settings of ``features`` and seed ``dataset_seed``; against it:

    * ``real``: a second, independent draw (examples ``[num_clips, 2 * num_clips)``): the
      estimator's floor at this N.
    * ``shuffled_frames``: that draw with each clip's frames in a random non-identity order
      (same colours, shapes and positions; broken motion). Left out when T = 1.
    * ``untrained_generator``: a ``VideoGenerator`` (video_dcgan) at initialisation.
    * ``uniform_noise``: pixels uniform in [-1, 1].

    Args:
      features: the trained network.
      num_clips: clips per set (the real reference has as many).
      dataset_seed: ``BouncingShapes`` seed of the real clips.
      seed: seed of the shuffles, the generator's parameters and noise, and the uniform noise.
      batch_size: clips per network call.

    Returns:
      ``{name: FSD}`` for the names of ``CALIBRATION_SETS`` (without ``shuffled_frames`` when
      T = 1).
    """
    if num_clips < 2:
        raise ValueError(f"calibration_distances: num_clips must be >= 2, got {num_clips}")
    settings = features.settings
    source = dataclasses.replace(settings.dataset(), seed=dataset_seed)
    num_frames = settings.num_frames
    rng = np.random.default_rng([seed, 0xCA1])

    def render(first: int) -> np.ndarray:
        return np.stack([source[i]["video"] for i in range(first, first + num_clips)])

    metric = ShapesFD(features, batch_size=batch_size)
    metric.add_real(render(0))
    second_draw = render(num_clips)
    candidates = {"real": second_draw}
    if num_frames > 1:
        orders = [_non_identity_permutation(rng, num_frames) for _ in range(num_clips)]
        candidates["shuffled_frames"] = second_draw[np.arange(num_clips)[:, None], orders]
    candidates["untrained_generator"] = untrained_generator_clips(
        settings.clip_shape, num_clips, seed=seed
    )
    candidates["uniform_noise"] = rng.uniform(-1.0, 1.0, (num_clips, *settings.clip_shape))
    return {name: metric.score(clips.astype(np.float32)) for name, clips in candidates.items()}


def _non_identity_permutation(rng: np.random.Generator, length: int) -> np.ndarray:
    while True:
        order = rng.permutation(length)
        if np.any(order != np.arange(length)):
            return order


def untrained_generator_clips(clip_shape, num_clips: int, *, seed: int = 0) -> np.ndarray:
    """Clips ``[num_clips, T, H, W, C]`` of a freshly initialised video DCGAN generator.

    The generator has depth 3 (fewer where H or W has fewer factors of 2), base width 32 and
    z_dim 64; it runs in inference mode with its initial batch-norm statistics.
    """
    from gan_jax.models.video_dcgan import VideoGenerator

    _, height, width, _ = clip_shape
    depth = 3
    while depth > 1 and (height % 2**depth or width % 2**depth):
        depth -= 1
    generator = VideoGenerator(clip_shape=tuple(clip_shape), z_dim=64, base_width=32, depth=depth)
    init_key, noise_key = jax.random.split(jax.random.key(seed))
    # The classic threefry layout: the partitionable one compiles for seconds per 5-D kernel on
    # CPU (see shapes_features.init_params).
    with jax.threefry_partitionable(False):
        variables = jax.jit(
            lambda key: generator.init(key, {"z": jnp.zeros((2, 64))}, train=False)
        )(init_key)
    z = {"z": jax.random.normal(noise_key, (num_clips, 64))}
    return np.asarray(jax.jit(lambda v, z: generator.apply(v, z, train=False))(variables, z))


# ---------------------------------------------------------------------------------------------
# The metric "shapes_fd" (gan_jax.metrics.registry)


SHAPES_FEATURES_DIR = "shapes_features"
# Clips per feature-network call.
_SHAPES_FD_BATCH = 64


def shapes_features_dir(cfg: config_dict.ConfigDict, workdir: Path | None) -> Path | None:
    """Where shapes_fd caches its feature network: `eval.shapes_features_dir`, else
    WORKDIR/shapes_features (None without a workdir: the user cache)."""
    configured = cfg.eval.shapes_features_dir
    if configured:
        return Path(configured)
    return None if workdir is None else Path(workdir) / SHAPES_FEATURES_DIR


def feature_net_missing(cfg: config_dict.ConfigDict, spec: DataSpec) -> str | None:
    _, height, width, _ = spec.sample_shape
    if min(height, width) < MIN_SIZE:
        return (
            f"the shapes feature network needs frames of at least {MIN_SIZE}x{MIN_SIZE}, but "
            f"this run makes {height}x{width}; raise data.height and data.width"
        )
    return None


def _shapes_fd(ctx) -> dict[str, float]:
    """FSD of `eval.num_samples` generated vs real clips; the network trains on first use."""
    num = max(ctx.num_samples, 2)

    def real_metric():
        # The network is trained (or loaded from the cache) and the real clips' statistics
        # computed once per context: they do not depend on the generator.
        return ShapesFD.for_data(
            ctx.cfg.data,
            num_real=num,
            cache_dir=shapes_features_dir(ctx.cfg, ctx.workdir),
            batch_size=_SHAPES_FD_BATCH,
            steps=int(ctx.cfg.eval.shapes_features_steps),
        )

    metric = ctx.cached(f"shapes_fd/{num}", real_metric)
    return {"fsd": metric.score(ctx.fake_batches(num))}


METRIC = Metric(
    "shapes_fd",
    (VIDEO,),
    _shapes_fd,
    data_names=("bouncing_shapes",),
    missing=feature_net_missing,
)
