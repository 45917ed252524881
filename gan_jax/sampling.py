"""Samples from the EMA generator: drawing them, writing them, and the `sample` command.

The sampler draws G's latents (the pytree `g.latent_shapes` declares) and takes the condition
from the objective (`sample_cond`: nothing for unconditional runs), or from the caller; what it
returns is the objective's clip (`[N, T, H, W, C]` for video, `[N, 2]` for points).

`--num-frames` samples clips of another length than the run was trained on: G is built again
for that many frames and must take the trained parameters as they are (`generator_for_frames`),
which holds for families whose parameters do not depend on T (`mocogan`), not for `video_dcgan`.

Clips are written as one tiled video (`.mp4` and `.gif`, every sample a tile) and a PNG frame
grid (row = sample, column = frame). 2-D points are written as `.npy` and as a PNG with a
log-scaled histogram of the samples (white) over the true mode centres (red).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import flax.linen as nn
import imageio.v3 as iio
import jax
import numpy as np
from jax.sharding import Mesh
from ml_collections import config_dict

from gan_jax import build, models, parallel
from gan_jax.config import ConfigError
from gan_jax.data.points import mixture
from gan_jax.data.spec import DataSpec
from gan_jax.io import frame_grid, tile_clips, write_video
from gan_jax.io.atomic import atomic_write
from gan_jax.models import draw_latents, zero_latents
from gan_jax.objectives import Objective, Unconditional
from gan_jax.standing_stats import make_standing_stats
from gan_jax.state import GANState
from gan_jax.workdir import load_run

# Salt of the fixed-noise key used for the samples written during training.
_SAMPLE_SALT = 0x5A3
# Salt of the key of conditions drawn without data (e.g. random labels).
_COND_SALT = 0xC0D

Sampler = Callable[..., np.ndarray]


def training_sample_key(seed: int) -> jax.Array:
    """The fixed noise key of the samples written during training (same at every step)."""
    return jax.random.fold_in(jax.random.key(seed), _SAMPLE_SALT)


def make_sampler(g, mesh: Mesh, objective: Objective | None = None) -> Sampler:
    """`sampler(state, key, num, cond=None) -> host array [num, ...]` from G's EMA weights.

    The latents are drawn from `key` inside the jitted function, sharded over the batch axis
    (padded to a multiple of the device count); `cond` (host arrays `[num, ...]`) is what G is
    conditioned on, by default the objective's `sample_cond`. The samples come back replicated,
    so every process of a multi-host run can read them. Never donates the state.
    """
    objective = Unconditional() if objective is None else objective
    num_devices = mesh.devices.size
    data, repl = parallel.batch_sharding(mesh), parallel.replicated(mesh)

    def draw(g_ema, g_stats, key, cond, num):
        padded = num + (-num) % num_devices

        def normal(k, shape):
            return jax.lax.with_sharding_constraint(jax.random.normal(k, (padded, *shape)), data)

        latents = draw_latents(key, g.latent_shapes, normal)
        if cond is None:
            cond = objective.sample_cond(jax.random.fold_in(key, _COND_SALT), padded)
        else:
            cond = jax.tree.map(lambda x: _pad_rows(x, padded), cond)
        samples = g.apply(
            {"params": g_ema, **g_stats}, latents, objective.g_inputs(cond), train=False
        )
        return objective.clip(samples, cond)[:num]

    jitted = jax.jit(draw, static_argnums=(4,), out_shardings=repl)

    def sampler(state: GANState, key: jax.Array, num: int, cond=None) -> np.ndarray:
        if num < 1:
            raise ValueError(f"number of samples must be >= 1, got {num}")
        out = jitted(state.g_ema, state.g_stats, key, cond, int(num))
        return np.asarray(jax.device_get(out))

    return sampler


def _pad_rows(x: jax.Array, rows: int) -> jax.Array:
    """`[n, ...]` -> `[rows, ...]`, repeating the last row (padding rows are dropped after)."""
    n = x.shape[0]
    if n == rows:
        return x
    return jax.numpy.concatenate([x, jax.numpy.repeat(x[-1:], rows - n, axis=0)])


def needs_data_conditions(objective) -> bool:
    """Whether G's conditions can only come from real data (see `gan_jax.objectives.base`)."""
    return bool(getattr(objective, "conditions_from_data", False))


