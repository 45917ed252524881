"""Bouncing shapes at equal wall-clock: model family x loss x augmentation, over seeds.

Each cell trains one config of `experiments/configs/` (the model family's recipe on the main job's
data) with the loss and augmentation swapped in by `--config.KEY=VALUE` overrides, through
`gan-jax train` in its own process. The process is stopped with SIGTERM `--budget` seconds after it
started (start-up and compilation included; the trainer saves a checkpoint and exits), so every cell
gets the same wall-clock on this CPU, and a faster step buys more steps. With `--workers N`, N cells
run at once, each pinned to its own core (`taskset`) for its training and its scoring, so every cell
still gets the same share of the machine. Then `gan-jax eval` scores the checkpoint's EMA generator
with `shapes_physics` (share of clips that pass every physics check) and `shapes_fd` (Fréchet Shapes
Distance) on `--num-samples` clips, real clips scored beside them.

Writes `OUT/results.jsonl` (one line per run, appended as runs finish; runs already there are
skipped, so an interrupted table resumes, and more seeds add to it; each row names its CPU) and
`OUT/table.md` (mean +- std over seeds per cell, best pass first then lowest FSD, the CPUs the
rows ran on, `lscpu` model and flags, on top).

Cells (all combinations of the named ones):
  models: dcgan (`bouncing_shapes_dcgan.py`), r3gan (`bouncing_shapes_r3gan.py`), mocogan
     (`bouncing_shapes.py`, the main job);
  losses: ns_r1 (non-saturating + R1), hinge (no penalty), rpgan (relativistic pairing + R1 +
     R2); gamma is `--gamma` where given, else the family's own (`GAMMA`: the gamma its config
     trains with; the DCGAN's config has no penalty, so 0.1, the value R3GAN's config uses);
  augment: off, on (DiffAugment color,translation,cutout at p = 1).

Run from the repository root, on idle cores (nothing else running: the table is about timing):
    .venv/bin/python experiments/shapes_ablation.py --budget 180 --workers 2 --seeds 0 1 2 \
        --out experiments/results/shapes_ablation
"""

import argparse
import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "experiments" / "configs"
MODELS = {
    "dcgan": "bouncing_shapes_dcgan.py",
    "r3gan": "bouncing_shapes_r3gan.py",
    "mocogan": "bouncing_shapes.py",
}
# R1 (and R2) weight per family: the main job trains with gamma 1 (at 0.1 its level-logit
# colours let D pull away on one seed of three); R3GAN's config with 0.1 (at 1 its G drew a dotted
# grid); the DCGAN's config has no penalty.
GAMMA = {"dcgan": 0.1, "r3gan": 0.1, "mocogan": 1.0}
LOSSES = ("ns_r1", "hinge", "rpgan")
AUGMENT = ("off", "on")


def cell_overrides(loss: str, augment: str, gamma: float) -> list[str]:
    """`--config.KEY=VALUE` overrides for one (loss, augment) cell."""
    if loss == "ns_r1":
        overrides = ["loss.name=nonsaturating", f"penalty.r1={gamma}", "penalty.r2=0.0"]
    elif loss == "hinge":
        overrides = ["loss.name=hinge", "penalty.r1=0.0", "penalty.r2=0.0"]
    elif loss == "rpgan":
        overrides = ["loss.name=rpgan", f"penalty.r1={gamma}", f"penalty.r2={gamma}"]
    else:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    policy = {"off": "", "on": "color,translation,cutout"}[augment]
    overrides.append(f"augment.policy={policy}")
    return ["--config." + o for o in overrides]


def gan_jax(*args: str) -> list[str]:
    """The `gan-jax` command of this Python's environment."""
    return [str(pathlib.Path(sys.executable).with_name("gan-jax")), *args]


def pinned(command: list[str], core: int | None) -> list[str]:
    """`command` run on CPU `core` alone (None: on every core)."""
    return command if core is None else ["taskset", "--cpu-list", str(core), *command]


def train_for(budget: float, command: list[str], log: pathlib.Path) -> float:
    """Runs `command`, sends SIGTERM after `budget` seconds; returns the wall time it took."""
    start = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)  # the trainer saves this step and exits 0
            process.wait(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}; see {log}")
    return time.monotonic() - start


