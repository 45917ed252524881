"""`gan-jax predict`: a video-prediction run continues a video file, rolling forward beyond the
F frames its G predicts at once; its outputs, its errors, and the rollout itself."""

import json
import pathlib

import imageio.v3 as iio
import jax
import numpy as np
import pytest
from PIL import Image

from gan_jax.data.bouncing_shapes import BouncingShapes
from gan_jax.io import read_video, write_video
from gan_jax.io.grid import SEPARATOR_PX
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics
from gan_jax.predicting import predict_samples, rollout
from gan_jax.train import default_config, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "experiments" / "configs"
SHARED_VIDEOS = ROOT.parent / "shared" / "videos"

T, K, H, W, C = 4, 2, 16, 16, 3  # the tiny run: 2 context frames -> F = 2 predicted
F = T - K
VIDEO_FRAMES = 10


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(persistent_compile_cache):
    """This module's commands compile the same tiny programs: compile each once."""
    yield


def _tiny_prediction_config(data: str = "bouncing_shapes"):
    """A 2-step video_prediction run (predictor G, video_dcgan D) on 4 frames of 16x16."""
    cfg = default_config(
        model="predictor", d_model="video_dcgan", data=data, objective="video_prediction"
    )
    cfg.steps = 2
    cfg.batch_size = 8  # a multiple of the 8 fake CPU devices of the tests
    cfg.g.z_dim = 4
    cfg.g.noise_width = 4
    for net in (cfg.g, cfg.d):
        net.base_width = 4
        net.depth = 2
    cfg.objective.context = K
    cfg.data.num_frames = T
    cfg.data.height = H
    cfg.data.width = W
    cfg.data.num_threads = 1
    cfg.ckpt.async_save = False
    cfg.log.every = 1
    cfg.log.sample_every = 0
    cfg.log.num_samples = 2
    cfg.log.progress = False
    cfg.log.report = False
    cfg.eval.every = 0
    return cfg


@pytest.fixture(scope="module")
def prediction_run(tmp_path_factory):
    """A 2-step video_prediction run on bouncing shapes, evaluated with the prediction metric
    at its start and end."""
    cfg = _tiny_prediction_config()
    cfg.data.size_range = (4.0, 6.0)
    # The prediction metric at steps 0 and 2 (test_prediction_run_logs_and_evaluates_...).
    cfg.eval.every = 2
    cfg.eval.metrics = ("prediction",)
    cfg.eval.num_samples = 8
    cfg.eval.prediction_samples = 2
    workdir = tmp_path_factory.mktemp("prediction")
    train(cfg, workdir)
    return workdir


@pytest.fixture(scope="module")
def shapes_video(tmp_path_factory):
    """A 10-frame 24x24 mp4 of bouncing shapes: larger than the run's 16x16 (it is resized)."""
    clip = BouncingShapes(
        num_frames=VIDEO_FRAMES, height=24, width=24, size_range=(6.0, 8.0), seed=1
    )[0]["video"]
    path = tmp_path_factory.mktemp("videos") / "shapes.mp4"
    write_video(path, clip, fps=8.0)
    return path


def _as_run_frames(frames: np.ndarray, size: tuple[int, int], top: int, left: int) -> np.ndarray:
    """uint8 `[T, h, w, 3]` -> float32 `[T, H, W, 3]` in [-1, 1]: Pillow's bilinear resize to
    `size` (height, width), then the H x W crop at (top, left)."""
    resized = np.stack(
        [
            np.asarray(Image.fromarray(f).resize(size[::-1], Image.Resampling.BILINEAR))
            for f in frames
        ]
    )
    crop = resized[:, top : top + H, left : left + W].astype(np.float32)
    return (crop - 127.5) / 127.5


def _predict(workdir, video, out, *extra) -> int:
    args = ["predict", "--workdir", str(workdir), "--video", str(video), "--out", str(out)]
    return main([*args, *extra])


