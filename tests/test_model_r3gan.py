"""The R3GAN family (`gan_jax.models.r3gan`): stage plan, shapes for T = 8, 1 and 3, output
range, fix-up initialisation, the grouped conv's CPU formulations against lax (values,
gradients, gradient of a gradient penalty), resampling, no dilated convolution in the jitted
step, a few RpGAN + R1 + R2 steps, and config errors that name the key."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conv_reference import CONV_WINDOW, slow_windows

from gan_jax import models
from gan_jax.config import ConfigError
from gan_jax.data.spec import DataSpec
from gan_jax.models import r3gan
from gan_jax.ops import conv as conv_ops
from gan_jax.ops.blocks import space_to_depth
from gan_jax.state import create_state
from gan_jax.train_step import StepConfig, make_train_step

# Small nets: 2 stages, one block each, 4 groups of 4 channels; ONE_STAGE compiles faster.
TINY = {"widths": (8, 8), "blocks": (1, 1), "expansion": 2, "group_size": 4, "patch_size": 2}
ONE_STAGE = {"widths": (8,), "blocks": (1,)}


@pytest.fixture(autouse=True)
def _classic_threefry():
    """As `create_state` does: XLA:CPU compiles the partitionable threefry slowly."""
    with jax.threefry_partitionable(False):
        yield


def _nets(clip, output="tanh", **overrides):
    settings = {**TINY, **overrides}
    g = r3gan.R3Generator(clip_shape=clip, z_dim=8, output=output, **settings)
    d = r3gan.R3Discriminator(clip_shape=clip, **settings)
    return g, d


def _params(module, *args):
    return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, train=False))["params"]


def test_stage_plan():
    assert r3gan.stage_plan((8, 32, 32, 3), 3, 2) == (
        [(1, 4, 4), (2, 8, 8), (4, 16, 16)],
        (2, 2, 2),
    )
    assert r3gan.stage_plan((1, 32, 32, 3), 3, 2) == (
        [(1, 4, 4), (1, 8, 8), (1, 16, 16)],
        (1, 2, 2),
    )
    # An odd T is never resampled; T = 12 doubles twice (3 -> 6 -> 12), then stops.
    assert r3gan.stage_plan((3, 16, 16, 3), 2, 1) == ([(3, 8, 8), (3, 16, 16)], (1, 1, 1))
    assert r3gan.stage_plan((12, 16, 16, 3), 3, 2) == (
        [(3, 2, 2), (6, 4, 4), (12, 8, 8)],
        (1, 2, 2),
    )
    # Time doublings left over after the stages go into the patch.
    assert r3gan.stage_plan((16, 16, 16, 1), 2, 4) == ([(2, 2, 2), (4, 4, 4)], (4, 4, 4))
    with pytest.raises(ValueError, match="divisible"):
        r3gan.stage_plan((8, 30, 32, 3), 3, 2)
    with pytest.raises(ValueError, match="power of two"):
        r3gan.stage_plan((8, 32, 32, 3), 3, 3)


@pytest.mark.parametrize("clip", [(8, 16, 16, 3), (1, 16, 16, 3), (3, 8, 8, 1)])
def test_shapes(clip):
    g, d = _nets(clip)
    assert g.latent_shapes == {"z": (8,)}
    z = {"z": jnp.zeros((2, 8))}
    clips = jax.eval_shape(lambda: g.apply(g.init(jax.random.key(0), z), z))
    assert clips.shape == (2, *clip) and clips.dtype == jnp.float32
    logits = jax.eval_shape(lambda x: d.apply(d.init(jax.random.key(0), x), x), clips)
    assert logits.shape == (2,) and logits.dtype == jnp.float32
    # Time kernels are 1 wherever a stage has a single frame (every stage when T = 1).
    sizes, _ = r3gan.stage_plan(clip, 2, 2)
    g_params = _params(g, z)
    d_params = _params(d, jnp.zeros((2, *clip)))
    for i, size in enumerate(sizes):
        assert g_params[f"stage{i}_block0"]["conv"]["kernel"].shape[:3] == r3gan.kernel_size(size)
    for i, size in enumerate(sizes[::-1]):
        assert d_params[f"stage{i}_block0"]["conv"]["kernel"].shape[:3] == r3gan.kernel_size(size)
    if clip[0] == 1:
        assert all(r3gan.kernel_size(size)[0] == 1 for size in sizes)


@pytest.mark.parametrize("output", ["tanh", "clip"])
def test_generator_output_is_in_range(output):
    g, _ = _nets((2, 4, 4, 3), output=output, **ONE_STAGE)
    z = {"z": 30.0 * jax.random.normal(jax.random.key(1), (4, 8))}  # pushes the outputs far out
    variables = jax.jit(lambda k: g.init(k, z))(jax.random.key(0))
    clips = jax.jit(g.apply)(variables, z)
    assert float(jnp.max(jnp.abs(clips))) <= 1.0
    assert float(jnp.max(jnp.abs(clips))) > 0.99  # the mapping was exercised at its ends


def test_residual_block_is_the_identity_at_init():
    block = r3gan.ResidualBlock(expansion=2, group_size=4, kernel_size=(3, 3, 3), gain=1.0)
    x = jax.random.normal(jax.random.key(0), (2, 3, 4, 4, 8))
    variables = block.init(jax.random.key(1), x)
    np.testing.assert_array_equal(block.apply(variables, x), x)
    # ... because its last layer is zero: with it drawn, the branch adds something.
    params = variables["params"]
    project = params["project"]["kernel"]
    drawn = {**params, "project": {"kernel": jnp.ones_like(project)}}
    assert not np.allclose(block.apply({"params": drawn}, x), x)


@pytest.mark.parametrize("net", ["g", "d"])
def test_fixup_initialisation(net):
    """Every branch's last layer starts at zero, the others at std gain / sqrt(fan_in) with
    gain = sqrt(2 / 1.04) * L^(-1/4), L the net's block count."""
    clip = (4, 16, 16, 3)
    g, d = _nets(clip, widths=(32, 32), blocks=(2, 2), group_size=16)
    module, inputs = (g, {"z": jnp.zeros((2, 8))}) if net == "g" else (d, jnp.zeros((2, *clip)))
    params = jax.jit(lambda k: module.init(k, inputs))(jax.random.key(0))["params"]
    gain = r3gan.block_gain(4)
    np.testing.assert_allclose(gain, np.sqrt(2 / 1.04) * 4**-0.25)
    blocks = [name for name in params if "_block" in name]
    assert len(blocks) == 4
    for name in blocks:
        layers = params[name]
        assert not np.any(layers["project"]["kernel"]), name
        for layer in ("expand", "conv"):
            kernel = layers[layer]["kernel"]  # [*K, Cin (per group), Cout]
            fan_in = np.prod(kernel.shape[:-1])
            std = float(jnp.std(kernel))
            np.testing.assert_allclose(std, gain / np.sqrt(fan_in), rtol=0.15, err_msg=name)


