"""The `loss` and `penalty` groups of a run config: defaults and validation.

`loss.name` names the adversarial loss, `loss.head_weights` weights D's heads (`{"video": 1.0,
"image": 0.5}`; heads left out weigh 1). Every key of `penalty` but `every` is a penalty name
with its weight (0 = off): `penalty.r1 = 1.0` is R1 with gamma 1. `penalty.every = k` computes
the penalties on every k-th D update only, weighted k times (lazy regularisation).
"""

from __future__ import annotations

from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError
from gan_jax.losses.base import LOSSES, PENALTIES


def default_config() -> config_dict.ConfigDict:
    return config_dict.ConfigDict({"name": "nonsaturating", "head_weights": {}})


def default_penalty_config() -> config_dict.ConfigDict:
    return config_dict.ConfigDict({"r1": 0.0, "r2": 0.0, "gp": 0.0, "every": 1})


def validate_config(loss_cfg: config_dict.ConfigDict, penalty_cfg: config_dict.ConfigDict) -> None:
    """Raises `ConfigError` naming the first bad key of `loss` or `penalty`."""
    check = Checker(loss_cfg, "loss")
    check.only_keys(("name", "head_weights"))
    name = check.string("name")
    try:
        LOSSES.get(name)
    except ValueError as e:
        raise ConfigError(f"loss.name={name!r}: {e}") from None
    weights = check.group_of("head_weights")
    for head in weights.group.keys():
        weights.number(head, 0.0)
    penalties = Checker(penalty_cfg, "penalty")
    penalties.integer("every", 1)
    for key in sorted(penalty_cfg.keys()):
        if key == "every":
            continue
        try:
            PENALTIES.get(key)
        except ValueError as e:
            raise ConfigError(f"penalty.{key}: {e}") from None
        penalties.number(key, 0.0)
