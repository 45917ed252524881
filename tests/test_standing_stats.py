"""Standing statistics (`ema.standing_stats`): batch-norm statistics measured on the EMA G."""

import json
import pathlib

import flax.linen as nn
import imageio.v3 as iio
import jax
import numpy as np
import pytest
from conftest import tiny_video_models

from gan_jax import build, parallel
from gan_jax.config import ConfigError, config_from_dict, load_config_file
from gan_jax.evaluate import _EVAL_NOISE_SALT, EVAL_CHUNK
from gan_jax.io import frame_grid
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics
from gan_jax.sampling import make_sampler, set_standing_stats, training_sample_key
from gan_jax.standing_stats import batch_statistics, make_standing_stats
from gan_jax.workdir import load_run

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(persistent_compile_cache):
    """This module's runs compile the same tiny programs: compile each once."""
    yield


def test_one_batchs_statistics_make_inference_mode_give_training_modes_output():
    """Normalising with one batch's statistics is what training mode does on that batch."""
    g, _ = tiny_video_models()
    latents = {"z": jax.random.normal(jax.random.key(1), (8, g.z_dim))}
    variables = jax.jit(lambda z: g.init(jax.random.key(0), z, None, train=False))(latents)
    params = variables["params"]
    stats = {k: v for k, v in variables.items() if k != "params"}
    assert jax.tree.leaves(stats), "the tiny G has batch norm"

    @jax.jit
    def both(params, stats):
        trained, _ = g.apply(
            {"params": params, **stats}, latents, None, train=True, mutable=list(stats)
        )
        measured = batch_statistics(g, params, stats, latents, None)
        inferred = g.apply({"params": params, **measured}, latents, None, train=False)
        running = g.apply({"params": params, **stats}, latents, None, train=False)
        return trained, inferred, running

    trained, inferred, running = both(params, stats)
    np.testing.assert_allclose(inferred, trained, atol=2e-5)
    assert np.abs(np.asarray(running) - np.asarray(trained)).max() > 1e-2


class _Norm(nn.Module):
    """Dense then a batch norm of another momentum than the models' 0.9."""

    @nn.compact
    def __call__(self, x, cond, train):
        h = nn.Dense(3, kernel_init=nn.initializers.normal(1.0))(x)
        return nn.BatchNorm(use_running_average=not train, momentum=0.37)(h)


def test_batch_statistics_hold_for_any_momentum():
    module = _Norm()
    x = jax.random.normal(jax.random.key(2), (16, 5)) * 3.0 + 1.0
    variables = module.init(jax.random.key(0), x, None, train=False)
    stats = {"batch_stats": jax.tree.map(lambda v: v + 0.5, variables["batch_stats"])}
    measured = batch_statistics(module, variables["params"], stats, x, None)
    h = np.asarray(nn.Dense(3).apply({"params": variables["params"]["Dense_0"]}, x), np.float64)
    np.testing.assert_allclose(measured["batch_stats"]["BatchNorm_0"]["mean"], h.mean(0), 1e-4)
    np.testing.assert_allclose(measured["batch_stats"]["BatchNorm_0"]["var"], h.var(0), 1e-4)


def _tiny_cfg(**ema):
    cfg = load_config_file(CONFIGS / "tiny.py")
    with cfg.unlocked():
        cfg.ema.update(ema)
    return cfg


def test_standing_statistics_are_fixed_by_the_seed_and_leave_the_weights_alone():
    cfg = _tiny_cfg(standing_stats=3)
    run = build.build(cfg, build.validate(cfg))
    mesh = parallel.make_mesh()
    state = jax.jit(build.init_fn(run))(jax.random.key(0))
    standing = make_standing_stats(cfg, run.g, run.objective, mesh)
    first, again = standing(state), standing(state)
    jax.tree.map(np.testing.assert_array_equal, first.g_stats, again.g_stats)
    assert first.g_ema is state.g_ema and first.g_params is state.g_params
    moved = [
        np.abs(a - b).max() for a, b in zip(*map(jax.tree.leaves, (first.g_stats, state.g_stats)))
    ]
    assert min(moved) > 0, "every mean and variance is measured anew"
    with cfg.unlocked():
        cfg.seed = 1
    other = make_standing_stats(cfg, run.g, run.objective, mesh)(state)
    assert not np.array_equal(*(jax.tree.leaves(s.g_stats)[0] for s in (first, other)))
    off = make_standing_stats(_tiny_cfg(standing_stats=0), run.g, run.objective, mesh)
    assert off(state) is state


