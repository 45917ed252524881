"""Augmentation of D's inputs (`gan_jax.augment`): DiffAugment's operations on hand-made clips,
the probability per clip, gradients through it, ADA's adaptive p, and the train step with it:
bitwise reproducible, 1 device = 8 devices = pmap, resumed bitwise, configs checked.

Step tests use a tiny hand-made G and D (no convolutions) so that each compiles in seconds."""

import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import config_dict

from gan_jax import augment, build, config, parallel, train
from gan_jax.augment import AugmentConfig
from gan_jax.checkpoint import Checkpointer
from gan_jax.losses import LOSSES, PENALTIES, Loss, Penalty
from gan_jax.state import create_state
from gan_jax.train_step import StepConfig, make_train_step

TINY = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs" / "tiny.py"
CLIP = (2, 8, 8, 3)  # T, H, W, C
BATCH = 16
FULL = "color,translation,cutout"


def _clips(n=BATCH, clip=CLIP, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *clip)).astype(np.float32)


def _uniform_from(key):
    """`uniform(op, k)` of `augment.augment`: a stream per operation from `key`."""
    return lambda op, k: jax.random.uniform(
        jax.random.fold_in(key, augment.OPS.index(op)), (BATCH, k)
    )


def _fixed_uniform(draws):
    """`uniform(op, k)` returning the given `[N, k]` numbers for each op."""
    return lambda op, k: jnp.asarray(draws[op], jnp.float32)


# ---------------------------------------------------------------------------------------------
# The operations on hand-made clips


def _shifted(x, dy, dx):
    """Reference translation: out[n, t, h, w] = x[n, t, h - dy, w - dx], 0 outside."""
    out = np.zeros_like(x)
    _, _, height, width, _ = x.shape
    for n in range(x.shape[0]):
        for h in range(height):
            for w in range(width):
                sh, sw = h - dy[n], w - dx[n]
                if 0 <= sh < height and 0 <= sw < width:
                    out[n, :, h, w] = x[n, :, sh, sw]
    return out


def test_translation_moves_every_frame_of_a_clip_by_the_same_offset_and_pads_with_zeros():
    x = np.arange(2 * 3 * 5 * 6 * 2, dtype=np.float32).reshape(2, 3, 5, 6, 2) + 1.0
    dy, dx = np.array([1, -2]), np.array([-1, 3])
    out = np.asarray(augment.translate(jnp.asarray(x), jnp.asarray(dy), jnp.asarray(dx)))
    np.testing.assert_array_equal(out, _shifted(x, dy, dx))
    # Clip 0 moved one row down and one column left: its top row and right column are padding.
    assert np.all(out[0, :, 0] == 0) and np.all(out[0, :, :, -1] == 0)
    np.testing.assert_array_equal(out[0, :, 1:, :-1], x[0, :, :-1, 1:])  # every frame alike
    np.testing.assert_array_equal(augment.translate(jnp.asarray(x), *[jnp.zeros(2, int)] * 2), x)


def test_cutout_zeroes_the_same_rectangle_in_every_frame_cut_at_the_borders():
    x = _clips(2, (3, 6, 7, 2)) + 2.0  # no zeros of its own
    top, left = np.array([-1, 2]), np.array([1, 5])
    out = np.asarray(augment.cutout(jnp.asarray(x), jnp.asarray(top), jnp.asarray(left), (3, 4)))
    expected = x.copy()
    expected[0, :, 0:2, 1:5] = 0  # rows -1..1 cut to 0..1
    expected[1, :, 2:5, 5:7] = 0  # columns 5..8 cut to 5..6
    np.testing.assert_array_equal(out, expected)


def test_colour_operations_are_one_affine_map_for_the_whole_clip():
    x = _clips(3, (4, 5, 5, 3))
    per_clip = lambda v: np.asarray(v, np.float32).reshape(3, 1, 1, 1, 1)  # noqa: E731
    factor = jnp.asarray([0.25, 1.0, 1.75])
    # Brightness: one shift per clip.
    shift = [0.1, -0.2, 0.3]
    out = np.asarray(augment.brightness(jnp.asarray(x), jnp.asarray(shift)))
    np.testing.assert_allclose(out - x, np.broadcast_to(per_clip(shift), x.shape), atol=1e-6)
    # Contrast about the mean of the whole clip: out - f x is the same constant in every frame.
    out = np.asarray(augment.contrast(jnp.asarray(x), factor))
    offset = out - per_clip(factor) * x
    clip_mean = per_clip(x.mean(axis=(1, 2, 3, 4)))
    expected = np.broadcast_to((1 - per_clip(factor)) * clip_mean, x.shape)
    np.testing.assert_allclose(offset, expected, atol=1e-6)
    # Saturation is per pixel: each frame alone gets what it gets inside the clip.
    out = np.asarray(augment.saturation(jnp.asarray(x), factor))
    for t in range(x.shape[1]):
        frame = np.asarray(augment.saturation(jnp.asarray(x[:, t : t + 1]), factor))
        np.testing.assert_array_equal(out[:, t : t + 1], frame)


