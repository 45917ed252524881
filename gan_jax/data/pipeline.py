"""The deterministic input pipeline: shuffled, sharded, batched clips on grain.

``make_dataset(data_cfg, batch_size=..., seed=...)`` (any dataset, by ``data_cfg["name"]``)
returns an iterator of batches; for clip datasets (bouncing_shapes, video_folder) it is a
``grain.DatasetIterator`` of host-local batches
``{"video": float32 [N, T, H, W, C] in [-1, 1], "label": int32 [N]}`` (no ``label`` for an
unlabelled video folder), ``N = batch_size`` per process. Its ``get_state()`` is
a JSON-serialisable dict; ``set_state(state)`` on a fresh iterator from the same config and seed
continues with exactly the batches an uninterrupted run would have seen.

Order of operations (grain ``MapDataset``)::

    range(len(source)) -> repeat(num_epochs) -> load the example at each stream position
      -> [process_index::process_count] -> batch(drop_remainder) -> threads / worker processes

Stream position ``p`` holds example ``order_e[p % n]`` of epoch ``e = p // n``, where ``order_e``
is a permutation of the ``n`` examples drawn from ``(seed, e)``: a global shuffle, redone every
epoch (see ``_LoadExample`` for why not grain's ``shuffle``). Sharding takes every
``process_count``-th element of that stream, so shards are disjoint, together cover every epoch,
and every process gets the same number of batches. A clip's random choices (clip start, crop,
flip) come from ``(seed, epoch, source index)`` and never from the worker layout, so
``num_workers`` and ``num_threads`` change speed only, not content.

The returned iterator (``_Batches``) wraps grain's for two things grain leaves to its caller:

* Errors: a `DataError` raised while loading (a damaged video under ``decode_errors="raise"``)
  reaches the caller of ``next`` as a `DataError` with its one-line message, from worker
  processes too (grain pickles a worker's exception, which keeps its type, and adds a note about
  its traceback filtering, which is dropped); a `VideoDecodeError` from a source that raises the
  reader's error becomes a `DataError`.
* Shared memory: with ``num_workers > 0`` every array of a batch arrives in a POSIX shared-memory
  block that grain unlinks only when the array is garbage-collected, through a thread pool.
  Arrays still alive at interpreter exit (the last batch, real clips kept by evaluation) are
  never collected in time, and Python's resource tracker then reports "leaked shared_memory
  objects". ``_Batches`` unlinks each block's name as soon as the batch arrives: the mapping
  stays valid until the array is freed, and nothing is left to leak whenever that happens.

``data_cfg`` keys (defaults from ``default_data_config(name)``):

Common:
  name: "bouncing_shapes" or "video_folder".
  num_frames: T. height: H. width: W. channels: 3 (RGB) or 1 (grey).
  num_workers: worker processes for loading (0 = in this process).
  num_threads: loading threads per process (decoding releases the GIL).
  prefetch: batches buffered ahead, per worker process (or in this process when num_workers=0).
  num_epochs: passes over the data, None = repeat forever.
  shuffle: shuffle the order (False: source order; for evaluation).

bouncing_shapes (see ``gan_jax.data.bouncing_shapes.BouncingShapes``):
  num_objects: (min, max) objects per clip, <= 8. size_range: (min, max) object size in pixels.
  speed_range: (min, max) pixels per frame. shapes: subset of ("square", "disc").
  antialias: blend edges. length: examples per epoch. dataset_seed: which clips exist (the
  ``seed`` argument only orders them).

video_folder (see ``gan_jax.data.video_folder``):
  root: the folder (required). frame_stride: take every n-th frame. target_fps: resample to
  this rate instead (None = use frame_stride). clip_start: "random" | "first" | "centre".
  crop: "random" | "centre". resize_short_side: short side before cropping (None = just cover
  H x W). random_flip: flip left-right with probability 1/2. labels: "auto" (class folders) |
  "none". too_short: "raise" | "skip" | "pad". decode_errors: "skip" (default: a damaged file
  is logged once and replaced, deterministically) | "raise" (it stops the run, DataError).
  cache_dir: index and clip cache (None = ~/.cache/gan_jax). clip_cache: keep decoded, resized
  videos on disk so later epochs decode nothing. extensions: file endings to include.
  index_threads: threads probing files when the index is built. time_range: (start, end)
  fractions of each video that clips come from, e.g. (0.0, 0.8) for training and (0.8, 1.0)
  held out (ranges that meet share no frame).
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Mapping
from typing import Any

import grain
import numpy as np
from absl import flags
from grain.multiprocessing import SharedMemoryArray
from ml_collections import config_dict

from gan_jax.data.datasets import DATASETS, dataset, default_data_config
from gan_jax.data.spec import DataSpec
from gan_jax.errors import USER_ERRORS, DataError
from gan_jax.io import VideoDecodeError

logger = logging.getLogger(__name__)

# Keys the pipeline itself reads; everything else in a config goes to the source.
_PIPELINE_KEYS = ("name", "num_workers", "num_threads", "prefetch", "num_epochs", "shuffle")
# Batches carry only what the trainer consumes; ground truth stays available from the source.
_BATCH_KEYS = ("video", "label")
# Longest wait, in seconds, for grain to unlink the shared memory of dropped batches on close.
_DELETION_WAIT_S = 10.0
__all__ = ["DATASETS", "default_data_config", "make_dataset", "make_source"]


def clip_config(name: str) -> config_dict.ConfigDict:
    """The keys every clip dataset has (clip shape and pipeline), with defaults."""
    cfg = config_dict.ConfigDict()
    cfg.name = name
    cfg.num_frames = 16
    cfg.height = 64
    cfg.width = 64
    cfg.channels = 3
    cfg.num_workers = 0
    cfg.num_threads = 2
    cfg.prefetch = 2
    cfg.num_epochs = config_dict.placeholder(int)
    cfg.shuffle = True
    return cfg


def clip_spec(resolved: Mapping, batch_size: int, num_classes: int | None) -> DataSpec:
    """The `DataSpec` of a clip dataset: `video` `[T, H, W, C]`, and `label` when labelled."""
    shape = tuple(int(resolved[k]) for k in ("num_frames", "height", "width", "channels"))
    fields = [("video", shape, "float32")]
    if num_classes is not None:
        fields.append(("label", (), "int32"))
    return DataSpec(
        name=resolved["name"],
        sample_key="video",
        fields=tuple(fields),
        num_classes=num_classes,
        batch_size=batch_size,
    )


def resolve_data_config(data_cfg: Mapping) -> dict:
    """``data_cfg`` over the defaults of its dataset, as a plain dict; rejects unknown keys
    and checks the keys every clip dataset has."""
    data_cfg = data_cfg.to_dict() if isinstance(data_cfg, config_dict.ConfigDict) else data_cfg
    if "name" not in data_cfg:
        raise ValueError(f"data config has no 'name'; known datasets: {DATASETS.names()}")
    resolved = default_data_config(data_cfg["name"]).to_dict()
    unknown = sorted(set(data_cfg) - set(resolved))
    if unknown:
        raise ValueError(
            f"data config for {data_cfg['name']!r} has unknown key(s) {unknown}; allowed: "
            f"{sorted(resolved)}"
        )
    resolved.update(data_cfg)
    for key in ("num_frames", "height", "width"):
        if int(resolved[key]) < 1:
            raise ValueError(f"data.{key} must be >= 1, got {resolved[key]}")
    if resolved["channels"] not in (1, 3):
        raise ValueError(f"data.channels must be 1 (grey) or 3 (RGB), got {resolved['channels']}")
    for key in ("num_workers", "num_threads", "prefetch"):
        if int(resolved[key]) < 0:
            raise ValueError(f"data.{key} must be >= 0, got {resolved[key]}")
    if resolved["num_epochs"] is not None and resolved["num_epochs"] < 1:
        raise ValueError(f"data.num_epochs must be >= 1 or None, got {resolved['num_epochs']}")
    return resolved


def source_keys(resolved: Mapping) -> dict:
    """The keys of a resolved clip config that its source reads (all but the pipeline's)."""
    return {k: v for k, v in resolved.items() if k not in _PIPELINE_KEYS}


def make_source(data_cfg: Mapping, *, seed: int = 0):
    """The random-access source of a clip dataset (see the module docstring for keys).

    Args:
      data_cfg: dataset config; missing keys take their defaults.
      seed: seed of per-clip random choices (video_folder); bouncing_shapes content is set by
        ``dataset_seed`` instead.

    Returns:
      ``BouncingShapes``, ``VideoFolder``, or the source of another clip dataset.
    """
    return dataset(data_cfg).make_source(resolve_data_config(data_cfg), seed=seed)


class _LoadExample:
    """Stream position -> ``{"video", "label"?}`` of the example there; picklable for workers.

    Position ``p`` is example ``p % n`` of epoch ``p // n`` in shuffled order. The order is a
    permutation drawn per epoch from ``(shuffle_seed, epoch)``; grain's ``shuffle`` is not used
    because its index_shuffle costs about 40 ms / n per element (10 ms each for n = 4, 3 ms for
    n = 20), which would dominate on small folders.
    """

    def __init__(self, source, shuffle_seed: int | None):
        self.source = source
        self.length = len(source)
        self.shuffle_seed = shuffle_seed
        # epoch -> permutation; a couple of epochs (threads may straddle a boundary), per process.
        self._orders: dict[int, np.ndarray] = {}

    def _order(self, epoch: int) -> np.ndarray:
        order = self._orders.get(epoch)
        if order is None:
            rng = np.random.default_rng([self.shuffle_seed, epoch])
            order = rng.permutation(self.length)
            # Racing threads may both compute it; the result is the same either way.
            self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
            self._orders[epoch] = order
        return order

    def __getstate__(self):
        return {**self.__dict__, "_orders": {}}  # Workers draw their own permutations.

    def __call__(self, position: int, unused_index: int) -> dict[str, np.ndarray]:
        epoch, offset = divmod(int(position), self.length)
        index = offset if self.shuffle_seed is None else int(self._order(epoch)[offset])
        load = getattr(self.source, "load", None)
        example = load(index, epoch) if load else self.source[index]
        return {key: example[key] for key in _BATCH_KEYS if key in example}


def _release_shared_memory(batch: Any) -> Any:
    """Unlinks the shared-memory name of every array of ``batch`` that grain made for it.

    A ``SharedMemoryArray`` from a worker process is marked to unlink its block when it is
    garbage-collected; grain does that on a thread pool, so an array that lives until interpreter
    exit leaks its block (and the resource tracker warns). Unlinking now removes only the name:
    the mapping, and so the array, stays valid until the array is freed.
    """
    if isinstance(batch, Mapping):
        for value in batch.values():
            _release_shared_memory(value)
    elif isinstance(batch, SharedMemoryArray) and getattr(batch, "_unlink_on_del", False):
        # grain has no public way to take the unlink over; clearing its flag keeps its deleter
        # from unlinking the name a second time (which would fail in its thread pool).
        batch._unlink_on_del = False
        batch.shm.unlink()
    return batch


def _wait_for_shared_memory_deletions() -> None:
    """Returns once grain's deletion thread has unlinked every block queued so far.

    grain queues the unlinking of a dropped ``SharedMemoryArray`` on a one-thread pool (a
    private attribute: without it, there is nothing queued to wait for); a no-op task submitted
    now runs after all of them.
    """
    pool = getattr(SharedMemoryArray, "_del_thread_pool", None)
    if pool is not None:
        # Bounded, so that a stuck deletion cannot keep the caller from exiting.
        pool.apply_async(_no_op).wait(_DELETION_WAIT_S)


def _no_op() -> None:
    """The task ``_wait_for_shared_memory_deletions`` queues behind grain's deletions."""


class _Batches(grain.DatasetIterator):
    """The pipeline's iterator: grain's, with one-line data errors and no shared memory left.

    See the module docstring. State (``get_state`` / ``set_state``) is grain's, unchanged, so
    checkpoints from before this wrapper resume as before.
    """

    def __init__(self, parent: grain.DatasetIterator):
        super().__init__(parent)

    def __next__(self) -> dict[str, np.ndarray]:
        try:
            batch = next(self._parent)
        except USER_ERRORS as err:
            # grain adds a note about its traceback filtering; the error is the user's news.
            err.__dict__.pop("__notes__", None)
            raise
        except VideoDecodeError as err:
            raise DataError(str(err)) from err
        return _release_shared_memory(batch)

    def get_state(self) -> dict[str, Any]:
        return self._parent.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state)

    def close(self) -> None:
        """Stops grain's threads and worker processes and frees the batches they held.

        Idempotent. Closing drops the batches in grain's buffers, whose shared memory grain then
        unlinks on its deletion thread; waiting for that thread here means that a process that
        exits right after ``close`` (as the trainer does) leaves no block behind.
        """
        if self._closed:
            return
        super().close()  # Closes the parents: grain joins its threads and worker processes.
        if sys.is_finalizing():
            return  # Called from __del__ at exit: grain's deletion thread no longer runs.
        # A batch prefetched when a worker failed stays referenced from the failure's traceback
        # frames (a reference cycle through the exception) until the cycle collector runs.
        gc.collect()
        _wait_for_shared_memory_deletions()


