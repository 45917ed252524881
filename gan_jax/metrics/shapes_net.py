"""The bouncing-shapes feature network: its settings and its Flax module, nothing else.

Shared by the cache and inference (``gan_jax.metrics.shapes_features``) and the training
program (``gan_jax.metrics.shapes_features_training``); see the first for what the network is
for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data.bouncing_shapes import PALETTE, BouncingShapes
from gan_jax.models.layers import Conv

logger = logging.getLogger(__name__)

# Bumped whenever the network, the targets or the training procedure change meaning, so that
# cached parameters of an older version are never loaded.
FORMAT_VERSION = 1
NUM_COLOURS = len(PALETTE)
# Per-colour regression targets, in this order along the last axis of the "per_colour" head.
REGRESSION_TARGETS = ("vy", "vx", "y0", "x0", "y1", "x1", "size", "speed")
# Largest standard deviation of the Gaussian pixel noise added to training clips (on [-1, 1]).
MAX_NOISE = 0.5
_FILE_PREFIX = "shapes_features_"
_SETTINGS_KEY = "settings_json"
_METRICS_KEY = "heldout_json"
_PARAM_PREFIX = "params/"
# Smallest frame height and width the network takes (a 4 x 4 stem, then strided blocks).
MIN_SIZE = 16


@dataclasses.dataclass(frozen=True)
class FeatureNetSettings:
    """Everything that determines the trained parameters (all of it goes into the cache hash).

    Attributes:
      num_frames: T of the clips.
      height: H, >= 16.
      width: W, >= 16.
      channels: C, 3 (RGB) or 1 (grey; colours then differ only by luma, some nearly tie).
      num_objects: (min, max) objects per training clip, as in ``BouncingShapes``.
      size_range: (min, max) object size in pixels.
      speed_range: (min, max) speed in pixels per frame.
      shapes: object kinds drawn, a subset of ("square", "disc").
      antialias: whether training clips blend edges.
      widths: channels of the patch stem, then of one strided 3-D conv block per further entry.
      feature_dim: D, units of the feature (penultimate) layer.
      steps: training steps.
      batch_size: clips per step.
      learning_rate: peak Adam learning rate (warm-up then cosine decay to 0).
      noisy_fraction: fraction of training clips that get Gaussian pixel noise of a standard
        deviation uniform in [0, MAX_NOISE] (clipped to [-1, 1]); the "noise" head regresses
        it, so the features grow with pixel noise, a common generator artefact.
      seed: seed of the parameter initialisation.
      data_seed: ``BouncingShapes`` seed of the training and held-out clips.
      num_heldout: held-out clips for the reported accuracies.
    """

    num_frames: int
    height: int
    width: int
    channels: int = 3
    num_objects: tuple[int, int] = (1, 3)
    size_range: tuple[float, float] = (8.0, 16.0)
    speed_range: tuple[float, float] = (1.0, 3.0)
    shapes: tuple[str, ...] = ("square", "disc")
    antialias: bool = False
    widths: tuple[int, ...] = (32, 64, 64)
    feature_dim: int = 128
    steps: int = 1200
    batch_size: int = 16
    learning_rate: float = 3e-3
    noisy_fraction: float = 0.25
    seed: int = 0
    data_seed: int = 1
    num_heldout: int = 512

    def __post_init__(self):
        # Normalise sequences to tuples of the right type so equal settings hash equally.
        norm = {
            "num_objects": tuple(int(v) for v in np.broadcast_to(self.num_objects, (2,))),
            "size_range": tuple(float(v) for v in np.broadcast_to(self.size_range, (2,))),
            "speed_range": tuple(float(v) for v in np.broadcast_to(self.speed_range, (2,))),
            "shapes": (self.shapes,) if isinstance(self.shapes, str) else tuple(self.shapes),
            "widths": tuple(int(w) for w in np.atleast_1d(self.widths)),
        }
        for name, value in norm.items():
            object.__setattr__(self, name, value)
        for name in ("num_frames", "feature_dim", "steps", "batch_size", "num_heldout"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"shapes features: {name} must be >= 1, got {getattr(self, name)}")
        if min(self.height, self.width) < MIN_SIZE:
            raise ValueError(
                f"shapes features: clips must be at least {MIN_SIZE} x {MIN_SIZE} (H x W), got "
                f"{self.height} x {self.width}; render the clips larger"
            )
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"shapes features: widths must be positive ints, got {self.widths}")
        if not 0 <= self.noisy_fraction <= 1:
            raise ValueError(
                f"shapes features: noisy_fraction must lie in [0, 1], got {self.noisy_fraction}"
            )
        if not self.learning_rate > 0:
            raise ValueError(
                f"shapes features: learning_rate must be > 0, got {self.learning_rate}"
            )
        # Validates the scene parameters (channels, object count, sizes, speeds, kinds).
        self.dataset()
        if self.steps * self.batch_size + self.num_heldout > self.dataset().length:
            raise ValueError(
                f"shapes features: steps * batch_size + num_heldout = "
                f"{self.steps * self.batch_size + self.num_heldout} exceeds the "
                f"{self.dataset().length} training examples; lower steps or batch_size"
            )

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """(T, H, W, C)."""
        return (self.num_frames, self.height, self.width, self.channels)

    def dataset(self) -> BouncingShapes:
        """The source of the training (low indices) and held-out (high indices) clips."""
        return BouncingShapes(
            num_frames=self.num_frames,
            height=self.height,
            width=self.width,
            channels=self.channels,
            num_objects=self.num_objects,
            size_range=self.size_range,
            speed_range=self.speed_range,
            shapes=self.shapes,
            antialias=self.antialias,
            length=2**30,
            seed=self.data_seed,
        )

    def to_json(self) -> str:
        """Canonical JSON of the settings and FORMAT_VERSION (the input of ``cache_key``)."""
        return json.dumps(
            {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}, sort_keys=True
        )

    def cache_key(self) -> str:
        """16 hex digits of the SHA-256 of ``to_json()``."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def cache_name(self) -> str:
        """File name of the cached parameters, e.g. ``shapes_features_16x32x32x3_<hash>.npz``."""
        shape = "x".join(str(d) for d in self.clip_shape)
        return f"{_FILE_PREFIX}{shape}_{self.cache_key()}.npz"


