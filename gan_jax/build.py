"""From a config to the parts of a run: data spec, models, optimisers, objective, step config.

Every part is found by name (`gan_jax.registry`): the model families of `cfg.g.name` and
`cfg.d.name`, the dataset of `cfg.data.name`, the objective of `cfg.objective.name`, the loss of
`cfg.loss.name` and the penalties named in `cfg.penalty`; `cfg.augment` is the augmentation of
D's inputs (`gan_jax.augment`). Nothing here knows a part: a new one is its own file plus a
config. The trainer, `sample` and `eval` all build through here, so they get exactly the same
models from the same config.

`validate` runs each part's own checks on its group and turns their `ValueError`s into
`ConfigError`s that name the key (the CLI's exit status 2).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import optax
from ml_collections import config_dict

from gan_jax import augment, losses, models, optim, train_step
from gan_jax.config import Checker, ConfigError, config_from_dict, fill_missing
from gan_jax.data import DataSpec, data_spec, default_data_config, make_dataset
from gan_jax.data.datasets import dataset as dataset_of
from gan_jax.objectives import OBJECTIVES, Objective
from gan_jax.state import create_state
from gan_jax.train_step import StepConfig

PART_GROUPS = ("g", "d", "data", "objective", "loss", "penalty", "augment", "step", "ema")


@dataclasses.dataclass(frozen=True)
class Run:
    """The static parts of a run (no arrays).

    Attributes:
        g, d: the generator (with `latent_shapes`) and the discriminator.
        g_tx, d_tx: their optimisers.
        objective: what G is conditioned on and what D judges.
        step_cfg: the train step's settings.
        spec: what the data's batches hold.
    """

    g: nn.Module
    d: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    objective: Objective
    step_cfg: StepConfig
    spec: DataSpec

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample of the data: `(T, H, W, C)` for clips, `(2,)` for points."""
        return self.spec.sample_shape

    @property
    def is_video(self) -> bool:
        return self.spec.is_video


def parts_config(
    *,
    model: str = "video_dcgan",
    data: str = "bouncing_shapes",
    objective: str = "unconditional",
    d_model: str | None = None,
) -> config_dict.ConfigDict:
    """The part groups of a run config with every default (see `gan_jax.train.default_config`
    for a whole run).

    Args:
        model: the model family of G (and of D unless `d_model` is given).
        data: the dataset.
        objective: the objective.
        d_model: D's model family, where it differs from G's.
    """
    cfg = config_dict.ConfigDict()
    cfg.seed = 0  # model init, noise, data order
    cfg.steps = 1000
    cfg.batch_size = 32  # global: over all devices and processes
    for net, family in (("g", model), ("d", d_model or model)):
        group = models.net_config(family, net)
        group.update(optim.default_config())
        cfg[net] = group
    cfg.data = default_data_config(data)
    cfg.objective = OBJECTIVES.get(objective).default_config()
    cfg.loss = losses.default_config()
    cfg.penalty = losses.default_penalty_config()
    cfg.augment = augment.default_config()
    cfg.step, cfg.ema = train_step.default_config()
    return cfg


def _as_config_error(where: str, error: Exception) -> ConfigError:
    if isinstance(error, ConfigError):
        return error
    text = str(error)
    return ConfigError(text if where in text else f"{where}: {text}")


def _checked(where: str, fn, *args):
    """`fn(*args)`, with a `ValueError` / `TypeError` of a part as a `ConfigError`."""
    try:
        return fn(*args)
    except (ValueError, TypeError) as e:
        raise _as_config_error(where, e) from None


def _check_groups(cfg: config_dict.ConfigDict) -> None:
    for group in PART_GROUPS:
        if group not in cfg or not isinstance(cfg[group], config_dict.ConfigDict):
            raise ConfigError(
                f"config has no group {group!r}; top-level keys: {', '.join(sorted(cfg))}. "
                "Start from gan_jax.train.default_config() as experiments/configs/*.py do"
            )
    check = Checker(cfg, "")
    check.integer("seed", 0)
    check.integer("steps", 1)
    check.integer("batch_size", 1)


