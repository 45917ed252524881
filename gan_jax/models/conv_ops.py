"""Strided and transposed N-d convolutions, channels last, with a fast CPU route.

On CPU, XLA runs convolutions far below its matrix-product speed: strided and input-dilated
ones (every transposed convolution and every strided convolution's input gradient) through a
slow generic loop, stride-1 ones at a fraction of the dot peak. The "fast" route therefore
runs every convolution, forward and backward, as matrix products (``dot_general``), which
XLA:CPU hands to YNNPACK:

* The padded input is cut into stride-sized blocks folded into channels (space-to-depth),
  and the kernel is zero-padded to a multiple of the stride and folded the same way, so the
  strided conv becomes a stride-1 "valid" conv over blocks with ceil(K / s) taps per dim.
* ``conv``: the patch matrix of that block conv (one row per output position, one column
  block per kernel block; im2col) times the folded kernel ``[Kp, Cout]``.
* ``conv_transpose``: its adjoint, ``col2im(x @ kernel^T)``: one product, then each kernel
  block's columns are added back onto the blocks it reads (exact work: no multiplications by
  inserted zeros, unlike an input-dilated conv).
* The gradients are the same three operations with a ``jax.custom_vjp`` each: the input
  gradient of one is the other, the kernel gradient is ``patches^T @ grad`` with the patch
  matrix built transposed, because XLA:CPU runs a product contracting the long row axis of
  two row-major operands on its slower Eigen path. The three rules close over each other, so
  gradients of gradients (R1, WGAN-GP) stay on this route. Reverse mode only.
* Block convs with two taps along a dim with an even number of outputs (every kernel-4,
  stride-2 layer of the video GAN past the RGB ones) run as Winograd F(2, 2) / F(4, 2)
  products instead (``conv_winograd``): 3 products per 2 outputs (5 per 4) along each such
  dim instead of 4 (8), as one batched ``dot_general`` per direction.

"s2d" is the previous CPU route (the same space-to-depth, but as stride-1 XLA convolutions),
kept so ``benchmarks/conv_ops.py`` can compare. GPUs and TPUs use the plain ``lax`` ops.
"""

import functools
import itertools
import math
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.models import conv_winograd

IMPL_ENV_VAR = "GAN_JAX_CONV_IMPL"
# "fast": matrix products only; "s2d": stride-1 XLA convs only (the previous CPU route, kept for
# benchmarks/conv_ops.py); "lax": XLA's strided / input-dilated convolutions.
IMPLS = ("lax", "fast", "s2d")
_PUBLIC_IMPLS = ("lax", "fast")

Padding = Sequence[tuple[int, int]]


def default_impl() -> str:
    """Returns the convolution implementation to use when ``impl=None``.

    Returns:
        ``"fast"`` on the CPU backend, ``"lax"`` elsewhere. The environment variable
        ``GAN_JAX_CONV_IMPL`` (``lax`` or ``fast``) overrides the choice.

    Raises:
        ValueError: if ``GAN_JAX_CONV_IMPL`` holds another value.
    """
    override = os.environ.get(IMPL_ENV_VAR, "").strip()
    if override:
        if override not in _PUBLIC_IMPLS:
            raise ValueError(
                f"environment variable {IMPL_ENV_VAR}={override!r} is invalid; "
                f"set it to one of {_PUBLIC_IMPLS} or unset it."
            )
        return override
    return "fast" if jax.default_backend() == "cpu" else "lax"


def _dimension_numbers(num_spatial: int) -> lax.ConvDimensionNumbers:
    """Channels-last numbers: lhs/out [N, *S, C], rhs [*K, I, O] (NDHWC / DHWIO for 3-D)."""
    spatial = tuple(range(1, num_spatial + 1))
    return lax.ConvDimensionNumbers(
        lhs_spec=(0, num_spatial + 1, *spatial),
        rhs_spec=(num_spatial + 1, num_spatial, *range(num_spatial)),
        out_spec=(0, num_spatial + 1, *spatial),
    )


def _stride1_conv(x: jax.Array, kernel: jax.Array, padding: Padding) -> jax.Array:
    """Stride-1, undilated convolution: x [N, *S, Cin], kernel [*K, Cin, Cout]."""
    num_spatial = x.ndim - 2
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(1,) * num_spatial,
        padding=tuple(padding),
        dimension_numbers=_dimension_numbers(num_spatial),
    )


