"""Train a 2-D mixture config (ring or grid) over several seeds and print PacGAN's metrics.

Run (about a minute per seed on a 2-core CPU for the ring at 10k steps):
    .venv/bin/python experiments/toy2d.py --config experiments/configs/ring.py --seeds 0 1 2
    .venv/bin/python experiments/toy2d.py --config experiments/configs/toy_best.py \
        --config.data.name=grid

Any `--config.KEY=VALUE` override of `gan-jax train` applies. The seeds train as one program
(`gan_jax.multiseed`), from the same config `gan-jax train` runs.

Expected for the ring (ring.py): 8/8 modes, >= 90 % high-quality samples, reverse KL < 0.05.
"""

import argparse
import pathlib
import sys
import time

import numpy as np

from gan_jax import config
from gan_jax.multiseed import train_seeds

CONFIGS = pathlib.Path(__file__).resolve().parent / "configs"


def main() -> None:
    overrides, argv = config.split_overrides(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=pathlib.Path, default=CONFIGS / "ring.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    cfg = config.apply_overrides(config.load_config_file(args.config), overrides)

    print(f"{args.config.name} on {cfg.data.name}: {cfg.steps} steps, batch {cfg.batch_size}")
    start = time.perf_counter()
    _, results = train_seeds(cfg, args.seeds)
    seconds = time.perf_counter() - start
    print(f"{'seed':>4} {'modes':>5} {'HQ %':>6} {'rev KL':>7}")
    rows = []
    for seed, result in zip(args.seeds, results):
        rows.append((result["modes"], result["hq_percent"], result["reverse_kl"]))
        print(f"{seed:>4} {rows[-1][0]:>5} {rows[-1][1]:>6.1f} {rows[-1][2]:>7.3f}")
    table = np.asarray(rows, np.float64)
    mean, std = table.mean(axis=0), table.std(axis=0)
    print(
        f"mean +- std over {len(rows)} seeds ({seconds:.0f} s): modes {mean[0]:.1f} +- "
        f"{std[0]:.1f}, HQ {mean[1]:.1f} +- {std[1]:.1f} %, reverse KL {mean[2]:.3f} +- "
        f"{std[2]:.3f}"
    )


if __name__ == "__main__":
    main()
