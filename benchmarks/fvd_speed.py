"""Speed of FVD with the TF-Hub I3D: clips/s of the forward pass, and an evaluation's wall time.

Part 1 times the jit-compiled I3D forward pass (16x224x224 clips, float32) at several batch
sizes, compilation excluded. Part 2 runs `FVDComputer` end to end as `gan-jax eval --metric fvd`
does (uint8 clips, resize to 224x224 inside the compiled program, float64 statistics) on
`--num-clips` random real and as many generated clips of `--clip` size, plus the time-shuffled
generated clips of the content probe, and prints the wall time from loading the weights to the
value. Where `--num-clips` is under 2048 it also prints the time a 2048 + 2048 (+ 2048
shuffled) evaluation takes at the measured rate.

    .venv/bin/python benchmarks/fvd_speed.py                       # needs pip install -e '.[fvd]'
    .venv/bin/python benchmarks/fvd_speed.py --num-clips 2048 --batch-sizes 16
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import numpy as np

from gan_jax import cpu_memory
from gan_jax.metrics.fvd import FVDComputer, shuffle_time
from gan_jax.metrics.i3d import FVD_NUM_FRAMES, FVD_SIZE, I3D
from gan_jax.metrics.i3d_tfhub import load_tfhub_i3d

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from train_step import cpu_description  # noqa: E402

PROTOCOL_CLIPS = 2048


def forward_rate(variables, batch: int, repeats: int) -> float:
    """Clips/s of the I3D forward pass on [batch, 16, 224, 224, 3] float32 clips."""
    clips = np.random.default_rng(0).uniform(-1, 1, (batch, FVD_NUM_FRAMES, FVD_SIZE, FVD_SIZE, 3))
    clips = jax.device_put(clips.astype(np.float32))
    forward = jax.jit(I3D().apply)
    forward(variables, clips).block_until_ready()  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        forward(variables, clips).block_until_ready()
    return batch * repeats / (time.perf_counter() - start)


def evaluation_time(num_clips: int, clip: tuple[int, int, int], batch: int) -> tuple[float, float]:
    """Wall seconds of one FVD evaluation (real, generated, time-shuffled), and its value."""
    frames, height, width = clip
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    computer = FVDComputer(load_tfhub_i3d(), batch_size=batch)

    def batches():
        for first in range(0, num_clips, batch):
            count = min(batch, num_clips - first)
            yield rng.integers(0, 256, (count, frames, height, width, 3), dtype=np.uint8)

    computer.add_real(batches())
    computer.add_fake(batches())
    value = computer.compute()
    computer.reset_fake()
    computer.add_fake(shuffle_time(b, rng) for b in batches())
    computer.compute()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per batch size")
    parser.add_argument("--num-clips", type=int, default=PROTOCOL_CLIPS)
    parser.add_argument("--clip", type=int, nargs=3, default=[16, 64, 64], metavar=("T", "H", "W"))
    parser.add_argument("--eval-batch", type=int, default=16, help="clips per I3D call in part 2")
    args = parser.parse_args()
    cpu_memory.keep_freed_memory()
    print(cpu_description())
    print(f"backend: {jax.default_backend()}, devices: {jax.device_count()}")
    variables = load_tfhub_i3d()
    print("\n| I3D forward, 16x224x224 float32 | batch | clips/s |\n|---|---|---|")
    for batch in args.batch_sizes:
        rate = forward_rate(variables, batch, args.repeats)
        print(f"| TF-Hub Kinetics-400 I3D | {batch} | {rate:.2f} |", flush=True)
    seconds, value = evaluation_time(args.num_clips, tuple(args.clip), args.eval_batch)
    clip = "x".join(map(str, args.clip))
    n = args.num_clips
    print(
        f"\nFVD evaluation, {n} real + {n} generated + {n} time-shuffled clips of {clip} uint8 "
        f"(batch {args.eval_batch}): {seconds:.0f} s wall, {3 * n / seconds:.2f} clips/s "
        f"(FVD of random noise vs random noise: {value:.2f})"
    )
    if n < PROTOCOL_CLIPS:
        scale = PROTOCOL_CLIPS / n
        print(
            f"at that rate {PROTOCOL_CLIPS} + {PROTOCOL_CLIPS} clips take "
            f"{2 * seconds * scale / 3 / 60:.1f} min, "
            f"with the {PROTOCOL_CLIPS} time-shuffled ones {seconds * scale / 60:.1f} min"
        )


if __name__ == "__main__":
    main()
