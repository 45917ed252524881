"""Checkpoints of the training state, the input-pipeline state and the run config.

This is the only module in gan_jax that imports orbax. One `Checkpointer` wraps an
`orbax.checkpoint.CheckpointManager`; each checkpoint is a step directory with up to three items::

    DIRECTORY/<step>/state/    the train state pytree (jax arrays, sharded), StandardSave
    DIRECTORY/<step>/data/     the input iterator state (JSON), optional
    DIRECTORY/<step>/config/   the run config (JSON), optional
    DIRECTORY/<step>/checksums/  a digest of every array and JSON item above (JSON)
    DIRECTORY/damaged/<step>/  a checkpoint that failed to restore or verify, moved aside

Restores verify before they trust: the arrays and JSON items read back are hashed and compared
with the digests written at save time, so a flipped byte that still decodes is caught.
`restore_newest_good` tries the finished checkpoints newest first; one that fails to read or to
verify is logged in one line and, once an older one has restored, moved aside (never deleted)
so that the user can inspect it and later saves do not collide with it.

What makes a checkpoint "finished" (orbax 0.12.8, read from orbax/checkpoint/_src/path/
atomicity.py): every save is written to `<step>.orbax-checkpoint-tmp`, then a
`commit_success.txt` file is written into it and the directory is renamed to `<step>` (on GCS,
where renames are not atomic, orbax writes `<step>` in place and the commit file comes last).
This module only ever reads a step directory that has a plain integer name AND contains the
commit file, so a save cut off at any point (temporary directory, or a step directory without
the commit file) is never listed or restored, whatever the storage.

Typical use in a trainer::

    ckpt = Checkpointer(workdir / "checkpoints", save_interval_steps=1000)
    if ckpt.latest_step() is not None:
        abstract = jax.tree.map(
            lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
            jax.eval_shape(init_fn, rng), state_shardings)
        state, data_state, config = ckpt.restore(abstract)
    for step in ...:
        ckpt.save(step, state, data_state=iterator.get_state(), config=cfg.to_dict())
    ckpt.save(last_step, state, data_state=..., force=True)
    ckpt.close()
"""

from __future__ import annotations

import json
import logging
import operator
import os
import zlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from gan_jax.errors import USER_ERRORS, EnvironmentFault, UserError

logger = logging.getLogger(__name__)
T = TypeVar("T")

_STATE = "state"
_DATA = "data"
_CONFIG = "config"
_CHECKSUMS = "checksums"
DAMAGED_DIR = "damaged"

# Names orbax uses for in-progress saves and for the file that marks a save as complete.
_TMP_SUFFIX = ocp.path.atomicity_types.TMP_DIR_SUFFIX
_COMMIT_FILE = ocp.path.atomicity_types.COMMIT_SUCCESS_FILE

# Reading with COMMIT_FILE validation requires the commit file in every step directory. Orbax's
# atomic-rename writer (the default on local disks) writes that file before its rename, so a
# finished step passes both checks; an unfinished one fails at least one.
_READ_ATOMICITY = ocp.options.AtomicityOptions(mode=ocp.options.AtomicityMode.COMMIT_FILE)


def _as_path(directory: str | os.PathLike) -> epath.Path:
    """Absolute path for local directories (orbax refuses relative ones); URLs pass through."""
    text = os.fspath(directory)
    if "://" in text:
        return epath.Path(text)
    return epath.Path(os.path.abspath(os.path.expanduser(text)))


def _check_step(step: Any) -> int:
    try:
        step = operator.index(step)
    except TypeError:
        raise TypeError(f"step must be an integer, got {step!r} ({type(step).__name__})") from None
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return step


def _as_json(value: Any, name: str) -> Any:
    """Returns `value` as JSON-ready data, or raises naming the argument.

    Checked here, synchronously, because orbax would otherwise fail in its background thread.
    """
    if hasattr(value, "to_dict"):  # ml_collections.ConfigDict
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{name} is not JSON-serialisable ({e}); keep it to dicts, lists, str, int, float, "
            "bool and None (e.g. convert numpy values with .item() or .tolist())"
        ) from None
    return dict(value)


class CheckpointMismatchError(UserError, ValueError):
    """The checkpoint holds another model or optimiser than the one asked for (a changed
    architecture); not damage, so no fallback to an older checkpoint.

    Attributes:
        problem: the first differing array and how, e.g. "'g_params/x' has shape ...".
    """

    def __init__(self, problem: str, message: str):
        super().__init__(message)
        self.problem = problem


class CheckpointDamagedError(EnvironmentFault):
    """A checkpoint's files do not read back as they were written (or none restores)."""


