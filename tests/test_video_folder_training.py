"""Training from a folder of video files through the whole trainer, and `video_stats` checked
against statistics computed here with numpy from clips known independently of the metric.

The folder holds two losslessly coded (FFV1, RGB) videos whose pixel values are known exactly:
frames alternate between two pictures A and B, each a top half and a bottom half of flat
colours. Clips of 2 consecutive frames (stride 1) are therefore [A, B] or [B, A] of one video,
whatever the clip start; the crop is the whole 8x8 frame and a left-right flip changes nothing.
"""

import json
import pathlib

import imageio.v3 as iio
import jax
import numpy as np
import pytest
from video_fixtures import write_test_video

from gan_jax import evaluate
from gan_jax.checkpoint import Checkpointer
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics
from gan_jax.sampling import make_sampler
from gan_jax.workdir import load_run

ROOT = pathlib.Path(__file__).resolve().parents[1]
VIDEO_FOLDER = ROOT / "experiments" / "configs" / "video_folder.py"
T, H, W = 2, 8, 8
NUM_SOURCE_FRAMES = 6
NUM_SAMPLES = 8  # real and fake clips of every evaluation; a multiple of the 2 videos
# Per video: (picture A, picture B), each (top colour, bottom colour), uint8 RGB. The channels
# differ in mean and spread (R high and wide, G low and narrower, B constant), so a statistic
# pooled over the wrong axes, or over channels, gives another value; B's std of 0 lies below
# the generator's while R's and G's lie above it, so the sign of each std gap matters too.
COLOURS = {
    "clip0.mkv": (((250, 40, 140), (180, 10, 140)), ((120, 60, 140), (230, 20, 140))),
    "clip1.mkv": (((200, 90, 140), (90, 30, 140)), ((240, 50, 140), (150, 0, 140))),
}


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(persistent_compile_cache):
    """This module's runs compile the same tiny programs: compile each once."""
    yield


