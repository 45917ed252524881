"""Bouncing shapes: a procedural video dataset with ground truth, for tests and quality metrics.

A clip shows a few squares and discs of distinct palette colours on a black background. Each
object moves at a constant velocity and bounces off the walls (position and velocity are
reflected), so the whole trajectory has a closed form and example ``i`` is a pure function of
``(seed, i)``: the dataset is a random-access source (``__len__``/``__getitem__``) that grain can
shuffle and shard without any state.

Coordinates are in pixels, ``(y, x)``, continuous: pixel ``(i, j)`` covers ``[i, i + 1) x
[j, j + 1)`` and its centre is ``(i + 0.5, j + 0.5)``. An object of ``size`` s (side of a square,
diameter of a disc) centred at ``c`` stays fully inside the frame: ``s/2 <= c <= L - s/2``.

``render_shapes`` renders any given trajectory with the same rules, so that generated clips can be
compared with a rendering of the positions fitted to them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

from gan_jax.config import ConfigError
from gan_jax.data.pipeline import (
    clip_config,
    clip_spec,
    make_clip_dataset,
    resolve_data_config,
    source_keys,
)

# Distinct, saturated colours (uint8 RGB). A clip draws its colours from here without replacement,
# which is why a clip holds at most len(PALETTE) objects.
PALETTE = np.array(
    [
        [255, 0, 0],  # red
        [0, 255, 0],  # green
        [0, 0, 255],  # blue
        [255, 255, 0],  # yellow
        [0, 255, 255],  # cyan
        [255, 0, 255],  # magenta
        [255, 255, 255],  # white
        [255, 128, 0],  # orange
    ],
    dtype=np.uint8,
)
SQUARE = 0
DISC = 1
SHAPE_KINDS = {"square": SQUARE, "disc": DISC}
# ITU-R BT.601 luma, the usual RGB -> grey weights.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@functools.cache
def colour_table(channels: int) -> np.ndarray:
    """Colour lookup table in [-1, 1]: row 0 is the black background, row 1 + c is PALETTE[c].

    Args:
      channels: 3 for RGB, 1 for grey (BT.601 luma).

    Returns:
      float32 ``[1 + len(PALETTE), channels]``, read-only (it is cached).
    """
    rgb = np.concatenate([np.zeros((1, 3), np.float32), PALETTE.astype(np.float32)]) / 255.0
    if channels == 1:
        table = rgb @ _LUMA[:, None]
    elif channels == 3:
        table = rgb
    else:
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    table = (table * 2.0 - 1.0).astype(np.float32)
    table.flags.writeable = False
    return table


def bounce(
    start: np.ndarray, velocity: np.ndarray, low: np.ndarray, high: np.ndarray, num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of points bouncing between walls, in closed form.

    Unfolding the reflections turns bouncing into free motion on a line of period
    ``2 * (high - low)``; folding that back gives a triangle wave, which is exact (no time step).

    Args:
      start: ``[K, 2]`` positions at frame 0, within ``[low, high]``.
      velocity: ``[K, 2]`` velocities at frame 0, pixels per frame.
      low: ``[K, 2]`` lowest allowed position per object and axis.
      high: ``[K, 2]`` highest allowed position; ``high >= low``.
      num_frames: T.

    Returns:
      ``(positions [T, K, 2], velocities [T, K, 2])`` float32; the velocity at frame t is the one
      the object moves with after frame t (its sign flips at the frame where it reaches a wall).
    """
    low = np.asarray(low, np.float64)
    span = np.asarray(high, np.float64) - low
    # An object as wide as the frame cannot move along that axis.
    velocity = np.where(span > 0, np.asarray(velocity, np.float64), 0.0)
    period = 2.0 * np.maximum(span, 1e-9)
    times = np.arange(num_frames, dtype=np.float64)[:, None, None]
    phase = np.mod((np.asarray(start, np.float64) - low) + velocity * times, period)
    going_back = phase >= span
    positions = low + np.where(going_back, period - phase, phase)
    velocities = np.where(going_back, -velocity, velocity)
    return positions.astype(np.float32), velocities.astype(np.float32)


