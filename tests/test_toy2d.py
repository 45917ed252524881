"""2-D mixtures, PacGAN's metric, the multi-seed runner of the toy configs, slow trained rings."""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config, train
from gan_jax.data.points import mixture, sample_points
from gan_jax.metrics.mode_coverage import mode_coverage
from gan_jax.models.mlp import MLPDiscriminator, minibatch_std
from gan_jax.multiseed import train_seed, train_seeds

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"


def _config(name: str, **overrides):
    cfg = config.load_config_file(CONFIGS / name)
    return config.apply_overrides(cfg, [(k, repr(v)) for k, v in overrides.items()])


def _tiny():
    """The best recipe (every option on), small enough to compile in seconds."""
    return _config(
        "toy_best.py",
        steps=20,
        batch_size=32,
        **{"g.hidden": 16, "d.hidden": 16, "penalty.r1": 0.1, "ema.decay": 0.9},
    )


def test_mixtures_match_the_papers():
    ring, ring_std = mixture("ring")
    assert ring.shape == (8, 2) and ring_std == 0.01
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ring[2], [0.0, 1.0], atol=1e-6)  # angle 2*pi*2/8
    grid, grid_std = mixture("grid")
    assert grid.shape == (25, 2) and grid_std == 0.05
    assert set(np.unique(grid)) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    with pytest.raises(ValueError, match="'moons'"):
        mixture("moons")


def test_samples_come_from_the_modes():
    points = np.asarray(sample_points(jax.random.key(0), 4000, "grid"))
    result = mode_coverage(points, "grid")
    # 2-D Gaussian: P(r <= 3 std) = 1 - exp(-4.5) = 98.9 %
    assert result["modes"] == 25 and 98.0 < result["hq_percent"] < 99.7
    assert result["reverse_kl"] < 0.02  # near-uniform histogram over 25 modes


def test_mode_coverage_by_hand():
    centres, std = mixture("ring")
    # 3 samples on mode 0, 1 on mode 1, 1 far from everything, 1 just outside 3 std of mode 2.
    samples = np.concatenate(
        [
            np.repeat(centres[:1], 3, axis=0),
            centres[1:2] + [0.0, 2.5 * std],
            [[0.0, 0.0]],
            centres[2:3] + [3.5 * std, 0.0],
        ]
    )
    result = mode_coverage(samples, "ring")
    assert result["modes"] == 2
    np.testing.assert_allclose(result["hq_percent"], 100 * 4 / 6)
    # p = (3/4, 1/4, 0, ...): sum p log(p K)
    expected = 0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8)
    np.testing.assert_allclose(result["reverse_kl"], expected, rtol=1e-12)
    collapsed = mode_coverage(np.repeat(centres[:1], 10, axis=0), "ring")
    np.testing.assert_allclose(collapsed["reverse_kl"], math.log(8), rtol=1e-12)
    with pytest.raises(ValueError, match="NaN"):
        mode_coverage(np.full((4, 2), np.nan), "ring")


def test_short_toy_run_is_finite():
    _, result = train_seed(_config("ring.py", steps=20, batch_size=64), seed=0)
    assert np.isfinite(result["d/loss"]) and np.isfinite(result["g/loss"])
    assert 0 <= result["modes"] <= 8


@pytest.mark.slow
def test_trained_ring_covers_the_modes():
    _, result = train_seed(_config("ring.py"), seed=0)
    assert result["modes"] >= 7, result
    assert result["hq_percent"] >= 80.0, result


