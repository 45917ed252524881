"""The `mocogan` family: content/motion G of any length, the image + video D, training through
the project's step, sampling longer clips than trained, and its config errors."""

import re

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import train
from gan_jax.checkpoint import Checkpointer
from gan_jax.config import ConfigError
from gan_jax.io.grid import SEPARATOR_PX
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics
from gan_jax.models import zero_latents
from gan_jax.models.layers import ResizeConv
from gan_jax.models.mocogan import (
    FrameGenerator,
    ImageDiscriminator,
    ImageVideoDiscriminator,
    LayerOffsets,
    MoCoGenerator,
    brighten_colours,
    composite_layers,
    joint_level_logits,
    layer_opacity,
    level_combinations,
    make_discriminator,
    make_generator,
    move_maps,
    object_bounds,
    open_masks,
    pick_from_palette,
    pick_levels,
    quantise_colours,
    reflect_offsets,
    translate_maps,
)
from gan_jax.workdir import abstract_state, load_run

FRAME = (8, 8, 3)  # (H, W, C) of every clip here
G_SIZES = {"content_dim": 6, "motion_dim": 4, "noise_dim": 3, "base_width": 4, "depth": 2}
# The main job's sprites (experiments/configs/bouncing_shapes.py): G's settings beside its sizes.
MAIN_JOB_SPRITES = {
    "layers": 2,
    "layer_motion": "glide",
    "layer_walls": "reflect",
    "hard_masks": True,
    "mask_gain": 12,
    "output_gain": 6,
    "sprite_scale": 2,
    "colour_levels": 3,
    "level_logits": True,
}


@pytest.fixture(autouse=True)
def _classic_threefry():
    """Inits draw from the classic threefry layout, as `create_state` does (faster on CPU)."""
    with jax.threefry_partitionable(False):
        yield


def _g(num_frames: int) -> MoCoGenerator:
    return MoCoGenerator(clip_shape=(num_frames, *FRAME), **G_SIZES)


def _latents(key, num: int, num_frames: int, scale: float = 1.0):
    content_key, motion_key = jax.random.split(key)
    return {
        "content": scale * jax.random.normal(content_key, (num, G_SIZES["content_dim"])),
        "motion": scale * jax.random.normal(motion_key, (num, num_frames, G_SIZES["noise_dim"])),
    }


def _shapes(tree):
    return jax.tree.map(lambda x: x.shape, tree)


@pytest.fixture(scope="module")
def g8_variables():
    """Variables of a G built for 8 frames (params and batch-norm statistics)."""
    with jax.threefry_partitionable(False):
        g = _g(8)
        # Jitted: an eager init compiles every layer's ops one by one (3x slower here).
        return jax.jit(lambda k: g.init(k, zero_latents(g.latent_shapes, 2), train=False))(
            jax.random.key(0)
        )


@pytest.fixture(scope="module")
def apply_g(g8_variables):
    """`apply_g(latents, num_frames=8, variables=None)`: clips of a G built for `num_frames`
    frames in inference mode, with the variables of the G built for 8 unless given (compiled
    once per length)."""
    compiled = {}

    def apply(latents, num_frames=8, variables=None):
        if num_frames not in compiled:
            g = _g(num_frames)
            compiled[num_frames] = jax.jit(lambda v, z: g.apply(v, z, train=False))
        variables = g8_variables if variables is None else variables
        return np.asarray(compiled[num_frames](variables, latents))

    return apply


def test_generator_shapes_and_a_g_for_32_frames_takes_the_params_of_one_for_8(
    g8_variables, apply_g
):
    assert _g(8).latent_shapes == {"content": (6,), "motion": (8, 3)}
    for num_frames in (8, 1, 32):
        g = _g(num_frames)
        built = jax.eval_shape(
            lambda g=g: g.init(jax.random.key(1), zero_latents(g.latent_shapes, 2), train=False)
        )
        # The same tree of the same shapes, whatever the number of frames.
        assert _shapes(built) == _shapes(g8_variables), num_frames
        clips = apply_g(_latents(jax.random.key(2), 2, num_frames), num_frames)
        assert clips.shape == (2, num_frames, *FRAME) and clips.dtype == np.float32
        assert np.all(np.isfinite(clips)), num_frames
    # Train mode (batch statistics of the N * T frames) works for one frame too.
    clips, _ = jax.jit(lambda z: _g(1).apply(g8_variables, z, train=True, mutable=["batch_stats"]))(
        _latents(jax.random.key(3), 2, 1)
    )
    assert clips.shape == (2, 1, *FRAME)


def test_output_is_in_range(g8_variables, apply_g):
    # The last layer's weights scaled up 1000 times: its outputs reach far beyond [-1, 1]
    # before the tanh.
    params = dict(g8_variables["params"])
    frames = dict(params["frames"])
    frames["up1"] = {**frames["up1"], "kernel": 1000.0 * frames["up1"]["kernel"]}
    variables = {**g8_variables, "params": {**params, "frames": frames}}
    clips = apply_g(_latents(jax.random.key(4), 2, 8), variables=variables)
    assert np.abs(clips).max() <= 1.0 and np.abs(clips).max() > 0.99


def test_min_width_widens_only_the_narrow_hidden_layers():
    """base_width 4, depth 3: hidden widths 16, 8, 4; min_width 8 makes them 16, 8, 8."""
    sizes = {**G_SIZES, "depth": 3}
    latents = _latents(jax.random.key(6), 2, 2)

    def kernels(min_width):
        g = MoCoGenerator(clip_shape=(2, 16, 16, 3), **sizes, min_width=min_width)
        variables = jax.eval_shape(lambda: g.init(jax.random.key(1), latents, train=False))
        frames = variables["params"]["frames"]
        return [frames["project"]["kernel"].shape[1]] + [
            frames[f"up{i}"]["kernel"].shape for i in range(3)
        ]

    assert kernels(0) == [2 * 2 * 16, (4, 4, 16, 8), (4, 4, 8, 4), (4, 4, 4, 3)]
    assert kernels(8) == [2 * 2 * 16, (4, 4, 16, 8), (4, 4, 8, 8), (4, 4, 8, 3)]
    assert kernels(32) == [2 * 2 * 32, (4, 4, 32, 32), (4, 4, 32, 32), (4, 4, 32, 3)]
    g = MoCoGenerator(clip_shape=(2, 16, 16, 3), **sizes, min_width=8)
    variables = jax.jit(lambda k: g.init(k, latents, train=False))(jax.random.key(1))
    clips = jax.jit(lambda v: g.apply(v, latents, train=False))(variables)
    assert clips.shape == (2, 2, 16, 16, 3) and np.all(np.abs(clips) <= 1.0)


@pytest.mark.parametrize("resize_layers, flat", [(0, False), (1, True)])
def test_resize_layers_draw_no_checkerboard_on_a_flat_map(resize_layers, flat):
    """A map that is the same at every position, upsampled by a transposed conv of stride 2,
    comes out in a 2x2 pattern (each pixel of a block has its own kernel: the checkerboard
    of Odena et al. 2016); upsampled to the nearest pixel and then convolved, it stays flat
    away from the border."""
    g = FrameGenerator((8, 8, 3), base_width=4, depth=1, norm="none", resize_layers=resize_layers)
    codes = jnp.zeros((1, 5))
    variables = jax.jit(lambda k: g.init(k, codes, train=False))(jax.random.key(3))
    params = variables["params"]
    assert params["up0"]["kernel"].shape == ((3, 3, 4, 3) if resize_layers else (4, 4, 4, 3))
    # project: no kernel, the same 4 channels at each of the 4x4 positions
    channels = jax.random.normal(jax.random.key(4), (4,))
    project = {"kernel": 0.0 * params["project"]["kernel"], "bias": jnp.tile(channels, 16)}
    up0 = {**params["up0"], "kernel": 10.0 * params["up0"]["kernel"]}  # out of the tanh's zero
    frames = np.asarray(g.apply({"params": {"project": project, "up0": up0}}, codes, train=False))
    inner = frames[0, 1:-1, 1:-1]  # [6, 6, 3]
    spread = np.abs(inner - inner[0, 0]).max()
    assert (spread < 1e-6) if flat else (spread > 1e-3), spread


def test_resize_conv_equals_nearest_upsampling_then_a_3x3_conv():
    """`ResizeConv` runs as a transposed conv with a 4x4 kernel folded from its 3x3 one; its
    output and its gradients (input and kernel) equal the direct route, nearest x2 by repeat
    and then a 3x3 stride-1 convolution with zero padding, borders included. A wrong tap in
    the fold, or a fold written for the other transposed-conv convention, shifts or mixes the
    four pixels of each block and fails this."""
    x = jax.random.normal(jax.random.key(0), (2, 5, 7, 4))
    conv = ResizeConv(6)
    variables = conv.init(jax.random.key(1), x)
    kernel = jax.random.normal(jax.random.key(2), (3, 3, 4, 6))
    bias = jax.random.normal(jax.random.key(3), (6,))
    params = {"kernel": kernel, "bias": bias}
    assert jax.tree.map(jnp.shape, variables["params"]) == jax.tree.map(jnp.shape, params)

    def direct(x, params):
        up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        dims = ("NHWC", "HWIO", "NHWC")
        y = jax.lax.conv_general_dilated(
            up, params["kernel"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=dims
        )
        return y + params["bias"].reshape(1, 1, 1, 6)

    def folded(x, params):
        return conv.apply({"params": params}, x)

    out = folded(x, params)
    assert out.shape == (2, 10, 14, 6)
    np.testing.assert_allclose(out, direct(x, params), atol=1e-4, rtol=1e-5)
    weights = jax.random.normal(jax.random.key(4), out.shape)
    grads = [
        jax.grad(lambda x, p, f=f: jnp.sum(weights * f(x, p)), argnums=(0, 1))(x, params)
        for f in (folded, direct)
    ]
    for got, want in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1]), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-4)