def _one_line(error: BaseException, limit: int = 300) -> str:
    """`Type: first line of the message`, shortened: TensorStore errors run to 150 lines."""
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    line = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _host_bytes(leaf: Any) -> np.ndarray | None:
    """The leaf's bytes as a flat uint8 array, or None where this process does not hold them
    all (an array sharded over other hosts)."""
    if isinstance(leaf, jax.Array):
        if leaf.is_fully_replicated:
            leaf = leaf.addressable_data(0)
        elif not leaf.is_fully_addressable:
            return None
    array = np.ascontiguousarray(np.asarray(leaf))
    return array.reshape(-1).view(np.uint8)


def _digest(data: Any) -> str:
    # CRC-32, as storage formats use against corruption (not tampering): 3 GB/s here, four
    # times blake2b, so a save of a 1 GiB state spends a third of a second on it.
    return f"{zlib.crc32(data):08x}-{len(data)}"


def _json_digest(value: Any) -> str:
    # sort_keys: a JSON round trip may reorder nothing, but dicts built in another order must
    # hash alike.
    return _digest(json.dumps(value, sort_keys=True).encode())


def _checksums(state: Any, json_items: Mapping[str, Any]) -> dict:
    """Digests of every array leaf (by orbax's flat name) and of every JSON item."""
    arrays = {}
    for path, leaf in ocp.tree.to_flat_dict(state).items():
        data = _host_bytes(leaf)
        if data is not None:
            arrays["/".join(path)] = {"dtype": str(np.dtype(leaf.dtype)), "digest": _digest(data)}
    return {
        "version": 1,
        "algorithm": "crc32",
        "arrays": arrays,
        "json": {name: _json_digest(value) for name, value in json_items.items()},
    }


def _verify(sums: Mapping[str, Any], state: Any, json_items: Mapping[str, Any]) -> None:
    """Raises CheckpointDamagedError naming the first item whose bytes differ from `sums`."""
    arrays = sums.get("arrays", {})
    for path, leaf in ocp.tree.to_flat_dict(state).items():
        name = "/".join(path)
        want = arrays.get(name)
        # A leaf restored into another dtype (restore casts) cannot be compared byte for byte.
        if want is None or want["dtype"] != str(np.dtype(leaf.dtype)):
            continue
        data = _host_bytes(leaf)
        if data is not None and _digest(data) != want["digest"]:
            raise CheckpointDamagedError(
                f"array {name!r} does not match the checksum written with it (the file changed "
                "on disk after it was saved)"
            )
    for name, value in json_items.items():
        want = sums.get("json", {}).get(name)
        if want is not None and _json_digest(value) != want:
            raise CheckpointDamagedError(
                f"item {name!r} does not match the checksum written with it"
            )


def _path_text(path: tuple[str, ...]) -> str:
    return "/".join(path) if path else "<root>"


def _shape_text(entry: Any) -> str:
    shape = tuple(getattr(entry, "shape", ()))
    dtype = getattr(entry, "dtype", None)
    return f"{shape} {dtype}" if dtype is not None else str(shape)


def _to_abstract(abstract_state: Any) -> Any:
    """ShapeDtypeStruct leaves with shardings; concrete jax.Arrays are accepted as templates."""

    def convert(path, leaf):
        if isinstance(leaf, jax.Array):
            return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
        if isinstance(leaf, jax.ShapeDtypeStruct):
            if leaf.sharding is None:
                raise ValueError(
                    f"abstract_state leaf {jax.tree_util.keystr(path)} has no sharding. Attach "
                    "the state shardings, e.g. jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct("
                    "s.shape, s.dtype, sharding=sh), jax.eval_shape(init_fn, ...), shardings)"
                )
            return leaf
        raise TypeError(
            f"abstract_state leaf {jax.tree_util.keystr(path)} is a {type(leaf).__name__}; "
            "expected jax.ShapeDtypeStruct (with sharding) or jax.Array"
        )

    return jax.tree_util.tree_map_with_path(convert, abstract_state)


