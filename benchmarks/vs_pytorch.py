"""Side by side on this CPU: the gan_jax video GAN train step vs the same GAN in PyTorch eager.

Both sides run the same maths: the video DCGAN of `gan_jax.models.video_dcgan` (G: Dense ->
BN/ReLU -> 3-D transposed convs -> tanh; D: mirrored strided 3-D convs, BN, LeakyReLU(0.2),
Dense), the non-saturating loss, Adam(2e-4, b1=0.5, b2=0.999) for each, one D update then one G
update against the new D (fresh noise for each), the EMA of G, and the step's metrics. The
PyTorch step only computes the gradients the maths needs (`torch.autograd.grad` w.r.t. G's
parameters in the G update, so no D weight gradients), uses fused Adam, in-place activations
and the faster of the two memory formats, so the reference is PyTorch at its best, not a
strawman. Batch norm: each D call normalises its own batch (real, then fake), G's running
statistics are updated by the G update only and D's by the D update only, as in
`gan_jax.train_step`.

Before timing, the script checks that both models have the same parameter counts and that
both steps do the same multiply-adds: ours from XLA's cost analysis of the step compiled with
plain `lax` convolutions (the useful work, whatever route runs), PyTorch's by counting the
valid (non-padding) taps of every convolution, its gradients and every matrix product that
the PyTorch step dispatches. It then times the two steps alternately (jax, torch, jax, ...)
after warm-up, so both see the same machine load, and prints clips/s, the ratio, GFLOP/s,
the machine's matmul peak in the step's dtype (a large `jnp.dot` and `torch.mm`) and peak
memory (XLA's own buffer analysis, and the peak growth of the bytes malloc has handed out during
one step of each). Both frameworks run in this process under the allocator policy the
`gan-jax` command sets (`gan_jax.cpu_memory.keep_freed_memory`: freed memory is kept for reuse
instead of being unmapped and faulted in again next step); `--allocator default` measures
glibc's own.

    pip install -e '.[bench]'    # torch
    .venv/bin/python benchmarks/vs_pytorch.py                        # 16x32x32 and 16x64x64
    .venv/bin/python benchmarks/vs_pytorch.py --shapes 16x64x64 --batch 16 --steps 5
    .venv/bin/python benchmarks/vs_pytorch.py --dtype bfloat16     # our bf16 nets vs autocast

XLA flags (`--xla-flags`) are set before JAX starts; they are an experiment knob only.
"""

import argparse
import contextlib
import ctypes
import math
import os
import re
import statistics
import sys
import threading
import time
from typing import Any

from gan_jax.cpu_memory import keep_freed_memory

TORCH_INSTALL_HINT = "pip install torch==2.13.0  (or: pip install -e '.[bench]')"


# ----------------------------------------------------------------------------------------------
# Arguments.
# ----------------------------------------------------------------------------------------------


def parse_shape(text: str) -> tuple[int, int, int]:
    """'16x32x32' -> (T, H, W)."""
    try:
        t, h, w = (int(part) for part in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"shape {text!r} must be TxHxW, e.g. 16x32x32 (frames x height x width)"
        ) from err
    return t, h, w


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes",
        nargs="+",
        type=parse_shape,
        default=[(16, 32, 32), (16, 64, 64)],
        help="clip shapes TxHxW, one table each (default: 16x32x32 16x64x64)",
    )
    parser.add_argument("--batch", type=int, default=32, help="clips per step")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--width", type=int, default=64, help="G's last hidden width")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--z-dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each framework")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each framework")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="bfloat16: mixed precision on both sides (our nets' dtype setting, torch.autocast; "
        "parameters, optimiser state, losses and EMA float32), and the matmul peak in bf16",
    )
    parser.add_argument(
        "--conv-impl", default=None, help="gan_jax conv route (default: the backend's choice)"
    )
    parser.add_argument(
        "--torch-memory-format",
        choices=("auto", "contiguous", "channels_last_3d"),
        default="auto",
        help="auto: time both for a few steps and keep the faster one",
    )
    parser.add_argument(
        "--xla-flags", default="", help="appended to XLA_FLAGS before JAX starts (experiments)"
    )
    parser.add_argument(
        "--allocator",
        choices=("keep", "default"),
        default="keep",
        help="keep: glibc keeps freed memory for reuse (gan_jax.cpu_memory, as the gan-jax "
        "command sets it; applies to both frameworks in this process); default: glibc's own",
    )
    parser.add_argument("--skip-checks", action="store_true", help="skip the FLOP check")
    parser.add_argument(
        "--matmul-size", type=int, default=4096, help="n of the n x n x n peak matmul"
    )
    args = parser.parse_args(argv)
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--batch and --steps must be >= 1 and --warmup >= 0")
    return args


