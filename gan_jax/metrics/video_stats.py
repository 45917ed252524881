"""The metric "video_stats": moments of generated vs real clips.

Per-channel mean and std, and motion (mean |frame t+1 - frame t|), of the EMA generator's clips
and of real clips, with `mean_gap`, `std_gap` and `motion_ratio`. These are first and second
moments only: they catch colour drift, washed-out or frozen samples, not realism.
"""

import numpy as np

from gan_jax.metrics.registry import VIDEO, Metric


def clip_statistics(clips: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of clips `[N, T, H, W, C]`.

    Returns:
        `mean` and `std` per channel `[C]`, and `motion`: mean |x[t+1] - x[t]| (0 if T = 1).
    """
    clips = np.asarray(clips, np.float64)
    if clips.ndim != 5:
        raise ValueError(f"clips must be [N, T, H, W, C], got shape {clips.shape}")
    motion = np.abs(np.diff(clips, axis=1)).mean() if clips.shape[1] > 1 else 0.0
    return {
        "mean": clips.mean(axis=(0, 1, 2, 3)),
        "std": clips.std(axis=(0, 1, 2, 3)),
        "motion": np.asarray(motion),
    }


def _video_stats(ctx) -> dict[str, float]:
    fake, real = clip_statistics(ctx.fake()), clip_statistics(ctx.real())
    out = {}
    for which, stats in (("fake", fake), ("real", real)):
        for c in range(stats["mean"].shape[0]):
            out[f"{which}_mean_c{c}"] = float(stats["mean"][c])
            out[f"{which}_std_c{c}"] = float(stats["std"][c])
        out[f"{which}_motion"] = float(stats["motion"])
    out["mean_gap"] = float(np.abs(fake["mean"] - real["mean"]).mean())
    out["std_gap"] = float(np.abs(fake["std"] - real["std"]).mean())
    out["motion_ratio"] = float(fake["motion"] / max(float(real["motion"]), 1e-12))
    return out


# First: it holds all generated samples in memory, which the metrics after it reuse.
METRIC = Metric("video_stats", (VIDEO,), _video_stats, order=0)
