"""Datasets and the deterministic input pipeline.

``make_dataset`` (in ``pipeline``) is the trainer's entry point; the sources can be used directly
for random access and ground truth.
"""

from gan_jax.data.bouncing_shapes import BouncingShapes, render_shapes
from gan_jax.data.pipeline import (
    DATASET_NAMES,
    default_data_config,
    make_dataset,
    make_source,
    resolve_data_config,
)
from gan_jax.data.video_folder import VideoFolder, index_videos

__all__ = [
    "DATASET_NAMES",
    "BouncingShapes",
    "VideoFolder",
    "default_data_config",
    "index_videos",
    "make_dataset",
    "make_source",
    "render_shapes",
    "resolve_data_config",
]