def import_torch():
    try:
        import torch
    except ImportError as err:
        raise SystemExit(
            f"benchmarks/vs_pytorch.py needs PyTorch for the reference side: {TORCH_INSTALL_HINT}"
        ) from err
    return torch


# ----------------------------------------------------------------------------------------------
# The PyTorch reference: the same architecture and step.
# ----------------------------------------------------------------------------------------------


def build_torch_models(torch, clip: tuple[int, int, int, int], args) -> tuple[Any, Any]:
    """PyTorch twins of `VideoGenerator` / `VideoDiscriminator` (channels first, NCTHW)."""
    from gan_jax.models.video_dcgan import _geometry, block_plan

    nn = torch.nn
    (t0, h0, w0), strides = block_plan(clip, args.depth)
    frames, channels = clip[0], clip[3]
    c0 = args.width * 2 ** (args.depth - 1)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.memory_format = torch.contiguous_format  # of the conv stack's input
            self.project = nn.Linear(args.z_dim, t0 * h0 * w0 * c0)
            self.project_norm = nn.BatchNorm3d(c0, eps=1e-5, momentum=0.1)
            layers, cin = [], c0
            for i, (st, ss, _) in enumerate(strides):
                last = i == args.depth - 1
                cout = channels if last else args.width * 2 ** (args.depth - 2 - i)
                kernel, padding = _geometry(st, ss, frames)
                layers.append(
                    nn.ConvTranspose3d(
                        cin, cout, kernel, (st, ss, ss), tuple(lo for lo, _ in padding), bias=last
                    )
                )
                if not last:
                    layers += [nn.BatchNorm3d(cout, eps=1e-5, momentum=0.1), nn.ReLU(inplace=True)]
                cin = cout
            layers.append(nn.Tanh())
            self.body = nn.Sequential(*layers)

        def forward(self, z):
            x = self.project(z).view(z.shape[0], c0, t0, h0, w0)
            x = torch.relu_(self.project_norm(x))
            return self.body(x.contiguous(memory_format=self.memory_format))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], channels
            for i, (st, ss, _) in enumerate(reversed(strides)):
                cout = args.width * 2**i
                kernel, padding = _geometry(st, ss, frames)
                layers.append(
                    nn.Conv3d(
                        cin, cout, kernel, (st, ss, ss), tuple(lo for lo, _ in padding), bias=i == 0
                    )
                )
                if i > 0:
                    layers.append(nn.BatchNorm3d(cout, eps=1e-5, momentum=0.1))
                layers.append(nn.LeakyReLU(0.2, inplace=True))
                cin = cout
            self.body = nn.Sequential(*layers)
            self.logits = nn.Linear(cin * t0 * h0 * w0, 1)

        def forward(self, x):
            x = self.body(x)
            return self.logits(x.reshape(x.shape[0], -1))[:, 0]

    return Generator(), Discriminator()


def set_memory_format(torch, g, d, memory_format: str) -> Any:
    fmt = torch.channels_last_3d if memory_format == "channels_last_3d" else torch.contiguous_format
    g.memory_format = fmt
    g.to(memory_format=fmt)
    d.to(memory_format=fmt)
    return fmt


@contextlib.contextmanager
def frozen_running_stats(batch_norms):
    """Train-mode BN (batch statistics) that leaves the running statistics unchanged."""
    momenta = [bn.momentum for bn in batch_norms]
    for bn in batch_norms:
        bn.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for bn, momentum in zip(batch_norms, momenta):
            bn.momentum = momentum