def run_cell(args, model: str, loss: str, augment: str, seed: int, core: int | None) -> dict:
    name = f"{model}-{loss}-aug_{augment}-seed{seed}"
    workdir = args.out / "runs" / name
    workdir.mkdir(parents=True, exist_ok=True)
    config = [
        "--config",
        str(CONFIGS / MODELS[model]),
        "--workdir",
        str(workdir),
        f"--config.seed={seed}",
        "--config.steps=1000000",
        "--config.ckpt.every=1000000",
        "--config.log.sample_every=1000000",
        "--config.eval.every=0",
        f"--config.eval.num_samples={args.num_samples}",
        f"--config.eval.shapes_features_dir={args.out / 'shapes_features'}",
    ]
    gamma = GAMMA[model] if args.gamma is None else args.gamma
    seconds = train_for(
        args.budget,
        pinned(gan_jax("train", *config, *cell_overrides(loss, augment, gamma)), core),
        workdir / "train.log",
    )
    scored = subprocess.run(
        pinned(
            gan_jax(
                "eval",
                "--workdir",
                str(workdir),
                "--metric",
                "shapes_physics",
                "--metric",
                "shapes_fd",
                "--seed",
                "1",
            ),
            core,
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(scored.stdout[scored.stdout.index("{") :])
    return {
        "model": model,
        "loss": loss,
        "augment": augment,
        "seed": seed,
        "gamma": gamma,
        "cores": 1 if core is not None else len(usable_cores()),
        "workers": args.workers,
        "step": results["step"],
        "seconds": round(seconds, 1),
        "pass": results["shapes_physics/fake_pass"],
        "real_pass": results["shapes_physics/real_pass"],
        "crisp": results["shapes_physics/fake_crisp"],
        "off_palette": results["shapes_physics/fake_off_palette"],
        "fsd": results["shapes_fd/fsd"],
        # Equal wall-clock buys different step counts on different CPUs: a table that adds
        # seeds in a later session must say when they ran elsewhere.
        "cpu": cpu_line(),
    }


def cpu_line() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "lscpu unavailable"
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    wanted = [f for f in flags if f.startswith(("avx", "amx", "fma"))]
    return (
        f"{fields.get('Model name', '?').strip()}, {os.cpu_count()} CPUs; flags: {' '.join(wanted)}"
    )


def write_table(args, rows: list[dict]) -> str:
    cells = {}
    for row in rows:
        key = (row["model"], row["loss"], row["augment"])
        cells.setdefault(key, []).append(row)
    shares = sorted(
        {(row.get("cores", os.cpu_count()), row.get("workers", 1)) for row in rows}, reverse=True
    )
    lines = [
        f"Bouncing shapes (main job data, 8x32x32), {args.budget:.0f} s wall per run "
        f"(start-up and compilation included), {args.num_samples} EMA clips scored per run.",
        *(f"{cores} core(s) per run, {workers} run(s) at a time." for cores, workers in shares),
        *(f"CPU: {cpu}" for cpu in sorted({row.get("cpu", "not recorded") for row in rows})),
        "",
        "| model | loss | augment | seeds | steps | pass % | crisp % | off-palette % | FSD |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def pm(values, scale=1.0, digits=1):
        v = np.asarray(values, float) * scale
        if v.size == 1:  # one seed: no spread to show
            return f"{v[0]:.{digits}f}"
        return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"

    order = sorted(
        cells.items(),
        key=lambda kv: (-np.mean([r["pass"] for r in kv[1]]), np.mean([r["fsd"] for r in kv[1]])),
    )
    for (model, loss, augment), runs in order:
        lines.append(
            f"| {model} | {loss} | {augment} | {len(runs)} | "
            f"{int(np.mean([r['step'] for r in runs]))} | {pm([r['pass'] for r in runs], 100)} | "
            f"{pm([r['crisp'] for r in runs], 100)} | "
            f"{pm([r['off_palette'] for r in runs], 100)} | "
            f"{pm([r['fsd'] for r in runs])} |"
        )
    table = "\n".join(lines) + "\n"
    (args.out / "table.md").write_text(table)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=180.0, help="wall seconds per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--augment", nargs="+", default=list(AUGMENT), choices=list(AUGMENT))
    parser.add_argument(
        "--gamma", type=float, default=None, help="R1 (and R2) weight (default: per family)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="runs at a time, each on its own core (1: all cores)"
    )
    parser.add_argument("--num-samples", type=int, default=512)
    parser.add_argument(
        "--out", type=pathlib.Path, default=ROOT / "experiments/results/shapes_ablation"
    )
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.jsonl"
    rows = (
        [json.loads(line) for line in results_file.read_text().splitlines()]
        if results_file.exists()
        else []
    )
    done = {(r["model"], r["loss"], r["augment"], r["seed"]) for r in rows}
    # Seeds outermost: a table cut short still has every cell at the first seeds.
    todo = [
        cell
        for cell in itertools.product(args.seeds, args.models, args.losses, args.augment)
        if (cell[1], cell[2], cell[3], cell[0]) not in done
    ]
    usable = usable_cores()
    if not 1 <= args.workers <= len(usable):
        parser.error(
            f"--workers {args.workers}: give 1 to {len(usable)}, the cores this process may use "
            f"({', '.join(map(str, usable))})"
        )
    if args.workers > 1 and shutil.which("taskset") is None:
        parser.error("--workers > 1 pins each run to a core with taskset (util-linux); install it")
    warm_feature_network(args.out / "shapes_features")
    cores = usable[: args.workers] if args.workers > 1 else [None]
    free_cores = list(cores)
    lock = threading.Lock()

    def run_and_record(cell):
        seed, model, loss, augment = cell
        with lock:
            core = free_cores.pop()
        try:
            row = run_cell(args, model, loss, augment, seed, core)
        finally:
            with lock:
                free_cores.append(core)
        with lock:
            rows.append(row)
            with open(results_file, "a") as out:
                out.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

    with ThreadPoolExecutor(max_workers=len(cores)) as pool:
        for future in [pool.submit(run_and_record, cell) for cell in todo]:
            future.result()
    print(write_table(args, rows))


def usable_cores() -> list[int]:
    """The CPU ids this process may run on (its affinity mask, which a container may narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def warm_feature_network(cache_dir: pathlib.Path) -> None:
    """Trains (or loads) the shapes feature network once, before any cell: cells scored at the
    same time would otherwise race to train it into the same cache."""
    from gan_jax.config import load_config_file
    from gan_jax.metrics.shapes_features import get_feature_params

    main_job = load_config_file(CONFIGS / MODELS["mocogan"])
    get_feature_params(cache_dir, main_job.data, steps=int(main_job.eval.shapes_features_steps))


if __name__ == "__main__":
    main()
