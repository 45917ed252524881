"""Every failure a user can cause or meet ends in one line `gan-jax <command>: error: ...` with
exit status 2 (their mistake) or 1 (a fault of the environment or of training); SIGTERM is
handled from the first moment; piped progress is a line every 30 s. (A changed architecture on
resume and damaged checkpoints through the command line: tests/test_cli.py.)"""

import errno
import io
import logging
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from gan_jax import build
from gan_jax import main as cli
from gan_jax.checkpoint import Checkpointer
from gan_jax.main import main
from gan_jax.train import PIPED_PROGRESS_INTERVAL_S, progress_bar

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "configs" / "tiny.py"


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(persistent_compile_cache):
    yield


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith(f"gan-jax {command}: error: "), err
    return lines[-1]


# ---------------------------------------------------------------------------------------------
# The user's mistakes: exit 2, one line naming the thing


def _bad_config(tmp_path, text):
    path = tmp_path / "bad.py"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "make_args, message",
    [
        (
            lambda t: ["--config", _bad_config(t, "def get_config(:\n")],
            r"bad.py, line 1: invalid syntax",
        ),
        (
            lambda t: ["--config", _bad_config(t, "def get_config():\n    return 1 / 0\n")],
            r"get_config\(\) of .*bad.py failed: ZeroDivisionError: division by zero \(line 2\)",
        ),
        (lambda t: ["--config", str(TINY), "--config.data.num_objects=(1, 9)"], "num_objects"),
    ],
)
def test_config_mistakes(tmp_path, capsys, make_args, message):
    args = ["train", "--workdir", str(tmp_path / "w"), *make_args(tmp_path)]
    assert main(args) == 2
    line = _one_error_line(capsys.readouterr().err, "train")
    assert re.search(message, line), line