def make_torch_step(
    torch, g, d, z_dim: int, ema_decay: float, device: str = "cpu", autocast_dtype=None
):
    """`step(real [N, C, T, H, W]) -> metrics`, the maths of `gan_jax.train_step` in PyTorch.

    Args:
        device: where the noise is drawn (the models and `real` must already be there).
        autocast_dtype: e.g. `torch.bfloat16`: G and D run under `torch.autocast` (parameters,
            optimiser state, losses and the EMA stay float32), as `gan_jax` nets with
            `dtype="bfloat16"`; None runs float32.
    """
    functional = torch.nn.functional
    batch_norm_type = torch.nn.modules.batchnorm._BatchNorm
    g_norms = [m for m in g.modules() if isinstance(m, batch_norm_type)]
    d_norms = [m for m in d.modules() if isinstance(m, batch_norm_type)]
    g_params, d_params = list(g.parameters()), list(d.parameters())
    adam = dict(lr=2e-4, betas=(0.5, 0.999), eps=1e-8, fused=True)
    g_opt, d_opt = torch.optim.Adam(g_params, **adam), torch.optim.Adam(d_params, **adam)
    g_ema = [p.detach().clone() for p in g_params]
    g.train()
    d.train()

    def global_norm(tensors):
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))

    def autocast():
        if autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(device).type, dtype=autocast_dtype)

    def noise(n):
        return torch.randn(n, z_dim, device=device)

    def step(real):
        n = real.shape[0]
        # D update: G's statistics are updated by the G update only.
        with torch.no_grad(), frozen_running_stats(g_norms), autocast():
            fake = g(noise(n))
        with autocast():
            real_logits, fake_logits = d(real).float(), d(fake).float()
        d_loss = functional.softplus(-real_logits).mean() + functional.softplus(fake_logits).mean()
        d_grads = torch.autograd.grad(d_loss, d_params)
        for param, grad in zip(d_params, d_grads):
            param.grad = grad
        d_opt.step()
        # G update against the new D; D's statistics are updated by the D update only.
        with frozen_running_stats(d_norms), autocast():
            g_logits = d(g(noise(n))).float()
        g_loss = functional.softplus(-g_logits).mean()
        g_grads = torch.autograd.grad(g_loss, g_params)  # no D weight gradients
        for param, grad in zip(g_params, g_grads):
            param.grad = grad
        g_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(g_ema, g_params, 1.0 - ema_decay)
            return {
                "d/loss": d_loss.detach(),
                "d/real_logit": real_logits.mean(),
                "d/fake_logit": fake_logits.mean(),
                "d/real_acc": (real_logits > 0).float().mean(),
                "d/fake_acc": (fake_logits < 0).float().mean(),
                "g/loss": g_loss.detach(),
                "grad_norm/d": global_norm(d_grads),
                "grad_norm/g": global_norm(g_grads),
            }

    return step


# ----------------------------------------------------------------------------------------------
# FLOP counting.
# ----------------------------------------------------------------------------------------------


def _valid_taps(in_size: int, out_size: int, k: int, stride: int, pad: int, transposed: bool):
    """(input, kernel tap) pairs of one dim that touch real data, not padding (XLA's count)."""
    if transposed:  # input i and tap j write output i * stride - pad + j
        return sum(
            1 for i in range(in_size) for j in range(k) if 0 <= i * stride - pad + j < out_size
        )
    return sum(1 for o in range(out_size) for j in range(k) if 0 <= o * stride - pad + j < in_size)


def _conv_macs(x_shape, w_shape, out_shape, stride, padding, dilation, transposed, groups):
    if any(dil != 1 for dil in dilation):
        raise NotImplementedError("the FLOP counter handles undilated convolutions only")
    spatial = len(x_shape) - 2
    cin, cout = (
        (w_shape[0], w_shape[1] * groups) if transposed else (w_shape[1] * groups, w_shape[0])
    )
    taps = 1
    for i in range(spatial):
        taps *= _valid_taps(
            x_shape[2 + i], out_shape[2 + i], w_shape[2 + i], stride[i], padding[i], transposed
        )
    return x_shape[0] * cin * cout * taps // groups


