"""`DataSpec`: what every batch of a dataset holds, for the parts that are built around it.

Models take their sample shape from it, objectives their conditioning (labels, context), and
the trainer its example batch for initialising the nets. It holds no data.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The batches of a dataset.

    Attributes:
        name: `data.name` ("bouncing_shapes", "video_folder", "ring", ...).
        sample_key: the batch entry that holds the samples ("video" or "points").
        fields: every batch entry as `(key, per-example shape, dtype name)`, e.g.
            `(("video", (16, 64, 64, 3), "float32"), ("label", (), "int32"))`.
        num_classes: how many labels `label` takes (None: no labels).
        batch_size: the global batch (all devices and processes) the run reads.
    """

    name: str
    sample_key: str
    fields: tuple[tuple[str, tuple[int, ...], str], ...]
    num_classes: int | None = None
    batch_size: int = 1

    def __post_init__(self):
        keys = [key for key, _, _ in self.fields]
        if self.sample_key not in keys:
            raise ValueError(f"DataSpec: sample_key {self.sample_key!r} is not a field: {keys}")

    def shape(self, key: str) -> tuple[int, ...]:
        """Per-example shape of batch entry `key`."""
        for name, shape, _ in self.fields:
            if name == key:
                return tuple(shape)
        raise KeyError(f"the {self.name} batches have no {key!r} entry; they hold {self.keys}")

    @property
    def keys(self) -> list[str]:
        return [key for key, _, _ in self.fields]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample: `(T, H, W, C)` for clips, `(2,)` for points."""
        return self.shape(self.sample_key)

    @property
    def is_video(self) -> bool:
        return len(self.sample_shape) == 4

    def example_batch(self, num: int = 2) -> dict[str, np.ndarray]:
        """Zeros shaped like a batch of `num` examples (for initialising and tracing)."""
        return {key: np.zeros((num, *shape), dtype) for key, shape, dtype in self.fields}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DataSpec:
        """Reads `to_json`'s text (JSON turns tuples into lists; they are turned back)."""
        values = json.loads(text)
        values["fields"] = tuple(
            (key, tuple(shape), dtype) for key, shape, dtype in values["fields"]
        )
        return cls(**values)
