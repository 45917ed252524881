"""Side by side on one GPU: the gan_jax video GAN train step vs the same GAN in PyTorch, eager
and `torch.compile`d, in float32 and in bf16 mixed precision.

The models, losses, optimiser and step are those of `benchmarks/vs_pytorch.py` (its module
docstring says what both sides compute); this script moves them to the GPU:

- gan_jax runs its jit step with XLA's convolutions (the "lax" route, the GPU default) and the
  state donated. bf16: the nets' `dtype="bfloat16"` (convolutions and matrix products in bf16,
  parameters, optimiser state, losses and the EMA in float32).
- PyTorch runs the same step eagerly and with G and D wrapped in `torch.compile` (inductor,
  default mode; the optimiser step and EMA stay eager, fused Adam). bf16: `torch.autocast`
  around the forward passes (PyTorch's mixed-precision recipe; parameters stay float32). Eager
  uses the faster of the two memory formats (NCTHW or channels_last_3d), found by a short
  trial, and the compiled twin the same one (each compilation takes a minute or more).
- float32 means TF32 tensor-core convolutions and matrix products in both frameworks: JAX under
  `jax.default_matmul_precision("tensorfloat32")` (its default precision ran some of the step's
  convolutions in full float32 on an H200: 28.7 ms against 20.1 ms with TF32 at 16x32x32),
  PyTorch with `set_float32_matmul_precision("high")` and cuDNN's default `allow_tf32`.

Every (shape, dtype) runs in its own subprocess so that the peak device memory of each is its
own: JAX's `peak_bytes_in_use` (with `XLA_PYTHON_CLIENT_PREALLOCATE=false`; next to it XLA's
own buffer analysis of the compiled step) and PyTorch's `max_memory_allocated`, each counting
parameters, optimiser state, batch and the step's temporaries. Steps are timed alternately
(jax, eager, compiled, jax, ...) after warm-up, synchronising after each. Useful TFLOP/s come
from XLA's cost analysis of the step (the same maths on both sides; `vs_pytorch.py` checks on a
CPU that PyTorch's dispatched multiply-adds match it), and are set against each framework's
measured matmul peak in the same precision (8192^3 products).

    python benchmarks/vs_pytorch_gpu.py                 # 16x32x32 and 16x64x64, batch 32 and 256
    python benchmarks/vs_pytorch_gpu.py --shapes 16x64x64 --batches 64 --dtypes bfloat16

`--json FILE` also writes every row as JSON. Needs a CUDA build of jax and of torch.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vs_pytorch import (  # noqa: E402
    build_jax_step,
    build_torch_models,
    make_torch_step,
    parse_shape,
    set_memory_format,
    xla_flops,
    xla_memory_bytes,
)

from gan_jax.models.layers import DTYPES  # noqa: E402

MIB = 2.0**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes", nargs="+", type=parse_shape, default=[(16, 32, 32), (16, 64, 64)]
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[32, 256], help="clips per step")
    parser.add_argument("--dtypes", nargs="+", choices=tuple(DTYPES), default=list(DTYPES))
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--width", type=int, default=64, help="G's last hidden width")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--z-dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each variant")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds for each (shape, batch, dtype)"
    )
    parser.add_argument(
        "--one", nargs=3, metavar=("SHAPE", "BATCH", "DTYPE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if min(args.batches) < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--batches and --steps must be >= 1 and --warmup >= 0")
    return args


def _sync(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peaks(jax, torch, device: str, n: int) -> dict[str, dict[str, float]]:
    """Best-of-5 TFLOP/s of an n^3 product per dtype, {"float32"|"bfloat16": {jax, torch}}."""
    import jax.numpy as jnp

    peaks = {}
    for name, jdt, tdt in (
        ("float32", jnp.float32, torch.float32),
        ("bfloat16", jnp.bfloat16, torch.bfloat16),
    ):
        a_j = jax.random.normal(jax.random.key(0), (n, n), jdt)
        b_j = jax.random.normal(jax.random.key(1), (n, n), jdt)
        a_t = torch.randn(n, n, device=device, dtype=tdt)
        b_t = torch.randn(n, n, device=device, dtype=tdt)
        dot = jax.jit(lambda x, y: x @ y)
        jax.block_until_ready(dot(a_j, b_j))
        torch.mm(a_t, b_t)
        _sync(torch, device)
        best_j, best_t = float("inf"), float("inf")
        for _ in range(5):
            start = time.perf_counter()
            jax.block_until_ready(dot(a_j, b_j))
            best_j = min(best_j, time.perf_counter() - start)
            start = time.perf_counter()
            torch.mm(a_t, b_t)
            _sync(torch, device)
            best_t = min(best_t, time.perf_counter() - start)
        flops = 2.0 * n**3
        peaks[name] = {"jax": flops / best_j / 1e12, "torch": flops / best_t / 1e12}
        del a_j, b_j, a_t, b_t
    return peaks


def useful_step_flops(jax, clip, args, batch, key) -> float:
    """FLOPs of one float32 step from XLA's cost analysis of the program compiled for the CPU.

    XLA:GPU hands convolutions to cuDNN as custom calls, which its cost analysis counts as
    zero FLOPs, so the count comes from the same step (plain lax convolutions) built for the
    host; it is the maths' useful work, the same for both dtypes and both frameworks."""
    cpu = jax.devices("cpu")[0]
    step, state, _ = build_jax_step(jax, clip, args, "lax")
    on_cpu = jax.device_put((state, batch, key), cpu)
    return xla_flops(step.lower(*on_cpu).compile())


