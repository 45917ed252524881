"""The "fast" route on a GPU agrees with "lax" (XLA's GPU convolutions): conv, conv_transpose,
their gradients and the gradients of gradients that R1 / WGAN-GP take, on video GAN layer
shapes, in float32.

Selected by ``-m gpu`` (the default run deselects it). tests/conftest.py pins JAX to the CPU
unless JAX_PLATFORMS is already set, so run these with

    JAX_PLATFORMS=cuda,cpu .venv/bin/python -m pytest -m gpu tests/test_ops_gpu.py

(with a CUDA build of jaxlib installed); without a GPU they skip.
"""

import math
import re

import jax
import pytest
from conv_reference import (
    check_grad_of_grad,
    check_value_and_grads,
    compiled_hlo,
    gradient_penalty,
    kernel_gradient_penalty,
    op_and_inputs,
)

from gan_jax.ops import fast

pytestmark = pytest.mark.gpu

RUN_WITH = "JAX_PLATFORMS=cuda,cpu .venv/bin/python -m pytest -m gpu"

# The video DCGAN's conv layers (D direction: x [N, T, H, W, Cin], kernel spatial, strides,
# padding, Cout), channels divided down; conv_transpose runs each one's mirror (the G layer).
LAYERS = {
    # T 2 -> 1: the G's first block from T = 1 (its time taps that meet padding are cropped).
    "k444_s222_T2to1": ((2, 2, 8, 8, 64), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3, 128),
    "k444_s222_T8to4": ((2, 8, 16, 16, 16), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3, 32),
    # The RGB layer: 3 channels.
    "k444_s222_rgb": ((2, 16, 32, 32, 3), (4, 4, 4), (2, 2, 2), ((1, 1),) * 3, 16),
    # T kept: kernel 3, stride 1 in time.
    "k344_s122": ((2, 4, 16, 16, 16), (3, 4, 4), (1, 2, 2), ((1, 1),) * 3, 32),
    # T = 1 (image GAN): kernel 1 in time.
    "k144_s122_T1": ((2, 1, 16, 16, 16), (1, 4, 4), (1, 2, 2), ((0, 0), (1, 1), (1, 1)), 32),
}
# The products the fast route picks per block conv: im2col everywhere, or Winograd wherever a
# dim qualifies and the block depth is not thin (the RGB layers stay on im2col, as in
# training; the limit on tiles, which the GAN's batch of 32 passes, lifted).
PRODUCTS = ("im2col", "winograd")


def _op_and_inputs(which, layer):
    """op(x, kernel, impl), x, kernel, the kernel scaled by 1 / sqrt(fan-in) as a trained
    layer's would be: unscaled, these widths push tanh (in the penalties) into saturation,
    where its second derivative magnifies float32 rounding past any fixed tolerance."""
    op, x, kernel = op_and_inputs(which, LAYERS[layer])
    return op, x, kernel / math.sqrt(math.prod(kernel.shape[:-1]))


@pytest.fixture(scope="module")
def gpu():
    try:
        devices = jax.devices("gpu")
    except RuntimeError as err:
        pytest.skip(f"no GPU backend ({err}); run with {RUN_WITH}")
    if not devices:
        pytest.skip(f"no GPU device; run with {RUN_WITH}")
    return devices[0]


@pytest.fixture(autouse=True)
def on_gpu(gpu, monkeypatch, products):
    """Arrays on the GPU; float32 products and convs at full precision (not TF32) on both
    routes; the fast route's choice of products pinned."""
    if products == "im2col":
        monkeypatch.setattr(fast, "_WINOGRAD", False)
    else:
        monkeypatch.setattr(fast, "_WINOGRAD_MIN_ROWS", 1)
    with jax.default_device(gpu), jax.default_matmul_precision("highest"):
        yield


@pytest.fixture(params=PRODUCTS)
def products(request):
    return request.param


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_fast_matches_lax_on_gpu(gpu, which, layer, products):
    op, x, kernel = _op_and_inputs(which, layer)
    what = f"{which}[{layer}, fast/{products}]"
    ref = lambda x, k: op(x, k, "lax")  # noqa: E731
    out = check_value_and_grads(lambda x, k: op(x, k, "fast"), ref, x, kernel, what)
    assert out.devices() == {gpu}, f"{what}: ran on {out.devices()}"
    fast_program = jax.jit(lambda x, k: op(x, k, "fast")).lower(x, kernel).as_text()
    assert "convolution" not in fast_program, f"{what}: the fast route has a convolution"


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_fast_grad_of_grad_matches_lax_on_gpu(which, layer, products):
    """R1 (the input gradient's norm) and its kernel-gradient counterpart, differentiated
    again w.r.t. input and kernel."""
    op, x, kernel = _op_and_inputs(which, layer)
    # Winograd's transforms round more (as in tests/test_ops_conv.py).
    tol = 5e-5 if products == "winograd" else 1e-5
    for penalty in (gradient_penalty, kernel_gradient_penalty):
        check_grad_of_grad(op, x, kernel, "fast", penalty, f"{which}[{layer}, {products}]", tol)


@pytest.mark.parametrize("products", ["im2col"])  # the fast route's products play no part
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_lax_conv_transpose_kernel_gradient_has_no_whole_clip_window(layer, products):
    """G's kernel gradients on the "lax" route run as cuDNN convs over the kernel's window
    (backward-filter) or over the input's (a forward conv dilated by the strides), never as the
    lhs-dilated forward conv whose window is the whole output clip that JAX's derivative of the
    lhs-dilated conv gives (13.7 of the 17.6 ms of a float32 GAN step on an H200)."""
    op, x, kernel = _op_and_inputs("conv_transpose", layer)
    weights = jax.numpy.ones(jax.eval_shape(lambda: op(x, kernel, "lax")).shape)
    hlo = compiled_hlo(
        jax.grad(lambda x, k: jax.numpy.vdot(op(x, k, "lax"), weights), 1), x, kernel
    )
    windows = re.findall(r"window=\{([^}]*)\}", hlo)
    allowed = {"x".join(map(str, kernel.shape[:-2])), "x".join(map(str, x.shape[1:-1]))}
    assert windows, f"{layer}: no convolution in the kernel gradient:\n{hlo}"
    for window in windows:
        size = re.match(r"size=([0-9x]+)", window).group(1)
        assert size in allowed and "lhs_dilate" not in window, f"{layer}: conv window {window}"