def test_every_frame_of_a_clip_gets_the_same_parameters():
    """Clips whose frames are all equal keep them equal through every operation."""
    frame = _clips(BATCH, (1, 8, 8, 3))
    x = jnp.asarray(np.repeat(frame, 3, axis=1))
    uniform = _uniform_from(jax.random.key(0))
    out = np.asarray(augment.augment(x, AugmentConfig(policy=FULL), 1.0, uniform))
    assert not np.array_equal(out, np.asarray(x))
    for t in (1, 2):
        np.testing.assert_array_equal(out[:, t], out[:, 0])


def test_images_are_clips_of_one_frame():
    x = jnp.asarray(_clips(BATCH, (1, 8, 8, 3)))
    out = augment.augment(x, AugmentConfig(policy=FULL), 1.0, _uniform_from(jax.random.key(0)))
    assert out.shape == x.shape and np.all(np.isfinite(out))


def test_p0_is_the_identity_bitwise_and_p1_always_applies():
    x = _clips()
    x[0, 0, 0, 0, 0] = -0.0  # a sign bit that an "x + 0" would lose
    bits = lambda a: np.asarray(a).view(np.uint32)  # noqa: E731
    cfg = AugmentConfig(policy=FULL)
    uniform = _uniform_from(jax.random.key(1))
    np.testing.assert_array_equal(bits(augment.augment(jnp.asarray(x), cfg, 0.0, uniform)), bits(x))
    # p = 1, brightness only: every clip shifted, by its own amount.
    out = np.asarray(augment.augment(jnp.asarray(x), AugmentConfig(policy="color"), 1.0, uniform))
    assert all(not np.array_equal(out[n], x[n]) for n in range(BATCH))


def test_each_clip_is_augmented_with_probability_p_from_its_own_draw():
    """Translation with hand-picked draws: clip 0 draws 0.2 (applied when p > 0.2), clip 1
    draws 0.999 (applied only at p = 1); offsets from the extreme draws are -s and +s."""
    x = _clips(2)
    cfg = AugmentConfig(policy="translation", translation_ratio=0.25)  # s = 2 on 8 pixels
    draws = {"translation": [[0.2, 0.0, 0.99999994], [0.999, 0.99999994, 0.5]]}
    uniform = _fixed_uniform(draws)
    moved = _shifted(x, np.array([-2, 2]), np.array([2, 0]))
    out = np.asarray(augment.augment(jnp.asarray(x), cfg, 1.0, uniform))
    np.testing.assert_array_equal(out, moved)
    out = np.asarray(augment.augment(jnp.asarray(x), cfg, 0.5, uniform))
    np.testing.assert_array_equal(out[0], moved[0])
    np.testing.assert_array_equal(out[1], x[1])


def test_different_clips_get_different_parameters():
    x = jnp.zeros((BATCH, *CLIP))
    uniform = _uniform_from(jax.random.key(2))
    out = np.asarray(augment.augment(x, AugmentConfig(policy="color"), 1.0, uniform))
    shifts = out[:, 0, 0, 0, 0]
    assert len(set(shifts.tolist())) == BATCH  # zero clips: brightness alone shows
    ones = jnp.ones((BATCH, *CLIP))
    cut = np.asarray(augment.augment(ones, AugmentConfig(policy="cutout"), 1.0, uniform))
    masks = {cut[n, 0, :, :, 0].tobytes() for n in range(BATCH)}
    assert len(masks) > BATCH // 2