def _lax_grouped(x, kernel):
    groups = x.shape[-1] // kernel.shape[-2]
    padding = [((k - 1) // 2,) * 2 for k in kernel.shape[:3]]
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        (1, 1, 1),
        padding,
        dimension_numbers=conv_ops.dimension_numbers(3),
        feature_group_count=groups,
    )


@pytest.mark.parametrize("formulation", ["per_group", "folded"])
@pytest.mark.parametrize(
    "x_shape, kernel_shape",
    [
        ((1, 3, 4, 5, 8), (3, 3, 3, 2, 8)),  # 4 groups
        ((2, 1, 4, 4, 8), (1, 3, 3, 4, 4)),  # T = 1: time kernel 1; Cout != Cin
        ((1, 3, 1, 4, 6), (3, 1, 3, 6, 6)),  # one group; a dim of size 1
    ],
)
def test_grouped_conv_matches_lax(monkeypatch, formulation, x_shape, kernel_shape):
    """Both CPU formulations equal lax's grouped conv in value, both gradients and the
    gradient of an R1-like penalty (the path R1 and R2 take through D)."""
    monkeypatch.setattr(r3gan, "FOLDED_MIN_ROWS", 0 if formulation == "folded" else 10**9)
    x = jax.random.normal(jax.random.key(0), x_shape)
    kernel = 0.3 * jax.random.normal(jax.random.key(1), kernel_shape)
    fast = lambda x, k: r3gan.grouped_conv(x, k, impl="fast")
    np.testing.assert_allclose(jax.jit(fast)(x, kernel), _lax_grouped(x, kernel), atol=2e-5)

    cotangent = jax.random.normal(jax.random.key(2), _lax_grouped(x, kernel).shape)

    def grads(fn):
        return jax.jit(lambda x, k: jax.vjp(fn, x, k)[1](cotangent))(x, kernel)

    for got, want in zip(grads(fast), grads(_lax_grouped)):
        np.testing.assert_allclose(got, want, atol=5e-5)

    def penalty_grads(fn):
        def penalty(x, k):
            grad_x = jax.grad(lambda x: jnp.sum(jnp.tanh(fn(x, k)) * cotangent))(x)
            return jnp.sum(grad_x**2)

        return jax.jit(jax.grad(penalty, argnums=(0, 1)))(x, kernel)

    if kernel_shape[-2] == x_shape[-1]:
        return  # one group: the fast route's own tests cover its gradients of gradients
    for got, want in zip(penalty_grads(fast), penalty_grads(_lax_grouped)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_block_diagonal_kernel():
    kernel = jax.random.normal(jax.random.key(0), (3, 2, 6))  # 3 groups of 2 in, 2 out
    dense = r3gan.block_diagonal(kernel, 3)
    assert dense.shape == (3, 6, 6)
    for g in range(3):
        for h in range(3):
            block = dense[:, 2 * g : 2 * g + 2, 2 * h : 2 * h + 2]
            want = kernel[:, :, 2 * h : 2 * h + 2] if g == h else jnp.zeros_like(block)
            np.testing.assert_array_equal(block, want)


def test_resampling():
    resample = jax.jit(r3gan.resample, static_argnums=(1, 2, 3))  # one compile, not op by op
    x = jax.random.normal(jax.random.key(0), (1, 4, 6, 5, 2))
    up = resample(x, (4, 6, 5), (8, 12, 10), "bilinear")
    np.testing.assert_allclose(up, jax.image.resize(x, (1, 8, 12, 10, 2), "linear"), atol=1e-6)
    np.testing.assert_array_equal(
        resample(x, (4, 6, 5), (4, 12, 5), "box"), jnp.repeat(x, 2, axis=2)
    )
    # Bilinear down: (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8 with the edges replicated.
    line = jnp.array([0.0, 1.0, 4.0, 9.0, 16.0, 25.0]).reshape(1, 6, 1, 1, 1)
    padded = np.pad(np.asarray(line).ravel(), 1, mode="edge")
    want = [
        (padded[2 * i] + 3 * padded[2 * i + 1] + 3 * padded[2 * i + 2] + padded[2 * i + 3]) / 8
        for i in range(3)
    ]
    down = resample(line, (6, 1, 1), (3, 1, 1), "bilinear")
    np.testing.assert_allclose(down.ravel(), want, rtol=1e-6)
    box = resample(line, (6, 1, 1), (3, 1, 1), "box")
    np.testing.assert_allclose(box.ravel(), [0.5, 6.5, 20.5])
    constant = jnp.full((1, 4, 4, 4, 1), 0.7)
    for method in ("bilinear", "box"):
        np.testing.assert_allclose(resample(constant, (4, 4, 4), (2, 2, 2), method), 0.7, rtol=1e-6)
        np.testing.assert_allclose(resample(constant, (4, 4, 4), (8, 8, 8), method), 0.7, rtol=1e-6)


def test_depth_to_space_inverts_space_to_depth():
    x = jax.random.normal(jax.random.key(0), (2, 4, 6, 8, 3))
    blocks = space_to_depth(x, (2, 2, 2))
    assert blocks.shape == (2, 2, 3, 4, 24)
    np.testing.assert_array_equal(r3gan.depth_to_space(blocks, (2, 2, 2)), x)


@pytest.mark.parametrize(
    "formulation", ["per_group", pytest.param("folded", marks=pytest.mark.slow)]
)
def test_train_steps_without_dilated_convolutions(monkeypatch, formulation):
    """The CPU step (RpGAN + R1 + R2) compiles to products and stride-1 undilated convs only,
    and a few steps stay finite and move every net's params."""
    monkeypatch.setattr(r3gan, "FOLDED_MIN_ROWS", 0 if formulation == "folded" else 10**9)
    clip = (2, 4, 4, 3)
    g, d = _nets(clip, **ONE_STAGE)
    g_tx, d_tx = optax.adam(1e-3, b1=0.0, b2=0.99), optax.adam(1e-3, b1=0.0, b2=0.99)
    cfg = StepConfig(loss="rpgan", penalties={"r1": 1.0, "r2": 1.0}, ema_decay=0.9)
    with conv_ops.route("fast"):
        state = jax.jit(lambda k: create_state(k, g, d, g_tx, d_tx))(jax.random.key(0))
        batch = {"video": jax.random.uniform(jax.random.key(1), (4, *clip), minval=-1, maxval=1)}
        step = (
            jax.jit(make_train_step(g, d, g_tx, d_tx, cfg))
            .lower(state, batch, jax.random.key(2))
            .compile()
        )
    windows = CONV_WINDOW.findall(step.as_text())
    assert not slow_windows(windows), windows
    if formulation == "per_group":
        assert not windows, windows  # every conv is a matrix product
    else:
        assert windows  # the folded 2-D convs are there, and stride-1 and undilated
    # The pattern does see dilation where there is some: a transposed conv on the lax route.
    dilated = (
        jax.jit(lambda x, k: conv_ops.conv_transpose(x, k, (2, 2), ((1, 1), (1, 1)), impl="lax"))
        .lower(jnp.zeros((1, 4, 4, 2)), jnp.zeros((4, 4, 2, 2)))
        .compile()
        .as_text()
    )
    assert re.search("lhs_dilate", dilated)

    start = state
    for i in range(3):
        state, metrics = step(state, batch, jax.random.key(3 + i))
        assert all(np.isfinite(v) for v in jax.device_get(metrics).values()), metrics
    assert float(metrics["d/r1"]) > 0 and float(metrics["d/r2"]) > 0
    # Every param moved, the zero-initialised ones too, but D's logit bias: RpGAN's logit
    # differences cancel it and the penalties do not see it.
    for before, after in ((start.g_params, state.g_params), (start.d_params, state.d_params)):
        paths = jax.tree_util.tree_flatten_with_path(before)[0]
        for (path, old), new in zip(paths, jax.tree.leaves(after)):
            name = jax.tree_util.keystr(path)
            assert (name == "['logits']['bias']") == np.array_equal(old, new), name


def _spec(sample_shape):
    key = "video" if len(sample_shape) == 4 else "points"
    return DataSpec("test", key, ((key, sample_shape, "float32"),), batch_size=4)


def test_family_builds_from_config_in_bfloat16():
    spec = _spec((8, 32, 32, 3))
    g_cfg, d_cfg = models.net_config("r3gan", "g"), models.net_config("r3gan", "d")
    for net_cfg, net in ((g_cfg, "g"), (d_cfg, "d")):
        net_cfg.dtype = "bfloat16"
        models.validate_net(net_cfg, net, spec)
    g, d = models.make_models(g_cfg, d_cfg, spec)
    latents = models.zero_latents(g.latent_shapes, 2)
    clips = jax.eval_shape(lambda: g.apply(g.init(jax.random.key(0), latents), latents))
    assert clips.shape == (2, 8, 32, 32, 3) and clips.dtype == jnp.float32
    logits = jax.eval_shape(lambda x: d.apply(d.init(jax.random.key(0), x), x), clips)
    assert logits.shape == (2,) and logits.dtype == jnp.float32


@pytest.mark.parametrize(
    "net, key, value, message",
    [
        ("g", "widths", (), r"g\.widths must be a non-empty tuple of ints >= 1"),
        ("d", "widths", (32, 0, 32), r"d\.widths must be a non-empty tuple of ints >= 1"),
        ("g", "blocks", (1, 1), r"g\.blocks=\(1, 1\) must have one entry per stage"),
        ("d", "blocks", (0, -1, 1), r"d\.blocks must be a non-empty tuple of ints >= 0"),
        ("g", "group_size", 24, r"g\.group_size=24 must divide every stage's expanded width"),
        ("d", "expansion", 0, r"d\.expansion must be"),
        ("g", "patch_size", 3, r"g\.patch_size must be a power of two"),
        ("d", "patch_size", 16, r"divisible by 2\*\*\(len\(d\.widths\) - 1\) \* d\.patch_size"),
        ("g", "resample_filter", "nearest", r"g\.resample_filter='nearest' is not allowed"),
        ("g", "output", "sigmoid", r"g\.output='sigmoid' is not allowed"),
        ("d", "dtype", "float16", r"d\.dtype='float16' is not allowed"),
        ("g", "z_dim", 0, r"g\.z_dim must be"),
    ],
)
def test_bad_config_values_name_the_key(net, key, value, message):
    net_cfg = models.net_config("r3gan", net)
    net_cfg[key] = value
    with pytest.raises(ConfigError, match=message):
        models.validate_net(net_cfg, net, _spec((8, 32, 32, 3)))


def test_non_video_data_is_refused():
    with pytest.raises(ConfigError, match=r"g\.name='r3gan' makes clips"):
        models.validate_net(models.net_config("r3gan", "g"), "g", _spec((2,)))


def test_bad_inputs_are_named():
    g, d = _nets((2, 8, 8, 3))
    with pytest.raises(ValueError, match="z must be"):
        g.init(jax.random.key(0), {"z": jnp.zeros((2, 5))})
    with pytest.raises(ValueError, match="input must be"):
        d.init(jax.random.key(0), jnp.zeros((2, 2, 8, 8, 1)))
    with pytest.raises(ValueError, match="R3Generator is unconditional"):
        g.init(jax.random.key(0), {"z": jnp.zeros((2, 8))}, jnp.zeros((2,)))
    with pytest.raises(ValueError, match="multiples of the group count"):
        r3gan.grouped_conv(jnp.zeros((1, 2, 4, 4, 6)), jnp.zeros((3, 3, 3, 4, 6)))
