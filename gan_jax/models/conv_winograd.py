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
``O = B - k + 1``; the transformed input is ``[P, R, Kd]`` and the kernel ``[P, Cout, Kd]``,
with P = 3 ** (transformed dims), R = N * prod(tiles) and Kd = prod(direct taps) * D.

As in ``conv_ops``, the conv, its adjoint and its kernel gradient have a ``jax.custom_vjp``
each, written with one another, so gradients of gradients stay on this route.
"""

import functools

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


def _input_transform(blocks: jax.Array, spec: Spec, transposed: bool = False) -> jax.Array:
    """[N, *B, D] -> [P, R, Kd], or [P, Kd, R] when ``transposed``.

    Along a transformed dim, each tile's three blocks become its positions
    (d0 - d1, d1, d2 - d1); a direct dim's taps join Kd (im2col). One dim at a time, the
    positions are stacked in front, so each pass streams whole rows and the last one
    leaves [P, R, Kd] without a transpose. ``transposed`` then moves Kd before the rows in
    one more pass: a plain copy, faster than reading the blocks across their rows.
    """
    _, _, kernel_sizes, wino, _ = spec
    out_sizes = _out_sizes(spec)
    x, n_positions = blocks, 0
    for d in reversed(range(len(wino))):
        axis, out = n_positions + 1 + d, out_sizes[d]
        if wino[d]:
            tiles = out // 2
            even = lax.slice_in_dim(x, 0, 2 * tiles + 1, stride=2, axis=axis)  # tiles + 1
            odd = lax.slice_in_dim(x, 1, 2 * tiles, stride=2, axis=axis)  # tiles
            first = lax.slice_in_dim(even, 0, tiles, axis=axis)
            last = lax.slice_in_dim(even, 1, tiles + 1, axis=axis)
            x = jnp.stack([first - odd, odd, last - odd])
            n_positions += 1
        else:
            taps = [lax.slice_in_dim(x, j, j + out, axis=axis) for j in range(kernel_sizes[d])]
            x = jnp.concatenate(taps, axis=-1) if len(taps) > 1 else taps[0]
    return _positions_to_matrix(x, n_positions, transposed)


def _positions_to_matrix(x: jax.Array, n_positions: int, transposed: bool) -> jax.Array:
    """[*(3,) * n, N, *tiles, C] -> [P, R, C], or [P, C, R] when ``transposed``.

    The transposed form is a transpose followed by a reshape that merges the row axes:
    XLA cannot fold that into the product (as it folds a plain transpose, into a form
    XLA:CPU runs on its slow Eigen path), so it stays one fast copy.
    """
    p = 3**n_positions
    if transposed:
        moved = jnp.moveaxis(x, -1, n_positions)
        return moved.reshape(p, x.shape[-1], -1)
    return x.reshape(p, -1, x.shape[-1])


def _input_transform_t(v: jax.Array, spec: Spec) -> jax.Array:
    """The adjoint of ``_input_transform``: [P, R, Kd] -> [N, *B, D].

    Along a transformed dim, even blocks take u0 of their tile and u2 of the tile before,
    odd blocks u1 - u0 - u2 of their tile; a direct dim's taps are added back onto the
    blocks they read (col2im).
    """
    batch, _, kernel_sizes, wino, depth = spec
    n_wino = sum(wino)
    direct_taps = [k for k, w in zip(kernel_sizes, wino) if not w]
    x = v.reshape(*(3,) * n_wino, batch, *_tile_sizes(spec), *direct_taps, depth)
    zero = jnp.zeros((), v.dtype)
    n_front, n_taps = n_wino, len(direct_taps)
    for d in range(len(wino)):
        if not wino[d]:
            continue
        n_front -= 1
        axis = n_front + 1 + d  # in x[i], which drops the leading position axis
        u0, u1, u2 = x[0], x[1], x[2]
        config = [(0, 0, 0)] * u0.ndim
        high, low = list(config), list(config)
        high[axis], low[axis] = (0, 1, 0), (1, 0, 0)
        even = lax.pad(u0, zero, high) + lax.pad(u2, zero, low)  # tiles + 1
        odd = lax.pad(u1 - u0 - u2, zero, high)
        pair = jnp.stack([even, odd], axis=axis + 1)
        merged = pair.reshape(*pair.shape[:axis], -1, *pair.shape[axis + 2 :])
        x = lax.slice_in_dim(merged, 0, merged.shape[axis] - 1, axis=axis)
    # [N, *B (direct dims still outputs), *direct taps, D]
    tap_axis = x.ndim - 1 - n_taps
    for d in range(len(wino)):
        if wino[d]:
            continue
        k = kernel_sizes[d]
        pieces = []
        for j in range(k):
            piece = lax.index_in_dim(x, j, axis=tap_axis, keepdims=False)
            config = [(0, 0, 0)] * piece.ndim
            config[1 + d] = (j, k - 1 - j, 0)
            pieces.append(lax.pad(piece, zero, config))
        x = functools.reduce(jnp.add, pieces)
    return x


def _output_transform(m: jax.Array, spec: Spec) -> jax.Array:
    """[P, R, Co] -> [N, *O, Co]: (m0 + m1, m1 + m2) along each transformed dim."""
    batch, _, _, wino, _ = spec
    n_front = sum(wino)
    x = m.reshape(*(3,) * n_front, batch, *_tile_sizes(spec), m.shape[-1])
    for d in range(len(wino)):
        if not wino[d]:
            continue
        n_front -= 1
        axis = n_front + 1 + d
        m0, m1, m2 = x[0], x[1], x[2]
        pair = jnp.stack([m0 + m1, m1 + m2], axis=axis + 1)
        x = pair.reshape(*pair.shape[:axis], -1, *pair.shape[axis + 2 :])
    return x


def _output_transform_t(g: jax.Array, spec: Spec) -> jax.Array:
    """The adjoint of ``_output_transform``: [N, *O, Co] -> [P, R, Co]."""
    wino = spec[3]
    x, n_positions = g, 0
    for d in reversed(range(len(wino))):
        if not wino[d]:
            continue
        axis = n_positions + 1 + d
        g0 = lax.slice_in_dim(x, 0, x.shape[axis], stride=2, axis=axis)
        g1 = lax.slice_in_dim(x, 1, x.shape[axis], stride=2, axis=axis)
        x = jnp.stack([g0, g0 + g1, g1])
        n_positions += 1
    return _positions_to_matrix(x, n_positions, transposed=False)


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
    """Gradient w.r.t. the transformed kernel: V(blocks)^T @ A^T(grad_y), [P, Kd, Co].

    V is built transposed (``_positions_to_matrix``): XLA:CPU hands YNNPACK only products
    contracting the last axis of the left operand.
    """
    v_t = _input_transform(blocks, spec, transposed=True)
    return _bmm(v_t, _output_transform_t(grad_y, spec))


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