@pytest.mark.parametrize("policy, p", [(FULL, 1.0), (FULL, 0.5), ("translation,color", 1.0)])
def test_gradients_flow_through_the_augmentation_and_match_autodiff(policy, p):
    """The hand-written backward pass (adjoint operations in reverse order) equals what
    autodiff derives from the forward operations."""
    x = jnp.asarray(_clips())
    cotangent = jnp.asarray(_clips(seed=1))
    uniform = _uniform_from(jax.random.key(3))
    cfg = AugmentConfig(policy=policy)
    draws = tuple(uniform(op, augment.DRAWS[op]) for op in cfg.ops)
    (grad,) = jax.vjp(lambda v: augment.augment(v, cfg, p, uniform), x)[1](cotangent)
    derived = jax.vjp(lambda v: augment.apply_ops(v, draws, jnp.float32(p), cfg), x)[1]
    (expected,) = derived(cotangent)
    grad = np.asarray(grad)
    assert np.all(np.isfinite(grad)) and np.count_nonzero(grad) > grad.size // 4
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# ADA's update rule


def test_ada_moves_p_up_when_d_is_overconfident_on_reals_and_down_otherwise():
    cfg = AugmentConfig(policy=FULL, p=0.5, ada_target=0.6, ada_kimg=1.0, ada_interval=2)
    step_size = 8 * 2 / 1000.0
    state = augment.ada_init(cfg)
    # Step 0 only accumulates; step 1 ends the interval: mean r_t 0.9 > 0.6, p up.
    state = augment.ada_update(state, jnp.float32(1.0), jnp.int32(0), 8, cfg)
    assert float(state["p"]) == 0.5 and float(state["rt_sum"]) == 1.0
    state = augment.ada_update(state, jnp.float32(0.8), jnp.int32(1), 8, cfg)
    np.testing.assert_allclose(float(state["p"]), 0.5 + step_size, rtol=1e-6)
    assert float(state["rt_sum"]) == 0.0
    # Below the target: p down.
    for step in (2, 3):
        state = augment.ada_update(state, jnp.float32(0.2), jnp.int32(step), 8, cfg)
    np.testing.assert_allclose(float(state["p"]), 0.5, rtol=1e-6)
    # Clipped to [0, 1].
    big = AugmentConfig(policy=FULL, p=0.99, ada_target=0.6, ada_kimg=0.001, ada_interval=1)
    up = augment.ada_update(augment.ada_init(big), jnp.float32(1.0), jnp.int32(0), 8, big)
    down = augment.ada_update(augment.ada_init(big), jnp.float32(-1.0), jnp.int32(0), 8, big)
    assert (float(up["p"]), float(down["p"])) == (1.0, 0.0)


def test_sign_rate_averages_heads():
    rate = augment.sign_rate({"video": jnp.asarray([1.0, -2.0, 3.0, 4.0]), "image": jnp.ones(8)})
    np.testing.assert_allclose(float(rate), (0.5 + 1.0) / 2)


# ---------------------------------------------------------------------------------------------
# The train step with augmentation


class TinyG(nn.Module):
    """A learned clip plus a linear map of the noise, squashed to [-1, 1]."""

    @property
    def latent_shapes(self):
        return {"z": (4,)}

    @nn.compact
    def __call__(self, latents, cond=None, train=True):
        z = latents["z"]
        base = self.param("clip", nn.initializers.normal(0.5), CLIP)
        x = nn.Dense(int(np.prod(CLIP)), name="proj")(z).reshape(z.shape[0], *CLIP)
        return jnp.tanh(x + base[None])


class TinyD(nn.Module):
    """A weighted sum of tanh(x) per clip plus a bias `b`: pixels count by position."""

    @nn.compact
    def __call__(self, x, cond=None, train=True):
        w = self.param("w", nn.initializers.normal(0.1), CLIP)
        b = self.param("b", nn.initializers.zeros, ())
        return jnp.sum(jnp.tanh(x) * w[None], axis=(1, 2, 3, 4)) + b


def _batches(steps, seed=0):
    return [{"video": _clips(seed=seed + i)} for i in range(steps)]


def _step_cfg(**augment_kwargs):
    return StepConfig(penalties={"r1": 1.0}, ema_decay=0.9, augment=AugmentConfig(**augment_kwargs))


ADA = dict(policy=FULL, p=0.25, ada_target=0.6, ada_kimg=0.05, ada_interval=3)


