"""The `predict` command: a video-prediction run's G continues a video file.

`gan-jax predict --workdir W --video IN --out OUT` reads IN (anything `gan_jax.io.read_video`
reads: a phone clip, an AVI from UCF-101, a GIF), takes its frames from `--start` seconds on the
run's timeline (`data.target_fps` or `data.frame_stride` where the run has them), resizes and
crops them as the run's data were (short side to fit, `data.resize_short_side` where set, then
the centre crop of `[H, W]`: a random crop is an augmentation of training, not a choice for
one video), and lets G predict `--frames` N frames after the first k (`objective.context`).

G predicts F = T - k frames at a time and its parameters depend on k and F, so a longer future
is a rollout: window r gets the last k frames of the clip so far (real at first, then its own
predictions) and adds the next F; the last window is cut to N. Sample s draws its noise from
`fold_in(key(seed), s)` and window r from `fold_in` of that with r, so each sample is the same
whatever `--samples` is, and the whole output is fixed by `--seed`.

Written to OUT:
    prediction.mp4, prediction.gif   the clips tiled side by side: the real video first (black
                                     after its end where it has fewer than k + N frames), then
                                     the samples; k + N frames at `log.fps`
    prediction.png                   frame grid: row 0 the real video, row 1 + s sample s;
                                     column t frame t
    predicted.npy                    float32 `[S, k + N, H, W, C]` in [-1, 1]: the k context
                                     frames, then the N predicted
    real.npy                         float32 `[M, H, W, C]` in [-1, 1]: the M <= k + N frames
                                     the video has from `--start` on
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import jax
import numpy as np

from gan_jax.config import ConfigError
from gan_jax.data.pipeline import resolve_data_config
from gan_jax.data.video_folder.transforms import (
    crop_frames,
    resize_frames,
    resized_size,
    to_unit_range,
)
from gan_jax.errors import UserError
from gan_jax.io import (
    VideoDecodeError,
    probe_video,
    read_video,
)
from gan_jax.sampling import Sampler, make_sampler, write_clips, write_npy
from gan_jax.state import GANState
from gan_jax.workdir import load_run

logger = logging.getLogger(__name__)

OBJECTIVE = "video_prediction"
# Guard for floor(seconds * fps): a time given in whole frames can land a hair below them.
_EPS = 1e-6


def rollout(
    sampler: Sampler,
    state: GANState,
    context: np.ndarray,
    num_frames: int,
    key: jax.Array,
    future: int,
) -> np.ndarray:
    """One sample: `context` continued by `num_frames` frames, F = `future` at a time.

    Args:
        sampler: `make_sampler(g, mesh, objective)` of a prediction run: `sampler(state, key,
            1, cond [1, k, H, W, C]) -> [1, k + F, H, W, C]` (the context, then F predicted).
        state: the run's state (its EMA generator is used).
        context: `[k, H, W, C]` float32 in [-1, 1].
        num_frames: N >= 1, the frames to predict.
        key: the sample's noise key; window r uses `fold_in(key, r)`.
        future: F, the frames G predicts per window.

    Returns:
        float32 `[k + N, H, W, C]`: `context`, then the prediction. Window r's context is the
        last k frames of what came before (real or predicted), window r + 1 starts where it
        ended, and the last window is cut to N.

    Raises:
        ValueError: `num_frames` or `future` < 1, or the sampler returns clips of another shape.
    """
    if num_frames < 1 or future < 1:
        raise ValueError(f"rollout: num_frames and future must be >= 1, got {num_frames}, {future}")
    clip = np.asarray(context, np.float32)
    k = clip.shape[0]
    for window in range(math.ceil(num_frames / future)):
        out = np.asarray(sampler(state, jax.random.fold_in(key, window), 1, clip[None, -k:]))
        if out.shape != (1, k + future, *clip.shape[1:]):
            raise ValueError(
                f"rollout: the sampler returned {out.shape} for a context of {tuple(clip.shape)}; "
                f"expected {(1, k + future, *clip.shape[1:])} (the context, then {future} frames)"
            )
        clip = np.concatenate([clip, out[0, k:].astype(np.float32)])
    return clip[: k + num_frames]


def predict_samples(
    sampler: Sampler,
    state: GANState,
    context: np.ndarray,
    num_frames: int,
    num_samples: int,
    seed: int,
    future: int,
) -> np.ndarray:
    """`num_samples` rollouts of `context` `[k, H, W, C]`; sample s uses the noise key
    `fold_in(key(seed), s)`. Returns float32 `[S, k + N, H, W, C]`."""
    if num_samples < 1:
        raise ValueError(f"number of samples must be >= 1, got {num_samples}")
    key = jax.random.key(seed)
    return np.stack(
        [
            rollout(sampler, state, context, num_frames, jax.random.fold_in(key, s), future)
            for s in range(num_samples)
        ]
    )


def _first_frame(path: str, start: float, target_fps: float | None, stride: int) -> dict:
    """`read_video`'s selection for the frames from `start` seconds on: on the timeline at
    `target_fps`, or every `stride`-th source frame from the one shown at `start`."""
    if target_fps is not None:
        return {"start": math.floor(start * target_fps + _EPS), "fps": target_fps}
    first = 0
    if start > 0:
        fps = probe_video(path).fps  # the average rate: for variable rates, the nearest frame
        if not fps > 0:
            raise UserError(
                f"{path}: the container gives no frame rate, so --start {start:g} seconds names "
                "no frame; leave out --start"
            )
        first = math.floor(start * fps + _EPS)
    return {"start": first, "stride": stride}


def _read_frames(path: str, count: int, selection: dict) -> np.ndarray:
    """uint8 `[m, h, w, 3]`: `count` frames of `selection`, or all it has (m < count) when the
    video ends first. Reads on to the end only where a read of `count` frames failed (the
    video is shorter, or damaged), so a long phone video is not decoded whole for a few frames."""
    try:
        return read_video(path, num_frames=count, **selection)[0]
    except VideoDecodeError as err:
        # Too short, or damaged: a read to the end tells which (only the first gives fewer).
        try:
            frames = read_video(path, num_frames=None, **selection)[0]
        except VideoDecodeError:
            raise err from None
        if len(frames) >= count:
            raise err from None
        return frames


def read_clip(
    path: str | os.PathLike,
    data_cfg,
    clip_shape: tuple[int, int, int, int],
    context: int,
    count: int,
    start: float = 0.0,
) -> np.ndarray:
    """The frames of a video file as the run's data config makes clips of them.

    Args:
        path: the video file.
        data_cfg: the run's `cfg.data`; its timeline keys (`target_fps`, `frame_stride`) and
            `resize_short_side` apply where the dataset has them (`video_folder`).
        clip_shape: `(T, H, W, C)` of the run's clips.
        context: k; fewer frames than that are an error.
        count: frames wanted (k + N).
        start: seconds; the first frame is the one shown at that time.

    Returns:
        float32 `[M, H, W, C]` in [-1, 1], k <= M <= `count` (M < `count` where the video ends).

    Raises:
        VideoDecodeError: the file is missing, damaged or not a video.
        UserError: fewer than k frames from `start` on, or frames too small for the crop.
    """
    path = os.fspath(path)
    resolved = resolve_data_config(data_cfg)
    _, height, width, channels = clip_shape
    selection = _first_frame(
        path, start, resolved.get("target_fps"), int(resolved.get("frame_stride") or 1)
    )
    frames = _read_frames(path, count, selection)
    if len(frames) < context:
        found = f"{len(frames)} frame{'s' if len(frames) != 1 else ''} found"
        if start:
            found += f" from --start {start:g} s (frame {selection['start']}) on"
        raise UserError(
            f"{path}: {found}, but the run predicts from {context} context frames "
            f"(objective.context={context}); pass a longer video"
            + (" or an earlier --start" if start else "")
        )
    short_side = resolved.get("resize_short_side")
    size = resized_size(
        *frames.shape[1:3], out_height=height, out_width=width, short_side=short_side
    )
    if size[0] < height or size[1] < width:
        raise UserError(
            f"{path}: data.resize_short_side={short_side} resizes its {frames.shape[1]}x"
            f"{frames.shape[2]} frames to {size[0]}x{size[1]}, which cannot hold the run's "
            f"{height}x{width} crop"
        )
    frames = crop_frames(
        resize_frames(frames, size),
        height=height,
        width=width,
        crop="centre",
        uniform_y=0.0,
        uniform_x=0.0,
        path=path,
    )
    logger.info("Read %d frames of %s (%s)", len(frames), path, selection)
    return to_unit_range(frames, channels)


def check_prediction_run(cfg, run, workdir, context: int | None) -> int:
    """k of a prediction run, checked against `--context`.

    Raises:
        ConfigError: the run does not predict, or `context` is not its k.
    """
    k = getattr(run.objective, "context", None)
    # Any objective that predicts from k context frames (`video_prediction`, or a user's own).
    if not isinstance(k, int) or not hasattr(run.objective, "future"):
        raise ConfigError(
            f"gan-jax predict needs a run trained with objective.name={OBJECTIVE!r}, but "
            f"{workdir} was trained with objective.name={cfg.objective.name!r}; use "
            f"`gan-jax sample --workdir {workdir}` to draw its samples instead"
        )
    if context is not None and context != k:
        raise ConfigError(
            f"--context {context}: {workdir} was trained with objective.context={k}, and its "
            f"generator's parameters depend on it (they map {k} frames to the "
            f"{run.objective.future} that follow); leave out --context or pass {k}"
        )
    return k


def write_prediction(
    out: str | os.PathLike, real: np.ndarray, predicted: np.ndarray, fps: float
) -> list[Path]:
    """Writes the files listed in the module docstring; returns their paths.

    Args:
        out: the directory (created if missing).
        real: `[M, H, W, C]` in [-1, 1], M <= k + N.
        predicted: `[S, k + N, H, W, C]` in [-1, 1].
        fps: frame rate of the videos.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    length = predicted.shape[1]
    black = np.full((length - len(real), *real.shape[1:]), -1.0, np.float32)
    rows = np.concatenate([np.concatenate([real, black])[None], predicted])  # [1 + S, k + N, ...]
    paths = write_clips(out, "prediction", rows, fps, cols=len(rows))  # side by side
    paths.append(write_npy(out / "predicted.npy", np.asarray(predicted, np.float32)))
    paths.append(write_npy(out / "real.npy", np.asarray(real, np.float32)))
    return paths


