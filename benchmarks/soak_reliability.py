"""Reliability soak: kill -9 at random moments, damaged checkpoints, fuzzed videos, a full disk
and user mistakes, each with its outcome in a table. Seeded, so a rerun draws the same trials.

    python benchmarks/soak_reliability.py --seed 0 --kills 10 --fuzz 300

Sections (each can be skipped with --skip NAME):
  kill      train the tiny config uninterrupted, then N runs killed with SIGKILL at a random
            moment and resumed; the final states must be bitwise equal.
  damage    every kind of damage in soak_checkpoints.DAMAGES applied to the newest of three
            checkpoints; the restore must fall back to the one before and move it aside.
  fuzz      soak_fuzz.run: small videos with flipped, zeroed and cut bytes, read strictly.
  disk      (root only) training into a 600 KiB tmpfs: one line naming the path, the free
            space and the last good checkpoint, then a bitwise-equal resume once space is freed.
  mistakes  command lines a user gets wrong; each must end with one `gan-jax ...: error:` line.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "configs" / "tiny.py"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def _env(cache: pathlib.Path) -> dict:
    # A persistent compilation cache: every run compiles the same tiny programs.
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def _gan_jax(*args: str) -> list[str]:
    return [sys.executable, "-m", "gan_jax", *args]


TRAIN_ARGS = (
    "--config.steps=40",
    "--config.ckpt.every=5",
    "--config.log.every=5",
    "--config.log.sample_every=0",
)


def _final_leaves(workdir: pathlib.Path):
    import jax

    from gan_jax.workdir import load_run

    _, _, state, _ = load_run(workdir)
    return [jax.device_get(leaf) for leaf in jax.tree.leaves(state)]


def _bitwise_equal(a, b) -> bool:
    import numpy as np

    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
        for x, y in zip(a, b)
    )


def kill_trials(num: int, rng: random.Random, tmp: pathlib.Path, env: dict) -> list[dict]:
    """SIGKILL each run at a random moment of an uninterrupted run's duration, then resume."""
    reference = tmp / "reference"
    train = ["train", "--config", str(TINY)]
    for workdir in (reference, tmp / "timing"):  # the second run finds the programs compiled
        start = time.perf_counter()
        subprocess.run(
            _gan_jax(*train, "--workdir", str(workdir), *TRAIN_ARGS),
            env=env,
            check=True,
            capture_output=True,
        )
        duration = time.perf_counter() - start
    expected = _final_leaves(reference)
    rows = []
    for trial in range(num):
        workdir = tmp / f"kill{trial}"
        # Within the run (a kill after the end tests nothing): start-up, compile, steps, saves.
        delay = rng.uniform(0.5, 0.95 * duration)
        process = subprocess.Popen(
            _gan_jax(*train, "--workdir", str(workdir), *TRAIN_ARGS),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        killed = process.poll() is None
        if killed:
            process.send_signal(signal.SIGKILL)
        process.wait()
        steps_before = (
            sorted(int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit())
            if (workdir / "checkpoints").is_dir()
            else []
        )
        resumed = subprocess.run(
            _gan_jax("train", "--config", str(TINY), "--workdir", str(workdir), *TRAIN_ARGS),
            env=env,
            capture_output=True,
            text=True,
        )
        row = {
            "trial": trial,
            "kill_at_s": round(delay, 1),
            "killed": killed,
            "checkpoints_left": steps_before[-1] if steps_before else None,
            "resume_exit": resumed.returncode,
        }
        row["bitwise_equal"] = resumed.returncode == 0 and _bitwise_equal(
            _final_leaves(workdir), expected
        )
        rows.append(row)
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def disk_trial(tmp: pathlib.Path, env: dict) -> dict | None:
    """Training into a small tmpfs (root only); None where no tmpfs can be mounted."""
    mount = tmp / "small_disk"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        return None
    try:
        workdir = mount / "run"
        args = ["train", "--config", str(TINY), "--workdir", str(workdir), *TRAIN_ARGS]
        full = subprocess.run(_gan_jax(*args), env=env, capture_output=True, text=True)
        lines = [line for line in full.stderr.splitlines() if line.strip()]
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        resumed = subprocess.run(_gan_jax(*args), env=env, capture_output=True, text=True)
        reference = _final_leaves(tmp / "reference") if (tmp / "reference").is_dir() else None
        return {
            "full_exit": full.returncode,
            "stderr_lines": len(lines),
            "last_line": lines[-1] if lines else "",
            "resume_exit": resumed.returncode,
            "bitwise_equal": reference is not None
            and resumed.returncode == 0
            and _bitwise_equal(_final_leaves(workdir), reference),
        }
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def _mistakes(tmp: pathlib.Path) -> list[tuple[str, list[str]]]:
    """(what the user got wrong, the command line)."""
    bad_syntax = tmp / "bad_syntax.py"
    bad_syntax.write_text("def get_config(:\n")
    raising = tmp / "raising.py"
    raising.write_text("def get_config():\n    return {}['x']\n")
    file = tmp / "a_file"
    file.write_text("x")
    empty = tmp / "empty_folder"
    empty.mkdir()
    texts = tmp / "text_folder"
    texts.mkdir()
    (texts / "notes.txt").write_text("not a video")
    short = tmp / "short_videos"
    short.mkdir()
    import numpy as np

    from gan_jax.io import write_video

    for i in range(2):  # 2 frames each; the tiny config's clips need more with a stride
        write_video(short / f"clip{i}.mp4", np.zeros((2, 16, 16, 3), np.uint8))
    run = tmp / "reference"
    tiny = ["train", "--config", str(TINY)]
    folder_config = ROOT / "experiments" / "configs" / "video_folder.py"
    folder = ["--config.steps=2", "--config.batch_size=2"]
    return [
        (
            "config file missing",
            ["train", "--config", str(tmp / "nope.py"), "--workdir", str(tmp / "w")],
        ),
        (
            "config syntax error",
            ["train", "--config", str(bad_syntax), "--workdir", str(tmp / "w")],
        ),
        ("get_config raises", ["train", "--config", str(raising), "--workdir", str(tmp / "w")]),
        ("unknown key", [*tiny, "--workdir", str(tmp / "w"), "--config.g.widht=3"]),
        ("wrong type", [*tiny, "--workdir", str(tmp / "w"), "--config.steps=ten"]),
        ("override without value", [*tiny, "--workdir", str(tmp / "w"), "--config.steps"]),
        (
            "num_objects out of range",
            [*tiny, "--workdir", str(tmp / "w"), "--config.data.num_objects=(1, 9)"],
        ),
        ("height not divisible", [*tiny, "--workdir", str(tmp / "w"), "--config.data.height=10"]),
        (
            "batch not divisible by devices",
            [*tiny, "--workdir", str(tmp / "w"), "--config.batch_size=0"],
        ),
        ("new workdir without --config", ["train", "--workdir", str(tmp / "new")]),
        ("--workdir is a file", [*tiny, "--workdir", str(file)]),
        (
            "empty video folder",
            [
                "train",
                "--config",
                str(folder_config),
                "--workdir",
                str(tmp / "w"),
                *folder,
                f"--config.data.root={empty}",
            ],
        ),
        (
            "folder of text files",
            [
                "train",
                "--config",
                str(folder_config),
                "--workdir",
                str(tmp / "w"),
                *folder,
                f"--config.data.root={texts}",
            ],
        ),
        *(
            (
                f"every video too short ({policy})",
                [
                    "train",
                    "--config",
                    str(folder_config),
                    "--workdir",
                    str(tmp / "w"),
                    *folder,
                    f"--config.data.root={short}",
                    "--config.data.num_frames=8",
                    f"--config.data.too_short={policy}",
                ],
            )
            for policy in ("raise", "skip")
        ),
        (
            "video folder missing",
            [
                "train",
                "--config",
                str(folder_config),
                "--workdir",
                str(tmp / "w"),
                *folder,
                f"--config.data.root={tmp / 'no_such'}",
            ],
        ),
        (
            "changed architecture on resume",
            ["train", "--workdir", str(run), "--config.steps=41", "--config.g.base_width=8"],
        ),
        (
            "override to sample",
            ["sample", "--workdir", str(run), "--out", str(tmp / "o"), "--config.seed=1"],
        ),
        (
            "sample --num 0",
            ["sample", "--workdir", str(run), "--out", str(tmp / "o"), "--num", "0"],
        ),
        (
            "sample --num -3",
            ["sample", "--workdir", str(run), "--out", str(tmp / "o"), "--num", "-3"],
        ),
        (
            "sample --num x",
            ["sample", "--workdir", str(run), "--out", str(tmp / "o"), "--num", "x"],
        ),
        ("sample --out is a file", ["sample", "--workdir", str(run), "--out", str(file)]),
        (
            "sample --num-frames 8 on video_dcgan",
            ["sample", "--workdir", str(run), "--out", str(tmp / "o"), "--num-frames", "8"],
        ),
        (
            "sample from a missing workdir",
            ["sample", "--workdir", str(tmp / "nope"), "--out", str(tmp / "o")],
        ),
        (
            "sample from a workdir without checkpoints",
            ["sample", "--workdir", str(empty), "--out", str(tmp / "o")],
        ),
        ("eval unknown metric", ["eval", "--workdir", str(run), "--metric", "nope"]),
        ("eval metric of other data", ["eval", "--workdir", str(run), "--metric", "mode_coverage"]),
        ("eval --num-samples 0", ["eval", "--workdir", str(run), "--num-samples", "0"]),
        (
            "fvd_piergiaj without weights",
            ["eval", "--workdir", str(run), "--metric", "fvd_piergiaj"],
        ),
        ("unknown command", ["trian", "--workdir", str(run)]),
    ]


def mistake_trials(tmp: pathlib.Path, env: dict) -> list[dict]:
    rows = []
    for what, args in _mistakes(tmp):
        result = subprocess.run(_gan_jax(*args), env=env, capture_output=True, text=True)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        rows.append(
            {
                "mistake": what,
                "exit": result.returncode,
                "traceback": "Traceback" in result.stderr,
                "one_line": last.startswith("gan-jax") and ": error: " in last,
                "line": last,
            }
        )
    return rows


def _table(title: str, rows: list[dict]) -> None:
    print(f"\n### {title}\n")
    if not rows:
        print("(none)")
        return
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")).replace("|", "/") for k in keys) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--fuzz", type=int, default=300, help="fuzzed video files")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["kill", "damage", "fuzz", "disk", "mistakes"],
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as name:
        tmp = pathlib.Path(name)
        env = _env(tmp / "jax_cache")
        started = time.perf_counter()
        if "kill" not in args.skip or "mistakes" not in args.skip or "disk" not in args.skip:
            rows = kill_trials(args.kills if "kill" not in args.skip else 0, rng, tmp, env)
            if "kill" not in args.skip:
                _table(f"kill -9 at a random moment, then resume (seed {args.seed})", rows)
                equal = sum(row["bitwise_equal"] for row in rows)
                print(
                    f"\n{equal} of {len(rows)} resumed runs ended bitwise equal to the "
                    "uninterrupted run"
                )
        if "damage" not in args.skip:
            import soak_checkpoints

            _table(
                "damage to the newest of three checkpoints", soak_checkpoints.run(tmp / "damage")
            )
        if "fuzz" not in args.skip:
            import logging

            import soak_fuzz

            # The lenient reads' warnings (one per damaged file) would bury the table.
            logging.getLogger("gan_jax.io").setLevel(logging.ERROR)
            (tmp / "fuzz").mkdir()
            counts = soak_fuzz.run(args.seed, args.fuzz, tmp / "fuzz")
            _table(
                f"{args.fuzz} fuzzed videos read strictly (seed {args.seed})",
                [{"outcome": k, "files": v} for k, v in counts.items()],
            )
        if "disk" not in args.skip:
            row = disk_trial(tmp, env)
            _table("training into a 600 KiB tmpfs", [row] if row else [])
        if "mistakes" not in args.skip:
            rows = mistake_trials(tmp, env)
            _table("user mistakes", rows)
            good = sum(row["one_line"] and not row["traceback"] for row in rows)
            print(f"\n{good} of {len(rows)} mistakes ended with one error line and no traceback")
        print(f"\nsoak took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
