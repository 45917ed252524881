"""Tests for gan_jax.models.conv_ops: values, gradients and HLO of the CPU routes vs lax."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax.models import conv_ops

# (x shape [N, *S, Cin], kernel spatial K, strides, padding, Cout). Tiny on purpose.
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
CPU_IMPLS = ("fast", "s2d")  # every route but "lax"
# "s2d" (the previous CPU route, kept for the benchmark) is checked on fewer cases.
S2D_CASES = ("3d_k444_s222_odd", "2d_k3_s2_odd_asym", "2d_k1x2_s2x3")


def _dimension_numbers(num_spatial):
    return {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}[
        num_spatial
    ]


def _lax_conv(x, kernel, strides, padding):
    dn = _dimension_numbers(x.ndim - 2)
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=dn)


def _lax_conv_transpose(x, kernel, strides, padding):
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


def _random(seed, shape):
    # NumPy, not jax.random: eager jax.random compiles once per shape, which dominates runtime.
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def _assert_close(actual, expected, what, tol=1e-5):
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    atol = tol * max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=tol, atol=atol, err_msg=what)


def _conv_inputs(case):
    x_shape, kernel_sizes, strides, padding, cout = CASES[case]
    x = _random(0, x_shape)
    kernel = _random(1, (*kernel_sizes, x_shape[-1], cout))
    return x, kernel, strides, padding


def _transpose_inputs(case):
    """Inputs for conv_transpose: x has the conv's output shape, kernel is [*K, Cin, Cout]."""
    x, kernel, strides, padding = _conv_inputs(case)
    conv_out = jax.eval_shape(lambda: _lax_conv(x, kernel, strides, padding))
    x_t = _random(2, conv_out.shape)
    kernel_t = _random(3, (*kernel.shape[:-2], kernel.shape[-1], kernel.shape[-2]))
    return x_t, kernel_t, strides, padding


def _check_value_and_grads(fn, ref_fn, x, kernel, what):
    """Compares fn(x, kernel) and its VJP w.r.t. x and kernel to ref_fn."""

    @jax.jit
    def value_and_vjp(x, kernel, cotangent):
        out, vjp = jax.vjp(fn, x, kernel)
        ref_out, ref_vjp = jax.vjp(ref_fn, x, kernel)
        return out, ref_out, vjp(cotangent), ref_vjp(cotangent)

    cotangent = _random(4, jax.eval_shape(ref_fn, x, kernel).shape)
    out, ref_out, (grad_x, grad_kernel), (ref_grad_x, ref_grad_kernel) = value_and_vjp(
        x, kernel, cotangent
    )
    _assert_close(out, ref_out, f"{what} output")
    _assert_close(grad_x, ref_grad_x, f"{what} grad x")
    _assert_close(grad_kernel, ref_grad_kernel, f"{what} grad kernel")


@pytest.mark.parametrize(
    "impl, case", [("fast", c) for c in sorted(CASES)] + [("s2d", c) for c in S2D_CASES]
)
def test_conv_matches_lax(case, impl):
    x, kernel, strides, padding = _conv_inputs(case)
    _check_value_and_grads(
        lambda x, k: conv_ops.conv(x, k, strides, padding, impl=impl),
        lambda x, k: _lax_conv(x, k, strides, padding),
        x,
        kernel,
        f"conv[{case}, {impl}]",
    )


