"""Tests for gan_jax.ops.conv and its "fast" route (gan_jax.ops.fast): values, gradients and
HLO vs lax, and the choice of the route."""

import re

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from conv_reference import (
    CASES,
    CONV_WINDOW,
    assert_close,
    check_grad_of_grad,
    check_value_and_grads,
    compiled_hlo,
    conv_inputs,
    gradient_penalty,
    kernel_gradient_penalty,
    lax_conv,
    lax_conv_transpose,
    op_and_inputs,
    slow_windows,
    transpose_inputs,
)

from gan_jax.ops import blocks, fast, products, winograd
from gan_jax.ops import conv as conv_ops


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_matches_lax(case):
    x, kernel, strides, padding = conv_inputs(CASES[case])
    check_value_and_grads(
        lambda x, k: conv_ops.conv(x, k, strides, padding, impl="fast"),
        lambda x, k: lax_conv(x, k, strides, padding),
        x,
        kernel,
        f"conv[{case}, fast]",
    )


@pytest.mark.parametrize("impl, case", [(i, c) for i in ("lax", "fast") for c in sorted(CASES)])
def test_conv_transpose_matches_lax_conv_transpose(case, impl):
    x, kernel, strides, padding = transpose_inputs(CASES[case])
    check_value_and_grads(
        lambda x, k: conv_ops.conv_transpose(x, k, strides, padding, impl=impl),
        lambda x, k: lax_conv_transpose(x, k, strides, padding),
        x,
        kernel,
        f"conv_transpose[{case}, {impl}]",
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_transpose_is_adjoint_of_lax_conv(case):
    """Definition check: conv_transpose == linear_transpose of u -> conv(u, K^T)."""
    x, kernel, strides, padding = transpose_inputs(CASES[case])
    out_sizes = [
        (s - 1) * st + k - lo - hi
        for s, k, st, (lo, hi) in zip(x.shape[1:-1], kernel.shape[:-2], strides, padding)
    ]
    kernel_t = jnp.swapaxes(kernel, -1, -2)
    adjoint = jax.linear_transpose(
        lambda u: lax_conv(u, kernel_t, strides, padding),
        jax.ShapeDtypeStruct((x.shape[0], *out_sizes, kernel.shape[-1]), jnp.float32),
    )
    (expected,) = adjoint(x)
    for impl in ("lax", "fast"):
        actual = conv_ops.conv_transpose(x, kernel, strides, padding, impl=impl)
        assert_close(actual, expected, f"conv_transpose[{case}, {impl}] vs linear_transpose")


def test_conv_transpose_output_size_is_pytorch():
    """PyTorch ConvTranspose: out = (s - 1) * stride + k - 2 * p."""
    x = jnp.zeros((1, 2, 4, 4, 8))
    kernel = jnp.zeros((3, 4, 4, 8, 2))
    out = conv_ops.conv_transpose(x, kernel, (1, 2, 2), ((1, 1),) * 3, impl="fast")
    assert out.shape == (1, 2, 8, 8, 2)


@pytest.mark.parametrize(
    "case, penalty",
    [
        ("3d_k344_s122_p1", gradient_penalty),
        ("3d_k344_s122_p1", kernel_gradient_penalty),
        ("2d_k3_s2_odd_asym", kernel_gradient_penalty),
    ],
)
@pytest.mark.parametrize(
    "which, impl", [("conv", "fast"), ("conv_transpose", "fast"), ("conv_transpose", "lax")]
)
def test_grad_of_grad_matches_lax(case, which, impl, penalty):
    """R1-style penalties differentiated again; the "lax" route's conv_transpose has a custom
    VJP (its kernel gradient as a strided conv's), checked against JAX's own derivatives."""
    op, x, kernel = op_and_inputs(which, CASES[case])
    check_grad_of_grad(op, x, kernel, impl, penalty, f"{which}[{case}, {impl}]")


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_fast_bfloat16_is_as_accurate_as_xla_bfloat16(which, monkeypatch):
    """Blocks of 16 x 16 outputs take Winograd F(4, 2), whose transforms amplify rounding: in
    bf16 they were off by 2.6 % here (relative norm; 3.7 % on a 3-D video GAN layer) where
    XLA's bf16 convolution is off by 0.3 %. The route transforms in float32 and rounds only
    its output. (On a CPU with AMX the products may take bf16 operands instead, with F(2, 2)
    only: tests/test_ops_products.py; here they do not.)"""
    # A single clip has too few tiles for the route to choose Winograd: lift that floor.
    monkeypatch.setattr(fast, "_WINOGRAD_MIN_ROWS", 1)
    rng = np.random.default_rng(0)
    # 2-D [1, 16, 16, 16] <-> [1, 32, 32, 16]: blocks of 16 x 16 outputs, depth 64.
    small, large = (1, 16, 16, 16), (1, 32, 32, 16)
    if which == "conv":
        x, op = rng.standard_normal(large), conv_ops.conv
    else:
        x, op = rng.standard_normal(small), conv_ops.conv_transpose
    x = jnp.asarray(x, jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((4, 4, 16, 16)) * 0.05, jnp.float32)
    args = ((2, 2), ((1, 1),) * 2)
    exact = np.asarray(op(x, kernel, *args, impl="lax"), np.float64)

    def error(impl):
        out = op(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16), *args, impl=impl)
        assert out.dtype == jnp.bfloat16  # bf16 in, bf16 out
        return np.linalg.norm(np.asarray(out, np.float64) - exact) / np.linalg.norm(exact)

    with products.bf16_products_route(False):
        fast_error = error("fast")
    assert fast_error < 1.5 * error("lax"), (fast_error, error("lax"))


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_jit_vmap(which, impl="fast"):
    spec = CASES["3d_k444_s222_p1"]
    if which == "conv":
        x, kernel, strides, padding = conv_inputs(spec)
        fn, ref_fn = conv_ops.conv, lax_conv
    else:
        x, kernel, strides, padding = transpose_inputs(spec)
        fn, ref_fn = conv_ops.conv_transpose, lax_conv_transpose
    # A leading vmapped axis over both x and kernel (e.g. an ensemble of layers).
    xs = jnp.stack([x, 2.0 * x])
    kernels = jnp.stack([kernel, -kernel])

    def loss(x, kernel):
        return jnp.sum(fn(x, kernel, strides, padding, impl=impl) ** 2)

    def ref_loss(x, kernel):
        return jnp.sum(ref_fn(x, kernel, strides, padding) ** 2)

    batched = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1))))
    ref_batched = jax.jit(jax.vmap(jax.value_and_grad(ref_loss, argnums=(0, 1))))
    (values, (grad_x, grad_kernel)) = batched(xs, kernels)
    (ref_values, (ref_grad_x, ref_grad_kernel)) = ref_batched(xs, kernels)
    assert_close(values, ref_values, f"{which} vmap values")
    assert_close(grad_x, ref_grad_x, f"{which} vmap grad x")
    assert_close(grad_kernel, ref_grad_kernel, f"{which} vmap grad kernel")


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_fast_route_compiles_to_products_only(which, case="2d_k3_s2_odd_asym"):
    """ "fast": matrix products and no convolution at all, in the forward, the gradient and
    the gradient of a gradient."""
    op, x, kernel = op_and_inputs(which, CASES[case])

    def grads(x, kernel, impl):
        return jax.grad(lambda x, k: jnp.sum(op(x, k, impl) ** 2), argnums=(0, 1))(x, kernel)

    def penalty_grads(x, kernel, impl):
        return jax.grad(gradient_penalty, argnums=(1, 2))(op, x, kernel, impl)

    for name, program in [("forward", op), ("grad", grads), ("grad-of-grad", penalty_grads)]:
        fast_hlo = compiled_hlo(lambda x, k, p=program: p(x, k, "fast"), x, kernel)
        assert " dot(" in fast_hlo, f"{which}[{case}] {name}: fast route has no dot"
        assert not CONV_WINDOW.findall(fast_hlo), f"{which}[{case}] {name}: fast has a conv"
    # The same patterns on the lax route must find its strided/dilated convs, which shows
    # they still match what XLA prints.
    lax_windows = CONV_WINDOW.findall(compiled_hlo(lambda x, k: grads(x, k, "lax"), x, kernel))
    assert slow_windows(lax_windows), lax_windows


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_fast_route_skips_taps_that_only_meet_padding(
    monkeypatch, which, case="3d_T2to1_k444_s222"
):
    """T 2 -> 1 with kernel 4 and padding 1: only the middle 2 of the 4 time taps meet input,
    so every product of the forward and backward contracts (or makes) 2 * 4 * 4 * C taps,
    not 4 * 4 * 4 * C (the values are checked against lax by the tests above)."""
    monkeypatch.setattr(fast, "_WINOGRAD", False)  # the im2col products, as for thin convs
    op, x, kernel = op_and_inputs(which, CASES[case])
    channels = kernel.shape[-2] if which == "conv" else kernel.shape[-1]
    hlo = compiled_hlo(
        jax.grad(lambda x, k: jnp.sum(op(x, k, "fast") ** 2), argnums=(0, 1)), x, kernel
    )
    shapes = [
        tuple(int(d) for d in dims.split(","))
        for dims in re.findall(r"= f32\[([\d,]+)\]\{[\d,]*\} dot\(", hlo)
    ]
    assert shapes, "no dot in the fast route's HLO"
    tap_dims = {d for shape in shapes for d in shape if d % channels == 0 and d > channels * 4}
    assert tap_dims == {2 * 4 * 4 * channels}, (shapes, channels)