def run_one(shape, batch: int, dtype_name: str, args) -> dict:
    """One (shape, batch, dtype): gan_jax, PyTorch eager and compiled; returns the row."""
    import jax
    import numpy as np
    import torch

    device = "cuda" if jax.default_backend() == "gpu" else "cpu"
    torch.set_float32_matmul_precision("high")  # TF32, as JAX's "tensorfloat32" below
    clip = (*shape, args.channels)
    real_np = np.random.default_rng(0).uniform(-1, 1, (batch, *clip)).astype(np.float32)
    key = jax.random.key(1)
    jdtype = DTYPES[dtype_name]  # the nets' `dtype` setting
    autocast = {"float32": None, "bfloat16": torch.bfloat16}[dtype_name]

    # First, so that its state on the device is gone before the measured step allocates.
    useful_flops = useful_step_flops(jax, clip, args, {"video": real_np}, key)
    step, state, cfg = build_jax_step(jax, clip, args, "lax", dtype=jdtype)
    batch_j = {"video": jax.device_put(real_np)}
    precision = "tensorfloat32" if dtype_name == "float32" else None  # acts when tracing
    with jax.default_matmul_precision(precision):
        compiled = step.lower(state, batch_j, key).compile()
    xla_bytes = xla_memory_bytes(compiled)

    def jax_step():
        nonlocal state
        state, metrics = compiled(state, batch_j, key)
        jax.block_until_ready((state, metrics))

    real_t = torch.from_numpy(real_np).permute(0, 4, 1, 2, 3).to(device)  # NTHWC -> NCTHW

    def allocated() -> int:
        return torch.cuda.memory_allocated() if device == "cuda" else 0

    def torch_variant(compile_it: bool, formats):
        """(step callable, chosen memory format, {format: ms}, bytes allocated before it) of
        a fresh PyTorch twin; the twins of the formats not chosen are freed."""
        trials = {}
        before = allocated()
        for name in formats:
            g_t, d_t = build_torch_models(torch, clip, args)
            g_t, d_t = g_t.to(device), d_t.to(device)
            fmt = set_memory_format(torch, g_t, d_t, name)
            if compile_it:
                g_t, d_t = torch.compile(g_t), torch.compile(d_t)
            fn = make_torch_step(
                torch, g_t, d_t, args.z_dim, cfg.ema_decay, device=device, autocast_dtype=autocast
            )
            real = real_t.contiguous(memory_format=fmt)
            for _ in range(max(args.warmup, 2)):  # compiles both BN-momentum variants
                fn(real)
            _sync(torch, device)
            start = time.perf_counter()
            for _ in range(3):
                fn(real)
            _sync(torch, device)
            trials[name] = ((time.perf_counter() - start) / 3 * 1e3, fn, real)
        best = min(trials, key=lambda k: trials[k][0])
        _, fn, real = trials[best]
        trial_ms = {k: v[0] for k, v in trials.items()}
        trials.clear()  # frees the other format's twin, its optimiser state and batch copy
        del g_t, d_t
        if device == "cuda":
            torch.cuda.empty_cache()

        def once():
            fn(real)
            _sync(torch, device)

        return once, best, trial_ms, before

    variants = {"gan_jax": jax_step}
    formats = {}
    baseline = {}  # bytes other variants held when each was built (the shared batch too)
    variants["torch eager"], chosen, trial_ms, baseline["torch eager"] = torch_variant(
        False, ("contiguous", "channels_last_3d")
    )
    formats["torch eager"] = {"chosen": chosen, "trial_ms": trial_ms}
    if not args.no_compile:  # in eager's faster format: each compilation takes minutes
        variants["torch.compile"], _, trial_ms, baseline["torch.compile"] = torch_variant(
            True, (chosen,)
        )
        formats["torch.compile"] = {"chosen": chosen, "trial_ms": trial_ms}
    for _ in range(args.warmup):
        for fn in variants.values():
            fn()
    times = {name: [] for name in variants}
    for _ in range(args.steps):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

    peak = {}
    if device == "cuda":
        peak["gan_jax"] = jax.devices()[0].memory_stats()["peak_bytes_in_use"]
        for name in variants:
            if name == "gan_jax":
                continue
            torch.cuda.reset_peak_memory_stats()
            variants[name]()
            # Its own parameters, optimiser state, EMA and temporaries, plus the batch.
            batch_bytes = real_t.numel() * real_t.element_size()
            peak[name] = torch.cuda.max_memory_allocated() - baseline[name] + batch_bytes
    row = {
        "shape": "x".join(map(str, clip)),
        "batch": batch,
        "dtype": dtype_name,
        "useful_gflop_per_step": useful_flops / 1e9,
        "xla_memory_analysis_mib": xla_bytes / MIB,
        "torch_formats": formats,
        "variants": {},
    }
    for name, ts in times.items():
        median = statistics.median(ts)
        row["variants"][name] = {
            "median_ms": median * 1e3,
            "min_ms": min(ts) * 1e3,
            "clips_per_s": batch / median,
            "useful_tflops": useful_flops / median / 1e12,
            "peak_device_mib": peak[name] / MIB if name in peak else None,
        }
    return row