@functools.cache
def _compiled(aug_items, devices=1, lr=0.05):
    """(mesh, init, step) of the tiny GAN with SGD, jitted over the first `devices`."""
    g, d = TinyG(), TinyD()
    tx = optax.sgd(lr)
    cfg = _step_cfg(**dict(aug_items))
    mesh = parallel.make_mesh(jax.devices()[:devices])
    step = parallel.jit_train_step(
        make_train_step(g, d, tx, tx, cfg, data_sharding=parallel.batch_sharding(mesh)), mesh
    )
    init = jax.jit(
        lambda k: create_state(k, g, d, tx, tx, augment=cfg.augment),
        out_shardings=parallel.replicated(mesh),
    )
    return mesh, init, step


def _train(aug, steps=4, devices=1, state=None, first=0, lr=0.05, bias=None):
    """`steps` steps from `state` (default: a fresh one, with D's bias set to `bias` if given:
    a D sure that everything is real or fake)."""
    mesh, init, step = _compiled(tuple(sorted(aug.items())), devices, lr)
    if state is None:
        state = init(jax.random.key(0))
        if bias is not None:
            state = state.replace(d_params={**state.d_params, "b": jnp.float32(bias)})
    history = []
    for batch in _batches(steps, seed=first):
        state, metrics = step(state, parallel.global_batch(batch, mesh), jax.random.key(1))
        history.append(jax.device_get(metrics))
    return state, history


def test_the_step_with_augmentation_is_bitwise_reproducible_and_logs_p_and_rt():
    state_a, hist_a = _train(ADA)
    state_b, hist_b = _train(ADA)
    for x, y in zip(jax.tree.leaves((state_a, hist_a)), jax.tree.leaves((state_b, hist_b))):
        np.testing.assert_array_equal(x, y)
    assert {"aug/p", "aug/rt"} <= set(hist_a[0])
    assert hist_a[0]["aug/p"] == np.float32(0.25)
    # p is ADA's state in d_stats, moved after the third step (ada_interval 3).
    assert float(state_a.d_stats[augment.STATE_KEY]["p"]) != 0.25
    assert [h["aug/p"] for h in hist_a[:3]] == [np.float32(0.25)] * 3
    # D differs from a run without augmentation: the augmentation is in its path.
    state_off, hist_off = _train({})
    assert "aug/p" not in hist_off[0] and augment.STATE_KEY not in state_off.d_stats
    assert hist_off[0]["d/loss"] != hist_a[0]["d/loss"]


class ZeroFractionD(nn.Module):
    """Logits = the fraction of exact zeros in each clip: what cutout leaves, since neither the
    uniform reals nor tanh of G's output hold exact zeros of their own."""

    @nn.compact
    def __call__(self, x, cond=None, train=True):
        w = self.param("w", nn.initializers.zeros, ())
        return jnp.mean((x == 0).astype(jnp.float32), axis=(1, 2, 3, 4)) + w


@pytest.fixture
def probes():
    """Test penalties reporting the zero fraction of the real and the fake inputs they get
    (weight 0: they only log), and a loss whose G part is the mean of D's real logits, so
    that `g/loss` shows what D saw of the reals in G's update."""
    penalties = {"test_zeros_real": 0, "test_zeros_fake": 1}
    for name, which in penalties.items():
        fn = lambda d_fn, real, fake, noise, w=which: jnp.mean(((real, fake)[w] == 0) * 1.0)  # noqa: E731
        PENALTIES.register(name, Penalty(fn, 1.0))
    loss = Loss(
        d_loss=lambda r, f: jnp.mean(f) - jnp.mean(r),
        g_loss=lambda r, f: jnp.mean(r) + 0.0 * jnp.mean(f),
        g_needs_real=True,
    )
    LOSSES.register("test_real_mean", loss)
    yield "test_real_mean", list(penalties)
    LOSSES.unregister("test_real_mean")
    for name in penalties:
        PENALTIES.unregister(name)


def test_d_g_and_the_penalties_see_augmented_reals_and_fakes(probes):
    """Cutout at p = 1 zeroes up to a quarter of every clip (8x8, 4x4 rectangles cut at the
    borders): D's real and fake inputs in its update, the penalties' inputs, and D's real
    inputs in G's update (a relativistic loss) all show it."""
    loss, penalties = probes
    g, d, tx = TinyG(), ZeroFractionD(), optax.sgd(0.0)
    cfg = StepConfig(
        loss=loss,
        penalties=dict.fromkeys(penalties, 0.0),
        augment=AugmentConfig(policy="cutout"),
    )
    state = create_state(jax.random.key(0), g, d, tx, tx, augment=cfg.augment)
    step = jax.jit(make_train_step(g, d, tx, tx, cfg))
    _, metrics = step(state, _batches(1)[0], jax.random.key(1))
    names = ["d/real_logit", "d/fake_logit", "g/loss", *(f"d/{name}" for name in penalties)]
    for name in names:
        assert 0.05 < float(metrics[name]) <= 0.25, name