def count_torch_macs(torch, fn) -> tuple[int, dict[str, int]]:
    """Runs fn() and returns the multiply-adds of the convolutions and matrix products it runs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    counts: dict[str, int] = {}

    def add(kind, macs):
        counts[kind] = counts.get(kind, 0) + int(macs)

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            packet = func.overloadpacket
            if packet is aten.convolution:
                x, w, _, stride, padding, dilation, transposed, _, groups = args[:9]
                macs = _conv_macs(
                    x.shape, w.shape, out.shape, stride, padding, dilation, transposed, groups
                )
                add("conv", macs)
            elif packet is aten.convolution_backward:
                grad_out, x, w = args[:3]
                stride, padding, dilation, transposed, _, groups, mask = args[4:11]
                macs = _conv_macs(
                    x.shape, w.shape, grad_out.shape, stride, padding, dilation, transposed, groups
                )
                add("conv backward", macs * (int(mask[0]) + int(mask[1])))
            elif packet in (aten.mm, aten.addmm):
                a, b = args[-2:] if packet is aten.mm else args[1:3]
                add("matmul", a.shape[0] * a.shape[1] * b.shape[1])
            elif packet is aten.bmm:
                a, b = args[:2]
                add("matmul", a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2])
            return out

    with Counter():
        fn()
    return sum(counts.values()), counts


def xla_memory_bytes(compiled) -> int:
    """XLA's buffer analysis of a compiled step: arguments + outputs + temporaries, donated
    (aliased) buffers counted once."""
    memory = compiled.memory_analysis()
    return (
        memory.temp_size_in_bytes
        + memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        - memory.alias_size_in_bytes
    )


def xla_flops(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):  # older jax: one dict per program
        cost = cost[0]
    return float(cost.get("flops", float("nan")))


_HLO_SHAPE = re.compile(r"%([\w.\-]+) = \w+\[([\d,]*)\]")
_HLO_CONTRACTION = re.compile(
    r"= \w+\[([\d,]*)\]\S* (dot|convolution)\(%([\w.\-]+), %([\w.\-]+)\)(.*)"
)


def _dims(text: str) -> list[int]:
    return [int(d) for d in text.split(",") if d]


def _window_attr(attrs: str, name: str, default: list[int], spatial: int) -> list[int]:
    match = re.search(rf"\b{name}=([\dx]+)", attrs)
    return [int(v) for v in match.group(1).split("x")] if match else default * spatial


def xla_contraction_macs(hlo_text: str) -> int:
    """Multiply-adds of the dots and convolutions of an HLO module, valid conv taps only."""
    shapes = {name: _dims(dims) for name, dims in _HLO_SHAPE.findall(hlo_text)}
    total = 0
    for out_dims, op, lhs, rhs, attrs in _HLO_CONTRACTION.findall(hlo_text):
        out, lhs_shape, rhs_shape = _dims(out_dims), shapes[lhs], shapes[rhs]
        if op == "dot":
            contracting = _dims(re.search(r"lhs_contracting_dims=\{([\d,]*)\}", attrs).group(1))
            total += math.prod(out) * math.prod(lhs_shape[d] for d in contracting)
            continue
        if re.search(r"(feature|batch)_group_count=(?!1\b)", attrs):
            raise NotImplementedError(f"grouped convolution in the lax program: {attrs}")
        lhs_labels, rhs_labels, out_labels = re.search(
            r"dim_labels=(\w+)_(\w+)->(\w+)", attrs
        ).groups()
        spatial = len(out_labels) - 2
        size = _window_attr(attrs, "size", [1], spatial)
        stride = _window_attr(attrs, "stride", [1], spatial)
        lhs_dilate = _window_attr(attrs, "lhs_dilate", [1], spatial)
        rhs_dilate = _window_attr(attrs, "rhs_dilate", [1], spatial)
        pad_match = re.search(r"\bpad=([\d_x\-]+)", attrs)
        pad_lo = (
            [int(p.split("_")[0]) for p in pad_match.group(1).split("x")]
            if pad_match
            else [0] * spatial
        )
        taps = 1
        for i in range(spatial):
            d = str(i)
            in_size = (lhs_shape[lhs_labels.index(d)] - 1) * lhs_dilate[i] + 1
            valid = 0
            for o in range(out[out_labels.index(d)]):
                for j in range(size[i]):
                    p = o * stride[i] - pad_lo[i] + j * rhs_dilate[i]
                    valid += 0 <= p < in_size and p % lhs_dilate[i] == 0
            taps *= valid
        batch, features = out[out_labels.index("b")], out[out_labels.index("f")]
        total += batch * features * rhs_shape[rhs_labels.index("i")] * taps
    return total


# ----------------------------------------------------------------------------------------------
# Measurements.
# ----------------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _heap_reader():
    """A function giving the bytes glibc's malloc has handed out and not taken back, or None.

    With the "keep" allocator policy RSS no longer falls after a step (freed pages stay
    mapped for reuse), so the growth of RSS would not show a step's own memory; the bytes in
    use do, whatever the policy.
    """
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2

    def in_use() -> int:
        info = mallinfo2()
        return info.uordblks + info.hblkhd  # heap blocks in use + mmapped blocks

    return in_use


def peak_memory_growth(fn, settle_s: float = 1.0) -> tuple[int, str]:
    """Peak host memory in use during fn() minus before it, sampled every 0.5 ms.

    The baseline is read after waiting ``settle_s`` seconds: XLA frees a step's temporaries
    after its outputs are ready, so right after a previous step the baseline would still hold
    them and the growth would read as almost nothing (19 instead of 582 MiB for a video DCGAN
    step).

    Returns:
        (bytes, what was measured): malloc's bytes in use where glibc tells them, else RSS;
        (0, "none") where neither is available.
    """
    reader = _heap_reader()
    what = "malloc in use"
    if reader is None:
        if not os.path.exists("/proc/self/statm"):
            return 0, "none"
        reader, what = _rss_bytes, "RSS"
    time.sleep(settle_s)
    before, peak, done = reader(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], reader())
            time.sleep(0.0005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(peak[0], reader()) - before, what


def matmul_peak(
    jax, torch, n: int = 4096, repeats: int = 5, dtype: str = "float32"
) -> tuple[float, float]:
    """Best-of-`repeats` GFLOP/s of an n x n x n product of `dtype` ("float32" or "bfloat16")
    operands in XLA and in PyTorch. XLA's bf16 product accumulates and returns float32, as
    the bf16 convolutions' products do where the CPU has AMX (`gan_jax.ops.products`): XLA:CPU
    runs only that form on AMX."""
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    dot = jax.jit(lambda x, y: jnp.matmul(x, y, preferred_element_type=jnp.float32))
    a_j, b_j = (jax.device_put(x).astype(dtype) for x in (a, b))
    a_t, b_t = (torch.from_numpy(x).to(getattr(torch, dtype)) for x in (a, b))
    jax.block_until_ready(dot(a_j, b_j))
    torch.mm(a_t, b_t)
    jax_times, torch_times = [], []
    for _ in range(repeats):  # alternating, like the steps
        start = time.perf_counter()
        jax.block_until_ready(dot(a_j, b_j))
        jax_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        torch.mm(a_t, b_t)
        torch_times.append(time.perf_counter() - start)
    flops = 2.0 * n**3
    return flops / min(jax_times) / 1e9, flops / min(torch_times) / 1e9


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# ----------------------------------------------------------------------------------------------
# One shape.
# ----------------------------------------------------------------------------------------------


def build_jax_step(jax, clip, args, conv_impl, dtype=None):
    """The donated jit step of the video DCGAN, its initial state and its `StepConfig`.

    `dtype`: the nets' compute dtype (default float32); parameters stay float32."""
    import jax.numpy as jnp
    import optax

    from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator
    from gan_jax.ops.conv import with_route
    from gan_jax.parallel import step_compiler_options
    from gan_jax.state import create_state
    from gan_jax.train_step import StepConfig, make_train_step

    dtype = jnp.dtype(dtype or jnp.float32)
    g = VideoGenerator(
        clip_shape=clip, z_dim=args.z_dim, base_width=args.width, depth=args.depth, dtype=dtype
    )
    d = VideoDiscriminator(clip_shape=clip, base_width=args.width, depth=args.depth, dtype=dtype)
    tx = optax.adam(2e-4, b1=0.5, b2=0.999)
    cfg = StepConfig()
    step_fn = with_route(conv_impl, make_train_step(g, d, tx, tx, cfg))
    # The train loop's compile options (on CPU, XLA's memory-optimized scheduler).
    step = jax.jit(
        step_fn, donate_argnums=(0,), compiler_options=step_compiler_options(jax.devices())
    )
    state = jax.jit(lambda key: create_state(key, g, d, tx, tx))(jax.random.key(0))
    return step, state, cfg