def test_workdir_that_is_a_file(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("x")
    for command in (["train", "--config", str(TINY)], ["sample", "--out", str(tmp_path)]):
        assert main([*command, "--workdir", str(file)]) == 2
        line = _one_error_line(capsys.readouterr().err, command[0])
        assert f"--workdir {file} is a file" in line
    assert file.read_text() == "x"


def test_read_only_workdir(tmp_path, capsys):
    workdir = tmp_path / "ro"
    workdir.mkdir()
    workdir.chmod(0o555)
    try:
        with open(workdir / "probe", "w"):
            pass  # root ignores permissions: mount a read-only file system instead
        os.unlink(workdir / "probe")
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(workdir)],
            capture_output=True,
        )
        if mounted.returncode:
            pytest.skip("cannot make a read-only directory for this user")
    except PermissionError:
        mounted = None
    try:
        assert main(["train", "--config", str(TINY), "--workdir", str(workdir)]) == 2
        line = _one_error_line(capsys.readouterr().err, "train")
        assert f"--workdir {workdir} is not writable" in line
    finally:
        if mounted is not None:
            subprocess.run(["umount", str(workdir)], check=True)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--num", "0"], "argument --num: must be at least 1, got 0"),
        (["--num", "-3"], "argument --num: must be at least 1, got -3"),
        (["--num-frames", "0"], "argument --num-frames: must be at least 1, got 0"),
    ],
)
def test_sample_counts_must_be_positive(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--workdir", str(tmp_path), "--out", str(tmp_path / "o"), *extra])
    assert exit_info.value.code == 2
    assert message in _one_error_line(capsys.readouterr().err, "sample")


def test_sample_out_that_is_a_file_is_refused_before_sampling(tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("keep me")
    assert main(["sample", "--workdir", str(tmp_path), "--num", "1", "--out", str(out)]) == 2
    assert f"--out {out} is a file" in _one_error_line(capsys.readouterr().err, "sample")
    assert out.read_text() == "keep me"


# ---------------------------------------------------------------------------------------------
# Faults: exit 1, one line, the traceback in WORKDIR/errors.log


class _NaNAt:
    def __init__(self, iterator, bad_step):
        self.iterator, self.step, self.bad_step = iterator, 0, bad_step

    def __next__(self):
        batch = next(self.iterator)
        self.step += 1
        if self.step == self.bad_step:
            batch = {k: v * float("nan") if k == "video" else v for k, v in batch.items()}
        return batch

    def get_state(self):
        return self.iterator.get_state()

    def set_state(self, state):
        self.iterator.set_state(state)


def test_nan_is_one_line_and_keeps_the_checkpoints(tmp_path, capsys, monkeypatch):
    make_data = build.make_data
    monkeypatch.setattr(build, "make_data", lambda *a, **k: _NaNAt(make_data(*a, **k), 3))
    args = ["train", "--config", str(TINY), "--workdir", str(tmp_path), "--config.steps=4"]
    assert main([*args, "--config.log.sample_every=0"]) == 1
    line = _one_error_line(capsys.readouterr().err, "train")
    assert "= nan at step 3: training diverged" in line
    with Checkpointer(tmp_path / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [2]
    assert "NonFiniteError" in (tmp_path / cli.ERROR_LOG).read_text()


def test_full_disk_names_the_path_free_space_and_last_good_checkpoint(
    tmp_path, capsys, monkeypatch
):
    """A stand-in for a full disk (the slow test below fills a real one): the save at step 4
    fails with ENOSPC, as orbax reports it from its writer."""
    save = Checkpointer.save

    def failing_save(self, step, *args, **kwargs):
        if step == 4:
            raise ValueError("RESOURCE_EXHAUSTED: Error writing ...") from OSError(
                errno.ENOSPC, "No space left on device"
            )
        return save(self, step, *args, **kwargs)

    monkeypatch.setattr(Checkpointer, "save", failing_save)
    args = ["train", "--config", str(TINY), "--workdir", str(tmp_path), "--config.steps=4"]
    assert main([*args, "--config.log.sample_every=0"]) == 1
    line = _one_error_line(capsys.readouterr().err, "train")
    assert f"no space left on device writing {tmp_path} (" in line and "MiB free" in line
    assert f"the last good checkpoint is {tmp_path / 'checkpoints' / '2'}" in line


def test_unexpected_errors_are_one_line_with_the_traceback_in_the_log(
    tmp_path, capsys, monkeypatch
):
    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(build, "make_data", broken)
    assert main(["train", "--config", str(TINY), "--workdir", str(tmp_path)]) == 1
    line = _one_error_line(capsys.readouterr().err, "train")
    assert "unexpected KeyError: 'surprise'" in line and "--debug prints it" in line
    assert "Traceback" in (tmp_path / cli.ERROR_LOG).read_text()
    assert main(["train", "--config", str(TINY), "--workdir", str(tmp_path), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_background_errors_become_one_line_each(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli._ERROR_LOG, "workdir", str(tmp_path))
    monkeypatch.setattr(cli._ERROR_LOG, "_seen", set())
    monkeypatch.setattr(cli._ERROR_LOG, "to_terminal", True)
    for name in ("excepthook", "unraisablehook"):
        monkeypatch.setattr(sys, name, getattr(sys, name))
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    cli._install_quiet_hooks()
    for _ in range(3):  # the same failure, again and again: one line
        thread = threading.Thread(target=lambda: 1 / 0, name="writer")
        thread.start()
        thread.join()
    record = logging.LogRecord("absl", logging.ERROR, __file__, 1, "save failed", None, None)
    assert cli._OneLineForeignErrors().filter(record) is False
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    cli._ERROR_LOG.to_terminal = False  # after the command's error line: the log file only
    thread = threading.Thread(target=lambda: [][1], name="atexit-like")
    thread.start()
    thread.join()
    assert capsys.readouterr().err == ""
    assert "IndexError" in (tmp_path / cli.ERROR_LOG).read_text()
    assert err[0].startswith("gan-jax: background thread writer: ZeroDivisionError")
    assert err[1].startswith("gan-jax: absl logged: RuntimeError: save failed")
    assert (tmp_path / cli.ERROR_LOG).read_text().count("ZeroDivisionError") >= 3


# ---------------------------------------------------------------------------------------------
# Signals and logs


def test_sigterm_while_starting_exits_0_before_the_first_step(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    args = [sys.executable, "-m", "gan_jax", "train", "--config", str(TINY)]
    process = subprocess.Popen(
        [*args, "--workdir", str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True
    )
    time.sleep(0.5)  # still importing JAX
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "received SIGTERM while starting" in err
    assert "Stopped before step 1" in err
    assert not (tmp_path / "checkpoints").exists()


def test_piped_progress_writes_whole_lines_rarely():
    class Piped(io.StringIO):
        def isatty(self):
            return False

    stream = Piped()
    with progress_bar(1000, 0, enabled=True, stream=stream) as bar:
        for _ in range(1000):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert PIPED_PROGRESS_INTERVAL_S == 30
    assert len(lines) == 2 and lines[-1].startswith("100%|"), lines  # the start and the end
    assert "\r" not in stream.getvalue()


@pytest.mark.slow
def test_a_real_full_disk_ends_in_one_line_and_resumes_after_space_is_freed(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)]
    if subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        workdir = disk / "run"
        args = [sys.executable, "-m", "gan_jax", "train", "--config", str(TINY)]
        args += ["--workdir", str(workdir), "--config.steps=40", "--config.ckpt.every=5"]
        args += ["--config.log.every=5", "--config.log.sample_every=0"]
        # One device, as a user runs it (conftest's 8 fake devices write larger checkpoints).
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        env["JAX_PLATFORMS"] = "cpu"
        full = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert full.returncode == 1, full.stderr
        lines = [line for line in full.stderr.splitlines() if line.strip()]
        # The start-up line, one line per source of background errors, the error line.
        assert len(lines) <= 6, full.stderr
        assert lines[-1].startswith("gan-jax train: error: no space left on device writing ")
        assert "the last good checkpoint is " in lines[-1]
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        with Checkpointer(workdir / "checkpoints") as ckpt:
            assert ckpt.latest_step() == 40
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