def _check_args(
    name: str, x: jax.Array, kernel: jax.Array, strides, padding, impl
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], str]:
    """Validates arguments; returns normalized (strides, padding, impl)."""
    if x.ndim < 3:
        raise ValueError(
            f"{name}: x must be [N, *S, Cin] with at least one spatial dim, got shape {x.shape}."
        )
    num_spatial = x.ndim - 2
    if kernel.ndim != num_spatial + 2:
        raise ValueError(
            f"{name}: kernel must be [*K, Cin, Cout] with {num_spatial} spatial dims to match x "
            f"of shape {x.shape}, got kernel shape {kernel.shape}."
        )
    if kernel.shape[-2] != x.shape[-1]:
        raise ValueError(
            f"{name}: channel mismatch: x has Cin={x.shape[-1]} (shape {x.shape}) but kernel "
            f"expects Cin={kernel.shape[-2]} (shape {kernel.shape}); kernel is [*K, Cin, Cout]."
        )
    try:
        strides = tuple(int(s) for s in strides)
    except TypeError as err:
        raise ValueError(f"{name}: strides must be a tuple of ints, got {strides!r}.") from err
    if len(strides) != num_spatial or any(s < 1 for s in strides):
        raise ValueError(
            f"{name}: strides must be {num_spatial} positive ints (one per spatial dim of x "
            f"with shape {x.shape}), got {strides}."
        )
    try:
        padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name}: padding must be a tuple of (lo, hi) int pairs, got {padding!r}."
        ) from err
    if len(padding) != num_spatial or any(lo < 0 or hi < 0 for lo, hi in padding):
        raise ValueError(
            f"{name}: padding must be {num_spatial} non-negative (lo, hi) pairs (one per "
            f"spatial dim of x with shape {x.shape}), got {padding}."
        )
    if x.dtype != kernel.dtype:
        raise ValueError(
            f"{name}: x dtype {x.dtype} differs from kernel dtype {kernel.dtype}; cast both to "
            "the same dtype (lax convolutions require it)."
        )
    if impl is None:
        impl = default_impl()
    if impl not in IMPLS:
        raise ValueError(f"{name}: impl must be None or one of {IMPLS}, got {impl!r}.")
    return strides, padding, impl


def conv(x: jax.Array, kernel: jax.Array, strides, padding, *, impl: str | None = None):
    """Strided N-d convolution, channels last.

    Equals ``lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=...)``
    with NDHWC/DHWIO/NDHWC for 3-D (NHWC/HWIO for 2-D, NWC/WIO for 1-D).

    Args:
        x: input, [N, *S, Cin].
        kernel: weights, [*K, Cin, Cout].
        strides: one positive int per spatial dim, len(S).
        padding: one (lo, hi) pair of non-negative ints per spatial dim.
        impl: "lax", "fast" (matrix products on space-to-depth blocks), "s2d" (stride-1
            convs on space-to-depth blocks) or None for ``default_impl()``. "fast" is
            reverse-mode only (custom VJP; no jax.jvp / jacfwd); use "s2d" or "lax" for
            forward mode.

    Returns:
        [N, *O, Cout] with O = (S + lo + hi - K) // stride + 1.

    Raises:
        ValueError: on rank, channel, stride or padding mismatch, an empty output, or an
            unknown impl.
    """
    strides, padding, impl = _check_args("conv", x, kernel, strides, padding, impl)
    out_sizes = _conv_out_sizes(x.shape[1:-1], kernel.shape[:-2], strides, padding)
    if any(o < 1 for o in out_sizes):
        raise ValueError(
            f"conv: empty output {out_sizes} for x shape {x.shape}, kernel shape {kernel.shape},"
            f" padding {padding}; the padded input must be at least as large as the kernel."
        )
    if impl == "lax":
        return lax.conv_general_dilated(
            x, kernel, strides, padding, dimension_numbers=_dimension_numbers(x.ndim - 2)
        )
    if impl == "s2d":
        return _conv_s2d(x, kernel, strides, padding)
    return _conv_mm(x, kernel, strides, padding)


