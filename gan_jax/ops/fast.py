"""The "fast" CPU route: every strided or transposed conv as matrix products on blocks.

XLA:CPU runs convolutions far below its matrix-product speed: strided and input-dilated ones
(every transposed convolution and every strided convolution's input gradient) through a slow
generic loop, stride-1 ones at a fraction of the dot peak. This route runs every convolution,
forward and backward, as ``dot_general`` products, which XLA:CPU hands to YNNPACK. It plans
each conv on space-to-depth blocks (``blocks``) and picks the products:

* Dims with a single output position are cropped to the kernel taps that meet real input.
* Block convs with two taps along a dim with an even number of outputs (every kernel-4,
  stride-2 layer of the video GAN past the RGB ones) run as Winograd F(2, 2) / F(4, 2)
  products (``winograd``): 3 products per 2 outputs (5 per 4) along each such dim instead
  of 4 (8), as one batched ``dot_general`` per direction.
* Others run as one im2col product (``im2col``); where a dim's edge outputs waste many taps
  on padding, its outputs are split into regions cropped to the taps that meet input.

``conv`` and ``conv_transpose`` take arguments already checked by ``gan_jax.ops.conv``.
Reverse mode only: the products have custom VJPs (closed under differentiation, so gradients
of gradients stay on this route), which rule out ``jax.jvp`` / ``jacfwd``.
"""

import contextlib
import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.ops import blocks as blk
from gan_jax.ops import im2col, settings, winograd
from gan_jax.ops.blocks import Geometry

# A dim's outputs are split into regions (below) only where that saves at least this share
# of its products, and only into regions of at least this many patch rows: smaller products
# run well below YNNPACK's peak and every region costs its own copies.
_MIN_SPLIT_SAVING = 0.1
_MIN_SPLIT_ROWS = 256
# Convs with a dim that qualifies for Winograd products (``winograd``) take them instead
# of the split: 3 products per 2 outputs (or 5 per 4) along that dim, padding taps included.
# Thin convs (block depth under 64: the RGB layers) and ones with under 128 tiles stay on
# im2col, which measured faster there.
_WINOGRAD = True
_WINOGRAD_MIN_DEPTH = 64
_WINOGRAD_MIN_ROWS = 128
# ``GAN_JAX_CONV_MEMORY=low`` raises that floor: the wide layers of few tiles (the 128-channel
# 4x8x8 level of the benchmark's DCGAN at batch 32) then run on im2col and keep no transformed
# kernels and inputs of their own. Measured on an Intel Xeon (AVX-512, AMX), vs_pytorch's step
# at batch 32: peak host memory 502 -> 446 MiB at 16x32x32 and 1189 -> 1028 MiB at 16x64x64,
# the step 2 % and 6 % slower (README, "Against PyTorch on the same CPU").
MEMORY_ENV_VAR = "GAN_JAX_CONV_MEMORY"
_MEMORY_CHOICES = {"speed": "the fastest products", "low": "less memory, a few % slower"}
_LOW_MEMORY_WINOGRAD_MIN_ROWS = 256


@functools.cache
def low_memory() -> bool:
    """Whether the route trades speed for memory, decided on the first call of the process
    from ``GAN_JAX_CONV_MEMORY`` (``speed``, the default, or ``low``); ``low_memory.cache_clear()``
    decides again.

    Raises:
        ValueError: if ``GAN_JAX_CONV_MEMORY`` holds another value.
    """
    return settings.choice(MEMORY_ENV_VAR, _MEMORY_CHOICES) == "low"


@contextlib.contextmanager
def memory_route(low: bool):
    """Within the block ``low_memory()`` returns ``low``. It acts when a function is traced:
    jit what runs inside the block."""
    with settings.overridden(MEMORY_ENV_VAR, "low" if low else "speed", low_memory):
        yield


def conv(x, kernel, strides, padding) -> jax.Array:
    """Strided conv x [N, *S, Ci], kernel [*K, Ci, Co] -> [N, *O, Co] as matrix products."""
    num_spatial = x.ndim - 2
    plan = _split_plan(
        x.shape[1:-1], kernel.shape[:num_spatial], strides, padding, x.shape[0], x.shape[-1]
    )
    if plan is None:
        return _conv_dense(x, kernel, strides, padding)
    d, regions = plan
    pieces = []
    for region in regions:
        start, stop = _region_window(region, strides[d], padding[d][0])
        pieces.append(
            _conv_dense(
                lax.slice_in_dim(x, start, stop, axis=1 + d),
                lax.slice_in_dim(kernel, region[2], region[3], axis=d),
                strides,
                _without_padding(padding, d),
            )
        )
    return jnp.concatenate(pieces, axis=1 + d)


