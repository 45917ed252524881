"""Mode coverage on the 2-D ring and grid: the plain GAN and our best recipe vs PacGAN's Table 1.

Trains every (dataset, recipe) pair over all seeds as one vmapped program, evaluates the EMA
generator with PacGAN's metric (2500 samples: modes captured, % high-quality samples, reverse
KL), prints a Markdown table of mean +- std over the seeds next to PacGAN's published means
(Lin et al. 2018, Table 1), and writes it with the per-seed numbers to
`experiments/results/mode_coverage.md`.

The recipes are config files of `experiments/configs/`, the same that `gan-jax train` runs:
"plain" is `ring.py` / `grid.py` (non-saturating GAN, constant lr 2e-4), "best" is
`toy_best.py`, "rpgan" is `toy_rpgan.py` (RpGAN + R1 + R2). Each runs with `data.name` set to
the mixture and `--steps` steps (default: the best recipe's), so the comparison is at an equal
budget. Seeds train as one vmapped program (`gan_jax.multiseed`).

The four (dataset, recipe) pairs train in parallel processes (`--jobs`, default: the CPU
count). Run from the repository root (all 10 seeds, both datasets, both recipes; 57 minutes on 2
CPU cores):
    nice -n 5 .venv/bin/python experiments/mode_coverage_table.py
A quick look at fewer seeds, written elsewhere:
    .venv/bin/python experiments/mode_coverage_table.py --seeds 0 1 --out /tmp/mode_coverage.md
One recipe into its own file (RpGAN + R1 + R2: 40 minutes on 2 cores):
    .venv/bin/python experiments/mode_coverage_table.py --recipes rpgan \
        --out experiments/results/mode_coverage_rpgan.md
"""

import argparse
import concurrent.futures
import datetime
import multiprocessing
import os
import pathlib
import platform
import sys
import time

import jax
import numpy as np
from ml_collections import config_dict

from gan_jax import config
from gan_jax.multiseed import train_seeds

HERE = pathlib.Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
DEFAULT_OUT = HERE / "results" / "mode_coverage.md"
DATASETS = ("ring", "grid")
# recipe -> config file ("{data}" is the mixture's own config).
RECIPES = {"plain": "{data}.py", "best": "toy_best.py", "rpgan": "toy_rpgan.py"}
# Settings that say how a run is logged, not how it trains: left out of the recipe summary.
_NOT_RECIPE = ("ckpt.", "log.", "eval.", "steps:", "data.name:")
MODES = {"ring": 8, "grid": 25}
METRICS = ("modes", "hq_percent", "reverse_kl")
# PacGAN (Lin et al. 2018), Table 1, means over seeds: (modes, HQ %, reverse KL).
PACGAN_TABLE1 = {
    "ring": {"GAN (PacGAN paper)": (6.3, 98.2, 0.45), "PacGAN4 (PacGAN paper)": (7.8, 95.9, 0.07)},
    "grid": {
        "GAN (PacGAN paper)": (17.3, 94.8, 0.70),
        "PacGAN4 (PacGAN paper)": (24.8, 93.6, 0.04),
    },
}
# What the best recipe has to reach (mean over seeds): (modes, HQ % at least, reverse KL at most).
TARGETS = {"ring": (8.0, 97.0, 0.05), "grid": (25.0, 95.0, 0.03)}


def recipe_config(recipe: str, dataset: str, steps: int | None) -> config_dict.ConfigDict:
    """The config file of `recipe` on `dataset`, trained for `steps` (None: the best recipe's)."""
    cfg = config.load_config_file(CONFIGS / RECIPES[recipe].format(data=dataset))
    default_steps = config.load_config_file(CONFIGS / RECIPES["best"]).steps
    with cfg.unlocked():
        cfg.data.name = dataset
        cfg.steps = steps or default_steps
    return cfg


def run_recipe(cfg: config_dict.ConfigDict, seeds: list[int]) -> tuple[np.ndarray, float]:
    """Per-seed `[S, 3]` (modes, HQ %, reverse KL) and the wall-clock seconds of the training."""
    start = time.perf_counter()
    _, results = train_seeds(cfg, seeds)
    seconds = time.perf_counter() - start
    return np.array([[r[m] for m in METRICS] for r in results], np.float64), seconds


