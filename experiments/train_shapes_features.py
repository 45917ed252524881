"""Train (or load) the bouncing-shapes feature network and check that its FSD orders clip sets.

The network is what `gan-jax train` / `gan-jax eval` use for the shapes_fd metric; they train it
on first use (the program in gan_jax.metrics.shapes_features_training), and this command does the
same ahead of time, into the same cache:
WORKDIR/shapes_features/ (or the config's eval.shapes_features_dir). Run it for the main job
(about 45 s of training on a 2-core CPU for 8 x 32 x 32 clips; a second run loads the cached
parameters in milliseconds):
    .venv/bin/python experiments/train_shapes_features.py \\
        --config experiments/configs/bouncing_shapes.py --workdir runs/bouncing_shapes
or for a clip shape alone (default scenes):
    .venv/bin/python experiments/train_shapes_features.py --workdir /tmp/shapes_fd \\
        --frames 16 --size 32

Prints the training time, the heads' accuracies on held-out clips and the Fréchet Shapes
Distance of four sets against real clips, which must increase in this order: a second draw of
real clips < real clips with shuffled frames < an untrained video DCGAN generator < uniform
noise (exit status 1 if not). The file name of the parameters holds a hash of every setting.
"""

import argparse
import logging
import pathlib
import sys
import time

from gan_jax.config import ConfigError, load_config_file
from gan_jax.metrics.shapes_fd import (
    CALIBRATION_SETS,
    SHAPES_FEATURES_DIR,
    calibration_distances,
    shapes_features_dir,
)
from gan_jax.metrics.shapes_features import get_feature_params


def _load_config(path: str):
    """A trainer config file's ``get_config()``."""
    try:
        cfg = load_config_file(path)
    except ConfigError as err:
        raise SystemExit(f"--config: {err}") from None
    if "data" not in cfg or "eval" not in cfg:
        raise SystemExit(f"--config {path!r}: get_config() has no 'data' or 'eval' group")
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        required=True,
        help="run directory; the network is cached in its shapes_features/",
    )
    parser.add_argument("--config", help="trainer config file; its data and eval groups apply")
    parser.add_argument("--frames", type=int, default=16, help="T (without --config)")
    parser.add_argument("--size", type=int, default=32, help="H = W (without --config)")
    parser.add_argument("--channels", type=int, default=3, help="C (without --config)")
    parser.add_argument(
        "--steps",
        type=int,
        help="training steps (default: the config's eval.shapes_features_steps)",
    )
    parser.add_argument("--batch-size", type=int, help="clips per step")
    parser.add_argument("--learning-rate", type=float, help="peak Adam learning rate")
    parser.add_argument("--widths", type=int, nargs="+", help="stem and conv block widths")
    parser.add_argument("--feature-dim", type=int, help="D, the feature layer's units")
    parser.add_argument("--seed", type=int, help="parameter initialisation seed")
    parser.add_argument("--num-clips", type=int, default=512, help="clips per FSD set")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)

    if args.config:
        cfg = _load_config(args.config)
        data, cache_dir = cfg.data, shapes_features_dir(cfg, pathlib.Path(args.workdir))
        steps = args.steps or cfg.eval.shapes_features_steps
    else:
        data = (args.frames, args.size, args.size, args.channels)
        cache_dir, steps = pathlib.Path(args.workdir) / SHAPES_FEATURES_DIR, args.steps
    overrides = {
        "steps": steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "widths": tuple(args.widths) if args.widths else None,
        "feature_dim": args.feature_dim,
        "seed": args.seed,
    }
    start = time.perf_counter()
    features = get_feature_params(
        cache_dir, data, **{k: v for k, v in overrides.items() if v is not None}
    )
    seconds = time.perf_counter() - start
    print(f"parameters: {features.path} ({seconds:.2f} s to get them in this run)")
    print("settings:", features.settings.to_json())
    print("held-out metrics (from training):")
    for name, value in features.heldout.items():
        print(f"  {name:>22}: {value:.4f}")

    start = time.perf_counter()
    distances = calibration_distances(features, num_clips=args.num_clips)
    print(f"FSD against {args.num_clips} real clips ({time.perf_counter() - start:.1f} s):")
    for name in CALIBRATION_SETS:
        if name in distances:
            print(f"  {name:>22}: {distances[name]:.4f}")
    values = [distances[name] for name in CALIBRATION_SETS if name in distances]
    ordered = all(a < b for a, b in zip(values, values[1:]))
    print("ordered as expected:", ordered)
    if not ordered:
        sys.exit(1)


if __name__ == "__main__":
    main()