def test_composite_layers_paints_each_layer_over_the_ones_below():
    # One pixel per frame, two layers, colours [M, 1, 1, 3, 1]: background 0, layers 0.5 and 1.
    colours = jnp.asarray([0.0, 0.5, 1.0]).reshape(1, 1, 1, 3, 1).repeat(4, axis=0)
    big = 100.0  # a logit that makes the opacity 0 or 1 to float32's precision
    masks = jnp.asarray([[-big, -big], [big, -big], [-big, big], [0.0, 0.0]]).reshape(4, 1, 1, 2)
    frames = composite_layers(masks, colours, gain=1.0).reshape(4)
    # Neither, the lower, the upper (over the lower), both half-opaque: 0.5 * (0.5 * 0.5) + 0.5.
    np.testing.assert_allclose(frames, [0.0, 0.5, 1.0, 0.625], atol=1e-6)
    # The gain steepens the opacity: logits of 0.1 read 0.52 at gain 1, 0.98 at gain 40.
    half = jnp.full((1, 1, 1, 1), 0.1)
    two = jnp.asarray([-1.0, 1.0]).reshape(1, 1, 1, 2, 1)
    assert float(composite_layers(half, two, 1.0).squeeze()) == pytest.approx(0.05, abs=1e-3)
    assert float(composite_layers(half, two, 40.0).squeeze()) == pytest.approx(0.964, abs=1e-3)


@pytest.mark.parametrize(
    "layers, colours", [(1, "flat"), (2, "flat"), (2, "flat_objects"), (2, "map")]
)
def test_layered_frames_mix_the_colours_of_their_layers(layers, colours):
    """With flat colours every pixel of a clip, in every frame, is a convex mix of the clip's
    K + 1 colours: its pixels span at most K dimensions of RGB (a line for K = 1, a plane for
    K = 2). A background or layers drawn per pixel span all three."""
    g8, g32 = (
        MoCoGenerator(
            clip_shape=(t, *FRAME), **G_SIZES, layers=layers, layer_colours=colours, output_gain=6
        )
        for t in (8, 32)
    )
    variables = jax.jit(lambda k: g8.init(k, zero_latents(g8.latent_shapes, 2), train=False))(
        jax.random.key(7)
    )
    assert ("layer_colours" in variables["params"]) == (colours != "map")
    # Every layer present (its presence logit 0), so that no clip here is its background alone.
    presence = jax.tree.map(jnp.zeros_like, variables["params"]["layer_presence"])
    variables = {**variables, "params": {**variables["params"], "layer_presence": presence}}
    for g, num_frames in ((g8, 8), (g32, 32)):  # no parameter depends on T here either
        clips = np.asarray(
            # Train mode: batch statistics give the untrained masks their full spread.
            jax.jit(lambda v, z, g=g: g.apply(v, z, train=True, mutable=["batch_stats"])[0])(
                variables, _latents(jax.random.key(8), 3, num_frames)
            ),
            np.float64,
        )
        assert clips.shape == (3, num_frames, *FRAME)
        assert np.abs(clips).max() <= 1.0
        for clip in clips:
            pixels = clip.reshape(-1, 3)
            spread = np.linalg.svd(pixels - pixels.mean(0), compute_uv=False)
            assert spread[0] > 0.1  # the frames are not one flat colour
            if colours == "flat":
                assert spread[layers:].max() < 1e-5 * spread[0], spread
            else:
                assert spread[2] > 1e-3 * spread[0], spread
    # A layer's presence far below zero hides it in every frame: with one layer, every pixel
    # of a clip is then its background colour.
    params = dict(variables["params"])
    params["layer_presence"] = {**params["layer_presence"], "bias": jnp.full((layers,), -1e3)}
    clips = np.asarray(
        jax.jit(lambda v, z: g8.apply(v, z, train=True, mutable=["batch_stats"])[0])(
            {**variables, "params": params}, _latents(jax.random.key(8), 3, 8)
        )
    )
    if colours == "flat":
        assert np.ptp(clips.reshape(3, -1, 3), axis=1).max() == 0.0


def test_hard_opacities_are_0_or_1_with_the_sigmoids_gradient():
    logits = jnp.asarray([-2.0, -0.01, 0.01, 3.0])
    np.testing.assert_array_equal(layer_opacity(logits, 12.0, hard=True), [0.0, 0.0, 1.0, 1.0])

    def total(x, hard):
        return layer_opacity(x, 12.0, hard).sum()

    np.testing.assert_allclose(
        jax.grad(total)(logits, True), jax.grad(total)(logits, False), rtol=1e-6
    )
    assert float(jax.grad(total)(logits, True)[1]) > 2.9  # 12 * 0.25 at the edge


