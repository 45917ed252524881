"""References and checks shared by the convolution tests (``from conv_reference import ...``;
tests/ is on sys.path under pytest's default import mode).

The reference is XLA's own convolution (``lax``); every check compares a route's output, its
VJP and gradients of gradients (R1-style penalties) to it. Inputs come from NumPy, not
jax.random: eager jax.random compiles once per shape, which dominates runtime.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gan_jax.ops import conv as conv_ops

# Conv geometries: (x shape [N, *S, Cin], kernel spatial K, strides, padding, Cout). Tiny on
# purpose. conv_transpose cases are their mirror (``transpose_inputs``).
CASES = {
    "3d_k444_s222_p1": ((2, 4, 8, 8, 3), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3, 5),
    "3d_k344_s122_p1": ((2, 4, 8, 8, 3), (3, 4, 4), (1, 2, 2), ((1, 1),) * 3, 4),
    "3d_T1_k144_s122": ((2, 1, 8, 8, 4), (1, 4, 4), (1, 2, 2), ((0, 0), (1, 1), (1, 1)), 3),
    "2d_k4_s2_p1": ((2, 8, 8, 3), (4, 4), (2, 2), ((1, 1),) * 2, 6),
    "2d_k3_s2_odd_asym": ((2, 7, 9, 3), (3, 3), (2, 2), ((1, 0), (0, 2)), 5),
    "2d_k5_s3_big_pad": ((1, 10, 6, 2), (5, 2), (3, 1), ((4, 3), (2, 0)), 3),
    # Sizes where the space-to-depth route must crop unread input rows: (S + lo + hi - K) % s
    # leaves a remainder that does not fit in the zero-padded kernel block.
    "3d_k444_s222_odd": ((1, 5, 7, 9, 2), (4, 4, 4), (2, 2, 2), ((1, 1), (0, 1), (2, 0)), 3),
    "1d_k5_s3": ((2, 13, 3), (5,), (3,), ((2, 1),), 4),
    # Kernel smaller than the stride.
    "2d_k1x2_s2x3": ((1, 6, 7, 2), (1, 2), (2, 3), ((0, 1), (1, 0)), 3),
    # One output along a padded dim: the fast route crops the taps that only meet padding
    # (the video GAN's T 2 -> 1 block; an asymmetric window; input rows the window never reads).
    "3d_T2to1_k444_s222": ((2, 2, 4, 4, 3), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3, 4),
    "2d_single_out_asym": ((1, 3, 5, 2), (4, 3), (2, 1), ((2, 0), (1, 1)), 3),
    "2d_single_out_unread": ((2, 5, 4, 2), (3, 2), (4, 2), ((1, 0), (0, 0)), 3),
    # 8 outputs per dim: the Winograd route's F(4, 2) tiles.
    "2d_k4_s2_p1_8x8": ((2, 16, 16, 3), (4, 4), (2, 2), ((1, 1),) * 2, 4),
}


def _dimension_numbers(num_spatial):
    return {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}[
        num_spatial
    ]


def lax_conv(x, kernel, strides, padding):
    dn = _dimension_numbers(x.ndim - 2)
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=dn)


def lax_conv_transpose(x, kernel, strides, padding):
    """lax.conv_transpose with the padding that gives PyTorch ConvTranspose semantics."""
    kernel_sizes = kernel.shape[:-2]
    lax_padding = [(k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel_sizes, padding)]
    return lax.conv_transpose(
        x,
        jnp.swapaxes(kernel, -1, -2),
        strides,
        lax_padding,
        dimension_numbers=_dimension_numbers(x.ndim - 2),
        transpose_kernel=True,
    )


def random_array(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def assert_close(actual, expected, what, tol=1e-5):
    """Equal within ``tol`` relative to each value and to the largest |expected| (at least 1)."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    atol = tol * max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=tol, atol=atol, err_msg=what)


def conv_inputs(spec):
    """(x, kernel, strides, padding) for a conv geometry of ``CASES``' form."""
    x_shape, kernel_sizes, strides, padding, cout = spec
    x = random_array(0, x_shape)
    kernel = random_array(1, (*kernel_sizes, x_shape[-1], cout))
    return x, kernel, strides, padding