def conv_transpose(
    x: jax.Array, kernel: jax.Array, strides, padding, *, impl: str | None = None
) -> jax.Array:
    """Transposed N-d convolution with PyTorch ConvTranspose semantics, channels last.

    Defined as the adjoint (linear transpose w.r.t. its input) of
    ``u -> conv(u, swapaxes(kernel, -1, -2), strides, padding)`` with u of the output shape.
    Equals ``lax.conv_transpose(x, swapaxes(kernel, -1, -2), strides,
    [(k - 1 - lo, k - 1 - hi)], transpose_kernel=True)``.

    Args:
        x: input, [N, *S, Cin].
        kernel: weights, [*K, Cin, Cout].
        strides: one positive int per spatial dim, len(S).
        padding: one (lo, hi) pair of non-negative ints per spatial dim; removed from the
            full output like PyTorch's ``padding`` (PyTorch's p is (p, p)).
        impl: "lax", "fast" (col2im of one matrix product), "s2d" (linear transpose of the
            space-to-depth stride-1 conv) or None for ``default_impl()``. "fast" and "s2d"
            are reverse-mode only (custom VJPs rule out jax.jvp / jacfwd); use "lax" for
            forward mode.

    Returns:
        [N, *O, Cout] with O = (S - 1) * stride + K - lo - hi.

    Raises:
        ValueError: on rank, channel, stride or padding mismatch, an empty output, or an
            unknown impl.
    """
    strides, padding, impl = _check_args("conv_transpose", x, kernel, strides, padding, impl)
    out_sizes = _transpose_out_sizes(x.shape[1:-1], kernel.shape[:-2], strides, padding)
    if any(o < 1 for o in out_sizes):
        raise ValueError(
            f"conv_transpose: empty output {out_sizes} for x shape {x.shape}, kernel shape "
            f"{kernel.shape}, padding {padding}; padding must be smaller than the full output."
        )
    if impl == "lax":
        return _conv_transpose_lax(x, kernel, strides, padding)
    if impl == "s2d":
        return _conv_transpose_s2d(x, kernel, strides, padding)
    return _conv_transpose_mm(x, kernel, strides, padding)


def _conv_out_sizes(in_sizes, kernel_sizes, strides, padding) -> tuple[int, ...]:
    return tuple(
        (s + lo + hi - k) // st + 1
        for s, k, st, (lo, hi) in zip(in_sizes, kernel_sizes, strides, padding)
    )


def _transpose_out_sizes(in_sizes, kernel_sizes, strides, padding) -> tuple[int, ...]:
    return tuple(
        (s - 1) * st + k - lo - hi
        for s, k, st, (lo, hi) in zip(in_sizes, kernel_sizes, strides, padding)
    )


def _conv_transpose_lax(x, kernel, strides, padding) -> jax.Array:
    """Transposed conv as one lhs-dilated conv with the spatially flipped kernel."""
    num_spatial = x.ndim - 2
    flipped = jnp.flip(kernel, axis=tuple(range(num_spatial)))
    full_padding = tuple(
        (k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel.shape[:num_spatial], padding)
    )
    return lax.conv_general_dilated(
        x,
        flipped,
        window_strides=(1,) * num_spatial,
        padding=full_padding,
        lhs_dilation=strides,
        dimension_numbers=_dimension_numbers(num_spatial),
    )


# ----------------------------------------------------------------------------------------------
# Space-to-depth blocks, shared by the "s2d" and "fast" routes.
# ----------------------------------------------------------------------------------------------

# Static description of one strided conv: (input sizes S, kernel sizes K, strides, padding).
Geometry = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...]]