def test_g_gets_finite_non_zero_gradients_through_the_augmentation():
    _, (on,) = _train({"policy": FULL}, steps=1)
    _, (off,) = _train({}, steps=1)
    assert np.isfinite(on["grad_norm/g"]) and on["grad_norm/g"] > 0
    assert on["grad_norm/g"] != off["grad_norm/g"]  # G's loss went through the augmentation


def _assert_close(a, b):
    for (path, x), y in zip(
        jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b), strict=True
    ):
        np.testing.assert_allclose(
            np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-5, err_msg=jax.tree_util.keystr(path)
        )


PARALLEL = dict(policy=FULL, p=0.5)


@pytest.fixture(scope="module")
def one_device():
    state, history = _train(PARALLEL, steps=3)
    return jax.device_get(state), history


def test_eight_devices_match_one(one_device):
    state1, hist1 = one_device
    state8, hist8 = _train(PARALLEL, steps=3, devices=8)
    _assert_close(hist8, hist1)
    _assert_close(jax.device_get(state8), state1)


@pytest.mark.slow  # the pmap body is the jit body (tests/test_parallel.py); 18 s here
def test_pmap_matches_one_device(one_device):
    """Under pmap each device takes its rows of the same global draws."""
    state1, hist1 = one_device
    g, d, tx = TinyG(), TinyD(), optax.sgd(0.05)
    cfg = _step_cfg(**PARALLEL)
    step = parallel.pmap_train_step(
        make_train_step(g, d, tx, tx, cfg, axis_name=parallel.PMAP_AXIS)
    )
    state = jax.jit(lambda k: create_state(k, g, d, tx, tx, augment=cfg.augment))(jax.random.key(0))
    state = parallel.replicate_for_pmap(state, 8)
    hist_p = []
    for batch in _batches(3):
        state, metrics = step(state, parallel.split_for_pmap(batch, 8), jax.random.key(1))
        hist_p.append(jax.device_get(parallel.unreplicate(metrics)))
    _assert_close(hist_p, hist1)
    _assert_close(jax.device_get(parallel.unreplicate(state)), state1)


def test_the_augmentation_runs_on_each_devices_rows():
    """Over 8 devices, no clip of the whole batch [16, ...] exists in the compiled step: the
    draws follow the batch sharding, so XLA does not replicate the augmentation."""
    mesh, init, step = _compiled(tuple(sorted(PARALLEL.items())), 8)
    batch = parallel.global_batch(_batches(1)[0], mesh)
    text = step.lower(init(jax.random.key(0)), batch, jax.random.key(1)).compile().as_text()
    assert "f32[2,2,8,8,3]" in text  # each device's rows
    assert "f32[16,2,8,8,3]" not in text and "all-gather" not in text


@pytest.mark.parametrize("bias, direction", [(20.0, 1), (-20.0, -1)])
def test_ada_p_rises_when_d_is_overconfident_on_reals_and_falls_otherwise(bias, direction):
    """A D sure of "real" (logits about +20) has r_t = 1 > 0.6: p rises by the step size at
    every interval; one sure of "fake" (r_t = -1): p falls. lr = 0 keeps D so."""
    aug = dict(policy=FULL, p=0.5, ada_target=0.6, ada_kimg=1.0, ada_interval=2)
    state, history = _train(aug, steps=4, lr=0.0, bias=bias)
    assert [float(h["aug/rt"]) for h in history] == [float(direction)] * 4
    step_size = BATCH * 2 / 1000.0
    expected = [0.5, 0.5, 0.5 + direction * step_size, 0.5 + direction * step_size]
    np.testing.assert_allclose([h["aug/p"] for h in history], expected, rtol=1e-6)
    np.testing.assert_allclose(
        float(state.d_stats[augment.STATE_KEY]["p"]), 0.5 + 2 * direction * step_size, rtol=1e-6
    )


