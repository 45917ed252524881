"""R3GAN for video: a normalisation-free residual 3-D generator and discriminator.

After Huang et al., "The GAN is dead; long live the GAN! A Modern GAN Baseline" (NeurIPS 2024;
reference code github.com/brownvc/R3GAN, `R3GAN/Networks.py`), made 3-D (time x height x
width). Train it with R3GAN's objective: `loss.name = "rpgan"`, `penalty.r1 = penalty.r2 =
gamma`. Clips are `[N, T, H, W, C]` in [-1, 1]; T = 1 makes an image GAN (time kernels become
1, time is never resampled). The family `r3gan` (`cfg.g.name` / `cfg.d.name`).

Residual block (R3GAN's inverted bottleneck, no normalisation anywhere):
    x + project(act(grouped_conv(act(expand(x)))))
with `expand` a 1x1x1 conv from C to `expansion * C` channels, `grouped_conv` a 3x3x3 stride-1
conv over groups of `group_size` channels (kernel 1 along a dim of size 1), `project` a 1x1x1
conv back to C, `act` a learned bias then LeakyReLU(0.2). Fix-up initialisation: `project`
starts at zero (each block is the identity at init) and the other two layers are drawn with
std `gain / sqrt(fan_in)`, gain = sqrt(2 / (1 + 0.2^2)) * L^(-1/4): L the net's number of
blocks, -1/4 = -1 / (2m - 2) for m = 3 layers per branch. Convs have no bias (the activations
hold them).

Architecture for `widths` = (w_0, ..., w_{S-1}) and `patch_size` = p:
  G: z `[N, Z]` -> learned basis `[T0, H0, W0, w_0]` scaled channel-wise by a linear map of z
     -> S stages: stage i > 0 starts with a 1x1 transition conv (where the width changes, at
     the lower resolution) and an upsampling x2 in H, W (and in T while T has factors of two
     left, first stages first, as `video_dcgan.block_plan`), then `blocks[i]` residual blocks
     -> 1x1 conv to `pt * p * p * C` channels folded into pixel patches (depth-to-space)
     -> tanh (or clip) to [-1, 1].
  D: the mirror: space-to-depth into `pt x p x p` patches -> 1x1 conv to w_0 -> S stages of
     `blocks[i]` residual blocks, each but the last followed by a downsampling x2 and a 1x1
     transition conv -> R3GAN's discriminative basis (a learned weighting of every position of
     the last stage, per channel: `[N, C]`) -> Dense -> logits `[N]`.

R3GAN resamples with a [1, 2, 1]-derived filter ("bilinear" here: [1, 3, 3, 1] / 8 per dim)
after 1x1 transitions; "box" (nearest-neighbour repeat / mean of pairs) is the cheaper option.
Both are reshapes, slices and sums whose gradients are the same, never dilated convolutions.
`patch_size` is this port's addition: R3GAN runs residual stages at every resolution up to the
image's (p = 1); at p = 2 the last doubling is a linear patch head / stem (depth-to-space in G,
space-to-depth in D, like ConvNeXt's "patchify" stem), so no 3x3x3 conv runs at the clip's
full resolution (8 x 32 x 32: 8192 positions per clip).

Output: tanh (default) or a hard clip. R3GAN's G is unbounded; our data is in [-1, 1]. tanh
keeps a gradient everywhere, where a clip gives none to an output pushed past the wrong end.

Defaults (main job, 8 x 32 x 32 clips, batch 16, 2 CPU cores): widths 32 at every stage, one
block at G's 1 x 4 x 4 and 2 x 8 x 8 stages and at D's 2 x 8 x 8 and 1 x 4 x 4 ones, none at
4 x 16 x 16: a block there (even 16 wide) made the RpGAN + R1 + R2 step 3x the DCGAN's, these
defaults 1.2x to 1.8x (busy 2-core EPYC; 2.16 useful GFLOP per step against 2.24).
`group_size` 16 is R3GAN's (its presets keep 16 channels per group at every width).

CPU: `grouped_conv` picks a formulation by map size (one fast-route im2col product per group
on small maps, a folded 2-D XLA convolution with a block-diagonal kernel on large ones); other
backends use `lax.conv_general_dilated` with `feature_group_count`. The 1x1 convs are plain
matrix products.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError
from gan_jax.data.spec import DataSpec
from gan_jax.models.layers import DTYPES, check_unconditional
from gan_jax.ops import conv as conv_ops
from gan_jax.ops.blocks import space_to_depth

RESAMPLE_FILTERS = ("bilinear", "box")
OUTPUTS = ("tanh", "clip")

LEAKY_SLOPE = 0.2
# The gain of LeakyReLU(0.2) (He et al.): keeps the second moment through a layer.
ACTIVATION_GAIN = math.sqrt(2.0 / (1.0 + LEAKY_SLOPE**2))
LAYERS_PER_BRANCH = 3

Size = tuple[int, int, int]  # (T, H, W)

# On CPU, grouped convs over at least this many positions (N * T * H * W) run as one folded
# 2-D XLA convolution, smaller ones as im2col products per group (`grouped_conv`): measured
# crossover between the main job's 2 x 8 x 8 (2048 rows at batch 16) and 4 x 16 x 16 maps.
FOLDED_MIN_ROWS = 8192


# ---------------------------------------------------------------------------------------------
# The plan: feature sizes per stage and the pixel patch


def stage_plan(
    clip_shape: tuple[int, int, int, int], num_stages: int, patch_size: int
) -> tuple[list[Size], Size]:
    """Feature sizes of each stage (G order, coarsest first) and the pixel patch.

    H and W double `num_stages - 1 + log2(patch_size)` times from the basis to the clip: once
    per stage after the first, then within the patch. T doubles in the first of those
    doublings while it has factors of two left (any T works; an odd T is never resampled).

    Args:
        clip_shape: `(T, H, W, C)`.
        num_stages: S >= 1.
        patch_size: p, a power of two >= 1.

    Returns:
        `([(T_i, H_i, W_i) for each stage], (pt, p, p))` with `T_{S-1} * pt = T`.

    Raises:
        ValueError: if H or W is not divisible by `2**(S - 1) * p`, or on bad arguments.
    """
    t, h, w, c = clip_shape
    if num_stages < 1:
        raise ValueError(f"num_stages={num_stages} must be >= 1.")
    if patch_size < 1 or patch_size & (patch_size - 1):
        raise ValueError(f"patch_size={patch_size} must be a power of two.")
    if min(t, h, w, c) < 1:
        raise ValueError(f"clip shape (T, H, W, C)={clip_shape} must be positive.")
    patch_doublings = patch_size.bit_length() - 1
    doublings = num_stages - 1 + patch_doublings
    scale = 2**doublings
    if h % scale or w % scale:
        raise ValueError(
            f"H={h} and W={w} must be divisible by 2**(stages - 1) * patch_size={scale}."
        )
    time_ups = 0
    while (t >> time_ups) % 2 == 0 and time_ups < doublings:
        time_ups += 1
    sizes = [
        (t >> (time_ups - min(i, time_ups)), h // scale * 2**i, w // scale * 2**i)
        for i in range(num_stages)
    ]
    patch_time = 2 ** max(0, time_ups - (num_stages - 1))
    return sizes, (patch_time, patch_size, patch_size)


def block_gain(num_blocks: int) -> float:
    """Fix-up gain of the non-final layers of each residual branch, for a net of L blocks."""
    return ACTIVATION_GAIN * max(num_blocks, 1) ** (-1.0 / (2 * LAYERS_PER_BRANCH - 2))


def kernel_size(size: Size) -> Size:
    """3 along each dim, 1 along a dim of size 1 (only the centre tap would meet data)."""
    return tuple(1 if n == 1 else 3 for n in size)


# ---------------------------------------------------------------------------------------------
# Ops: grouped conv, resampling, pixel patches


def grouped_conv(x: jax.Array, kernel: jax.Array, *, impl: str | None = None) -> jax.Array:
    """Stride-1 grouped 3-D convolution with "same" padding (odd kernels), channels last.

    Equals `lax.conv_general_dilated(x, kernel, 1, same, feature_group_count=G)` with
    G = Cin / kernel's Cin, which is what the "lax" route runs (GPU, TPU). The "fast" route
    (CPU), measured at the main job's shapes against XLA:CPU's grouped 3-D convolution
    (2-10x slower), a Python loop over groups (equally fast but 2-6x the compile time) and
    one block-diagonal im2col product on the fast route:

    * maps of under `FOLDED_MIN_ROWS` positions (N * T * H * W): one `gan_jax.ops.conv`
      im2col product per group, vmapped over the groups;
    * larger maps: the time taps folded into the channels and one stride-1 2-D XLA
      convolution with the block-diagonal kernel (`block_diagonal`), which XLA:CPU runs as
      an optimised 2-D convolution: 2-3x faster than the im2col route there and compiled in
      seconds, though it multiplies the zeros between groups.

    Neither has a dilated or strided convolution, forward or backward.

    Args:
        x: `[N, T, H, W, Cin]`.
        kernel: `[kt, kh, kw, Cin // G, Cout]`, Cout a multiple of G (output group g reads
            input group g; lax's layout).
        impl: "lax", "fast" or None for `gan_jax.ops.conv.default_impl()`.

    Returns:
        `[N, T, H, W, Cout]`.

    Raises:
        ValueError: on ranks, channel counts that do not split into groups, even kernels.
    """
    group_in = kernel.shape[-2]
    cin, cout = x.shape[-1], kernel.shape[-1]
    if x.ndim != 5 or kernel.ndim != 5 or cin % group_in or cout % (cin // group_in):
        raise ValueError(
            f"grouped_conv: x {x.shape} must be [N, T, H, W, Cin] and kernel {kernel.shape} "
            "[kt, kh, kw, Cin // G, Cout] with Cin and Cout multiples of the group count G."
        )
    if any(k % 2 == 0 for k in kernel.shape[:3]):
        raise ValueError(f"grouped_conv: kernel sizes {kernel.shape[:3]} must be odd.")
    groups = cin // group_in
    padding = tuple(((k - 1) // 2,) * 2 for k in kernel.shape[:3])
    impl = impl or conv_ops.default_impl()
    if impl == "lax":
        return lax.conv_general_dilated(
            x,
            kernel,
            (1, 1, 1),
            padding,
            dimension_numbers=conv_ops.dimension_numbers(3),
            feature_group_count=groups,
        )
    rows = x.shape[0] * x.shape[1] * x.shape[2] * x.shape[3]
    if rows >= FOLDED_MIN_ROWS:
        return _grouped_conv_folded(x, kernel, groups)
    return _grouped_conv_per_group(x, kernel, groups)


def block_diagonal(kernel: jax.Array, groups: int) -> jax.Array:
    """A grouped kernel `[*K, Cin // G, Cout]` as the dense `[*K, Cin, Cout]` it equals: zero
    between different groups."""
    *taps, group_in, cout = kernel.shape
    group_out = cout // groups
    split = kernel.reshape(*taps, group_in, groups, group_out)
    eye = jnp.eye(groups, dtype=kernel.dtype)
    # dense[..., (g, i), (h, j)] = kernel[..., i, (h, j)] if g == h else 0
    dense = jnp.einsum("...igj,gh->...gihj", split, eye)
    return dense.reshape(*taps, groups * group_in, cout)


def _grouped_conv_folded(x: jax.Array, kernel: jax.Array, groups: int) -> jax.Array:
    """`grouped_conv` as one 2-D convolution over `[N * T, H, W]` with the time taps folded
    into the channels and a block-diagonal kernel."""
    n, t, h, w, cin = x.shape
    kt, kh, kw, group_in, cout = kernel.shape
    # The kt time taps join each group's channels: [N * T, H, W, G * kt * group_in].
    pad_t = (kt - 1) // 2
    padded = jnp.pad(x, ((0, 0), (pad_t, pad_t), (0, 0), (0, 0), (0, 0)))
    taps = jnp.stack([lax.slice_in_dim(padded, a, a + t, axis=1) for a in range(kt)], axis=-2)
    taps = taps.reshape(n * t, h, w, kt, groups, group_in).transpose(0, 1, 2, 4, 3, 5)
    taps = taps.reshape(n * t, h, w, groups * kt * group_in)
    kernel_2d = kernel.transpose(1, 2, 0, 3, 4).reshape(kh, kw, kt * group_in, cout)
    y = lax.conv_general_dilated(
        taps,
        block_diagonal(kernel_2d, groups),
        (1, 1),
        (((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2),
        dimension_numbers=conv_ops.dimension_numbers(2),
    )
    return y.reshape(n, t, h, w, cout)


def _grouped_conv_per_group(x: jax.Array, kernel: jax.Array, groups: int) -> jax.Array:
    """`grouped_conv` as one fast-route conv per group (`gan_jax.ops.conv`), vmapped."""
    n, t, h, w, cin = x.shape
    *taps, group_in, cout = kernel.shape
    group_out = cout // groups
    padding = tuple(((k - 1) // 2,) * 2 for k in taps)
    xg = jnp.moveaxis(x.reshape(n, t, h, w, groups, group_in), 4, 0)
    kg = jnp.moveaxis(kernel.reshape(*taps, group_in, groups, group_out), 4, 0)
    y = jax.vmap(lambda a, b: conv_ops.conv(a, b, (1, 1, 1), padding, impl="fast"))(xg, kg)
    return jnp.moveaxis(y, 0, 4).reshape(n, t, h, w, cout)


def _shifted(x: jax.Array, axis: int, step: int) -> jax.Array:
    """x moved by one along `axis` (`step` -1: x[i - 1], +1: x[i + 1]), edge replicated."""
    n = x.shape[axis]
    if step < 0:
        parts = (lax.slice_in_dim(x, 0, 1, axis=axis), lax.slice_in_dim(x, 0, n - 1, axis=axis))
    else:
        parts = (lax.slice_in_dim(x, 1, n, axis=axis), lax.slice_in_dim(x, n - 1, n, axis=axis))
    return jnp.concatenate(parts, axis=axis)


def upsample_axis(x: jax.Array, axis: int, method: str) -> jax.Array:
    """Doubles `axis`: "box" repeats each sample, "bilinear" interpolates at +-1/4.

    Bilinear (half-pixel centres, edges replicated: `jax.image.resize(..., "linear")`): output
    2i is 3/4 x[i] + 1/4 x[i - 1], output 2i + 1 is 3/4 x[i] + 1/4 x[i + 1]. R3GAN's upsampler
    applies the same [1, 3, 3, 1] filter with zero padding; replicating the edge keeps a
    constant constant, which matters at 4x4 where the edge is half of the pixels.
    """
    if method == "box":
        return jnp.repeat(x, 2, axis=axis)
    even = 0.75 * x + 0.25 * _shifted(x, axis, -1)
    odd = 0.75 * x + 0.25 * _shifted(x, axis, +1)
    shape = list(x.shape)
    shape[axis] *= 2
    return jnp.stack([even, odd], axis=axis + 1).reshape(shape)


def downsample_axis(x: jax.Array, axis: int, method: str) -> jax.Array:
    """Halves `axis` (even size): "box" averages pairs, "bilinear" filters with [1, 3, 3, 1] / 8.

    Bilinear: output i is (x[2i - 1] + 3 x[2i] + 3 x[2i + 1] + x[2i + 2]) / 8, edges replicated
    (R3GAN's downsampler with its [1, 2, 1] filter, up to the border).
    """
    n = x.shape[axis]
    pairs = x.reshape(*x.shape[:axis], n // 2, 2, *x.shape[axis + 1 :])
    first = lax.index_in_dim(pairs, 0, axis + 1, keepdims=False)  # x[2i]
    second = lax.index_in_dim(pairs, 1, axis + 1, keepdims=False)  # x[2i + 1]
    if method == "box":
        return 0.5 * (first + second)
    before = jnp.concatenate(  # x[2i - 1]; x[-1] = x[0]
        [
            lax.slice_in_dim(first, 0, 1, axis=axis),
            lax.slice_in_dim(second, 0, n // 2 - 1, axis=axis),
        ],
        axis=axis,
    )
    after = jnp.concatenate(  # x[2i + 2]; x[n] = x[n - 1]
        [
            lax.slice_in_dim(first, 1, n // 2, axis=axis),
            lax.slice_in_dim(second, n // 2 - 1, n // 2, axis=axis),
        ],
        axis=axis,
    )
    return 0.125 * (before + after) + 0.375 * (first + second)


def resample(x: jax.Array, src: Size, dst: Size, method: str) -> jax.Array:
    """`[N, *src, C]` -> `[N, *dst, C]`, each of T, H, W kept, doubled or halved."""
    for d, (a, b) in enumerate(zip(src, dst)):
        if b == 2 * a:
            x = upsample_axis(x, 1 + d, method)
        elif 2 * b == a:
            x = downsample_axis(x, 1 + d, method)
        elif a != b:
            raise ValueError(f"resample: cannot go from {src} to {dst}.")
    return x


def depth_to_space(x: jax.Array, patch: Size) -> jax.Array:
    """`[N, T, H, W, pt * ph * pw * C]` -> `[N, T * pt, H * ph, W * pw, C]`; the inverse of
    `gan_jax.ops.blocks.space_to_depth` (channel order `(pt, ph, pw, C)`)."""
    n, t, h, w, depth = x.shape
    pt, ph, pw = patch
    c = depth // (pt * ph * pw)
    x = x.reshape(n, t, h, w, pt, ph, pw, c).transpose(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(n, t * pt, h * ph, w * pw, c)


# ---------------------------------------------------------------------------------------------
# Layers


def _msr_init(gain: float, fan_in: int):
    """R3GAN's MSR initialisation: N(0, gain^2 / fan_in); zeros for gain 0."""
    if gain == 0:
        return nn.initializers.zeros
    return nn.initializers.normal(stddev=gain / math.sqrt(fan_in))


def _channel_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    # Explicit rank: the tests run with jax_numpy_rank_promotion="raise".
    return y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + bias.shape)


class Pointwise(nn.Module):
    """1x1x1 conv without bias, as one matrix product: `[..., Cin]` -> `[..., features]`."""

    features: int
    gain: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        kernel = self.param("kernel", _msr_init(self.gain, cin), (cin, self.features), jnp.float32)
        y = x.astype(self.dtype).reshape(-1, cin) @ kernel.astype(self.dtype)
        return y.reshape(*x.shape[:-1], self.features)


class GroupedConv(nn.Module):
    """Stride-1 "same" grouped 3-D conv without bias: `[N, T, H, W, C]` -> same shape."""

    kernel_size: Size
    group_size: int
    gain: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        fan_in = math.prod(self.kernel_size) * self.group_size
        kernel = self.param(
            "kernel",
            _msr_init(self.gain, fan_in),
            (*self.kernel_size, self.group_size, channels),
            jnp.float32,
        )
        return grouped_conv(x.astype(self.dtype), kernel.astype(self.dtype))


class BiasedLeakyReLU(nn.Module):
    """LeakyReLU(0.2) after a learned per-channel bias (R3GAN's `BiasedActivation`)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return nn.leaky_relu(_channel_bias(x, bias), LEAKY_SLOPE)


class ResidualBlock(nn.Module):
    """`x + project(act(grouped_conv(act(expand(x)))))`; the identity at init."""

    expansion: int
    group_size: int
    kernel_size: Size
    gain: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        y = Pointwise(self.expansion * channels, self.gain, self.dtype, name="expand")(x)
        y = BiasedLeakyReLU(name="act1")(y)
        y = GroupedConv(self.kernel_size, self.group_size, self.gain, self.dtype, name="conv")(y)
        y = BiasedLeakyReLU(name="act2")(y)
        y = Pointwise(channels, 0.0, self.dtype, name="project")(y)
        return x.astype(y.dtype) + y


class R3Generator(nn.Module):
    """latents `{"z": [N, z_dim]}` -> clips `[N, T, H, W, C]` in [-1, 1]."""

    clip_shape: tuple[int, int, int, int] = (8, 32, 32, 3)  # (T, H, W, C)
    z_dim: int = 64
    widths: tuple[int, ...] = (32, 32, 32)  # per stage, from the basis to the output
    blocks: tuple[int, ...] = (1, 1, 0)
    expansion: int = 2
    group_size: int = 16
    patch_size: int = 2
    resample_filter: str = "bilinear"
    output: str = "tanh"
    dtype: Any = jnp.float32

    @property
    def latent_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"z": (self.z_dim,)}

    @nn.compact
    def __call__(self, latents: dict[str, jax.Array], cond=None, train: bool = True) -> jax.Array:
        check_unconditional(cond, "R3Generator")
        z = latents["z"]
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"R3Generator: z must be [N, {self.z_dim}], got {z.shape}.")
        sizes, patch = stage_plan(self.clip_shape, len(self.widths), self.patch_size)
        gain = block_gain(sum(self.blocks))
        # R3GAN's generative basis: a learned [T0, H0, W0, C0] map, one scale per channel from z.
        basis = self.param("basis", nn.initializers.normal(1.0), (*sizes[0], self.widths[0]))
        scales = Pointwise(self.widths[0], 1.0, self.dtype, name="basis_scales")(z)
        x = basis.astype(self.dtype)[None] * scales.reshape(z.shape[0], 1, 1, 1, -1)
        for i, (size, width) in enumerate(zip(sizes, self.widths)):
            if i > 0:
                # Transition at the lower resolution, before upsampling: the cheaper order.
                if width != self.widths[i - 1]:
                    x = Pointwise(width, 1.0, self.dtype, name=f"stage{i}_transition")(x)
                x = resample(x, sizes[i - 1], size, self.resample_filter)
            for j in range(self.blocks[i]):
                x = ResidualBlock(
                    self.expansion,
                    self.group_size,
                    kernel_size(size),
                    gain,
                    self.dtype,
                    name=f"stage{i}_block{j}",
                )(x)
        x = Pointwise(math.prod(patch) * self.clip_shape[3], 1.0, self.dtype, name="to_patches")(x)
        x = depth_to_space(x, patch).astype(jnp.float32)
        if self.output == "clip":
            return jnp.clip(x, -1.0, 1.0)
        return jnp.tanh(x)


class R3Discriminator(nn.Module):
    """clips `[N, T, H, W, C]` -> logits `[N]`."""

    clip_shape: tuple[int, int, int, int] = (8, 32, 32, 3)
    widths: tuple[int, ...] = (32, 32, 32)  # per stage, from the input to the head
    blocks: tuple[int, ...] = (0, 1, 1)
    expansion: int = 2
    group_size: int = 16
    patch_size: int = 2
    resample_filter: str = "bilinear"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, cond=None, train: bool = True) -> jax.Array:
        check_unconditional(cond, "R3Discriminator")
        if x.ndim != 5 or tuple(x.shape[1:]) != tuple(self.clip_shape):
            raise ValueError(
                f"R3Discriminator: input must be [N, {', '.join(map(str, self.clip_shape))}]"
                f" (N, T, H, W, C), got {tuple(x.shape)}."
            )
        sizes, patch = stage_plan(self.clip_shape, len(self.widths), self.patch_size)
        sizes = sizes[::-1]  # D order: finest first
        gain = block_gain(sum(self.blocks))
        x = space_to_depth(x.astype(self.dtype), patch)
        x = Pointwise(self.widths[0], 1.0, self.dtype, name="from_patches")(x)
        for i, (size, width) in enumerate(zip(sizes, self.widths)):
            for j in range(self.blocks[i]):
                x = ResidualBlock(
                    self.expansion,
                    self.group_size,
                    kernel_size(size),
                    gain,
                    self.dtype,
                    name=f"stage{i}_block{j}",
                )(x)
            if i + 1 < len(sizes):
                # Downsample first: the transition then runs at the lower resolution.
                x = resample(x, size, sizes[i + 1], self.resample_filter)
                if self.widths[i + 1] != width:
                    x = Pointwise(self.widths[i + 1], 1.0, self.dtype, name=f"stage{i}_transition")(
                        x
                    )
        # R3GAN's discriminative basis: one learned weight per position and channel (a
        # depthwise conv as large as the map), then a linear map to the logit.
        positions = math.prod(sizes[-1])
        weights = self.param(
            "basis", _msr_init(1.0, positions), (*sizes[-1], self.widths[-1]), jnp.float32
        )
        features = jnp.einsum("nthwc,thwc->nc", x, weights.astype(x.dtype))
        logits = nn.Dense(
            1, dtype=self.dtype, kernel_init=_msr_init(1.0, self.widths[-1]), name="logits"
        )(features)
        return logits[:, 0].astype(jnp.float32)


# ---------------------------------------------------------------------------------------------
# The model family (gan_jax.models): config, validation, construction


def g_config() -> config_dict.ConfigDict:
    """G's keys: noise size, stage widths and blocks (basis first), residual branch shape,
    pixel patch, resampling filter, output mapping, compute dtype."""
    return config_dict.ConfigDict(
        {
            "z_dim": 64,
            "widths": (32, 32, 32),
            "blocks": (1, 1, 0),
            "expansion": 2,
            "group_size": 16,
            "patch_size": 2,
            "resample_filter": "bilinear",
            "output": "tanh",
            "dtype": "float32",
        }
    )


def d_config() -> config_dict.ConfigDict:
    """D's keys: stage widths and blocks (input first), residual branch shape, pixel patch,
    resampling filter, compute dtype."""
    return config_dict.ConfigDict(
        {
            "widths": (32, 32, 32),
            "blocks": (0, 1, 1),
            "expansion": 2,
            "group_size": 16,
            "patch_size": 2,
            "resample_filter": "bilinear",
            "dtype": "float32",
        }
    )


def _int_tuple(check: Checker, key: str, low: int) -> tuple[int, ...]:
    value = check.value(key, (tuple, list))
    if not value or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in value):
        raise ConfigError(
            f"{check.name(key)} must be a non-empty tuple of ints >= {low} (one per stage), "
            f"got {value!r}"
        )
    return tuple(value)


def _validate_net(net_cfg: config_dict.ConfigDict, net: str, spec: DataSpec) -> None:
    check = Checker(net_cfg, net)
    if not spec.is_video:
        raise ConfigError(
            f"{net}.name='r3gan' makes clips [N, T, H, W, C], but data.name={spec.name!r} has "
            f"samples of shape {spec.sample_shape}; choose a model family for that data "
            "(e.g. 'mlp' for 2-D points)"
        )
    widths = _int_tuple(check, "widths", 1)
    blocks = _int_tuple(check, "blocks", 0)
    if len(blocks) != len(widths):
        raise ConfigError(
            f"{net}.blocks={blocks} must have one entry per stage, like {net}.widths={widths} "
            f"({len(widths)} stages)"
        )
    expansion = check.integer("expansion", 1)
    group_size = check.integer("group_size", 1)
    for width, count in zip(widths, blocks):
        if count and (width * expansion) % group_size:
            raise ConfigError(
                f"{net}.group_size={group_size} must divide every stage's expanded width "
                f"{net}.widths[i] * {net}.expansion; {width} * {expansion} = "
                f"{width * expansion} is not a multiple; choose a divisor"
            )
    patch_size = check.integer("patch_size", 1)
    if patch_size & (patch_size - 1):
        raise ConfigError(
            f"{net}.patch_size must be a power of two (1, 2, 4, ...), got {patch_size}"
        )
    check.one_of("resample_filter", RESAMPLE_FILTERS)
    check.one_of("dtype", tuple(DTYPES))
    try:
        stage_plan(spec.sample_shape, len(widths), patch_size)
    except ValueError:
        _, height, width, _ = spec.sample_shape
        scale = 2 ** (len(widths) - 1) * patch_size
        raise ConfigError(
            f"data.height={height} and data.width={width} must be divisible by "
            f"2**(len({net}.widths) - 1) * {net}.patch_size = {scale}; choose sizes that are "
            f"multiples of {scale}, fewer stages or a smaller {net}.patch_size"
        ) from None


def validate_g(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    _validate_net(g_cfg, "g", spec)
    check = Checker(g_cfg, "g")
    check.integer("z_dim", 1)
    check.one_of("output", OUTPUTS)


def validate_d(d_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    _validate_net(d_cfg, "d", spec)


def make_generator(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> R3Generator:
    return R3Generator(
        clip_shape=spec.sample_shape,
        z_dim=g_cfg.z_dim,
        widths=tuple(g_cfg.widths),
        blocks=tuple(g_cfg.blocks),
        expansion=g_cfg.expansion,
        group_size=g_cfg.group_size,
        patch_size=g_cfg.patch_size,
        resample_filter=g_cfg.resample_filter,
        output=g_cfg.output,
        dtype=DTYPES[g_cfg.dtype],
    )


def make_discriminator(d_cfg: config_dict.ConfigDict, spec: DataSpec) -> R3Discriminator:
    return R3Discriminator(
        clip_shape=spec.sample_shape,
        widths=tuple(d_cfg.widths),
        blocks=tuple(d_cfg.blocks),
        expansion=d_cfg.expansion,
        group_size=d_cfg.group_size,
        patch_size=d_cfg.patch_size,
        resample_filter=d_cfg.resample_filter,
        dtype=DTYPES[d_cfg.dtype],
    )
