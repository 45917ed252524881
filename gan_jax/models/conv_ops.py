"""Strided and transposed N-d convolutions, channels last, with a fast CPU route.

XLA on CPU runs every convolution with input (lhs) dilation -- each transposed convolution and
the input gradient of each strided convolution -- through a slow generic loop, far slower than
a stride-1 convolution. The "fast" route therefore re-expresses both ops with stride-1,
undilated convolutions only, in the forward and in the backward pass:

* ``conv``: space-to-depth (s2d). The padded input is cut into stride-sized blocks that are
  folded into channels, and the kernel is zero-padded to a multiple of the stride and folded
  the same way; a stride-1 "valid" convolution then gives the strided result. Its gradients
  (from plain autodiff) are stride-1 convolutions as well.
* ``conv_transpose``: the linear transpose of that s2d convolution (a stride-1 convolution
  followed by depth-to-space), with a ``jax.custom_vjp`` whose backward pass is the s2d
  convolution itself (input gradient) and the s2d kernel gradient (kernel gradient).

GPUs and TPUs use the plain ``lax`` ops, which are fast there.
"""

import functools
import math
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

IMPL_ENV_VAR = "GAN_JAX_CONV_IMPL"
# Every impl but "lax" uses stride-1, undilated convs only. For conv_transpose, "phase" (one
# conv per sub-pixel phase) and "lt" ("fast" without its custom VJP, i.e. plain autodiff of the
# linear transpose) are kept so the benchmark can compare them with "fast"; for conv all three
# are the space-to-depth conv.
IMPLS = ("lax", "fast", "phase", "lt")
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
        impl: "lax", "fast" (space-to-depth, stride-1 convs only) or None for
            ``default_impl()``. "phase" and "lt" are accepted and behave like "fast" here.

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
    return _conv_s2d(x, kernel, strides, padding)


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
        impl: "lax", "fast" (linear transpose of the space-to-depth conv with a stride-1
            custom VJP), "lt" (the same without the custom VJP), "phase" (sub-pixel phase
            decomposition) or None for ``default_impl()``. "fast" is reverse-mode only (its
            custom VJP rules out jax.jvp / jacfwd); use "lt" or "lax" for forward mode.

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
    if impl == "phase":
        return _conv_transpose_phase(x, kernel, strides, padding)
    if impl == "lt":
        return _conv_transpose_s2d_primal(x, kernel, strides, padding)
    return _conv_transpose_s2d(x, kernel, strides, padding)


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
# Space-to-depth strided convolution.
# ----------------------------------------------------------------------------------------------


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
    """Strided conv as pad/crop + space-to-depth + a stride-1 valid conv."""
    num_spatial = x.ndim - 2
    kernel_sizes = kernel.shape[:num_spatial]
    out_sizes = _conv_out_sizes(x.shape[1:-1], kernel_sizes, strides, padding)
    kernel_blocks = tuple(-(-k // st) for k, st in zip(kernel_sizes, strides))
    # Exactly the input window that the outputs read, rounded up to whole stride blocks:
    # extra zeros on the high side meet zero kernel taps, extra input rows are cropped.
    padded_sizes = tuple(st * (o - 1 + b) for st, o, b in zip(strides, out_sizes, kernel_blocks))
    pad_config = [(0, 0, 0)]
    pad_config += [
        (lo, size - s - lo, 0) for (lo, _), size, s in zip(padding, padded_sizes, x.shape[1:-1])
    ]
    pad_config.append((0, 0, 0))
    x_padded = lax.pad(x, jnp.zeros((), x.dtype), pad_config)
    return _stride1_conv(
        _space_to_depth(x_padded, strides),
        _kernel_to_depth(kernel, strides),
        [(0, 0)] * num_spatial,
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
# Transposed convolution by sub-pixel phase decomposition (benchmark comparison).
# ----------------------------------------------------------------------------------------------


def _conv_transpose_phase(x, kernel, strides, padding) -> jax.Array:
    """One stride-1 conv per output phase, interleaved, then cropped by the padding."""
    num_spatial = x.ndim - 2
    in_sizes = x.shape[1:-1]
    kernel_sizes = kernel.shape[:num_spatial]
    out_sizes = _transpose_out_sizes(in_sizes, kernel_sizes, strides, padding)
    kernel_blocks = tuple(-(-k // st) for k, st in zip(kernel_sizes, strides))
    padded_kernel = jnp.pad(
        kernel,
        [(0, b * st - k) for b, st, k in zip(kernel_blocks, strides, kernel_sizes)]
        + [(0, 0), (0, 0)],
    )
    # Full output position p = i * s + t; phase r = p mod s only sees taps t = r + j * s,
    # i.e. a stride-1 "full" correlation of x with the flipped taps of that phase.
    full_padding = [(b - 1, b - 1) for b in kernel_blocks]
    spatial_axes = tuple(range(num_spatial))
    phase_outputs = []
    for phase in _all_phases(strides):
        taps = padded_kernel[tuple(slice(r, None, st) for r, st in zip(phase, strides))]
        phase_outputs.append(_stride1_conv(x, jnp.flip(taps, axis=spatial_axes), full_padding))
    # [prod(s), N, *Q, C] -> [N, Q_1 * s_1, ..., C]
    stacked = jnp.stack(phase_outputs).reshape(*strides, *phase_outputs[0].shape)
    q_sizes = phase_outputs[0].shape[1:-1]
    order = (num_spatial, *(d for i in range(num_spatial) for d in (num_spatial + 1 + i, i)))
    interleaved = stacked.transpose(*order, stacked.ndim - 1).reshape(
        x.shape[0], *(q * st for q, st in zip(q_sizes, strides)), kernel.shape[-1]
    )
    starts = (0, *(lo for lo, _ in padding), 0)
    limits = (x.shape[0], *(lo + o for (lo, _), o in zip(padding, out_sizes)), kernel.shape[-1])
    return lax.slice(interleaved, starts, limits)


def _all_phases(strides: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every phase tuple (r_1, ..., r_d) with 0 <= r_i < s_i, in row-major order."""
    phases = [()]
    for st in strides:
        phases = [(*p, r) for p in phases for r in range(st)]
    return phases
