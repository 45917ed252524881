"""MoCoGAN: a generator that splits content from motion, judged by an image D and a video D
(after Tulyakov et al. 2018, "MoCoGAN: Decomposing Motion and Content for Video Generation").

Clips are `[N, T, H, W, C]` in [-1, 1]; T = 1 makes an image GAN. The family `mocogan`
(`cfg.g.name` / `cfg.d.name`): the clip shape comes from the data.

G, for `depth` = d and `base_width` = w:
  latents `{"content": [N, content_dim], "motion": [N, T, noise_dim]}`;
  motion codes: a GRU (hidden size `motion_dim`, zero initial state) scanned over the T noise
     vectors -> `[N, T, motion_dim]`; frame t's code depends on the noise of frames 1..t only;
  per-frame codes: concat(content, motion_t) `[N * T, content_dim + motion_dim]`, the one
     content code of a clip repeated for each of its frames;
  frames: a 2-D DCGAN on all N * T codes at once: Dense -> `[N * T, H0, W0, w * 2^(d-1)]`,
     then d transposed convolutions (kernel 4, stride 2, padding 1) halving the channels
     (w * 2^(d-2), ..., w, then C) and doubling H and W; norm + ReLU between, tanh at the end
     (of `output_gain` times the last convolution: `layers.tanh_output`). `resize_layers` = r
     makes the last r of those upsamplings a nearest-neighbour x2 followed by a 3x3 stride-1
     convolution (Odena et al. 2016), which cannot draw the 2x2 checkerboard that a transposed
     convolution of stride 2 leaves inside flat regions (`layers.ResizeConv`). It runs as that
     transposed convolution with its 4x4 kernel folded from the 3x3 one, so it costs what a
     transposed layer costs: the main job's step (benchmarks/train_step.py, Intel Xeon, idle
     cores, two rounds back to back) takes 43.9 / 39.8 ms with r = 0, 44.3 / 41.2 ms with
     r = 1 and 44.5 / 42.5 ms with r = 3. Run directly (upsample, then a 3x3 conv over the
     4x larger map, which XLA:CPU runs far below its matmul peak) it took 76 ms with r = 1
     and 102 ms with r = 3 against 44 ms.
     `min_width` = m > 0 keeps every hidden layer at m channels or more (w = 16, m = 32:
     64, 32, 32 instead of 64, 32, 16): width where the frames are drawn, at the cost of the
     largest maps only.
  layers: `layers` = K > 0 paints each frame as K masked layers over a background (LR-GAN's
     compositing, Yang et al. 2017; `composite_layers`): the frame generator's last convolution
     draws K mask logits instead of the frame, each layer's logits shifted by its presence in the
     clip (a Dense of the clip's content code, `layer_presence`: a clip can hide a layer in every
     frame at once), its opacity sigmoid(gain x logit) with the gain `mask_gain` (0: `output_gain`).
     The colours come from `layer_colours`: "flat", one colour per layer and clip and one for the
     background, tanh(`output_gain` x a Dense of the clip's content code, `layer_colours`), so that
     every object is one colour that cannot change from frame to frame; "flat_objects", the same for
     the K layers, the background drawn per pixel by the frame generator (C more output channels);
     "map", every layer's colours per pixel (C (K + 1) more channels). A pixel is a convex mix of
     the colours at it. The class embedding, where conditional, joins the content code before both
     Dense layers. `hard_masks` makes every opacity 0 or 1 (logit > 0) with the sigmoid's gradient
     (a straight-through estimator): edges as sharp as the data's at any gain. `layer_motion` says
     how the layers change from frame to frame: "drawn", the frame generator draws every frame from
     its content and motion codes; "translate", "inertial", "steered" and "glide" (sprites), it
     draws each clip's layers once, from the content (and class) code alone, on N codes instead of N
     x T, and every layer moves by its own offset per frame (`translate_maps`: bilinear, on the
     logits before the sigmoid, so a moved edge is as sharp as a drawn one; outside its map a layer
     is transparent). The offsets (`LayerOffsets`, parameters under `offsets/`) add up per-frame
     steps: "translate", a Dense of each frame's motion code; "inertial", the first step a Dense of
     the motion code and every later one the last plus an acceleration, a zero-initialised Dense of
     the motion code, so that an untrained G moves each layer at a constant velocity; "steered" (the
     main job's before), the acceleration a zero-initialised MLP of the layer's position and
     velocity, so that a layer can turn where it is, at a wall; "glide" (the main job's), one
     velocity per layer and clip, a learned speed times a unit direction. `layer_walls = "reflect"`
     folds every path back into the frame as a ball bounces off walls, turning where the layer's
     object (its pixels shown), not its map, meets the frame's edge (`object_bounds`,
     `reflect_offsets`). A layer then keeps its shape and colour through the clip by construction.
     `colour_levels` = L >= 2 rounds each channel of the flat colours to one of L levels (3: -1, 0,
     1) forward, straight-through backward, so that a colour is either exact or visibly another;
     `level_logits` picks each channel's level as the highest of one logit per level instead
     (`pick_levels`), so that no band of content codes lies on the middle level between the
     outer two. `bright_colours` scales each object layer's flat colour so that its brightest
     channel is full (`brighten_colours`), as every palette colour's is: G cannot hide an object
     by darkening it into the background. `mask_opening` = r > 0 opens every layer's mask logits
     by a square of side 2 r + 1 before it moves (`open_masks`): no layer can show a speck or a
     line thinner than the square, as the data holds none. Beyond its map a moved layer's logit
     is -10 / gain and its presence is added after the move, so a presence over 10 / gain shows
     the layer everywhere outside its map; `hidden_outside` adds the presence before the move, so
     that the outside stays hidden at any presence. `distinct_colours` gives a clip's object
     layers different colours: with level logits a colour's logit is the sum of its channels'
     (`joint_level_logits`), so each layer keeps the channel-wise pick unless an earlier layer
     of the clip took that colour, and then takes its next best (`pick_from_palette`; the
     background's flat colour, which hides a layer, may be taken by any number); the data never
     shows two objects of one colour, which the physics check reads as one object (the long
     config: experiments/configs/bouncing_shapes_long.py).
     `colour_prior` adds a learned logit per colour (`colour_prior`, L ** C values, zero at
     init) to those sums, so that a colour D refuses can grow rarer in every clip at once.
     `colour_palette` = P > 0 picks each object's flat colour instead from P learned colours
     (a table of level logits, `colour_palette`, and P logits per layer from the content code,
     `palette_logits`). `speed_range` bounds the "glide" speeds to a learned interval
     (`LayerOffsets`).
     `sprite_scale` = s > 1 draws the layers on maps s times smaller than the frame, placed at a
     start anywhere that holds them whole, (H - H / s) / 2 x (1 + tanh(a Dense of the content
     code)): a layer cannot draw two objects farther apart than its map is wide. What these did on
     bouncing shapes is in experiments/configs/bouncing_shapes.py.
  No parameter depends on T (the GRU is scanned, the frame generator sees one frame at a
  time or one clip's sprites, the steps are per frame), so a G built for 32 frames takes the
  parameters of a G trained on 8.
  Class-conditional (`conditional = True`, labels `[N]` as the condition): a learned class
  embedding of `content_dim` joins the content code, the same in every frame (MoCoGAN's
  category code sits beside the content too), and the frame generator's norms scale and shift
  per class (`layers.class_modulation`).

D returns a dict of heads (`heads`, default both):
  "image": a 2-D DCGAN discriminator (d strided convolutions w, 2w, ..., w * 2^(d-1), no norm
     on the first, LeakyReLU(0.2), Dense) on frames 0, s, 2s, ... of every clip (s =
     `image_stride`): logits `[N * K]`, K = ceil(T / s), clip-major. MoCoGAN samples one frame
     per clip at random; a fixed stride needs no key inside D. s = 1 judges every frame; the
     default s = 4 (frames 0 and 4 of 8) keeps the step of 8x32x32 clips on 2 CPU cores
     about as fast as video_dcgan's (at s = 1 the image head on all N * T frames adds 80 % to
     the step's FLOPs). A stride beyond T judges frame 0 alone (with T = 1: every frame).
     `pixel_stem` = k > 0 puts a per-pixel layer first (C -> k channels, LeakyReLU(0.2)), so
     that a pixel halfway between two colours need not look like their mean to the first
     convolution (the main job: fewer off-palette pixels, a higher FSD; see its docstring).
     Its cost follows its FLOPs: k = 16 takes the main job's step from 43 to 51 ms (+18 %
     FLOPs, the first strided convolution reading 16 channels instead of 3).
  "video": `video_dcgan`'s discriminator (strided 3-D convolutions) on the whole clip:
     logits `[N]`. With T = 1 its time kernels are 1: it is a second image discriminator of
     the one frame; `heads=("image",)` drops it. `minibatch_std` = a group size gives it
     ProGAN's minibatch-std channel (`video_dcgan`'s D).
  The heads' parameters sit under `image/` and `video/`, so `d.lr_multipliers.video=0.1`
  slows the video D alone; `loss.head_weights` weights their losses.
  Class-conditional (`conditional = True`): each head adds a projection of its pooled last
  features on an embedding of the clip's label (Miyato & Koyama 2018,
  `layers.class_projection`); every judged frame takes its clip's label. With `classifier =
  True` the video head also has its own classifier of the clip (ADC-GAN), its logits `[N, 2K]`
  under the output's "class_logits" entry.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError
from gan_jax.data.spec import DataSpec
from gan_jax.models.layers import (
    CLASS_LOGITS,
    DTYPES,
    NORMS,
    Conv,
    ConvTranspose,
    ResizeConv,
    check_labels,
    check_minibatch_std,
    check_norm,
    check_output_gain,
    check_unconditional,
    logits_head,
    normalize,
    tanh_output,
)
from gan_jax.models.video_dcgan import (
    VideoDiscriminator,
    validate_classifier,
    validate_conditional,
)

HEADS = ("image", "video")
# 2-D (transposed) convolution blocks: kernel 4, stride 2, padding 1 double or halve H and W.
_KERNEL, _STRIDES, _PADDING = (4, 4), (2, 2), ((1, 1), (1, 1))


def _check_frame_size(height: int, width: int, depth: int, owner: str) -> None:
    scale = 2**depth
    if depth < 1 or height % scale or width % scale:
        raise ValueError(
            f"{owner}: H={height} and W={width} must be divisible by 2**depth={scale} "
            f"(depth={depth} >= 1)."
        )


class MotionCodes(nn.Module):
    """Per-frame noise `[N, T, noise_dim]` -> motion codes `[N, T, motion_dim]` (a GRU).

    The initial state is zero: the first noise vector sets the first code (MoCoGAN draws a
    random initial state instead; one more latent for the same effect). The GRU runs in
    float32 whatever the frame generator's dtype: its state is carried through every frame.
    """

    motion_dim: int

    @nn.compact
    def __call__(self, noise: jax.Array) -> jax.Array:
        gru = nn.RNN(nn.GRUCell(self.motion_dim, param_dtype=jnp.float32, name="gru"))
        return gru(noise.astype(jnp.float32))


class FrameGenerator(nn.Module):
    """Per-frame codes `[M, D]` (and labels `[M]` when `num_classes` > 0) -> frames
    `[M, H, W, C]` in [-1, 1] (a 2-D DCGAN; with labels, its norms are class-conditional)."""

    frame_shape: tuple[int, int, int]  # (H, W, C)
    base_width: int
    depth: int
    norm: str
    bn_axis_name: str | None = None
    dtype: Any = jnp.float32
    num_classes: int = 0
    min_width: int = 0  # > 0: no hidden layer narrower
    output_gain: float = 1.0  # frames = tanh(output_gain * last conv)
    resize_layers: int = 0  # the last this many upsamplings: nearest x2, then a 3x3 conv
    head_channels: int = 0  # > 0: the last conv's raw output of this many channels, no tanh

    def width(self, level: int) -> int:
        """Channels of hidden level `level` (0: the projected map, `depth - 1`: the last)."""
        return max(self.base_width * 2 ** (self.depth - 1 - level), self.min_width)

    @nn.compact
    def __call__(self, codes: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        height, width, channels = self.frame_shape
        _check_frame_size(height, width, self.depth, "FrameGenerator")
        scale = 2**self.depth
        h0, w0 = height // scale, width // scale
        c0 = self.width(0)
        x = nn.Dense(h0 * w0 * c0, dtype=self.dtype, name="project")(codes)
        x = x.reshape(codes.shape[0], h0, w0, c0)

        def norm_relu(h: jax.Array, name: str) -> jax.Array:
            # The norm (class-conditional when num_classes > 0), then ReLU.
            return nn.relu(
                normalize(h, self.norm, train, self.bn_axis_name, name, labels, self.num_classes)
            )

        x = norm_relu(x, "project_norm")
        for i in range(self.depth):
            last = i == self.depth - 1
            features = (self.head_channels or channels) if last else self.width(i + 1)
            use_bias = last or self.norm == "none"
            if i >= self.depth - self.resize_layers:
                conv = ResizeConv(features, use_bias, self.dtype, name=f"up{i}")
            else:
                conv = ConvTranspose(
                    features, _KERNEL, _STRIDES, _PADDING, use_bias, self.dtype, name=f"up{i}"
                )
            x = conv(x)
            if not last:
                x = norm_relu(x, f"up{i}_norm")
        if self.head_channels:
            return x.astype(jnp.float32)
        return tanh_output(x, self.output_gain)


LAYER_COLOURS = ("flat", "flat_objects", "map")
LAYER_MOTIONS = ("drawn", "translate", "inertial", "steered", "glide")
LAYER_WALLS = ("open", "reflect")
# Where a translated mask leaves its map, its logit times the gain: sigmoid(-10) = 4.5e-5.
_OUTSIDE_LOGIT = -10.0
# A palette entry another layer of the clip took (`pick_from_palette`): never the highest.
_TAKEN_LOGIT = -1e9


def layer_opacity(mask_logits: jax.Array, gain: float, hard: bool = False) -> jax.Array:
    """Opacities sigmoid(gain * logit) of mask logits (any shape); `hard`: 0 or 1 (logit > 0)
    forward, with the sigmoid's gradient backward (a straight-through estimator)."""
    soft = jax.nn.sigmoid(gain * mask_logits)
    if not hard:
        return soft
    return soft + jax.lax.stop_gradient((mask_logits > 0).astype(soft.dtype) - soft)