# Keys of a bouncing_shapes data config that describe the scene distribution; the same names
# as FeatureNetSettings fields.
_SCENE_KEYS = ("num_objects", "size_range", "speed_range", "shapes", "antialias")


def settings_for(data, **overrides) -> FeatureNetSettings:
    """Settings for clips described by a shape or by a bouncing_shapes data config.

    Args:
      data: ``(T, H, W, C)``; or a data config (``ml_collections.ConfigDict`` or dict, e.g. the
        trainer's ``cfg.data``) with ``name == "bouncing_shapes"``, whose clip shape and scene
        keys (num_objects, size_range, speed_range, shapes, antialias; missing ones take the
        pipeline defaults) the network is trained on; or a ``BouncingShapes`` source.
      **overrides: any other ``FeatureNetSettings`` field (widths, steps, seed, ...).

    Returns:
      The settings.
    """
    if isinstance(data, BouncingShapes):
        fields = {"num_frames": data.num_frames, "height": data.height, "width": data.width}
        fields["channels"] = data.channels
        fields.update({key: getattr(data, key) for key in _SCENE_KEYS})
    elif isinstance(data, Mapping) or hasattr(data, "to_dict"):
        from gan_jax.data.pipeline import resolve_data_config

        cfg = resolve_data_config(data)
        if cfg["name"] != "bouncing_shapes":
            raise ValueError(
                f"shapes features are trained on bouncing shapes, but the data config has "
                f"name={cfg['name']!r}; use FVD (gan_jax.metrics.fvd) for other video data"
            )
        fields = {key: cfg[key] for key in ("num_frames", "height", "width", "channels")}
        fields.update({key: cfg[key] for key in _SCENE_KEYS})
    else:
        shape = tuple(int(d) for d in np.atleast_1d(data))
        if len(shape) != 4:
            raise ValueError(
                f"shapes features: data must be a clip shape (T, H, W, C), a bouncing_shapes "
                f"data config or a BouncingShapes source, got {data!r}"
            )
        fields = dict(zip(("num_frames", "height", "width", "channels"), shape))
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(FeatureNetSettings)})
    if unknown:
        raise TypeError(
            f"shapes features: unknown setting(s) {unknown}; allowed: "
            f"{[f.name for f in dataclasses.fields(FeatureNetSettings)]}"
        )
    return FeatureNetSettings(**{**fields, **overrides})


def _stem_patch(num_frames: int) -> tuple[int, int, int]:
    """Patch of the stem: 4 x 4 pixels, 2 frames where there are at least 4 (else 1)."""
    return (2 if num_frames >= 4 else 1, 4, 4)


def _block_geometry(num_frames: int):
    """Strides, kernel and padding of one conv block for a current length of T = num_frames.

    H and W halve (kernel 4, padding 1, as in video_dcgan); T halves while it is >= 4 (kernel
    4), else keeps its length (kernel 3, or 1 for single frames).
    """
    if num_frames >= 4:
        stride_t, kernel_t, pad_t = 2, 4, (1, 1)
    elif num_frames == 1:
        stride_t, kernel_t, pad_t = 1, 1, (0, 0)
    else:
        stride_t, kernel_t, pad_t = 1, 3, (1, 1)
    return (stride_t, 2, 2), (kernel_t, 4, 4), (pad_t, (1, 1), (1, 1))


def _coordinates(shape: tuple[int, ...]) -> jax.Array:
    """(t, y, x) of each cell of a ``[T, H, W]`` grid, in [-1, 1] (0 for length-1 axes)."""
    axes = [jnp.linspace(-1.0, 1.0, n) if n > 1 else jnp.zeros(1) for n in shape]
    return jnp.stack(jnp.meshgrid(*axes, indexing="ij"), axis=-1)


