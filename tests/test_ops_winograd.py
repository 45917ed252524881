"""Tests for gan_jax.ops.winograd against lax's stride-1 valid convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conv_reference import random_array
from jax import lax

from gan_jax.ops import winograd

# (block sizes B, kernel taps k): every dim F(2, 2); F(2, 2) in time with F(4, 2) in space
# (8 and 16 outputs); 1-D F(4, 2); a 3-tap dim left direct; an odd number of outputs left
# direct; one tile per dim.
CASES = [
    ((5, 5, 5), (2, 2, 2)),
    ((5, 9, 17), (2, 2, 2)),
    ((9,), (2,)),
    ((3, 5, 7), (2, 2, 3)),
    ((4, 5), (2, 2)),
    ((3, 3, 3), (2, 2, 2)),
]


def _lax_valid_conv(blocks, kernel):
    n = blocks.ndim - 2
    numbers = {
        1: ("NWC", "WIO", "NWC"),
        2: ("NHWC", "HWIO", "NHWC"),
        3: ("NDHWC", "DHWIO", "NDHWC"),
    }
    return lax.conv_general_dilated(
        blocks, kernel, (1,) * n, "VALID", dimension_numbers=numbers[n], precision="highest"
    )


def _close(got, want, what):
    scale = max(float(jnp.abs(want).max()), 1.0)
    np.testing.assert_allclose(
        np.asarray(got), np.asarray(want), rtol=1e-5, atol=2e-5 * scale, err_msg=what
    )


# The default suite runs three of the cases (3-D F(2, 2), 1-D F(4, 2), a 2-D mix); the rest
# under -m slow (each compiles gradients of gradients, ~20 s on 2 cores).
_DEFAULT = (((5, 5, 5), (2, 2, 2)), ((9,), (2,)), ((4, 5), (2, 2)))


@pytest.mark.parametrize(
    "block_sizes, taps",
    [c if c in _DEFAULT else pytest.param(*c, marks=pytest.mark.slow) for c in CASES],
)
def test_conv_and_adjoint_match_lax(block_sizes, taps):
    blocks = random_array(0, (2, *block_sizes, 3))
    kernel = random_array(1, (*taps, 3, 4))
    assert any(winograd.winograd_dims(block_sizes, taps))
    if 16 in block_sizes or 17 in block_sizes or block_sizes == (9,):
        assert 4 in winograd.winograd_dims(block_sizes, taps)
    out = winograd.conv(blocks, kernel)
    _close(out, _lax_valid_conv(blocks, kernel), "conv")
    cotangent = random_array(2, out.shape)
    (want,) = jax.linear_transpose(lambda b: _lax_valid_conv(b, kernel), blocks)(cotangent)
    _close(winograd.conv_transpose(cotangent, kernel, block_sizes), want, "conv_transpose")

    # First and second derivatives through the custom VJPs of all three products.
    def loss(conv_fn, blocks, kernel):
        return jnp.sum(jnp.tanh(conv_fn(blocks, kernel)) * cotangent)

    def penalty(conv_fn, blocks, kernel):
        grads = jax.grad(loss, argnums=(1, 2))(conv_fn, blocks, kernel)
        return sum(jnp.sum(g**2) for g in grads)

    for fn in (loss, penalty):
        # Compiled: op by op, each small op of a gradient of a gradient compiles on its own
        # (twice the time).
        grad = jax.jit(jax.grad(fn, argnums=(1, 2)), static_argnums=0)
        got = grad(winograd.conv, blocks, kernel)
        want = grad(_lax_valid_conv, blocks, kernel)
        for g, w, name in zip(got, want, ("blocks", "kernel")):
            _close(g, w, f"{fn.__name__} d/d{name}")


def test_conv_transpose_gradients_match_lax():
    block_sizes, taps = (5, 5, 9), (2, 2, 2)
    kernel = random_array(1, (*taps, 3, 4))
    y = random_array(2, (2, 4, 4, 8, 4))
    weights = random_array(3, (2, *block_sizes, 3))

    def lax_adjoint(y, kernel):
        blocks = jax.ShapeDtypeStruct((2, *block_sizes, 3), jnp.float32)
        return jax.linear_transpose(lambda b: _lax_valid_conv(b, kernel), blocks)(y)[0]

    def loss(fn, y, kernel):
        return jnp.sum(jnp.tanh(fn(y, kernel)) * weights)

    ours = lambda y, k: winograd.conv_transpose(y, k, block_sizes)  # noqa: E731
    grad = jax.jit(jax.grad(loss, (1, 2)), static_argnums=0)  # compiled, as above
    for got, want in zip(grad(ours, y, kernel), grad(lax_adjoint, y, kernel)):
        _close(got, want, "conv_transpose grad")


def test_transformed_kernel_has_m_plus_one_positions_per_dim():
    kernel = random_array(0, (2, 2, 3, 5, 6))
    w = winograd.transform_kernel(kernel, (2, 4, 0))
    assert w.shape == (3 * 5, 3 * 5, 6)
    # F(2, 2)'s middle position is g0 + g1; F(4, 2)'s last is g1 (the point at infinity).
    np.testing.assert_allclose(
        w[1 * 5 + 4].reshape(3, 5, 6), kernel[0, 1] + kernel[1, 1], rtol=1e-6
    )


def test_conv_without_a_qualifying_dim_raises():
    with pytest.raises(ValueError, match="two taps and an even number of outputs"):
        winograd.conv(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 2, 2, 2)))


@pytest.mark.parametrize("block_sizes, taps", [((5, 5, 9), (2, 2, 2)), ((3, 5, 7), (2, 2, 3))])
def test_products_one_position_at_a_time_match_lax(block_sizes, taps, monkeypatch):
    """Past `MAX_TRANSFORMED_BYTES` the products run one position of the first transformed
    dim at a time: one product per position in each direction, the same numbers."""
    monkeypatch.setattr(winograd, "MAX_TRANSFORMED_BYTES", 0)
    blocks = random_array(0, (2, *block_sizes, 3))
    kernel = random_array(1, (*taps, 3, 4))
    spec = winograd._spec(2, block_sizes, kernel, jnp.float32)
    assert winograd._position_chunks(spec)
    chunks = spec[3][0] + 1  # the first dim is transformed in both cases
    conv = winograd.conv
    assert str(jax.make_jaxpr(conv)(blocks, kernel)).count("dot_general") == chunks
    out = conv(blocks, kernel)
    _close(out, _lax_valid_conv(blocks, kernel), "conv")
    cotangent = random_array(2, out.shape)
    (want,) = jax.linear_transpose(lambda b: _lax_valid_conv(b, kernel), blocks)(cotangent)
    adjoint = jax.jit(lambda y, k: winograd.conv_transpose(y, k, block_sizes))
    _close(adjoint(cotangent, kernel), want, "conv_transpose")

    def loss(conv_fn, blocks, kernel):
        return jnp.sum(jnp.tanh(conv_fn(blocks, kernel)) * cotangent)

    grad = jax.jit(jax.grad(loss, argnums=(1, 2)), static_argnums=0)
    jaxpr = str(
        jax.make_jaxpr(jax.grad(loss, argnums=(1, 2)), static_argnums=0)(conv, blocks, kernel)
    )
    assert jaxpr.count("dot_general") == 3 * chunks  # forward, input and kernel gradients
    for g, w, name in zip(grad(conv, blocks, kernel), grad(_lax_valid_conv, blocks, kernel), "bk"):
        _close(g, w, f"d/d{name}")


def test_a_wide_kernel_of_few_tiles_takes_f22(monkeypatch):
    """F(4, 2)'s transformed kernel (5 positions per dim for 2 taps) outgrows the input of a
    conv with few tiles and many output channels; past `MAX_TRANSFORMED_KERNEL_BYTES` such a
    conv takes F(2, 2)."""
    blocks = random_array(0, (1, 9, 3))
    kernel = random_array(1, (2, 3, 32))  # 2 tiles of F(4, 2) for 32 output channels
    assert winograd._spec(1, (9,), kernel, jnp.float32)[3] == (4,)
    monkeypatch.setattr(winograd, "MAX_TRANSFORMED_KERNEL_BYTES", 0)
    assert winograd._spec(1, (9,), kernel, jnp.float32)[3] == (2,)
    narrow = random_array(1, (2, 3, 1))  # 1 channel: the kernel is smaller than the input
    assert winograd._spec(1, (9,), narrow, jnp.float32)[3] == (4,)
    _close(winograd.conv(blocks, kernel), _lax_valid_conv(blocks, kernel), "conv")