def test_predict_rolls_forward_beyond_f_and_writes_every_output(
    prediction_run, shapes_video, tmp_path, capsys
):
    out = tmp_path / "out"
    frames = VIDEO_FRAMES - K + 1  # one more than the video has: the real tile ends in black
    assert (
        _predict(prediction_run, shapes_video, out, "--frames", str(frames), "--samples", "2") == 0
    )
    names = sorted(
        ["prediction.mp4", "prediction.gif", "prediction.png", "predicted.npy", "real.npy"]
    )
    assert sorted(p.name for p in out.iterdir()) == names
    printed = capsys.readouterr().out.split()
    assert sorted(pathlib.Path(p).name for p in printed) == names

    length = K + frames
    predicted, real = np.load(out / "predicted.npy"), np.load(out / "real.npy")
    assert predicted.shape == (2, length, H, W, C) and predicted.dtype == np.float32
    assert real.shape == (VIDEO_FRAMES, H, W, C) and real.dtype == np.float32
    assert np.all(np.abs(predicted) <= 1.0)
    # The real frames are the video's, resized 24x24 -> 16x16; each sample starts with them.
    decoded, _ = read_video(shapes_video)
    np.testing.assert_array_equal(real, _as_run_frames(decoded, (H, W), 0, 0))
    for sample in predicted:
        np.testing.assert_array_equal(sample[:K], real[:K])

    grid = iio.imread(out / "prediction.png")  # row 0 real, then the samples; column = frame
    assert grid.shape == (3 * H + 2 * SEPARATOR_PX, length * W + (length - 1) * SEPARATOR_PX, 3)
    last = (length - 1) * (W + SEPARATOR_PX)
    assert not grid[:H, last : last + W].any()  # past the video's end: black
    assert grid[:H, :W].any()
    for name in ("prediction.gif", "prediction.mp4"):
        clip = iio.imread(out / name)  # the real video and the 2 samples side by side
        assert clip.shape[:3] == (length, H, 3 * W), name


@pytest.mark.skipif(not SHARED_VIDEOS.is_dir(), reason=f"{SHARED_VIDEOS} is absent")
def test_predict_an_avi_from_a_start_time(prediction_run, tmp_path):
    video = SHARED_VIDEOS / "avi_xvid_mp3_ucf101_eyemakeup_320x240.avi"  # 164 frames, 25 fps
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    out = tmp_path / "out"
    assert _predict(prediction_run, video, out, "--start", "1", "--samples", "1") == 0
    predicted, real = np.load(out / "predicted.npy"), np.load(out / "real.npy")
    assert predicted.shape == (1, T, H, W, C) and real.shape == (T, H, W, C)
    # Frame 25 (1 s at 25 fps) on: 320x240 -> short side 16 (21x16), the centre 16x16.
    decoded, _ = read_video(video, start=25, num_frames=T)
    np.testing.assert_array_equal(real, _as_run_frames(decoded, (16, 21), 0, 2))
    np.testing.assert_array_equal(predicted[0, :K], real[:K])


@pytest.fixture(scope="module")
def unconditional_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("unconditional")
    args = ["train", "--config", str(CONFIGS / "tiny.py"), "--workdir", str(workdir)]
    assert main([*args, "--config.steps=2", "--config.log.sample_every", "0"]) == 0
    return workdir


