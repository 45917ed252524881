"""Benchmark gan_jax.ops.conv: forward+backward time of each impl on video DCGAN layers.

For every layer and impl this times one jitted program computing the layer output and the
gradients w.r.t. input and kernel, and prints a table with the median time, the speed-up over
"lax", and GFLOP/s. FLOPs come from XLA's cost analysis of the "lax" program (the useful work);
"own GFLOP" is the cost analysis of each impl's program, which for the CPU routes ("fast":
matrix products, "s2d": stride-1 convolutions, both on space-to-depth blocks) also counts taps
on the materialized zero padding and on zero kernel taps (k not divisible by the stride).
"lax" and "fast" are the library's routes; "s2d" (``s2d_conv.py`` next to this script, the
previous CPU route) exists only for this comparison.

Example (small, quick):
    .venv/bin/python benchmarks/conv_ops.py --batch 2 --channel-divisor 4 --repeats 3
"""

import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import s2d_conv  # benchmarks/s2d_conv.py: benchmarks/ is sys.path[0] when this script runs

from gan_jax.ops import conv as conv_ops

IMPLS = (*conv_ops.IMPLS, "s2d")


# Video DCGAN generator layers (kernel 4, stride 2, padding 1 in T, H and W):
# (Cin, Cout, input [T, H, W]); the output doubles every spatial dim.
GENERATOR_LAYERS = (
    (512, 256, (1, 4, 4)),
    (256, 128, (2, 8, 8)),
    (128, 64, (4, 16, 16)),
    (64, 3, (8, 32, 32)),
)
KERNEL = (4, 4, 4)
STRIDES = (2, 2, 2)
PADDING = ((1, 1),) * 3


def _layers(channel_divisor: int) -> list[tuple[str, str, int, int, tuple[int, ...]]]:
    """(op, label, Cin, Cout, input spatial) for the G transposed convs and mirrored D convs."""
    layers = []
    for cin, cout, spatial in GENERATOR_LAYERS:
        cin_s, cout_s = max(cin // channel_divisor, 1), max(cout // channel_divisor, 1)
        if cout == 3:  # The RGB layer keeps 3 channels.
            cout_s = 3
        out_spatial = tuple(2 * s for s in spatial)
        layers.append(("conv_transpose", f"G {cin_s}->{cout_s}", cin_s, cout_s, spatial))
        layers.append(("conv", f"D {cout_s}->{cin_s}", cout_s, cin_s, out_spatial))
    # Generator first, then the discriminator from the image end down.
    g_layers = [layer for layer in layers if layer[0] == "conv_transpose"]
    d_layers = [layer for layer in layers if layer[0] == "conv"][::-1]
    return g_layers + d_layers


def _program(op: str, impl: str):
    """Jitted (x, kernel, cotangent) -> (output, grad x, grad kernel) for one impl."""
    if impl == "s2d":
        fn = s2d_conv.conv if op == "conv" else s2d_conv.conv_transpose
    else:
        library_fn = conv_ops.conv if op == "conv" else conv_ops.conv_transpose
        fn = functools.partial(library_fn, impl=impl)

    def forward_backward(x, kernel, cotangent):
        out, vjp = jax.vjp(lambda x, k: fn(x, k, STRIDES, PADDING), x, kernel)
        grad_x, grad_kernel = vjp(cotangent)
        return out, grad_x, grad_kernel

    return jax.jit(forward_backward)


def _flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):  # Older jax returns one dict per device program.
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


def _median_seconds(compiled, args, repeats: int) -> float:
    jax.block_until_ready(compiled(*args))  # Warm-up, excluded.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="batch size N")
    parser.add_argument(
        "--channel-divisor", type=int, default=1, help="divide all channel counts (but RGB) by this"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per point (median)")
    parser.add_argument(
        "--impls",
        default="lax,fast,s2d",
        help=f"comma-separated impls from {IMPLS}; lax is always run as the baseline",
    )
    parser.add_argument(
        "--ops", default="conv_transpose,conv", help="comma-separated: conv_transpose, conv"
    )
    args = parser.parse_args(argv)

    impls = [name for name in args.impls.split(",") if name]
    unknown = [name for name in impls if name not in IMPLS]
    if unknown:
        parser.error(f"--impls: unknown {unknown}; choose from {IMPLS}")
    impls = ["lax"] + [name for name in impls if name != "lax"]
    ops = [name for name in args.ops.split(",") if name]
    if not set(ops) <= {"conv", "conv_transpose"}:
        parser.error(f"--ops: got {ops}; choose from conv_transpose, conv")

    print(
        f"backend={jax.default_backend()} devices={jax.device_count()} batch={args.batch} "
        f"channel_divisor={args.channel_divisor} repeats={args.repeats} "
        f"kernel={KERNEL} strides={STRIDES} padding={PADDING} (forward + backward, float32)"
    )
    header = (
        f"{'op':<15}{'layer':<12}{'input [T,H,W]':<15}{'impl':<7}{'ms':>10}{'x lax':>8}"
        f"{'GFLOP':>9}{'GFLOP/s':>9}{'own GFLOP':>11}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for op, label, cin, cout, spatial in _layers(args.channel_divisor):
        if op not in ops:
            continue
        x = jnp.asarray(rng.standard_normal((args.batch, *spatial, cin), dtype=np.float32))
        kernel = jnp.asarray(rng.standard_normal((*KERNEL, cin, cout), dtype=np.float32))
        fn = conv_ops.conv if op == "conv" else conv_ops.conv_transpose
        out_shape = jax.eval_shape(
            lambda x, k, fn=fn: fn(x, k, STRIDES, PADDING, impl="lax"), x, kernel
        )
        cotangent = jnp.asarray(rng.standard_normal(out_shape.shape, dtype=np.float32))
        call_args = (x, kernel, cotangent)
        lax_flops = lax_seconds = None
        for impl in impls:
            compiled = _program(op, impl).lower(*call_args).compile()
            flops = _flops(compiled)
            seconds = _median_seconds(compiled, call_args, args.repeats)
            if impl == "lax":
                lax_flops, lax_seconds = flops, seconds
            print(
                f"{op:<15}{label:<12}{'x'.join(map(str, spatial)):<15}{impl:<7}"
                f"{seconds * 1e3:>10.2f}{lax_seconds / seconds:>8.2f}{lax_flops / 1e9:>9.3f}"
                f"{lax_flops / seconds / 1e9:>9.1f}{flops / 1e9:>11.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