def _picture(top, bottom) -> np.ndarray:
    """uint8 `[H, W, 3]`: rows 0..H/2-1 `top`, the rest `bottom`."""
    frame = np.empty((H, W, 3), np.uint8)
    frame[: H // 2], frame[H // 2 :] = top, bottom
    return frame


def _video(colours) -> np.ndarray:
    """uint8 `[NUM_SOURCE_FRAMES, H, W, 3]`: pictures A, B, A, B, ..."""
    a, b = (_picture(*picture) for picture in colours)
    return np.stack([a if t % 2 == 0 else b for t in range(NUM_SOURCE_FRAMES)])


def _known_real_clips() -> np.ndarray:
    """The real clips of an evaluation, `[NUM_SAMPLES, T, H, W, 3]` float64 in [-1, 1].

    Relies on the pipeline's documented order (gan_jax/data/pipeline.py): stream position p is
    example order_e[p % n] of epoch e = p // n, a permutation per epoch, so the first 8 clips of
    2 videos hold each video 4 times. Within a clip only the frame order ([A, B] or [B, A])
    is left to chance, and no statistic here depends on it.
    """
    clips = []
    for colours in COLOURS.values():
        a, b = (_picture(*picture) for picture in colours)
        clips += [np.stack([a, b])] * (NUM_SAMPLES // len(COLOURS))
    return np.stack(clips).astype(np.float64) / 127.5 - 1.0


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """`gan-jax train --config video_folder.py` over the two videos, with tiny models, 2 steps,
    an evaluation at steps 0 and 2."""
    base = tmp_path_factory.mktemp("folder")
    videos = base / "videos"
    videos.mkdir()
    for name, colours in COLOURS.items():
        write_test_video(videos / name, _video(colours), codec="ffv1", pix_fmt="bgr0")
    workdir = base / "run"
    overrides = {
        "data.root": videos,
        "data.cache_dir": base / "cache",  # not ~/.cache
        "data.num_frames": T,
        "data.height": H,
        "data.width": W,
        "data.frame_stride": 1,
        "data.num_workers": 0,
        "data.num_threads": 1,
        # The tiny config's models and batch (tests/conftest.py's 8 devices).
        "g.z_dim": 8,
        "g.base_width": 4,
        "g.depth": 2,
        "d.base_width": 4,
        "d.depth": 2,
        "batch_size": 8,
        "steps": 2,
        "ckpt.every": 2,
        "log.every": 1,
        "log.sample_every": 0,
        "log.num_samples": 4,
        "log.progress": False,
        "eval.every": 2,
        "eval.num_samples": NUM_SAMPLES,
    }
    args = ["train", "--config", str(VIDEO_FOLDER), "--workdir", str(workdir)]
    assert main([*args, *(f"--config.{key}={value}" for key, value in overrides.items())]) == 0
    return workdir


def _numpy_clip_stats(clips) -> dict[str, np.ndarray]:
    """Per-channel mean and std `[C]` over (N, T, H, W), and motion: mean |x[t+1] - x[t]| over
    every frame pair, pixel and channel, of clips `[N, T, H, W, C]`."""
    x = np.asarray(clips, np.float64)
    return {
        "mean": x.mean(axis=(0, 1, 2, 3)),
        "std": x.std(axis=(0, 1, 2, 3)),
        "motion": np.abs(x[:, 1:] - x[:, :-1]).mean(),
    }


def test_training_from_a_video_folder_writes_checkpoints_metrics_and_samples(folder_run):
    with Checkpointer(folder_run / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [2]
    records = read_metrics(folder_run)
    train_records = [r for r in records if "d/loss" in r]
    assert [r["step"] for r in train_records] == [1, 2]
    assert all(np.isfinite(r[k]) for r in train_records for k in ("d/loss", "g/loss"))
    names = sorted(p.name for p in (folder_run / "samples").iterdir())
    assert names == ["step_000002.gif", "step_000002.mp4", "step_000002.png"]
    grid = iio.imread(folder_run / "samples" / "step_000002.png")
    assert grid.shape == (4 * H + 3 * 2, T * W + 2, 3)  # 4 clips of 2 frames, 2 px separators
    # The real clips came from those files: their per-channel means are the files' colours.
    expected = _numpy_clip_stats(_known_real_clips())["mean"]
    evaluated = [r for r in records if "eval/video_stats/real_mean_c0" in r]
    assert [r["step"] for r in evaluated] == [0, 2]
    for record in evaluated:
        got = [record[f"eval/video_stats/real_mean_c{c}"] for c in range(3)]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_video_stats_match_statistics_computed_independently(folder_run, capsys):
    """Every `video_stats` value against numpy: the real side from the known pixel values of the
    files, the fake side from the EMA generator's clips drawn through the public sampler."""
    seed = 4
    args = ["eval", "--workdir", str(folder_run), "--metric", "video_stats"]
    assert main([*args, "--num-samples", str(NUM_SAMPLES), "--seed", str(seed)]) == 0
    capsys.readouterr()
    got = json.loads((folder_run / "eval" / "step_000002.json").read_text())

    real = _numpy_clip_stats(_known_real_clips())
    # The design makes the statistics distinguishable: channels differ, and the real clips vary
    # over N, T and H (no single axis carries all of it).
    assert np.ptp(real["mean"]) > 0.5 and np.ptp(real["std"]) > 0.2 and real["std"][2] < 1e-9
    _, gan, state, mesh = load_run(folder_run)
    # Relies on how eval derives its noise (gan_jax.evaluate internals): fake chunk 0 comes from
    # fold_in(fold_in(key(seed), _EVAL_NOISE_SALT), 0), EVAL_CHUNK clips of which the first
    # NUM_SAMPLES are used.
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), evaluate._EVAL_NOISE_SALT), 0)
    fake_clips = make_sampler(gan.g, mesh)(state, key, evaluate.EVAL_CHUNK)[:NUM_SAMPLES]
    fake = _numpy_clip_stats(fake_clips)

    expected = {}
    for which, stats in (("real", real), ("fake", fake)):
        for c in range(3):
            expected[f"{which}_mean_c{c}"] = stats["mean"][c]
            expected[f"{which}_std_c{c}"] = stats["std"][c]
        expected[f"{which}_motion"] = stats["motion"]
    expected["mean_gap"] = np.abs(fake["mean"] - real["mean"]).mean()
    expected["std_gap"] = np.abs(fake["std"] - real["std"]).mean()
    expected["motion_ratio"] = fake["motion"] / real["motion"]
    assert set(got) == {"step", *(f"video_stats/{name}" for name in expected)}
    for name, value in expected.items():
        np.testing.assert_allclose(
            got[f"video_stats/{name}"], value, rtol=1e-6, atol=1e-9, err_msg=name
        )


def test_eval_draws_real_clips_from_held_out_data_settings(folder_run, capsys):
    """`gan-jax eval --config.data.time_range=...`: real clips from the last half of each video,
    written beside (not over) the evaluation on the training settings."""
    args = ["eval", "--workdir", str(folder_run), "--metric", "video_stats"]
    args += ["--num-samples", str(NUM_SAMPLES)]
    assert main([*args, "--config.data.time_range=(0.5, 1.0)"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["real_data"] == "data.time_range=(0.5, 1.0)"
    saved = folder_run / "eval" / "step_000002_data.time_range=_0.5_1.0.json"
    assert json.loads(saved.read_text()) == result
    # Frames 3..5 alternate A and B as the whole video does: the same real statistics.
    real = _numpy_clip_stats(_known_real_clips())
    np.testing.assert_allclose(result["video_stats/real_mean_c0"], real["mean"][0], rtol=1e-6)
    # What the generator was trained for, and keys outside data, cannot change.
    assert main([*args, "--config.data.height=4"]) == 2
    assert "not of data.name, data.num_frames, data.height" in capsys.readouterr().err
    assert main([*args, "--config.g.lr=1.0"]) == 2
    assert "--config.g.lr: eval takes overrides of data keys only" in capsys.readouterr().err
    assert main([*args, "--config.data.time_range=(0.9, 0.1)"]) == 2
    assert "time_range" in capsys.readouterr().err
