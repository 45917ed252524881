"""benchmarks/train_step.py builds its run from any config file: a smoke run of two configs."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "train_step.py"


@pytest.mark.parametrize(
    "config, overrides",
    [
        pytest.param("tiny.py", [], marks=pytest.mark.slow),  # 3-D convolutions: ~35 s
        # The MLP has no convolutions: route lax compiles one program for both FLOP counts.
        # 17 s, a process of its own: benchmarks' smoke tests are slow (test_vs_pytorch.py).
        pytest.param(
            "toy_rpgan.py",
            ["--config.batch_size=16", "--config.steps=10", "--conv-impl=lax"],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_benchmark_times_the_step_of_a_config(config, overrides):
    command = [
        sys.executable,
        str(SCRIPT),
        "--config",
        str(ROOT / "experiments" / "configs" / config),
    ]
    command += [*overrides, "--steps", "1", "--warmup", "1"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.startswith("CPU: ")
    assert f"config {config}" in out and "clips/s: " in out
    clips_per_second = float(out.split("clips/s: ")[1].split()[0])
    assert clips_per_second > 0
    xla_mib, host_mib = (
        float(out.split(marker)[1].split()[0])
        for marker in ("buffer analysis ", "(malloc in use) ")
    )
    assert xla_mib > 0 and host_mib > 0, out