# Cases whose edge outputs meet padding: T 4 -> 2 (a quarter of the time taps), T 8 -> 4
# (an eighth), an asymmetric 2-D window.
SPLIT_CASES = {
    "3d_T4to2": ((2, 4, 4, 4, 3), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3, 4),
    "3d_T8to4": ((1, 8, 4, 4, 2), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3, 3),
    "2d_asym": ((2, 6, 5, 3), (4, 3), (2, 1), ((2, 1), (1, 1)), 2),
}


def _dot_flops(hlo: str) -> int:
    """2 * M * N * K summed over the dots of a compiled HLO module."""
    flops = 0
    for line in hlo.splitlines():
        match = re.search(
            r"= f32\[([\d,]+)\]\{[\d,]*\} dot\(%?([\w.\-]+), .*"
            r"lhs_contracting_dims=\{(\d+)\}",
            line,
        )
        if not match:
            continue
        out_dims, lhs, contracting = match.groups()
        lhs_shape = re.search(r"%" + re.escape(lhs) + r" = f32\[([\d,]+)\]", hlo).group(1)
        contracted = int(lhs_shape.split(",")[int(contracting)])
        flops += 2 * contracted * int(np.prod([int(d) for d in out_dims.split(",")]))
    return flops


def _grads_hlo(op, x, kernel) -> str:
    """Compiled HLO of the fast route's gradients, traced anew (jax.jit would reuse the first
    trace of the same function, and with it the module constants patched since)."""

    def grads(x, kernel):
        return jax.grad(lambda x, k: jnp.sum(op(x, k, "fast") ** 2), argnums=(0, 1))(x, kernel)

    return compiled_hlo(lambda x, k: grads(x, k), x, kernel)


