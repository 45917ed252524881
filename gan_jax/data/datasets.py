"""Datasets found by name (`cfg.data.name`), and the calls every dataset answers.

A dataset is one module (`gan_jax/data/<name>.py` or a package, a module given by path, or an
object registered with `DATASETS.register`) that defines:

* `default_config() -> ConfigDict`: every key of its `cfg.data` group, with `name`;
* `validate(data_cfg)`: raises `ValueError` naming the key (`data.height`);
* `spec(data_cfg, batch_size) -> DataSpec`: what its batches hold (`gan_jax.data.spec`);
* `make_dataset(data_cfg, *, batch_size, seed, process_index, process_count)`: an iterator of
  this process's batches with `get_state()` / `set_state()` (resumable), a dict of arrays
  `[batch_size, ...]` per batch.
"""

from __future__ import annotations

from ml_collections import config_dict

from gan_jax.data.spec import DataSpec
from gan_jax.registry import Registry, require

_FUNCTIONS = ("default_config", "validate", "spec", "make_dataset")


def _check(name: str, part) -> None:
    require("dataset", name, part, _FUNCTIONS)


DATASETS = Registry(
    "dataset",
    "gan_jax.data",
    None,
    _check,
    is_part=lambda module: all(callable(getattr(module, f, None)) for f in _FUNCTIONS),
)


def _name(data_cfg) -> str:
    name = data_cfg.get("name") if hasattr(data_cfg, "get") else None
    if not isinstance(name, str):
        raise ValueError(f"data config has no name; known datasets: {DATASETS.names()}")
    return name


def dataset(data_cfg):
    """The dataset module that `data_cfg["name"]` names."""
    return DATASETS.get(_name(data_cfg))


def default_data_config(name: str) -> config_dict.ConfigDict:
    """Every key of dataset `name`'s `cfg.data` group, with its default."""
    return DATASETS.get(name).default_config()


def data_spec(data_cfg, batch_size: int) -> DataSpec:
    """What the batches of `data_cfg` hold, read in global batches of `batch_size`."""
    return dataset(data_cfg).spec(data_cfg, batch_size)
