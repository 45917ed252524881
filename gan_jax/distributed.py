"""Multi-process set-up on JAX's own runtime (`jax.distributed.initialize`).

A run is multi-process when the command line or the environment asks for it:

* flags `--coordinator-address HOST:PORT --num-processes N --process-id I`, or
* environment `JAX_COORDINATOR_ADDRESS` with `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`, or
* environment `GAN_JAX_DISTRIBUTED=1`: JAX detects the cluster (SLURM, Open MPI, Kubernetes
  jobsets, Cloud TPU pods) and fills in all three.

Must run before anything touches a JAX backend (`jax.devices()`, creating arrays).
"""

from __future__ import annotations

import argparse
import logging
import os

import jax

AUTO_ENV = "GAN_JAX_DISTRIBUTED"


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds `--coordinator-address`, `--num-processes` and `--process-id` to `parser`."""
    group = parser.add_argument_group("multi-process (jax.distributed)")
    group.add_argument("--coordinator-address", help="HOST:PORT of process 0's coordinator")
    group.add_argument("--num-processes", type=int, help="number of processes in the run")
    group.add_argument("--process-id", type=int, help="this process's index, 0 .. N-1")


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} must be an integer") from None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Starts JAX's distributed runtime if flags or environment ask for it.

    Args:
        coordinator_address: "HOST:PORT" of process 0 (default: `JAX_COORDINATOR_ADDRESS`).
        num_processes: processes in the run (default: `JAX_NUM_PROCESSES`).
        process_id: this process's index (default: `JAX_PROCESS_ID`).

    Returns:
        True if `jax.distributed.initialize` was called.

    Raises:
        ValueError: some but not all of the three settings are given and the cluster cannot
            supply the rest.
    """
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    auto = os.environ.get(AUTO_ENV, "").lower() in ("1", "true", "auto")
    given = (coordinator_address, num_processes, process_id)
    if not auto and all(value is None for value in given):
        return False
    # Cross-process collectives on the CPU backend (used by CPU-only runs and tests). gloo is
    # JAX 0.10's default; set it anyway so an older default ("none") cannot silently apply.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
        )
    except ValueError as e:
        raise ValueError(
            f"jax.distributed.initialize failed: {e}. Give all of --coordinator-address, "
            "--num-processes and --process-id (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
            f"JAX_PROCESS_ID), or set {AUTO_ENV}=1 on a cluster JAX can detect."
        ) from e
    logging.info(
        "Process %d of %d: %d local devices, %d in all",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    return True