def render_shapes(
    positions: np.ndarray,
    sizes: np.ndarray,
    shape_kinds: np.ndarray,
    colour_ids: np.ndarray,
    object_mask: np.ndarray | None = None,
    *,
    height: int,
    width: int,
    channels: int = 3,
    antialias: bool = False,
) -> np.ndarray:
    """Renders shapes at given positions; objects later in K are drawn on top.

    Args:
      positions: ``[T, K, 2]`` centres, pixels, ``(y, x)``.
      sizes: ``[K]`` side of a square or diameter of a disc, pixels.
      shape_kinds: ``[K]`` int, ``SQUARE`` (0) or ``DISC`` (1).
      colour_ids: ``[K]`` int indices into ``PALETTE``.
      object_mask: ``[K]`` bool, False for padding objects (not drawn); None = all drawn.
      height: H of the frame.
      width: W of the frame.
      channels: 3 (RGB) or 1 (grey).
      antialias: if True, blend each object by its pixel coverage (exact area for squares, a
        one-pixel ramp for discs); if False, a pixel takes an object's colour when its centre lies
        inside the object (crisp and cheaper).

    Returns:
      float32 ``[T, H, W, channels]`` in [-1, 1] (background -1).
    """
    positions = np.asarray(positions, np.float32)
    if positions.ndim != 3 or positions.shape[-1] != 2:
        raise ValueError(f"positions must be [T, K, 2], got shape {positions.shape}")
    num_objects = positions.shape[1]
    sizes = np.asarray(sizes, np.float32).reshape(num_objects)
    shape_kinds = np.asarray(shape_kinds).reshape(num_objects)
    colour_ids = np.asarray(colour_ids).reshape(num_objects)
    if object_mask is None:
        object_mask = np.ones(num_objects, bool)
    object_mask = np.asarray(object_mask, bool).reshape(num_objects)
    drawn = colour_ids[object_mask]
    if drawn.size and (drawn.min() < 0 or drawn.max() >= len(PALETTE)):
        raise ValueError(f"colour_ids must lie in [0, {len(PALETTE)}), got {colour_ids}")
    table = colour_table(channels)
    num_frames = positions.shape[0]
    channels = table.shape[1]
    canvas = np.empty((num_frames, height, width, channels), np.float32)
    # The background is black, the same value in every channel: a scalar fill is far cheaper
    # than broadcasting a colour vector.
    canvas.fill(table[0, 0])
    # Pixels are addressed through flat indices into [T * H * W] and each pixel's C floats are
    # viewed as one opaque item: numpy then moves whole pixels, which is much cheaper than
    # broadcasting index arrays against a channel axis.
    pixel_item = np.dtype((np.void, 4 * channels))
    canvas_pixels = canvas.reshape(num_frames * height * width, channels)
    canvas_items = canvas_pixels.view(pixel_item).reshape(-1)
    table_items = table.view(pixel_item).reshape(-1)
    frame_offsets = (np.arange(num_frames) * height)[:, None]
    for k in np.flatnonzero(object_mask):
        if shape_kinds[k] not in (SQUARE, DISC):
            raise ValueError(f"shape_kinds[{k}] = {shape_kinds[k]}; allowed: {SHAPE_KINDS}")
        half = float(sizes[k]) / 2.0
        # Work in a window around the object that follows it through time, [T, B, B]: an object
        # covers a few hundred pixels, so this costs far less than a full-frame test per object.
        window = int(np.ceil(2.0 * half + 1.0)) + 2
        offsets = np.arange(window)
        top = np.floor(positions[:, k, 0] - half - 0.5).astype(np.int64)
        left = np.floor(positions[:, k, 1] - half - 0.5).astype(np.int64)
        # Clipping repeats edge pixels; repeats compute the same value, so writing them is safe.
        # (np.minimum/np.maximum: np.clip has a high fixed cost on small arrays.)
        rows = np.minimum(np.maximum(top[:, None] + offsets, 0), height - 1)  # [T, B]
        cols = np.minimum(np.maximum(left[:, None] + offsets, 0), width - 1)  # [T, B]
        coverage = _coverage(
            rows[:, :, None].astype(np.float32),
            cols[:, None, :].astype(np.float32),
            positions[:, k, 0][:, None, None],
            positions[:, k, 1][:, None, None],
            half,
            shape_kinds[k],
            antialias,
        )
        pixels = ((frame_offsets + rows) * width)[:, :, None] + cols[:, None, :]  # [T, B, B]
        if antialias:
            colour = table[colour_ids[k] + 1]
            region = np.take(canvas_pixels, pixels, axis=0)  # [T, B, B, C]
            region += coverage[..., None] * (colour - region)
            canvas_items[pixels] = region.view(pixel_item)[..., 0]
        else:
            canvas_items[pixels[coverage]] = table_items[colour_ids[k] + 1]
    return canvas


