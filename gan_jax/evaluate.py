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
  shapes_fd (bouncing_shapes): Fréchet Shapes Distance, the Fréchet distance of features of a
    small network trained here on the set's ground truth (`gan_jax.metrics.shapes_fd`); the
    network is trained on first use and cached under `eval.shapes_features_dir` (default
    WORKDIR/shapes_features).
  fvd (clips, RGB, >= 16 frames): Fréchet Video Distance with I3D weights the user provides
    (`eval.i3d_weights`, or `gan-jax eval --i3d-weights PATH`); `eval.fvd_num_samples` real and
    generated clips (2048, the usual protocol), streamed in batches.
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
# Generated samples per sampler call in evaluation (one compiled program for every count).
EVAL_CHUNK = 64
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
        workdir: the run's directory (default place of caches such as the shapes features).
        num_samples_given: `num_samples` was asked for explicitly (`gan-jax eval
            --num-samples`), so it also replaces metrics' own sample counts (FVD's 2048).
    """

    cfg: config_dict.ConfigDict
    gan: build.GAN
    state: GANState
    sampler: samples.Sampler
    num_samples: int
    seed: int = 0
    workdir: Path | None = None
    num_samples_given: bool = False
    _cache: dict = dataclasses.field(default_factory=dict)

    def with_state(self, state: GANState) -> EvalContext:
        """The same context for another state; real samples stay cached."""
        kept = {key: value for key, value in self._cache.items() if key[0] in _KEPT_CACHES}
        return dataclasses.replace(self, state=state, _cache=kept)

    def cached(self, name: str, make: Callable[[], object]):
        """`make()` once per context and the states that follow it (`with_state`): for what
        does not depend on the generator, such as a metric's real statistics."""
        if ("kept", name) not in self._cache:
            self._cache["kept", name] = make()
        return self._cache["kept", name]

    def fake_batches(self, num: int):
        """Yields `num` samples of the EMA generator in chunks of `EVAL_CHUNK`, so a large count
        never sits in memory. Chunk i is drawn from fold_in(eval key, i): every metric sees the
        same samples, and they are drawn once where `fake(num)` already holds them."""
        if ("fake", num) in self._cache:
            whole = self._cache["fake", num]
            for start in range(0, num, EVAL_CHUNK):
                yield whole[start : start + EVAL_CHUNK]
            return
        key = jax.random.fold_in(jax.random.key(self.seed), _EVAL_NOISE_SALT)
        for i, start in enumerate(range(0, num, EVAL_CHUNK)):
            fake = self.sampler(self.state, jax.random.fold_in(key, i), EVAL_CHUNK)
            fake = fake[: min(EVAL_CHUNK, num - start)]
            if not np.all(np.isfinite(fake)):
                raise FloatingPointError(
                    f"the EMA generator at step {int(self.state.step)} produced non-finite samples"
                )
            yield fake

    def real_batches(self, num: int, batch_size: int):
        """Yields `num` real samples from `cfg.data` in batches of at most `batch_size` (order
        from the eval seed)."""
        iterator = build.make_data(
            self.cfg,
            batch_size=batch_size,
            seed=self.seed + _EVAL_DATA_SALT,
            process_index=0,
            process_count=1,
        )
        try:
            for start in range(0, num, batch_size):
                batch = np.asarray(next(iterator)[build.data_key(self.cfg)])
                yield batch[: min(batch_size, num - start)]
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def fake(self, num: int | None = None) -> np.ndarray:
        """`[num, ...]` samples of the EMA generator (those of `fake_batches`), as one array."""
        num = self.num_samples if num is None else num
        if ("fake", num) not in self._cache:
            self._cache["fake", num] = np.concatenate(list(self.fake_batches(num)))
        return self._cache["fake", num]

    def real(self, num: int | None = None) -> np.ndarray:
        """`[num, ...]` real samples from `cfg.data`, as one array."""
        num = self.num_samples if num is None else num
        if ("real", num) not in self._cache:
            batches = self.real_batches(num, num)
            try:
                self._cache["real", num] = next(batches)
            finally:
                batches.close()  # runs the generator's clean-up (closes the data iterator)
        return self._cache["real", num]


# Cache entries of an EvalContext that survive `with_state` (they do not depend on G).
_KEPT_CACHES = ("real", "kept")