def quantise_colours(colours: jax.Array, levels: int) -> jax.Array:
    """Colours in [-1, 1] (any shape) -> each channel the nearest of `levels` evenly spaced
    values from -1 to 1 forward (2: -1 or 1; 3: -1, 0 or 1), with the identity's gradient
    backward (straight-through, as `layer_opacity`'s hard masks); `levels` 0: unchanged."""
    if not levels:
        return colours
    if levels < 2:
        raise ValueError(f"quantise_colours: levels={levels} must be 0 (off) or >= 2.")
    half = (levels - 1) / 2.0
    hard = jnp.round((colours + 1.0) * half) / half - 1.0
    return colours + jax.lax.stop_gradient(hard - colours)


def open_masks(mask_logits: jax.Array, radius: int, hidden: jax.Array | float) -> jax.Array:
    """Mask logits `[M, H, W, K]` -> their morphological opening by a square of side 2 *
    `radius` + 1: the minimum over each pixel's square (erosion), then the maximum over the
    same (dilation), with `hidden` (a logit that hides a pixel: a scalar or `[M, 1, 1, K]`), or
    the map's lowest logit where lower, beyond the map's edges, so that the edges erode. A shape
    wider than the square in every direction keeps its logits where it is shown; a speck or a
    line narrower than the square is gone. The gradient reaches the pixels each minimum and
    maximum picked."""
    if radius < 1:
        return mask_logits
    side = 2 * radius + 1
    pad = ((0, 0), (radius, radius), (radius, radius), (0, 0))
    lowest = jnp.min(mask_logits, axis=(1, 2), keepdims=True)
    low = jax.lax.stop_gradient(jnp.minimum(lowest, hidden))

    inside = jnp.pad(jnp.ones(mask_logits.shape, bool), pad)

    def pooled(x: jax.Array, pick, init: float) -> jax.Array:
        padded = jnp.where(inside, jnp.pad(x, pad), low)
        return jax.lax.reduce_window(padded, init, pick, (1, side, side, 1), (1,) * 4, "VALID")

    eroded = pooled(mask_logits, jax.lax.min, jnp.inf)
    return pooled(eroded, jax.lax.max, -jnp.inf)


def brighten_colours(colours: jax.Array) -> jax.Array:
    """Colours `[..., C]` in [-1, 1] -> the same hue with its brightest channel full: in [0, 1]
    terms c / max(c) per colour (a grey, black included, becomes white). Every colour of the
    bouncing-shapes palette has a full channel; a layer with these colours cannot fade into the
    black background, so a clip shows fewer objects only by its masks or presence."""
    unit = (colours + 1.0) / 2.0
    peak = jnp.max(unit, axis=-1, keepdims=True)
    # A full channel stays exactly full and an empty one exactly empty; a black colour (no
    # channel above 1e-6) has no hue, and becomes white.
    scaled = unit / jnp.maximum(peak, 1e-6)
    return 2.0 * jnp.where(peak > 1e-6, scaled, 1.0) - 1.0


