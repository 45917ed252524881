"""Mode coverage of 2-D mixtures, exactly as in PacGAN (Lin et al. 2018, sec. 5.1).

Draw 2500 samples. A sample is high quality if it lies within 3 std of its nearest mode. A mode
is captured if at least one high-quality sample is nearest to it. The reverse KL divergence is
`sum_k p_k log(p_k K)`, the KL from the histogram p of high-quality samples over the K modes to
the uniform distribution (terms with p_k = 0 contribute 0).
"""

import numpy as np

from gan_jax.data.points import mixture
from gan_jax.metrics.registry import POINTS, Metric

NUM_EVAL_SAMPLES = 2500


def mode_coverage(samples: np.ndarray, dataset: str) -> dict[str, float]:
    """Mode-collapse metrics of generated points.

    Args:
        samples: `[N, 2]` generated points (PacGAN uses N = 2500).
        dataset: "ring" or "grid".

    Returns:
        {"modes": modes captured, "hq_percent": % of high-quality samples,
         "reverse_kl": reverse KL in nats}. With no high-quality sample, reverse_kl is inf.
    """
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"samples must be [N, 2], got {samples.shape}.")
    if not np.all(np.isfinite(samples)):
        raise ValueError("samples contain NaN or inf; the generator diverged.")
    centres, std = mixture(dataset)
    dists = np.linalg.norm(samples[:, None, :] - centres[None, :, :].astype(np.float64), axis=-1)
    nearest = np.argmin(dists, axis=1)
    high_quality = dists[np.arange(len(samples)), nearest] <= 3.0 * std
    counts = np.bincount(nearest[high_quality], minlength=len(centres))
    num_hq = int(high_quality.sum())
    if num_hq == 0:
        reverse_kl = float("inf")
    else:
        p = counts / num_hq
        nz = p > 0
        reverse_kl = float(np.sum(p[nz] * np.log(p[nz] * len(centres))))
    return {
        "modes": int(np.count_nonzero(counts)),
        "hq_percent": 100.0 * num_hq / len(samples),
        "reverse_kl": reverse_kl,
    }


def _mode_coverage(ctx) -> dict[str, float]:
    # PacGAN's protocol fixes the sample count; num_samples does not apply.
    result = mode_coverage(ctx.fake(NUM_EVAL_SAMPLES), ctx.cfg.data.name)
    return {name: float(value) for name, value in result.items()}


METRIC = Metric("mode_coverage", (POINTS,), _mode_coverage)
