"""Model shapes, settings and input validation; the model families and G's latent contract."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_video_models

from gan_jax import models
from gan_jax.data.spec import DataSpec
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator
from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator, block_plan
from gan_jax.ops import conv as conv_ops


@pytest.fixture(autouse=True)
def _classic_threefry():
    """Model inits here draw from the classic threefry layout, as `create_state` does: XLA:CPU
    compiles the partitionable one's 5-D kernels for seconds each."""
    with jax.threefry_partitionable(False):
        yield


def _z(z):
    """G's latents for noise `z` `[N, Z]`."""
    return {"z": z}


def _init_apply(module, x, train=False):
    variables = module.init(jax.random.key(0), x, train=False)
    if train:
        return module.apply(variables, x, train=True, mutable=["batch_stats"])[0], variables
    return module.apply(variables, x, train=False), variables


@pytest.mark.parametrize("clip", [(4, 16, 16, 3), (1, 16, 16, 3), (3, 8, 16, 1)])
def test_video_gan_shapes(clip):
    g = VideoGenerator(clip_shape=clip, z_dim=8, base_width=4, depth=2)
    d = VideoDiscriminator(clip_shape=clip, base_width=4, depth=2)
    assert g.latent_shapes == {"z": (8,)}
    # Shapes only: eval_shape traces without compiling.
    clips = jax.eval_shape(lambda z: _init_apply(g, _z(z), train=True)[0], jnp.zeros((2, 8)))
    assert clips.shape == (2, *clip) and clips.dtype == jnp.float32
    logits = jax.eval_shape(lambda x: _init_apply(d, x, train=True)[0], clips)
    assert logits.shape == (2,) and logits.dtype == jnp.float32


def test_video_discriminator_minibatch_std_couples_only_its_group():
    clip = (2, 8, 8, 3)
    # No batch norm: it would couple every clip of the batch.
    d = VideoDiscriminator(clip_shape=clip, base_width=4, depth=2, norm="none", minibatch_std=4)
    clips = jnp.asarray(np.random.default_rng(1).normal(size=(8, *clip)), jnp.float32)
    params = d.init(jax.random.key(0), clips, train=False)
    # the statistic is one more channel of the last map (8 channels + 1, over 1 x 2 x 2)
    assert params["params"]["logits"]["kernel"].shape == (4 * 9, 1)
    logits = d.apply(params, clips, train=False)
    moved = d.apply(params, clips.at[0].add(1.0), train=False)
    assert logits.shape == (8,)
    assert np.all(np.asarray(logits[1:4]) != np.asarray(moved[1:4]))  # same group: changed
    np.testing.assert_array_equal(logits[4:], moved[4:])  # other group: untouched
    plain = VideoDiscriminator(clip_shape=clip, base_width=4, depth=2, norm="none")
    plain_params = plain.init(jax.random.key(0), clips, train=False)
    assert plain_params["params"]["logits"]["kernel"].shape == (4 * 8, 1)
    with pytest.raises(ValueError, match="group=3"):
        VideoDiscriminator(clip_shape=clip, base_width=4, depth=2, minibatch_std=3).init(
            jax.random.key(0), clips, train=False
        )


def test_generator_output_is_in_range():
    g, _ = tiny_video_models()
    z = 10.0 * jax.random.normal(jax.random.key(1), (4, 8))  # large z pushes tanh to saturate
    clips, _ = jax.jit(lambda z: _init_apply(g, _z(z)))(z)
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
    params = jax.eval_shape(lambda: g.init(jax.random.key(0), _z(jnp.zeros((2, 8))), train=False))
    params = params["params"]
    assert params["up0"]["kernel"].shape[0] == 1


def test_settings_change_the_variables():
    g, d = tiny_video_models(norm="none", spectral_norm=True)
    z = jnp.zeros((2, 8))
    g_vars = jax.jit(lambda k: g.init(k, _z(z), train=False))(jax.random.key(0))
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


@pytest.fixture
def conv_route(monkeypatch):
    """`conv_route(impl)` makes the models' convolutions (impl=None) take route `impl`, as in a
    process started with GAN_JAX_CONV_IMPL=impl; the cached choice is dropped after the test."""

    def choose(impl):
        monkeypatch.setenv(conv_ops.IMPL_ENV_VAR, impl)
        conv_ops.default_impl.cache_clear()
        assert conv_ops.default_impl() == impl

    yield choose
    conv_ops.default_impl.cache_clear()


