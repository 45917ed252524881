"""Command line: `gan-jax train | sample | predict | eval | report` (also `python -m gan_jax
...`); see README.

Every failure ends with one line ``gan-jax <command>: error: <what and how to fix it>``: exit
status 2 for the user's mistakes (a config value, a path, a data folder: `gan_jax.errors.
USER_ERRORS`), 1 for faults of the environment or of training (a full disk, damaged
checkpoints, a diverged run, an unexpected error). The traceback goes to ``WORKDIR/errors.log``
(or a temporary file), and to the terminal with ``--debug``.

Only light modules are imported at the top: `main()` first installs the early SIGTERM handler
(`gan_jax.early_signals`), then imports JAX and the rest.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from gan_jax import early_signals
from gan_jax.errors import USER_ERRORS, EnvironmentFault, UserError

ERROR_LOG = "errors.log"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in the one-line form of every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(low: int):
    """An argparse type: an integer of at least `low`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


_STANDING_HELP = (
    "sample G's batch norms with standing statistics of this many of the EMA G's own batches "
    "(BigGAN; 0: the trained G's running statistics; default: the run's ema.standing_stats)"
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    from gan_jax import distributed

    parser = _Parser(prog="gan-jax", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser(
        "train",
        help="train or resume a run",
        epilog="Override any config key with --config.KEY=VALUE, e.g. --config.g.lr=1e-4. "
        "--debug (anywhere) prints tracebacks.",
    )
    run.add_argument("--config", help="experiments/configs/NAME.py (default: WORKDIR/config.json)")
    run.add_argument("--workdir", required=True, help="run directory; resumed if it has one")
    distributed.add_flags(run)
    draw = commands.add_parser("sample", help="samples from the latest checkpoint's EMA G")
    draw.add_argument("--workdir", required=True)
    draw.add_argument("--num", type=_positive_int, default=16, help="number of samples")
    draw.add_argument("--out", required=True, help="output directory")
    draw.add_argument("--seed", type=int, default=0, help="noise seed")
    draw.add_argument(
        "--num-frames",
        type=_positive_int,
        help="frames per clip (default: the run's data.num_frames); another length needs a "
        "model family whose parameters do not depend on it, e.g. mocogan",
    )
    draw.add_argument(
        "--label",
        type=int,
        help="class of every sample of a class-conditional run (default: its classes in turn)",
    )
    draw.add_argument("--standing-stats", type=_non_negative_int, help=_STANDING_HELP)
    guess = commands.add_parser(
        "predict",
        help="continue a video file with a video_prediction run's EMA G: the real video "
        "beside the predicted futures (.mp4, .gif, .png grid, .npy)",
    )
    guess.add_argument("--workdir", required=True, help="a run with objective video_prediction")
    guess.add_argument(
        "--video", required=True, help="video file to continue (mp4, avi, mov, webm, gif, ...)"
    )
    guess.add_argument("--out", required=True, help="output directory")
    guess.add_argument(
        "--context",
        type=_positive_int,
        help="context frames k (default: the run's objective.context, the only value its G takes)",
    )
    guess.add_argument(
        "--frames",
        type=_positive_int,
        help="frames to predict (default: the run's T - k; more are predicted window by "
        "window, each from the last k frames)",
    )
    guess.add_argument(
        "--samples", type=_positive_int, default=3, help="predicted futures (default: 3)"
    )
    guess.add_argument(
        "--start",
        type=_seconds,
        default=0.0,
        help="seconds into the video of the first context frame (default: 0)",
    )
    guess.add_argument("--seed", type=int, default=0, help="noise seed")
    score = commands.add_parser(
        "eval",
        help="metrics of the latest checkpoint's EMA G; --config.data.KEY=VALUE draws the real "
        "clips from other data settings, e.g. --config.data.time_range='(0.8, 1.0)' (held out)",
    )
    score.add_argument("--workdir", required=True)
    score.add_argument(
        "--metric",
        action="append",
        help="metric to compute, e.g. video_stats, shapes_fd, fvd, mode_coverage or a metric "
        "module path (repeatable; default: all that apply)",
    )
    score.add_argument(
        "--num-samples",
        type=_positive_int,
        help="samples per metric (default: the run's eval.num_samples; FVD: eval.fvd_num_samples)",
    )
    score.add_argument("--seed", type=int, default=0, help="seed of the generator's noise")
    score.add_argument(
        "--real-seed",
        type=int,
        help="seed of the order real clips are drawn in (default: --seed); written with FVD",
    )
    score.add_argument(
        "--fvd-frames",
        type=int,
        choices=(16, 128),
        help="frames per clip for fvd (default: the run's eval.fvd_num_frames, 16)",
    )
    score.add_argument("--standing-stats", type=_non_negative_int, help=_STANDING_HELP)
    score.add_argument(
        "--i3d-weights",
        help="piergiaj I3D weights .npz for --metric fvd_piergiaj (not comparable with papers)",
    )
    page = commands.add_parser(
        "report", help="write WORKDIR/report.html: curves, metrics, sample clips, config, timing"
    )
    page.add_argument("--workdir", required=True)
    page.add_argument("--out", help="where to write the page (default: WORKDIR/report.html)")
    return parser


def _train_config(args, overrides):
    from gan_jax import build, config

    path = args.config or Path(args.workdir) / config.CONFIG_JSON
    if args.config is None and not path.exists():
        raise config.ConfigError(f"--config is required: {path} does not exist (a new run)")
    # A resumed run's config.json may be of the layout before parts were found by name.
    return config.apply_overrides(build.upgrade_config(config.load_config_file(path)), overrides)


def check_workdir(workdir: str | os.PathLike, *, for_training: bool) -> Path:
    """The run directory, checked before any work. It must be a directory; for training, one
    that exists or can be created, and that this process can write into (sampling from a
    read-only run is fine). Nothing is created here, so a mistake leaves no empty directory.

    Raises:
        UserError: naming the directory and what is wrong with it.
    """
    path = Path(workdir)
    if path.exists() and not path.is_dir():
        raise UserError(f"--workdir {path} is a file, not a directory; pass a directory")
    if not for_training:
        if not path.exists():
            raise UserError(f"--workdir {path} does not exist; train first or fix the path")
        return path
    probe = path
    while not probe.exists():  # the directory that the run directory would be created in
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"--workdir {path} cannot be created: {probe} is a file")
    try:  # os.access is not enough: it ignores read-only mounts and says yes to root
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        where = "" if probe == path else f" (its parent {probe} is not)"
        raise UserError(
            f"--workdir {path} is not writable{where}: {e.strerror}; choose a directory you "
            "can write to"
        ) from None
    return path


def _check_out_dir(out: str | os.PathLike) -> None:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path} is a file, not a directory; pass a directory")


