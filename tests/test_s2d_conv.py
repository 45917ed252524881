"""Tests for benchmarks/s2d_conv.py, the "s2d" route that benchmarks/conv_ops.py compares with
the library's: the same values, gradients and gradients of gradients as lax, with only
stride-1, undilated XLA convolutions (what the route is there to measure). Fewer cases than
the library's routes get (tests/test_ops_conv.py)."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import pytest
from conv_reference import (
    CASES,
    CONV_WINDOW,
    check_grad_of_grad,
    check_value_and_grads,
    compiled_hlo,
    gradient_penalty,
    op_and_inputs,
    slow_windows,
)

MODULE = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "s2d_conv.py"
CASE_NAMES = ("3d_k444_s222_odd", "2d_k3_s2_odd_asym", "2d_k1x2_s2x3")


def _load_s2d_conv():
    spec = importlib.util.spec_from_file_location("s2d_conv", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


s2d_conv = _load_s2d_conv()


def _op_and_inputs(which, case):
    """op(x, kernel, impl) with impl "s2d" (this route) or a library route, x, kernel."""
    op, x, kernel = op_and_inputs(which, CASES[case])
    s2d_fn = s2d_conv.conv if which == "conv" else s2d_conv.conv_transpose
    _, _, strides, padding, _ = CASES[case]

    def op_with_s2d(x, kernel, impl):
        return s2d_fn(x, kernel, strides, padding) if impl == "s2d" else op(x, kernel, impl)

    return op_with_s2d, x, kernel


@pytest.mark.parametrize("case", CASE_NAMES)
@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_s2d_matches_lax(which, case):
    op, x, kernel = _op_and_inputs(which, case)
    ref = lambda x, k: op(x, k, "lax")  # noqa: E731
    check_value_and_grads(lambda x, k: op(x, k, "s2d"), ref, x, kernel, f"{which}[{case}, s2d]")


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_s2d_grad_of_grad_matches_lax(which, case="2d_k3_s2_odd_asym"):
    op, x, kernel = _op_and_inputs(which, case)
    check_grad_of_grad(op, x, kernel, "s2d", gradient_penalty, f"{which}[{case}, s2d]")


@pytest.mark.parametrize("which", ["conv", "conv_transpose"])
def test_s2d_compiles_to_stride1_convs(which, case="2d_k3_s2_odd_asym"):
    """Only stride-1 undilated convs, in the forward, the gradient and the gradient of a
    gradient (tests/test_ops_conv.py checks that the patterns flag lax's strided ones)."""
    op, x, kernel = _op_and_inputs(which, case)

    def grads(x, kernel):
        return jax.grad(lambda x, k: jnp.sum(op(x, k, "s2d") ** 2), argnums=(0, 1))(x, kernel)

    def penalty_grads(x, kernel):
        return jax.grad(gradient_penalty, argnums=(1, 2))(op, x, kernel, "s2d")

    forward = lambda x, k: op(x, k, "s2d")  # noqa: E731
    for name, program in [("forward", forward), ("grad", grads), ("grad-of-grad", penalty_grads)]:
        windows = CONV_WINDOW.findall(compiled_hlo(program, x, kernel))
        assert windows, f"{which}[{case}] {name}: found no convolution in the s2d HLO"
        assert not slow_windows(windows), (
            f"{which}[{case}] {name}: s2d route has strided/dilated convs {windows}"
        )
