"""Samples from the EMA generator: drawing them, writing them, and the `sample` command.

Clips are written as one tiled video (`.mp4` and `.gif`, every sample a tile) and a PNG frame
grid (row = sample, column = frame). 2-D points are written as `.npy` and as a PNG with a
log-scaled histogram of the samples (white) over the true mode centres (red).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import imageio.v3 as iio
import jax
import numpy as np
from jax.sharding import Mesh
from ml_collections import config_dict

from gan_jax import build, config, parallel
from gan_jax.checkpoint import Checkpointer
from gan_jax.data.points import mixture
from gan_jax.io import frame_grid, tile_clips, write_video
from gan_jax.state import GANState, create_state

CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
# Salt of the fixed-noise key used for the samples written during training.
_SAMPLE_SALT = 0x5A3

Sampler = Callable[[GANState, jax.Array, int], np.ndarray]


def training_sample_key(seed: int) -> jax.Array:
    """The fixed noise key of the samples written during training (same at every step)."""
    return jax.random.fold_in(jax.random.key(seed), _SAMPLE_SALT)


def make_sampler(g, mesh: Mesh) -> Sampler:
    """`sampler(state, key, num) -> host array [num, ...]` from G's EMA weights.

    The noise `[num, z_dim]` is drawn from `key` inside the jitted function, sharded over the
    batch axis (padded to a multiple of the device count) and the samples come back replicated,
    so every process of a multi-host run can read them. Never donates the state.
    """
    num_devices = mesh.devices.size
    data, repl = parallel.batch_sharding(mesh), parallel.replicated(mesh)

    def draw(g_ema, g_stats, key, num):
        padded = num + (-num) % num_devices
        z = jax.lax.with_sharding_constraint(jax.random.normal(key, (padded, g.z_dim)), data)
        samples = g.apply({"params": g_ema, **g_stats}, z, train=False)
        return samples[:num]

    jitted = jax.jit(draw, static_argnums=(3,), out_shardings=repl)

    def sampler(state: GANState, key: jax.Array, num: int) -> np.ndarray:
        if num < 1:
            raise ValueError(f"number of samples must be >= 1, got {num}")
        return np.asarray(jax.device_get(jitted(state.g_ema, state.g_stats, key, int(num))))

    return sampler


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


def preview_image(samples: np.ndarray, cfg: config_dict.ConfigDict) -> np.ndarray:
    """uint8 `[H, W, 3]` picture of a batch of samples (frame grid or point histogram)."""
    if build.is_points(cfg):
        return rasterise_points(samples, cfg.data.name)
    return frame_grid(samples)


def write_samples(
    out_dir: str | os.PathLike, name: str, samples: np.ndarray, cfg: config_dict.ConfigDict
) -> list[Path]:
    """Writes a batch of samples as `out_dir/name.{mp4,gif,png}` (clips) or `.{npy,png}` (points).

    Args:
        out_dir: created if missing.
        name: file stem, e.g. "step_000500".
        samples: clips `[N, T, H, W, C]` in [-1, 1], or points `[N, 2]`.
        cfg: the run config (data kind, `log.fps`).

    Returns:
        The paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    if build.is_points(cfg):
        npy = out_dir / f"{name}.npy"
        np.save(npy, np.asarray(samples, np.float32))
        iio.imwrite(png, rasterise_points(samples, cfg.data.name), extension=".png")
        return [npy, png]
    tiled = tile_clips(samples)  # [T, rows * H, cols * W, 3]: the whole batch as one clip
    paths = []
    for extension in (".mp4", ".gif"):
        path = out_dir / f"{name}{extension}"
        write_video(path, tiled, fps=float(cfg.log.fps))
        paths.append(path)
    iio.imwrite(png, frame_grid(samples), extension=".png")
    return [*paths, png]


def abstract_state(gan: build.GAN, mesh: Mesh) -> GANState:
    """Shapes, dtypes and replicated shardings of the run's state, for restoring into."""
    shapes = jax.eval_shape(
        lambda key: create_state(key, gan.g, gan.d, gan.g_tx, gan.d_tx), jax.random.key(0)
    )
    sharding = parallel.replicated(mesh)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def load_run(
    workdir: str | os.PathLike, mesh: Mesh | None = None
) -> tuple[config_dict.ConfigDict, build.GAN, GANState, Mesh]:
    """Config, models and latest state of a training run, for sampling and evaluation.

    The config saved with the checkpoint is used (it is the one the state was trained with);
    WORKDIR/config.json is the fallback.

    Raises:
        FileNotFoundError: WORKDIR holds no finished checkpoint.
    """
    workdir = Path(workdir)
    directory = workdir / CHECKPOINT_DIR
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{workdir} has no {CHECKPOINT_DIR}/ directory: train first with "
            f"`gan-jax train --config ... --workdir {workdir}`"
        )
    mesh = parallel.make_mesh() if mesh is None else mesh
    with Checkpointer(directory) as ckpt:
        saved = ckpt.read_config()
        cfg = (
            config.config_from_dict(saved)
            if saved is not None
            else config.load_config_json(workdir / config.CONFIG_JSON)
        )
        gan = build.build(cfg)
        state, _, _ = ckpt.restore(abstract_state(gan, mesh))
    logging.info("Loaded %s at step %d", workdir, int(state.step))
    return cfg, gan, state, mesh


def sample_command(
    workdir: str | os.PathLike, num: int, out: str | os.PathLike, seed: int = 0
) -> list[Path]:
    """The `sample` command: `num` samples from the latest checkpoint's EMA generator.

    Writes `out/samples.{mp4,gif}` and `out/samples.png` for clips, `out/samples.{npy,png}`
    for points. Returns the paths.
    """
    cfg, gan, state, mesh = load_run(workdir)
    samples = make_sampler(gan.g, mesh)(state, jax.random.key(seed), num)
    if not np.all(np.isfinite(samples)):
        raise FloatingPointError(
            f"the generator of {workdir} at step {int(state.step)} produced non-finite samples"
        )
    paths = write_samples(out, "samples", samples, cfg) if jax.process_index() == 0 else []
    for path in paths:
        print(path)
    return paths