def _subset(cases, default) -> list:
    """`(which, case)` pairs of both ops over `cases`: those in `default` run in the default
    suite, the rest under `-m slow` (each compiles several gradient programs, ~7 s on 2 cores)."""
    pairs = [(which, case) for case in cases for which in ("conv", "conv_transpose")]
    return [
        pair if pair in default else pytest.param(*pair, marks=pytest.mark.slow) for pair in pairs
    ]


@pytest.mark.parametrize(
    "which, case",
    _subset(sorted(SPLIT_CASES), {("conv", "3d_T4to2"), ("conv_transpose", "2d_asym")}),
)
def test_fast_route_splits_edge_outputs(monkeypatch, which, case):
    """Edge outputs in their own cropped regions: same values, gradients and gradients of
    gradients as lax, with fewer multiply-adds than the unsplit block route."""
    monkeypatch.setattr(fast, "_MIN_SPLIT_ROWS", 1)  # the shapes here are tiny
    monkeypatch.setattr(fast, "_WINOGRAD", False)  # convs that qualify take it instead
    op, x, kernel = op_and_inputs(which, SPLIT_CASES[case])
    ref = lambda x, k: op(x, k, "lax")  # noqa: E731
    check_value_and_grads(lambda x, k: op(x, k, "fast"), ref, x, kernel, f"{which}[{case}]")
    check_grad_of_grad(op, x, kernel, "fast", gradient_penalty, f"{which}[{case}]")
    split_flops = _dot_flops(_grads_hlo(op, x, kernel))
    monkeypatch.setattr(fast, "_MIN_SPLIT_SAVING", 2.0)  # never split
    dense_flops = _dot_flops(_grads_hlo(op, x, kernel))
    assert 0 < split_flops < 0.95 * dense_flops, (split_flops, dense_flops)


