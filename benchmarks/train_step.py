"""Steady-state throughput of any run config's train step on the current backend.

Prints clips/s, achieved GFLOP/s and peak memory of one full step (n_critic D updates + G
update + EMA), warm-up (compilation and the first steps) excluded. Peak memory is XLA's buffer
analysis of the compiled step and, on the host, the growth of the bytes malloc hands out
during one step (as `vs_pytorch.py` measures it; a device's memory is not seen there). The run
is built from a config file through `gan_jax.build`, exactly as `gan-jax train` builds it, so a
new model family, loss or objective is benchmarked without new code. Batches are random arrays
shaped like the data's (no data is read): clips uniform in [-1, 1], labels uniform over the
classes.

FLOPs come from XLA's cost analysis of the same step traced with plain `lax` convolutions:
that is the useful work of the maths, whatever formulation runs. (The CPU route's own count
also includes the zero taps it multiplies, so it would flatter it.)

    .venv/bin/python benchmarks/train_step.py --config experiments/configs/dcgan_benchmark.py
    .venv/bin/python benchmarks/train_step.py --config experiments/configs/bouncing_shapes.py
    .venv/bin/python benchmarks/train_step.py --config experiments/configs/dcgan_benchmark.py \
        --config.data.height=64 --config.data.width=64 --config.batch_size=8

`--analyse-only` compiles the step with plain `lax` convolutions (the GPU and TPU route) and
prints its useful FLOPs and XLA's memory analysis of the compiled program (parameters and
optimiser state, batch, temporaries) without running it: sizes for an accelerator, worked out
on a CPU. XLA:GPU fuses and schedules differently, so take the temporaries as an estimate.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

import jax
import numpy as np

from gan_jax import build, config, cpu_memory, parallel
from gan_jax.ops.conv import default_impl, with_route

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from vs_pytorch import peak_memory_growth, xla_memory_bytes  # noqa: E402

MIB = 2.0**20


def random_batch(spec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A global batch shaped like the data's: floats uniform in [-1, 1], labels over classes."""
    batch = {}
    for key, array in spec.example_batch(spec.batch_size).items():
        if np.issubdtype(array.dtype, np.integer):
            high = spec.num_classes or 1
            batch[key] = rng.integers(0, high, array.shape).astype(array.dtype)
        else:
            batch[key] = rng.uniform(-1, 1, array.shape).astype(array.dtype)
    return batch


def build_step(cfg, impl: str):
    """The jitted step (convolutions on route `impl`), a fresh state and a random global batch
    of the run `cfg`."""
    spec = build.validate(cfg)
    run = build.build(cfg, spec)
    mesh = parallel.make_mesh()
    step_fn = build.step_fn(run, data_sharding=parallel.batch_sharding(mesh))
    step = parallel.jit_train_step(with_route(impl, step_fn), mesh)
    with jax.threefry_partitionable(False):
        state = parallel.create_replicated(build.init_fn(run), jax.random.key(0), mesh)
    batch = parallel.global_batch(random_batch(spec, np.random.default_rng(0)), mesh)
    return step, state, batch, run


def compile_step(step, state, batch):
    return step.lower(state, batch, jax.random.key(1)).compile()


def cost_flops(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0]
    return float(cost.get("flops", float("nan")))


