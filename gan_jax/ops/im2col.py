"""A block conv as one matrix product (im2col), with its adjoint and kernel gradient.

For a strided conv described by a ``blocks.Geometry``:

* ``conv``: the patch matrix of the stride-1 block conv (one row per output position, one
  column block per kernel block) times the folded kernel ``[Kp, Cout]`` (``kernel_matrix``).
* ``conv_transpose``: its adjoint w.r.t. the input, ``col2im(y @ kernel^T)``: one product,
  then each kernel block's columns are added back onto the blocks it reads (exact work: no
  multiplications by inserted zeros, unlike an input-dilated conv).
* ``wgrad``: the kernel gradient ``patches^T @ grad``, with the patch matrix built transposed,
  because XLA:CPU runs a product contracting the long row axis of two row-major operands on
  its slower Eigen path.

Each has a ``jax.custom_vjp`` written with the other two, so gradients of gradients (R1,
WGAN-GP) stay on matrix products. Reverse mode only. A patch or column matrix over
``blocks.MAX_TRANSIENT_BYTES`` (the RGB layers of a 64x64 video GAN: 192 MiB at batch 32) is
built and multiplied one batch chunk at a time, in a loop, instead of whole.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.ops import blocks as blk
from gan_jax.ops import products
from gan_jax.ops.blocks import Geometry


def _block_views(blocks: jax.Array, geometry: Geometry, channel_axis: int) -> jax.Array:
    """The kernel blocks' views of space-to-depth ``blocks``, stacked along ``channel_axis``.

    ``blocks`` is [N, *B, D] (channel_axis -1) or [D, N, *B] (channel_axis 0); view i is the
    block that kernel block i (``blocks.block_layout`` offsets, row-major) reads for each
    output.
    """
    out_sizes, _, _, offsets = blk.block_layout(geometry)
    spatial = 1 if channel_axis == -1 else 2  # first spatial axis of `blocks`
    views = []
    for offset in offsets:
        start = [0] * blocks.ndim
        limit = list(blocks.shape)
        start[spatial : spatial + len(offset)] = offset
        limit[spatial : spatial + len(offset)] = [o + a for o, a in zip(out_sizes, offset)]
        views.append(lax.slice(blocks, start, limit))
    return views[0] if len(views) == 1 else jnp.concatenate(views, axis=channel_axis)


def _patches(x: jax.Array, geometry: Geometry) -> jax.Array:
    """im2col: [N, *S, C] -> [N * prod(O), n_blocks * prod(s) * C].

    Row = output position; column block i = the space-to-depth block that kernel block i
    (``blocks.block_layout`` offsets, row-major) reads for that output.
    """
    patches = _block_views(blk.to_blocks(x, geometry), geometry, channel_axis=-1)
    return patches.reshape(-1, patches.shape[-1])


def _patches_t(x: jax.Array, geometry: Geometry) -> jax.Array:
    """``_patches(x, geometry).T`` built directly: [N, *S, C] -> [n_blocks * prod(s) * C, M].

    The block channels go to the front before the views are cut, so the kernel gradient's
    product reads a row-major [Kp, M] operand. XLA fuses the move into the copy; it reads x
    with a stride (about 4x the time of the forward patches) but costs less than transposing
    the finished patch matrix.
    """
    blocks = jnp.moveaxis(blk.to_blocks(x, geometry), -1, 0)  # [D, N, *B]
    patches_t = _block_views(blocks, geometry, channel_axis=0)
    return patches_t.reshape(patches_t.shape[0], -1)


def _col2blocks(columns: jax.Array, batch: int, geometry: Geometry) -> jax.Array:
    """The adjoint of ``_patches`` up to depth-to-space: [N * prod(O), Kp] -> blocks [N, *B, D].

    Each kernel block's columns are added onto the blocks it read (one shifted pad each);
    ``blocks.from_blocks`` then makes them [N, *S, C].
    """
    out_sizes, kernel_blocks, _, offsets = blk.block_layout(geometry)
    depth = columns.shape[1] // len(offsets)
    shifted = [
        lax.pad(
            columns[:, i * depth : (i + 1) * depth].reshape(batch, *out_sizes, depth),
            jnp.zeros((), columns.dtype),
            [(0, 0, 0), *((a, b - 1 - a, 0) for a, b in zip(offset, kernel_blocks)), (0, 0, 0)],
        )
        for i, offset in enumerate(offsets)
    ]
    return functools.reduce(jnp.add, shifted)


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """[M, K] @ [K, N], both row-major; bf16 ones accumulate in float32 on a CPU with AMX
    (``products.bf16_products``)."""
    return products.dot(a, b, (((1,), (0,)), ((), ())), products.operand_dtype(a.dtype))


def _matmul_nt(a: jax.Array, b: jax.Array) -> jax.Array:
    """[M, K] @ [N, K]^T, as ``_matmul``."""
    return products.dot(a, b, (((1,), (1,)), ((), ())), products.operand_dtype(a.dtype))


def kernel_matrix(kernel: jax.Array, strides: tuple[int, ...]) -> jax.Array:
    """[*K, Ci, Co] -> [Kp, Co] in the column order of the patch matrix."""
    kernel_s2d = blk.kernel_to_depth(kernel, strides)  # [*kb, prod(s) * Ci, Co]
    return kernel_s2d.reshape(-1, kernel.shape[-1])


def _chunks(batch: int, out_sizes, n_columns: int, dtype) -> int:
    """Batch chunks (``blocks.batch_chunks``) for a patch or column matrix of
    [batch * prod(out_sizes), n_columns]."""
    n_bytes = batch * math.prod(out_sizes) * n_columns * jnp.dtype(dtype).itemsize
    return blk.batch_chunks(batch, n_bytes)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv(x: jax.Array, w_mat: jax.Array, geometry: Geometry) -> jax.Array:
    """Strided conv: x [N, *S, Ci], w_mat [Kp, Co] (``kernel_matrix``) -> [N, *O, Co]."""
    out_sizes = blk.block_layout(geometry)[0]

    def product(x):
        return _matmul(_patches(x, geometry), w_mat).reshape(x.shape[0], *out_sizes, -1)

    chunks = _chunks(x.shape[0], out_sizes, w_mat.shape[0], x.dtype)
    return blk.map_batch(product, (x,), chunks)


def _conv_fwd(x, w_mat, geometry):
    return conv(x, w_mat, geometry), (x, w_mat)


def _conv_bwd(geometry, residuals, grad_y):
    x, w_mat = residuals
    return conv_transpose(grad_y, w_mat, geometry), wgrad(x, grad_y, geometry)


conv.defvjp(_conv_fwd, _conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_transpose(y: jax.Array, w_mat: jax.Array, geometry: Geometry) -> jax.Array:
    """Adjoint of ``conv`` w.r.t. x: y [N, *O, Co] -> [N, *S, Ci]."""
    channels = w_mat.shape[0] // len(blk.block_layout(geometry)[3]) // math.prod(geometry[2])

    def product(y):
        columns = _matmul_nt(y.reshape(-1, y.shape[-1]), w_mat)
        return _col2blocks(columns, y.shape[0], geometry)

    chunks = _chunks(y.shape[0], y.shape[1:-1], w_mat.shape[0], y.dtype)
    # Depth-to-space once, after the batch chunks: the chunks write whole blocks (the RGB
    # layers' depth 24), where writing each chunk's 3-channel pixels took up to 3x as long
    # (README, "Against PyTorch on the same CPU"). XLA fuses it into the consumer.
    return blk.from_blocks(blk.map_batch(product, (y,), chunks), channels, geometry)


def _conv_transpose_fwd(y, w_mat, geometry):
    return conv_transpose(y, w_mat, geometry), (y, w_mat)


def _conv_transpose_bwd(geometry, residuals, grad_x):
    # <g, A^T y> = <A g, y>: the input gradient is the conv of g, the kernel one its wgrad.
    y, w_mat = residuals
    grad_w = wgrad(grad_x, y, geometry)
    grad_y = conv(grad_x, w_mat, geometry)
    if grad_x.nbytes >= blk.MEMORY_ORDER_BYTES:
        grad_y = blk.after(grad_y, grad_w)
    return grad_y, grad_w


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def wgrad(x: jax.Array, grad_y: jax.Array, geometry: Geometry) -> jax.Array:
    """Kernel gradient ``patches(x)^T @ grad_y`` [Kp, Co].

    The patch matrix is built already transposed (``_patches_t``) so that the product is a
    plain row-major ``[Kp, M] @ [M, Co]``: XLA:CPU hands that form to YNNPACK, while a
    product contracting the long row axis M of both operands runs on its slower Eigen path.
    """

    def product(x, grad_y):
        return _matmul(_patches_t(x, geometry), grad_y.reshape(-1, grad_y.shape[-1]))

    n_columns = len(blk.block_layout(geometry)[3]) * math.prod(geometry[2]) * x.shape[-1]
    chunks = _chunks(x.shape[0], grad_y.shape[1:-1], n_columns, x.dtype)
    return blk.sum_batch(product, (x, grad_y), chunks)


def _wgrad_fwd(x, grad_y, geometry):
    return wgrad(x, grad_y, geometry), (x, grad_y)


def _wgrad_bwd(geometry, residuals, grad_w):
    # f(x, g) = P(x)^T g is bilinear: d/dx <C, f> = P^T(g C^T) = A^T, d/dg <C, f> = P(x) C.
    x, grad_y = residuals
    return conv_transpose(grad_y, grad_w, geometry), conv(x, grad_w, geometry)


wgrad.defvjp(_wgrad_fwd, _wgrad_bwd)