def test_predict_needs_a_prediction_run(unconditional_run, shapes_video, tmp_path, capsys):
    assert _predict(unconditional_run, shapes_video, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "gan-jax predict: error:" in err
    assert "objective.name='video_prediction'" in err and "gan-jax sample" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def one_frame_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("short") / "one frame.mp4"
    write_video(path, np.zeros((1, 24, 24, 3), np.uint8), fps=8.0)
    return path


@pytest.mark.parametrize(
    "case",
    ["fewer frames than k", "missing", "not a video", "other context", "start past the end"],
)
def test_predict_errors_exit_2_naming_the_problem(
    prediction_run, shapes_video, one_frame_video, tmp_path, capsys, case
):
    extra = []
    if case == "fewer frames than k":
        video, expected = one_frame_video, [str(one_frame_video), "1 frame found", "2 context"]
    elif case == "missing":
        video = tmp_path / "nothing.mp4"
        expected = [str(video), "does not exist"]
    elif case == "not a video":
        video = tmp_path / "notes.mp4"
        video.write_text("not a video\n")
        expected = [str(video)]
    elif case == "other context":
        video, extra = shapes_video, ["--context", "3"]
        expected = ["--context 3", "objective.context=2", "leave out --context or pass 2"]
    else:
        video, extra = shapes_video, ["--start", "100"]
        expected = [str(shapes_video), f"only {VIDEO_FRAMES}"]
    assert _predict(prediction_run, video, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("gan-jax predict: error: "), err
    for text in expected:
        assert text in err
    assert not (tmp_path / "out").exists()


def test_predict_rejects_a_negative_start_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse
        _predict(tmp_path, tmp_path / "in.mp4", tmp_path / "out", "--start", "-1")
    assert exit_info.value.code == 2
    assert "--start" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The rollout, with a fake sampler: which context each window gets, and which noise.


class FakeSampler:
    """`sampler(state, key, num, cond)` of a prediction run with F = `future`: returns the
    context, then F frames drawn from `key` (as G's noise would be); records every call."""

    def __init__(self, future: int):
        self.future = future
        self.calls = []

    def __call__(self, state, key, num, cond):
        assert state == "state" and num == cond.shape[0] == 1
        self.calls.append((np.array(cond), np.asarray(jax.random.key_data(key))))
        shape = (num, self.future, *cond.shape[2:])
        predicted = np.asarray(jax.random.uniform(key, shape, minval=-1.0, maxval=1.0))
        return np.concatenate([cond, predicted], axis=1)


def _context(k: int) -> np.ndarray:
    return np.linspace(-1, 1, k * 2 * 2 * 1, dtype=np.float32).reshape(k, 2, 2, 1)


@pytest.mark.parametrize("k, future, num_frames", [(2, 3, 7), (2, 1, 3), (1, 2, 2)])
def test_rollout_feeds_the_last_k_frames_back_in(k, future, num_frames):
    sampler = FakeSampler(future)
    key = jax.random.key(5)
    clip = rollout(sampler, "state", _context(k), num_frames, key, future)
    assert clip.shape == (k + num_frames, 2, 2, 1) and clip.dtype == np.float32
    np.testing.assert_array_equal(clip[:k], _context(k))
    windows = -(-num_frames // future)
    assert len(sampler.calls) == windows
    for r, (cond, key_data) in enumerate(sampler.calls):
        # Window r sees the last k frames before it (real, predicted or both) ...
        np.testing.assert_array_equal(cond[0], clip[r * future : r * future + k])
        # ... and draws its noise from fold_in(key, r).
        np.testing.assert_array_equal(key_data, jax.random.key_data(jax.random.fold_in(key, r)))
    # The same key gives the same clip.
    np.testing.assert_array_equal(
        rollout(FakeSampler(future), "state", _context(k), num_frames, key, future), clip
    )


def test_samples_are_fixed_by_the_seed_and_independent_of_their_number():
    def draw(num_samples, seed):
        return predict_samples(FakeSampler(2), "state", _context(2), 5, num_samples, seed, 2)

    three = draw(3, seed=7)
    assert three.shape == (3, 7, 2, 2, 1)
    np.testing.assert_array_equal(draw(3, seed=7), three)
    np.testing.assert_array_equal(draw(1, seed=7)[0], three[0])  # sample s: fold_in(key, s)
    assert not np.array_equal(three[0, 2:], three[1, 2:])
    assert not np.array_equal(draw(1, seed=8)[0], three[0])
    expected = rollout(
        FakeSampler(2), "state", _context(2), 5, jax.random.fold_in(jax.random.key(7), 1), 2
    )
    np.testing.assert_array_equal(three[1], expected)


def test_prediction_run_logs_and_evaluates_its_metrics(prediction_run, capsys):
    workdir = prediction_run
    records = {r["step"]: r for r in read_metrics(workdir) if "eval/prediction/psnr" in r}
    assert sorted(records) == [0, 2]
    last = records[2]
    for name in ("psnr", "ssim", "copy_last_psnr", "copy_last_ssim", "centroid_px"):
        assert {f"eval/prediction/{name}_t1", f"eval/prediction/{name}_t2"} <= set(last)
    assert last["eval/prediction/psnr_best"] >= last["eval/prediction/psnr"] - 1e-6
    assert 0 <= last["eval/prediction/objects_found"] <= 1
    # G's loss: the adversarial term (weight 1) plus the MSE (weight 1).
    step = next(r for r in read_metrics(workdir) if "g/total_loss" in r)
    assert step["g/total_loss"] == pytest.approx(step["g/loss"] + step["g/mse"], rel=1e-5)
    capsys.readouterr()
    eval_args = ["eval", "--workdir", str(workdir), "--metric", "prediction"]
    assert main([*eval_args, "--num-samples", "8"]) == 0
    result = json.loads(capsys.readouterr().out)
    # The same generator, noise and clips as the evaluation at the end of training.
    assert result["prediction/psnr"] == pytest.approx(last["eval/prediction/psnr"], rel=1e-6)
    # The copy-last baseline does not depend on G.
    assert result["prediction/copy_last_psnr"] == records[0]["eval/prediction/copy_last_psnr"]


def test_prediction_trains_on_a_video_folder(tmp_path):
    """The objective on the user's own videos: clips of a folder are split into context and
    future like bouncing shapes' (the same tiny models: the compiled step is reused)."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for seed in range(2):
        clip = BouncingShapes(num_frames=8, height=H, width=W, size_range=(4.0, 6.0), seed=seed)
        write_video(videos / f"clip{seed}.mp4", clip[0]["video"], fps=8.0)
    cfg = _tiny_prediction_config("video_folder")
    cfg.data.root = str(videos)
    cfg.data.cache_dir = str(tmp_path / "cache")
    cfg.data.frame_stride = 1
    workdir = tmp_path / "run"
    train(cfg, workdir)
    steps = [r for r in read_metrics(workdir) if "g/mse" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(np.isfinite(r["g/mse"]) and r["g/mse"] > 0 for r in steps)
    # The samples show real context frames from the folder, then G's prediction.
    assert (workdir / "samples" / "step_000002.png").is_file()
