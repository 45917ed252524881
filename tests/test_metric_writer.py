"""Tests for gan_jax.metric_writer: JSONL content, TensorBoard events, disabled writers and
crash-torn files."""

import io
import math
import os
import struct
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from tensorboardX.proto import event_pb2

from gan_jax.metric_writer import MetricWriter, read_metrics


def _read_events(tb_dir):
    """All events of the TensorBoard event files in `tb_dir`, parsed from the TFRecord framing:
    uint64 length, uint32 length CRC, payload, uint32 payload CRC (tensorboard isn't installed)."""
    events = []
    for path in sorted(tb_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            payload = data[pos + 12 : pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event()
            event.ParseFromString(payload)
            events.append(event)
    return events


def _scalars(events):
    """{tag: [(step, value), ...]} of the scalar summaries."""
    found = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("simple_value"):
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def test_scalars_to_jsonl_and_tensorboard(tmp_path):
    with MetricWriter(tmp_path) as writer:
        writer.write_scalars(
            1, {"g_loss": 0.5, "d_loss": np.float32(1.25), "lr": jnp.asarray(2e-4)}
        )
        writer.write_scalars(np.int64(2), {"g_loss": jnp.asarray(0.25, jnp.bfloat16), "ok": True})
        # Lines are flushed as they are written: readable while the writer is open.
        assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    records = read_metrics(tmp_path)
    assert records[0] == {"step": 1, "g_loss": 0.5, "d_loss": 1.25, "lr": pytest.approx(2e-4)}
    assert records[1] == {"step": 2, "g_loss": 0.25, "ok": 1.0}
    assert all(type(v) is float for r in records for k, v in r.items() if k != "step")

    scalars = _scalars(_read_events(tmp_path / "tb"))
    assert scalars["g_loss"] == [(1, 0.5), (2, 0.25)]
    assert scalars["d_loss"] == [(1, 1.25)]
    assert scalars["lr"][0][0] == 1 and scalars["lr"][0][1] == pytest.approx(2e-4)


def test_non_finite_values_are_written(tmp_path):
    with MetricWriter(tmp_path) as writer:
        writer.write_scalars(3, {"a": float("nan"), "b": np.inf, "c": -jnp.inf})
    line = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" in line and "Infinity" in line and "-Infinity" in line
    (record,) = read_metrics(tmp_path)
    assert math.isnan(record["a"]) and record["b"] == math.inf and record["c"] == -math.inf
    # TensorBoard gets the finite ones only (it warns about the rest and draws nothing).
    with MetricWriter(tmp_path / "mixed") as writer:
        writer.write_scalars(4, {"a": float("nan"), "d": 1.5})
    assert _scalars(_read_events(tmp_path / "mixed" / "tb")) == {"d": [(4, 1.5)]}


def test_images_to_tensorboard(tmp_path):
    image = np.zeros((6, 10, 3), np.uint8)
    image[:, :5, 0] = 255  # left half red
    with MetricWriter(tmp_path) as writer:
        writer.write_images(7, {"samples": image})
        writer.flush()
    images = [
        (event.step, value)
        for event in _read_events(tmp_path / "tb")
        for value in event.summary.value
        if value.HasField("image")
    ]
    assert len(images) == 1
    step, value = images[0]
    assert step == 7 and value.tag == "samples"
    assert (value.image.height, value.image.width, value.image.colorspace) == (6, 10, 3)
    decoded = np.asarray(Image.open(io.BytesIO(value.image.encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(decoded, image)


def test_disabled_writer_writes_nothing(tmp_path):
    workdir = tmp_path / "run"
    with MetricWriter(workdir, enabled=False) as writer:
        writer.write_scalars(1, {"loss": 1.0})
        writer.write_images(1, {"x": np.zeros((2, 2, 3), np.uint8)})
        writer.flush()
    assert not workdir.exists()


def test_torn_last_line_is_tolerated_and_repaired(tmp_path):
    with MetricWriter(tmp_path) as writer:
        writer.write_scalars(1, {"loss": 1.0})
        writer.write_scalars(2, {"loss": 0.5})
    path = tmp_path / "metrics.jsonl"
    # A crash in the middle of writing step 3.
    path.write_text(path.read_text() + '{"step": 3, "lo')
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    # A resumed run appends after the complete lines only.
    with MetricWriter(tmp_path) as writer:
        writer.write_scalars(3, {"loss": 0.25})
    assert read_metrics(tmp_path) == [
        {"step": 1, "loss": 1.0},
        {"step": 2, "loss": 0.5},
        {"step": 3, "loss": 0.25},
    ]


def test_whole_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}')
    assert len(read_metrics(tmp_path)) == 2
    with MetricWriter(tmp_path) as writer:
        writer.write_scalars(3, {"loss": 0.25})
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]


def test_broken_line_in_the_middle_raises(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2"):
        read_metrics(tmp_path)


def test_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="No metrics.jsonl"):
        read_metrics(tmp_path / "missing")
    with MetricWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match=r"Metric 'v' must be a real scalar.*shape \(2,\)"):
            writer.write_scalars(1, {"v": np.ones(2)})
        with pytest.raises(ValueError, match="Metric 'z' must be a real scalar"):
            writer.write_scalars(1, {"z": 1j})
        with pytest.raises(ValueError, match="Metric 's' must be a real scalar"):
            writer.write_scalars(1, {"s": "1.0"})
        with pytest.raises(ValueError, match="'step' is reserved"):
            writer.write_scalars(1, {"step": 1})
        with pytest.raises(TypeError, match="step must be an integer"):
            writer.write_scalars(1.0, {"a": 1})
        with pytest.raises(ValueError, match=r"Image 'g' must be uint8 \[H, W, 3\].*float32"):
            writer.write_images(1, {"g": np.zeros((4, 4, 3), np.float32)})
    # Rejected calls wrote nothing.
    assert read_metrics(tmp_path) == []
    with pytest.raises(RuntimeError, match="closed"):
        writer.write_scalars(2, {"a": 1.0})


def test_the_trainer_starts_without_importing_pytorch():
    """tensorboardX imports torch (2 s) when it is installed; the writer keeps it out."""
    pytest.importorskip("torch")
    code = "import sys, gan_jax.train; assert 'torch' not in sys.modules, 'torch was imported'"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