def _coverage(rows, cols, centre_y, centre_x, half, kind, antialias):
    """How much of pixels ``(rows, cols)`` an object covers: bool (crisp) or float in [0, 1].

    Args:
      rows: ``[T, B, 1]`` pixel row indices (float).
      cols: ``[T, 1, B]`` pixel column indices (float).
      centre_y: ``[T, 1, 1]`` object centre.
      centre_x: ``[T, 1, 1]``.
      half: half the object size.
      kind: SQUARE or DISC.
      antialias: False: whether the pixel centre lies inside; True: covered fraction (exact area
        for squares, a one-pixel ramp across the edge for discs).

    Returns:
      ``[T, B, B]`` bool or float32.
    """
    if kind == SQUARE:
        if not antialias:
            return (np.abs(rows + 0.5 - centre_y) < half) & (np.abs(cols + 0.5 - centre_x) < half)
        # Overlap of [i, i + 1) with [c - half, c + half) per axis; the area is their product.
        cover_rows = np.minimum(rows + 1.0, centre_y + half) - np.maximum(rows, centre_y - half)
        cover_cols = np.minimum(cols + 1.0, centre_x + half) - np.maximum(cols, centre_x - half)
        return np.clip(cover_rows, 0, 1) * np.clip(cover_cols, 0, 1)
    squared_distance = (rows + 0.5 - centre_y) ** 2 + (cols + 0.5 - centre_x) ** 2
    if not antialias:
        return squared_distance <= half * half
    return np.clip(half + 0.5 - np.sqrt(squared_distance), 0, 1)


class SettingError(ValueError):
    """A `BouncingShapes` setting out of range; ``validate`` names it as its config key.

    Attributes:
      field: the `BouncingShapes` field (``data.<field>`` in the config, but ``seed`` is
        ``data.dataset_seed``).
      value: the value given.
      reason: what is wrong, e.g. "must lie in [1, 8]".
    """

    def __init__(self, field: str, value, reason: str):
        super().__init__(f"bouncing_shapes: {field} = {value!r} {reason}")
        self.field, self.value, self.reason = field, value, reason

    def __reduce__(self):  # Keeps the attributes when a grain worker sends the error back.
        return type(self), (self.field, self.value, self.reason)