# Cases with dims that run as Winograd F(2, 2): every dim (T 4 -> 2, H, W 8 -> 4); a kernel-3
# stride-1 time dim that stays direct; a cropped single-output time dim; an odd number of
# outputs (direct) between two transformed dims; 1-D stride 3 (two taps of 3-blocks); 8
# outputs per dim (F(4, 2)).
WINOGRAD_CASES = (
    "2d_k4_s2_p1_8x8",
    "3d_k444_s222_p1",
    "3d_k344_s122_p1",
    "3d_T2to1_k444_s222",
    "3d_k444_s222_odd",
    "2d_k4_s2_p1",
    "1d_k5_s3",
)


# By default: the video GAN's kernel-4 stride-2 layer both ways, F(4, 2), a single-output dim.
_WINOGRAD_DEFAULT = {
    ("conv", "3d_k444_s222_p1"),
    ("conv_transpose", "3d_k444_s222_p1"),
    ("conv_transpose", "2d_k4_s2_p1_8x8"),
    ("conv", "3d_T2to1_k444_s222"),
}


@pytest.mark.parametrize("which, case", _subset(WINOGRAD_CASES, _WINOGRAD_DEFAULT))
def test_winograd_route_matches_lax(monkeypatch, which, case):
    """Values, gradients and both gradient penalties equal lax's; the HLO runs batched
    products (the Winograd positions) with fewer multiply-adds than the im2col route."""
    # The tiny test shapes are under the route's size limits; lift them.
    monkeypatch.setattr(fast, "_WINOGRAD_MIN_DEPTH", 1)
    monkeypatch.setattr(fast, "_WINOGRAD_MIN_ROWS", 1)
    op, x, kernel = op_and_inputs(which, CASES[case])
    ref = lambda x, k: op(x, k, "lax")  # noqa: E731
    check_value_and_grads(lambda x, k: op(x, k, "fast"), ref, x, kernel, f"{which}[{case}]")
    for penalty in (gradient_penalty, kernel_gradient_penalty):
        # The transforms' adds round too: against float64, these gradients of gradients
        # were off by up to 1.6e-5 of their largest value (lax's own f32 convs: 9.5e-6).
        check_grad_of_grad(op, x, kernel, "fast", penalty, f"{which}[{case}]", tol=5e-5)
    hlo = _grads_hlo(op, x, kernel)
    assert "lhs_batch_dims={0}" in hlo, f"{which}[{case}]: no batched (Winograd) product"
    winograd_flops = _dot_flops(hlo)
    monkeypatch.setattr(fast, "_WINOGRAD", False)
    im2col_flops = _dot_flops(_grads_hlo(op, x, kernel))
    assert 0 < winograd_flops <= 0.8 * im2col_flops, (winograd_flops, im2col_flops)


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_winograd_takes_one_f42_tile_where_the_rows_allow(monkeypatch, which):
    """A dim of exactly 4 outputs takes F(4, 2) as one tile where the products keep
    ``_F4_ONE_TILE_MIN_ROWS`` rows, else F(2, 2); values, gradients and a gradient penalty
    through such a conv (the tiny case, with the limits lifted) equal lax's."""
    kernel = jnp.zeros((2, 2, 2, 8, 4))
    # D's 8x32x32 -> 4x16x16 layer at 16x64x64, batch 32: 512 rows with F(4, 2) in time too.
    assert winograd._spec(32, (5, 17, 17), kernel, jnp.float32)[3] == (4, 4, 4)
    assert winograd._spec(16, (5, 17, 17), kernel, jnp.float32)[3] == (2, 4, 4)  # 256 rows
    assert winograd._spec(32, (5, 9, 9), kernel, jnp.float32)[3] == (2, 4, 4)  # 16x32x32: 128
    monkeypatch.setattr(fast, "_WINOGRAD_MIN_DEPTH", 1)
    monkeypatch.setattr(fast, "_WINOGRAD_MIN_ROWS", 1)
    monkeypatch.setattr(winograd, "_F4_ONE_TILE_MIN_ROWS", 1)
    # 2 x 4 x 4 outputs: F(2, 2) in time, one F(4, 2) tile in each spatial dim (75 positions).
    assert winograd._spec(2, (3, 5, 5), kernel, jnp.float32)[3] == (2, 4, 4)
    op, x, kernel = op_and_inputs(which, CASES["3d_k444_s222_p1"])
    ref = lambda x, k: op(x, k, "lax")  # noqa: E731
    check_value_and_grads(lambda x, k: op(x, k, "fast"), ref, x, kernel, which)
    # F(4, 2) in two dims where F(2, 2) was rounds more: against float64 this gradient of a
    # gradient was off by up to 6.6e-5 of its largest value (F(2, 2): 7.7e-6; XLA's f32: 1e-6).
    check_grad_of_grad(op, x, kernel, "fast", gradient_penalty, which, tol=1e-4)
    assert re.search(r"f32\[75,\d+,\d+\]\{[\d,]*\} dot\(", _grads_hlo(op, x, kernel)), which


