"""Tests for the procedural bouncing-shapes dataset."""

import numpy as np
import pytest

from gan_jax.data.bouncing_shapes import (
    DISC,
    PALETTE,
    SQUARE,
    BouncingShapes,
    bounce,
    colour_table,
    render_shapes,
)

SMALL = dict(num_frames=8, height=24, width=32, num_objects=(1, 3), size_range=(4, 8))


def _reference_render(positions, sizes, kinds, colour_ids, mask, height, width, antialias):
    """Full-frame, per-object reference (no windows, no flat indexing) for render_shapes."""
    table = colour_table(3)
    rows = np.arange(height, dtype=np.float64)[None, :, None]
    cols = np.arange(width, dtype=np.float64)[None, None, :]
    canvas = np.broadcast_to(table[0], (len(positions), height, width, 3)).astype(np.float64)
    for k in np.flatnonzero(mask):
        cy = positions[:, k, 0, None, None].astype(np.float64)
        cx = positions[:, k, 1, None, None].astype(np.float64)
        half = sizes[k] / 2.0
        if kinds[k] == SQUARE and not antialias:
            cover = (np.abs(rows + 0.5 - cy) < half) & (np.abs(cols + 0.5 - cx) < half)
        elif kinds[k] == DISC and not antialias:
            cover = (rows + 0.5 - cy) ** 2 + (cols + 0.5 - cx) ** 2 <= half**2
        elif kinds[k] == SQUARE:
            over_y = np.clip(np.minimum(rows + 1, cy + half) - np.maximum(rows, cy - half), 0, 1)
            over_x = np.clip(np.minimum(cols + 1, cx + half) - np.maximum(cols, cx - half), 0, 1)
            cover = over_y * over_x
        else:
            dist = np.sqrt((rows + 0.5 - cy) ** 2 + (cols + 0.5 - cx) ** 2)
            cover = np.clip(half + 0.5 - dist, 0, 1)
        cover = cover.astype(np.float64)[..., None]
        canvas = canvas * (1 - cover) + table[colour_ids[k] + 1] * cover
    return canvas


def test_shapes_dtypes_and_range():
    ds = BouncingShapes(**SMALL)
    example = ds[3]
    assert example["video"].shape == (8, 24, 32, 3)
    assert example["video"].dtype == np.float32
    assert example["video"].min() >= -1.0 and example["video"].max() <= 1.0
    assert example["positions"].shape == (8, 3, 2) and example["positions"].dtype == np.float32
    assert example["velocities"].shape == (3, 2) and example["velocities"].dtype == np.float32
    assert example["frame_velocities"].shape == (8, 3, 2)
    assert example["object_mask"].shape == (3,) and example["object_mask"].dtype == bool
    assert example["label"].dtype == np.int32
    assert example["label"] == example["object_mask"].sum()
    for key in ("shape_kinds", "colour_ids"):
        assert example[key].shape == (3,) and example[key].dtype == np.int32
    # Padding objects are zero; real ones have distinct colours.
    for i in range(20):
        ex = ds[i]
        colours = ex["colour_ids"][ex["object_mask"]]
        assert len(set(colours.tolist())) == len(colours)
        assert not ex["positions"][:, ~ex["object_mask"]].any()
    assert len(ds) == 2**20


def test_greyscale_uses_luma():
    rgb = BouncingShapes(**SMALL, seed=4)[0]["video"]
    grey = BouncingShapes(**SMALL, seed=4, channels=1)[0]["video"]
    assert grey.shape == (8, 24, 32, 1)
    expected = ((rgb + 1) / 2) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose((grey[..., 0] + 1) / 2, expected, atol=1e-6)


def test_deterministic_from_seed_and_index():
    first = BouncingShapes(**SMALL, seed=7)
    again = BouncingShapes(**SMALL, seed=7)
    for index in (0, 5, 2**20 - 1):
        a, b = first[index], again[index]
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(first[0]["video"], first[1]["video"])
    other_seed = BouncingShapes(**SMALL, seed=8)
    assert not np.array_equal(first[0]["positions"], other_seed[0]["positions"])


