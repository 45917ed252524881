"""benchmarks/vs_pytorch.py on a tiny GAN: the PyTorch twin has our parameter counts and FLOPs.

The script refuses to time two steps that differ; this runs its checks (and one timed step)
so that a change to the models that the twin does not follow fails here, not in a benchmark.
"""

import importlib.util
import json
import pathlib

import pytest

pytest.importorskip("torch")

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "vs_pytorch.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("vs_pytorch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # 31 s each: a benchmark's twin models; the default suite keeps to 10 minutes
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_twin_matches_and_the_table_prints(capsys, dtype):
    """bfloat16: our nets' dtype against torch.autocast, the same FLOP check."""
    vs_pytorch = _load_script()
    args = ["--shapes", "4x8x8", "--batch", "2", "--width", "4", "--depth", "2", "--z-dim", "8"]
    args += ["--dtype", dtype]
    vs_pytorch.main([*args, "--steps", "1", "--warmup", "0", "--matmul-size", "256"])
    out = capsys.readouterr().out
    assert f"{dtype} matmul peak" in out and f"D mirrored; {dtype};" in out
    # The FLOP check passed (it exits otherwise) and every row of the table is there.
    assert "ratio gan_jax/PyTorch clips/s:" in out
    for row in (
        "clips/s",
        "useful GFLOP/s",
        "% of own matmul peak",
        "peak host MiB (malloc in use)",
    ):
        assert row in out, row


def test_the_flop_counter_counts_valid_taps_only():
    vs_pytorch = _load_script()
    # 1-D, input 4, kernel 4, stride 2, pad 1: outputs 0 and 1 read 3 and 3 valid inputs.
    assert vs_pytorch._valid_taps(4, 2, 4, 2, 1, transposed=False) == 6
    # Its transpose writes the same pairs.
    assert vs_pytorch._valid_taps(2, 4, 4, 2, 1, transposed=True) == 6


def test_bad_shape_argument_says_the_format():
    vs_pytorch = _load_script()
    with pytest.raises(SystemExit):
        vs_pytorch.parse_args(["--shapes", "16x32"])


@pytest.mark.slow  # about 40 s: two subprocesses that each build jax and PyTorch twins
def test_gpu_script_runs_both_dtypes_and_prints_the_table(capsys, tmp_path, monkeypatch):
    """benchmarks/vs_pytorch_gpu.py end to end on whatever backend JAX has (on a CPU: "cpu"
    twins, no device memory): float32 and bf16 mixed precision (jax `dtype`, torch autocast)."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # the children need no fake devices
    spec = importlib.util.spec_from_file_location(
        "vs_pytorch_gpu", SCRIPT.with_name("vs_pytorch_gpu.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out_json = tmp_path / "rows.json"
    tiny = ["--shapes", "4x8x8", "--batches", "2", "--width", "4", "--depth", "2", "--z-dim", "8"]
    module.main([*tiny, "--steps", "1", "--warmup", "1", "--matmul-size", "64", "--no-compile",
                 "--json", str(out_json)])  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("ratio gan_jax / PyTorch's best (torch eager) clips/s:") == 2, out
    rows = json.loads(out_json.read_text())["rows"]
    assert [row["dtype"] for row in rows] == ["float32", "bfloat16"]
    assert all(row["useful_gflop_per_step"] > 0 for row in rows)  # counted on the host
    for row in rows:
        assert set(row["variants"]) == {"gan_jax", "torch eager"}
        assert all(v["clips_per_s"] > 0 for v in row["variants"].values())