@pytest.mark.parametrize(
    "impl, case",
    [(i, c) for i in ("lax", "fast") for c in sorted(CASES)] + [("s2d", c) for c in S2D_CASES],
)
def test_conv_transpose_matches_lax_conv_transpose(case, impl):
    x, kernel, strides, padding = _transpose_inputs(case)
    _check_value_and_grads(
        lambda x, k: conv_ops.conv_transpose(x, k, strides, padding, impl=impl),
        lambda x, k: _lax_conv_transpose(x, k, strides, padding),
        x,
        kernel,
        f"conv_transpose[{case}, {impl}]",
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_transpose_is_adjoint_of_lax_conv(case):
    """Definition check: conv_transpose == linear_transpose of u -> conv(u, K^T)."""
    x, kernel, strides, padding = _transpose_inputs(case)
    out_sizes = [
        (s - 1) * st + k - lo - hi
        for s, k, st, (lo, hi) in zip(x.shape[1:-1], kernel.shape[:-2], strides, padding)
    ]
    kernel_t = jnp.swapaxes(kernel, -1, -2)
    adjoint = jax.linear_transpose(
        lambda u: _lax_conv(u, kernel_t, strides, padding),
        jax.ShapeDtypeStruct((x.shape[0], *out_sizes, kernel.shape[-1]), jnp.float32),
    )
    (expected,) = adjoint(x)
    for impl in ("lax", "fast"):
        actual = conv_ops.conv_transpose(x, kernel, strides, padding, impl=impl)
        _assert_close(actual, expected, f"conv_transpose[{case}, {impl}] vs linear_transpose")


def test_conv_transpose_output_size_is_pytorch():
    """PyTorch ConvTranspose: out = (s - 1) * stride + k - 2 * p."""
    x = jnp.zeros((1, 2, 4, 4, 8))
    kernel = jnp.zeros((3, 4, 4, 8, 2))
    out = conv_ops.conv_transpose(x, kernel, (1, 2, 2), ((1, 1),) * 3, impl="fast")
    assert out.shape == (1, 2, 8, 8, 2)


def _gradient_penalty(op, x, kernel, impl):
    """R1-style penalty ||d sum(op(x)^2 * w) / dx||^2, as a function of (x, kernel)."""
    weights = _random(5, jax.eval_shape(lambda: op(x, kernel, "lax")).shape)

    def loss(x, kernel):
        return jnp.sum(jnp.tanh(op(x, kernel, impl)) * weights)

    grad_x = jax.grad(loss)(x, kernel)
    return jnp.sum(grad_x**2)


def _kernel_gradient_penalty(op, x, kernel, impl):
    """||d sum(tanh(op(x)) * w) / dkernel||^2: its gradient runs the kernel gradient's VJP."""
    weights = _random(6, jax.eval_shape(lambda: op(x, kernel, "lax")).shape)

    def loss(x, kernel):
        return jnp.sum(jnp.tanh(op(x, kernel, impl)) * weights)

    grad_kernel = jax.grad(loss, argnums=1)(x, kernel)
    return jnp.sum(grad_kernel**2)


def _op_and_inputs(which, case):
    if which == "conv":
        x, kernel, strides, padding = _conv_inputs(case)
        fn = conv_ops.conv
    else:
        x, kernel, strides, padding = _transpose_inputs(case)
        fn = conv_ops.conv_transpose

    def op(x, kernel, impl):
        return fn(x, kernel, strides, padding, impl=impl)

    return op, x, kernel


@pytest.mark.parametrize(
    "impl, case, penalty",
    [
        ("fast", "3d_k344_s122_p1", _gradient_penalty),
        ("fast", "3d_k344_s122_p1", _kernel_gradient_penalty),
        ("fast", "2d_k3_s2_odd_asym", _kernel_gradient_penalty),
        ("s2d", "2d_k3_s2_odd_asym", _gradient_penalty),
    ],
)
@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_grad_of_grad_matches_lax(case, which, impl, penalty):
    op, x, kernel = _op_and_inputs(which, case)
    penalty_grad = jax.jit(jax.grad(penalty, argnums=(1, 2)), static_argnums=(0, 3))
    ref_grad_x, ref_grad_kernel = penalty_grad(op, x, kernel, "lax")
    grad_x, grad_kernel = penalty_grad(op, x, kernel, impl)
    what = f"{which}[{case}, {impl}] {penalty.__name__}"
    _assert_close(grad_x, ref_grad_x, f"{what} grad-of-grad x")
    _assert_close(grad_kernel, ref_grad_kernel, f"{what} grad-of-grad kernel")


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_fast_bfloat16_matches_lax(which):
    """bf16 in, bf16 out; the products accumulate like XLA's bf16 convolutions."""
    op, x, kernel = _op_and_inputs(which, "3d_k444_s222_p1")
    x16, kernel16 = x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)
    out = op(x16, kernel16, "fast")
    expected = op(x16.astype(jnp.float32), kernel16.astype(jnp.float32), "lax")
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(out, np.float32), expected, rtol=0.05, atol=0.05 * float(jnp.abs(expected).max())
    )


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_jit_vmap(which, impl="fast"):
    case = "3d_k444_s222_p1"
    if which == "conv":
        x, kernel, strides, padding = _conv_inputs(case)
        fn, ref_fn = conv_ops.conv, _lax_conv
    else:
        x, kernel, strides, padding = _transpose_inputs(case)
        fn, ref_fn = conv_ops.conv_transpose, _lax_conv_transpose
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
    _assert_close(values, ref_values, f"{which} vmap values")
    _assert_close(grad_x, ref_grad_x, f"{which} vmap grad x")
    _assert_close(grad_kernel, ref_grad_kernel, f"{which} vmap grad kernel")


_CONV_WINDOW = re.compile(r"convolution\(.*?window=\{([^}]*)\}")


def _compiled_hlo(fn, *args) -> str:
    return jax.jit(fn).lower(*args).compile().as_text()