def test_bounce_closed_form_matches_hand_computation():
    # 1-D motion between 0 and 10 starting at 5 with speed 3: 5, 8, 11->9, 14->6, 17->3, 20->0.
    start = np.array([[5.0, 5.0]])
    velocity = np.array([[3.0, 0.0]])
    positions, velocities = bounce(start, velocity, np.zeros((1, 2)), np.full((1, 2), 10.0), 6)
    np.testing.assert_allclose(positions[:, 0, 0], [5, 8, 9, 6, 3, 0], atol=1e-5)
    np.testing.assert_allclose(velocities[:, 0, 0], [3, 3, -3, -3, -3, 3])
    np.testing.assert_allclose(positions[:, 0, 1], 5.0)


def test_objects_stay_inside_and_bounce_off_walls():
    ds = BouncingShapes(
        num_frames=32, height=32, width=32, num_objects=3, size_range=(4, 10), speed_range=(3, 5)
    )
    frame = np.array([32.0, 32.0])
    flips = 0
    for index in range(20):
        ex = ds[index]
        half = ex["sizes"][:, None] / 2  # [K, 1]
        positions, velocity = ex["positions"], ex["frame_velocities"]
        assert np.all(positions >= half - 1e-4)
        assert np.all(positions <= frame - half + 1e-4)
        np.testing.assert_array_equal(velocity[0], ex["velocities"])
        # Speed is constant; only the sign of a component flips, and only where the unreflected
        # step would have left the allowed range (i.e. at a wall).
        np.testing.assert_allclose(
            np.abs(velocity), np.broadcast_to(np.abs(velocity[:1]), velocity.shape), rtol=1e-6
        )
        flipped = np.sign(velocity[1:]) != np.sign(velocity[:-1])  # [T-1, K, 2]
        free_step = positions[:-1] + velocity[:-1]
        outside = (free_step < half - 1e-4) | (free_step > frame - half + 1e-4)
        np.testing.assert_array_equal(flipped, outside)
        # Away from walls the object moves by exactly its velocity.
        np.testing.assert_allclose(np.where(outside, 0, positions[1:] - free_step), 0, atol=1e-3)
        flips += int(flipped.sum())
    assert flips > 10


def test_centre_pixel_has_object_colour():
    ds = BouncingShapes(**SMALL)
    for index in range(30):
        ex = ds[index]
        top = np.flatnonzero(ex["object_mask"])[-1]  # drawn last, never occluded
        colour = PALETTE[ex["colour_ids"][top]] / 127.5 - 1
        for t in range(ex["video"].shape[0]):
            y, x = np.floor(ex["positions"][t, top]).astype(int)
            np.testing.assert_allclose(ex["video"][t, y, x], colour, atol=1e-6)


@pytest.mark.parametrize("antialias", [False, True])
def test_render_matches_full_frame_reference(antialias):
    rng = np.random.default_rng(0)
    num_frames, num_objects, height, width = 5, 4, 20, 28
    # Includes objects partly and wholly outside the frame (fitted positions can be anywhere).
    positions = rng.uniform(-8, 36, size=(num_frames, num_objects, 2)).astype(np.float32)
    sizes = rng.uniform(2, 11, size=num_objects).astype(np.float32)
    kinds = np.array([SQUARE, DISC, SQUARE, DISC])
    colour_ids = np.array([0, 3, 5, 6])
    mask = np.array([True, True, False, True])
    got = render_shapes(
        positions, sizes, kinds, colour_ids, mask, height=height, width=width, antialias=antialias
    )
    want = _reference_render(positions, sizes, kinds, colour_ids, mask, height, width, antialias)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_antialiased_square_area_is_exact():
    # A 3x3 square centred on a pixel corner covers 9 pixels' worth of area.
    video = render_shapes(
        np.array([[[10.0, 10.0]]]), [3.0], [SQUARE], [6], height=20, width=20, antialias=True
    )
    coverage = (video[0, ..., 0] + 1) / 2  # white on black
    assert coverage.sum() == pytest.approx(9.0, abs=1e-4)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(num_objects=9), "num_objects"),
        (dict(num_objects=(3, 2)), "num_objects"),
        (dict(size_range=(1, 4)), "size_range"),
        (dict(size_range=(4, 100)), "size_range"),
        (dict(speed_range=(-1, 2)), "speed_range"),
        (dict(shapes=("triangle",)), "shapes"),
        (dict(channels=2), "channels"),
        (dict(num_frames=0), "num_frames"),
    ],
)
def test_bad_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        BouncingShapes(**{**SMALL, **kwargs})


def test_index_out_of_range():
    with pytest.raises(IndexError, match="index 10"):
        BouncingShapes(**SMALL, length=10)[10]
