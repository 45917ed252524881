"""The "s2d" convolution route, for comparison in ``benchmarks/conv_ops.py`` only.

The library's previous CPU route: a strided conv as pad/crop + space-to-depth + one stride-1
"valid" XLA convolution (``gan_jax.ops.blocks``), and the transposed conv as its linear
transpose with a custom VJP, so that forward and backward run only stride-1, undilated
convolutions. XLA:CPU runs those well below its matrix-product speed, which is why the
library's CPU route ("fast", ``gan_jax.ops.fast``) uses matrix products instead.

Same semantics as ``gan_jax.ops.conv.conv`` / ``conv_transpose``; no argument checks
(strides and padding are tuples of ints). ``conv_transpose`` is reverse-mode only.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.ops import blocks
from gan_jax.ops.conv import dimension_numbers


def conv(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
    """Strided conv x [N, *S, Cin], kernel [*K, Cin, Cout] as one stride-1 conv on blocks."""
    num_spatial = x.ndim - 2
    geometry = (tuple(x.shape[1:-1]), tuple(kernel.shape[:num_spatial]), strides, padding)
    return lax.conv_general_dilated(
        blocks.to_blocks(x, geometry),
        blocks.kernel_to_depth(kernel, strides),
        window_strides=(1,) * num_spatial,
        padding=((0, 0),) * num_spatial,
        dimension_numbers=dimension_numbers(num_spatial),
    )


def _conv_transpose_primal(x, kernel, strides, padding) -> jax.Array:
    num_spatial = x.ndim - 2
    out_sizes = blocks.transpose_out_sizes(
        x.shape[1:-1], kernel.shape[:num_spatial], strides, padding
    )
    kernel_t = jnp.swapaxes(kernel, -1, -2)  # [*K, Cout, Cin]: the conv this op is adjoint to.
    out_struct = jax.ShapeDtypeStruct((x.shape[0], *out_sizes, kernel.shape[-1]), x.dtype)
    adjoint = jax.linear_transpose(lambda u: conv(u, kernel_t, strides, padding), out_struct)
    (y,) = adjoint(x)
    return y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
    """Transposed conv (PyTorch semantics) with only stride-1 convs forward and backward."""
    return _conv_transpose_primal(x, kernel, strides, padding)


def _conv_transpose_fwd(x, kernel, strides, padding):
    return _conv_transpose_primal(x, kernel, strides, padding), (x, kernel)


def _conv_transpose_bwd(strides, padding, residuals, grad_out):
    # y = A^T x with A u = conv(u, K^T). Then dL/dx = A g (the s2d conv of the output
    # gradient), and dL/dK^T is the kernel gradient of that same conv at cotangent x:
    # <g, A^T x> = <conv(g, K^T), x>. Both are stride-1 convs on space-to-depth tensors.
    x, kernel = residuals
    kernel_t = jnp.swapaxes(kernel, -1, -2)
    grad_x, kernel_vjp = jax.vjp(lambda k_t: conv(grad_out, k_t, strides, padding), kernel_t)
    (grad_kernel_t,) = kernel_vjp(x)
    return grad_x.astype(x.dtype), jnp.swapaxes(grad_kernel_t, -1, -2).astype(kernel.dtype)


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)
