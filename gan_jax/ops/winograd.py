"""Stride-1 "valid" convolutions whose two-tap dims run as Winograd F(m, 2) products.

The fast CPU route (``fast``) turns every stride-2, kernel-4 convolution into a stride-1 valid
conv with two taps per dim over space-to-depth blocks (``blocks``). Along such a dim two
neighbouring outputs

    y0 = d0 g0 + d1 g1,    y1 = d1 g0 + d2 g1

take three products instead of four (Winograd's minimal filtering F(2, 2); Lavin & Gray 2016):

    m0 = (d0 - d1) g0,    m1 = d1 (g0 + g1),    m2 = (d2 - d1) g1;    y0 = m0 + m1,  y1 = m1 + m2.

F(2, 2) only adds and subtracts. Dims with 8 or more outputs (a multiple of 4) take F(4, 2):
five products per four outputs, with coefficients up to 8 and 1/6 that round a little more
(and dims of exactly 4 outputs, as one tile, where the products keep enough rows).
Over the 3 dims of the video GAN's 4 x 16 x 16-output block, 3 * 5 * 5 products of
``[tiles, D] @ [D, Cout]`` per 2 * 4 * 4 outputs replace 8 each (0.29 of the multiply-adds; at
batch 32, 5 * 5 * 5 per 4 * 4 * 4: 0.24), batched into one ``dot_general``. Dims that do not
qualify (other tap counts, an odd number of outputs) stay direct: their taps join the
contraction, as in im2col. Two sizes bound the memory: a large transformed input runs as one
product per position of the first transformed dim (``MAX_TRANSFORMED_BYTES``), and a conv whose
F(4, 2) kernel would outweigh its input takes F(2, 2) (``MAX_TRANSFORMED_KERNEL_BYTES``).

Layouts: blocks ``[N, *B, D]``, kernel ``[*k, D, Cout]``, output ``[N, *O, Cout]`` with
``O = B - k + 1``; the transformed input is ``[P, R, Kd]`` and the kernel ``[P, Kd, Cout]``,
with P = prod(m + 1) over transformed dims, R = N * prod(tiles), Kd = prod(direct taps) * D.

As in ``im2col``, the conv, its adjoint and its kernel gradient have a ``jax.custom_vjp``
each, written with one another, so gradients of gradients stay on this route.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.ops import blocks as blk
from gan_jax.ops import products

# Static description: (batch N, block sizes B, kernel taps k, output tile per dim (0 for a
# direct dim), depth D, the products' operand dtype: None for the transforms' own, bf16 for
# bf16 operands accumulated in float32 (``products.operand_dtype``)).
Spec = tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...], int, object]
# Per output tile size m: (B^T [m + 1, m + 1], G [m + 1, 2], A^T [m, m + 1]) of F(m, 2),
# whose m + 1 positions each take one product. F(2, 2) uses only 0 and +-1; F(4, 2) (points
# 0, 1, -1, 2 and infinity) needs 1/2, 1/6 and powers of 2 up to 8, so it rounds more.
_TRANSFORMS = {
    2: (
        ((1, -1, 0), (0, 1, 0), (0, -1, 1)),
        ((1, 0), (1, 1), (0, 1)),
        ((1, 1, 0), (0, 1, 1)),
    ),
    4: (
        (
            (2, -1, -2, 1, 0),
            (0, -2, -1, 1, 0),
            (0, 2, -3, 1, 0),
            (0, -1, 0, 1, 0),
            (0, 2, -1, -2, 1),
        ),
        ((1 / 2, 0), (-1 / 2, -1 / 2), (-1 / 6, 1 / 6), (1 / 6, 1 / 3), (0, 1)),
        ((1, 1, 1, 1, 0), (0, 1, -1, 2, 0), (0, 1, 1, 4, 0), (0, 1, -1, 8, 1)),
    ),
}


def _combine(coefficients, arrays):
    """sum(c * a) over the nonzero coefficients; +-1 as adds and subtracts."""
    total = None
    for c, a in zip(coefficients, arrays):
        if c == 0:
            continue
        term = a if c in (1, -1) else a * jnp.asarray(c, a.dtype)
        if total is None:
            total = term if c != -1 else -term
        elif c == -1:
            total = total - term
        else:
            total = total + term
    return total


# Dims with at least this many outputs (and a multiple of 4) take F(4, 2) rather than F(2, 2):
# 5 products per 4 outputs instead of 6, but 1.5x the positions, so fewer rows per product.
_F4_MIN_OUTPUTS = 8
# A dim of exactly 4 outputs takes F(4, 2) as one tile (5 products instead of 2 x 3) where the
# products keep at least this many rows (batch x tiles). Measured on vs_pytorch's step (AMD EPYC
# with AVX-512): D's 8x32x32-to-4x16x16 layer at 16x64x64, batch 32 (and G's mirror of it),
# F(4, 2) along all three dims, 512 rows: the step 3-6 % faster, XLA's temporaries 634 -> 617
# MiB; at 16x32x32 the same rule for every 4-output dim (128 and 32 rows) made the step 15 %
# slower. F(4, 2) along a third dim doubles the route's rounding there (relative error 3.7e-6
# -> 6.6e-6 against a float64 conv; XLA's own float32 conv 3.3e-7).
_F4_ONE_TILE_MIN_ROWS = 512


def winograd_dims(block_sizes, kernel_sizes, max_tile: int = 4) -> tuple[int, ...]:
    """Per dim, its output tile: 4 for F(4, 2) (unless ``max_tile`` is 2), 2 for F(2, 2) (two
    taps and an even number of outputs), 0 where it stays direct."""
    tiles = []
    for b, k in zip(block_sizes, kernel_sizes):
        out = b - k + 1
        if max_tile >= 4 and k == 2 and out >= _F4_MIN_OUTPUTS and out % 4 == 0:
            tiles.append(4)
        elif k == 2 and out >= 2 and out % 2 == 0:
            tiles.append(2)
        else:
            tiles.append(0)
    return tuple(tiles)


def _out_sizes(spec: Spec) -> tuple[int, ...]:
    _, block_sizes, kernel_sizes, *_ = spec
    return tuple(b - k + 1 for b, k in zip(block_sizes, kernel_sizes))


def _tile_sizes(spec: Spec) -> tuple[int, ...]:
    """Per dim, the number of tiles (transformed) or outputs (direct)."""
    return tuple(o // m if m else o for o, m in zip(_out_sizes(spec), spec[3]))


def _rows(spec: Spec) -> int:
    """R, the rows of each product: N * prod(tiles) (outputs along direct dims)."""
    return spec[0] * math.prod(_tile_sizes(spec))


def _n_positions(tiles: tuple[int, ...]) -> int:
    return math.prod(m + 1 for m in tiles if m)


def transform_kernel(kernel: jax.Array, tiles: tuple[int, ...]) -> jax.Array:
    """[*k, D, Co] -> [P, Kd, Co]: G g along each transformed dim ((g0, g0 + g1, g1) for
    F(2, 2))."""
    num_spatial = len(tiles)
    for d in range(num_spatial):
        if tiles[d]:
            taps = [lax.index_in_dim(kernel, j, axis=d, keepdims=False) for j in range(2)]
            kernel = jnp.stack([_combine(row, taps) for row in _TRANSFORMS[tiles[d]][1]], axis=d)
    wino_axes = [d for d in range(num_spatial) if tiles[d]]
    direct_axes = [d for d in range(num_spatial) if not tiles[d]]
    moved = kernel.transpose(*wino_axes, *direct_axes, num_spatial, num_spatial + 1)
    return moved.reshape(_n_positions(tiles), -1, kernel.shape[-1])


def _input_transform(
    blocks: jax.Array, spec: Spec, transposed: bool = False, position: int | None = None
) -> jax.Array:
    """[N, *B, D] -> [P, R, Kd], or [P, Kd, R] when ``transposed``.

    Along a transformed dim, each tile's three blocks become its positions
    (d0 - d1, d1, d2 - d1); a direct dim's taps join Kd (im2col). One dim at a time, the
    positions are stacked in front, so each pass streams whole rows and the last one
    leaves [P, R, Kd] without a transpose. ``transposed`` then moves Kd before the rows in
    one more pass: a plain copy, faster than reading the blocks across their rows.

    ``position``: only that position of the first transformed dim (outermost in P), taken
    first, so the result holds P / (m + 1) positions: its chunk of P, in the same order.
    """
    _, _, kernel_sizes, tiles, *_ = spec
    out_sizes = _out_sizes(spec)
    x, n_positions, skip = blocks, 0, None
    if position is not None:
        skip = _first_dim(tiles)
        x = _combine(_TRANSFORMS[tiles[skip]][0][position], _tile_views(x, spec, skip, 1 + skip))
    for d in reversed(range(len(tiles))):
        if d == skip:
            continue
        axis, out, m = n_positions + 1 + d, out_sizes[d], tiles[d]
        if m:
            views = _tile_views(x, spec, d, axis)
            x = jnp.stack([_combine(row, views) for row in _TRANSFORMS[m][0]])
            n_positions += 1
        else:
            taps = [lax.slice_in_dim(x, j, j + out, axis=axis) for j in range(kernel_sizes[d])]
            x = jnp.concatenate(taps, axis=-1) if len(taps) > 1 else taps[0]
    return _positions_to_matrix(x, n_positions, transposed)


def _tile_views(x: jax.Array, spec: Spec, d: int, axis: int) -> list[jax.Array]:
    """Along transformed dim d (at ``axis`` of x), block a of every tile, for a = 0 .. m:
    blocks m * t + a for t < tiles (the last one is the next tile's first)."""
    m = spec[3][d]
    count = _out_sizes(spec)[d] // m
    return [
        lax.slice_in_dim(x, a, a + m * (count - 1) + 1, stride=m, axis=axis) for a in range(m + 1)
    ]


def _positions_to_matrix(x: jax.Array, n_positions: int, transposed: bool) -> jax.Array:
    """[*positions (n axes), N, *tiles, C] -> [P, R, C], or [P, C, R] when ``transposed``.

    The transposed form is a transpose followed by a reshape that merges the row axes:
    XLA cannot fold that into the product (as it folds a plain transpose, into a form
    XLA:CPU runs on its slow Eigen path), so it stays one fast copy.
    """
    p = math.prod(x.shape[:n_positions])
    if transposed:
        moved = jnp.moveaxis(x, -1, n_positions)
        return moved.reshape(p, x.shape[-1], -1)
    return x.reshape(p, -1, x.shape[-1])


def _input_transform_t(v: jax.Array, spec: Spec, position_chunk: bool = False) -> jax.Array:
    """The adjoint of ``_input_transform``: [P, R, Kd] -> [N, *B, D].

    Along a transformed dim, block a of each tile takes sum_p B^T[p, a] u_p of its tile
    (the tile's last block is the next tile's first); a direct dim's taps are added back
    onto the blocks they read (col2im).

    ``position_chunk``: v holds one position of the first transformed dim (the adjoint of
    ``_input_transform(..., position=p)`` before its first step): the other dims are summed
    back and the result keeps that dim's tiles, [N, ..., tiles, ..., *direct taps, D]; the
    chunks go on through ``_input_transform_t_chunks``.
    """
    batch, _, kernel_sizes, tiles, depth, _ = spec
    skip = _first_dim(tiles) if position_chunk else None
    wino = [m for d, m in enumerate(tiles) if m and d != skip]
    direct_taps = [k for k, m in zip(kernel_sizes, tiles) if not m]
    x = v.reshape(*(m + 1 for m in wino), batch, *_tile_sizes(spec), *direct_taps, depth)
    n_front = len(wino)
    for d in range(len(tiles)):
        if not tiles[d] or d == skip:
            continue
        n_front -= 1
        x = _sum_positions([x[p] for p in range(tiles[d] + 1)], tiles[d], n_front + 1 + d)
    return x if position_chunk else _col2im(x, spec)


def _input_transform_t_chunks(parts: list[jax.Array], spec: Spec) -> jax.Array:
    """The first transformed dim's positions (``_input_transform_t(..., position_chunk=True)``
    each) summed back onto the blocks: [N, *B, D]."""
    d = _first_dim(spec[3])
    return _col2im(_sum_positions(parts, spec[3][d], 1 + d), spec)


def _sum_positions(parts: list[jax.Array], m: int, axis: int) -> jax.Array:
    """Adjoint of one dim's B^T: its m + 1 positions (tiles along ``axis``) -> its blocks."""
    zero = jnp.zeros((), parts[0].dtype)
    b_t = _TRANSFORMS[m][0]
    config = [(0, 0, 0)] * parts[0].ndim
    high, low = list(config), list(config)
    high[axis], low[axis] = (0, 1, 0), (1, 0, 0)
    # Per block offset a < m: count + 1 entries (the last one only for a = 0).
    classes = [lax.pad(_combine([row[a] for row in b_t], parts), zero, high) for a in range(m)]
    shared = _combine([row[m] for row in b_t], parts)
    classes[0] = classes[0] + lax.pad(shared, zero, low)
    stacked = jnp.stack(classes, axis=axis + 1)
    merged = stacked.reshape(*stacked.shape[:axis], -1, *stacked.shape[axis + 2 :])
    return lax.slice_in_dim(merged, 0, merged.shape[axis] - (m - 1), axis=axis)


def _col2im(x: jax.Array, spec: Spec) -> jax.Array:
    """[N, *B (direct dims still outputs), *direct taps, D] -> [N, *B, D]: each direct dim's
    taps added back onto the blocks they read."""
    _, _, kernel_sizes, tiles, *_ = spec
    zero = jnp.zeros((), x.dtype)
    n_taps = sum(1 for m in tiles if not m)
    tap_axis = x.ndim - 1 - n_taps
    for d in range(len(tiles)):
        if tiles[d]:
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
    """[P, R, Co] -> [N, *O, Co]: A^T along each transformed dim ((m0 + m1, m1 + m2) for
    F(2, 2))."""
    batch, _, _, tiles, *_ = spec
    wino = [t for t in tiles if t]
    x = m.reshape(*(t + 1 for t in wino), batch, *_tile_sizes(spec), m.shape[-1])
    n_front = len(wino)
    for d in range(len(tiles)):
        if not tiles[d]:
            continue
        n_front -= 1
        axis = n_front + 1 + d
        parts = [x[p] for p in range(tiles[d] + 1)]
        outputs = [_combine(row, parts) for row in _TRANSFORMS[tiles[d]][2]]
        stacked = jnp.stack(outputs, axis=axis + 1)
        x = stacked.reshape(*stacked.shape[:axis], -1, *stacked.shape[axis + 2 :])
    return x


def _output_transform_t(g: jax.Array, spec: Spec) -> jax.Array:
    """The adjoint of ``_output_transform``: [N, *O, Co] -> [P, R, Co]."""
    tiles = spec[3]
    x, n_positions = g, 0
    for d in reversed(range(len(tiles))):
        m = tiles[d]
        if not m:
            continue
        axis = n_positions + 1 + d
        outputs = [lax.slice_in_dim(x, i, x.shape[axis], stride=m, axis=axis) for i in range(m)]
        a_t = _TRANSFORMS[m][2]
        x = jnp.stack([_combine([row[p] for row in a_t], outputs) for p in range(m + 1)])
        n_positions += 1
    return _positions_to_matrix(x, n_positions, transposed=False)


def _first_dim(tiles: tuple[int, ...]) -> int:
    """The first transformed dim: its positions are the outermost of P."""
    return next(d for d, m in enumerate(tiles) if m)


def _position_slices(a: jax.Array, spec: Spec) -> list[jax.Array]:
    """[P, ...] -> one [P / (m + 1), ...] slice per position of the first transformed dim."""
    chunks = spec[3][_first_dim(spec[3])] + 1
    size = a.shape[0] // chunks
    return [lax.slice_in_dim(a, p * size, (p + 1) * size) for p in range(chunks)]


def _bmm(a: jax.Array, b: jax.Array, spec: Spec) -> jax.Array:
    """[P, M, K] @ [P, K, N] -> [P, M, N], on the spec's operand dtype."""
    return products.dot(a, b, (((2,), (1,)), ((0,), (0,))), spec[5])


def _bmm_nt(a: jax.Array, b: jax.Array, spec: Spec) -> jax.Array:
    """[P, M, N] @ [P, K, N]^T -> [P, M, K], on the spec's operand dtype."""
    return products.dot(a, b, (((2,), (2,)), ((0,), (0,))), spec[5])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(blocks: jax.Array, w: jax.Array, spec: Spec) -> jax.Array:
    """blocks [N, *B, D], w [P, Kd, Co] (``transform_kernel``) -> [N, *O, Co]."""
    if not _position_chunks(spec):
        return _output_transform(_bmm(_input_transform(blocks, spec), w, spec), spec)
    chunks = [
        _bmm(_input_transform(blocks, spec, position=p), w_p, spec)
        for p, w_p in enumerate(_position_slices(w, spec))
    ]
    return _output_transform(jnp.concatenate(chunks), spec)


def _conv_fwd(blocks, w, spec):
    return _conv(blocks, w, spec), (blocks, w)


def _conv_bwd(spec, residuals, grad_y):
    blocks, w = residuals
    return _conv_t(grad_y, w, spec), _wgrad(blocks, grad_y, spec)


_conv.defvjp(_conv_fwd, _conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_t(y: jax.Array, w: jax.Array, spec: Spec) -> jax.Array:
    """The adjoint of ``_conv`` w.r.t. blocks: y [N, *O, Co] -> [N, *B, D]."""
    u = _output_transform_t(y, spec)
    if not _position_chunks(spec):
        return _input_transform_t(_bmm_nt(u, w, spec), spec)
    parts = [
        _input_transform_t(_bmm_nt(u_p, w_p, spec), spec, position_chunk=True)
        for u_p, w_p in zip(_position_slices(u, spec), _position_slices(w, spec))
    ]
    return _input_transform_t_chunks(parts, spec)


def _conv_t_fwd(y, w, spec):
    return _conv_t(y, w, spec), (y, w)


def _conv_t_bwd(spec, residuals, grad_blocks):
    # <g, A^T y> = <A g, y>: the input gradient is the conv of g, the kernel one its wgrad.
    y, w = residuals
    if _transformed_bytes(spec, 0)[0] > RECOMPUTE_TRANSFORMED_BYTES:
        # Transformed again for the kernel gradient (in the backward pass: y waits for the
        # cotangent), rather than the forward pass's transform kept until then.
        y = blk.after(y, jnp.ravel(grad_blocks)[0])
    grad_w = _wgrad(grad_blocks, y, spec)
    grad_y = _conv(grad_blocks, w, spec)
    if grad_blocks.nbytes >= blk.MEMORY_ORDER_BYTES:
        grad_y = blk.after(grad_y, grad_w)
    return grad_y, grad_w


_conv_t.defvjp(_conv_t_fwd, _conv_t_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _wgrad(blocks: jax.Array, grad_y: jax.Array, spec: Spec) -> jax.Array:
    """Gradient w.r.t. the transformed kernel: V(blocks)^T @ A^T(grad_y), [P, Kd, Co].

    V is built transposed (``_positions_to_matrix``): XLA:CPU hands YNNPACK only products
    contracting the last axis of the left operand.
    """
    g = _output_transform_t(grad_y, spec)
    if not _position_chunks(spec):
        return _bmm(_input_transform(blocks, spec, transposed=True), g, spec)
    return jnp.concatenate(
        [
            _bmm(_input_transform(blocks, spec, transposed=True, position=p), g_p, spec)
            for p, g_p in enumerate(_position_slices(g, spec))
        ]
    )


def _wgrad_fwd(blocks, grad_y, spec):
    return _wgrad(blocks, grad_y, spec), (blocks, grad_y)


def _wgrad_bwd(spec, residuals, grad_w):
    # Bilinear in (blocks, grad_y), as in im2col._wgrad_bwd.
    blocks, grad_y = residuals
    return _conv_t(grad_y, grad_w, spec), _conv(blocks, grad_w, spec)


_wgrad.defvjp(_wgrad_fwd, _wgrad_bwd)


def _spec(batch, block_sizes, kernel: jax.Array, dtype) -> Spec:
    """The static description of a conv of ``dtype`` (its blocks')."""
    num_spatial = kernel.ndim - 2
    kernel_sizes = tuple(kernel.shape[:num_spatial])
    operands = products.operand_dtype(dtype)
    depth, out_channels = kernel.shape[-2:]

    def spec_for(max_tile: int) -> Spec:
        wino = winograd_dims(block_sizes, kernel_sizes, max_tile=max_tile)
        return (batch, tuple(block_sizes), kernel_sizes, wino, depth, operands)

    # F(4, 2)'s coefficients amplify the rounding of bf16 operands 8x (a video GAN layer
    # 2.2 % off, XLA's bf16 conv 0.3 %); F(2, 2) only adds and subtracts.
    spec = spec_for(4 if operands is None else 2)
    if operands is None:
        spec = _one_tile_dims(spec)
    if not any(spec[3]):
        raise ValueError(
            f"winograd: no dim of blocks {block_sizes} with kernel {kernel_sizes} has two "
            "taps and an even number of outputs; use the direct route for this conv."
        )
    input_bytes, kernel_bytes = _transformed_bytes(spec, out_channels)
    if 4 in spec[3] and kernel_bytes > max(MAX_TRANSFORMED_KERNEL_BYTES, input_bytes):
        spec = spec_for(2)
    return spec


def _one_tile_dims(spec: Spec) -> Spec:
    """``spec`` with its F(2, 2) dims of exactly 4 outputs taking F(4, 2) as one tile, where the
    products keep ``_F4_ONE_TILE_MIN_ROWS`` rows; else ``spec`` unchanged."""
    tiles = tuple(4 if m == 2 and out == 4 else m for m, out in zip(spec[3], _out_sizes(spec)))
    trial = (*spec[:3], tiles, *spec[4:])
    if tiles == spec[3] or _rows(trial) < _F4_ONE_TILE_MIN_ROWS:
        return spec
    return trial


# A transformed input larger than this runs its products one position of the first
# transformed dim at a time (3 or 5 chunks), so only that chunk of it is held at once.
# Measured on vs_pytorch's step at 16x64x64, batch 32 (AMD EPYC with AVX-512): XLA's
# temporaries 1151 -> 1082 MiB, the step as fast (README, "Against PyTorch on the same CPU").
MAX_TRANSFORMED_BYTES = 48 * 2**20
# F(4, 2) along two or three dims turns a kernel's 8 taps into 50 or 75 positions, so in a
# wide layer of few tiles its transformed kernel outgrows the transformed input: the DCGAN's
# 4x16x16-level layers at 16x64x64, batch 32, hold 75 MiB each for 8 MiB of kernel. Past this
# size, and past the input's, such a conv takes F(2, 2) (27 positions: 27 MiB): more
# multiply-adds, less memory, the step as fast there (XLA's temporaries 958 -> 868 MiB).
MAX_TRANSFORMED_KERNEL_BYTES = 16 * 2**20
# The adjoint conv (a transposed conv of G) computes its input's transform again for its kernel
# gradient past this size, instead of keeping the forward pass's (G's 128-to-64-channel layer
# at 16x64x64: 108 MiB). The step as fast: that transform is of the thin side (vs a conv's,
# built transposed from its blocks in one slow fusion, which is why convs keep theirs).
RECOMPUTE_TRANSFORMED_BYTES = 64 * 2**20


def _position_chunks(spec: Spec) -> bool:
    """Whether the products run one position of the first transformed dim at a time."""
    return _transformed_bytes(spec, 0)[0] > MAX_TRANSFORMED_BYTES


def _transformed_bytes(spec: Spec, out_channels: int) -> tuple[int, int]:
    """Float32 bytes of the spec's transformed input [P, R, Kd] and of its transformed kernel
    [P, Kd, out_channels]."""
    _, _, kernel_sizes, tiles, depth, _ = spec
    positions = _n_positions(tiles)
    contraction = math.prod(k for k, m in zip(kernel_sizes, tiles) if not m) * depth
    return 4 * positions * _rows(spec) * contraction, 4 * positions * contraction * out_channels


def _compute_dtype(dtype) -> jnp.dtype:
    """At least float32. The transforms' coefficients (up to 8 and 1/6 in F(4, 2)) and sums
    amplify the rounding of a narrower type: in bf16, an F(4, 2) layer of the video GAN was off
    by 3.7 % (relative norm) against 0.3 % for XLA's bf16 convolution, and the main job's
    recipe in bf16 ended at FSD 41 instead of 10. Run in float32, the route rounds only its
    output to bf16, and, on a CPU with AMX (``products.bf16_products``), the transformed
    operands of the products, which accumulate in float32."""
    return jnp.promote_types(dtype, jnp.float32)


def conv(blocks: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1 valid conv: blocks [N, *B, D], kernel [*k, D, Co] -> [N, *(B - k + 1), Co],
    computed in at least float32 (``_compute_dtype``) and returned in the dtype of blocks.

    Raises:
        ValueError: if no dim qualifies (``winograd_dims``).
    """
    spec = _spec(blocks.shape[0], blocks.shape[1:-1], kernel, blocks.dtype)
    compute = _compute_dtype(blocks.dtype)
    w = transform_kernel(kernel.astype(compute), spec[3])
    return _conv(blocks.astype(compute), w, spec).astype(blocks.dtype)


def conv_transpose(y: jax.Array, kernel: jax.Array, block_sizes) -> jax.Array:
    """The adjoint of ``conv`` w.r.t. blocks: y [N, *O, Co], kernel [*k, D, Co] -> [N, *B, D],
    computed in at least float32 and returned in the dtype of y.

    Raises:
        ValueError: if no dim qualifies (``winograd_dims``).
    """
    spec = _spec(y.shape[0], block_sizes, kernel, y.dtype)
    compute = _compute_dtype(y.dtype)
    w = transform_kernel(kernel.astype(compute), spec[3])
    return _conv_t(y.astype(compute), w, spec).astype(y.dtype)
