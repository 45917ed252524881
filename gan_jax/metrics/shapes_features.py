"""A small 3-D conv feature network for bouncing-shapes clips, trained on their ground truth.

FVD's I3D needs downloaded weights and sees 224 x 224 Kinetics video; bouncing shapes at 32 x 32
are far from that. This network is trained here, deterministically, to read the scene of a
bouncing-shapes clip: how many objects, which palette colours, and per colour the velocity,
speed, first and last position, size and shape kind. Its penultimate layer (``feature_dim``
units after global average pooling and one dense layer) is the feature space of the Fréchet
Shapes Distance (``gan_jax.metrics.shapes_fd``).

Training is a pure function of ``FeatureNetSettings``: parameters from ``jax.random.key(seed)``,
step ``s`` sees examples ``[s * batch_size, (s + 1) * batch_size)`` of
``BouncingShapes(seed=data_seed)``, a fixed number of steps, and XLA on one CPU device is
deterministic, so the same settings give bitwise the same parameters. Held-out examples come
from the other end of the index range, disjoint from every training example.

``get_feature_params(cache_dir, data)`` trains on first use and caches the result in
``cache_dir/shapes_features_<T>x<H>x<W>x<C>_<hash>.npz`` (the hash covers every setting and
``FORMAT_VERSION``; the file is written to a temporary name and renamed), so later calls load it
in milliseconds.

Example:
    features = get_feature_params(None, cfg.data)      # or a clip shape (T, H, W, C)
    feats = features.features(clips)                    # [N, T, H, W, C] -> [N, feature_dim]
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import time
import uuid
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from gan_jax.data.bouncing_shapes import DISC, PALETTE, BouncingShapes
from gan_jax.data.video_folder import default_cache_dir
from gan_jax.models.layers import Conv

logger = logging.getLogger(__name__)

# Bumped whenever the network, the targets or the training procedure change meaning, so that
# cached parameters of an older version are never loaded.
FORMAT_VERSION = 1
NUM_COLOURS = len(PALETTE)
# Per-colour regression targets, in this order along the last axis of the "per_colour" head.
REGRESSION_TARGETS = ("vy", "vx", "y0", "x0", "y1", "x1", "size", "speed")
_MOTION_TARGETS = ("vy", "vx", "y1", "x1", "speed")
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
    conv_impl: str | None = None

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
        x = Conv(self.widths[0], patch, patch, padding, conv_impl=self.conv_impl, name="stem")(x)
        x = nn.relu(x)
        grid = _coordinates(x.shape[1:4])
        x = jnp.concatenate([x, jnp.broadcast_to(grid[None], (batch, *grid.shape))], axis=-1)
        for i, features in enumerate(self.widths[1:]):
            strides, kernel, padding = _block_geometry(x.shape[1])
            x = Conv(features, kernel, strides, padding, conv_impl=self.conv_impl, name=f"conv{i}")(
                x
            )
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


# Scenes (ground truth only, no rendering) from which the regression targets' mean and standard
# deviation are estimated: cheap, and deterministic because they are the first training indices.
_NUM_STATS_SCENES = 2048


def target_stats(settings: FeatureNetSettings) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each raw regression target over present objects, ``[8]``.

    Standardising the targets gives every regression target the same weight in the loss (raw,
    velocities in pixels per frame would swamp sizes that vary by a few pixels).
    """
    dataset = settings.dataset()
    raw = make_raw_targets([dataset.sample_scene(i) for i in range(_NUM_STATS_SCENES)], settings)
    values = raw["per_colour"][raw["colours"] > 0.5]  # [objects, 8]
    mean = values.mean(axis=0)
    # A target that never varies (e.g. speed_range (2, 2) for the speed) keeps unit scale.
    std = np.where(values.std(axis=0) > 1e-6, values.std(axis=0), 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def make_raw_targets(scenes: list[dict], settings: FeatureNetSettings) -> dict[str, np.ndarray]:
    """Targets of a batch of ``BouncingShapes.sample_scene`` dicts, in physical units.

    Objects are indexed by colour (a clip never repeats a colour), which fixes the order of the
    per-object targets without any matching.

    Returns:
      ``count`` int32 [N]; ``colours`` float32 [N, 8] (1 = present); ``per_colour`` float32
      [N, 8, 8] (``REGRESSION_TARGETS``: pixels per frame and pixels, positions relative to
      the frame centre; zeros for absent colours); ``disc`` float32 [N, 8].
    """
    num = len(scenes)
    present = np.zeros((num, NUM_COLOURS), np.float32)
    per_colour = np.zeros((num, NUM_COLOURS, len(REGRESSION_TARGETS)), np.float32)
    disc = np.zeros((num, NUM_COLOURS), np.float32)
    centre = np.array([settings.height, settings.width], np.float32) / 2.0
    for i, scene in enumerate(scenes):
        mask = scene["object_mask"]
        colours = scene["colour_ids"][mask]
        velocity = scene["velocities"][mask]
        present[i, colours] = 1.0
        per_colour[i, colours, 0:2] = velocity
        per_colour[i, colours, 2:4] = scene["positions"][0, mask] - centre
        per_colour[i, colours, 4:6] = scene["positions"][-1, mask] - centre
        per_colour[i, colours, 6] = scene["sizes"][mask]
        per_colour[i, colours, 7] = np.linalg.norm(velocity, axis=-1)
        disc[i, colours] = (scene["shape_kinds"][mask] == DISC).astype(np.float32)
    return {
        "count": np.array([scene["label"] for scene in scenes], np.int32),
        "colours": present,
        "per_colour": per_colour,
        "disc": disc,
    }


def load_batch(
    dataset: BouncingShapes,
    indices,
    settings: FeatureNetSettings,
    stats,
    noisy_fraction: float = 0.0,
) -> tuple[np.ndarray, dict]:
    """Renders clips ``[N, T, H, W, C]`` and their training targets for dataset indices.

    Args:
      dataset: the source.
      indices: which examples.
      settings: the network settings.
      stats: ``target_stats(settings)``; the regression targets are standardised with them.
      noisy_fraction: probability that a clip gets pixel noise (see ``FeatureNetSettings``);
        which clips and how much depend only on (``data_seed``, index).

    Returns:
      ``(clips, targets)``; targets as ``make_raw_targets`` (regressions standardised) plus
      ``noise`` float32 [N], the added noise's standard deviation / ``MAX_NOISE``.
    """
    indices = [int(i) for i in indices]
    examples = [dataset[i] for i in indices]
    clips = np.stack([example["video"] for example in examples])
    targets = make_raw_targets(examples, settings)
    mean, std = stats
    # Absent colours stay at 0: they are masked out of the loss anyway.
    present = targets["colours"][:, :, None]
    targets["per_colour"] = (targets["per_colour"] - mean) / std * present
    targets["noise"] = np.zeros(len(indices), np.float32)
    if noisy_fraction > 0:
        for row, index in enumerate(indices):
            rng = np.random.default_rng([settings.data_seed, index, 0x0153])
            if rng.random() < noisy_fraction:
                level = rng.random()
                noise = rng.standard_normal(clips.shape[1:], np.float32) * (level * MAX_NOISE)
                clips[row] = np.clip(clips[row] + noise, -1.0, 1.0)
                targets["noise"][row] = level
    return clips, targets


def _regression_weights(settings: FeatureNetSettings) -> np.ndarray:
    """Weight of each regression target: motion targets are undefined for single frames."""
    weights = np.ones(len(REGRESSION_TARGETS), np.float32)
    if settings.num_frames == 1:
        for name in _MOTION_TARGETS:
            weights[REGRESSION_TARGETS.index(name)] = 0.0
    return weights


# Weight of the noise head's MSE. Its target, a level in [0, 1] that is 0 for most clips, has a
# variance near 0.07: unweighted, its gradient is drowned by the scene heads' and it learns
# nothing (held-out error no better than always answering 0); 10 learns it without slowing
# the scene heads much (30 did: colour-set accuracy fell from 0.63 to 0.14 at 600 steps).
_NOISE_WEIGHT = 10.0


def _loss(model, settings, params, clips, targets):
    """Sum of the heads' losses: CE (count), BCE summed over the 8 colours, BCE (disc, per
    present object), squared error of the standardised per-colour targets summed over targets
    (per present object), weighted MSE (noise)."""
    _, heads = model.apply({"params": params}, clips)
    count = optax.softmax_cross_entropy_with_integer_labels(heads["count"], targets["count"])
    colours = optax.sigmoid_binary_cross_entropy(heads["colours"], targets["colours"])
    present = targets["colours"]
    num_present = jnp.maximum(jnp.sum(present), 1.0)
    # Targets of absent colours are zeros that mean nothing: mask them out.
    weights = jnp.asarray(_regression_weights(settings))
    squared = jnp.square(heads["per_colour"] - targets["per_colour"]) * weights[None, None, :]
    regression = jnp.sum(jnp.sum(squared, axis=-1) * present) / num_present
    disc = optax.sigmoid_binary_cross_entropy(heads["disc"], targets["disc"])
    disc = jnp.sum(disc * present) / num_present
    losses = {
        "count": jnp.mean(count),
        "colours": jnp.mean(jnp.sum(colours, axis=-1)),
        "per_colour": regression,
        "disc": disc,
        "noise": _NOISE_WEIGHT * jnp.mean(jnp.square(heads["noise"] - targets["noise"])),
    }
    return sum(losses.values()), losses


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


def train_feature_params(settings: FeatureNetSettings) -> tuple[dict, dict[str, float]]:
    """Trains the network for ``settings`` (a pure function of them).

    Returns:
      ``(params, report)``: the Flax params (numpy), and held-out metrics (see
      ``heldout_metrics``) plus ``train_seconds``.
    """
    start_time = time.perf_counter()
    model = make_model(settings)
    dataset = settings.dataset()
    stats = target_stats(settings)
    batch = settings.batch_size
    params = init_params(settings)
    warmup = max(1, settings.steps // 20)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, settings.learning_rate, warmup, max(settings.steps, warmup + 1)
    )
    optimiser = optax.adam(schedule)
    opt_state = optimiser.init(params)

    @jax.jit
    def train_step(params, opt_state, clips, targets):
        grads, losses = jax.grad(lambda p: _loss(model, settings, p, clips, targets), has_aux=True)(
            params
        )
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, losses

    def load_step(step: int):
        indices = range(step * batch, (step + 1) * batch)
        return load_batch(dataset, indices, settings, stats, settings.noisy_fraction)

    # Rendering is numpy on the host; one thread renders the next batch while XLA runs this one.
    # Batch contents depend only on the step, so the overlap does not change the result.
    log_every = max(1, settings.steps // 10)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load_step, 0)
        for step in range(settings.steps):
            clips, targets = pending.result()
            if step + 1 < settings.steps:
                pending = pool.submit(load_step, step + 1)
            params, opt_state, losses = train_step(params, opt_state, clips, targets)
            if (step + 1) % log_every == 0:
                logger.info(
                    "shapes features %s: step %d/%d, losses %s",
                    "x".join(map(str, settings.clip_shape)),
                    step + 1,
                    settings.steps,
                    ", ".join(f"{k} {float(v):.3f}" for k, v in losses.items()),
                )
    params = jax.tree.map(np.asarray, jax.device_get(params))
    report = heldout_metrics(params, settings)
    report["train_seconds"] = time.perf_counter() - start_time
    return params, report


def heldout_metrics(params, settings: FeatureNetSettings, batch_size: int = 128) -> dict:
    """Accuracy of the heads on ``num_heldout`` clips never used for training.

    Returns:
      dict of floats: ``count_accuracy`` and ``chance_count_accuracy`` (always guessing the
      most frequent count); ``colour_label_accuracy`` (each of the 8 colours, present or not)
      and ``colour_set_accuracy`` (all 8 right); ``disc_accuracy`` (square or disc, present
      objects); ``position_rmse`` (first and last frame) and ``size_mae``, pixels. With T > 1
      also ``velocity_rmse``, ``speed_mae`` (pixels per frame, per object) and ``velocity_r2``
      (1 - MSE / variance of the true velocity components). ``noise_mae``: error of the noise
      head on the same clips, each with pixel noise of a random standard deviation in [0,
      MAX_NOISE] (in those units). Everything else is measured on clean clips.
    """
    model = make_model(settings)
    dataset = settings.dataset()
    stats = target_stats(settings)
    first = len(dataset) - settings.num_heldout
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x)[1])

    def run(noisy_fraction):
        outputs, all_targets = [], []
        for start in range(first, len(dataset), batch_size):
            indices = range(start, min(start + batch_size, len(dataset)))
            clips, targets = load_batch(dataset, indices, settings, stats, noisy_fraction)
            outputs.append(jax.device_get(apply(params, clips)))
            all_targets.append(targets)
        heads = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
        targets = {k: np.concatenate([t[k] for t in all_targets]) for k in all_targets[0]}
        return heads, targets

    noisy_heads, noisy_targets = run(1.0)
    noise_mae = float(np.mean(np.abs(noisy_heads["noise"] - noisy_targets["noise"]))) * MAX_NOISE
    heads, targets = run(0.0)
    present = targets["colours"] > 0.5
    mean, std = stats
    # Back to pixels (per frame); only present objects are scored.
    predicted = heads["per_colour"][present] * std + mean  # [objects, 8]
    truth = targets["per_colour"][present] * std + mean
    errors = predicted - truth
    columns = {name: i for i, name in enumerate(REGRESSION_TARGETS)}

    def rmse(names):
        return float(np.sqrt(np.mean(np.square(errors[:, [columns[n] for n in names]]))))

    counts = np.bincount(targets["count"], minlength=settings.num_objects[1] + 1)
    colour_right = (heads["colours"] > 0) == present
    metrics = {
        "count_accuracy": float(np.mean(np.argmax(heads["count"], -1) == targets["count"])),
        "chance_count_accuracy": float(counts.max() / counts.sum()),
        "colour_label_accuracy": float(np.mean(colour_right)),
        "colour_set_accuracy": float(np.mean(np.all(colour_right, axis=-1))),
        "disc_accuracy": float(
            np.mean((heads["disc"][present] > 0) == (targets["disc"][present] > 0.5))
        ),
        "position_rmse": rmse(["y0", "x0", "y1", "x1"]),
        "size_mae": float(np.mean(np.abs(errors[:, columns["size"]]))),
        "noise_mae": noise_mae,
    }
    if settings.num_frames > 1:
        velocity = truth[:, [columns["vy"], columns["vx"]]]
        variance = float(np.mean(np.square(velocity - velocity.mean(axis=0))))
        metrics["velocity_rmse"] = rmse(["vy", "vx"])
        metrics["velocity_r2"] = 1.0 - metrics["velocity_rmse"] ** 2 / max(variance, 1e-12)
        metrics["speed_mae"] = float(np.mean(np.abs(errors[:, columns["speed"]])))
    return metrics


