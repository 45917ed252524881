"""Data parallelism: a 1-D device mesh, shardings, global batches, the jitted and pmapped steps.

Main path: `jit` over a `Mesh` with the batch sharded on the "data" axis and the state
replicated; the compiler inserts the gradient all-reduce. Batches are assembled with
`jax.make_array_from_process_local_data`, so the same code runs on one host or many
(after `jax.distributed.initialize`). A `pmap` form of the same step is offered for users who
ask for it; `pmap` is in maintenance mode since JAX 0.8.

On CPU the jitted step is compiled with XLA's memory-optimized scheduler
(`step_compiler_options`): it orders the step's operations so that fewer of the convolution
routes' large transients (Winograd-transformed inputs, im2col matrices) live at once. On the
video DCGAN of `benchmarks/vs_pytorch.py` (batch 32) XLA's temporaries fell from 563 to 483 MiB
at 16x32x32 and from 1492 to 1151 MiB at 16x64x64, at the same speed (within 2.5 %, both
ways); the main job's step from 68 to 42 MiB. It is not better everywhere: the tests' tiny
video GAN split over 8 fake CPU devices keeps 153 KiB of temporaries under it against 126
under XLA's default (on one device 516 against 599). The numbers are the same bits either
way. `GAN_JAX_XLA_CPU_SCHEDULER=default` keeps XLA's own choice. `pmap` takes no compile
options: its step keeps XLA's default.
"""

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"
PMAP_AXIS = "batch"
SCHEDULER_ENV_VAR = "GAN_JAX_XLA_CPU_SCHEDULER"
# Values of SCHEDULER_ENV_VAR -> XLA's `xla_cpu_scheduler_type` (None: XLA's default).
_CPU_SCHEDULERS = {"memory": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED", "default": None}


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named "data" over `devices` (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split over the "data" axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def global_batch(host_batch: Mapping[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
    """Turns this process's share of a batch into global arrays sharded on "data".

    Args:
        host_batch: arrays `[N_local, ...]`; every process passes its own rows.
        mesh: the mesh from `make_mesh`.

    Returns:
        The same keys, as global arrays `[N_local * process_count, ...]`.
    """
    sharding = batch_sharding(mesh)
    num_local = len(mesh.local_devices)
    out = {}
    for name, value in host_batch.items():
        value = np.asarray(value)
        if value.ndim == 0 or value.shape[0] % num_local:
            raise ValueError(
                f"batch[{name!r}] has shape {value.shape}; its leading (batch) dimension must "
                f"be divisible by the {num_local} local devices. Choose a batch size that is a "
                f"multiple of {num_local * jax.process_count()} (all devices)."
            )
        out[name] = jax.make_array_from_process_local_data(sharding, value)
    return out


def create_replicated(create_fn: Callable[[jax.Array], Any], key: jax.Array, mesh: Mesh) -> Any:
    """Runs `create_fn(key)` under jit with replicated outputs, so the state is born on device."""
    return jax.jit(create_fn, out_shardings=replicated(mesh))(key)


@functools.cache
def cpu_scheduler() -> str:
    """XLA:CPU's scheduler for the train step, read from `GAN_JAX_XLA_CPU_SCHEDULER` on the
    first call of the process: "memory" (the default) or "default" (XLA's own).
    `cpu_scheduler.cache_clear()` reads it again.

    Raises:
        ValueError: if the variable holds another value.
    """
    value = os.environ.get(SCHEDULER_ENV_VAR, "").strip() or "memory"
    if value not in _CPU_SCHEDULERS:
        raise ValueError(
            f"environment variable {SCHEDULER_ENV_VAR}={value!r} is invalid; set it to "
            f"{' or '.join(_CPU_SCHEDULERS)}, or unset it (memory)."
        )
    return value


def step_compiler_options(devices: Sequence[jax.Device]) -> dict[str, str] | None:
    """XLA compile options for a train step over `devices`: on CPU devices the scheduler of
    `cpu_scheduler` (memory-optimized unless the environment says otherwise); None elsewhere
    (GPU and TPU keep XLA's choices)."""
    scheduler = _CPU_SCHEDULERS[cpu_scheduler()]
    if scheduler is None or any(device.platform != "cpu" for device in devices):
        return None
    return {"xla_cpu_scheduler_type": scheduler}


def jit_train_step(step_fn: Callable, mesh: Mesh) -> Callable:
    """`jit` of a step built with `data_sharding=batch_sharding(mesh)`: state replicated and
    donated, batch sharded on "data", key and metrics replicated; compiled with
    `step_compiler_options` (on CPU, XLA's memory-optimized scheduler)."""
    repl, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(
        step_fn,
        in_shardings=(repl, data, repl),
        out_shardings=(repl, repl),
        donate_argnums=(0,),
        compiler_options=step_compiler_options(mesh.devices.flat),
    )


def pmap_train_step(step_fn: Callable, devices: Sequence[jax.Device] | None = None) -> Callable:
    """`pmap` of a step built with `axis_name=PMAP_AXIS`.

    The state comes in replicated along a leading device axis (`replicate_for_pmap`), the batch
    as `[num_devices, N_per_device, ...]`, the key unmapped. The state is donated.
    """
    return jax.pmap(
        step_fn,
        axis_name=PMAP_AXIS,
        in_axes=(0, 0, None),
        devices=None if devices is None else list(devices),
        donate_argnums=(0,),
    )


def replicate_for_pmap(tree: Any, num_devices: int) -> Any:
    """Adds a leading device axis of size `num_devices` to every leaf (for `pmap` inputs)."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_devices, *jnp.shape(x))), tree)


def unreplicate(tree: Any) -> Any:
    """First device's copy of a pmapped tree."""
    return jax.tree.map(lambda x: x[0], tree)


def split_for_pmap(batch: Mapping[str, Any], num_devices: int) -> dict[str, np.ndarray]:
    """`[N, ...]` -> `[num_devices, N / num_devices, ...]`."""
    out = {}
    for name, value in batch.items():
        value = np.asarray(value)
        if value.shape[0] % num_devices:
            raise ValueError(
                f"batch[{name!r}] leading dimension {value.shape[0]} is not divisible by "
                f"{num_devices} devices."
            )
        out[name] = value.reshape(num_devices, value.shape[0] // num_devices, *value.shape[1:])
    return out
