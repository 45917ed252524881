"""gan_jax.io.writer, .grid and .atomic: to_uint8, write-read round trips, grids, atomic writes."""

import os

import imageio.v3 as iio
import jax.numpy as jnp
import numpy as np
import pytest
from video_fixtures import frame_numbers, moving_pattern

import gan_jax.io
from gan_jax.io import (
    frame_grid,
    read_video,
    save_grid_png,
    tile_clips,
    to_uint8,
    write_video,
)
from gan_jax.io.atomic import atomic_write
from gan_jax.io.grid import SEPARATOR_PX, SEPARATOR_VALUE

T, H, W = 8, 24, 32


def _as_float(clip: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1], the exact inverse of to_uint8 on these values."""
    return clip.astype(np.float32) / 127.5 - 1.0


def test_to_uint8_mapping():
    values = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, -3.0, 3.0], dtype=np.float32)
    # round((x + 1) * 127.5), clipped: 63.75 -> 64, 127.5 -> 128 (half to even), 191.25 -> 191
    np.testing.assert_array_equal(to_uint8(values), [0, 64, 128, 191, 255, 0, 255])
    pixels = moving_pattern(2, H, W)
    assert to_uint8(pixels) is pixels
    np.testing.assert_array_equal(to_uint8(_as_float(pixels)), pixels)
    # Model outputs in bfloat16 / float16 (jax arrays) convert the same way.
    np.testing.assert_array_equal(
        to_uint8(jnp.asarray([-1.0, 0.0, 1.0], jnp.bfloat16)), [0, 128, 255]
    )
    assert to_uint8(jnp.zeros((2, 2), jnp.float16)).dtype == np.uint8


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros(3, np.int32), "dtype int32"),
        (np.zeros(3, bool), "dtype bool"),
        (np.array([0.0, np.nan, np.inf]), "2 of 3 values are NaN or inf"),
    ],
)
def test_to_uint8_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        to_uint8(bad)


@pytest.mark.parametrize("extension", [".mp4", ".webm", ".gif"])
@pytest.mark.parametrize("as_float", [False, True], ids=["uint8", "float"])
def test_write_then_read_round_trip(tmp_path, extension, as_float):
    source = moving_pattern(T, H, W)
    path = tmp_path / f"clip{extension}"
    write_video(path, _as_float(source) if as_float else source, fps=8)
    clip, info = read_video(path)
    assert clip.shape == source.shape
    np.testing.assert_array_equal(frame_numbers(clip, T), np.arange(T))
    error = np.abs(clip.astype(np.int16) - source).mean()
    assert error < 8, error
    assert info.duration == pytest.approx(T / 8, abs=0.02)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


def test_mp4_pads_odd_sizes_to_even(tmp_path):
    source = moving_pattern(T, 17, 33)
    write_video(tmp_path / "odd.mp4", source)
    clip, info = read_video(tmp_path / "odd.mp4")
    assert clip.shape == (T, 18, 34, 3) and (info.width, info.height) == (34, 18)
    assert np.abs(clip[:, :17, :33].astype(np.int16) - source).mean() < 8
    # The padding repeats the last row and column.
    assert np.abs(clip[:, 17].astype(np.int16) - clip[:, 16]).mean() < 8
    assert np.abs(clip[:, :, 33].astype(np.int16) - clip[:, :, 32]).mean() < 8


def test_webm_and_gif_keep_odd_sizes_and_grey_becomes_rgb(tmp_path):
    grey = moving_pattern(T, 17, 33, channels=1)
    for extension in (".webm", ".gif"):
        write_video(tmp_path / f"g{extension}", grey, fps=10)
        clip, _ = read_video(tmp_path / f"g{extension}")
        assert clip.shape == (T, 17, 33, 3)
        assert np.abs(clip.astype(np.int16) - grey).mean() < 8


def test_gif_frame_delays_average_to_the_frame_rate(tmp_path):
    # 8 fps is 12.5 cs a frame; delays alternate 12/13 cs rather than all rounding one way.
    write_video(tmp_path / "d.gif", moving_pattern(T, H, W), fps=8)
    clip, info = read_video(tmp_path / "d.gif", fps=8)
    assert info.duration == pytest.approx(1.0) and not info.variable_frame_rate
    assert info.fps == pytest.approx(8)
    np.testing.assert_array_equal(frame_numbers(clip, T), np.arange(T))


@pytest.mark.parametrize(
    ("name", "frames", "fps", "error", "message"),
    [
        ("a.avi", np.zeros((2, 8, 8, 3), np.uint8), 8, ValueError, "unsupported extension '.avi'"),
        ("a.mp4", np.zeros((8, 8, 3), np.uint8), 8, ValueError, r"shape \(8, 8, 3\)"),
        ("a.mp4", np.zeros((2, 8, 8, 2), np.uint8), 8, ValueError, r"C in \{1, 3\}"),
        ("a.mp4", np.zeros((2, 8, 8, 3), np.int64), 8, ValueError, "dtype int64"),
        ("a.mp4", np.zeros((2, 8, 8, 3), np.uint8), 0, ValueError, "fps must be > 0"),
        ("a.gif", np.zeros((2, 8, 8, 3), np.uint8), 1000, ValueError, "too high for GIF"),
        ("no/dir/a.mp4", np.zeros((2, 8, 8, 3), np.uint8), 8, FileNotFoundError, "does not exist"),
    ],
)
def test_write_video_rejects(tmp_path, name, frames, fps, error, message):
    with pytest.raises(error, match=message):
        write_video(tmp_path / name, frames, fps=fps)
    assert os.listdir(tmp_path) == []


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old")

    def fails_halfway(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        atomic_write(path, fails_halfway)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind

    assert atomic_write(path, lambda tmp: tmp.write_text("new")) == path
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == [path.name]


def test_frame_grid_places_samples_in_rows_and_time_in_columns():
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 255, (3, 4, 5, 6, 3), dtype=np.uint8)
    grid = frame_grid(clips)
    assert grid.dtype == np.uint8
    assert grid.shape == (3 * 5 + 2 * SEPARATOR_PX, 4 * 6 + 3 * SEPARATOR_PX, 3)
    for n in range(3):
        for t in range(4):
            top, left = n * (5 + SEPARATOR_PX), t * (6 + SEPARATOR_PX)
            np.testing.assert_array_equal(grid[top : top + 5, left : left + 6], clips[n, t])
    assert (grid[5 : 5 + SEPARATOR_PX] == SEPARATOR_VALUE).all()  # between samples 0 and 1
    assert (grid[:, 6 : 6 + SEPARATOR_PX] == SEPARATOR_VALUE).all()  # between frames 0 and 1
    np.testing.assert_array_equal(frame_grid(_as_float(clips)), grid)
    grey = frame_grid(clips[..., :1])
    np.testing.assert_array_equal(grey[:5, :6], np.repeat(clips[0, 0, ..., :1], 3, axis=-1))


def test_tile_clips_lays_the_batch_out_row_by_row():
    rng = np.random.default_rng(1)
    clips = rng.integers(1, 255, (5, 2, 4, 6, 3), dtype=np.uint8)
    tiled = tile_clips(clips)  # 5 samples -> 3 columns, 2 rows
    assert tiled.shape == (2, 2 * 4, 3 * 6, 3)
    for n in range(5):
        row, col = divmod(n, 3)
        np.testing.assert_array_equal(
            tiled[:, row * 4 : row * 4 + 4, col * 6 : col * 6 + 6], clips[n]
        )
    assert (tiled[:, 4:, 12:] == 0).all()  # the sixth tile is empty
    column = tile_clips(_as_float(clips), cols=1)
    assert column.shape == (2, 5 * 4, 6, 3)
    np.testing.assert_array_equal(column[:, 8:12], clips[2])
    with pytest.raises(ValueError, match="cols"):
        tile_clips(clips, cols=0)
    with pytest.raises(ValueError, match=r"\[N, T, H, W, C\]"):
        tile_clips(clips[0])


def test_save_grid_png_is_readable(tmp_path):
    clips = moving_pattern(3, 12, 16)[None].repeat(2, axis=0)
    save_grid_png(tmp_path / "grid.png", clips)
    np.testing.assert_array_equal(iio.imread(tmp_path / "grid.png"), frame_grid(clips))
    with pytest.raises(ValueError, match=r"\.png"):
        save_grid_png(tmp_path / "grid.jpg", clips)


def test_package_exports_the_api():
    for name in gan_jax.io.__all__:
        assert hasattr(gan_jax.io, name), name
    assert {"read_video", "probe_video", "write_video", "to_uint8", "frame_grid"} <= set(
        gan_jax.io.__all__
    )