def conv_transpose(x, kernel, strides, padding) -> jax.Array:
    """Transposed conv (PyTorch semantics, as ``gan_jax.ops.conv.conv_transpose``) as matrix
    products: the adjoint of the conv from its output back to x."""
    num_spatial = x.ndim - 2
    kernel_sizes = tuple(kernel.shape[:num_spatial])
    out_sizes = blk.transpose_out_sizes(x.shape[1:-1], kernel_sizes, strides, padding)
    # Split the conv this op is the adjoint of (from the output back to x) as in ``conv``;
    # the adjoint of its concatenation adds each region's output rows back in place.
    plan = _split_plan(out_sizes, kernel_sizes, strides, padding, x.shape[0], kernel.shape[-1])
    if plan is None:
        return _conv_transpose_dense(x, kernel, strides, padding)
    d, regions = plan
    y = None
    for region in regions:
        start, stop = _region_window(region, strides[d], padding[d][0])
        piece = _conv_transpose_dense(
            lax.slice_in_dim(x, region[0], region[1], axis=1 + d),
            lax.slice_in_dim(kernel, region[2], region[3], axis=d),
            strides,
            _without_padding(padding, d),
        )
        placement = [(0, 0, 0)] * x.ndim
        placement[1 + d] = (start, out_sizes[d] - stop, 0)
        piece = lax.pad(piece, jnp.zeros((), piece.dtype), placement)
        y = piece if y is None else y + piece
    return y


def _single_output_crops(in_sizes, kernel_sizes, padding, out_sizes):
    """Per spatial dim with a single output position, the (input start, kernel start, kernel
    stop) of the taps that meet real input; None for the other dims.

    A window that starts in the low padding or ends in the high one multiplies zeros with
    those taps; with one output the taps that meet input form one range, so cropping kernel
    and input to it (stride 1: one output does not move) gives the same result with less
    work. The video GAN's smallest blocks (T 1 <-> 2, kernel 4, padding 1) halve their
    products.
    """
    crops = []
    for size, k, (lo, _), out in zip(in_sizes, kernel_sizes, padding, out_sizes):
        start, stop = max(0, lo), min(k, size + lo)
        crops.append((start - lo, start, stop) if out == 1 and stop > start else None)
    return crops


def _tap_regions(size: int, k: int, stride: int, lo: int, out: int):
    """One dim's outputs grouped by the taps that meet real input.

    Returns:
        [(o_start, o_stop, j_start, j_stop)]: outputs o_start..o_stop-1 read input with
        kernel taps j_start..j_stop-1 only; contiguous and in order.
    """
    regions = []
    for o in range(out):
        taps = (max(0, lo - stride * o), min(k, size + lo - stride * o))
        if regions and regions[-1][2:] == taps:
            regions[-1] = (regions[-1][0], o + 1, *taps)
        else:
            regions.append((o, o + 1, *taps))
    return regions


