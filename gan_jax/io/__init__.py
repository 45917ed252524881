"""Video I/O: reading any video into uint8 RGB clips, writing clips, and grids of clips."""

from gan_jax.io.decode import read_video
from gan_jax.io.errors import VideoDecodeError
from gan_jax.io.grid import frame_grid, save_grid_png, tile_clips
from gan_jax.io.probe import VideoInfo, probe_video
from gan_jax.io.writer import to_uint8, write_video

__all__ = [
    "VideoDecodeError",
    "VideoInfo",
    "frame_grid",
    "probe_video",
    "read_video",
    "save_grid_png",
    "tile_clips",
    "to_uint8",
    "write_video",
]
