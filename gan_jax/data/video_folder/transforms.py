"""Frame and timeline arithmetic of a video folder: resize, crop, flip, value range, length.

Pure functions of arrays and numbers; they neither read files nor keep state.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from gan_jax.io import VideoDecodeError

CROPS = ("random", "centre")
# Guard for floor(x / ratio): the quotient can land a hair below an integer in floating point.
_EPS = 1e-6


def resized_size(
    height: int, width: int, *, out_height: int, out_width: int, short_side: int | None
) -> tuple[int, int]:
    """Frame size after the short-side resize (aspect ratio kept).

    Args:
      height: source frame height.
      width: source frame width.
      out_height: H of the crop that must fit.
      out_width: W of the crop.
      short_side: target short side, or None for the smallest size that covers the crop.

    Returns:
      ``(new_height, new_width)``; may be smaller than the crop only with an explicit short_side
      (the caller reports that).
    """
    if short_side is None:
        scale = max(out_height / height, out_width / width)
        return max(out_height, round(height * scale)), max(out_width, round(width * scale))
    if height <= width:
        return short_side, max(short_side, round(width * short_side / height))
    return max(short_side, round(height * short_side / width)), short_side


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes uint8 ``[T, h, w, 3]`` to ``[T, size[0], size[1], 3]`` with Pillow, per frame.

    Pillow's bilinear filter widens its support when shrinking, so downscaling averages areas
    instead of aliasing.
    """
    if frames.shape[1:3] == tuple(size):
        return frames
    out = np.empty((len(frames), size[0], size[1], frames.shape[-1]), np.uint8)
    for t, frame in enumerate(frames):
        image = Image.fromarray(frame).resize((size[1], size[0]), Image.Resampling.BILINEAR)
        out[t] = np.asarray(image)
    return out


def crop_frames(
    frames: np.ndarray,
    *,
    height: int,
    width: int,
    crop: str,
    uniform_y: float,
    uniform_x: float,
    path: str | os.PathLike,
) -> np.ndarray:
    """Crops ``[T, h', w', 3]`` to ``[T, H, W, 3]`` (random or centred offset).

    Args:
      frames: resized frames.
      height: H of the crop.
      width: W of the crop.
      crop: "random" (offset from ``uniform_y``, ``uniform_x`` in [0, 1)) or "centre".
      uniform_y: random number for the vertical offset.
      uniform_x: random number for the horizontal offset.
      path: the video file, named in the error.

    Raises:
      VideoDecodeError: the frames are smaller than the crop.
    """
    room_y = frames.shape[1] - height
    room_x = frames.shape[2] - width
    if room_y < 0 or room_x < 0:
        raise VideoDecodeError(
            f"{os.fspath(path)}: frames decode at {frames.shape[1:3]}, which "
            f"cannot hold a {height}x{width} crop (the container stated another "
            "size)"
        )
    if crop == "centre":
        top, left = room_y // 2, room_x // 2
    else:
        top, left = int(uniform_y * (room_y + 1)), int(uniform_x * (room_x + 1))
    return frames[:, top : top + height, left : left + width]


def flip_left_right(frames: np.ndarray) -> np.ndarray:
    """Mirrors ``[T, H, W, C]`` frames left-right (a view, no copy)."""
    return frames[:, :, ::-1]


def to_unit_range(frames: np.ndarray, channels: int) -> np.ndarray:
    """uint8 RGB ``[..., 3]`` -> float32 ``[..., channels]`` in [-1, 1] (grey = BT.601 luma)."""
    values = frames.astype(np.float32)
    if channels == 1:
        values = values @ np.array([[0.299], [0.587], [0.114]], np.float32)
    return (values - 127.5) / 127.5


def timeline_length(num_source_frames: int, ratio: float) -> int:
    """Resampled frames that surely exist in a video of ``num_source_frames``.

    Resampled frame j is source frame ``j * ratio`` (``ratio`` = stride, or source fps / target
    fps), so frames up to ``(num_source_frames - 1) / ratio`` exist; exact for integer strides.
    """
    if num_source_frames <= 0:
        return 0
    return int(np.floor((num_source_frames - 1) / ratio + _EPS)) + 1
