"""Train the 2-D mixture toy (ring or grid) over several seeds and print PacGAN's metrics.

Run (about a minute per seed on a 2-core CPU for the ring at 10k steps):
    .venv/bin/python experiments/toy2d.py --dataset ring --seeds 0 1 2

Expected for the ring: 8/8 modes, >= 90 % high-quality samples, reverse KL < 0.05 per seed.
"""

import argparse
import dataclasses
import time

import numpy as np

from gan_jax.toy2d import ToyConfig, train_toy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("ring", "grid"), default="ring")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--loss", default="nonsaturating")
    args = parser.parse_args()

    cfg = ToyConfig(
        dataset=args.dataset,
        steps=args.steps,
        batch_size=args.batch_size,
        step=dataclasses.replace(ToyConfig().step, loss=args.loss),
    )
    rows = []
    print(f"{args.dataset}: {args.steps} steps, batch {args.batch_size}, loss {args.loss}")
    print(f"{'seed':>4} {'modes':>5} {'HQ %':>6} {'rev KL':>7} {'time s':>7}")
    for seed in args.seeds:
        start = time.perf_counter()
        _, result = train_toy(cfg, seed)
        seconds = time.perf_counter() - start
        rows.append((result["modes"], result["hq_percent"], result["reverse_kl"]))
        print(
            f"{seed:>4} {result['modes']:>5} {result['hq_percent']:>6.1f} "
            f"{result['reverse_kl']:>7.3f} {seconds:>7.1f}"
        )
    table = np.asarray(rows, np.float64)
    mean, std = table.mean(axis=0), table.std(axis=0)
    print(
        f"mean +- std over {len(rows)} seeds: modes {mean[0]:.1f} +- {std[0]:.1f}, "
        f"HQ {mean[1]:.1f} +- {std[1]:.1f} %, reverse KL {mean[2]:.3f} +- {std[2]:.3f}"
    )


if __name__ == "__main__":
    main()