@pytest.mark.slow  # 24 s; the 2-D multi-seed runner only
def test_vmapped_seeds_equal_single_seed_runs():
    states, results = train_seeds(_tiny(), [3, 5])
    for i, seed in enumerate([3, 5]):
        state, result = train_seed(_tiny(), seed)
        # Same numbers drawn; batched matrix products may round differently in the last bits.
        for single, batched in zip(
            jax.tree.leaves(state.g_ema),
            [leaf[i] for leaf in jax.tree.leaves(states.g_ema)],
        ):
            np.testing.assert_allclose(single, batched, rtol=1e-4, atol=1e-6)
        for name in ("modes", "hq_percent", "reverse_kl", "d/loss", "g/loss", "d/r1"):
            np.testing.assert_allclose(result[name], results[i][name], rtol=1e-4, err_msg=name)
    # Different seeds give different runs.
    assert not np.allclose(results[0]["d/loss"], results[1]["d/loss"])
    with pytest.raises(ValueError, match="repeat"):
        train_seeds(_tiny(), [1, 1])


def test_minibatch_std_feature():
    rows = jnp.asarray(np.random.default_rng(0).normal(size=(8, 3)), jnp.float32)
    stat = np.asarray(minibatch_std(rows, 4))
    assert stat.shape == (8, 1)
    expected = [np.std(np.asarray(rows[i : i + 4]), axis=0).mean() for i in (0, 4)]
    np.testing.assert_allclose(stat[:, 0], np.repeat(expected, 4), rtol=1e-5)
    # Identical rows: std 0 and a finite gradient (epsilon inside the sqrt).
    grad = jax.grad(lambda h: minibatch_std(h, 4).sum())(jnp.ones((4, 3)))
    assert np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match="group=3"):
        minibatch_std(rows, 3)


def test_discriminator_minibatch_std_couples_only_its_group():
    d = MLPDiscriminator(hidden=8, minibatch_std_group=4)
    points = jnp.asarray(np.random.default_rng(1).normal(size=(8, 2)), jnp.float32)
    params = d.init(jax.random.key(0), points)
    # the statistic is one extra input of the last hidden layer (8 features + 1)
    assert params["params"]["hidden2"]["kernel"].shape == (9, 8)
    logits = d.apply(params, points)
    moved = d.apply(params, points.at[0].add(5.0))
    assert logits.shape == (8,)
    assert np.all(np.asarray(logits[1:4]) != np.asarray(moved[1:4]))  # same group: changed
    np.testing.assert_array_equal(logits[4:], moved[4:])  # other group: untouched
    plain = MLPDiscriminator(hidden=8)  # default stays off: no coupling, no extra input
    assert plain.init(jax.random.key(0), points)["params"]["hidden2"]["kernel"].shape == (8, 8)
    with pytest.raises(ValueError, match="group=3"):
        MLPDiscriminator(hidden=8, minibatch_std_group=3).init(jax.random.key(0), points)


def test_toy_configs_validate_and_name_their_mistakes():
    for name in ("ring.py", "grid.py", "toy_best.py", "toy_rpgan.py"):
        for data in ("ring", "grid"):
            assert train.validate(_config(name, **{"data.name": data})).sample_shape == (2,)
    best = _config("toy_best.py")
    assert best.d.minibatch_std == 4 and best.penalty.r1 == 1.0 and best.g.schedule == "linear"
    assert _config("toy_rpgan.py").loss.name == "rpgan"
    with pytest.raises(config.ConfigError, match="d.minibatch_std=3 must be 0"):
        train.validate(_config("toy_best.py", **{"d.minibatch_std": 3}))
    with pytest.raises(config.ConfigError, match="batch_size=256 must be divisible by d.pack=3"):
        train.validate(_config("ring.py", **{"d.pack": 3}))
    with pytest.raises(config.ConfigError, match="g.name='video_dcgan' makes clips"):
        train.validate(_config("ring.py", **{"g.name": "video_dcgan", "d.name": "video_dcgan"}))


@pytest.mark.slow
def test_best_recipe_beats_the_targets_on_the_ring():
    _, result = train_seed(_config("toy_best.py"), seed=0)
    assert result["modes"] == 8, result
    assert result["hq_percent"] >= 97.0, result
    assert result["reverse_kl"] <= 0.05, result
