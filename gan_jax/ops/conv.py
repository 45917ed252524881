"""Strided and transposed N-d convolutions, channels last, and the choice of their route.

Two routes compute the same ops:

* ``"lax"``: XLA's strided and input-dilated convolutions (``lax.conv_general_dilated``),
  for GPUs and TPUs.
* ``"fast"``: matrix products on space-to-depth blocks (``gan_jax.ops.fast``), for CPU,
  where XLA runs strided and input-dilated convolutions tens of times slower than products.
  Reverse mode only (custom VJPs).

The route is chosen once per process (``default_impl``): "fast" on the CPU backend, "lax"
elsewhere, unless the environment variable ``GAN_JAX_CONV_IMPL`` (``lax`` or ``fast``) says
otherwise. ``impl=`` on ``conv`` / ``conv_transpose`` picks one for a single call.
"""

import contextlib
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.ops import blocks, fast, settings

IMPL_ENV_VAR = "GAN_JAX_CONV_IMPL"
_IMPL_CHOICES = {"lax": "XLA's convolutions", "fast": "the matrix-product route"}
IMPLS = tuple(_IMPL_CHOICES)

Padding = Sequence[tuple[int, int]]


@functools.cache
def default_impl() -> str:
    """Returns the route that ``impl=None`` takes, decided on the first call of the process.

    Returns:
        ``"fast"`` on the CPU backend, ``"lax"`` elsewhere; the environment variable
        ``GAN_JAX_CONV_IMPL`` (``lax`` or ``fast``), read then, overrides the choice.
        ``default_impl.cache_clear()`` makes the next call decide again.

    Raises:
        ValueError: if ``GAN_JAX_CONV_IMPL`` holds another value.
    """
    override = settings.choice(IMPL_ENV_VAR, _IMPL_CHOICES)
    if override:
        return override
    return "fast" if jax.default_backend() == "cpu" else "lax"


@contextlib.contextmanager
def route(impl: str):
    """Within the block, ``impl=None`` takes ``impl``: the one override
    (``GAN_JAX_CONV_IMPL``) set for a while, for benchmarks and tests that compare the routes
    in one process. It acts when a function is traced: jit what runs inside the block."""
    if impl not in IMPLS:
        raise ValueError(f"route: impl must be one of {IMPLS}, got {impl!r}.")
    with settings.overridden(IMPL_ENV_VAR, impl, default_impl):
        yield


def with_route(impl: str, fn):
    """`fn` traced with `route(impl)`: jit the result to fix its convolutions' route."""

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        with route(impl):
            return fn(*args, **kwargs)

    return traced


def dimension_numbers(num_spatial: int) -> lax.ConvDimensionNumbers:
    """Channels-last numbers: lhs/out [N, *S, C], rhs [*K, I, O] (NDHWC / DHWIO for 3-D)."""
    spatial = tuple(range(1, num_spatial + 1))
    return lax.ConvDimensionNumbers(
        lhs_spec=(0, num_spatial + 1, *spatial),
        rhs_spec=(num_spatial + 1, num_spatial, *range(num_spatial)),
        out_spec=(0, num_spatial + 1, *spatial),
    )


def _check_args(
    name: str, x: jax.Array, kernel: jax.Array, strides, padding, impl
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], str]:
    """Validates the arguments of ``name`` ("conv" or "conv_transpose"), its output size
    included; returns normalized (strides, padding, impl)."""
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
    if name == "conv":
        out_sizes = blocks.conv_out_sizes(x.shape[1:-1], kernel.shape[:-2], strides, padding)
        hint = "the padded input must be at least as large as the kernel"
    else:
        out_sizes = blocks.transpose_out_sizes(x.shape[1:-1], kernel.shape[:-2], strides, padding)
        hint = "padding must be smaller than the full output"
    if any(o < 1 for o in out_sizes):
        raise ValueError(
            f"{name}: empty output {out_sizes} for x shape {x.shape}, kernel shape "
            f"{kernel.shape}, padding {padding}; {hint}."
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
        impl: "lax", "fast" (matrix products on space-to-depth blocks) or None for
            ``default_impl()``. "fast" is reverse-mode only (custom VJP; no jax.jvp /
            jacfwd); use "lax" for forward mode.

    Returns:
        [N, *O, Cout] with O = (S + lo + hi - K) // stride + 1.

    Raises:
        ValueError: on rank, channel, stride or padding mismatch, an empty output, or an
            unknown impl.
    """
    strides, padding, impl = _check_args("conv", x, kernel, strides, padding, impl)
    if impl == "lax":
        return lax.conv_general_dilated(
            x, kernel, strides, padding, dimension_numbers=dimension_numbers(x.ndim - 2)
        )
    return fast.conv(x, kernel, strides, padding)


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
        impl: "lax" (XLA's convs; its VJP takes the kernel gradient as the adjoint strided
            conv's, which cuDNN runs as a backward-filter), "fast" (col2im of one matrix
            product, or Winograd products) or None for ``default_impl()``. Both are
            reverse-mode only (custom VJPs rule out jax.jvp / jacfwd).

    Returns:
        [N, *O, Cout] with O = (S - 1) * stride + K - lo - hi.

    Raises:
        ValueError: on rank, channel, stride or padding mismatch, an empty output, or an
            unknown impl.
    """
    strides, padding, impl = _check_args("conv_transpose", x, kernel, strides, padding, impl)
    if impl == "lax":
        return _conv_transpose_lax(x, kernel, strides, padding)
    return fast.conv_transpose(x, kernel, strides, padding)


def _conv_transpose_dilated(x, kernel, strides, padding) -> jax.Array:
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
        dimension_numbers=dimension_numbers(num_spatial),
    )


def _adjoint_conv(u, kernel, strides, padding) -> jax.Array:
    """The strided conv whose adjoint ``conv_transpose`` is: [N, *O, Cout] -> [N, *S, Cin]."""
    return lax.conv_general_dilated(
        u,
        jnp.swapaxes(kernel, -1, -2),
        strides,
        padding,
        dimension_numbers=dimension_numbers(u.ndim - 2),
    )


# Autodiff of the lhs-dilated conv w.r.t. its kernel gives a conv with whole-clip windows that
# XLA:GPU runs as a cuDNN *forward* conv: on an H200 it took 13.7 of the 17.6 ms of the 16x32x32
# float32 GAN step. The same gradient, written as the kernel gradient of the adjoint strided
# conv, is a pattern XLA:GPU maps to cuDNN's backward-filter kernel. The rule is built from lax
# convs, so gradients of gradients work; forward mode (jax.jvp) does not, as on the fast route.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_transpose_lax(x, kernel, strides, padding) -> jax.Array:
    """``conv_transpose`` on XLA's convs: lhs-dilated forward, strided-conv backward."""
    return _conv_transpose_dilated(x, kernel, strides, padding)


def _conv_transpose_lax_fwd(x, kernel, strides, padding):
    return _conv_transpose_dilated(x, kernel, strides, padding), (x, kernel)


def _conv_transpose_lax_bwd(strides, padding, residuals, grad_out):
    x, kernel = residuals
    grad_x, kernel_vjp = jax.vjp(lambda k: _adjoint_conv(grad_out, k, strides, padding), kernel)
    # <grad_out, A_k^T x> = <A_k grad_out, x>: the input gradient is the strided conv of the
    # output gradient, and the kernel gradient is that conv's kernel VJP at cotangent x.
    (grad_kernel,) = kernel_vjp(x)
    return grad_x, grad_kernel


_conv_transpose_lax.defvjp(_conv_transpose_lax_fwd, _conv_transpose_lax_bwd)
