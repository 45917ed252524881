"""Metrics of a trained generator, and the `eval` command.

A metric is a function of an `EvalContext` (config, models, state, a sampler of the EMA
generator and a source of real samples) returning a flat dict of floats, registered under a
name with the data it applies to. To add one (e.g. FVD)::

    @register("fvd", applies_to=VIDEO)
    def fvd(ctx: EvalContext) -> dict[str, float]:
        fake = ctx.fake()              # [N, T, H, W, C] in [-1, 1] from the EMA generator
        real = ctx.real()              # [N, T, H, W, C] real clips from cfg.data
        return {"fvd": ...}

Built in:
  mode_coverage (ring, grid): modes captured, % high-quality samples and reverse KL (PacGAN).
  video_stats (clips): per-channel mean and std, and motion (mean |frame t+1 - frame t|) of
    generated vs. real clips. These are first and second moments only: they catch colour
    drift, washed-out or frozen samples, not realism.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from ml_collections import config_dict

from gan_jax import build, samples
from gan_jax.config import ConfigError
from gan_jax.metrics.mode_coverage import NUM_EVAL_SAMPLES, mode_coverage
from gan_jax.state import GANState

POINTS = "points"
VIDEO = "video"
EVAL_DIR = "eval"
# Salts of the eval noise key and of the real-data order, distinct from training's.
_EVAL_NOISE_SALT = 0xE7A1
_EVAL_DATA_SALT = 0xDA7A


@dataclasses.dataclass
class EvalContext:
    """What a metric may use. `fake()` and `real()` are computed once and cached.

    Attributes:
        cfg: the run config.
        gan: models and static settings (`build.GAN`).
        state: the state to evaluate (its `g_ema` is sampled).
        sampler: `samples.make_sampler(gan.g, mesh)`.
        num_samples: how many fake (and real) samples metrics should use by default.
        seed: seed of the eval noise and of the real-data order.
    """

    cfg: config_dict.ConfigDict
    gan: build.GAN
    state: GANState
    sampler: samples.Sampler
    num_samples: int
    seed: int = 0
    _cache: dict = dataclasses.field(default_factory=dict)

    def with_state(self, state: GANState) -> EvalContext:
        """The same context for another state; real samples stay cached."""
        real = {key: value for key, value in self._cache.items() if key[0] == "real"}
        return dataclasses.replace(self, state=state, _cache=real)

    def fake(self, num: int | None = None) -> np.ndarray:
        """`[num, ...]` samples of the EMA generator (fixed eval noise)."""
        num = self.num_samples if num is None else num
        if ("fake", num) not in self._cache:
            key = jax.random.fold_in(jax.random.key(self.seed), _EVAL_NOISE_SALT)
            fake = self.sampler(self.state, key, num)
            if not np.all(np.isfinite(fake)):
                raise FloatingPointError(
                    f"the EMA generator at step {int(self.state.step)} produced non-finite samples"
                )
            self._cache["fake", num] = fake
        return self._cache["fake", num]

    def real(self, num: int | None = None) -> np.ndarray:
        """`[num, ...]` real samples from `cfg.data` (one batch, order from the eval seed)."""
        num = self.num_samples if num is None else num
        if ("real", num) not in self._cache:
            iterator = build.make_data(
                self.cfg,
                batch_size=num,
                seed=self.seed + _EVAL_DATA_SALT,
                process_index=0,
                process_count=1,
            )
            try:
                self._cache["real", num] = np.asarray(next(iterator)[build.data_key(self.cfg)])
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        return self._cache["real", num]


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    applies_to: tuple[str, ...]
    compute: Callable[[EvalContext], dict[str, float]]


METRICS: dict[str, Metric] = {}


def register(name: str, applies_to: str | Sequence[str]):
    """Decorator adding `fn(ctx) -> dict[str, float]` to `METRICS` under `name`."""
    kinds = (applies_to,) if isinstance(applies_to, str) else tuple(applies_to)

    def add(fn: Callable[[EvalContext], dict[str, float]]):
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, kinds, fn)
        return fn

    return add


def data_kind(cfg: config_dict.ConfigDict) -> str:
    return POINTS if build.is_points(cfg) else VIDEO


def applicable_metrics(cfg: config_dict.ConfigDict) -> tuple[str, ...]:
    """Names of the registered metrics that apply to this config's data."""
    kind = data_kind(cfg)
    return tuple(name for name, metric in METRICS.items() if kind in metric.applies_to)


@register("mode_coverage", applies_to=POINTS)
def _mode_coverage(ctx: EvalContext) -> dict[str, float]:
    # PacGAN's protocol fixes the sample count; num_samples does not apply.
    result = mode_coverage(ctx.fake(NUM_EVAL_SAMPLES), ctx.cfg.data.name)
    return {name: float(value) for name, value in result.items()}


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


@register("video_stats", applies_to=VIDEO)
def _video_stats(ctx: EvalContext) -> dict[str, float]:
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


def run_metrics(names: Sequence[str] | None, ctx: EvalContext) -> dict[str, float]:
    """Computes metrics `names` (None or empty: all that apply) as `{"<metric>/<value>": float}`.

    Raises:
        ConfigError: a name that is unknown or does not apply to the config's data.
    """
    allowed = applicable_metrics(ctx.cfg)
    names = list(names) if names else list(allowed)
    results = {}
    for name in names:
        if name not in allowed:
            raise ConfigError(
                f"metric {name!r} does not apply to data.name={ctx.cfg.data.name!r}; "
                f"allowed: {list(allowed)} (all registered: {sorted(METRICS)})"
            )
        for key, value in METRICS[name].compute(ctx).items():
            results[f"{name}/{key}"] = float(value)
    return results


def eval_command(
    workdir: str | os.PathLike,
    metrics: Sequence[str] | None = None,
    num_samples: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """The `eval` command: metrics of the latest checkpoint's EMA generator.

    Prints the results as JSON and writes them to WORKDIR/eval/step_XXXXXX.json.

    Args:
        workdir: a training run's directory.
        metrics: names from `METRICS`; None: all that apply to the run's data.
        num_samples: samples per metric (default: the run's `eval.num_samples`).
        seed: seed of the eval noise and real-data order.
    """
    cfg, gan, state, mesh = samples.load_run(workdir)
    ctx = EvalContext(
        cfg=cfg,
        gan=gan,
        state=state,
        sampler=samples.make_sampler(gan.g, mesh),
        num_samples=int(num_samples or cfg.eval.num_samples),
        seed=seed,
    )
    step = int(state.step)
    results = {"step": step, **run_metrics(metrics or cfg.eval.metrics, ctx)}
    if jax.process_index() == 0:
        out = Path(workdir) / EVAL_DIR / f"step_{step:06d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(results, indent=2))
    return results