def test_translate_maps_moves_each_map_by_its_offset_and_fills_what_it_leaves():
    square = np.zeros((1, 6, 6, 2, 1), np.float32)
    square[0, 1:3, 1:3, 0, 0] = 1.0  # map 0: a 2x2 square at rows and columns 1-2
    square[0, 4, 4, 1, 0] = 2.0  # map 1: one pixel at (4, 4)
    # Frame 0 still; frame 1: map 0 down 1 and right 2, map 1 up 4; frame 2: map 0 down half
    # a pixel, map 1 left 1.5.
    offsets = jnp.asarray([[[[0, 0], [0, 0]], [[1, 2], [-4, 0]], [[0.5, 0], [0, -1.5]]]], float)
    moved = np.asarray(translate_maps(jnp.asarray(square), offsets, fill=-7.0))
    assert moved.shape == (1, 3, 6, 6, 2, 1)
    np.testing.assert_array_equal(moved[0, 0], square[0])
    want = np.zeros((6, 6), np.float32)
    want[2:4, 3:5] = 1.0
    want[0, :], want[:, :2] = -7.0, -7.0  # rows and columns read from outside the map
    np.testing.assert_array_equal(moved[0, 1, :, :, 0, 0], want)
    want = np.zeros((6, 6), np.float32)
    want[0, 4] = 2.0
    want[2:, :] = -7.0  # the four rows read from below the map
    np.testing.assert_array_equal(moved[0, 1, :, :, 1, 0], want)
    # Half a pixel: a bilinear blend, half of the fill in the row read from above the map.
    col = moved[0, 2, :, 1, 0, 0]
    np.testing.assert_allclose(col, [-3.5, 0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(moved[0, 2, 4, 2:, 1, 0], [1.0, 1.0, -3.5, -7.0], atol=1e-6)
    # Differentiable in the offsets: moving the square down raises the rows it enters.
    grad = jax.grad(lambda o: translate_maps(jnp.asarray(square), o, 0.0)[0, 2, 3, 1, 0, 0])(
        offsets
    )
    assert float(grad[0, 2, 0, 0]) == pytest.approx(1.0)


def test_object_bounds_are_where_the_objects_edges_meet_the_frames():
    logits = -np.ones((2, 8, 8, 2), np.float32)
    logits[0, 2:5, 1:7, 0] = 1.0  # rows 2-4, columns 1-6
    logits[0, 7, 0, 1] = 1.0  # one pixel in the last row, first column
    # clip 1, layer 0 empty: bounded by its whole map; layer 1 fills its map
    logits[1, :, :, 1] = 1.0
    bounds = np.asarray(object_bounds(jnp.asarray(logits), (16, 12)))
    assert bounds.shape == (2, 2, 2, 2)  # [N, K, axis, (low, high)]
    np.testing.assert_array_equal(bounds[0, 0], [[-2, 16 - 1 - 4], [-1, 12 - 1 - 6]])
    np.testing.assert_array_equal(bounds[0, 1], [[-7, 16 - 1 - 7], [0, 12 - 1]])
    np.testing.assert_array_equal(bounds[1, 0], [[0, 8], [0, 4]])
    np.testing.assert_array_equal(bounds[1, 1], [[0, 8], [0, 4]])


def test_reflect_offsets_bounce_off_the_bounds_as_a_ball_off_walls():
    # One layer, axis 0 within [0, 4], axis 1 within [-2, -2] (no room: pinned at -2).
    bounds = jnp.asarray([[[[0.0, 4.0], [-2.0, -2.0]]]])
    path = jnp.arange(12, dtype=jnp.float32) * 1.5 - 1.0  # a straight path, 1.5 px per frame
    offsets = jnp.stack([path, path], axis=-1).reshape(1, 12, 1, 2)
    folded = np.asarray(reflect_offsets(offsets, bounds))
    # -1 reflects off 0 to 1; 5 off 4 to 3; 9.5 -> -1.5 off 4 then 0 -> 1.5 ...
    want = [1.0, 0.5, 2.0, 3.5, 3.0, 1.5, 0.0, 1.5, 3.0, 3.5, 2.0, 0.5]
    np.testing.assert_allclose(folded[0, :, 0, 0], want, atol=1e-5)
    np.testing.assert_array_equal(folded[0, :, 0, 1], np.full(12, -2.0))
    # The gradient is the velocity's sign on the folded path: +1 going up, -1 coming back.
    grad = jax.grad(lambda o: reflect_offsets(o, bounds)[0, :, 0, 0].sum())(offsets)
    want_grad = [-1, 1, 1, 1, -1, -1, 1, 1, 1, -1, -1, -1]
    np.testing.assert_array_equal(grad[0, :, 0, 0], want_grad)
    np.testing.assert_array_equal(grad[0, :, 0, 1], np.zeros(12))


def test_pick_levels_is_the_highest_logits_level_with_the_softmax_gradient():
    logits = jnp.asarray([[3.0, 1.0, 0.0], [0.0, 0.0, 5.0], [0.0, 2.0, 1.0], [1.0, 0.0, 4.0]])
    np.testing.assert_array_equal(pick_levels(logits, 3), [-1.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(pick_levels(logits[:, :2], 2), [-1.0, -1.0, 1.0, -1.0])
    # Backward: the softmax-weighted mean of the levels, (p_high - p_low) for 3 levels.
    weights = jnp.asarray([1.0, -2.0, 0.5, 3.0])
    grad = jax.grad(lambda x: jnp.sum(weights * pick_levels(x, 3)))(logits)
    soft = jax.nn.softmax(logits, axis=-1)
    levels = jnp.asarray([-1.0, 0.0, 1.0])
    want = jax.grad(lambda x: jnp.sum(weights * (jax.nn.softmax(x, -1) @ levels)))(logits)
    np.testing.assert_allclose(grad, want, rtol=1e-6)
    assert np.abs(np.asarray(grad)).min() > 0 and float(soft[1, 2]) > 0.98


def test_a_g_with_level_logits_paints_only_the_levels():
    """`level_logits`: each channel of each flat colour is the level of the highest of its
    own logits, so with hard masks every pixel of every frame is -1, 0 or 1 per channel, from
    a colour head of one output per layer, channel and level."""
    g = MoCoGenerator(clip_shape=(4, 16, 16, 3), **G_SIZES, **MAIN_JOB_SPRITES)
    latents = _latents(jax.random.key(4), 16, 4)
    variables = g.init(jax.random.key(3), latents, train=False)
    assert variables["params"]["layer_colours"]["kernel"].shape == (G_SIZES["content_dim"], 27)
    clips = np.asarray(g.apply(variables, latents, train=False))
    assert clips.shape == (16, 4, 16, 16, 3)
    assert set(np.unique(clips)) == {-1.0, 0.0, 1.0}
    assert len(np.unique(clips.reshape(-1, 3), axis=0)) > 8  # the logits reach many colours
    with pytest.raises(ValueError, match="level_logits=True picks each flat colour channel"):
        g.clone(colour_levels=0).init(jax.random.key(3), latents, train=False)


def test_brightened_colours_keep_their_hue_with_a_full_channel():
    """`brighten_colours`: in [0, 1] terms each colour over its brightest channel, so the
    palette's colours stay as they are, a dim one becomes its bright self, and a grey (black
    included) becomes white; the gradient reaches every channel."""
    colours = jnp.asarray(
        [[1.0, -1.0, -1.0], [1.0, 0.0, -1.0], [0.0, -1.0, -1.0], [-0.5, -0.5, 0.0], [-1.0] * 3]
    )
    want = [[1.0, -1.0, -1.0], [1.0, 0.0, -1.0], [1.0, -1.0, -1.0], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(brighten_colours(colours), [*want, [1.0] * 3], atol=1e-6)
    np.testing.assert_array_equal(brighten_colours(colours[:3]), want[:3])  # exact levels
    dim = jnp.asarray([-0.6, -0.2, -0.9])
    grad = jax.grad(lambda c: jnp.sum(brighten_colours(c) * jnp.asarray([1.0, 2.0, 3.0])))(dim)
    assert np.all(np.isfinite(grad)) and np.abs(np.asarray(grad)).min() > 0


def test_a_g_with_bright_colours_never_paints_an_object_dark():
    """`bright_colours`: with hard masks every pixel of every frame is the background's colour
    or an object's with a full channel, the hue it has without the setting; the background's
    own flat colour is not brightened (it may be black)."""
    sprites = {**MAIN_JOB_SPRITES, "colour_levels": 0, "level_logits": False}
    g = MoCoGenerator(clip_shape=(4, 16, 16, 3), **G_SIZES, **sprites, bright_colours=True)
    latents = _latents(jax.random.key(4), 32, 4)
    variables = g.init(jax.random.key(3), latents, train=False)
    bright = np.asarray(g.apply(variables, latents, train=False)).reshape(32, -1, 3)
    plain = np.asarray(g.clone(bright_colours=False).apply(variables, latents, train=False))
    plain = plain.reshape(32, -1, 3)
    same = np.all(bright == plain, axis=-1)  # the background, and objects already bright
    np.testing.assert_allclose(bright[~same], brighten_colours(plain[~same]), atol=1e-5)
    np.testing.assert_allclose(bright[~same].max(-1), 1.0, atol=1e-5)
    assert (~same).any()  # some objects were dim, and are bright now
    assert (same & (plain.max(-1) < 0.9)).any()  # a dim background stays as it is
    with pytest.raises(ValueError, match="bright_colours=True brightens flat layer colours"):
        g.clone(layer_colours="map").init(jax.random.key(3), latents, train=False)


def test_palette_picks_are_entries_forward_with_a_softmax_gradient_and_can_be_distinct():
    """`pick_from_palette`: each layer's colour is the entry of its highest logit; with
    `distinct` a later layer whose favourite is taken gets its next best; the gradient reaches
    the logits (softmax-weighted) and the entries shown, not the others; a `shared` entry per
    clip may be taken by any number of layers; too few entries for distinct picks is an error
    naming the sizes."""
    palette = jnp.asarray([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0], [1.0] * 3])
    logits = jnp.asarray(
        [[[3.0, 1.0, 0.0, -1.0], [2.0, 0.0, 1.0, -1.0]], [[0.0, 0.0, 5.0, -1.0], [0.0, 4, 0, -1]]]
    )
    np.testing.assert_array_equal(
        pick_from_palette(logits, palette, False), palette[jnp.asarray([[0, 0], [2, 1]])]
    )
    np.testing.assert_array_equal(  # clip 0's second layer: entry 0 taken, entry 2 next
        pick_from_palette(logits, palette, True), palette[jnp.asarray([[0, 2], [2, 1]])]
    )

    shared = jnp.asarray([0, 3])  # clip 0: entry 0 may be taken twice (the background's colour)
    np.testing.assert_array_equal(
        pick_from_palette(logits, palette, True, shared), palette[jnp.asarray([[0, 0], [2, 1]])]
    )

    def loss(logits, palette):
        return jnp.sum(pick_from_palette(logits, palette, True) @ jnp.asarray([1.0, 2.0, 3.0]))

    d_logits, d_palette = jax.grad(loss, argnums=(0, 1))(logits, palette)
    assert np.all(np.isfinite(d_logits)) and np.abs(np.asarray(d_logits)).max() > 0
    assert float(d_logits[0, 1, 0]) == 0.0  # the taken entry has no weight for the next layer
    assert np.abs(np.asarray(d_palette[:3])).min() > 0  # the entries shown...
    np.testing.assert_array_equal(d_palette[3], 0.0)  # ...and not the one no layer picked
    with pytest.raises(ValueError, match="2 distinct picks need 2 entries or more, got 1"):
        pick_from_palette(logits[..., :1], palette[:1], True)


def test_a_g_with_a_palette_paints_objects_only_in_its_colours_and_distinct_ones_per_clip():
    """`colour_palette`: every pixel is the background's colour or a palette entry's, the
    entries made from the table as flat colours are (levels from logits). With both layers'
    picks favouring entry 0, every object is that colour; `distinct_colours` gives the second
    layer entry 1 instead, so a clip holds two colours wherever both layers show."""
    g = MoCoGenerator(clip_shape=(4, 16, 16, 3), **G_SIZES, **MAIN_JOB_SPRITES, colour_palette=3)
    latents = _latents(jax.random.key(4), 16, 4)
    variables = g.init(jax.random.key(3), latents, train=False)
    params = jax.tree.map(np.asarray, variables["params"])
    # The table: red, green, blue (one logit per level of each channel, the highest wins).
    levels = np.asarray([[2, 0, 0], [0, 2, 0], [0, 0, 2]])  # level index per entry, channel
    params["colour_palette"] = 4.0 * np.eye(3)[levels].reshape(3, 9) - 2.0
    params["palette_logits"]["kernel"] = np.zeros_like(params["palette_logits"]["kernel"])
    params["palette_logits"]["bias"] = np.tile([5.0, 1.0, 0.0], 2)  # both layers: 0, then 1
    params["layer_presence"]["bias"] = np.full(2, 0.5)  # layers shown, inside their maps
    params["layer_colours"]["kernel"] = np.zeros_like(params["layer_colours"]["kernel"])
    params["layer_colours"]["bias"] = np.tile([2.0, -2.0, -2.0], 3)  # a black background
    variables = {**variables, "params": params}

    def colours_per_clip(g):
        clips = np.asarray(g.apply(variables, latents, train=False)).reshape(16, -1, 3)
        assert np.all(np.abs(np.abs(clips) - 1.0) < 1e-6)  # levels -1 or 1 only
        return [{tuple(px.tolist()) for px in clip[np.any(clip > -1.0, axis=-1)]} for clip in clips]

    red, green = (1.0, -1.0, -1.0), (-1.0, 1.0, -1.0)
    assert all(colours <= {red} for colours in colours_per_clip(g))
    assert any(colours == {red} for colours in colours_per_clip(g))
    distinct = colours_per_clip(g.clone(distinct_colours=True))
    assert all(colours <= {red, green} for colours in distinct)
    assert sum(colours == {red, green} for colours in distinct) >= 8
    with pytest.raises(ValueError, match="distinct_colours=True gives the 2 layers of a clip"):
        g.clone(colour_palette=1, distinct_colours=True).init(jax.random.key(3), latents)
    with pytest.raises(ValueError, match="colour_palette=3 picks flat layer colours from a pal"):
        g.clone(layer_colours="map", colour_levels=0, level_logits=False).init(
            jax.random.key(3), latents
        )


def test_opened_masks_keep_wide_shapes_and_lose_specks_and_thin_lines():
    """`open_masks`: a 5x5 square and a disc 8 pixels across keep every shown pixel; a speck,
    a line 2 pixels wide and a line along the map's edge are gone (radius 1: a 3x3 square);
    the gradient reaches the logits the minima and maxima picked, and radius 0 is the
    identity."""
    logits = np.full((1, 20, 20, 2), -1.0, np.float32)
    logits[0, 2:7, 2:7, 0] = 2.0  # a square, 5 wide
    logits[0, 10, 3, 0] = 6.0  # a speck
    logits[0, 13:15, 1:12, 0] = 4.0  # a line 2 wide
    logits[0, 0, :, 0] = 3.0  # a line along the edge
    rows, cols = np.mgrid[:20, :20]
    disc = (rows - 9.5) ** 2 + (cols - 9.5) ** 2 < 16  # 8 pixels across
    logits[0, ..., 1] = np.where(disc, 1.5, -2.0)
    opened = np.asarray(open_masks(jnp.asarray(logits), 1, -10.0))
    square = np.zeros((20, 20), bool)
    square[2:7, 2:7] = True
    np.testing.assert_array_equal(opened[0, ..., 0] > 0, square)
    np.testing.assert_array_equal(opened[0, ..., 1] > 0, disc)
    np.testing.assert_array_equal(opened[0, 2:7, 2:7, 0], 2.0)
    grad = jax.grad(lambda x: open_masks(x, 1, -10.0)[0, 4, 4, 0])(jnp.asarray(logits))
    assert float(grad.sum()) == 1.0 and float(grad[0, 2:7, 2:7, 0].sum()) == 1.0  # a tie's pick
    np.testing.assert_array_equal(open_masks(jnp.asarray(logits), 0, -10.0), logits)


def test_a_g_with_opened_masks_draws_no_object_narrower_than_the_square():
    """`mask_opening`: with hard masks, every pixel a layer shows lies in a 3x3 block that
    layer shows whole (radius 1), in every frame; without it, a G of jittered weights draws
    specks."""
    sprites = {**MAIN_JOB_SPRITES, "layers": 1, "whole_pixels": True}
    g = MoCoGenerator(clip_shape=(3, 16, 16, 3), **G_SIZES, **sprites, mask_opening=1)
    latents = _latents(jax.random.key(6), 32, 3)
    variables = g.init(jax.random.key(2), latents, train=False)
    # The frame generator's weights jittered, so that the masks are no longer smooth, and
    # every presence 0, so that no map's outside (a logit of -10 / gain) is shown.
    leaves, tree = jax.tree.flatten(variables["params"]["frames"])
    keys = jax.random.split(jax.random.key(7), len(leaves))
    jittered = [x + 0.2 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    params = {**variables["params"], "frames": jax.tree.unflatten(tree, jittered)}
    params["layer_presence"] = jax.tree.map(jnp.zeros_like, params["layer_presence"])
    variables = {**variables, "params": params}

    def thin_pixels(clips):
        clips = np.asarray(clips)
        shown = np.any(clips != clips[:, :, :1, :1], axis=-1)  # not the corner's background
        padded = np.pad(shown, ((0, 0), (0, 0), (1, 1), (1, 1)))
        whole = np.zeros_like(padded)  # pixels inside a 3x3 block shown whole
        for r in range(1, 17):
            for c in range(1, 17):
                block = padded[:, :, r - 1 : r + 2, c - 1 : c + 2].all(axis=(2, 3))
                whole[:, :, r - 1 : r + 2, c - 1 : c + 2] |= block[:, :, None, None]
        return int((shown & ~whole[:, :, 1:-1, 1:-1]).sum())

    opened = g.apply(variables, latents, train=False)
    assert thin_pixels(opened) == 0
    assert np.any(opened != opened[:, :, :1, :1])  # objects are shown
    assert thin_pixels(g.clone(mask_opening=0).apply(variables, latents, train=False)) > 0
    with pytest.raises(ValueError, match="mask_opening=-1 opens the masks of layers"):
        g.clone(mask_opening=-1).init(jax.random.key(3), latents, train=False)


def test_hidden_outside_keeps_a_present_layer_inside_its_map():
    """`hidden_outside`: with every presence high (+3), a moved layer still shows at most its
    8x8 map's pixels in each 16x16 frame (9x9 at a sub-pixel offset); added after the move,
    that presence shows the layer over the whole frame outside its map too (the logit there is
    -10 / gain)."""
    sprites = {**MAIN_JOB_SPRITES, "layers": 1}
    g = MoCoGenerator(clip_shape=(3, 16, 16, 3), **G_SIZES, **sprites, hidden_outside=True)
    latents = _latents(jax.random.key(8), 16, 3)
    variables = g.init(jax.random.key(2), latents, train=False)

    def with_presence(bias):
        params = dict(variables["params"])
        presence = jax.tree.map(jnp.zeros_like, params["layer_presence"])
        params["layer_presence"] = {**presence, "bias": presence["bias"] + bias}
        return {**variables, "params": params}

    background = np.asarray(g.apply(with_presence(-100.0), latents, train=False))
    for hidden, most in ((True, 81), (False, 256)):
        clips = g.clone(hidden_outside=hidden).apply(with_presence(3.0), latents, train=False)
        shown = np.any(np.asarray(clips) != background, axis=-1).sum(axis=(2, 3))  # [N, T]
        assert shown.max() <= most and shown.min() > 0
    assert shown.min() > 81  # without it: the map's outside is shown too
    with pytest.raises(ValueError, match="hidden_outside=True keeps the outside of moved"):
        g.clone(layer_motion="drawn", layer_walls="open").init(
            jax.random.key(3), latents, train=False
        )


def test_whole_pixel_moves_copy_the_map_forward_and_keep_the_sub_pixel_gradient():
    """`move_maps(..., whole_pixels=True)`: forward, the move by the rounded offsets (each
    frame an exact, shifted copy of the map); backward, the sub-pixel move's gradient."""
    maps = jax.random.normal(jax.random.key(0), (2, 6, 6, 1, 1))
    offsets = jnp.asarray([[0.3, 1.6], [2.49, -0.7], [3.5001, 0.1]]).reshape(1, 3, 1, 2)
    offsets = jnp.concatenate([offsets, offsets + 0.25], axis=0)  # [2, 3, 1, 2]
    moved = move_maps(maps, offsets, -5.0, (10, 10), whole_pixels=True)
    np.testing.assert_array_equal(moved, translate_maps(maps, jnp.round(offsets), -5.0, (10, 10)))
    # Clip 0, frame 1 sits at (2, -1): the map's pixel (r, c) is at (r + 2, c - 1).
    np.testing.assert_array_equal(moved[0, 1, 2:8, 0:5, 0, 0], maps[0, :, 1:, 0, 0])
    np.testing.assert_array_equal(moved[0, 1, :2, :, 0, 0], np.full((2, 10), -5.0))
    weights = jax.random.normal(jax.random.key(1), moved.shape)

    def loss(o, whole):
        return jnp.sum(weights * move_maps(maps, o, -5.0, (10, 10), whole))

    grad = jax.grad(loss)(offsets, True)
    np.testing.assert_allclose(grad, jax.grad(loss)(offsets, False), rtol=1e-6)
    assert np.abs(np.asarray(grad)).min() > 0
    unrounded = move_maps(maps, offsets, -5.0, (10, 10))
    assert not np.allclose(unrounded, moved)  # sub-pixel offsets blend neighbouring pixels


def test_a_g_with_whole_pixel_moves_keeps_each_objects_pixels_in_every_frame():
    """`whole_pixels`: a sprite moves by whole pixels, so with hard masks each frame of a
    clip shows the same number of pixels of every colour (one layer, bouncing inside the
    frame); moved by fractions of a pixel, its outline changes from frame to frame."""
    sprites = {**MAIN_JOB_SPRITES, "layers": 1, "whole_pixels": True}
    g = MoCoGenerator(clip_shape=(6, 16, 16, 3), **G_SIZES, **sprites)
    latents = _latents(jax.random.key(5), 64, 6)
    variables = g.init(jax.random.key(2), latents, train=False)

    def colour_counts(clips):
        codes = np.asarray(clips).round().astype(int) + 1  # -1, 0, 1 -> 0, 1, 2 per channel
        codes = codes[..., 0] * 9 + codes[..., 1] * 3 + codes[..., 2]  # [N, T, H, W]
        return np.stack([[np.bincount(f.ravel(), minlength=27) for f in clip] for clip in codes])

    whole = colour_counts(g.apply(variables, latents, train=False))  # [N, T, 27]
    two_colours = (whole[:, 0] > 0).sum(-1) == 2
    assert two_colours.sum() >= 4  # an object on a background of another colour
    np.testing.assert_array_equal(whole, np.repeat(whole[:, :1], 6, axis=1))
    sub_pixel = colour_counts(g.clone(whole_pixels=False).apply(variables, latents, train=False))
    assert (sub_pixel != sub_pixel[:, :1]).any(axis=(1, 2))[two_colours].any()
    with pytest.raises(ValueError, match="whole_pixels=True rounds the offsets of moved layers"):
        g.clone(layer_motion="drawn", layer_walls="open").init(
            jax.random.key(3), latents, train=False
        )


def test_reflected_sprites_bounce_where_the_object_not_its_map_meets_the_wall():
    """`layer_walls="reflect"`: a sprite moving right 2 px per frame turns back when its
    object's right edge reaches the frame's last column, runs left at the same speed until its
    left edge reaches the first, and so on; the object keeps its shape in every frame of 32.
    With `colour_levels=3` every channel of every pixel is -1, 0 or 1."""
    g = MoCoGenerator(
        clip_shape=(32, 16, 16, 3),
        **G_SIZES,
        layers=1,
        layer_motion="inertial",
        hard_masks=True,
        mask_gain=12,
        output_gain=6,
        sprite_scale=2,
        layer_walls="reflect",
        colour_levels=3,
    )
    variables = jax.jit(lambda k: g.init(k, zero_latents(g.latent_shapes, 2), train=False))(
        jax.random.key(3)
    )
    params = dict(variables["params"])
    params["layer_presence"] = jax.tree.map(jnp.zeros_like, params["layer_presence"])
    offsets = dict(params["offsets"])
    offsets["velocity"] = {
        "kernel": jnp.zeros_like(offsets["velocity"]["kernel"]),
        "bias": jnp.asarray([0.0, 2.0]),
    }
    offsets["start"] = jax.tree.map(jnp.zeros_like, offsets["start"])  # the map at (4, 4)
    params["offsets"] = offsets
    # Background tanh(6 x -1) per channel, the sprite tanh(6 x (1, 0.02, -1)) = (1, 0.12, -1):
    # rounded to 3 levels, black and orange (1, 0, -1).
    params["layer_colours"] = {
        "kernel": jnp.zeros_like(params["layer_colours"]["kernel"]),
        "bias": jnp.asarray([-1.0, -1.0, -1.0, 1.0, 0.02, -1.0]),
    }
    clips, _ = jax.jit(lambda v, z: g.apply(v, z, train=True, mutable=["batch_stats"]))(
        {**variables, "params": params}, _latents(jax.random.key(4), 3, 32)
    )
    clips = np.asarray(clips)
    colours = np.unique(clips.reshape(-1, 3), axis=0)
    np.testing.assert_array_equal(colours, [[-1, -1, -1], [1, 0, -1]])  # rounded to 3 levels
    background = clips[:, :, :1, :1]  # the corner is background in every frame
    cols = (np.abs(clips - background).max(-1) > 1e-3).any(axis=2)  # [N, T, W]: object columns
    assert cols.any(axis=2).all()  # the object shows in every frame
    left = cols.argmax(axis=2)
    right = 15 - cols[:, :, ::-1].argmax(axis=2)
    for clip_left, clip_right in zip(left, right, strict=True):
        first, last = clip_left[0] - 4, clip_right[0] - 4  # the object's columns on its map
        low, high = -first, 15 - last  # where the map may sit: the object whole in the frame
        path = 4 + 2 * np.arange(32) - low
        offset = low + (high - low) - np.abs(np.mod(path, 2 * (high - low)) - (high - low))
        np.testing.assert_array_equal(clip_left, offset + first)
        np.testing.assert_array_equal(clip_right - clip_left, last - first)  # one shape
        assert clip_right.max() == 15 and clip_left.min() == 0  # met both walls


@pytest.mark.parametrize(
    "motion, step_layer, sprite_scale",
    [("translate", "step", 1), ("inertial", "velocity", 1), ("steered", "velocity", 2)],
)
def test_moved_layers_are_one_drawing_moved_from_frame_to_frame(motion, step_layer, sprite_scale):
    """With moved layers (`layer_motion` "translate" or "inertial") each layer is drawn once per
    clip and moved: with hard masks and flat colours every pixel of every frame is one of the
    clip's K + 1 colours, and a constant step of whole pixels gives frame t as frame 0 moved by
    t steps, the background filling what the layers leave. With `sprite_scale` 2 a layer's
    drawing is half the frame wide and tall, and starts anywhere that holds it whole."""
    g8, g32 = (
        MoCoGenerator(
            clip_shape=(t, 16, 16, 3),
            **G_SIZES,
            layers=2,
            layer_motion=motion,
            hard_masks=True,
            mask_gain=12,
            output_gain=6,
            sprite_scale=sprite_scale,
        )
        for t in (8, 32)
    )
    variables = jax.jit(lambda k: g8.init(k, zero_latents(g8.latent_shapes, 2), train=False))(
        jax.random.key(3)
    )
    params = dict(variables["params"])
    params["layer_presence"] = jax.tree.map(jnp.zeros_like, params["layer_presence"])
    # Every frame, layer 0 moves 1 pixel down and layer 1 2 pixels left.
    # (Inertial and steered: the first step, and the zero-initialised acceleration keeps it.)
    offsets = dict(params["offsets"])
    offsets[step_layer] = {
        "kernel": jnp.zeros_like(offsets[step_layer]["kernel"]),
        "bias": jnp.asarray([1.0, 0.0, 0.0, -2.0]),
    }
    if sprite_scale > 1:  # both sprites start at (4, 4): (16 - 8) / 2 x (1 + tanh(0))
        offsets["start"] = jax.tree.map(jnp.zeros_like, offsets["start"])
    params["offsets"] = offsets
    variables = {**variables, "params": params}
    run = jax.jit(
        lambda v, z, g: g.apply(v, z, train=True, mutable=["batch_stats"])[0], static_argnums=2
    )
    latents = _latents(jax.random.key(4), 3, 8)
    clips = np.asarray(run(variables, latents, g8))
    assert clips.shape == (3, 8, 16, 16, 3)
    head = params["layer_colours"]  # the flat colours, tanh(6 x a Dense of the content code)
    content, kernel, bias = (
        np.asarray(x) for x in (latents["content"], head["kernel"], head["bias"])
    )
    colours = np.tanh(6 * (content @ kernel + bias)).reshape(3, 3, 3)
    for clip, palette in zip(clips, colours, strict=True):
        distance = np.abs(clip.reshape(-1, 1, 3) - palette[None]).max(-1).min(-1)
        assert distance.max() < 1e-5  # every pixel one of the 3 colours
        assert len(np.unique(clip.reshape(-1, 3), axis=0)) >= 2
    # Layer by layer: which pixels show layer 1 (the top) in frame t is frame 0's moved.
    on_top = np.abs(clips - colours[:, None, None, None, 2]).max(-1) < 1e-5  # [N, T, H, W]
    assert on_top[:, 0].sum(axis=(1, 2)).min() >= 4  # layer 1 shows in every clip
    for t in range(1, 8):
        want = np.zeros_like(on_top[:, 0])
        want[:, :, : 16 - 2 * t] = on_top[:, 0, :, 2 * t :]
        np.testing.assert_array_equal(on_top[:, t], want)
    if sprite_scale > 1:  # drawn on an 8x8 map placed at (4, 4)
        assert not on_top[:, 0, :4].any() and not on_top[:, 0, 12:].any()
        assert not on_top[:, 0, :, :4].any() and not on_top[:, 0, :, 12:].any()
    # No parameter depends on T: 32 frames from the same variables.
    long = np.asarray(run(variables, _latents(jax.random.key(4), 3, 32), g32))
    assert long.shape == (3, 32, 16, 16, 3)
    np.testing.assert_array_equal(long[:, 0], clips[:, 0])


@pytest.mark.parametrize("mode", ["translate", "inertial", "steered", "glide"])
def test_layer_offsets_start_whole_inside_and_only_steering_reads_the_position(mode):
    """`LayerOffsets`: frame 0 sits at the start, inside [0, room]; the parameters are the same
    for 1, 2 and 8 frames; and the steered turns depend on where a layer is, so moving the
    start (the content code) changes its later steps, where inertial and translated steps do
    not change."""
    module = LayerOffsets(2, mode, (16, 16), room=(8, 8))
    motion = jax.random.normal(jax.random.key(0), (3, 8, 5))
    content = jax.random.normal(jax.random.key(1), (3, 6))
    variables = module.init(jax.random.key(2), motion, content)
    for t in (1, 2):
        short = module.init(jax.random.key(2), motion[:, :t], content)
        assert _shapes(short) == _shapes(variables)
    params = dict(variables["params"])
    if mode in ("inertial", "steered"):  # a turn to read: the zero-initialised layer nonzero
        name = "steer" if mode == "steered" else "acceleration"
        params[name] = {**params[name], "kernel": jnp.ones_like(params[name]["kernel"])}

    def offsets_of(c):
        return np.asarray(module.apply({"params": params}, motion, c))

    offsets = offsets_of(content)
    assert offsets.shape == (3, 8, 2, 2)
    assert offsets[:, 0].min() >= 0.0 and offsets[:, 0].max() <= 8.0
    moved = offsets_of(content + 1.0)
    steps, moved_steps = np.diff(offsets, axis=1), np.diff(moved, axis=1)
    assert not np.allclose(moved[:, 0], offsets[:, 0])  # another start
    np.testing.assert_allclose(moved_steps[:, 0], steps[:, 0], atol=1e-6)  # same velocity
    if mode == "steered":
        assert np.abs(moved_steps[:, 1:] - steps[:, 1:]).max() > 1e-3
    else:
        np.testing.assert_allclose(moved_steps, steps, atol=1e-5)


def test_gliding_layers_keep_one_velocity_of_the_learned_speed():
    """`"glide"`: every step of a layer is the same, its length softplus(`speed`) of the motion
    code of frame 1 and its direction a unit vector; a Gaussian code points every way."""
    module = LayerOffsets(2, "glide", (16, 16), room=(8, 8))
    motion = jax.random.normal(jax.random.key(0), (256, 8, 5))
    content = jax.random.normal(jax.random.key(1), (256, 6))
    variables = module.init(jax.random.key(2), motion, content)
    steps = np.diff(np.asarray(module.apply(variables, motion, content)), axis=1)  # [N, 7, K, 2]
    np.testing.assert_allclose(steps, np.broadcast_to(steps[:, :1], steps.shape), atol=1e-5)
    speed = variables["params"]["speed"]
    code = np.asarray(motion[:, 1])
    want = np.log1p(np.exp(code @ np.asarray(speed["kernel"]) + np.asarray(speed["bias"])))
    np.testing.assert_allclose(np.hypot(*np.moveaxis(steps[:, 0], -1, 0)), want, atol=2e-3)
    angles = np.arctan2(steps[:, 0, :, 0], steps[:, 0, :, 1])
    assert np.histogram(angles, bins=4, range=(-np.pi, np.pi))[0].min() > 50  # of 512
    one_frame = module.init(jax.random.key(2), motion[:, :1], content)
    assert _shapes(one_frame) == _shapes(variables)


def test_gliding_speeds_with_a_range_stay_in_the_learned_interval():
    """`speed_range`: every speed lies in [softplus(`speed_low`), that + softplus(`speed_span`)]
    however large the code (at init 0.31 to 1.0), where softplus's speeds pass the interval on
    large codes; the direction is unchanged."""
    module = LayerOffsets(2, "glide", (16, 16), room=(8, 8), speed_range=True)
    motion = 30.0 * jax.random.normal(jax.random.key(0), (256, 4, 5))
    content = jax.random.normal(jax.random.key(1), (256, 6))
    variables = module.init(jax.random.key(2), motion, content)
    params = variables["params"]
    np.testing.assert_array_equal(params["speed_low"], [-1.0, -1.0])
    params = {**params, "speed_low": jnp.asarray([0.5, 1.0]), "speed_span": jnp.asarray([1.0, 2.0])}
    low = np.log1p(np.exp([0.5, 1.0]))
    high = low + np.log1p(np.exp([1.0, 2.0]))
    steps = np.diff(np.asarray(module.apply({"params": params}, motion, content)), axis=1)
    speeds = np.hypot(steps[:, 0, :, 0], steps[:, 0, :, 1])  # [N, K]
    assert np.all(speeds >= low - 1e-4) and np.all(speeds <= high + 1e-4)
    assert np.all(speeds.min(0) < low + 0.05) and np.all(speeds.max(0) > high - 0.05)  # both ends
    plain = module.clone(speed_range=False)
    plain_vars = {"params": {k: v for k, v in params.items() if not k.startswith("speed_")}}
    plain_steps = np.diff(np.asarray(plain.apply(plain_vars, motion, content)), axis=1)
    plain_speeds = np.hypot(plain_steps[:, 0, :, 0], plain_steps[:, 0, :, 1])
    assert np.any(plain_speeds > high + 1.0)  # softplus's tail
    moving = plain_speeds > 1e-3  # softplus's speeds of large negative codes are 0
    np.testing.assert_allclose(  # the same directions
        steps[:, 0][moving] / speeds[moving][:, None],
        plain_steps[:, 0][moving] / plain_speeds[moving][:, None],
        atol=1e-3,
    )
    code = np.asarray(jax.random.normal(jax.random.key(3), (256, 4, 5)))
    speed = variables["params"]["speed"]  # at init: low softplus(-1), span softplus(0)
    pre = code[:, 1] @ np.asarray(speed["kernel"]) + np.asarray(speed["bias"])
    want = np.log1p(np.exp(-1.0)) + np.log(2.0) / (1.0 + np.exp(-pre))  # about 0.31 to 1.0
    got = np.linalg.norm(np.diff(module.apply(variables, code, content), axis=1)[:, 0], axis=-1)
    np.testing.assert_allclose(got, want, atol=2e-3)
    with pytest.raises(ValueError, match="speed_range=True bounds the speeds of gliding layers"):
        MoCoGenerator(clip_shape=(3, 16, 16, 3), **G_SIZES, layers=2, speed_range=True).init(
            jax.random.key(0), _latents(jax.random.key(1), 2, 3), train=False
        )


def test_joint_level_logits_pick_the_channel_wise_colour_with_its_gradient():
    """`joint_level_logits` over `level_combinations`: the highest combination is each
    channel's highest level and the softmax-weighted colour the channel-wise means, so a
    palette pick over them (`pick_from_palette`) is `pick_levels`, forward and backward."""
    logits = jax.random.normal(jax.random.key(0), (6, 2, 3, 3))
    palette = level_combinations(3, 3)
    assert palette.shape == (27, 3)
    np.testing.assert_array_equal(palette[0], [-1.0] * 3)
    np.testing.assert_array_equal(palette[2 * 9 + 1 * 3 + 0], [1.0, 0.0, -1.0])  # orange
    joint = pick_from_palette(joint_level_logits(logits), palette, False)
    np.testing.assert_array_equal(joint, pick_levels(logits, 3))
    weights = jnp.asarray([1.0, -2.0, 0.5])
    grad_joint = jax.grad(
        lambda x: jnp.sum(pick_from_palette(joint_level_logits(x), palette, False) @ weights)
    )(logits)
    grad_levels = jax.grad(lambda x: jnp.sum(pick_levels(x, 3) @ weights))(logits)
    np.testing.assert_allclose(grad_joint, grad_levels, atol=1e-5)


def test_a_g_with_distinct_level_logit_colours_repaints_only_a_taken_colour():
    """`distinct_colours` with level logits: where both layers' levels pick red, the second
    layer takes its next best colour (here green's channel levels changed least: red's runner
    up); every other clip is drawn exactly as without the setting. Objects in the background's
    colour (hidden) may share it."""
    g = MoCoGenerator(clip_shape=(4, 16, 16, 3), **G_SIZES, **MAIN_JOB_SPRITES)
    latents = _latents(jax.random.key(4), 16, 4)
    variables = g.init(jax.random.key(3), latents, train=False)
    plain = np.asarray(g.apply(variables, latents, train=False))
    distinct = g.clone(distinct_colours=True)
    np.testing.assert_array_equal(distinct.apply(variables, latents, train=False), plain)
    params = jax.tree.map(np.asarray, variables["params"])
    levels = np.full((3, 3, 3), 0.0)  # [layer, channel, level]: background black
    levels[0, :, 0] = 9.0
    levels[1:, 0, 2], levels[1:, 1, 0], levels[1:, 2, 0] = 9.0, 9.0, 9.0  # both objects red
    levels[2, 1, 1] = 8.0  # the second object's runner-up: green at the middle level (orange)
    params["layer_colours"]["kernel"] = np.zeros_like(params["layer_colours"]["kernel"])
    params["layer_colours"]["bias"] = levels.reshape(-1)
    params["layer_presence"]["bias"] = np.full(2, 0.5)
    variables = {**variables, "params": params}
    red, orange = (1.0, -1.0, -1.0), (1.0, 0.0, -1.0)
    for model, want in ((g, {red}), (distinct, {red, orange})):
        clips = np.asarray(model.apply(variables, latents, train=False)).reshape(16, -1, 3)
        shown = [
            {tuple(px.tolist()) for px in clip[np.any(clip > -1.0, axis=-1)]} for clip in clips
        ]
        assert all(colours <= want for colours in shown)
        assert any(colours == want for colours in shown)
    levels[1:] = levels[0]  # both objects in the background's black: hidden, and both may be
    params["layer_colours"]["bias"] = levels.reshape(-1)
    variables = {**variables, "params": params}
    np.testing.assert_array_equal(distinct.apply(variables, latents, train=False), -1.0)


def test_a_g_with_a_colour_prior_draws_what_it_draws_without_until_the_prior_moves():
    """`colour_prior`: at init (every colour's prior 0) G draws exactly what it draws without
    it; a prior far below for red makes the objects whose levels pick red take their next best
    (orange here), and any other colour stays."""
    g = MoCoGenerator(clip_shape=(4, 16, 16, 3), **G_SIZES, **MAIN_JOB_SPRITES)
    latents = _latents(jax.random.key(4), 16, 4)
    with_prior = g.clone(colour_prior=True)
    variables = with_prior.init(jax.random.key(3), latents, train=False)
    np.testing.assert_array_equal(variables["params"]["colour_prior"], np.zeros(27))
    plain_vars = {**variables, "params": dict(variables["params"])}
    del plain_vars["params"]["colour_prior"]
    np.testing.assert_array_equal(
        with_prior.apply(variables, latents, train=False),
        g.apply(plain_vars, latents, train=False),
    )
    params = jax.tree.map(np.array, variables["params"])  # writable copies
    levels = np.zeros((3, 3, 3))  # [layer, channel, level]: background black
    levels[0, :, 0] = 9.0
    levels[1, 0, 2], levels[1, 1, 2], levels[1, 2, 0] = 9.0, 9.0, 9.0  # object 1 yellow
    levels[2, 0, 2], levels[2, 1, 0], levels[2, 2, 0] = 9.0, 9.0, 9.0  # object 2 red...
    levels[2, 1, 1] = 8.0  # ...orange its runner-up
    params["layer_colours"]["kernel"] = np.zeros_like(params["layer_colours"]["kernel"])
    params["layer_colours"]["bias"] = levels.reshape(-1)
    params["layer_presence"]["bias"] = np.full(2, 0.5)
    params["colour_prior"][2 * 9] = -100.0  # red: (level 2, 0, 0)
    clips = with_prior.apply({**variables, "params": params}, latents, train=False)
    shown = {tuple(px.tolist()) for px in np.asarray(clips).reshape(-1, 3)}
    assert shown == {(-1.0, -1.0, -1.0), (1.0, 1.0, -1.0), (1.0, 0.0, -1.0)}
    with pytest.raises(ValueError, match="colour_prior=True adds a learned logit per colour"):
        g.clone(colour_prior=True, colour_palette=4).init(jax.random.key(3), latents)


def test_quantised_colours_round_each_channel_and_pass_the_gradient_through():
    colours = jnp.asarray([-1.0, -0.6, -0.2, 0.2, 0.45, 0.55, 1.0])
    np.testing.assert_array_equal(quantise_colours(colours, 2), [-1, -1, -1, 1, 1, 1, 1])
    np.testing.assert_array_equal(quantise_colours(colours, 3), [-1, -1, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(quantise_colours(colours, 0), colours)
    grad = jax.grad(lambda c: (quantise_colours(c, 3) * jnp.arange(7.0)).sum())(colours)
    np.testing.assert_array_equal(grad, np.arange(7.0))
    with pytest.raises(ValueError, match="levels=1 must be 0"):
        quantise_colours(colours, 1)


def test_sprites_must_divide_into_the_frame_generators_blocks():
    cfg = _tiny_config()  # 8x8 frames, G of depth 2
    cfg.g.layers, cfg.g.layer_motion, cfg.g.sprite_scale = 2, "steered", 4
    with pytest.raises(ConfigError, match=r"^g\.sprite_scale=4 draws sprites of 8/4 x 8/4"):
        train.validate(cfg)


def test_content_is_one_code_per_clip_and_motion_codes_are_causal(apply_g):
    """In inference mode every frame is a function of its clip's content code and of its own
    and earlier motion noise only. Changing clip 0's content changes all of clip 0's frames
    and nothing of clip 1 (fails if content were drawn, indexed or broadcast per frame);
    changing clip 0's motion noise at frame 3 changes its frames 3.. only."""
    z = _latents(jax.random.key(5), 2, 8)
    base = apply_g(z)
    assert np.abs(base[0, 1:] - base[0, :-1]).max() > 1e-4, "the frames of a clip do not move"

    content = z["content"].at[0].add(1.0)
    changed = apply_g({**z, "content": content})
    per_frame = np.abs(changed - base).max(axis=(2, 3, 4))  # [N, T]
    assert per_frame[0].min() > 1e-4, per_frame[0]
    np.testing.assert_array_equal(changed[1], base[1])

    motion = z["motion"].at[0, 3].add(1.0)
    changed = apply_g({**z, "motion": motion})
    per_frame = np.abs(changed - base).max(axis=(2, 3, 4))
    np.testing.assert_array_equal(changed[0, :3], base[0, :3])
    assert per_frame[0, 3:].min() > 1e-6, per_frame[0]
    np.testing.assert_array_equal(changed[1], base[1])

    # One content code and one motion sequence make one clip, whatever else is in the batch.
    same = {k: jnp.stack([v[0], v[0]]) for k, v in z.items()}
    twins = apply_g(same)
    np.testing.assert_array_equal(twins[0], twins[1])


@pytest.mark.parametrize(
    "num_frames, heads, stride, sizes",
    [
        (8, ("image", "video"), 1, {"image": 16, "video": 2}),
        (8, ("image", "video"), 3, {"image": 6, "video": 2}),  # frames 0, 3, 6
        (8, ("image",), 1, {"image": 16}),
        (1, ("image", "video"), 1, {"image": 2, "video": 2}),  # images: both heads per image
    ],
)
def test_discriminator_heads(num_frames, heads, stride, sizes):
    d = ImageVideoDiscriminator(
        clip_shape=(num_frames, *FRAME), base_width=4, depth=2, heads=heads, image_stride=stride
    )
    clips = jax.random.uniform(jax.random.key(6), (2, num_frames, *FRAME), minval=-1, maxval=1)
    variables = jax.jit(lambda k: d.init(k, clips, train=False))(jax.random.key(7))
    assert sorted(variables["params"]) == sorted(heads)  # lr_multipliers paths: image, video
    apply = jax.jit(lambda x: d.apply(variables, x, train=False))
    logits = apply(clips)
    assert {k: v.shape for k, v in logits.items()} == {k: (n,) for k, n in sizes.items()}
    if num_frames == 8:
        # The image head judges each sampled frame alone, clip-major: frame 6 of clip 1 is
        # image logit 1 * K + 6 // stride; frame 4 is not sampled at stride 3.
        k = sizes["image"] // 2
        for frame, moved in ((6, {k + 6 // stride}), (4, {k + 4} if stride == 1 else set())):
            changed = apply(clips.at[1, frame].multiply(-1.0))
            diff = np.abs(np.asarray(changed["image"]) - np.asarray(logits["image"]))
            assert set(np.flatnonzero(diff > 0)) == moved, (frame, diff)


def test_the_video_heads_minibatch_std_channel_couples_only_its_group():
    d = ImageVideoDiscriminator(
        clip_shape=(4, *FRAME), base_width=4, depth=2, norm="none", minibatch_std=2
    )
    clips = jax.random.uniform(jax.random.key(6), (4, 4, *FRAME), minval=-1, maxval=1)
    variables = jax.jit(lambda k: d.init(k, clips, train=False))(jax.random.key(7))
    plain = ImageVideoDiscriminator(clip_shape=(4, *FRAME), base_width=4, depth=2, norm="none")
    plain_variables = jax.jit(lambda k: plain.init(k, clips, train=False))(jax.random.key(7))
    kernel = variables["params"]["video"]["logits"]["kernel"]
    plain_kernel = plain_variables["params"]["video"]["logits"]["kernel"]
    assert kernel.size > plain_kernel.size  # one more channel at each position of its map
    # The image head keeps no such channel: its parameters are the plain D's.
    assert _shapes(variables["params"]["image"]) == _shapes(plain_variables["params"]["image"])
    apply = jax.jit(lambda x: d.apply(variables, x, train=False))
    logits, moved = apply(clips), apply(clips.at[0].multiply(-1.0))
    changed = np.abs(np.asarray(moved["video"]) - np.asarray(logits["video"])) > 0
    assert changed.tolist() == [True, True, False, False]  # clip 0's group of 2


def test_the_image_heads_pixel_stem_sees_each_pixel_alone_first():
    """`pixel_stem` = k: the image head is the plain image D run on LeakyReLU(x W + b), a
    per-pixel layer from C to k channels; the video head is the plain D's."""
    d = ImageVideoDiscriminator(
        clip_shape=(4, *FRAME), base_width=4, depth=2, norm="none", image_stride=1, pixel_stem=5
    )
    plain = ImageVideoDiscriminator(clip_shape=(4, *FRAME), base_width=4, depth=2, norm="none")
    clips = jax.random.uniform(jax.random.key(6), (2, 4, *FRAME), minval=-1, maxval=1)
    variables = jax.jit(lambda k: d.init(k, clips, train=False))(jax.random.key(7))
    plain_variables = jax.jit(lambda k: plain.init(k, clips, train=False))(jax.random.key(7))
    image = dict(variables["params"]["image"])
    stem = image.pop("stem")
    assert stem["kernel"].shape == (3, 5) and stem["bias"].shape == (5,)
    assert image["down0"]["kernel"].shape == (4, 4, 5, 4)  # reads the stem's 5 channels
    assert _shapes(variables["params"]["video"]) == _shapes(plain_variables["params"]["video"])
    stem = {k: v.at[:].add(0.1 * jnp.arange(v.size).reshape(v.shape)) for k, v in stem.items()}
    params = {**variables["params"], "image": {**image, "stem": stem}}
    logits = jax.jit(lambda x: d.apply({"params": params}, x, train=False)["image"])(clips)
    frames = clips.reshape(-1, *FRAME)
    stemmed = jax.nn.leaky_relu(frames @ stem["kernel"] + stem["bias"][None, None, None], 0.2)
    head = ImageDiscriminator(base_width=4, depth=2, norm="none")
    expected = jax.jit(lambda x: head.apply({"params": image}, x, train=False))(stemmed)
    assert logits.shape == (2 * 4,)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


def _tiny_config():
    """Clips of 4 frames of 8x8 (for the config checks; no compilation)."""
    cfg = train.default_config(model="mocogan", data="bouncing_shapes")
    cfg.g.update(G_SIZES)
    cfg.d.base_width, cfg.d.depth = 4, 2
    cfg.data.num_frames, cfg.data.height, cfg.data.width = 4, 8, 8
    cfg.data.size_range = (2.0, 4.0)
    return cfg


# A tiny run of 2 steps, trained by `gan-jax train` (8 fake devices): the image head's loss
# weighted 0.5, the video D at a tenth of D's learning rate and with a minibatch-std channel, a
# checkpoint after each step.
CONFIG_TEXT = """
from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="mocogan", data="bouncing_shapes")
    cfg.steps = 2
    cfg.batch_size = 8
    cfg.g.content_dim, cfg.g.motion_dim, cfg.g.noise_dim = 6, 4, 3
    cfg.g.base_width, cfg.g.depth = 4, 1  # one block: the train step compiles 30 % faster
    cfg.d.base_width, cfg.d.depth = 4, 2
    cfg.d.image_stride = 2
    cfg.d.lr_multipliers.video = 0.1
    cfg.d.minibatch_std = 4  # as the main job
    cfg.loss.head_weights.image = 0.5
    cfg.data.num_frames, cfg.data.height, cfg.data.width = 8, 8, 8
    cfg.data.size_range = (2.0, 4.0)
    cfg.data.speed_range = (0.5, 1.0)
    cfg.data.num_threads = 1
    cfg.ckpt.every = 1
    cfg.log.every = 1
    cfg.log.sample_every = 0
    cfg.log.num_samples = 2
    cfg.log.progress = False
    return cfg
"""


@pytest.fixture(scope="module")
def mocogan_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mocogan")
    config_file = workdir.parent / "mocogan_tiny.py"
    config_file.write_text(CONFIG_TEXT)
    assert main(["train", "--config", str(config_file), "--workdir", str(workdir)]) == 0
    return workdir


def _max_change(a, b) -> float:
    return max(float(jnp.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_training_logs_both_heads_and_moves_every_part(mocogan_run):
    records = read_metrics(mocogan_run)
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        for name in ("d/real_acc", "d/fake_acc", "d/loss", "g/loss"):
            for head in ("image", "video"):
                assert np.isfinite(record[f"{name}/{head}"]), f"{name}/{head}"
        assert all(np.isfinite(v) for v in record.values())
        np.testing.assert_allclose(
            record["d/loss"], 0.5 * record["d/loss/image"] + record["d/loss/video"], rtol=1e-5
        )
    cfg, run, _, mesh = load_run(mocogan_run)
    with Checkpointer(mocogan_run / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [1, 2]
        step1, step2 = (ckpt.restore(abstract_state(run, mesh), step=s)[0] for s in (1, 2))
    for part in ("motion", "frames"):  # G's GRU and frame generator both learn
        assert _max_change(step2.g_params[part], step1.g_params[part]) > 0, part
    # Adam's second update moves a weight by at most 1.06 times its learning rate, and the
    # weight with the steadiest gradient by about that rate: the image D by up to d.lr, the
    # video D (multiplier 0.1) by up to d.lr / 10.
    lr = cfg.d.lr
    image = _max_change(step2.d_params["image"], step1.d_params["image"])
    video = _max_change(step2.d_params["video"], step1.d_params["video"])
    assert 0.5 * lr < image < 1.06 * lr and 0 < video < 0.106 * lr, (image / lr, video / lr)


def test_sample_32_frames_from_a_run_trained_on_8(mocogan_run, tmp_path, capsys):
    out = tmp_path / "long"
    args = ["sample", "--workdir", str(mocogan_run), "--num", "3", "--out", str(out)]
    assert main([*args, "--num-frames", "32"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["samples.gif", "samples.mp4", "samples.png"]
    frames = iio.imread(out / "samples.gif")
    assert frames.shape[0] == 32
    assert np.abs(frames[1:].astype(int) - frames[:-1].astype(int)).max() > 0  # they move
    grid = iio.imread(out / "samples.png")  # rows = samples, columns = frames
    assert grid.shape == (3 * 8 + 2 * SEPARATOR_PX, 32 * 8 + 31 * SEPARATOR_PX, 3)

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects it before any work
        main([*args, "--num-frames", "0"])
    assert exit_info.value.code == 2
    assert "argument --num-frames: must be at least 1, got 0" in capsys.readouterr().err


# The main job's sprites (experiments/configs/bouncing_shapes.py) on the tiny config's G, with
# rounded colours (the recipe before its level logits, which a case below adds).
_MAIN_JOB_SPRITES = """
    cfg.g.layer_motion, cfg.g.layer_walls, cfg.g.colour_levels = "glide", "reflect", 3
    cfg.g.sprite_scale, cfg.g.hard_masks, cfg.g.mask_gain = 2, True, 12.0
"""


@pytest.mark.parametrize(
    "sprites, level_logits",
    [(False, False), (True, False), (True, True)],
    ids=["drawn", "main_job_sprites", "sprites_level_logits"],
)
def test_a_layered_g_trains_and_its_layer_colours_learn(tmp_path, sprites, level_logits):
    """Two layers with flat colours, their colour head at 5 times G's learning rate, through
    `gan-jax train`: finite losses, and Adam's second update moves the colour head by about 5
    times G's learning rate (at most 1.06 times its own, as in the test above). With the main
    job's sprites (gliding, bouncing off the walls, colours rounded straight-through) the colour
    head learns the same, and the speed and direction heads learn through the fold; so does a
    colour head of one logit per level (`level_logits`, the main job's)."""
    config_file = tmp_path / "layered.py"
    extra = "    cfg.g.layers = 2\n    cfg.g.lr_multipliers.layer_colours = 5.0\n"
    extra += _MAIN_JOB_SPRITES.lstrip("\n") if sprites else ""
    extra += "    cfg.g.level_logits = True\n" if level_logits else ""
    config_file.write_text(CONFIG_TEXT.replace("    return cfg", extra + "    return cfg"))
    workdir = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--workdir", str(workdir)]) == 0
    assert all(np.isfinite(v) for record in read_metrics(workdir) for v in record.values())
    cfg, run, _, mesh = load_run(workdir)
    with Checkpointer(workdir / "checkpoints") as ckpt:
        step1, step2 = (ckpt.restore(abstract_state(run, mesh), step=s)[0] for s in (1, 2))
    colours = _max_change(step2.g_params["layer_colours"], step1.g_params["layer_colours"])
    assert 2.5 * cfg.g.lr < colours < 5.3 * cfg.g.lr, colours / cfg.g.lr
    assert _max_change(step2.g_params["frames"], step1.g_params["frames"]) < 1.06 * cfg.g.lr
    if sprites:
        for head in ("speed", "direction"):
            moved = _max_change(step2.g_params["offsets"][head], step1.g_params["offsets"][head])
            assert 0.5 * cfg.g.lr < moved < 1.06 * cfg.g.lr, (head, moved / cfg.g.lr)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("g.content_dim", 0, "g.content_dim must be >= 1, got 0"),
        ("g.noise_dim", 2.5, "g.noise_dim must be int, got 2.5"),
        ("g.min_width", -1, "g.min_width must be >= 0, got -1"),
        ("g.resize_layers", 3, "g.resize_layers must be in [0, 2], got 3"),
        ("g.layers", -1, "g.layers must be >= 0, got -1"),
        ("g.layer_colours", "rgb", "g.layer_colours='rgb' is not allowed; choose one of ['flat'"),
        ("g.mask_gain", -1.0, "g.mask_gain must be >= 0"),
        ("g.layer_motion", "warp", "g.layer_motion='warp' is not allowed; choose one of ['dra"),
        ("g.layer_motion", "translate", "g.layer_motion='translate' moves G's masked layers, b"),
        ("g.hard_masks", True, "g.hard_masks=True makes the masks of G's layers 0 or 1, but"),
        ("g.hard_masks", 1, "g.hard_masks must be bool, got 1"),
        ("g.sprite_scale", 0, "g.sprite_scale must be >= 1, got 0"),
        ("g.sprite_scale", 2, "g.sprite_scale=2 draws G's moved layers smaller than the frame"),
        ("g.layer_walls", "wrap", "g.layer_walls='wrap' is not allowed; choose one of ['open'"),
        ("g.layer_walls", "reflect", "g.layer_walls='reflect' makes G's moved layers bounce off"),
        ("g.colour_levels", 1, "g.colour_levels=1 rounds the flat colours of G's layers, but"),
        ("g.colour_levels", -2, "g.colour_levels must be >= 0, got -2"),
        ("g.level_logits", True, "g.level_logits=True picks each channel of G's flat colours"),
        ("g.level_logits", 1, "g.level_logits must be bool, got 1"),
        ("g.whole_pixels", True, "g.whole_pixels=True places G's moved layers at whole pixels"),
        ("g.whole_pixels", 1, "g.whole_pixels must be bool, got 1"),
        ("g.bright_colours", True, "g.bright_colours=True gives the flat colours of G's layers"),
        ("g.bright_colours", 1, "g.bright_colours must be bool, got 1"),
        ("g.mask_opening", 1, "g.mask_opening=1 opens the masks of G's layers, but g.layers=0"),
        ("g.mask_opening", -1, "g.mask_opening must be >= 0, got -1"),
        ("g.hidden_outside", True, "g.hidden_outside=True keeps the outside of G's moved layers"),
        ("g.colour_palette", 4, "g.colour_palette=4 picks the flat colours of G's layers from"),
        ("g.colour_palette", -1, "g.colour_palette must be >= 0, got -1"),
        ("g.distinct_colours", True, "g.distinct_colours=True gives each of G's layers in a clip"),
        ("g.distinct_colours", 1, "g.distinct_colours must be bool, got 1"),
        ("g.speed_range", True, "g.speed_range=True bounds the speeds of G's gliding layers, but"),
        ("g.speed_range", 1, "g.speed_range must be bool, got 1"),
        ("g.colour_prior", True, "g.colour_prior=True adds a learned logit per colour to the"),
        ("g.colour_prior", 1, "g.colour_prior must be bool, got 1"),
        ("g.norm", "layer", "g.norm='layer' is not allowed; choose one of ['batch', 'none']"),
        ("g.depth", 4, "data.height=8 and data.width=8 must be divisible by 2**g.depth=16"),
        ("d.depth", 0, "d.depth must be >= 1, got 0"),
        ("d.heads", ("image", "audio"), "d.heads=('image', 'audio') must name each of its"),
        ("d.heads", (), "d.heads=() must name each of its heads once, from ['image', 'video']"),
        ("d.heads", ("video", "video"), "d.heads=('video', 'video') must name each"),
        ("d.image_stride", 0, "d.image_stride must be >= 1, got 0"),
        ("d.spectral_norm", 1, "d.spectral_norm must be bool, got 1"),
        ("d.minibatch_std", 3, "d.minibatch_std=3 must be 0 (off) or >= 2 and divide the batch_s"),
        ("d.pixel_stem", -1, "d.pixel_stem must be >= 0, got -1"),
    ],
)
def test_bad_config_values_name_the_key(key, value, message):
    cfg = _tiny_config()
    net, name = key.split(".")
    with cfg[net].ignore_type():  # as a config file may hold any value
        cfg[net][name] = value
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        train.validate(cfg)


def test_distinct_colours_from_a_palette_smaller_than_the_layers_names_both_keys():
    """A palette of 1 colour cannot give 2 layers different colours, level logits or not: the
    error names the palette, the layer count and the real level-logits setting."""
    cfg = _tiny_config()
    cfg.g.update(layers=2, layer_colours="flat", colour_palette=1, distinct_colours=True)
    cfg.g.update(colour_levels=3, level_logits=True)
    message = "g.colour_palette=1 with g.layers=2 and g.level_logits=True has too few colours"
    with pytest.raises(ConfigError, match=re.escape(message)):
        train.validate(cfg)


@pytest.mark.parametrize(
    "net, key, value, make, default",
    [
        ("g", "min_width", 8, make_generator, 0),
        ("g", "resize_layers", 2, make_generator, 0),
        ("g", "layers", 2, make_generator, 0),
        ("g", "mask_gain", 12.0, make_generator, 0.0),
        ("g", "layer_motion", "translate", make_generator, "drawn"),
        ("g", "hard_masks", True, make_generator, False),
        ("g", "sprite_scale", 2, make_generator, 1),
        ("g", "layer_walls", "reflect", make_generator, "open"),
        ("g", "colour_levels", 3, make_generator, 0),
        ("g", "level_logits", True, make_generator, False),
        ("g", "whole_pixels", True, make_generator, False),
        ("g", "bright_colours", True, make_generator, False),
        ("g", "mask_opening", 1, make_generator, 0),
        ("g", "hidden_outside", True, make_generator, False),
        ("g", "colour_palette", 4, make_generator, 0),
        ("g", "distinct_colours", True, make_generator, False),
        ("g", "speed_range", True, make_generator, False),
        ("g", "colour_prior", True, make_generator, False),
        ("d", "pixel_stem", 8, make_discriminator, 0),
    ],
)
def test_settings_reach_the_net_and_old_configs_build_without_them(net, key, value, make, default):
    cfg = _tiny_config()
    cfg.g.layers = 2  # the layer settings need layers; "layers" itself is checked alone
    if key in ("sprite_scale", "layer_walls", "whole_pixels", "hidden_outside"):  # moved layers
        cfg.g.layer_motion = "inertial"
    if key == "speed_range":  # gliding layers
        cfg.g.layer_motion = "glide"
    if key == "level_logits":  # picks among the levels
        cfg.g.colour_levels = 3
    if key == "distinct_colours":  # picks from a palette
        cfg.g.colour_palette = 4
    if key == "colour_prior":  # joins level logits
        cfg.g.colour_levels, cfg.g.level_logits = 3, True
    cfg[net][key] = value
    assert getattr(make(cfg[net], train.validate(cfg)), key) == value
    del cfg[net][key]  # a config saved before the key existed
    assert getattr(make(cfg[net], train.validate(cfg)), key) == default


def test_a_pixel_stem_needs_the_image_head():
    cfg = _tiny_config()
    cfg.d.pixel_stem, cfg.d.heads = 8, ("video",)
    with pytest.raises(ConfigError, match=r"^d\.pixel_stem=8 puts a per-pixel first layer in D"):
        train.validate(cfg)


def test_a_minibatch_std_channel_needs_the_video_head():
    cfg = _tiny_config()
    cfg.d.heads, cfg.d.minibatch_std = ("image",), 2
    with pytest.raises(ConfigError, match=r"has none; add 'video' to d\.heads or set d\.minib"):
        train.validate(cfg)


def test_mocogan_needs_clips():
    cfg = train.default_config(model="mocogan", data="ring")
    with pytest.raises(ConfigError, match="g.name='mocogan' makes clips"):
        train.validate(cfg)