def _split_plan(in_sizes, kernel_sizes, strides, padding, batch: int, channels: int):
    """The dim whose edge outputs waste the most taps on padding, and its regions, or None.

    The block route multiplies ceil(K / s) * s taps per output, zeros included. Splitting a
    dim's outputs into an interior region (no padding) and its edge outputs (single-output
    regions, cropped to their valid taps) leaves only the products that meet real input:
    a quarter of the work of the video GAN's T 4 -> 2 blocks, an eighth of its T 8 -> 4 ones.
    """
    out_sizes = blk.conv_out_sizes(in_sizes, kernel_sizes, strides, padding)
    geometry = (tuple(in_sizes), tuple(kernel_sizes), tuple(strides), tuple(padding))
    if any(_winograd_dims(geometry, batch, channels)):
        return None
    best = None
    for d, (size, k, st, (lo, hi), out) in enumerate(
        zip(in_sizes, kernel_sizes, strides, padding, out_sizes)
    ):
        if out < 2 or (lo == 0 and hi == 0):
            continue
        regions = _tap_regions(size, k, st, lo, out)
        if len(regions) > 3 or any(j1 <= j0 for _, _, j0, j1 in regions):
            continue
        rows_per_output = batch * math.prod(out_sizes) // out
        if min(o1 - o0 for o0, o1, _, _ in regions) * rows_per_output < _MIN_SPLIT_ROWS:
            continue
        full = out * -(-k // st) * st
        split = sum(
            j1 - j0 if o1 - o0 == 1 else (o1 - o0) * -(-(j1 - j0) // st) * st
            for o0, o1, j0, j1 in regions
        )
        saving = 1.0 - split / full
        if saving >= _MIN_SPLIT_SAVING and (best is None or saving > best[0]):
            best = (saving, d, regions)
    return None if best is None else best[1:]


def _region_window(region, stride: int, lo: int) -> tuple[int, int]:
    """The input rows [start, stop) that a region's outputs read with its taps."""
    o0, o1, j0, j1 = region
    return stride * o0 - lo + j0, stride * (o1 - 1) - lo + j1


def _without_padding(padding, d: int):
    return tuple((0, 0) if i == d else p for i, p in enumerate(padding))


def _crop_valid_taps(kernel, in_sizes, strides, padding):
    """Crops a block conv's single-output dims (``_single_output_crops``).

    Args:
        kernel: [*K, Ci, Co]; in_sizes, strides, padding: the conv's, one per spatial dim.

    Returns:
        (cropped kernel, input windows [(start, size)] per dim, geometry of the cropped conv).
    """
    num_spatial = len(in_sizes)
    kernel_sizes = kernel.shape[:num_spatial]
    out_sizes = blk.conv_out_sizes(in_sizes, kernel_sizes, strides, padding)
    strides, padding = list(strides), list(padding)
    windows = [(0, size) for size in in_sizes]
    crops = _single_output_crops(in_sizes, kernel_sizes, padding, out_sizes)
    for d, crop in enumerate(crops):
        if crop is not None:
            in_start, k_start, k_stop = crop
            kernel = lax.slice_in_dim(kernel, k_start, k_stop, axis=d)
            windows[d] = (in_start, k_stop - k_start)
            strides[d], padding[d] = 1, (0, 0)
    sizes = tuple(size for _, size in windows)
    geometry = (sizes, tuple(kernel.shape[:num_spatial]), tuple(strides), tuple(padding))
    return kernel, windows, geometry


def _winograd_dims(geometry: Geometry, batch: int, channels: int) -> tuple[int, ...]:
    """Per dim of a block conv, its Winograd output tile (``winograd.winograd_dims``;
    0: direct); all 0 for thin or small convs (fewer tiles under ``low_memory()``), or when
    the route is switched off.
    Single-output dims never qualify, cropped or not."""
    if not _WINOGRAD:
        return (0,) * len(geometry[0])
    out_sizes, kernel_blocks, _, _ = blk.block_layout(geometry)
    block_sizes = tuple(o - 1 + b for o, b in zip(out_sizes, kernel_blocks))
    dims = winograd.winograd_dims(block_sizes, kernel_blocks)
    tiles = batch * math.prod(o // w if w else o for o, w in zip(out_sizes, dims))
    depth = math.prod(geometry[2]) * channels
    min_rows = _LOW_MEMORY_WINOGRAD_MIN_ROWS if low_memory() else _WINOGRAD_MIN_ROWS
    if depth < _WINOGRAD_MIN_DEPTH or tiles < min_rows:
        return (0,) * len(dims)
    return dims


def _conv_dense(x, kernel, strides, padding) -> jax.Array:
    """One block conv (``im2col.conv``, or Winograd products where a dim qualifies), its
    single-output dims cropped to their valid taps."""
    kernel, windows, geometry = _crop_valid_taps(kernel, x.shape[1:-1], strides, padding)
    for d, (start, size) in enumerate(windows):
        x = lax.slice_in_dim(x, start, start + size, axis=1 + d)
    if any(_winograd_dims(geometry, x.shape[0], x.shape[-1])):
        return winograd.conv(blk.to_blocks(x, geometry), blk.kernel_to_depth(kernel, geometry[2]))
    return im2col.conv(x, im2col.kernel_matrix(kernel, geometry[2]), geometry)


def _conv_transpose_dense(x, kernel, strides, padding) -> jax.Array:
    """The adjoint of ``_conv_dense`` from the output back to x (crops placed back)."""
    num_spatial = x.ndim - 2
    out_sizes = blk.transpose_out_sizes(x.shape[1:-1], kernel.shape[:num_spatial], strides, padding)
    kernel, windows, geometry = _crop_valid_taps(kernel, out_sizes, strides, padding)
    kernel_t = jnp.swapaxes(kernel, -1, -2)  # [*K, Cout, Cin]: the conv this op is adjoint to.
    if any(_winograd_dims(geometry, x.shape[0], kernel_t.shape[-2])):
        kernel_s2d = blk.kernel_to_depth(kernel_t, geometry[2])
        block_sizes = tuple(o - 1 + b for o, b in zip(x.shape[1:-1], kernel_s2d.shape))
        out_blocks = winograd.conv_transpose(x, kernel_s2d, block_sizes)
        from_blocks = functools.partial(
            blk.from_blocks, channels=kernel_t.shape[-2], geometry=geometry
        )
        if out_blocks.nbytes >= blk.MEMORY_ORDER_BYTES:
            # Its consumers (batch norm, the next layer, their backward passes) read the
            # cropped output, not the larger blocks (G's 8x32x32-level layer at 16x64x64:
            # 64 MiB against 108 MiB kept for the backward pass).
            y = blk.materialised(from_blocks, out_blocks)
        else:
            y = from_blocks(out_blocks)
    else:
        y = im2col.conv_transpose(x, im2col.kernel_matrix(kernel_t, geometry[2]), geometry)
    placement = [(0, 0, 0)] + [
        (start, total - start - size, 0) for (start, size), total in zip(windows, out_sizes)
    ]
    placement.append((0, 0, 0))
    if any(p != (0, 0, 0) for p in placement):
        y = lax.pad(y, jnp.zeros((), y.dtype), placement)
    return y