def _block_layout(geometry: Geometry):
    """(out sizes O, kernel blocks ceil(K / s), padded input sizes, kernel block offsets)."""
    in_sizes, kernel_sizes, strides, padding = geometry
    out_sizes = _conv_out_sizes(in_sizes, kernel_sizes, strides, padding)
    kernel_blocks = tuple(-(-k // st) for k, st in zip(kernel_sizes, strides))
    # Exactly the input window that the outputs read, rounded up to whole stride blocks:
    # extra zeros on the high side meet zero kernel taps, extra input rows are cropped.
    padded_sizes = tuple(st * (o - 1 + b) for st, o, b in zip(strides, out_sizes, kernel_blocks))
    offsets = list(itertools.product(*(range(b) for b in kernel_blocks)))
    return out_sizes, kernel_blocks, padded_sizes, offsets


def _to_blocks(x: jax.Array, geometry: Geometry) -> jax.Array:
    """[N, *S, C] -> padded (or cropped) space-to-depth blocks [N, *(O - 1 + kb), prod(s) * C]."""
    in_sizes, _, strides, padding = geometry
    padded_sizes = _block_layout(geometry)[2]
    pad_config = [(0, 0, 0)]
    pad_config += [
        (lo, size - s - lo, 0) for (lo, _), size, s in zip(padding, padded_sizes, in_sizes)
    ]
    pad_config.append((0, 0, 0))
    return _space_to_depth(lax.pad(x, jnp.zeros((), x.dtype), pad_config), strides)


def _from_blocks(blocks: jax.Array, channels: int, geometry: Geometry) -> jax.Array:
    """The adjoint of ``_to_blocks``: depth-to-space, then drop the padding."""
    x_struct = jax.ShapeDtypeStruct((blocks.shape[0], *geometry[0], channels), blocks.dtype)
    (x,) = jax.linear_transpose(lambda x: _to_blocks(x, geometry), x_struct)(blocks)
    return x


def _space_to_depth(x: jax.Array, strides: tuple[int, ...]) -> jax.Array:
    """[N, *(B_i * s_i), C] -> [N, *B, prod(s) * C], the channel order being (*s, C)."""
    num_spatial = len(strides)
    batch, channels = x.shape[0], x.shape[-1]
    blocks = tuple(size // st for size, st in zip(x.shape[1:-1], strides))
    split = x.reshape(batch, *(d for b, st in zip(blocks, strides) for d in (b, st)), channels)
    # Axes of `split`: 0 = N, 1 + 2i = block i, 2 + 2i = phase i, last = C.
    order = (0, *(1 + 2 * i for i in range(num_spatial)), *(2 + 2 * i for i in range(num_spatial)))
    moved = split.transpose(*order, split.ndim - 1)
    return moved.reshape(batch, *blocks, math.prod(strides) * channels)


def _kernel_to_depth(kernel: jax.Array, strides: tuple[int, ...]) -> jax.Array:
    """[*K, Cin, Cout] -> [*ceil(K / s), prod(s) * Cin, Cout], matching ``_space_to_depth``."""
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


def _conv_s2d(x, kernel, strides, padding) -> jax.Array:
    """Strided conv as pad/crop + space-to-depth + a stride-1 valid XLA conv."""
    num_spatial = x.ndim - 2
    geometry = (tuple(x.shape[1:-1]), tuple(kernel.shape[:num_spatial]), strides, padding)
    return _stride1_conv(
        _to_blocks(x, geometry), _kernel_to_depth(kernel, strides), [(0, 0)] * num_spatial
    )


# ----------------------------------------------------------------------------------------------
# Transposed convolution as the linear transpose of the space-to-depth conv.
# ----------------------------------------------------------------------------------------------


def _conv_transpose_s2d(x, kernel, strides, padding) -> jax.Array:
    """Transposed conv with only stride-1 convs in the forward and the backward pass."""
    return _conv_transpose_s2d_vjp(x, kernel, strides, padding)


def _conv_transpose_s2d_primal(x, kernel, strides, padding) -> jax.Array:
    num_spatial = x.ndim - 2
    out_sizes = _transpose_out_sizes(x.shape[1:-1], kernel.shape[:num_spatial], strides, padding)
    kernel_t = jnp.swapaxes(kernel, -1, -2)  # [*K, Cout, Cin]: the conv this op is adjoint to.
    out_struct = jax.ShapeDtypeStruct((x.shape[0], *out_sizes, kernel.shape[-1]), x.dtype)
    adjoint = jax.linear_transpose(lambda u: _conv_s2d(u, kernel_t, strides, padding), out_struct)
    (y,) = adjoint(x)
    return y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_transpose_s2d_vjp(x, kernel, strides, padding) -> jax.Array:
    return _conv_transpose_s2d_primal(x, kernel, strides, padding)


def _conv_transpose_s2d_fwd(x, kernel, strides, padding):
    return _conv_transpose_s2d_primal(x, kernel, strides, padding), (x, kernel)


def _conv_transpose_s2d_bwd(strides, padding, residuals, grad_out):
    # y = A^T x with A u = conv(u, K^T). Then dL/dx = A g (the s2d conv of the output
    # gradient), and dL/dK^T is the kernel gradient of that same conv at cotangent x:
    # <g, A^T x> = <conv(g, K^T), x>. Both are stride-1 convs on space-to-depth tensors.
    x, kernel = residuals
    kernel_t = jnp.swapaxes(kernel, -1, -2)
    grad_x, kernel_vjp = jax.vjp(lambda k_t: _conv_s2d(grad_out, k_t, strides, padding), kernel_t)
    (grad_kernel_t,) = kernel_vjp(x)
    return grad_x.astype(x.dtype), jnp.swapaxes(grad_kernel_t, -1, -2).astype(kernel.dtype)


_conv_transpose_s2d_vjp.defvjp(_conv_transpose_s2d_fwd, _conv_transpose_s2d_bwd)


# ----------------------------------------------------------------------------------------------
# The "fast" route: convolutions as matrix products on space-to-depth blocks.
# ----------------------------------------------------------------------------------------------


def _block_views(blocks: jax.Array, geometry: Geometry, channel_axis: int) -> jax.Array:
    """The kernel blocks' views of space-to-depth ``blocks``, stacked along ``channel_axis``.

    ``blocks`` is [N, *B, D] (channel_axis -1) or [D, N, *B] (channel_axis 0); view i is the
    block that kernel block i (``_block_layout`` offsets, row-major) reads for each output.
    """
    out_sizes, _, _, offsets = _block_layout(geometry)
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
    (``_block_layout`` offsets, row-major) reads for that output.
    """
    patches = _block_views(_to_blocks(x, geometry), geometry, channel_axis=-1)
    return patches.reshape(-1, patches.shape[-1])


def _patches_t(x: jax.Array, geometry: Geometry) -> jax.Array:
    """``_patches(x, geometry).T`` built directly: [N, *S, C] -> [n_blocks * prod(s) * C, M].

    The block channels go to the front before the views are cut, so the kernel gradient's
    product reads a row-major [Kp, M] operand. XLA fuses the move into the copy; it reads x
    with a stride (about 4x the time of the forward patches) but costs less than transposing
    the finished patch matrix.
    """
    blocks = jnp.moveaxis(_to_blocks(x, geometry), -1, 0)  # [D, N, *B]
    patches_t = _block_views(blocks, geometry, channel_axis=0)
    return patches_t.reshape(patches_t.shape[0], -1)


def _col2im(columns: jax.Array, batch: int, channels: int, geometry: Geometry) -> jax.Array:
    """The adjoint of ``_patches``: [N * prod(O), Kp] -> [N, *S, C].

    Each kernel block's columns are added onto the blocks it read (one shifted pad each),
    then depth-to-space.
    """
    out_sizes, kernel_blocks, _, offsets = _block_layout(geometry)
    depth = columns.shape[1] // len(offsets)
    shifted = [
        lax.pad(
            columns[:, i * depth : (i + 1) * depth].reshape(batch, *out_sizes, depth),
            jnp.zeros((), columns.dtype),
            [(0, 0, 0), *((a, b - 1 - a, 0) for a, b in zip(offset, kernel_blocks)), (0, 0, 0)],
        )
        for i, offset in enumerate(offsets)
    ]
    return _from_blocks(functools.reduce(jnp.add, shifted), channels, geometry)


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """[M, K] @ [K, N], both row-major."""
    return lax.dot_general(a, b, (((1,), (0,)), ((), ())))


def _matmul_nt(a: jax.Array, b: jax.Array) -> jax.Array:
    """[M, K] @ [N, K]^T."""
    return lax.dot_general(a, b, (((1,), (1,)), ((), ())))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _mm_conv(x: jax.Array, w_mat: jax.Array, geometry: Geometry) -> jax.Array:
    """Strided conv: x [N, *S, Ci], w_mat [Kp, Co] (``_kernel_matrix``) -> [N, *O, Co]."""
    out_sizes = _block_layout(geometry)[0]
    return _matmul(_patches(x, geometry), w_mat).reshape(x.shape[0], *out_sizes, -1)


def _mm_conv_fwd(x, w_mat, geometry):
    return _mm_conv(x, w_mat, geometry), (x, w_mat)


def _mm_conv_bwd(geometry, residuals, grad_y):
    x, w_mat = residuals
    return _mm_conv_t(grad_y, w_mat, geometry), _mm_wgrad(x, grad_y, geometry)


_mm_conv.defvjp(_mm_conv_fwd, _mm_conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _mm_conv_t(y: jax.Array, w_mat: jax.Array, geometry: Geometry) -> jax.Array:
    """Adjoint of ``_mm_conv`` w.r.t. x: y [N, *O, Co] -> [N, *S, Ci]."""
    channels = w_mat.shape[0] // len(_block_layout(geometry)[3]) // math.prod(geometry[2])
    columns = _matmul_nt(y.reshape(-1, y.shape[-1]), w_mat)
    return _col2im(columns, y.shape[0], channels, geometry)


def _mm_conv_t_fwd(y, w_mat, geometry):
    return _mm_conv_t(y, w_mat, geometry), (y, w_mat)


def _mm_conv_t_bwd(geometry, residuals, grad_x):
    # <g, A^T y> = <A g, y>: the input gradient is the conv of g, the kernel one its wgrad.
    y, w_mat = residuals
    return _mm_conv(grad_x, w_mat, geometry), _mm_wgrad(grad_x, y, geometry)


_mm_conv_t.defvjp(_mm_conv_t_fwd, _mm_conv_t_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _mm_wgrad(x: jax.Array, grad_y: jax.Array, geometry: Geometry) -> jax.Array:
    """Kernel gradient ``patches(x)^T @ grad_y`` [Kp, Co].

    The patch matrix is built already transposed (``_patches_t``) so that the product is a
    plain row-major ``[Kp, M] @ [M, Co]``: XLA:CPU hands that form to YNNPACK, while a
    product contracting the long row axis M of both operands runs on its slower Eigen path.
    """
    return _matmul(_patches_t(x, geometry), grad_y.reshape(-1, grad_y.shape[-1]))


def _mm_wgrad_fwd(x, grad_y, geometry):
    return _mm_wgrad(x, grad_y, geometry), (x, grad_y)


def _mm_wgrad_bwd(geometry, residuals, grad_w):
    # f(x, g) = P(x)^T g is bilinear: d/dx <C, f> = P^T(g C^T) = A^T, d/dg <C, f> = P(x) C.
    x, grad_y = residuals
    return _mm_conv_t(grad_y, grad_w, geometry), _mm_conv(x, grad_w, geometry)


_mm_wgrad.defvjp(_mm_wgrad_fwd, _mm_wgrad_bwd)


def _kernel_matrix(kernel: jax.Array, strides: tuple[int, ...]) -> jax.Array:
    """[*K, Ci, Co] -> [Kp, Co] in the column order of ``_patches``."""
    kernel_s2d = _kernel_to_depth(kernel, strides)  # [*kb, prod(s) * Ci, Co]
    return kernel_s2d.reshape(-1, kernel.shape[-1])


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


# A dim's outputs are split into regions (below) only where that saves at least this share
# of its products, and only into regions of at least this many patch rows: smaller products
# run well below YNNPACK's peak and every region costs its own copies.
_MIN_SPLIT_SAVING = 0.1
_MIN_SPLIT_ROWS = 256
# Convs with a dim that qualifies for Winograd products (``conv_winograd``) take them instead
# of the split: 3 products per 2 outputs (or 5 per 4) along that dim, padding taps included.
# Thin convs (block depth under 64: the RGB layers) and ones with under 128 tiles stay on
# im2col, which measured faster there.
_WINOGRAD = True
_WINOGRAD_MIN_DEPTH = 64
_WINOGRAD_MIN_ROWS = 128


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
    out_sizes = _conv_out_sizes(in_sizes, kernel_sizes, strides, padding)
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


def _conv_mm(x, kernel, strides, padding) -> jax.Array:
    num_spatial = x.ndim - 2
    plan = _split_plan(
        x.shape[1:-1], kernel.shape[:num_spatial], strides, padding, x.shape[0], x.shape[-1]
    )
    if plan is None:
        return _conv_mm_dense(x, kernel, strides, padding)
    d, regions = plan
    pieces = []
    for region in regions:
        start, stop = _region_window(region, strides[d], padding[d][0])
        pieces.append(
            _conv_mm_dense(
                lax.slice_in_dim(x, start, stop, axis=1 + d),
                lax.slice_in_dim(kernel, region[2], region[3], axis=d),
                strides,
                _without_padding(padding, d),
            )
        )
    return jnp.concatenate(pieces, axis=1 + d)


def _conv_transpose_mm(x, kernel, strides, padding) -> jax.Array:
    num_spatial = x.ndim - 2
    kernel_sizes = tuple(kernel.shape[:num_spatial])
    out_sizes = _transpose_out_sizes(x.shape[1:-1], kernel_sizes, strides, padding)
    # Split the conv this op is the adjoint of (from the output back to x) as in _conv_mm;
    # the adjoint of its concatenation adds each region's output rows back in place.
    plan = _split_plan(out_sizes, kernel_sizes, strides, padding, x.shape[0], kernel.shape[-1])
    if plan is None:
        return _conv_transpose_mm_dense(x, kernel, strides, padding)
    d, regions = plan
    y = None
    for region in regions:
        start, stop = _region_window(region, strides[d], padding[d][0])
        piece = _conv_transpose_mm_dense(
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


def _crop_valid_taps(kernel, in_sizes, strides, padding):
    """Crops a block conv's single-output dims (``_single_output_crops``).

    Args:
        kernel: [*K, Ci, Co]; in_sizes, strides, padding: the conv's, one per spatial dim.

    Returns:
        (cropped kernel, input windows [(start, size)] per dim, geometry of the cropped conv).
    """
    num_spatial = len(in_sizes)
    kernel_sizes = kernel.shape[:num_spatial]
    out_sizes = _conv_out_sizes(in_sizes, kernel_sizes, strides, padding)
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
    """Per dim of a block conv, its Winograd output tile (``conv_winograd.winograd_dims``;
    0: direct); all 0 for thin or small convs, or when the route is switched off.
    Single-output dims never qualify, cropped or not."""
    if not _WINOGRAD:
        return (0,) * len(geometry[0])
    out_sizes, kernel_blocks, _, _ = _block_layout(geometry)
    block_sizes = tuple(o - 1 + b for o, b in zip(out_sizes, kernel_blocks))
    dims = conv_winograd.winograd_dims(block_sizes, kernel_blocks)
    tiles = batch * math.prod(o // w if w else o for o, w in zip(out_sizes, dims))
    depth = math.prod(geometry[2]) * channels
    if depth < _WINOGRAD_MIN_DEPTH or tiles < _WINOGRAD_MIN_ROWS:
        return (0,) * len(dims)
    return dims


def _conv_mm_dense(x, kernel, strides, padding) -> jax.Array:
    """One block conv (``_mm_conv``, or Winograd products where a dim qualifies), its
    single-output dims cropped to their valid taps."""
    kernel, windows, geometry = _crop_valid_taps(kernel, x.shape[1:-1], strides, padding)
    for d, (start, size) in enumerate(windows):
        x = lax.slice_in_dim(x, start, start + size, axis=1 + d)
    if any(_winograd_dims(geometry, x.shape[0], x.shape[-1])):
        return conv_winograd.conv(_to_blocks(x, geometry), _kernel_to_depth(kernel, geometry[2]))
    return _mm_conv(x, _kernel_matrix(kernel, geometry[2]), geometry)


def _conv_transpose_mm_dense(x, kernel, strides, padding) -> jax.Array:
    """The adjoint of ``_conv_mm_dense`` from the output back to x (crops placed back)."""
    num_spatial = x.ndim - 2
    out_sizes = _transpose_out_sizes(x.shape[1:-1], kernel.shape[:num_spatial], strides, padding)
    kernel, windows, geometry = _crop_valid_taps(kernel, out_sizes, strides, padding)
    kernel_t = jnp.swapaxes(kernel, -1, -2)  # [*K, Cout, Cin]: the conv this op is adjoint to.
    if any(_winograd_dims(geometry, x.shape[0], kernel_t.shape[-2])):
        kernel_s2d = _kernel_to_depth(kernel_t, geometry[2])
        block_sizes = tuple(o - 1 + b for o, b in zip(x.shape[1:-1], kernel_s2d.shape))
        blocks = conv_winograd.conv_transpose(x, kernel_s2d, block_sizes)
        y = _from_blocks(blocks, kernel_t.shape[-2], geometry)
    else:
        y = _mm_conv_t(x, _kernel_matrix(kernel_t, geometry[2]), geometry)
    placement = [(0, 0, 0)] + [
        (start, total - start - size, 0) for (start, size), total in zip(windows, out_sizes)
    ]
    placement.append((0, 0, 0))
    if any(p != (0, 0, 0) for p in placement):
        y = lax.pad(y, jnp.zeros((), y.dtype), placement)
    return y
