"""Stride-1 "valid" convolutions whose two-tap dims run as Winograd F(2, 2) products.

The fast CPU route (``conv_ops``) turns every stride-2, kernel-4 convolution into a stride-1
valid conv with two taps per dim over space-to-depth blocks. Along such a dim two
neighbouring outputs

    y0 = d0 g0 + d1 g1,    y1 = d1 g0 + d2 g1

take three products instead of four (Winograd's minimal filtering F(2, 2); Lavin & Gray 2016):

    m0 = (d0 - d1) g0,    m1 = d1 (g0 + g1),    m2 = (d2 - d1) g1;    y0 = m0 + m1,  y1 = m1 + m2.

The transforms only add and subtract, so the rounding is that of the direct sum. With every
dim transformed, a 3-D conv is 27 products of ``[tiles, D] @ [D, Cout]`` where the direct one
is 64 of them (0.42 of the multiply-adds), batched into one ``dot_general``. Dims that do not
qualify (other tap counts, an odd number of outputs) stay direct: their taps join the
contraction, as in im2col.

Layouts: blocks ``[N, *B, D]``, kernel ``[*k, D, Cout]``, output ``[N, *O, Cout]`` with
``O = B - k + 1``; the transformed input is ``[P, R, Kd]`` and the kernel ``[P, Kd, Cout]``,
with P = 3 ** (transformed dims), R = N * prod(tiles) and Kd = prod(direct taps) * D.

As in ``conv_ops``, the conv, its adjoint and its kernel gradient have a ``jax.custom_vjp``
each, written with one another, so gradients of gradients stay on this route.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

# Static description: (batch N, block sizes B, kernel taps k, transformed dims, depth D).
Spec = tuple[int, tuple[int, ...], tuple[int, ...], tuple[bool, ...], int]


def winograd_dims(block_sizes, kernel_sizes) -> tuple[bool, ...]:
    """Per dim, whether it runs as F(2, 2): two taps and an even number (>= 2) of outputs."""
    return tuple(
        k == 2 and (b - k + 1) >= 2 and (b - k + 1) % 2 == 0
        for b, k in zip(block_sizes, kernel_sizes)
    )


def _out_sizes(spec: Spec) -> tuple[int, ...]:
    _, block_sizes, kernel_sizes, _, _ = spec
    return tuple(b - k + 1 for b, k in zip(block_sizes, kernel_sizes))


def _tile_sizes(spec: Spec) -> tuple[int, ...]:
    return tuple(o // 2 if w else o for o, w in zip(_out_sizes(spec), spec[3]))


def transform_kernel(kernel: jax.Array, wino: tuple[bool, ...]) -> jax.Array:
    """[*k, D, Co] -> [P, Kd, Co]: (g0, g0 + g1, g1) along each transformed dim."""
    num_spatial = len(wino)
    for d in range(num_spatial):
        if wino[d]:
            g0 = lax.index_in_dim(kernel, 0, axis=d, keepdims=False)
            g1 = lax.index_in_dim(kernel, 1, axis=d, keepdims=False)
            kernel = jnp.stack([g0, g0 + g1, g1], axis=d)
    wino_axes = [d for d in range(num_spatial) if wino[d]]
    direct_axes = [d for d in range(num_spatial) if not wino[d]]
    moved = kernel.transpose(*wino_axes, *direct_axes, num_spatial, num_spatial + 1)
    return moved.reshape(3 ** len(wino_axes), -1, kernel.shape[-1])


def _input_positions(blocks: jax.Array, spec: Spec) -> jax.Array:
    """[N, *B, D] -> [N, t_0, p_0, t_1, p_1, ..., D]: per dim, tiles and their tap positions.

    Transformed dims: p = (d0 - d1, d1, d2 - d1) of each tile's three blocks; direct dims:
    p = the k blocks each output reads (im2col).
    """
    _, block_sizes, kernel_sizes, wino, _ = spec
    out_sizes = _out_sizes(spec)
    x = blocks
    # From the last dim back, so the axis of each dim still to do is 1 + d.
    for d in reversed(range(len(block_sizes))):
        axis, out = 1 + d, out_sizes[d]
        if wino[d]:
            tiles = out // 2
            even = lax.slice_in_dim(x, 0, 2 * tiles + 1, stride=2, axis=axis)  # tiles + 1
            odd = lax.slice_in_dim(x, 1, 2 * tiles, stride=2, axis=axis)  # tiles
            first = lax.slice_in_dim(even, 0, tiles, axis=axis)
            last = lax.slice_in_dim(even, 1, tiles + 1, axis=axis)
            parts = [first - odd, odd, last - odd]
        else:
            parts = [lax.slice_in_dim(x, j, j + out, axis=axis) for j in range(kernel_sizes[d])]
        x = jnp.stack(parts, axis=axis + 1)
    return x


def _input_transform(blocks: jax.Array, spec: Spec, transposed: bool = False) -> jax.Array:
    """[N, *B, D] -> [P, R, Kd], or [P, Kd, R] when ``transposed`` (for the kernel gradient:
    a row-major [Kd, R] @ [R, Co] runs on YNNPACK, a product contracting R of both does not)."""
    wino = spec[3]
    x = _input_positions(blocks, spec)
    num_spatial = len(wino)
    tile_axes = [1 + 2 * d for d in range(num_spatial)]
    wino_pos = [2 + 2 * d for d in range(num_spatial) if wino[d]]
    direct_pos = [2 + 2 * d for d in range(num_spatial) if not wino[d]]
    depth_axis = x.ndim - 1
    p = 3 ** len(wino_pos)
    if transposed:
        moved = x.transpose(*wino_pos, *direct_pos, depth_axis, 0, *tile_axes)
        return moved.reshape(p, -1, math.prod(moved.shape[-1 - num_spatial :]))
    moved = x.transpose(*wino_pos, 0, *tile_axes, *direct_pos, depth_axis)
    return moved.reshape(
        p, math.prod(moved.shape[len(wino_pos) : len(wino_pos) + 1 + num_spatial]), -1
    )


def _input_transform_t(v: jax.Array, spec: Spec) -> jax.Array:
    """The adjoint of ``_input_transform``: [P, R, Kd] -> [N, *B, D]."""
    batch, block_sizes, _, _, depth = spec
    blocks_struct = jax.ShapeDtypeStruct((batch, *block_sizes, depth), v.dtype)
    (blocks,) = jax.linear_transpose(lambda b: _input_transform(b, spec), blocks_struct)(v)
    return blocks


def _output_transform(m: jax.Array, spec: Spec) -> jax.Array:
    """[P, R, Co] -> [N, *O, Co]: (m0 + m1, m1 + m2) along each transformed dim."""
    batch, _, _, wino, _ = spec
    num_spatial, n_wino = len(wino), sum(wino)
    x = m.reshape(*(3,) * n_wino, batch, *_tile_sizes(spec), m.shape[-1])
    # To [N, t_0, (p_0), t_1, (p_1), ..., Co], each transformed dim's positions after its tiles.
    order, w = [n_wino], 0
    for d in range(num_spatial):
        order.append(n_wino + 1 + d)
        if wino[d]:
            order.append(w)
            w += 1
    x = x.transpose(*order, x.ndim - 1)
    for d in reversed(range(num_spatial)):
        if not wino[d]:
            continue
        axis = 1 + d + sum(wino[:d])  # this dim's tile axis; later dims are already merged
        m0, m1, m2 = (lax.index_in_dim(x, i, axis=axis + 1, keepdims=False) for i in range(3))
        pair = jnp.stack([m0 + m1, m1 + m2], axis=axis + 1)
        x = pair.reshape(*pair.shape[:axis], -1, *pair.shape[axis + 2 :])
    return x


def _output_transform_t(g: jax.Array, spec: Spec) -> jax.Array:
    """The adjoint of ``_output_transform``: [N, *O, Co] -> [P, R, Co]."""
    wino = spec[3]
    num_spatial = len(wino)
    x = g
    for d in reversed(range(num_spatial)):
        if not wino[d]:
            continue
        axis = 1 + d
        pairs = x.reshape(*x.shape[:axis], x.shape[axis] // 2, 2, *x.shape[axis + 1 :])
        g0, g1 = (lax.index_in_dim(pairs, i, axis=axis + 1, keepdims=False) for i in range(2))
        x = jnp.stack([g0, g0 + g1, g1], axis=axis + 1)
    # Axes now: N, then per dim its tiles and (transformed dims) its 3 positions, then Co.
    pos_axes, tile_axes, a = [], [], 1
    for d in range(num_spatial):
        tile_axes.append(a)
        if wino[d]:
            pos_axes.append(a + 1)
        a += 2 if wino[d] else 1
    moved = x.transpose(*pos_axes, 0, *tile_axes, x.ndim - 1)
    return moved.reshape(3 ** len(pos_axes), -1, g.shape[-1])


def _bmm(a: jax.Array, b: jax.Array) -> jax.Array:
    """[P, M, K] @ [P, K, N] -> [P, M, N]."""
    return lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))))


def _bmm_nt(a: jax.Array, b: jax.Array) -> jax.Array:
    """[P, M, N] @ [P, K, N]^T -> [P, M, K]."""
    return lax.dot_general(a, b, (((2,), (2,)), ((0,), (0,))))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(blocks: jax.Array, w: jax.Array, spec: Spec) -> jax.Array:
    """blocks [N, *B, D], w [P, Kd, Co] (``transform_kernel``) -> [N, *O, Co]."""
    return _output_transform(_bmm(_input_transform(blocks, spec), w), spec)


def _conv_fwd(blocks, w, spec):
    return _conv(blocks, w, spec), (blocks, w)


def _conv_bwd(spec, residuals, grad_y):
    blocks, w = residuals
    return _conv_t(grad_y, w, spec), _wgrad(blocks, grad_y, spec)


_conv.defvjp(_conv_fwd, _conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_t(y: jax.Array, w: jax.Array, spec: Spec) -> jax.Array:
    """The adjoint of ``_conv`` w.r.t. blocks: y [N, *O, Co] -> [N, *B, D]."""
    return _input_transform_t(_bmm_nt(_output_transform_t(y, spec), w), spec)


def _conv_t_fwd(y, w, spec):
    return _conv_t(y, w, spec), (y, w)


def _conv_t_bwd(spec, residuals, grad_blocks):
    # <g, A^T y> = <A g, y>: the input gradient is the conv of g, the kernel one its wgrad.
    y, w = residuals
    return _conv(grad_blocks, w, spec), _wgrad(grad_blocks, y, spec)


_conv_t.defvjp(_conv_t_fwd, _conv_t_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _wgrad(blocks: jax.Array, grad_y: jax.Array, spec: Spec) -> jax.Array:
    """Gradient w.r.t. the transformed kernel: V(blocks)^T @ A^T(grad_y), [P, Kd, Co]."""
    return _bmm(_input_transform(blocks, spec, transposed=True), _output_transform_t(grad_y, spec))


def _wgrad_fwd(blocks, grad_y, spec):
    return _wgrad(blocks, grad_y, spec), (blocks, grad_y)


def _wgrad_bwd(spec, residuals, grad_w):
    # Bilinear in (blocks, grad_y), as in conv_ops._mm_wgrad_bwd.
    blocks, grad_y = residuals
    return _conv_t(grad_y, grad_w, spec), _conv(blocks, grad_w, spec)


_wgrad.defvjp(_wgrad_fwd, _wgrad_bwd)


def _spec(batch, block_sizes, kernel: jax.Array) -> Spec:
    num_spatial = kernel.ndim - 2
    kernel_sizes = tuple(kernel.shape[:num_spatial])
    wino = winograd_dims(block_sizes, kernel_sizes)
    if not any(wino):
        raise ValueError(
            f"conv_winograd: no dim of blocks {block_sizes} with kernel {kernel_sizes} has two "
            "taps and an even number of outputs; use the direct route for this conv."
        )
    return (batch, tuple(block_sizes), kernel_sizes, wino, kernel.shape[-2])


def conv(blocks: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1 valid conv: blocks [N, *B, D], kernel [*k, D, Co] -> [N, *(B - k + 1), Co].

    Raises:
        ValueError: if no dim qualifies (``winograd_dims``).
    """
    spec = _spec(blocks.shape[0], blocks.shape[1:-1], kernel)
    return _conv(blocks, transform_kernel(kernel, spec[3]), spec)


def conv_transpose(y: jax.Array, kernel: jax.Array, block_sizes) -> jax.Array:
    """The adjoint of ``conv`` w.r.t. blocks: y [N, *O, Co], kernel [*k, D, Co] -> [N, *B, D].

    Raises:
        ValueError: if no dim qualifies (``winograd_dims``).
    """
    spec = _spec(y.shape[0], block_sizes, kernel)
    return _conv_t(y, transform_kernel(kernel, spec[3]), spec)