def data_conditions(cfg, run, num: int, seed: int):
    """Conditions for `num` samples taken from real data (host arrays `[num, ...]`), for
    objectives that need them, else None. The data order is fixed by `seed`, so the samples
    written during training show the same conditions at every step."""
    if not needs_data_conditions(run.objective):
        return None
    iterator = build.make_data(
        cfg, batch_size=num, seed=seed + _COND_SALT, process_index=0, process_count=1
    )
    try:
        batch = next(iterator)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    cond, _ = run.objective.split({k: np.asarray(v) for k, v in batch.items()})
    return jax.tree.map(np.asarray, cond)


def class_labels(objective, num: int, label: int | None, run_dir) -> np.ndarray | None:
    """The labels `[num]` of a class-conditional run's samples: all `label`, or the objective's
    classes in turn, sorted; None for other runs (where `label` is an error)."""
    classes = getattr(objective, "labels", None)
    if classes is None:
        if label is not None:
            raise ConfigError(
                f"--label {label}: {run_dir} is not class-conditional (its objective takes no "
                "labels); train with objective.name='class_conditional' or leave out --label"
            )
        return None
    if label is None:
        return np.sort(np.resize(np.asarray(classes, np.int32), num))
    if not 0 <= label < objective.num_classes:
        raise ConfigError(
            f"--label {label}: {run_dir}'s classes are 0 .. {objective.num_classes - 1}"
        )
    return np.full((num,), label, np.int32)


def rasterise_points(points: np.ndarray, dataset: str, size: int = 256) -> np.ndarray:
    """A picture of 2-D samples: log-scaled counts in white, the true mode centres in red.

    Args:
        points: `[N, 2]` samples.
        dataset: "ring" or "grid" (sets the view and the centres).
        size: picture side in pixels.

    Returns:
        uint8 `[size, size, 3]`; x to the right, y up. Points outside the view are left out.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be [N, 2], got shape {points.shape}")
    centres, std = mixture(dataset)
    half = float(np.abs(centres).max()) + max(0.5, 10 * std)
    edges = np.linspace(-half, half, size + 1)
    finite = points[np.all(np.isfinite(points), axis=1)]
    counts, _, _ = np.histogram2d(finite[:, 0], finite[:, 1], bins=(edges, edges))
    # histogram2d is indexed [x, y]; images are [row, col] with row 0 at the top.
    counts = counts.T[::-1]
    level = np.log1p(counts) / max(np.log1p(counts.max()), 1e-9)
    image = np.repeat((255 * level).astype(np.uint8)[:, :, None], 3, axis=2)
    cols = np.clip(np.searchsorted(edges, centres[:, 0]) - 1, 0, size - 1)
    rows = size - 1 - np.clip(np.searchsorted(edges, centres[:, 1]) - 1, 0, size - 1)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if abs(dr) + abs(dc) < 2:  # a small plus sign per centre
                image[np.clip(rows + dr, 0, size - 1), np.clip(cols + dc, 0, size - 1)] = (
                    255,
                    0,
                    0,
                )
    return image


def preview_image(samples: np.ndarray, data_name: str) -> np.ndarray:
    """uint8 `[H, W, 3]` picture of a batch of samples (frame grid or point histogram)."""
    if np.ndim(samples) == 2:
        return rasterise_points(samples, data_name)
    return frame_grid(samples)


def write_samples(
    out_dir: str | os.PathLike, name: str, samples: np.ndarray, data_name: str, fps: float
) -> list[Path]:
    """Writes a batch of samples as `out_dir/name.{mp4,gif,png}` (clips) or `.{npy,png}` (points).

    Args:
        out_dir: created if missing.
        name: file stem, e.g. "step_000500".
        samples: clips `[N, T, H, W, C]` in [-1, 1], or points `[N, 2]`.
        data_name: the dataset (`cfg.data.name`; for points, which mode centres to draw).
        fps: frame rate of the videos (`cfg.log.fps`).

    Returns:
        The paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if np.ndim(samples) == 2:
        npy = write_npy(out_dir / f"{name}.npy", np.asarray(samples, np.float32))
        return [npy, write_png(out_dir / f"{name}.png", rasterise_points(samples, data_name))]
    return write_clips(out_dir, name, samples, fps)