def predict_command(
    workdir: str | os.PathLike,
    video: str | os.PathLike,
    out: str | os.PathLike,
    context: int | None = None,
    frames: int | None = None,
    samples: int = 3,
    start: float = 0.0,
    seed: int = 0,
) -> list[Path]:
    """The `predict` command (see the module docstring): continues `video` with the latest
    checkpoint's EMA generator of the prediction run in `workdir`.

    Args:
        workdir: a run trained with objective.name='video_prediction'.
        video: the video file.
        out: the output directory.
        context: k; None = the run's (any other value is an error: G's parameters depend on k).
        frames: N, the frames to predict; None = F = T - k (one window).
        samples: S, the predicted futures.
        start: seconds into the video of the first context frame.
        seed: the noise seed.

    Returns:
        The paths written (printed too).

    Raises:
        UserError, ConfigError: a missing video file, fewer than k frames, a run that does not
            predict, a `context` other than its k, or an argument out of range.
        VideoDecodeError: the file is damaged or not a video.
    """
    video = Path(video)
    if not video.exists():
        raise UserError(f"--video {video} does not exist; pass a video file")
    if video.is_dir():
        raise UserError(f"--video {video} is a directory; pass a video file")
    if not (math.isfinite(start) and start >= 0):
        raise UserError(f"--start must be a number of seconds >= 0, got {start}")
    for name, value in (("--frames", frames), ("--samples", samples)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")
    cfg, run, state, mesh = load_run(workdir)
    k = check_prediction_run(cfg, run, workdir, context)
    future = run.objective.future
    num_frames = future if frames is None else int(frames)
    real = read_clip(video, cfg.data, run.sample_shape, k, k + num_frames, start)
    sampler = make_sampler(run.g, mesh, run.objective)
    predicted = predict_samples(sampler, state, real[:k], num_frames, samples, seed, future)
    if not np.all(np.isfinite(predicted)):
        raise FloatingPointError(
            f"the generator of {workdir} at step {int(state.step)} predicted non-finite frames"
        )
    logger.info(
        "Predicted %d x %d frames after %d of %s (%d windows of %d)",
        samples,
        num_frames,
        k,
        video,
        math.ceil(num_frames / future),
        future,
    )
    paths = []
    if jax.process_index() == 0:
        paths = write_prediction(out, real, predicted, cfg.log.fps)
    for path in paths:
        print(path)
    return paths