def test_training_is_unchanged_and_samples_and_eval_use_the_standing_statistics(tmp_path, capsys):
    """Two tiny runs, with and without: the same checkpoints; the training grid, `sample` and
    `eval` come from G_ema with the standing statistics; `--standing-stats` overrides the run's
    setting in both commands."""
    states = {}
    for n in (0, 2):
        workdir = tmp_path / f"standing{n}"
        args = ["train", "--config", str(CONFIGS / "tiny.py"), "--workdir", str(workdir)]
        every = 2 if n else 0  # the grid and the evaluation are checked for the run with them
        overrides = [
            f"--config.ema.standing_stats={n}",
            f"--config.log.sample_every={every}",
            f"--config.eval.every={every}",
            "--config.eval.metrics=('video_stats',)",
        ]
        assert main([*args, "--config.steps=2", *overrides]) == 0
        states[n] = load_run(workdir)
    cfg, run, state, mesh = states[2]
    jax.tree.map(np.testing.assert_array_equal, state, states[0][2])
    assert cfg.ema.standing_stats == 2

    standing = make_standing_stats(cfg, run.g, run.objective, mesh)(state)
    sampler = make_sampler(run.g, mesh, run.objective)
    key = training_sample_key(cfg.seed)
    want = frame_grid(sampler(standing, key, cfg.log.num_samples))
    running = frame_grid(sampler(state, key, cfg.log.num_samples))
    workdir = tmp_path / "standing2"
    grid = iio.imread(workdir / "samples" / "step_000002.png")
    np.testing.assert_array_equal(grid, want)
    assert not np.array_equal(grid, running)

    out = tmp_path / "out"
    assert main(["sample", "--workdir", str(workdir), "--num", "4", "--out", str(out)]) == 0
    np.testing.assert_array_equal(
        iio.imread(out / "samples.png"), frame_grid(sampler(standing, jax.random.key(0), 4))
    )

    args = ["eval", "--workdir", str(workdir), "--metric", "video_stats", "--num-samples", "8"]
    assert main(args) == 0
    capsys.readouterr()
    saved = json.loads((workdir / "eval" / "step_000002.json").read_text())
    # Eval's first chunk of noise (as tests/test_cli.py derives it): its first 8 clips.
    eval_key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), _EVAL_NOISE_SALT), 0)
    for which, clips_state in (("standing", standing), ("running", state)):
        clips = np.asarray(sampler(clips_state, eval_key, EVAL_CHUNK)[:8], np.float64)
        match = np.isclose(saved["video_stats/fake_mean_c0"], clips[..., 0].mean(), atol=1e-5)
        assert match == (which == "standing"), which
    # Training's own evaluation (same seed and sample count) saw the standing state too.
    logged = [r for r in read_metrics(workdir) if "eval/video_stats/fake_mean_c0" in r]
    assert [r["step"] for r in logged] == [0, 2]
    assert logged[-1]["eval/video_stats/fake_mean_c0"] == pytest.approx(
        saved["video_stats/fake_mean_c0"], abs=1e-6
    )

    # --standing-stats replaces the run's setting: on for the run trained without (its state is
    # the same and so is its seed), off for the one trained with.
    plain = tmp_path / "standing0"
    for run_dir, n, want_state in ((plain, 2, standing), (workdir, 0, state)):
        out = tmp_path / f"out_{n}"
        args = ["sample", "--workdir", str(run_dir), "--num", "4", "--out", str(out)]
        assert main([*args, "--standing-stats", str(n)]) == 0
        np.testing.assert_array_equal(
            iio.imread(out / "samples.png"), frame_grid(sampler(want_state, jax.random.key(0), 4))
        )
    args = ["eval", "--workdir", str(plain), "--metric", "video_stats", "--num-samples", "8"]
    assert main([*args, "--standing-stats", "2"]) == 0
    capsys.readouterr()
    assert not (plain / "eval" / "step_000002.json").exists()  # the run's own results' name
    got = json.loads((plain / "eval" / "step_000002_standing_stats=2.json").read_text())
    assert got["standing_stats"] == 2
    assert got["video_stats/fake_mean_c0"] == saved["video_stats/fake_mean_c0"]


def test_bad_settings_are_refused_with_the_key():
    cfg = _tiny_cfg(standing_stats=-1)
    with pytest.raises(ConfigError, match="ema.standing_stats"):
        build.validate(cfg)
    prediction = load_config_file(CONFIGS / "shapes_prediction.py")
    with prediction.unlocked():
        prediction.ema.standing_stats = 4
    with pytest.raises(ConfigError, match=r"ema.standing_stats=4.*real clips.*standing_stats=0"):
        build.validate(prediction)
    # The commands' --standing-stats on a prediction run (trained without them).
    with prediction.unlocked():
        prediction.ema.standing_stats = 0
    run = build.build(prediction, build.validate(prediction))
    with pytest.raises(ConfigError, match=r"ema.standing_stats=3.*real clips"):
        set_standing_stats(prediction, run, 3)
    set_standing_stats(prediction, run, 0)  # off is always allowed


def test_a_run_saved_before_the_key_loads_with_it_off():
    saved = _tiny_cfg().to_dict()
    del saved["ema"]["standing_stats"]
    upgraded = build.upgrade_config(config_from_dict(saved))
    assert upgraded.ema.standing_stats == 0
    build.validate(upgraded)
