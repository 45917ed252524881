"""Model shapes, settings and input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_video_models

from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator
from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator, block_plan


@pytest.fixture(autouse=True)
def _classic_threefry():
    """Model inits here draw from the classic threefry layout, as `create_state` does: XLA:CPU
    compiles the partitionable one's 5-D kernels for seconds each."""
    with jax.threefry_partitionable(False):
        yield


def _init_apply(module, x, train=False):
    variables = module.init(jax.random.key(0), x, train=False)
    if train:
        return module.apply(variables, x, train=True, mutable=["batch_stats"])[0], variables
    return module.apply(variables, x, train=False), variables


@pytest.mark.parametrize("clip", [(4, 16, 16, 3), (1, 16, 16, 3), (3, 8, 16, 1)])
def test_video_gan_shapes(clip):
    g = VideoGenerator(clip_shape=clip, z_dim=8, base_width=4, depth=2)
    d = VideoDiscriminator(clip_shape=clip, base_width=4, depth=2)
    # Shapes only: eval_shape traces without compiling.
    clips = jax.eval_shape(lambda z: _init_apply(g, z, train=True)[0], jnp.zeros((2, 8)))
    assert clips.shape == (2, *clip) and clips.dtype == jnp.float32
    logits = jax.eval_shape(lambda x: _init_apply(d, x, train=True)[0], clips)
    assert logits.shape == (2,) and logits.dtype == jnp.float32


def test_generator_output_is_in_range():
    g, _ = tiny_video_models()
    z = 10.0 * jax.random.normal(jax.random.key(1), (4, 8))  # large z pushes tanh to saturate
    clips, _ = jax.jit(lambda z: _init_apply(g, z))(z)
    assert float(jnp.max(jnp.abs(clips))) <= 1.0


def test_block_plan():
    assert block_plan((16, 32, 32, 3), 4) == ((1, 2, 2), [(2, 2, 2)] * 4)
    assert block_plan((8, 64, 64, 3), 4) == ((1, 4, 4), [(2, 2, 2)] * 3 + [(1, 2, 2)])
    assert block_plan((1, 32, 32, 3), 4) == ((1, 2, 2), [(1, 2, 2)] * 4)
    assert block_plan((12, 16, 16, 3), 2) == ((3, 4, 4), [(2, 2, 2)] * 2)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth"):
        block_plan((16, 30, 32, 3), 4)


def test_image_gan_uses_time_kernel_one():
    g, _ = tiny_video_models(clip=(1, 8, 8, 3))
    params = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, 8)), train=False))
    params = params["params"]
    assert params["up0"]["kernel"].shape[0] == 1


def test_settings_change_the_variables():
    g, d = tiny_video_models(norm="none", spectral_norm=True)
    z = jnp.zeros((2, 8))
    g_vars = jax.jit(lambda k: g.init(k, z, train=False))(jax.random.key(0))
    assert "batch_stats" not in g_vars  # no batch norm
    d_vars = jax.jit(lambda k: d.init(k, jnp.zeros((2, 2, 8, 8, 3)), train=False))(
        jax.random.key(0)
    )
    sn_leaves = [p for p, _ in jax.tree_util.tree_flatten_with_path(d_vars["batch_stats"])[0]]
    assert any("sigma" in jax.tree_util.keystr(p) for p in sn_leaves)
    # Spectral norm bounds each layer: after a few power iterations sigma ~ 1 per kernel.
    x = jax.random.normal(jax.random.key(2), (2, 2, 8, 8, 3))
    power_step = jax.jit(lambda v: d.apply(v, x, train=True, mutable=["batch_stats"])[1])
    for _ in range(10):
        d_vars = {**d_vars, **power_step(d_vars)}
    dense = d_vars["params"]["logits"]["kernel"]
    sigma = np.linalg.svd(np.asarray(dense).reshape(-1, dense.shape[-1]), compute_uv=False)[0]
    stored = jax.tree.leaves(d_vars["batch_stats"]["SpectralNorm_2"])
    np.testing.assert_allclose(float(stored[0]), sigma, rtol=1e-3)


def test_conv_routes_agree_in_the_models():
    """The fast CPU convolutions and plain lax give the same G and D (outputs and grads)."""
    clip = (4, 8, 8, 3)
    outs = {}
    for impl in ("lax", "fast"):
        g = VideoGenerator(clip_shape=clip, z_dim=8, base_width=4, depth=2, conv_impl=impl)
        d = VideoDiscriminator(clip_shape=clip, base_width=4, depth=2, conv_impl=impl)
        z = jax.random.normal(jax.random.key(1), (2, 8))
        g_vars = jax.jit(lambda k, g=g, z=z: g.init(k, z, train=False))(jax.random.key(0))
        d_vars = jax.jit(lambda k, d=d: d.init(k, jnp.zeros((2, *clip)), train=False))(
            jax.random.key(0)
        )

        def loss(g_params, d_params, g=g, d=d, g_vars=g_vars, d_vars=d_vars, z=z):
            clips = g.apply({**g_vars, "params": g_params}, z, train=False)
            return jnp.sum(d.apply({**d_vars, "params": d_params}, clips, train=False) ** 2)

        outs[impl] = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(
            g_vars["params"], d_vars["params"]
        )
    (loss_lax, grads_lax), (loss_fast, grads_fast) = outs["lax"], outs["fast"]
    np.testing.assert_allclose(loss_fast, loss_lax, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads_fast), jax.tree.leaves(grads_lax), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(b))))


def test_bad_inputs_name_the_shape():
    g, d = tiny_video_models()
    with pytest.raises(ValueError, match="z must be"):
        g.init(jax.random.key(0), jnp.zeros((2, 7)), train=False)
    with pytest.raises(ValueError, match="input must be"):
        d.init(jax.random.key(0), jnp.zeros((2, 2, 8, 9, 3)), train=False)
    with pytest.raises(ValueError, match="norm="):
        VideoGenerator(norm="layer").init(jax.random.key(0), jnp.zeros((2, 128)))


def test_mlp_shapes_and_packing():
    g, d = MLPGenerator(z_dim=3), MLPDiscriminator(pack=4)
    points, _ = _init_apply(g, jnp.zeros((8, 3)))
    assert points.shape == (8, 2)
    logits, _ = _init_apply(d, points)
    assert logits.shape == (8,)
    # packed: each group of 4 shares one logit
    np.testing.assert_array_equal(logits.reshape(2, 4), jnp.repeat(logits[::4, None], 4, axis=1))
    with pytest.raises(ValueError, match="pack=4"):
        d.init(jax.random.key(0), jnp.zeros((6, 2)))
