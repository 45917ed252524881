"""Space-to-depth blocks: a strided convolution as a stride-1 "valid" one over blocks.

The padded input is cut into stride-sized blocks folded into channels (space-to-depth), and the
kernel is zero-padded to a multiple of the stride and folded the same way, so the strided conv
becomes a stride-1 valid conv over blocks with ceil(K / s) taps per dim. Layouts and sizes here
are shared by the "fast" route (``im2col``, ``winograd``, planned by ``fast``) and by the
benchmark-only stride-1-conv route (``benchmarks/s2d_conv.py``).
"""

import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax

# Static description of one strided conv: (input sizes S, kernel sizes K, strides, padding).
Geometry = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...]]


def conv_out_sizes(in_sizes, kernel_sizes, strides, padding) -> tuple[int, ...]:
    """O = (S + lo + hi - K) // stride + 1, per spatial dim."""
    return tuple(
        (s + lo + hi - k) // st + 1
        for s, k, st, (lo, hi) in zip(in_sizes, kernel_sizes, strides, padding)
    )


def transpose_out_sizes(in_sizes, kernel_sizes, strides, padding) -> tuple[int, ...]:
    """O = (S - 1) * stride + K - lo - hi, per spatial dim (PyTorch ConvTranspose)."""
    return tuple(
        (s - 1) * st + k - lo - hi
        for s, k, st, (lo, hi) in zip(in_sizes, kernel_sizes, strides, padding)
    )