def validate(cfg: config_dict.ConfigDict) -> DataSpec:
    """Checks every part group of `cfg`; returns the data spec it computed on the way.

    Raises:
        ConfigError: naming the key and what is allowed. Device-dependent checks (batch size
            vs. device count) happen in the trainer.
    """
    _check_groups(cfg)
    Checker(cfg.data, "data").string("name")
    data = _checked("data.name", dataset_of, cfg.data)
    _checked("data", data.validate, cfg.data)
    spec = _checked("data", data_spec, cfg.data, int(cfg.batch_size))
    for net in ("g", "d"):
        group = cfg[net]
        name = Checker(group, net).string("name")
        defaults = _checked(f"{net}.name={name!r}", models.net_config, name, net)
        _checked(net, models.validate_net, group, net, spec)
        try:
            Checker(group, net).only_keys([*defaults.keys(), *optim.KEYS])
        except ConfigError as e:
            raise ConfigError(
                f"{e} (the keys of model family {name!r} and of the optimiser; a config made "
                f"for another family: start from default_config(model={name!r}))"
            ) from None
        optim.validate(group, net)
    objective_name = Checker(cfg.objective, "objective").string("name")
    objective = _checked(f"objective.name={objective_name!r}", OBJECTIVES.get, objective_name)
    _checked("objective", objective.validate, cfg.objective, spec)
    _check_label_conditioning(cfg, objective)
    _checked("loss", losses.validate_config, cfg.loss, cfg.penalty)
    augment.validate_config(cfg.augment, spec.is_video)
    _checked("step", train_step.validate_config, cfg.step, cfg.ema)
    if cfg.ema.standing_stats:
        check_standing_stats(cfg, objective.make_objective(cfg.objective, spec))
    if cfg.g.lr_multipliers or cfg.d.lr_multipliers:
        # Multiplier paths name parameters: initialise abstractly (no compute) to check them.
        jax.eval_shape(init_fn(build(cfg, spec)), jax.random.key(0))
    return spec


def check_standing_stats(cfg: config_dict.ConfigDict, objective) -> None:
    """Raises `ConfigError` when `ema.standing_stats` is set for an objective (an instance)
    that conditions G on real data, whose conditions the standing statistics cannot draw."""
    if cfg.ema.get("standing_stats", 0) and getattr(objective, "conditions_from_data", False):
        raise ConfigError(
            f"ema.standing_stats={cfg.ema.standing_stats}: objective.name="
            f"{cfg.objective.name!r} conditions G on real clips, which the standing statistics "
            "do not draw (gan_jax.standing_stats); set ema.standing_stats=0"
        )


def _check_label_conditioning(cfg: config_dict.ConfigDict, objective) -> None:
    """G and D take labels exactly when the objective gives them (`CONDITIONS_ON_LABELS`, see
    `gan_jax.objectives.base`); a family offers labels through its `conditional` key."""
    wants_labels = bool(getattr(objective, "CONDITIONS_ON_LABELS", False))
    objective_name = cfg.objective.name
    for net in ("g", "d"):
        group = cfg[net]
        takes_labels = group.get("conditional")
        if wants_labels and takes_labels is None:
            offering = [
                name for name in models.FAMILIES.names() if "conditional" in _family_keys(name, net)
            ]
            raise ConfigError(
                f"objective.name={objective_name!r} conditions {net.upper()} on labels, but "
                f"{net}.name={group.name!r} takes none; use a family with a {net}.conditional "
                f"key ({', '.join(offering)})"
            )
        if wants_labels and not takes_labels:
            raise ConfigError(
                f"objective.name={objective_name!r} conditions {net.upper()} on labels: set "
                f"{net}.conditional=True"
            )
        if takes_labels and not wants_labels:
            raise ConfigError(
                f"{net}.conditional=True makes {net.upper()} take labels, which objective.name="
                f"{objective_name!r} does not give; use objective.name='class_conditional' or "
                f"{net}.conditional=False"
            )
    if wants_labels and cfg.d.get("classifier") and not cfg.objective.get("d_classifier_weight"):
        raise ConfigError(
            "d.classifier=True gives D a classifier head that only objective.d_classifier_weight "
            "trains, but that weight is 0: the head would stay untrained; set "
            "objective.d_classifier_weight > 0 (e.g. 1) or d.classifier=False"
        )


def _family_keys(name: str, net: str) -> tuple[str, ...]:
    """The model keys of net `net` of family `name` (none where the family lacks that net)."""
    try:
        return tuple(models.net_config(name, net).keys())
    except TypeError:  # a family without this net (e.g. a G-only family): offers nothing
        return ()


def step_config(cfg: config_dict.ConfigDict) -> StepConfig:
    """The train step's settings from `cfg.loss`, `cfg.penalty`, `cfg.augment`, `cfg.step` and
    `cfg.ema`."""
    penalties = {k: float(v) for k, v in cfg.penalty.items() if k != "every" and v > 0}
    return StepConfig(
        loss=cfg.loss.name,
        n_critic=int(cfg.step.n_critic),
        penalties=penalties,
        penalty_every=int(cfg.penalty.every),
        head_weights={k: float(v) for k, v in cfg.loss.head_weights.items()},
        ema_decay=float(cfg.ema.decay),
        ema_half_life=float(cfg.ema.half_life_images),
        ema_rampup=float(cfg.ema.rampup),
        augment=augment.config_from(cfg.augment),
    )


