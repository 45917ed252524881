"""The metric "prediction": how close predicted futures are to the true ones, per future frame.

For runs whose objective predicts (a `context` key in `cfg.objective`: `video_prediction`). Real
clips of the eval data order are split into context and true future; G predicts
`eval.prediction_samples` (K) futures of each from different noise. Reported, for future frame
t = 1 .. F and on average over them (keys `prediction/...`):

  psnr_t<t>, psnr: PSNR in dB on [0, 1] pixels of the first sample (an MSE of 0 counts as
      100 dB);
  psnr_best: per clip, the sample of the K with the highest mean PSNR over the future (SAVP,
      Lee et al. 2018, reports this "best of K"), averaged over clips;
  ssim_t<t>, ssim, ssim_best: the same for SSIM (Gaussian window 11, sigma 1.5, K1 = 0.01,
      K2 = 0.03 on each channel; `dm_pix.ssim`; the window shrinks to the frame on frames
      smaller than 11 pixels);
  copy_last_psnr_t<t>, copy_last_psnr, copy_last_ssim_t<t>, copy_last_ssim: the baseline that
      repeats the last context frame, scored the same way beside them;
  on bouncing shapes, centroid_px_t<t>, centroid_px and copy_last_centroid_px...: the distance
      in pixels between each object's centroid in the predicted frame and in the true frame
      (objects are told apart by their palette colour; every pixel goes to its nearest colour
      or the background), over the objects of the true frame that the prediction shows
      (`objects_found`: the share of them it shows, at least one pixel of the colour);
      off_palette: the share of the predicted frames' non-background
      pixels that are no palette colour (`shapes_physics`' tolerance; RGB): 0 for crisp
      objects, high for blurred ones (the true frames: 0).
      The true frame is an exact rendering of the data's ground-truth positions, so its colour
      centroids are those positions up to the rasterisation (and the parts other objects hide).
"""

from __future__ import annotations

import functools

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data.bouncing_shapes import colour_table
from gan_jax.metrics import shapes_tracking
from gan_jax.metrics.registry import VIDEO, Metric
from gan_jax.metrics.shapes_physics import Thresholds

# An MSE of 0 (a perfect copy) would be an infinite PSNR: it is capped at this many dB.
MAX_PSNR = 100.0
# Pixels of a colour a true frame must hold for its object to be scored (a hidden object
# that peeks out by a pixel or two has no meaningful centroid).
MIN_OBJECT_PIXELS = 4
_KEY_SALT = 0x9ED1C7
# Clips per sampler call (one compiled program for every count, as in evaluation).
_CHUNK = 64


def _unit(clips) -> jax.Array:
    return (jnp.asarray(clips, jnp.float32) + 1.0) * 0.5


