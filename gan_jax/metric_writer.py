"""Training metrics to WORKDIR/metrics.jsonl (one JSON object per line) and TensorBoard.

The JSONL file is the record that scripts and tests read back (`read_metrics`); TensorBoard
(WORKDIR/tb, written with tensorboardX) is for looking at curves and sample grids.

Each line is `{"step": int, "<name>": float, ...}`. Non-finite values are written as the tokens
NaN / Infinity / -Infinity, which Python's `json.loads` accepts (strict JSON parsers do not):
the trainer, not the writer, decides whether to stop on them.

After a crash the last line may be cut off. `read_metrics` skips such a line, and a new
`MetricWriter` on the same directory drops it before appending, so the file never holds a
broken line in the middle. A resumed run appends: steps between the last checkpoint and the
crash then appear twice, the later line being the resumed run's.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np


def _import_tensorboardx():
    """tensorboardX, imported without PyTorch.

    `tensorboardX.writer` imports torch when it is installed (the test and bench extras
    install it), only to accept torch tensors; we hand it numpy. That import took 2 s of every
    `gan-jax` start. A torch the program already imported is left alone.
    """
    if "torch" in sys.modules:
        import tensorboardX

        return tensorboardX
    sys.modules["torch"] = None  # makes `import torch` raise ImportError, which it handles
    try:
        import tensorboardX
    finally:
        del sys.modules["torch"]
    return tensorboardX


tensorboardX = _import_tensorboardx()

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tb"


def _check_step(step: Any) -> int:
    try:
        return operator.index(step)
    except TypeError:
        raise TypeError(f"step must be an integer, got {step!r} ({type(step).__name__})") from None


def _to_float(name: str, value: Any) -> float:
    """Python float from a Python / numpy / jax scalar (jax values are fetched from device)."""
    array = np.asarray(value)
    # jnp.issubdtype, unlike numpy's, knows that bfloat16 & co. are numbers.
    real = (
        jnp.issubdtype(array.dtype, np.number) or jnp.issubdtype(array.dtype, np.bool_)
    ) and not jnp.issubdtype(array.dtype, np.complexfloating)
    if array.ndim != 0 or not real:
        raise ValueError(
            f"Metric {name!r} must be a real scalar, got {type(value).__name__} with shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    return float(array)


def _repair_tail(path: Path) -> None:
    """Makes `path` end with a complete line: drops a torn last line, or terminates a whole one."""
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        end = size
        keep = 0
        # Scan backwards in chunks for the last newline: the file can be large.
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            newline = f.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        if keep == size:
            return
        f.seek(keep)
        tail = f.read()
        try:
            whole = isinstance(json.loads(tail), dict)
        except ValueError:
            whole = False
        if whole:  # cut off between the object and its newline
            f.seek(size)
            f.write(b"\n")
        else:
            logging.warning(
                "Dropping a cut-off last line (%d bytes) of %s, left by an interrupted run",
                size - keep,
                path,
            )
            f.truncate(keep)


class MetricWriter:
    """Writes scalars (JSONL + TensorBoard) and images (TensorBoard) for one run.

    Args:
        workdir: run directory; metrics.jsonl and tb/ go there (created if missing).
        enabled: False makes every method a no-op that writes nothing, for processes other than
            process 0 of a multi-host run (e.g. `enabled=jax.process_index() == 0`).
    """

    def __init__(self, workdir: str | os.PathLike, *, enabled: bool = True):
        self._workdir = Path(workdir)
        self._enabled = enabled
        self._jsonl = None
        self._tensorboard = None
        if not enabled:
            return
        self._workdir.mkdir(parents=True, exist_ok=True)
        metrics_path = self._workdir / METRICS_FILE
        if metrics_path.exists():
            _repair_tail(metrics_path)
        self._jsonl = open(metrics_path, "a", encoding="utf-8")  # closed in close()
        self._tensorboard = tensorboardX.SummaryWriter(str(self._workdir / TENSORBOARD_DIR))

    @property
    def metrics_path(self) -> Path:
        """Path of the JSONL file."""
        return self._workdir / METRICS_FILE

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Appends `{"step": step, **scalars}` to metrics.jsonl (flushed) and to TensorBoard.

        Args:
            step: training step.
            scalars: name -> real scalar (Python, numpy or jax; converted to float).
        """
        if not self._enabled:
            return
        self._check_open()
        step = _check_step(step)
        values = {}
        for name, value in scalars.items():
            if not isinstance(name, str):
                raise TypeError(f"Metric names must be str, got {name!r}")
            if name == "step":
                raise ValueError("'step' is reserved for the step number; rename that metric")
            values[name] = _to_float(name, value)
        # One write call per line keeps a crash from interleaving half lines.
        self._jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self._jsonl.flush()
        for name, value in values.items():
            # NaN marks "nothing to measure" (a physics diagnostic of clips with no object);
            # metrics.jsonl keeps it, TensorBoard would only warn about it.
            if math.isfinite(value):
                self._tensorboard.add_scalar(name, value, step)

    def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """Writes uint8 `[H, W, 3]` images (e.g. sample grids) to TensorBoard.

        Args:
            step: training step.
            images: name -> uint8 array `[H, W, 3]` (convert float clips with
                gan_jax.io.to_uint8 / frame_grid first).
        """
        if not self._enabled:
            return
        self._check_open()
        step = _check_step(step)
        checked = {}
        for name, image in images.items():
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
                raise ValueError(
                    f"Image {name!r} must be uint8 [H, W, 3], got {image.dtype} {image.shape}"
                )
            checked[name] = image
        for name, image in checked.items():
            self._tensorboard.add_image(name, image, step, dataformats="HWC")

    def flush(self) -> None:
        """Pushes pending TensorBoard events to disk (the JSONL file is flushed on every write)."""
        if not self._enabled or self._jsonl is None:
            return
        self._jsonl.flush()
        self._tensorboard.flush()

    def close(self) -> None:
        """Flushes and closes both outputs. Idempotent."""
        if self._jsonl is None:
            return
        self._jsonl.close()
        self._tensorboard.close()
        self._jsonl = None
        self._tensorboard = None

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._jsonl is None:
            raise RuntimeError(f"MetricWriter for {self._workdir} is closed")


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
    """Reads WORKDIR/metrics.jsonl as a list of dicts, in file order.

    A cut-off last line (a crash mid-write) is skipped; a broken line anywhere else raises.

    Raises:
        FileNotFoundError: no metrics.jsonl in workdir.
        ValueError: a line other than the last is not a JSON object (names file and line).
    """
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"No {METRICS_FILE} in {workdir}: nothing was written there")
    lines = path.read_text(encoding="utf-8").split("\n")
    # After split, a file ending in "\n" gives a final empty string; anything else is a cut line.
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        is_last = number == len(lines)
        try:
            record = json.loads(line)
        except ValueError as e:
            if is_last:
                logging.warning("Skipping cut-off last line of %s: %r", path, line[:80])
                continue
            raise ValueError(f"{path}, line {number}: not valid JSON ({e}): {line[:80]!r}") from e
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {number}: expected a JSON object, got {line[:80]!r}")
        records.append(record)
    return records
