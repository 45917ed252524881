"""Laying a batch of clips out as one picture (samples x time) or as one clip (a tiled batch)."""

from __future__ import annotations

import math
import os

import imageio.v3 as iio
import numpy as np

from gan_jax.io.writer import to_uint8

SEPARATOR_PX = 2  # width of the lines between cells of frame_grid
SEPARATOR_VALUE = 255  # white: visible against the dark backgrounds most samples have


def _rgb_clips(clips, what: str) -> np.ndarray:
    """``clips`` -> uint8 ``[N, T, H, W, 3]``; grey (C=1) is repeated to RGB."""
    batch = to_uint8(clips)
    if batch.ndim != 5 or batch.shape[-1] not in (1, 3) or 0 in batch.shape:
        raise ValueError(
            f"{what}: clips must be [N, T, H, W, C] with C in {{1, 3}} and no empty axis, got "
            f"shape {batch.shape}; images are clips with T=1"
        )
    if batch.shape[-1] == 1:
        batch = np.repeat(batch, 3, axis=-1)
    return batch


def frame_grid(clips) -> np.ndarray:
    """One picture of a batch: row ``n`` is sample ``n``, column ``t`` its frame ``t``.

    Cells are separated by ``SEPARATOR_PX`` white lines (none around the border), so frame
    ``t`` of sample ``n`` starts at row ``n * (H + SEPARATOR_PX)``, column
    ``t * (W + SEPARATOR_PX)``.

    Args:
        clips: ``[N, T, H, W, C]``, C in {1, 3}; uint8 or float in [-1, 1] (see ``to_uint8``).

    Returns:
        uint8 ``[N * H + (N - 1) * SEPARATOR_PX, T * W + (T - 1) * SEPARATOR_PX, 3]``.
    """
    batch = _rgb_clips(clips, "frame_grid")
    num, steps, height, width, _ = batch.shape
    cell_h, cell_w = height + SEPARATOR_PX, width + SEPARATOR_PX
    # Build the grid with one extra separator after the last row and column, so it reshapes to
    # [N, H + sep, T, W + sep, 3] cells whose top-left H x W corners take the frames; then trim.
    padded = np.full((num * cell_h, steps * cell_w, 3), SEPARATOR_VALUE, dtype=np.uint8)
    cells = padded.reshape(num, cell_h, steps, cell_w, 3)
    cells[:, :height, :, :width] = batch.transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(
        padded[: num * cell_h - SEPARATOR_PX, : steps * cell_w - SEPARATOR_PX]
    )


def save_grid_png(path: str | os.PathLike, clips) -> None:
    """Writes ``frame_grid(clips)`` to ``path``, which must end in ``.png``."""
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"save_grid_png: {path}: the file name must end in .png")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"save_grid_png: {path}: directory {directory} does not exist; create it first"
        )
    iio.imwrite(path, frame_grid(clips), extension=".png")


def tile_clips(clips, cols: int | None = None) -> np.ndarray:
    """A whole batch as one clip: every frame is the batch's frames tiled row by row.

    Sample ``n`` goes to tile row ``n // cols``, column ``n % cols``; tiles left over in the last
    row are black.

    Args:
        clips: ``[N, T, H, W, C]``, C in {1, 3}; uint8 or float in [-1, 1] (see ``to_uint8``).
        cols: tiles per row; default ``ceil(sqrt(N))`` (as square as possible).

    Returns:
        uint8 ``[T, rows * H, cols * W, 3]`` with ``rows = ceil(N / cols)``.
    """
    batch = _rgb_clips(clips, "tile_clips")
    num, steps, height, width, _ = batch.shape
    if cols is None:
        cols = math.ceil(math.sqrt(num))
    if isinstance(cols, bool) or not isinstance(cols, int | np.integer) or cols < 1:
        raise ValueError(f"tile_clips: cols must be None or an int >= 1, got {cols!r}")
    cols = int(cols)
    rows = math.ceil(num / cols)
    tiles = np.zeros((rows * cols, steps, height, width, 3), dtype=np.uint8)
    tiles[:num] = batch
    # [rows, cols, T, H, W, 3] -> [T, rows, H, cols, W, 3] -> [T, rows * H, cols * W, 3]
    tiled = tiles.reshape(rows, cols, steps, height, width, 3).transpose(2, 0, 3, 1, 4, 5)
    return tiled.reshape(steps, rows * height, cols * width, 3)