def test_a_resumed_run_with_ada_continues_bitwise(tmp_path):
    """2 steps, checkpoint, restore into a fresh abstract state, 2 more steps == 4 steps in
    one go. D starts sure that every real is real (r_t = 1 each step), so the checkpoint falls
    mid-interval with r_t's running sum at 2: had it been lost, step 3 would see a mean r_t of
    1/3 < 0.6 and lower p instead of raising it."""
    sure = 20.0
    straight, _ = _train(ADA, steps=4, bias=sure)
    first, _ = _train(ADA, steps=2, bias=sure)
    assert float(first.d_stats[augment.STATE_KEY]["rt_sum"]) == 2.0
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        ckpt.save(2, first, force=True)
    _, init, _ = _compiled(tuple(sorted(ADA.items())))
    with Checkpointer(tmp_path) as ckpt:
        restored, _, _ = ckpt.restore(init(jax.random.key(5)))
    resumed, _ = _train(ADA, steps=2, state=restored, first=2)
    assert float(straight.d_stats[augment.STATE_KEY]["p"]) > ADA["p"]
    for x, y in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------------------------
# Config


def _tiny_cfg():
    return config.load_config_file(TINY)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("augment.policy", "color,flip", r"augment\.policy='color,flip': unknown policy 'flip'"),
        ("augment.p", "1.5", r"augment\.p must be in \[0\.0, 1\.0\]"),
        ("augment.translation_ratio", "1.0", r"augment\.translation_ratio must be in"),
        ("augment.ada_kimg", "0", r"augment\.ada_kimg must be > 0"),
        ("augment.ada_interval", "0", r"augment\.ada_interval must be >= 1"),
        ("augment.ada_target", "0.6", r"augment\.ada_target=0\.6 .* augment\.policy is empty"),
    ],
)
def test_config_errors_name_the_key(key, value, message):
    cfg = _tiny_cfg()
    config.override(cfg, key, value)
    with pytest.raises(config.ConfigError, match=message):
        train.validate(cfg)


def test_augmenting_points_is_a_config_error():
    cfg = train.default_config(model="mlp", data="ring")
    cfg.augment.policy = "color"
    with pytest.raises(config.ConfigError, match=r"augment\.policy='color': .* not clips"):
        train.validate(cfg)


def test_the_augment_group_reaches_the_step_and_the_state():
    cfg = _tiny_cfg()
    assert build.step_config(cfg).augment == AugmentConfig()  # off by default
    # A group built with a tuple works as well as the comma-separated string.
    cfg.augment = config_dict.ConfigDict(
        {**cfg.augment.to_dict(), "policy": ("translation", "color"), "ada_target": 0.6}
    )
    spec = train.validate(cfg)
    run = build.build(cfg, spec)
    assert run.step_cfg.augment.ops == ("translation", "brightness", "saturation", "contrast")
    shapes = jax.eval_shape(build.init_fn(run), jax.random.key(0))
    assert set(shapes.d_stats[augment.STATE_KEY]) == {"p", "rt_sum"}
    cfg.augment.ada_target = 0.0  # a fixed p needs no state: the tree stays as it was
    shapes = jax.eval_shape(build.init_fn(build.build(cfg, spec)), jax.random.key(0))
    assert augment.STATE_KEY not in shapes.d_stats


def test_configs_from_before_augmentation_get_the_group_switched_off():
    values = _tiny_cfg().to_dict()
    del values["augment"]
    upgraded = build.upgrade_config(config.config_from_dict(values))
    assert upgraded.augment.to_dict() == augment.default_config().to_dict()
    train.validate(upgraded)
    assert isinstance(upgraded.augment, config_dict.ConfigDict)


def test_switching_ada_on_or_off_when_resuming_is_a_config_error():
    """ADA's p is in the state: a checkpoint restores only into a run that adapts p as it did
    (a fixed p needs no state and may change)."""
    before = _tiny_cfg()
    fixed = _tiny_cfg()
    fixed.augment.policy = FULL
    train._check_same_ada(before, fixed, 6)
    adaptive = _tiny_cfg()
    adaptive.augment.policy = FULL
    adaptive.augment.ada_target = 0.6
    message = r"step 6 was trained without adaptive .* augment\.ada_target=0\.0"
    with pytest.raises(config.ConfigError, match=message):
        train._check_same_ada(before, adaptive, 6)
    with pytest.raises(config.ConfigError, match=r"trained with adaptive augmentation"):
        train._check_same_ada(adaptive, fixed, 6)