@dataclasses.dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: its name (`--metric NAME`, `eval.metrics`).
        applies_to: data kinds (POINTS, VIDEO) it is defined for.
        data_names: `cfg.data.name`s it is defined for; None = every dataset of those kinds.
        compute: `fn(ctx) -> dict[str, float]`.
        missing: `fn(cfg) -> str | None`, what the config lacks for this metric (e.g. a
            weights file), or None. A metric with something missing is left out of "all that
            apply" and is an error when asked for by name.
    """

    name: str
    applies_to: tuple[str, ...]
    compute: Callable[[EvalContext], dict[str, float]]
    data_names: tuple[str, ...] | None = None
    missing: Callable[[config_dict.ConfigDict], str | None] = lambda cfg: None

    def defined_for(self, cfg: config_dict.ConfigDict) -> bool:
        if data_kind(cfg) not in self.applies_to:
            return False
        return self.data_names is None or cfg.data.name in self.data_names


METRICS: dict[str, Metric] = {}


def register(
    name: str,
    applies_to: str | Sequence[str],
    *,
    data_names: Sequence[str] | None = None,
    missing: Callable[[config_dict.ConfigDict], str | None] | None = None,
):
    """Decorator adding `fn(ctx) -> dict[str, float]` to `METRICS` under `name` (see `Metric`)."""
    kinds = (applies_to,) if isinstance(applies_to, str) else tuple(applies_to)

    def add(fn: Callable[[EvalContext], dict[str, float]]):
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        extra = {"missing": missing} if missing is not None else {}
        names = tuple(data_names) if data_names is not None else None
        METRICS[name] = Metric(name, kinds, fn, names, **extra)
        return fn

    return add


def data_kind(cfg: config_dict.ConfigDict) -> str:
    return POINTS if build.is_points(cfg) else VIDEO


def defined_metrics(cfg: config_dict.ConfigDict) -> tuple[str, ...]:
    """Names of the registered metrics defined for this config's data."""
    return tuple(name for name, metric in METRICS.items() if metric.defined_for(cfg))


def applicable_metrics(cfg: config_dict.ConfigDict) -> tuple[str, ...]:
    """Names of the metrics defined for this config's data that it has everything for."""
    return tuple(name for name in defined_metrics(cfg) if METRICS[name].missing(cfg) is None)


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


SHAPES_FEATURES_DIR = "shapes_features"
# Clips per feature-network call of shapes_fd and fvd.
_SHAPES_FD_BATCH = 64
_FVD_BATCH = 16


def shapes_features_dir(cfg: config_dict.ConfigDict, workdir: Path | None) -> Path | None:
    """Where shapes_fd caches its feature network: `eval.shapes_features_dir`, else
    WORKDIR/shapes_features (None without a workdir: the user cache)."""
    configured = cfg.eval.shapes_features_dir
    if configured:
        return Path(configured)
    return None if workdir is None else Path(workdir) / SHAPES_FEATURES_DIR


def _shapes_fd_missing(cfg: config_dict.ConfigDict) -> str | None:
    from gan_jax.metrics.shapes_features import MIN_SIZE  # noqa: PLC0415

    _, height, width, _ = build.sample_shape(cfg)
    if min(height, width) < MIN_SIZE:
        return (
            f"the shapes feature network needs frames of at least {MIN_SIZE}x{MIN_SIZE}, but "
            f"this run makes {height}x{width}; raise data.height and data.width"
        )
    return None


@register(
    "shapes_fd", applies_to=VIDEO, data_names=("bouncing_shapes",), missing=_shapes_fd_missing
)
def _shapes_fd(ctx: EvalContext) -> dict[str, float]:
    from gan_jax.metrics.shapes_fd import ShapesFD  # noqa: PLC0415 (trains a network on first use)

    num = max(ctx.num_samples, 2)

    def real_metric():
        # The network is trained (or loaded from the cache) and the real clips' statistics
        # computed once per context: they do not depend on the generator.
        return ShapesFD.for_data(
            ctx.cfg.data,
            num_real=num,
            cache_dir=shapes_features_dir(ctx.cfg, ctx.workdir),
            batch_size=_SHAPES_FD_BATCH,
            steps=int(ctx.cfg.eval.shapes_features_steps),
        )

    metric = ctx.cached(f"shapes_fd/{num}", real_metric)
    return {"fsd": metric.score(ctx.fake_batches(num))}