class _ErrorLog:
    """Where tracebacks go instead of the terminal: WORKDIR/errors.log once the run directory
    is known and writable, else a file in the temporary directory. Writing never raises (the
    disk may be full)."""

    def __init__(self):
        self.workdir: str | None = None
        # False once the command's own error line is printed: what fails after it (an atexit
        # flush on a full disk) must not push that line off the end of the output.
        self.to_terminal = True
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def candidates(self) -> list[Path]:
        paths = []
        if self.workdir is not None and Path(self.workdir).is_dir():
            paths.append(Path(self.workdir) / ERROR_LOG)
        paths.append(Path(tempfile.gettempdir()) / f"gan-jax-{os.getpid()}-{ERROR_LOG}")
        return paths

    def write(self, title: str, text: str) -> str | None:
        """Appends `text` under a time-stamped `title`; returns the file written, or None."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self._lock:
            for path in self.candidates():
                try:
                    with open(path, "a", encoding="utf-8") as f:
                        f.write(f"--- {stamp} {title}\n{text.rstrip()}\n")
                    return str(path)
                except OSError:
                    continue
        return None

    def background(self, where: str, error: BaseException | None, text: str) -> None:
        """A failure outside the main thread's control (a writer thread, a callback, a library's
        error log): the whole text to the log, one line to stderr the first time it is seen."""
        log = self.write(where, text)
        if not self.to_terminal:
            return
        first = str(error).strip().splitlines()[0] if error is not None and str(error) else ""
        kind = type(error).__name__ if error is not None else "error"
        if (where, kind) in self._seen:  # orbax logs one error per array it failed to write
            return
        self._seen.add((where, kind))
        where_log = f" (details: {log})" if log else ""
        line = f"gan-jax: {where}: {kind}: {first}"[:300]
        try:
            print(f"{line}{where_log}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass


_ERROR_LOG = _ErrorLog()


class _OneLineForeignErrors(logging.Filter):
    """Libraries' error records (orbax's failed background save logs a 35-line traceback, and
    logs it again per array) become one line on stderr; their full text goes to the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or record.name.startswith("gan_jax"):
            return True
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            error = RuntimeError(record.getMessage())
        _ERROR_LOG.background(f"{record.name} logged", error, text)
        return False


