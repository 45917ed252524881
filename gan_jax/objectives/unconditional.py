"""Unconditional generation: G makes samples from noise alone, D judges samples alone.

Config: `cfg.objective.name = "unconditional"`; no other keys. The real samples are the batch
entry the dataset declares as its samples (`spec.sample_key`: "video" for clips `[N, T, H, W,
C]`, "points" for `[N, 2]`); other entries (labels) are left unused.
"""

from __future__ import annotations

import dataclasses

import jax
from ml_collections import config_dict

from gan_jax.data.spec import DataSpec


@dataclasses.dataclass(frozen=True)
class Unconditional:
    """The objective of an unconditional GAN (see `gan_jax.objectives.base`).

    Attributes:
        data_key: the batch entry that holds the real samples.
    """

    data_key: str = "video"
    conditions_from_data = False  # nothing to condition on

    def split(self, batch: dict[str, jax.Array]) -> tuple[None, jax.Array]:
        if self.data_key not in batch:
            raise KeyError(
                f"batch has no {self.data_key!r} entry (keys: {sorted(batch)}); build the "
                f"objective with the entry that holds the real samples, e.g. "
                f"Unconditional(data_key={sorted(batch)[0]!r})"
            )
        return None, batch[self.data_key]

    def g_inputs(self, cond: None) -> None:
        return None

    def d_inputs(self, samples: jax.Array, cond: None) -> tuple[jax.Array, None]:
        return samples, None

    def g_terms(self, fake: jax.Array, real: jax.Array, cond: None) -> dict[str, jax.Array]:
        return {}

    def sample_cond(self, key: jax.Array, num: int) -> None:
        return None

    def clip(self, samples: jax.Array, cond: None) -> jax.Array:
        return samples


def default_config() -> config_dict.ConfigDict:
    return config_dict.ConfigDict({"name": "unconditional"})


def validate(objective_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    unknown = sorted(set(objective_cfg.keys()) - {"name"})
    if unknown:
        raise ValueError(f"objective.{unknown[0]}: the unconditional objective has no keys")


def make_objective(objective_cfg: config_dict.ConfigDict, spec: DataSpec) -> Unconditional:
    return Unconditional(data_key=spec.sample_key)