class ShapesFeatureNet(nn.Module):
    """Clips ``[N, T, H, W, C]`` in [-1, 1] -> features ``[N, feature_dim]`` and head outputs.

    The input is the clip and its frame differences. A patch-embedding stem (a conv whose
    kernel equals its stride, 2 x 4 x 4, to ``widths[0]`` channels) cuts the cost of the
    full-resolution layer, which dominates on a CPU; coordinate channels (t, y, x in [-1, 1],
    "CoordConv") are appended to its output so that positions survive the global average pool.
    Then one strided 3-D conv block per remaining width (H, W halve; T halves while it is
    >= 4). Every conv is followed by ReLU. Global average pooling, a dense feature layer with
    ReLU (the features), linear heads.

    There is no normalisation layer on purpose: a per-clip norm (GroupNorm) rescales
    near-constant clips, such as an untrained generator's grey output, into large activations
    and put them farther from real clips than uniform noise; without it the response grows
    with the input's contrast. (BatchNorm is out: features must not depend on the batch.)
    """

    widths: tuple[int, ...] = (32, 64, 64)
    feature_dim: int = 128
    max_objects: int = 3

    @nn.compact
    def __call__(self, clips: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Runs the network.

        Args:
          clips: ``[N, T, H, W, C]`` float in [-1, 1].

        Returns:
          ``(features [N, D], heads)`` with heads ``count`` ``[N, max_objects + 1]`` logits,
          ``colours`` ``[N, 8]`` logits (colour present), ``per_colour`` ``[N, 8, 8]``
          regressions (``REGRESSION_TARGETS``), ``disc`` ``[N, 8]`` logits (object is a disc),
          ``noise`` ``[N]`` (the standard deviation of added pixel noise / ``MAX_NOISE``).
        """
        batch = clips.shape[0]
        patch = _stem_patch(clips.shape[1])
        # Zeros on the high side make each axis a whole number of patches; no pixel is dropped.
        padding = tuple((0, -size % p) for size, p in zip(clips.shape[1:4], patch))
        x = clips.astype(jnp.float32)
        # Frame differences (0 after the last frame) hand motion to the stem directly; they
        # make the features far more sensitive to broken motion (e.g. shuffled frames).
        diff = jnp.concatenate([x[:, 1:] - x[:, :-1], jnp.zeros_like(x[:, :1])], axis=1)
        x = jnp.concatenate([x, diff], axis=-1)
        x = Conv(self.widths[0], patch, patch, padding, name="stem")(x)
        x = nn.relu(x)
        grid = _coordinates(x.shape[1:4])
        x = jnp.concatenate([x, jnp.broadcast_to(grid[None], (batch, *grid.shape))], axis=-1)
        for i, features in enumerate(self.widths[1:]):
            strides, kernel, padding = _block_geometry(x.shape[1])
            x = Conv(features, kernel, strides, padding, name=f"conv{i}")(x)
            x = nn.relu(x)
        pooled = jnp.mean(x, axis=(1, 2, 3))
        feats = nn.relu(nn.Dense(self.feature_dim, name="feature")(pooled))
        per_colour = nn.Dense(NUM_COLOURS * len(REGRESSION_TARGETS), name="per_colour")(feats)
        heads = {
            "count": nn.Dense(self.max_objects + 1, name="count")(feats),
            "colours": nn.Dense(NUM_COLOURS, name="colours")(feats),
            "per_colour": per_colour.reshape(batch, NUM_COLOURS, len(REGRESSION_TARGETS)),
            "disc": nn.Dense(NUM_COLOURS, name="disc")(feats),
            "noise": nn.Dense(1, name="noise")(feats)[:, 0],
        }
        return feats, heads


def make_model(settings: FeatureNetSettings) -> ShapesFeatureNet:
    """The network for ``settings``."""
    return ShapesFeatureNet(
        widths=settings.widths,
        feature_dim=settings.feature_dim,
        max_objects=settings.num_objects[1],
    )


def init_params(settings: FeatureNetSettings) -> dict:
    """Initial Flax params of ``make_model(settings)`` from ``jax.random.key(settings.seed)``."""
    model = make_model(settings)
    clips = jnp.zeros((1, *settings.clip_shape), jnp.float32)
    # XLA on CPU takes seconds per 5-D kernel to compile the partitionable threefry (about 25 s
    # for this network, 40 s eagerly); the classic layout compiles in about one. It is a
    # different but equally deterministic stream, and this runs on one device.
    with jax.threefry_partitionable(False):
        params = jax.jit(model.init)(jax.random.key(settings.seed), clips)["params"]
    return {name: _he_scaled(name, layer) for name, layer in params.items()}


def _he_scaled(name: str, layer: dict) -> dict:
    """Conv kernels rescaled from N(0, 0.02) (``layers.Conv``'s DCGAN init) to He's N(0, 2 /
    fan_in): without normalisation layers, 0.02 shrinks the signal at every layer and Adam's
    first steps are large relative to the weights."""
    if not (name == "stem" or name.startswith("conv")):
        return layer
    kernel = layer["kernel"]
    fan_in = int(np.prod(kernel.shape[:-1]))
    return {**layer, "kernel": kernel * (np.sqrt(2.0 / fan_in) / 0.02)}