def _install_quiet_hooks() -> None:
    """Tracebacks of background threads, unraisable errors (atexit callbacks, destructors) and
    errors printed by native callbacks go to the error log, with one line on stderr."""

    def thread_hook(args):
        error = args.exc_value
        text = "".join(traceback.format_exception(args.exc_type, error, args.exc_traceback))
        name = args.thread.name if args.thread is not None else "thread"
        _ERROR_LOG.background(f"background thread {name}", error, text)

    def unraisable_hook(args):
        error = args.exc_value
        text = "".join(traceback.format_exception(args.exc_type, error, args.exc_traceback))
        _ERROR_LOG.background(f"ignored error in {args.object!r}"[:120], error, text)

    def except_hook(exc_type, error, tb):
        # Native code (TensorStore callbacks after orbax closed its event loop) reports through
        # PyErr_Print, which ends here; the main thread's own errors are caught in main().
        text = "".join(traceback.format_exception(exc_type, error, tb))
        _ERROR_LOG.background("callback", error, text)

    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook
    sys.excepthook = except_hook


def _setup_logging() -> None:
    # force: absl (imported by orbax and grain) has already put a handler on the root logger.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_OneLineForeignErrors())
    for chatty in ("absl", "jax"):  # orbax logs every checkpoint step at INFO through absl
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _run(args, overrides) -> None:
    import jax

    from gan_jax import config, distributed, evaluate, predicting, report, sampling
    from gan_jax.train import train

    if overrides and args.command not in ("train", "eval"):
        raise config.ConfigError(
            "--config.KEY=VALUE overrides apply to `train` (any key) and `eval` (data keys: "
            "where the real clips come from) only"
        )
    if args.command == "train":
        distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
        cfg = _train_config(args, overrides)
        check_workdir(args.workdir, for_training=True)
        logging.info(
            "Process %d/%d, devices: %s", jax.process_index(), jax.process_count(), jax.devices()
        )
        train(cfg, args.workdir)
    elif args.command == "report":
        check_workdir(args.workdir, for_training=False)
        try:
            path = report.write_report(args.workdir, args.out)
        except FileNotFoundError as e:
            raise UserError(str(e)) from None
        print(path)
    elif args.command == "sample":
        check_workdir(args.workdir, for_training=False)
        _check_out_dir(args.out)
        sampling.sample_command(
            args.workdir,
            args.num,
            args.out,
            args.seed,
            args.num_frames,
            args.label,
            standing_stats=args.standing_stats,
        )
    elif args.command == "predict":
        check_workdir(args.workdir, for_training=False)
        _check_out_dir(args.out)
        predicting.predict_command(
            args.workdir,
            args.video,
            args.out,
            context=args.context,
            frames=args.frames,
            samples=args.samples,
            start=args.start,
            seed=args.seed,
        )
    else:
        check_workdir(args.workdir, for_training=False)
        evaluate.eval_command(
            args.workdir,
            args.metric,
            args.num_samples,
            args.seed,
            args.i3d_weights,
            real_seed=args.real_seed,
            fvd_frames=args.fvd_frames,
            real_data=overrides,
            standing_stats=args.standing_stats,
        )