def pick_levels(logits: jax.Array, levels: int) -> jax.Array:
    """Logits `[..., levels]`, one per level -> values `[...]`: the level of the highest logit
    forward (of `levels` evenly spaced values from -1 to 1), the softmax-weighted mean of the
    levels backward (straight-through, as `quantise_colours`). Rounding one value to 3 levels
    puts the middle level between the outer two, so every content code moving a channel from
    -1 to 1 passes a band of codes drawn at 0; with a logit per level that band can shrink to
    nothing, and the middle level stay for the colours that need it."""
    values = jnp.linspace(-1.0, 1.0, levels, dtype=jnp.float32)
    soft = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    hard = jax.nn.one_hot(jnp.argmax(logits, axis=-1), levels, dtype=soft.dtype)
    return (soft + jax.lax.stop_gradient(hard - soft)) @ values


def pick_from_palette(
    logits: jax.Array, palette: jax.Array, distinct: bool, shared: jax.Array | None = None
) -> jax.Array:
    """Logits `[N, K, P]` (one per palette entry, for each of K layers) and a palette `[P, C]` ->
    colours `[N, K, C]`: each layer the entry of its highest logit forward, the softmax-weighted
    mean of the entries backward (straight-through, as `pick_levels`). `distinct`: layer j picks
    among the entries that layers 0..j-1 left (needs P >= K), so no two layers of a clip share a
    colour, except entry `shared[i]` `[N]` of clip i (if given), which any number may take."""
    n, k, p = logits.shape
    if distinct and p < k:
        raise ValueError(
            f"pick_from_palette: {k} distinct picks need {k} entries or more, got {p}."
        )
    taken = jnp.zeros((n, p), bool)
    colours = []
    for j in range(k):
        row = logits[:, j].astype(jnp.float32)
        if distinct:
            # A taken entry's logit is far below any other; its softmax weight is 0.
            row = jnp.where(taken, _TAKEN_LOGIT, row)
        soft = jax.nn.softmax(row, axis=-1)
        pick = jnp.argmax(row, axis=-1)
        hard = jax.nn.one_hot(pick, p, dtype=soft.dtype)
        colours.append((soft + jax.lax.stop_gradient(hard - soft)) @ palette)
        picked = hard > 0
        if shared is not None:
            picked = picked & (jnp.arange(p)[None, :] != shared[:, None])
        taken = taken | picked
    return jnp.stack(colours, axis=1)


def level_combinations(levels: int, channels: int) -> jax.Array:
    """Every colour whose channels are each one of `levels` evenly spaced values from -1 to 1,
    `[levels ** channels, channels]`, the first channel's level slowest (black first)."""
    values = jnp.linspace(-1.0, 1.0, levels, dtype=jnp.float32)
    grid = jnp.meshgrid(*([values] * channels), indexing="ij")
    return jnp.stack(grid, axis=-1).reshape(-1, channels)


def joint_level_logits(logits: jax.Array) -> jax.Array:
    """Level logits `[..., C, L]`, one per level of each channel -> `[..., L ** C]`, one per
    colour of `level_combinations` (in its order): the sum of its channels' logits. The softmax
    over colours is the product of the channels' softmaxes, so the highest colour is the
    channel-wise pick and the softmax-weighted mean colour the channel-wise means."""
    *lead, channels, levels = logits.shape
    joint = logits[..., 0, :]
    for ch in range(1, channels):
        joint = joint[..., :, None] + logits[..., ch, None, :]
        joint = joint.reshape(*lead, -1)
    return joint


def composite_layers(
    mask_logits: jax.Array, colours: jax.Array, gain: float, hard: bool = False
) -> jax.Array:
    """Layers painted back to front: masks `[M, H, W, K]` (logits of K foreground layers) over
    colours `[M, H, W, K + 1, C]` or `[M, 1, 1, K + 1, C]` (in [-1, 1]; index 0 the background,
    k + 1 layer k) -> frames `[M, H, W, C]` in [-1, 1].

    Layer k's opacity is sigmoid(gain * its logit) (`layer_opacity`; `hard`: 0 or 1); each
    layer covers what lies below it by that opacity (LR-GAN's compositing, Yang et al. 2017),
    so a pixel is a convex mix of the colours at it. With a gain above 1 the opacities leave
    the soft middle of the sigmoid sooner, as `tanh_output` does for the colours."""
    opacity = layer_opacity(mask_logits, gain, hard)
    frames = jnp.broadcast_to(colours[..., 0, :], (*mask_logits.shape[:3], colours.shape[-1]))
    for k in range(mask_logits.shape[-1]):
        frames = frames + opacity[..., k : k + 1] * (colours[..., k + 1, :] - frames)
    return frames


def translate_maps(
    maps: jax.Array, offsets: jax.Array, fill: float, size: tuple[int, int] | None = None
) -> jax.Array:
    """K maps `[N, h, w, K, Cm]` placed per frame at offsets `[N, T, K, 2]` ((dy, dx) pixels,
    any real values) on frames of `size` (H, W; default (h, w)) -> `[N, T, H, W, K, Cm]`:
    frame t's pixel (i, j) of map k reads map k at (i - dy, j - dx), interpolated bilinearly,
    and `fill` where that lies outside the map.

    Bilinear interpolation is a product of two tent-weight matrices, one per axis, so the
    move runs as two batched matrix products (no gather, no dilated convolution) and is
    differentiable in the offsets."""
    height, width = size or maps.shape[1:3]

    def tents(out_size: int, map_size: int, shift: jax.Array) -> jax.Array:
        # [N, T, K] -> [N, T, K, out_size, map_size]: relu(1 - |source - (out - shift)|)
        out = jnp.arange(out_size, dtype=jnp.float32).reshape(1, 1, 1, out_size, 1)
        source = jnp.arange(map_size, dtype=jnp.float32).reshape(1, 1, 1, 1, map_size)
        return nn.relu(1.0 - jnp.abs(source - (out - shift[..., None, None])))

    rows = tents(height, maps.shape[1], offsets[..., 0])
    cols = tents(width, maps.shape[2], offsets[..., 1])
    moved = jnp.einsum("ntkia,nabkc->ntkibc", rows, maps)
    moved = jnp.einsum("ntkibc,ntkjb->ntijkc", moved, cols)
    inside = jnp.einsum("ntki,ntkj->ntijk", rows.sum(-1), cols.sum(-1))[..., None]
    return moved + fill * (1.0 - inside)


def move_maps(
    maps: jax.Array,
    offsets: jax.Array,
    fill: float,
    size: tuple[int, int] | None = None,
    whole_pixels: bool = False,
) -> jax.Array:
    """`translate_maps`, and with `whole_pixels` its straight-through form: forward, the maps
    moved by the offsets rounded to whole pixels, an exact copy of each map per frame (so a
    hard mask's outline, and its object's area, cannot change as it moves); backward, the
    gradient of the sub-pixel move (at a whole offset the bilinear tents have none)."""
    moved = translate_maps(maps, offsets, fill, size)
    if not whole_pixels:
        return moved
    whole = translate_maps(maps, jnp.round(jax.lax.stop_gradient(offsets)), fill, size)
    # moved - moved is exactly 0 forward, so the output is bitwise the whole-pixel move.
    return whole + (moved - jax.lax.stop_gradient(moved))


def object_bounds(mask_logits: jax.Array, frame_size: tuple[int, int]) -> jax.Array:
    """Mask logits `[N, h, w, K]` of K layers on maps of h x w -> the offsets `[N, K, 2, 2]`
    ([..., axis, (low, high)], pixels) at which each layer's object, its pixels of logit > 0,
    lies whole inside a frame of `frame_size` (H, W): [-first row, H - 1 - last row], and the
    same for columns. A layer with no such pixel is bounded by its whole map. No gradient
    flows: the bounds are where the object's edges are, not how sharp they are."""
    occupied = jax.lax.stop_gradient(mask_logits) > 0

    def axis_bounds(any_along: jax.Array, frame: int) -> jax.Array:
        # any_along [N, m, K]: the object has a pixel in row (or column) i of its map
        size = any_along.shape[1]
        first = jnp.argmax(any_along, axis=1)
        last = size - 1 - jnp.argmax(any_along[:, ::-1], axis=1)  # size - 1 where empty
        return jnp.stack([-first, frame - 1 - last], axis=-1).astype(jnp.float32)  # [N, K, 2]

    rows = axis_bounds(occupied.any(axis=2), frame_size[0])
    cols = axis_bounds(occupied.any(axis=1), frame_size[1])
    return jnp.stack([rows, cols], axis=2)


