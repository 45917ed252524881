"""Batches of 2-D mixture points (ring, grid) as a deterministic, resumable grain pipeline.

`gan_jax.data.points` draws points inside a compiled loop; the trainer instead needs an
iterator with `get_state()`/`set_state()` like `make_dataset`'s. Here element `b` of the stream
is the whole *global* batch `b`, a pure function of `(seed, b)`; process `p` of `P` keeps rows
`[p * n, (p + 1) * n)` of it (`n` = per-process batch). The global batch is therefore the same
for any number of processes, and in the order `jax.make_array_from_process_local_data`
assembles (process 0's rows first).

Batches are `{"points": float32 [n, 2]}`.
"""

from __future__ import annotations

from collections.abc import Mapping

import grain
import numpy as np
from ml_collections import config_dict

from gan_jax.data.datasets import DATASETS
from gan_jax.data.points import mixture
from gan_jax.data.spec import DataSpec

POINT_DATASETS = ("ring", "grid")
DATA_KEY = "points"
# Stream length: far more batches than any run takes; grain needs a finite MapDataset.
_NUM_BATCHES = 2**40


def default_points_config(name: str) -> config_dict.ConfigDict:
    """Every key `make_points_dataset` accepts for mixture `name`, with its default."""
    if name not in POINT_DATASETS:
        raise ValueError(f"data.name = {name!r}; allowed 2-D mixtures: {POINT_DATASETS}")
    cfg = config_dict.ConfigDict()
    cfg.name = name
    cfg.prefetch = 4  # batches made ahead in a background thread
    return cfg


def resolve_points_config(data_cfg: Mapping) -> dict:
    """`data_cfg` over the defaults as a plain dict; rejects unknown keys."""
    data_cfg = data_cfg.to_dict() if isinstance(data_cfg, config_dict.ConfigDict) else data_cfg
    resolved = default_points_config(data_cfg.get("name")).to_dict()
    unknown = sorted(set(data_cfg) - set(resolved))
    if unknown:
        raise ValueError(
            f"data config for {data_cfg['name']!r} has unknown key(s) {unknown}; allowed: "
            f"{sorted(resolved)}"
        )
    resolved.update(data_cfg)
    if int(resolved["prefetch"]) < 0:
        raise ValueError(f"data.prefetch must be >= 0, got {resolved['prefetch']}")
    return resolved


class PointBatches:
    """Random-access source: item `b` is this process's rows of global batch `b`.

    Args:
        name: "ring" or "grid".
        global_batch_size: rows of a global batch (all processes).
        seed: seed of the whole stream.
        process_index, process_count: which rows this process keeps.
    """

    def __init__(
        self, name: str, global_batch_size: int, seed: int, process_index: int, process_count: int
    ):
        if global_batch_size % process_count:
            raise ValueError(
                f"global batch {global_batch_size} is not divisible by {process_count} processes"
            )
        self.centres, self.std = mixture(name)
        self.global_batch_size = global_batch_size
        self.seed = int(seed)
        self.rows_per_process = global_batch_size // process_count
        self.first_row = process_index * self.rows_per_process

    def __len__(self) -> int:
        return _NUM_BATCHES

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, int(index)])
        # Draw the whole global batch, so every process sees the same one whatever the split.
        modes = rng.integers(0, len(self.centres), self.global_batch_size)
        noise = rng.standard_normal((self.global_batch_size, 2))
        points = self.centres[modes] + self.std * noise
        rows = slice(self.first_row, self.first_row + self.rows_per_process)
        return {DATA_KEY: points[rows].astype(np.float32)}


def make_points_dataset(
    data_cfg: Mapping,
    *,
    batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
) -> grain.DatasetIterator:
    """Iterator of this process's batches `{"points": float32 [batch_size, 2]}`.

    Args:
        data_cfg: `name` ("ring" | "grid") and the keys of `default_points_config`.
        batch_size: rows per batch in this process (global batch = batch_size * process_count).
        seed: seed of the stream.
        process_index, process_count: this process's shard.

    Returns:
        A `grain.DatasetIterator` with `get_state()` / `set_state()`.
    """
    cfg = resolve_points_config(data_cfg)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} must lie in [0, {process_count})")
    source = PointBatches(
        cfg["name"], batch_size * process_count, seed, process_index, process_count
    )
    dataset = grain.MapDataset.source(source)
    prefetch = int(cfg["prefetch"])
    options = grain.ReadOptions(num_threads=1 if prefetch else 0, prefetch_buffer_size=prefetch)
    return iter(dataset.to_iter_dataset(options))


class _Mixture:
    """The datasets "ring" and "grid" (gan_jax.data.datasets): config, spec, batches."""

    def __init__(self, name: str):
        self.name = name

    def default_config(self) -> config_dict.ConfigDict:
        return default_points_config(self.name)

    def validate(self, data_cfg) -> None:
        resolve_points_config(data_cfg)

    def spec(self, data_cfg, batch_size: int) -> DataSpec:
        return DataSpec(
            name=self.name,
            sample_key=DATA_KEY,
            fields=((DATA_KEY, (2,), "float32"),),
            batch_size=batch_size,
        )

    def make_dataset(self, data_cfg, **kwargs) -> grain.DatasetIterator:
        return make_points_dataset(data_cfg, **kwargs)


for _name in POINT_DATASETS:
    DATASETS.register(_name, _Mixture(_name))