def write_clips(out_dir, name: str, clips, fps: float, cols: int | None = None) -> list[Path]:
    """`name.mp4` and `name.gif` (the clips `[N, T, H, W, C]` in [-1, 1] tiled into one video,
    `cols` tiles a row; None: about square) and `name.png` (row = clip, column = frame) in the
    existing directory `out_dir`. Returns the paths."""
    out_dir = Path(out_dir)
    tiled = tile_clips(clips, cols=cols)  # [T, rows * H, cols * W, 3]: the batch as one clip
    paths = []
    for extension in (".mp4", ".gif"):
        path = out_dir / f"{name}{extension}"
        write_video(path, tiled, fps=float(fps))
        paths.append(path)
    return [*paths, write_png(out_dir / f"{name}.png", frame_grid(clips))]


def write_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """`array` as a .npy file at `path`, written atomically."""

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as file:  # a file object: np.save would add ".npy" to a path
            np.save(file, array)

    return atomic_write(path, save)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """uint8 `image` `[H, W, 3]` as a PNG at `path`, written atomically."""
    return atomic_write(path, lambda tmp: iio.imwrite(tmp, image, extension=".png"))


def spec_with_frames(spec: DataSpec, num_frames: int) -> DataSpec:
    """`spec` with clips of `num_frames` frames (`[T, H, W, C]` -> `[num_frames, H, W, C]`)."""
    fields = tuple(
        (key, (num_frames, *shape[1:]) if key == spec.sample_key else shape, dtype)
        for key, shape, dtype in spec.fields
    )
    return dataclasses.replace(spec, fields=fields)


