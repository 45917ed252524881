"""gan_jax.ops.products: bf16 convolutions' products on bf16 operands with float32 accumulation
on CPUs with AMX, their own dtype elsewhere; both choices, whatever CPU runs the tests."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.ops import conv as conv_ops
from gan_jax.ops import fast, products, winograd

BF16 = jnp.dtype(jnp.bfloat16)
F32 = jnp.dtype(jnp.float32)
ARGS = ((2, 2), ((1, 1),) * 2)


@pytest.fixture(autouse=True)
def _decide_again():
    products.bf16_products.cache_clear()
    yield
    products.bf16_products.cache_clear()


def test_cpu_flags_reads_the_first_processor(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    assert products.cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "amx_bf16", "amx_tile"}
    assert products.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_the_choice_follows_amx_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(products.ENV_VAR, raising=False)
    monkeypatch.setattr(products, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert products.bf16_products()
    products.bf16_products.cache_clear()
    monkeypatch.setattr(products, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not products.bf16_products()
    products.bf16_products.cache_clear()
    monkeypatch.setenv(products.ENV_VAR, "1")
    assert products.bf16_products()
    with products.bf16_products_route(False):
        assert not products.bf16_products()
    assert products.bf16_products()  # restored
    products.bf16_products.cache_clear()
    monkeypatch.setenv(products.ENV_VAR, "yes")
    with pytest.raises(ValueError, match=f"{products.ENV_VAR}='yes'.*set it to one of '1'"):
        products.bf16_products()


def test_only_bf16_takes_bf16_operands():
    with products.bf16_products_route(True):
        assert products.operand_dtype(jnp.bfloat16) == BF16
        assert products.operand_dtype(jnp.float32) is None
    with products.bf16_products_route(False):
        assert products.operand_dtype(jnp.bfloat16) is None


def _layer(which: str, rng):
    """A 2-D layer of 16 x 16 blocks at depth 64 (Winograd on both dims; F(4, 2) in float32)."""
    small, large = (2, 16, 16, 16), (2, 32, 32, 16)
    x = rng.standard_normal(large if which == "conv" else small)
    op = conv_ops.conv if which == "conv" else conv_ops.conv_transpose
    kernel = rng.standard_normal((4, 4, 16, 16)) * 0.05
    return op, jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32)


def _dots(fn, *args):
    """(operand dtypes, result dtype) of every dot_general in fn's jaxpr, nested ones included."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append((tuple(v.aval.dtype for v in eqn.invars), eqn.outvars[0].aval.dtype))
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_bf16_products_accumulate_in_float32_and_stay_accurate(which, monkeypatch):
    """With the choice on, every product of a bf16 conv, its input and kernel gradients
    multiplies bf16 operands into float32, Winograd takes F(2, 2) (F(4, 2)'s coefficients
    amplify bf16 rounding: 2.2 % off on a video GAN layer), and the result stays within 3x
    XLA's own bf16 error (measured 2.5x on 3-D video GAN layers: 0.7 % against 0.3 %; the
    route in float32 is within 1.5x). Off, the Winograd products run in float32."""
    monkeypatch.setattr(fast, "_WINOGRAD_MIN_ROWS", 1)  # Winograd on a 2-clip batch
    op, x, kernel = _layer(which, np.random.default_rng(0))
    exact = np.asarray(op(x, kernel, *ARGS, impl="lax"), np.float64)
    xb, kb = x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)

    def loss(x, kernel):
        return jnp.sum(op(x, kernel, *ARGS, impl="fast").astype(jnp.float32) ** 2)

    def error(out):
        return np.linalg.norm(np.asarray(out, np.float64) - exact) / np.linalg.norm(exact)

    lax_error = error(op(xb, kb, *ARGS, impl="lax"))
    grad_exact = jax.grad(lambda x, k: jnp.sum(op(x, k, *ARGS, impl="lax") ** 2), (0, 1))(x, kernel)
    errors = {}
    for on in (True, False):
        with products.bf16_products_route(on):
            out = jax.jit(lambda x, k: op(x, k, *ARGS, impl="fast"))(xb, kb)
            assert out.dtype == BF16
            errors[on] = error(out)
            dots = _dots(jax.grad(loss, (0, 1)), xb, kb)
            grads = jax.jit(jax.grad(loss, (0, 1)))(xb, kb)
        assert len(dots) >= 3, dots  # the forward product, and one per gradient
        if on:
            assert all(ops == (BF16, BF16) and out == F32 for ops, out in dots), dots
        else:
            assert all(ops == (F32, F32) and out == F32 for ops, out in dots), dots
        for got, want in zip(grads, grad_exact):
            relative = np.linalg.norm(np.asarray(got, np.float64) - want) / np.linalg.norm(want)
            assert relative < 0.02, (on, relative)
    assert errors[True] < 3 * lax_error, (errors, lax_error)
    assert errors[False] < 1.5 * lax_error, (errors, lax_error)


def test_bf16_products_take_f2_tiles_only():
    kernel = jnp.zeros((2, 2, 64, 8), jnp.bfloat16)
    with products.bf16_products_route(True):
        assert winograd._spec(2, (17, 17), kernel, jnp.bfloat16)[3] == (2, 2)
        assert winograd._spec(2, (17, 17), kernel, jnp.float32)[3] == (4, 4)
    with products.bf16_products_route(False):
        assert winograd._spec(2, (17, 17), kernel, jnp.bfloat16)[3] == (4, 4)


def test_im2col_products_of_bf16_accumulate_in_float32():
    """The thin RGB layers stay on im2col: their bf16 products return float32 with the choice
    on, bf16 with it off, and float32 convolutions are the same either way."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((2, 8, 8, 3)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((4, 4, 3, 8)) * 0.1, jnp.float32)

    def loss(x, kernel):
        return jnp.sum(conv_ops.conv(x, kernel, *ARGS, impl="fast").astype(jnp.float32) ** 2)

    f32 = {}
    for on in (True, False):
        with products.bf16_products_route(on):
            dots = _dots(jax.grad(loss, (0, 1)), x.astype(BF16), kernel.astype(BF16))
            f32[on] = jax.jit(jax.grad(loss, (0, 1)))(x, kernel)
        want = (BF16, BF16), F32 if on else BF16
        assert dots and all(dot == want for dot in dots), (on, dots)
    for a, b in zip(f32[True], f32[False]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
