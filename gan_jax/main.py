"""Command line: `gan-jax train | sample | eval` (also `python -m gan_jax ...`); see README."""

import argparse
import logging
import sys
from pathlib import Path

import jax

from gan_jax import build, config, cpu_memory, distributed, evaluate, sampling
from gan_jax.train import train


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-jax", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "train",
        help="train or resume a run",
        epilog="Override any config key with --config.KEY=VALUE, e.g. --config.g.lr=1e-4.",
    )
    run.add_argument("--config", help="experiments/configs/NAME.py (default: WORKDIR/config.json)")
    run.add_argument("--workdir", required=True, help="run directory; resumed if it has one")
    distributed.add_flags(run)
    draw = commands.add_parser("sample", help="samples from the latest checkpoint's EMA G")
    draw.add_argument("--workdir", required=True)
    draw.add_argument("--num", type=int, default=16, help="number of samples")
    draw.add_argument("--out", required=True, help="output directory")
    draw.add_argument("--seed", type=int, default=0, help="noise seed")
    draw.add_argument(
        "--num-frames",
        type=int,
        help="frames per clip (default: the run's data.num_frames); another length needs a "
        "model family whose parameters do not depend on it, e.g. mocogan",
    )
    score = commands.add_parser("eval", help="metrics of the latest checkpoint's EMA G")
    score.add_argument("--workdir", required=True)
    score.add_argument(
        "--metric",
        action="append",
        help="metric to compute, e.g. video_stats, shapes_fd, fvd, mode_coverage or a metric "
        "module path (repeatable; default: all that apply)",
    )
    score.add_argument(
        "--num-samples",
        type=int,
        help="samples per metric (default: the run's eval.num_samples; FVD: eval.fvd_num_samples)",
    )
    score.add_argument("--seed", type=int, default=0)
    score.add_argument("--i3d-weights", help="I3D weights .npz for --metric fvd")
    return parser


def _train_config(args, overrides):
    path = args.config or Path(args.workdir) / config.CONFIG_JSON
    if args.config is None and not path.exists():
        raise config.ConfigError(f"--config is required: {path} does not exist (a new run)")
    # A resumed run's config.json may be of the layout before parts were found by name.
    return config.apply_overrides(build.upgrade_config(config.load_config_file(path)), overrides)


def _setup_logging() -> None:
    # force: absl (imported by orbax and grain) has already put a handler on the root logger.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    for chatty in ("absl", "jax"):  # orbax logs every checkpoint step at INFO through absl
        logging.getLogger(chatty).setLevel(logging.WARNING)


def main(argv=None) -> int:
    """Runs a command; returns the exit status (2: bad config or missing files)."""
    if argv is None:  # the real command line, not a call from Python (tests keep their logging)
        _setup_logging()
        # Before JAX allocates: XLA:CPU steps then reuse freed pages instead of faulting in
        # fresh ones every step (see gan_jax/cpu_memory.py); harmless on GPU hosts.
        cpu_memory.keep_freed_memory()
        argv = sys.argv[1:]
    parser = _parser()
    argv = list(argv)
    command = argv[0] if argv else ""
    try:
        overrides, rest = config.split_overrides(argv)
        args = parser.parse_args(rest)
        if overrides and args.command != "train":
            raise config.ConfigError("--config.KEY=VALUE overrides apply to `train` only")
        if args.command == "train":
            distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
            cfg = _train_config(args, overrides)
            logging.info(
                "Process %d/%d, devices: %s",
                jax.process_index(),
                jax.process_count(),
                jax.devices(),
            )
            train(cfg, args.workdir)
        elif args.command == "sample":
            sampling.sample_command(args.workdir, args.num, args.out, args.seed, args.num_frames)
        else:
            evaluate.eval_command(
                args.workdir, args.metric, args.num_samples, args.seed, args.i3d_weights
            )
    except (config.ConfigError, FileNotFoundError) as e:
        print(f"gan-jax {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # a second SIGTERM / Ctrl-C: stop now, save nothing more
        print(
            f"gan-jax {command}: aborted ({e or 'interrupted'}); nothing was saved for the "
            "current step, the last finished checkpoint is kept",
            file=sys.stderr,
        )
        return 130
    return 0