def test_conv_routes_agree_in_the_models(conv_route):
    """The fast CPU convolutions and plain lax give the same G and D (outputs and grads)."""
    clip = (4, 8, 8, 3)
    g = VideoGenerator(clip_shape=clip, z_dim=8, base_width=4, depth=2)
    d = VideoDiscriminator(clip_shape=clip, base_width=4, depth=2)
    z = _z(jax.random.normal(jax.random.key(1), (2, 8)))
    g_vars = jax.jit(lambda k: g.init(k, z, train=False))(jax.random.key(0))
    d_vars = jax.jit(lambda k: d.init(k, jnp.zeros((2, *clip)), train=False))(jax.random.key(0))

    def make_loss():
        """A new function each time: jit caches traces by function, and a trace made under one
        route would be reused under the other."""

        def loss(g_params, d_params):
            clips = g.apply({**g_vars, "params": g_params}, z, train=False)
            return jnp.sum(d.apply({**d_vars, "params": d_params}, clips, train=False) ** 2)

        return loss

    outs = {}
    for impl in ("lax", "fast"):
        conv_route(impl)
        outs[impl] = jax.jit(jax.value_and_grad(make_loss(), argnums=(0, 1)))(
            g_vars["params"], d_vars["params"]
        )
        hlo = jax.jit(make_loss()).lower(g_vars["params"], d_vars["params"]).as_text()
        # D's strided convolutions tell the routes apart: lax keeps them, fast has products.
        assert ("stride = [2, 2, 2]" in hlo) == (impl == "lax"), impl
    (loss_lax, grads_lax), (loss_fast, grads_fast) = outs["lax"], outs["fast"]
    np.testing.assert_allclose(loss_fast, loss_lax, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads_fast), jax.tree.leaves(grads_lax), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(b))))


def test_bad_inputs_name_the_shape():
    g, d = tiny_video_models()
    with pytest.raises(ValueError, match="z must be"):
        g.init(jax.random.key(0), _z(jnp.zeros((2, 7))), train=False)
    with pytest.raises(ValueError, match="input must be"):
        d.init(jax.random.key(0), jnp.zeros((2, 2, 8, 9, 3)), train=False)
    with pytest.raises(ValueError, match="norm="):
        VideoGenerator(norm="layer").init(jax.random.key(0), _z(jnp.zeros((2, 128))))


def test_unconditional_models_refuse_a_condition():
    g, d = tiny_video_models()
    labels = jnp.zeros((2,), jnp.int32)
    with pytest.raises(ValueError, match="VideoGenerator is unconditional"):
        g.init(jax.random.key(0), _z(jnp.zeros((2, 8))), labels, train=False)
    with pytest.raises(ValueError, match="VideoDiscriminator is unconditional"):
        d.init(jax.random.key(0), jnp.zeros((2, 2, 8, 8, 3)), labels, train=False)
    with pytest.raises(ValueError, match="MLPGenerator is unconditional"):
        MLPGenerator().init(jax.random.key(0), _z(jnp.zeros((2, 2))), labels)
    with pytest.raises(ValueError, match="MLPDiscriminator is unconditional"):
        MLPDiscriminator().init(jax.random.key(0), jnp.zeros((2, 2)), labels)


def test_mlp_shapes_and_packing():
    g, d = MLPGenerator(z_dim=3), MLPDiscriminator(pack=4)
    assert g.latent_shapes == {"z": (3,)}
    points, _ = _init_apply(g, _z(jnp.zeros((8, 3))))
    assert points.shape == (8, 2)
    logits, _ = _init_apply(d, points)
    assert logits.shape == (8,)
    # packed: each group of 4 shares one logit
    np.testing.assert_array_equal(logits.reshape(2, 4), jnp.repeat(logits[::4, None], 4, axis=1))
    with pytest.raises(ValueError, match="pack=4"):
        d.init(jax.random.key(0), jnp.zeros((6, 2)))


# ---------------------------------------------------------------------------------------------
# Families by name and the latent contract


def _spec(sample_shape, batch_size=8, name="test"):
    key = "video" if len(sample_shape) == 4 else "points"
    return DataSpec(name, key, ((key, sample_shape, "float32"),), batch_size=batch_size)