def main() -> None:
    overrides, argv = config.split_overrides(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=pathlib.Path,
        default=ROOT / "experiments" / "configs" / "dcgan_benchmark.py",
        help="a run config (experiments/configs/*.py); --config.KEY=VALUE overrides apply",
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--conv-impl", default=None, help="lax | fast (default: per backend)")
    parser.add_argument(
        "--analyse-only", action="store_true", help="FLOPs and memory of the lax step; no run"
    )
    args = parser.parse_args(argv)
    # As the gan-jax command does: XLA:CPU's per-step temporaries reuse freed pages.
    cpu_memory.keep_freed_memory()
    cfg = config.apply_overrides(config.load_config_file(args.config), overrides)

    if args.analyse_only:
        analyse(args, cfg, overrides)
        return
    impl = args.conv_impl or default_impl()
    step, state, batch, run = build_step(cfg, impl)
    start = time.perf_counter()
    step = compile_step(step, state, batch)  # runs as compiled: one compilation, not two
    compile_s = time.perf_counter() - start
    own_flops = cost_flops(step)
    # Useful FLOPs: the plain-lax program, compiled, never run (the same one on route lax).
    flops = own_flops if impl == "lax" else cost_flops(compile_step(*build_step(cfg, "lax")[:3]))
    key = jax.random.key(1)
    start = time.perf_counter()
    for _ in range(args.warmup):
        state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    warmup_s = compile_s + time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        state, metrics = step(state, batch, key)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)

    def one_step():
        nonlocal state
        state, metrics = step(state, batch, key)
        jax.block_until_ready((state, metrics))

    host_bytes, host_what = peak_memory_growth(one_step)

    params = [sum(x.size for x in jax.tree.leaves(t)) for t in (state.g_params, state.d_params)]
    print(cpu_description())
    print(
        f"backend {jax.default_backend()} ({jax.device_count()} device(s), "
        f"{os.cpu_count()} CPU cores), conv route {impl}"
    )
    print(
        f"config {args.config.name} {' '.join(f'{k}={v}' for k, v in overrides)}: "
        f"G {cfg.g.name} ({params[0]:,} params), D {cfg.d.name} ({params[1]:,} params), "
        f"loss {cfg.loss.name}, sample {run.sample_shape}, batch {cfg.batch_size}"
    )
    print(f"warm-up (compile + {args.warmup} steps): {warmup_s:.1f} s")
    print(f"step: median {median * 1e3:.1f} ms over {args.steps} (min {min(times) * 1e3:.1f})")
    print(f"clips/s: {cfg.batch_size / median:.2f}")
    print(f"useful GFLOP/step (lax cost analysis): {flops / 1e9:.2f}")
    print(f"achieved GFLOP/s: {flops / median / 1e9:.1f}")
    print(f"executed program's own GFLOP/step: {own_flops / 1e9:.2f}")
    print(
        f"peak memory: XLA's buffer analysis {xla_memory_bytes(step) / MIB:.0f} MiB (state, "
        f"batch and temporaries; donated buffers once); host, growth during one step "
        f"({host_what}) {host_bytes / MIB:.0f} MiB"
    )


def analyse(args, cfg, overrides) -> None:
    """Prints the lax step's parameters, useful FLOPs and compiled memory, per device."""
    step, state, batch, run = build_step(cfg, "lax")
    compiled = step.lower(state, batch, jax.random.key(1)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    memory = compiled.memory_analysis()
    params = [sum(x.size for x in jax.tree.leaves(t)) for t in (state.g_params, state.d_params)]
    gib = 2.0**30
    print(
        f"config {args.config.name} {' '.join(f'{k}={v}' for k, v in overrides)}: "
        f"G {cfg.g.name} ({params[0]:,} params), D {cfg.d.name} ({params[1]:,} params), "
        f"loss {cfg.loss.name}, sample {run.sample_shape}, batch {cfg.batch_size} on "
        f"{jax.device_count()} device(s)"
    )
    print(f"useful GFLOP/step (lax cost analysis): {float(cost.get('flops', 0.0)) / 1e9:.1f}")
    print(
        f"memory per device: state and batch {memory.argument_size_in_bytes / gib:.2f} GiB, "
        f"temporaries {memory.temp_size_in_bytes / gib:.2f} GiB, outputs "
        f"{memory.output_size_in_bytes / gib:.2f} GiB (aliased with the donated state: "
        f"{memory.alias_size_in_bytes / gib:.2f} GiB)"
    )


def cpu_description() -> str:
    """`lscpu`'s model name and vector extensions (AVX2, AVX-512, AMX), for every table."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "CPU: lscpu unavailable"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    model = fields.get("Model name", "?").strip()
    flags = fields.get("Flags", "").split()
    wanted = [f for f in flags if f in ("avx2", "fma") or f.startswith(("avx512", "amx"))]
    return f"CPU: {model}; vector extensions: {' '.join(wanted) or 'none of AVX2/AVX-512/AMX'}"


if __name__ == "__main__":
    main()
