"""Metrics found by name (`--metric NAME`, `eval.metrics`), and which of them apply to a run.

A metric is one module of this package (or any module given by path, or a `register`
call) holding `METRIC = Metric(...)`: a function of an evaluation context returning a flat
dict of floats, and the data it is defined for. The context (`gan_jax.evaluate.EvalContext`)
gives `ctx.fake(num)` / `ctx.fake_batches(num)` (clips of the EMA generator), `ctx.real(num)` /
`ctx.real_batches(num, batch)` / `ctx.data_batches(num, batch)` (real data), `ctx.cfg`,
`ctx.run` (models, objective, data spec), `ctx.cached(name, make)` and `ctx.workdir`::

    def psnr(ctx) -> dict[str, float]:
        fake, real = ctx.fake(), ctx.real()      # [N, T, H, W, C] in [-1, 1]
        return {"psnr": ...}

    METRIC = Metric("psnr", applies_to=(VIDEO,), compute=psnr)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ml_collections import config_dict

from gan_jax.config import ConfigError
from gan_jax.data.spec import DataSpec
from gan_jax.registry import Registry, require

POINTS = "points"
VIDEO = "video"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric.

    Attributes:
        name: its name (`--metric NAME`, `eval.metrics`).
        applies_to: data kinds (POINTS, VIDEO) it is defined for.
        compute: `fn(ctx) -> dict[str, float]`.
        data_names: `data.name`s it is defined for; None = every dataset of those kinds.
        missing: `fn(cfg, spec) -> str | None`, what the config or data lack for this metric
            (e.g. a weights file), or None. A metric with something missing is left out of
            "all that apply" and is an error when asked for by name.
        order: metrics run in this order (then by name): those that hold all generated
            samples in memory first, so that later ones reuse them instead of drawing again.
        by_name_only: left out of "all that apply"; runs only when named (FVD: thousands of
            clips through I3D take minutes on a GPU and hours on a CPU, too long to start
            unasked).
    """

    name: str
    applies_to: tuple[str, ...]
    compute: Callable[[Any], dict[str, float]]
    data_names: tuple[str, ...] | None = None
    missing: Callable[[config_dict.ConfigDict, DataSpec], str | None] = lambda cfg, spec: None
    order: int = 100
    by_name_only: bool = False

    def defined_for(self, spec: DataSpec) -> bool:
        if data_kind(spec) not in self.applies_to:
            return False
        return self.data_names is None or spec.name in self.data_names


def _check(name: str, part) -> None:
    require("metric", name, part, ("name", "applies_to", "compute", "defined_for", "missing"))


METRICS: Registry[Metric] = Registry("metric", "gan_jax.metrics", "METRIC", _check)


def register(
    name: str,
    applies_to: str | Sequence[str],
    *,
    data_names: Sequence[str] | None = None,
    missing: Callable[[config_dict.ConfigDict, DataSpec], str | None] | None = None,
    order: int = 100,
):
    """Decorator registering `fn(ctx) -> dict[str, float]` as the metric `name`."""
    kinds = (applies_to,) if isinstance(applies_to, str) else tuple(applies_to)

    def add(fn):
        extra = {"missing": missing} if missing is not None else {}
        names = tuple(data_names) if data_names is not None else None
        METRICS.register(name, Metric(name, kinds, fn, names, order=order, **extra))
        return fn

    return add


def data_kind(spec: DataSpec) -> str:
    return VIDEO if spec.is_video else POINTS


def defined_metrics(spec: DataSpec) -> tuple[str, ...]:
    """Names of the metrics defined for this data, in the order they run."""
    metrics = [METRICS.get(name) for name in METRICS.names()]
    chosen = [m for m in metrics if m.defined_for(spec)]
    return tuple(m.name for m in sorted(chosen, key=lambda m: (m.order, m.name)))


def applicable_metrics(cfg: config_dict.ConfigDict, spec: DataSpec) -> tuple[str, ...]:
    """Names of the metrics defined for this data that the config has everything for, less
    those that run only when named."""
    metrics = [METRICS.get(name) for name in defined_metrics(spec)]
    return tuple(m.name for m in metrics if not m.by_name_only and m.missing(cfg, spec) is None)


def check_metric_names(cfg: config_dict.ConfigDict, spec: DataSpec, names: Sequence[str]) -> None:
    """Raises `ConfigError` naming the first metric that cannot run for `cfg`, and why."""
    defined = defined_metrics(spec)
    for name in names:
        try:
            metric = METRICS.get(name)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if not metric.defined_for(spec):
            raise ConfigError(
                f"metric {name!r} does not apply to data.name={spec.name!r}; allowed: "
                f"{list(defined)} (all known: {METRICS.names()})"
            )
        missing = metric.missing(cfg, spec)
        if missing is not None:
            raise ConfigError(f"metric {name!r}: {missing}")
