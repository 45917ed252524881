"""Optimisers from a net's config group (`gan_jax.optim`): learning-rate schedules, warm-up,
D's schedule over its `n_critic` updates per step, per-subtree multipliers, validation; and the
EMA of G's parameters (`gan_jax.train_step.ema_step_size`)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import build, optim, train
from gan_jax.config import ConfigError
from gan_jax.train_step import StepConfig, ema_step_size

LR = 0.1


def _cfg(**changes):
    """The optimiser keys of a net group, at `LR`, with `changes` applied."""
    cfg = optim.default_config(lr=LR)
    for key, value in changes.items():
        if key == "lr_multipliers":
            with cfg.lr_multipliers.unlocked():
                cfg.lr_multipliers.update(value)
        else:
            cfg[key] = value
    return cfg


def _lrs(schedule, steps):
    return [float(schedule(jnp.asarray(step))) for step in steps]


def _schedule_states(state):
    is_schedule = lambda x: isinstance(x, optax.ScaleByScheduleState)
    return [x for x in jax.tree.leaves(state, is_leaf=is_schedule) if is_schedule(x)]


PARAMS = {"w": jnp.ones((3,)), "b": jnp.zeros(())}


# ---------------------------------------------------------------------------------------------
# Schedules


def test_constant_lr_is_a_float_and_adds_no_counter():
    cfg = _cfg()
    lr = optim.learning_rate(cfg, total_steps=100)
    assert type(lr) is float and lr == LR
    # decay_start and final_lr_scale do nothing without a decaying schedule.
    assert optim.learning_rate(_cfg(decay_start=0.5, final_lr_scale=0.1), 100) == LR
    state = optim.make_optimizer(cfg, "g", total_steps=100).init(PARAMS)
    assert _schedule_states(state) == []
    # The state is the one of plain Adam, so runs saved before schedules existed restore.
    plain = optax.adam(LR, b1=0.5, b2=0.999).init(PARAMS)
    assert jax.tree.structure(state) == jax.tree.structure(plain)
    # A schedule adds its counter.
    scheduled = optim.make_optimizer(_cfg(schedule="linear"), "g", 100).init(PARAMS)
    assert len(_schedule_states(scheduled)) == 1


def test_linear_decay_holds_then_decays_to_the_final_scale():
    cfg = _cfg(schedule="linear", decay_start=0.5, final_lr_scale=0.1)
    schedule = optim.learning_rate(cfg, total_steps=100)
    assert callable(schedule)
    # Held at LR for the first half, then linear from LR at 50 to 0.1 * LR at 100, then held.
    expected = [LR, LR, LR, LR, 0.5 * (LR + 0.1 * LR), 0.1 * LR + 0.9 * LR / 50, 0.1 * LR]
    steps = [0, 25, 49, 50, 75, 99, 100]
    np.testing.assert_allclose(_lrs(schedule, steps), expected, rtol=1e-6)
    np.testing.assert_allclose(_lrs(schedule, [150]), [0.1 * LR], rtol=1e-6)
    # From the start, to 0.
    schedule = optim.learning_rate(_cfg(schedule="linear"), total_steps=10)
    np.testing.assert_allclose(_lrs(schedule, [0, 4, 10]), [LR, 0.6 * LR, 0.0], atol=1e-9)


def test_the_optimizer_follows_the_schedule():
    # SGD with unit gradients moves each parameter by -lr(count) per update:
    # linear from LR to 0 over 4 updates is LR * (1 + 0.75 + 0.5 + 0.25) = 2.5 * LR.
    tx = optim.make_optimizer(_cfg(optimizer="sgd", schedule="linear"), "g", total_steps=4)
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    for _ in range(4):
        updates, state = tx.update({"w": jnp.ones(())}, state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(params["w"], -2.5 * LR, rtol=1e-6)


def test_cosine_decay():
    def cosine(t, span, final):
        return LR * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t / span)))

    schedule = optim.learning_rate(_cfg(schedule="cosine"), total_steps=100)
    steps = [0, 25, 50, 75, 100]
    np.testing.assert_allclose(
        _lrs(schedule, steps), [cosine(t, 100, 0.0) for t in steps], rtol=1e-5, atol=1e-9
    )
    np.testing.assert_allclose(_lrs(schedule, [50]), [0.5 * LR], rtol=1e-5)
    cfg = _cfg(schedule="cosine", decay_start=0.5, final_lr_scale=0.2)
    schedule = optim.learning_rate(cfg, total_steps=100)
    expected = [LR, LR, cosine(25, 50, 0.2), 0.2 * LR, 0.2 * LR]
    np.testing.assert_allclose(_lrs(schedule, [0, 50, 75, 100, 120]), expected, rtol=1e-5)
    np.testing.assert_allclose(cosine(25, 50, 0.2), 0.6 * LR, rtol=1e-12)


def test_warmup():
    schedule = optim.learning_rate(_cfg(warmup_steps=10), total_steps=100)
    assert callable(schedule)  # a warm-up makes even a constant rate a schedule
    np.testing.assert_allclose(
        _lrs(schedule, [0, 5, 10, 50, 100]), [0.0, 0.5 * LR, LR, LR, LR], rtol=1e-6, atol=1e-9
    )
    # Warm-up, then linear decay from the end of the warm-up to 0.
    schedule = optim.learning_rate(_cfg(warmup_steps=10, schedule="linear"), total_steps=100)
    np.testing.assert_allclose(
        _lrs(schedule, [0, 5, 10, 55, 100]), [0.0, 0.5 * LR, LR, 0.5 * LR, 0.0], atol=1e-8
    )
    # Warm-up, held, then linear decay from decay_start.
    cfg = _cfg(warmup_steps=10, schedule="linear", decay_start=0.5)
    schedule = optim.learning_rate(cfg, total_steps=100)
    np.testing.assert_allclose(
        _lrs(schedule, [5, 10, 30, 50, 75, 100]),
        [0.5 * LR, LR, LR, LR, 0.5 * LR, 0.0],
        atol=1e-8,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"schedule": "linear", "decay_start": 0.5, "final_lr_scale": 0.1},
        {"schedule": "cosine"},
        {"warmup_steps": 10},
        {"warmup_steps": 10, "schedule": "linear", "decay_start": 0.3},
    ],
    ids=["linear", "cosine", "warmup", "warmup_linear"],
)
def test_d_schedule_spans_n_critic_updates_per_step(changes):
    cfg, n_critic, steps = _cfg(**changes), 5, 100
    g_schedule = optim.learning_rate(cfg, steps)
    d_schedule = optim.learning_rate(cfg, steps, updates_per_step=n_critic)
    # D's update u happens in train step u / n_critic: the same rate as G's at that step.
    for step in (0, 3, 10, 30, 50, 64, 99, 100):
        np.testing.assert_allclose(
            _lrs(d_schedule, [step * n_critic]), _lrs(g_schedule, [step]), rtol=1e-5, atol=1e-9
        )


def test_build_gives_d_its_n_critic_schedule():
    cfg = train.default_config(model="mlp", data="ring")
    cfg.steps = 10
    cfg.step.n_critic = 3
    for net in (cfg.g, cfg.d):
        net.optimizer = "sgd"
        net.schedule = "linear"
    train.validate(cfg)
    run = build.build(cfg)
    # SGD with unit gradients: the update is -lr(count). After 15 updates, G is at 1.5 steps
    # past its end (rate 0) while D, whose 30 updates span the run, is half way (rate LR / 2).
    rates = {}
    for name, tx in (("g", run.g_tx), ("d", run.d_tx)):
        state = optax.tree_utils.tree_set(tx.init(PARAMS), count=jnp.asarray(15))
        updates, _ = tx.update(jax.tree.map(jnp.ones_like, PARAMS), state, PARAMS)
        rates[name] = -float(updates["b"])
    np.testing.assert_allclose(rates["g"], 0.0, atol=1e-9)
    np.testing.assert_allclose(rates["d"], 0.5 * cfg.d.lr, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Multipliers


def _two_heads():
    key_video, key_image, key_grads = jax.random.split(jax.random.key(0), 3)
    params = {
        "video": {
            "conv": {"kernel": jax.random.normal(key_video, (2, 3))},
            "dense": {"kernel": jnp.ones((3,)), "bias": jnp.zeros((3,))},
        },
        "image": {"kernel": jax.random.normal(key_image, (4,))},
    }
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key_grads, len(leaves))
    grads = jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])
    return params, grads


def _updates(cfg, params, grads, num_updates=1):
    """The summed updates of `num_updates` steps with the same gradients."""
    tx = optim.make_optimizer(cfg, "d", total_steps=100)
    state = tx.init(params)
    total = jax.tree.map(jnp.zeros_like, params)
    for _ in range(num_updates):
        updates, state = tx.update(grads, state, params)
        total = jax.tree.map(jnp.add, total, updates)
    return total


@pytest.mark.parametrize("schedule", ["constant", "linear"])
@pytest.mark.parametrize("num_updates", [1, 3])
def test_a_multiplier_scales_its_subtree_exactly(schedule, num_updates):
    params, grads = _two_heads()
    base = _updates(_cfg(schedule=schedule), params, grads, num_updates)
    scaled = _updates(
        _cfg(schedule=schedule, lr_multipliers={"video": 0.1}), params, grads, num_updates
    )
    # Adam normalises the step, so the step is the rate: 0.1x the rate is 0.1x the move.
    for a, b in zip(jax.tree.leaves(scaled["video"]), jax.tree.leaves(base["video"]), strict=True):
        assert float(jnp.max(jnp.abs(b))) > 0.01 * LR * num_updates
        np.testing.assert_allclose(a, 0.1 * b, rtol=1e-6)
    # The other subtree is untouched (up to the rounding of a differently fused sum).
    np.testing.assert_allclose(scaled["image"]["kernel"], base["image"]["kernel"], rtol=1e-6)


def test_the_longest_matching_path_wins():
    params, grads = _two_heads()
    base = _updates(_cfg(), params, grads)
    scaled = _updates(
        _cfg(lr_multipliers={"video": 0.1, "video/conv": 0.5, "image/kernel": 0.0}),
        params,
        grads,
    )
    np.testing.assert_allclose(
        scaled["video"]["conv"]["kernel"], 0.5 * base["video"]["conv"]["kernel"], rtol=1e-6
    )
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(
            scaled["video"]["dense"][name], 0.1 * base["video"]["dense"][name], rtol=1e-6
        )
    np.testing.assert_array_equal(scaled["image"]["kernel"], 0.0)  # a multiplier of 0 freezes


@pytest.mark.parametrize("path", ["vidoe", "video/con", "conv"])
def test_a_multiplier_path_that_matches_nothing_is_named(path):
    params, _ = _two_heads()
    tx = optim.make_optimizer(_cfg(lr_multipliers={"video": 0.1, path: 0.5}), "d", 100)
    with pytest.raises(ConfigError, match=rf"d\.lr_multipliers: \['{path}'\] match no parameter"):
        tx.init(params)
    with pytest.raises(ConfigError, match=r"starting with one of \['image', 'video'\]"):
        tx.init(params)


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("optimizer", "rmsprop", r"d\.optimizer='rmsprop' is not allowed; choose one of"),
        ("lr", 0.0, r"d\.lr must be > 0\.0, got 0\.0"),
        ("b1", 1.0, r"d\.b1 must be in \[0\.0, 1\.0\), got 1\.0"),
        ("b2", -0.1, r"d\.b2 must be in \[0\.0, 1\.0\)"),
        ("momentum", 1.5, r"d\.momentum must be in \[0\.0, 1\.0\)"),
        ("schedule", "step", r"d\.schedule='step' is not allowed; choose one of"),
        ("decay_start", 1.5, r"d\.decay_start must be in \[0\.0, 1\.0\], got 1\.5"),
        ("final_lr_scale", -0.5, r"d\.final_lr_scale must be in \[0\.0, 1\.0\]"),
        ("warmup_steps", -1, r"d\.warmup_steps must be >= 0, got -1"),
        ("lr_multipliers", {"video": -1.0}, r"d\.lr_multipliers\.video must be >= 0\.0"),
    ],
)
def test_validation_names_the_key(key, value, message):
    cfg = _cfg(**{key: value})
    with pytest.raises(ConfigError, match=message):
        optim.validate(cfg, "d")


def test_defaults_validate():
    optim.validate(optim.default_config(), "g")
    cfg = _cfg(
        optimizer="sgd",
        momentum=0.9,
        schedule="cosine",
        decay_start=1.0,
        final_lr_scale=1.0,
        warmup_steps=5,
        lr_multipliers={"video": 0.0, "image": 2.0},
    )
    optim.validate(cfg, "g")


# ---------------------------------------------------------------------------------------------
# EMA of G


def _ema_after(cfg: StepConfig, steps: int, batch: int, start: int = 0) -> float:
    """The EMA of a parameter that jumps from 0 to 1 at `start`, after `steps` more steps, updated
    as the train step does."""
    ema, params = jnp.zeros(()), jnp.ones(())
    for step in range(start, start + steps):
        size = ema_step_size(cfg, jnp.asarray(step, jnp.int32), batch)
        ema = optax.incremental_update(params, ema, step_size=size)
    return float(ema)


def test_ema_decay():
    cfg = StepConfig(ema_decay=0.99)
    for step in (0, 1, 1000):
        np.testing.assert_allclose(ema_step_size(cfg, jnp.asarray(step), 16), 0.01, rtol=1e-9)
    np.testing.assert_allclose(_ema_after(cfg, 3, 16), 1 - 0.99**3, rtol=1e-6)
    # Decay 0: the EMA is the parameters.
    assert _ema_after(StepConfig(ema_decay=0.0), 1, 16) == 1.0


@pytest.mark.parametrize("batch", [10, 16, 256])
def test_ema_half_life_in_samples(batch):
    half_life = 1000.0
    cfg = StepConfig(ema_decay=0.9, ema_half_life=half_life)  # the half-life replaces the decay
    decay = 1.0 - float(ema_step_size(cfg, jnp.asarray(0), batch))
    np.testing.assert_allclose(decay, 0.5 ** (batch / half_life), rtol=1e-6)
    np.testing.assert_allclose(
        1.0 - _ema_after(cfg, 1, batch), 0.5 ** (batch / half_life), rtol=1e-5
    )
    if batch == 10:  # after half_life samples (100 steps) the old value weighs one half
        np.testing.assert_allclose(1.0 - _ema_after(cfg, 100, batch), 0.5, rtol=1e-5)


def test_ema_rampup_caps_the_half_life():
    batch, half_life, rampup = 32, 10_000.0, 0.05
    cfg = StepConfig(ema_half_life=half_life, ema_rampup=rampup)
    # At step 0 no sample has been seen: the half-life is 0 and the EMA copies the parameters.
    np.testing.assert_allclose(ema_step_size(cfg, jnp.asarray(0), batch), 1.0)
    assert _ema_after(cfg, 1, batch) == 1.0
    # At step 10, 320 samples seen: half-life min(10000, 0.05 * 320) = 16 -> decay 0.5 ** 2.
    np.testing.assert_allclose(ema_step_size(cfg, jnp.asarray(10), batch), 0.75, rtol=1e-6)
    # Past 10000 / (0.05 * 32) = 6250 steps the configured half-life holds.
    for step in (6250, 20_000):
        np.testing.assert_allclose(
            1.0 - ema_step_size(cfg, jnp.asarray(step), batch),
            0.5 ** (batch / half_life),
            rtol=1e-6,
        )
    # Without the ramp-up, step 10 already uses the configured half-life.
    no_rampup = StepConfig(ema_half_life=half_life)
    np.testing.assert_allclose(
        1.0 - ema_step_size(no_rampup, jnp.asarray(10), batch), 0.5 ** (batch / half_life)
    )


def test_ema_settings_are_checked():
    with pytest.raises(ValueError, match="ema_rampup needs ema_half_life"):
        StepConfig(ema_rampup=0.05)
    with pytest.raises(ValueError, match=r"ema_decay=1\.0 must be in \[0, 1\)"):
        StepConfig(ema_decay=1.0)