@pytest.mark.parametrize(
    "family, sample_shape",
    [("video_dcgan", (2, 8, 8, 3)), ("mlp", (2,)), ("gan_jax.models.mlp", (3,))],
)
def test_families_build_nets_for_the_data(family, sample_shape):
    assert {"video_dcgan", "mlp"} <= set(models.FAMILIES.names())
    spec = _spec(sample_shape)
    g_cfg, d_cfg = models.net_config(family, "g"), models.net_config(family, "d")
    assert g_cfg.name == d_cfg.name == family
    if family == "video_dcgan":
        for net in (g_cfg, d_cfg):
            net.base_width, net.depth = 4, 2
    models.validate_net(g_cfg, "g", spec)
    models.validate_net(d_cfg, "d", spec)
    g, d = models.make_models(g_cfg, d_cfg, spec)
    latents = models.zero_latents(g.latent_shapes, 2)
    assert latents["z"].shape == (2, g_cfg.z_dim)
    samples = jax.eval_shape(lambda: _init_apply(g, latents, train=True)[0])
    assert samples.shape == (2, *sample_shape)
    logits = jax.eval_shape(lambda x: _init_apply(d, x, train=True)[0], samples)
    assert logits.shape == (2,)


def test_family_errors():
    with pytest.raises(ValueError, match=r"unknown model family 'resnet'; known: .*mlp"):
        models.net_config("resnet", "g")
    with pytest.raises(ValueError, match=r"g\.name='mlp' works on vectors"):
        models.validate_net(models.net_config("mlp", "g"), "g", _spec((2, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"d\.name='video_dcgan' makes clips"):
        models.validate_net(models.net_config("video_dcgan", "d"), "d", _spec((2,)))


def test_draw_latents_follows_the_tree_of_shapes():
    key = jax.random.key(3)
    normal = lambda k, shape: jax.random.normal(k, (4, *shape))
    # One latent is drawn from the key itself.
    single = models.draw_latents(key, {"z": (5,)}, normal)
    np.testing.assert_array_equal(single["z"], jax.random.normal(key, (4, 5)))
    # Several: one key each from split(key, n), in tree order (dict keys sorted).
    shapes = {"motion": (3, 2), "content": (6,)}
    several = models.draw_latents(key, shapes, normal)
    keys = jax.random.split(key, 2)
    np.testing.assert_array_equal(several["content"], jax.random.normal(keys[0], (4, 6)))
    np.testing.assert_array_equal(several["motion"], jax.random.normal(keys[1], (4, 3, 2)))
    zeros = models.zero_latents(shapes, 2)
    assert zeros["content"].shape == (2, 6) and zeros["motion"].shape == (2, 3, 2)
    assert not any(jnp.any(leaf) for leaf in jax.tree.leaves(zeros))


@pytest.mark.parametrize("family", ["video_dcgan", "mocogan"])
def test_output_gain_steepens_g_s_tanh_and_reaches_the_generator(family):
    """`g.output_gain` = a: G's samples are tanh(a * its last conv), with the same parameters
    (gain 1: the plain tanh). Configs saved before the key build with gain 1; a gain <= 0 is
    refused by name."""
    spec = _spec((2, 8, 8, 3), batch_size=2)
    g_cfg, d_cfg = models.net_config(family, "g"), models.net_config(family, "d")
    for net in (g_cfg, d_cfg):
        net.base_width, net.depth = 4, 2
    gs = {}
    for gain in (1.0, 2.5):
        g_cfg.output_gain = gain
        models.validate_net(g_cfg, "g", spec)
        gs[gain] = models.make_models(g_cfg, d_cfg, spec)[0]
        assert gs[gain].output_gain == gain
    latents = jax.tree.map(
        lambda x: jax.random.normal(jax.random.key(2), x.shape),
        models.zero_latents(gs[1.0].latent_shapes, 2),
    )
    variables = jax.jit(lambda k: gs[1.0].init(k, latents, train=False))(jax.random.key(0))
    plain, steep = (
        np.asarray(jax.jit(lambda v, g=g: g.apply(v, latents, train=False))(variables))
        for g in (gs[1.0], gs[2.5])
    )
    # DCGAN's initialisation keeps the outputs small, but not zero: the gain shows.
    assert np.abs(plain).max() > 1e-3 and np.abs(steep - plain).max() > 1e-3
    np.testing.assert_allclose(steep, np.tanh(2.5 * np.arctanh(plain)), rtol=1e-4, atol=1e-7)

    del g_cfg["output_gain"]  # a config saved before the key existed
    models.validate_net(g_cfg, "g", spec)
    assert models.make_models(g_cfg, d_cfg, spec)[0].output_gain == 1.0
    g_cfg.output_gain = 0.0
    with pytest.raises(ValueError, match=r"^g\.output_gain must be > 0.0, got 0.0"):
        models.validate_net(g_cfg, "g", spec)