def _chain(error: BaseException):
    """The error and the errors it was raised from or during, outermost first."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _disk_full(error: BaseException) -> bool:
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(link) or "ENOSPC" in str(link):
            return True
    return False


def _disk_full_message(workdir: str | None) -> str:
    """Which path, how much is free there, and the newest checkpoint that is finished."""
    if workdir is None:
        return "no space left on device"
    path = Path(workdir)
    try:
        free = shutil.disk_usage(path if path.exists() else path.parent).free
        free_text = f"{free / 2**20:.1f} MiB free"
    except OSError:
        free_text = "free space unknown"
    text = f"no space left on device writing {path} ({free_text})"
    try:
        from gan_jax.checkpoint import Checkpointer
        from gan_jax.workdir import CHECKPOINT_DIR

        with Checkpointer(path / CHECKPOINT_DIR) as ckpt:
            last = ckpt.latest_step()
        if last is None:
            text += "; no checkpoint was finished"
        else:
            text += f"; the last good checkpoint is {path / CHECKPOINT_DIR / str(last)}"
    except Exception:  # noqa: BLE001 - the message must be printed whatever the disk does
        pass
    return text + ". Free space there and rerun the same command to resume"


def _classify(error: BaseException, workdir: str | None) -> tuple[int, str, bool]:
    """(exit status, one-line message, whether the error is unexpected) for an error that ended
    a command."""
    from gan_jax.io.errors import VideoDecodeError
    from gan_jax.train import NonFiniteError

    if _disk_full(error):
        return 1, _disk_full_message(workdir), False
    if isinstance(error, (*USER_ERRORS, FileNotFoundError, VideoDecodeError, PermissionError)):
        return 2, str(error), False
    if isinstance(error, (EnvironmentFault, NonFiniteError)):
        return 1, str(error), False
    return 1, f"unexpected {type(error).__name__}: {error}", True


def main(argv=None) -> int:
    """Runs a command; returns the exit status (0 done, 2 the user's mistake, 1 a fault)."""
    if argv is None:  # the real command line, not a call from Python (tests keep their logging)
        argv = sys.argv[1:]
        if argv[:1] == ["train"]:
            early_signals.install()  # before the heavy imports below
        _setup_logging()
        _install_quiet_hooks()
        from gan_jax import cpu_memory

        # Before JAX allocates: XLA:CPU steps then reuse freed pages instead of faulting in
        # fresh ones every step (see gan_jax/cpu_memory.py); harmless on GPU hosts.
        cpu_memory.keep_freed_memory()
    from gan_jax import config

    argv = list(argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    command = argv[0] if argv else ""
    workdir = None
    _ERROR_LOG.to_terminal = True
    try:
        overrides, rest = config.split_overrides(argv)
        args = _parser().parse_args(rest)
        workdir = _ERROR_LOG.workdir = args.workdir
        _run(args, overrides)
    except KeyboardInterrupt as e:  # a second SIGTERM / Ctrl-C: stop now, save nothing more
        print(
            f"gan-jax {command}: aborted ({e or 'interrupted'}); nothing was saved for the "
            "current step, the last finished checkpoint is kept",
            file=sys.stderr,
        )
        return early_signals.ABORT_STATUS
    except Exception as e:  # noqa: BLE001 - every failure ends in one line (see module doc)
        if debug:
            traceback.print_exc()
        status, message, unexpected = _classify(e, workdir)
        # The user's mistakes need no traceback; faults keep one for a bug report.
        log = None
        if status == 1:
            log = _ERROR_LOG.write(f"gan-jax {' '.join(argv)}", traceback.format_exc())
        where = ""
        if unexpected and log and not debug:
            where = f" [traceback: {log}; --debug prints it]"
        print(f"gan-jax {command}: error: {' '.join(message.split())}{where}", file=sys.stderr)
        _ERROR_LOG.to_terminal = False
        return status
    return 0