def _run_task(task: tuple[str, str, int | None, list[int]]) -> tuple[np.ndarray, float]:
    recipe, dataset, steps, seeds = task
    return run_recipe(recipe_config(recipe, dataset, steps), seeds)


def _mean_std(values: np.ndarray, digits: int) -> str:
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def summary_row(
    dataset: str, recipe: str, table: np.ndarray, cfg: config_dict.ConfigDict, seconds: float
) -> str:
    modes, hq, kl = table.T
    return (
        f"| {dataset} | {recipe} | {_mean_std(modes, 1)} | {_mean_std(hq, 1)} | "
        f"{_mean_std(kl, 3)} | {len(table)} | {cfg.steps} | {seconds:.0f} |"
    )


def recipe_settings(cfg: config_dict.ConfigDict) -> str:
    """The keys of `cfg` that differ from the plain GAN's, as `key: old -> new` text."""
    plain = recipe_config("plain", cfg.data.name, cfg.steps)
    changed = config.differences(plain.to_dict(), cfg.to_dict())
    changed = [line for line in changed if not line.startswith(_NOT_RECIPE)]
    return ", ".join(changed) or "(the defaults)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--recipes", nargs="+", choices=tuple(RECIPES), default=["plain", "best"])
    parser.add_argument(
        "--steps", type=int, default=None, help="steps of every run (default: the best recipe's)"
    )
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="(dataset, recipe) pairs trained at once, one process each (the small vmapped "
        "matrix products of one pair keep about one core busy); default: the CPU count",
    )
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")

    header = [
        "| data | recipe | modes | HQ % | reverse KL | seeds | steps | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows, per_seed, settings = [], [], []
    total_start = time.perf_counter()
    tasks = [(r, d, args.steps, args.seeds) for d in args.datasets for r in args.recipes]
    if args.jobs > 1 and len(tasks) > 1:
        # spawn, not fork: JAX's runtime threads do not survive a fork.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            results = iter(list(pool.map(_run_task, tasks)))
    else:
        results = map(_run_task, tasks)
    for dataset in args.datasets:
        for name, (modes, hq, kl) in PACGAN_TABLE1[dataset].items():
            rows.append(f"| {dataset} | {name} | {modes} | {hq} | {kl} | | | |")
        for recipe in args.recipes:
            cfg = recipe_config(recipe, dataset, args.steps)
            table, seconds = next(results)
            rows.append(summary_row(dataset, recipe, table, cfg, seconds))
            print(rows[-1], flush=True)
            per_seed.append(
                f"| {dataset} | {recipe} | "
                + " | ".join(f"{m:.0f} / {h:.1f} / {k:.3f}" for m, h, k in table)
                + " |"
            )
            if dataset == args.datasets[0]:
                settings.append(f"* **{recipe}**: {recipe_settings(cfg)}")
    total = time.perf_counter() - total_start

    target_text = "; ".join(
        f"{d} {m:.0f} modes, HQ ≥ {h:.0f} %, reverse KL ≤ {k}" for d, (m, h, k) in TARGETS.items()
    )
    command = " ".join(["python", "experiments/mode_coverage_table.py", *sys.argv[1:]])
    lines = [
        "# Mode coverage on the 2-D ring (8 modes) and grid (25 modes)",
        "",
        f"PacGAN's metric on 2500 samples of the EMA generator; mean ± std over seeds "
        f"{args.seeds}. Reference rows: PacGAN (Lin et al. 2018), Table 1, means.",
        f"Targets of the best recipe: {target_text}.",
        "",
        *header,
        *rows,
        "",
        "## Recipes (fields that differ from the plain GAN)",
        "",
        *settings,
        "",
        "## Per seed (modes / HQ % / reverse KL)",
        "",
        "| data | recipe | " + " | ".join(f"seed {s}" for s in args.seeds) + " |",
        "|---|---|" + "---|" * len(args.seeds),
        *per_seed,
        "",
        f"Written {datetime.date.today()} by `{command}` in {total:.0f} s "
        f"(jax {jax.__version__}, {platform.processor() or platform.machine()}, "
        f"{jax.devices()[0].platform}).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
