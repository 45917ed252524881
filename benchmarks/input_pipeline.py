"""Benchmark the input pipeline: clips/s and peak host memory of make_dataset.

Phases, each in a fresh subprocess so that its peak memory is its own:

* ``decode``: video folder, no clip cache: every clip is decoded and resized.
* ``fill``: video folder, empty clip cache, one epoch: each video is decoded whole into the cache.
* ``cached``: video folder, filled clip cache: clips are sliced from memory-mapped .npy files.
* ``shapes``: bouncing_shapes, rendered on the fly.

For each phase it prints the clips delivered, the time to the first batch (worker start-up
included; the index is already built), clips/s over the whole phase and after the first batch
(meaningful only over many batches, since prefetching hides work behind the first), and the peak
resident memory of the phase process and of its worker processes (``ru_maxrss`` of RUSAGE_SELF
and RUSAGE_CHILDREN, MiB).

Unless ``--folder`` is given, it writes a folder of mp4 files (bouncing shapes, H.264) in a
temporary directory, in a UCF-like layout with two classes.

Example (small, quick):
    .venv/bin/python benchmarks/input_pipeline.py --num-files 8 --seconds 2 --epochs 2
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

PHASES = ("decode", "fill", "cached", "shapes")


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", help="existing video folder (default: generate one)")
    parser.add_argument("--num-files", type=int, default=20, help="videos to generate")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of generated videos")
    parser.add_argument("--fps", type=int, default=25, help="frame rate of generated videos")
    parser.add_argument("--source-height", type=int, default=96, help="generated frame height")
    parser.add_argument("--source-width", type=int, default=128, help="generated frame width")
    parser.add_argument("--frames", type=int, default=16, help="T of a clip")
    parser.add_argument("--height", type=int, default=64, help="H of a clip")
    parser.add_argument("--width", type=int, default=64, help="W of a clip")
    parser.add_argument("--frame-stride", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8, help="clips per batch")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0 = inline)")
    parser.add_argument("--threads", type=int, default=2, help="loading threads per process")
    parser.add_argument("--prefetch", type=int, default=2, help="batches buffered per process")
    parser.add_argument("--epochs", type=int, default=5, help="epochs timed (decode, cached)")
    parser.add_argument("--shape-batches", type=int, default=100, help="batches timed (shapes)")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # internal: run one phase
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)  # internal
    return parser.parse_args(argv)


def _make_folder(root: str, args: argparse.Namespace) -> None:
    """Writes ``args.num_files`` mp4 files of bouncing shapes under root/class{0,1}/."""
    from gan_jax.data.bouncing_shapes import BouncingShapes
    from gan_jax.io import write_video

    shapes = BouncingShapes(
        num_frames=round(args.seconds * args.fps),
        height=args.source_height,
        width=args.source_width,
        num_objects=(2, 5),
        size_range=(8, min(args.source_height, args.source_width) // 3),
        speed_range=(1, 4),
        antialias=True,
    )
    for i in range(args.num_files):
        os.makedirs(os.path.join(root, f"class{i % 2}"), exist_ok=True)
        write_video(
            os.path.join(root, f"class{i % 2}", f"v{i:03d}.mp4"), shapes[i]["video"], args.fps
        )


def _phase_config(args: argparse.Namespace) -> tuple[dict, int | None]:
    """(data config, batches to time or None for all) of ``args.phase``."""
    common = dict(
        num_frames=args.frames,
        height=args.height,
        width=args.width,
        num_workers=args.workers,
        num_threads=args.threads,
        prefetch=args.prefetch,
    )
    if args.phase == "shapes":
        return dict(name="bouncing_shapes", **common), args.shape_batches
    folder = dict(
        name="video_folder",
        root=args.folder,
        frame_stride=args.frame_stride,
        cache_dir=args.cache_dir,
        clip_cache=args.phase != "decode",
        num_epochs=1 if args.phase == "fill" else args.epochs,
        **common,
    )
    return folder, None


def _run_phase(args: argparse.Namespace) -> dict:
    """Times one phase in this process; returns its figures."""
    from gan_jax.data.pipeline import make_dataset

    config, max_batches = _phase_config(args)
    iterator = make_dataset(config, batch_size=args.batch, seed=0, process_index=0, process_count=1)
    try:
        # The index is built by now; the clock covers loading only (and worker start-up).
        start = time.perf_counter()
        clips = len(next(iterator)["video"])
        first = time.perf_counter()
        for batch in iterator:
            clips += len(batch["video"])
            if max_batches is not None and clips >= max_batches * args.batch:
                break
        end = time.perf_counter()
    finally:
        if hasattr(iterator, "close"):
            iterator.close()  # Reaps the workers, so RUSAGE_CHILDREN includes them.
    after_first = clips - args.batch
    kib = 1024 if sys.platform != "darwin" else 1
    return {
        "phase": args.phase,
        "first_batch_s": first - start,
        "clips": clips,
        "clips_per_s": clips / (end - start),
        # Prefetching hides work behind the first batch, so this needs many batches to mean much.
        "steady_clips_per_s": after_first / (end - first) if after_first else float("nan"),
        "peak_mib_main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 2**20,
        "peak_mib_workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 2**20,
    }


def main(argv=None) -> None:
    args = _parse_args(argv)
    if args.phase:
        print(json.dumps(_run_phase(args)))
        return
    phases = [p for p in args.phases.split(",") if p]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise SystemExit(f"--phases: unknown {unknown}; allowed: {PHASES}")
    with tempfile.TemporaryDirectory(prefix="gan_jax_bench_") as tmp:
        if args.folder is None and set(phases) - {"shapes"}:
            args.folder = os.path.join(tmp, "videos")
            started = time.perf_counter()
            _make_folder(args.folder, args)
            print(
                f"wrote {args.num_files} videos ({args.seconds:g} s, {args.fps} fps, "
                f"{args.source_height}x{args.source_width}) in "
                f"{time.perf_counter() - started:.1f} s"
            )
        cache_dir = os.path.join(tmp, "cache")
        print(
            f"clip {args.frames}x{args.height}x{args.width}, batch {args.batch}, "
            f"workers {args.workers}, threads {args.threads}"
        )
        header = ("phase", "clips", "1st batch s", "clips/s", "after 1st", "main MiB", "wkr MiB")
        print("{:8s} {:>6s} {:>11s} {:>8s} {:>9s} {:>8s} {:>8s}".format(*header))
        for phase in phases:
            # Each phase in its own process: its peak memory and start-up are its own.
            command = [sys.executable, os.path.abspath(__file__), "--phase", phase]
            command += ["--cache-dir", cache_dir] + _forwarded(args)
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{phase:8s} {result['clips']:6d} {result['first_batch_s']:11.2f} "
                f"{result['clips_per_s']:8.1f} {result['steady_clips_per_s']:9.1f} "
                f"{result['peak_mib_main']:8.0f} {result['peak_mib_workers']:8.0f}"
            )


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The command-line options of ``args`` that a phase process needs."""
    options = []
    for name in (
        "folder", "frames", "height", "width", "frame_stride", "batch", "workers", "threads",
        "prefetch", "epochs", "shape_batches",
    ):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            options += [f"--{name.replace('_', '-')}", str(value)]
    return options


if __name__ == "__main__":
    main()
