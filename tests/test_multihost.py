"""Two local CPU processes (jax.distributed over loopback) train like one process."""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import xla_flags

from gan_jax import build, config, parallel, workdir
from gan_jax.checkpoint import Checkpointer
from gan_jax.metric_writer import read_metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "configs" / "tiny.py"
STEPS = 3
# SGD, not Adam: Adam divides by sqrt(v), which turns the round-off of a different summation
# order (two processes add their halves of the batch, then all-reduce) into O(lr) differences
# for parameters whose gradients are near zero. SGD keeps differences at round-off level.
OVERRIDES = [
    f"--config.steps={STEPS}",
    "--config.g.optimizer=sgd",
    "--config.d.optimizer=sgd",
    "--config.g.lr=0.05",
    "--config.d.lr=0.05",
    f"--config.ckpt.every={STEPS}",
    "--config.log.every=1",
    "--config.log.sample_every=0",
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(run_dir, local_devices, extra=()):
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": xla_flags(local_devices),
    }
    command = [
        sys.executable, "-m", "gan_jax", "train", "--config", str(TINY),
        "--workdir", str(run_dir), *OVERRIDES, *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _final_state(run_dir):
    cfg = config.load_config_json(run_dir / "config.json")
    run = build.build(cfg)
    with Checkpointer(run_dir / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [STEPS]
        state, data_state, _ = ckpt.restore(workdir.abstract_state(run, parallel.make_mesh()))
    return state, data_state


def test_two_processes_with_two_devices_each_match_one_process_with_four(tmp_path):
    port = _free_port()
    multi = [
        _launch(
            tmp_path / "multi",
            2,
            [f"--coordinator-address=127.0.0.1:{port}", "--num-processes=2", f"--process-id={i}"],
        )
        for i in range(2)
    ]
    single = _launch(tmp_path / "single", 4)
    outputs = []
    try:
        for process in [*multi, single]:
            outputs.append(process.communicate(timeout=240)[0])
    finally:
        for process in [*multi, single]:
            if process.poll() is None:
                process.kill()
    for process, output in zip([*multi, single], outputs):
        assert process.returncode == 0, output
        # A stop here means a signal reached the trainer from outside the test.
        assert "Received SIG" not in output, output
    assert "Process 1/2" in outputs[1] and "Process 0/1" in outputs[2]

    multi_state, multi_data = _final_state(tmp_path / "multi")
    single_state, single_data = _final_state(tmp_path / "single")
    # Each process read STEPS batches of its own shard: the saved position is the same.
    assert multi_data == single_data == {"next_index": STEPS}
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(multi_state), jax.tree.leaves(single_state)
    ):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=jax.tree_util.keystr(path)
        )
    assert int(multi_state.step) == STEPS

    # Only process 0 writes metrics (one line per step, not two) and the samples.
    multi_metrics, single_metrics = (read_metrics(tmp_path / n) for n in ("multi", "single"))
    assert [r["step"] for r in multi_metrics] == [1, 2, 3]
    for a, b in zip(multi_metrics, single_metrics):
        for name in ("d/loss", "g/loss", "grad_norm/d", "grad_norm/g"):
            assert a[name] == pytest.approx(b[name], rel=1e-5), (a["step"], name)
    assert sorted(p.name for p in (tmp_path / "multi" / "samples").iterdir()) == [
        "step_000003.gif",
        "step_000003.mp4",
        "step_000003.png",
    ]
