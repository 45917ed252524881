"""The `gan-jax` command line: train with overrides, sample, eval, and its error messages."""

import json
import logging
import pathlib
import sys

import imageio.v3 as iio
import jax
import numpy as np
import pytest

from gan_jax import evaluate
from gan_jax.checkpoint import Checkpointer
from gan_jax.io import frame_grid
from gan_jax.io.grid import SEPARATOR_PX
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics
from gan_jax.sampling import training_sample_key
from gan_jax.state import sample
from gan_jax.workdir import load_run

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "experiments" / "configs"
sys.path.insert(0, str(ROOT / "benchmarks"))
import soak_checkpoints  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(persistent_compile_cache):
    """This module's runs compile the same tiny programs: compile each once."""
    yield


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("video")
    args = ["train", "--config", str(CONFIGS / "tiny.py"), "--workdir", str(workdir)]
    assert main([*args, "--config.steps=2", "--config.log.sample_every", "0"]) == 0
    return workdir


def test_train_applies_overrides_and_writes_the_resolved_config(video_run):
    saved = json.loads((video_run / "config.json").read_text())
    assert saved["steps"] == 2 and saved["log"]["sample_every"] == 0
    assert [r["step"] for r in read_metrics(video_run)] == [1, 2]


def test_resume_without_config_uses_the_workdir_config(video_run, tmp_path):
    # Steps already reached: reads WORKDIR/config.json, restores, trains nothing.
    assert main(["train", "--workdir", str(video_run)]) == 0
    assert [r["step"] for r in read_metrics(video_run)] == [1, 2]


