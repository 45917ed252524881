"""Many seeds of a 2-D points run as one compiled program (the mode-coverage table's runner).

The same config as `gan-jax train` (`experiments/configs/ring.py`, `toy_best.py`, ...) builds
the same models, optimisers, objective and train step through `gan_jax.build`; only the loop
differs. The data are drawn inside a compiled `lax.scan` (`gan_jax.data.points.sample_points`),
and `jax.vmap` over the seeds' keys trains several seeds at once: on a small CPU that is several
times faster than the trainer seed after seed. The trainer reads its points from a grain
pipeline instead, so the two loops see different (equally distributed) batches.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from gan_jax import build, config
from gan_jax.data.points import sample_points
from gan_jax.metrics.mode_coverage import NUM_EVAL_SAMPLES, mode_coverage
from gan_jax.models import draw_latents
from gan_jax.state import GANState


def make_run(cfg: config_dict.ConfigDict):
    """The whole run of a points config as a pure function of one seed's key.

    Returns:
        `run(root_key) -> (state, last_metrics, samples)`: the final `GANState`, the last step's
        metrics (float32 scalars) and `[NUM_EVAL_SAMPLES, 2]` samples of the EMA generator.

    Raises:
        ConfigError: the config is not a valid points run.
    """
    spec = build.validate(cfg)
    if spec.sample_key != "points":
        raise config.ConfigError(
            f"data.name={cfg.data.name!r}: the multi-seed runner draws 2-D points (ring, grid)"
        )
    run = build.build(cfg, spec)
    step_fn = build.step_fn(run)
    init = build.init_fn(run)
    steps, batch_size, name = int(cfg.steps), int(cfg.batch_size), cfg.data.name

    def run_fn(root_key: jax.Array):
        init_key, data_key, step_key, eval_key = jax.random.split(root_key, 4)
        state = init(init_key)

        def body(state, i):
            real = sample_points(jax.random.fold_in(data_key, i), batch_size, name)
            return step_fn(state, {spec.sample_key: real}, step_key)

        state, metrics = jax.lax.scan(body, state, jnp.arange(steps))
        latents = draw_latents(
            eval_key,
            run.g.latent_shapes,
            lambda k, shape: jax.random.normal(k, (NUM_EVAL_SAMPLES, *shape)),
        )
        variables = {"params": state.g_ema, **state.g_stats}
        samples = run.g.apply(variables, latents, None, train=False)
        return state, jax.tree.map(lambda m: m[-1], metrics), samples

    return run_fn


@functools.lru_cache(maxsize=8)
def _compiled_run(cfg_json: str, over_seeds: bool):
    """`jit` of `make_run` (vmapped over seeds or not), cached so seeds share a compile."""
    run = make_run(config.config_from_dict(json.loads(cfg_json)))
    return jax.jit(jax.vmap(run) if over_seeds else run)


def _evaluate(samples: np.ndarray, last_metrics: dict, dataset: str) -> dict[str, float]:
    result = mode_coverage(samples, dataset)
    result.update({k: float(v) for k, v in last_metrics.items()})
    return result


def train_seed(cfg: config_dict.ConfigDict, seed: int) -> tuple[GANState, dict[str, float]]:
    """Trains a points config from `seed` (in place of `cfg.seed`) and evaluates it.

    Returns:
        The final state and `mode_coverage` of `NUM_EVAL_SAMPLES` samples from the EMA
        generator (plus the last step's metrics).
    """
    state, last_metrics, samples = _compiled_run(config.to_json(cfg), False)(jax.random.key(seed))
    return state, _evaluate(np.asarray(samples), last_metrics, cfg.data.name)


def train_seeds(
    cfg: config_dict.ConfigDict, seeds: Sequence[int]
) -> tuple[GANState, list[dict[str, float]]]:
    """Trains one run per seed in one compiled program (`vmap` over the seeds' keys).

    Seed `s` draws the same numbers as `train_seed(cfg, s)`; results agree up to float rounding
    (batched and single matrix products may sum in a different order).

    Returns:
        The final states stacked on a leading `[S]` axis (S = len(seeds)) and one `train_seed`
        result dict per seed, in the order of `seeds`.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("train_seeds: pass at least one seed.")
    if any(not 0 <= s < 2**32 for s in seeds):
        raise ValueError(f"train_seeds: seeds {seeds} must lie in [0, 2**32).")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"train_seeds: seeds {seeds} repeat; a repeated seed is a copy.")
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    states, last_metrics, samples = _compiled_run(config.to_json(cfg), True)(keys)
    samples = np.asarray(samples)
    results = [
        _evaluate(samples[i], jax.tree.map(lambda m, i=i: m[i], last_metrics), cfg.data.name)
        for i in range(len(seeds))
    ]
    return states, results