def _check_matches(stored_tree: Any, abstract_state: Any, where: epath.Path) -> None:
    """Raises ValueError naming the first path where checkpoint and abstract_state differ.

    Both trees are flattened to orbax's parameter names (attribute / key / index per level), the
    same names orbax stores, so a flax struct in memory lines up with the nested dicts on disk.
    """
    stored = ocp.tree.to_flat_dict(stored_tree)
    wanted = ocp.tree.to_flat_dict(abstract_state)
    problems = []
    for path, spec in wanted.items():
        if path not in stored:
            problems.append(
                f"{_path_text(path)!r} is in abstract_state ({_shape_text(spec)}) but not in the "
                "checkpoint"
            )
        elif tuple(getattr(stored[path], "shape", ())) != tuple(spec.shape):
            problems.append(
                f"{_path_text(path)!r} has shape {_shape_text(stored[path])} in the checkpoint "
                f"but {_shape_text(spec)} in abstract_state"
            )
    for path, entry in stored.items():
        if path not in wanted:
            problems.append(
                f"{_path_text(path)!r} is in the checkpoint ({_shape_text(entry)}) but not in "
                "abstract_state"
            )
    if problems:
        more = f" ({len(problems) - 1} more mismatches)" if len(problems) > 1 else ""
        raise CheckpointMismatchError(
            problems[0] + more,
            f"Checkpoint {where} does not match abstract_state: {problems[0]}{more}. Build "
            "abstract_state from the same model and optimizer config as the run that wrote it "
            "(its config is saved alongside: read_config()).",
        )