def run_shape(jax, torch, shape, args, peaks) -> None:
    import numpy as np

    from gan_jax.ops.conv import default_impl

    clip = (*shape, args.channels)
    rng = np.random.default_rng(0)
    real_np = rng.uniform(-1, 1, (args.batch, *clip)).astype(np.float32)
    key = jax.random.key(1)
    impl = args.conv_impl or default_impl()
    autocast_dtype = None if args.dtype == "float32" else getattr(torch, args.dtype)

    # JAX: the step that runs, and the plain-lax step for the useful FLOPs (compiled only).
    step, state, cfg = build_jax_step(jax, clip, args, impl, dtype=args.dtype)
    batch = {"video": jax.device_put(real_np)}
    compiled = step.lower(state, batch, key).compile()
    jax_xla_bytes = xla_memory_bytes(compiled)
    jax_params = [
        sum(x.size for x in jax.tree.leaves(tree)) for tree in (state.g_params, state.d_params)
    ]

    # PyTorch twin.
    g_t, d_t = build_torch_models(torch, clip, args)
    torch_params = [sum(p.numel() for p in m.parameters()) for m in (g_t, d_t)]
    if jax_params != torch_params:
        raise SystemExit(
            f"parameter counts differ: gan_jax G/D {jax_params} vs PyTorch G/D {torch_params}; "
            "the PyTorch twin in benchmarks/vs_pytorch.py no longer matches the models."
        )
    real_t = torch.from_numpy(real_np).permute(0, 4, 1, 2, 3)  # NTHWC -> NCTHW
    formats = (
        ["contiguous", "channels_last_3d"]
        if args.torch_memory_format == "auto"
        else [args.torch_memory_format]
    )
    format_ms = {}
    if len(formats) > 1:  # a few steps in each format; the faster one is timed below
        for name in formats:
            fmt = set_memory_format(torch, g_t, d_t, name)
            trial_step = make_torch_step(
                torch, g_t, d_t, args.z_dim, cfg.ema_decay, autocast_dtype=autocast_dtype
            )
            trial_real = real_t.contiguous(memory_format=fmt)
            trial_step(trial_real)
            times = []
            for _ in range(2):
                start = time.perf_counter()
                trial_step(trial_real)
                times.append(time.perf_counter() - start)
            format_ms[name] = min(times) * 1e3
    torch_format = min(format_ms, key=format_ms.get) if format_ms else formats[0]
    fmt = set_memory_format(torch, g_t, d_t, torch_format)
    torch_step = make_torch_step(
        torch, g_t, d_t, args.z_dim, cfg.ema_decay, autocast_dtype=autocast_dtype
    )
    torch_real = real_t.contiguous(memory_format=fmt)

    # Same work on both sides: XLA's count of the lax program vs PyTorch's dispatched MACs.
    lax_step, lax_state, _ = build_jax_step(jax, clip, args, "lax", dtype=args.dtype)
    lax_compiled = lax_step.lower(lax_state, batch, key).compile()
    useful_flops = xla_flops(lax_compiled)
    contraction_flops = 2.0 * xla_contraction_macs(lax_compiled.as_text())
    del lax_step, lax_state, lax_compiled
    torch_flops = float("nan")
    if not args.skip_checks:
        torch_macs, torch_counts = count_torch_macs(torch, lambda: torch_step(torch_real))
        torch_flops = 2.0 * torch_macs
        if abs(contraction_flops / torch_flops - 1.0) > 1e-3:
            raise SystemExit(
                f"FLOP check failed: the dots and convolutions of the gan_jax step (lax) do "
                f"{contraction_flops / 1e9:.3f} GFLOP, PyTorch's {torch_flops / 1e9:.3f} GFLOP "
                f"({torch_counts} MACs); the two steps no longer do the same work."
            )

    # Warm-up, then alternate.
    for _ in range(args.warmup):
        state, metrics = step(state, batch, key)
        jax.block_until_ready((state, metrics))
        torch_step(torch_real)
    load_start = _load()
    jax_times, torch_times = [], []
    for _ in range(args.steps):
        start = time.perf_counter()
        state, metrics = step(state, batch, key)
        jax.block_until_ready((state, metrics))
        jax_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        torch_step(torch_real)
        torch_times.append(time.perf_counter() - start)
    load_end = _load()

    def jax_once():
        nonlocal state
        state, out = step(state, batch, key)
        jax.block_until_ready((state, out))

    jax_mem, mem_what = peak_memory_growth(jax_once)
    torch_mem, _ = peak_memory_growth(lambda: torch_step(torch_real))

    jax_s, torch_s = statistics.median(jax_times), statistics.median(torch_times)
    pair_ratio = statistics.median(t / j for j, t in zip(jax_times, torch_times))
    peak_jax, peak_torch = peaks
    mib = 2.0**20
    widths = [args.width * 2**i for i in reversed(range(args.depth))]
    print()
    print(
        f"clip {'x'.join(map(str, clip))} (T x H x W x C), batch {args.batch}; G "
        f"{' -> '.join(map(str, widths))} -> {args.channels}, D mirrored; {args.dtype}; "
        f"useful work {useful_flops / 1e9:.2f} GFLOP/step (XLA cost analysis of the lax "
        f"program; its dots and convs {contraction_flops / 1e9:.2f}, PyTorch's "
        f"{torch_flops / 1e9:.2f})"
    )
    print(
        f"gan_jax conv route {impl!r}; PyTorch {torch.__version__} eager, {torch_format}"
        + (
            " (" + ", ".join(f"{k} {v:.0f} ms" for k, v in format_ms.items()) + ")"
            if len(format_ms) > 1
            else ""
        )
    )
    rows = [
        ("step, median ms", f"{jax_s * 1e3:.0f}", f"{torch_s * 1e3:.0f}"),
        ("step, min ms", f"{min(jax_times) * 1e3:.0f}", f"{min(torch_times) * 1e3:.0f}"),
        ("clips/s", f"{args.batch / jax_s:.2f}", f"{args.batch / torch_s:.2f}"),
        (
            "useful GFLOP/s",
            f"{useful_flops / jax_s / 1e9:.1f}",
            f"{useful_flops / torch_s / 1e9:.1f}",
        ),
        (
            "% of own matmul peak",
            f"{100 * useful_flops / jax_s / 1e9 / peak_jax:.0f}",
            f"{100 * useful_flops / torch_s / 1e9 / peak_torch:.0f}",
        ),
        ("peak memory, XLA MiB", f"{jax_xla_bytes / mib:.0f}", "-"),
        (f"peak host MiB ({mem_what})", f"{jax_mem / mib:.0f}", f"{torch_mem / mib:.0f}"),
    ]
    print(f"{'':<24}{'gan_jax':>12}{'PyTorch':>12}")
    for label, ours, theirs in rows:
        print(f"{label:<24}{ours:>12}{theirs:>12}")
    print(
        f"ratio gan_jax/PyTorch clips/s: {torch_s / jax_s:.2f} (median of the {args.steps} "
        f"per-pair ratios: {pair_ratio:.2f}); load average 1/5/15 min: {load_start} at start "
        f"of timing, {load_end} at end"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Before either framework allocates; see gan_jax/cpu_memory.py.
    kept = args.allocator == "keep" and keep_freed_memory()
    if args.xla_flags:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {args.xla_flags}".strip()
    torch = import_torch()
    import jax

    if jax.default_backend() != "cpu":
        raise SystemExit(
            f"this is a CPU comparison, but JAX's default backend is {jax.default_backend()!r}; "
            "run with JAX_PLATFORMS=cpu."
        )
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from train_step import cpu_description

    print(cpu_description())
    print(
        f"CPU: {os.cpu_count()} cores; jax {jax.__version__} ({jax.device_count()} device(s)), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); XLA_FLAGS="
        f"{os.environ.get('XLA_FLAGS', '')!r}; allocator "
        f"{'keeps freed memory' if kept else 'glibc default'}; load average {_load()}"
    )
    peaks = matmul_peak(jax, torch, args.matmul_size, dtype=args.dtype)
    print(
        f"{args.dtype} matmul peak ({args.matmul_size}^3, best of 5): XLA {peaks[0]:.0f} GFLOP/s, "
        f"PyTorch {peaks[1]:.0f} GFLOP/s"
    )
    for shape in args.shapes:
        run_shape(jax, torch, shape, args, peaks)


if __name__ == "__main__":
    main()