def reflect_offsets(offsets: jax.Array, bounds: jax.Array) -> jax.Array:
    """Offsets `[N, T, K, 2]` folded into bounds `[N, K, 2, 2]` ((low, high) per axis) as a
    ball bounces off walls: a path that runs past `high` comes back by as much, with its
    velocity reversed (a triangle wave of period 2 (high - low)); where high <= low, low.
    The gradient in the offsets is +-1, the velocity's sign on the folded path."""
    low, high = bounds[:, None, ..., 0], bounds[:, None, ..., 1]  # [N, 1, K, 2]
    span = jnp.maximum(high - low, 0.0)
    safe = jnp.where(span > 0, span, 1.0)
    phase = jnp.mod(offsets - low, 2.0 * safe)
    return jnp.where(span > 0, low + safe - jnp.abs(phase - safe), low)


class LayerOffsets(nn.Module):
    """Motion codes `[N, T, D]` and content codes `[N, Dc]` -> each of K layers' offset per
    frame `[N, T, K, 2]` ((dy, dx) pixels): a start, then the sum of per-frame steps.

    The start is 0 where `room` is (0, 0) (maps as large as the frame); otherwise anywhere in
    [0, room], (room / 2) (1 + tanh(a Dense of the content code, `start`)), so that a map
    smaller than the frame starts whole inside it. The steps (`mode`):
      "translate": a Dense of each later frame's motion code (`step`);
      "inertial": the first step a Dense of the motion code (`velocity`), every later one the
        last plus an acceleration, a zero-initialised Dense of the motion code
        (`acceleration`): an untrained G moves each layer at a constant velocity;
      "steered": as "inertial", the acceleration an MLP (`steer_hidden`, ReLU, then the
        zero-initialised `steer`) of the layer's position (over the frame size) and velocity,
        so that a layer can turn where it is, at a wall. It reads no later motion code: with
        the per-frame noise in it too, the main job's paths wobbled (fewer clips moved as the
        data does; experiments/configs/bouncing_shapes.py).
      "glide": one constant velocity per layer and clip from the motion code of frame 1, a
        speed softplus(`speed`) times a unit direction (`direction`, normalised): a Gaussian
        code gives directions uniform in angle and speeds a learned distribution that need not
        crowd near 0, as a 2-D Dense of the code's (the inertial first step) does. With
        `speed_range` the speed is low + span x sigmoid(`speed`) instead, low and span softplus
        of learned values per layer (`speed_low`, `speed_span`): a Gaussian code then gives
        speeds in a learned interval, as uniform in it as the Dense's scale makes them, where
        softplus leaves tails on both sides.
    Every parameter exists whatever T (the steering is built on T < 3 too)."""

    layers: int
    mode: str
    frame_size: tuple[int, int]  # (H, W)
    room: tuple[int, int] = (0, 0)  # (H - h, W - w) for maps of h x w
    steer_width: int = 32
    speed_range: bool = False  # "glide": speeds in a learned interval (low + span x sigmoid)

    @nn.compact
    def __call__(self, motion: jax.Array, content: jax.Array) -> jax.Array:
        n, t, _ = motion.shape
        k = self.layers
        start = jnp.zeros((n, k, 2), jnp.float32)
        if any(self.room):
            room = jnp.asarray(self.room, jnp.float32).reshape(1, 1, 2)
            start = nn.Dense(2 * k, name="start")(content).reshape(n, k, 2)
            start = room / 2 * (1 + jnp.tanh(start))
        zeros = nn.initializers.zeros
        if self.mode == "translate":
            steps = nn.Dense(2 * k, name="step")(motion[:, 1:]).reshape(n, t - 1, k, 2)
        elif self.mode == "inertial":
            velocity = nn.Dense(2 * k, name="velocity")(motion[:, 1:2])
            acceleration = nn.Dense(2 * k, kernel_init=zeros, name="acceleration")(motion[:, 2:])
            steps = velocity + jnp.cumsum(
                jnp.concatenate([jnp.zeros_like(velocity), acceleration], axis=1), axis=1
            )
            steps = steps.reshape(n, t - 1, k, 2)
        elif self.mode == "steered":
            hidden = nn.Dense(self.steer_width, name="steer_hidden")
            steer = nn.Dense(2 * k, kernel_init=zeros, name="steer")
            scale = jnp.asarray(self.frame_size, jnp.float32).reshape(1, 1, 2)

            def turn(position: jax.Array, velocity: jax.Array) -> jax.Array:
                state = [(position / scale).reshape(n, 2 * k), velocity.reshape(n, 2 * k)]
                return steer(nn.relu(hidden(jnp.concatenate(state, axis=-1)))).reshape(n, k, 2)

            velocity = nn.Dense(2 * k, name="velocity")(motion[:, 1:2]).reshape(n, -1, k, 2)
            if t < 3:  # no turn to take; built all the same, so that no parameter needs T
                turn(start, start)
            steps = [velocity[:, i] for i in range(velocity.shape[1])]
            position = start + sum(steps, jnp.zeros_like(start))
            for _ in range(2, t):  # one turn per later frame
                steps.append(steps[-1] + turn(position, steps[-1]))
                position = position + steps[-1]
            steps = jnp.stack(steps, axis=1) if steps else jnp.zeros((n, 0, k, 2))
        elif self.mode == "glide":
            code = motion[:, 1:2] if t > 1 else jnp.zeros_like(motion[:, :1])  # params at T = 1
            direction = nn.Dense(2 * k, name="direction")(code).reshape(n, 1, k, 2)
            direction = direction * jax.lax.rsqrt(jnp.sum(direction**2, -1, keepdims=True) + 1e-6)
            speed = nn.Dense(k, name="speed")(code).reshape(n, 1, k, 1)
            if self.speed_range:
                # Initially low 0.31 and span 0.69: speeds about 0.66, as softplus's near 0.
                low = self.param("speed_low", nn.initializers.constant(-1.0), (k,))
                span = self.param("speed_span", nn.initializers.zeros, (k,))
                low, span = nn.softplus(low).reshape(1, 1, k, 1), nn.softplus(span)
                speed = low + span.reshape(1, 1, k, 1) * nn.sigmoid(speed)
            else:
                speed = nn.softplus(speed)
            steps = jnp.broadcast_to(speed * direction, (n, t - 1, k, 2))
        else:
            raise ValueError(f"LayerOffsets: mode={self.mode!r} is not one of {LAYER_MOTIONS[1:]}.")
        offsets = jnp.concatenate([jnp.zeros((n, 1, k, 2)), jnp.cumsum(steps, axis=1)], axis=1)
        return offsets + start[:, None]