class Checkpointer:
    """Saves and restores (state, data_state, config) under one directory, with orbax.

    Saves are asynchronous by default: `save` returns once the arrays are copied to host memory
    (so the caller may donate or overwrite them), and the files are written in the background.
    Every process of a multi-host run must call `save` and `restore` (orbax synchronises them).

    Args:
        directory: where the step directories live; created on the first save.
        save_interval_steps: `save` writes when `step % save_interval_steps == 0` (or on a
            preemption notice, or when forced).
        max_to_keep: number of most recent checkpoints kept; older ones are deleted.
        async_save: write in a background thread. `wait()` blocks until written.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        save_interval_steps: int = 1000,
        max_to_keep: int = 3,
        async_save: bool = True,
    ):
        if operator.index(save_interval_steps) < 1:
            raise ValueError(f"save_interval_steps must be >= 1, got {save_interval_steps}")
        if operator.index(max_to_keep) < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
        self._directory = _as_path(directory)
        self._name_format = ocp.path.step.standard_name_format(atomicity_options=_READ_ATOMICITY)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            # No InitialSavePolicy (orbax's default adds it): the first call must not save at an
            # arbitrary step just because the directory is empty.
            save_decision_policy=ocp.checkpoint_managers.AnySavePolicy(
                [
                    ocp.checkpoint_managers.FixedIntervalPolicy(save_interval_steps),
                    ocp.checkpoint_managers.PreemptionCheckpointingPolicy(),
                ]
            ),
            enable_async_checkpointing=async_save,
            step_name_format=self._name_format,
            # Created on first save, so that restoring from a mistyped path leaves no empty
            # directory behind.
            create=False,
        )
        self._manager = ocp.CheckpointManager(
            self._directory,
            options=options,
            item_handlers={
                _STATE: ocp.StandardCheckpointHandler(),
                _DATA: ocp.JsonCheckpointHandler(),
                _CONFIG: ocp.JsonCheckpointHandler(),
                _CHECKSUMS: ocp.JsonCheckpointHandler(),
            },
        )
        self._cleaned_up = False
        self._last_saved_step: int | None = None
        self._closed = False

    @property
    def directory(self) -> epath.Path:
        """The (absolute) checkpoint directory."""
        return self._directory

    def all_steps(self) -> list[int]:
        """Steps of the finished checkpoints on disk, ascending."""
        return sorted(meta.step for meta in self._name_format.find_all(self._directory))

    def latest_step(self) -> int | None:
        """Latest finished checkpoint on disk, or None. An async save still in flight is not
        counted until it is complete, and neither is anything a crash left half written."""
        return max(self.all_steps(), default=None)

    def save(
        self,
        step: int,
        state: Any,
        *,
        data_state: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> bool:
        """Starts saving `state` (and optional JSON dicts) as checkpoint `step`.

        Args:
            step: training step; saved when `step % save_interval_steps == 0` unless `force`.
            state: pytree of jax arrays (flax struct, dict, ...), possibly sharded.
            data_state: input iterator state, a JSON-serialisable dict.
            config: run config, a JSON-serialisable dict (a ConfigDict is converted).
            force: save regardless of the interval.

        Returns:
            True if a save was started. False if the step is not due, or is already saved (a
            checkpoint is never overwritten, so a forced final save of an already-saved step is a
            harmless no-op).
        """
        self._check_open()
        step = _check_step(step)
        # Orbax raises StepAlreadyExistsError on a forced save of an existing step. The cheap
        # in-memory checks come first: the trainer calls this every step.
        if step in self._manager.all_steps():
            return False
        if not force and not self._manager.should_save(step):
            return False
        if step in self.all_steps():  # written by another Checkpointer since this one started
            return False
        json_items = {}
        if data_state is not None:
            json_items[_DATA] = _as_json(data_state, "data_state")
        if config is not None:
            json_items[_CONFIG] = _as_json(config, "config")
        items = {_STATE: ocp.args.StandardSave(state)}
        items.update({name: ocp.args.JsonSave(value) for name, value in json_items.items()})
        # Hashed here, from the arrays being saved, so the digests describe what was meant to
        # be written, whatever happens to the files later.
        items[_CHECKSUMS] = ocp.args.JsonSave(_checksums(state, json_items))
        if not self._cleaned_up:
            self._remove_unfinished()
            self._cleaned_up = True
        started = self._manager.save(step, args=ocp.args.Composite(**items), force=True)
        if started:
            self._last_saved_step = step
        return started

    def restore(
        self, abstract_state: Any, *, step: int | None = None
    ) -> tuple[Any, dict | None, dict | None]:
        """Restores checkpoint `step` (default: the latest finished one).

        Args:
            abstract_state: pytree of jax.ShapeDtypeStruct with shardings (e.g. from
                jax.eval_shape plus the state shardings), or of jax.Arrays used as templates.
                Arrays are restored with exactly these shardings; dtypes are cast to these.
            step: which checkpoint; must be a finished one.

        Returns:
            (state, data_state, config): state has abstract_state's tree type; data_state and
            config are None when they were not saved.

        Raises:
            FileNotFoundError: no such directory, no finished checkpoint, or `step` not finished.
            CheckpointMismatchError: the checkpoint's tree structure or shapes differ from
                abstract_state.
            CheckpointDamagedError: the bytes read back differ from the checksums saved.
            Exception: whatever orbax or TensorStore raise for files they cannot read.
        """
        self._check_open()
        step = self._resolve_step(step)
        abstract_state = _to_abstract(abstract_state)
        step_dir = self.step_dir(step)
        metadata = self._manager.item_metadata(step)
        if metadata.get(_STATE) is None:
            raise CheckpointDamagedError(f"{step_dir} has no readable {_STATE}/ item")
        _check_matches(metadata[_STATE].tree, abstract_state, step_dir)
        items = {_STATE: ocp.args.StandardRestore(abstract_state)}
        # JSON items are listed with metadata None: presence is what counts.
        json_names = [name for name in (_DATA, _CONFIG) if name in metadata]
        for name in (*json_names, _CHECKSUMS):
            if name in metadata:
                items[name] = ocp.args.JsonRestore()
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        sums = restored.get(_CHECKSUMS)
        if sums is not None:  # checkpoints from before checksums were written are not verified
            json_items = {name: restored.get(name) for name in json_names}
            _verify(sums, restored[_STATE], json_items)
        return restored[_STATE], restored.get(_DATA), restored.get(_CONFIG)

    def restore_newest_good(self, restore_step: Callable[[int], T]) -> tuple[int, T]:
        """Runs `restore_step(step)` on the finished checkpoints, newest first, until one works.

        A checkpoint whose restore raises is logged in one line (which one, and why), and once
        an older one has restored, every newer one that failed is moved to
        DIRECTORY/damaged/<step> (never deleted), so the run goes on from the newest good state.
        `USER_ERRORS` (a changed architecture, a config that does not fit) are not damage: they
        are raised at once.

        Args:
            restore_step: reads checkpoint `step` (e.g. `read_config(step=...)` then
                `restore(..., step=...)`) and returns what the caller needs.

        Returns:
            (step, what restore_step returned).

        Raises:
            FileNotFoundError: no finished checkpoint.
            CheckpointDamagedError: none restores; nothing was moved (the cause may be the
                environment rather than the files), and the message lists each failure.
        """
        self._check_open()
        steps = self.all_steps()
        if not steps:
            self._resolve_step(None)  # raises FileNotFoundError with the details
        failures: list[tuple[int, str]] = []
        for step in reversed(steps):
            try:
                result = restore_step(step)
            except (*USER_ERRORS, MemoryError):
                raise
            except Exception as e:  # noqa: BLE001 - any failure to read a checkpoint is damage
                reason = _one_line(e)
                logger.warning(
                    "Checkpoint %s cannot be restored (%s); trying the one before it",
                    self.step_dir(step),
                    reason,
                )
                logger.debug("Restoring checkpoint %d failed", step, exc_info=True)
                failures.append((step, reason))
                continue
            if failures:
                moved = self._move_aside([failed for failed, _ in failures])
                logger.warning(
                    "Restored checkpoint %d; damaged checkpoint(s) moved aside for inspection: %s",
                    step,
                    ", ".join(moved),
                )
            return step, result
        listed = "; ".join(f"step {step}: {reason}" for step, reason in failures)
        raise CheckpointDamagedError(
            f"no checkpoint in {self._directory} restores ({listed}); none was moved or "
            "deleted. Start a new workdir, or move the damaged step directories away to "
            "train this one from step 0"
        )

    def step_dir(self, step: int) -> epath.Path:
        """Where checkpoint `step` lives (finished or not)."""
        return self._directory / str(_check_step(step))

    def _move_aside(self, steps: list[int]) -> list[str]:
        """Moves checkpoints to DIRECTORY/damaged/ (process 0) and forgets them; returns the
        new paths."""
        moved = []
        damaged = self._directory / DAMAGED_DIR
        for step in steps:
            source = self.step_dir(step)
            target = damaged / str(step)
            suffix = 1
            while target.exists():  # the same step damaged again in a later run
                target = damaged / f"{step}.{suffix}"
                suffix += 1
            if jax.process_index() == 0:
                damaged.mkdir(parents=True, exist_ok=True)
                source.rename(target)
            moved.append(os.fspath(target))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("gan_jax.checkpoint.move_aside")
        self._manager.reload()
        return moved

    def read_config(self, *, step: int | None = None) -> dict | None:
        """The config saved with checkpoint `step` (default: latest), or None if none was saved.

        Useful before restoring, to rebuild the model that matches the checkpoint.
        """
        self._check_open()
        step = self._resolve_step(step)
        metadata = self._manager.item_metadata(step)
        if _CONFIG not in metadata:
            return None
        items = {_CONFIG: ocp.args.JsonRestore()}
        if _CHECKSUMS in metadata:
            items[_CHECKSUMS] = ocp.args.JsonRestore()
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        if restored.get(_CHECKSUMS) is not None:
            _verify(restored[_CHECKSUMS], {}, {_CONFIG: restored[_CONFIG]})
        return restored[_CONFIG]

    def wait(self) -> None:
        """Blocks until in-flight saves are durable on disk; raises if one failed."""
        self._check_open()
        self._manager.wait_until_finished()
        step = self._last_saved_step
        # max_to_keep may legitimately have deleted a forced save of an old step already.
        if step is not None and step in self._manager.all_steps() and step not in self.all_steps():
            raise RuntimeError(
                f"Checkpoint for step {step} in {self._directory} was not completed; see the "
                "orbax log messages above for the cause."
            )

    def close(self) -> None:
        """Waits for in-flight saves and releases orbax's resources. Idempotent."""
        if self._closed:
            return
        try:
            self.wait()
        finally:
            self._manager.close()
            self._closed = True

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"Checkpointer for {self._directory} is closed")

    def _unfinished_dirs(self) -> list[epath.Path]:
        """Step directories a crash left behind: temporary ones and ones without commit file."""
        if not self._directory.is_dir():
            return []
        return sorted(
            path
            for path in self._directory.iterdir()
            if path.is_dir()
            and (
                _TMP_SUFFIX in path.name
                or (path.name.isdigit() and not (path / _COMMIT_FILE).exists())
            )
        )

    def _remove_unfinished(self) -> None:
        """Deletes leftovers of crashed saves before this writer's first save.

        Only then: a reader (e.g. an evaluator polling latest_step) must never delete the
        temporary directory of a save another process is still writing. A leftover with the
        same step as a later save would also block orbax's final rename.
        """
        if jax.process_index() != 0:
            return
        for path in self._unfinished_dirs():
            logging.warning("Removing unfinished checkpoint left by an interrupted save: %s", path)
            path.rmtree()

    def _resolve_step(self, step: int | None) -> int:
        steps = self.all_steps()
        if step is None:
            if steps:
                return steps[-1]
            if not self._directory.exists():
                raise FileNotFoundError(f"Checkpoint directory {self._directory} does not exist")
            leftovers = [path.name for path in self._unfinished_dirs()]
            detail = f" (only unfinished saves: {', '.join(leftovers)})" if leftovers else ""
            raise FileNotFoundError(
                f"No finished checkpoint in {self._directory}{detail}; nothing to restore"
            )
        step = _check_step(step)
        if step not in steps:
            raise FileNotFoundError(
                f"No finished checkpoint for step {step} in {self._directory}; finished steps: "
                f"{steps or 'none'}"
            )
        return step