def _fvd_missing(cfg: config_dict.ConfigDict) -> str | None:
    weights = cfg.eval.i3d_weights
    if not weights:
        return (
            "FVD needs I3D weights, which cannot be downloaded here: convert the PyTorch I3D "
            "checkpoint with `python -m gan_jax.metrics.i3d_convert i3d.pt i3d.npz`, then pass "
            "--i3d-weights i3d.npz (or set eval.i3d_weights)"
        )
    if not Path(weights).is_file():
        return f"eval.i3d_weights={weights!r} does not exist; pass the .npz of I3D weights"
    from gan_jax.metrics.i3d import FVD_NUM_FRAMES  # noqa: PLC0415

    shape = build.sample_shape(cfg)
    if shape[0] < FVD_NUM_FRAMES or shape[-1] != 3:
        return (
            f"FVD is defined on RGB clips of at least {FVD_NUM_FRAMES} frames, but this run "
            f"makes clips of shape (T, H, W, C) = {shape}"
        )
    return None


@register("fvd", applies_to=VIDEO, missing=_fvd_missing)
def _fvd(ctx: EvalContext) -> dict[str, float]:
    from gan_jax.metrics.fvd import FVDComputer  # noqa: PLC0415
    from gan_jax.metrics.i3d import load_i3d_params  # noqa: PLC0415

    num = ctx.num_samples if ctx.num_samples_given else int(ctx.cfg.eval.fvd_num_samples)

    batch = min(num, _FVD_BATCH)  # no padding of a small count up to a full batch

    def real_metric():
        computer = FVDComputer(load_i3d_params(ctx.cfg.eval.i3d_weights), batch_size=batch)
        computer.add_real(ctx.real_batches(num, batch))
        return computer

    computer = ctx.cached(f"fvd/{num}", real_metric)
    return {"fvd": computer.score(ctx.fake_batches(num)), "num_clips": float(num)}


def run_metrics(names: Sequence[str] | None, ctx: EvalContext) -> dict[str, float]:
    """Computes metrics `names` (None or empty: all that apply) as `{"<metric>/<value>": float}`.

    Raises:
        ConfigError: a name that is unknown, does not apply to the config's data, or lacks
            something in the config (e.g. FVD without I3D weights).
    """
    names = list(names) if names else list(applicable_metrics(ctx.cfg))
    check_metric_names(ctx.cfg, names)
    results = {}
    for name in names:
        for key, value in METRICS[name].compute(ctx).items():
            results[f"{name}/{key}"] = float(value)
    return results


def check_metric_names(cfg: config_dict.ConfigDict, names: Sequence[str]) -> None:
    """Raises `ConfigError` naming the first metric that cannot run for `cfg`, and why."""
    defined = defined_metrics(cfg)
    for name in names:
        if name not in defined:
            raise ConfigError(
                f"metric {name!r} does not apply to data.name={cfg.data.name!r}; allowed: "
                f"{list(defined)} (all registered: {sorted(METRICS)})"
            )
        missing = METRICS[name].missing(cfg)
        if missing is not None:
            raise ConfigError(f"metric {name!r}: {missing}")


def eval_command(
    workdir: str | os.PathLike,
    metrics: Sequence[str] | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    i3d_weights: str | os.PathLike | None = None,
) -> dict[str, float]:
    """The `eval` command: metrics of the latest checkpoint's EMA generator.

    Prints the results as JSON and writes them to WORKDIR/eval/step_XXXXXX.json.

    Args:
        workdir: a training run's directory.
        metrics: names from `METRICS`; None: all that apply to the run's data.
        num_samples: samples per metric (default: the run's `eval.num_samples`, and for FVD
            `eval.fvd_num_samples`).
        seed: seed of the eval noise and real-data order.
        i3d_weights: I3D weights (.npz) for FVD; replaces the run's `eval.i3d_weights`.
    """
    if num_samples is not None and num_samples < 2:
        raise ConfigError(f"--num-samples must be >= 2, got {num_samples}")
    cfg, gan, state, mesh = samples.load_run(workdir)
    if i3d_weights is not None:
        with cfg.unlocked():
            cfg.eval.i3d_weights = str(i3d_weights)
    ctx = EvalContext(
        cfg=cfg,
        gan=gan,
        state=state,
        sampler=samples.make_sampler(gan.g, mesh),
        num_samples=int(num_samples or cfg.eval.num_samples),
        seed=seed,
        workdir=Path(workdir),
        num_samples_given=num_samples is not None,
    )
    step = int(state.step)
    results = {"step": step, **run_metrics(metrics or cfg.eval.metrics, ctx)}
    if jax.process_index() == 0:
        out = Path(workdir) / EVAL_DIR / f"step_{step:06d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(results, indent=2))
    return results