class MoCoGenerator(nn.Module):
    """latents `{"content": [N, content_dim], "motion": [N, T, noise_dim]}` -> clips
    `[N, T, H, W, C]` in [-1, 1]; T is `clip_shape[0]`, and no parameter depends on it."""

    clip_shape: tuple[int, int, int, int] = (16, 32, 32, 3)  # (T, H, W, C)
    content_dim: int = 64
    motion_dim: int = 16
    noise_dim: int = 16
    base_width: int = 16
    depth: int = 3
    norm: str = "batch"
    bn_axis_name: str | None = None
    dtype: Any = jnp.float32
    num_classes: int = 0  # > 0: conditioned on labels [N] (a class embedding beside content)
    min_width: int = 0  # > 0: the frame generator's narrowest hidden layer
    output_gain: float = 1.0  # frames = tanh(output_gain * the frame generator's last conv)
    resize_layers: int = 0  # the frame generator's last upsamplings done as resize + conv
    layers: int = 0  # > 0: frames painted as this many masked layers over a background
    layer_colours: str = "flat"  # per layer and clip; "flat_objects": background per pixel
    mask_gain: float = 0.0  # > 0: opacities sigmoid(mask_gain x logit); 0: output_gain's
    layer_motion: str = "drawn"  # or one of LAYER_MOTIONS[1:]: sprites drawn once, moved
    hard_masks: bool = False  # opacities 0 or 1, the sigmoid's gradient (straight-through)
    sprite_scale: int = 1  # > 1: moved layers drawn on maps this many times smaller than frames
    layer_walls: str = "open"  # "reflect": moved layers bounce off the frame's edges
    colour_levels: int = 0  # >= 2: flat colours' channels rounded to this many levels
    level_logits: bool = False  # each level picked by the highest of a logit per level
    whole_pixels: bool = False  # moved layers placed at whole-pixel offsets (straight-through)
    bright_colours: bool = False  # flat object colours with their brightest channel full
    mask_opening: int = 0  # > 0: masks opened by a square of side 2 r + 1 (no specks, lines)
    hidden_outside: bool = False  # presence added before the move: a map's outside stays hidden
    colour_palette: int = 0  # > 0: objects' flat colours picked from this many learned ones
    distinct_colours: bool = False  # a clip's object layers pick different colours
    speed_range: bool = False  # "glide": speeds in a learned interval (`LayerOffsets`)
    colour_prior: bool = False  # level logits: a learned logit per colour for the objects

    @property
    def latent_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"content": (self.content_dim,), "motion": (self.clip_shape[0], self.noise_dim)}

    @nn.compact
    def __call__(self, latents: dict[str, jax.Array], cond=None, train: bool = True) -> jax.Array:
        check_norm(self.norm, "MoCoGenerator")
        t, h, w, c = self.clip_shape
        content, noise = latents["content"], latents["motion"]
        n = content.shape[0]
        if self.num_classes:
            labels = check_labels(cond, n, self.num_classes, "MoCoGenerator")
        else:
            check_unconditional(cond, "MoCoGenerator")
        if content.shape != (n, self.content_dim):
            raise ValueError(
                f"MoCoGenerator: content must be [N, {self.content_dim}], got {content.shape}."
            )
        if noise.shape != (n, t, self.noise_dim):
            raise ValueError(
                f"MoCoGenerator: motion must be [N, {t}, {self.noise_dim}] (N={n}), got "
                f"{noise.shape}."
            )
        motion = MotionCodes(self.motion_dim, name="motion")(noise)  # [N, T, motion_dim]
        content = content.astype(jnp.float32)
        if self.num_classes:
            embed = nn.Embed(self.num_classes, self.content_dim, name="class_embedding")
            content = jnp.concatenate([content, embed(labels)], axis=-1)
        k = self.layers
        if k and self.layer_colours not in LAYER_COLOURS:
            raise ValueError(
                f"MoCoGenerator: layer_colours={self.layer_colours!r} is not one of "
                f"{LAYER_COLOURS}."
            )
        if self.layer_motion not in LAYER_MOTIONS or (self.layer_motion != "drawn" and not k):
            raise ValueError(
                f"MoCoGenerator: layer_motion={self.layer_motion!r} must be one of "
                f"{LAYER_MOTIONS}, and moving layers needs layers > 0 (got {k})."
            )
        moved = k and self.layer_motion != "drawn"
        if self.layer_walls not in LAYER_WALLS or (self.layer_walls != "open" and not moved):
            raise ValueError(
                f"MoCoGenerator: layer_walls={self.layer_walls!r} must be one of {LAYER_WALLS}, "
                f"and 'reflect' needs moved layers (layer_motion={self.layer_motion!r}, "
                f"layers={k})."
            )
        mapped_all = self.layer_colours == "map"
        if self.colour_levels and (not k or mapped_all):
            raise ValueError(
                f"MoCoGenerator: colour_levels={self.colour_levels} rounds flat layer colours, "
                f"but layers={k}, layer_colours={self.layer_colours!r} draws none."
            )
        for name, does in (
            ("whole_pixels", "rounds the offsets of moved layers"),
            ("hidden_outside", "keeps the outside of moved layers' maps hidden"),
        ):
            if getattr(self, name) and not moved:
                raise ValueError(
                    f"MoCoGenerator: {name}=True {does}, but layer_motion={self.layer_motion!r}, "
                    f"layers={k} moves none."
                )
        if self.bright_colours and (not k or self.layer_colours == "map"):
            raise ValueError(
                f"MoCoGenerator: bright_colours=True brightens flat layer colours, but layers={k}, "
                f"layer_colours={self.layer_colours!r} draws none."
            )
        if self.colour_palette < 0 or (self.colour_palette and (not k or mapped_all)):
            raise ValueError(
                f"MoCoGenerator: colour_palette={self.colour_palette} picks flat layer colours "
                f"from a palette; it must be >= 0, and > 0 needs layers > 0 (got {k}) with flat "
                f"colours (layer_colours={self.layer_colours!r})."
            )
        palette = self.colour_palette
        if self.distinct_colours and (palette < k if palette else not self.level_logits):
            raise ValueError(
                f"MoCoGenerator: distinct_colours=True gives the {k} layers of a clip different "
                f"colours, which needs colour_palette >= {k} (got {self.colour_palette}) or "
                "level_logits=True."
            )
        if self.colour_prior and (not self.level_logits or palette or mapped_all):
            raise ValueError(
                "MoCoGenerator: colour_prior=True adds a learned logit per colour to the level "
                f"logits of flat object colours, but level_logits={self.level_logits}, "
                f"colour_palette={palette}, layer_colours={self.layer_colours!r}."
            )
        if self.speed_range and self.layer_motion != "glide":
            raise ValueError(
                f"MoCoGenerator: speed_range=True bounds the speeds of gliding layers, but "
                f"layer_motion={self.layer_motion!r}."
            )
        if self.mask_opening < 0 or (self.mask_opening and not k):
            raise ValueError(
                f"MoCoGenerator: mask_opening={self.mask_opening} opens the masks of layers; it "
                f"must be >= 0, and > 0 needs layers > 0 (got {k})."
            )
        if self.level_logits and not self.colour_levels:
            raise ValueError(
                "MoCoGenerator: level_logits=True picks each flat colour channel's level from "
                "one logit per level, but colour_levels=0 sets none."
            )
        scale = self.sprite_scale
        if scale != 1 and not (moved and self.layer_colours == "flat" and scale > 1):
            raise ValueError(
                f"MoCoGenerator: sprite_scale={scale} > 1 needs moved layers of flat colours "
                f"(layer_motion={self.layer_motion!r}, layer_colours={self.layer_colours!r})."
            )
        if moved:
            # Sprites: the frame generator draws each clip's layers once, from its content
            # (and class); the motion codes only move them (below).
            codes, code_labels = content, labels if self.num_classes else None
        else:
            per_frame = jnp.broadcast_to(content[:, None, :], (n, t, content.shape[-1]))
            codes = jnp.concatenate([per_frame, motion], axis=-1).reshape(n * t, -1)
            code_labels = jnp.repeat(labels, t) if self.num_classes else None
        # With layers: the frame generator draws K mask logits and the colour maps (none for
        # "flat", the background's for "flat_objects", all K + 1 for "map"), no tanh; the
        # frames are composited below.
        mapped = {"flat": 0, "flat_objects": 1, "map": k + 1}[self.layer_colours] if k else 0
        head = k + mapped * c if k else 0
        frames = FrameGenerator(
            (h // scale, w // scale, c),
            self.base_width,
            self.depth,
            self.norm,
            self.bn_axis_name,
            self.dtype,
            self.num_classes,
            self.min_width,
            self.output_gain,
            self.resize_layers,
            head,
            name="frames",
        )(codes, train, code_labels)  # all codes at once: [N * T or N, H, W, C or head]
        if not k:
            return frames.reshape(n, t, h, w, c)
        gain = self.mask_gain or self.output_gain
        # Each layer's presence in the clip, from its content (and class): a low one hides the
        # whole layer in every frame, so that a clip with fewer objects than layers need not
        # hide one by darkening its colour or emptying its masks.
        presence = nn.Dense(k, name="layer_presence")(content)  # [N, K]
        masks = frames[..., :k]
        if self.mask_opening:
            # Opened before they move (a moved speck is still a speck), with the map's edges
            # hidden at any presence.
            rows = presence if moved else jnp.repeat(presence, t, axis=0)
            hidden = _OUTSIDE_LOGIT / gain - rows[:, None, None, :]
            masks = open_masks(masks, self.mask_opening, hidden)
        if mapped:  # colours drawn per pixel (sprites have none: `sprite_scale` is 1 here)
            maps = tanh_output(frames[..., k:], self.output_gain)
            maps = maps.reshape(frames.shape[0], h, w, mapped, c)
        if moved:
            # Each layer moves by its own offset per frame (`LayerOffsets`). The logits move
            # before the sigmoid, so a moved edge stays as sharp as the drawn one at any
            # sub-pixel offset; outside its map a layer is transparent.
            offsets = LayerOffsets(
                k,
                self.layer_motion,
                (h, w),
                (h - h // scale, w - w // scale),
                speed_range=self.speed_range,
                name="offsets",
            )(motion, content)
            if self.layer_walls == "reflect":
                # Each object turns back where its own edge, not its map's, meets the frame's:
                # its pixels shown (logit + presence > 0).
                shown = masks + presence[:, None, None, :]
                offsets = reflect_offsets(offsets, object_bounds(shown, (h, w)))
            if self.hidden_outside:
                # The presence joins the logits before the move, so that the logit beyond the
                # map (-10 / gain) stays hidden at any presence; added after it, a presence
                # over 10 / gain paints the layer's colour over the whole frame outside its map.
                masks = masks + presence[:, None, None, :]
            masks = move_maps(
                masks[..., None], offsets, _OUTSIDE_LOGIT / gain, (h, w), self.whole_pixels
            )
            masks = masks[..., 0]
            masks = masks.reshape(n * t, h, w, k)
            if mapped:
                background = jnp.repeat(maps[:, :, :, :1], t, axis=0)  # still: [N * T, ...]
                layer_maps = move_maps(maps[:, :, :, 1:], offsets, 0.0, None, self.whole_pixels)
                layer_maps = layer_maps.reshape(n * t, h, w, mapped - 1, c)
                maps = jnp.concatenate([background, layer_maps], axis=3)
        if not (moved and self.hidden_outside):
            masks = masks + jnp.repeat(presence, t, axis=0)[:, None, None, :]
        if mapped < k + 1:
            # One colour per clip for each layer not drawn per pixel, from the clip's content
            # (and class) alone, so it cannot change from frame to frame; the masks carry shape
            # and motion.
            flat_layers = k + 1 - mapped
            # With a palette the objects' colours are picked from it (below), and the Dense
            # draws the background's alone, where flat.
            drawn = flat_layers - k if self.colour_palette else flat_layers
            per_colour = c * (self.colour_levels if self.level_logits else 1)
            flat = jnp.zeros((n, 0), jnp.float32)
            if drawn:
                values = nn.Dense(drawn * per_colour, name="layer_colours")(content)
                flat = self._flat_colours(values, drawn)
            if self.colour_palette:
                # One learned table of colours for every clip, each entry made as a flat colour
                # is (levels, logits); each object layer picks one by a Dense of the content.
                p = self.colour_palette
                table = self.param("colour_palette", nn.initializers.normal(1.0), (p, per_colour))
                palette = self._flat_colours(table.reshape(1, -1), p).reshape(p, c)
                logits = nn.Dense(k * p, name="palette_logits")(content).reshape(n, k, p)
                objects = pick_from_palette(logits, palette, self.distinct_colours)
                flat = jnp.concatenate([flat.reshape(n, drawn, c), objects], axis=1)
            elif self.distinct_colours or self.colour_prior:
                # Level logits: a colour's logit is the sum of its channels' level logits, so
                # the highest is the channel-wise pick (the same colours), and a later layer whose
                # colour an earlier one took gets the next best combination instead.
                levels = self.colour_levels
                joint = joint_level_logits(values.reshape(n, flat_layers, c, levels))
                # Any number of objects may take the background's flat colour: hidden in it.
                shared = jnp.argmax(joint[:, 0], axis=-1) if flat_layers > k else None
                objects = joint[:, flat_layers - k :]
                if self.colour_prior:
                    # One learned logit per colour, shared by every clip: a colour that D
                    # refuses can be made rarer everywhere at once.
                    prior = self.param("colour_prior", nn.initializers.zeros, (levels**c,))
                    objects = objects + prior.reshape(1, 1, -1)
                objects = pick_from_palette(
                    objects, level_combinations(levels, c), self.distinct_colours, shared
                )
                flat = jnp.concatenate(
                    [flat.reshape(n, flat_layers, c)[:, : flat_layers - k], objects], axis=1
                )
            if self.bright_colours:  # the objects' colours (the last k), not the background's
                flat = flat.reshape(n, flat_layers, c)
                objects = brighten_colours(flat[:, flat_layers - k :])
                flat = jnp.concatenate([flat[:, : flat_layers - k], objects], axis=1)
            flat = jnp.repeat(flat.reshape(n, flat_layers * c), t, axis=0)
            flat = flat.reshape(n * t, 1, 1, flat_layers, c)
            if mapped:  # joined to per-pixel maps: broadcast to their size
                flat = jnp.broadcast_to(flat, (n * t, h, w, flat_layers, c))
                maps = jnp.concatenate([maps, flat], axis=3)
            else:
                maps = flat
        frames = composite_layers(masks, maps, gain, self.hard_masks)
        return frames.reshape(n, t, h, w, c)

    def _flat_colours(self, values: jax.Array, layers: int) -> jax.Array:
        """`values` `[N, layers * C (* colour_levels)]` -> `layers` flat colours per row,
        `[N, layers * C]` in [-1, 1]: one logit per level of each channel (`level_logits`), or
        tanh(`output_gain` x values) rounded to `colour_levels` levels."""
        c, n = self.clip_shape[-1], values.shape[0]
        if self.level_logits:
            levels = self.colour_levels
            return pick_levels(values.reshape(n, layers * c, levels), levels)
        return quantise_colours(tanh_output(values, self.output_gain), self.colour_levels)


class ImageDiscriminator(nn.Module):
    """frames `[M, H, W, C]` (and labels `[M]` when `num_classes` > 0) -> logits `[M]` (a 2-D
    DCGAN discriminator; with labels, plus a projection head)."""

    base_width: int
    depth: int
    norm: str
    spectral_norm: bool = False
    bn_axis_name: str | None = None
    dtype: Any = jnp.float32
    num_classes: int = 0
    pixel_stem: int = 0  # > 0: a per-pixel layer of this width (1x1 conv, LeakyReLU) first

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        _check_frame_size(x.shape[1], x.shape[2], self.depth, "ImageDiscriminator")
        if self.pixel_stem:
            # Each pixel's colour through a nonlinearity before any spatial mixing, so that a
            # pixel between palette colours is not just the mean of two that are.
            x = nn.leaky_relu(nn.Dense(self.pixel_stem, dtype=self.dtype, name="stem")(x), 0.2)

        def layer(module: nn.Module, h: jax.Array) -> jax.Array:
            if self.spectral_norm:
                return nn.SpectralNorm(module)(h, update_stats=train)
            return module(h)

        for i in range(self.depth):
            conv = Conv(
                self.base_width * 2**i,
                _KERNEL,
                _STRIDES,
                _PADDING,
                use_bias=i == 0 or self.norm == "none",
                dtype=self.dtype,
                name=f"down{i}",
            )
            x = layer(conv, x)
            if i > 0:
                x = normalize(x, self.norm, train, self.bn_axis_name, f"down{i}_norm")
            x = nn.leaky_relu(x, 0.2)
        return logits_head(x, layer, self.dtype, labels, self.num_classes)


class ImageVideoDiscriminator(nn.Module):
    """clips `[N, T, H, W, C]` -> `{"image": [N * K], "video": [N]}` (the heads in `heads`;
    K = ceil(T / image_stride), the image logits clip-major: clip 0's K frames first)."""

    clip_shape: tuple[int, int, int, int] = (16, 32, 32, 3)
    base_width: int = 16
    depth: int = 3
    norm: str = "batch"
    spectral_norm: bool = False
    heads: tuple[str, ...] = HEADS
    image_stride: int = 4
    bn_axis_name: str | None = None
    dtype: Any = jnp.float32
    num_classes: int = 0  # > 0: conditioned on labels [N] (a projection in each head)
    classifier: bool = False  # with num_classes: the video head's own classifier (CLASS_LOGITS)
    minibatch_std: int = 0  # > 0: the video head's minibatch-std channel over groups of clips
    pixel_stem: int = 0  # > 0: the image head's per-pixel first layer of this width

    @nn.compact
    def __call__(self, x: jax.Array, cond=None, train: bool = True) -> dict[str, jax.Array]:
        check_norm(self.norm, "ImageVideoDiscriminator")
        labels = None
        if self.num_classes:
            labels = check_labels(cond, x.shape[0], self.num_classes, "ImageVideoDiscriminator")
        else:
            check_unconditional(cond, "ImageVideoDiscriminator")
        if x.ndim != 5 or tuple(x.shape[1:]) != tuple(self.clip_shape):
            clip = ", ".join(map(str, self.clip_shape))
            raise ValueError(
                f"ImageVideoDiscriminator: input must be [N, {clip}] (N, T, H, W, C), got "
                f"{tuple(x.shape)}."
            )
        unknown = [h for h in self.heads if h not in HEADS]
        if unknown or not self.heads:
            raise ValueError(
                f"ImageVideoDiscriminator: heads={self.heads} must be some of {HEADS}."
            )
        logits = {}
        if "image" in self.heads:
            frames = x[:, :: self.image_stride]  # [N, K, H, W, C]
            image_d = ImageDiscriminator(
                self.base_width,
                self.depth,
                self.norm,
                self.spectral_norm,
                self.bn_axis_name,
                self.dtype,
                self.num_classes,
                self.pixel_stem,
                name="image",
            )
            frame_labels = None if labels is None else jnp.repeat(labels, frames.shape[1])
            logits["image"] = image_d(frames.reshape(-1, *frames.shape[2:]), train, frame_labels)
        if "video" in self.heads:
            video_d = VideoDiscriminator(
                clip_shape=tuple(self.clip_shape),
                base_width=self.base_width,
                depth=self.depth,
                norm=self.norm,
                spectral_norm=self.spectral_norm,
                bn_axis_name=self.bn_axis_name,
                dtype=self.dtype,
                num_classes=self.num_classes,
                classifier=self.classifier,
                minibatch_std=self.minibatch_std,
                name="video",
            )
            video = video_d(x, labels, train)
            if self.classifier and self.num_classes:  # the video head's own classifier
                logits[CLASS_LOGITS] = video[CLASS_LOGITS]
                video = video[""]
            logits["video"] = video
        return logits


# ---------------------------------------------------------------------------------------------
# The model family (gan_jax.models): config, validation, construction


def g_config() -> config_dict.ConfigDict:
    """G's keys: latent sizes (content, GRU output, per-frame noise), the frame generator's
    width of its last hidden block, blocks, norm, compute dtype, class conditioning, narrowest
    hidden width (0: none), the gain before the output tanh, the upsamplings done as resize +
    conv (the last ones; 0: none), the masked layers painted over a background (0: none, the
    frames drawn directly) and their colours ("flat": one per layer and clip; "flat_objects":
    the same, the background per pixel; "map": all per pixel), the masks' gain (0: the output
    gain), how the layers change from frame to frame ("drawn" per frame; "translate",
    "inertial", "steered" or "glide": drawn once per clip and moved), masks of 0 or 1
    (straight-through), how many times smaller than the frame moved layers are drawn (1:
    frame-sized), whether moved layers bounce off the frame's edges ("reflect") or pass them
    ("open"), how many levels each channel of the flat colours is rounded to (0: none),
    whether each channel's level is instead the highest of one logit per level, whether
    moved layers are placed at whole pixels (straight-through), whether the objects' flat
    colours have a full channel, the radius of the square the masks are opened by (0: none),
    whether the outside of a moved layer's map stays hidden at any presence, how many learned
    colours the objects' flat colours are picked from (0: none, each drawn), whether a clip's
    objects pick different colours, whether gliding speeds lie in a learned interval, and
    whether a learned logit per colour joins the objects' level logits. Defaults fit 8x32x32
    clips."""
    return config_dict.ConfigDict(
        {
            "content_dim": 64,
            "motion_dim": 16,
            "noise_dim": 16,
            "base_width": 16,
            "depth": 3,
            "norm": "batch",
            "dtype": "float32",
            "conditional": False,
            "min_width": 0,
            "output_gain": 1.0,
            "resize_layers": 0,
            "layers": 0,
            "layer_colours": "flat",
            "mask_gain": 0.0,
            "layer_motion": "drawn",
            "hard_masks": False,
            "sprite_scale": 1,
            "layer_walls": "open",
            "colour_levels": 0,
            "level_logits": False,
            "whole_pixels": False,
            "bright_colours": False,
            "mask_opening": 0,
            "hidden_outside": False,
            "colour_palette": 0,
            "distinct_colours": False,
            "speed_range": False,
            "colour_prior": False,
        }
    )


def d_config() -> config_dict.ConfigDict:
    """D's keys: width of the first block and blocks (both heads), norm, spectral norm, the
    heads, the image head's frame stride, compute dtype, class conditioning, the video head's
    minibatch-std group (0 = off), the image head's per-pixel first layer width (0 = off)."""
    return config_dict.ConfigDict(
        {
            "base_width": 16,
            "depth": 3,
            "norm": "batch",
            "spectral_norm": False,
            "heads": HEADS,
            "image_stride": 4,
            "dtype": "float32",
            "conditional": False,
            "classifier": False,
            "minibatch_std": 0,
            "pixel_stem": 0,
        }
    )


def _validate_net(net_cfg: config_dict.ConfigDict, net: str, spec: DataSpec) -> Checker:
    check = Checker(net_cfg, net)
    if not spec.is_video:
        raise ConfigError(
            f"{net}.name='mocogan' makes clips [N, T, H, W, C], but data.name={spec.name!r} "
            f"has samples of shape {spec.sample_shape}; choose a model family for that data "
            "(e.g. 'mlp' for 2-D points)"
        )
    depth = check.integer("depth", 1)
    check.integer("base_width", 1)
    check.one_of("norm", NORMS)
    check.one_of("dtype", tuple(DTYPES))
    validate_conditional(net_cfg, net, spec)
    _, height, width, _ = spec.sample_shape
    scale = 2**depth
    if height % scale or width % scale:
        raise ConfigError(
            f"data.height={height} and data.width={width} must be divisible by "
            f"2**{net}.depth={scale}; choose sizes that are multiples of {scale} or a smaller "
            f"{net}.depth"
        )
    return check


def _check_flat_colours(g_cfg: config_dict.ConfigDict, key: str, value, does: str, off) -> None:
    """Raises a ConfigError naming `key` unless G paints layers of flat colours, which `key` =
    `value` (a setting that `does` something to them) needs; `off` turns it off."""
    colours = g_cfg.get("layer_colours", "flat")
    if not g_cfg.get("layers", 0) or colours == "map":
        raise ConfigError(
            f"g.{key}={value} {does}, but g.layers={g_cfg.get('layers', 0)}, "
            f"g.layer_colours={colours!r} draws none; set g.layers >= 1 and g.layer_colours="
            f"'flat' or 'flat_objects', or g.{key}={off}"
        )


def validate_g(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    check = _validate_net(g_cfg, "g", spec)
    for key in ("content_dim", "motion_dim", "noise_dim"):
        check.integer(key, 1)
    if "min_width" in g_cfg:
        check.integer("min_width", 0)
    check_output_gain(g_cfg, check)
    if "resize_layers" in g_cfg:
        check.integer("resize_layers", 0, g_cfg.depth)
    if "layers" in g_cfg:
        check.integer("layers", 0)
    if "layer_colours" in g_cfg:
        check.one_of("layer_colours", LAYER_COLOURS)
    if "mask_gain" in g_cfg:
        check.number("mask_gain", 0.0)
    if "layer_motion" in g_cfg:
        motion = check.one_of("layer_motion", LAYER_MOTIONS)
        if motion != "drawn" and not g_cfg.get("layers", 0):
            raise ConfigError(
                f"g.layer_motion={motion!r} moves G's masked layers, but g.layers=0 draws none; "
                "set g.layers to 1 or more or g.layer_motion='drawn'"
            )
    if "sprite_scale" in g_cfg:
        scale = check.integer("sprite_scale", 1)
        motion, colours = g_cfg.get("layer_motion", "drawn"), g_cfg.get("layer_colours", "flat")
        if scale > 1 and (motion == "drawn" or colours != "flat" or not g_cfg.get("layers", 0)):
            raise ConfigError(
                f"g.sprite_scale={scale} draws G's moved layers smaller than the frame, but "
                f"g.layers={g_cfg.get('layers', 0)}, g.layer_motion={motion!r}, "
                f"g.layer_colours={colours!r}; set g.layers >= 1, a moving g.layer_motion (one "
                f"of {list(LAYER_MOTIONS[1:])}) and g.layer_colours='flat', or g.sprite_scale=1"
            )
        _, height, width, _ = spec.sample_shape
        size = scale * 2**g_cfg.depth
        if height % size or width % size:
            raise ConfigError(
                f"g.sprite_scale={scale} draws sprites of {height}/{scale} x {width}/{scale} "
                f"pixels, which g.depth={g_cfg.depth} needs divisible by {2**g_cfg.depth}; "
                "choose a smaller g.sprite_scale or g.depth"
            )
    if "layer_walls" in g_cfg:
        walls, motion = check.one_of("layer_walls", LAYER_WALLS), g_cfg.get("layer_motion", "drawn")
        if walls != "open" and (motion == "drawn" or not g_cfg.get("layers", 0)):
            raise ConfigError(
                f"g.layer_walls={walls!r} makes G's moved layers bounce off the frame's edges, "
                f"but g.layers={g_cfg.get('layers', 0)}, g.layer_motion={motion!r} moves none; "
                f"set g.layers >= 1 and a moving g.layer_motion (one of "
                f"{list(LAYER_MOTIONS[1:])}), or g.layer_walls='open'"
            )
    if "colour_levels" in g_cfg:
        levels = check.integer("colour_levels", 0)
        colours = g_cfg.get("layer_colours", "flat")
        if levels == 1 or (levels and (not g_cfg.get("layers", 0) or colours == "map")):
            raise ConfigError(
                f"g.colour_levels={levels} rounds the flat colours of G's layers, but must be 0 "
                f"(off) or >= 2, with g.layers >= 1 (got {g_cfg.get('layers', 0)}) and flat "
                f"colours (g.layer_colours={colours!r}); set g.colour_levels=0, or 2 or 3 with "
                "g.layers >= 1 and g.layer_colours='flat' or 'flat_objects'"
            )
    if "level_logits" in g_cfg and check.boolean("level_logits"):
        if not g_cfg.get("colour_levels", 0):
            raise ConfigError(
                "g.level_logits=True picks each channel of G's flat colours from one logit per "
                "level, but g.colour_levels=0 sets no levels; set g.colour_levels (e.g. 3) or "
                "g.level_logits=False"
            )
    # Settings of moved layers (sprites): each needs layers that move.
    motion = g_cfg.get("layer_motion", "drawn")
    for key, does in (
        ("whole_pixels", "places G's moved layers at whole pixels"),
        ("hidden_outside", "keeps the outside of G's moved layers hidden"),
    ):
        if key in g_cfg and check.boolean(key) and (motion == "drawn" or not g_cfg.get("layers")):
            raise ConfigError(
                f"g.{key}=True {does}, but g.layers={g_cfg.get('layers', 0)}, "
                f"g.layer_motion={motion!r} moves none; set g.layers >= 1 and a moving "
                f"g.layer_motion (one of {list(LAYER_MOTIONS[1:])}), or g.{key}=False"
            )
    if "bright_colours" in g_cfg and check.boolean("bright_colours"):
        _check_flat_colours(
            g_cfg,
            "bright_colours",
            True,
            "gives the flat colours of G's layers a full channel",
            False,
        )
    if "mask_opening" in g_cfg and check.integer("mask_opening", 0) and not g_cfg.get("layers", 0):
        raise ConfigError(
            f"g.mask_opening={g_cfg.mask_opening} opens the masks of G's layers, but g.layers=0 "
            "draws none; set g.layers to 1 or more or g.mask_opening=0"
        )
    palette = check.integer("colour_palette", 0) if "colour_palette" in g_cfg else 0
    if palette:
        does = "picks the flat colours of G's layers from a learned palette"
        _check_flat_colours(g_cfg, "colour_palette", palette, does, 0)
    if "distinct_colours" in g_cfg and check.boolean("distinct_colours"):
        layers = g_cfg.get("layers", 0)
        level_logits = g_cfg.get("level_logits", False)
        if palette < max(layers, 1) if palette else not level_logits:
            raise ConfigError(
                f"g.distinct_colours=True gives each of G's layers in a clip its own colour, but "
                f"g.colour_palette={palette} with g.layers={layers} and "
                f"g.level_logits={level_logits} has too few colours to pick from; set "
                "g.level_logits=True (with g.colour_levels and g.colour_palette=0) or "
                f"g.colour_palette to at least g.layers ({max(layers, 1)}), or "
                "g.distinct_colours=False"
            )
    if "colour_prior" in g_cfg and check.boolean("colour_prior"):
        colours = g_cfg.get("layer_colours", "flat")
        if not g_cfg.get("level_logits", False) or palette or colours == "map":
            raise ConfigError(
                "g.colour_prior=True adds a learned logit per colour to the level logits of G's "
                f"flat object colours, but g.level_logits={g_cfg.get('level_logits', False)}, "
                f"g.colour_palette={palette}, g.layer_colours={colours!r}; set g.level_logits=True "
                "(with g.colour_levels and flat colours) and g.colour_palette=0, or "
                "g.colour_prior=False"
            )
    if "speed_range" in g_cfg and check.boolean("speed_range") and motion != "glide":
        raise ConfigError(
            f"g.speed_range=True bounds the speeds of G's gliding layers, but "
            f"g.layer_motion={motion!r}; set g.layer_motion='glide' (with g.layers >= 1) or "
            "g.speed_range=False"
        )
    if "hard_masks" in g_cfg and check.boolean("hard_masks") and not g_cfg.get("layers", 0):
        raise ConfigError(
            "g.hard_masks=True makes the masks of G's layers 0 or 1, but g.layers=0 draws none; "
            "set g.layers to 1 or more or g.hard_masks=False"
        )


def validate_d(d_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    check = _validate_net(d_cfg, "d", spec)
    check.boolean("spectral_norm")
    heads = check.value("heads", tuple)
    if not heads or any(h not in HEADS for h in heads) or len(set(heads)) != len(heads):
        raise ConfigError(
            f"d.heads={heads!r} must name each of its heads once, from {list(HEADS)} (at least "
            "one), e.g. ('image', 'video') or ('image',)"
        )
    check.integer("image_stride", 1)
    validate_classifier(d_cfg)
    if d_cfg.get("classifier", False) and "video" not in heads:
        raise ConfigError(
            f"d.classifier=True puts D's classifier on its video head, but d.heads={heads!r} has "
            "none; add 'video' to d.heads or set d.classifier=False"
        )
    stem = check.integer("pixel_stem", 0) if "pixel_stem" in d_cfg else 0
    if stem and "image" not in heads:
        raise ConfigError(
            f"d.pixel_stem={stem} puts a per-pixel first layer in D's image head, but "
            f"d.heads={heads!r} has none; add 'image' to d.heads or set d.pixel_stem=0"
        )
    group = check.integer("minibatch_std", 0) if "minibatch_std" in d_cfg else 0
    check_minibatch_std(group, spec.batch_size, "d", "batch_size")
    if group and "video" not in heads:
        raise ConfigError(
            f"d.minibatch_std={group} puts a minibatch-std channel in D's video head, but "
            f"d.heads={heads!r} has none; add 'video' to d.heads or set d.minibatch_std=0"
        )


def make_generator(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> MoCoGenerator:
    return MoCoGenerator(
        clip_shape=spec.sample_shape,
        content_dim=g_cfg.content_dim,
        motion_dim=g_cfg.motion_dim,
        noise_dim=g_cfg.noise_dim,
        base_width=g_cfg.base_width,
        depth=g_cfg.depth,
        norm=g_cfg.norm,
        dtype=DTYPES[g_cfg.dtype],
        num_classes=int(spec.num_classes or 0) if g_cfg.conditional else 0,
        min_width=int(g_cfg.get("min_width", 0)),  # .get: configs saved before the key
        output_gain=float(g_cfg.get("output_gain", 1.0)),
        resize_layers=int(g_cfg.get("resize_layers", 0)),
        layers=int(g_cfg.get("layers", 0)),
        layer_colours=str(g_cfg.get("layer_colours", "flat")),
        mask_gain=float(g_cfg.get("mask_gain", 0.0)),
        layer_motion=str(g_cfg.get("layer_motion", "drawn")),
        hard_masks=bool(g_cfg.get("hard_masks", False)),
        sprite_scale=int(g_cfg.get("sprite_scale", 1)),
        layer_walls=str(g_cfg.get("layer_walls", "open")),
        colour_levels=int(g_cfg.get("colour_levels", 0)),
        level_logits=bool(g_cfg.get("level_logits", False)),
        whole_pixels=bool(g_cfg.get("whole_pixels", False)),
        bright_colours=bool(g_cfg.get("bright_colours", False)),
        mask_opening=int(g_cfg.get("mask_opening", 0)),
        hidden_outside=bool(g_cfg.get("hidden_outside", False)),
        colour_palette=int(g_cfg.get("colour_palette", 0)),
        distinct_colours=bool(g_cfg.get("distinct_colours", False)),
        speed_range=bool(g_cfg.get("speed_range", False)),
        colour_prior=bool(g_cfg.get("colour_prior", False)),
    )


def make_discriminator(d_cfg: config_dict.ConfigDict, spec: DataSpec) -> ImageVideoDiscriminator:
    return ImageVideoDiscriminator(
        clip_shape=spec.sample_shape,
        base_width=d_cfg.base_width,
        depth=d_cfg.depth,
        norm=d_cfg.norm,
        spectral_norm=d_cfg.spectral_norm,
        heads=tuple(d_cfg.heads),
        image_stride=d_cfg.image_stride,
        dtype=DTYPES[d_cfg.dtype],
        num_classes=int(spec.num_classes or 0) if d_cfg.conditional else 0,
        classifier=bool(d_cfg.get("classifier", False)),
        # .get: runs saved before the key existed have no minibatch-std channel
        minibatch_std=int(d_cfg.get("minibatch_std", 0)),
        pixel_stem=int(d_cfg.get("pixel_stem", 0)),
    )