def block_layout(geometry: Geometry):
    """(out sizes O, kernel blocks ceil(K / s), padded input sizes, kernel block offsets)."""
    in_sizes, kernel_sizes, strides, padding = geometry
    out_sizes = conv_out_sizes(in_sizes, kernel_sizes, strides, padding)
    kernel_blocks = tuple(-(-k // st) for k, st in zip(kernel_sizes, strides))
    # Exactly the input window that the outputs read, rounded up to whole stride blocks:
    # extra zeros on the high side meet zero kernel taps, extra input rows are cropped.
    padded_sizes = tuple(st * (o - 1 + b) for st, o, b in zip(strides, out_sizes, kernel_blocks))
    offsets = list(itertools.product(*(range(b) for b in kernel_blocks)))
    return out_sizes, kernel_blocks, padded_sizes, offsets


def to_blocks(x: jax.Array, geometry: Geometry) -> jax.Array:
    """[N, *S, C] -> padded (or cropped) space-to-depth blocks [N, *(O - 1 + kb), prod(s) * C]."""
    in_sizes, _, strides, padding = geometry
    padded_sizes = block_layout(geometry)[2]
    pad_config = [(0, 0, 0)]
    pad_config += [
        (lo, size - s - lo, 0) for (lo, _), size, s in zip(padding, padded_sizes, in_sizes)
    ]
    pad_config.append((0, 0, 0))
    return space_to_depth(lax.pad(x, jnp.zeros((), x.dtype), pad_config), strides)


def from_blocks(blocks: jax.Array, channels: int, geometry: Geometry) -> jax.Array:
    """The adjoint of ``to_blocks``: depth-to-space, then drop the padding."""
    x_struct = jax.ShapeDtypeStruct((blocks.shape[0], *geometry[0], channels), blocks.dtype)
    (x,) = jax.linear_transpose(lambda x: to_blocks(x, geometry), x_struct)(blocks)
    return x


def space_to_depth(x: jax.Array, strides: tuple[int, ...]) -> jax.Array:
    """[N, *(B_i * s_i), C] -> [N, *B, prod(s) * C], the channel order being (*s, C)."""
    num_spatial = len(strides)
    batch, channels = x.shape[0], x.shape[-1]
    blocks = tuple(size // st for size, st in zip(x.shape[1:-1], strides))
    split = x.reshape(batch, *(d for b, st in zip(blocks, strides) for d in (b, st)), channels)
    # Axes of `split`: 0 = N, 1 + 2i = block i, 2 + 2i = phase i, last = C.
    order = (0, *(1 + 2 * i for i in range(num_spatial)), *(2 + 2 * i for i in range(num_spatial)))
    moved = split.transpose(*order, split.ndim - 1)
    return moved.reshape(batch, *blocks, math.prod(strides) * channels)


def kernel_to_depth(kernel: jax.Array, strides: tuple[int, ...]) -> jax.Array:
    """[*K, Cin, Cout] -> [*ceil(K / s), prod(s) * Cin, Cout], matching ``space_to_depth``."""
    num_spatial = len(strides)
    kernel_sizes = kernel.shape[:num_spatial]
    blocks = tuple(-(-k // st) for k, st in zip(kernel_sizes, strides))
    # Zero taps past K make the kernel a whole number of stride blocks.
    padded = jnp.pad(
        kernel,
        [(0, b * st - k) for b, st, k in zip(blocks, strides, kernel_sizes)] + [(0, 0), (0, 0)],
    )
    cin, cout = kernel.shape[-2:]
    split = padded.reshape(*(d for b, st in zip(blocks, strides) for d in (b, st)), cin, cout)
    order = (*(2 * i for i in range(num_spatial)), *(2 * i + 1 for i in range(num_spatial)))
    moved = split.transpose(*order, split.ndim - 2, split.ndim - 1)
    return moved.reshape(*blocks, math.prod(strides) * cin, cout)


# im2col products whose patch (or column) matrix would pass this many bytes run over chunks
# of the batch, one after another, so that only one chunk's matrix is alive at a time
# (``batch_chunks``). Measured with XLA's buffer analysis of the video DCGAN step at batch 32:
# temporaries 2173 -> 1492 MiB at 16x64x64 and 670 -> 563 MiB at 16x32x32 (limits of 64 and
# 32 MiB saved less). Chunking the Winograd products too (64 MiB) took the 16x64x64 step to
# 1298 MiB but made it 14 % slower, so they run whole.
MAX_TRANSIENT_BYTES = 16 * 2**20


def batch_chunks(batch: int, transient_bytes: int) -> int:
    """The fewest chunks, a divisor of ``batch``, that bring one chunk's transient operand
    (``transient_bytes`` for the whole batch) within ``MAX_TRANSIENT_BYTES``; 1 keeps the
    single product. One clip per chunk (``batch``) is the most, even if it stays above."""
    for chunks in range(1, batch + 1):
        if batch % chunks == 0 and transient_bytes <= chunks * MAX_TRANSIENT_BYTES:
            return chunks
    return batch


def _chunk_fn(fn, arrays: tuple[jax.Array, ...], chunks: int):
    """i -> ``fn`` on batch chunk i of every array (slices, no copies of the whole)."""
    size = arrays[0].shape[0] // chunks
    return size, lambda i: fn(*(lax.dynamic_slice_in_dim(a, i * size, size) for a in arrays))


def map_batch(fn, arrays: tuple[jax.Array, ...], chunks: int) -> jax.Array:
    """``fn(*arrays)`` for a function that treats each clip of axis 0 on its own, computed
    over ``chunks`` equal batch chunks in sequence (a ``fori_loop`` writing into one output
    buffer: ``lax.map`` would stack copies of the inputs and outputs)."""
    if chunks == 1:
        return fn(*arrays)
    size, chunk = _chunk_fn(fn, arrays, chunks)
    first = chunk(0)
    out = jnp.zeros((arrays[0].shape[0], *first.shape[1:]), first.dtype)
    out = lax.dynamic_update_slice_in_dim(out, first, 0, 0)
    return lax.fori_loop(
        1, chunks, lambda i, out: lax.dynamic_update_slice_in_dim(out, chunk(i), i * size, 0), out
    )


def sum_batch(fn, arrays: tuple[jax.Array, ...], chunks: int) -> jax.Array:
    """``fn(*arrays)`` for a function that sums over the clips of axis 0 (a kernel
    gradient), accumulated over ``chunks`` equal batch chunks in sequence."""
    if chunks == 1:
        return fn(*arrays)
    _, chunk = _chunk_fn(fn, arrays, chunks)
    return lax.fori_loop(1, chunks, lambda i, total: total + chunk(i), chunk(0))


# Memory measures of G's transposed convolutions on the "fast" route (CPU): from this many bytes
# of an array they act on, each one below applies. Measured on vs_pytorch's step at 16x64x64,
# batch 32 (README, "Against PyTorch on the same CPU"); below the size, the shipped configs keep
# their numbers bit for bit.
MEMORY_ORDER_BYTES = 8 * 2**20


def after(x: jax.Array, dep: jax.Array) -> jax.Array:
    """``x`` made to depend on all of ``dep``: ``x + 0 * max(dep)``, the same values.

    XLA:CPU schedules a layer's kernel gradient (needed only by the optimiser) after the
    earlier layers' input gradients, keeping its large inputs alive meanwhile; an input
    gradient that waits for it frees them first. (A max, since XLA folds a sum of a sum into
    one reduction that skips the inner one.) Optimisation barriers cannot order it: XLA:CPU
    removes them before scheduling.
    """
    return x + jnp.zeros((), x.dtype) * jnp.max(dep).astype(x.dtype)


def materialised(fn, x: jax.Array) -> jax.Array:
    """``fn(x)`` computed inside an always-taken conditional, so its result is an array of its
    own: XLA otherwise fuses ``fn`` (a crop, a reshuffle) into every consumer and keeps ``x``
    alive for all of them, also for the backward pass. The predicate reads ``x`` (both branches
    are ``fn``), so XLA cannot resolve the conditional away."""
    first = jnp.ravel(x)[0]
    return lax.cond(first == first, fn, fn, x)