def build(cfg: config_dict.ConfigDict, spec: DataSpec | None = None) -> Run:
    """All static parts of a run. Call `validate(cfg)` first for clear errors.

    Args:
        cfg: the run config.
        spec: the data spec, if known (from `validate`, or saved with the run); else computed.
    """
    if spec is None:
        spec = data_spec(cfg.data, int(cfg.batch_size))
    g, d = models.make_models(cfg.g, cfg.d, spec)
    steps, n_critic = int(cfg.steps), int(cfg.step.n_critic)
    return Run(
        g=g,
        d=d,
        g_tx=optim.make_optimizer(cfg.g, "g", steps),
        d_tx=optim.make_optimizer(cfg.d, "d", steps, n_critic),
        objective=OBJECTIVES.get(cfg.objective.name).make_objective(cfg.objective, spec),
        step_cfg=step_config(cfg),
        spec=spec,
    )


def make_data(
    cfg: config_dict.ConfigDict,
    *,
    batch_size: int,
    seed: int,
    process_index: int,
    process_count: int,
):
    """This process's iterator of batches (every entry the dataset yields).

    Args:
        cfg: the run config (`cfg.data` is used).
        batch_size: rows per batch in this process.
        seed: seed of the data order.
        process_index, process_count: this process's shard.

    Returns:
        An iterator with `get_state()` / `set_state()`.
    """
    return make_dataset(
        cfg.data,
        batch_size=batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
    )


def init_fn(run: Run):
    """`init(key) -> GANState` of the run, its nets initialised on an example batch."""
    example = run.spec.example_batch(2)

    def init(key):
        return create_state(
            key,
            run.g,
            run.d,
            run.g_tx,
            run.d_tx,
            objective=run.objective,
            example_batch=example,
            augment=run.step_cfg.augment,
        )

    return init


def step_fn(run: Run, *, data_sharding=None, axis_name: str | None = None):
    """The run's pure train step (`gan_jax.train_step.make_train_step` of its parts)."""
    return train_step.make_train_step(
        run.g,
        run.d,
        run.g_tx,
        run.d_tx,
        run.step_cfg,
        objective=run.objective,
        data_sharding=data_sharding,
        axis_name=axis_name,
    )


def is_old_config(cfg: config_dict.ConfigDict) -> bool:
    """Whether `cfg` has the layout of runs from before parts were found by name (`g.arch`,
    `step.loss`, `step.r1_gamma`, ...)."""
    return ("g" in cfg and "arch" in cfg.g) or ("step" in cfg and "loss" in cfg.step)


def upgrade_config(cfg: config_dict.ConfigDict) -> config_dict.ConfigDict:
    """The config of a run from an earlier layout, in today's layout.

    A config without the `augment` group (runs from before augmentation) gets it with its
    defaults (off), which trains exactly as those runs did; `ema` keys a run saved before
    them lacks (`standing_stats`) get their defaults (off) too. Runs from before parts were found
    by name are mapped as below. The models' parameters are named as before, so such runs'
    checkpoints restore, sample, evaluate and resume under the upgraded config. Configs of
    today's layout come back as they are (the same object). The mapping: `g.arch`/`d.arch`
    -> `g.name`/`d.name`; `step.loss` -> `loss.name` ("wgan_gp" -> "wasserstein" with
    `penalty.gp = step.gp_weight`); `step.r1_gamma` -> `penalty.r1`; `step.ema_decay` ->
    `ema.decay`; `conv_impl` keys are dropped (the route is chosen per process); every other
    key keeps its value; new keys take their defaults.
    """
    if not is_old_config(cfg):
        has_ema_keys = all(key in cfg.ema for key in train_step.default_config()[1])
        if "augment" in cfg and has_ema_keys:
            return cfg
        upgraded = config_from_dict(cfg.to_dict())
        if "augment" not in upgraded:
            upgraded.augment = augment.default_config()
        fill_missing(upgraded.ema, train_step.default_config()[1])
        return upgraded
    old = cfg.to_dict()
    new = parts_config(model=old["g"]["arch"], data=old["data"]["name"], d_model=old["d"]["arch"])
    for key in ("seed", "steps", "batch_size"):
        new[key] = old[key]
    for net in ("g", "d"):
        for key, value in old[net].items():
            if key in new[net] and key != "name":
                new[net][key] = value
    new.data.update(old["data"])
    step = old["step"]
    new.loss.name = "wasserstein" if step["loss"] == "wgan_gp" else step["loss"]
    if step["loss"] == "wgan_gp":
        new.penalty.gp = float(step["gp_weight"])
    new.penalty.r1 = float(step["r1_gamma"])
    new.step.n_critic = step["n_critic"]
    new.ema.decay = float(step["ema_decay"])
    for group in ("ckpt", "log", "eval"):
        if group in old:
            new[group] = config_dict.ConfigDict(old[group])
    return config_from_dict(new.to_dict())