def transpose_inputs(spec):
    """Inputs for conv_transpose: x has the conv's output shape, kernel is [*K, Cin, Cout]."""
    x, kernel, strides, padding = conv_inputs(spec)
    conv_out = jax.eval_shape(lambda: lax_conv(x, kernel, strides, padding))
    x_t = random_array(2, conv_out.shape)
    kernel_t = random_array(3, (*kernel.shape[:-2], kernel.shape[-1], kernel.shape[-2]))
    return x_t, kernel_t, strides, padding


def op_and_inputs(which, spec):
    """(op(x, kernel, impl) of ``gan_jax.ops.conv``, x, kernel) for "conv" or "conv_transpose"
    on the geometry ``spec`` (conv_transpose: its mirror). impl "xla" is the reference: XLA's
    own op differentiated by JAX, with no custom VJP (the "lax" route's conv_transpose has one)."""
    if which == "conv":
        x, kernel, strides, padding = conv_inputs(spec)
        fn, ref_fn = conv_ops.conv, lax_conv
    else:
        x, kernel, strides, padding = transpose_inputs(spec)
        fn, ref_fn = conv_ops.conv_transpose, lax_conv_transpose

    def op(x, kernel, impl):
        if impl == "xla":
            return ref_fn(x, kernel, strides, padding)
        return fn(x, kernel, strides, padding, impl=impl)

    return op, x, kernel


def check_value_and_grads(fn, ref_fn, x, kernel, what):
    """Compares fn(x, kernel) and its VJP w.r.t. x and kernel to ref_fn; returns fn's output."""

    @jax.jit
    def value_and_vjp(x, kernel, cotangent):
        out, vjp = jax.vjp(fn, x, kernel)
        ref_out, ref_vjp = jax.vjp(ref_fn, x, kernel)
        return out, ref_out, vjp(cotangent), ref_vjp(cotangent)

    cotangent = random_array(4, jax.eval_shape(ref_fn, x, kernel).shape)
    out, ref_out, (grad_x, grad_kernel), (ref_grad_x, ref_grad_kernel) = value_and_vjp(
        x, kernel, cotangent
    )
    assert_close(out, ref_out, f"{what} output")
    assert_close(grad_x, ref_grad_x, f"{what} grad x")
    assert_close(grad_kernel, ref_grad_kernel, f"{what} grad kernel")
    return out


def gradient_penalty(op, x, kernel, impl):
    """R1-style penalty ||d sum(tanh(op(x)) * w) / dx||^2, as a function of (x, kernel)."""
    weights = random_array(5, jax.eval_shape(lambda: op(x, kernel, "xla")).shape)

    def loss(x, kernel):
        return jnp.sum(jnp.tanh(op(x, kernel, impl)) * weights)

    grad_x = jax.grad(loss)(x, kernel)
    return jnp.sum(grad_x**2)


def kernel_gradient_penalty(op, x, kernel, impl):
    """||d sum(tanh(op(x)) * w) / dkernel||^2: its gradient runs the kernel gradient's VJP."""
    weights = random_array(6, jax.eval_shape(lambda: op(x, kernel, "xla")).shape)

    def loss(x, kernel):
        return jnp.sum(jnp.tanh(op(x, kernel, impl)) * weights)

    grad_kernel = jax.grad(loss, argnums=1)(x, kernel)
    return jnp.sum(grad_kernel**2)


def check_grad_of_grad(op, x, kernel, impl, penalty, what, tol=1e-5):
    """The gradient of ``penalty`` w.r.t. (x, kernel) through ``impl`` equals XLA's op
    differentiated by JAX."""
    penalty_grad = jax.jit(jax.grad(penalty, argnums=(1, 2)), static_argnums=(0, 3))
    ref_grad_x, ref_grad_kernel = penalty_grad(op, x, kernel, "xla")
    grad_x, grad_kernel = penalty_grad(op, x, kernel, impl)
    what = f"{what} {penalty.__name__}"
    assert_close(grad_x, ref_grad_x, f"{what} grad-of-grad x", tol)
    assert_close(grad_kernel, ref_grad_kernel, f"{what} grad-of-grad kernel", tol)


CONV_WINDOW = re.compile(r"convolution\(.*?window=\{([^}]*)\}")


def compiled_hlo(fn, *args) -> str:
    return jax.jit(fn).lower(*args).compile().as_text()


def slow_windows(windows):
    """Windows XLA:CPU runs in its slow generic loop: strided or dilated."""
    return [w for w in windows if re.search(r"stride=|lhs_dilate=|rhs_dilate=", w)]