def _as_range(value, name: str, cast) -> tuple:
    """Turns a scalar or a (min, max) pair into a checked (min, max) tuple."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise SettingError(name, value, "must be a number or a (min, max) pair")
        low, high = cast(value[0]), cast(value[1])
    else:
        low = high = cast(value)
    if low > high:
        raise SettingError(name, value, "has min > max; give (min, max)")
    return low, high


@dataclasses.dataclass(frozen=True)
class BouncingShapes:
    """Random-access source of bouncing-shapes clips; ``ds[i]`` depends only on (seed, i).

    Attributes:
      num_frames: T.
      height: H.
      width: W.
      channels: 3 (RGB) or 1 (grey).
      num_objects: objects per clip, an int or an inclusive (min, max) range; at most
        ``len(PALETTE)`` (8) because colours are distinct within a clip.
      size_range: inclusive (min, max) object size in pixels (square side / disc diameter);
        min >= 2 so that the pixel holding the centre is always covered, max <= min(H, W).
      speed_range: (min, max) speed in pixels per frame; the direction is uniform.
      shapes: which kinds to draw from, any of "square", "disc".
      antialias: blend edges by coverage (see ``render_shapes``).
      length: ``len(ds)``: number of distinct examples (an epoch).
      seed: seed of the whole dataset.
    """

    num_frames: int = 16
    height: int = 64
    width: int = 64
    channels: int = 3
    num_objects: int | tuple[int, int] = (1, 3)
    size_range: tuple[float, float] = (8.0, 16.0)
    speed_range: tuple[float, float] = (1.0, 3.0)
    shapes: tuple[str, ...] = ("square", "disc")
    antialias: bool = False
    length: int = 2**20
    seed: int = 0

    def __post_init__(self):
        for name in ("num_frames", "height", "width", "length"):
            if int(getattr(self, name)) < 1:
                raise SettingError(name, getattr(self, name), "must be >= 1")
        if self.channels not in (1, 3):
            raise SettingError("channels", self.channels, "must be 1 (grey) or 3 (RGB)")
        min_objects, max_objects = _as_range(self.num_objects, "num_objects", int)
        if min_objects < 1 or max_objects > len(PALETTE):
            raise SettingError(
                "num_objects",
                self.num_objects,
                f"must lie in [1, {len(PALETTE)}] (one distinct palette colour per object), "
                f"e.g. (1, {len(PALETTE)})",
            )
        min_size, max_size = _as_range(self.size_range, "size_range", float)
        if min_size < 2 or max_size > min(self.height, self.width):
            raise SettingError(
                "size_range",
                self.size_range,
                f"must lie in [2, min(height, width) = {min(self.height, self.width)}]",
            )
        min_speed, max_speed = _as_range(self.speed_range, "speed_range", float)
        if min_speed < 0:
            raise SettingError("speed_range", self.speed_range, "must be >= 0")
        shapes = (self.shapes,) if isinstance(self.shapes, str) else tuple(self.shapes)
        unknown = [s for s in shapes if s not in SHAPE_KINDS]
        if not shapes or unknown:
            raise SettingError(
                "shapes", self.shapes, f"is not allowed: use any of {sorted(SHAPE_KINDS)}"
            )
        if not 0 <= int(self.seed) < 2**63:
            raise SettingError("seed", self.seed, "must be a non-negative int < 2**63")
        # Frozen dataclass: store the normalised forms through object.__setattr__.
        object.__setattr__(self, "num_objects", (min_objects, max_objects))
        object.__setattr__(self, "size_range", (min_size, max_size))
        object.__setattr__(self, "speed_range", (min_speed, max_speed))
        object.__setattr__(self, "shapes", shapes)
        # Derived constants, cached for sample_scene (not dataclass fields: no effect on eq/repr).
        object.__setattr__(self, "_kind_choices", np.array([SHAPE_KINDS[s] for s in shapes]))
        object.__setattr__(self, "_frame_size", np.array([self.height, self.width], np.float64))

    @property
    def max_objects(self) -> int:
        """K: the object axis of the ground truth is padded to this."""
        return self.num_objects[1]

    def __len__(self) -> int:
        return int(self.length)

    def sample_scene(self, index: int) -> dict[str, np.ndarray]:
        """Ground truth of example ``index`` without rendering it.

        Returns:
          dict with ``positions`` float32 [T, K, 2], ``velocities`` float32 [K, 2] (at frame 0),
          ``frame_velocities`` float32 [T, K, 2], ``sizes`` float32 [K], ``shape_kinds`` int32
          [K], ``colour_ids`` int32 [K], ``object_mask`` bool [K], ``label`` int32 (number of
          objects). Padding objects (mask False) have zeros everywhere.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"bouncing_shapes: index {index} out of range [0, {len(self)})")
        rng = np.random.default_rng([int(self.seed), int(index)])
        count = int(rng.integers(self.num_objects[0], self.num_objects[1] + 1))
        # One draw for all continuous variables: each generator call has a fixed cost that
        # dominates at these sizes. Columns: size, shape kind, start y, start x, speed, angle.
        uniforms = rng.random((count, 6))
        colours = rng.permutation(len(PALETTE))[:count]
        min_size, max_size = self.size_range
        sizes = min_size + uniforms[:, 0] * (max_size - min_size)
        kinds = self._kind_choices[(uniforms[:, 1] * len(self._kind_choices)).astype(np.int64)]
        low = np.repeat((sizes / 2)[:, None], 2, axis=1)  # [count, 2]
        high = self._frame_size - low
        start = low + uniforms[:, 2:4] * (high - low)
        min_speed, max_speed = self.speed_range
        speed = min_speed + uniforms[:, 4] * (max_speed - min_speed)
        angle = uniforms[:, 5] * (2 * np.pi)
        velocity = speed[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
        positions, frame_velocities = bounce(start, velocity, low, high, self.num_frames)

        max_k = self.max_objects
        scene = {
            "positions": np.zeros((self.num_frames, max_k, 2), np.float32),
            "velocities": np.zeros((max_k, 2), np.float32),
            "frame_velocities": np.zeros((self.num_frames, max_k, 2), np.float32),
            "sizes": np.zeros(max_k, np.float32),
            "shape_kinds": np.zeros(max_k, np.int32),
            "colour_ids": np.zeros(max_k, np.int32),
            "object_mask": np.arange(max_k) < count,
            "label": np.int32(count),
        }
        scene["positions"][:, :count] = positions
        scene["velocities"][:count] = velocity
        scene["frame_velocities"][:, :count] = frame_velocities
        scene["sizes"][:count] = sizes
        scene["shape_kinds"][:count] = kinds
        scene["colour_ids"][:count] = colours
        return scene

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        """Example ``index``: ``sample_scene(index)`` plus ``video`` float32 [T, H, W, C]."""
        scene = self.sample_scene(int(index))
        scene["video"] = render_shapes(
            scene["positions"],
            scene["sizes"],
            scene["shape_kinds"],
            scene["colour_ids"],
            scene["object_mask"],
            height=self.height,
            width=self.width,
            channels=self.channels,
            antialias=self.antialias,
        )
        return scene


# ---------------------------------------------------------------------------------------------
# The dataset "bouncing_shapes" (gan_jax.data.datasets): config, spec, batches


def default_config():
    """Every key of `cfg.data` for bouncing shapes (clip shape, pipeline, scene), with defaults."""
    cfg = clip_config("bouncing_shapes")
    cfg.num_objects = (1, 3)
    cfg.size_range = (8.0, 16.0)
    cfg.speed_range = (1.0, 3.0)
    cfg.shapes = ("square", "disc")
    cfg.antialias = False
    cfg.length = 2**20
    cfg.dataset_seed = 0
    return cfg


def make_source(resolved, *, seed: int = 0) -> BouncingShapes:
    """The source of a resolved config; its content is set by `dataset_seed`, not `seed`."""
    keys = source_keys(resolved)
    keys["seed"] = keys.pop("dataset_seed")
    return BouncingShapes(**keys)


# BouncingShapes fields whose config key has another name.
_CONFIG_KEYS = {"seed": "dataset_seed"}


def validate(data_cfg) -> None:
    """Builds the source, so that every setting is checked before training starts.

    Raises:
      ConfigError: naming the key (``data.num_objects``), the value and the allowed range.
    """
    try:
        make_source(resolve_data_config(data_cfg))
    except SettingError as err:
        key = _CONFIG_KEYS.get(err.field, err.field)
        raise ConfigError(f"data.{key} = {err.value!r} {err.reason}") from None


def spec(data_cfg, batch_size: int):
    """Clips `[T, H, W, C]` and `label`, the number of objects (0 to max)."""
    resolved = resolve_data_config(data_cfg)
    return clip_spec(resolved, batch_size, make_source(resolved).max_objects + 1)


def make_dataset(data_cfg, **kwargs):
    """Batches of the clip pipeline (`gan_jax.data.pipeline.make_clip_dataset`)."""
    return make_clip_dataset(data_cfg, **kwargs)