@jax.jit
def psnr(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """PSNR in dB of each frame of clips `[N, F, H, W, C]` in [-1, 1], on [0, 1] pixels.

    Returns:
        `[N, F]`, at most `MAX_PSNR`.
    """
    mse = jnp.mean(jnp.square(_unit(predicted) - _unit(target)), axis=(2, 3, 4))
    return jnp.minimum(-10.0 * jnp.log10(jnp.maximum(mse, 1e-30)), MAX_PSNR)


@functools.partial(jax.jit, static_argnames="filter_size")
def _ssim(predicted, target, filter_size: int):
    return dm_pix.ssim(predicted, target, filter_size=filter_size)


def ssim(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """SSIM of each frame of clips `[N, F, H, W, C]` in [-1, 1], on [0, 1] pixels.

    Returns:
        `[N, F]`: the mean of the SSIM map over pixels and channels (`dm_pix.ssim`).
    """
    n, f, h, w, c = predicted.shape
    frames = lambda x: _unit(x).reshape(n * f, h, w, c)  # noqa: E731
    size = min(11, h, w)
    return _ssim(frames(predicted), frames(target), size).reshape(n, f)


def colour_centroids(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid and area of each palette colour in each frame of bouncing-shapes clips.

    Every pixel goes to the nearest of the background and the palette colours (RGB, or grey
    for one channel), so a blurred or noisy object still has a centroid.

    Args:
        clips: `[N, F, H, W, C]` in [-1, 1].

    Returns:
        `(centroids [N, F, K, 2], areas [N, F, K])`: `(y, x)` in pixels (pixel centres at
        `i + 0.5`, NaN where the area is 0) and pixel counts, K = the palette's size.
    """
    clips = np.asarray(clips, np.float32)
    n, f, h, w, c = clips.shape
    table = colour_table(c)  # [1 + K, C], row 0 the background
    distance = np.zeros((n, f, h, w, len(table)), np.float32)
    for i, colour in enumerate(table):
        distance[..., i] = np.square(clips - colour).sum(-1)
    nearest = distance.argmin(-1)  # [N, F, H, W]
    ys = (np.arange(h, dtype=np.float64) + 0.5)[:, None]
    xs = (np.arange(w, dtype=np.float64) + 0.5)[None, :]
    k = len(table) - 1
    areas = np.zeros((n, f, k))
    centroids = np.full((n, f, k, 2), np.nan)
    for colour in range(k):
        mask = nearest == colour + 1
        area = mask.sum(axis=(2, 3)).astype(np.float64)
        areas[..., colour] = area
        with np.errstate(invalid="ignore", divide="ignore"):
            centroids[..., colour, 0] = (mask * ys).sum(axis=(2, 3)) / area
            centroids[..., colour, 1] = (mask * xs).sum(axis=(2, 3)) / area
    return centroids, areas


def centroid_errors(predicted: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances between the objects' centroids in predicted and true bouncing-shapes frames.

    Args:
        predicted, target: `[N, F, H, W, C]` in [-1, 1].

    Returns:
        `(distance [N, F, K], scored [N, F, K])`: pixels between the colour centroids, and
        which objects count: those the true frame shows (`MIN_OBJECT_PIXELS`) and the
        predicted frame shows too (where it does not, the distance is NaN).
    """
    true_c, true_area = colour_centroids(target)
    pred_c, pred_area = colour_centroids(predicted)
    present = true_area >= MIN_OBJECT_PIXELS
    distance = np.linalg.norm(pred_c - true_c, axis=-1)
    distance = np.where(present & (pred_area > 0), distance, np.nan)
    return distance, present


def off_palette_pixels(clips: np.ndarray, antialias: bool) -> tuple[int, int]:
    """`(off-palette pixels, non-background pixels)` of RGB bouncing-shapes clips
    `[N, F, H, W, 3]`, classified as `shapes_physics` does (edge blends count as colours on
    antialiased data)."""
    th = Thresholds()
    classes = shapes_tracking.classify_pixels(
        clips, th.colour_tolerance, blends=antialias, blend_tolerance=th.blend_tolerance
    )
    coloured = classes.label != shapes_tracking.BACKGROUND
    return int((classes.label == shapes_tracking.OFF_PALETTE).sum()), int(coloured.sum())


def _frame_keys(name: str, per_frame: np.ndarray) -> dict[str, float]:
    """`{name_t1: ..., name_tF: ..., name: mean}` from per-frame values `[F]`."""
    out = {f"{name}_t{t + 1}": float(v) for t, v in enumerate(per_frame)}
    out[name] = float(np.mean(per_frame))
    return out


def _centroid_summary(distance: np.ndarray, scored: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-frame mean distance over found objects `[F]`, and the share of objects found."""
    found = np.isfinite(distance)
    per_frame = np.nansum(distance, axis=(0, 2)) / np.maximum(found.sum(axis=(0, 2)), 1)
    return per_frame, float(found.sum() / max(scored.sum(), 1))


def _prediction(ctx) -> dict[str, float]:
    objective = ctx.run.objective
    k = int(objective.context)
    samples = int(ctx.cfg.eval.prediction_samples)
    shapes = ctx.run.spec.name == "bouncing_shapes"
    rgb_shapes = shapes and ctx.run.spec.sample_shape[-1] == 3
    antialias = bool(ctx.cfg.data.get("antialias", False))
    key = jax.random.fold_in(jax.random.key(ctx.seed), _KEY_SALT)
    sums: dict[str, list[np.ndarray]] = {}

    def add(name: str, values) -> None:
        sums.setdefault(name, []).append(np.asarray(values, np.float64))

    for chunk, batch in enumerate(ctx.data_batches(ctx.num_samples, _CHUNK)):
        cond, future = objective.split(batch)
        cond, future = np.asarray(cond), np.asarray(future)
        n = future.shape[0]
        copy_last = np.repeat(cond[:, -1:], future.shape[1], axis=1)
        add("copy_last_psnr", psnr(copy_last, future))
        add("copy_last_ssim", ssim(copy_last, future))
        psnrs, ssims = [], []
        for s in range(samples):
            sample_key = jax.random.fold_in(key, chunk * samples + s)
            clips = ctx.sampler(ctx.state, sample_key, n, cond)
            predicted = clips[:, k:]
            if not np.all(np.isfinite(predicted)):
                raise FloatingPointError(
                    f"the EMA generator at step {int(ctx.state.step)} predicted non-finite frames"
                )
            psnrs.append(np.asarray(psnr(predicted, future)))
            ssims.append(np.asarray(ssim(predicted, future)))
            if s == 0 and shapes:
                distance, scored = centroid_errors(predicted, future)
                add("centroid_distance", distance)
                add("centroid_scored", scored)
                distance, scored = centroid_errors(copy_last, future)
                add("copy_last_centroid_distance", distance)
                add("copy_last_centroid_scored", scored)
            if s == 0 and rgb_shapes:
                add("off_palette_counts", [off_palette_pixels(predicted, antialias)])
        add("psnr", psnrs[0])
        add("ssim", ssims[0])
        for name, values in (("psnr_best", np.stack(psnrs)), ("ssim_best", np.stack(ssims))):
            best = values.mean(axis=2).argmax(axis=0)  # [n]: the best sample of each clip
            add(name, values[best, np.arange(n)])

    whole = {name: np.concatenate(parts) for name, parts in sums.items()}
    out = {}
    for name in ("psnr", "ssim", "copy_last_psnr", "copy_last_ssim"):
        out.update(_frame_keys(name, whole[name].mean(axis=0)))
    out["psnr_best"] = float(whole["psnr_best"].mean())
    out["ssim_best"] = float(whole["ssim_best"].mean())
    out["samples_per_clip"] = float(samples)
    if shapes:
        for prefix in ("", "copy_last_"):
            per_frame, found = _centroid_summary(
                whole[f"{prefix}centroid_distance"], whole[f"{prefix}centroid_scored"]
            )
            out.update(_frame_keys(f"{prefix}centroid_px", per_frame))
            out[f"{prefix}objects_found"] = found
    if rgb_shapes:
        off, coloured = whole["off_palette_counts"].sum(axis=0)
        out["off_palette"] = float(off / max(coloured, 1))
    return out


def _missing(cfg, spec) -> str | None:
    if "context" not in cfg.objective:
        return (
            f"it scores predicted futures; objective.name={cfg.objective.name!r} predicts "
            "nothing (train with objective.name='video_prediction')"
        )
    return None


METRIC = Metric("prediction", (VIDEO,), _prediction, missing=_missing)
