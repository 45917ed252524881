"""The video GAN's jit train step on a GPU gives the CPU's numbers (README: "GPU-only tests:
`-m gpu`").

Run on a machine with an NVIDIA GPU and a CUDA build of jax (e.g. `pip install "jax[cuda12]"`):

    JAX_PLATFORMS=cuda,cpu .venv/bin/python -m pytest -m gpu tests/test_gpu_step.py -n 0

JAX_PLATFORMS must name both platforms: tests/conftest.py sets it to "cpu" unless it is already
set, which hides any GPU, and the reference run needs the CPU. Without a visible GPU every test
here skips, saying so; the default run (`-m 'not slow and not gpu'`) deselects the file.

Each platform runs its own convolution route ("fast" on CPU, XLA's convolutions on GPU; see
`gan_jax.models.conv_ops`), so this also checks the two routes against each other. Optimiser:
SGD, for the reason given in tests/test_parallel.py (Adam turns round-off in tiny gradients into
+-lr steps). float32 matmuls and convolutions run at full precision on both sides
(`jax.default_matmul_precision("highest")`): by default recent NVIDIA GPUs use TF32, whose
10-bit mantissa alone would exceed the 1e-4 tolerance.

Run on an NVIDIA H200 (jax 0.11.2, flax 0.12.10): both tests pass. Written on a CPU-only
machine and checked there with a second CPU device standing in for the GPU (so the "lax" route
against the "fast" one), where each fails when the "lax" route is changed on purpose (a 1e-3
scale on its convolutions; a doubled transposed convolution).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import TINY_CLIP, tiny_video_models

from gan_jax.ops.conv import with_route
from gan_jax.state import create_state
from gan_jax.train_step import StepConfig, make_train_step

pytestmark = pytest.mark.gpu

STEPS = 3
BATCH = 8


def _gpu() -> jax.Device:
    try:
        return jax.devices("gpu")[0]
    except RuntimeError as e:
        pytest.skip(
            f"no GPU visible to JAX ({e}). Run with JAX_PLATFORMS=cuda,cpu (tests/conftest.py "
            "defaults it to cpu) and a CUDA build of jax."
        )


def _models(dtype):
    g, d = tiny_video_models(norm="batch", spectral_norm=True)
    return g.clone(dtype=dtype), d.clone(dtype=dtype)


def _run(device: jax.Device, conv_impl: str, dtype=jnp.float32):
    """`STEPS` jit train steps of the tiny video GAN on `device`, from one initial state.

    Returns:
        `(initial state, final state, [metrics of each step])`, on the host.
    """
    g, d = _models(dtype)
    g_tx, d_tx = optax.sgd(0.05, momentum=0.5), optax.sgd(0.05, momentum=0.5)
    cpu = jax.devices("cpu")[0]
    with jax.default_device(cpu):  # the same initial weights for both platforms
        initial = jax.device_get(
            jax.jit(lambda k: create_state(k, g, d, g_tx, d_tx))(jax.random.key(0))
        )
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, (BATCH, *TINY_CLIP)).astype(np.float32) for _ in range(STEPS)]
    step = jax.jit(
        with_route(conv_impl, make_train_step(g, d, g_tx, d_tx, StepConfig(ema_decay=0.9)))
    )
    # Committed inputs decide where jit runs the step.
    state, key = jax.device_put((initial, jax.random.key(1)), device)
    history = []
    with jax.default_matmul_precision("highest"):
        for video in batches:
            state, metrics = step(state, {"video": jax.device_put(video, device)}, key)
            history.append(jax.device_get(metrics))
    assert {leaf.devices().pop() for leaf in jax.tree.leaves(state)} == {device}
    return initial, jax.device_get(state), history


def _assert_close(a, b, rtol):
    """Leaf by leaf, relative to the leaf's magnitude (near-zero entries get an absolute
    tolerance of rtol times the leaf's largest value)."""
    for (path, x), y in zip(
        jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b), strict=True
    ):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        scale = max(1.0, float(np.max(np.abs(y)))) if y.size else 1.0
        np.testing.assert_allclose(
            x, y, rtol=rtol, atol=rtol * scale, err_msg=jax.tree_util.keystr(path)
        )


def test_train_step_on_gpu_matches_cpu():
    gpu, cpu = _gpu(), jax.devices("cpu")[0]
    _, state_gpu, history_gpu = _run(gpu, conv_impl="lax")
    _, state_cpu, history_cpu = _run(cpu, conv_impl="fast")
    _assert_close(history_gpu, history_cpu, rtol=1e-4)  # losses, accuracies, gradient norms
    _assert_close(state_gpu, state_cpu, rtol=1e-4)  # params, momenta, EMA, BN and SN statistics


def _params_update(initial, final) -> np.ndarray:
    """Everything `STEPS` steps changed in G's and D's params, as one float64 vector."""
    leaves = [
        np.ravel(np.asarray(new, np.float64) - np.asarray(old, np.float64))
        for part in ("g_params", "d_params")
        for new, old in zip(
            jax.tree.leaves(getattr(final, part)), jax.tree.leaves(getattr(initial, part))
        )
    ]
    return np.concatenate(leaves)


def test_bfloat16_train_step_on_gpu_stays_near_float32():
    """bfloat16 compute on the GPU (params stay float32) against the float32 step on the CPU.

    Not an equality: bfloat16 keeps 8 mantissa bits. Calibrated on this project's CPU (both
    convolution routes in bfloat16 against float32): first-step losses within 5 % (g/loss
    1.145 and 1.115 against 1.092), and the params' update over the 3 steps points the same
    way (cosine 0.94 and 0.96) while differing by 26-33 % in norm. So: losses within 10 %, the
    update's cosine above 0.8 (a spatially flipped conv kernel gives 0.0, a doubled transposed
    conv 0.66), every metric and the state finite.
    """
    gpu, cpu = _gpu(), jax.devices("cpu")[0]
    initial, state_gpu, history_gpu = _run(gpu, conv_impl="lax", dtype=jnp.bfloat16)
    _, state_cpu, history_cpu = _run(cpu, conv_impl="fast", dtype=jnp.float32)
    for name in ("d/loss", "g/loss"):
        np.testing.assert_allclose(history_gpu[0][name], history_cpu[0][name], rtol=0.1)
    assert all(np.isfinite(value) for metrics in history_gpu for value in metrics.values())
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state_gpu))
    bf16, f32 = _params_update(initial, state_gpu), _params_update(initial, state_cpu)
    cosine = bf16 @ f32 / (np.linalg.norm(bf16) * np.linalg.norm(f32))
    assert cosine > 0.8, cosine