def test_sample_writes_videos_and_a_grid(video_run, tmp_path):
    out = tmp_path / "out"
    assert main(["sample", "--workdir", str(video_run), "--num", "3", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["samples.gif", "samples.mp4", "samples.png"]
    grid = iio.imread(out / "samples.png")
    t, h, w = 2, 8, 8  # tiny: 2 frames of 8x8; rows = samples, columns = frames
    assert grid.shape == (3 * h + 2 * SEPARATOR_PX, t * w + (t - 1) * SEPARATOR_PX, 3)
    frames = iio.imread(out / "samples.gif")
    assert frames.shape[0] == t


def test_sample_seed_changes_the_samples(video_run, tmp_path):
    grids = []
    for seed in (0, 0, 1):
        out = tmp_path / f"seed{len(grids)}"
        args = ["sample", "--workdir", str(video_run), "--num", "2", "--out", str(out)]
        assert main([*args, "--seed", str(seed)]) == 0
        grids.append(iio.imread(out / "samples.png"))
    np.testing.assert_array_equal(grids[0], grids[1])
    assert not np.array_equal(grids[0], grids[2])


def test_sample_num_frames_needs_a_family_whose_params_do_not_depend_on_t(
    video_run, tmp_path, capsys
):
    """video_dcgan's G projects z to T / 2^k frames (and its time kernels depend on T): a G
    built for another length cannot take its params. tests/test_model_mocogan.py samples 32
    frames from a family that can."""
    out = tmp_path / "out"
    args = ["sample", "--workdir", str(video_run), "--num", "2", "--out", str(out)]
    assert main([*args, "--num-frames", "8"]) == 2
    err = capsys.readouterr().err
    assert "gan-jax sample: error: model family 'video_dcgan' cannot change the number of " in err
    assert "for the 2 frames it was trained on" in err
    assert not out.exists()
    # The trained length is the run's own: the same clips as without the flag.
    assert main([*args, "--num-frames", "2"]) == 0
    assert iio.imread(out / "samples.gif").shape[0] == 2


def test_eval_video_stats(video_run, capsys):
    assert main(["eval", "--workdir", str(video_run), "--num-samples", "8"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((video_run / "eval" / "step_000002.json").read_text())
    assert printed == saved and saved["step"] == 2
    for name in ("fake_mean_c0", "real_std_c2", "fake_motion", "real_motion", "motion_ratio"):
        assert np.isfinite(saved[f"video_stats/{name}"]), name
    # Real bouncing-shapes clips: black background (-1) dominates; the shapes move.
    assert saved["video_stats/real_mean_c0"] < -0.5
    assert saved["video_stats/real_motion"] > 0


def test_eval_rejects_a_metric_of_another_data_kind(video_run, capsys):
    assert main(["eval", "--workdir", str(video_run), "--metric", "mode_coverage"]) == 2
    err = capsys.readouterr().err
    assert "'mode_coverage' does not apply to data.name='bouncing_shapes'" in err
    assert "'video_stats'" in err


def test_points_run_samples_and_mode_coverage(tmp_path, capsys):
    """The 2-D toy's best recipe (minibatch-std in D, lr decay, R1, EMA) through the trainer:
    the toy has no trainer of its own."""
    args = ["train", "--config", str(CONFIGS / "toy_best.py"), "--workdir", str(tmp_path)]
    overrides = ["--config.steps=20", "--config.log.every=10", "--config.eval.every=20"]
    overrides += ["--config.ckpt.every=20", "--config.log.sample_every=20"]
    assert main([*args, *overrides, "--config.log.progress=False"]) == 0
    at_20 = {k: v for r in read_metrics(tmp_path) if r["step"] == 20 for k, v in r.items()}
    assert at_20["d/r1"] > 0 and 0 <= at_20["eval/mode_coverage/modes"] <= 8
    assert np.load(tmp_path / "samples" / "step_000020.npy").shape == (2500, 2)
    assert iio.imread(tmp_path / "samples" / "step_000020.png").shape == (256, 256, 3)
    capsys.readouterr()
    assert main(["eval", "--workdir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {
        "step",
        *(f"mode_coverage/{k}" for k in ("modes", "hq_percent", "reverse_kl")),
    }
    out = tmp_path / "drawn"
    assert main(["sample", "--workdir", str(tmp_path), "--num", "100", "--out", str(out)]) == 0
    assert np.load(out / "samples.npy").shape == (100, 2)


@pytest.mark.parametrize("at_start, evaluated", [(True, [0, 10, 20]), (False, [10, 20])])
def test_eval_at_start_decides_whether_the_untrained_generator_is_scored(
    tmp_path, at_start, evaluated
):
    args = ["train", "--config", str(CONFIGS / "toy_best.py"), "--workdir", str(tmp_path)]
    overrides = ["--config.steps=20", "--config.eval.every=10", "--config.log.sample_every=0"]
    overrides += [f"--config.eval.at_start={at_start}", "--config.log.progress=False"]
    assert main([*args, *overrides]) == 0
    steps = [r["step"] for r in read_metrics(tmp_path) if "eval/mode_coverage/modes" in r]
    assert steps == evaluated


def test_eval_at_start_must_be_a_bool(tmp_path, capsys):
    args = ["train", "--config", str(CONFIGS / "toy_best.py"), "--workdir", str(tmp_path)]
    assert main([*args, "--config.eval.at_start=1"]) == 2
    assert "eval.at_start" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--config.g.widht=3"], "unknown key g.widht; did you mean g.base_width? keys in g:"),
        (["--config.steps=ten"], "steps=ten has type str, but steps holds an int"),
        (["--config.data.height=10"], "must be divisible by 2**g.depth"),
        (["--config.steps"], "--config.steps has no value"),
    ],
)
def test_train_config_errors_exit_2_with_the_message(tmp_path, capsys, extra, message):
    args = ["train", "--config", str(CONFIGS / "tiny.py"), "--workdir", str(tmp_path)]
    assert main([*args, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_new_workdir_needs_a_config(tmp_path, capsys):
    assert main(["train", "--workdir", str(tmp_path / "new")]) == 2
    assert "--config is required" in capsys.readouterr().err


def test_sample_without_checkpoints_says_train_first(tmp_path, capsys):
    assert main(["sample", "--workdir", str(tmp_path), "--num", "1", "--out", str(tmp_path)]) == 2
    assert "train first" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Samples and metrics come from the EMA generator (g_ema), not from the raw one (g_params).

EMA_SAMPLES = 8  # a multiple of the 8 devices: the samplers draw exactly this much noise


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """A tiny run whose EMA generator is far from its raw one: decay 0.99 over 4 steps of a
    high learning rate, so g_ema is still near the initial G while g_params has moved."""
    workdir = tmp_path_factory.mktemp("ema")
    args = ["train", "--config", str(CONFIGS / "tiny.py"), "--workdir", str(workdir)]
    overrides = [
        "--config.steps=4",
        "--config.ema.decay=0.99",
        "--config.g.lr=0.02",
        "--config.log.sample_every=0",  # samples at the end only: step 4, the restored state
        f"--config.log.num_samples={EMA_SAMPLES}",
    ]
    assert main([*args, *overrides]) == 0
    cfg, gan, state, _ = load_run(workdir)
    assert int(state.step) == 4
    return workdir, cfg, gan, state


def _ema_and_raw_clips(gan, state, key, num=EMA_SAMPLES):
    """Clips `[num, T, H, W, C]` of G with g_ema and with g_params for the noise the samplers
    draw from `key`.

    Relies on how `sampling.make_sampler` draws its noise: G's one latent `z` as
    `normal(key, [num, z_dim])` (num is a multiple of the device count here, so no padding rows).
    """
    z = {"z": jax.random.normal(key, (num, gan.g.z_dim))}
    ema = np.asarray(sample(gan.g, state, z, ema=True))
    raw = np.asarray(sample(gan.g, state, z, ema=False))
    return ema, raw


def _assert_grid_is_ema(grid, ema, raw):
    """`grid` (uint8 PNG) is `frame_grid(ema)` up to one level of rounding, and clearly not
    `frame_grid(raw)`."""
    expected, wrong = frame_grid(ema).astype(int), frame_grid(raw).astype(int)
    assert grid.shape == expected.shape
    # Float round-off between the sharded sampler and this unsharded apply may flip a rounding.
    assert np.abs(grid.astype(int) - expected).max() <= 1
    assert np.abs(grid.astype(int) - wrong).max() > 16, "g_ema and g_params look alike"


def test_sample_command_draws_from_the_ema_generator(ema_run, tmp_path):
    workdir, _, gan, state = ema_run
    out = tmp_path / "out"
    args = ["sample", "--workdir", str(workdir), "--num", str(EMA_SAMPLES), "--out", str(out)]
    assert main([*args, "--seed", "3"]) == 0
    ema, raw = _ema_and_raw_clips(gan, state, jax.random.key(3))
    _assert_grid_is_ema(iio.imread(out / "samples.png"), ema, raw)


def test_training_samples_are_drawn_from_the_ema_generator(ema_run):
    workdir, cfg, gan, state = ema_run
    ema, raw = _ema_and_raw_clips(gan, state, training_sample_key(cfg.seed))
    _assert_grid_is_ema(iio.imread(workdir / "samples" / "step_000004.png"), ema, raw)


def _numpy_clip_stats(clips):
    """Per-channel mean and std `[C]` and motion (mean |x[t+1] - x[t]|) of `[N, T, H, W, C]`."""
    x = np.asarray(clips, np.float64)
    return {
        "mean": x.mean(axis=(0, 1, 2, 3)),
        "std": x.std(axis=(0, 1, 2, 3)),
        "motion": np.abs(x[:, 1:] - x[:, :-1]).mean(),
    }


def test_eval_scores_the_ema_generator(ema_run, capsys):
    workdir, _, gan, state = ema_run
    args = ["eval", "--workdir", str(workdir), "--metric", "video_stats"]
    assert main([*args, "--num-samples", str(EMA_SAMPLES), "--seed", "5"]) == 0
    capsys.readouterr()
    saved = json.loads((workdir / "eval" / "step_000004.json").read_text())
    # Relies on how eval derives its noise (gan_jax.evaluate internals): chunk 0 of its fake
    # samples comes from fold_in(fold_in(key(seed), _EVAL_NOISE_SALT), 0), drawn as a full
    # chunk of EVAL_CHUNK rows; G in inference mode treats rows independently, so the first
    # EMA_SAMPLES rows of that noise give the first EMA_SAMPLES clips.
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(5), evaluate._EVAL_NOISE_SALT), 0)
    z = {"z": jax.random.normal(key, (evaluate.EVAL_CHUNK, gan.g.z_dim))[:EMA_SAMPLES]}
    ema = _numpy_clip_stats(sample(gan.g, state, z, ema=True))
    raw = _numpy_clip_stats(sample(gan.g, state, z, ema=False))
    got = {
        "mean": np.array([saved[f"video_stats/fake_mean_c{c}"] for c in range(3)]),
        "std": np.array([saved[f"video_stats/fake_std_c{c}"] for c in range(3)]),
        "motion": np.array(saved["video_stats/fake_motion"]),
    }
    for name in ("mean", "std", "motion"):
        np.testing.assert_allclose(got[name], ema[name], rtol=1e-4, atol=1e-5, err_msg=name)
        # The raw generator's statistics are far outside that tolerance.
        assert np.abs(raw[name] - ema[name]).max() > 1e-2, name


# ---------------------------------------------------------------------------------------------
# Resuming: a changed architecture is the user's mistake; a damaged checkpoint falls back.
# (The other mistakes and faults: tests/test_cli_errors.py.)


@pytest.fixture(scope="module")
def run3(tmp_path_factory):
    """A tiny run with checkpoints at steps 1, 2 and 3 (compiled once with video_run)."""
    workdir = tmp_path_factory.mktemp("run3")
    args = ["train", "--config", str(CONFIGS / "tiny.py"), "--workdir", str(workdir)]
    args.append("--config.steps=3")
    assert main([*args, "--config.ckpt.every=1", "--config.log.sample_every=0"]) == 0
    return workdir


def test_resuming_with_a_changed_architecture(run3, capsys):
    args = ["train", "--workdir", str(run3), "--config.steps=4", "--config.g.base_width=8"]
    assert main(args) == 2
    line = capsys.readouterr().err.splitlines()[-1]
    assert "the checkpoint at step 3 in " in line and "holds another model" in line
    assert "'g_params/" in line and "changed since it was written: g.base_width: 4 -> 8" in line
    with Checkpointer(run3 / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [1, 2, 3]


def test_damaged_latest_checkpoint_sample_and_train_fall_back(run3, tmp_path, capsys, caplog):
    soak_checkpoints.empty_state_metadata(run3 / "checkpoints" / "3")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert main(["sample", "--workdir", str(run3), "--num", "1", "--out", str(out)]) == 0
    assert (out / "samples.png").is_file()
    assert any("checkpoints/3 cannot be restored (JSONDecodeError" in m for m in caplog.messages)
    assert (run3 / "checkpoints" / "damaged" / "3" / "state").is_dir()
    assert main(["train", "--workdir", str(run3), "--config.steps=3"]) == 0
    with Checkpointer(run3 / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [1, 2, 3]