def print_row(row: dict, peaks: dict) -> None:
    peak = peaks[row["dtype"]]
    print()
    print(
        f"clip {row['shape']} (T x H x W x C), batch {row['batch']}, {row['dtype']}: useful work "
        f"{row['useful_gflop_per_step']:.1f} GFLOP/step; XLA's buffer analysis "
        f"{row['xla_memory_analysis_mib']:.0f} MiB; PyTorch memory formats "
        + "; ".join(
            f"{k}: {v['chosen']} ("
            + ", ".join(f"{f} {ms:.1f} ms" for f, ms in v["trial_ms"].items())
            + ")"
            for k, v in row["torch_formats"].items()
        )
    )
    names = list(row["variants"])
    print(f"{'':<26}" + "".join(f"{n:>15}" for n in names))
    cells = {
        "step, median ms": lambda v, n: f"{v['median_ms']:.2f}",
        "step, min ms": lambda v, n: f"{v['min_ms']:.2f}",
        "clips/s": lambda v, n: f"{v['clips_per_s']:.0f}",
        "useful TFLOP/s": lambda v, n: f"{v['useful_tflops']:.2f}",
        "% of own matmul peak": lambda v, n: (
            f"{100 * v['useful_tflops'] / peak['jax' if n == 'gan_jax' else 'torch']:.2f}"
        ),
        "peak device MiB": lambda v, n: (
            "-" if v["peak_device_mib"] is None else f"{v['peak_device_mib']:.0f}"
        ),
    }
    for label, cell in cells.items():
        print(f"{label:<26}" + "".join(f"{cell(row['variants'][n], n):>15}" for n in names))
    ours = row["variants"]["gan_jax"]["clips_per_s"]
    best = max((v["clips_per_s"], n) for n, v in row["variants"].items() if n != "gan_jax")
    print(f"ratio gan_jax / PyTorch's best ({best[1]}) clips/s: {ours / best[0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        shape, batch, dtype_name = args.one
        print("ROW " + json.dumps(run_one(parse_shape(shape), int(batch), dtype_name, args)))
        return
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax
    import torch

    device = "cuda" if jax.default_backend() == "gpu" else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (smoke run, no GPU)"
    print(
        f"device: {name}; jax {jax.__version__} ({jax.devices()[0].device_kind}), torch "
        f"{torch.__version__}; float32 = TF32 tensor cores in both frameworks"
    )
    torch.set_float32_matmul_precision("high")
    peaks = matmul_peaks(jax, torch, device, args.matmul_size)
    print(
        f"matmul peak ({args.matmul_size}^3, best of 5), TFLOP/s: "
        + "; ".join(f"{k}: XLA {v['jax']:.0f}, PyTorch {v['torch']:.0f}" for k, v in peaks.items())
    )

    passthrough = [
        f"--channels={args.channels}",
        f"--width={args.width}",
        f"--depth={args.depth}",
        f"--z-dim={args.z_dim}",
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
    ] + (["--no-compile"] if args.no_compile else [])
    rows = []
    for shape in args.shapes:
        for batch in args.batches:
            for dtype_name in args.dtypes:
                one = ["x".join(map(str, shape)), str(batch), dtype_name]
                try:
                    proc = subprocess.run(
                        [sys.executable, __file__, "--one", *one, *passthrough],
                        capture_output=True,
                        text=True,
                        timeout=args.timeout,
                    )
                except subprocess.TimeoutExpired:
                    print(f"\n{' '.join(one)}: over --timeout={args.timeout:.0f} s, skipped")
                    continue
                found = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
                if proc.returncode or not found:
                    print(
                        f"\n{' '.join(one)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
                    )
                    continue
                row = json.loads(found[-1][4:])
                rows.append(row)
                print_row(row, peaks)
                sys.stdout.flush()
                if args.json:  # after every row: a run cut short keeps what it measured
                    with open(args.json, "w") as f:
                        json.dump(
                            {"device": name, "matmul_peak_tflops": peaks, "rows": rows}, f, indent=1
                        )


if __name__ == "__main__":
    main()
