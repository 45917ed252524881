"""The training loop: create or restore the state, step, log, sample, evaluate, checkpoint.

The run directory's layout is `gan_jax.workdir`'s. `default_config()` is a whole run's config
(the parts' groups from `gan_jax.build`, plus `ckpt`, `log` and `eval`), where config files
start; `validate(cfg)` checks all of it.

Resuming is exact: the latest finished checkpoint holds the state and the data position, and
the step's randomness is `fold_in(key, step)`, so a run stopped and resumed ends bitwise equal
to an uninterrupted one (same devices, same config).

Host syncs: metrics stay on device until a log, checkpoint or final step, where every pending
step's metrics are fetched at once and checked; a non-finite value raises `NonFiniteError`
naming the first bad step and metric, before anything is saved. SIGTERM or SIGINT stops the
loop after the current step, saves a checkpoint and returns normally.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from ml_collections import config_dict
from tqdm import tqdm

from gan_jax import (
    augment,
    build,
    config,
    early_signals,
    evaluate,
    parallel,
    report,
    sampling,
)
from gan_jax.checkpoint import Checkpointer, CheckpointMismatchError
from gan_jax.config import Checker
from gan_jax.data.spec import DataSpec
from gan_jax.metric_writer import MetricWriter
from gan_jax.standing_stats import make_standing_stats
from gan_jax.state import GANState
from gan_jax.workdir import (
    CHECKPOINT_DIR,
    SAMPLES_DIR,
    abstract_state,
    record_run_info,
    write_config,
    write_spec,
)

logger = logging.getLogger(__name__)


def default_config(
    *,
    model: str = "video_dcgan",
    data: str = "bouncing_shapes",
    objective: str = "unconditional",
    d_model: str | None = None,
) -> config_dict.ConfigDict:
    """A whole run's config with every default: the parts (model family of G and D, data,
    objective, loss, penalties, step, EMA; see `gan_jax.build.parts_config`) plus `ckpt`,
    `log` and `eval`. Config files start here and change what they need."""
    cfg = build.parts_config(model=model, data=data, objective=objective, d_model=d_model)
    cfg.ckpt = config_dict.ConfigDict()
    cfg.ckpt.every = 500  # steps between checkpoints; one is always written at the end
    cfg.ckpt.keep = 3  # most recent checkpoints kept
    cfg.ckpt.async_save = True

    cfg.log = config_dict.ConfigDict()
    cfg.log.every = 50  # metrics to host, metrics.jsonl and TensorBoard
    cfg.log.sample_every = 500  # sample clips / points under WORKDIR/samples; 0 = end only
    cfg.log.num_samples = 8  # fixed-noise samples per sample step
    cfg.log.fps = 8.0  # frame rate of sample videos
    cfg.log.progress = True  # tqdm bar on process 0
    cfg.log.report = True  # WORKDIR/report.html at the end of training (gan_jax.report)

    cfg.eval = evaluate.default_config()
    return cfg


def validate(cfg: config_dict.ConfigDict) -> DataSpec:
    """Checks the whole config: the parts (`build.validate`), `ckpt`, `log` and `eval`.

    Returns:
        The data spec computed on the way.

    Raises:
        ConfigError: naming the key and what is allowed.
    """
    evaluate.fill_defaults(cfg)  # eval keys a run saved before they existed lacks
    spec = build.validate(cfg)
    for group in ("ckpt", "log", "eval"):
        if group not in cfg or not isinstance(cfg[group], config_dict.ConfigDict):
            raise config.ConfigError(
                f"config has no group {group!r}; start from gan_jax.train.default_config()"
            )
    ckpt = Checker(cfg.ckpt, "ckpt")
    ckpt.only_keys(("every", "keep", "async_save"))
    ckpt.integer("every", 1)
    ckpt.integer("keep", 1)
    ckpt.boolean("async_save")
    config.fill_missing(cfg.log, default_config().log)  # keys a run saved before them lacks
    log = Checker(cfg.log, "log")
    log.only_keys(("every", "sample_every", "num_samples", "fps", "progress", "report"))
    log.integer("every", 1)
    log.integer("sample_every", 0)
    log.integer("num_samples", 1)
    log.number("fps", 0.0, low_open=True)
    log.boolean("progress")
    log.boolean("report")
    evaluate.validate(cfg, spec)
    top = set(build.PART_GROUPS) | {"seed", "steps", "batch_size", "ckpt", "log", "eval"}
    Checker(cfg, "").only_keys(top)
    return spec


class NonFiniteError(FloatingPointError):
    """A metric or the state became NaN or infinite; nothing from that step was saved."""


class StopSignals:
    """Turns SIGTERM / SIGINT into "save and stop after this step"; a second signal aborts.

    With several processes, JAX's preemption service owns SIGTERM (started by
    `jax.distributed.initialize`) and agrees on a step at which every process stops; SIGINT is
    agreed on at log steps. One process just checks its own flag.
    """

    def __init__(self):
        # A signal that arrived while the process was starting (gan_jax.early_signals).
        self.received: int | None = early_signals.take_pending()
        self._multi = jax.process_count() > 1
        self._previous: dict[int, object] = {}
        self._preemption_service = self._multi

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set from the main thread
        wanted = [signal.SIGINT] if self._multi else [signal.SIGINT, signal.SIGTERM]
        for signum in wanted:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    @property
    def stop_before_start(self) -> bool:
        """A signal arrived before the loop began: stop without a step (nothing new to save)."""
        return self.received is not None

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            early_signals.abort(signum)
        self.received = signum
        logger.warning(
            "Received %s: saving a checkpoint after this step, then stopping (send it again "
            "to abort without saving)",
            signal.Signals(signum).name,
        )

    def should_stop(self, step: int, at_sync_point: bool) -> bool:
        """Whether to stop after `step`; every process must call this at every step."""
        if not self._multi:
            return self.received is not None
        if self._preemption_service:
            try:
                if multihost_utils.reached_preemption_sync_point(step):
                    return True
            except RuntimeError as e:  # jax_enable_preemption_service is off
                logger.warning("No coordinated SIGTERM handling: %s", e)
                self._preemption_service = False
        if at_sync_point:
            flags = multihost_utils.process_allgather(np.int32(self.received is not None))
            return bool(np.any(flags))
        return False


def _all_finite(tree) -> jax.Array:
    """bool scalar: every floating-point leaf of `tree` is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _check_batch_size(cfg: config_dict.ConfigDict) -> None:
    devices, processes = jax.device_count(), jax.process_count()
    if cfg.batch_size % devices or cfg.batch_size % processes:
        multiple = math.lcm(devices, processes)
        raise config.ConfigError(
            f"batch_size={cfg.batch_size} is not divisible by the {devices} devices over "
            f"{processes} process(es); use a multiple of {multiple}, e.g. "
            f"--config.batch_size={max(multiple, cfg.batch_size // multiple * multiple)}"
        )


