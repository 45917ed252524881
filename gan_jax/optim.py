"""Optimisers from a net's config group: Adam or SGD, learning-rate schedules, multipliers.

The keys below sit in `cfg.g` and `cfg.d` next to the model's own keys, so that
`--config.d.lr=1e-4` reads as it should. Schedules count the net's own updates: D makes
`step.n_critic` updates per train step, so its schedule spans `steps * n_critic` updates and its
warm-up `warmup_steps * n_critic`.

Keys:
  optimizer: "adam" | "sgd".
  lr: the peak learning rate.
  b1, b2: Adam's betas. momentum: SGD's (0 = plain SGD).
  schedule: "constant" | "linear" | "cosine": held at `lr` until `decay_start` (a fraction of the
    run), then down to `final_lr_scale * lr` at the last step, linearly or along a half cosine.
  warmup_steps: train steps of linear warm-up from 0 to `lr` at the start (0 = none).
  lr_multipliers: parameter path -> factor, e.g. `{"video": 0.1}` trains every parameter under
    `params["video"]` at a tenth of the rate (`optax.multi_transform`); a path is `/`-separated
    module names, and the longest matching path wins.
"""

from __future__ import annotations

import jax
import optax
from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine")
_DEFAULT_LABEL = "__default__"


def default_config(lr: float = 2e-4) -> config_dict.ConfigDict:
    """The optimiser keys of a net group, with Adam(lr, 0.5, 0.999) at a constant rate."""
    cfg = config_dict.ConfigDict()
    cfg.optimizer = "adam"
    cfg.lr = lr
    cfg.b1 = 0.5
    cfg.b2 = 0.999
    cfg.momentum = 0.0
    cfg.schedule = "constant"
    cfg.decay_start = 0.0
    cfg.final_lr_scale = 0.0
    cfg.warmup_steps = 0
    cfg.lr_multipliers = config_dict.ConfigDict()
    return cfg


KEYS = tuple(default_config().keys())


def validate(net_cfg: config_dict.ConfigDict, prefix: str) -> None:
    """Checks the optimiser keys of group `prefix` ("g" or "d"); raises `ConfigError`."""
    check = Checker(net_cfg, prefix)
    check.one_of("optimizer", OPTIMIZERS)
    check.number("lr", 0.0, low_open=True)
    for name in ("b1", "b2", "momentum"):
        check.number(name, 0.0, 1.0, high_open=True)
    check.one_of("schedule", SCHEDULES)
    check.number("decay_start", 0.0, 1.0)
    check.number("final_lr_scale", 0.0, 1.0)
    check.integer("warmup_steps", 0)
    multipliers = check.group_of("lr_multipliers")
    for name in multipliers.group.keys():
        multipliers.number(name, 0.0)


def learning_rate(
    net_cfg: config_dict.ConfigDict, total_steps: int, updates_per_step: int = 1
) -> float | optax.Schedule:
    """The learning rate of `net_cfg` over a run of `total_steps` train steps.

    A plain float for a constant rate without warm-up, so that the optimiser state has no
    schedule counter (and runs from before schedules existed restore unchanged).
    """
    lr = float(net_cfg.lr)
    total = total_steps * updates_per_step
    warmup = min(int(net_cfg.warmup_steps) * updates_per_step, total)
    if net_cfg.schedule == "constant" and warmup == 0:
        return lr
    schedules, boundaries = [], []
    if warmup:
        schedules.append(optax.linear_schedule(0.0, lr, warmup))
        boundaries.append(warmup)
    decay_begin = max(warmup, int(round(float(net_cfg.decay_start) * total)))
    if net_cfg.schedule == "constant" or decay_begin >= total:
        schedules.append(optax.constant_schedule(lr))
    else:
        if decay_begin > warmup:
            schedules.append(optax.constant_schedule(lr))
            boundaries.append(decay_begin)
        final = lr * float(net_cfg.final_lr_scale)
        if net_cfg.schedule == "linear":
            schedules.append(optax.linear_schedule(lr, final, total - decay_begin))
        else:
            alpha = float(net_cfg.final_lr_scale)
            schedules.append(optax.cosine_decay_schedule(lr, total - decay_begin, alpha=alpha))
    if len(schedules) == 1:
        return schedules[0]
    return optax.join_schedules(schedules, boundaries)


def _base(net_cfg: config_dict.ConfigDict, lr) -> optax.GradientTransformation:
    if net_cfg.optimizer == "adam":
        return optax.adam(lr, b1=float(net_cfg.b1), b2=float(net_cfg.b2))
    if net_cfg.optimizer == "sgd":
        return optax.sgd(lr, momentum=float(net_cfg.momentum) or None)
    raise ConfigError(f"optimizer {net_cfg.optimizer!r} is not one of {OPTIMIZERS}")


def _scaled(lr, factor: float):
    if callable(lr):
        return lambda count: lr(count) * factor
    return lr * factor


def param_labels(multipliers: dict[str, float], where: str):
    """`labels(params)`: each leaf's longest matching multiplier path, else a default label.

    Raises (when called):
        ConfigError: a multiplier path matches no parameter (naming the top-level names).
    """
    paths = sorted(multipliers, key=len, reverse=True)

    def labels(params):
        used = set()

        def label(path, _):
            text = "/".join(str(getattr(p, "key", getattr(p, "name", p))) for p in path)
            for prefix in paths:
                if text == prefix or text.startswith(prefix + "/"):
                    used.add(prefix)
                    return prefix
            return _DEFAULT_LABEL

        out = jax.tree_util.tree_map_with_path(label, params)
        unused = sorted(set(paths) - used)
        if unused:
            top = sorted(params) if isinstance(params, dict) else []
            raise ConfigError(
                f"{where}.lr_multipliers: {unused} match no parameter; paths are '/'-separated "
                f"module names starting with one of {top}"
            )
        return out

    return labels


def make_optimizer(
    net_cfg: config_dict.ConfigDict, where: str, total_steps: int, updates_per_step: int = 1
) -> optax.GradientTransformation:
    """The optimiser a net group describes (see the module docstring).

    Args:
        net_cfg: `cfg.g` or `cfg.d`.
        where: its name in messages ("g" or "d").
        total_steps: train steps of the run (`cfg.steps`).
        updates_per_step: this net's updates per train step (D: `step.n_critic`).
    """
    lr = learning_rate(net_cfg, total_steps, updates_per_step)
    multipliers = {name: float(v) for name, v in net_cfg.lr_multipliers.items()}
    if not multipliers:
        return _base(net_cfg, lr)
    transforms = {_DEFAULT_LABEL: _base(net_cfg, lr)}
    for name, factor in multipliers.items():
        transforms[name] = _base(net_cfg, _scaled(lr, factor))
    return optax.multi_transform(transforms, param_labels(multipliers, where))
