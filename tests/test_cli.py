"""The `gan-jax` command line: train with overrides, sample, eval, and its error messages."""

import json
import pathlib

import imageio.v3 as iio
import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from gan_jax.io.grid import SEPARATOR_PX
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "experiments" / "configs"


@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
    """Shares compiled programs with test_train.py (same tiny config, same devices)."""
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    saved = {name: getattr(jax.config, name) for name in names}
    jax.config.update(names[0], str(tmp_path_factory.getbasetemp() / "jax_compile_cache"))
    jax.config.update(names[1], 0.0)
    jax.config.update(names[2], 0)
    compilation_cache.reset_cache()
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


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
    args = ["train", "--config", str(CONFIGS / "ring.py"), "--workdir", str(tmp_path)]
    overrides = ["--config.steps=20", "--config.log.every=10", "--config.eval.every=20"]
    assert main([*args, *overrides, "--config.log.progress=False"]) == 0
    record = read_metrics(tmp_path)[-1]
    assert record["step"] == 20 and 0 <= record["eval/mode_coverage/modes"] <= 8
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