def _allow_unparsed_absl_flags() -> None:
    """Works around grain 0.2.18 reading an absl flag before flags are parsed (google/grain#1355).

    With jax installed, ``mp_prefetch`` reads ``--grain_enable_multiprocess_worker_profiling``,
    which raises ``UnparsedFlagAccessError`` in programs that do not use ``absl.app``. Marking the
    flags as parsed makes them read as their defaults; programs that parse their flags (absl.app)
    are left untouched. Fixed upstream by google/grain#1362.
    """
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _derived_seed(seed: int, purpose: int) -> int:
    """A 32-bit seed for one purpose, so that shuffle order and clip choices are independent."""
    return int(np.random.SeedSequence([int(seed), purpose]).generate_state(1)[0])


def make_dataset(
    data_cfg,
    *,
    batch_size: int,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.DatasetIterator:
    """Iterator of host-local batches of the dataset ``data_cfg["name"]``.

    Args:
      data_cfg: ``ConfigDict`` or mapping with ``name`` and any keys of
        ``default_data_config(name)``.
      batch_size: examples per batch in this process.
      seed: seed of the shuffle order and of per-clip random choices.
      process_index: this process's shard, default ``jax.process_index()``.
      process_count: number of shards, default ``jax.process_count()``.

    Returns:
      A ``grain.DatasetIterator``; call ``close()`` on it when done if ``num_workers > 0``.
      ``next`` raises `DataError` (a `UserError`) for data that cannot be read as configured.
    """
    if process_index is None or process_count is None:
        import jax  # Imported here: workers and data-only users need no jax.

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(
            f"process_index = {process_index} must lie in [0, process_count = {process_count})"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return dataset(data_cfg).make_dataset(
        data_cfg,
        batch_size=batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
    )


def make_clip_dataset(
    data_cfg, *, batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.DatasetIterator:
    """The grain pipeline of a clip dataset's source (see the module docstring)."""
    cfg = resolve_data_config(data_cfg)
    source = make_source(cfg, seed=_derived_seed(seed, 1))
    shuffle_seed = _derived_seed(seed, 0) if cfg["shuffle"] else None
    dataset = grain.MapDataset.range(len(source)).repeat(cfg["num_epochs"])
    # Loading before the shard split keeps the stream position global, so a clip's epoch (and so
    # its random choices) does not depend on the number of processes.
    dataset = dataset.map_with_index(_LoadExample(source, shuffle_seed))
    if cfg["num_epochs"] is not None:
        # A finite stream is cut to a multiple of process_count so that every process gets the
        # same number of batches (a process with one batch more would wait forever in a
        # collective at the end).
        per_process = len(dataset) // process_count
        if per_process < batch_size:
            raise DataError(
                f"{len(source)} examples x data.num_epochs={cfg['num_epochs']} over "
                f"{process_count} processes cannot fill one batch of {batch_size}: lower "
                "batch_size or raise data.num_epochs (None = forever)"
            )
        dataset = dataset[: per_process * process_count]
    dataset = dataset[process_index::process_count]
    dataset = dataset.batch(batch_size, drop_remainder=True)
    read_options = grain.ReadOptions(
        num_threads=int(cfg["num_threads"]),
        prefetch_buffer_size=max(int(cfg["prefetch"]), int(cfg["num_threads"])),
    )
    iter_dataset = dataset.to_iter_dataset(read_options)
    if cfg["num_workers"] > 0:
        _allow_unparsed_absl_flags()
        iter_dataset = iter_dataset.mp_prefetch(
            grain.MultiprocessingOptions(
                num_workers=int(cfg["num_workers"]),
                per_worker_buffer_size=max(1, int(cfg["prefetch"])),
            )
        )
    return _Batches(iter(iter_dataset))