def _slow_windows(windows):
    """Windows XLA:CPU runs in its slow generic loop: strided or dilated."""
    return [w for w in windows if re.search(r"stride=|lhs_dilate=|rhs_dilate=", w)]


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_cpu_routes_compile_to_fast_ops(which, case="2d_k3_s2_odd_asym"):
    """ "fast": matrix products and no convolution at all; "s2d": stride-1 undilated convs;
    in the forward, the gradient and the gradient of a gradient."""
    op, x, kernel = _op_and_inputs(which, case)

    def grads(x, kernel, impl):
        return jax.grad(lambda x, k: jnp.sum(op(x, k, impl) ** 2), argnums=(0, 1))(x, kernel)

    def penalty_grads(x, kernel, impl):
        return jax.grad(_gradient_penalty, argnums=(1, 2))(op, x, kernel, impl)

    for name, program in [("forward", op), ("grad", grads), ("grad-of-grad", penalty_grads)]:
        fast_hlo = _compiled_hlo(lambda x, k, p=program: p(x, k, "fast"), x, kernel)
        assert " dot(" in fast_hlo, f"{which}[{case}] {name}: fast route has no dot"
        assert not _CONV_WINDOW.findall(fast_hlo), f"{which}[{case}] {name}: fast has a conv"
        s2d_windows = _CONV_WINDOW.findall(
            _compiled_hlo(lambda x, k, p=program: p(x, k, "s2d"), x, kernel)
        )
        assert s2d_windows, f"{which}[{case}] {name}: found no convolution in the s2d HLO"
        assert not _slow_windows(s2d_windows), (
            f"{which}[{case}] {name}: s2d route has strided/dilated convs {s2d_windows}"
        )
    # The same check on the lax route must flag its strided/dilated convs, which shows
    # the patterns above still match what XLA prints.
    lax_windows = _CONV_WINDOW.findall(_compiled_hlo(lambda x, k: grads(x, k, "lax"), x, kernel))
    assert _slow_windows(lax_windows), lax_windows


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_fast_route_skips_taps_that_only_meet_padding(
    monkeypatch, which, case="3d_T2to1_k444_s222"
):
    """T 2 -> 1 with kernel 4 and padding 1: only the middle 2 of the 4 time taps meet input,
    so every product of the forward and backward contracts (or makes) 2 * 4 * 4 * C taps,
    not 4 * 4 * 4 * C (the values are checked against lax by the tests above)."""
    monkeypatch.setattr(conv_ops, "_WINOGRAD", False)  # the im2col products, as for thin convs
    op, x, kernel = _op_and_inputs(which, case)
    channels = kernel.shape[-2] if which == "conv" else kernel.shape[-1]
    hlo = _compiled_hlo(
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


@pytest.mark.parametrize("case", sorted(SPLIT_CASES))
@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_fast_route_splits_edge_outputs(monkeypatch, which, case):
    """Edge outputs in their own cropped regions: same values, gradients and gradients of
    gradients as lax, with fewer multiply-adds than the unsplit block route."""
    monkeypatch.setitem(CASES, case, SPLIT_CASES[case])
    monkeypatch.setattr(conv_ops, "_MIN_SPLIT_ROWS", 1)  # the shapes here are tiny
    monkeypatch.setattr(conv_ops, "_WINOGRAD", False)  # convs that qualify take it instead
    op, x, kernel = _op_and_inputs(which, case)
    ref = lambda x, k: op(x, k, "lax")  # noqa: E731
    _check_value_and_grads(lambda x, k: op(x, k, "fast"), ref, x, kernel, f"{which}[{case}]")
    penalty_grad = jax.jit(jax.grad(_gradient_penalty, argnums=(1, 2)), static_argnums=(0, 3))
    for got, want in zip(penalty_grad(op, x, kernel, "fast"), penalty_grad(op, x, kernel, "lax")):
        _assert_close(got, want, f"{which}[{case}] grad-of-grad")

    def grads(x, kernel):
        return jax.grad(lambda x, k: jnp.sum(op(x, k, "fast") ** 2), argnums=(0, 1))(x, kernel)

    # A new function each time: jax.jit would reuse the first trace for the same one.
    split_flops = _dot_flops(_compiled_hlo(lambda x, k: grads(x, k), x, kernel))
    monkeypatch.setattr(conv_ops, "_MIN_SPLIT_SAVING", 2.0)  # never split
    dense_flops = _dot_flops(_compiled_hlo(lambda x, k: grads(x, k), x, kernel))
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


def _force_winograd(monkeypatch):
    """The tiny test shapes are under the route's size limits; lift them."""
    monkeypatch.setattr(conv_ops, "_WINOGRAD_MIN_DEPTH", 1)
    monkeypatch.setattr(conv_ops, "_WINOGRAD_MIN_ROWS", 1)


@pytest.mark.parametrize("case", WINOGRAD_CASES)
@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_winograd_route_matches_lax(monkeypatch, which, case):
    """Values, gradients and both gradient penalties equal lax's; the HLO runs batched
    products (the Winograd positions) with fewer multiply-adds than the im2col route."""
    _force_winograd(monkeypatch)
    op, x, kernel = _op_and_inputs(which, case)
    ref = lambda x, k: op(x, k, "lax")  # noqa: E731
    _check_value_and_grads(lambda x, k: op(x, k, "fast"), ref, x, kernel, f"{which}[{case}]")
    for penalty in (_gradient_penalty, _kernel_gradient_penalty):
        penalty_grad = jax.jit(jax.grad(penalty, argnums=(1, 2)), static_argnums=(0, 3))
        for got, want in zip(
            penalty_grad(op, x, kernel, "fast"), penalty_grad(op, x, kernel, "lax")
        ):
            # The transforms' adds round too: against float64, these gradients of gradients
            # were off by up to 1.6e-5 of their largest value (lax's own f32 convs: 9.5e-6).
            _assert_close(got, want, f"{which}[{case}] {penalty.__name__} grad-of-grad", 5e-5)

    def grads(x, kernel):
        return jax.grad(lambda x, k: jnp.sum(op(x, k, "fast") ** 2), argnums=(0, 1))(x, kernel)

    # A new function each time: jax.jit would reuse the first trace for the same one.
    hlo = _compiled_hlo(lambda x, k: grads(x, k), x, kernel)
    assert "lhs_batch_dims={0}" in hlo, f"{which}[{case}]: no batched (Winograd) product"
    winograd_flops = _dot_flops(hlo)
    monkeypatch.setattr(conv_ops, "_WINOGRAD", False)
    im2col_flops = _dot_flops(_compiled_hlo(lambda x, k: grads(x, k), x, kernel))
    assert 0 < winograd_flops <= 0.8 * im2col_flops, (winograd_flops, im2col_flops)


def test_winograd_route_takes_every_qualifying_video_layer():
    """At the video GAN's sizes the kernel-4 stride-2 blocks qualify, except thin ones (the
    RGB layer, depth 8 * 3) and ones with under 128 tiles; their values are checked above."""
    geometry = ((8, 32, 32), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3)
    # 4 x 16 x 16 outputs: F(2, 2) in time, F(4, 2) in space.
    assert conv_ops._winograd_dims(geometry, 32, 64) == (2, 4, 4)
    assert conv_ops._winograd_dims(geometry, 32, 3) == (0,) * 3
    small = ((2, 4, 4), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3)  # 1 x 2 x 2 outputs
    assert conv_ops._winograd_dims(small, 32, 256) == (0,) * 3


def test_default_impl(monkeypatch):
    monkeypatch.delenv(conv_ops.IMPL_ENV_VAR, raising=False)
    assert jax.default_backend() == "cpu"
    assert conv_ops.default_impl() == "fast"
    monkeypatch.setenv(conv_ops.IMPL_ENV_VAR, "lax")
    assert conv_ops.default_impl() == "lax"
    monkeypatch.setenv(conv_ops.IMPL_ENV_VAR, "fast")
    assert conv_ops.default_impl() == "fast"
    monkeypatch.setenv(conv_ops.IMPL_ENV_VAR, "cudnn")
    with pytest.raises(ValueError, match="GAN_JAX_CONV_IMPL"):
        conv_ops.default_impl()


def test_impl_none_uses_default(monkeypatch):
    x, kernel, strides, padding = _conv_inputs("2d_k4_s2_p1")
    monkeypatch.setenv(conv_ops.IMPL_ENV_VAR, "lax")
    lax_hlo = jax.jit(lambda x: conv_ops.conv(x, kernel, strides, padding)).lower(x).as_text()
    monkeypatch.setenv(conv_ops.IMPL_ENV_VAR, "fast")
    fast_hlo = jax.jit(lambda x: conv_ops.conv(x, kernel, strides, padding)).lower(x).as_text()
    assert "stride = [2, 2]" in lax_hlo
    assert "stride = [2, 2]" not in fast_hlo


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
    ]
    if fn is conv_ops.conv_transpose:
        bad_calls.append(("empty output", (x, kernel), dict(good, padding=((40, 40), (1, 1))), {}))
    for match, args, geometry, kwargs in bad_calls:
        with pytest.raises(ValueError, match=match):
            fn(*args, geometry["strides"], geometry["padding"], **kwargs)


def test_conv_empty_output_raises():
    with pytest.raises(ValueError, match="empty output"):
        conv_ops.conv(jnp.zeros((1, 2, 3)), jnp.zeros((5, 3, 1)), (1,), ((0, 0),))
