"""The run directory: its layout, the files written whole into it, and loading a run from it.

WORKDIR layout (process 0 writes everything but the checkpoints, which orbax coordinates)::

    config.json          the resolved config of the latest invocation
    data_spec.json       what the data's batches hold (so `sample` needs no access to the data)
    checkpoints/<step>/  GAN state, data-iterator state and config (gan_jax.checkpoint)
    metrics.jsonl, tb/   metrics every `log.every` steps (gan_jax.metric_writer)
    samples/             step_XXXXXX.{mp4,gif,png} (points: .npy, .png) from the EMA generator
    eval/                step_XXXXXX.json from `gan-jax eval`
    run_info.json        each `gan-jax train` invocation: devices, steps, wall time
    report.html          the run report (gan_jax.report), written at the end of training
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

import jax
from jax.sharding import Mesh
from ml_collections import config_dict

from gan_jax import build, config, parallel
from gan_jax.checkpoint import Checkpointer
from gan_jax.data.spec import DataSpec
from gan_jax.io.atomic import atomic_write_text
from gan_jax.state import GANState

logger = logging.getLogger(__name__)

CONFIG_JSON = config.CONFIG_JSON
SPEC_JSON = "data_spec.json"
CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
EVAL_DIR = "eval"
RUN_INFO_JSON = "run_info.json"
REPORT_HTML = "report.html"


def write_config(cfg: config_dict.ConfigDict, workdir: str | os.PathLike) -> Path:
    """Writes `cfg` to WORKDIR/config.json (atomically: never a torn file)."""
    return atomic_write_text(Path(workdir) / CONFIG_JSON, config.to_json(cfg))


def write_spec(spec: DataSpec, workdir: str | os.PathLike) -> Path:
    """Writes the data spec to WORKDIR/data_spec.json."""
    return atomic_write_text(Path(workdir) / SPEC_JSON, spec.to_json())


def read_run_info(workdir: str | os.PathLike) -> list[dict]:
    """The invocations recorded in WORKDIR/run_info.json, oldest first ([] when none or when
    the file cannot be read: it is a record, never needed to train)."""
    path = Path(workdir) / RUN_INFO_JSON
    try:
        sessions = json.loads(path.read_text(encoding="utf-8"))["sessions"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return sessions if isinstance(sessions, list) else []


def record_run_info(
    workdir: str | os.PathLike, start_step: int, end_step: int, started: float
) -> Path:
    """Appends this `train` invocation to WORKDIR/run_info.json: when it ran, the steps it
    took the run from and to, its wall time, and the devices and software it ran on.

    Args:
        started: `time.time()` when the invocation began.
    """
    device = jax.devices()[0]
    session = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "start_step": int(start_step),
        "end_step": int(end_step),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
        "host": platform.node(),
        "processor": _processor_name(),
        "jax": jax.__version__,
        "python": platform.python_version(),
    }
    sessions = [*read_run_info(workdir), session]
    text = json.dumps({"sessions": sessions}, indent=2) + "\n"
    return atomic_write_text(Path(workdir) / RUN_INFO_JSON, text)


def _processor_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_spec(workdir: str | os.PathLike) -> DataSpec | None:
    """The data spec saved with the run, or None (runs from before it was saved)."""
    path = Path(workdir) / SPEC_JSON
    if not path.is_file():
        return None
    try:
        return DataSpec.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as e:
        logger.warning("Ignoring %s (%s); the spec is computed from the data config", path, e)
        return None


def abstract_state(run: build.Run, mesh: Mesh) -> GANState:
    """Shapes, dtypes and replicated shardings of the run's state, for restoring into."""
    shapes = jax.eval_shape(build.init_fn(run), jax.random.key(0))
    sharding = parallel.replicated(mesh)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def load_run(
    workdir: str | os.PathLike, mesh: Mesh | None = None
) -> tuple[config_dict.ConfigDict, build.Run, GANState, Mesh]:
    """Config, parts and latest state of a training run, for sampling and evaluation.

    The config saved with the checkpoint is used (it is the one the state was trained with);
    WORKDIR/config.json is the fallback.

    Raises:
        FileNotFoundError: WORKDIR holds no finished checkpoint.
    """
    workdir = Path(workdir)
    directory = workdir / CHECKPOINT_DIR
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{workdir} has no {CHECKPOINT_DIR}/ directory: train first with "
            f"`gan-jax train --config ... --workdir {workdir}`"
        )
    mesh = parallel.make_mesh() if mesh is None else mesh

    def restore(step: int):
        saved = ckpt.read_config(step=step)
        cfg = (
            config.config_from_dict(saved)
            if saved is not None
            else config.load_config_json(workdir / CONFIG_JSON)
        )
        cfg = build.upgrade_config(cfg)  # runs from before parts were found by name
        run = build.build(cfg, read_spec(workdir))
        state, _, _ = ckpt.restore(abstract_state(run, mesh), step=step)
        return cfg, run, state

    # A damaged newest checkpoint is moved aside and the one before it is used, as in training.
    with Checkpointer(directory) as ckpt:
        _, (cfg, run, state) = ckpt.restore_newest_good(restore)
    logger.info("Loaded %s at step %d", workdir, int(state.step))
    return cfg, run, state, mesh
