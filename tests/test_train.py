"""The training loop: exact resume, cut-off saves, signals, non-finite losses, outputs."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
from conftest import assert_main_job_marks, run_main_job, xla_flags

from gan_jax import build, config, early_signals
from gan_jax.checkpoint import Checkpointer
from gan_jax.metric_writer import read_metrics
from gan_jax.train import NonFiniteError, StopSignals, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "configs" / "tiny.py"
LOSSES = ("d/loss", "d/total_loss", "g/loss", "grad_norm/d", "grad_norm/g", "d/real_logit")


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(persistent_compile_cache):
    """This module's runs compile the same tiny programs: compile each once."""
    yield


def tiny(**overrides):
    cfg = config.load_config_file(TINY)
    return config.apply_overrides(cfg, [(k, str(v)) for k, v in overrides.items()])


def _ckpt_steps(workdir):
    with Checkpointer(pathlib.Path(workdir) / "checkpoints") as ckpt:
        return ckpt.all_steps()


def _assert_trees_equal(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _losses_by_step(workdir):
    return {r["step"]: {k: r[k] for k in LOSSES} for r in read_metrics(workdir)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 6-step run, and a 3-step run resumed for 3 more, with log.every=1."""
    base = tmp_path_factory.mktemp("runs")
    six = tiny(steps=6, **{"ckpt.every": 3, "log.sample_every": 0})
    full = train(six, base / "full")
    first = train(tiny(steps=3, **{"ckpt.every": 3, "log.sample_every": 0}), base / "split")
    assert int(first.step) == 3
    resumed = train(six, base / "split")
    return {"six": six, "full": full, "resumed": resumed, "base": base}


def test_resumed_run_is_bitwise_equal_to_an_uninterrupted_one(runs):
    _assert_trees_equal(runs["full"], runs["resumed"])  # params, opt states, EMA, BN stats
    assert int(runs["resumed"].step) == 6
    full, split = _losses_by_step(runs["base"] / "full"), _losses_by_step(runs["base"] / "split")
    assert sorted(split) == list(range(1, 7))
    for step in (4, 5, 6):
        assert full[step] == split[step], step  # exact float equality of the logged values


def test_outputs_of_a_run(runs):
    workdir = runs["base"] / "full"
    assert _ckpt_steps(workdir) == [3, 6]
    saved = json.loads((workdir / "config.json").read_text())
    assert saved == json.loads(json.dumps(runs["six"].to_dict()))
    # sample_every=0: samples at the end only, from the EMA generator.
    names = sorted(p.name for p in (workdir / "samples").iterdir())
    assert names == ["step_000006.gif", "step_000006.mp4", "step_000006.png"]
    assert list((workdir / "tb").iterdir())
    record = read_metrics(workdir)[-1]
    assert record["step"] == 6 and all(np.isfinite(record[k]) for k in LOSSES)


def test_a_cut_off_save_is_never_restored(runs, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(runs["base"] / "split", workdir)
    # Make the step-6 checkpoint look like a save killed half way: orbax writes into a
    # temporary directory and renames it when complete (and a step directory without its
    # commit file is just as unfinished).
    step6 = workdir / "checkpoints" / "6"
    (step6 / "commit_success.txt").unlink()
    step6.rename(workdir / "checkpoints" / "6.orbax-checkpoint-tmp")
    assert _ckpt_steps(workdir) == [3]
    resumed = train(runs["six"], workdir)  # resumes from step 3, not from the broken 6
    _assert_trees_equal(runs["full"], resumed)
    steps = [r["step"] for r in read_metrics(workdir)]
    assert steps == [1, 2, 3, 4, 5, 6, 4, 5, 6]  # 4-6 were trained again after step 3
    assert _ckpt_steps(workdir) == [3, 6]


class _NaNAtStep:
    """Wraps a data iterator; the batch of step `bad_step` is all NaN."""

    def __init__(self, iterator, bad_step):
        self.iterator, self.bad_step, self.step = iterator, bad_step, 0

    def __next__(self):
        batch = next(self.iterator)
        self.step += 1
        if self.step == self.bad_step:
            batch = {k: np.full_like(v, np.nan) if k == "video" else v for k, v in batch.items()}
        return batch

    def get_state(self):
        return self.iterator.get_state()

    def set_state(self, state):
        self.iterator.set_state(state)


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch
):
    make_data = build.make_data
    monkeypatch.setattr(build, "make_data", lambda *a, **k: _NaNAtStep(make_data(*a, **k), 3))
    # Metrics reach the host at step 4 (a checkpoint step) only: the error must still name 3.
    cfg = tiny(steps=6, **{"ckpt.every": 2, "log.every": 4, "log.sample_every": 0})
    with pytest.raises(NonFiniteError, match=r"metric d/\S+ = nan at step 3"):
        train(cfg, tmp_path)
    assert _ckpt_steps(tmp_path) == [2]
    assert [r["step"] for r in read_metrics(tmp_path)] == [2]


def test_sigint_saves_at_the_current_step_and_returns(tmp_path):
    cfg = tiny(steps=10_000, **{"ckpt.every": 10_000, "log.every": 2, "log.sample_every": 0})
    metrics = tmp_path / "metrics.jsonl"

    def interrupt_once_training():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (metrics.exists() and metrics.stat().st_size):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    handler_before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=interrupt_once_training, daemon=True)
    thread.start()
    state = train(cfg, tmp_path)
    thread.join()
    step = int(state.step)
    assert 2 <= step < 10_000
    assert _ckpt_steps(tmp_path) == [step]
    assert read_metrics(tmp_path)[-1]["step"] == step
    assert signal.getsignal(signal.SIGINT) is handler_before  # the trainer's handler is gone


def test_sigterm_saves_and_exits_0(tmp_path, runs):
    """A real process: `gan-jax train` gets SIGTERM mid-run, saves, exits 0."""
    workdir = tmp_path / "run"
    # The same 8 CPU devices and compilation cache as this module's in-process runs, so that the
    # subprocess loads the tiny programs instead of compiling them again.
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": xla_flags(8),
        "JAX_COMPILATION_CACHE_DIR": jax.config.jax_compilation_cache_dir,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    command = [
        sys.executable, "-m", "gan_jax", "train", "--config", str(TINY), "--workdir",
        str(workdir), "--config.steps=100000", "--config.ckpt.every=100000",
        "--config.log.every=2", "--config.log.sample_every=0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        metrics = workdir / "metrics.jsonl"
        deadline = time.monotonic() + 180
        while not (metrics.exists() and metrics.stat().st_size):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "Received SIGTERM" in output
    steps = _ckpt_steps(workdir)
    assert len(steps) == 1 and steps[0] >= 2
    assert read_metrics(workdir)[-1]["step"] == steps[0]


def test_stop_signals_a_second_signal_raises_keyboard_interrupt():
    """The unit under the end-to-end test below: the first SIGTERM only sets the flag, the
    second raises KeyboardInterrupt, and the previous handler is back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    handler_before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(KeyboardInterrupt), StopSignals() as stop_signals:
            # raise_signal runs the Python handler before it returns: no waiting, no race.
            signal.raise_signal(signal.SIGTERM)
            assert stop_signals.received == signal.SIGTERM
            assert stop_signals.should_stop(1, at_sync_point=False)
            signal.raise_signal(signal.SIGTERM)
            pytest.fail("the second SIGTERM did not raise")  # (Failed is not a KeyboardInterrupt)
    finally:  # an in-process CLI test may have armed the abort timer in this worker
        early_signals.cancel_abort()
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_a_swallowed_second_signal_still_ends_a_cli_process_with_status_130():
    """The second signal's KeyboardInterrupt can land where it is swallowed (a finaliser, a
    library's catch-all); a CLI process then still ends, ABORT_GRACE_S later, with the abort's
    status and message, and without saving (seen in CI: no exit 120 s after the second)."""
    script = """
import signal, sys, time
from gan_jax import early_signals
early_signals.ABORT_GRACE_S = 1.0
early_signals.install()
signal.raise_signal(signal.SIGTERM)  # the first: recorded
try:
    signal.raise_signal(signal.SIGTERM)  # the second: KeyboardInterrupt ...
except KeyboardInterrupt:
    pass  # ... swallowed
time.sleep(60)
print("still running", flush=True)
"""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=50, cwd=ROOT
    )
    assert result.returncode == 130, result.stderr
    assert time.monotonic() - start < 40 and "still running" not in result.stdout
    assert "aborted (second SIGTERM)" in result.stderr
    assert "the last finished checkpoint is kept" in result.stderr


def _sigterm_twice(workdir):
    """Runs `gan-jax train` in a process, sends SIGTERM, and a second SIGTERM as soon as the
    first is acknowledged ("Received SIGTERM" in the log).

    Returns:
        `(returncode, output)`, or None when the second signal could not be sent before the
        stop's save had begun (a checkpoint directory entry already existed), so the attempt
        says nothing.
    """
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": xla_flags(8),
        "JAX_COMPILATION_CACHE_DIR": jax.config.jax_compilation_cache_dir,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    # The programs of test_sigterm_saves_and_exits_0: loaded from this module's cache.
    command = [
        sys.executable, "-m", "gan_jax", "train", "--config", str(TINY), "--workdir",
        str(workdir), "--config.steps=100000", "--config.ckpt.every=100000",
        "--config.log.every=2", "--config.log.sample_every=0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines, second = [], {}
    checkpoints = workdir / "checkpoints"

    def read_and_answer():
        # Two SIGTERMs that arrive before Python runs the handler count once, so the second is
        # sent only after the first was handled. It must also come before the stop's save has
        # started, or a correct trainer saves anyway: then the attempt is inconclusive.
        for line in process.stdout:
            lines.append(line)
            if "Received SIGTERM" in line and not second:
                started = checkpoints.is_dir() and any(checkpoints.iterdir())
                second["sent"] = not started
                if not started:
                    process.send_signal(signal.SIGTERM)

    reader = threading.Thread(target=read_and_answer, daemon=True)
    reader.start()
    try:
        metrics = workdir / "metrics.jsonl"
        deadline = time.monotonic() + 180
        while not (metrics.exists() and metrics.stat().st_size):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # Seen once in CI (session 24): keep what the trainer printed for the diagnosis.
            process.kill()
            reader.join(timeout=30)
            pytest.fail(f"no exit 120 s after SIGTERM (second: {second}):\n{''.join(lines)}")
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=30)
    output = "".join(lines)
    assert "sent" in second, f"the first SIGTERM was never acknowledged:\n{output}"
    return (process.returncode, output) if second["sent"] else None


def test_a_second_sigterm_aborts_without_saving(tmp_path, runs):
    """A real process: two SIGTERMs, and `gan-jax train` stops at once, with a non-zero status
    and without the checkpoint a single SIGTERM writes (README: "a second signal aborts without
    saving"). `runs` first fills this module's compilation cache."""
    for attempt in range(3):
        workdir = tmp_path / f"run{attempt}"
        result = _sigterm_twice(workdir)
        if result is not None:
            break
    else:
        pytest.fail("3 attempts: the stop's save always began before the second SIGTERM")
    returncode, output = result
    assert returncode == 130, output  # the CLI's status for an abort, with a one-line message
    assert "aborted" in output and "the last finished checkpoint is kept" in output
    assert _ckpt_steps(workdir) == [], output  # ckpt.every is never reached: none at all
    assert "Stopped at step" not in output


@pytest.mark.slow
def test_main_job_learns_moving_shapes(tmp_path):
    """The README's main-job command, run as a user runs it (`conftest.run_main_job`: one CPU
    device; in this process's 8 fake devices the same recipe rounds differently and one run
    ended at FSD 24), reaches what the main job measured (seeds 0, 1, 2 on an Intel Xeon, G
    gliding sprites off the walls, each clip's sprites in different colours: FSD 4.5 / 2.6 / 2.0,
    91.4 / 91.4 / 88.9 % of clips passing the physics check, off-palette 11.6 / 7.7 / 4.4 %,
    frozen objects 0.5 / 0.1 / 0 %; without the colour picks: FSD 4.0 / 2.1 / 3.3, 82.4 / 78.7 /
    79.3 %; the rounded colours before: FSD 3.5 / 2.6 / 3.1, 63.3 / 61.7 / 62.7 %; the
    steered sprites: 30.5 / 30.5 / 37.5 %; G drawing every frame: FSD 6.2 / 7.1 / 6.9, no clip
    passing), with room for other CPUs' rounding. Both of the issue's targets
    (FSD at most 5, half the clips passing) are met on the Xeon; the marks leave room below."""
    cfg = config.load_config_file(ROOT / "experiments" / "configs" / "bouncing_shapes.py")
    assert_main_job_marks(run_main_job(tmp_path), cfg.steps)
