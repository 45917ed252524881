"""Steady-state throughput of the video GAN train step on the current backend.

Prints clips/s and achieved GFLOP/s of one full step (D update + G update + EMA, Adam for
each, non-saturating loss), warm-up (compilation and the first steps) excluded.

FLOPs come from XLA's cost analysis of the step written with plain `lax` convolutions: that
is the useful work of the maths, whatever formulation runs. (The CPU route's own count also
includes the zero taps it multiplies, so it would flatter it.)

    .venv/bin/python benchmarks/train_step.py --frames 16 --size 32 --batch 32
    .venv/bin/python benchmarks/train_step.py --frames 16 --size 64 --batch 8
"""

import argparse
import os
import statistics
import time

import jax
import numpy as np
import optax

from gan_jax import cpu_memory, parallel
from gan_jax.models.conv_ops import default_impl
from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator
from gan_jax.state import create_state
from gan_jax.train_step import StepConfig, make_train_step


def build(args, conv_impl: str):
    clip = (args.frames, args.size, args.size, args.channels)
    g = VideoGenerator(
        clip_shape=clip,
        z_dim=args.z_dim,
        base_width=args.width,
        depth=args.depth,
        conv_impl=conv_impl,
    )
    d = VideoDiscriminator(
        clip_shape=clip, base_width=args.width, depth=args.depth, conv_impl=conv_impl
    )
    g_tx = optax.adam(2e-4, b1=0.5, b2=0.999)
    d_tx = optax.adam(2e-4, b1=0.5, b2=0.999)
    mesh = parallel.make_mesh()
    step = parallel.jit_train_step(
        make_train_step(
            g, d, g_tx, d_tx, StepConfig(), data_sharding=parallel.batch_sharding(mesh)
        ),
        mesh,
    )
    state = parallel.create_replicated(
        lambda k: create_state(k, g, d, g_tx, d_tx), jax.random.key(0), mesh
    )
    rng = np.random.default_rng(0)
    batch = parallel.global_batch(
        {"video": rng.uniform(-1, 1, (args.batch, *clip)).astype(np.float32)}, mesh
    )
    return step, state, batch


def cost_flops(step, state, batch) -> float:
    cost = step.lower(state, batch, jax.random.key(1)).compile().cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0]
    return float(cost.get("flops", float("nan")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="H = W")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32, help="global batch")
    parser.add_argument("--width", type=int, default=64, help="G's last hidden width")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--z-dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--conv-impl", default=None, help="lax | fast (default: per backend)")
    args = parser.parse_args()
    # As the gan-jax command does: XLA:CPU's per-step temporaries reuse freed pages.
    cpu_memory.keep_freed_memory()

    impl = args.conv_impl or default_impl()
    # Useful FLOPs: the plain-lax program (compiled, never run).
    lax_step, lax_state, lax_batch = build(args, "lax")
    flops = cost_flops(lax_step, lax_state, lax_batch)
    del lax_step, lax_state, lax_batch

    step, state, batch = build(args, impl)
    own_flops = cost_flops(step, state, batch)
    key = jax.random.key(1)
    start = time.perf_counter()
    for _ in range(args.warmup):
        state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    warmup_s = time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        state, metrics = step(state, batch, key)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)

    widths = [args.width * 2**i for i in reversed(range(args.depth))]
    print(
        f"backend {jax.default_backend()} ({jax.device_count()} device(s), "
        f"{os.cpu_count()} CPU cores), conv impl {impl}"
    )
    print(
        f"clip {args.frames}x{args.size}x{args.size}x{args.channels}, batch {args.batch}, "
        f"G {' -> '.join(map(str, widths))} -> {args.channels}, D mirrored"
    )
    print(f"warm-up (compile + {args.warmup} steps): {warmup_s:.1f} s")
    print(f"step: median {median * 1e3:.1f} ms over {args.steps} (min {min(times) * 1e3:.1f})")
    print(f"clips/s: {args.batch / median:.2f}")
    print(f"useful GFLOP/step (lax cost analysis): {flops / 1e9:.2f}")
    print(f"achieved GFLOP/s: {flops / median / 1e9:.1f}")
    print(f"executed program's own GFLOP/step: {own_flops / 1e9:.2f}")


if __name__ == "__main__":
    main()