@dataclasses.dataclass(frozen=True)
class ShapesFeatures:
    """Trained feature network: settings, params and how well its heads did on held-out clips.

    Attributes:
      settings: what it was trained on and how.
      params: Flax params of ``make_model(settings)``.
      heldout: metrics from ``heldout_metrics`` plus ``train_seconds``.
      path: the cache file it was loaded from or written to (None if not cached).
    """

    settings: FeatureNetSettings
    params: Any
    heldout: dict
    path: pathlib.Path | None = None

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """(T, H, W, C) of the clips the network accepts."""
        return self.settings.clip_shape

    @property
    def feature_dim(self) -> int:
        """D."""
        return self.settings.feature_dim

    def model(self) -> ShapesFeatureNet:
        """The Flax module."""
        return make_model(self.settings)

    def features(self, clips) -> np.ndarray:
        """Features of clips ``[N, T, H, W, C]`` (float in [-1, 1]) -> float32 ``[N, D]``.

        For many clips use ``gan_jax.metrics.shapes_fd.ShapesFD``, which batches and checks
        the input.
        """
        model = self.model()
        return np.asarray(model.apply({"params": self.params}, jnp.asarray(clips))[0])


def save_feature_params(path, features: ShapesFeatures) -> None:
    """Writes settings, held-out metrics and params to ``path`` (.npz) atomically."""
    path = pathlib.Path(path)
    arrays = {
        _SETTINGS_KEY: np.array(features.settings.to_json()),
        _METRICS_KEY: np.array(json.dumps(features.heldout, sort_keys=True)),
    }
    for key, value in traverse_util.flatten_dict(features.params, sep="/").items():
        arrays[_PARAM_PREFIX + key] = np.asarray(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name in the same directory, then an atomic rename: readers (and other
    # processes training the same settings) never see a partial file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as file:
            np.savez(file, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_feature_params(path, settings: FeatureNetSettings | None = None) -> ShapesFeatures:
    """Reads a file written by ``save_feature_params``.

    Args:
      path: the .npz file.
      settings: if given, the file must hold parameters for exactly these settings.

    Returns:
      The ``ShapesFeatures``.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"shapes feature params file {str(path)!r} does not exist")
    with np.load(path) as data:
        if _SETTINGS_KEY not in data.files:
            raise ValueError(
                f"{str(path)!r} is not a shapes feature params file (no {_SETTINGS_KEY!r}; has "
                f"{sorted(data.files)[:5]}...); delete it and train again"
            )
        stored = json.loads(str(data[_SETTINGS_KEY]))
        heldout = json.loads(str(data[_METRICS_KEY]))
        flat = {
            key[len(_PARAM_PREFIX) :]: np.array(data[key])
            for key in data.files
            if key.startswith(_PARAM_PREFIX)
        }
    version = stored.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} holds shapes feature params of format {version}, this code reads "
            f"format {FORMAT_VERSION}; delete the file to retrain"
        )
    loaded_settings = FeatureNetSettings(**stored)
    if settings is not None and loaded_settings != settings:
        raise ValueError(
            f"{str(path)!r} holds params for settings {loaded_settings}, not the requested "
            f"{settings}; the file was renamed or is corrupt: delete it to retrain"
        )
    params = traverse_util.unflatten_dict(flat, sep="/")
    _check_param_shapes(params, loaded_settings, path)
    return ShapesFeatures(loaded_settings, params, heldout, path)


def _check_param_shapes(params, settings: FeatureNetSettings, path) -> None:
    expected = jax.eval_shape(lambda: init_params(settings))
    want = {k: v.shape for k, v in traverse_util.flatten_dict(expected, sep="/").items()}
    have = {k: v.shape for k, v in traverse_util.flatten_dict(params, sep="/").items()}
    if want != have:
        differing = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        raise ValueError(
            f"{str(path)!r}: parameter shapes do not match the network for its settings (first "
            f"differences: {[(k, have.get(k), want.get(k)) for k in differing[:3]]}, as (name, "
            "in file, expected)); the file is corrupt: delete it to retrain"
        )


def get_feature_params(cache_dir, data, **settings) -> ShapesFeatures:
    """Loads the trained feature network for ``data`` from the cache, training it on a miss.

    Args:
      cache_dir: directory of the cache; None = ``<default_cache_dir()>/shapes_features``
        (``~/.cache/gan_jax/shapes_features``).
      data: ``(T, H, W, C)``, a bouncing_shapes data config (e.g. the trainer's ``cfg.data``)
        or a ``BouncingShapes`` source; see ``settings_for``.
      **settings: other ``FeatureNetSettings`` fields (widths, feature_dim, steps, seed, ...).

    Returns:
      ``ShapesFeatures``; ``heldout`` holds the accuracies measured when it was trained.
    """
    resolved = settings_for(data, **settings)
    if cache_dir is None:
        cache_dir = pathlib.Path(default_cache_dir()) / "shapes_features"
    path = pathlib.Path(cache_dir) / resolved.cache_name()
    if path.exists():
        return load_feature_params(path, resolved)
    logger.info("shapes features: no cache at %s, training (%d steps)", path, resolved.steps)
    params, report = train_feature_params(resolved)
    features = ShapesFeatures(resolved, params, report, path)
    save_feature_params(path, features)
    logger.info("shapes features: trained in %.1f s, held-out %s", report["train_seconds"], report)
    return features
