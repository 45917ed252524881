"""The shapes_fd and fvd metrics end to end: in training, in `gan-jax eval`, and their errors."""

import json
import pathlib
import types

import jax
import numpy as np
import pytest
from test_i3d import random_variables

from gan_jax import evaluate
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics
from gan_jax.metrics import shapes_fd, shapes_features
from gan_jax.metrics.i3d import save_i3d_params
from gan_jax.objectives import Unconditional

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"
TINY = ["--config", str(CONFIGS / "tiny.py"), "--config.log.sample_every=0"]


@pytest.mark.slow  # 30 s; eval in training: test_shapes_physics
def test_shapes_fd_during_training_and_in_eval(tmp_path, capsys, monkeypatch):
    # 16 x 16 frames (the feature network's smallest); a feature network trained for 3 steps.
    overrides = [
        "--config.data.num_frames=4",
        "--config.data.height=16",
        "--config.data.width=16",
        "--config.steps=2",
        "--config.eval.every=2",
        "--config.eval.metrics=('shapes_fd',)",
        "--config.eval.num_samples=16",
        "--config.eval.shapes_features_steps=3",
    ]
    assert main(["train", *TINY, "--workdir", str(tmp_path), *overrides]) == 0
    records = {r["step"]: r for r in read_metrics(tmp_path) if "eval/shapes_fd/fsd" in r}
    # Evaluated on the untrained generator (step 0) and at the end.
    assert sorted(records) == [0, 2]
    assert all(
        np.isfinite(r["eval/shapes_fd/fsd"]) and r["eval/shapes_fd/fsd"] > 0
        for r in records.values()
    )
    cached = list((tmp_path / shapes_fd.SHAPES_FEATURES_DIR).glob("shapes_features_4x16x16x3_*"))
    assert len(cached) == 1
    # `eval` finds the network in the workdir's cache: no training.
    monkeypatch.setattr(shapes_features, "train_feature_params", None)
    capsys.readouterr()
    args = ["eval", "--workdir", str(tmp_path), "--metric", "shapes_fd", "--num-samples", "16"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    # Same generator, same eval noise and real clips as the step-2 evaluation.
    assert result["shapes_fd/fsd"] == pytest.approx(records[2]["eval/shapes_fd/fsd"], rel=1e-6)


def test_shapes_fd_needs_frames_of_16_pixels(tmp_path, capsys):
    args = ["train", *TINY, "--workdir", str(tmp_path), "--config.eval.metrics=('shapes_fd',)"]
    assert main(args) == 2
    assert "at least 16x16, but this run makes 8x8" in capsys.readouterr().err


@pytest.fixture(scope="module")
def sixteen_frame_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fvd_run")
    args = ["train", *TINY, "--workdir", str(workdir), "--config.data.num_frames=16"]
    assert main([*args, "--config.steps=1", "--config.ckpt.every=1"]) == 0
    return workdir


@pytest.mark.slow  # 45 s with its 16-frame run; test_i3d.py covers the network and conversion
def test_fvd_piergiaj_cli_with_user_weights(sixteen_frame_run, tmp_path, capsys):
    weights = tmp_path / "i3d.npz"
    save_i3d_params(random_variables(3), weights)
    args = ["eval", "--workdir", str(sixteen_frame_run), "--metric", "fvd_piergiaj"]
    assert main([*args, "--num-samples", "4", "--i3d-weights", str(weights)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["fvd_piergiaj/num_real"], result["fvd_piergiaj/num_fake"]) == (4.0, 4.0)
    assert np.isfinite(result["fvd_piergiaj/fvd"]) and result["fvd_piergiaj/fvd"] > 0


def test_fvd_piergiaj_without_weights_says_how_to_get_them(sixteen_frame_run, tmp_path, capsys):
    args = ["eval", "--workdir", str(sixteen_frame_run), "--metric", "fvd_piergiaj"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--i3d-weights" in err and "--metric fvd" in err  # and the comparable one
    assert main([*args, "--i3d-weights", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz' does not exist" in capsys.readouterr().err
    # Not asked for by name: "all that apply" leaves both FVDs out (fvd_piergiaj lacks its
    # weights; fvd, installed or not, runs only when named).
    capsys.readouterr()
    assert main(["eval", "--workdir", str(sixteen_frame_run), "--num-samples", "4"]) == 0
    assert not any(k.startswith("fvd") for k in json.loads(capsys.readouterr().out))


def test_fvd_needs_sixteen_frames(tmp_path, capsys):
    weights = tmp_path / "i3d.npz"
    weights.write_bytes(b"")  # exists; the clip length is checked first
    metric = "--config.eval.metrics=('fvd_piergiaj',)"
    args = ["train", *TINY, "--workdir", str(tmp_path / "run"), metric]
    assert main([*args, f"--config.eval.i3d_weights={weights}"]) == 2
    assert "RGB clips of at least 16 frames" in capsys.readouterr().err


def test_generated_samples_are_shared_between_metrics():
    """`fake()` and `fake_batches()` give the same samples, drawn once, in fixed chunks."""
    calls = []

    def sampler(state, key, num, cond=None):
        calls.append(num)
        return np.asarray(jax.random.normal(key, (num, 2)))

    run = types.SimpleNamespace(objective=Unconditional())
    ctx = evaluate.EvalContext(cfg=None, run=run, state=None, sampler=sampler, num_samples=150)
    streamed = np.concatenate(list(ctx.fake_batches(150)))
    assert calls == [evaluate.EVAL_CHUNK] * 3 and streamed.shape == (150, 2)
    whole = ctx.fake()
    np.testing.assert_array_equal(whole, streamed)
    calls.clear()
    again = np.concatenate(list(ctx.fake_batches(150)))  # from the cache: no sampling
    assert calls == [] and np.array_equal(again, whole)