def test_winograd_route_takes_every_qualifying_video_layer():
    """At the video GAN's sizes the kernel-4 stride-2 blocks qualify, except thin ones (the
    RGB layer, depth 8 * 3) and ones with under 128 tiles; their values are checked above."""
    geometry = ((8, 32, 32), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3)
    # 4 x 16 x 16 outputs: F(2, 2) in time, F(4, 2) in space.
    assert fast._winograd_dims(geometry, 32, 64) == (2, 4, 4)
    assert fast._winograd_dims(geometry, 32, 3) == (0,) * 3
    small = ((2, 4, 4), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3)  # 1 x 2 x 2 outputs
    assert fast._winograd_dims(small, 32, 256) == (0,) * 3


@pytest.fixture
def decide_again(monkeypatch):
    """default_impl() as a process starting with GAN_JAX_CONV_IMPL=value (None: unset) sees it;
    the cached choice is dropped again after the test, before the environment is restored."""

    def decide(value):
        if value is None:
            monkeypatch.delenv(conv_ops.IMPL_ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(conv_ops.IMPL_ENV_VAR, value)
        conv_ops.default_impl.cache_clear()
        return conv_ops.default_impl()

    yield decide
    conv_ops.default_impl.cache_clear()


def test_default_impl_by_backend_and_environment(decide_again):
    assert jax.default_backend() == "cpu"
    assert decide_again(None) == "fast"
    assert decide_again("lax") == "lax"
    assert decide_again("fast") == "fast"
    assert decide_again(" lax ") == "lax"
    for bad in ("cudnn", "s2d", "LAX"):
        with pytest.raises(ValueError, match=r"GAN_JAX_CONV_IMPL.*'lax' \(.*'fast' \("):
            decide_again(bad)


def test_default_impl_is_read_once(decide_again, monkeypatch):
    assert decide_again("lax") == "lax"
    monkeypatch.setenv(conv_ops.IMPL_ENV_VAR, "fast")
    assert conv_ops.default_impl() == "lax"  # cached: later changes are not seen


def test_impl_none_uses_default(decide_again):
    x, kernel, strides, padding = conv_inputs(CASES["2d_k4_s2_p1"])

    def lowered(default):
        decide_again(default)
        return jax.jit(lambda x: conv_ops.conv(x, kernel, strides, padding)).lower(x).as_text()

    assert "stride = [2, 2]" in lowered("lax")
    assert "stride = [2, 2]" not in lowered("fast")


@pytest.mark.parametrize("fn", [conv_ops.conv, conv_ops.conv_transpose])
def test_invalid_arguments(fn):
    x = jnp.zeros((2, 8, 8, 3))
    kernel = jnp.zeros((4, 4, 3, 5))
    good = dict(strides=(2, 2), padding=((1, 1), (1, 1)))
    bad_calls = [
        ("kernel", (x, jnp.zeros((4, 4, 4, 3, 5))), good, {}),  # rank mismatch
        ("x must be", (jnp.zeros((8, 3)), kernel), good, {}),  # no spatial dim
        ("channel mismatch", (x, jnp.zeros((4, 4, 2, 5))), good, {}),
        ("dtype", (x.astype(jnp.bfloat16), kernel), good, {}),
        ("strides", (x, kernel), dict(good, strides=(2,)), {}),
        ("strides", (x, kernel), dict(good, strides=(2, 0)), {}),
        ("padding", (x, kernel), dict(good, padding=((1, 1), (-1, 1))), {}),
        ("padding", (x, kernel), dict(good, padding=((1, 1),)), {}),
        ("padding", (x, kernel), dict(good, padding=(1, 1)), {}),
        ("impl", (x, kernel), good, {"impl": "cudnn"}),
        ("impl", (x, kernel), good, {"impl": "s2d"}),  # benchmarks/s2d_conv.py, not a route
    ]
    if fn is conv_ops.conv_transpose:
        bad_calls.append(("empty output", (x, kernel), dict(good, padding=((40, 40), (1, 1))), {}))
    for match, args, geometry, kwargs in bad_calls:
        with pytest.raises(ValueError, match=match):
            fn(*args, geometry["strides"], geometry["padding"], **kwargs)


def test_conv_empty_output_raises():
    with pytest.raises(ValueError, match="empty output"):
        conv_ops.conv(jnp.zeros((1, 2, 3)), jnp.zeros((5, 3, 1)), (1,), ((0, 0),))


def test_batch_chunks_is_the_fewest_dividing_chunks_within_the_limit(monkeypatch):
    monkeypatch.setattr(blocks, "MAX_TRANSIENT_BYTES", 100)
    assert blocks.batch_chunks(32, 100) == 1
    assert blocks.batch_chunks(32, 101) == 2
    assert blocks.batch_chunks(32, 350) == 4  # 3 does not divide 32
    assert blocks.batch_chunks(6, 350) == 6  # 4 and 5 do not divide 6
    assert blocks.batch_chunks(7, 101) == 7  # prime: one clip per chunk
    assert blocks.batch_chunks(1, 10**9) == 1


@pytest.mark.parametrize(
    "which, case", [("conv", "3d_k444_s222_p1"), ("conv_transpose", "2d_k3_s2_odd_asym")]
)
def test_im2col_products_over_batch_chunks_match_lax(monkeypatch, which, case):
    """Patch matrices over the byte limit run one batch chunk at a time (a loop in the
    traced program) with the values, gradients and gradients of gradients of one product."""
    monkeypatch.setattr(fast, "_WINOGRAD", False)
    monkeypatch.setattr(blocks, "MAX_TRANSIENT_BYTES", 1)  # one clip per chunk
    jax.clear_caches()  # tracings of the same ops cached by earlier tests ignore the limit
    op, x, kernel = op_and_inputs(which, CASES[case])
    ref = lambda x, k: op(x, k, "xla")  # noqa: E731
    check_value_and_grads(lambda x, k: op(x, k, "fast"), ref, x, kernel, f"{which}[{case}]")
    check_grad_of_grad(op, x, kernel, "fast", kernel_gradient_penalty, f"{which}[{case}]")
    grads = jax.grad(lambda x, k: jnp.sum(op(x, k, "fast") ** 2), argnums=(0, 1))
    jaxpr = str(jax.make_jaxpr(grads)(x, kernel))
    assert jaxpr.count("scan[") + jaxpr.count("while[") >= 3, jaxpr  # conv, adjoint, wgrad


def test_im2col_adjoint_over_batch_chunks_writes_blocks(monkeypatch):
    """The chunked adjoint's loop writes each chunk's space-to-depth blocks (depth 8 * 3 for an
    RGB clip), and turns them depth-to-space once after the loop: written as 3-channel pixels
    per chunk they took up to 3x as long on CPU."""
    from gan_jax.ops import im2col

    monkeypatch.setattr(blocks, "MAX_TRANSIENT_BYTES", 1)  # one clip per chunk
    geometry = ((4, 6, 6), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3)
    y = jnp.ones((2, 2, 3, 3, 5))
    w_mat = im2col.kernel_matrix(jnp.ones((4, 4, 4, 3, 5)), (2, 2, 2))
    jaxpr = jax.make_jaxpr(lambda y, w: im2col.conv_transpose(y, w, geometry))(y, w_mat)

    def loop_outputs(jaxpr):  # the loops' 5-D outputs (fori_loop traces to scan), nested too
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in ("scan", "while"):
                yield from (v.aval.shape for v in eqn.outvars if v.aval.ndim == 5)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                yield from loop_outputs(sub)

    assert list(loop_outputs(jaxpr.jaxpr)) == [(2, 3, 4, 4, 24)], jaxpr
    assert jaxpr.out_avals[0].shape == (2, 4, 6, 6, 3)


@pytest.mark.parametrize(
    "winograd_route, case", [(True, "3d_k444_s222_p1"), (False, "2d_k3_s2_odd_asym")]
)
def test_memory_order_of_transposed_convs_keeps_values_and_gradients(
    monkeypatch, winograd_route, case
):
    """Past `blocks.MEMORY_ORDER_BYTES` a transposed conv crops its output inside a
    conditional, its input gradient waits for its kernel gradient, and (Winograd, past
    `RECOMPUTE_TRANSFORMED_BYTES`) its kernel gradient transforms its input again: the same
    values, gradients and gradients of gradients, and the program holds those conditionals."""
    from gan_jax.ops import winograd

    monkeypatch.setattr(blocks, "MEMORY_ORDER_BYTES", 0)
    monkeypatch.setattr(winograd, "RECOMPUTE_TRANSFORMED_BYTES", 0)
    if winograd_route:  # the tiny test shapes are under the route's size limits; lift them
        monkeypatch.setattr(fast, "_WINOGRAD_MIN_DEPTH", 1)
        monkeypatch.setattr(fast, "_WINOGRAD_MIN_ROWS", 1)
    else:
        monkeypatch.setattr(fast, "_WINOGRAD", False)
    jax.clear_caches()  # tracings of the same ops cached by earlier tests ignore the sizes
    op, x, kernel = op_and_inputs("conv_transpose", CASES[case])
    ref = lambda x, k: op(x, k, "lax")  # noqa: E731
    what = f"conv_transpose[{case}]"
    check_value_and_grads(lambda x, k: op(x, k, "fast"), ref, x, kernel, what)
    check_grad_of_grad(op, x, kernel, "fast", kernel_gradient_penalty, what, tol=5e-5)
    grads = jax.grad(lambda x, k: jnp.sum(op(x, k, "fast") ** 2), argnums=(0, 1))
    jaxpr = str(jax.make_jaxpr(grads)(x, kernel))
    if winograd_route:
        assert "cond[" in jaxpr, jaxpr  # the materialised crop
    assert "reduce_max" in jaxpr, jaxpr  # the input gradient after the kernel gradient


def test_after_and_materialised_keep_the_values():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), jnp.float32)
    dep = jnp.asarray([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(blocks.after(x, dep), x)
    crop = lambda a: a[1:, :2]  # noqa: E731
    np.testing.assert_array_equal(jax.jit(lambda a: blocks.materialised(crop, a))(x), x[1:, :2])
    assert "cond[" in str(jax.make_jaxpr(lambda a: blocks.materialised(crop, a))(x))


def test_low_memory_route_moves_convs_of_few_tiles_to_im2col():
    """`GAN_JAX_CONV_MEMORY=low`: a wide conv of 128-255 tiles (the benchmark DCGAN's 4x8x8
    level at batch 32) leaves Winograd for im2col, with the same numbers to rounding."""
    rng = np.random.default_rng(0)
    # 2-D [8, 32, 32, 16] -> [8, 16, 16, 32]: 8 images x 4 x 4 tiles of 4 x 4 outputs (128),
    # block depth 64.
    x = jnp.asarray(rng.standard_normal((8, 32, 32, 16)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((4, 4, 16, 32)) * 0.05, jnp.float32)
    args = ((2, 2), ((1, 1),) * 2)
    geometry = ((32, 32), (4, 4), *args)  # input, kernel, strides, padding
    outs = {}
    for low in (False, True):
        with fast.memory_route(low):
            assert fast.low_memory() is low
            dims = fast._winograd_dims(geometry, batch=8, channels=16)
            assert (dims == (0, 0)) is low, dims
            route = jax.jit(lambda x, kernel: conv_ops.conv(x, kernel, *args, impl="fast"))
            outs[low] = np.asarray(route(x, kernel))
    # Two routes, two roundings: the conv itself took the route that the plan names.
    assert not np.array_equal(outs[False], outs[True])
    exact = np.asarray(conv_ops.conv(x, kernel, *args, impl="lax"))
    for out in outs.values():
        np.testing.assert_allclose(out, exact, rtol=1e-4, atol=1e-4)


def test_conv_memory_setting_must_be_speed_or_low(monkeypatch):
    monkeypatch.setenv(fast.MEMORY_ENV_VAR, "small")
    fast.low_memory.cache_clear()
    try:
        with pytest.raises(ValueError, match="GAN_JAX_CONV_MEMORY='small' is invalid"):
            fast.low_memory()
    finally:
        monkeypatch.delenv(fast.MEMORY_ENV_VAR)
        fast.low_memory.cache_clear()