def _path_text(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    """Every leaf's shape by its '/'-joined path ("params/frames/project/kernel")."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {_path_text(path): tuple(leaf.shape) for path, leaf in leaves}


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "absent" if shape is None else str(shape)


def generator_for_frames(
    cfg: config_dict.ConfigDict, run: build.Run, state: GANState, num_frames: int
) -> nn.Module:
    """The run's G built for clips of `num_frames` frames, checked to take its trained state.

    Args:
        cfg: the run's config (G's family and keys, the objective's name).
        run: the run's parts, built for the frames it was trained on.
        state: its restored state (`g_ema` and `g_stats` are what the new G must take).
        num_frames: frames of the clips to sample.

    Returns:
        `run.g` itself where `num_frames` is the trained length, else a new G module.

    Raises:
        ConfigError: the data are not clips, `num_frames` < 1, the objective takes G's
            conditions from real clips (of the trained length), or G's parameters or
            statistics depend on the number of frames (naming the family and the first
            parameter whose shape changes).
    """
    if not run.is_video:
        raise ConfigError(
            f"--num-frames needs clips, but data.name={cfg.data.name!r} has samples of shape "
            f"{run.sample_shape}"
        )
    if num_frames < 1:
        raise ConfigError(f"--num-frames must be >= 1, got {num_frames}")
    trained = run.sample_shape[0]
    if num_frames == trained:
        return run.g
    if needs_data_conditions(run.objective):
        raise ConfigError(
            f"--num-frames {num_frames}: objective.name={cfg.objective.name!r} conditions G on "
            f"real clips of data.num_frames={trained} frames; only objectives that draw G's "
            "conditions themselves (unconditional, labels) sample other lengths"
        )
    spec = spec_with_frames(run.spec, num_frames)
    g = models.family(cfg.g.name, "g").make_generator(cfg.g, spec)
    cond, _ = run.objective.split(spec.example_batch(2))
    g_cond = run.objective.g_inputs(cond)
    latents = zero_latents(g.latent_shapes, 2)
    built = jax.eval_shape(lambda: g.init(jax.random.key(0), latents, g_cond, train=False))
    have, want = _shapes({"params": state.g_ema, **state.g_stats}), _shapes(built)
    for path in sorted(have.keys() | want.keys()):
        if have.get(path) != want.get(path):
            raise ConfigError(
                f"model family {cfg.g.name!r} cannot change the number of frames: its "
                f"generator's parameters depend on it ({path} is {_shape_text(have.get(path))} "
                f"for the {trained} frames it was trained on, {_shape_text(want.get(path))} for "
                f"{num_frames}); leave out --num-frames (or pass {trained}), or train a family "
                "whose parameters do not depend on T (e.g. 'mocogan')"
            )
    out = jax.eval_shape(lambda v: g.apply(v, latents, g_cond, train=False), built)
    if out.ndim != 5 or out.shape[1] != num_frames:
        raise ConfigError(
            f"model family {cfg.g.name!r} built for --num-frames {num_frames} makes samples of "
            f"shape {tuple(out.shape[1:])}, not clips of {num_frames} frames"
        )
    return g


def set_standing_stats(cfg, run, num_batches: int | None) -> None:
    """Replaces a loaded run's `ema.standing_stats` by `num_batches` (the commands'
    `--standing-stats`; 0 turns them off), in place; None keeps the run's.

    Raises:
        ConfigError: the run's objective conditions G on real data (video prediction).
    """
    if num_batches is None:
        return
    if num_batches < 0:
        raise ConfigError(f"--standing-stats must be >= 0, got {num_batches}")
    with cfg.unlocked():
        cfg.ema.standing_stats = int(num_batches)
    build.check_standing_stats(cfg, run.objective)


def sample_command(
    run_dir: str | os.PathLike,
    num: int,
    out: str | os.PathLike,
    seed: int = 0,
    num_frames: int | None = None,
    label: int | None = None,
    *,
    standing_stats: int | None = None,
) -> list[Path]:
    """The `sample` command: `num` samples from the latest checkpoint's EMA generator.

    Writes `out/samples.{mp4,gif}` and `out/samples.png` for clips, `out/samples.{npy,png}`
    for points. With `num_frames`, the clips have that many frames (`generator_for_frames`;
    ConfigError where G cannot make them). G's batch norms use its standing statistics where
    the run sets `ema.standing_stats`, or `standing_stats` asks for them (`set_standing_stats`).
    A class-conditional run draws every sample of
    class `label`, or without it the classes in turn, sorted (rows of one class together).
    Returns the paths.
    """
    cfg, run, state, mesh = load_run(run_dir)
    set_standing_stats(cfg, run, standing_stats)
    g = run.g if num_frames is None else generator_for_frames(cfg, run, state, num_frames)
    cond = data_conditions(cfg, run, num, seed)
    labels = class_labels(run.objective, num, label, run_dir)
    if labels is not None:
        cond = labels
    state = make_standing_stats(cfg, g, run.objective, mesh)(state)
    samples = make_sampler(g, mesh, run.objective)(state, jax.random.key(seed), num, cond)
    if not np.all(np.isfinite(samples)):
        raise FloatingPointError(
            f"the generator of {run_dir} at step {int(state.step)} produced non-finite samples"
        )
    paths = []
    if jax.process_index() == 0:
        paths = write_samples(out, "samples", samples, cfg.data.name, cfg.log.fps)
    for path in paths:
        print(path)
    return paths