class _LineStream:
    """A text stream for tqdm that turns its carriage-return redraws into whole lines, for logs
    that are files (SLURM, nohup) rather than terminals."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self._stream.write(text + "\n")

    def flush(self) -> None:
        self._stream.flush()


# Seconds between progress lines when stderr is not a terminal: a 1500-step run otherwise
# writes ~750 redraws (64 KB) into a batch system's log.
PIPED_PROGRESS_INTERVAL_S = 30.0


def progress_bar(total: int, initial: int, *, enabled: bool, stream=None) -> tqdm:
    """The training progress bar on `stream` (default stderr): redrawn in place on a terminal,
    a line at most every `PIPED_PROGRESS_INTERVAL_S` seconds (and at the end) otherwise."""
    stream = sys.stderr if stream is None else stream
    is_terminal = bool(getattr(stream, "isatty", lambda: False)())
    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        dynamic_ncols=is_terminal,
        disable=not enabled,
        file=stream if is_terminal else _LineStream(stream),
        mininterval=0.1 if is_terminal else PIPED_PROGRESS_INTERVAL_S,
        ncols=None if is_terminal else 100,
    )


class _MetricWindow:
    """Per-step metrics kept on device until `flush`, then checked and averaged on the host."""

    def __init__(self):
        self._steps: list[int] = []
        self._metrics: list[dict[str, jax.Array]] = []
        self._since = time.perf_counter()

    def add(self, step: int, metrics: dict[str, jax.Array]) -> None:
        self._steps.append(step)
        self._metrics.append(metrics)

    def flush(self) -> dict[str, float] | None:
        """Mean of each metric over the pending steps, plus `perf/steps_per_sec`.

        Raises:
            NonFiniteError: naming the first step and metric that is NaN or infinite.
        """
        if not self._steps:
            return None
        values = jax.device_get(self._metrics)  # one host sync for the whole window
        for step, row in zip(self._steps, values):
            for name in sorted(row):
                if not np.isfinite(row[name]):
                    raise NonFiniteError(
                        f"metric {name} = {float(row[name])} at step {step}: training diverged. "
                        "Nothing from this step was saved; lower g.lr / d.lr, add "
                        "penalty.r1, or resume from the last checkpoint with another seed."
                    )
        now = time.perf_counter()
        means = {name: float(np.mean([row[name] for row in values])) for name in values[-1]}
        means["perf/steps_per_sec"] = len(values) / max(now - self._since, 1e-9)
        self._steps, self._metrics, self._since = [], [], now
        return means


def _check_same_ada(saved: config_dict.ConfigDict, cfg: config_dict.ConfigDict, step: int):
    """ADA's p lives in the state (`d_stats["augment"]`), so a checkpoint restores only into a
    run that adapts p as it did; raises `ConfigError` saying so rather than a tree mismatch."""
    was = augment.config_from(saved.augment).adaptive
    if was != augment.config_from(cfg.augment).adaptive:
        raise config.ConfigError(
            f"the checkpoint at step {step} was trained {'with' if was else 'without'} adaptive "
            f"augmentation (augment.policy={saved.augment.policy!r}, augment.ada_target="
            f"{saved.augment.ada_target}); ADA's p is part of the state, so it cannot be switched "
            "on or off when resuming: keep those two settings, or start a new workdir"
        )


def _restore_or_init(
    ckpt: Checkpointer, run: build.Run, mesh, init_key: jax.Array, cfg, data
) -> GANState:
    """The newest checkpoint that restores (state and data position) or a fresh state.

    A damaged checkpoint (unreadable, or bytes that fail their checksum) is logged, moved aside
    and replaced by the one before it (`Checkpointer.restore_newest_good`).
    """
    if ckpt.latest_step() is None:
        create = build.init_fn(run)
        # XLA:CPU compiles partitionable threefry draws of rank-5 conv kernels very slowly
        # (about 7 s per kernel with JAX 0.10.2, 40 s for the tiny config's init); the state is
        # replicated, so partitionable draws buy nothing here.
        with jax.threefry_partitionable(False):
            return parallel.create_replicated(create, init_key, mesh)

    def restore(step: int) -> GANState:
        saved = ckpt.read_config(step=step)
        changed = []
        if saved is not None:
            saved_cfg = build.upgrade_config(config.config_from_dict(saved))
            _check_same_ada(saved_cfg, cfg, step)
            saved = saved_cfg.to_dict()
            changed = config.differences(saved, cfg.to_dict())
            if changed:
                logger.warning(
                    "Resuming from step %d with a changed config:\n  %s",
                    step,
                    "\n  ".join(changed),
                )
        try:
            state, data_state, _ = ckpt.restore(abstract_state(run, mesh), step=step)
        except CheckpointMismatchError as e:
            changed.sort(key=lambda line: not line.startswith(("g.", "d.")))  # models first
            keys = "; ".join(changed[:3]) + (" ..." if len(changed) > 3 else "")
            raise config.ConfigError(
                f"the checkpoint at step {step} in {ckpt.directory} holds another model than "
                f"this config builds ({e.problem})"
                + (f"; changed since it was written: {keys}" if keys else "")
                + ". Resume with the model settings it was trained with, or start a new workdir"
            ) from e
        if data_state is None:
            raise ValueError(f"checkpoint {ckpt.step_dir(step)} has no data-iterator state")
        # Every process consumes the same number of batches, so process 0's saved position
        # (orbax writes JSON items from process 0 only) is every process's position.
        data.set_state(data_state)
        return state

    step, state = ckpt.restore_newest_good(restore)
    logger.info("Resumed from %s at step %d", ckpt.directory, step)
    return state


def train(cfg: config_dict.ConfigDict, workdir: str | os.PathLike) -> GANState:
    """Trains (or resumes) the run described by `cfg` in `workdir`.

    Args:
        cfg: a run config (see gan_jax.config); validated here.
        workdir: run directory; an existing checkpoint there is resumed.

    Returns:
        The final state (after `cfg.steps` steps, or at the step where a signal stopped it).

    Raises:
        ConfigError: the config cannot be trained on these devices.
        NonFiniteError: a metric or the state became non-finite (the last good checkpoint
            is kept).
    """
    started = time.time()
    spec = validate(cfg)
    _check_batch_size(cfg)
    workdir = Path(workdir)
    is_main = jax.process_index() == 0
    mesh = parallel.make_mesh()
    run = build.build(cfg, spec)
    init_key, step_key = jax.random.split(jax.random.key(cfg.seed))
    sample_key = sampling.training_sample_key(cfg.seed)

    train_step = parallel.jit_train_step(
        build.step_fn(run, data_sharding=parallel.batch_sharding(mesh)), mesh
    )
    all_finite = jax.jit(_all_finite)
    sampler = sampling.make_sampler(run.g, mesh, run.objective)
    # What samples and evaluations see: the EMA G, with standing batch-norm statistics where
    # ema.standing_stats asks for them (the train state keeps the running ones).
    sampled_state = make_standing_stats(cfg, run.g, run.objective, mesh)
    # Real context frames for prediction runs; a class-conditional run's classes in turn, so
    # each grid shows its classes in order (rows of one class together).
    sample_cond = sampling.data_conditions(cfg, run, cfg.log.num_samples, cfg.seed)
    if sample_cond is None:
        sample_cond = sampling.class_labels(run.objective, cfg.log.num_samples, None, workdir)
    data = build.make_data(
        cfg,
        batch_size=cfg.batch_size // jax.process_count(),
        seed=cfg.seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    ckpt = Checkpointer(
        workdir / CHECKPOINT_DIR,
        save_interval_steps=cfg.ckpt.every,
        max_to_keep=cfg.ckpt.keep,
        async_save=cfg.ckpt.async_save,
    )
    writer = None
    failing = False
    trained = None  # (first step, last step) once steps were taken
    try:
        state = _restore_or_init(ckpt, run, mesh, init_key, cfg, data)
        start = int(state.step)
        if is_main:
            write_config(cfg, workdir)
            write_spec(spec, workdir)
        if start >= cfg.steps:
            logger.info("Checkpoint step %d >= steps=%d: nothing to train", start, cfg.steps)
            return state
        writer = MetricWriter(workdir, enabled=is_main)
        eval_ctx = None
        if cfg.eval.every:
            eval_ctx = evaluate.EvalContext(
                cfg, run, state, sampler, cfg.eval.num_samples, seed=cfg.seed, workdir=workdir
            )
            if start == 0 and cfg.eval.at_start:  # the untrained G: where the metrics start
                eval_ctx = eval_ctx.with_state(sampled_state(state))
                results = evaluate.run_metrics(cfg.eval.metrics, eval_ctx)
                writer.write_scalars(0, {f"eval/{k}": v for k, v in results.items()})
        window = _MetricWindow()

        def save(step: int, state: GANState) -> None:
            if not bool(all_finite(state)):
                raise NonFiniteError(
                    f"the state at step {step} holds NaN or inf although its metrics are "
                    "finite; it was not saved"
                )
            ckpt.save(step, state, data_state=data.get_state(), config=cfg, force=True)

        progress = progress_bar(cfg.steps, start, enabled=is_main and cfg.log.progress)
        previous = None
        with progress, StopSignals() as stop_signals:
            if stop_signals.stop_before_start:
                logger.warning(
                    "Stopped before step %d: a %s arrived while starting; the checkpoints are "
                    "as they were",
                    start + 1,
                    signal.Signals(stop_signals.received).name,
                )
                return state
            for step in range(start + 1, cfg.steps + 1):
                try:
                    host_batch = next(data)
                except StopIteration:
                    raise ValueError(
                        f"the data ran out before step {step}; set data.num_epochs=None "
                        "(repeat forever) or lower steps"
                    ) from None
                batch = parallel.global_batch(host_batch, mesh)
                state, metrics = train_step(state, batch, step_key)
                trained = (start, step)
                window.add(step, metrics)
                # Wait for the previous step (not this one, which keeps the device busy while
                # the next batch loads): the host runs at most one step ahead, so the bar's
                # rate is true and pending batches do not pile up. No copy to the host.
                jax.block_until_ready(previous)
                previous = metrics
                progress.update(1)

                last = step == cfg.steps
                log_due = step % cfg.log.every == 0 or last
                stop = stop_signals.should_stop(step, at_sync_point=log_due)
                ckpt_due = step % cfg.ckpt.every == 0 or last or stop
                if log_due or ckpt_due:
                    means = window.flush()
                    writer.write_scalars(step, means)
                    progress.set_postfix(
                        {name.split("/")[0]: f"{means[name]:.3f}" for name in ("d/loss", "g/loss")},
                        refresh=False,
                    )
                if ckpt_due:  # before samples and eval, so that a failure there loses nothing
                    save(step, state)
                sample_every = cfg.log.sample_every
                sample_due = bool(sample_every and step % sample_every == 0) or last
                eval_due = eval_ctx is not None and (step % cfg.eval.every == 0 or last)
                sampled = sampled_state(state) if sample_due or eval_due else None
                if sample_due:
                    fake = sampler(sampled, sample_key, cfg.log.num_samples, sample_cond)
                    if is_main:
                        sampling.write_samples(
                            workdir / SAMPLES_DIR,
                            f"step_{step:06d}",
                            fake,
                            cfg.data.name,
                            cfg.log.fps,
                        )
                        preview = sampling.preview_image(fake, cfg.data.name)
                        writer.write_images(step, {"samples": preview})
                if eval_due:
                    eval_ctx = eval_ctx.with_state(sampled)
                    results = evaluate.run_metrics(cfg.eval.metrics, eval_ctx)
                    writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
                if stop:
                    logger.warning("Stopped at step %d; checkpoint saved", step)
                    break
        return state
    except BaseException:
        failing = True
        raise
    finally:
        _close_all([writer, ckpt, data], quiet=failing)
        if trained is not None and is_main and not failing:
            _write_run_record(workdir, *trained, started, cfg.log.report)


def _write_run_record(
    workdir: Path, start_step: int, end_step: int, started: float, with_report: bool
) -> None:
    """run_info.json and (`with_report`) report.html at the end of training. Neither is needed
    to train, resume or sample, so a failure here (a full disk, a broken plot) is a warning,
    never the run's error: the checkpoints and samples are already written."""
    try:
        record_run_info(workdir, start_step, end_step, started)
        if with_report:
            logger.info("Report: %s", report.write_report(workdir))
    except Exception as e:  # noqa: BLE001 - see above
        logger.warning("Could not write the run report into %s: %s", workdir, e)


def _close_all(resources, *, quiet: bool) -> None:
    """Closes every resource that has a `close`, even when one fails (a full disk fails them
    all). `quiet`: an error is already on its way out; a close error is logged, not raised in
    its place. Otherwise the first close error is raised once all are closed."""
    first = None
    for resource in resources:
        close = getattr(resource, "close", None)
        if close is None:
            continue
        try:
            close()
        except Exception as e:  # noqa: BLE001 - the others must still be closed
            if quiet:
                logger.warning("Closing %s also failed: %s", type(resource).__name__, e)
            elif first is None:
                first = e
    if first is not None:
        raise first
